"""The inner problem: sparse linear task heads on fixed features.

For every task t (T of them, each with n examples of k features) we solve

    min_{W in R^{k x C}, b in R^C}  (1/n) sum_i loss(W^T z_i + b, y_i)
                                    + lam_t * penalty(W) + (ridge/2) ||W||_F^2

by accelerated proximal gradient (FISTA). `penalty` is the group lasso over
feature rows (default) or the element-wise L1 norm. The bias is not
penalised. The solution is differentiated with respect to the features (and
lam) implicitly, through the optimality conditions on the active features
(linear_solve='active_cg', the default; its FISTA restarts its momentum
adaptively, see _fista_with_restart) or through the proximal-gradient fixed
point (jaxopt's solver and implicit differentiation), or by unrolling
jaxopt's iterations.

Step size. Each task's smooth part is rescaled by 1/L_t, with L_t an upper
bound on its gradient's Lipschitz constant (computed exactly from the
features, under stop_gradient), and solved with step 1. Rescaling leaves the
minimiser unchanged; it gives every task its own optimal step without a line
search, and makes the fixed-point map jaxopt differentiates (a step of 1) well
conditioned.

This is the only module that imports jaxopt (archived upstream; 0.8.5 is its
final release and warns on import).
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sparse_shared_jax import losses

with warnings.catch_warnings():
    warnings.filterwarnings(
        "ignore", message="JAXopt is no longer maintained", category=DeprecationWarning
    )
    import jaxopt

PENALTIES = ("group_lasso", "l1")
DIFFERENTIATIONS = ("implicit", "unrolled")
# Linear solvers of jaxopt's implicit differentiation through the fixed point
# of the proximal-gradient map (the full [k, C] + C system of every task).
_FIXED_POINT_SOLVES = {
    "gmres": jaxopt.linear_solve.solve_gmres,
    "bicgstab": jaxopt.linear_solve.solve_bicgstab,
    "normal_cg": jaxopt.linear_solve.solve_normal_cg,
}
# 'active_cg' differentiates the optimality conditions restricted to the
# active features instead (see _active_set_vjp).
ACTIVE_SET_SOLVE = "active_cg"
LINEAR_SOLVES = (*_FIXED_POINT_SOLVES, ACTIVE_SET_SOLVE)
# Upper bounds on the curvature of each loss with respect to its outputs.
_LOSS_CURVATURE = {"squared": 1.0, "logistic": 0.25, "softmax": 0.5}


class HeadsSolution(NamedTuple):
    """Solved task heads and solver diagnostics.

    Attributes:
      W: [T, k, C] head weights.
      b: [T, C] head biases.
      num_iterations: int [T], proximal-gradient iterations used per task.
      optimality_error: [T], norm of the proximal-gradient mapping at the
        solution (the gradient norm for a smooth problem; 0 at the optimum).
      num_active: int [T], number of features (rows of W) a task uses.
    """

    W: jax.Array
    b: jax.Array
    num_iterations: jax.Array
    optimality_error: jax.Array
    num_active: jax.Array


@dataclasses.dataclass(frozen=True)
class InnerSettings:
    """How the inner problem is solved and differentiated (hashable, for jit).

    The one place where the solver's settings, their defaults and their
    allowed values are defined: `solve_heads`, `solve_heads_shared`, the
    bilevel step (`bilevel.BilevelSettings.solver`), the transfer heads and
    the experiment configs (`config.inner`, `from_config`) all take them from
    here. Invalid values raise ValueError naming the field.

    Attributes:
      penalty: 'group_lasso' over feature rows or element-wise 'l1'
        (identical for one output per head).
      ridge: weight of (ridge/2)||W||^2, which keeps every task's problem
        strongly convex.
      maxiter: proximal-gradient iterations per task at most.
      tol: stop when the (rescaled) iterate change falls below it.
      differentiation: 'implicit' (through the optimality conditions; memory
        independent of maxiter) or 'unrolled' (through all iterations).
      linear_solve: the linear solver of implicit differentiation:
        'active_cg' (conjugate gradients on the optimality conditions of the
        active features, see _active_set_vjp; its heads are solved by FISTA
        with adaptive restart, see _fista_with_restart), or 'gmres', 'bicgstab' or
        'normal_cg' on jaxopt's fixed-point system (all k rows). Same
        gradient at a solution with strict complementarity.
      linear_solve_tol: its relative tolerance. jaxopt's default normal CG
        with a loose tolerance was measured at 1.6e-3 relative gradient
        error in float64.
      linear_solve_maxiter: its iteration cap (None: the solver's default;
        for 'active_cg' the number of unknowns per task + 1).
    """

    penalty: str = "group_lasso"
    ridge: float = 1e-3
    maxiter: int = 300
    tol: float = 1e-5
    differentiation: str = "implicit"
    linear_solve: str = ACTIVE_SET_SOLVE
    linear_solve_tol: float = 1e-6
    linear_solve_maxiter: int | None = None

    def __post_init__(self):
        for name, allowed in (
            ("penalty", PENALTIES),
            ("differentiation", DIFFERENTIATIONS),
            ("linear_solve", LINEAR_SOLVES),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"{name} must be one of {allowed}, got {getattr(self, name)!r}."
                )
        if self.ridge < 0:
            raise ValueError(f"ridge must be >= 0; got {self.ridge}.")
        if self.maxiter < 1:
            raise ValueError(f"maxiter must be >= 1; got {self.maxiter}.")
        if self.tol <= 0:
            raise ValueError(f"tol must be > 0; got {self.tol}.")
        if self.linear_solve_tol <= 0:
            raise ValueError(
                f"linear_solve_tol must be > 0; got {self.linear_solve_tol}."
            )
        if self.linear_solve_maxiter is not None and self.linear_solve_maxiter < 1:
            raise ValueError(
                "linear_solve_maxiter must be None or >= 1; got "
                f"{self.linear_solve_maxiter}."
            )

    @classmethod
    def from_config(cls, inner_config) -> InnerSettings:
        """The settings in an experiment's `config.inner` section (the fields it
        has; the others keep their defaults)."""
        return cls(
            **{f.name: inner_config[f.name] for f in FIELDS if f.name in inner_config}
        )


FIELDS = dataclasses.fields(InnerSettings)
DEFAULTS = InnerSettings()


def _settings(settings: InnerSettings | None, overrides: dict) -> InnerSettings:
    """`settings` (default: InnerSettings()) with keyword overrides applied."""
    unknown = set(overrides) - {field.name for field in FIELDS}
    if unknown:
        raise TypeError(
            f"Unknown inner-solver setting(s) {sorted(unknown)}; the settings are "
            f"{[field.name for field in FIELDS]}."
        )
    return dataclasses.replace(settings or DEFAULTS, **overrides)


# ----------------------------------------------------------------------------
# Proximal operators.


def prox_group_lasso_rows(W: jax.Array, threshold: jax.Array) -> jax.Array:
    """Row-wise group soft-threshold: [..., k, C] -> [..., k, C].

    Row j becomes W_j * max(0, 1 - threshold / ||W_j||): the proximal operator
    of threshold * group_lasso. `threshold` broadcasts against W[..., 0, 0].
    """
    threshold = jnp.asarray(threshold)[..., None, None]
    norms = losses.row_norms(W)[..., None]  # [..., k, 1]
    safe_norms = jnp.where(norms > 0, norms, 1.0)
    return W * jnp.maximum(0.0, 1.0 - threshold / safe_norms)


def prox_l1(W: jax.Array, threshold: jax.Array) -> jax.Array:
    """Element-wise soft-threshold, the proximal operator of threshold * L1."""
    threshold = jnp.asarray(threshold)[..., None, None]
    return jnp.sign(W) * jnp.maximum(jnp.abs(W) - threshold, 0.0)


_PROX = {"group_lasso": prox_group_lasso_rows, "l1": prox_l1}


def _heads_prox(penalty: str, loss: str):
    """The jaxopt prox on (W, b): shrinks W and leaves the bias unpenalised.

    For 'softmax' the logits do not change when the same constant is added to
    every class's bias, so the bias is kept centred (projected onto sum zero).
    This removes the flat direction, which otherwise makes the implicit-
    differentiation linear system singular.
    """

    def prox(params, threshold, scaling=1.0):
        W, b = params
        if loss == "softmax":
            b = b - jnp.mean(b, axis=-1, keepdims=True)
        return _PROX[penalty](W, threshold * scaling), b

    return prox


# ----------------------------------------------------------------------------
# Smooth part of the objective.


def _smooth_objective(params, features, targets, scale, *, loss, ridge):
    """scale * (mean task loss + ridge/2 ||W||^2) for one task or a batch.

    params: (W [..., k, C], b [..., C]); features [..., n, k]; targets
    [..., n]; scale [...]. Returns the sum over any leading task axes.
    """
    W, b = params
    outputs = features @ W + b[..., None, :]  # [..., n, C]
    value = losses.task_loss(outputs, targets, loss)
    value = value + 0.5 * ridge * jnp.sum(jnp.square(W), axis=(-2, -1))
    return jnp.sum(scale * value)


def lipschitz_constants(features: jax.Array, loss: str, ridge: float) -> jax.Array:
    """Upper bounds on each task's smooth-gradient Lipschitz constant.

    Args:
      features: [T, n, k].
      loss: the task loss name.
      ridge: the ridge weight on W.

    Returns:
      [T]: curvature(loss) * lambda_max(A^T A / n) + ridge with A = [Z, 1]
      (the bias column), exact for 'squared' and an upper bound otherwise.
    """
    num_tasks, n, _ = features.shape
    ones = jnp.ones((num_tasks, n, 1), features.dtype)
    augmented = jnp.concatenate([features, ones], axis=-1)  # [T, n, k + 1]
    if n <= augmented.shape[-1]:
        gram = augmented @ jnp.swapaxes(augmented, -1, -2)  # [T, n, n]
    else:
        gram = jnp.swapaxes(augmented, -1, -2) @ augmented  # [T, k + 1, k + 1]
    top_eigenvalue = jnp.linalg.eigvalsh(gram / n)[..., -1]  # [T]
    return _LOSS_CURVATURE[loss] * top_eigenvalue + ridge


# ----------------------------------------------------------------------------
# Argument checks (static shapes and, where values are concrete, values).


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _check_arguments(features, targets, lam, *, loss, num_classes):
    """Checks the arrays' shapes and, where values are concrete, their values."""
    losses.check_loss_name(loss)
    if features.ndim != 3:
        raise ValueError(
            f"features must have shape [T, n, k]; got shape {features.shape}."
        )
    if not jnp.issubdtype(features.dtype, jnp.floating):
        raise ValueError(f"features must be floating point; got {features.dtype}.")
    if targets.shape != features.shape[:2]:
        raise ValueError(
            f"targets must have shape [T, n] = {features.shape[:2]} to match "
            f"features {features.shape}; got {targets.shape}."
        )
    if features.shape[1] < 2:
        raise ValueError(f"Each task needs n >= 2 examples; got n={features.shape[1]}.")
    lam_shape = jnp.shape(lam)
    if lam_shape not in ((), (features.shape[0],)):
        raise ValueError(
            f"lam must be a scalar or have shape [T] = ({features.shape[0]},); "
            f"got shape {lam_shape}."
        )
    if _is_concrete(lam) and np.any(np.asarray(lam) < 0):
        raise ValueError(f"lam must be >= 0; got {lam}.")
    if loss == "softmax":
        if num_classes is None or num_classes < 2:
            raise ValueError(
                f"loss='softmax' needs num_classes >= 2; got num_classes={num_classes}."
            )
        if not jnp.issubdtype(targets.dtype, jnp.integer):
            raise ValueError(
                "loss='softmax' needs integer class ids as targets; got "
                f"{targets.dtype}."
            )
    elif num_classes not in (None, 1):
        raise ValueError(
            f"loss={loss!r} has one output per task; num_classes must be None "
            f"(or 1), got {num_classes}."
        )
    if _is_concrete(targets) and loss != "squared":
        values = np.asarray(targets)
        upper = num_classes if loss == "softmax" else 2
        if values.size and (values.min() < 0 or values.max() >= upper):
            raise ValueError(
                f"targets for loss={loss!r} must lie in [0, {upper}); got values "
                f"in [{values.min()}, {values.max()}]."
            )


