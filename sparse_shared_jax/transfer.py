"""Transfer evaluation of a frozen encoder, and its two baselines.

docs/method.md, Evaluation: freeze the encoder, fit a sparse linear head
for the target task with the inner solver on the target training split
(penalty chosen on the validation split), and report average and
worst-group accuracy on the test split (groups = label x spurious
attribute). The baselines run in the same harness:

* ERM: the same encoder architecture trained from scratch, with a linear
  head, on the target label of the training split by gradient descent
  (`train_erm`);
* last-layer retraining: a linear head refit on the frozen ERM features
  with a group-balanced validation set (`last_layer_retraining`).

Sparse heads and last-layer retraining take binary or multi-class targets
(classes 0..C-1), and so does ERM. Typical use, with splits that have
``images`` [n, *obs], ``labels`` [n] and ``groups`` [n]:

    features = {name: encode_split(params, apply_fn, split) for ...}
    selection = select_sparse_head(features['train'], train.labels,
                                   features['validation'], validation.labels,
                                   validation.groups, alphas)
    scores = group_scores(selection.head, features['test'], test.labels,
                          test.groups)
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import logging
from flax import serialization

from sparse_shared_jax import atomic_files, evaluate, inner, losses, metrics

ApplyFn = Callable[[Any, jax.Array], jax.Array]
# Added to a feature's standard deviation before dividing by it.
_STD_EPS = 1e-6


class LabelledSplit(Protocol):
    """A split with inputs, binary labels and group ids (e.g. SpuriousSplit)."""

    images: np.ndarray  # [n, *obs]
    labels: np.ndarray  # [n]
    groups: np.ndarray  # [n]


@dataclasses.dataclass(frozen=True)
class LinearHead:
    """A linear classifier on standardised features, binary or multi-class.

    logits(z) = ((z - mean) / std) @ weights + bias. Binary heads have
    weights [k] and a scalar bias (class 1 iff the logit > 0); heads for C > 2
    classes have weights [k, C] and bias [C] (the class of the largest logit).

    Attributes:
      weights: [k] or [k, C].
      bias: scalar, or [C].
      mean: [k], feature means of the data the head was fit on.
      std: [k], their standard deviations (plus a small epsilon).
    """

    weights: np.ndarray
    bias: float | np.ndarray
    mean: np.ndarray
    std: np.ndarray

    def logits(self, features: np.ndarray) -> np.ndarray:
        """Features [n, k] -> logits [n] (binary) or [n, C]."""
        return ((features - self.mean) / self.std) @ self.weights + self.bias

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Features [n, k] -> predicted classes int32 [n]."""
        logits = self.logits(features)
        if logits.ndim == 1:
            return (logits > 0).astype(np.int32)
        return np.argmax(logits, axis=-1).astype(np.int32)

    @property
    def num_active(self) -> int:
        """Features with a non-zero weight (a non-zero row for C > 2)."""
        weights = self.weights.reshape(len(self.weights), -1)  # [k, 1 or C]
        return int(np.count_nonzero(np.any(weights != 0, axis=1)))


@dataclasses.dataclass(frozen=True)
class HeadSelection:
    """A head chosen from a penalty grid, and how the grid scored.

    Attributes:
      head: the chosen head.
      alpha: its penalty (fraction of lambda_max).
      scores: alpha -> group scores (`group_scores`) on the selection data.
    """

    head: LinearHead
    alpha: float
    scores: dict[float, dict]


def encode_split(
    params: Any, apply_fn: ApplyFn, split: LabelledSplit, batch_size: int = 512
) -> np.ndarray:
    """Features [n, k] of a split's inputs [n, *obs] under a frozen encoder."""
    return evaluate.encode(params, apply_fn, split.images, batch_size)


def group_scores(
    head: LinearHead, features: np.ndarray, labels: np.ndarray, groups: np.ndarray
) -> dict:
    """Average, worst-group and per-group accuracy of `head` (metrics.group_accuracies).

    Args:
      head: the classifier.
      features: [n, k].
      labels: int [n] class ids.
      groups: int [n] group ids.
    """
    return metrics.group_accuracies(head.predict(features), labels, groups)


