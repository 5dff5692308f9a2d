"""Transfer evaluation of a frozen encoder, and its baselines.

docs/method.md, Evaluation: freeze the encoder, fit a sparse linear head
for the target task with the inner solver on the target training split
(penalty chosen on the validation split), and report average and
worst-group accuracy on every split (groups = label x spurious attribute).
The baselines run in the same harness (`evaluate_transfer`):

* ERM: the same encoder architecture trained with a linear head on the
  target label of the training split (`trainers.erm`, by the same training
  loop as the method), early-stopped on validation worst-group accuracy;
* group DRO (optional): the same, trained with the group labels to do well
  on the worst group (`trainers.erm`), the reference a method without
  group labels is measured against;
* last-layer retraining: a linear head refit on frozen features with a
  group-balanced validation set (`last_layer_retraining`), on the ERM
  features (the usual baseline) and on the method's.

Every benchmark is read through one protocol (`data.labelled`: inputs by
rows, label/attribute/group columns). Sparse heads and last-layer
retraining take binary or multi-class targets (classes 0..C-1). The pieces
work on plain arrays too:

    selection = select_sparse_head(train_features, train_labels,
                                   validation_features, validation_labels,
                                   validation_groups, alphas)
    scores = group_scores(selection.head, test_features, test_labels,
                          test_groups)
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from sparse_shared_jax import evaluate, inner, losses, metrics
from sparse_shared_jax.data import labelled

ApplyFn = Callable[[Any, jax.Array], jax.Array]
# Added to a feature's standard deviation before dividing by it.
_STD_EPS = 1e-6


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


@functools.partial(jax.jit, static_argnames=("num_classes", "settings"))
def _solve_sparse_head(features, labels, alpha, *, num_classes, settings):
    """inner.solve_heads for one task: [n, k], [n] -> (W [k, C'], b [C'], error).

    C' = 1 (logistic) for two classes, else num_classes (softmax).
    """
    features, labels = features[None], labels[None]  # T = 1
    loss = "logistic" if num_classes == 2 else "softmax"
    classes = None if num_classes == 2 else num_classes
    lam = alpha * losses.lambda_max(features, labels, loss, classes)  # [1]
    solution = inner.solve_heads(
        features, labels, loss=loss, lam=lam, num_classes=classes, settings=settings
    )
    return solution.W[0], solution.b[0], solution.optimality_error[0]


def head_settings(config) -> inner.InnerSettings:
    """The solver settings of a transfer head: config.inner's, with the
    iteration cap and tolerance of config.transfer (a head is solved once, so
    more accurately than the heads of a training step)."""
    return dataclasses.replace(
        inner.InnerSettings.from_config(config.inner),
        maxiter=config.transfer.head_maxiter,
        tol=config.transfer.head_tol,
    )


def fit_sparse_head(
    features: np.ndarray,
    labels: np.ndarray,
    alpha: float,
    *,
    settings: inner.InnerSettings | None = None,
    **options,
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
      settings: the solver's settings (inner.InnerSettings; default
        InnerSettings(); experiments use `head_settings(config)`).
      **options: InnerSettings fields overriding `settings` (e.g. maxiter).

    Returns:
      The head (its `mean` and `std` standardise new features the same way).
    """
    settings = dataclasses.replace(settings or inner.DEFAULTS, **options)
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
        settings=settings,
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
      **solver_options: `settings` and InnerSettings fields of `fit_sparse_head`.

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
      **solver_options: `settings` and InnerSettings fields of `fit_sparse_head`.

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
class FrozenEncoder:
    """An encoder's parameters and apply function, not trained further."""

    params: Any
    apply_fn: ApplyFn


@dataclasses.dataclass(frozen=True)
class ErmModel:
    """An encoder trained end to end with a linear head on the target (a
    baseline: ERM or group DRO, trainers/erm.py).

    Attributes:
      encoder: the trained encoder.
      head: the linear head on the raw features (mean 0, std 1).
      step: the training step of this model (the early-stopped one, or the
        last).
    """

    encoder: FrozenEncoder
    head: LinearHead
    step: int


