"""Evaluation of a frozen encoder on data with known factors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from sparse_shared_jax import bilevel, losses, metrics
from sparse_shared_jax.data import Episode, GroundTruthDataset

ApplyFn = Callable[[Any, jax.Array], jax.Array]


def encode(
    params: Any, apply_fn: ApplyFn, observations: np.ndarray, batch_size: int = 1024
) -> np.ndarray:
    """Encodes observations [N, *obs] in jitted batches -> features [N, k]."""
    apply = jax.jit(apply_fn)
    codes = [
        np.asarray(apply(params, observations[start : start + batch_size]))
        for start in range(0, len(observations), batch_size)
    ]
    return np.concatenate(codes)


def representation_metrics(
    params: Any,
    apply_fn: ApplyFn,
    dataset: GroundTruthDataset,
    num_samples: int,
    seed: int,
) -> tuple[dict[str, float], np.ndarray]:
    """All disentanglement metrics on factors sampled uniformly.

    Evaluation always samples factors independently and uniformly, whatever
    correlation the training factors had.

    Returns:
      (scores, feature_to_factor): scores holds mcc, dci_disentanglement,
      dci_completeness, dci_informativeness_test, mig, sap, modularity and
      explicitness; feature_to_factor [k] is MCC's feature -> factor matching
      (-1: unmatched), for `support_recovery_metrics`.
    """
    rng = np.random.default_rng([seed, 1])
    factors = dataset.sample_factors(num_samples, rng)  # [N, K]
    codes = encode(params, apply_fn, dataset.observations(factors))  # [N, k]
    mcc, feature_to_factor = metrics.mcc_matching(codes, dataset.factor_values(factors))
    dci = metrics.dci(codes, factors, seed=seed)
    modularity = metrics.modularity_explicitness(codes, factors, seed=seed)
    scores = {
        "mcc": mcc,
        "dci_disentanglement": dci["disentanglement"],
        "dci_completeness": dci["completeness"],
        "dci_informativeness_test": dci["informativeness_test"],
        "mig": metrics.mig(codes, factors)["discrete_mig"],
        "sap": metrics.sap(codes, factors, seed=seed)["sap_score"],
        "modularity": modularity["modularity_score"],
        "explicitness": modularity["explicitness_score_test"],
    }
    return {name: float(value) for name, value in scores.items()}, feature_to_factor


def support_recovery_metrics(
    params: Any,
    apply_fn: ApplyFn,
    episode: Episode,
    settings: bilevel.BilevelSettings,
    feature_to_factor: np.ndarray,
) -> dict[str, float]:
    """How well the heads' active features recover the tasks' true factors.

    Solves the heads of `episode` (its tasks record their true supports) and
    compares each task's active features, mapped to factors by
    `feature_to_factor`, with the factors its label depends on.

    Returns:
      {'support_precision', 'support_recall', 'support_f1'}.
    """

    @jax.jit
    def usage(params, episode):
        support, _ = bilevel.episode_features(
            params, apply_fn, episode, settings.normalization
        )
        heads = bilevel.fit_heads(support, episode.support_y, settings)
        return losses.row_norms(heads.W)  # [T, k]

    activation = np.asarray(usage(params, bilevel.EpisodeBatch.from_episode(episode)))
    recovery = metrics.support_recovery(
        activation, episode.tasks.support, feature_to_factor=feature_to_factor
    )
    return {f"support_{name}": recovery[name] for name in ("precision", "recall", "f1")}
