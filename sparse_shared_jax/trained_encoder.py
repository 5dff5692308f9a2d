"""A trained encoder read back from a run's workdir, for use after training.

`train.train_and_evaluate(config, workdir)` returns metrics; the encoder
itself stays in the workdir's orbax checkpoints. `load_trained_encoder`
rebuilds the encoder the config describes and restores its parameters, so
that a frozen encoder can be reused, e.g. for transfer:

    encoder = trained_encoder.load_trained_encoder(config, workdir)
    features = evaluate.encode(encoder.params, encoder.apply_fn, images)  # [n, k]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import ml_collections

from sparse_shared_jax import loop, trainers


@dataclasses.dataclass(frozen=True)
class TrainedEncoder:
    """Encoder parameters restored from a checkpoint.

    Attributes:
      params: the encoder's parameters.
      apply_fn: apply_fn(params, x [n, *obs]) -> features [n, k].
      step: the training step of the checkpoint.
    """

    params: Any
    apply_fn: Callable[[Any, jax.Array], jax.Array]
    step: int


def load_trained_encoder(
    config: ml_collections.ConfigDict, workdir: str, step: int | None = None
) -> TrainedEncoder:
    """Restores the encoder of the run `config` from a checkpoint in `workdir`.

    Args:
      config: the run's config (the one passed to `train.train_and_evaluate`);
        its trainer, model, data and optimiser fix the checkpoint's structure.
      workdir: the run's workdir.
      step: the checkpoint's step (default: the latest); the run keeps the
        last config.checkpoint.max_to_keep checkpoints.

    Returns:
      The encoder's parameters, apply function and checkpoint step.

    Raises:
      FileNotFoundError: if `workdir` holds no checkpoint (or not `step`).
      ValueError: if the checkpoint does not match the config's encoder.
    """
    state, job = loop.restore(config, workdir, trainers.get(config.trainer), step)
    params = state.params if job.encoder_key is None else state.params[job.encoder_key]
    return TrainedEncoder(params=params, apply_fn=state.apply_fn, step=int(state.step))
