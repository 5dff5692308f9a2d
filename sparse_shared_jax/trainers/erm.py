"""The baselines trained end to end: ERM and group DRO.

ERM (config.trainer 'erm') is the baseline of every transfer evaluation:
the same encoder as the method's (config.model, from
config.model.pretrained_path when set) with a linear head, trained end to
end on the target label of a labelled benchmark's training split
(`data.labelled`) by Adam on the logistic loss (softmax cross-entropy for
more than two classes): config.transfer.erm_steps steps of
config.transfer.erm_batch_size examples at config.transfer.erm_learning_rate.
Minibatches are drawn without replacement within each pass over the split
(a pass's remainder is skipped; every pass reshuffles), as a deterministic
function of (seed, step).

Group DRO (config.trainer 'group_dro'; Sagawa et al., "Distributionally
robust neural networks", ICLR 2020) is the upper reference that sees the
group labels: the same encoder, head, steps and optimiser, minibatches in
which every group is equally likely, and the online algorithm's objective,
a weighted sum of the minibatch's per-group mean losses whose weights q
(one per group) are raised by exponentiated-gradient ascent at every step
(q_g <- q_g exp(step_size * loss_g), renormalised), so the worst groups
weigh most (config.transfer.dro_step_size).

Early stopping, as the literature's baselines are tuned: every
config.transfer.erm_eval_every_steps steps and at the end, the model's
accuracy on the benchmark's group-balanced validation split is measured,
and the step with the best worst-group accuracy (ties: the better average,
then the earlier step) is the baseline; its state is kept in `<run>/best`
(`trainers.early_stopping`; 0 = no early stopping: the last step is the
baseline).

Both run through the same loop as the method (`loop.run`), with orbax
checkpoints under their own workdir, so they resume like any other run.
`train_or_load(config, workdir, trainer)` runs (or finishes, or reads back)
a baseline of a method's run in `<workdir>/erm` or `<workdir>/group_dro`.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax.training import train_state

from sparse_shared_jax import config_validation, evaluate, loop, parallel, transfer
from sparse_shared_jax.data import labelled
from sparse_shared_jax.errors import ConfigError
from sparse_shared_jax.trainers import early_stopping

# The baselines' trainer names; each run's directory inside the method's
# workdir has the same name.
ERM, GROUP_DRO = "erm", "group_dro"
BASELINES = (ERM, GROUP_DRO)


class ErmBatch(NamedTuple):
    """One minibatch, laid out as one 'task' of B examples."""

    x: jax.Array  # [1, B, *obs]
    y: jax.Array  # [1, B]: float {0, 1} for a binary head, int classes otherwise
    group: jax.Array  # [1, B] int group ids (read by group DRO only)


def erm_config(
    config: ml_collections.ConfigDict, trainer: str = ERM
) -> ml_collections.ConfigDict:
    """The config of a baseline ('erm' or 'group_dro') of a method's config.

    The method's config with that trainer, config.transfer.erm_steps steps,
    Adam at config.transfer.erm_learning_rate, and the validation every
    config.transfer.erm_eval_every_steps steps.
    """
    if trainer not in BASELINES:
        raise ValueError(f"trainer must be one of {BASELINES}; got {trainer!r}.")
    derived = ml_collections.ConfigDict(config.to_dict())
    derived.trainer = trainer
    derived.num_train_steps = config.transfer.erm_steps
    derived.outer.optimizer = "adam"
    derived.outer.learning_rate = config.transfer.erm_learning_rate
    if config.transfer.erm_eval_every_steps:
        derived.eval_every_steps = config.transfer.erm_eval_every_steps
    return derived


def validate(config: ml_collections.ConfigDict) -> None:
    """Checks a baseline's config (see `erm_config`); ConfigError names the
    field.

    A baseline's config is its method's, so the method's checks apply (they
    check the transfer section, which sets the baseline's steps and learning
    rate, first, so its fields are the ones named); a baseline needs a step.
    """
    if config_validation.is_benchmark_config(config):
        config_validation.validate_benchmark_config(config)
    else:
        config_validation.validate_config(config)
    if config.num_train_steps < 1:
        raise ConfigError(
            "config.transfer.erm_steps must be >= 1 to train a baseline; got "
            f"{config.num_train_steps!r}."
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


class GroupBalancedBatches:
    """Minibatches in which every group is equally likely: each row is a
    uniformly drawn member of a uniformly drawn group (with replacement),
    from the generator [seed, 5, step]."""

    def __init__(self, groups: np.ndarray, batch_size: int, seed: int):
        self.batch_size, self.seed = batch_size, seed
        self._members = [np.flatnonzero(groups == g) for g in np.unique(groups)]
        self._sizes = np.array([len(members) for members in self._members])
        self._starts = np.concatenate([[0], np.cumsum(self._sizes)[:-1]])
        self._flat = np.concatenate(self._members)

    def rows(self, step: int) -> np.ndarray:
        """The rows int [B] of minibatch `step` (0-based)."""
        rng = np.random.default_rng([self.seed, 5, step])
        group = rng.integers(len(self._members), size=self.batch_size)  # [B]
        member = np.floor(rng.random(self.batch_size) * self._sizes[group])
        return self._flat[self._starts[group] + member.astype(np.int64)]


def example_losses(params, apply_fn, x: jax.Array, y: jax.Array) -> jax.Array:
    """Logistic (binary head) or softmax (C classes) loss [b] of each example
    of x [b, *obs], y [b] (float 0/1, or int classes)."""
    features = apply_fn(params["encoder"], x)  # [b, k]
    logits = features @ params["weights"] + params["bias"]  # [b] or [b, C]
    if logits.ndim == 1:
        return optax.sigmoid_binary_cross_entropy(logits, y)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y)


def erm_loss(params, apply_fn, x: jax.Array, y: jax.Array) -> jax.Array:
    """The mean loss of the encoder + head on x [b, *obs], y [b]."""
    return jnp.mean(example_losses(params, apply_fn, x, y))


def train_step(
    state: train_state.TrainState, batch: ErmBatch
) -> tuple[train_state.TrainState, dict[str, jax.Array]]:
    """One Adam step of the encoder and the head on a minibatch (pure)."""
    loss, grads = jax.value_and_grad(erm_loss)(
        state.params, state.apply_fn, batch.x[0], batch.y[0]
    )
    metrics = {"loss": loss, "grad_norm": optax.tree.norm(grads)}
    return state.apply_gradients(grads=grads), metrics


def group_dro_objective(
    group_losses: jax.Array, group_weights: jax.Array, step_size: float
) -> tuple[jax.Array, jax.Array]:
    """The online group DRO objective of one minibatch.

    Args:
      group_losses: [G] each group's mean loss in the minibatch (0 for a
        group without examples there).
      group_weights: [G] the weights q of the previous step (summing to 1).
      step_size: the weights' exponentiated-gradient ascent step.

    Returns:
      (sum_g q'_g loss_g, q') with q' = q exp(step_size * loss) / its sum;
      q' carries no gradient.
    """
    losses = jax.lax.stop_gradient(group_losses)
    weights = jax.nn.softmax(jnp.log(group_weights) + step_size * losses)  # [G]
    weights = jax.lax.stop_gradient(weights)
    return jnp.sum(weights * group_losses), weights


def group_dro_train_step(
    state: train_state.TrainState, batch: ErmBatch, *, step_size: float
) -> tuple[train_state.TrainState, dict[str, jax.Array]]:
    """One Adam step on the group DRO objective (pure).

    The group weights q ride in state.params['group_weights'] [G] so that
    checkpoints hold them; they get no gradient and are replaced by the
    step's updated weights.
    """
    num_groups = state.params["group_weights"].shape[0]

    def objective(params):
        losses = example_losses(params, state.apply_fn, batch.x[0], batch.y[0])
        group = batch.group[0]  # [B]
        totals = jax.ops.segment_sum(losses, group, num_groups)  # [G]
        counts = jax.ops.segment_sum(jnp.ones_like(losses), group, num_groups)
        group_losses = totals / jnp.maximum(counts, 1.0)
        loss, weights = group_dro_objective(
            group_losses, params["group_weights"], step_size
        )
        return loss, (weights, group_losses, jnp.mean(losses))

    (loss, (weights, group_losses, mean_loss)), grads = jax.value_and_grad(
        objective, has_aux=True
    )(state.params)
    state = state.apply_gradients(grads=grads)
    state = state.replace(params={**state.params, "group_weights": weights})
    metrics = {
        "loss": loss,
        "mean_loss": mean_loss,
        "worst_group_loss": jnp.max(group_losses),
        "max_group_weight": jnp.max(weights),
        "grad_norm": optax.tree.norm(grads),
    }
    return state, metrics


def _early_stopping(workdir: str, split: labelled.LabelledSplit, rows: np.ndarray):
    """(evaluate, finish) for loop.Job: the state's accuracy on the `rows`
    of the validation split, the best state kept (`early_stopping.BestStep`)."""
    labels = {name: column[rows] for name, column in split.labels.items()}
    best = early_stopping.BestStep(workdir)

    def score_and_keep(state, layout) -> dict[str, float]:
        params = state.params
        features = evaluate.encode_rows(
            params["encoder"],
            state.apply_fn,
            len(rows),
            lambda positions: split.inputs(rows[positions]),
            batch_size=transfer.ENCODE_BATCH_SIZE,
            mesh=layout.mesh,
        )  # [n, k]
        head = transfer.raw_feature_head(
            parallel.gather_to_host(params["weights"]),
            parallel.gather_to_host(params["bias"]),
        )
        scores = transfer.group_scores(head, features, labels["label"], labels["group"])
        scores = {k: scores[k] for k in ("average", "worst_group")}
        best.offer(int(state.step), scores, state)
        return {f"validation/{k}": v for k, v in scores.items()}

    def finish(state, layout, writer) -> dict:
        last = score_and_keep(state, layout)
        return {
            **{f"last_step/{k}": v for k, v in last.items()},
            "selected_step": best.selection["step"],
            **{
                f"validation/{k}": best.selection[k] for k in ("average", "worst_group")
            },
        }

    return score_and_keep, finish


def prepare(config: ml_collections.ConfigDict, workdir: str) -> loop.Job:
    """The pieces of a baseline's run (see loop.Job); `config` is an
    `erm_config` (its trainer 'erm' or 'group_dro')."""
    benchmark = labelled.open_labelled_benchmark(config)
    split = benchmark.splits[labelled.FIT_SPLIT]
    batch_size = min(config.transfer.erm_batch_size, len(split))
    robust = config.trainer == GROUP_DRO
    groups = split.labels["group"]
    if robust:
        batches = GroupBalancedBatches(groups, batch_size, config.seed)
    else:
        batches = ErmBatches(split, batch_size, config.seed)
    if batch_size % jax.device_count():
        raise ValueError(
            f"config.transfer.erm_batch_size ({batch_size}) must be a "
            f"multiple of the device count ({jax.device_count()}): every device "
            "holds an equal part of an ERM minibatch."
        )
    binary = benchmark.num_classes == 2
    targets = split.labels["label"].astype(np.float32 if binary else np.int32)
    encoder = loop.make_encoder(config)
    example = labelled.example_inputs(split)
    input_shape = example.shape[1:]
    optimizer = loop.make_optimizer(config.outer)
    num_groups = int(groups.max()) + 1

    def init_state():
        encoder_params = encoder.init(jax.random.key(config.seed), example)
        num_features = encoder.apply(encoder_params, example).shape[-1]
        head_shape = () if binary else (benchmark.num_classes,)
        params = {
            "encoder": encoder_params,
            "weights": jnp.zeros((num_features, *head_shape)),
            "bias": jnp.zeros(head_shape),
        }
        if robust:
            params["group_weights"] = jnp.full((num_groups,), 1.0 / num_groups)
        return train_state.TrainState.create(
            apply_fn=encoder.apply, params=params, tx=optimizer
        )

    def batch_at(step: int, sharding) -> ErmBatch:
        rows = batches.rows(step)[None]  # [1, B]
        x = parallel.global_array(
            lambda block: labelled.read_rows(split, rows[block[:2]]),
            rows.shape + input_shape,
            sharding,
        )

        def column(values):
            return parallel.global_array(
                lambda block: values[rows][block], rows.shape, sharding
            )

        return ErmBatch(x, column(targets), column(groups.astype(np.int32)))

    step = train_step
    if robust:
        step = functools.partial(
            group_dro_train_step, step_size=config.transfer.dro_step_size
        )
    parts = {}
    if config.transfer.erm_eval_every_steps:
        validation = benchmark.splits[labelled.SELECTION_SPLIT]
        rows = transfer.subset_rows(
            len(validation), config.transfer.max_examples, config.seed
        )
        parts["evaluate"], parts["finish"] = _early_stopping(workdir, validation, rows)
    name = "group DRO" if robust else "ERM"

    def summary(final):
        line = (
            f"{name} baseline (step {final['step']}): training loss "
            f"{final.get('train/loss', float('nan')):.4f}"
        )
        if "selected_step" in final:
            line += (
                f"; early-stopped at step {final['selected_step']} (validation "
                f"worst group {final['validation/worst_group']:.3f})"
            )
        return f"{line}; in {workdir}"

    return loop.Job(
        batch_sizes=(1, batch_size, 0),
        init_state=init_state,
        train_step=step,
        batch_at=batch_at,
        summary=summary,
        encoder_key="encoder",
        **parts,
    )


def load(config: ml_collections.ConfigDict, workdir: str) -> transfer.ErmModel:
    """The trained baseline of a baseline's run (`config`: its `erm_config`):
    the early-stopped state when config.transfer.erm_eval_every_steps > 0,
    else the last checkpoint's."""
    trainer = sys.modules[__name__]
    selection = early_stopping.read_selection(workdir)
    if config.transfer.erm_eval_every_steps and selection is None:
        raise FileNotFoundError(
            "No early-stopping record in "
            f"{os.path.join(workdir, early_stopping.BEST_DIR)}; finish training "
            "the baseline first (train_or_load)."
        )
    if config.transfer.erm_eval_every_steps:
        best_dir = os.path.join(workdir, early_stopping.BEST_DIR)
        state, _ = loop.restore(config, best_dir, trainer, selection["step"])
    else:
        state, _ = loop.restore(config, workdir, trainer)
    params = state.params
    return transfer.ErmModel(
        transfer.FrozenEncoder(params["encoder"], state.apply_fn),
        transfer.raw_feature_head(params["weights"], params["bias"]),
        step=int(state.step),
    )


def train_or_load(
    config: ml_collections.ConfigDict, workdir: str, trainer: str = ERM
) -> transfer.ErmModel | None:
    """The baseline `trainer` ('erm' or 'group_dro') of the method's run in
    `workdir`: trained in `<workdir>/<trainer>` (resumed if interrupted;
    only read back when finished). None when config.transfer.erm_steps is 0,
    or for group DRO when config.transfer.group_dro is off."""
    if not config.transfer.erm_steps:
        return None
    if trainer == GROUP_DRO and not config.transfer.group_dro:
        return None
    derived = erm_config(config, trainer)
    directory = os.path.join(workdir, trainer)
    early_stopping.refuse_unselected(directory, config.transfer.erm_eval_every_steps)
    loop.run(derived, directory, sys.modules[__name__])
    return load(derived, directory)
