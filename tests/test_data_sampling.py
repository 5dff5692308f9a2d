"""Tests of factor samplers, the nonlinear-mixing dataset, tasks and episodes."""

import itertools

import jax
import numpy as np
import pytest
from scipy import stats

from sparse_shared_jax import data
from sparse_shared_jax.data import factor_sampling, nonlinear_mixing


class _Toy(data.GroundTruthDataset):
    """A constant factor, a 3-valued and a 12-valued one; observations = values."""

    factor_names = ("constant", "three", "twelve")
    factor_sizes = (1, 3, 12)
    observation_shape = (3,)

    def observations(self, factors):
        return self.factor_values(factors).astype(np.float32)


@pytest.fixture(scope="module")
def mixing():
    return data.ground_truth("nonlinear_mixing")


def _uniform_values(dataset, num, seed=1):
    factors = dataset.sample_factors(num, np.random.default_rng(seed))
    return dataset.factor_values(factors)  # [num, K]


# ----------------------------------------------------------------------------
# Factor samplers.


def _assert_uniform_marginals(factors, sizes):
    num = factors.shape[0]
    for column, size in zip(factors.T, sizes, strict=True):
        assert column.min() >= 0 and column.max() < size
        frequencies = np.bincount(column, minlength=size) / num
        tolerance = 5 * np.sqrt((1 / size) * (1 - 1 / size) / num)
        np.testing.assert_allclose(frequencies, 1 / size, atol=tolerance)


def test_uniform_sampler_has_uniform_independent_marginals():
    sizes = (3, 7, 12)
    factors = factor_sampling.sample_uniform(sizes, 30000, np.random.default_rng(0))
    assert factors.shape == (30000, 3) and factors.dtype == np.int64
    _assert_uniform_marginals(factors, sizes)
    rank_correlation = stats.spearmanr(factors).statistic
    np.testing.assert_allclose(rank_correlation, np.eye(3), atol=0.03)


@pytest.mark.parametrize("rho", [0.0, 0.3, 0.5, 0.6, 0.9])
def test_correlated_sampler_rank_correlation_and_uniform_marginals(rho):
    sizes = (8, 10, 12, 15)
    factors = factor_sampling.sample_correlated(
        sizes, 30000, np.random.default_rng(0), rho
    )
    assert factors.shape == (30000, 4) and factors.dtype == np.int64
    _assert_uniform_marginals(factors, sizes)
    # Spearman correlation of a Gaussian copula with correlation rho.
    expected = 6 / np.pi * np.arcsin(rho / 2)
    assert abs(expected - rho) < 0.02
    rank_correlation = stats.spearmanr(factors).statistic
    off_diagonal = rank_correlation[~np.eye(4, dtype=bool)]
    np.testing.assert_allclose(off_diagonal, expected, atol=0.03)
    np.testing.assert_allclose(off_diagonal, rho, atol=0.05)  # the requested rho


@pytest.mark.parametrize("rho", [-0.1, 1.0, 1.5])
def test_correlated_sampler_rejects_bad_correlation(rho):
    with pytest.raises(ValueError, match="correlation"):
        factor_sampling.sample_correlated((3, 4), 10, np.random.default_rng(0), rho)


def test_dataset_sample_factors_uses_correlation(mixing):
    rng = np.random.default_rng(0)
    independent = mixing.sample_factors(5000, rng)
    correlated = mixing.sample_factors(5000, rng, correlation=0.9)
    assert np.abs(stats.spearmanr(independent[:, :2]).statistic) < 0.05
    assert stats.spearmanr(correlated[:, :2]).statistic > 0.8


# ----------------------------------------------------------------------------
# Nonlinear mixing.


def test_nonlinear_mixing_is_registered_with_defaults(mixing):
    assert "nonlinear_mixing" in data.registered_names()
    assert mixing.factor_sizes == (12,) * 5
    assert mixing.observation_shape == (20,)
    factors = mixing.sample_factors(7, 0)
    observations = mixing.observations(factors)
    assert observations.shape == (7, 20) and observations.dtype == np.float32
    values = mixing.factor_values(factors)
    assert values.min() >= -1 and values.max() <= 1


