"""Evaluation of a frozen encoder on data with known factors."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from sparse_shared_jax import bilevel, losses, metrics, parallel
from sparse_shared_jax.data import Episode, GroundTruthDataset

ApplyFn = Callable[[Any, jax.Array], jax.Array]


def encode(
    params: Any,
    apply_fn: ApplyFn,
    observations: np.ndarray,
    batch_size: int = 1024,
    mesh: Mesh | None = None,
) -> np.ndarray:
    """Encodes observations [N, *obs] in jitted batches -> features [N, k].

    Each batch is split over all devices of `mesh` (default: all devices).
    """
    return encode_rows(
        params, apply_fn, len(observations), observations.__getitem__, batch_size, mesh
    )


def encode_factors(
    params: Any,
    apply_fn: ApplyFn,
    dataset: GroundTruthDataset,
    factors: np.ndarray,
    batch_size: int = 1024,
    mesh: Mesh | None = None,
) -> np.ndarray:
    """Renders and encodes factors [N, K] -> features [N, k].

    Like `encode`, but in a multi-process job each process renders only the
    observations its own devices encode.
    """
    return encode_rows(
        params,
        apply_fn,
        len(factors),
        lambda rows: dataset.observations(factors[rows]),
        batch_size,
        mesh,
    )


def encode_rows(
    params: Any,
    apply_fn: ApplyFn,
    num_rows: int,
    inputs_of_rows: Callable[[np.ndarray], np.ndarray],
    batch_size: int = 1024,
    mesh: Mesh | None = None,
) -> np.ndarray:
    """Encodes rows 0..num_rows-1 of any data -> features [num_rows, k].

    `inputs_of_rows(int [b]) -> [b, *obs]` reads the inputs of some rows (a
    process of a multi-process job reads only those its devices encode);
    batches are split over the devices of `mesh` (default: all devices).
    """
    if mesh is None:
        mesh = Mesh(np.asarray(jax.devices()), ("batch",))
    sharding = NamedSharding(mesh, PartitionSpec(mesh.axis_names))
    # A multiple of the device count; the last batch repeats its last row.
    per_device = -(-min(batch_size, max(num_rows, 1)) // mesh.size)
    padded_batch = per_device * mesh.size
    apply = jax.jit(apply_fn)
    codes = []
    for start in range(0, num_rows, padded_batch):
        rows = np.minimum(np.arange(start, start + padded_batch), num_rows - 1)
        example = inputs_of_rows(rows[:1])  # [1, *obs], for the shape only
        batch = parallel.global_array(
            lambda block, rows=rows: inputs_of_rows(rows[block[0]]),
            (padded_batch, *example.shape[1:]),
            sharding,
        )
        features = parallel.gather_to_host(apply(params, batch))  # [b, k]
        codes.append(features[: num_rows - start])
    return np.concatenate(codes)


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How a representation is scored on data with known factors.

    Attributes:
      num_train: uniformly drawn points the metrics' predictors are fit on
        (DCI, SAP, explicitness) and MIG, MCC and modularity are computed on.
      num_test: further points the predictors are scored on.
      dci_regressor: the DCI importance model, 'gbt' (disentanglement_lib's
        gradient-boosted trees, comparable with published numbers) or
        'random_forest' (about 20x faster; its scores are stored as
        'rf_dci_*'); see metrics.dci.
      intervention_num_train: points (batches of 64) of the BetaVAE and
        FactorVAE scores' classifiers; 0 skips both scores.
      intervention_num_eval: points they are scored on.
    """

    num_train: int
    num_test: int
    dci_regressor: str = "gbt"
    intervention_num_train: int = 0
    intervention_num_eval: int = 0

    @classmethod
    def fast(cls, num_samples: int) -> Protocol:
        """The protocol during training: random-forest DCI, an 80/20 split."""
        num_test = max(num_samples // 5, 2)
        return cls(num_samples - num_test, num_test, "random_forest")


# disentanglement_lib's sizes: 10,000 training and 5,000 test points for DCI,
# MIG, SAP and modularity; as many for BetaVAE and FactorVAE, in batches of 64.
STANDARD_PROTOCOL = Protocol(10_000, 5_000, "gbt", 10_000, 5_000)
INTERVENTION_BATCH_SIZE = 64

# Score names of the DCI importance models: only disentanglement_lib's
# gradient-boosted trees give the plain 'dci_*' names.
DCI_PREFIXES = {"gbt": "dci", "random_forest": "rf_dci", "lasso": "lasso_dci"}


@dataclasses.dataclass(frozen=True)
class RepresentationEvaluation:
    """Disentanglement scores and what the pictures need.

    Attributes:
      scores: mcc, <dci>_disentanglement, <dci>_completeness,
        <dci>_informativeness_test (<dci> names the regressor, see
        DCI_PREFIXES), mig, sap, modularity, explicitness, and with
        intervention points beta_vae_score and factor_vae_score.
      feature_to_factor: int [k], MCC's feature -> factor matching (-1: none).
      importance: [k, K] DCI importance matrix.
      codes: [N, k] the encoded training points.
      factor_values: [N, K] their factor values.
    """

    scores: dict[str, float]
    feature_to_factor: np.ndarray
    importance: np.ndarray
    codes: np.ndarray
    factor_values: np.ndarray


def representation_metrics(
    params: Any,
    apply_fn: ApplyFn,
    dataset: GroundTruthDataset,
    protocol: Protocol,
    seed: int,
    mesh: Mesh | None = None,
) -> RepresentationEvaluation:
    """All disentanglement metrics on factors sampled uniformly.

    Evaluation always samples factors independently and uniformly, whatever
    correlation the training factors had. Encoding is split over the devices
    of `mesh` (default: all); the metrics are computed on the host.
    """
    rng = np.random.default_rng([seed, 1])
    num_points = protocol.num_train + protocol.num_test
    factors = dataset.sample_factors(num_points, rng)  # [N + N_test, K]
    factor_values = dataset.factor_values(factors)  # [N + N_test, K]
    codes = encode_factors(params, apply_fn, dataset, factors, mesh=mesh)
    train, test = slice(protocol.num_train), slice(protocol.num_train, num_points)
    held_out = dict(test_codes=codes[test], test_factors=factors[test])
    mcc, feature_to_factor = metrics.mcc_matching(codes[train], factor_values[train])
    dci = metrics.dci_importance_matrix(
        codes[train],
        factors[train],
        regressor=protocol.dci_regressor,
        seed=seed,
        **held_out,
    )
    modularity = metrics.modularity_explicitness(
        codes[train], factors[train], seed=seed, **held_out
    )
    dci_name = DCI_PREFIXES[protocol.dci_regressor]
    scores = {
        "mcc": mcc,
        f"{dci_name}_disentanglement": metrics.disentanglement_score(
            dci.importance_matrix
        ),
        f"{dci_name}_completeness": metrics.completeness_score(dci.importance_matrix),
        f"{dci_name}_informativeness_test": dci.informativeness_test,
        "mig": metrics.mig(codes[train], factors[train])["discrete_mig"],
        "sap": metrics.sap(codes[train], factors[train], seed=seed, **held_out)[
            "sap_score"
        ],
        "modularity": modularity["modularity_score"],
        "explicitness": modularity["explicitness_score_test"],
    }
    if protocol.intervention_num_train:
        scores.update(
            intervention_scores(params, apply_fn, dataset, protocol, seed, mesh)
        )
    return RepresentationEvaluation(
        scores={name: float(value) for name, value in scores.items()},
        feature_to_factor=feature_to_factor,
        importance=dci.importance_matrix,
        codes=codes[train],
        factor_values=factor_values[train],
    )


def intervention_scores(
    params: Any,
    apply_fn: ApplyFn,
    dataset: GroundTruthDataset,
    protocol: Protocol,
    seed: int,
    mesh: Mesh | None = None,
) -> dict[str, float]:
    """The BetaVAE and FactorVAE scores (evaluation accuracies) of an encoder."""

    def represent(factors: np.ndarray) -> np.ndarray:
        return encode_factors(params, apply_fn, dataset, factors, mesh=mesh)

    sizes = tuple(dataset.factor_sizes)
    options = dict(
        batch_size=INTERVENTION_BATCH_SIZE,
        num_train=protocol.intervention_num_train,
        num_eval=protocol.intervention_num_eval,
        seed=seed,
    )
    return {
        "beta_vae_score": metrics.beta_vae_score(represent, sizes, **options)[
            "eval_accuracy"
        ],
        "factor_vae_score": metrics.factor_vae_score(represent, sizes, **options)[
            "eval_accuracy"
        ],
    }


def heads_usage(
    params: Any,
    apply_fn: ApplyFn,
    episode: Episode,
    settings: bilevel.BilevelSettings,
) -> np.ndarray:
    """Row norms of every task's solved head on `episode`: [T, k]."""

    @jax.jit
    def usage(params, episode):
        support, _ = bilevel.episode_features(
            params, apply_fn, episode, settings.normalization
        )
        heads = bilevel.fit_heads(support, episode.support_y, settings)
        return losses.row_norms(heads.W)  # [T, k]

    return np.asarray(usage(params, bilevel.EpisodeBatch.from_episode(episode)))


def support_recovery_metrics(
    usage: np.ndarray, true_support: np.ndarray, feature_to_factor: np.ndarray
) -> dict[str, float]:
    """How well the heads' active features recover the tasks' true factors.

    Args:
      usage: [T, k] row norms of the solved heads (`heads_usage`).
      true_support: bool [T, K], the factors each task's label depends on.
      feature_to_factor: int [k], the feature -> factor matching.

    Returns:
      {'support_precision', 'support_recall', 'support_f1'}.
    """
    recovery = metrics.support_recovery(
        usage, true_support, feature_to_factor=feature_to_factor
    )
    return {f"support_{name}": recovery[name] for name in ("precision", "recall", "f1")}
