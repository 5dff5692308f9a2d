"""The baselines' training: group DRO and early stopping (trainers/erm.py)."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from test_transfer import ArraySplit, toy_method_config

from sparse_shared_jax import checkpoints, data, train, transfer
from sparse_shared_jax.trainers import early_stopping, erm


class _SpuriousToy(data.GroundTruthDataset):
    """Vectors [5] whose label is seen through a noisy feature (x0) and whose
    attribute through a clean one (x1); the attribute agrees with the label
    on 97% of the training split and on half of the validation and test
    splits. ERM leans on x1 and fails the minority groups."""

    factor_names = ("a", "b")
    factor_sizes = (2, 2)
    observation_shape = (5,)

    def observations(self, factors):
        return np.zeros((len(factors), 5), np.float32)

    def labelled_splits(self):
        splits = {}
        for index, (name, size, agreement) in enumerate(
            (("train", 2000, 0.97), ("validation", 800, 0.5), ("test", 2000, 0.5))
        ):
            rng = np.random.default_rng([7, index])
            labels = rng.permutation(np.arange(size) % 2).astype(np.int32)
            agrees = rng.random(size) < agreement
            attributes = np.where(agrees, labels, 1 - labels).astype(np.int32)
            inputs = rng.standard_normal((size, 5)).astype(np.float32)
            inputs[:, 0] += 1.5 * (2 * labels - 1)
            inputs[:, 1] = 2 * attributes - 1 + 0.1 * inputs[:, 1]
            splits[name] = ArraySplit(inputs, labels, attributes)
        return splits


data.register_ground_truth("test_spurious_toy", _SpuriousToy)


def spurious_toy_method_config(steps, every):
    """A method's config whose baselines train on the spurious toy."""
    config = toy_method_config("test_spurious_toy", {}, steps)
    config.transfer.erm_eval_every_steps = every
    return config


def spurious_toy_config(trainer, steps=400, every=100):
    """The config of a baseline's run on the spurious toy."""
    return erm.erm_config(spurious_toy_method_config(steps, every), trainer)


def test_group_dro_objective_raises_the_weights_of_the_worst_groups():
    losses = jnp.array([0.1, 2.0, 0.5, 0.0])
    weights = jnp.array([0.25, 0.25, 0.25, 0.25])
    loss, new = erm.group_dro_objective(losses, weights, step_size=0.5)
    expected = np.exp(0.5 * np.asarray(losses)) / np.exp(0.5 * losses).sum()
    np.testing.assert_allclose(new, expected, rtol=1e-6)
    np.testing.assert_allclose(loss, np.sum(expected * losses), rtol=1e-6)
    assert np.argmax(new) == 1
    # The gradient is the weighted sum of the groups' gradients: the weights
    # are constants of the step.
    grad = jax.grad(lambda g: erm.group_dro_objective(g, weights, 0.5)[0])(losses)
    np.testing.assert_allclose(grad, expected, rtol=1e-6)


def test_group_balanced_batches_draw_every_group_equally_and_reproducibly():
    groups = np.array([0] * 90 + [1] * 5 + [2] * 5)
    batches = erm.GroupBalancedBatches(groups, batch_size=300, seed=0)
    rows = np.concatenate([batches.rows(step) for step in range(20)])
    counts = np.bincount(groups[rows], minlength=3) / len(rows)
    np.testing.assert_allclose(counts, 1 / 3, atol=0.02)
    assert set(rows[groups[rows] == 1]) == set(range(90, 95))  # all members
    np.testing.assert_array_equal(
        erm.GroupBalancedBatches(groups, 300, seed=0).rows(7), batches.rows(7)
    )
    assert not np.array_equal(batches.rows(7), batches.rows(8))


def _test_scores(model, split="test"):
    target = _SpuriousToy().labelled_splits()[split]
    rows = np.arange(len(target))
    features = np.asarray(
        model.encoder.apply_fn(model.encoder.params, target.inputs(rows))
    )
    labels = target.labels
    return transfer.group_scores(model.head, features, labels["label"], labels["group"])


