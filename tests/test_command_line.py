"""The command line of a new user: help, input errors, interrupts, resuming.

Every input error ends in one line on stderr and status 2, without a
traceback; SIGINT and SIGTERM stop after the current step with a checkpoint,
and the resumed run ends where an uninterrupted one does.
"""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from test_train_resume import EXPERIMENT, SMALL, final_params, latest_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_main(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "sparse_shared_jax.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
    )


def test_help_lists_the_experiments_and_the_argument_forms():
    result = run_main("--help")
    assert result.returncode == 0
    assert "shapes3d.py" in result.stdout and "nonlinear_mixing.py" in result.stdout
    assert "<section>.<field>=<value>" in result.stdout
    assert "Config reference" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["--config.inner.alfa=0.3"],
            "the config has no field 'inner.alfa' (did you mean 'inner.alpha'?)",
        ),
        (["--config.episode.num_tasks=0"], "config.episode.num_tasks must be >= 1"),
    ],
)
@pytest.mark.slow
def test_input_errors_are_one_line_without_a_traceback(tmp_path, args, message):
    result = run_main(f"--config={EXPERIMENT}", f"--workdir={tmp_path}", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1


@pytest.mark.slow
def test_config_argument_errors_and_missing_files_are_one_line(tmp_path):
    result = run_main(f"--config={EXPERIMENT}:beta=1", f"--workdir={tmp_path}")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "error: Unknown config argument 'beta'" in result.stderr
    result = run_main("--config=experiments/missing.py", f"--workdir={tmp_path}")
    assert result.returncode == 2
    assert "error: no config file experiments/missing.py" in result.stderr


@pytest.mark.slow
def test_sigterm_stops_with_a_checkpoint_and_the_resumed_run_matches(tmp_path):
    uninterrupted, interrupted = tmp_path / "uninterrupted", tmp_path / "interrupted"
    command = [
        sys.executable,
        "-m",
        "sparse_shared_jax.main",
        f"--config={EXPERIMENT}",
        *SMALL,
        "--config.checkpoint.every_steps=50",  # far apart: the stop saves its own
    ]
    subprocess.run(
        [*command, f"--workdir={uninterrupted}"], check=True, capture_output=True
    )
    process = subprocess.Popen(
        [*command, f"--workdir={interrupted}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    scalars = interrupted / "scalars.jsonl"
    deadline = time.time() + 300
    while not (scalars.exists() and scalars.read_text().count("\n") >= 2):
        assert time.time() < deadline and process.poll() is None
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    signalled = time.time()
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM
    assert time.time() - signalled < 30  # the current step, then a checkpoint
    stopped_at = latest_checkpoint(interrupted)
    assert 20 <= stopped_at < 120 and stopped_at % 50, stopped_at
    assert f"Stopped by SIGTERM after step {stopped_at}" in stdout
    assert "Resume with:" in stdout and "Traceback" not in stderr

    resumed = subprocess.run(
        [*command, f"--workdir={interrupted}"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert f"Resumed from checkpoint at step {stopped_at}" in resumed.stderr
    jax.tree.map(
        np.testing.assert_array_equal,
        final_params(interrupted, 120),
        final_params(uninterrupted, 120),
    )

    # The scalars logged after the checkpoint and again after resuming appear
    # once, as in the uninterrupted run.
    def steps(workdir):
        with open(workdir / "scalars.jsonl") as f:
            return [json.loads(line)["step"] for line in f]

    assert steps(interrupted) == steps(uninterrupted)

    # A finished run says so and only evaluates again.
    again = subprocess.run(
        [*command, f"--workdir={interrupted}"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert "Training finished at step 120 already" in again.stderr
    assert "Compiling the training step" not in again.stderr
    assert steps(interrupted) == steps(uninterrupted)
