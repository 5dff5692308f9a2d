"""Pure penalties, task losses and the feature-sharing regulariser.

Every function here is pure, jittable and differentiable, and takes arrays and
static strings only (no config objects). Shapes: T = tasks, n = examples,
k = features, C = outputs per head.

Task losses (``loss`` argument, a static string):

* ``'logistic'``: binary labels in {0, 1}, one output per example (C = 1).
* ``'softmax'``: integer class ids in [0, C), C outputs per example.
* ``'squared'``: real targets, one output, loss 0.5 * (output - target)**2.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

LOSSES = ("logistic", "softmax", "squared")
# Variants of the feature-sharing regulariser (`sharing_regularizer`).
SHARING_VARIANTS = ("usage", "per_feature", "count")

# Keeps every log finite and every normalisation defined when heads are zero.
DEFAULT_ENTROPY_EPS = 1e-8
# The 'count' variant's temperature, relative to a feature's usage when all k
# features are used equally.
DEFAULT_COUNT_TEMPERATURE = 0.5


def check_loss_name(loss: str) -> None:
    """Raises ValueError unless `loss` is one of LOSSES."""
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}.")


def safe_norm(x: jax.Array, axis: int = -1) -> jax.Array:
    """Euclidean norm along `axis` whose gradient at 0 is 0 (not NaN)."""
    squared = jnp.sum(jnp.square(x), axis=axis)
    nonzero = squared > 0
    return jnp.where(nonzero, jnp.sqrt(jnp.where(nonzero, squared, 1.0)), 0.0)


def row_norms(W: jax.Array) -> jax.Array:
    """Norms of the feature rows of heads: [..., k, C] -> [..., k]."""
    return safe_norm(W, axis=-1)


def group_lasso(W: jax.Array) -> jax.Array:
    """Group lasso over feature rows: [..., k, C] -> [...].

    Sum over features j of ||W[..., j, :]||_2, the plain L1 norm when C = 1.
    The gradient at an all-zero row is the subgradient 0.
    """
    return jnp.sum(row_norms(W), axis=-1)


def l1(W: jax.Array) -> jax.Array:
    """Element-wise L1 norm over the last two axes: [..., k, C] -> [...]."""
    return jnp.sum(jnp.abs(W), axis=(-2, -1))


def task_loss(outputs: jax.Array, targets: jax.Array, loss: str) -> jax.Array:
    """Mean task loss over the example axis.

    Args:
      outputs: [..., n, C] head outputs (C = 1 for 'logistic' and 'squared';
        a trailing axis of size 1 may also be dropped, [..., n]).
      targets: [..., n]: {0, 1} for 'logistic', int class ids for 'softmax',
        floats for 'squared'.
      loss: 'logistic', 'softmax' or 'squared'.

    Returns:
      [...] the loss averaged over the n examples.
    """
    check_loss_name(loss)
    if loss == "softmax":
        per_example = optax.softmax_cross_entropy_with_integer_labels(
            outputs, targets.astype(jnp.int32)
        )
    else:
        if outputs.ndim == targets.ndim + 1:
            if outputs.shape[-1] != 1:
                raise ValueError(
                    f"loss={loss!r} takes one output per example; got outputs "
                    f"of shape {outputs.shape}."
                )
            outputs = outputs[..., 0]
        targets = targets.astype(outputs.dtype)
        if loss == "logistic":
            per_example = optax.sigmoid_binary_cross_entropy(outputs, targets)
        else:
            per_example = 0.5 * jnp.square(outputs - targets)
    return jnp.mean(per_example, axis=-1)


def task_accuracy(outputs: jax.Array, targets: jax.Array, loss: str) -> jax.Array:
    """Mean classification accuracy: [..., n, C], [..., n] -> [...].

    For 'squared' (regression) there is no accuracy; returns NaN-free zeros of
    the batch shape so metric dictionaries keep a fixed structure.
    """
    check_loss_name(loss)
    if loss == "softmax":
        predictions = jnp.argmax(outputs, axis=-1)
    elif loss == "logistic":
        predictions = (outputs[..., 0] > 0).astype(jnp.int32)
    else:
        return jnp.zeros(outputs.shape[:-2], outputs.dtype)
    return jnp.mean(predictions == targets.astype(jnp.int32), axis=-1)


def one_hot_targets(targets: jax.Array, loss: str, num_classes: int | None):
    """Targets as a float matrix [..., n, C] matching the head's outputs."""
    if loss == "softmax":
        return jax.nn.one_hot(targets, num_classes)
    return targets.astype(jnp.result_type(float))[..., None]


