"""Support recovery of learned heads against true task supports, by hand."""

import numpy as np
import pytest

from sparse_shared_jax import metrics

# 3 tasks x 3 factors.
TRUE_SUPPORT = np.array(
    [
        [1, 0, 0],
        [1, 1, 0],
        [0, 0, 1],
    ],
    dtype=bool,
)


def test_perfect_recovery_without_matching():
    activation = np.where(TRUE_SUPPORT, 0.7, 0.0)  # [T, D = K]
    result = metrics.support_recovery(activation, TRUE_SUPPORT)
    assert result == {
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
        "unmatched_active_fraction": 0.0,
    }


def test_recovery_through_a_matching_counts_hits_by_hand():
    # 4 features: feature 0 <-> factor 2, feature 1 <-> factor 0,
    # feature 2 unmatched, feature 3 <-> factor 1.
    feature_to_factor = np.array([2, 0, -1, 1])
    activation = np.array(
        [
            [0.0, 0.9, 0.0, 0.0],  # factor 0: correct
            [0.0, 0.5, 0.3, 0.0],  # factor 0 correct, factor 1 missed, unmatched on
            [0.2, 0.0, 0.0, -0.4],  # factor 2 correct, factor 1 wrong
        ]
    )  # [T, D]
    result = metrics.support_recovery(
        activation, TRUE_SUPPORT, feature_to_factor=feature_to_factor
    )
    # Estimated [T, K] = [[1,0,0],[1,0,0],[0,1,1]]: TP 3, FP 1, FN 1.
    assert result["precision"] == pytest.approx(3 / 4)
    assert result["recall"] == pytest.approx(3 / 4)
    assert result["f1"] == pytest.approx(3 / 4)
    assert result["unmatched_active_fraction"] == pytest.approx(1 / 5)  # 1 of 5


def test_threshold_and_features_sharing_a_factor():
    feature_to_factor = np.array([0, 0, 1, 2])  # features 0 and 1 both factor 0
    activation = np.array(
        [
            [0.05, 0.0, 0.0, 0.0],  # below the threshold: nothing estimated
            [0.0, 0.5, 0.5, 0.0],
            [0.0, 0.0, 0.0, 0.5],
        ]
    )
    result = metrics.support_recovery(
        activation, TRUE_SUPPORT, feature_to_factor=feature_to_factor, threshold=0.1
    )
    # Estimated [[0,0,0],[1,1,0],[0,0,1]]: TP 3, FP 0, FN 1.
    assert result["precision"] == pytest.approx(1.0)
    assert result["recall"] == pytest.approx(3 / 4)
    assert result["f1"] == pytest.approx(2 * 0.75 / 1.75)


def test_no_active_feature_gives_zero_not_nan():
    result = metrics.support_recovery(np.zeros((3, 3)), TRUE_SUPPORT)
    assert result == {
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "unmatched_active_fraction": 0.0,
    }


def test_works_with_the_mcc_matching():
    values = np.random.default_rng(0).uniform(size=(500, 3))  # [num, K]
    codes = np.concatenate([values[:, [1, 2, 0]], np.ones((500, 1))], axis=1)
    _, feature_to_factor = metrics.mcc_matching(codes, values)
    activation = np.zeros((3, 4))
    activation[:, 3] = 1.0  # the dead feature is used by every head
    activation[np.nonzero(TRUE_SUPPORT[:, [1, 2, 0]])] = 1.0
    result = metrics.support_recovery(
        activation, TRUE_SUPPORT, feature_to_factor=feature_to_factor
    )
    assert result["f1"] == pytest.approx(1.0)
    assert result["unmatched_active_fraction"] == pytest.approx(3 / 7)


@pytest.mark.parametrize(
    ("activation", "support", "kwargs", "message"),
    [
        (np.zeros((3, 4)), TRUE_SUPPORT, {}, "as many features"),
        (np.zeros((2, 3)), TRUE_SUPPORT, {}, "one row per task"),
        (np.full((3, 3), np.nan), TRUE_SUPPORT, {}, "NaN"),
        (np.zeros(3), TRUE_SUPPORT, {}, "2-D array"),
        (np.zeros((3, 3)), TRUE_SUPPORT * 2, {}, "only 0 and 1"),
        (np.zeros((3, 3)), TRUE_SUPPORT, {"threshold": -1.0}, "threshold"),
        (
            np.zeros((3, 3)),
            TRUE_SUPPORT,
            {"feature_to_factor": np.array([0, 1])},
            "shape",
        ),
        (
            np.zeros((3, 3)),
            TRUE_SUPPORT,
            {"feature_to_factor": np.array([0, 1, 3])},
            r"\[-1, 3\)",
        ),
        (
            np.zeros((3, 3)),
            TRUE_SUPPORT,
            {"feature_to_factor": np.array([0.0, 1.0, 2.0])},
            "integers",
        ),
    ],
)
def test_support_recovery_rejects_bad_inputs(activation, support, kwargs, message):
    with pytest.raises(ValueError, match=message):
        metrics.support_recovery(activation, support, **kwargs)
