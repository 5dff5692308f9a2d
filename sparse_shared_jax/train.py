"""The training loop: train_and_evaluate(config, workdir).

Samples episodes from a ground-truth dataset (a deterministic function of
the seed and the step, so a resumed run sees the same data order), runs the
jitted outer step, logs scalars, evaluates the representation periodically,
checkpoints with orbax and resumes from the latest checkpoint. At the end it
evaluates on uniformly sampled factors, draws the pictures and writes the
final metrics to `workdir/metrics.json`.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import ml_collections
import numpy as np
import optax
from absl import logging

from sparse_shared_jax import (
    atomic_files,
    bilevel,
    checkpoints,
    data,
    evaluate,
    models,
    parallel,
    plots,
    scalar_logs,
)
from sparse_shared_jax.config_validation import bilevel_settings, validate_config

PICTURES_DIR = "pictures"
# Evaluation episodes use the seed config.seed + _EVAL_SEED_OFFSET.
_EVAL_SEED_OFFSET = 1_000_003


def make_optimizer(outer: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """Adam or AdamW from config.outer (no decay on frozen statistics)."""
    if outer.optimizer == "adamw":
        return optax.adamw(
            outer.learning_rate,
            weight_decay=outer.weight_decay,
            mask=models.trainable_mask,
        )
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


def example_input(dataset: data.GroundTruthDataset) -> np.ndarray:
    """float32 [1, *observation_shape]: zeros to initialise an encoder on."""
    return np.zeros((1, *dataset.observation_shape), np.float32)


def create_state(
    config: ml_collections.ConfigDict,
    example_x: np.ndarray,
    layout: parallel.TrainingLayout,
    optimizer: optax.GradientTransformation | None = None,
):
    """The initial training state of `config`, placed on `layout`'s devices.

    Args:
      config: the experiment config (model, outer optimiser, seed).
      example_x: [1, *obs] encoder input of the right shape and dtype (e.g.
        `example_input(dataset)`; int32 token ids for text encoders).
      layout: the devices and how parameters are laid out over them.
      optimizer: replaces the config's optimiser (e.g. in tests).

    Returns:
      (state, the shardings of its arrays).
    """
    encoder = models.get_encoder(
        config.model.name, config.model.num_features, **config.model.options.to_dict()
    )
    optimizer = make_optimizer(config.outer) if optimizer is None else optimizer
    return parallel.create_sharded(
        lambda: bilevel.create_train_state(
            encoder,
            jax.random.key(config.seed),
            example_x,
            optimizer,
        ),
        layout.mesh,
        layout.param_sharding,
    )


class NonFiniteLossError(FloatingPointError):
    """The outer loss became NaN or infinite."""


class _LossGuard:
    """Collects per-step losses on device; checks them in one transfer.

    Checking every step would force a device->host sync per step; instead the
    loop checks at each log and before each checkpoint, and names the first
    bad step.
    """

    def __init__(self):
        self._pending: list[tuple[int, jax.Array]] = []

    def add(self, step: int, loss: jax.Array) -> None:
        self._pending.append((step, loss))

    def check(self, last_good_checkpoint: str) -> None:
        steps = [step for step, _ in self._pending]
        values = np.asarray(jax.device_get([loss for _, loss in self._pending]))
        self._pending.clear()
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise NonFiniteLossError(
                f"The outer loss is {values[bad[0]]} at step {steps[bad[0]]}; "
                f"training stopped. Last good checkpoint: {last_good_checkpoint}. "
                "Lower outer.learning_rate, check that inner_optimality_error is "
                "small (else raise inner.maxiter), or check the data."
            )


def _format(metrics: dict[str, float]) -> str:
    return " ".join(f"{name}={value:.4g}" for name, value in sorted(metrics.items()))


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Trains the encoder as `config` describes, resuming from `workdir`.

    Args:
      config: an experiment config (see experiments/).
      workdir: directory for everything the run writes; if it holds
        checkpoints of the same experiment, training resumes from the latest.

    Returns:
      The final metrics (also written to `workdir/metrics.json`).
    """
    validate_config(config)
    os.makedirs(workdir, exist_ok=True)
    checkpoints.check_workdir_config(workdir, config, write=parallel.is_main_process())
    settings = bilevel_settings(config)
    dataset = data.ground_truth(config.data.name, **config.data.options.to_dict())
    sampler = make_episode_sampler(config, dataset)
    layout = parallel.TrainingLayout.create(
        config.episode.num_tasks,
        config.episode.support_size,
        config.episode.query_size,
        config.parallel.param_sharding,
    )
    logging.info(
        "%d device(s) in %d process(es); mesh %s; parameters %s",
        jax.device_count(),
        jax.process_count(),
        dict(layout.mesh.shape),
        layout.param_sharding,
    )
    state, state_shardings = create_state(config, example_input(dataset), layout)
    checkpointer = checkpoints.Checkpointer(workdir, config.checkpoint.max_to_keep)
    writer = scalar_logs.ScalarWriter(workdir, enabled=parallel.is_main_process())
    try:
        state = resume_or_start(config, state, checkpointer)
        train_step = jit_train_step(settings, layout, state_shardings)

        state = run_training_loop(
            config,
            state,
            train_step,
            lambda step: device_episode(sampler, step, layout.episode),
            lambda state, step: (
                _representation_metrics(
                    config,
                    dataset,
                    state,
                    layout,
                    evaluate.Protocol.fast(config.eval.num_samples),
                ).scores
            ),
            checkpointer,
            writer,
            warnings_at=collapse_warnings(sampler),
        )
        final = _final_evaluation(config, workdir, dataset, state, layout, writer)
    finally:
        writer.close()
        checkpointer.close()
    if not parallel.is_main_process():
        return final
    atomic_files.write_json(os.path.join(workdir, "metrics.json"), final)
    logging.info("Final metrics: %s", _format(final))
    print(final_summary(config, final, os.path.join(workdir, PICTURES_DIR)), flush=True)
    return final