def raw_feature_head(weights, bias) -> LinearHead:
    """A head on unstandardised features: weights [k] or [k, C], bias [] or [C]."""
    weights, bias = np.asarray(weights), np.asarray(bias)
    num_features = len(weights)
    return LinearHead(
        weights,
        float(bias) if bias.ndim == 0 else bias,
        mean=np.zeros(num_features, np.float32),
        std=np.ones(num_features, np.float32),
    )


# ----------------------------------------------------------------------------
# The harness: every head on every split of a labelled benchmark.

# Rows encoded per batch by the harness.
ENCODE_BATCH_SIZE = 256


def subset_rows(num_rows: int, max_examples: int, seed: int) -> np.ndarray:
    """All rows, or a fixed random subset of `max_examples` (sorted)."""
    if not max_examples or max_examples >= num_rows:
        return np.arange(num_rows)
    rng = np.random.default_rng([seed, 11])
    return np.sort(rng.choice(num_rows, size=max_examples, replace=False))


def _encode_splits(encoder: FrozenEncoder, splits: dict, rows_of: dict) -> dict:
    """split name -> features [n, k] of the split's `rows_of[name]`."""
    features = {}
    for name, split in splits.items():
        rows = rows_of[name]
        logging.info("Encoding %d examples of the %s split", len(rows), name)
        features[name] = evaluate.encode_rows(
            encoder.params,
            encoder.apply_fn,
            len(rows),
            lambda positions, rows=rows, split=split: split.inputs(rows[positions]),
            batch_size=ENCODE_BATCH_SIZE,
        )
    return features


def feature_correlations(
    features: np.ndarray, labels: dict[str, np.ndarray]
) -> dict[str, list[float]]:
    """|Pearson correlation| of every feature [n, k] with the label and attribute.

    Shows what a representation holds: a feature with a large correlation
    with the label carries the core factor, one with the attribute the
    shortcut.
    """

    def correlations(target):
        centred = features - features.mean(axis=0)
        target = target - target.mean()
        norms = np.linalg.norm(centred, axis=0) * np.linalg.norm(target) + 1e-12
        return np.abs(centred.T @ target / norms).tolist()  # [k]

    return {
        "label_correlation": correlations(labels["label"].astype(float)),
        "attribute_correlation": correlations(labels["attribute"].astype(float)),
    }


