"""Separated attribute predictability (Kumar et al., "Variational inference of
disentangled latent concepts from unlabeled observations", ICLR 2018),
classification variant.

For every (code d, factor k) pair a classifier predicts factor k from code d
alone; its test accuracy fills a score matrix S [D, K]. SAP is the mean over
factors of the gap between the best and the second best code.

Classifiers (`classifier`):

* ``'tree'`` (default): a one-dimensional decision tree, i.e. a learned set
  of thresholds on the code, with leaves of at least 1 % of the training
  samples. A code that determines a factor with many values is classified
  perfectly, so a disentangled representation scores
  ``mean_k(1 - accuracy of the best other code)``, close to the ceiling.
* ``'linear_svm'``: disentanglement_lib's ``LinearSVC(C=0.01,
  class_weight='balanced')``, for comparison with published numbers. A linear
  one-vs-rest classifier on one dimension rarely separates the middle values
  of a many-valued factor, so it understates SAP for such factors.
"""

from __future__ import annotations

import numpy as np
import sklearn.svm
import sklearn.tree

from sparse_shared_jax.metrics import _utils

CLASSIFIERS = ("tree", "linear_svm")
_MIN_LEAF_FRACTION = 0.01  # smallest tree leaf, as a fraction of training rows


def sap(
    codes: np.ndarray,
    factors: np.ndarray,
    *,
    test_codes: np.ndarray | None = None,
    test_factors: np.ndarray | None = None,
    test_fraction: float = 0.2,
    classifier: str = "tree",
    seed: int = 0,
) -> dict[str, float]:
    """SAP score, classification variant.

    Args:
      codes: [num, D] representation, D >= 2 (the training set if a test set
        is given).
      factors: [num, K] integer factor labels.
      test_codes: optional held-out [num_test, D] codes.
      test_factors: optional held-out [num_test, K] labels.
      test_fraction: fraction of rows held out when no test set is given.
      classifier: ``'tree'`` (default) or ``'linear_svm'`` (see module
        docstring).
      seed: seed of the split and of the classifiers.

    Returns:
      {'sap_score'}: a float in [0, 1].
    """
    _utils.check_choice(classifier, "classifier", CLASSIFIERS)
    split = _utils.train_test_split(
        codes, factors, test_codes, test_factors, test_fraction, seed
    )
    if split.train_codes.shape[1] < 2:
        raise ValueError(
            "`codes` needs at least 2 dimensions for a gap; got "
            f"{split.train_codes.shape[1]}."
        )
    scores = _score_matrix(split, classifier, seed)  # [D, K]
    second, first = np.sort(scores, axis=0)[-2:]  # [K] each
    return {"sap_score": float(np.mean(first - second))}


def _score_matrix(split: _utils.Split, classifier: str, seed: int) -> np.ndarray:
    """Test accuracy of predicting each factor from each single code: [D, K]."""
    num_codes = split.train_codes.shape[1]
    num_factors = split.train_factors.shape[1]
    scores = np.zeros((num_codes, num_factors))
    for d in range(num_codes):
        train_code = split.train_codes[:, d : d + 1]  # [num_train, 1]
        test_code = split.test_codes[:, d : d + 1]  # [num_test, 1]
        for k in range(num_factors):
            model = _make_classifier(classifier, len(train_code), seed)
            model.fit(train_code, split.train_factors[:, k])
            scores[d, k] = model.score(test_code, split.test_factors[:, k])
    return scores


def _make_classifier(classifier: str, num_train: int, seed: int):
    if classifier == "tree":
        min_leaf = max(1, round(_MIN_LEAF_FRACTION * num_train))
        return sklearn.tree.DecisionTreeClassifier(
            min_samples_leaf=min_leaf, random_state=seed
        )
    return sklearn.svm.LinearSVC(C=0.01, class_weight="balanced", random_state=seed)
