"""The training loop: train_and_evaluate(config, workdir).

Samples episodes from a ground-truth dataset, runs the jitted outer step
(bilevel.train_step) and, at the end, evaluates the representation with the
disentanglement metrics on uniformly sampled factors. The final metrics are
returned and written to `workdir/metrics.json`.
"""

from __future__ import annotations

import json
import math
import os
import time

import jax
import ml_collections
import optax
from absl import logging

from sparse_shared_jax import bilevel, data, evaluate, models

# The inner task loss of each label type of the task distribution.
LOSS_OF_LABEL_TYPE = {
    "binary": "logistic",
    "multiclass": "softmax",
    "regression": "squared",
}
OPTIMIZERS = ("adam", "adamw")
# Evaluation episodes use the seed config.seed + _EVAL_SEED_OFFSET.
_EVAL_SEED_OFFSET = 1_000_003


def _require(condition: bool, field: str, requirement: str, value) -> None:
    if not condition:
        raise ValueError(f"config.{field} must be {requirement}; got {value!r}.")


def validate_config(config: ml_collections.ConfigDict) -> None:
    """Checks the values the loop reads, before anything is compiled.

    Raises:
      ValueError: naming the config field, the allowed range and the value.
    """
    _require(
        config.num_train_steps >= 0, "num_train_steps", ">= 0", config.num_train_steps
    )
    _require(
        config.log_every_steps >= 1, "log_every_steps", ">= 1", config.log_every_steps
    )
    _require(
        config.data.name in data.registered_names(),
        "data.name",
        f"one of {data.registered_names()}",
        config.data.name,
    )
    _require(
        config.data.label_type in LOSS_OF_LABEL_TYPE,
        "data.label_type",
        f"one of {tuple(LOSS_OF_LABEL_TYPE)}",
        config.data.label_type,
    )
    _require(
        0.0 <= config.data.correlation < 1.0,
        "data.correlation",
        "in [0, 1)",
        config.data.correlation,
    )
    _require(
        config.model.name in models.ENCODERS,
        "model.name",
        f"one of {tuple(models.ENCODERS)}",
        config.model.name,
    )
    _require(
        config.model.num_features >= 1,
        "model.num_features",
        ">= 1",
        config.model.num_features,
    )
    for field in ("num_tasks", "support_size", "query_size"):
        value = config.episode[field]
        _require(value >= 1, f"episode.{field}", ">= 1", value)
    _require(
        config.outer.optimizer in OPTIMIZERS,
        "outer.optimizer",
        f"one of {OPTIMIZERS}",
        config.outer.optimizer,
    )
    _require(
        config.outer.learning_rate > 0,
        "outer.learning_rate",
        "> 0",
        config.outer.learning_rate,
    )
    _require(
        config.eval.num_samples >= 10,
        "eval.num_samples",
        ">= 10",
        config.eval.num_samples,
    )
    try:
        bilevel_settings(config)
    except ValueError as error:
        raise ValueError(f"Invalid inner/share config: {error}") from error


def bilevel_settings(config: ml_collections.ConfigDict) -> bilevel.BilevelSettings:
    """The static settings of the outer step, from config.inner and config.share."""
    loss = LOSS_OF_LABEL_TYPE[config.data.label_type]
    return bilevel.BilevelSettings(
        loss=loss,
        num_classes=config.data.num_classes if loss == "softmax" else None,
        normalization=config.inner.normalization,
        lambda_mode=config.inner.lambda_mode,
        alpha=config.inner.alpha,
        penalty=config.inner.penalty,
        ridge=config.inner.ridge,
        maxiter=config.inner.maxiter,
        tol=config.inner.tol,
        differentiation=config.inner.differentiation,
        linear_solve=config.inner.linear_solve,
        linear_solve_tol=config.inner.linear_solve_tol,
        share_weight=config.share.weight,
        share_variant=config.share.variant,
        share_placement=config.share.placement,
        share_smoothing=config.share.smoothing,
    )


