"""Checkpointing, resuming after SIGKILL, and refusing bad restarts."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from sparse_shared_jax import checkpoints, configs, input_pipeline, loop, train

EXPERIMENT = os.path.join(
    os.path.dirname(__file__), "..", "experiments", "nonlinear_mixing.py"
)
SMALL = [
    "--config.num_train_steps=120",
    "--config.log_every_steps=10",
    "--config.eval_every_steps=1000",
    "--config.checkpoint.every_steps=10",
    "--config.episode.num_tasks=4",
    "--config.episode.support_size=32",
    "--config.episode.query_size=16",
    "--config.eval.num_samples=300",
    "--config.eval.final_num_train=200",
    "--config.eval.final_num_test=100",
    "--config.eval.final_dci_regressor=random_forest",
    "--config.eval.intervention_num_train=10",
    "--config.eval.intervention_num_eval=10",
]


def command(workdir):
    return [
        sys.executable,
        "-m",
        "sparse_shared_jax.main",
        f"--config={EXPERIMENT}",
        f"--workdir={workdir}",
        *SMALL,
    ]


def latest_checkpoint(workdir):
    directory = os.path.join(workdir, checkpoints.CHECKPOINT_DIR)
    if not os.path.isdir(directory):
        return 0
    steps = [int(name) for name in os.listdir(directory) if name.isdigit()]
    return max(steps, default=0)


def final_params(workdir, step):
    path = os.path.join(workdir, checkpoints.CHECKPOINT_DIR, str(step), "default")
    return ocp.StandardCheckpointer().restore(os.path.abspath(path))["params"]


@pytest.mark.slow
def test_sigkilled_run_resumes_and_matches_an_uninterrupted_run(tmp_path):
    uninterrupted, interrupted = tmp_path / "uninterrupted", tmp_path / "interrupted"
    subprocess.run(command(uninterrupted), check=True, capture_output=True, timeout=600)

    process = subprocess.Popen(
        command(interrupted), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while latest_checkpoint(interrupted) < 30 and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait() == -signal.SIGKILL  # killed mid-run, not finished
    killed_at = latest_checkpoint(interrupted)
    assert 30 <= killed_at < 120
    assert not os.path.exists(interrupted / "metrics.json")

    resumed = subprocess.run(
        command(interrupted), check=True, capture_output=True, text=True, timeout=600
    )
    assert f"Resumed from checkpoint at step {killed_at}" in resumed.stderr
    with open(uninterrupted / "metrics.json") as f:
        expected = json.load(f)
    with open(interrupted / "metrics.json") as f:
        assert json.load(f) == expected
    jax.tree.map(
        np.testing.assert_array_equal,
        final_params(interrupted, 120),
        final_params(uninterrupted, 120),
    )


def small_config(**changes):
    config = configs.load_experiment(EXPERIMENT)()
    for flag in SMALL:
        field, value = flag.removeprefix("--config.").split("=")
        *parents, name = field.split(".")
        section = config
        for parent in parents:
            section = section[parent]
        section[name] = type(section[name])(value)
    config.num_train_steps = 6
    config.log_every_steps = 5
    config.checkpoint.every_steps = 2
    for field, value in changes.items():
        section = config
        *parents, name = field.split(".")
        for parent in parents:
            section = section[parent]
        section[name] = value
    return config


@pytest.mark.slow
def test_restart_with_an_incompatible_config_is_refused(tmp_path):
    train.train_and_evaluate(small_config(), str(tmp_path))
    with pytest.raises(ValueError, match=r"different config \(inner.alpha: 0.3 -> 0.1"):
        train.train_and_evaluate(small_config(**{"inner.alpha": 0.1}), str(tmp_path))
    # Training longer is a compatible change: it resumes.
    result = train.train_and_evaluate(small_config(num_train_steps=8), str(tmp_path))
    assert result["step"] == 8


@pytest.mark.slow
def test_corrupt_checkpoint_is_named_in_the_error(tmp_path):
    train.train_and_evaluate(small_config(), str(tmp_path))
    step_dir = tmp_path / checkpoints.CHECKPOINT_DIR / "6"
    for root, _, files in os.walk(step_dir):
        for name in files:
            if name not in ("_CHECKPOINT_METADATA", "commit_success.txt"):
                with open(os.path.join(root, name), "wb") as f:
                    f.write(b"garbage")
    with pytest.raises(ValueError, match=r"Cannot restore checkpoint .*checkpoints/6"):
        train.train_and_evaluate(small_config(num_train_steps=8), str(tmp_path))


@pytest.mark.slow
def test_non_finite_loss_stops_with_the_step_and_keeps_the_last_checkpoint(
    tmp_path, monkeypatch
):
    read_episode = input_pipeline.EpisodeStream.__call__

    def poisoned_episode(self, step, sharding):
        episode = read_episode(self, step, sharding)
        if step == 4:  # the episode of the 5th update
            episode = episode._replace(support_x=episode.support_x * np.nan)
        return episode

    monkeypatch.setattr(input_pipeline.EpisodeStream, "__call__", poisoned_episode)
    with pytest.raises(
        loop.NonFiniteLossError, match=r"at step 5; .*Last good checkpoint: step 4"
    ):
        train.train_and_evaluate(small_config(), str(tmp_path))
    assert latest_checkpoint(tmp_path) == 4
    assert not os.path.exists(tmp_path / "metrics.json")