# ----------------------------------------------------------------------------
# Shared pieces of the two solvers.


def _prepare_inputs(features, targets, lam, *, loss, num_classes):
    """Arrays, checked (see _check_arguments); lam broadcast to [T]."""
    features = jnp.asarray(features)
    targets = jnp.asarray(targets)
    _check_arguments(features, targets, lam, loss=loss, num_classes=num_classes)
    lam = jnp.broadcast_to(jnp.asarray(lam, features.dtype), (features.shape[0],))
    return features, targets, lam


def _proximal_gradient(
    fun, *, stepsize, loss, settings: InnerSettings
) -> jaxopt.ProximalGradient:
    """jaxopt's accelerated proximal gradient on (W, b) with the heads' prox,
    differentiated as settings.differentiation says: 'implicit' (through the
    fixed point, with the settings' linear solve of _FIXED_POINT_SOLVES) or
    'unrolled'. (The 'active_cg' solve runs `_fista_with_restart` instead.)
    """
    implicit = settings.differentiation == "implicit"
    return jaxopt.ProximalGradient(
        fun=fun,
        prox=_heads_prox(settings.penalty, loss),
        stepsize=stepsize,
        maxiter=settings.maxiter,
        tol=settings.tol,
        acceleration=True,
        implicit_diff=implicit,
        unroll=settings.differentiation == "unrolled",
        implicit_diff_solve=functools.partial(
            _FIXED_POINT_SOLVES[settings.linear_solve],
            tol=settings.linear_solve_tol,
            maxiter=settings.linear_solve_maxiter,
        )
        if implicit
        else None,
    )


