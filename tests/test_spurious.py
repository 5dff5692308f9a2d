"""The generated spurious-correlation benchmark (data/spurious.py)."""

import os

import numpy as np
import pytest

from sparse_shared_jax import config_validation, configs, data
from sparse_shared_jax.data import spurious

SMALL = {"train_size": 2000, "validation_size": 400, "test_size": 400}


@pytest.fixture(scope="module")
def dataset():
    return data.ground_truth(spurious.DATASET_NAME, **SMALL)


def test_label_attribute_and_group_of_known_factors():
    # floor_hue, wall_hue, object_hue, scale, shape, orientation
    factors = np.array(
        [
            [0, 3, 3, 0, 0, 0],  # cube, red floor
            [9, 3, 3, 0, 1, 0],  # cylinder, magenta floor
            [4, 3, 3, 0, 2, 0],  # sphere, hue 0.4
            [5, 3, 3, 0, 3, 0],  # capsule, hue 0.5
        ]
    )
    np.testing.assert_array_equal(spurious.labels_of(factors), [0, 0, 1, 1])
    np.testing.assert_array_equal(spurious.attributes_of(factors), [0, 1, 0, 1])
    np.testing.assert_array_equal(
        spurious.groups_of(
            spurious.labels_of(factors), spurious.attributes_of(factors)
        ),
        [0, 1, 2, 3],
    )


def test_group_counts_are_exact():
    np.testing.assert_array_equal(
        spurious.group_counts(4800, 0.95), [2280, 120, 120, 2280]
    )
    np.testing.assert_array_equal(spurious.group_counts(1000, 0.5), [250] * 4)
    assert spurious.group_counts(7, 0.5).sum() == 7
    with pytest.raises(ValueError, match="agreement"):
        spurious.group_counts(100, 0.3)
    with pytest.raises(ValueError, match="at least 4"):
        spurious.group_counts(3, 0.5)


def test_factors_for_respects_groups_and_keeps_other_factors_uniform():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 20000)
    attributes = rng.integers(0, 2, 20000)
    factors = spurious.factors_for(labels, attributes, rng)
    np.testing.assert_array_equal(spurious.labels_of(factors), labels)
    np.testing.assert_array_equal(spurious.attributes_of(factors), attributes)
    # Object hue (10 values) stays uniform: each value within 1.5% of 10%.
    frequencies = np.bincount(factors[:, 2], minlength=10) / len(factors)
    np.testing.assert_allclose(frequencies, 0.1, atol=0.015)
    # All four shapes occur, two per label.
    assert set(factors[labels == 0, 4]) == {0, 1}
    assert set(factors[labels == 1, 4]) == {2, 3}


def test_training_split_agrees_95_percent_and_test_split_is_balanced(dataset):
    for name, agreement in (("train", 0.95), ("validation", 0.5), ("test", 0.5)):
        factors = dataset._split_factors[name]
        labels = spurious.labels_of(factors)
        attributes = spurious.attributes_of(factors)
        assert np.mean(labels) == 0.5, name
        assert np.mean(labels == attributes) == agreement, name
    test_groups = spurious.groups_of(
        spurious.labels_of(dataset._split_factors["test"]),
        spurious.attributes_of(dataset._split_factors["test"]),
    )
    np.testing.assert_array_equal(np.bincount(test_groups), [100] * 4)


def test_split_renders_its_factors_with_consistent_labels(dataset):
    split = dataset.split("validation")
    assert split.images.shape == (400, 64, 64, 3)
    assert split.images.dtype == np.float32
    np.testing.assert_array_equal(
        split.images[:5], dataset.observations(split.factors[:5])
    )
    labels = split.labels
    np.testing.assert_array_equal(labels["label"], spurious.labels_of(split.factors))
    np.testing.assert_array_equal(
        labels["group"], 2 * labels["label"] + labels["attribute"]
    )
    np.testing.assert_array_equal(split.inputs(np.array([3, 1])), split.images[[3, 1]])
    assert len(split) == 400 and split.name == "validation"
    with pytest.raises(ValueError, match="Unknown split"):
        dataset.split("val")