def final_summary(config, final: dict, pictures_dir: str) -> str:
    """The run's last line: the headline metrics of the final protocol."""
    protocol = final_protocol(config)
    dci = "eval/" + evaluate.DCI_PREFIXES[protocol.dci_regressor]
    line = (
        f"Final (step {final['step']}): MCC={final['eval/mcc']:.3f} "
        f"DCI D/C/I={final[dci + '_disentanglement']:.3f}/"
        f"{final[dci + '_completeness']:.3f}/"
        f"{final[dci + '_informativeness_test']:.3f} "
        f"({protocol.dci_regressor}, {protocol.num_train}/{protocol.num_test} "
        "points)"
    )
    if protocol.intervention_num_train:
        line += (
            f" BetaVAE={final['eval/beta_vae_score']:.3f} "
            f"FactorVAE={final['eval/factor_vae_score']:.3f}"
        )
    return (
        line + f" support F1={final['eval/support_f1']:.3f}; pictures in {pictures_dir}"
    )


def resume_or_start(config, state, checkpointer: checkpoints.Checkpointer):
    """The state of the latest checkpoint; else `state` with the config's
    pretrained encoder weights (model.pretrained_path), if any; else `state`."""
    start_step = checkpointer.latest_step() or 0
    if start_step:
        state = checkpointer.restore(start_step, state)
        logging.info("Resumed from checkpoint at step %d", start_step)
        return state
    if config.model.pretrained_path:
        return load_pretrained(config.model, state)
    return state


def load_pretrained(model_config, state):
    """Starts from pretrained encoder weights (the optimiser state is fresh)."""
    params = models.load_pretrained(
        model_config.pretrained_path, model_config.pretrained_format, state.params
    )
    logging.info(
        "Encoder initialised from %s (%s)",
        model_config.pretrained_path,
        model_config.pretrained_format,
    )
    # Keep each array's placement (replicated or sharded) of the fresh state.
    return state.replace(params=jax.device_put(params, _shardings_of(state.params)))