def _fista_with_restart(
    objective, prox, init, threshold, features, targets, scale, *, maxiter, tol
):
    """One task's (rescaled) heads by accelerated proximal gradient, step 1,
    with adaptive restart: the momentum is reset whenever it points uphill.

    FISTA's momentum overshoots on strongly convex problems (the ridge makes
    every task's problem one) and its iterates oscillate; restarting when
    (y_k - x_{k+1}) . (x_{k+1} - x_k) > 0 (the gradient scheme of
    O'Donoghue & Candes, "Adaptive Restart for Accelerated Gradient Schemes",
    2015) recovers a linear rate. Measured on the default experiments'
    episodes: half the iterations of plain FISTA (jaxopt's) and a 10x smaller
    optimality error at the same tol (benchmarks/inner_solver.py). Stops, as
    jaxopt does, when ||x_{k+1} - x_k|| <= tol or after maxiter iterations.

    Args:
      objective: the smooth objective (params, features, targets, scale).
      prox: the heads' prox (params, threshold) -> params.
      init: (W [k, C], b [C]); threshold: the prox threshold (scalar);
      features, targets, scale: one task's arguments of `objective`.

    Returns:
      ((W, b), the number of iterations).
    """
    grad = jax.grad(objective)
    dtype = features.dtype

    def minus(a, b):
        return jax.tree.map(jnp.subtract, a, b)

    def dot(a, b):
        pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
        return sum(jnp.vdot(u, v) for u, v in pairs)

    def not_done(carry):
        *_, iteration, change = carry
        return (iteration < maxiter) & (change > tol)

    def iterate(carry):
        x, y, t, iteration, _ = carry
        x_next = prox(minus(y, grad(y, features, targets, scale)), threshold)
        step = minus(x_next, x)  # x_{k+1} - x_k
        restart = dot(minus(y, x_next), step) > 0
        t_next = 0.5 * (1.0 + jnp.sqrt(1.0 + 4.0 * t**2))
        momentum = jnp.where(restart, 0.0, (t - 1.0) / t_next)
        y_next = jax.tree.map(lambda a, d: a + momentum * d, x_next, step)
        t_next = jnp.where(restart, jnp.ones_like(t), t_next)
        return x_next, y_next, t_next, iteration + 1, jnp.sqrt(dot(step, step))

    x, *_, iterations, _ = jax.lax.while_loop(
        not_done,
        iterate,
        (init, init, jnp.ones((), dtype), jnp.zeros((), jnp.int32), jnp.inf),
    )
    return x, iterations


