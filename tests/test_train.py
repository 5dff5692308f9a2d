"""End-to-end checks of the training entry point on tiny settings."""

import glob
import json
import os
import subprocess
import sys

import pytest

from sparse_shared_jax import train

EXPERIMENTS = sorted(
    glob.glob(os.path.join(os.path.dirname(__file__), "..", "experiments", "*.py"))
)


def load_experiment(path):
    """The namespace of an experiment file (get_config and VARIANTS)."""
    namespace = {}
    with open(path) as f:
        exec(compile(f.read(), path, "exec"), namespace)
    return namespace


def load_config(path, variant=None):
    return load_experiment(path)["get_config"](variant)


def shrink(config):
    """Two steps on a tiny episode with a small evaluation."""
    config.num_train_steps = 2
    config.log_every_steps = 1
    config.episode.num_tasks = 2
    config.episode.support_size = 16
    config.episode.query_size = 8
    config.inner.maxiter = 20
    config.eval.num_samples = 200
    return config


@pytest.mark.parametrize("path", EXPERIMENTS, ids=os.path.basename)
def test_every_experiment_config_runs_two_steps(path, tmp_path):
    experiment = load_experiment(path)
    for variant in experiment.get("VARIANTS", (None,)):
        config = shrink(experiment["get_config"](variant))
        workdir = tmp_path / str(variant)
        result = train.train_and_evaluate(config, str(workdir))
        with open(workdir / "metrics.json") as f:
            assert json.load(f) == result
        assert result["step"] == 2
        assert 0.0 <= result["eval/mcc"] <= 1.0


def test_config_value_out_of_range_is_rejected_before_training(tmp_path):
    config = shrink(load_config(EXPERIMENTS[0]))
    config.inner.alpha = 1.5
    with pytest.raises(ValueError, match="alpha must be in"):
        train.train_and_evaluate(config, str(tmp_path))
    config = shrink(load_config(EXPERIMENTS[0]))
    config.data.name = "mnist"
    with pytest.raises(ValueError, match=r"config.data.name must be one of"):
        train.train_and_evaluate(config, str(tmp_path))


def test_command_line_rejects_misspelt_override(tmp_path):
    command = [
        sys.executable,
        "-m",
        "sparse_shared_jax.main",
        f"--config={EXPERIMENTS[0]}",
        f"--workdir={tmp_path}",
        "--config.inner.alfa=0.3",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "alfa" in result.stderr
