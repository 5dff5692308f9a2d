"""The ERM trainer: the baseline of every transfer evaluation.

The same encoder as the method's (config.model, from
config.model.pretrained_path when set) with a linear head, trained end to
end on the target label of a labelled benchmark's training split
(`data.labelled`) by Adam on the logistic loss (softmax cross-entropy for
more than two classes): config.transfer.erm_steps steps of
config.transfer.erm_batch_size examples at config.transfer.erm_learning_rate.
Minibatches are drawn without replacement within each pass over the split
(a pass's remainder is skipped; every pass reshuffles), as a deterministic
function of (seed, step), so the run resumes like any other: it runs through
the same loop (`loop.run`), with orbax checkpoints under its own workdir.

`train_or_load(config, workdir)` runs (or finishes, or reads back) the ERM
baseline of a method's run in `<workdir>/erm`.
"""

from __future__ import annotations

import os
import sys
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax.training import train_state

from sparse_shared_jax import loop, parallel, transfer
from sparse_shared_jax.data import labelled

# The ERM run's directory inside the method's workdir.
ERM_DIR = "erm"


class ErmBatch(NamedTuple):
    """One minibatch, laid out as one 'task' of B examples."""

    x: jax.Array  # [1, B, *obs]
    y: jax.Array  # [1, B]: float {0, 1} for a binary head, int classes otherwise


