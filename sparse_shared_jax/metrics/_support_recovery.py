"""Recovery of the true task supports by the active features of learned heads.

A task's true support is the set of factors its label depends on; a learned
head's estimated support is the set of features it uses. Features and
factors live on different axes, so the two are only comparable after
matching features to factors, e.g. with the Hungarian matching of
`mcc_matching`. Given a matching, factor k is estimated active in task t if
any feature matched to k is active there, and the estimated and true
[tasks, factors] supports are compared entry by entry (micro-averaged
precision, recall and F1 over all task-factor pairs).

Active features matched to no factor are not counted as false positives
(the score is about factors); their share of all active (task, feature)
entries is reported separately as ``'unmatched_active_fraction'``.
"""

from __future__ import annotations

import numpy as np


def support_recovery(
    estimated_activation: np.ndarray,
    true_support: np.ndarray,
    *,
    feature_to_factor: np.ndarray | None = None,
    threshold: float = 0.0,
) -> dict[str, float]:
    """Precision, recall and F1 of the recovered task supports.

    Args:
      estimated_activation: [T, D] activity of each feature in each task's
        head, e.g. ``np.linalg.norm(W, axis=-1)`` for heads W [T, D, C], or a
        boolean mask; feature d is active in task t if
        ``|estimated_activation[t, d]| > threshold``.
      true_support: [T, K] boolean (or 0/1) mask of the factors each task
        depends on.
      feature_to_factor: [D] integer array, entry d the factor matched to
        feature d or -1 if none (as returned by `mcc_matching`); several
        features may share a factor. None means feature d is factor d, which
        needs D == K.
      threshold: activity above which a feature counts as active (>= 0).

    Returns:
      {'precision': TP / (TP + FP), 'recall': TP / (TP + FN),
       'f1': their harmonic mean, 'unmatched_active_fraction': share of
       active (task, feature) entries on features matched to no factor}, with
       each ratio defined as 0 when its denominator is 0.
    """
    active = _check_activation(estimated_activation, threshold)  # [T, D] bool
    truth = _check_support(true_support, len(active))  # [T, K] bool
    feature_to_factor = _check_matching(
        feature_to_factor, active.shape[1], truth.shape[1]
    )  # [D]
    matched = feature_to_factor >= 0  # [D]
    assignment = np.zeros((active.shape[1], truth.shape[1]))  # [D, K]
    assignment[np.flatnonzero(matched), feature_to_factor[matched]] = 1.0
    estimated = (active @ assignment) > 0  # [T, K]
    true_positives = np.count_nonzero(estimated & truth)
    precision = _ratio(true_positives, np.count_nonzero(estimated))
    recall = _ratio(true_positives, np.count_nonzero(truth))
    return {
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * precision * recall, precision + recall),
        "unmatched_active_fraction": _ratio(
            np.count_nonzero(active[:, ~matched]), np.count_nonzero(active)
        ),
    }


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator > 0 else 0.0


def _check_activation(estimated_activation: np.ndarray, threshold: float) -> np.ndarray:
    activation = np.asarray(estimated_activation)
    if activation.ndim != 2 or 0 in activation.shape:
        raise ValueError(
            "`estimated_activation` must be a non-empty 2-D array [T, D]; got "
            f"shape {activation.shape}."
        )
    if not (np.issubdtype(activation.dtype, np.number) or activation.dtype == np.bool_):
        raise ValueError(
            f"`estimated_activation` must be numeric or boolean; got dtype "
            f"{activation.dtype}."
        )
    activation = activation.astype(np.float64)
    if not np.all(np.isfinite(activation)):
        raise ValueError("`estimated_activation` contains NaN or infinite values.")
    if not threshold >= 0:
        raise ValueError(f"`threshold` must be >= 0; got {threshold}.")
    return np.abs(activation) > threshold


def _check_support(true_support: np.ndarray, num_tasks: int) -> np.ndarray:
    support = np.asarray(true_support)
    if support.ndim != 2 or support.shape[1] == 0:
        raise ValueError(
            "`true_support` must be a 2-D array [T, K] with K >= 1; got shape "
            f"{support.shape}."
        )
    if support.shape[0] != num_tasks:
        raise ValueError(
            f"`true_support` must have one row per task of `estimated_activation` "
            f"({num_tasks}); got {support.shape[0]}."
        )
    if not np.all(np.isin(support, (0, 1))):
        raise ValueError("`true_support` must be boolean or hold only 0 and 1.")
    return support.astype(bool)


def _check_matching(
    feature_to_factor: np.ndarray | None, num_features: int, num_factors: int
) -> np.ndarray:
    if feature_to_factor is None:
        if num_features != num_factors:
            raise ValueError(
                "Without `feature_to_factor`, features are taken to be factors, "
                f"which needs as many features ({num_features}) as factors "
                f"({num_factors}); pass a matching, e.g. from `mcc_matching`."
            )
        return np.arange(num_features)
    matching = np.asarray(feature_to_factor)
    if matching.shape != (num_features,):
        raise ValueError(
            f"`feature_to_factor` must have shape ({num_features},), one entry "
            f"per feature; got {matching.shape}."
        )
    if not np.issubdtype(matching.dtype, np.integer):
        raise ValueError(
            f"`feature_to_factor` must hold integers; got dtype {matching.dtype}."
        )
    if np.any((matching < -1) | (matching >= num_factors)):
        raise ValueError(
            f"`feature_to_factor` entries must lie in [-1, {num_factors}) "
            "(-1 = matched to no factor)."
        )
    return matching.astype(np.int64)
