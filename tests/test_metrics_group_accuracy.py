"""Average and worst-group accuracy, by hand."""

import numpy as np
import pytest

from sparse_shared_jax import metrics


def test_group_accuracies_by_hand():
    predictions = np.array([0, 1, 1, 0, 1, 1, 0])
    labels = np.array([0, 1, 0, 0, 1, 0, 1])
    groups = np.array([0, 0, 1, 1, 2, 2, 2])
    result = metrics.group_accuracies(predictions, labels, groups)
    assert result["average"] == pytest.approx(4 / 7)
    assert result["per_group"] == pytest.approx({0: 1.0, 1: 0.5, 2: 1 / 3})
    assert result["worst_group"] == pytest.approx(1 / 3)
    assert all(isinstance(group, int) for group in result["per_group"])


def test_average_weighs_samples_not_groups():
    predictions = np.array([1] * 9 + [0])
    labels = np.ones(10, dtype=int)
    groups = np.array([0] * 9 + [1])
    result = metrics.group_accuracies(predictions, labels, groups)
    assert result["average"] == pytest.approx(0.9)
    assert result["worst_group"] == 0.0


@pytest.mark.parametrize(
    ("predictions", "labels", "groups", "message"),
    [
        (np.zeros(3, int), np.zeros(4, int), np.zeros(3, int), "same length"),
        (np.zeros(3), np.zeros(3, int), np.zeros(3, int), "`predictions`.*integer"),
        (np.zeros((3, 1), int), np.zeros(3, int), np.zeros(3, int), "1-D"),
        (np.zeros(0, int), np.zeros(0, int), np.zeros(0, int), "at least 1"),
    ],
)
def test_group_accuracies_reject_bad_inputs(predictions, labels, groups, message):
    with pytest.raises(ValueError, match=message):
        metrics.group_accuracies(predictions, labels, groups)
