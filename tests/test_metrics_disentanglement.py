"""DCI, MIG, SAP and modularity/explicitness on representations with known answers.

Factors are independent and uniform. The representations are
* 'disentangled': each code an affine function (permuted, rescaled, some
  signs flipped) of one factor;
* 'entangled': factors (0, 1) and (2, 3) mixed pairwise by a 45 degree
  rotation, so every code depends on two factors;
* 'random': Gaussian noise independent of the factors.
"""

import functools

import numpy as np
import pytest

from sparse_shared_jax import metrics

SIZES = (4, 6, 5, 3)
NUM = 1500
PERMUTATION = (2, 0, 3, 1)  # code d copies factor PERMUTATION[d]


@functools.cache
def factors() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.stack([rng.integers(0, size, NUM) for size in SIZES], axis=1)


@functools.cache
def representation(name: str) -> np.ndarray:
    values = factors() / (np.array(SIZES) - 1.0)  # [NUM, K] in [0, 1]
    if name == "disentangled":
        return values[:, PERMUTATION] * np.array([3.0, -0.5, 10.0, -2.0]) + 7.0
    if name == "entangled":
        mix = np.array([[1.0, 1.0], [-1.0, 1.0]]) / np.sqrt(2.0)
        return np.concatenate([values[:, :2] @ mix, values[:, 2:] @ mix], axis=1)
    if name == "random":
        return np.random.default_rng(1).normal(size=(NUM, len(SIZES)))
    raise ValueError(name)


@functools.cache
def scores(metric: str, name: str) -> dict[str, float]:
    metric_fn = {
        "dci": metrics.dci,
        "mig": metrics.mig,
        "sap": metrics.sap,
        "modularity": metrics.modularity_explicitness,
    }[metric]
    return metric_fn(representation(name), factors())


# DCI.


def test_dci_of_disentangled_codes_is_one():
    result = scores("dci", "disentangled")
    assert result["disentanglement"] > 0.97
    assert result["completeness"] > 0.97
    assert result["informativeness_train"] > 0.99
    assert result["informativeness_test"] > 0.99


def test_dci_of_random_codes_is_near_zero():
    result = scores("dci", "random")
    assert result["disentanglement"] < 0.1
    assert result["completeness"] < 0.1
    assert result["informativeness_test"] < 0.45  # chance is 0.28 on average


def test_dci_of_entangled_codes_is_clearly_lower():
    entangled, disentangled = scores("dci", "entangled"), scores("dci", "disentangled")
    assert entangled["disentanglement"] < disentangled["disentanglement"] - 0.3
    assert entangled["completeness"] < disentangled["completeness"] - 0.3


def test_dci_is_not_diluted_by_noisy_codes_and_extra_noise_dimensions():
    rng = np.random.default_rng(3)
    codes = representation("disentangled")
    codes = codes + 0.05 * codes.std(axis=0) * rng.normal(size=codes.shape)
    codes = np.concatenate([codes, rng.normal(size=(NUM, 4))], axis=1)  # D = 8
    result = metrics.dci(codes, factors())
    assert result["disentanglement"] > 0.93
    assert result["completeness"] > 0.93
    assert result["informativeness_test"] > 0.95


def test_importance_matrix_points_each_factor_to_its_code():
    result = metrics.dci_importance_matrix(representation("disentangled"), factors())
    importance = result.importance_matrix
    assert importance.shape == (len(SIZES), len(SIZES))  # [D, K]
    np.testing.assert_allclose(importance.sum(axis=0), 1.0)
    assert np.all(importance >= 0)
    best_code = importance.argmax(axis=0)  # [K]
    np.testing.assert_array_equal(PERMUTATION, np.argsort(best_code))


def test_dci_scores_of_hand_computed_importance_matrices():
    assert metrics.disentanglement_score(np.eye(3)) == pytest.approx(1.0)
    assert metrics.completeness_score(np.eye(3)) == pytest.approx(1.0)
    assert metrics.disentanglement_score(np.ones((3, 4))) == pytest.approx(0.0)
    assert metrics.completeness_score(np.ones((3, 4))) == pytest.approx(0.0)
    # Codes 0 and 1 both explain factor 0 only; code 2 explains factor 1 only.
    importance = np.array([[0.5, 0.0], [0.5, 0.0], [0.0, 1.0]])
    assert metrics.disentanglement_score(importance) == pytest.approx(1.0)
    factor0 = 1.0 - np.log(2.0) / np.log(3.0)  # column [1/2, 1/2, 0] over 3 codes
    expected = 0.5 * factor0 + 0.5 * 1.0  # both factors carry half the importance
    assert metrics.completeness_score(importance) == pytest.approx(expected)
    # One code explaining two of K = 3 factors equally: 1 - ln 2 / ln K.
    shared_code = np.array([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]])
    code0 = 1.0 - np.log(2.0) / np.log(3.0)
    expected = 0.5 * code0 + 0.5 * 1.0  # both codes carry half the importance
    assert metrics.disentanglement_score(shared_code) == pytest.approx(expected)
    # A code with no importance has no weight; an all-zero matrix scores 0.
    padded = np.vstack([importance, np.zeros((1, 2))])
    assert metrics.disentanglement_score(padded) == pytest.approx(1.0)
    assert metrics.disentanglement_score(np.zeros((2, 2))) == 0.0


@pytest.mark.parametrize("regressor", ["gbt", "lasso"])
def test_dci_other_regressors_score_disentangled_codes_high(regressor):
    codes, labels = representation("disentangled")[:400], factors()[:400]
    result = metrics.dci(codes, labels, regressor=regressor)
    assert result["disentanglement"] > 0.9
    assert result["completeness"] > 0.9


