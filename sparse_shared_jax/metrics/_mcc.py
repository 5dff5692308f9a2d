"""Mean correlation coefficient (MCC) after matching codes to factors.

The absolute correlation between every code and every continuous factor
value forms a [D, K] matrix; the Hungarian algorithm
(`scipy.optimize.linear_sum_assignment`) pairs codes with factors one to one
so that the summed absolute correlation is largest, and MCC is that sum
divided by K. MCC is therefore invariant to permuting, rescaling and flipping
the sign of codes (and, with ``method='spearman'``, to any strictly monotone
map of each code).

Rectangular cases: if D > K, every factor is matched to a distinct code and
the D - K remaining codes are left out (they do not lower the score); if
D < K, only D factors can be matched and each unmatched factor counts as a
correlation of 0, so the score is at most D / K. Constant codes (dead
features) correlate 0 with everything.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize
import scipy.stats

from sparse_shared_jax.metrics import _utils

METHODS = ("pearson", "spearman")
UNMATCHED = -1  # `feature_to_factor` entry of a code matched to no factor


def correlation_matrix(
    codes: np.ndarray, factor_values: np.ndarray, method: str = "pearson"
) -> np.ndarray:
    """Absolute correlation between every code and every factor.

    Args:
      codes: [num, D] representation.
      factor_values: [num, K] continuous (or ordinal) factor values.
      method: ``'pearson'`` or ``'spearman'`` (Pearson on ranks).

    Returns:
      [D, K] array of |corr(code_d, factor_k)| in [0, 1]; 0 for constant codes.
    """
    _utils.check_choice(method, "method", METHODS)
    codes = _utils.check_codes(codes)
    factor_values = _utils.check_factor_values(factor_values, len(codes))
    if method == "spearman":
        codes = scipy.stats.rankdata(codes, axis=0)
        factor_values = scipy.stats.rankdata(factor_values, axis=0)
    standard_codes = _standardise(codes)  # [num, D]
    standard_factors = _standardise(factor_values)  # [num, K]
    correlation = standard_codes.T @ standard_factors / len(codes)  # [D, K]
    return np.clip(np.abs(correlation), 0.0, 1.0)


def mcc_matching(
    codes: np.ndarray, factor_values: np.ndarray, method: str = "pearson"
) -> tuple[float, np.ndarray]:
    """MCC and the code-to-factor matching that achieves it.

    Args:
      codes: [num, D] representation.
      factor_values: [num, K] continuous (or ordinal) factor values.
      method: ``'pearson'`` or ``'spearman'``.

    Returns:
      (score, feature_to_factor): the MCC in [0, 1] and an int array [D]
      whose entry d is the factor matched to code d, or -1 (`UNMATCHED`) if
      code d is matched to none. Pass it to `support_recovery`.
    """
    correlation = correlation_matrix(codes, factor_values, method)  # [D, K]
    matched_codes, matched_factors = scipy.optimize.linear_sum_assignment(
        correlation, maximize=True
    )  # [min(D, K)] each
    feature_to_factor = np.full(correlation.shape[0], UNMATCHED)  # [D]
    feature_to_factor[matched_codes] = matched_factors
    score = correlation[matched_codes, matched_factors].sum() / correlation.shape[1]
    return float(score), feature_to_factor


def mcc(codes: np.ndarray, factor_values: np.ndarray, method: str = "pearson") -> float:
    """Mean absolute correlation between factors and their matched codes.

    Args:
      codes: [num, D] representation.
      factor_values: [num, K] continuous (or ordinal) factor values.
      method: ``'pearson'`` or ``'spearman'``.

    Returns:
      The MCC in [0, 1] (see the module docstring for D != K).
    """
    return mcc_matching(codes, factor_values, method)[0]


def _standardise(array: np.ndarray) -> np.ndarray:
    """Zero-mean, unit-variance columns; constant columns become 0: [num, n]."""
    centred = array - array.mean(axis=0)
    scale = centred.std(axis=0)
    return np.divide(centred, scale, out=np.zeros_like(centred), where=scale > 0)
