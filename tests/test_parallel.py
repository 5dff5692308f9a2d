"""Multi-device and multi-process training, proven on CPU devices.

The device count of a JAX process is fixed when JAX starts, so the 8-device
and the multi-process checks run in subprocesses with
--xla_force_host_platform_device_count set.
"""

import json
import os
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from sparse_shared_jax import configs, parallel
from sparse_shared_jax.config_validation import validate_config

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Parameters after 3 SGD steps agree to this (float32, different reduction
# orders over 1 vs 8 devices; measured 8e-6 with parameters of size ~0.5).
PARAM_ATOL = 5e-5
# Losses of the two runs agree to this (measured 1e-5 at step 3).
LOSS_ATOL = 1e-4


def _env(num_devices: int) -> dict[str, str]:
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={num_devices}"
    env["JAX_PLATFORMS"] = "cpu"
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    "num_tasks, support, query, num_devices, expected",
    [
        (16, 32, 16, 8, (8, 1)),  # tasks split evenly
        (10, 32, 16, 8, (2, 4)),  # 2 task shards x 4 example shards
        (4, 16, 16, 8, (4, 2)),
        (3, 5, 7, 1, (1, 1)),  # one device takes anything
    ],
)
def test_mesh_shape_splits_tasks_then_examples(
    num_tasks, support, query, num_devices, expected
):
    assert parallel.mesh_shape(num_tasks, support, query, num_devices) == expected


def test_indivisible_episode_names_the_sizes_and_the_fix():
    with pytest.raises(ValueError) as error:
        parallel.mesh_shape(4, 31, 16, 8)
    message = str(error.value)
    for text in ("4 tasks", "31", "support_size", "8 devices", "multiple"):
        assert text in message


def test_fsdp_splits_large_arrays_along_their_largest_divisible_axis():
    mesh = parallel.episode_mesh(1, 1, 1)  # one device: mesh.size == 1
    tree = {
        "big": jax.ShapeDtypeStruct((256, 512), np.float32),
        "small": jax.ShapeDtypeStruct((10,), np.float32),
    }
    specs = parallel.state_shardings(tree, mesh, "fsdp")
    assert specs["big"].spec == jax.sharding.PartitionSpec(None, parallel.MESH_AXES)
    assert specs["small"].spec == jax.sharding.PartitionSpec()
    replicated = parallel.state_shardings(tree, mesh, "replicated")
    assert all(s.spec == jax.sharding.PartitionSpec() for s in replicated.values())


def test_config_rejects_an_unknown_param_sharding():
    config = configs.base_config()
    config.parallel.param_sharding = "zero3"
    with pytest.raises(ValueError, match="parallel.param_sharding"):
        validate_config(config)


def test_explicit_launch_needs_all_three_arguments():
    with pytest.raises(ValueError, match="--num_processes"):
        parallel.initialize_distributed("localhost:1234", None, 1)


def test_unreachable_coordinator_fails_fast_with_a_clear_message():
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="could not reach the coordinator"):
        parallel.initialize_distributed(f"localhost:{_free_port()}", 2, 1, timeout_s=2)
    assert time.monotonic() - start < 30


@pytest.mark.slow
def test_eight_devices_match_one_device_without_recompiling_or_host_transfers():
    # Cases: 16 tasks over 8 devices (tasks split, replicated parameters), and
    # 4 tasks x 16 examples (tasks and examples split, 'fsdp' parameters).
    # Inside the script every step after the first runs under
    # jax.transfer_guard('disallow'): any host transfer in the step raises.
    result = subprocess.run(
        [
            sys.executable,
            os.path.join(REPO, "tests", "_parallel_equivalence.py"),
            "3",
            "16,16,16,replicated",
            "4,16,16,fsdp",
        ],
        env=_env(8),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = next(x for x in result.stdout.splitlines() if x.startswith("REPORT "))
    report = json.loads(line[len("REPORT ") :])
    assert report["device_count"] == 8
    task_split, both_split = report["16,16,16,replicated"], report["4,16,16,fsdp"]
    assert task_split["mesh"] == {"tasks": 8, "examples": 1}
    assert both_split["mesh"] == {"tasks": 4, "examples": 2}
    assert any("tasks" in spec for spec in both_split["param_specs"])  # fsdp used
    for case in (task_split, both_split):
        assert case["compilations"] == [1, 1]
        assert case["max_param_difference"] < PARAM_ATOL
        assert case["max_param"] > 0.1  # the parameters are not trivially small
        np.testing.assert_allclose(
            case["losses_all"], case["losses_one"], rtol=0, atol=LOSS_ATOL
        )


def _main_command(workdir: str, num_steps: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "sparse_shared_jax.main",
        f"--config={os.path.join(REPO, 'experiments', 'nonlinear_mixing.py')}",
        f"--workdir={workdir}",
        f"--config.num_train_steps={num_steps}",
        "--config.log_every_steps=1",
        "--config.eval_every_steps=1000",
        "--config.checkpoint.every_steps=2",
        "--config.eval.num_samples=200",
        "--config.eval.final_num_train=200",
        "--config.eval.final_num_test=100",
        "--config.eval.final_dci_regressor=random_forest",
        "--config.eval.intervention_num_train=10",
        "--config.eval.intervention_num_eval=10",
        "--config.episode.num_tasks=8",
        "--config.episode.support_size=16",
        "--config.episode.query_size=16",
        "--config.inner.maxiter=100",
    ]


def _losses(workdir: str) -> dict[int, float]:
    losses = {}
    with open(os.path.join(workdir, "scalars.jsonl")) as f:
        for line in f:
            record = json.loads(line)
            if "train/loss" in record:
                losses[record["step"]] = record["train/loss"]
    return losses


@pytest.mark.slow
def test_two_processes_match_one_process_and_share_checkpoints(tmp_path):
    # Two processes with 2 CPU devices each (jax.distributed on localhost, gloo
    # collectives) against one process with 4 devices.
    two_dir, one_dir = str(tmp_path / "two"), str(tmp_path / "one")
    port = _free_port()
    processes = [
        subprocess.Popen(
            _main_command(two_dir, 4)
            + [
                f"--coordinator_address=localhost:{port}",
                "--num_processes=2",
                f"--process_id={index}",
                "--distributed_timeout=120",
            ],
            env=_env(2),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for index in range(2)
    ]
    outputs = [process.communicate(timeout=900)[0] for process in processes]
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-3000:]
    single = subprocess.run(
        _main_command(one_dir, 4),
        env=_env(4),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert single.returncode == 0, single.stderr[-3000:]

    two_losses, one_losses = _losses(two_dir), _losses(one_dir)
    assert sorted(two_losses) == [1, 2, 3, 4]
    np.testing.assert_allclose(
        [two_losses[s] for s in range(1, 5)],
        [one_losses[s] for s in range(1, 5)],
        rtol=0,
        atol=LOSS_ATOL,
    )
    # Only process 0 wrote the results.
    assert os.path.exists(os.path.join(two_dir, "metrics.json"))

    # The 2-process checkpoint (step 4) restores in a 1-process, 4-device run,
    # which continues to step 6.
    resumed = subprocess.run(
        _main_command(two_dir, 6),
        env=_env(4),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resumed from checkpoint at step 4" in resumed.stderr
    assert sorted(_losses(two_dir)) == [1, 2, 3, 4, 5, 6]
