"""Evaluation of a frozen encoder on data with known factors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from sparse_shared_jax import metrics
from sparse_shared_jax.data import GroundTruthDataset


def encode(
    params: Any,
    apply_fn: Callable[[Any, jax.Array], jax.Array],
    observations: np.ndarray,
    batch_size: int = 1024,
) -> np.ndarray:
    """Encodes observations [N, *obs] in batches -> features [N, k] (NumPy)."""
    apply = jax.jit(apply_fn)
    codes = [
        np.asarray(apply(params, observations[start : start + batch_size]))
        for start in range(0, len(observations), batch_size)
    ]
    return np.concatenate(codes)


def disentanglement_metrics(
    params: Any,
    apply_fn: Callable[[Any, jax.Array], jax.Array],
    dataset: GroundTruthDataset,
    num_samples: int,
    seed: int,
) -> dict[str, float]:
    """MCC and DCI of the encoder on factors sampled uniformly.

    Evaluation always samples factors independently and uniformly, whatever
    correlation the training factors had.

    Returns:
      {'mcc', 'dci_disentanglement', 'dci_completeness',
       'dci_informativeness_test'}.
    """
    rng = np.random.default_rng([seed, 1])
    factors = dataset.sample_factors(num_samples, rng)  # [N, K]
    codes = encode(params, apply_fn, dataset.observations(factors))  # [N, k]
    dci = metrics.dci(codes, factors)
    return {
        "mcc": float(metrics.mcc(codes, dataset.factor_values(factors))),
        "dci_disentanglement": float(dci["disentanglement"]),
        "dci_completeness": float(dci["completeness"]),
        "dci_informativeness_test": float(dci["informativeness_test"]),
    }
