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
import os
from collections.abc import Callable
from typing import Any

import jax
import ml_collections

from sparse_shared_jax import checkpoints, data, parallel, train


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
    config: ml_collections.ConfigDict, workdir: str
) -> TrainedEncoder:
    """Restores the encoder of the run `config` from the latest checkpoint in `workdir`.

    Args:
      config: the run's config (the one passed to `train.train_and_evaluate`);
        its model, data and optimiser sections fix the checkpoint's structure.
      workdir: the run's workdir.

    Returns:
      The encoder's parameters, apply function and checkpoint step.

    Raises:
      FileNotFoundError: if `workdir` holds no checkpoint.
      ValueError: if the checkpoint does not match the config's encoder.
    """
    directory = os.path.join(workdir, checkpoints.CHECKPOINT_DIR)
    missing = FileNotFoundError(
        f"No checkpoint in {directory}. Train first, e.g. "
        "train.train_and_evaluate(config, workdir)."
    )
    if not os.path.isdir(directory):
        raise missing  # checked first: the Checkpointer would create it
    checkpointer = checkpoints.Checkpointer(workdir, config.checkpoint.max_to_keep)
    try:
        step = checkpointer.latest_step()
        if step is None:
            raise missing
        dataset = data.ground_truth(config.data.name, **config.data.options.to_dict())
        layout = parallel.TrainingLayout.create(
            config.episode.num_tasks,
            config.episode.support_size,
            config.episode.query_size,
            config.parallel.param_sharding,
        )
        template, _ = train.create_state(config, train.example_input(dataset), layout)
        state = checkpointer.restore(step, template)
    finally:
        checkpointer.close()
    return TrainedEncoder(params=state.params, apply_fn=state.apply_fn, step=step)
