"""The BetaVAE score (Higgins et al., "beta-VAE: Learning basic visual
concepts with a constrained variational framework", ICLR 2017), with the
scikit-learn classifier of disentanglement_lib.

One point: pick a factor k uniformly; draw `batch_size` pairs of factor
combinations that agree on factor k and are otherwise independent; the
point's features are the mean absolute difference of the pairs' codes [D],
its label is k. A linear classifier (logistic regression, scikit-learn's
defaults) learns k from the features on `num_train` points; the score is its
accuracy on `num_eval` new points. In a disentangled representation the code
of the fixed factor does not change within a pair, so k is easy to read off;
chance is 1/K.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import sklearn.exceptions
import sklearn.linear_model

from sparse_shared_jax.metrics import _intervention


def beta_vae_score(
    represent: _intervention.Represent,
    factor_sizes: Sequence[int],
    *,
    batch_size: int = 64,
    num_train: int = 10_000,
    num_eval: int = 5_000,
    seed: int = 0,
) -> dict[str, float]:
    """The BetaVAE disentanglement score.

    Defaults are disentanglement_lib's (batch 64, 10,000 training and 5,000
    evaluation points).

    Args:
      represent: factors int [n, K] -> codes [n, D] (e.g. render and encode).
      factor_sizes: number of values of each of the K factors.
      batch_size: pairs of factor combinations per point.
      num_train: points to fit the classifier on.
      num_eval: points to score it on.
      seed: seed of the factor draws and of the classifier.

    Returns:
      {'train_accuracy', 'eval_accuracy'}, floats in [0, 1].
    """
    sizes = _intervention.check_factor_sizes(factor_sizes)
    batch_size = _intervention.check_positive(batch_size, "batch_size")
    num_train = _intervention.check_positive(num_train, "num_train")
    num_eval = _intervention.check_positive(num_eval, "num_eval")
    rng = np.random.default_rng(seed)
    train_points, train_labels = _points(represent, sizes, batch_size, num_train, rng)
    classifier = sklearn.linear_model.LogisticRegression(random_state=seed)
    with warnings.catch_warnings():
        # scikit-learn's default iteration cap, kept for comparability with
        # published numbers, may stop before convergence.
        warnings.simplefilter("ignore", sklearn.exceptions.ConvergenceWarning)
        classifier.fit(train_points, train_labels)
    eval_points, eval_labels = _points(represent, sizes, batch_size, num_eval, rng)
    return {
        "train_accuracy": float(classifier.score(train_points, train_labels)),
        "eval_accuracy": float(classifier.score(eval_points, eval_labels)),
    }


def _points(
    represent: _intervention.Represent,
    sizes: tuple[int, ...],
    batch_size: int,
    num_points: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Features [num_points, D] and fixed-factor labels int [num_points]."""
    labels = rng.integers(0, len(sizes), num_points)  # [P]

    def draw_batches(fixed: np.ndarray) -> np.ndarray:
        # Both members of each pair, stacked: [m, 2 * batch_size, K].
        m = len(fixed)
        first = _intervention.sample_factors(sizes, m * batch_size, rng)
        second = _intervention.sample_factors(sizes, m * batch_size, rng)
        first = first.reshape(m, batch_size, -1)
        second = second.reshape(m, batch_size, -1)
        rows = np.arange(m)
        second[rows, :, fixed] = first[rows, :, fixed]
        return np.concatenate([first, second], axis=1)

    codes = _intervention.batched_codes(represent, labels, draw_batches)
    difference = codes[:, :batch_size] - codes[:, batch_size:]  # [P, b, D]
    return np.mean(np.abs(difference), axis=1), labels
