"""Transfer evaluation, its baselines and the spurious benchmark runner."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from test_train import shrink

from sparse_shared_jax import bilevel, configs, data, sweep, train, transfer
from sparse_shared_jax.trainers import early_stopping, erm


def spurious_features(num, agreement, rng, noise=0.2):
    """Known-answer features [num, 3]: label + noise, attribute + noise, noise.

    Labels are balanced; the attribute equals the label on a fraction
    `agreement` of the examples. Returns (features, labels, groups).
    """
    labels = rng.permutation(np.arange(num) % 2)
    agrees = rng.random(num) < agreement
    attributes = np.where(agrees, labels, 1 - labels)
    features = np.stack(
        [
            labels + noise * rng.standard_normal(num),
            attributes + noise * rng.standard_normal(num),
            rng.standard_normal(num),
        ],
        axis=1,
    ).astype(np.float32)
    return features, labels, 2 * labels + attributes


@pytest.fixture(scope="module")
def splits():
    rng = np.random.default_rng(0)
    return {
        "train": spurious_features(2000, 0.95, rng),
        "validation": spurious_features(400, 0.5, rng),
        "test": spurious_features(2000, 0.5, rng),
    }


def test_sparse_head_picks_the_causal_feature(splits):
    features, labels, _ = splits["train"]
    head = transfer.fit_sparse_head(features, labels, alpha=0.7)
    assert head.num_active == 1
    assert head.weights[0] > 0
    test_features, test_labels, test_groups = splits["test"]
    scores = transfer.group_scores(head, test_features, test_labels, test_groups)
    assert scores["worst_group"] > 0.95


def test_head_on_the_spurious_feature_fails_the_minority_groups(splits):
    features, labels, _ = splits["train"]
    head = transfer.fit_sparse_head(features[:, 1:2], labels, alpha=0.0)
    test_features, test_labels, test_groups = splits["test"]
    scores = transfer.group_scores(
        head, test_features[:, 1:2], test_labels, test_groups
    )
    assert 0.4 < scores["average"] < 0.6
    assert scores["worst_group"] < 0.05
    # Groups 1 (label 0, attribute 1) and 2 (label 1, attribute 0) fail.
    assert scores["per_group"][1] < 0.05 and scores["per_group"][2] < 0.05
    assert scores["per_group"][0] > 0.95 and scores["per_group"][3] > 0.95


def test_selection_on_validation_keeps_a_head_that_is_robust(splits):
    selection = transfer.select_sparse_head(
        *splits["train"][:2], *splits["validation"], alphas=(0.0, 0.1, 0.5, 0.9)
    )
    assert set(selection.scores) == {0.0, 0.1, 0.5, 0.9}
    best_validation = max(s["worst_group"] for s in selection.scores.values())
    assert selection.scores[selection.alpha]["worst_group"] == best_validation
    scores = transfer.group_scores(selection.head, *splits["test"])
    assert scores["worst_group"] > 0.95
    assert abs(selection.head.weights[0]) > 10 * abs(selection.head.weights[1])


def test_unpenalised_head_is_a_stationary_point(float64):
    rng = np.random.default_rng(1)
    features = rng.standard_normal((300, 4))
    labels = (features @ [1.0, -0.5, 0.0, 0.2] + rng.standard_normal(300) > 0).astype(
        int
    )
    ridge = 1e-2
    head = transfer.fit_sparse_head(features, labels, alpha=0.0, ridge=ridge, tol=1e-10)
    z = (features - head.mean) / head.std

    def objective(w, b):
        logits = z @ w + b
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, labels)) + (
            0.5 * ridge * jnp.sum(w**2)
        )

    grad_w, grad_b = jax.grad(objective, argnums=(0, 1))(
        jnp.asarray(head.weights), jnp.asarray(head.bias)
    )
    assert float(jnp.max(jnp.abs(grad_w))) < 1e-5
    assert abs(float(grad_b)) < 1e-5


def test_lasso_path_starts_with_the_causal_feature_and_bad_input_is_named(splits):
    features, labels, _ = splits["train"]
    # Just below lambda_max only the feature with the largest gradient enters.
    head = transfer.fit_sparse_head(features, labels, alpha=0.99)
    assert head.num_active == 1 and head.weights[0] > 0
    with pytest.raises(ValueError, match="every class present"):
        transfer.fit_sparse_head(features, np.zeros_like(labels), alpha=0.1)
    with pytest.raises(ValueError, match="alpha must be in"):
        transfer.fit_sparse_head(features, labels, alpha=1.0)
    with pytest.raises(ValueError, match="features must be"):
        transfer.fit_sparse_head(features[:, 0], labels, alpha=0.1)


def test_three_class_head_uses_only_the_informative_feature_rows():
    # Class c sits at mean 2c on feature 0; features 1-3 are noise.
    rng = np.random.default_rng(3)
    labels = np.arange(900) % 3
    features = rng.standard_normal((900, 4)).astype(np.float32)
    features[:, 0] += 2.0 * labels
    head = transfer.fit_sparse_head(features, labels, alpha=0.5)
    assert head.weights.shape == (4, 3) and head.bias.shape == (3,)
    # Group lasso over rows: the noise features are dropped for all classes.
    assert head.num_active == 1 and np.any(head.weights[0] != 0)
    # Bayes accuracy of means 2 apart at unit noise: 1 - (4/3) Phi(-1) = 0.79.
    assert (head.predict(features) == labels).mean() > 0.7
    dense = transfer.fit_sparse_head(features, labels, alpha=0.0)
    assert dense.num_active == 4 and (dense.predict(features) == labels).mean() > 0.75
    with pytest.raises(ValueError, match="every class present"):
        transfer.fit_sparse_head(features, np.where(labels == 1, 2, labels), 0.1)


def test_balanced_indices_cut_every_group_to_the_smallest():
    groups = np.array([0] * 10 + [1] * 3 + [2] * 7)
    keep = transfer.balanced_indices(groups, np.random.default_rng(0))
    np.testing.assert_array_equal(np.bincount(groups[keep]), [3, 3, 3])
    assert len(np.unique(keep)) == len(keep)


def test_last_layer_retraining_recovers_the_label_from_erm_like_features():
    rng = np.random.default_rng(2)
    # ERM-like features: the attribute sharp, the label weak and noisy.
    features, labels, groups = spurious_features(800, 0.5, rng, noise=0.1)
    features[:, 0] = labels + 0.3 * rng.standard_normal(800)
    erm_like_head = transfer.LinearHead(
        np.array([0.2, 5.0, 0.0]), -2.6, np.zeros(3), np.ones(3)
    )
    test = spurious_features(2000, 0.5, rng, noise=0.1)
    test[0][:, 0] = test[1] + 0.3 * rng.standard_normal(2000)
    assert transfer.group_scores(erm_like_head, *test)["worst_group"] < 0.05
    selection = transfer.last_layer_retraining(
        features, labels, groups, alphas=(0.0, 0.1, 0.3), seed=0
    )
    assert transfer.group_scores(selection.head, *test)["worst_group"] > 0.9
    assert selection.alpha in (0.0, 0.1, 0.3)


class ArraySplit:
    """A labelled split held in memory (the data.labelled protocol): groups
    2 * label + attribute, or the labels when there is no attribute."""

    def __init__(self, inputs, labels, attributes=None):
        self._inputs = inputs
        if attributes is None:
            attributes, groups = labels, labels
        else:
            groups = (2 * labels + attributes).astype(np.int32)
        self.labels = {"label": labels, "attribute": attributes, "group": groups}

    def __len__(self):
        return len(self._inputs)

    def inputs(self, rows):
        return self._inputs[np.asarray(rows)]


class _ToyTarget(data.GroundTruthDataset):
    """Vectors [5] with a target of 2 (x0 > x1) or 3 (argmax of x0..x2) classes.

    Only its labelled splits are used (by the ERM trainer).
    """

    factor_names = ("a", "b")
    factor_sizes = (2, 2)
    observation_shape = (5,)

    def __init__(self, num_classes=2):
        self.num_classes = num_classes

    def observations(self, factors):
        return np.zeros((len(factors), 5), np.float32)

    def labelled_splits(self):
        splits = {}
        for index, name in enumerate(("train", "validation", "test")):
            rng = np.random.default_rng([self.num_classes, index])
            inputs = rng.standard_normal((512, 5)).astype(np.float32)
            if self.num_classes == 2:
                labels = (inputs[:, 0] - inputs[:, 1] > 0).astype(np.int32)
            else:
                labels = np.argmax(inputs[:, :3], axis=1).astype(np.int32)
            splits[name] = ArraySplit(inputs, labels)
        return splits


data.register_ground_truth("test_toy_target", _ToyTarget)


def toy_method_config(name, options, steps):
    """A vector experiment whose baselines train `steps` steps on the
    labelled splits of the registered dataset `name`."""
    config = configs.base_config()
    config.data.name = name
    config.data.options = options
    config.model.num_features = 4
    config.model.options.hidden_sizes = (32,)
    config.log_every_steps = 50
    config.checkpoint.every_steps = 100
    config.transfer = configs.transfer_config(alphas=(0.0,))
    config.transfer.erm_steps = steps
    config.transfer.erm_learning_rate = 1e-2
    return config


def toy_erm_config(num_classes=2, steps=300):
    """The ERM run of a vector experiment on the toy target."""
    options = {"num_classes": num_classes}
    return erm.erm_config(toy_method_config("test_toy_target", options, steps))


@pytest.mark.parametrize("num_classes, accuracy", [(2, 0.95), (3, 0.9)])
def test_erm_trainer_learns_the_target_and_reads_it_back(
    num_classes, accuracy, tmp_path
):
    config = toy_erm_config(num_classes)
    final = train.train_and_evaluate(config, str(tmp_path))
    assert final["step"] == 300 and np.isfinite(final["train/loss"])
    model = erm.load(config, str(tmp_path))
    assert model.head.weights.shape == ((4,) if num_classes == 2 else (4, 3))
    test = _ToyTarget(num_classes).labelled_splits()["test"]
    features = np.asarray(
        model.encoder.apply_fn(model.encoder.params, test.inputs(np.arange(512)))
    )
    assert np.mean(model.head.predict(features) == test.labels["label"]) > accuracy


@pytest.mark.slow
def test_erm_trainer_resumes_to_the_same_parameters(tmp_path):
    config = toy_erm_config(steps=120)
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    train.train_and_evaluate(config, straight)
    config.num_train_steps = 50  # stopped early, then continued
    train.train_and_evaluate(config, resumed)
    config.num_train_steps = 120
    train.train_and_evaluate(config, resumed)
    a, b = erm.load(config, straight), erm.load(config, resumed)
    jax.tree.map(np.testing.assert_array_equal, a.encoder.params, b.encoder.params)
    np.testing.assert_array_equal(a.head.weights, b.head.weights)


def test_erm_minibatches_cover_each_pass_once_and_restart_deterministically():
    split = ArraySplit(np.zeros((10, 5), np.float32), np.zeros(10, np.int32))
    batches = erm.ErmBatches(split, batch_size=3, seed=0)
    first_pass = np.concatenate([batches.rows(step) for step in range(3)])
    assert len(np.unique(first_pass)) == 9  # 3 batches of 3; one row skipped
    later = batches.rows(7)  # the second batch of the third pass
    np.testing.assert_array_equal(
        erm.ErmBatches(split, batch_size=3, seed=0).rows(7), later
    )
    np.testing.assert_array_equal(batches.rows(1), first_pass[3:6])  # backwards
    with pytest.raises(ValueError, match="erm_batch_size must be in"):
        erm.ErmBatches(split, batch_size=11, seed=0)


def tiny_config(argument):
    """The spurious benchmark's config, shrunk to seconds: tiny splits, 2 steps."""
    get_config = configs.load_experiment(
        os.path.join(
            os.path.dirname(__file__), "..", "experiments", "spurious_shapes3d.py"
        )
    )
    config = shrink(get_config(argument))
    config.eval_every_steps = 2
    config.checkpoint.every_steps = 2
    config.episode.support_size = 8
    config.episode.query_size = 4
    config.data.options.train_size = 200
    config.data.options.validation_size = 80
    config.data.options.test_size = 80
    config.model.num_features = 4
    config.model.options = {"channels": (4, 4, 4, 4), "hidden_size": 16}
    config.transfer.alphas = (0.0, 0.3)
    config.transfer.head_maxiter = 100
    config.transfer.erm_steps = 3
    config.transfer.erm_batch_size = 16
    config.transfer.erm_eval_every_steps = 2
    config.transfer.group_dro = True
    return config


