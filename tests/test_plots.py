"""Every plot writes a readable PNG, handles edge cases and rejects bad shapes."""

import matplotlib.image
import numpy as np
import pytest

from sparse_shared_jax import plots

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
NAMES = ("shape", "scale", "pos_x")  # K = 3


def assert_png(path):
    """`path` is a non-empty PNG that matplotlib reads as RGB(A) pixels."""
    assert path.stat().st_size > 0
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.ndim == 3
    assert image.shape[0] > 50 and image.shape[1] > 50
    assert image.shape[2] in (3, 4)


@pytest.fixture(scope="module")
def data():
    """Codes [num, k = 4] matched to discrete factors [num, K = 3]."""
    rng = np.random.default_rng(0)
    num = 600
    factors = np.stack(
        [rng.integers(0, 3, num), rng.integers(0, 6, num), rng.integers(0, 32, num)],
        axis=1,
    )  # [num, K]
    codes = rng.normal(size=(num, 4))  # [num, k]
    codes[:, 2] += factors[:, 0]
    codes[:, 0] += factors[:, 2] / 8.0
    feature_to_factor = np.array([2, -1, 0, 1])  # [k]
    return codes, factors, feature_to_factor


# --- plot_activation_matrix ------------------------------------------------


def test_activation_matrix_with_support_and_matching(tmp_path):
    activation = np.array([[0.0, 1e-4, 2.0, 0.0], [0.5, 0.0, 0.0, 1.0]])  # [T, k]
    support = np.array([[1, 0, 1], [0, 1, 0]], dtype=bool)  # [T, K]
    path = plots.plot_activation_matrix(
        activation,
        tmp_path / "nested" / "dir" / "activation.png",
        true_support=support,
        factor_names=NAMES,
        feature_to_factor=np.array([2, -1, 0, 1]),
    )
    assert path == tmp_path / "nested" / "dir" / "activation.png"
    assert_png(path)


@pytest.mark.parametrize(
    "activation",
    [np.zeros((5, 8)), np.ones((1, 3)), np.eye(4, dtype=bool)],
    ids=["all_zero", "one_task", "boolean"],
)
def test_activation_matrix_edge_cases(tmp_path, activation):
    assert_png(plots.plot_activation_matrix(activation, tmp_path / "a.png"))


def test_activation_matrix_with_many_tasks_and_features(tmp_path):
    rng = np.random.default_rng(0)
    activation = np.where(rng.uniform(size=(70, 130)) < 0.1, 1.0, 0.0)
    assert_png(plots.plot_activation_matrix(activation, str(tmp_path / "big.png")))


def test_activation_matrix_matching_without_names(tmp_path):
    path = plots.plot_activation_matrix(
        np.ones((2, 3)), tmp_path / "a.png", feature_to_factor=np.array([-1, -1, 0])
    )
    assert_png(path)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"activation": np.ones(4)}, "`activation` must be a non-empty 2-D"),
        ({"activation": np.ones((0, 3))}, "`activation` must be a non-empty 2-D"),
        ({"activation": -np.ones((2, 3))}, "`activation` must be non-negative"),
        ({"true_support": np.ones((3, 3))}, r"`true_support` must have shape \[T, K\]"),
        ({"true_support": np.full((2, 3), 0.5)}, "`true_support` must hold"),
        ({"factor_names": ("a", "b")}, "`factor_names` must have 3 entries"),
        ({"feature_to_factor": np.array([0, 1])}, r"shape \(4,\)"),
        ({"feature_to_factor": np.array([0, 1, 2, 3])}, r"lie in \[-1, 3\)"),
        ({"feature_to_factor": np.zeros(4)}, "must hold integers"),
    ],
)
def test_activation_matrix_rejects_bad_inputs(tmp_path, kwargs, match):
    arguments = {
        "activation": np.ones((2, 4)),
        "true_support": np.ones((2, 3), dtype=bool),
        "factor_names": NAMES,
    } | kwargs
    with pytest.raises(ValueError, match=match):
        plots.plot_activation_matrix(path=tmp_path / "a.png", **arguments)


# --- plot_importance_matrix ------------------------------------------------


@pytest.mark.parametrize(
    "importance",
    [
        np.random.default_rng(0).uniform(size=(6, 3)),  # annotated
        np.random.default_rng(0).uniform(size=(40, 6)),  # too many cells to annotate
        np.zeros((2, 3)),
    ],
    ids=["small", "large", "all_zero"],
)
def test_importance_matrix(tmp_path, importance):
    names = [f"z{k}" for k in range(importance.shape[1])]
    path = plots.plot_importance_matrix(
        importance, tmp_path / "importance.png", factor_names=names
    )
    assert_png(path)


def test_importance_matrix_without_names(tmp_path):
    assert_png(plots.plot_importance_matrix(np.eye(3), tmp_path / "i.png"))


