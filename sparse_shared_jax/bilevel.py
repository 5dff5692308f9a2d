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
      penalty: 'group_lasso' over feature rows or element-wise 'l1'.
      ridge: the inner ridge weight on W.
      maxiter, tol: inner solver iteration cap and tolerance.
      differentiation: 'implicit' or 'unrolled'.
      linear_solve, linear_solve_tol: the implicit-diff linear solver.
      share_weight: lambda_share, the weight of the sharing regulariser.
      share_variant: 'usage', 'per_feature' (entropies) or 'count' (a smooth
        count of the features used; see losses.sharing_regularizer).
      share_temperature: the 'count' variant's temperature.
      share_warmup_steps: the weight rises linearly from 0 to share_weight
        over the first share_warmup_steps outer steps (0: full weight from
        the start); 'outer' placement only.
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
    penalty: str = "group_lasso"
    ridge: float = 1e-4
    maxiter: int = 500
    tol: float = 1e-5
    differentiation: str = "implicit"
    linear_solve: str = "active_cg"
    linear_solve_tol: float = 1e-6
    share_weight: float = 0.0
    share_variant: str = "usage"
    share_temperature: float = losses.DEFAULT_COUNT_TEMPERATURE
    share_warmup_steps: int = 0
    share_placement: str = "outer"
    share_smoothing: float = 0.1

    def __post_init__(self):
        losses.check_loss_name(self.loss)
        for name, allowed in (
            ("normalization", NORMALIZATIONS),
            ("lambda_mode", LAMBDA_MODES),
            ("share_placement", SHARE_PLACEMENTS),
            ("share_variant", losses.SHARING_VARIANTS),
            ("penalty", inner.PENALTIES),
            ("differentiation", inner.DIFFERENTIATIONS),
            ("linear_solve", inner.LINEAR_SOLVES),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(
                    f"{name} must be one of {allowed}, got {getattr(self, name)!r}."
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
        penalty=settings.penalty,
        ridge=settings.ridge,
        maxiter=settings.maxiter,
        tol=settings.tol,
        differentiation=settings.differentiation,
        linear_solve=settings.linear_solve,
        linear_solve_tol=settings.linear_solve_tol,
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
      (0 for regression), sharing (the regulariser's value), active_features
      (mean per task), distinct_features (used by at least one task),
      inner_iterations (max over tasks), inner_optimality_error (max over
      tasks), inner_unconverged (fraction of tasks whose solver stopped at
      maxiter).
    """
    if share_weight is None:
        share_weight = settings.share_weight
    support, query = episode_features(params, apply_fn, episode, settings.normalization)
    heads = fit_heads(support, episode.support_y, settings)
    outputs = query @ heads.W + heads.b[:, None, :]  # [T, n_q, C]
    query_loss = jnp.mean(losses.task_loss(outputs, episode.query_y, settings.loss))
    sharing = settings.sharing(heads.W)
    loss = query_loss
    if settings.share_placement == "outer":
        loss = loss + share_weight * sharing
    used = losses.row_norms(heads.W) > 0  # [T, k]
    aux = {
        "query_loss": query_loss,
        "query_accuracy": jnp.mean(
            losses.task_accuracy(outputs, episode.query_y, settings.loss)
        ),
        "sharing": sharing,
        "share_weight": jnp.asarray(share_weight, jnp.float32),
        "active_features": jnp.mean(heads.num_active.astype(jnp.float32)),
        "distinct_features": jnp.sum(jnp.any(used, axis=0)).astype(jnp.float32),
        "inner_iterations": jnp.max(heads.num_iterations).astype(jnp.float32),
        "inner_optimality_error": jnp.max(heads.optimality_error),
        "inner_unconverged": jnp.mean(
            (heads.num_iterations >= settings.maxiter).astype(jnp.float32)
        ),
    }
    return loss, jax.lax.stop_gradient(aux)


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
    (loss, aux), grads = jax.value_and_grad(outer_loss, has_aux=True)(
        state.params, state.apply_fn, episode, settings, share_weight
    )
    metrics = dict(aux, loss=loss, grad_norm=optax.tree.norm(grads))
    return state.apply_gradients(grads=grads), metrics
