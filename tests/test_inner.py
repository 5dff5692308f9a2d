"""Numerical tests of the inner sparse-head solver.

Solutions are checked against scikit-learn and the KKT conditions, gradients
against central finite differences in float64 and against unrolling.
"""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.linear_model import ElasticNet, Lasso, LogisticRegression

from sparse_shared_jax import inner, losses

TIGHT = dict(maxiter=20000, tol=1e-13, linear_solve_tol=1e-12)
NUM_CLASSES = 3


def make_problem(loss, num_tasks=3, n=40, k=6, seed=0):
    """Random features and targets from sparse ground-truth heads, as NumPy."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(num_tasks, n, k))
    C = NUM_CLASSES if loss == "softmax" else 1
    true_W = rng.normal(size=(num_tasks, k, C)) * (rng.random((num_tasks, k, 1)) < 0.5)
    scores = features @ true_W + 0.5 * rng.normal(size=(num_tasks, n, C))
    if loss == "squared":
        targets = scores[..., 0]
    elif loss == "logistic":
        targets = (scores[..., 0] > 0).astype(np.int32)
    else:
        targets = np.argmax(scores, axis=-1).astype(np.int32)
    return features, targets


def num_classes_for(loss):
    return NUM_CLASSES if loss == "softmax" else None


def test_squared_matches_sklearn_lasso(float64):
    features, targets = make_problem("squared")
    lam = 0.2 * losses.lambda_max(features, targets, "squared")
    solution = inner.solve_heads(
        features, targets, loss="squared", lam=lam, ridge=0.0, **TIGHT
    )
    for t in range(features.shape[0]):
        reference = Lasso(alpha=float(lam[t]), tol=1e-14, max_iter=10**6)
        reference.fit(features[t], targets[t])
        scale = np.max(np.abs(reference.coef_))
        np.testing.assert_allclose(
            solution.W[t, :, 0], reference.coef_, rtol=0, atol=1e-4 * scale
        )
        np.testing.assert_allclose(
            solution.b[t, 0], reference.intercept_, atol=1e-4 * scale
        )
    assert np.all(solution.num_active >= 1)
    assert np.all(solution.num_active < features.shape[-1])


def test_squared_with_ridge_matches_sklearn_elastic_net(float64):
    features, targets = make_problem("squared", seed=1)
    lam, ridge = 0.05, 0.3
    solution = inner.solve_heads(
        features, targets, loss="squared", lam=lam, ridge=ridge, **TIGHT
    )
    for t in range(features.shape[0]):
        # ElasticNet: 1/(2n)||y - Xw||^2 + a r ||w||_1 + a (1 - r)/2 ||w||^2.
        reference = ElasticNet(
            alpha=lam + ridge, l1_ratio=lam / (lam + ridge), tol=1e-14, max_iter=10**6
        )
        reference.fit(features[t], targets[t])
        np.testing.assert_allclose(
            solution.W[t, :, 0], reference.coef_, rtol=1e-4, atol=1e-8
        )


def test_logistic_matches_sklearn_saga(float64):
    features, targets = make_problem("logistic", n=60)
    n = features.shape[1]
    lam = 0.3 * losses.lambda_max(features, targets, "logistic")
    solution = inner.solve_heads(
        features, targets, loss="logistic", lam=lam, ridge=0.0, **TIGHT
    )
    for t in range(features.shape[0]):
        # sklearn minimises C * sum_i logloss_i + ||w||_1: C = 1 / (lam * n).
        reference = LogisticRegression(
            C=1.0 / (float(lam[t]) * n),
            l1_ratio=1.0,
            solver="saga",
            tol=1e-12,
            max_iter=10**6,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            reference.fit(features[t], targets[t])
        scale = np.max(np.abs(reference.coef_))
        np.testing.assert_allclose(
            solution.W[t, :, 0], reference.coef_[0], rtol=0, atol=1e-3 * scale
        )
        np.testing.assert_allclose(
            solution.b[t, 0], reference.intercept_[0], atol=1e-3 * scale
        )


def test_softmax_group_lasso_satisfies_kkt(float64):
    features, targets = make_problem("softmax", n=60)
    lam = 0.3 * losses.lambda_max(features, targets, "softmax", NUM_CLASSES)
    ridge = 1e-3
    solution = inner.solve_heads(
        features,
        targets,
        loss="softmax",
        lam=lam,
        num_classes=NUM_CLASSES,
        ridge=ridge,
        **TIGHT,
    )

    def smooth(W, b):
        outputs = features @ W + b[:, None, :]
        data = jnp.sum(losses.task_loss(outputs, targets, "softmax"))
        return data + 0.5 * ridge * jnp.sum(jnp.square(W))

    grad_W, grad_b = jax.grad(smooth, argnums=(0, 1))(solution.W, solution.b)
    np.testing.assert_allclose(grad_b, 0.0, atol=1e-6)
    row_norms = np.linalg.norm(solution.W, axis=-1)  # [T, k]
    active = row_norms > 0
    assert active.any() and not active.all()
    safe = np.where(active, row_norms, 1.0)[..., None]
    stationarity = grad_W + lam[:, None, None] * solution.W / safe
    np.testing.assert_allclose(
        np.where(active[..., None], stationarity, 0), 0, atol=1e-6
    )
    inactive_gradient_norms = np.linalg.norm(grad_W, axis=-1)[~active]
    lam_per_row = np.broadcast_to(np.asarray(lam)[:, None], active.shape)[~active]
    assert np.all(inactive_gradient_norms <= lam_per_row + 1e-6)
    np.testing.assert_allclose(solution.optimality_error, 0.0, atol=1e-8)


@pytest.mark.parametrize("loss", ["squared", "logistic", "softmax"])
def test_lambda_max_is_the_sparsity_threshold(loss, float64):
    features, targets = make_problem(loss)
    num_classes = num_classes_for(loss)
    lam_max = losses.lambda_max(features, targets, loss, num_classes)
    kwargs = dict(loss=loss, num_classes=num_classes, ridge=1e-4, **TIGHT)
    # Just above lambda_max: at exact equality the threshold ties the gradient
    # norm and rounding may leave entries of order 1e-16.
    at_max = inner.solve_heads(features, targets, lam=lam_max * (1 + 1e-9), **kwargs)
    np.testing.assert_array_equal(at_max.W, 0.0)
    np.testing.assert_array_equal(at_max.num_active, 0)
    below = inner.solve_heads(features, targets, lam=0.9 * lam_max, **kwargs)
    assert np.all(below.num_active >= 1)


def gradient_check_problem(loss, seed=3):
    features, targets = make_problem(loss, num_tasks=2, n=30, k=5, seed=seed)
    num_classes = num_classes_for(loss)
    lam = 0.25 * losses.lambda_max(features, targets, loss, num_classes)
    return jnp.asarray(features), jnp.asarray(targets), lam, num_classes


def heads_objective(loss, targets, lam, num_classes, **solver_options):
    """A smooth scalar function of the solved heads, as a function of features."""
    weights = jnp.linspace(-1.0, 1.0, 5)[:, None]

    def objective(features):
        solution = inner.solve_heads(
            features,
            targets,
            loss=loss,
            lam=lam,
            num_classes=num_classes,
            ridge=1e-3,
            **solver_options,
        )
        return jnp.sum(jnp.sin(solution.W) * weights) + jnp.sum(solution.b**2)

    return jax.jit(objective)


@pytest.mark.parametrize("linear_solve", ["gmres", "active_cg"])
@pytest.mark.parametrize("loss", ["squared", "logistic", "softmax"])
@pytest.mark.slow
def test_implicit_gradient_matches_finite_differences(loss, linear_solve, float64):
    features, targets, lam, num_classes = gradient_check_problem(loss)
    objective = heads_objective(
        loss, targets, lam, num_classes, linear_solve=linear_solve, **TIGHT
    )
    gradient = jax.jit(jax.grad(objective))(features)
    rng = np.random.default_rng(0)
    for _ in range(3):
        direction = jnp.asarray(rng.normal(size=features.shape))
        step = 1e-5
        finite_difference = (
            objective(features + step * direction)
            - objective(features - step * direction)
        ) / (2 * step)
        directional = jnp.vdot(gradient, direction)
        assert abs(directional - finite_difference) <= 1e-4 * abs(finite_difference)


@pytest.mark.parametrize("loss", ["logistic", "softmax"])
@pytest.mark.slow
def test_implicit_gradient_matches_unrolled(loss, float64):
    features, targets, lam, num_classes = gradient_check_problem(loss, seed=4)
    options = dict(maxiter=3000, tol=1e-14)
    implicit = jax.grad(
        heads_objective(
            loss, targets, lam, num_classes, linear_solve_tol=1e-12, **options
        )
    )(features)
    unrolled = jax.grad(
        heads_objective(
            loss, targets, lam, num_classes, differentiation="unrolled", **options
        )
    )(features)
    np.testing.assert_allclose(implicit, unrolled, rtol=1e-4, atol=1e-8)


@pytest.mark.parametrize("linear_solve", ["gmres", "active_cg"])
@pytest.mark.slow
def test_gradient_with_respect_to_lam_matches_finite_differences(linear_solve, float64):
    features, targets, lam, _ = gradient_check_problem("logistic")

    @jax.jit
    def objective(lam):
        solution = inner.solve_heads(
            features,
            targets,
            loss="logistic",
            lam=lam,
            ridge=1e-3,
            linear_solve=linear_solve,
            **TIGHT,
        )
        return jnp.sum(jnp.sin(solution.W))

    gradient = jax.grad(objective)(lam)
    step = 1e-6
    for t in range(lam.shape[0]):
        delta = jnp.zeros_like(lam).at[t].set(step)
        finite_difference = (objective(lam + delta) - objective(lam - delta)) / (
            2 * step
        )
        np.testing.assert_allclose(gradient[t], finite_difference, rtol=1e-4)


def test_float32_under_jit_and_vmap():
    features, targets = make_problem("logistic", num_tasks=4)
    features = jnp.asarray(features, jnp.float32)
    # vmap over a batch of two episodes of four tasks each.
    episodes = jnp.stack([features, 2 * features])

    @jax.jit
    def solve_episode(features):
        lam = 0.2 * losses.lambda_max(features, targets, "logistic")
        # A small ridge: the scaling check below is exact only without one.
        return inner.solve_heads(
            features, targets, loss="logistic", lam=lam, ridge=1e-4
        )

    solutions = jax.vmap(solve_episode)(episodes)
    assert solutions.W.dtype == jnp.float32
    assert solutions.W.shape == (2, 4, 6, 1)
    assert np.all(np.isfinite(solutions.W))
    assert np.all(solutions.optimality_error < 1e-3)
    # The solution scales inversely with the features (lam scales with them).
    np.testing.assert_allclose(solutions.W[1], solutions.W[0] / 2, atol=2e-3)


@pytest.mark.parametrize("loss", ["logistic", "softmax"])
@pytest.mark.slow
def test_active_set_gradient_equals_fixed_point_gradient_with_l1(loss, float64):
    """Both implicit solves agree for the element-wise L1 penalty too (per-entry
    active set, no penalty curvature)."""
    features, targets, lam, num_classes = gradient_check_problem(loss, seed=5)
    gradients = [
        jax.grad(
            heads_objective(
                loss,
                targets,
                lam,
                num_classes,
                penalty="l1",
                linear_solve=linear_solve,
                **TIGHT,
            )
        )(features)
        for linear_solve in ("gmres", "active_cg")
    ]
    np.testing.assert_allclose(gradients[1], gradients[0], rtol=1e-8, atol=1e-12)


def test_active_set_gradient_under_vmap_in_float32():
    """vmap over episodes of the active-set gradient = one episode at a time."""
    features, targets = make_problem("logistic", num_tasks=3)
    episodes = jnp.stack([features, 1.5 * features]).astype(jnp.float32)

    def objective(features):
        lam = 0.2 * losses.lambda_max(features, targets, "logistic")
        solution = inner.solve_heads(
            features, targets, loss="logistic", lam=lam, linear_solve="active_cg"
        )
        return jnp.sum(jnp.sin(solution.W)) + jnp.sum(solution.b**2)

    gradient = jax.jit(jax.grad(objective))
    batched = jax.jit(jax.vmap(gradient))(episodes)
    assert batched.dtype == jnp.float32
    for i in range(2):
        np.testing.assert_allclose(batched[i], gradient(episodes[i]), atol=1e-5)
    assert float(jnp.max(jnp.abs(batched))) > 0


def test_warm_start_from_solution_stops_immediately(float64):
    features, targets = make_problem("squared")
    kwargs = dict(loss="squared", lam=0.1, ridge=1e-3, maxiter=5000, tol=1e-10)
    cold = inner.solve_heads(features, targets, **kwargs)
    warm = inner.solve_heads(features, targets, init=(cold.W, cold.b), **kwargs)
    assert np.all(warm.num_iterations < 0.1 * cold.num_iterations)
    np.testing.assert_allclose(warm.W, cold.W, atol=1e-8)


@pytest.mark.parametrize("loss", ["squared", "logistic", "softmax"])
def test_restarted_fista_reaches_jaxopts_solution_in_fewer_iterations(loss, float64):
    """The 'active_cg' solve (FISTA with adaptive restart) against jaxopt's
    plain FISTA (the forward solve of the fixed-point linear solves) on
    correlated features: the same heads, several times fewer iterations, and
    an optimality error no larger."""
    features, targets = make_problem(loss, num_tasks=8, n=50, k=10)
    features = features @ (np.eye(10) + 0.8)  # correlated, ill-conditioned
    classes = num_classes_for(loss)
    kwargs = dict(
        loss=loss,
        lam=0.1 * losses.lambda_max(features, targets, loss, classes),
        num_classes=classes,
        ridge=1e-3,
        maxiter=50000,
        tol=1e-8,
    )
    restarted = inner.solve_heads(features, targets, **kwargs)
    plain = inner.solve_heads(features, targets, linear_solve="gmres", **kwargs)
    assert np.all(plain.num_iterations < kwargs["maxiter"])
    assert restarted.num_iterations.sum() < 0.3 * plain.num_iterations.sum()
    assert restarted.optimality_error.max() <= plain.optimality_error.max()
    np.testing.assert_allclose(restarted.W, plain.W, atol=1e-4)
    np.testing.assert_allclose(restarted.b, plain.b, atol=1e-4)


def test_l1_penalty_equals_group_lasso_for_one_output(float64):
    features, targets = make_problem("logistic")
    kwargs = dict(loss="logistic", lam=0.05, **TIGHT)
    group = inner.solve_heads(features, targets, penalty="group_lasso", **kwargs)
    elementwise = inner.solve_heads(features, targets, penalty="l1", **kwargs)
    np.testing.assert_allclose(group.W, elementwise.W, atol=1e-10)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(loss="hinge"), "loss must be one of"),
        (dict(lam=-0.1), "lam must be >= 0"),
        (dict(lam=jnp.ones(5)), r"lam must be a scalar or have shape \[T\]"),
        (dict(targets=jnp.full((3, 40), 2)), r"targets .* must lie in \[0, 2\)"),
        (
            dict(targets=jnp.zeros((3, 7), jnp.int32)),
            r"targets must have shape \[T, n\]",
        ),
        (dict(features=jnp.zeros((40, 6))), r"features must have shape \[T, n, k\]"),
        (dict(num_classes=3), "num_classes must be None"),
        (dict(differentiation="forward"), "differentiation must be one of"),
        (dict(linear_solve="lu"), "linear_solve must be one of"),
        (dict(penalty="l0"), "penalty must be one of"),
        (dict(maxiter=0), "maxiter must be >= 1"),
    ],
)
def test_bad_arguments_raise_clear_errors(change, message):
    features, targets = make_problem("logistic")
    kwargs = dict(
        features=jnp.asarray(features, jnp.float32),
        targets=jnp.asarray(targets),
        loss="logistic",
        lam=0.1,
    )
    kwargs.update(change)
    with pytest.raises(ValueError, match=message):
        inner.solve_heads(**kwargs)


def test_softmax_labels_out_of_range_raise():
    features, targets = make_problem("softmax")
    with pytest.raises(ValueError, match=r"must lie in \[0, 3\)"):
        inner.solve_heads(
            features, targets + 1, loss="softmax", lam=0.1, num_classes=NUM_CLASSES
        )
    with pytest.raises(ValueError, match="needs num_classes >= 2"):
        inner.solve_heads(features, targets, loss="softmax", lam=0.1)


# ----------------------------------------------------------------------------
# The coupled variant: sharing entropy inside the inner problem.

# ridge 1e-4: the problem these tests were written and measured on.
SHARED = dict(share_smoothing=0.1, ridge=1e-4, maxiter=20000, tol=1e-12)


@pytest.mark.slow
def test_shared_solver_without_sharing_equals_independent_heads(float64):
    features, targets = make_problem("logistic")
    lam = 0.3 * losses.lambda_max(features, targets, "logistic")
    independent = inner.solve_heads(
        features, targets, loss="logistic", lam=lam, ridge=SHARED["ridge"], **TIGHT
    )
    coupled = inner.solve_heads_shared(
        features, targets, loss="logistic", lam=lam, share_weight=0.0, **SHARED
    )
    np.testing.assert_allclose(coupled.W, independent.W, atol=1e-8)


@pytest.mark.slow
def test_shared_solver_reaches_a_stationary_point_with_lower_entropy(float64):
    features, targets = make_problem("logistic", num_tasks=4, n=60)
    lam = 0.3 * losses.lambda_max(features, targets, "logistic")
    independent = inner.solve_heads(
        features, targets, loss="logistic", lam=lam, ridge=SHARED["ridge"], **TIGHT
    )
    coupled = inner.solve_heads_shared(
        features, targets, loss="logistic", lam=lam, share_weight=0.05, **SHARED
    )
    assert np.all(coupled.optimality_error < 1e-6)

    def entropy(W):
        return losses.feature_sharing_entropy(W, "usage", smoothing=0.1)

    assert entropy(coupled.W) < entropy(independent.W)


@pytest.mark.slow
def test_shared_solver_gradient_matches_finite_differences(float64):
    features, targets, lam, _ = gradient_check_problem("logistic")

    @jax.jit
    def objective(features):
        solution = inner.solve_heads_shared(
            features,
            targets,
            loss="logistic",
            lam=lam,
            share_weight=0.05,
            linear_solve_tol=1e-12,
            **SHARED,
        )
        return jnp.sum(jnp.sin(solution.W)) + jnp.sum(solution.b**2)

    gradient = jax.grad(objective)(features)
    direction = jnp.asarray(np.random.default_rng(0).normal(size=features.shape))
    step = 1e-5
    finite_difference = (
        objective(features + step * direction) - objective(features - step * direction)
    ) / (2 * step)
    np.testing.assert_allclose(
        jnp.vdot(gradient, direction), finite_difference, rtol=1e-3
    )


def test_shared_solver_rejects_bad_sharing_arguments():
    features, targets = make_problem("logistic")
    with pytest.raises(ValueError, match="share_weight must be >= 0"):
        inner.solve_heads_shared(
            features, targets, loss="logistic", lam=0.1, share_weight=-1.0
        )
    with pytest.raises(ValueError, match="share_variant must be one of"):
        inner.solve_heads_shared(
            features,
            targets,
            loss="logistic",
            lam=0.1,
            share_weight=0.1,
            share_variant="mutual",
        )
