"""The FactorVAE score (Kim & Mnih, "Disentangling by factorising", ICML
2018), as disentanglement_lib computes it.

Every code is divided by its standard deviation over `num_variance_estimate`
uniformly drawn factor combinations; codes whose standard deviation is below
`prune_threshold` count as collapsed and are left out. One vote: pick a
factor k uniformly, draw `batch_size` combinations that share the value of
factor k (the first draw's), and vote for the code with the smallest
normalised variance over the batch. A majority-vote classifier maps each
code to the factor it was most often voted for on `num_train` votes; the
score is the fraction of `num_eval` new votes it gets right. In a
disentangled representation the fixed factor's code does not vary within
the batch, so every vote is right; without structure votes fall on codes at
random, close to chance 1/K.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sparse_shared_jax.metrics import _intervention


def factor_vae_score(
    represent: _intervention.Represent,
    factor_sizes: Sequence[int],
    *,
    batch_size: int = 64,
    num_train: int = 10_000,
    num_eval: int = 5_000,
    num_variance_estimate: int = 10_000,
    prune_threshold: float = 0.05,
    seed: int = 0,
) -> dict[str, float]:
    """The FactorVAE disentanglement score.

    Defaults are those of disentanglement_lib's study (batch 64, 10,000
    training and 5,000 evaluation votes, variances from 10,000 points, codes
    with standard deviation below 0.05 pruned).

    Args:
      represent: factors int [n, K] -> codes [n, D] (e.g. render and encode).
      factor_sizes: number of values of each of the K factors.
      batch_size: factor combinations per vote.
      num_train: votes to build the majority-vote classifier from.
      num_eval: votes to score it on.
      num_variance_estimate: combinations to estimate each code's variance.
      prune_threshold: codes with a smaller standard deviation are left out.
      seed: seed of the factor draws.

    Returns:
      {'train_accuracy', 'eval_accuracy', 'num_active_dims'}; both accuracies
      are 0 when every code is pruned.
    """
    sizes = _intervention.check_factor_sizes(factor_sizes)
    batch_size = _intervention.check_positive(batch_size, "batch_size")
    if batch_size < 2:
        raise ValueError(f"`batch_size` must be >= 2 (a variance); got {batch_size}.")
    num_train = _intervention.check_positive(num_train, "num_train")
    num_eval = _intervention.check_positive(num_eval, "num_eval")
    num_variance_estimate = _intervention.check_positive(
        num_variance_estimate, "num_variance_estimate"
    )
    if num_variance_estimate < 2:
        raise ValueError(
            f"`num_variance_estimate` must be >= 2; got {num_variance_estimate}."
        )
    if prune_threshold < 0:
        raise ValueError(f"`prune_threshold` must be >= 0; got {prune_threshold}.")
    rng = np.random.default_rng(seed)
    codes = _intervention.represent_checked(
        represent, _intervention.sample_factors(sizes, num_variance_estimate, rng)
    )  # [N, D]
    global_variances = np.var(codes, axis=0, ddof=1)  # [D]
    active = (np.sqrt(global_variances) >= prune_threshold) & (global_variances > 0)
    if not active.any():
        return {"train_accuracy": 0.0, "eval_accuracy": 0.0, "num_active_dims": 0}
    train_votes = _votes(
        represent, sizes, batch_size, num_train, rng, global_variances, active
    )
    classifier = np.argmax(train_votes, axis=0)  # [D]: factor of each code
    return {
        "train_accuracy": _accuracy(train_votes, classifier),
        "eval_accuracy": _accuracy(
            _votes(
                represent, sizes, batch_size, num_eval, rng, global_variances, active
            ),
            classifier,
        ),
        "num_active_dims": int(active.sum()),
    }


def _votes(
    represent: _intervention.Represent,
    sizes: tuple[int, ...],
    batch_size: int,
    num_votes: int,
    rng: np.random.Generator,
    global_variances: np.ndarray,
    active: np.ndarray,
) -> np.ndarray:
    """Vote counts int [K, D]: [k, d] = votes for code d with factor k fixed."""
    fixed_factors = rng.integers(0, len(sizes), num_votes)  # [V]

    def draw_batches(fixed: np.ndarray) -> np.ndarray:
        m = len(fixed)
        factors = _intervention.sample_factors(sizes, m * batch_size, rng)
        factors = factors.reshape(m, batch_size, -1)  # [m, b, K]
        rows = np.arange(m)
        factors[rows, :, fixed] = factors[rows, :1, fixed]
        return factors

    codes = _intervention.batched_codes(represent, fixed_factors, draw_batches)
    local_variances = np.var(codes, axis=1, ddof=1)  # [V, D]
    ratio = np.where(
        active, local_variances / np.where(active, global_variances, 1.0), np.inf
    )
    chosen = np.argmin(ratio, axis=1)  # [V]
    votes = np.zeros((len(sizes), len(global_variances)), np.int64)
    np.add.at(votes, (fixed_factors, chosen), 1)
    return votes


def _accuracy(votes: np.ndarray, classifier: np.ndarray) -> float:
    """Fraction of votes [K, D] whose code's majority factor is the fixed one."""
    correct = votes[classifier, np.arange(votes.shape[1])].sum()
    return float(correct / votes.sum())
