"""The bilevel objective: episode -> features -> sparse heads -> outer loss.

An episode holds T tasks, each with a support set (to fit the heads) and a
query set (to score them):

    support_x [T, n_s, *obs], support_y [T, n_s],
    query_x   [T, n_q, *obs], query_y   [T, n_q].

The encoder runs once on the flattened episode [T * (n_s + n_q), *obs]; the
heads are solved on the support features by `inner.solve_heads` (or
`inner.solve_heads_shared` when the sharing term sits inside the inner
problem); the outer loss is the mean query loss of the solved heads plus the
weighted feature-sharing regulariser. Its gradient with respect to the encoder
parameters flows through the heads by implicit differentiation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import jax.numpy as jnp
import optax
from flax.training import train_state

from sparse_shared_jax import inner, losses

NORMALIZATIONS = ("episode", "none")
LAMBDA_MODES = ("relative", "absolute")
SHARE_PLACEMENTS = ("outer", "inner")

# Added to the feature standard deviation when standardising over the episode.
_STD_EPS = 1e-6


class EpisodeLike(Protocol):
    """Anything with support/query inputs and targets (e.g. data.Episode)."""

    support_x: jax.Array
    support_y: jax.Array
    query_x: jax.Array
    query_y: jax.Array


class EpisodeBatch(NamedTuple):
    """Just the arrays the outer step needs (what to send to the device)."""

    support_x: jax.Array  # [T, n_s, *obs]
    support_y: jax.Array  # [T, n_s]
    query_x: jax.Array  # [T, n_q, *obs]
    query_y: jax.Array  # [T, n_q]

    @classmethod
    def from_episode(cls, episode: EpisodeLike) -> EpisodeBatch:
        return cls(
            episode.support_x, episode.support_y, episode.query_x, episode.query_y
        )


@dataclasses.dataclass(frozen=True)
class BilevelSettings:
    """Static settings of the bilevel objective (hashable, for jit).

    Attributes:
      loss: task loss, 'logistic', 'softmax' or 'squared'.
      num_classes: C for 'softmax'; None otherwise.
      normalization: 'episode' standardises every feature with its mean and
        standard deviation over the episode's examples; 'none' leaves them.
      lambda_mode: 'relative' sets lam_t = alpha * lambda_max_t (computed under
        stop_gradient, scale free); 'absolute' sets lam_t = alpha.
      alpha: the sparsity weight (a fraction of lambda_max when relative).
      solver: how the inner problem is solved and differentiated
        (inner.InnerSettings: penalty, ridge, maxiter, tol, differentiation,
        linear solve).
      share_weight: lambda_share, the weight of the sharing regulariser.
      share_variant: 'usage', 'per_feature' (entropies) or 'count' (a smooth
        count of the features used; see losses.sharing_regularizer).
      share_temperature: the 'count' variant's temperature.
      share_warmup_steps: the weight rises linearly from 0 to share_weight
        over the first share_warmup_steps outer steps (0: full weight from
        the start); 'outer' placement only.
      share_projected: project the sharing term's gradient, task by task,
        so that it never raises a task's query loss to first order (see
        `outer_value_and_grad`); 'outer' placement only.
      share_placement: 'outer' adds the regulariser to the outer loss; 'inner'
        puts it in the inner problem (heads solved jointly).
      share_smoothing: smoothing of the feature usage for the 'inner'
        placement (see losses.feature_usage).
    """

    loss: str = "logistic"
    num_classes: int | None = None
    normalization: str = "episode"
    lambda_mode: str = "relative"
    alpha: float = 0.3
    solver: inner.InnerSettings = inner.DEFAULTS
    share_weight: float = 0.0
    share_variant: str = "usage"
    share_temperature: float = losses.DEFAULT_COUNT_TEMPERATURE
    share_warmup_steps: int = 0
    share_projected: bool = False
    share_placement: str = "outer"
    share_smoothing: float = 0.1

    def __post_init__(self):
        losses.check_loss_name(self.loss)
        for name, allowed in (
            ("normalization", NORMALIZATIONS),
            ("lambda_mode", LAMBDA_MODES),
            ("share_placement", SHARE_PLACEMENTS),
            ("share_variant", losses.SHARING_VARIANTS),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"{name} must be one of {allowed}, got {getattr(self, name)!r}."
                )
        if not isinstance(self.solver, inner.InnerSettings):
            raise TypeError(
                f"solver must be an inner.InnerSettings; got {type(self.solver)}."
            )
        if self.alpha < 0 or (self.lambda_mode == "relative" and self.alpha >= 1):
            raise ValueError(
                "alpha must be in [0, 1) with lambda_mode='relative' (a fraction "
                f"of lambda_max) or >= 0 with 'absolute'; got {self.alpha}."
            )
        if self.share_weight < 0:
            raise ValueError(f"share_weight must be >= 0; got {self.share_weight}.")
        if self.share_temperature <= 0:
            raise ValueError(
                f"share_temperature must be > 0; got {self.share_temperature}."
            )
        if self.share_warmup_steps < 0:
            raise ValueError(
                f"share_warmup_steps must be >= 0; got {self.share_warmup_steps}."
            )
        if self.share_projected and self.share_placement != "outer":
            raise ValueError(
                "share_projected applies to share_placement='outer' only; got "
                f"share_placement={self.share_placement!r}."
            )
        if self.share_warmup_steps and self.share_placement != "outer":
            raise ValueError(
                "share_warmup_steps applies to share_placement='outer' only; got "
                f"share_placement={self.share_placement!r} with "
                f"share_warmup_steps={self.share_warmup_steps}."
            )

    def sharing(self, W: jax.Array) -> jax.Array:
        """The sharing regulariser of heads W [T, k, C] (unweighted)."""
        return losses.sharing_regularizer(
            W, self.share_variant, temperature=self.share_temperature
        )

    def share_weight_at(self, step: jax.Array) -> jax.Array:
        """The sharing weight at outer step `step` (0-based), after warm-up."""
        if not self.share_warmup_steps:
            return jnp.asarray(self.share_weight, jnp.float32)
        ramp = jnp.minimum(1.0, step / self.share_warmup_steps)
        return self.share_weight * ramp.astype(jnp.float32)


def episode_features(
    params: Any,
    apply_fn: Callable[[Any, jax.Array], jax.Array],
    episode: EpisodeLike,
    normalization: str = "episode",
) -> tuple[jax.Array, jax.Array]:
    """Encodes the whole episode in one call.

    Args:
      params: encoder parameters.
      apply_fn: apply_fn(params, x [N, *obs]) -> features [N, k].
      episode: support_x [T, n_s, *obs] and query_x [T, n_q, *obs].
      normalization: 'episode' or 'none' (see BilevelSettings).

    Returns:
      support features [T, n_s, k] and query features [T, n_q, k].
    """
    num_tasks, support_size = episode.support_x.shape[:2]
    query_size = episode.query_x.shape[1]
    observation_shape = episode.support_x.shape[2:]
    if episode.query_x.shape[2:] != observation_shape:
        raise ValueError(
            f"support_x {episode.support_x.shape} and query_x "
            f"{episode.query_x.shape} must share the observation shape."
        )
    # Concatenated along the example axis, so an episode sharded over tasks
    # (see parallel.py) is encoded without moving data between devices.
    x = jnp.concatenate([episode.support_x, episode.query_x], axis=1)
    z = apply_fn(params, x.reshape(-1, *observation_shape))  # [T * (n_s + n_q), k]
    # A bfloat16 encoder still hands float32 (or float64) features to the solver.
    z = z.astype(jnp.promote_types(z.dtype, jnp.float32))
    z = z.reshape(num_tasks, support_size + query_size, -1)  # [T, n_s + n_q, k]
    if normalization == "episode":
        mean = jnp.mean(z, axis=(0, 1))
        z = (z - mean) / (jnp.std(z, axis=(0, 1)) + _STD_EPS)
    elif normalization != "none":
        raise ValueError(
            f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}."
        )
    support = z[:, :support_size]  # [T, n_s, k]
    query = z[:, support_size:]  # [T, n_q, k]
    return support, query


def penalty_weights(
    support_features: jax.Array, support_y: jax.Array, settings: BilevelSettings
) -> jax.Array:
    """lam [T]: alpha * lambda_max_t (relative, no gradient) or alpha."""
    if settings.lambda_mode == "absolute":
        return jnp.full(support_features.shape[0], settings.alpha)
    lam_max = losses.lambda_max(
        jax.lax.stop_gradient(support_features),
        support_y,
        settings.loss,
        settings.num_classes,
    )
    return settings.alpha * lam_max


def fit_heads(
    support_features: jax.Array, support_y: jax.Array, settings: BilevelSettings
) -> inner.HeadsSolution:
    """Solves the inner problem on support features [T, n_s, k]."""
    options = dict(
        loss=settings.loss,
        lam=penalty_weights(support_features, support_y, settings),
        num_classes=settings.num_classes,
        settings=settings.solver,
    )
    if settings.share_placement == "inner" and settings.share_weight > 0:
        return inner.solve_heads_shared(
            support_features,
            support_y,
            share_weight=settings.share_weight,
            share_variant=settings.share_variant,
            share_temperature=settings.share_temperature,
            share_smoothing=settings.share_smoothing,
            **options,
        )
    return inner.solve_heads(support_features, support_y, **options)


def episode_terms(
    support: jax.Array,
    query: jax.Array,
    episode: EpisodeLike,
    settings: BilevelSettings,
) -> tuple[tuple[jax.Array, jax.Array], dict[str, jax.Array]]:
    """The two terms of the outer objective on given episode features.

    Args:
      support: [T, n_s, k] and query: [T, n_q, k] features (normalised).
      episode: its targets support_y [T, n_s] and query_y [T, n_q].
      settings: the static BilevelSettings.

    Returns:
      ((query_loss, sharing), aux): the mean query loss of the solved heads,
      the sharing regulariser of the heads (unweighted), and the
      diagnostics of `outer_loss` (without 'sharing' and 'share_weight').
    """
    heads = fit_heads(support, episode.support_y, settings)
    outputs = query @ heads.W + heads.b[:, None, :]  # [T, n_q, C]
    query_loss = jnp.mean(losses.task_loss(outputs, episode.query_y, settings.loss))
    sharing = settings.sharing(heads.W)
    used = losses.row_norms(heads.W) > 0  # [T, k]
    aux = {
        "query_loss": query_loss,
        "query_accuracy": jnp.mean(
            losses.task_accuracy(outputs, episode.query_y, settings.loss)
        ),
        "active_features": jnp.mean(heads.num_active.astype(jnp.float32)),
        "distinct_features": jnp.sum(jnp.any(used, axis=0)).astype(jnp.float32),
        "inner_iterations": jnp.max(heads.num_iterations).astype(jnp.float32),
        "inner_optimality_error": jnp.max(heads.optimality_error),
        "inner_unconverged": jnp.mean(
            (heads.num_iterations >= settings.solver.maxiter).astype(jnp.float32)
        ),
    }
    return (query_loss, sharing), jax.lax.stop_gradient(aux)


def outer_loss(
    params: Any,
    apply_fn: Callable[[Any, jax.Array], jax.Array],
    episode: EpisodeLike,
    settings: BilevelSettings,
    share_weight: jax.Array | float | None = None,
) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The outer objective of one episode and its diagnostics.

    loss = mean_t query_loss_t(W_t*, b_t*) + share_weight * R_share(W*)
    (the sharing term only with share_placement='outer').

    Args:
      params: encoder parameters (differentiate with respect to these).
      apply_fn: apply_fn(params, x [N, *obs]) -> features [N, k].
      episode: support/query inputs and targets for T tasks.
      settings: the static BilevelSettings.
      share_weight: the sharing weight of this step (default
        settings.share_weight; `train_step` passes the warmed-up weight).

    Returns:
      (loss, aux) where aux holds scalars: query_loss, query_accuracy
      (0 for regression), sharing (the regulariser's value), share_weight,
      active_features (mean per task), distinct_features (used by at least
      one task), inner_iterations (max over tasks), inner_optimality_error
      (max over tasks), inner_unconverged (fraction of tasks whose solver
      stopped at maxiter).
    """
    if share_weight is None:
        share_weight = settings.share_weight
    support, query = episode_features(params, apply_fn, episode, settings.normalization)
    (query_loss, sharing), aux = episode_terms(support, query, episode, settings)
    loss = query_loss
    if settings.share_placement == "outer":
        loss = loss + share_weight * sharing
    aux = dict(
        aux,
        sharing=jax.lax.stop_gradient(sharing),
        share_weight=jnp.asarray(share_weight, jnp.float32),
    )
    return loss, aux