def test_nonlinear_mixing_is_deterministic_in_factors_and_seed(mixing):
    factors = mixing.sample_factors(100, 0)
    again = data.ground_truth("nonlinear_mixing").observations(factors)
    np.testing.assert_array_equal(mixing.observations(factors), again)
    other_seed = data.ground_truth("nonlinear_mixing", seed=1).observations(factors)
    assert not np.allclose(other_seed, again)


def _min_distance_ratio(dataset, num=1000):
    """min over pairs of distinct factors of |f(a) - f(b)| / |v(a) - v(b)|."""
    factors = np.unique(dataset.sample_factors(num, 0), axis=0)
    x = dataset.observations(factors).astype(np.float64)
    v = dataset.factor_values(factors)
    pairs = np.triu_indices(len(factors), k=1)
    dx = np.linalg.norm(x[pairs[0]] - x[pairs[1]], axis=1)
    dv = np.linalg.norm(v[pairs[0]] - v[pairs[1]], axis=1)
    return (dx / dv).min() / np.median(dx / dv)


def test_nonlinear_mixing_is_injective(mixing):
    # Bi-Lipschitz from below: no two distinct factor vectors come close.
    assert _min_distance_ratio(mixing) > 0.05
    # The check detects a non-injective map (a lift of rank K - 1).
    collapsed = nonlinear_mixing.NonlinearMixing()
    collapsed._lift = collapsed._lift.copy()
    collapsed._lift[:, 0] = collapsed._lift[:, 1]
    assert _min_distance_ratio(collapsed) < 1e-6


def test_nonlinear_mixing_jacobian_has_full_column_rank(mixing):
    # The map is piecewise linear in the factor values: a central difference
    # along each factor (one grid step) spans K directions at every point.
    factors = mixing.sample_factors(200, 0).clip(1, 10)  # [n, K]
    jacobians = []
    for i in range(mixing.num_factors):
        step = np.eye(mixing.num_factors, dtype=np.int64)[i]
        difference = mixing.observations(factors + step) - mixing.observations(
            factors - step
        )
        jacobians.append(difference.astype(np.float64))
    singular = np.linalg.svd(np.stack(jacobians, axis=-1), compute_uv=False)
    assert (singular[:, -1] / singular[:, 0]).min() > 1e-2


def test_nonlinear_mixing_is_nonlinear_unless_num_layers_is_zero():
    def linear_r2(dataset):
        factors = dataset.sample_factors(4000, 0)
        v = np.c_[dataset.factor_values(factors), np.ones(len(factors))]
        x = dataset.observations(factors)
        residual = x - v @ np.linalg.lstsq(v, x, rcond=None)[0]
        return 1 - residual.var() / x.var()

    assert linear_r2(nonlinear_mixing.NonlinearMixing()) < 0.95
    assert linear_r2(nonlinear_mixing.NonlinearMixing(num_layers=0)) > 0.9999


@pytest.mark.parametrize(
    "options, name",
    [
        ({"observation_dim": 4}, "observation_dim"),
        ({"num_values": 1}, "num_values"),
        ({"negative_slope": 0.0}, "negative_slope"),
        ({"num_layers": -1}, "num_layers"),
    ],
)
def test_nonlinear_mixing_rejects_bad_options(options, name):
    with pytest.raises(ValueError, match=name):
        nonlinear_mixing.NonlinearMixing(**options)


# ----------------------------------------------------------------------------
# Tasks.