def erm_config(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The config of the ERM baseline of a method's config (its run's config).

    The method's config with trainer 'erm', config.transfer.erm_steps steps
    and Adam at config.transfer.erm_learning_rate.
    """
    derived = ml_collections.ConfigDict(config.to_dict())
    derived.trainer = "erm"
    derived.num_train_steps = config.transfer.erm_steps
    derived.outer.optimizer = "adam"
    derived.outer.learning_rate = config.transfer.erm_learning_rate
    return derived


def validate(config: ml_collections.ConfigDict) -> None:
    """Checks the fields the ERM trainer reads; ValueError names the field."""
    for field, minimum in (
        ("num_train_steps", 1),
        ("log_every_steps", 1),
        ("checkpoint.every_steps", 1),
        ("checkpoint.max_to_keep", 1),
        ("transfer.erm_batch_size", 1),
    ):
        value = config
        for part in field.split("."):
            value = value[part]
        if value < minimum:
            raise ValueError(f"config.{field} must be >= {minimum}; got {value!r}.")
    if config.outer.learning_rate <= 0:
        raise ValueError(
            "config.transfer.erm_learning_rate must be > 0; got "
            f"{config.outer.learning_rate!r}."
        )


class ErmBatches:
    """Minibatches of a split's target: rows without replacement within each
    pass, every pass a new permutation from the generator [seed, 3]."""

    def __init__(self, split: labelled.LabelledSplit, batch_size: int, seed: int):
        if not 1 <= batch_size <= len(split):
            raise ValueError(
                f"config.transfer.erm_batch_size must be in [1, {len(split)}] (the "
                f"training split's size); got {batch_size}."
            )
        self.split, self.batch_size, self.seed = split, batch_size, seed
        self.input_shape = labelled.example_inputs(split).shape[1:]
        self._batches_per_pass = len(split) // batch_size
        self._pass, self._order, self._rng = -1, None, None

    def rows(self, step: int) -> np.ndarray:
        """The rows int [B] of minibatch `step` (0-based)."""
        index, position = divmod(step, self._batches_per_pass)
        if index < self._pass or self._rng is None:  # restart the passes
            self._rng = np.random.default_rng([self.seed, 3])
            self._pass = -1
        while self._pass < index:
            self._order = self._rng.permutation(len(self.split))
            self._pass += 1
        start = position * self.batch_size
        return self._order[start : start + self.batch_size]


def erm_loss(params, apply_fn, x: jax.Array, y: jax.Array) -> jax.Array:
    """Mean logistic (binary head) or softmax (C classes) loss of the
    encoder + head on x [b, *obs], y [b] (float 0/1, or int classes)."""
    features = apply_fn(params["encoder"], x)  # [b, k]
    logits = features @ params["weights"] + params["bias"]  # [b] or [b, C]
    if logits.ndim == 1:
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, y))
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, y))


def train_step(
    state: train_state.TrainState, batch: ErmBatch
) -> tuple[train_state.TrainState, dict[str, jax.Array]]:
    """One Adam step of the encoder and the head on a minibatch (pure)."""
    loss, grads = jax.value_and_grad(erm_loss)(
        state.params, state.apply_fn, batch.x[0], batch.y[0]
    )
    metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads)}
    return state.apply_gradients(grads=grads), metrics


def prepare(config: ml_collections.ConfigDict, workdir: str) -> loop.Job:
    """The pieces of an ERM run (see loop.Job); `config` is an `erm_config`."""
    benchmark = labelled.open_labelled_benchmark(config)
    split = benchmark.splits[labelled.FIT_SPLIT]
    batches = ErmBatches(
        split, min(config.transfer.erm_batch_size, len(split)), config.seed
    )
    if batches.batch_size % jax.device_count():
        raise ValueError(
            f"config.transfer.erm_batch_size ({batches.batch_size}) must be a "
            f"multiple of the device count ({jax.device_count()}): every device "
            "holds an equal part of an ERM minibatch."
        )
    binary = benchmark.num_classes == 2
    targets = split.labels["label"].astype(np.float32 if binary else np.int32)
    encoder = loop.make_encoder(config)
    example = labelled.example_inputs(split)
    optimizer = loop.make_optimizer(config.outer)

    def init_state():
        encoder_params = encoder.init(jax.random.key(config.seed), example)
        num_features = encoder.apply(encoder_params, example).shape[-1]
        head_shape = () if binary else (benchmark.num_classes,)
        params = {
            "encoder": encoder_params,
            "weights": jnp.zeros((num_features, *head_shape)),
            "bias": jnp.zeros(head_shape),
        }
        return train_state.TrainState.create(
            apply_fn=encoder.apply, params=params, tx=optimizer
        )

    def batch_at(step: int, sharding) -> ErmBatch:
        rows = batches.rows(step)[None]  # [1, B]
        x = parallel.global_array(
            lambda block: labelled.read_rows(split, rows[block[:2]]),
            rows.shape + batches.input_shape,
            sharding,
        )
        y = parallel.global_array(
            lambda block: targets[rows][block], rows.shape, sharding
        )
        return ErmBatch(x, y)

    return loop.Job(
        batch_sizes=(1, batches.batch_size, 0),
        init_state=init_state,
        train_step=train_step,
        batch_at=batch_at,
        summary=lambda final: (
            f"ERM baseline (step {final['step']}): training loss "
            f"{final.get('train/loss', float('nan')):.4f}; in {workdir}"
        ),
        encoder_key="encoder",
    )


def load(config: ml_collections.ConfigDict, workdir: str) -> transfer.ErmModel:
    """The trained ERM model of an ERM run (`config`: its `erm_config`)."""
    state, _ = loop.restore(config, workdir, sys.modules[__name__])
    params = state.params
    return transfer.ErmModel(
        transfer.FrozenEncoder(params["encoder"], state.apply_fn),
        transfer.raw_feature_head(params["weights"], params["bias"]),
    )


def train_or_load(
    config: ml_collections.ConfigDict, workdir: str
) -> transfer.ErmModel | None:
    """The ERM baseline of the method's run in `workdir`: trained in
    `<workdir>/erm` (resumed if interrupted; only read back when finished).
    None when config.transfer.erm_steps is 0."""
    if not config.transfer.erm_steps:
        return None
    derived = erm_config(config)
    directory = os.path.join(workdir, ERM_DIR)
    loop.run(derived, directory, sys.modules[__name__])
    return load(derived, directory)
