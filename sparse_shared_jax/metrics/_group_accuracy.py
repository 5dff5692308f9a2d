"""Accuracy overall and per group, for robustness to spurious correlations."""

from __future__ import annotations

import numpy as np


def group_accuracies(
    predictions: np.ndarray, labels: np.ndarray, groups: np.ndarray
) -> dict:
    """Overall, worst-group and per-group accuracy.

    Args:
      predictions: [num] integer (or boolean) predicted classes.
      labels: [num] integer (or boolean) true classes.
      groups: [num] integer group ids (e.g. class x spurious attribute).

    Returns:
      {'average': accuracy over all samples (each sample weighs the same),
       'worst_group': the smallest per-group accuracy,
       'per_group': {group id (int): accuracy of that group's samples}}.
    """
    predictions = _check_labels(predictions, "predictions")
    labels = _check_labels(labels, "labels")
    groups = _check_labels(groups, "groups")
    if not len(predictions) == len(labels) == len(groups):
        raise ValueError(
            "`predictions`, `labels` and `groups` must have the same length; got "
            f"{len(predictions)}, {len(labels)} and {len(groups)}."
        )
    correct = predictions == labels  # [num]
    per_group = {
        int(group): float(np.mean(correct[groups == group]))
        for group in np.unique(groups)
    }
    return {
        "average": float(np.mean(correct)),
        "worst_group": min(per_group.values()),
        "per_group": per_group,
    }


def _check_labels(array: np.ndarray, name: str) -> np.ndarray:
    """Checks a non-empty 1-D array of integer (or boolean) labels."""
    array = np.asarray(array)
    if array.ndim != 1:
        raise ValueError(
            f"`{name}` must be a 1-D array [num]; got shape {array.shape}."
        )
    if array.size == 0:
        raise ValueError(f"`{name}` must hold at least 1 sample; got 0.")
    if not (np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_):
        raise ValueError(f"`{name}` must hold integer labels; got dtype {array.dtype}.")
    return array.astype(np.int64)
