"""Checks an experiment config before anything is compiled.

Every error names the config field, what it must be and the value given.
"""

from __future__ import annotations

import ml_collections

from sparse_shared_jax import bilevel, data, models, parallel

# The inner task loss of each label type of the task distribution.
LOSS_OF_LABEL_TYPE = {
    "binary": "logistic",
    "multiclass": "softmax",
    "regression": "squared",
}
OPTIMIZERS = ("adam", "adamw")


def _require(condition: bool, field: str, requirement: str, value) -> None:
    if not condition:
        raise ValueError(f"config.{field} must be {requirement}; got {value!r}.")


def _require_choice(config, field: str, choices) -> None:
    value = config
    for part in field.split("."):
        value = value[part]
    _require(value in choices, field, f"one of {tuple(choices)}", value)


def _require_at_least(config, field: str, minimum) -> None:
    value = config
    for part in field.split("."):
        value = value[part]
    _require(value >= minimum, field, f">= {minimum}", value)


def validate_config(config: ml_collections.ConfigDict) -> None:
    """Raises ValueError naming the first config field out of range."""
    for field in ("num_train_steps", "seed"):
        _require_at_least(config, field, 0)
    for field in (
        "log_every_steps",
        "eval_every_steps",
        "checkpoint.every_steps",
        "checkpoint.max_to_keep",
        "model.num_features",
        "episode.num_tasks",
        "episode.support_size",
        "episode.query_size",
    ):
        _require_at_least(config, field, 1)
    _require_at_least(config, "eval.num_samples", 10)
    _require_choice(config, "data.name", data.registered_names())
    _require_choice(config, "data.label_type", LOSS_OF_LABEL_TYPE)
    _require_choice(config, "model.name", models.ENCODERS)
    _require_choice(config, "model.pretrained_format", models.PRETRAINED_FORMATS)
    _require_choice(config, "outer.optimizer", OPTIMIZERS)
    _require_choice(config, "parallel.param_sharding", parallel.PARAM_SHARDINGS)
    correlation = config.data.correlation
    _require(0.0 <= correlation < 1.0, "data.correlation", "in [0, 1)", correlation)
    rate = config.outer.learning_rate
    _require(rate > 0, "outer.learning_rate", "> 0", rate)
    try:
        bilevel_settings(config)
    except ValueError as error:
        raise ValueError(f"Invalid config.inner/config.share value: {error}") from error


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
