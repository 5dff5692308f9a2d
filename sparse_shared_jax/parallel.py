"""Devices, meshes and shardings: one code path from 1 CPU to a TPU pod.

Training is data parallel over a 2-D device mesh with axes ('tasks',
'examples'). An episode's arrays [T, n, ...] are split along the task axis
and, when T has fewer factors in common with the device count than there are
devices, along the example axis too. The global episode is the same whatever
the device count (it is a function of the seed and the step), so results do
not depend on it beyond floating-point reduction order.

Parameters and optimiser state are replicated, or sharded over all devices
('fsdp': every large array split along its largest evenly divisible axis).

In a multi-process job (several hosts, or several processes on one machine)
every process draws the whole episode's factors and labels (cheap), renders
only the observations its own devices hold, and the global arrays are
assembled with `jax.make_array_from_process_local_data`.
"""

from __future__ import annotations

import dataclasses
import math
import socket
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from absl import logging
from jax.experimental import multihost_utils
from jax.sharding import Mesh, NamedSharding, PartitionSpec

MESH_AXES = ("tasks", "examples")
PARAM_SHARDINGS = ("replicated", "fsdp")
# Arrays smaller than this stay replicated under 'fsdp' (not worth a gather).
_MIN_SHARDED_SIZE = 2**14


def initialize_distributed(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    auto: bool = False,
    timeout_s: int = 300,
) -> None:
    """Joins a multi-process JAX job; does nothing for a single process.

    Call it before anything else touches JAX devices.

    Args:
      coordinator_address: 'host:port' of process 0, for an explicit launch
        (e.g. several GPU hosts, or several processes on one machine).
      num_processes: the number of processes of the job (explicit launch).
      process_id: this process's index in [0, num_processes) (explicit launch).
      auto: let `jax.distributed.initialize` read the platform's environment
        (TPU pods, SLURM, Open MPI) instead of explicit arguments.
      timeout_s: how long to wait for the coordinator and the other processes.

    Raises:
      ValueError: if the explicit arguments are incomplete.
      RuntimeError: if the job could not be joined within `timeout_s`, naming
        the coordinator and what to check.
    """
    explicit = (coordinator_address, num_processes, process_id)
    if not auto and all(value is None for value in explicit):
        return
    if not auto and any(value is None for value in explicit):
        raise ValueError(
            "A multi-process launch needs --coordinator_address, --num_processes "
            f"and --process_id together; got {explicit}. Or use --multihost to "
            "read them from the platform (TPU pods, SLURM)."
        )
    if coordinator_address is not None and process_id != 0:
        _wait_for_coordinator(coordinator_address, process_id, timeout_s)
    # CPU devices of different processes talk through gloo (no-op elsewhere).
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    logging.info(
        "Joining the distributed job at %s (waiting up to %d s for all processes; "
        "a DEADLINE_EXCEEDED abort means some process never arrived)",
        coordinator_address or "the platform's coordinator",
        timeout_s,
    )
    try:
        jax.distributed.initialize(
            coordinator_address,
            num_processes,
            process_id,
            initialization_timeout=timeout_s,
        )
    except Exception as error:  # jaxlib raises XlaRuntimeError and others
        where = coordinator_address or "the address in the platform's environment"
        raise RuntimeError(
            f"Could not join the distributed job at {where} as process "
            f"{process_id} of {num_processes} within {timeout_s} s "
            f"({type(error).__name__}: {error}). Check that process 0 runs with "
            "the same --coordinator_address, that its port is reachable from "
            "this host, and that every process got the same --num_processes."
        ) from error
    logging.info(
        "Joined a job of %d processes as process %d (%d local / %d global devices)",
        jax.process_count(),
        jax.process_index(),
        jax.local_device_count(),
        jax.device_count(),
    )


