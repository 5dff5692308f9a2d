"""Checks an experiment config before anything is compiled.

Every error names the config field, what it must be and the value given.
"""

from __future__ import annotations

import os

import ml_collections

from sparse_shared_jax import bilevel, data, evaluate, inner, models, parallel
from sparse_shared_jax.data import benchmarks, labelled, meta_tasks
from sparse_shared_jax.errors import ConfigError, DataError

# The inner task loss of each label type of the task distribution.
LOSS_OF_LABEL_TYPE = {
    "binary": "logistic",
    "multiclass": "softmax",
    "regression": "squared",
}
OPTIMIZERS = ("adam", "adamw")


def _require(condition: bool, field: str, requirement: str, value) -> None:
    if not condition:
        raise ConfigError(f"config.{field} must be {requirement}; got {value!r}.")


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


def _validate_training(config: ml_collections.ConfigDict) -> None:
    """The checks every experiment shares: steps, model, episode, optimiser."""
    for field in ("num_train_steps", "seed", "input.workers"):
        _require_at_least(config, field, 0)
    for field in (
        "log_every_steps",
        "eval_every_steps",
        "checkpoint.every_steps",
        "checkpoint.max_to_keep",
        "input.buffer_size",
        "model.num_features",
        "episode.num_tasks",
        "episode.support_size",
        "episode.query_size",
    ):
        _require_at_least(config, field, 1)
    _require_choice(config, "model.name", models.ENCODERS)
    _require_choice(config, "model.pretrained_format", models.PRETRAINED_FORMATS)
    _require_choice(config, "outer.optimizer", OPTIMIZERS)
    _require_choice(config, "parallel.param_sharding", parallel.PARAM_SHARDINGS)
    rate = config.outer.learning_rate
    _require(rate > 0, "outer.learning_rate", "> 0", rate)
    bilevel_settings(config)


def validate_config(config: ml_collections.ConfigDict) -> None:
    """Raises ValueError naming the first field of a ground-truth config
    (config.trainer 'ground_truth') out of range."""
    if is_benchmark_config(config):
        raise ConfigError(
            f"config.data.name {config.data.name!r} is a real benchmark: start "
            "its config from configs.benchmark_config (config.trainer "
            "'benchmark'), as experiments/celeba.py does."
        )
    if "transfer" in config:
        # First: a baseline's steps and learning rate are derived from these
        # fields (trainers/erm.erm_config), so an error names the source.
        validate_transfer(config)
    _validate_training(config)
    _require_at_least(config, "eval.num_samples", 10)
    _require_at_least(config, "eval.final_num_train", 10)
    _require_at_least(config, "eval.final_num_test", 2)
    _require_choice(config, "eval.final_dci_regressor", evaluate.DCI_PREFIXES)
    for field in ("eval.intervention_num_train", "eval.intervention_num_eval"):
        _require_at_least(config, field, 0)
    _require(
        (config.eval.intervention_num_train == 0)
        == (config.eval.intervention_num_eval == 0),
        "eval.intervention_num_eval",
        "0 exactly when eval.intervention_num_train is 0 (0 skips the BetaVAE "
        "and FactorVAE scores)",
        config.eval.intervention_num_eval,
    )
    _require_choice(config, "data.name", data.registered_names())
    _require_choice(config, "data.label_type", LOSS_OF_LABEL_TYPE)
    correlation = config.data.correlation
    _require(0.0 <= correlation < 1.0, "data.correlation", "in [0, 1)", correlation)


