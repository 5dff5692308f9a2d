"""What the intervention-based scores share: factor sampling and encoding.

The BetaVAE and FactorVAE scores do not score a fixed set of codes: they draw
batches of factor combinations in which one factor is held fixed and look at
how the representation of those batches varies. They therefore take a
`represent` function, factors int [n, K] -> codes [n, D] (for a trained
encoder: render the observations of the factors and encode them), and the
factor sizes, and draw factors uniformly, as disentanglement_lib does.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

# factors int [n, K] -> codes [n, D]
Represent = Callable[[np.ndarray], np.ndarray]

# Batches encoded per call of `represent`: bounds memory while keeping calls
# large enough for a jitted encoder.
_BATCHES_PER_CALL = 256


def check_factor_sizes(factor_sizes: Sequence[int]) -> tuple[int, ...]:
    """Checks that there are >= 2 factors, each with >= 2 values."""
    sizes = tuple(int(size) for size in factor_sizes)
    if len(sizes) < 2 or min(sizes) < 2:
        raise ValueError(
            "`factor_sizes` needs at least 2 factors with at least 2 values each; "
            f"got {sizes}."
        )
    return sizes


def check_positive(value: int, name: str) -> int:
    """Checks a count argument (batch size, number of points)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"`{name}` must be an integer; got {value!r}.")
    if value < 1:
        raise ValueError(f"`{name}` must be >= 1; got {value}.")
    return int(value)


def sample_factors(
    factor_sizes: tuple[int, ...], num: int, rng: np.random.Generator
) -> np.ndarray:
    """int [num, K]: every factor drawn uniformly and independently."""
    return np.stack([rng.integers(0, size, num) for size in factor_sizes], axis=1)


def represent_checked(represent: Represent, factors: np.ndarray) -> np.ndarray:
    """Calls `represent` and checks it returns finite codes, one row per factor row."""
    codes = np.asarray(represent(factors), dtype=np.float64)
    if codes.ndim != 2 or codes.shape[0] != len(factors):
        raise ValueError(
            f"`represent` must map factors [{len(factors)}, K] to codes "
            f"[{len(factors)}, D]; got shape {codes.shape}."
        )
    if not np.all(np.isfinite(codes)):
        raise ValueError("`represent` returned NaN or infinite codes.")
    return codes


def batched_codes(
    represent: Represent,
    fixed_factors: np.ndarray,
    draw_batches: Callable[[np.ndarray], np.ndarray],
) -> np.ndarray:
    """Codes of one batch of factors per point, a few hundred batches per call.

    Args:
      represent: factors int [n, K] -> codes [n, D].
      fixed_factors: int [P], the factor each point holds fixed.
      draw_batches: fixed int [m] -> factors int [m, b, K], m new batches,
        batch i holding factor fixed[i] fixed.

    Returns:
      codes [P, b, D].
    """
    chunks = []
    for start in range(0, len(fixed_factors), _BATCHES_PER_CALL):
        factors = draw_batches(fixed_factors[start : start + _BATCHES_PER_CALL])
        m, b, k = factors.shape
        codes = represent_checked(represent, factors.reshape(m * b, k))
        chunks.append(codes.reshape(m, b, -1))
    return np.concatenate(chunks)
