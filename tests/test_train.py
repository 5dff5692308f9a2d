"""End-to-end checks of the training entry point on tiny settings."""

import glob
import json
import logging
import os
import subprocess
import sys

import jax
import ml_collections
import numpy as np
import pytest

from sparse_shared_jax import config_validation, configs, data, loop, train
from sparse_shared_jax.trainers import ground_truth

EXPERIMENTS_DIR = os.path.join(os.path.dirname(__file__), "..", "experiments")
ALL_EXPERIMENTS = sorted(glob.glob(os.path.join(EXPERIMENTS_DIR, "*.py")))
# The fast vector-data experiment, for the tests that run one config.
VECTOR_EXPERIMENT = os.path.join(EXPERIMENTS_DIR, "nonlinear_mixing.py")


def load_config(path, argument=None):
    """get_config(argument) of an experiment file."""
    return configs.load_experiment(path)(argument)


# Ground-truth experiments; the others meta-train on real benchmarks
# (tests/test_benchmark_train.py).
EXPERIMENTS = [
    path
    for path in ALL_EXPERIMENTS
    if not config_validation.is_benchmark_config(load_config(path))
]


def shrink(config):
    """Two steps on a tiny episode with a small evaluation."""
    config.num_train_steps = 2
    config.log_every_steps = 1
    config.episode.num_tasks = 2
    config.episode.support_size = 16
    config.episode.query_size = 8
    config.inner.maxiter = 20
    config.eval.num_samples = 200
    config.eval.final_num_train = 200
    config.eval.final_num_test = 100
    # Gradient-boosted DCI (the standard) fits 100 trees per class and factor:
    # ~15 s on 200 points of the vector data, minutes on dSprites' 40
    # orientations. Random forest here; the standard protocol runs end to end
    # on the vector data in test_every_experiment_config_runs_two_steps.
    config.eval.final_dci_regressor = "random_forest"
    config.eval.intervention_num_train = 10
    config.eval.intervention_num_eval = 10
    config.eval_every_steps = 1
    config.checkpoint.every_steps = 1
    if "transfer" in config:
        config.transfer.erm_steps = 2
    return config


@pytest.mark.parametrize("path", EXPERIMENTS, ids=os.path.basename)
@pytest.mark.slow
def test_every_experiment_config_runs_two_steps(path, tmp_path):
    # The ablations differ in weights only (configs.apply_ablation), not in
    # code paths that depend on the data: every ablation on the fast vector
    # experiment, the full method on the image ones.
    ablations = configs.ABLATIONS if path == VECTOR_EXPERIMENT else ("full",)
    for ablation in ablations:
        config = shrink(load_config(path, ablation))
        standard = path == VECTOR_EXPERIMENT and ablation == "full"
        if standard:  # the final evaluation's standard protocol, end to end
            config.eval.final_dci_regressor = "gbt"
        workdir = tmp_path / ablation
        result = train.train_and_evaluate(config, str(workdir))
        with open(workdir / "metrics.json") as f:
            assert json.load(f) == result
        assert result["step"] == 2
        assert 0.0 <= result["eval/mcc"] <= 1.0
        if standard:
            assert 0.0 <= result["eval/dci_disentanglement"] <= 1.0


def test_config_value_out_of_range_is_rejected_before_training(tmp_path):
    config = shrink(load_config(VECTOR_EXPERIMENT))
    config.inner.alpha = 1.5
    with pytest.raises(ValueError, match="alpha must be in"):
        train.train_and_evaluate(config, str(tmp_path))
    config = shrink(load_config(VECTOR_EXPERIMENT))
    config.data.name = "mnist"
    with pytest.raises(ValueError, match=r"config.data.name must be one of"):
        train.train_and_evaluate(config, str(tmp_path))
    config = shrink(load_config(VECTOR_EXPERIMENT))
    config.data.name = "celeba"
    with pytest.raises(ValueError, match="configs.benchmark_config"):
        train.train_and_evaluate(config, str(tmp_path))
    config = shrink(load_config(VECTOR_EXPERIMENT))
    config.trainer = "meta"
    with pytest.raises(ValueError, match=r"config.trainer must be one of \('ground"):
        train.train_and_evaluate(config, str(tmp_path))


