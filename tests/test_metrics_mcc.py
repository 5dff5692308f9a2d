"""MCC and its Hungarian matching on codes with known correlations."""

import numpy as np
import pytest

from sparse_shared_jax import metrics

NUM, K = 2000, 3


@pytest.fixture(scope="module")
def values():
    """Independent continuous factor values [NUM, K]."""
    return np.random.default_rng(0).uniform(-1.0, 1.0, size=(NUM, K))


def test_mcc_is_one_for_affine_codes_and_invariant_to_permutation_and_sign(values):
    permutation = [2, 0, 1]
    codes = values[:, permutation] * np.array([-3.0, 0.5, -0.1]) + 4.0
    assert metrics.mcc(values, values) == pytest.approx(1.0)
    assert metrics.mcc(codes, values) == pytest.approx(1.0)
    score, feature_to_factor = metrics.mcc_matching(codes, values)
    assert score == pytest.approx(1.0)
    np.testing.assert_array_equal(feature_to_factor, permutation)


def test_mcc_of_independent_codes_is_small(values):
    codes = np.random.default_rng(1).normal(size=(NUM, K))
    assert metrics.mcc(codes, values) < 0.1
    assert metrics.mcc(codes, values, method="spearman") < 0.1


def test_mcc_of_rotated_codes_is_cos_45_degrees(values):
    mix = np.array([[1.0, 1.0], [-1.0, 1.0]]) / np.sqrt(2.0)
    codes = np.concatenate([values[:, :2] @ mix, values[:, 2:]], axis=1)
    # Two factors correlate 1/sqrt(2) with their code, the third 1.
    expected = (2.0 / np.sqrt(2.0) + 1.0) / 3.0
    assert metrics.mcc(codes, values) == pytest.approx(expected, abs=0.03)


def test_spearman_mcc_is_invariant_to_monotone_maps(values):
    codes = np.exp(4.0 * values) ** 3
    assert metrics.mcc(codes, values, method="spearman") == pytest.approx(1.0)
    assert metrics.mcc(codes, values, method="pearson") < 0.8


def test_extra_codes_are_left_unmatched(values):
    noise = np.random.default_rng(2).normal(size=(NUM, 2))
    codes = np.concatenate([noise[:, :1], values, noise[:, 1:]], axis=1)  # D = 5
    score, feature_to_factor = metrics.mcc_matching(codes, values)
    assert score == pytest.approx(1.0)
    np.testing.assert_array_equal(feature_to_factor, [-1, 0, 1, 2, -1])


def test_missing_codes_count_as_zero_correlation(values):
    score, feature_to_factor = metrics.mcc_matching(values[:, :2], values)  # D = 2
    assert score == pytest.approx(2.0 / 3.0, abs=0.02)
    np.testing.assert_array_equal(feature_to_factor, [0, 1])


def test_dead_codes_correlate_zero(values):
    codes = values.copy()
    codes[:, 1] = 5.0  # a constant feature
    correlation = metrics.correlation_matrix(codes, values)
    assert np.all(np.isfinite(correlation))
    np.testing.assert_array_equal(correlation[1], 0.0)
    assert metrics.mcc(codes, values) == pytest.approx(2.0 / 3.0, abs=0.02)


@pytest.mark.parametrize(
    ("codes", "factor_values", "kwargs", "message"),
    [
        (np.full((10, 2), np.nan), np.ones((10, 2)), {}, "`codes` contains NaN"),
        (np.ones((10, 2)), np.arange(20.0).reshape(10, 2)[:9], {}, "one row per"),
        (np.ones((1, 2)), np.ones((1, 2)), {}, "at least 2 samples"),
        (np.ones((10, 2)), np.ones((10, 2)), {}, "constant"),
        (np.ones(10), np.arange(10.0)[:, None], {}, "2-D array"),
        (
            np.ones((10, 2)),
            np.arange(20.0).reshape(10, 2),
            {"method": "kendall"},
            "method",
        ),
    ],
)
def test_mcc_rejects_bad_inputs(codes, factor_values, kwargs, message):
    with pytest.raises(ValueError, match=message):
        metrics.mcc(codes, factor_values, **kwargs)
