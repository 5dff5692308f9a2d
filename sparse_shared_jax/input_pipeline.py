"""The training episodes, read ahead by worker processes (grain).

Episode `step` of a run is a pure function of the step (a
`loop.EpisodeSource`), so the input pipeline is a map over the steps still
to train: grain's `MapDataset.range(start, num_steps).map(ReadBlocks(...))`
and `mp_prefetch`, which gives worker i of N the steps start + i, start +
i + N, ... and hands them back in order. Episode N+1 is rendered or read
while the device computes step N; the episodes are the same for any number
of workers (0 reads in the main process), and a resumed run starts the
range at its step, so resuming needs no pipeline state.

Each process reads only the block of the episode that its devices hold.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Iterator
from typing import Any, NamedTuple

import grain
import jax
import numpy as np
from absl import flags, logging

from sparse_shared_jax import bilevel, parallel


class EpisodeBlocks(NamedTuple):
    """This process's block of one episode, on the host."""

    support_x: np.ndarray  # [t, m_s, *input_shape]
    support_y: np.ndarray  # [t, m_s]
    query_x: np.ndarray  # [t, m_q, *input_shape]
    query_y: np.ndarray  # [t, m_q]


class EpisodeReadError(RuntimeError):
    """Drawing or reading an episode failed; the message names its step."""


@dataclasses.dataclass(frozen=True)
class ReadBlocks:
    """step -> this process's EpisodeBlocks of `source`.

    Runs in grain's worker processes, so it and the source are pickled.

    Attributes:
      source: a `loop.EpisodeSource`.
      support_block: this process's (tasks, examples) slices of [T, n_s].
      query_block: the same of [T, n_q].
    """

    source: Any
    support_block: tuple[slice, slice]
    query_block: tuple[slice, slice]

    def __call__(self, step: int) -> EpisodeBlocks:
        try:
            keys = self.source.draw(step)
            return EpisodeBlocks(
                self.source.read_inputs(keys.support_keys[self.support_block]),
                keys.support_y[self.support_block],
                self.source.read_inputs(keys.query_keys[self.query_block]),
                keys.query_y[self.query_block],
            )
        except Exception as error:
            raise EpisodeReadError(
                f"Reading episode {step} (0-based; the batch of training step "
                f"{step + 1}) failed: {type(error).__name__}: {error}. The last "
                "checkpoint is intact: fix the data and rerun the same command "
                "to resume."
            ) from error


class EpisodeStream:
    """A `loop.Job.batch_at` over a source: (step, sharding) -> EpisodeBatch.

    Consecutive steps come from the pipeline; any other step or a new
    sharding restarts it there (a resume, or random access in scripts).
    Call `close` to stop the workers early (they also stop after the last
    step).
    """

    def __init__(
        self,
        source,
        num_steps: int,
        workers: int = 0,
        buffer_size: int = 2,
    ):
        """
        Args:
          source: a `loop.EpisodeSource`.
          num_steps: the steps the pipeline produces at most (0-based steps
            start..num_steps-1; config.num_train_steps).
          workers: worker processes; 0 reads in the main process.
          buffer_size: episodes each worker keeps ready.
        """
        self.source, self.num_steps = source, num_steps
        self.workers, self.buffer_size = workers, buffer_size
        self._episodes: Iterator[EpisodeBlocks] | None = None
        self._next: tuple[int, Any] | None = None  # (step, sharding) it yields next
        self._shapes: tuple[tuple[int, ...], tuple[int, ...]] = ((), ())

    def __call__(self, step: int, sharding) -> bilevel.EpisodeBatch:
        if self._next != (step, sharding):
            self._start(step, sharding)
        blocks = next(self._episodes)
        self._next = (step + 1, sharding)
        support_shape, query_shape = self._shapes  # [T, n_s], [T, n_q]
        input_shape = tuple(self.source.input_shape)

        def global_array(local: np.ndarray, shape: tuple[int, ...]) -> jax.Array:
            return jax.make_array_from_process_local_data(sharding, local, shape)

        return bilevel.EpisodeBatch(
            global_array(blocks.support_x, support_shape + input_shape),
            global_array(blocks.support_y, support_shape),
            global_array(blocks.query_x, query_shape + input_shape),
            global_array(blocks.query_y, query_shape),
        )

    def _start(self, step: int, sharding) -> None:
        self.close()
        keys = self.source.draw(step)  # the episode's sizes
        self._shapes = (keys.support_y.shape, keys.query_y.shape)
        read = ReadBlocks(
            self.source,
            parallel.process_block(sharding, keys.support_y.shape),
            parallel.process_block(sharding, keys.query_y.shape),
        )
        if self.workers == 0:
            self._episodes = map(read, itertools.count(step))
            return
        if not flags.FLAGS.is_parsed():  # grain reads its absl flags
            flags.FLAGS.mark_as_parsed()
        stop = max(self.num_steps, step + 1)
        self._episodes = iter(
            grain.MapDataset.range(step, stop)
            .map(read)
            .to_iter_dataset(grain.ReadOptions(num_threads=0, prefetch_buffer_size=0))
            .mp_prefetch(
                grain.MultiprocessingOptions(
                    num_workers=self.workers, per_worker_buffer_size=self.buffer_size
                ),
                worker_init_fn=_init_worker,
            )
        )

    def close(self) -> None:
        """Stops the worker processes, if any."""
        close = getattr(self._episodes, "close", None)
        if close is not None:
            close()
        self._episodes, self._next = None, None


def device_episode(source, step: int, sharding) -> bilevel.EpisodeBatch:
    """Episode `step` of `source` as global arrays, read in this process."""
    return EpisodeStream(source, num_steps=step + 1)(step, sharding)


def log_workers(workers: int, buffer_size: int) -> None:
    """Logs the pipeline's size; warns when it has more workers than cores."""
    if workers == 0:
        logging.info("Episodes are read in the main process (input.workers 0)")
        return
    logging.info(
        "Episodes are read ahead by %d worker process(es), %d each",
        workers,
        buffer_size,
    )
    cores = os.cpu_count() or 1
    if workers > cores:
        logging.warning(
            "input.workers %d is more than this machine's %d CPU cores: the "
            "workers compete with each other and with the training step; "
            "fewer are usually as fast.",
            workers,
            cores,
        )


def _init_worker(index: int, count: int) -> None:
    """Keeps a worker's JAX (if it imports any) off the accelerators."""
    del index, count
    jax.config.update("jax_platforms", "cpu")
