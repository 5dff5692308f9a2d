"""Disentanglement and robustness metrics: NumPy arrays in, floats out.

`codes` are representations [num, D]; `factors` are integer factor labels
[num, K]; `factor_values` are continuous factor values [num, K]. Every
function checks its inputs and raises ValueError naming the argument at
fault. Metrics that fit predictors take a `seed` and are deterministic.

* `dci`, `dci_importance_matrix`, `disentanglement_score`,
  `completeness_score`: Eastwood & Williams (2018).
* `beta_vae_score`: Higgins et al. (2017); `factor_vae_score`: Kim & Mnih
  (2018). These two intervene on the factors, so they take a function
  `represent(factors) -> codes` and the factor sizes instead of codes.
* `mig`: mutual information gap, Chen et al. (2018).
* `sap`: separated attribute predictability, Kumar et al. (2018).
* `modularity_explicitness`: Ridgeway & Mozer (2018).
* `mcc`, `mcc_matching`, `correlation_matrix`: mean correlation coefficient
  after Hungarian matching of codes to factors.
* `support_recovery`: learned task supports against the true ones.
* `group_accuracies`: average and worst-group accuracy.
"""

from sparse_shared_jax.metrics._beta_vae import beta_vae_score
from sparse_shared_jax.metrics._dci import (
    DCIImportance,
    completeness_score,
    dci,
    dci_importance_matrix,
    disentanglement_score,
)
from sparse_shared_jax.metrics._factor_vae import factor_vae_score
from sparse_shared_jax.metrics._group_accuracy import group_accuracies
from sparse_shared_jax.metrics._mcc import correlation_matrix, mcc, mcc_matching
from sparse_shared_jax.metrics._mig import mig
from sparse_shared_jax.metrics._modularity import modularity_explicitness
from sparse_shared_jax.metrics._sap import sap
from sparse_shared_jax.metrics._support_recovery import support_recovery

__all__ = [
    "DCIImportance",
    "beta_vae_score",
    "completeness_score",
    "correlation_matrix",
    "dci",
    "dci_importance_matrix",
    "disentanglement_score",
    "factor_vae_score",
    "group_accuracies",
    "mcc",
    "mcc_matching",
    "mig",
    "modularity_explicitness",
    "sap",
    "support_recovery",
]