def _shardings_of(tree):
    return jax.tree.map(lambda leaf: leaf.sharding, tree)


def jit_train_step(
    settings: bilevel.BilevelSettings,
    layout: parallel.TrainingLayout,
    state_shardings,
):
    """bilevel.train_step jitted over the layout's devices, state donated.

    Returns:
      step(state, episode) -> (state, metrics), metrics replicated scalars.
    """
    return jax.jit(
        functools.partial(bilevel.train_step, settings=settings),
        in_shardings=(state_shardings, layout.episode),
        out_shardings=(state_shardings, parallel.replicated(layout.mesh)),
        donate_argnums=0,
    )


def device_episode(
    sampler: data.EpisodeSampler, step: int, sharding
) -> bilevel.EpisodeBatch:
    """Episode `step` as global arrays; each process renders only its block."""
    draw = sampler.draw(sampler.rng(step))
    return global_episode(
        (draw.support_factors, draw.support_y),
        (draw.query_factors, draw.query_y),
        sampler.render,
        tuple(sampler.dataset.observation_shape),
        sharding,
    )


def global_episode(
    support: tuple[np.ndarray, np.ndarray],
    query: tuple[np.ndarray, np.ndarray],
    read_inputs: Callable[[np.ndarray], np.ndarray],
    input_shape: tuple[int, ...],
    sharding,
) -> bilevel.EpisodeBatch:
    """An episode as global arrays, each process reading only its block.

    Args:
      support, query: (keys [T, n, ...], labels [T, n]); a key identifies an
        example, e.g. its factors [T, n, K] or its row of a split [T, n].
      read_inputs: keys [t, m, ...] -> inputs [t, m, *input_shape].
      input_shape: the shape of one input.
      sharding: the episode sharding.
    """

    def arrays(keys, labels):
        x = parallel.global_array(
            lambda block: read_inputs(keys[block[:2]]),
            labels.shape + input_shape,
            sharding,
        )
        y = parallel.global_array(lambda block: labels[block], labels.shape, sharding)
        return x, y

    return bilevel.EpisodeBatch(*arrays(*support), *arrays(*query))


def run_training_loop(
    config: ml_collections.ConfigDict,
    state,
    train_step,
    episode_at: Callable[[int], bilevel.EpisodeBatch],
    evaluate_at: Callable[[Any, int], dict[str, float]],
    checkpointer: checkpoints.Checkpointer,
    writer: scalar_logs.ScalarWriter,
    warnings_at: Callable[[int, dict[str, float]], list[str]] | None = None,
):
    """The loop from the state's step to config.num_train_steps.

    Logs progress and scalars every config.log_every_steps, evaluates every
    config.eval_every_steps (not at the last step: the caller's final
    evaluation covers it), checkpoints every config.checkpoint.every_steps and
    at the end, and stops with `NonFiniteLossError` at a NaN or infinite loss.
    At each log step it warns when the inner solver stopped at maxiter on
    more than `UNCONVERGED_WARNING` of the tasks, and logs `warnings_at`'s
    warnings.

    Args:
      config: the run's config (steps and intervals).
      state: the training state to continue from.
      train_step: the jitted step(state, episode) -> (state, metrics).
      episode_at: step (0-based) -> the device episode of that step.
      evaluate_at: (state, step) -> scores, logged under 'eval/'.
      checkpointer: saves the state.
      writer: logs the scalars.
      warnings_at: (step, the step's 'train/' scalars without the prefix) ->
        warnings to log (e.g. `collapse_warnings`).

    Returns:
      The state after config.num_train_steps steps.
    """
    guard = _LossGuard()
    start_step = int(state.step)
    total = config.num_train_steps
    logging.info("Training steps %d..%d of %d", start_step + 1, total, total)
    logging.info("Compiling the training step (the first step takes longest)")
    start_time = time.perf_counter()
    rate_start = (start_step, start_time)  # steps/s counts from after compiling
    for step in range(start_step + 1, total + 1):
        episode = episode_at(step - 1)
        state, step_metrics = train_step(state, episode)
        guard.add(step, step_metrics["loss"])
        if step == start_step + 1:
            jax.block_until_ready(step_metrics)
            rate_start = (step, time.perf_counter())
            logging.info(
                "step %d took %.1fs (compiling the training step)",
                step,
                rate_start[1] - start_time,
            )
        is_last = step == total
        if step % config.log_every_steps == 0 or is_last:
            guard.check(_checkpoint_name(checkpointer))
            scalars = {f"train/{k}": float(v) for k, v in step_metrics.items()}
            writer.write_scalars(step, scalars)
            timed_steps = step - rate_start[0]  # nan until a step after compiling
            rate = timed_steps / (time.perf_counter() - rate_start[1] or 1e-9)
            rate = rate if timed_steps else float("nan")
            logging.info(
                "step %d/%d (%.2f steps/s, ETA %.0fs): %s",
                step,
                total,
                rate,
                (total - step) / rate if timed_steps else float("nan"),
                _format(step_metrics),
            )
            values = {k: float(v) for k, v in step_metrics.items()}
            for warning in _solver_warnings(config, values) + (
                warnings_at(step, values) if warnings_at else []
            ):
                logging.warning("step %d: %s", step, warning)
        if step % config.eval_every_steps == 0 and not is_last:
            scores = evaluate_at(state, step)
            writer.write_scalars(step, {f"eval/{k}": v for k, v in scores.items()})
            logging.info("evaluation at step %d: %s", step, _format(scores))
        if step % config.checkpoint.every_steps == 0 or is_last:
            guard.check(_checkpoint_name(checkpointer))
            checkpointer.save(step, state)
    return state