def _wait_for_coordinator(address: str, process_id: int, timeout_s: float) -> None:
    """Waits until process 0's coordinator accepts connections.

    jax.distributed aborts the whole process (no Python exception) when it
    cannot register with the coordinator, so reachability is checked first.

    Raises:
      ValueError: if `address` is not 'host:port'.
      RuntimeError: if nothing listens there within `timeout_s`.
    """
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"coordinator_address must be 'host:port'; got {address!r}.")
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=1.0):
                return
        except OSError as error:
            if time.monotonic() >= deadline:
                raise RuntimeError(
                    f"Process {process_id} could not reach the coordinator at "
                    f"{address} within {timeout_s} s ({error}). Start process 0 "
                    "(--process_id=0) with the same --coordinator_address, check "
                    "the host name and that the port is open between the hosts, "
                    "or raise --distributed_timeout."
                ) from error
            time.sleep(0.5)


def is_main_process() -> bool:
    """True on the process that writes logs, pictures and metrics."""
    return jax.process_index() == 0


def mesh_shape(
    num_tasks: int, support_size: int, query_size: int, num_devices: int
) -> tuple[int, int]:
    """(task shards, example shards) for an episode on `num_devices` devices.

    Tasks are split as far as they go evenly (gcd(T, devices) shards); the
    remaining factor of the device count splits each task's examples.

    Raises:
      ValueError: if the support or query size is not divisible by the
        example shards, naming the sizes and how to fix them.
    """
    task_shards = math.gcd(num_tasks, num_devices)
    example_shards = num_devices // task_shards
    for name, size in (("support_size", support_size), ("query_size", query_size)):
        if size % example_shards:
            raise ValueError(
                f"Cannot split an episode of {num_tasks} tasks x {size} examples "
                f"({name}) over {num_devices} devices: the tasks split into "
                f"{task_shards} shard(s), so each task's examples must split into "
                f"{example_shards}, and {size} is not divisible by "
                f"{example_shards}. Make episode.num_tasks a multiple of "
                f"{num_devices}, or episode.support_size and episode.query_size "
                f"multiples of {example_shards}."
            )
    return task_shards, example_shards


def episode_mesh(
    num_tasks: int,
    support_size: int,
    query_size: int,
    devices: list[jax.Device] | None = None,
) -> Mesh:
    """The ('tasks', 'examples') mesh of an episode over `devices` (all)."""
    devices = jax.devices() if devices is None else list(devices)
    shape = mesh_shape(num_tasks, support_size, query_size, len(devices))
    # jax.devices() lists each process's devices together, so a process holds
    # whole rows (or one part of a row) of the mesh: a contiguous block.
    return Mesh(np.asarray(devices, dtype=object).reshape(shape), MESH_AXES)