def _initial_heads(features, targets, loss, num_classes, init):
    """Zero weights and the optimal bias at zero weights, or the user's init."""
    if init is not None:
        return tuple(jnp.asarray(x, features.dtype) for x in init)
    num_tasks, _, k = features.shape
    num_outputs = num_classes if loss == "softmax" else 1
    W = jnp.zeros((num_tasks, k, num_outputs), features.dtype)
    b = losses.optimal_bias_at_zero(targets, loss, num_classes).astype(features.dtype)
    if loss == "softmax":
        b = b - jnp.mean(b, axis=-1, keepdims=True)
    return W, b


def _diagnostics(objective, params, thresholds, *, penalty, loss, unit):
    """Per-task optimality error and number of active rows, each [T].

    objective: the (rescaled) smooth objective of params = (W [T, k, C],
    b [T, C]); thresholds [T]: the prox thresholds of the rescaled problem;
    unit [T]: each task's rescaling factor, divided out so the error is the
    norm of the proximal-gradient mapping of the original objective.
    """
    W, b = params = jax.lax.stop_gradient(params)
    thresholds = jax.lax.stop_gradient(thresholds)
    grad_W, grad_b = jax.grad(objective)(params)
    W_next, b_next = _heads_prox(penalty, loss)((W - grad_W, b - grad_b), thresholds)
    residual_sq = jnp.sum(jnp.square(W_next - W), axis=(-2, -1)) + jnp.sum(
        jnp.square(b_next - b), axis=-1
    )
    optimality_error = jnp.sqrt(residual_sq) / unit
    num_active = jnp.sum(losses.row_norms(W) > 0, axis=-1)
    return jax.lax.stop_gradient((optimality_error, num_active))


