"""The benchmark trainer: meta-training on a real benchmark's labels, then transfer.

Runs a `configs.benchmark_config` experiment (experiments/celeba.py,
waterbirds.py, ...):

1. opens the benchmark's splits (`data.labelled.open_benchmark`), preparing
   it from the manual download if needed;
2. meta-trains the encoder with the bilevel method on episodes of tasks built
   from the training split's label fields (`data.meta_tasks`; by default the
   benchmark's meta labels, never the evaluation attribute unless the config
   says so), evaluated every config.eval_every_steps on tasks drawn from the
   validation split (meta-validation query accuracy);
3. evaluates transfer on the frozen encoder (`transfer.evaluate_transfer`:
   the sparse target head, last-layer retraining, and the ERM baseline of
   `trainers.erm` with last-layer retraining on its features) on every
   split (for domain-shift benchmarks such as Camelyon17, the test split's
   average accuracy is the out-of-distribution accuracy).

Writes `transfer.json` and `metrics.json` in the workdir, and the ERM run in
`<workdir>/erm`.
"""

from __future__ import annotations

import functools
import os

import jax
import ml_collections
import numpy as np
from absl import logging

from sparse_shared_jax import bilevel, input_pipeline, loop
from sparse_shared_jax.config_validation import (
    bilevel_settings,
    task_fields,
    validate_benchmark_config,
)
from sparse_shared_jax.data import benchmark_splits, labelled, meta_tasks
from sparse_shared_jax.trainers._bilevel import (
    TRANSFER_FILE,
    bilevel_job,
    transfer_scores,
)

validate = validate_benchmark_config


def make_task_sampler(
    config: ml_collections.ConfigDict, split: benchmark_splits.BenchmarkSplit, seed: int
) -> meta_tasks.MetaTaskSampler:
    """Episodes of the config's task fields drawn from `split`."""
    return meta_tasks.MetaTaskSampler(
        split.labels,
        task_fields(config),
        num_tasks=config.episode.num_tasks,
        support_size=config.episode.support_size,
        query_size=config.episode.query_size,
        num_classes=2
        if config.data.label_type == "binary"
        else config.data.num_classes,
        seed=seed,
    )


class SplitEpisodes:
    """The episodes of a MetaTaskSampler on a split (a `loop.EpisodeSource`):
    keys are the split's rows [T, n], read on demand."""

    def __init__(
        self,
        sampler: meta_tasks.MetaTaskSampler,
        split: benchmark_splits.BenchmarkSplit,
    ):
        self.sampler, self.split = sampler, split
        self.input_shape = labelled.example_inputs(split).shape[1:]

    def draw(self, step: int) -> loop.EpisodeKeys:
        draw = self.sampler(step)
        return loop.EpisodeKeys(
            draw.support_index, draw.support_y, draw.query_index, draw.query_y
        )

    def read_inputs(self, keys: np.ndarray) -> np.ndarray:
        return labelled.read_rows(self.split, keys)


def prepare(config: ml_collections.ConfigDict, workdir: str) -> loop.Job:
    """The pieces of a benchmark run (see loop.Job)."""
    splits = labelled.open_benchmark(config)
    train_split = splits[labelled.FIT_SPLIT]
    validation_split = splits[labelled.SELECTION_SPLIT]
    logging.info(
        "%s: %s examples; tasks from %s",
        config.data.name,
        {name: len(split) for name, split in splits.items()},
        task_fields(config),
    )
    source = SplitEpisodes(
        make_task_sampler(config, train_split, config.seed), train_split
    )
    validation_source = SplitEpisodes(
        make_task_sampler(
            config, validation_split, config.seed + loop.EVAL_SEED_OFFSET
        ),
        validation_split,
    )
    settings = bilevel_settings(config)
    meta_validation = functools.partial(
        _meta_validation,
        loss_fn=jax.jit(
            functools.partial(
                bilevel.outer_loss,
                apply_fn=loop.make_encoder(config).apply,
                settings=settings,
            )
        ),
        num_episodes=config.eval.num_episodes,
        source=validation_source,
    )
    return bilevel_job(
        config,
        settings,
        labelled.example_inputs(train_split),
        source,
        evaluate=meta_validation,
        finish=functools.partial(_finish, config, workdir, splits, meta_validation),
        summary=functools.partial(_summary, config, workdir),
    )


def _meta_validation(
    state, layout, *, loss_fn, num_episodes, source
) -> dict[str, float]:
    """Mean outer-loss diagnostics (query loss, accuracy, ...) over episodes
    0..num_episodes-1 of `source` (the same episodes every time).

    `loss_fn(params, episode=...)` is the jitted `bilevel.outer_loss`.
    """
    totals: dict[str, float] = {}
    for index in range(num_episodes):
        episode = input_pipeline.device_episode(source, index, layout.episode)
        _, aux = loss_fn(state.params, episode=episode)
        for name, value in aux.items():
            totals[name] = totals.get(name, 0.0) + float(value)
    return {name: value / num_episodes for name, value in totals.items()}


def _finish(config, workdir, splits, meta_validation, state, layout, writer) -> dict:
    """Meta-validation scores, the ERM baseline and the transfer evaluation."""
    step = int(state.step)
    scores = {
        f"meta_validation/{k}": v for k, v in meta_validation(state, layout).items()
    }
    writer.write_scalars(step, scores)
    spec = benchmark_splits.benchmark_spec(config.data.name)
    benchmark = labelled.LabelledBenchmark(
        splits, len(spec.label_names), spec.extra_scores
    )
    return {**scores, **transfer_scores(config, workdir, benchmark, state)}


def _summary(config, workdir, final: dict) -> str:
    alpha = final.get("transfer/sparse_head/alpha", float("nan"))
    return (
        f"Final (step {final['step']}): {config.data.name} sparse head (alpha "
        f"{alpha:g}, {final['transfer/sparse_head/num_active']} of "
        f"{config.model.num_features} features): test average "
        f"{final.get('transfer/sparse_head/test/average', float('nan')):.3f}, "
        "worst group "
        f"{final.get('transfer/sparse_head/test/worst_group', float('nan')):.3f}; "
        f"details in {os.path.join(workdir, TRANSFER_FILE)}"
    )