def test_group_dro_beats_erm_on_the_worst_group_of_a_spurious_toy(tmp_path):
    scores = {}
    for trainer in erm.BASELINES:
        config = spurious_toy_config(trainer, every=0)
        train.train_and_evaluate(config, str(tmp_path / trainer))
        scores[trainer] = _test_scores(erm.load(config, str(tmp_path / trainer)))
    assert scores["erm"]["worst_group"] < 0.75 < scores["erm"]["average"]
    assert scores["group_dro"]["worst_group"] > scores["erm"]["worst_group"] + 0.1


def test_early_stopping_keeps_the_best_validation_step(tmp_path):
    config = spurious_toy_config("erm", steps=400, every=100)
    workdir = str(tmp_path)
    final = train.train_and_evaluate(config, workdir)
    selection = early_stopping.read_selection(workdir)
    assert selection["step"] in (100, 200, 300, 400)
    assert final["selected_step"] == selection["step"]
    assert final["validation/worst_group"] == selection["worst_group"]
    # The selection is the best of the evaluations the run logged.
    logged = {}
    with open(os.path.join(workdir, "scalars.jsonl")) as f:
        for line in f:
            record = json.loads(line)
            if "eval/validation/worst_group" in record:
                logged[record["step"]] = record["eval/validation/worst_group"]
    logged[400] = final["last_step/validation/worst_group"]
    assert sorted(logged) == [100, 200, 300, 400]
    assert selection["worst_group"] == max(logged.values())
    # The loaded model is that step's and scores what was recorded.
    model = erm.load(config, workdir)
    assert model.step == selection["step"]
    validation = _test_scores(model, "validation")
    assert validation["worst_group"] == pytest.approx(selection["worst_group"])
    assert validation["average"] == pytest.approx(selection["average"])


def test_a_baseline_trained_without_early_stopping_is_not_early_stopped_later(
    tmp_path,
):
    config = spurious_toy_method_config(steps=200, every=0)
    model = erm.train_or_load(config, str(tmp_path))
    assert model.step == 200
    config.transfer.erm_eval_every_steps = 100
    with pytest.raises(ValueError, match="without early stopping"):
        erm.train_or_load(config, str(tmp_path))
    assert erm.train_or_load(config, str(tmp_path), erm.GROUP_DRO) is None


def test_a_run_from_before_the_baselines_settings_still_resumes(tmp_path):
    config = spurious_toy_method_config(steps=10, every=100)
    stored = json.loads(config.to_json())
    for field in ("erm_eval_every_steps", "group_dro", "dro_step_size"):
        del stored["transfer"][field]
    with open(tmp_path / checkpoints.CONFIG_FILE, "w") as f:
        json.dump(stored, f)
    # New fields at their defaults are how the old run behaved...
    checkpoints.check_workdir_config(str(tmp_path), config, write=False)
    # ...and switching group DRO on re-evaluates a finished run.
    config.transfer.group_dro = True
    checkpoints.check_workdir_config(str(tmp_path), config, write=False)
    config.transfer.dro_step_size = 0.1
    with pytest.raises(ValueError, match=r"transfer.dro_step_size: None -> 0.1"):
        checkpoints.check_workdir_config(str(tmp_path), config, write=False)


def test_read_config_keeps_a_datasets_options_and_fills_new_transfer_fields(tmp_path):
    config = spurious_toy_method_config(steps=10, every=100)
    config.data.options = {"agreement": 0.9}
    stored = json.loads(config.to_json())
    del stored["transfer"]["group_dro"]
    with open(tmp_path / checkpoints.CONFIG_FILE, "w") as f:
        json.dump(stored, f)
    read = checkpoints.read_config(str(tmp_path))
    # The base config's dataset options are another dataset's: not merged in.
    assert read.data.options.to_dict() == {"agreement": 0.9}
    assert read.transfer.group_dro is False  # the default, as the run behaved
    assert read.transfer.erm_steps == 10


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("erm_steps", 0, "transfer.erm_steps must be >= 1"),
        ("dro_step_size", 0.0, "transfer.dro_step_size must be > 0"),
        ("erm_learning_rate", -1.0, "transfer.erm_learning_rate must be > 0"),
    ],
)
def test_a_baseline_config_out_of_range_is_refused_naming_the_field(
    field, value, message
):
    config = spurious_toy_method_config(steps=10, every=5)
    config.transfer[field] = value
    with pytest.raises(ValueError, match=message):
        erm.validate(erm.erm_config(config, erm.GROUP_DRO))
