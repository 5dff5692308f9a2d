"""Episodes for meta-learning: T tasks, each with its own support and query set.

Every task draws its own examples: factors are sampled from the dataset (with
the given correlation between factors), rendered to observations and labelled
by the task. For classification, a task's support set is redrawn until it
holds every class (rejection, not stratification: the support examples keep
the sampling distribution, conditioned on all classes being present), because
the inner problem's unpenalised bias has no finite optimum when a class is
missing. The query sets are never redrawn.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sparse_shared_jax.data.ground_truth import GroundTruthDataset
from sparse_shared_jax.data.tasks import TaskDistribution, Tasks, task_labels

_MAX_SUPPORT_REDRAWS = 1000


class Episode(NamedTuple):
    """One episode of T tasks (NumPy arrays; a JAX pytree).

    Attributes:
      support_x: float32 [T, n_s, *observation_shape].
      support_y: [T, n_s], int32 class ids or float32 regression targets.
      query_x: float32 [T, n_q, *observation_shape].
      query_y: [T, n_q], like `support_y`.
      support_factors: int64 [T, n_s, K], the factor indices of `support_x`.
      query_factors: int64 [T, n_q, K], the factor indices of `query_x`.
      tasks: the T tasks, with their true supports.
    """

    support_x: np.ndarray
    support_y: np.ndarray
    query_x: np.ndarray
    query_y: np.ndarray
    support_factors: np.ndarray
    query_factors: np.ndarray
    tasks: Tasks


class EpisodeDraw(NamedTuple):
    """An episode's tasks, factors and labels before rendering (see Episode)."""

    support_factors: np.ndarray  # int64 [T, n_s, K]
    support_y: np.ndarray  # [T, n_s]
    query_factors: np.ndarray  # int64 [T, n_q, K]
    query_y: np.ndarray  # [T, n_q]
    tasks: Tasks