def test_bernoulli_supports_are_nonempty_and_independent(mixing):
    p = 0.3
    tasks = data.sample_tasks(
        mixing, 4000, 0, label_type="regression", support="bernoulli", support_prob=p
    )
    assert tasks.support.shape == (4000, 5) and tasks.support.dtype == bool
    assert tasks.support.any(axis=1).all()
    # Inclusion probability conditioned on a non-empty support.
    expected = p / (1 - (1 - p) ** 5)
    np.testing.assert_allclose(tasks.support.mean(axis=0), expected, atol=0.03)
    # Consecutive tasks (and factors within a task) are uncorrelated.
    flat = tasks.support.astype(float)
    consecutive = np.corrcoef(flat[:-1].ravel(), flat[1:].ravel())[0, 1]
    assert abs(consecutive) < 0.05
    # Coefficients: bounded away from zero on the support, zero off it.
    on_support = np.abs(tasks.coefficients[tasks.support])
    assert on_support.min() >= 0.5 and on_support.max() <= 1.5
    assert (tasks.coefficients[~tasks.support] == 0).all()


def test_fixed_supports_have_the_size_and_cover_all_subsets(mixing):
    tasks = data.sample_tasks(
        mixing, 2000, 0, label_type="regression", support="fixed", num_relevant=2
    )
    assert (tasks.support.sum(axis=1) == 2).all()
    subsets = {tuple(np.flatnonzero(row)) for row in tasks.support}
    assert subsets == set(itertools.combinations(range(5), 2))


def test_supports_skip_constant_and_too_coarse_factors():
    # One class would be empty on the 3-valued factor with C = 4, so every
    # size-1 task uses the 12-valued factor; the constant one never appears.
    tasks = data.sample_tasks(
        _Toy(),
        100,
        0,
        label_type="multiclass",
        num_classes=4,
        support="fixed",
        num_relevant=1,
    )
    np.testing.assert_array_equal(tasks.support, [[False, False, True]] * 100)
    binary = data.sample_tasks(_Toy(), 200, 0, label_type="binary")
    assert not binary.support[:, 0].any()
    assert binary.support[:, 1].any()


def test_binary_labels_are_balanced_on_uniform_factors(mixing):
    tasks = data.sample_tasks(mixing, 64, 0, label_type="binary")
    labels = data.task_labels(tasks, _uniform_values(mixing, 20000))
    assert labels.shape == (64, 20000) and labels.dtype == np.int32
    assert set(np.unique(labels)) == {0, 1}
    np.testing.assert_allclose(labels.mean(axis=1), 0.5, atol=0.03)


@pytest.mark.parametrize("num_classes", [3, 4])
def test_multiclass_bins_are_balanced(mixing, num_classes):
    tasks = data.sample_tasks(
        mixing, 32, 0, label_type="multiclass", num_classes=num_classes
    )
    assert tasks.num_classes == num_classes
    assert tasks.edges.shape == (32, num_classes - 1)
    labels = data.task_labels(tasks, _uniform_values(mixing, 20000))
    frequencies = np.stack([(labels == c).mean(1) for c in range(num_classes)], 1)
    # Tasks on one 12-valued factor with C = 3 can only split 4/4/4 values,
    # and with C = 4 3/3/3/3, so every bin is balanced.
    np.testing.assert_allclose(frequencies, 1 / num_classes, atol=0.04)


@pytest.mark.parametrize("snr", [1.0, 10.0])
def test_regression_targets_have_the_configured_snr(mixing, snr):
    tasks = data.sample_tasks(mixing, 16, 0, label_type="regression", snr=snr)
    assert tasks.num_classes is None
    values = _uniform_values(mixing, 20000)
    signal = data.task_labels(tasks, values)  # noise-free
    noisy = data.task_labels(tasks, values, np.random.default_rng(2))
    assert noisy.dtype == np.float32
    # Under uniform factors the signal variance is sum_i c_i^2.
    np.testing.assert_allclose(
        signal.var(axis=1), (tasks.coefficients**2).sum(axis=1), rtol=0.05
    )
    measured = signal.var(axis=1) / (noisy - signal).var(axis=1)
    np.testing.assert_allclose(measured, snr, rtol=0.08)