@functools.partial(jax.jit, static_argnames=("num_classes", "ridge", "maxiter", "tol"))
def _solve_sparse_head(features, labels, alpha, *, num_classes, ridge, maxiter, tol):
    """inner.solve_heads for one task: [n, k], [n] -> (W [k, C'], b [C'], error).

    C' = 1 (logistic) for two classes, else num_classes (softmax).
    """
    features, labels = features[None], labels[None]  # T = 1
    loss = "logistic" if num_classes == 2 else "softmax"
    classes = None if num_classes == 2 else num_classes
    lam = alpha * losses.lambda_max(features, labels, loss, classes)  # [1]
    solution = inner.solve_heads(
        features,
        labels,
        loss=loss,
        lam=lam,
        num_classes=classes,
        ridge=ridge,
        maxiter=maxiter,
        tol=tol,
    )
    return solution.W[0], solution.b[0], solution.optimality_error[0]


def fit_sparse_head(
    features: np.ndarray,
    labels: np.ndarray,
    alpha: float,
    *,
    ridge: float = 1e-3,
    maxiter: int = 3000,
    tol: float = 1e-6,
) -> LinearHead:
    """Fits a sparse linear head with the project's inner solver.

    Standardises the features with their own mean and standard deviation,
    then solves (inner.solve_heads, T = 1) for binary labels

        min_{w, b} mean_i logistic(w . z_i + b, y_i)
                   + alpha * lambda_max * ||w||_1 + (ridge / 2) ||w||^2,

    and for C > 2 classes the softmax loss with the group lasso over the
    rows of W [k, C] (a feature is used for all classes or none).

    Args:
      features: [n, k] frozen features.
      labels: int [n] in {0, ..., C-1}, C >= 2; every class must occur.
      alpha: penalty as a fraction of lambda_max, in [0, 1); alpha = 0 is
        ridge-only logistic regression.
      ridge: the ridge weight.
      maxiter, tol: solver iteration cap and tolerance.

    Returns:
      The head (its `mean` and `std` standardise new features the same way).
    """
    features = np.asarray(features, dtype=np.float32)
    labels = np.asarray(labels)
    if features.ndim != 2 or labels.shape != features.shape[:1]:
        raise ValueError(
            f"features must be [n, k] and labels [n]; got shapes {features.shape} "
            f"and {labels.shape}."
        )
    num_classes = int(labels.max()) + 1 if labels.size else 0
    if num_classes < 2 or set(np.unique(labels)) != set(range(num_classes)):
        raise ValueError(
            f"labels must be classes 0..C-1 (C >= 2) with every class present; "
            f"got values {np.unique(labels)}."
        )
    if not 0.0 <= alpha < 1.0:
        raise ValueError(
            f"alpha must be in [0, 1) (a fraction of lambda_max); got {alpha}."
        )
    mean = features.mean(axis=0)  # [k]
    std = features.std(axis=0) + _STD_EPS  # [k]
    weights, bias, error = _solve_sparse_head(
        jnp.asarray((features - mean) / std),
        jnp.asarray(labels, jnp.int32),
        jnp.float32(alpha),
        num_classes=num_classes,
        ridge=ridge,
        maxiter=maxiter,
        tol=tol,
    )
    logging.info("sparse head alpha=%g: optimality error %.2e", alpha, float(error))
    if num_classes == 2:  # one logit: weights [k], scalar bias
        return LinearHead(np.asarray(weights[:, 0]), float(bias[0]), mean, std)
    return LinearHead(np.asarray(weights), np.asarray(bias), mean, std)


def _select(fits: dict[float, LinearHead], scores: dict[float, dict]) -> float:
    """The alpha with the best worst-group accuracy (then average; then larger)."""
    return max(fits, key=lambda a: (scores[a]["worst_group"], scores[a]["average"], a))


def select_sparse_head(
    train_features: np.ndarray,
    train_labels: np.ndarray,
    validation_features: np.ndarray,
    validation_labels: np.ndarray,
    validation_groups: np.ndarray,
    alphas: Sequence[float],
    **solver_options,
) -> HeadSelection:
    """Fits a sparse head per alpha on train; keeps the best on validation.

    The criterion is validation worst-group accuracy (ties: higher average
    accuracy, then the larger, sparser alpha), as is usual for
    spurious-correlation benchmarks whose validation split has group labels.

    Args:
      train_features: [n, k]; train_labels: int [n].
      validation_features: [m, k]; validation_labels, validation_groups: int [m].
      alphas: the penalty grid (fractions of lambda_max).
      **solver_options: ridge, maxiter, tol of `fit_sparse_head`.

    Returns:
      The chosen head, its alpha and the validation scores of the grid.
    """
    if not alphas:
        raise ValueError("alphas must hold at least one penalty.")
    fits = {
        float(a): fit_sparse_head(train_features, train_labels, a, **solver_options)
        for a in alphas
    }
    scores = {
        a: group_scores(head, validation_features, validation_labels, validation_groups)
        for a, head in fits.items()
    }
    best = _select(fits, scores)
    return HeadSelection(fits[best], best, scores)


