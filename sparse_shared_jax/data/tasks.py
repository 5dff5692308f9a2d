"""Distributions of supervised tasks over the factors of a ground-truth dataset.

A task depends on a small random subset of the factors, its *support*. Its
score is a linear function of the standardised factor values,

    s = sum_i c_i (v_i - mean_i) / std_i,    c_i = 0 off the support,

where mean_i and std_i are those of factor i under the uniform distribution on
its grid, so every factor in a support matters on the same scale. The score
becomes a label in one of three ways:

* ``'binary'``: 1 if s is above its median, else 0;
* ``'multiclass'``: the index of the C quantile bins of s that holds it;
* ``'regression'``: s plus Gaussian noise at a given signal-to-noise ratio.

Medians, quantiles and signal variances are those of the dataset's *uniform*
factor distribution (a fixed reference sample, or analytic), never of an
episode, so a task's labelling rule does not depend on the examples drawn.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from sparse_shared_jax.data.ground_truth import GroundTruthDataset

LABEL_TYPES = ("binary", "multiclass", "regression")
SUPPORT_KINDS = ("bernoulli", "fixed")
_REFERENCE_SEED = 0  # the reference sample is the same for every task batch
_MAX_REDRAWS = 100


@dataclasses.dataclass(frozen=True, eq=False)
class Tasks:
    """A batch of T tasks over K factors (NumPy arrays, a JAX pytree).

    Attributes:
      label_type: one of ``LABEL_TYPES`` (static pytree metadata).
      support: bool [T, K], the factors each task depends on (never empty).
      coefficients: float [T, K], weights on the standardised factor values,
        zero off the support.
      edges: float [T, C - 1], increasing score thresholds; the label is the
        number of edges strictly below the score. [T, 1] (the median) for
        'binary', [T, 0] for 'regression'.
      noise_std: float [T], standard deviation of the regression noise (0 for
        classification).
      factor_mean: float [K], mean of each factor's values on its grid.
      factor_std: float [K], standard deviation of each factor's values on its
        grid (1 for constant factors, which no support contains).
    """

    label_type: str
    support: np.ndarray  # [T, K]
    coefficients: np.ndarray  # [T, K]
    edges: np.ndarray  # [T, C - 1]
    noise_std: np.ndarray  # [T]
    factor_mean: np.ndarray  # [K]
    factor_std: np.ndarray  # [K]

    @property
    def num_tasks(self) -> int:
        return self.support.shape[0]

    @property
    def num_classes(self) -> int | None:
        """C for classification tasks, None for regression."""
        if self.label_type == "regression":
            return None
        return self.edges.shape[1] + 1


jax.tree_util.register_dataclass(
    Tasks,
    data_fields=[
        "support",
        "coefficients",
        "edges",
        "noise_std",
        "factor_mean",
        "factor_std",
    ],
    meta_fields=["label_type"],
)


def _grid_statistics(dataset: GroundTruthDataset) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of each factor's values under the uniform grid distribution.

    Assumes `dataset.factor_values` acts column by column.
    """
    sizes = np.asarray(dataset.factor_sizes)
    # Row j holds index min(j, size_i - 1) for factor i: each grid once, padded.
    grid = np.minimum(np.arange(sizes.max())[:, None], sizes - 1)  # [max, K]
    values = dataset.factor_values(grid).astype(np.float64)  # [max, K]
    in_grid = np.arange(sizes.max())[:, None] < sizes  # [max, K]
    mean = np.where(in_grid, values, 0.0).sum(axis=0) / sizes
    var = np.where(in_grid, (values - mean) ** 2, 0.0).sum(axis=0) / sizes
    std = np.sqrt(var)
    return mean, np.where(std > 0, std, 1.0)