@pytest.mark.parametrize("label_type", ["binary", "multiclass", "regression"])
def test_labels_depend_only_on_support_factors(mixing, label_type):
    rng = np.random.default_rng(0)
    tasks = data.sample_tasks(mixing, 16, rng, label_type=label_type)
    factors = mixing.sample_factors(16 * 500, rng).reshape(16, 500, 5)
    shuffled = mixing.sample_factors(16 * 500, rng).reshape(16, 500, 5)
    off_support = np.broadcast_to(~tasks.support[:, None, :], factors.shape)
    changed_off = np.where(off_support, shuffled, factors)
    changed_on = np.where(off_support, factors, shuffled)
    labels = data.task_labels(tasks, mixing.factor_values(factors))
    np.testing.assert_array_equal(
        labels, data.task_labels(tasks, mixing.factor_values(changed_off))
    )
    changed = labels != data.task_labels(tasks, mixing.factor_values(changed_on))
    assert changed.mean(axis=1).min() > 0.2


def test_task_thresholds_do_not_depend_on_the_draw(mixing):
    # Same coefficients -> same edges, whatever else is sampled.
    first = data.sample_tasks(mixing, 8, 3, label_type="multiclass")
    second = data.TaskDistribution(mixing, label_type="multiclass").sample(
        8, np.random.default_rng(3)
    )
    np.testing.assert_array_equal(first.coefficients, second.coefficients)
    np.testing.assert_array_equal(first.edges, second.edges)
    assert (np.diff(first.edges, axis=1) > 0).all()


def test_tasks_are_a_pytree_with_static_label_type(mixing):
    tasks = data.sample_tasks(mixing, 4, 0, label_type="binary")
    leaves, treedef = jax.tree.flatten(tasks)
    assert len(leaves) == 6
    assert jax.tree.unflatten(treedef, leaves).label_type == "binary"


@pytest.mark.parametrize(
    "options, name",
    [
        ({"label_type": "ordinal"}, "label_type"),
        ({"label_type": "binary", "support": "all"}, "support"),
        ({"label_type": "binary", "support_prob": 0.0}, "support_prob"),
        (
            {"label_type": "binary", "support": "fixed", "num_relevant": 6},
            "num_relevant",
        ),
        ({"label_type": "multiclass", "num_classes": 1}, "num_classes"),
        ({"label_type": "regression", "snr": 0.0}, "snr"),
    ],
)
def test_task_distribution_rejects_bad_options(mixing, options, name):
    with pytest.raises(ValueError, match=name):
        data.sample_tasks(mixing, 4, 0, **options)


# ----------------------------------------------------------------------------
# Episodes.


@pytest.mark.parametrize(
    "label_type, y_dtype",
    [("binary", np.int32), ("multiclass", np.int32), ("regression", np.float32)],
)
def test_episode_shapes_dtypes_and_consistency(mixing, label_type, y_dtype):
    episode = data.sample_episode(
        mixing, 0, num_tasks=6, support_size=10, query_size=7, label_type=label_type
    )
    assert episode.support_x.shape == (6, 10, 20)
    assert episode.query_x.shape == (6, 7, 20)
    assert episode.support_x.dtype == episode.query_x.dtype == np.float32
    assert episode.support_y.shape == (6, 10) and episode.query_y.shape == (6, 7)
    assert episode.support_y.dtype == episode.query_y.dtype == y_dtype
    assert episode.support_factors.shape == (6, 10, 5)
    assert episode.query_factors.shape == (6, 7, 5)
    assert episode.tasks.support.shape == (6, 5)
    np.testing.assert_array_equal(
        episode.query_x,
        mixing.observations(episode.query_factors.reshape(-1, 5)).reshape(6, 7, 20),
    )
    if label_type != "regression":
        values = mixing.factor_values(episode.support_factors)
        np.testing.assert_array_equal(
            episode.support_y, data.task_labels(episode.tasks, values)
        )
    # Every task draws its own examples.
    assert len({f.tobytes() for f in episode.support_factors}) == 6


