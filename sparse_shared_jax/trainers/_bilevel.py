"""What the two bilevel trainers share: the encoder's state, the bilevel step
and the transfer evaluation."""

from __future__ import annotations

import functools
import os

import jax
import ml_collections
import numpy as np

from sparse_shared_jax import (
    atomic_files,
    bilevel,
    input_pipeline,
    loop,
    parallel,
    transfer,
)
from sparse_shared_jax.data import labelled
from sparse_shared_jax.trainers import erm

TRANSFER_FILE = "transfer.json"


def bilevel_job(
    config: ml_collections.ConfigDict,
    settings: bilevel.BilevelSettings,
    example_x: np.ndarray,
    source: loop.EpisodeSource,
    **parts,
) -> loop.Job:
    """A Job training the config's encoder by the bilevel step on `source`.

    Args:
      config: the experiment config (model, outer optimiser, episode sizes,
        seed).
      settings: the bilevel step's settings (`bilevel_settings(config)`).
      example_x: [1, *obs] an input to initialise the encoder on.
      source: the training episodes.
      **parts: the other fields of loop.Job (finish, summary, evaluate, ...).
    """
    encoder, optimizer = loop.make_encoder(config), loop.make_optimizer(config.outer)
    input_pipeline.log_workers(config.input.workers, config.input.buffer_size)
    episodes = input_pipeline.EpisodeStream(
        source,
        config.num_train_steps,
        config.input.workers,
        config.input.buffer_size,
    )
    return loop.Job(
        batch_sizes=(
            config.episode.num_tasks,
            config.episode.support_size,
            config.episode.query_size,
        ),
        init_state=lambda: bilevel.create_train_state(
            encoder, jax.random.key(config.seed), example_x, optimizer
        ),
        train_step=functools.partial(bilevel.train_step, settings=settings),
        batch_at=episodes,
        close=episodes.close,
        **parts,
    )


def transfer_scores(
    config: ml_collections.ConfigDict,
    workdir: str,
    benchmark: labelled.LabelledBenchmark,
    state,
) -> dict[str, float]:
    """The transfer evaluation of the run's frozen encoder on `benchmark`
    (`transfer.evaluate_transfer`), with the baselines trained (or read
    back) in `<workdir>/erm` and `<workdir>/group_dro`; writes
    `<workdir>/transfer.json` and returns the record flattened into scalars."""
    record = transfer.evaluate_transfer(
        config,
        benchmark,
        transfer.FrozenEncoder(state.params, state.apply_fn),
        erm.train_or_load(config, workdir, erm.ERM),
        erm.train_or_load(config, workdir, erm.GROUP_DRO),
    )
    if parallel.is_main_process():
        atomic_files.write_json(os.path.join(workdir, TRANSFER_FILE), record)
    return transfer.flatten_record(record)