def test_splits_are_a_function_of_split_seed():
    a = spurious.SpuriousShapes3D(split_seed=1, **SMALL)
    b = spurious.SpuriousShapes3D(split_seed=1, **SMALL)
    c = spurious.SpuriousShapes3D(split_seed=2, **SMALL)
    np.testing.assert_array_equal(a._split_factors["test"], b._split_factors["test"])
    assert not np.array_equal(a._split_factors["test"], c._split_factors["test"])


def test_sample_factors_uniform_for_evaluation_and_biased_for_training(dataset):
    rng = np.random.default_rng(0)
    uniform = dataset.sample_factors(20000, rng)
    agreement = np.mean(spurious.labels_of(uniform) == spurious.attributes_of(uniform))
    assert abs(agreement - 0.5) < 0.015
    # Uniform draws cover the grid, far beyond the 2,000 training scenes.
    assert len(np.unique(uniform, axis=0)) > 10000

    assert dataset.train_correlation == pytest.approx(0.9)
    biased = dataset.sample_factors(20000, rng, correlation=0.9)
    agreement = np.mean(spurious.labels_of(biased) == spurious.attributes_of(biased))
    assert abs(agreement - 0.95) < 0.006
    train_rows = {tuple(row) for row in dataset._split_factors["train"]}
    assert all(tuple(row) in train_rows for row in biased[:500])

    with pytest.raises(ValueError, match="correlation"):
        dataset.sample_factors(10, rng, correlation=0.5)


def test_episode_sampler_draws_biased_episodes_and_unbiased_held_out_ones(dataset):
    kwargs = dict(
        num_tasks=4,
        support_size=64,
        query_size=8,
        label_type="binary",
        task_support="fixed",
        num_relevant=2,
    )
    biased = data.EpisodeSampler(dataset, correlation=0.9, **kwargs)
    uniform = data.EpisodeSampler(dataset, correlation=0.0, **kwargs)

    def agreement(sampler):
        factors = np.concatenate(
            [sampler(step).support_factors.reshape(-1, 6) for step in range(8)]
        )
        return np.mean(spurious.labels_of(factors) == spurious.attributes_of(factors))

    assert agreement(biased) > 0.92
    assert abs(agreement(uniform) - 0.5) < 0.05


def test_bad_agreement_is_rejected():
    with pytest.raises(ValueError, match="agreement must be in"):
        spurious.SpuriousShapes3D(agreement=1.0)


def test_the_label_and_attribute_factors_can_be_other_factors():
    dataset = spurious.SpuriousShapes3D(
        agreement=0.99, label_factor="scale", attribute_factor="wall_hue", **SMALL
    )
    train = dataset._split_factors["train"]
    large = (train[:, 3] >= 4).astype(np.int32)  # scale 1.04-1.25
    warm_wall = (train[:, 1] >= 5).astype(np.int32)
    np.testing.assert_array_equal(spurious.labels_of(train, "scale"), large)
    assert np.mean(large) == 0.5
    assert np.mean(large == warm_wall) == 0.99
    # The default factors are free: every shape and floor hue occurs.
    assert set(train[:, 4]) == {0, 1, 2, 3} and len(set(train[:, 0])) == 10
    split = dataset.split("test")
    np.testing.assert_array_equal(split.labels["label"], split.factors[:, 3] >= 4)
    np.testing.assert_array_equal(np.bincount(split.labels["group"]), [100] * 4)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"train_size": 100, "agreement": 0.995}, r"train split .*group 1 empty"),
        ({"label_factor": "orientation"}, "odd number of values"),
        ({"attribute_factor": "shape"}, "both 'shape'"),
        ({"label_factor": "size"}, "Unknown factor 'size'"),
    ],
)
def test_bad_benchmark_options_are_named(options, message):
    with pytest.raises(ValueError, match=message):
        spurious.SpuriousShapes3D(**options)


def test_the_scale_experiment_targets_scale_at_99_percent_agreement():
    root = os.path.join(os.path.dirname(__file__), "..", "experiments")
    config = configs.load_experiment(os.path.join(root, "spurious_scale.py"))()
    config_validation.validate_config(config)
    options = {**config.data.options.to_dict(), **SMALL}
    dataset = data.ground_truth(config.data.name, **options)
    assert dataset.label_factor == "scale" and dataset.agreement == 0.99
    assert np.isclose(dataset.train_correlation, config.data.correlation)
