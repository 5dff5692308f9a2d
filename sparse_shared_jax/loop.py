"""The experiment runner: one skeleton and one training loop for every trainer.

`run(config, workdir, trainer)` does what every experiment does, once:

    validate the config -> refuse a workdir of another experiment -> lay the
    devices out -> create the (sharded) state -> resume or start -> train
    (jitted step, logging, evaluation, checkpoints, NaN guard) -> the
    trainer's final evaluation -> metrics.json and a summary line.

A trainer (see `trainers/`) says what is trained on what: its `validate`
checks the config and its `prepare` returns a `Job`, the pieces the loop
needs. Batches come from the trainer, usually through an `EpisodeSource`,
a deterministic function of the step, so a resumed run sees the same data.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple, Protocol

import jax
import ml_collections
import numpy as np
import optax
from absl import logging
from flax.training import train_state
from jax.experimental import multihost_utils

from sparse_shared_jax import (
    atomic_files,
    checkpoints,
    models,
    parallel,
    scalar_logs,
)

# Seeds of held-out evaluation episodes: config.seed + EVAL_SEED_OFFSET.
EVAL_SEED_OFFSET = 1_000_003
# Warn when the inner solver stops at maxiter on more than this fraction of
# an episode's tasks.
UNCONVERGED_WARNING = 0.1
# Between log steps, a short progress line at least this often (seconds).
HEARTBEAT_SECONDS = 30.0
# A warning that persists over log steps is logged again only this many log
# steps later.
WARNING_REPEAT_LOG_STEPS = 10


class Trainer(Protocol):
    """A trainer module: `validate(config)` and `prepare(config, workdir) ->
    Job` (see trainers/__init__.py)."""

    def validate(self, config: ml_collections.ConfigDict) -> None: ...

    def prepare(self, config: ml_collections.ConfigDict, workdir: str) -> Job: ...


@dataclasses.dataclass(frozen=True)
class Job:
    """The pieces of one run that a trainer provides to the loop.

    Attributes:
      batch_sizes: (T, n_support, n_query) of a batch [T, n, ...], for the
        devices' layout (an ERM batch is one 'task' of n examples).
      init_state: () -> the initial TrainState (run under jit, straight into
        its shardings).
      train_step: pure (state, batch) -> (state, metrics with 'loss').
      batch_at: (step (0-based), sharding) -> the batch of that step as
        global arrays.
      summary: final metrics -> the run's last line.
      finish: (state, layout, writer) -> the final evaluation's metrics
        (every process computes them; process 0 writes them); the loop adds
        'step' and the last logged 'train/' scalars.
      evaluate: (state, layout) -> scores, every config.eval_every_steps.
      warnings_at: (step, the step's scalars) -> warnings to log.
      encoder_key: where the encoder's parameters sit in state.params (None:
        state.params are the encoder's), for pretrained weights.
      close: () -> None, called when the run ends however it ends (stops the
        input pipeline's workers).
    """

    batch_sizes: tuple[int, int, int]
    init_state: Callable[[], train_state.TrainState]
    train_step: Callable[[Any, Any], tuple[Any, dict]]
    batch_at: Callable[[int, Any], Any]
    summary: Callable[[dict], str]
    finish: (
        Callable[[Any, parallel.TrainingLayout, scalar_logs.ScalarWriter], dict] | None
    ) = None
    evaluate: Callable[[Any, parallel.TrainingLayout], dict[str, float]] | None = None
    warnings_at: Callable[[int, dict[str, float]], list[str]] | None = None
    encoder_key: str | None = None
    close: Callable[[], None] | None = None


# ----------------------------------------------------------------------------
# Episodes.


class EpisodeKeys(NamedTuple):
    """An episode before its inputs are read: keys and labels.

    A key identifies one example, e.g. its factors (ground-truth data) or
    its row of a split (benchmarks).
    """

    support_keys: np.ndarray  # [T, n_s, ...]
    support_y: np.ndarray  # [T, n_s]
    query_keys: np.ndarray  # [T, n_q, ...]
    query_y: np.ndarray  # [T, n_q]


class EpisodeSource(Protocol):
    """Where a run's episodes come from; deterministic in the step."""

    input_shape: tuple[int, ...]

    def draw(self, step: int) -> EpisodeKeys:
        """The keys and labels of episode `step` (cheap; every process draws
        the whole episode)."""

    def read_inputs(self, keys: np.ndarray) -> np.ndarray:
        """keys [t, m, ...] -> inputs [t, m, *input_shape] (a process reads
        only the block its devices hold)."""


# ----------------------------------------------------------------------------
# State.


def make_optimizer(outer: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """Adam or AdamW from config.outer (no decay on frozen statistics)."""
    if outer.optimizer == "adamw":
        return optax.adamw(
            outer.learning_rate,
            weight_decay=outer.weight_decay,
            mask=models.trainable_mask,
        )
    return optax.adam(outer.learning_rate)


def make_encoder(config: ml_collections.ConfigDict):
    """The config's encoder (config.model)."""
    return models.get_encoder(
        config.model.name, config.model.num_features, **config.model.options.to_dict()
    )


def resume_or_start(
    config, state, checkpointer: checkpoints.Checkpointer, encoder_key=None
):
    """The state of the latest checkpoint; else `state` with the config's
    pretrained encoder weights (model.pretrained_path), if any; else `state`.

    `encoder_key`: where the encoder's parameters sit in state.params (None:
    state.params are the encoder's).
    """
    start_step = checkpointer.latest_step() or 0
    if start_step:
        state = checkpointer.restore(start_step, state)
        logging.info("Resumed from checkpoint at step %d", start_step)
        return state
    if not config.model.pretrained_path:
        return state
    encoder_params = state.params if encoder_key is None else state.params[encoder_key]
    loaded = models.load_pretrained(
        config.model.pretrained_path, config.model.pretrained_format, encoder_params
    )
    logging.info(
        "Encoder initialised from %s (%s)",
        config.model.pretrained_path,
        config.model.pretrained_format,
    )
    # Keep each array's placement (replicated or sharded) of the fresh state.
    loaded = jax.device_put(loaded, jax.tree.map(lambda a: a.sharding, encoder_params))
    if encoder_key is None:
        return state.replace(params=loaded)
    return state.replace(params={**state.params, encoder_key: loaded})


def jit_train_step(train_step, layout: parallel.TrainingLayout, state_shardings):
    """A pure train step jitted over the layout's devices, state donated.

    Returns:
      step(state, batch) -> (state, metrics), metrics replicated scalars.
    """
    return jax.jit(
        train_step,
        in_shardings=(state_shardings, layout.episode),
        out_shardings=(state_shardings, parallel.replicated(layout.mesh)),
        donate_argnums=0,
    )


def layout_of(config: ml_collections.ConfigDict, job: Job) -> parallel.TrainingLayout:
    """The devices' layout of the job's batches and the config's parameters."""
    return parallel.TrainingLayout.create(
        *job.batch_sizes, config.parallel.param_sharding
    )


# ----------------------------------------------------------------------------
# The skeleton.


def run(config: ml_collections.ConfigDict, workdir: str, trainer: Trainer) -> dict:
    """Trains as `config` describes with `trainer`, resuming from `workdir`.

    Args:
      config: the experiment config.
      workdir: directory for everything the run writes; if it holds
        checkpoints of the same experiment, training resumes from the latest.
      trainer: the trainer module (see trainers/).

    Returns:
      The final metrics (also written to `workdir/metrics.json`).
    """
    trainer.validate(config)
    os.makedirs(workdir, exist_ok=True)
    checkpoints.check_workdir_config(workdir, config, write=False)
    job = trainer.prepare(config, workdir)
    # Recorded once the data agreed with the config, so that a config the
    # trainer refused can be fixed and rerun in the same workdir.
    if parallel.is_main_process():
        checkpoints.record_config(workdir, config)
    layout = layout_of(config, job)
    logging.info(
        "%d device(s) in %d process(es); mesh %s; parameters %s",
        jax.device_count(),
        jax.process_count(),
        dict(layout.mesh.shape),
        layout.param_sharding,
    )
    state, state_shardings = parallel.create_sharded(
        job.init_state, layout.mesh, layout.param_sharding
    )
    checkpointer = checkpoints.Checkpointer(workdir, config.checkpoint.max_to_keep)
    writer = scalar_logs.ScalarWriter(workdir, enabled=parallel.is_main_process())
    try:
        state = resume_or_start(config, state, checkpointer, job.encoder_key)
        step = int(state.step)
        writer.drop_after(step, evaluations_at_step=step >= config.num_train_steps)
        state = run_training_loop(
            config,
            state,
            jit_train_step(job.train_step, layout, state_shardings),
            functools.partial(job.batch_at, sharding=layout.episode),
            (lambda state, step: job.evaluate(state, layout)) if job.evaluate else None,
            checkpointer,
            writer,
            job.warnings_at,
        )
        final = job.finish(state, layout, writer) if job.finish else {}
        final["step"] = step = int(state.step)
        if parallel.is_main_process():
            history = scalar_logs.read_history(workdir, step)
            final.update(
                {
                    name: s[-1][1]
                    for name, s in history.items()
                    if name.startswith("train/")
                }
            )
    finally:
        if job.close:
            job.close()
        writer.close()
        checkpointer.close()
    if parallel.is_main_process():
        atomic_files.write_json(os.path.join(workdir, "metrics.json"), final)
        logging.info("Final metrics: %s", format_scalars(final))
        print(job.summary(final), flush=True)
    return final


def restore(
    config: ml_collections.ConfigDict,
    workdir: str,
    trainer: Trainer,
    step: int | None = None,
) -> tuple[train_state.TrainState, Job]:
    """The state of a run's checkpoint `step` (default: the latest), and its job.

    Raises:
      FileNotFoundError: if `workdir` holds no checkpoint (or not `step`).
      ValueError: if the checkpoint does not match the config's model.
    """
    directory = os.path.join(workdir, checkpoints.CHECKPOINT_DIR)
    if not os.path.isdir(directory):  # checked first: the Checkpointer creates it
        raise FileNotFoundError(
            f"No checkpoint in {directory}. Train first, e.g. "
            "train.train_and_evaluate(config, workdir)."
        )
    job = trainer.prepare(config, workdir)
    layout = layout_of(config, job)
    template, _ = parallel.create_sharded(
        job.init_state, layout.mesh, layout.param_sharding
    )
    checkpointer = checkpoints.Checkpointer(workdir, config.checkpoint.max_to_keep)
    try:
        available = checkpointer.all_steps()
        step = max(available, default=None) if step is None else step
        if step is None or step not in available:
            raise FileNotFoundError(
                f"No checkpoint {'' if step is None else step} in {directory}; "
                f"it holds steps {sorted(available)}."
            )
        return checkpointer.restore(step, template), job
    finally:
        checkpointer.close()


# ----------------------------------------------------------------------------
# The loop.


class NonFiniteLossError(FloatingPointError):
    """The outer loss became NaN or infinite."""


class TrainingInterruptedError(Exception):
    """Training stopped at SIGINT or SIGTERM, after saving a checkpoint.

    Attributes:
      signal_number: the signal (signal.SIGINT or signal.SIGTERM).
      step: the step of the saved checkpoint.
    """

    def __init__(self, signal_number: int, step: int, directory: str):
        self.signal_number, self.step = signal_number, step
        super().__init__(
            f"Stopped by {signal.Signals(signal_number).name} after step {step}; "
            f"checkpoint saved in {directory}."
        )


class _StopSignals:
    """While active, SIGINT and SIGTERM ask the loop to stop after the current
    step (it saves a checkpoint first); a second signal stops at once.

    Cluster schedulers and TPU VMs preempt with SIGTERM; Ctrl-C is SIGINT.
    Only the main thread can install handlers: elsewhere this does nothing.
    """

    def __init__(self):
        self.received: int | None = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc_info):
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous.clear()

    def _handle(self, number, frame):
        self.received = number
        for other, handler in self._previous.items():  # the next one stops at once
            signal.signal(other, handler)
        logging.warning(
            "%s: stopping after the current step and saving a checkpoint "
            "(send it again to stop at once)",
            signal.Signals(number).name,
        )

    def requested(self) -> int | None:
        """The signal that asked for a stop, in any process (a collective
        in a multi-process job, so that all stop at the same step)."""
        if jax.process_count() == 1:
            return self.received
        everyone = multihost_utils.process_allgather(
            np.asarray(self.received or 0, np.int32)
        )
        return int(np.max(everyone)) or None


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


def format_scalars(metrics: dict) -> str:
    """'name=value ...' sorted by name, numbers to 4 significant digits."""

    def text(value):
        try:
            return f"{value:.4g}"
        except (TypeError, ValueError):
            return str(value)

    return " ".join(f"{name}={text(value)}" for name, value in sorted(metrics.items()))


def solver_warnings(config, values: dict[str, float]) -> list[str]:
    """A warning when the inner solver stopped at maxiter on too many tasks."""
    fraction = values.get("inner_unconverged", 0.0)
    if fraction <= UNCONVERGED_WARNING:
        return []
    return [
        f"the inner solver stopped at inner.maxiter={config.inner.maxiter} on "
        f"{fraction:.0%} of the tasks (optimality error "
        f"{values['inner_optimality_error']:.2g}, inner.tol={config.inner.tol}): "
        "the heads and their gradients are approximate; raise inner.maxiter."
    ]


class _WarningThrottle:
    """Logs a persisting warning once every WARNING_REPEAT_LOG_STEPS log steps.

    Warnings come from sources (the solver, the trainer); a source's warning
    is logged when it first appears, then again only every
    WARNING_REPEAT_LOG_STEPS log steps while it persists, and at once when it
    reappears after a log step without it.
    """

    def __init__(self):
        self._log_steps = 0
        self._last_logged: dict[str, int] = {}  # source -> log step index

    def log(self, step: int, warnings_by_source: dict[str, list[str]]) -> None:
        self._log_steps += 1
        for source, warnings in warnings_by_source.items():
            if not warnings:
                self._last_logged.pop(source, None)
                continue
            last = self._last_logged.get(source)
            if last is not None and self._log_steps - last < WARNING_REPEAT_LOG_STEPS:
                continue
            self._last_logged[source] = self._log_steps
            for warning in warnings:
                logging.warning(
                    "step %d: %s (while this persists, it is repeated every %d "
                    "log steps)",
                    step,
                    warning,
                    WARNING_REPEAT_LOG_STEPS,
                )


def run_training_loop(
    config: ml_collections.ConfigDict,
    state,
    train_step,
    batch_at: Callable[[int], Any],
    evaluate_at: Callable[[Any, int], dict[str, float]] | None,
    checkpointer: checkpoints.Checkpointer,
    writer: scalar_logs.ScalarWriter,
    warnings_at: Callable[[int, dict[str, float]], list[str]] | None = None,
):
    """The loop from the state's step to config.num_train_steps.

    Logs progress and scalars every config.log_every_steps, evaluates every
    config.eval_every_steps (not at the last step: the trainer's final
    evaluation covers it), checkpoints every config.checkpoint.every_steps and
    at the end, and stops with `NonFiniteLossError` at a NaN or infinite loss.
    At each log step it warns when the inner solver stopped at maxiter on
    more than `UNCONVERGED_WARNING` of the tasks, and logs `warnings_at`'s
    warnings (a persisting warning every WARNING_REPEAT_LOG_STEPS log steps).

    Args:
      config: the run's config (steps and intervals).
      state: the training state to continue from.
      train_step: the jitted step(state, batch) -> (state, metrics).
      batch_at: step (0-based) -> the device batch of that step.
      evaluate_at: (state, step) -> scores, logged under 'eval/'; or None.
      checkpointer: saves the state.
      writer: logs the scalars.
      warnings_at: (step, the step's 'train/' scalars without the prefix) ->
        warnings to log.

    Returns:
      The state after config.num_train_steps steps.
    """
    guard = _LossGuard()
    throttle = _WarningThrottle()
    start_step = int(state.step)
    total = config.num_train_steps
    if start_step >= total:
        logging.info(
            "Training finished at step %d already (num_train_steps %d); only "
            "the final evaluation runs",
            start_step,
            total,
        )
        return state
    logging.info("Training steps %d..%d of %d", start_step + 1, total, total)
    logging.info("Compiling the training step (the first step takes longest)")
    start_time = time.perf_counter()
    rate_start = (start_step, start_time)  # steps/s counts from after compiling
    last_line = start_time
    previous_loss = None
    with _StopSignals() as stop_signals:
        for step in range(start_step + 1, total + 1):
            state, step_metrics = train_step(state, batch_at(step - 1))
            guard.add(step, step_metrics["loss"])
            # At most two steps in flight: the host prepares the next episode
            # while the device computes this step, but dispatch never runs
            # ahead of the device (a backlog would make the steps/s and ETA
            # lines report dispatches and delay a stop request by minutes).
            if previous_loss is not None:
                jax.block_until_ready(previous_loss)
            previous_loss = step_metrics["loss"]
            if step == start_step + 1:
                jax.block_until_ready(step_metrics)
                rate_start = (step, time.perf_counter())
                last_line = rate_start[1]
                logging.info(
                    "step %d took %.1fs (compiling the training step)",
                    step,
                    rate_start[1] - start_time,
                )
            is_last = step == total

            if step % config.log_every_steps == 0 or is_last:
                guard.check(_checkpoint_name(checkpointer))
                values = {k: float(v) for k, v in step_metrics.items()}
                writer.write_scalars(step, {f"train/{k}": v for k, v in values.items()})
                logging.info(
                    "step %d/%d (%.2f steps/s, ETA %.0fs): %s",
                    step,
                    total,
                    *_rate_and_eta(step, total, rate_start),
                    format_scalars(step_metrics),
                )
                last_line = time.perf_counter()
                throttle.log(
                    step,
                    {
                        "solver": solver_warnings(config, values),
                        "trainer": warnings_at(step, values) if warnings_at else [],
                    },
                )
            elif time.perf_counter() - last_line > HEARTBEAT_SECONDS:
                logging.info(
                    "step %d/%d (%.2f steps/s, ETA %.0fs); scalars every %d steps",
                    step,
                    total,
                    *_rate_and_eta(step, total, rate_start),
                    config.log_every_steps,
                )
                last_line = time.perf_counter()
            if evaluate_at and step % config.eval_every_steps == 0 and not is_last:
                scores = evaluate_at(state, step)
                writer.write_scalars(step, {f"eval/{k}": v for k, v in scores.items()})
                logging.info("evaluation at step %d: %s", step, format_scalars(scores))
                last_line = time.perf_counter()
            received = stop_signals.requested()
            if step % config.checkpoint.every_steps == 0 or is_last or received:
                guard.check(_checkpoint_name(checkpointer))
                checkpointer.save(step, state)
            if received and not is_last:
                raise TrainingInterruptedError(received, step, checkpointer.directory)
    return state


def _rate_and_eta(step: int, total: int, rate_start: tuple[int, float]):
    """(steps/s, seconds left) since `rate_start` (step, time); nan before
    any step after compiling has run."""
    timed_steps = step - rate_start[0]
    if not timed_steps:
        return float("nan"), float("nan")
    rate = timed_steps / (time.perf_counter() - rate_start[1] or 1e-9)
    return rate, (total - step) / rate


def _checkpoint_name(checkpointer: checkpoints.Checkpointer) -> str:
    step = checkpointer.latest_step()
    if step is None:
        return "none yet"
    return f"step {step} in {checkpointer.directory}"