def project_conflicts(
    share_gradient: tuple[jax.Array, ...], query_gradient: tuple[jax.Array, ...]
) -> tuple[tuple[jax.Array, ...], jax.Array]:
    """Removes, task by task, the part of the sharing gradient that would
    raise the query loss.

    Both gradients are with respect to the episode's features, a tuple of
    [T, n, k] arrays (support, query). For each task t with a negative inner
    product <g_share[t], g_query[t]> (a step against g_share would raise
    task t's query loss to first order), g_share[t] loses its component
    along g_query[t]; other tasks keep theirs.

    Returns:
      (the projected sharing gradient, the fraction of tasks projected).
    """

    def per_task(product):  # sum over every axis but the task axis
        return sum(jnp.sum(p, axis=tuple(range(1, p.ndim))) for p in product)

    dot = per_task(a * b for a, b in zip(share_gradient, query_gradient, strict=True))
    norm = per_task(jnp.square(b) for b in query_gradient)  # [T]
    coefficient = jnp.where(dot < 0, dot / jnp.maximum(norm, 1e-30), 0.0)  # [T]
    projected = tuple(
        a - coefficient.reshape((-1,) + (1,) * (a.ndim - 1)) * b
        for a, b in zip(share_gradient, query_gradient, strict=True)
    )
    return projected, jnp.mean((dot < 0).astype(jnp.float32))