def episode_sharding(mesh: Mesh) -> NamedSharding:
    """Sharding of [T, n, ...] episode arrays: tasks and examples split."""
    return NamedSharding(mesh, PartitionSpec(*MESH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
    """Every device holds the whole array."""
    return NamedSharding(mesh, PartitionSpec())


def _fsdp_spec(shape: tuple[int, ...], num_devices: int) -> PartitionSpec:
    """Shards the largest axis divisible by the device count, if worth it."""
    if math.prod(shape) < _MIN_SHARDED_SIZE:
        return PartitionSpec()
    divisible = [axis for axis, size in enumerate(shape) if size % num_devices == 0]
    if not divisible:
        return PartitionSpec()
    axis = max(divisible, key=lambda a: shape[a])
    spec = [None] * len(shape)
    spec[axis] = MESH_AXES
    return PartitionSpec(*spec)


def state_shardings(abstract_state: Any, mesh: Mesh, mode: str) -> Any:
    """Shardings for every array of a (train) state, by `mode`.

    Args:
      abstract_state: the state's pytree of arrays or ShapeDtypeStructs.
      mesh: the device mesh.
      mode: 'replicated', or 'fsdp' (each array of >= 2**14 elements split
        over all devices along its largest divisible axis; optimiser moments
        follow their parameters since the rule depends only on the shape).

    Returns:
      A pytree of NamedSharding with the structure of `abstract_state`.
    """
    if mode not in PARAM_SHARDINGS:
        raise ValueError(f"mode must be one of {PARAM_SHARDINGS}, got {mode!r}.")
    if mode == "replicated":
        return jax.tree.map(lambda _: replicated(mesh), abstract_state)
    return jax.tree.map(
        lambda leaf: NamedSharding(mesh, _fsdp_spec(tuple(leaf.shape), mesh.size)),
        abstract_state,
    )


def create_sharded(
    init_fn: Callable[[], Any], mesh: Mesh, mode: str
) -> tuple[Any, Any]:
    """Runs `init_fn` (e.g. create_train_state) straight into its shardings.

    Every process runs the same `init_fn`, so all agree on the values.

    Returns:
      (state, its shardings).
    """
    shardings = state_shardings(jax.eval_shape(init_fn), mesh, mode)
    return jax.jit(init_fn, out_shardings=shardings)(), shardings


def process_block(sharding: NamedSharding, shape: tuple[int, ...]) -> tuple[slice, ...]:
    """The block of a global array that this process's devices hold.

    Raises:
      ValueError: if this process's shards do not form one rectangular block.
    """
    shards = {  # distinct ((start, stop) per axis); replicas collapse
        tuple(
            (index.start or 0, size if index.stop is None else index.stop)
            for index, size in zip(indices, shape, strict=True)
        )
        for indices in sharding.addressable_devices_indices_map(shape).values()
    }
    block = tuple(
        slice(min(s[axis][0] for s in shards), max(s[axis][1] for s in shards))
        for axis in range(len(shape))
    )
    covered = sum(math.prod(stop - start for start, stop in s) for s in shards)
    if covered != math.prod(b.stop - b.start for b in block):
        raise ValueError(
            f"This process's devices do not hold one block of the {shape} array "
            f"(mesh {dict(sharding.mesh.shape)}); give every process a number of "
            "devices that divides the task shards or is a multiple of them."
        )
    return block


def global_array(
    local_fn: Callable[[tuple[slice, ...]], np.ndarray],
    shape: tuple[int, ...],
    sharding: NamedSharding,
) -> jax.Array:
    """A global array whose process-local block comes from `local_fn(block)`.

    Args:
      local_fn: block (a slice per axis) -> this process's part of the array.
      shape: the global shape.
      sharding: how the global array is laid out over the devices.
    """
    block = process_block(sharding, shape)
    return jax.make_array_from_process_local_data(sharding, local_fn(block), shape)


def gather_to_host(array: jax.Array) -> np.ndarray:
    """The whole array on every process, as NumPy."""
    if array.is_fully_addressable:
        return np.asarray(array)
    return np.asarray(multihost_utils.process_allgather(array, tiled=True))


@dataclasses.dataclass(frozen=True)
class TrainingLayout:
    """Where the training state and the episode live.

    Attributes:
      mesh: the ('tasks', 'examples') device mesh.
      episode: sharding of every [T, n, ...] episode array.
      param_sharding: 'replicated' or 'fsdp'.
    """

    mesh: Mesh
    episode: NamedSharding
    param_sharding: str

    @classmethod
    def create(
        cls,
        num_tasks: int,
        support_size: int,
        query_size: int,
        param_sharding: str = "replicated",
        devices: list[jax.Device] | None = None,
    ) -> TrainingLayout:
        """The layout of an episode of the given sizes over `devices` (all)."""
        if param_sharding not in PARAM_SHARDINGS:
            raise ValueError(
                f"param_sharding must be one of {PARAM_SHARDINGS}, "
                f"got {param_sharding!r}."
            )
        mesh = episode_mesh(num_tasks, support_size, query_size, devices)
        return cls(mesh, episode_sharding(mesh), param_sharding)
