"""The interface of datasets with known factors of variation, and their registry.

A ground-truth dataset is a deterministic function from integer factor indices
to observations, so any factor combination can be rendered on demand without
storing the dataset. Every dataset in the registry is built by a factory,
``ground_truth(name, **options)``; users add their own with
``register_ground_truth(name, factory)``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable

import ml_collections
import numpy as np

from sparse_shared_jax.data import factor_sampling


class GroundTruthDataset(abc.ABC):
    """A dataset whose observations are a deterministic function of its factors.

    Subclasses set `factor_names`, `factor_sizes` and `observation_shape`
    (and `observation_dtype` if not float32) and implement `observations`.
    Factor indices are integers, factor `i` taking values in
    ``range(factor_sizes[i])``.
    """

    factor_names: tuple[str, ...]
    factor_sizes: tuple[int, ...]
    observation_shape: tuple[int, ...]
    # float32 for images and vectors; int32 for token ids (data.sentences).
    observation_dtype: type = np.float32

    @property
    def num_factors(self) -> int:
        return len(self.factor_sizes)

    def sample_factors(
        self,
        num: int,
        rng: np.random.Generator | int,
        correlation: float = 0.0,
    ) -> np.ndarray:
        """Draws factor indices, uniform or with all pairs correlated.

        Args:
          num: number of samples.
          rng: a NumPy generator or an integer seed.
          correlation: rho in [0, 1); 0 samples every factor uniformly and
            independently, rho > 0 correlates every pair of factors through a
            Gaussian copula (marginals stay uniform over each factor's grid).

        Returns:
          int64 array [num, num_factors].
        """
        rng = np.random.default_rng(rng)
        if correlation == 0.0:
            return factor_sampling.sample_uniform(self.factor_sizes, num, rng)
        return factor_sampling.sample_correlated(
            self.factor_sizes, num, rng, correlation
        )

    @abc.abstractmethod
    def observations(self, factors: np.ndarray) -> np.ndarray:
        """Renders observations: int [num, K] -> float32 [num, *observation_shape]."""

    def check_encoder(self, model: ml_collections.ConfigDict) -> None:
        """Raises ConfigError if `model` cannot read these observations.

        Every image or vector encoder reads float observations; datasets of
        token ids (data.sentences) check the text encoder's vocabulary.
        """
        del model

    def factor_values(self, factors: np.ndarray) -> np.ndarray:
        """Maps factor indices to real values: int [num, K] -> float [num, K].

        The default places each factor's grid evenly on [0, 1]; datasets with a
        natural scale (angles, sizes) may override it.
        """
        factors = np.asarray(factors)
        sizes = np.asarray(self.factor_sizes)
        return factors / np.maximum(sizes - 1, 1)


DatasetFactory = Callable[..., GroundTruthDataset]
_REGISTRY: dict[str, DatasetFactory] = {}


def register_ground_truth(name: str, factory: DatasetFactory) -> None:
    """Registers a dataset factory under `name` for `ground_truth` and configs.

    Args:
      name: the name configs use (``config.data.name``).
      factory: called as ``factory(**options)``, returns a GroundTruthDataset
        (or any object with the same attributes and methods).

    Raises:
      ValueError: if `name` is already registered.
    """
    if name in _REGISTRY:
        raise ValueError(
            f"A ground-truth dataset named {name!r} is already registered; "
            "choose another name."
        )
    _REGISTRY[name] = factory


def ground_truth(name: str, **options) -> GroundTruthDataset:
    """Builds the registered ground-truth dataset `name` with `options`.

    Raises:
      KeyError: naming the known datasets if `name` is not registered.
    """
    if name not in _REGISTRY:
        known = ", ".join(sorted(_REGISTRY))
        raise KeyError(f"Unknown ground-truth dataset {name!r}; known: {known}.")
    return _REGISTRY[name](**options)


def registered_names() -> tuple[str, ...]:
    """The names `ground_truth` accepts."""
    return tuple(sorted(_REGISTRY))