def test_dci_uses_a_given_test_set_and_is_deterministic():
    codes, labels = representation("entangled"), factors()
    first = metrics.dci(
        codes[:1000], labels[:1000], test_codes=codes[1000:], test_factors=labels[1000:]
    )
    again = metrics.dci(
        codes[:1000], labels[:1000], test_codes=codes[1000:], test_factors=labels[1000:]
    )
    assert first == again
    assert 0.9 < first["informativeness_test"] <= 1.0


# MIG.


def test_mig_of_disentangled_codes_is_one_and_of_random_codes_zero():
    assert scores("mig", "disentangled")["discrete_mig"] > 0.97
    assert scores("mig", "random")["discrete_mig"] < 0.05
    assert scores("mig", "entangled")["discrete_mig"] < 0.6


def test_mig_is_zero_for_a_factor_copied_into_two_codes():
    labels = factors()[:, :2]
    codes = np.concatenate([labels[:, :1], labels], axis=1).astype(float)
    # Factor 0 has no gap (two equal codes); factor 1 has a gap of ~1.
    assert metrics.mig(codes, labels)["discrete_mig"] == pytest.approx(0.5, abs=0.02)


# SAP.


def test_sap_of_disentangled_codes_is_high_and_of_random_codes_zero():
    # The best other code predicts a factor at chance, so the ceiling is
    # mean(1 - 1 / size) = 0.74.
    assert scores("sap", "disentangled")["sap_score"] > 0.65
    assert scores("sap", "random")["sap_score"] < 0.05
    assert scores("sap", "entangled")["sap_score"] < 0.4


def test_sap_linear_svm_variant_ranks_the_representations():
    disentangled = metrics.sap(
        representation("disentangled"), factors(), classifier="linear_svm"
    )
    random = metrics.sap(representation("random"), factors(), classifier="linear_svm")
    assert disentangled["sap_score"] > random["sap_score"] + 0.1


# Modularity and explicitness.


def test_modularity_and_explicitness_of_disentangled_codes_are_one():
    result = scores("modularity", "disentangled")
    assert result["modularity_score"] > 0.97
    assert result["explicitness_score_train"] > 0.95
    assert result["explicitness_score_test"] > 0.95


def test_modularity_of_entangled_codes_is_lower_and_random_is_not_explicit():
    # Each entangled code carries about twice as much information about one
    # factor of its pair as about the other; modularity squares the
    # information and divides the off-template part by K - 1, so it drops to
    # about 0.87 only.
    entangled = scores("modularity", "entangled")["modularity_score"]
    assert entangled < scores("modularity", "disentangled")["modularity_score"] - 0.1
    assert scores("modularity", "random")["explicitness_score_test"] < 0.6


# Input checks.

GOOD_CODES = np.random.default_rng(2).normal(size=(50, 3))
GOOD_FACTORS = np.tile(np.array([[0, 1], [1, 0]]), (25, 1))
CODE_METRICS = [
    metrics.dci,
    metrics.mig,
    metrics.sap,
    metrics.modularity_explicitness,
]


def _with_nan(array):
    array = array.copy()
    array[3, 1] = np.nan
    return array


@pytest.mark.parametrize("metric_fn", CODE_METRICS)
@pytest.mark.parametrize(
    ("codes", "labels", "message"),
    [
        (_with_nan(GOOD_CODES), GOOD_FACTORS, "`codes` contains NaN"),
        (GOOD_CODES[:, 0], GOOD_FACTORS, r"`codes` must be a 2-D array"),
        (GOOD_CODES[:1], GOOD_FACTORS[:1], "at least 2 samples"),
        (GOOD_CODES, GOOD_FACTORS[:40], "one row per sample"),
        (GOOD_CODES, GOOD_FACTORS.astype(float), "integer labels"),
        (GOOD_CODES, np.zeros((50, 2), dtype=int), "single value"),
    ],
)
def test_code_metrics_reject_bad_inputs(metric_fn, codes, labels, message):
    with pytest.raises(ValueError, match=message):
        metric_fn(codes, labels)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: metrics.dci(GOOD_CODES, GOOD_FACTORS, regressor="svm"), "regressor"),
        (lambda: metrics.sap(GOOD_CODES, GOOD_FACTORS, classifier="x"), "classifier"),
        (lambda: metrics.dci(GOOD_CODES, GOOD_FACTORS, test_fraction=1.0), "(0, 1)"),
        (lambda: metrics.mig(GOOD_CODES, GOOD_FACTORS, num_bins=1), "num_bins"),
        (lambda: metrics.mig(GOOD_CODES[:, :1], GOOD_FACTORS), "2 dimensions"),
        (lambda: metrics.sap(GOOD_CODES[:, :1], GOOD_FACTORS), "2 dimensions"),
        (
            lambda: metrics.modularity_explicitness(GOOD_CODES, GOOD_FACTORS[:, :1]),
            "2 columns",
        ),
        (
            lambda: metrics.dci(GOOD_CODES, GOOD_FACTORS, test_codes=GOOD_CODES),
            "both `test_codes` and `test_factors`",
        ),
        (
            lambda: metrics.dci(
                GOOD_CODES,
                GOOD_FACTORS,
                test_codes=GOOD_CODES[:, :2],
                test_factors=GOOD_FACTORS,
            ),
            "`test_codes` must have 3 columns",
        ),
        (lambda: metrics.completeness_score(-np.eye(2)), "nonnegative"),
    ],
)
def test_metric_options_are_checked(call, message):
    with pytest.raises(ValueError, match=message):
        call()