# Warn when the inner solver stops at maxiter on more than this fraction of
# an episode's tasks.
UNCONVERGED_WARNING = 0.1
# Warn of a collapse when the heads use fewer than this fraction of the
# factors the tasks' labels depend on, per task on average.
COLLAPSE_FRACTION = 0.6


def _solver_warnings(config, values: dict[str, float]) -> list[str]:
    fraction = values.get("inner_unconverged", 0.0)
    if fraction <= UNCONVERGED_WARNING:
        return []
    return [
        f"the inner solver stopped at inner.maxiter={config.inner.maxiter} on "
        f"{fraction:.0%} of the tasks (optimality error "
        f"{values['inner_optimality_error']:.2g}, inner.tol={config.inner.tol}): "
        "the heads and their gradients are approximate; raise inner.maxiter."
    ]


def collapse_warnings(
    sampler: data.EpisodeSampler,
) -> Callable[[int, dict[str, float]], list[str]]:
    """Warnings when the heads use fewer features than the tasks need.

    On ground-truth data every task's true factors are known: a collapse (the
    sharing term merging factors into too few features) shows as heads that
    use fewer features than their labels depend on. Warns when the episode's
    distinct features are fewer than the factors its tasks depend on, or the
    features per task fall below COLLAPSE_FRACTION of the true factors per
    task.
    """

    def warnings_at(step: int, values: dict[str, float]) -> list[str]:
        support = sampler.draw(sampler.rng(step - 1)).tasks.support  # bool [T, K]
        factors_needed = int(np.any(support, axis=0).sum())
        factors_per_task = float(support.sum(axis=1).mean())
        distinct = values["distinct_features"]
        per_task = values["active_features"]
        if distinct >= factors_needed and per_task >= (
            COLLAPSE_FRACTION * factors_per_task
        ):
            return []
        return [
            f"possible collapse: the heads use {distinct:.0f} distinct features "
            f"({per_task:.2f} per task) for tasks that depend on "
            f"{factors_needed} factors ({factors_per_task:.2f} per task); if "
            "this persists, lower share.weight (now "
            f"{values.get('share_weight', 0.0):.3g}) or use share.variant='count'."
        ]

    return warnings_at


