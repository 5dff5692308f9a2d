"""The public entry point: train_and_evaluate(config, workdir).

Runs the experiment a config describes with the trainer config.trainer
names (`trainers`: 'ground_truth', 'benchmark', 'erm'), through the one loop
(`loop.run`): validation, the workdir's config guard, the sharded state,
resuming from the latest checkpoint, the jitted step, logging, evaluation,
checkpoints, the final evaluation and `workdir/metrics.json`.
"""

from __future__ import annotations

import ml_collections

from sparse_shared_jax import loop, trainers


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Trains as `config` describes, resuming from `workdir`.

    Args:
      config: an experiment config (see experiments/).
      workdir: directory for everything the run writes; if it holds
        checkpoints of the same experiment, training resumes from the latest.

    Returns:
      The final metrics (also written to `workdir/metrics.json`).
    """
    return loop.run(config, workdir, trainers.get(config.trainer))