@pytest.mark.parametrize(
    ("importance", "names", "match"),
    [
        (
            np.ones((2, 3, 1)),
            None,
            r"`importance` must be a non-empty 2-D array \[k, K\]",
        ),
        (np.full((2, 3), np.nan), None, "NaN"),
        (-np.ones((2, 3)), None, "non-negative"),
        (np.ones((2, 3)), ("a", "b"), "`factor_names` must be a sequence of 3"),
        (np.ones((2, 3)), "abc", "`factor_names` must be a sequence of 3"),
    ],
)
def test_importance_matrix_rejects_bad_inputs(tmp_path, importance, names, match):
    with pytest.raises(ValueError, match=match):
        plots.plot_importance_matrix(importance, tmp_path / "i.png", factor_names=names)


# --- plot_feature_vs_factor ------------------------------------------------


def test_feature_vs_factor_with_unmatched_factor(tmp_path, data):
    codes, factors, feature_to_factor = data
    feature_to_factor = np.where(feature_to_factor == 1, -1, feature_to_factor)
    path = plots.plot_feature_vs_factor(
        codes,
        factors,
        feature_to_factor,
        tmp_path / "features.png",
        factor_names=NAMES,
        max_points=100,
    )
    assert_png(path)


def test_feature_vs_factor_with_continuous_factors_and_shared_factor(tmp_path):
    rng = np.random.default_rng(1)
    values = rng.uniform(size=(300, 2))  # [num, K] continuous
    codes = np.concatenate([values, values[:, :1] ** 2], axis=1)  # [num, k = 3]
    path = plots.plot_feature_vs_factor(
        codes, values, np.array([0, 1, 0]), tmp_path / "features.png"
    )
    assert_png(path)


def test_feature_vs_factor_with_nothing_matched(tmp_path, data):
    codes, factors, _ = data
    path = plots.plot_feature_vs_factor(
        codes, factors[:, :1], np.full(4, -1), tmp_path / "f.png"
    )
    assert_png(path)


def test_feature_vs_factor_subsample_is_deterministic(tmp_path, data):
    codes, factors, feature_to_factor = data
    first, second = (
        plots.plot_feature_vs_factor(
            codes, factors, feature_to_factor, tmp_path / name, max_points=50
        ).read_bytes()
        for name in ("first.png", "second.png")
    )
    assert first == second


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"codes": np.ones(600)}, r"`codes` must be a non-empty 2-D array \[num, k\]"),
        ({"factor_values": np.ones((599, 3))}, r"`factor_values` must have shape"),
        ({"feature_to_factor": np.array([0, 1])}, r"`feature_to_factor` must have"),
        ({"feature_to_factor": np.array([0, 1, 2, 3])}, r"lie in \[-1, 3\)"),
        ({"factor_names": ("a",)}, "`factor_names` must be a sequence of 3"),
        ({"max_points": 0}, "`max_points` must be at least 1"),
        ({"max_points": 1.5}, "`max_points` must be an integer"),
    ],
)
def test_feature_vs_factor_rejects_bad_inputs(tmp_path, data, change, match):
    codes, factors, feature_to_factor = data
    arguments = {
        "codes": codes,
        "factor_values": factors,
        "feature_to_factor": feature_to_factor,
    } | change
    with pytest.raises(ValueError, match=match):
        plots.plot_feature_vs_factor(path=tmp_path / "f.png", **arguments)


# --- plot_training_curves --------------------------------------------------


def test_training_curves(tmp_path):
    steps = range(0, 1000, 10)
    history = {
        "query_loss": [(step, 1.0 / (1 + step)) for step in steps],
        "query_accuracy": [(step, step / 1000) for step in steps],
        "active_features": [(step, 5) for step in steps],
        "grad_norm": [(990, 0.3), (0, 1.0)],  # out of order: sorted by step
        "sharing_entropy": [],  # skipped
    }
    assert_png(plots.plot_training_curves(history, tmp_path / "curves.png"))


@pytest.mark.parametrize(
    "history",
    [{"query_loss": [(0, 2.3)]}, {"query_loss": []}, {}],
    ids=["single_point", "only_empty", "no_series"],
)
def test_training_curves_edge_cases(tmp_path, history):
    assert_png(plots.plot_training_curves(history, tmp_path / "curves.png"))


@pytest.mark.parametrize(
    ("history", "match"),
    [
        ({"loss": [(0, 1.0, 2.0)]}, r"`history\['loss'\]` must be a sequence"),
        ({"loss": [1.0, 2.0]}, r"shape \[n, 2\]"),
        ({"loss": [(0, 1.0), (1, 2.0, 3.0)]}, r"`history\['loss'\]` must be"),
        ({"loss": [(0, "low")]}, r"`history\['loss'\]` must be"),
        ([(0, 1.0)], "`history` must map metric names"),
    ],
)
def test_training_curves_rejects_bad_inputs(tmp_path, history, match):
    with pytest.raises(ValueError, match=match):
        plots.plot_training_curves(history, tmp_path / "curves.png")
