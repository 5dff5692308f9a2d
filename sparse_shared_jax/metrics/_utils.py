"""Input checks, train/test splitting and discrete information measures.

Shared by the metric modules. Every check raises ValueError naming the
argument and what was expected, so a bad call fails before any model is fit.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.stats
import sklearn.metrics


def check_codes(codes: np.ndarray, name: str = "codes") -> np.ndarray:
    """Checks a representation: finite floats [num, D] with num >= 2, D >= 1.

    Args:
      codes: array-like [num, D] (NumPy, JAX or nested lists).
      name: the argument name used in error messages.

    Returns:
      float64 array [num, D].
    """
    codes = np.asarray(codes)
    if codes.ndim != 2:
        raise ValueError(
            f"`{name}` must be a 2-D array [num, D]; got shape {codes.shape}."
        )
    if not np.issubdtype(codes.dtype, np.number):
        raise ValueError(f"`{name}` must be numeric; got dtype {codes.dtype}.")
    num, dim = codes.shape
    if num < 2:
        raise ValueError(f"`{name}` needs at least 2 samples (rows); got {num}.")
    if dim < 1:
        raise ValueError(f"`{name}` needs at least 1 dimension (column); got 0.")
    codes = codes.astype(np.float64)
    if not np.all(np.isfinite(codes)):
        raise ValueError(f"`{name}` contains NaN or infinite values.")
    return codes


def check_factors(factors: np.ndarray, num: int, name: str = "factors") -> np.ndarray:
    """Checks integer factor labels [num, K], each factor taking >= 2 values.

    Args:
      factors: array-like [num, K] of integer (or boolean) labels.
      num: the number of rows the matching codes have.
      name: the argument name used in error messages.

    Returns:
      int64 array [num, K].
    """
    factors = np.asarray(factors)
    if factors.ndim != 2:
        raise ValueError(
            f"`{name}` must be a 2-D array [num, K]; got shape {factors.shape}."
        )
    if not (np.issubdtype(factors.dtype, np.integer) or factors.dtype == np.bool_):
        raise ValueError(
            f"`{name}` must hold integer labels; got dtype {factors.dtype} "
            "(cast with .astype(int); continuous factor values go to `mcc`)."
        )
    _check_rows_and_columns(factors, num, name)
    for k, num_values in enumerate(_num_distinct_per_column(factors)):
        if num_values < 2:
            raise ValueError(
                f"`{name}` column {k} takes a single value; every factor needs "
                "at least 2 distinct values."
            )
    return factors.astype(np.int64)


def check_factor_values(
    factor_values: np.ndarray, num: int, name: str = "factor_values"
) -> np.ndarray:
    """Checks continuous factor values: finite, non-constant columns [num, K].

    Args:
      factor_values: array-like [num, K].
      num: the number of rows the matching codes have.
      name: the argument name used in error messages.

    Returns:
      float64 array [num, K].
    """
    factor_values = np.asarray(factor_values)
    if factor_values.ndim != 2:
        raise ValueError(
            f"`{name}` must be a 2-D array [num, K]; got shape {factor_values.shape}."
        )
    if not np.issubdtype(factor_values.dtype, np.number):
        raise ValueError(f"`{name}` must be numeric; got dtype {factor_values.dtype}.")
    _check_rows_and_columns(factor_values, num, name)
    factor_values = factor_values.astype(np.float64)
    if not np.all(np.isfinite(factor_values)):
        raise ValueError(f"`{name}` contains NaN or infinite values.")
    constant = np.flatnonzero(np.ptp(factor_values, axis=0) == 0)
    if constant.size:
        raise ValueError(
            f"`{name}` columns {constant.tolist()} are constant; every factor "
            "must vary."
        )
    return factor_values


def check_fraction(value: float, name: str) -> float:
    """Checks that `value` lies strictly between 0 and 1."""
    if not 0.0 < value < 1.0:
        raise ValueError(f"`{name}` must lie in (0, 1); got {value}.")
    return float(value)


def check_num_bins(num_bins: int) -> int:
    """Checks the number of histogram bins used to discretise codes."""
    if isinstance(num_bins, bool) or not isinstance(num_bins, int | np.integer):
        raise ValueError(f"`num_bins` must be an integer; got {num_bins!r}.")
    if num_bins < 2:
        raise ValueError(f"`num_bins` must be at least 2; got {num_bins}.")
    return int(num_bins)


def check_choice(value: str, name: str, allowed: tuple[str, ...]) -> str:
    """Checks that `value` is one of `allowed`."""
    if value not in allowed:
        raise ValueError(f"`{name}` must be one of {allowed}; got {value!r}.")
    return value


class Split(NamedTuple):
    """Checked training and test data for metrics that fit predictors."""

    train_codes: np.ndarray  # [num_train, D]
    train_factors: np.ndarray  # [num_train, K]
    test_codes: np.ndarray  # [num_test, D]
    test_factors: np.ndarray  # [num_test, K]


def train_test_split(
    codes: np.ndarray,
    factors: np.ndarray,
    test_codes: np.ndarray | None,
    test_factors: np.ndarray | None,
    test_fraction: float,
    seed: int,
) -> Split:
    """Checks inputs and returns a train/test split of codes and factors.

    If `test_codes` and `test_factors` are given, `codes`/`factors` are the
    training set and the test set is used as is. Otherwise a random
    `test_fraction` of the rows (drawn with `seed`) is held out.

    Args:
      codes: [num, D] floats.
      factors: [num, K] integer labels.
      test_codes: optional [num_test, D] floats.
      test_factors: optional [num_test, K] integer labels.
      test_fraction: held-out fraction when no test set is given.
      seed: seed of the random split.

    Returns:
      A checked Split; every factor takes >= 2 values in both parts.
    """
    codes = check_codes(codes)
    factors = check_factors(factors, len(codes))
    if (test_codes is None) != (test_factors is None):
        raise ValueError(
            "Pass both `test_codes` and `test_factors`, or neither (then a "
            "`test_fraction` of the data is held out)."
        )
    if test_codes is None:
        check_fraction(test_fraction, "test_fraction")
        permutation = np.random.default_rng(seed).permutation(len(codes))
        num_test = int(round(test_fraction * len(codes)))
        test_rows, train_rows = permutation[:num_test], permutation[num_test:]
        test_codes, test_factors = codes[test_rows], factors[test_rows]
        codes, factors = codes[train_rows], factors[train_rows]
        names = ("codes (training split)", "factors (training split)")
        test_names = ("codes (test split)", "factors (test split)")
    else:
        names = ("codes", "factors")
        test_names = ("test_codes", "test_factors")
    train_codes = check_codes(codes, names[0])
    test_codes = check_codes(test_codes, test_names[0])
    if test_codes.shape[1] != train_codes.shape[1]:
        raise ValueError(
            f"`{test_names[0]}` must have {train_codes.shape[1]} columns like "
            f"`codes`; got {test_codes.shape[1]}."
        )
    train_factors = check_factors(factors, len(train_codes), names[1])
    test_factors = check_factors(test_factors, len(test_codes), test_names[1])
    if test_factors.shape[1] != train_factors.shape[1]:
        raise ValueError(
            f"`{test_names[1]}` must have {train_factors.shape[1]} columns like "
            f"`factors`; got {test_factors.shape[1]}."
        )
    return Split(train_codes, train_factors, test_codes, test_factors)


def discretize(codes: np.ndarray, num_bins: int) -> np.ndarray:
    """Bins every code dimension into `num_bins` equal-width bins.

    Args:
      codes: [num, D] floats.
      num_bins: number of bins per dimension (edges span each column's range).

    Returns:
      int array [num, D] of bin indices in [0, num_bins).
    """
    binned = np.empty(codes.shape, dtype=np.int64)  # [num, D]
    for d, column in enumerate(codes.T):
        edges = np.histogram_bin_edges(column, bins=num_bins)  # [num_bins + 1]
        binned[:, d] = np.digitize(column, edges[1:-1])
    return binned


def mutual_information(discrete_codes: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Mutual information (nats) between every code and every factor.

    Args:
      discrete_codes: [num, D] integer bins.
      factors: [num, K] integer labels.

    Returns:
      [D, K] array of I(code_d; factor_k).
    """
    return np.array(
        [
            [sklearn.metrics.mutual_info_score(factor, code) for factor in factors.T]
            for code in discrete_codes.T
        ]
    )


def entropies(factors: np.ndarray) -> np.ndarray:
    """Empirical entropy (nats) of every factor: [num, K] -> [K]."""
    return np.array(
        [
            scipy.stats.entropy(np.unique(factor, return_counts=True)[1])
            for factor in factors.T
        ]
    )


def _check_rows_and_columns(array: np.ndarray, num: int, name: str) -> None:
    if array.shape[0] != num:
        raise ValueError(
            f"`{name}` must have one row per sample of the codes ({num}); got "
            f"{array.shape[0]}."
        )
    if array.shape[1] < 1:
        raise ValueError(f"`{name}` needs at least 1 factor (column); got 0.")


def _num_distinct_per_column(array: np.ndarray) -> list[int]:
    return [len(np.unique(column)) for column in array.T]