# ----------------------------------------------------------------------------
# Implicit differentiation restricted to the active features ('active_cg').


def _penalty_value(W: jax.Array, penalty: str) -> jax.Array:
    """The penalty of W [..., k, C]; its gradient and curvature are 0 at 0."""
    return losses.group_lasso(W) if penalty == "group_lasso" else losses.l1(W)


def _active_mask(W: jax.Array, penalty: str) -> jax.Array:
    """1.0 where W [k, C] is active (its row for group lasso, the entry for L1)."""
    if penalty == "group_lasso":
        active = (losses.row_norms(W) > 0)[..., None]  # [k, 1]
        return jnp.broadcast_to(active, W.shape).astype(W.dtype)
    return (W != 0).astype(W.dtype)


def _active_set_vjp(
    params, features, targets, lam, cotangent, *, loss, penalty, ridge, tol, maxiter
):
    """Pulls one task's solution cotangent back to its features and lam.

    At a solution x = (W, b) the inactive rows of W stay 0 for nearby
    (features, lam) (strict complementarity), and the active rows and the bias
    solve G(x; features, lam) = grad_x [f(x; features) + lam penalty(W)] = 0,
    f the smooth objective (mean loss + ridge). By the implicit function
    theorem dx_A = -J^{-1} dG, with J the Hessian of f + lam penalty on the
    active rows and the bias: symmetric positive definite, so conjugate
    gradients solve J u = cotangent_A, a system of the active features' size
    rather than jaxopt's full nonsymmetric fixed-point system. For 'softmax'
    the bias direction (1, ..., 1), along which the logits do not change and
    the centred bias never moves, gets curvature 1 so that J is invertible;
    u's component along it is irrelevant, because G_b sums to 0 over classes.

    Args:
      params: (W [k, C], b [C]), the solution of one task.
      features: [n, k]; targets: [n]; lam: scalar penalty weight.
      cotangent: (gW [k, C], gb [C]), the cotangent of params.
      loss, penalty, ridge: the problem (as in solve_heads).
      tol, maxiter: conjugate gradients' relative tolerance and iteration
        cap (None: the number of unknowns + 1).

    Returns:
      (cotangent of features [n, k], cotangent of lam: scalar).
    """
    W, _ = params
    mask = _active_mask(W, penalty)  # [k, C]

    def optimality(params, features, lam):  # G: grad of the Lagrangian
        def lagrangian(params):
            smooth = _smooth_objective(
                params, features, targets, 1.0, loss=loss, ridge=ridge
            )
            return smooth + lam * _penalty_value(params[0], penalty)

        return jax.grad(lagrangian)(params)

    def restricted_hessian(v):  # J on the active part, identity elsewhere
        vW, vb = v
        _, (hW, hb) = jax.jvp(
            lambda p: optimality(p, features, lam), (params,), ((mask * vW, vb),)
        )
        if loss == "softmax":
            hb = hb + jnp.mean(vb, axis=-1, keepdims=True)
        return mask * hW + (1 - mask) * vW, hb

    gW, gb = cotangent
    if maxiter is None:
        # J has at most W.size + b.size + 1 distinct eigenvalues (the masked
        # identity adds 1), so exact CG is done by then; in float32 a tight
        # tol is often out of reach and more iterations only chase rounding.
        maxiter = W.size + params[1].size + 1
    (uW, ub), _ = jax.scipy.sparse.linalg.cg(
        restricted_hessian, (mask * gW, gb), tol=tol, maxiter=maxiter
    )
    _, pullback = jax.vjp(functools.partial(optimality, params), features, lam)
    return pullback((-mask * uW, -ub))