def evaluate_transfer(
    config,
    benchmark: labelled.LabelledBenchmark,
    method: FrozenEncoder,
    erm: ErmModel | None = None,
    group_dro: ErmModel | None = None,
) -> dict:
    """The frozen encoder's sparse target head, and the baselines.

    Encodes every split (or config.transfer.max_examples of each) and scores
    on every split:

    * 'sparse_head': the method's transfer, a sparse head fit on the training
      split with the penalty (config.transfer.alphas) chosen by validation
      worst-group accuracy;
    * 'method_last_layer': last-layer retraining (group-balanced validation
      split) on the same frozen features;
    * with `erm`: 'erm', the ERM model's own head, and 'erm_last_layer',
      last-layer retraining on the ERM features (the usual baseline);
    * with `group_dro`: 'group_dro', the group DRO model's own head (the
      reference that trains with the group labels).

    Heads are solved with `head_settings(config)`.

    Returns:
      {'num_examples': {split: n}, head name: {'alpha', 'num_active',
      'weights', split: {'average', 'worst_group', 'per_group', and the
      benchmark's extra scores}}, 'features': {encoder: feature_correlations
      on the test split (or the last split)}}; the baselines' own heads have
      alpha None and 'step', the training step of their model.
    """
    splits = benchmark.splits
    rows_of = {
        name: subset_rows(len(split), config.transfer.max_examples, config.seed)
        for name, split in splits.items()
    }
    labels = {
        name: {field: column[rows_of[name]] for field, column in split.labels.items()}
        for name, split in splits.items()
    }
    alphas = tuple(float(a) for a in config.transfer.alphas)
    settings = head_settings(config)
    selection = labels[labelled.SELECTION_SPLIT]

    def last_layer(features):
        return last_layer_retraining(
            features[labelled.SELECTION_SPLIT],
            selection["label"],
            selection["group"],
            alphas,
            config.seed,
            settings=settings,
        )

    features = {"method": _encode_splits(method, splits, rows_of)}
    sparse = select_sparse_head(
        features["method"][labelled.FIT_SPLIT],
        labels[labelled.FIT_SPLIT]["label"],
        features["method"][labelled.SELECTION_SPLIT],
        selection["label"],
        selection["group"],
        alphas,
        settings=settings,
    )
    retrained = last_layer(features["method"])
    heads = {
        "sparse_head": (sparse.alpha, sparse.head, "method"),
        "method_last_layer": (retrained.alpha, retrained.head, "method"),
    }
    steps = {}
    for name, baseline in (("erm", erm), ("group_dro", group_dro)):
        if baseline is None:
            continue
        features[name] = _encode_splits(baseline.encoder, splits, rows_of)
        heads[name] = (None, baseline.head, name)
        steps[name] = baseline.step
        if name == "erm":
            retrained = last_layer(features["erm"])
            heads["erm_last_layer"] = (retrained.alpha, retrained.head, "erm")
    record = {"num_examples": {name: len(rows) for name, rows in rows_of.items()}}
    for key, (alpha, head, encoder) in heads.items():
        record[key] = {
            "alpha": alpha,
            "num_active": head.num_active,
            "weights": np.asarray(head.weights).tolist(),
        }
        if key in steps:
            record[key]["step"] = steps[key]
        for name in splits:
            record[key][name] = _split_scores(
                head, features[encoder][name], labels[name], benchmark.extra_scores
            )
    report_split = "test" if "test" in splits else list(splits)[-1]
    record["features"] = {
        encoder: feature_correlations(
            split_features[report_split], labels[report_split]
        )
        for encoder, split_features in features.items()
    }
    return record


def _split_scores(head: LinearHead, features, labels, extra_scores) -> dict:
    """Average / worst-group / per-group accuracy, and the extra scores."""
    scores = group_scores(head, features, labels["label"], labels["group"])
    record = {
        "average": scores["average"],
        "worst_group": scores["worst_group"],
        "per_group": {str(g): a for g, a in scores["per_group"].items()},
    }
    if extra_scores:
        predictions = head.predict(features)
        for name, score in extra_scores:
            record[name] = score(predictions, labels)
    return record


def flatten_record(record: dict) -> dict[str, float]:
    """'transfer/<head>/<split>/<score>' -> value (and the heads' alpha and
    num_active, and 'transfer/features/<encoder>/max_label_correlation' and
    'max_attribute_correlation': the largest |correlation| of any of the
    encoder's features), for metrics.json and the sweep tables."""
    flat = {}
    for encoder, correlations in record.get("features", {}).items():
        for name, values in correlations.items():  # e.g. label_correlation
            flat[f"transfer/features/{encoder}/max_{name}"] = max(values)
    for head, head_record in record.items():
        if head in ("num_examples", "features"):
            continue
        if head_record["alpha"] is not None:
            flat[f"transfer/{head}/alpha"] = head_record["alpha"]
        flat[f"transfer/{head}/num_active"] = head_record["num_active"]
        if "step" in head_record:
            flat[f"transfer/{head}/step"] = head_record["step"]
        for split, scores in head_record.items():
            if isinstance(scores, dict):
                for name, value in scores.items():
                    if name != "per_group":
                        flat[f"transfer/{head}/{split}/{name}"] = value
    return flat