def _checkpoint_name(checkpointer: checkpoints.Checkpointer) -> str:
    step = checkpointer.latest_step()
    if step is None:
        return "none yet"
    return f"step {step} in {checkpointer.directory}"


def _representation_metrics(config, dataset, state, layout, protocol):
    """evaluate.representation_metrics of the state on uniform factors."""
    logging.info(
        "Evaluating at step %d on %d + %d uniformly sampled factors (DCI: %s%s)",
        int(state.step),
        protocol.num_train,
        protocol.num_test,
        protocol.dci_regressor,
        (
            f"; BetaVAE/FactorVAE on {protocol.intervention_num_train} + "
            f"{protocol.intervention_num_eval} batches"
            if protocol.intervention_num_train
            else ""
        ),
    )
    return evaluate.representation_metrics(
        state.params,
        state.apply_fn,
        dataset,
        protocol,
        config.seed,
        mesh=layout.mesh,
    )


def final_protocol(config: ml_collections.ConfigDict) -> evaluate.Protocol:
    """The final evaluation's protocol (disentanglement_lib's by default)."""
    return evaluate.Protocol(
        num_train=config.eval.final_num_train,
        num_test=config.eval.final_num_test,
        dci_regressor=config.eval.final_dci_regressor,
        intervention_num_train=config.eval.intervention_num_train,
        intervention_num_eval=config.eval.intervention_num_eval,
    )


def _final_evaluation(config, workdir, dataset, state, layout, writer) -> dict:
    """Metrics on uniform factors, support recovery, pictures (process 0).

    The fast metrics of the evaluations during training are computed once
    more (so their curves end at the last step), then the final protocol's,
    which replace the fast values of the metrics both compute.
    """
    fast = evaluate.Protocol.fast(config.eval.num_samples)
    scores = dict(_representation_metrics(config, dataset, state, layout, fast).scores)
    evaluation = _representation_metrics(
        config, dataset, state, layout, final_protocol(config)
    )
    scores.update(evaluation.scores)
    # A held-out episode with independent factors, from its own seed stream.
    held_out = make_episode_sampler(
        config, dataset, correlation=0.0, seed=config.seed + _EVAL_SEED_OFFSET
    )(0)
    usage = evaluate.heads_usage(
        state.params, state.apply_fn, held_out, bilevel_settings(config)
    )
    scores.update(
        evaluate.support_recovery_metrics(
            usage, held_out.tasks.support, evaluation.feature_to_factor
        )
    )
    step = int(state.step)
    final = {f"eval/{k}": v for k, v in scores.items()}
    final["step"] = step
    if not parallel.is_main_process():
        return final
    writer.write_scalars(step, {f"eval/{k}": v for k, v in scores.items()})
    _write_pictures(workdir, dataset, evaluation, usage, held_out, step)
    history = scalar_logs.read_history(workdir, step)
    final.update(
        {
            name: series[-1][1]
            for name, series in history.items()
            if name.startswith("train/")
        }
    )
    return final


def _write_pictures(workdir, dataset, evaluation, usage, held_out, step) -> None:
    """The PNG pictures of docs/method.md's evaluation, under pictures/."""
    directory = os.path.join(workdir, PICTURES_DIR)
    names = tuple(dataset.factor_names)
    plots.plot_activation_matrix(
        usage,
        os.path.join(directory, "activation_matrix.png"),
        true_support=held_out.tasks.support,
        factor_names=names,
        feature_to_factor=evaluation.feature_to_factor,
    )
    plots.plot_importance_matrix(
        evaluation.importance,
        os.path.join(directory, "dci_importance.png"),
        factor_names=names,
    )
    plots.plot_feature_vs_factor(
        evaluation.codes,
        evaluation.factor_values,
        evaluation.feature_to_factor,
        os.path.join(directory, "feature_vs_factor.png"),
        factor_names=names,
    )
    plots.plot_training_curves(
        scalar_logs.read_history(workdir, step),
        os.path.join(directory, "training_curves.png"),
    )
    logging.info("Pictures written to %s", directory)