def _solve_differentiated_on_active_set(run, **problem):
    """solve(init, features, targets, lam, scale) -> (W, b, num_iterations).

    Runs `run` (init, threshold, features, targets, scale) -> ((W, b),
    iterations) (not differentiated) on every task, with the prox threshold
    lam * scale of the problem rescaled by `scale` [T]; its gradient with
    respect to features [T, n, k] and lam [T] comes from _active_set_vjp
    (`problem`: its keyword arguments). init, targets and scale get none.
    """

    @jax.custom_vjp
    def solve(init, features, targets, lam, scale):
        (W, b), num_iterations = jax.vmap(run)(
            init, lam * scale, features, targets, scale
        )
        return W, b, num_iterations

    def forward(init, features, targets, lam, scale):
        W, b, num_iterations = solve(init, features, targets, lam, scale)
        return (W, b, num_iterations), (W, b, features, targets, lam)

    def backward(residuals, cotangents):
        W, b, features, targets, lam = residuals
        gW, gb, _ = cotangents
        grad_features, grad_lam = jax.vmap(
            lambda W, b, z, y, lam_t, gW, gb: _active_set_vjp(
                (W, b), z, y, lam_t, (gW, gb), **problem
            )
        )(W, b, features, targets, lam, gW, gb)
        return None, grad_features, None, grad_lam, None

    solve.defvjp(forward, backward)
    return solve


# ----------------------------------------------------------------------------
# Independent heads (one problem per task, vectorised over tasks).