class TaskDistribution:
    """Samples task batches for one dataset; set up once, sampled every step.

    Construction computes the factor standardisation and a fixed reference
    sample of uniform factors (for medians and quantile bins); `sample` then
    only draws supports and coefficients.
    """

    def __init__(
        self,
        dataset: GroundTruthDataset,
        *,
        label_type: str,
        support: str = "bernoulli",
        support_prob: float = 0.5,
        num_relevant: int = 2,
        num_classes: int = 4,
        snr: float = 10.0,
        num_reference: int = 16384,
    ):
        """Validates the options and prepares the reference sample.

        Args:
          dataset: the ground-truth dataset whose factors the tasks use.
          label_type: one of ``LABEL_TYPES``.
          support: ``'bernoulli'`` (each non-constant factor joins a task's
            support with probability `support_prob`, redrawn if empty) or
            ``'fixed'`` (exactly `num_relevant` factors, uniformly chosen).
          support_prob: inclusion probability for ``support='bernoulli'``.
          num_relevant: support size for ``support='fixed'``.
          num_classes: C for ``label_type='multiclass'`` (binary is always 2).
          snr: signal-to-noise variance ratio for ``'regression'`` (may be
            ``inf`` for noise-free targets).
          num_reference: size of the reference sample of uniform factors that
            fixes medians and quantile bins.

        Raises:
          ValueError: naming the argument if one is out of range.
        """
        if label_type not in LABEL_TYPES:
            raise ValueError(
                f"label_type must be one of {LABEL_TYPES}, got {label_type!r}."
            )
        if support not in SUPPORT_KINDS:
            raise ValueError(
                f"support must be one of {SUPPORT_KINDS}, got {support!r}."
            )
        self._candidates = np.asarray(dataset.factor_sizes) > 1  # [K]
        num_candidates = int(self._candidates.sum())
        if num_candidates == 0:
            raise ValueError("The dataset has no factor with more than one value.")
        if support == "bernoulli" and not 0.0 < support_prob <= 1.0:
            raise ValueError(f"support_prob must be in (0, 1], got {support_prob}.")
        if support == "fixed" and not 1 <= num_relevant <= num_candidates:
            raise ValueError(
                f"num_relevant must be in [1, {num_candidates}] (the number of "
                f"non-constant factors), got {num_relevant}."
            )
        if label_type == "multiclass" and num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}.")
        if label_type == "regression" and not snr > 0:
            raise ValueError(f"snr must be > 0 (inf allowed), got {snr}.")
        if num_reference < 100:
            raise ValueError(f"num_reference must be >= 100, got {num_reference}.")

        self.label_type = label_type
        self._support = support
        self._support_prob = support_prob
        self._num_relevant = num_relevant
        self._num_classes = {"binary": 2, "multiclass": num_classes}.get(label_type)
        self._snr = snr
        self._mean, self._std = _grid_statistics(dataset)
        reference = dataset.sample_factors(
            num_reference, np.random.default_rng(_REFERENCE_SEED)
        )
        values = dataset.factor_values(reference)  # [ref, K]
        self._reference = (values - self._mean) / self._std  # standardised

    def _draw_supports(self, num_tasks: int, rng: np.random.Generator) -> np.ndarray:
        """bool [num_tasks, K]: independent non-empty subsets of the candidates."""
        num_factors = self._candidates.size
        if self._support == "fixed":
            # The num_relevant smallest of i.i.d. uniform keys: a uniform subset.
            keys = np.where(
                self._candidates, rng.random((num_tasks, num_factors)), np.inf
            )
            ranks = np.argsort(np.argsort(keys, axis=1), axis=1)
            return ranks < self._num_relevant
        supports = np.zeros((num_tasks, num_factors), dtype=bool)
        empty = np.ones(num_tasks, dtype=bool)
        while empty.any():
            draw = rng.random((int(empty.sum()), num_factors)) < self._support_prob
            supports[empty] = draw & self._candidates
            empty = ~supports.any(axis=1)
        return supports

    def _draw_coefficients(
        self, support: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """float [T, K]: random sign times a magnitude in [0.5, 1.5] on support."""
        sign = rng.choice([-1.0, 1.0], size=support.shape)
        magnitude = rng.uniform(0.5, 1.5, size=support.shape)
        return np.where(support, sign * magnitude, 0.0)

    def _edges(self, coefficients: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The class cuts of each task's reference scores, and whether a class
        is rare.

        Each cut is the midpoint between two consecutive distinct reference
        scores whose empirical CDF is closest to the level j/C, so a cut
        never sits on an atom of a discrete score (where ties would unbalance
        the classes). A class is rare when its reference frequency (the
        labels `_classify` gives the reference scores) is below 1 / (2C).

        Returns:
          edges: float [T, C - 1] (C - 1 = 0 for regression).
          rare: bool [T].
        """
        num_tasks = coefficients.shape[0]
        if self._num_classes is None:
            return np.zeros((num_tasks, 0)), np.zeros(num_tasks, bool)
        scores = np.sort(coefficients @ self._reference.T, axis=1)  # [T, ref]
        num_ref = scores.shape[1]
        # Cut j - 1 lies between scores[:, j - 1] and scores[:, j]; CDF j / ref.
        distinct = scores[:, 1:] > scores[:, :-1]  # [T, ref - 1]
        cdf_index = np.arange(1, num_ref)  # [ref - 1]
        rows = np.arange(num_tasks)
        edges = np.empty((num_tasks, self._num_classes - 1))
        for c in range(1, self._num_classes):
            gap = np.abs(cdf_index - c * num_ref / self._num_classes)
            best = np.where(distinct, gap, np.inf).argmin(axis=1)  # [T]
            edges[:, c - 1] = 0.5 * (scores[rows, best] + scores[rows, best + 1])
        # Scores at or below each cut (a score above k cuts has label k), from
        # the sorted scores: [T, C + 1] counts, 0 and ref at the ends.
        at_or_below = np.stack(
            [
                np.searchsorted(row, cuts, side="right")
                for row, cuts in zip(scores, edges, strict=True)
            ]
        )
        counts = np.diff(at_or_below, axis=1, prepend=0, append=num_ref)  # [T, C]
        return edges, (counts / num_ref).min(axis=1) < 0.5 / self._num_classes

    def sample(self, num_tasks: int, rng: np.random.Generator) -> Tasks:
        """Draws `num_tasks` independent tasks.

        For classification, a task is redrawn while one of its classes has
        reference frequency below 1 / (2C) (this happens when the support's
        scores take few distinct values, e.g. one factor with 3 values and
        C = 4), so every class can appear in a support set.

        Args:
          num_tasks: T >= 1.
          rng: a NumPy generator.

        Returns:
          The task batch.

        Raises:
          ValueError: if `num_tasks` < 1, or if no support has enough distinct
            scores for `num_classes` classes.
        """
        if num_tasks < 1:
            raise ValueError(f"num_tasks must be >= 1, got {num_tasks}.")
        support = self._draw_supports(num_tasks, rng)  # [T, K]
        coefficients = self._draw_coefficients(support, rng)  # [T, K]
        edges, rare = self._edges(coefficients)  # [T, C - 1], [T]
        if self._num_classes is not None:
            for _ in range(_MAX_REDRAWS):
                if not rare.any():
                    break
                support[rare] = self._draw_supports(int(rare.sum()), rng)
                coefficients[rare] = self._draw_coefficients(support[rare], rng)
                edges[rare], rare[rare] = self._edges(coefficients[rare])
            else:
                raise ValueError(
                    f"Could not draw tasks whose {self._num_classes} classes all "
                    "have reference frequency >= 1 / (2 num_classes); lower "
                    "num_classes or use larger supports."
                )
        if self.label_type == "regression":
            # Standardised factors are uncorrelated with unit variance under the
            # uniform distribution, so the score variance is sum_i c_i^2.
            noise_std = np.sqrt((coefficients**2).sum(axis=1) / self._snr)
        else:
            noise_std = np.zeros(num_tasks)
        return Tasks(
            label_type=self.label_type,
            support=support,
            coefficients=coefficients,
            edges=edges,
            noise_std=noise_std,
            factor_mean=self._mean,
            factor_std=self._std,
        )


def _classify(scores: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """int32 [T, n]: the number of edges strictly below each score.

    Args:
      scores: float [T, n].
      edges: float [T, C - 1], increasing.
    """
    return (scores[:, :, None] > edges[:, None, :]).sum(axis=-1).astype(np.int32)


def sample_tasks(
    dataset: GroundTruthDataset,
    num_tasks: int,
    rng: np.random.Generator | int,
    *,
    label_type: str,
    support: str = "bernoulli",
    support_prob: float = 0.5,
    num_relevant: int = 2,
    num_classes: int = 4,
    snr: float = 10.0,
) -> Tasks:
    """Draws `num_tasks` independent tasks over the factors of `dataset`.

    A one-off convenience; in a loop build a `TaskDistribution` once and call
    its `sample`, which skips recomputing the reference sample.

    Args:
      dataset: the ground-truth dataset.
      num_tasks: T >= 1.
      rng: a NumPy generator or an integer seed.
      label_type: one of ``LABEL_TYPES``.
      support: ``'bernoulli'`` or ``'fixed'``; see `TaskDistribution`.
      support_prob: inclusion probability for ``support='bernoulli'``.
      num_relevant: support size for ``support='fixed'``.
      num_classes: C for ``'multiclass'``.
      snr: signal-to-noise variance ratio for ``'regression'``.

    Returns:
      The task batch.
    """
    distribution = TaskDistribution(
        dataset,
        label_type=label_type,
        support=support,
        support_prob=support_prob,
        num_relevant=num_relevant,
        num_classes=num_classes,
        snr=snr,
    )
    return distribution.sample(num_tasks, np.random.default_rng(rng))


def task_scores(tasks: Tasks, factor_values: np.ndarray) -> np.ndarray:
    """The noise-free linear scores of every task.

    Args:
      tasks: a batch of T tasks.
      factor_values: float [T, n, K] (one set of examples per task) or [n, K]
        (the same examples for every task), from ``dataset.factor_values``.

    Returns:
      float64 [T, n].
    """
    factor_values = np.asarray(factor_values, dtype=np.float64)
    if (
        factor_values.ndim not in (2, 3)
        or factor_values.shape[-1] != (tasks.support.shape[1])
    ):
        raise ValueError(
            f"factor_values must have shape [T, n, K] or [n, K] with K = "
            f"{tasks.support.shape[1]}, got {factor_values.shape}."
        )
    standardised = (factor_values - tasks.factor_mean) / tasks.factor_std
    if standardised.ndim == 2:
        return tasks.coefficients @ standardised.T  # [T, n]
    return np.einsum("tnk,tk->tn", standardised, tasks.coefficients)


def task_labels(
    tasks: Tasks,
    factor_values: np.ndarray,
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Labels examples for every task.

    Args:
      tasks: a batch of T tasks.
      factor_values: float [T, n, K] or [n, K]; see `task_scores`.
      rng: draws the regression noise; None gives noise-free regression
        targets (the regression function). Unused for classification.

    Returns:
      int32 [T, n] class ids in ``range(tasks.num_classes)`` for
      classification, float32 [T, n] targets for regression.
    """
    scores = task_scores(tasks, factor_values)  # [T, n]
    if tasks.label_type != "regression":
        return _classify(scores, tasks.edges)
    if rng is not None:
        scores = scores + tasks.noise_std[:, None] * rng.standard_normal(scores.shape)
    return scores.astype(np.float32)
