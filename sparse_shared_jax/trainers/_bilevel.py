"""What the two bilevel trainers share: the encoder's state and the bilevel step."""

from __future__ import annotations

import functools

import jax
import ml_collections
import numpy as np

from sparse_shared_jax import bilevel, loop


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
        batch_at=lambda step, sharding: loop.device_episode(source, step, sharding),
        **parts,
    )