def solve_heads(
    features: jax.Array,
    targets: jax.Array,
    *,
    loss: str,
    lam: jax.Array | float,
    num_classes: int | None = None,
    settings: InnerSettings | None = None,
    init: tuple[jax.Array, jax.Array] | None = None,
    **options,
) -> HeadsSolution:
    """Solves the sparse heads of T independent tasks on fixed features.

    Args:
      features: [T, n, k] features of each task's examples.
      targets: [T, n]: {0, 1} for 'logistic', int class ids in [0, C) for
        'softmax', floats for 'squared'.
      loss: 'logistic', 'softmax' or 'squared' (see `losses.task_loss`).
      lam: scalar or [T], the absolute penalty weight (e.g. alpha *
        losses.lambda_max(...)). Differentiable.
      num_classes: C, required for 'softmax'; C = 1 for the other losses.
      settings: how to solve and differentiate (`InnerSettings`; default
        InnerSettings(), the defaults of the experiment configs).
      init: optional warm start (W [T, k, C], b [T, C]); default W = 0 and the
        optimal bias at W = 0.
      **options: any `InnerSettings` field, overriding `settings`, e.g.
        ``solve_heads(z, y, loss='logistic', lam=lam, maxiter=1000)``.

    Returns:
      A HeadsSolution with W [T, k, C], b [T, C] and per-task diagnostics.
    """
    settings = _settings(settings, options)
    features, targets, lam = _prepare_inputs(
        features, targets, lam, loss=loss, num_classes=num_classes
    )
    ridge = settings.ridge
    scale = jax.lax.stop_gradient(1.0 / lipschitz_constants(features, loss, ridge))
    thresholds = lam * scale  # [T], the prox threshold of the rescaled problem

    active_set = (
        settings.differentiation == "implicit"
        and settings.linear_solve == ACTIVE_SET_SOLVE
    )
    smooth = functools.partial(_smooth_objective, loss=loss, ridge=ridge)
    init_params = jax.lax.stop_gradient(
        _initial_heads(features, targets, loss, num_classes, init)
    )
    if active_set:
        solve = _solve_differentiated_on_active_set(
            functools.partial(
                _fista_with_restart,
                smooth,
                _heads_prox(settings.penalty, loss),
                maxiter=settings.maxiter,
                tol=settings.tol,
            ),
            loss=loss,
            penalty=settings.penalty,
            ridge=ridge,
            tol=settings.linear_solve_tol,
            maxiter=settings.linear_solve_maxiter,
        )
        W, b, num_iterations = solve(init_params, features, targets, lam, scale)
    else:
        solver = _proximal_gradient(smooth, stepsize=1.0, loss=loss, settings=settings)
        (W, b), state = jax.vmap(solver.run)(
            init_params, thresholds, features, targets, scale
        )
        num_iterations = state.iter_num
    objective = functools.partial(
        smooth, features=features, targets=targets, scale=scale
    )
    optimality_error, num_active = _diagnostics(
        objective, (W, b), thresholds, penalty=settings.penalty, loss=loss, unit=scale
    )
    return HeadsSolution(W, b, num_iterations, optimality_error, num_active)


# ----------------------------------------------------------------------------
# Heads coupled by the feature-sharing regulariser (the 'inner' variant).


def _shared_objective(
    params,
    features,
    targets,
    scale,
    *,
    loss,
    ridge,
    share_weight,
    share_variant,
    share_temperature,
    share_smoothing,
):
    """scale * (mean_t task objective_t + share_weight * sharing regulariser)."""
    num_tasks = features.shape[0]
    task_part = _smooth_objective(
        params, features, targets, scale / num_tasks, loss=loss, ridge=ridge
    )
    sharing = losses.sharing_regularizer(
        params[0],
        share_variant,
        temperature=share_temperature,
        smoothing=share_smoothing,
    )
    return task_part + scale * share_weight * sharing