def balanced_indices(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of a group-balanced subset: every group cut to the smallest's size.

    Args:
      groups: int [n] group ids.
      rng: picks which examples of the larger groups are kept.

    Returns:
      int [num_groups * smallest group size], sorted.
    """
    groups = np.asarray(groups)
    ids, counts = np.unique(groups, return_counts=True)
    keep = [
        rng.choice(np.flatnonzero(groups == g), size=counts.min(), replace=False)
        for g in ids
    ]
    return np.sort(np.concatenate(keep))


def last_layer_retraining(
    features: np.ndarray,
    labels: np.ndarray,
    groups: np.ndarray,
    alphas: Sequence[float],
    seed: int,
    **solver_options,
) -> HeadSelection:
    """Refits a linear head on frozen (ERM) features of a held-out split.

    The idea of deep feature reweighting (Kirichenko, Izmailov & Wilson,
    "Last Layer Re-Training is Sufficient for Robustness to Spurious
    Correlations", ICLR 2023): the features of an ERM model already carry
    the core attribute; retraining only the last layer on group-balanced
    data removes the spurious shortcut. Here, on the validation split: its
    examples are split in two halves (within every group); for each alpha an
    L1 logistic head (`fit_sparse_head`) is fit on a group-balanced subset
    of the first half and scored by worst-group accuracy on the second; the
    chosen alpha is refit on a group-balanced subset of the whole split.

    Args:
      features: [m, k] frozen features of the validation split.
      labels: int [m]; groups: int [m].
      alphas: the penalty grid (fractions of lambda_max).
      seed: seeds the halving and the balanced subsets.
      **solver_options: ridge, maxiter, tol of `fit_sparse_head`.

    Returns:
      The refit head, its alpha and the grid's scores on the second half.
    """
    if not alphas:
        raise ValueError("alphas must hold at least one penalty.")
    features, labels, groups = map(np.asarray, (features, labels, groups))
    rng = np.random.default_rng([seed, 7])
    first_half = np.zeros(len(groups), dtype=bool)
    for g in np.unique(groups):
        members = rng.permutation(np.flatnonzero(groups == g))
        first_half[members[: len(members) // 2]] = True
    fit_part = np.flatnonzero(first_half)
    fit_part = fit_part[balanced_indices(groups[fit_part], rng)]
    score_part = np.flatnonzero(~first_half)
    fits = {
        float(a): fit_sparse_head(
            features[fit_part], labels[fit_part], a, **solver_options
        )
        for a in alphas
    }
    scores = {
        a: group_scores(
            head, features[score_part], labels[score_part], groups[score_part]
        )
        for a, head in fits.items()
    }
    best = _select(fits, scores)
    everything = balanced_indices(groups, rng)
    head = fit_sparse_head(
        features[everything], labels[everything], best, **solver_options
    )
    return HeadSelection(head, best, scores)


@dataclasses.dataclass(frozen=True)
class ErmModel:
    """An encoder trained end to end with a linear head on the target.

    Attributes:
      params: the encoder's parameters.
      apply_fn: apply_fn(params, x [n, *obs]) -> features [n, k].
      head: the linear head on the raw features (mean 0, std 1).
    """

    params: Any
    apply_fn: ApplyFn
    head: LinearHead


def _erm_loss(params, apply_fn, images, labels):
    """Mean logistic (binary head) or softmax (C classes) loss of the encoder
    + head on a batch: images [b, *obs], labels [b] (float 0/1 for a binary
    head, int class indices for C classes)."""
    features = apply_fn(params["encoder"], images)  # [b, k]
    logits = features @ params["weights"] + params["bias"]  # [b] or [b, C]
    if logits.ndim == 1:
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, labels))
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))


def train_erm(
    encoder: nn.Module,
    images: Sequence[np.ndarray] | np.ndarray,
    labels: np.ndarray,
    *,
    num_steps: int,
    batch_size: int,
    learning_rate: float,
    seed: int,
    log_every: int = 250,
    initial_params: Any = None,
    num_classes: int = 2,
) -> ErmModel:
    """ERM: trains `encoder` from scratch plus a linear head on the labels.

    Adam on the mean logistic loss (softmax cross-entropy for more than two
    classes), minibatches drawn without replacement within each pass over
    the data (reshuffled every pass).

    Args:
      encoder: a flax module, x [b, *obs] -> [b, k] (e.g. models.get_encoder).
      images: [n, *obs] training inputs.
      labels: int [n] in [0, num_classes).
      num_steps: Adam steps.
      batch_size: examples per step (<= n).
      learning_rate: Adam's step size.
      seed: seeds the initialisation and the batch order.
      log_every: log the mean training loss every this many steps.
      initial_params: encoder parameters to start from (e.g. pretrained
        weights); None initialises from scratch with `seed`.
      num_classes: 2 gives a binary head (weights [k]), more a softmax head
        (weights [k, C]).

    Returns:
      The trained ErmModel.
    """
    if not 1 <= batch_size <= len(images):
        raise ValueError(
            f"batch_size must be in [1, {len(images)}] (the training split size); "
            f"got {batch_size}."
        )
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2; got {num_classes}.")
    encoder_params = initial_params
    if encoder_params is None:
        encoder_params = encoder.init(jax.random.key(seed), images[:batch_size])
    num_features = encoder.apply(encoder_params, images[:1]).shape[-1]
    head_shape = () if num_classes == 2 else (num_classes,)
    params = {
        "encoder": encoder_params,
        "weights": jnp.zeros((num_features, *head_shape)),
        "bias": jnp.zeros(head_shape),
    }
    optimizer = optax.adam(learning_rate)

    @jax.jit
    def step(params, opt_state, images, labels):
        loss, grads = jax.value_and_grad(_erm_loss)(
            params, encoder.apply, images, labels
        )
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    opt_state = optimizer.init(params)
    label_dtype = np.float32 if num_classes == 2 else np.int32
    rng = np.random.default_rng([seed, 3])
    order = np.empty(0, dtype=np.int64)
    running = []
    for index in range(1, num_steps + 1):
        if len(order) < batch_size:
            order = rng.permutation(len(images))
        batch, order = order[:batch_size], order[batch_size:]
        params, opt_state, loss = step(
            params, opt_state, images[batch], labels[batch].astype(label_dtype)
        )
        running.append(loss)
        if index % log_every == 0 or index == num_steps:
            logging.info(
                "ERM step %d/%d: loss %.4f", index, num_steps, np.mean(running)
            )
            running = []
    head = _raw_feature_head(params["weights"], params["bias"])
    return ErmModel(params["encoder"], encoder.apply, head)


def _raw_feature_head(weights, bias) -> LinearHead:
    """A head on unstandardised features: weights [k] or [k, C], bias [] or [C]."""
    weights, bias = np.asarray(weights), np.asarray(bias)
    num_features = len(weights)
    return LinearHead(
        weights,
        float(bias) if bias.ndim == 0 else bias,
        mean=np.zeros(num_features, np.float32),
        std=np.ones(num_features, np.float32),
    )


def save_erm(model: ErmModel, path: str) -> None:
    """Writes an ERM model's encoder parameters and head (msgpack)."""
    saved = {
        "encoder": serialization.to_state_dict(model.params),
        "weights": model.head.weights,
        "bias": np.asarray(model.head.bias),
    }
    atomic_files.write_bytes(path, serialization.msgpack_serialize(saved))


def load_erm(encoder: nn.Module, example_x: np.ndarray, path: str) -> ErmModel:
    """Reads an ERM model written by `save_erm`.

    Args:
      encoder: the module the model was trained with.
      example_x: [1, *obs], an input to build the parameter structure on.
      path: the file.
    """
    template = encoder.init(jax.random.key(0), example_x)
    with open(path, "rb") as f:
        saved = serialization.msgpack_restore(f.read())
    head = _raw_feature_head(saved["weights"], saved["bias"])
    return ErmModel(
        serialization.from_state_dict(template, saved["encoder"]), encoder.apply, head
    )