def test_episode_is_deterministic_given_seed(mixing):
    options = dict(num_tasks=4, support_size=8, query_size=8, label_type="binary")
    first = data.sample_episode(mixing, 11, **options)
    second = data.sample_episode(mixing, np.random.default_rng(11), **options)
    third = data.sample_episode(mixing, 12, **options)
    jax.tree.map(np.testing.assert_array_equal, first, second)
    assert not np.array_equal(first.support_x, third.support_x)


def test_episode_sampler_is_a_function_of_seed_and_step(mixing):
    options = dict(num_tasks=4, support_size=8, query_size=8, label_type="binary")
    sampler = data.EpisodeSampler(mixing, seed=3, **options)
    restarted = data.EpisodeSampler(mixing, seed=3, **options)
    for step in (0, 5):
        jax.tree.map(np.testing.assert_array_equal, sampler(step), restarted(step))
    assert not np.array_equal(sampler(0).support_x, sampler(1).support_x)
    assert not np.array_equal(sampler(0).tasks.support, sampler(1).tasks.support)
    other_seed = data.EpisodeSampler(mixing, seed=4, **options)
    assert not np.array_equal(sampler(0).query_x, other_seed(0).query_x)


@pytest.mark.parametrize(
    "label_type, num_classes, support_size", [("binary", 2, 2), ("multiclass", 4, 4)]
)
def test_support_sets_hold_every_class(mixing, label_type, num_classes, support_size):
    episode = data.sample_episode(
        mixing,
        0,
        num_tasks=200,
        support_size=support_size,
        query_size=1,
        label_type=label_type,
        num_classes=num_classes,
        correlation=0.5,
    )
    for labels in episode.support_y:
        assert set(labels) == set(range(num_classes))


def test_episode_factors_follow_the_correlation(mixing):
    episode = data.sample_episode(
        mixing,
        0,
        num_tasks=4,
        support_size=8,
        query_size=1000,
        label_type="regression",
        correlation=0.9,
    )
    factors = episode.query_factors.reshape(-1, 5)
    assert stats.spearmanr(factors[:, 0], factors[:, 3]).statistic > 0.8


@pytest.mark.parametrize(
    "options, name",
    [
        ({"support_size": 1}, "support_size"),
        (
            {"label_type": "multiclass", "num_classes": 5, "support_size": 4},
            "support_size",
        ),
        ({"query_size": 0}, "query_size"),
        ({"num_tasks": 0}, "num_tasks"),
        ({"correlation": 1.0}, "correlation"),
        ({"correlation": -0.5}, "correlation"),
        ({"label_type": "ranking"}, "label_type"),
    ],
)
def test_episode_rejects_bad_inputs(mixing, options, name):
    settings = dict(num_tasks=2, support_size=8, query_size=8, label_type="binary")
    with pytest.raises(ValueError, match=name):
        data.sample_episode(mixing, 0, **{**settings, **options})


def test_episode_sampler_rejects_negative_step(mixing):
    sampler = data.EpisodeSampler(
        mixing, num_tasks=2, support_size=4, query_size=4, label_type="binary"
    )
    with pytest.raises(ValueError, match="step"):
        sampler(-1)


@pytest.mark.parametrize(
    "name", ["nonlinear_mixing", "synthetic_shapes3d", "synthetic_dsprites"]
)
def test_episode_sampler_serves_every_built_in_dataset(name):
    dataset = data.ground_truth(name)
    sampler = data.EpisodeSampler(
        dataset, num_tasks=3, support_size=8, query_size=4, label_type="binary"
    )
    episode = sampler(0)
    assert episode.support_x.shape == (3, 8, *dataset.observation_shape)
    assert episode.query_y.shape == (3, 4)
    np.testing.assert_array_equal(sampler(0).support_x, episode.support_x)