def validate_transfer(config: ml_collections.ConfigDict) -> None:
    """Checks the `transfer` section (configs.transfer_config); ConfigError
    names the field."""
    _require_at_least(config, "transfer.max_examples", 0)
    _require_at_least(config, "transfer.head_maxiter", 1)
    _require(
        config.transfer.head_tol > 0,
        "transfer.head_tol",
        "> 0",
        config.transfer.head_tol,
    )
    _require_at_least(config, "transfer.erm_steps", 0)
    _require_at_least(config, "transfer.erm_batch_size", 1)
    rate = config.transfer.erm_learning_rate
    _require(rate > 0, "transfer.erm_learning_rate", "> 0", rate)
    _require_at_least(config, "transfer.erm_eval_every_steps", 0)
    step_size = config.transfer.dro_step_size
    _require(step_size > 0, "transfer.dro_step_size", "> 0", step_size)
    alphas = tuple(config.transfer.alphas)
    _require(
        bool(alphas) and all(0.0 <= alpha < 1.0 for alpha in alphas),
        "transfer.alphas",
        "a non-empty list of penalties in [0, 1)",
        alphas,
    )


def is_benchmark_config(config: ml_collections.ConfigDict) -> bool:
    """Whether config.data.name is a real benchmark (e.g. 'celeba/64px')."""
    return labelled.is_real_benchmark(config.data.name)


def validate_benchmark_config(config: ml_collections.ConfigDict) -> None:
    """Checks a `configs.benchmark_config` config; ValueError names the field."""
    validate_transfer(config)  # first, as in validate_config
    _validate_training(config)
    _require(
        is_benchmark_config(config),
        "data.name",
        f"a benchmark of {tuple(benchmarks.BENCHMARKS)} (optionally '/<config>')",
        config.data.name,
    )
    _require_choice(config, "data.label_type", ("binary", "multiclass"))
    _require_at_least(config, "data.num_classes", 2)
    _require_at_least(config, "eval.num_episodes", 1)
    spec = benchmarks.BENCHMARKS[config.data.name.split("/")[0]]
    meta_tasks.check_task_fields(
        task_fields(config),
        spec.meta_labels,
        allow_label=config.data.allow_label_tasks,
        allow_attribute=config.data.allow_attribute_tasks,
        benchmark=spec.name,
    )
    if spec.modality == "text":
        _require_at_least(config, "data.max_length", 3)
        _require(
            bool(config.data.vocab_path),
            "data.vocab_path",
            "the path of a BERT vocab.txt for this text benchmark (e.g. the "
            "vocab.txt of bert-base-uncased; see docs/backbones.md)",
            config.data.vocab_path,
        )
        if not os.path.isfile(config.data.vocab_path):
            raise DataError(
                f"config.data.vocab_path: no file at {config.data.vocab_path!r}."
            )
        _require(
            config.model.name == "bert",
            "model.name",
            "'bert' for a text benchmark",
            config.model.name,
        )
    elif config.model.name == "bert":
        raise ConfigError(
            f"config.model.name is 'bert' but {spec.name} is an image benchmark; "
            "use 'resnet18', 'resnet50' or 'conv'."
        )


def task_fields(config: ml_collections.ConfigDict) -> tuple[str, ...]:
    """config.data.task_fields, or the benchmark's meta labels when empty."""
    if config.data.task_fields:
        return tuple(config.data.task_fields)
    return benchmarks.BENCHMARKS[config.data.name.split("/")[0]].meta_labels


def bilevel_settings(config: ml_collections.ConfigDict) -> bilevel.BilevelSettings:
    """The static settings of the outer step, from config.inner and config.share.

    Raises:
      ValueError: naming the config field whose value is not allowed.
    """
    loss = LOSS_OF_LABEL_TYPE[config.data.label_type]
    try:
        return bilevel.BilevelSettings(
            loss=loss,
            num_classes=config.data.num_classes if loss == "softmax" else None,
            normalization=config.inner.normalization,
            lambda_mode=config.inner.lambda_mode,
            alpha=config.inner.alpha,
            solver=inner.InnerSettings.from_config(config.inner),
            share_weight=config.share.weight,
            share_variant=config.share.variant,
            share_temperature=config.share.temperature,
            share_warmup_steps=config.share.warmup_steps,
            share_projected=config.share.projected,
            share_placement=config.share.placement,
            share_smoothing=config.share.smoothing,
        )
    except ValueError as error:
        raise ConfigError(
            f"Invalid config.inner/config.share value: {error}"
        ) from error