def solve_heads_shared(
    features: jax.Array,
    targets: jax.Array,
    *,
    loss: str,
    lam: jax.Array | float,
    share_weight: float,
    share_variant: str = "usage",
    share_temperature: float = losses.DEFAULT_COUNT_TEMPERATURE,
    share_smoothing: float = 0.1,
    num_classes: int | None = None,
    settings: InnerSettings | None = None,
    init: tuple[jax.Array, jax.Array] | None = None,
    **options,
) -> HeadsSolution:
    """Solves the T heads jointly with the sharing regulariser inside.

    The 'inner' placement of docs/method.md: one problem over all heads,

        min_{W, b}  mean_t [ (1/n) sum_i loss_t + lam_t penalty(W_t)
                             + (ridge/2) ||W_t||^2 ]
                    + share_weight * sharing_regularizer(W, share_variant).

    The sharing term couples the tasks and is not convex, so the solver
    finds a stationary point (a fixed point of the proximal-gradient map,
    which is what implicit differentiation uses). Its gradient is not
    Lipschitz near all-zero rows, so the step size comes from a backtracking
    line search on the problem rescaled by T / max_t L_t.

    Args:
      share_weight: the weight of the sharing term (>= 0). With 0 this
        solves the same problems as `solve_heads`.
      share_variant: 'usage', 'per_feature' or 'count'
        (`losses.sharing_regularizer`).
      share_temperature: the 'count' variant's temperature.
      share_smoothing: s > 0 in the smooth usage sqrt(||W_tj||^2 + s^2) - s
        (`losses.feature_usage`); exact row norms make the objective's
        gradient jump at zero rows and the iterations fail to converge.
      Others: as in `solve_heads`, except that linear_solve='active_cg'
        falls back to 'gmres' (the coupled problem has no positive definite
        active-set system).

    Returns:
      A HeadsSolution; `num_iterations` is the joint count, repeated per task.
    """
    settings = _settings(settings, options)
    features, targets, lam = _prepare_inputs(
        features, targets, lam, loss=loss, num_classes=num_classes
    )
    if share_weight < 0:
        raise ValueError(f"share_weight must be >= 0; got {share_weight}.")
    if share_variant not in losses.SHARING_VARIANTS:
        raise ValueError(
            f"share_variant must be one of {losses.SHARING_VARIANTS}, got "
            f"{share_variant!r}."
        )
    if settings.linear_solve == ACTIVE_SET_SOLVE:
        # The entropy couples the tasks and is not convex: no positive
        # definite active-set system; jaxopt's fixed-point solve instead.
        settings = dataclasses.replace(settings, linear_solve="gmres")
    num_tasks = features.shape[0]
    largest_lipschitz = jnp.max(lipschitz_constants(features, loss, settings.ridge))
    scale = jax.lax.stop_gradient(num_tasks / largest_lipschitz)
    thresholds = lam * scale / num_tasks  # [T]

    solver = _proximal_gradient(
        functools.partial(
            _shared_objective,
            loss=loss,
            ridge=settings.ridge,
            share_weight=share_weight,
            share_variant=share_variant,
            share_temperature=share_temperature,
            share_smoothing=share_smoothing,
        ),
        stepsize=0.0,  # backtracking line search
        loss=loss,
        settings=settings,
    )
    init_params = jax.lax.stop_gradient(
        _initial_heads(features, targets, loss, num_classes, init)
    )
    (W, b), state = solver.run(init_params, thresholds, features, targets, scale)
    objective = functools.partial(
        solver.fun, features=features, targets=targets, scale=scale
    )
    optimality_error, num_active = _diagnostics(
        objective,
        (W, b),
        thresholds,
        penalty=settings.penalty,
        loss=loss,
        unit=jnp.full((num_tasks,), scale / num_tasks),
    )
    num_iterations = jnp.full((num_tasks,), state.iter_num)
    return HeadsSolution(W, b, num_iterations, optimality_error, num_active)
