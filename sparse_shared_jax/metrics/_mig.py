"""Mutual information gap (Chen et al., "Isolating sources of disentanglement
in variational autoencoders", NeurIPS 2018), discrete estimator.

Every code dimension is binned into equal-width bins; for each factor the gap
between the largest and the second largest mutual information with a code is
divided by the factor's entropy, and the gaps are averaged over factors.
"""

from __future__ import annotations

import numpy as np

from sparse_shared_jax.metrics import _utils


def mig(
    codes: np.ndarray, factors: np.ndarray, *, num_bins: int = 20
) -> dict[str, float]:
    """Discrete mutual information gap.

    Args:
      codes: [num, D] representation, D >= 2.
      factors: [num, K] integer factor labels.
      num_bins: equal-width bins per code dimension (20, as in
        disentanglement_lib).

    Returns:
      {'discrete_mig'}: a float in [0, 1]; 1 when each factor is fully
      determined by one code and shares no information with the others.
    """
    codes = _utils.check_codes(codes)
    factors = _utils.check_factors(factors, len(codes))
    num_bins = _utils.check_num_bins(num_bins)
    if codes.shape[1] < 2:
        raise ValueError(
            f"`codes` needs at least 2 dimensions for a gap; got {codes.shape[1]}."
        )
    information = _utils.mutual_information(
        _utils.discretize(codes, num_bins), factors
    )  # [D, K]
    second, first = np.sort(information, axis=0)[-2:]  # [K] each
    gaps = (first - second) / _utils.entropies(factors)  # [K]
    return {"discrete_mig": float(np.mean(gaps))}