@pytest.mark.slow
def test_spurious_benchmark_runs_end_to_end_and_reruns_without_training(
    tmp_path, monkeypatch
):
    results = sweep.run_sweep(tiny_config, str(tmp_path), ["full"], seeds=1)
    (final,) = results["full"]
    heads = ("sparse_head", "method_last_layer", "erm", "erm_last_layer", "group_dro")
    for head in heads:
        average = final[f"transfer/{head}/test/average"]
        assert 0.0 <= final[f"transfer/{head}/test/worst_group"] <= average <= 1.0
    run_dir = tmp_path / "full_seed0"
    with open(run_dir / "transfer.json") as f:
        record = json.load(f)
    # The baselines are early-stopped: validated at step 2 and at the end.
    for baseline in ("erm", "group_dro"):
        selection = early_stopping.read_selection(str(run_dir / baseline))
        assert record[baseline]["step"] == selection["step"] in (2, 3)
        assert final[f"transfer/{baseline}/step"] == selection["step"]
    assert len(record["group_dro"]["weights"]) == 4  # k
    assert set(record["sparse_head"]["test"]["per_group"]) == {"0", "1", "2", "3"}
    assert len(record["features"]["erm"]["label_correlation"]) == 4  # k
    assert (run_dir / "erm" / "checkpoints" / "3").is_dir()

    # Rerunning trains nothing (neither encoder) and gives the same numbers.
    def refuse(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(bilevel, "train_step", refuse)
    monkeypatch.setattr(erm, "train_step", refuse)
    again = train.train_and_evaluate(tiny_config("seed=0"), str(run_dir))
    for key, value in final.items():
        if key.startswith("transfer/"):
            assert again[key] == value, key
    table = sweep.markdown_table(results, sweep.TRANSFER_COLUMNS)
    assert "| full | 1 |" in table and "ERM worst" in table


def test_flattened_record_has_the_scores_steps_and_feature_maxima():
    scores = {"average": 0.9, "worst_group": 0.5, "per_group": {"0": 0.5}}
    record = {
        "num_examples": {"test": 10},
        "sparse_head": {"alpha": 0.1, "num_active": 2, "weights": [], "test": scores},
        "erm": {
            "alpha": None,
            "num_active": 4,
            "weights": [],
            "step": 300,
            "test": scores,
        },
        "features": {
            "method": {
                "label_correlation": [0.2, 0.8],
                "attribute_correlation": [0.9, 0.1],
            },
        },
    }
    flat = transfer.flatten_record(record)
    assert flat == {
        "transfer/features/method/max_label_correlation": 0.8,
        "transfer/features/method/max_attribute_correlation": 0.9,
        "transfer/sparse_head/alpha": 0.1,
        "transfer/sparse_head/num_active": 2,
        "transfer/sparse_head/test/average": 0.9,
        "transfer/sparse_head/test/worst_group": 0.5,
        "transfer/erm/num_active": 4,
        "transfer/erm/step": 300,
        "transfer/erm/test/average": 0.9,
        "transfer/erm/test/worst_group": 0.5,
    }
    table = sweep.markdown_table({"full": [flat]}, sweep.FEATURE_COLUMNS)
    assert "| full | 1 | 0.800 | 0.900 | – | – |" in table