def test_command_line_rejects_misspelt_override(tmp_path):
    command = [
        sys.executable,
        "-m",
        "sparse_shared_jax.main",
        f"--config={VECTOR_EXPERIMENT}",
        f"--workdir={tmp_path}",
        "--config.inner.alfa=0.3",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "alfa" in result.stderr


class _SquaredFactors(data.GroundTruthDataset):
    """A user's dataset: 3 factors, observations (v, v**2) of their values."""

    factor_names = ("a", "b", "c")
    factor_sizes = (4, 5, 6)
    observation_shape = (6,)

    def observations(self, factors):
        values = self.factor_values(factors)
        return np.concatenate([values, values**2], axis=1).astype(np.float32)


@pytest.mark.slow
def test_a_registered_user_dataset_trains_and_evaluates_unchanged(tmp_path):
    data.register_ground_truth("test_squared_factors", _SquaredFactors)
    config = shrink(load_config(VECTOR_EXPERIMENT))
    config.data.name = "test_squared_factors"
    config.data.options = ml_collections.ConfigDict()
    result = train.train_and_evaluate(config, str(tmp_path))
    assert np.isfinite(result["eval/mcc"]) and np.isfinite(result["eval/sap"])


@pytest.mark.slow
def test_scalars_reach_tensorboard_event_files(tmp_path):
    """The TensorBoard path (CI installs TensorFlow, so it must not skip there)."""
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("TensorFlow is not installed (the [tensorboard] extra)")
    from tensorboard.backend.event_processing import event_accumulator

    train.train_and_evaluate(shrink(load_config(VECTOR_EXPERIMENT)), str(tmp_path))
    events = event_accumulator.EventAccumulator(str(tmp_path / "tensorboard"))
    events.Reload()
    tags = events.Tags()["tensors"] + events.Tags()["scalars"]
    assert "train/query_loss" in tags and "eval/mcc" in tags


def test_config_arguments_set_ablation_and_fields():
    config = load_config(
        VECTOR_EXPERIMENT,
        "sparse_only,rho=0.5,share_variant=per_feature,share_placement=inner,"
        "alpha=0.2,seed=3",
    )
    assert config.share.weight == 0.0 and config.inner.alpha == 0.2
    assert config.data.correlation == 0.5 and config.seed == 3
    assert config.share.variant == "per_feature"
    assert config.share.placement == "inner"
    with pytest.raises(ValueError, match="Unknown config argument 'beta'"):
        load_config(VECTOR_EXPERIMENT, "beta=1")
    with pytest.raises(ValueError, match="Unknown ablation 'dense'"):
        load_config(VECTOR_EXPERIMENT, "dense")


def test_config_argument_sets_any_dotted_field_as_its_type():
    config = load_config(
        VECTOR_EXPERIMENT,
        "inner.maxiter=50,inner.alpha=0.2,share.variant=per_feature,"
        "model.options.hidden_sizes=64;32",
    )
    assert config.inner.maxiter == 50 and isinstance(config.inner.maxiter, int)
    assert config.inner.alpha == 0.2
    assert config.share.variant == "per_feature"
    assert tuple(config.model.options.hidden_sizes) == (64, 32)
    with pytest.raises(ValueError, match="No config field 'inner.alfa'"):
        load_config(VECTOR_EXPERIMENT, "inner.alfa=0.3")
    with pytest.raises(ValueError, match="No config section 'iner'"):
        load_config(VECTOR_EXPERIMENT, "iner.alpha=0.3")
    with pytest.raises(ValueError, match=r"config.inner.maxiter='1.5'.*int"):
        load_config(VECTOR_EXPERIMENT, "inner.maxiter=1.5")


def test_pretrained_weights_replace_the_initial_encoder(tmp_path):
    from sparse_shared_jax import checkpoints
    from sparse_shared_jax.models import pretrained

    config = shrink(load_config(VECTOR_EXPERIMENT))
    job = ground_truth.prepare(config, str(tmp_path))
    state = job.init_state()
    weights = jax.tree.map(lambda p: p + 1.0, state.params)
    path = str(tmp_path / "encoder.msgpack")
    pretrained.save_variables(path, weights)
    config.model.pretrained_path = path
    checkpointer = checkpoints.Checkpointer(str(tmp_path / "run"), max_to_keep=1)
    loaded = loop.resume_or_start(config, state, checkpointer)
    for got, want in zip(
        jax.tree.leaves(loaded.params), jax.tree.leaves(weights), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    config.model.pretrained_path = str(tmp_path / "missing.msgpack")
    with pytest.raises((FileNotFoundError, ValueError), match="missing.msgpack"):
        loop.resume_or_start(config, state, checkpointer)
    checkpointer.close()


def test_collapse_warning_when_heads_use_fewer_features_than_tasks_need():
    config = load_config(VECTOR_EXPERIMENT)
    dataset = data.ground_truth(config.data.name, **config.data.options.to_dict())
    sampler = ground_truth.make_episode_sampler(config, dataset)
    warnings_at = ground_truth.collapse_warnings(sampler, "usage")
    support = sampler.draw(sampler.rng(9)).tasks.support  # the tasks of step 10
    needed, per_task = int(support.any(axis=0).sum()), support.sum(axis=1).mean()
    healthy = {"distinct_features": needed, "active_features": per_task}
    assert warnings_at(10, healthy) == []
    (too_few,) = warnings_at(10, {**healthy, "distinct_features": needed - 1})
    assert "possible collapse" in too_few and "share.weight" in too_few
    assert "share.variant='count'" in too_few
    # A run whose sharing term already counts features is not told to.
    (advice,) = ground_truth.collapse_warnings(sampler, "count")(
        10, {**healthy, "distinct_features": needed - 1}
    )
    assert "share.variant" not in advice
    assert warnings_at(10, {**healthy, "active_features": 0.5 * per_task})


def test_solver_warning_names_maxiter_when_tasks_do_not_converge():
    config = load_config(VECTOR_EXPERIMENT)
    values = {"inner_unconverged": 0.5, "inner_optimality_error": 1e-3}
    (warning,) = loop.solver_warnings(config, values)
    assert "inner.maxiter=300" in warning and "50%" in warning
    assert loop.solver_warnings(config, {**values, "inner_unconverged": 0.0}) == []


def test_a_persisting_warning_is_repeated_every_few_log_steps(caplog):
    """Logged when it appears, then every WARNING_REPEAT_LOG_STEPS log steps
    while it persists; at once again after a log step without it."""
    throttle = loop._WarningThrottle()
    every = loop.WARNING_REPEAT_LOG_STEPS
    present = [True] * (2 * every + 1) + [False] + [True]
    logged_at = []
    for index, warn in enumerate(present):
        with caplog.at_level(logging.WARNING):
            caplog.clear()
            throttle.log(index, {"solver": ["slow"] if warn else [], "trainer": []})
            if any("slow" in record.getMessage() for record in caplog.records):
                logged_at.append(index)
    assert logged_at == [0, every, 2 * every, 2 * every + 2]
