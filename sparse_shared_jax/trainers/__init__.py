"""Trainers: what an experiment trains on what, selected by config.trainer.

A trainer is a module with two functions (`loop.Trainer`):

* ``validate(config)``: raises ValueError naming the first bad config field,
  before anything is opened or compiled;
* ``prepare(config, workdir) -> loop.Job``: opens the data and returns the
  pieces the loop needs (initial state, pure train step, batches, evaluation
  during training, final evaluation, summary line).

`loop.run(config, workdir, get(config.trainer))` runs any of them; that is
what `train.train_and_evaluate` and the command line do. Built in:

* ``'ground_truth'``: the bilevel method on data with known factors
  (`trainers.ground_truth`), plus transfer when the config has a `transfer`
  section;
* ``'benchmark'``: meta-training on a real benchmark's label fields, then
  transfer (`trainers.benchmark`);
* ``'erm'`` and ``'group_dro'``: the baselines of a transfer evaluation
  (`trainers.erm`).

A new kind of experiment is a new module with these two functions, passed
to `register` (and a config file that sets config.trainer to its name).
"""

from __future__ import annotations

from sparse_shared_jax import loop
from sparse_shared_jax.errors import ConfigError
from sparse_shared_jax.trainers import benchmark, erm, ground_truth

_TRAINERS: dict[str, loop.Trainer] = {
    "ground_truth": ground_truth,
    "benchmark": benchmark,
    erm.ERM: erm,
    erm.GROUP_DRO: erm,
}


def register(name: str, trainer: loop.Trainer) -> None:
    """Makes `trainer` (a module or object with validate and prepare) the one
    config.trainer = `name` selects."""
    _TRAINERS[name] = trainer


def names() -> tuple[str, ...]:
    """The registered trainer names."""
    return tuple(_TRAINERS)


def get(name: str) -> loop.Trainer:
    """The trainer config.trainer = `name` selects.

    Raises:
      ValueError: naming the registered trainers if `name` is not one.
    """
    if name not in _TRAINERS:
        raise ConfigError(f"config.trainer must be one of {names()}; got {name!r}.")
    return _TRAINERS[name]