def optimal_bias_at_zero(
    targets: jax.Array, loss: str, num_classes: int | None = None
) -> jax.Array:
    """The optimal unpenalised bias when all weights are zero: [..., n] -> [..., C].

    'squared': the target mean; 'logistic': the log-odds of the positive rate;
    'softmax': the log class frequencies. Classes absent from the targets give
    a very negative (finite) bias: the true optimum is at minus infinity.
    """
    check_loss_name(loss)
    y = one_hot_targets(targets, loss, num_classes)
    mean = jnp.mean(y, axis=-2)  # [..., C]
    if loss == "squared":
        return mean
    tiny = jnp.finfo(mean.dtype).tiny
    if loss == "logistic":
        p = jnp.clip(mean, tiny, 1 - jnp.finfo(mean.dtype).eps)
        return jnp.log(p) - jnp.log1p(-p)
    return jnp.log(jnp.maximum(mean, tiny))


def lambda_max(
    features: jax.Array,
    targets: jax.Array,
    loss: str,
    num_classes: int | None = None,
) -> jax.Array:
    """The smallest group-lasso weight for which the optimal heads are all zero.

    For the inner problem min (1/n) sum_i loss(W^T z_i + b, y_i) + lam *
    group_lasso(W) (+ a ridge on W, which does not change it), with the bias
    unpenalised: at W = 0 the bias is optimal at `optimal_bias_at_zero`, where
    the loss gradient with respect to W is G = Z^T (P - Y) / n (P: predictions
    at W = 0, Y: one-hot or real targets), and W = 0 is optimal iff
    lam >= max_j ||G[j, :]||_2.

    Args:
      features: [..., n, k].
      targets: [..., n].
      loss: 'logistic', 'softmax' or 'squared'.
      num_classes: C, required for 'softmax'.

    Returns:
      [...] lambda_max for each leading index.
    """
    check_loss_name(loss)
    if loss == "softmax" and num_classes is None:
        raise ValueError("num_classes is required for loss='softmax'.")
    y = one_hot_targets(targets, loss, num_classes).astype(features.dtype)
    # The predictions at W = 0 with the optimal bias equal the target mean for
    # all three losses (mean for squared, positive rate for logistic, class
    # frequencies for softmax).
    residual = jnp.mean(y, axis=-2, keepdims=True) - y  # [..., n, C]
    n = features.shape[-2]
    gradient = jnp.einsum("...nk,...nc->...kc", features, residual) / n
    return jnp.max(safe_norm(gradient, axis=-1), axis=-1)


def _normalize(x: jax.Array, axis: int, eps: float) -> jax.Array:
    return x / (jnp.sum(x, axis=axis, keepdims=True) + eps)


def _entropy(p: jax.Array, axis: int, eps: float) -> jax.Array:
    return -jnp.sum(p * jnp.log(p + eps), axis=axis)


def feature_usage(W: jax.Array, smoothing: float = 0.0) -> jax.Array:
    """How strongly each task uses each feature: [T, k, C] -> u [T, k] >= 0.

    u = ||W[t, j, :]||_2, or with smoothing s > 0 the smooth surrogate
    sqrt(||W[t, j, :]||^2 + s^2) - s, whose gradient is Lipschitz (needed when
    the regulariser sits inside the inner problem).
    """
    if smoothing > 0:
        squared = jnp.sum(jnp.square(W), axis=-1)
        return jnp.sqrt(squared + smoothing**2) - smoothing
    return row_norms(W)


