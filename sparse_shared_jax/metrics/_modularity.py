"""Modularity and explicitness (Ridgeway & Mozer, "Learning deep disentangled
embeddings with the F-statistic loss", NeurIPS 2018).

Modularity: codes are binned and their mutual information m[d, k] with every
factor is estimated; code d is modular when it carries information about one
factor only. With theta_d = max_k m[d, k] and a template t[d] equal to m[d]
at the argmax and 0 elsewhere,
``delta_d = sum_k (m[d, k] - t[d, k])^2 / (theta_d^2 (K - 1))`` and the score
is the mean over codes of ``1 - delta_d`` (0 for codes with no information).

Explicitness: for every factor a multinomial logistic regression predicts the
factor from all (standardised) codes; the score is its one-vs-rest ROC AUC
averaged over the factor's values, then over factors.
"""

from __future__ import annotations

import numpy as np
import sklearn.linear_model
import sklearn.metrics
import sklearn.pipeline
import sklearn.preprocessing

from sparse_shared_jax.metrics import _utils


def modularity_explicitness(
    codes: np.ndarray,
    factors: np.ndarray,
    *,
    test_codes: np.ndarray | None = None,
    test_factors: np.ndarray | None = None,
    test_fraction: float = 0.2,
    num_bins: int = 20,
    seed: int = 0,
) -> dict[str, float]:
    """Modularity and explicitness scores.

    Modularity is computed on the training part, like disentanglement_lib.
    Codes are standardised before the logistic regression so that rescaling a
    code does not change explicitness.

    Args:
      codes: [num, D] representation (the training set if a test set is
        given).
      factors: [num, K] integer factor labels, K >= 2.
      test_codes: optional held-out [num_test, D] codes.
      test_factors: optional held-out [num_test, K] labels.
      test_fraction: fraction of rows held out when no test set is given.
      num_bins: equal-width bins per code dimension for mutual information.
      seed: seed of the split.

    Returns:
      {'modularity_score', 'explicitness_score_train',
       'explicitness_score_test'}, floats in [0, 1].
    """
    num_bins = _utils.check_num_bins(num_bins)
    split = _utils.train_test_split(
        codes, factors, test_codes, test_factors, test_fraction, seed
    )
    if split.train_factors.shape[1] < 2:
        raise ValueError(
            "`factors` needs at least 2 columns for modularity; got "
            f"{split.train_factors.shape[1]}."
        )
    information = _utils.mutual_information(
        _utils.discretize(split.train_codes, num_bins), split.train_factors
    )  # [D, K]
    train_auc, test_auc = _explicitness(split)
    return {
        "modularity_score": _modularity(information),
        "explicitness_score_train": train_auc,
        "explicitness_score_test": test_auc,
    }


def _modularity(information: np.ndarray) -> float:
    """Mean over codes of 1 - (deviation from a one-factor template).

    Args:
      information: [D, K] mutual information between codes and factors.

    Returns:
      The modularity score; codes carrying no information score 0.
    """
    squared = np.square(information)  # [D, K]
    max_squared = squared.max(axis=1)  # [D]
    off_template = squared.sum(axis=1) - max_squared  # [D]
    denominator = max_squared * (information.shape[1] - 1)  # [D]
    informative = max_squared > 0  # [D]
    per_code = np.zeros(len(information))  # [D]
    per_code[informative] = 1.0 - off_template[informative] / denominator[informative]
    return float(np.mean(per_code))


def _explicitness(split: _utils.Split) -> tuple[float, float]:
    """Mean one-vs-rest AUC of per-factor logistic regressions (train, test)."""
    train_aucs, test_aucs = [], []
    for k in range(split.train_factors.shape[1]):
        model = sklearn.pipeline.make_pipeline(
            sklearn.preprocessing.StandardScaler(),
            sklearn.linear_model.LogisticRegression(max_iter=1000),
        )
        model.fit(split.train_codes, split.train_factors[:, k])
        train_aucs.append(
            _mean_one_vs_rest_auc(model, split.train_codes, split.train_factors[:, k])
        )
        test_aucs.append(
            _mean_one_vs_rest_auc(model, split.test_codes, split.test_factors[:, k])
        )
    return float(np.mean(train_aucs)), float(np.mean(test_aucs))


def _mean_one_vs_rest_auc(model, codes: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC of each class seen in training against the rest, averaged.

    Args:
      model: a fitted classifier with `predict_proba` and `classes_`.
      codes: [num, D] inputs.
      labels: [num] true labels; classes absent from `labels` (or making up
        all of it) are skipped, as their AUC is undefined.

    Returns:
      The mean AUC over the remaining classes.
    """
    probabilities = model.predict_proba(codes)  # [num, num_classes]
    aucs = [
        sklearn.metrics.roc_auc_score(labels == value, probabilities[:, c])
        for c, value in enumerate(model.classes_)
        if 0 < np.count_nonzero(labels == value) < len(labels)
    ]
    return float(np.mean(aucs))