class EpisodeSampler:
    """Draws episodes deterministically from (seed, step).

    Build it once for a run; ``sampler(step)`` returns the same episode for the
    same step, so a run restarted from a checkpoint sees the same data order.
    """

    def __init__(
        self,
        dataset: GroundTruthDataset,
        *,
        num_tasks: int,
        support_size: int,
        query_size: int,
        label_type: str,
        correlation: float = 0.0,
        task_support: str = "bernoulli",
        support_prob: float = 0.5,
        num_relevant: int = 2,
        num_classes: int = 4,
        snr: float = 10.0,
        seed: int = 0,
    ):
        """Validates the settings.

        Args:
          dataset: the ground-truth dataset.
          num_tasks: T >= 1, tasks per episode.
          support_size: n_s, examples in each task's support set; >= 2 and, for
            classification, >= the number of classes.
          query_size: n_q >= 1, examples in each task's query set.
          label_type: ``'binary'``, ``'multiclass'`` or ``'regression'``.
          correlation: rho in [0, 1) between every pair of factors (Gaussian
            copula, uniform marginals); 0 for independent factors.
          task_support: how a task picks its factors, ``'bernoulli'`` or
            ``'fixed'`` (see `tasks.TaskDistribution`).
          support_prob: factor inclusion probability for ``'bernoulli'``.
          num_relevant: factors per task for ``'fixed'``.
          num_classes: C for ``'multiclass'``.
          snr: signal-to-noise variance ratio for ``'regression'``.
          seed: the run's data seed, a non-negative integer.

        Raises:
          ValueError: naming the argument if one is out of range.
        """
        self._tasks = TaskDistribution(
            dataset,
            label_type=label_type,
            support=task_support,
            support_prob=support_prob,
            num_relevant=num_relevant,
            num_classes=num_classes,
            snr=snr,
        )
        if num_tasks < 1:
            raise ValueError(f"num_tasks must be >= 1, got {num_tasks}.")
        min_support = 2 if label_type != "multiclass" else max(2, num_classes)
        if support_size < min_support:
            raise ValueError(
                f"support_size must be >= {min_support} for label_type="
                f"{label_type!r}, got {support_size}."
            )
        if query_size < 1:
            raise ValueError(f"query_size must be >= 1, got {query_size}.")
        if not 0.0 <= correlation < 1.0:
            raise ValueError(f"correlation must be in [0, 1), got {correlation}.")
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}.")
        self.dataset = dataset
        self.num_tasks = num_tasks
        self.support_size = support_size
        self.query_size = query_size
        self.correlation = correlation
        self.seed = seed

    def __call__(self, step: int) -> Episode:
        """The episode of training step `step` (>= 0): a function of (seed, step)."""
        return self.sample(self.rng(step))

    def _draw_factors(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """int64 [T, size, K]: independent examples for every task."""
        factors = self.dataset.sample_factors(
            self.num_tasks * size, rng, self.correlation
        )
        return factors.reshape(self.num_tasks, size, -1)

    def sample(self, rng: np.random.Generator) -> Episode:
        """Draws one episode from `rng` and renders its observations.

        Args:
          rng: a NumPy generator.

        Returns:
          The episode.

        Raises:
          RuntimeError: if some task's support set still misses a class after
            many redraws (extreme correlation with many classes).
        """
        draw = self.draw(rng)
        return Episode(
            support_x=self.render(draw.support_factors),
            support_y=draw.support_y,
            query_x=self.render(draw.query_factors),
            query_y=draw.query_y,
            support_factors=draw.support_factors,
            query_factors=draw.query_factors,
            tasks=draw.tasks,
        )

    def draw(self, rng: np.random.Generator) -> EpisodeDraw:
        """Draws the tasks, factors and labels of an episode, without rendering.

        Cheap next to rendering: a process of a multi-host job draws the whole
        episode (so every process agrees on it) and renders only its shard.

        Raises:
          RuntimeError: as `sample`.
        """
        tasks = self._tasks.sample(self.num_tasks, rng)
        factor_values = self._factor_values
        support_factors = self._draw_factors(self.support_size, rng)  # [T, n_s, K]
        support_y = task_labels(tasks, factor_values(support_factors), rng)
        num_classes = tasks.num_classes
        if num_classes is not None:
            for _ in range(_MAX_SUPPORT_REDRAWS):
                classes = np.arange(num_classes)
                has_all = (support_y[..., None] == classes).any(axis=1).all(axis=1)
                if has_all.all():
                    break
                redrawn = self._draw_factors(self.support_size, rng)
                support_factors[~has_all] = redrawn[~has_all]
                support_y = task_labels(tasks, factor_values(support_factors))
            else:
                raise RuntimeError(
                    f"A support set of {self.support_size} examples missed a "
                    f"class after {_MAX_SUPPORT_REDRAWS} redraws; raise "
                    "support_size or lower correlation or num_classes."
                )
        query_factors = self._draw_factors(self.query_size, rng)  # [T, n_q, K]
        query_y = task_labels(tasks, factor_values(query_factors), rng)
        return EpisodeDraw(support_factors, support_y, query_factors, query_y, tasks)

    def rng(self, step: int) -> np.random.Generator:
        """The generator of training step `step` (>= 0)."""
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}.")
        return np.random.default_rng([self.seed, int(step)])

    def _factor_values(self, factors: np.ndarray) -> np.ndarray:
        """int [T, n, K] -> float [T, n, K] (datasets take [num, K])."""
        flat = self.dataset.factor_values(factors.reshape(-1, factors.shape[-1]))
        return flat.reshape(factors.shape)

    def render(self, factors: np.ndarray) -> np.ndarray:
        """int [T, n, K] -> float32 [T, n, *observation_shape]."""
        flat = self.dataset.observations(factors.reshape(-1, factors.shape[-1]))
        return flat.reshape(factors.shape[:2] + tuple(self.dataset.observation_shape))


def sample_episode(
    dataset: GroundTruthDataset,
    rng: np.random.Generator | int,
    *,
    num_tasks: int,
    support_size: int,
    query_size: int,
    label_type: str,
    correlation: float = 0.0,
    task_support: str = "bernoulli",
    support_prob: float = 0.5,
    num_relevant: int = 2,
    num_classes: int = 4,
    snr: float = 10.0,
) -> Episode:
    """Draws one episode; see `EpisodeSampler` for the arguments.

    A one-off convenience: a training loop should build an `EpisodeSampler`
    once (it prepares the task distribution's reference sample) and call it
    with the step.

    Args:
      dataset: the ground-truth dataset.
      rng: a NumPy generator or an integer seed; the episode is a function of it.
      num_tasks: T.
      support_size: n_s.
      query_size: n_q.
      label_type: ``'binary'``, ``'multiclass'`` or ``'regression'``.
      correlation: rho in [0, 1) between every pair of factors.
      task_support: ``'bernoulli'`` or ``'fixed'``.
      support_prob: factor inclusion probability for ``'bernoulli'``.
      num_relevant: factors per task for ``'fixed'``.
      num_classes: C for ``'multiclass'``.
      snr: signal-to-noise variance ratio for ``'regression'``.

    Returns:
      The episode.
    """
    sampler = EpisodeSampler(
        dataset,
        num_tasks=num_tasks,
        support_size=support_size,
        query_size=query_size,
        label_type=label_type,
        correlation=correlation,
        task_support=task_support,
        support_prob=support_prob,
        num_relevant=num_relevant,
        num_classes=num_classes,
        snr=snr,
    )
    return sampler.sample(np.random.default_rng(rng))