def feature_sharing_entropy(
    W: jax.Array,
    variant: str = "usage",
    eps: float = DEFAULT_ENTROPY_EPS,
    smoothing: float = 0.0,
) -> jax.Array:
    """The entropy-based feature-sharing regulariser, to be minimised.

    With u[t, j] = ||W[t, j, :]||_2 the usage of feature j by task t:

    * 'usage': p[t] = u[t] / sum_j u[t, j] is task t's usage profile; the
      episode's profile p_bar is the average of the profiles of the tasks with
      a non-zero head; returns H(p_bar) = -sum_j p_bar_j log p_bar_j. 0 when
      all tasks use one single feature, log k when usage is uniform.
    * 'per_feature': q[:, j] = u[:, j] / sum_t u[t, j] is how feature j's use is
      spread over the tasks; returns -mean_j H(q[:, j]) (minimising it spreads
      every feature over many tasks).

    Args:
      W: [T, k, C] task heads.
      variant: 'usage' or 'per_feature'.
      eps: keeps logs finite and normalisations defined: all-zero heads give a
        finite value (0) and a finite gradient.
      smoothing: 0 for the exact row norms; s > 0 uses the smooth usage of
        `feature_usage` (for the regulariser inside the inner problem).

    Returns:
      Scalar regulariser value.
    """
    if W.ndim != 3:
        raise ValueError(f"W must have shape [T, k, C]; got shape {W.shape}.")
    if variant == "usage":
        return _entropy(average_usage_profile(W, eps, smoothing), axis=0, eps=eps)
    u = feature_usage(W, smoothing)  # [T, k]
    if variant == "per_feature":
        q = _normalize(u, axis=0, eps=eps)  # [T, k]
        return -jnp.mean(_entropy(q, axis=0, eps=eps))
    raise ValueError(
        f"variant must be 'usage' or 'per_feature', got {variant!r} (the "
        "'count' variant is smooth_feature_count; sharing_regularizer takes all)."
    )


def average_usage_profile(
    W: jax.Array, eps: float = DEFAULT_ENTROPY_EPS, smoothing: float = 0.0
) -> jax.Array:
    """The episode's average usage profile p_bar [k] of heads W [T, k, C].

    Each task's usage u[t] (`feature_usage`) is normalised to sum 1 (its
    profile); p_bar is the normalised sum of the profiles, so tasks with an
    all-zero head do not count. Sums to 1 unless every head is zero (then 0).
    """
    profiles = _normalize(feature_usage(W, smoothing), axis=1, eps=eps)  # [T, k]
    return _normalize(jnp.sum(profiles, axis=0), axis=0, eps=eps)  # [k]


def smooth_feature_count(
    W: jax.Array,
    temperature: float = DEFAULT_COUNT_TEMPERATURE,
    eps: float = DEFAULT_ENTROPY_EPS,
    smoothing: float = 0.0,
) -> jax.Array:
    """A smooth count of the features the episode's heads use, to be minimised.

    With p_bar the average usage profile (`average_usage_profile`) and k the
    number of features, returns

        sum_j 1 - exp(-k p_bar_j / temperature),

    between 0 (all heads zero) and k. A feature used about as much as the
    others counts about 1 and is hardly pushed (the exponential is flat
    there), while a rarely used one (k p_bar_j below the temperature) counts
    in proportion to its use and is pushed out. So, unlike the 'usage'
    entropy, which keeps pushing the episode's usage onto ever fewer features
    (lower entropy for any less even spread), it removes features that few
    tasks use, such as redundant copies of a factor, and leaves features
    that many tasks need alone.

    Args:
      W: [T, k, C] task heads.
      temperature: > 0, relative to the usage of each feature when all k are
        used equally (k p_bar_j = 1).
      eps: keeps the normalisations defined for all-zero heads.
      smoothing: as in `feature_usage`.

    Returns:
      Scalar regulariser value.
    """
    if W.ndim != 3:
        raise ValueError(f"W must have shape [T, k, C]; got shape {W.shape}.")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0; got {temperature}.")
    relative_usage = W.shape[1] * average_usage_profile(W, eps, smoothing)  # [k]
    return jnp.sum(1.0 - jnp.exp(-relative_usage / temperature))


def sharing_regularizer(
    W: jax.Array,
    variant: str = "usage",
    *,
    temperature: float = DEFAULT_COUNT_TEMPERATURE,
    eps: float = DEFAULT_ENTROPY_EPS,
    smoothing: float = 0.0,
) -> jax.Array:
    """The feature-sharing regulariser of any variant: W [T, k, C] -> scalar.

    'usage' and 'per_feature' are `feature_sharing_entropy`'s; 'count' is
    `smooth_feature_count` (with `temperature`).
    """
    if variant == "count":
        return smooth_feature_count(W, temperature, eps, smoothing)
    if variant in ("usage", "per_feature"):
        return feature_sharing_entropy(W, variant, eps, smoothing)
    raise ValueError(f"variant must be one of {SHARING_VARIANTS}, got {variant!r}.")