def outer_value_and_grad(
    params: Any,
    apply_fn: Callable[[Any, jax.Array], jax.Array],
    episode: EpisodeLike,
    settings: BilevelSettings,
    share_weight: jax.Array | float | None = None,
) -> tuple[tuple[jax.Array, dict[str, jax.Array]], Any]:
    """`outer_loss` and its gradient with respect to the encoder parameters.

    With settings.share_projected (and the 'outer' placement), the sharing
    term's gradient is taken with respect to the episode's features first
    and projected task by task (`project_conflicts`) so that it never
    pushes against a task's query loss, then combined with the query
    loss's and pulled back through the encoder once. The reported loss is
    `outer_loss`'s either way; aux adds 'share_conflicts', the fraction of
    tasks whose sharing gradient was projected.

    Returns:
      ((loss, aux), grads) like jax.value_and_grad(outer_loss, has_aux=True).
    """
    if share_weight is None:
        share_weight = settings.share_weight
    if not (settings.share_projected and settings.share_placement == "outer"):
        return jax.value_and_grad(outer_loss, has_aux=True)(
            params, apply_fn, episode, settings, share_weight
        )
    features, encoder_vjp = jax.vjp(
        lambda p: episode_features(p, apply_fn, episode, settings.normalization),
        params,
    )
    (query_loss, sharing), terms_vjp, aux = jax.vjp(
        lambda support, query: episode_terms(support, query, episode, settings),
        *features,
        has_aux=True,
    )
    one, zero = jnp.ones_like(query_loss), jnp.zeros_like(sharing)
    query_gradient = terms_vjp((one, zero))
    share_gradient, conflicts = project_conflicts(
        terms_vjp((jnp.zeros_like(query_loss), jnp.ones_like(sharing))), query_gradient
    )
    combined = tuple(
        q + share_weight * s
        for q, s in zip(query_gradient, share_gradient, strict=True)
    )
    (grads,) = encoder_vjp(combined)
    aux = dict(
        aux,
        sharing=sharing,
        share_weight=jnp.asarray(share_weight, jnp.float32),
        share_conflicts=conflicts,
    )
    return (query_loss + share_weight * sharing, jax.lax.stop_gradient(aux)), grads


def create_train_state(
    encoder,
    rng: jax.Array,
    example_x: jax.Array,
    optimizer: optax.GradientTransformation,
) -> train_state.TrainState:
    """Initialises encoder parameters on example inputs [N, *obs]."""
    params = encoder.init(rng, example_x)
    return train_state.TrainState.create(
        apply_fn=encoder.apply, params=params, tx=optimizer
    )


def train_step(
    state: train_state.TrainState, episode: EpisodeLike, settings: BilevelSettings
) -> tuple[train_state.TrainState, dict[str, jax.Array]]:
    """One outer update of the encoder on one episode.

    Pure: jit it with `settings` static, e.g.
    ``jax.jit(train_step, static_argnums=2, donate_argnums=0)``.

    Returns:
      The updated state and the metrics of `outer_loss` plus 'loss' and
      'grad_norm'.
    """
    share_weight = settings.share_weight_at(state.step)
    (loss, aux), grads = outer_value_and_grad(
        state.params, state.apply_fn, episode, settings, share_weight
    )
    metrics = dict(aux, loss=loss, grad_norm=optax.tree.norm(grads))
    return state.apply_gradients(grads=grads), metrics
