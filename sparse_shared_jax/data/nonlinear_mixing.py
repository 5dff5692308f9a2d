"""Vector observations: factors through a fixed random invertible MLP.

The factor values, evenly spaced on [-1, 1], are lifted to R^m by a matrix with
orthonormal columns (injective), then pass through `num_layers` layers of

    h <- Q_l leaky_relu(a_l * h + c_l)

with Q_l a random orthogonal m x m matrix (condition number 1), a_l > 0 and c_l
fixed per-unit scales and offsets (the scales standardise each unit over a
reference sample of uniform factors, the offsets move the kinks of the
leaky-ReLU to random places inside the data). Every step is injective, so the
whole map is: distinct factor combinations give distinct observations. The
outputs are standardised per dimension over the same reference sample. The
network is drawn once from `seed`, so observations are a deterministic
function of (factors, seed).
"""

from __future__ import annotations

import numpy as np

from sparse_shared_jax.data import factor_sampling
from sparse_shared_jax.data.ground_truth import GroundTruthDataset

_NUM_REFERENCE = 8192  # uniform factor samples that fix the per-unit scales


def _orthonormal_columns(rows: int, cols: int, rng: np.random.Generator) -> np.ndarray:
    """A random [rows, cols] matrix with orthonormal columns (rows >= cols)."""
    q, r = np.linalg.qr(rng.standard_normal((rows, cols)))
    # Fixing the signs by diag(r) makes q Haar-distributed.
    return q * np.sign(np.diag(r))


def _leaky_relu(x: np.ndarray, negative_slope: float) -> np.ndarray:
    return np.where(x >= 0, x, negative_slope * x)


class NonlinearMixing(GroundTruthDataset):
    """K factors with `num_values` values each, mixed by a random invertible MLP.

    Attributes:
      factor_names: ``('z0', 'z1', ...)``.
      factor_sizes: ``(num_values,) * num_factors``.
      observation_shape: ``(observation_dim,)``.
    """

    def __init__(
        self,
        num_factors: int = 5,
        num_values: int = 12,
        observation_dim: int = 20,
        num_layers: int = 3,
        negative_slope: float = 0.2,
        seed: int = 0,
    ):
        """Draws the mixing network.

        Args:
          num_factors: K, the number of factors (>= 1).
          num_values: number of grid values of every factor (>= 2).
          observation_dim: m, the observation dimension (>= num_factors).
          num_layers: number of leaky-ReLU layers after the linear lift (>= 0;
            0 gives a linear map).
          negative_slope: leaky-ReLU slope for negative inputs, in (0, 1].
          seed: seed of the random network.

        Raises:
          ValueError: naming the argument if one is out of range.
        """
        if num_factors < 1:
            raise ValueError(f"num_factors must be >= 1, got {num_factors}.")
        if num_values < 2:
            raise ValueError(f"num_values must be >= 2, got {num_values}.")
        if observation_dim < num_factors:
            raise ValueError(
                f"observation_dim must be >= num_factors ({num_factors}) for the "
                f"map to be injective, got {observation_dim}."
            )
        if num_layers < 0:
            raise ValueError(f"num_layers must be >= 0, got {num_layers}.")
        if not 0.0 < negative_slope <= 1.0:
            raise ValueError(
                f"negative_slope must be in (0, 1] for the map to be invertible, "
                f"got {negative_slope}."
            )
        self.factor_names = tuple(f"z{i}" for i in range(num_factors))
        self.factor_sizes = (num_values,) * num_factors
        self.observation_shape = (observation_dim,)
        self._negative_slope = negative_slope

        rng = np.random.default_rng(seed)
        self._lift = _orthonormal_columns(observation_dim, num_factors, rng)  # [m, K]
        self._rotations = [
            _orthonormal_columns(observation_dim, observation_dim, rng)
            for _ in range(num_layers)
        ]  # each [m, m]
        shifts = [
            rng.uniform(-1.0, 1.0, observation_dim) for _ in range(num_layers)
        ]  # each [m], where the kinks sit in standardised units

        # Fix the per-unit scales and offsets layer by layer on a reference
        # sample: a_l standardises each unit, c_l = shift - a_l * mean.
        reference = factor_sampling.sample_uniform(
            self.factor_sizes, _NUM_REFERENCE, rng
        )
        h = self.factor_values(reference) @ self._lift.T  # [ref, m]
        self._scales, self._offsets = [], []
        for rotation, shift in zip(self._rotations, shifts, strict=True):
            scale = 1.0 / h.std(axis=0)  # [m]
            offset = shift - scale * h.mean(axis=0)  # [m]
            self._scales.append(scale)
            self._offsets.append(offset)
            h = _leaky_relu(scale * h + offset, negative_slope) @ rotation.T
        self._output_mean = h.mean(axis=0)  # [m]
        self._output_scale = 1.0 / h.std(axis=0)  # [m]

    def factor_values(self, factors: np.ndarray) -> np.ndarray:
        """Maps factor indices evenly onto [-1, 1]: int [num, K] -> float [num, K]."""
        factors = np.asarray(factors)
        return 2.0 * factors / (np.asarray(self.factor_sizes) - 1) - 1.0

    def observations(self, factors: np.ndarray) -> np.ndarray:
        """Mixes factors: int [num, K] -> float32 [num, observation_dim]."""
        factors = np.asarray(factors)
        if factors.ndim != 2 or factors.shape[1] != self.num_factors:
            raise ValueError(
                f"factors must have shape [num, {self.num_factors}], got "
                f"{factors.shape}."
            )
        if np.any(factors < 0) or np.any(factors >= np.asarray(self.factor_sizes)):
            raise ValueError(
                f"factors must lie in range(factor_sizes) = {self.factor_sizes}."
            )
        h = self.factor_values(factors) @ self._lift.T  # [num, m]
        for rotation, scale, offset in zip(
            self._rotations, self._scales, self._offsets, strict=True
        ):
            h = _leaky_relu(scale * h + offset, self._negative_slope) @ rotation.T
        return ((h - self._output_mean) * self._output_scale).astype(np.float32)