def make_optimizer(outer: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """Adam or AdamW from config.outer."""
    if outer.optimizer == "adamw":
        return optax.adamw(outer.learning_rate, weight_decay=outer.weight_decay)
    return optax.adam(outer.learning_rate)


def make_episode_sampler(
    config: ml_collections.ConfigDict,
    dataset: data.GroundTruthDataset,
    *,
    correlation: float | None = None,
    seed: int | None = None,
) -> data.EpisodeSampler:
    """The deterministic (seed, step) -> episode sampler of the run.

    `correlation` and `seed` default to config.data.correlation and
    config.seed; evaluation overrides them.
    """
    return data.EpisodeSampler(
        dataset,
        num_tasks=config.episode.num_tasks,
        support_size=config.episode.support_size,
        query_size=config.episode.query_size,
        label_type=config.data.label_type,
        correlation=config.data.correlation if correlation is None else correlation,
        task_support=config.data.task_support,
        support_prob=config.data.support_prob,
        num_relevant=config.data.num_relevant,
        num_classes=config.data.num_classes,
        snr=config.data.snr,
        seed=config.seed if seed is None else seed,
    )


def _format_metrics(metrics: dict[str, float]) -> str:
    return " ".join(f"{name}={value:.4g}" for name, value in sorted(metrics.items()))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Trains the encoder as `config` describes and evaluates it.

    Args:
      config: an experiment config (see experiments/).
      workdir: directory for everything the run writes.

    Returns:
      The final metrics (also written to `workdir/metrics.json`).
    """
    validate_config(config)
    os.makedirs(workdir, exist_ok=True)
    settings = bilevel_settings(config)
    dataset = data.ground_truth(config.data.name, **config.data.options.to_dict())
    sampler = make_episode_sampler(config, dataset)
    encoder = models.get_encoder(
        config.model.name, config.model.num_features, **_encoder_options(config.model)
    )
    example = sampler(0).support_x[0]  # [n_s, *obs]
    state = bilevel.create_train_state(
        encoder, jax.random.key(config.seed), example, make_optimizer(config.outer)
    )
    train_step = jax.jit(bilevel.train_step, static_argnums=2, donate_argnums=0)

    logging.info("Training for %d steps; workdir %s", config.num_train_steps, workdir)
    start = time.perf_counter()
    last_metrics: dict[str, float] = {}
    for step in range(config.num_train_steps):
        episode = bilevel.EpisodeBatch.from_episode(sampler(step))
        state, step_metrics = train_step(state, episode, settings)
        is_last = step + 1 == config.num_train_steps
        if (step + 1) % config.log_every_steps == 0 or is_last:
            last_metrics = {k: float(v) for k, v in step_metrics.items()}
            if not math.isfinite(last_metrics["loss"]):
                raise FloatingPointError(
                    f"The outer loss is {last_metrics['loss']} at step {step + 1}."
                )
            elapsed = time.perf_counter() - start
            rate = (step + 1) / elapsed
            eta = (config.num_train_steps - step - 1) / rate
            logging.info(
                "step %d/%d (%.1f steps/s, ETA %.0fs): %s",
                step + 1,
                config.num_train_steps,
                rate,
                eta,
                _format_metrics(last_metrics),
            )

    final = {f"train/{k}": v for k, v in last_metrics.items()}
    final.update(
        {
            f"eval/{k}": v
            for k, v in evaluate_run(config, dataset, state, settings).items()
        }
    )
    final["step"] = config.num_train_steps
    with open(os.path.join(workdir, "metrics.json"), "w") as f:
        json.dump(final, f, indent=2, sort_keys=True)
    logging.info("Final metrics: %s", _format_metrics(final))
    return final


def evaluate_run(
    config: ml_collections.ConfigDict,
    dataset: data.GroundTruthDataset,
    state,
    settings: bilevel.BilevelSettings,
) -> dict[str, float]:
    """Disentanglement metrics and support recovery on uniform factors."""
    logging.info("Evaluating on %d uniformly sampled factors", config.eval.num_samples)
    scores, feature_to_factor = evaluate.representation_metrics(
        state.params, state.apply_fn, dataset, config.eval.num_samples, config.seed
    )
    # A held-out episode with independent factors: its own seed stream.
    held_out = make_episode_sampler(
        config, dataset, correlation=0.0, seed=config.seed + _EVAL_SEED_OFFSET
    )(0)
    scores.update(
        evaluate.support_recovery_metrics(
            state.params, state.apply_fn, held_out, settings, feature_to_factor
        )
    )
    return scores


def _encoder_options(model: ml_collections.ConfigDict) -> dict:
    """Architecture options of config.model beyond name and num_features."""
    if model.name == "mlp":
        return {"hidden_sizes": tuple(model.hidden_sizes)}
    return {}
