"""The ground-truth trainer: the bilevel method on data with known factors.

Episodes of tasks on the factors of a ground-truth dataset (`data.
ground_truth`, correlated as config.data.correlation says), the jitted
bilevel step, fast disentanglement metrics every config.eval_every_steps,
and a final evaluation on uniformly sampled factors with the standard
protocol (evaluate.Protocol), support recovery and the pictures. A config
with a `transfer` section (experiments/spurious_shapes3d.py) then evaluates
transfer on the dataset's labelled splits, with an ERM baseline trained by
`trainers.erm`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable

import ml_collections
import numpy as np
from absl import logging

from sparse_shared_jax import (
    data,
    evaluate,
    loop,
    parallel,
    plots,
    scalar_logs,
)
from sparse_shared_jax.config_validation import bilevel_settings, validate_config
from sparse_shared_jax.data import labelled
from sparse_shared_jax.trainers._bilevel import bilevel_job, transfer_scores

PICTURES_DIR = "pictures"
# Warn of a collapse when the heads use fewer than this fraction of the
# factors the tasks' labels depend on, per task on average.
COLLAPSE_FRACTION = 0.6

validate = validate_config


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


class FactorEpisodes:
    """The episodes of an EpisodeSampler (a `loop.EpisodeSource`): keys are
    factors [T, n, K], rendered on demand."""

    def __init__(self, sampler: data.EpisodeSampler):
        self.sampler = sampler
        self.input_shape = tuple(sampler.dataset.observation_shape)

    def draw(self, step: int) -> loop.EpisodeKeys:
        draw = self.sampler.draw(self.sampler.rng(step))
        return loop.EpisodeKeys(
            draw.support_factors, draw.support_y, draw.query_factors, draw.query_y
        )

    def read_inputs(self, keys: np.ndarray) -> np.ndarray:
        return self.sampler.render(keys)


def example_input(dataset: data.GroundTruthDataset) -> np.ndarray:
    """[1, *observation_shape] zeros of the observations' dtype, to
    initialise an encoder on."""
    return np.zeros((1, *dataset.observation_shape), dataset.observation_dtype)


def prepare(config: ml_collections.ConfigDict, workdir: str) -> loop.Job:
    """The pieces of a ground-truth run (see loop.Job)."""
    settings = bilevel_settings(config)
    dataset = data.ground_truth(config.data.name, **config.data.options.to_dict())
    dataset.check_encoder(config.model)
    sampler = make_episode_sampler(config, dataset)
    fast = evaluate.Protocol.fast(config.eval.num_samples)
    return bilevel_job(
        config,
        settings,
        example_input(dataset),
        FactorEpisodes(sampler),
        evaluate=lambda state, layout: (
            _scores(config, dataset, state, layout, fast).scores
        ),
        warnings_at=collapse_warnings(sampler, config.share.variant),
        finish=functools.partial(_finish, config, workdir, dataset, settings),
        summary=functools.partial(
            final_summary, config, os.path.join(workdir, PICTURES_DIR)
        ),
    )


def collapse_warnings(
    sampler: data.EpisodeSampler, share_variant: str
) -> Callable[[int, dict[str, float]], list[str]]:
    """Warnings when the heads use fewer features than the tasks need.

    On ground-truth data every task's true factors are known: a collapse (the
    sharing term merging factors into too few features) shows as heads that
    use fewer features than their labels depend on. Warns when the episode's
    distinct features are fewer than the factors its tasks depend on, or the
    features per task fall below COLLAPSE_FRACTION of the true factors per
    task. The advice names share.variant='count' unless `share_variant`
    (the run's config.share.variant) already is.
    """
    advice = "" if share_variant == "count" else " or use share.variant='count'"

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
            f"{values.get('share_weight', 0.0):.3g}){advice}."
        ]

    return warnings_at


def final_protocol(config: ml_collections.ConfigDict) -> evaluate.Protocol:
    """The final evaluation's protocol (disentanglement_lib's by default)."""
    return evaluate.Protocol(
        num_train=config.eval.final_num_train,
        num_test=config.eval.final_num_test,
        dci_regressor=config.eval.final_dci_regressor,
        intervention_num_train=config.eval.intervention_num_train,
        intervention_num_eval=config.eval.intervention_num_eval,
    )


def final_summary(config, pictures_dir: str, final: dict) -> str:
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
    line += f" support F1={final['eval/support_f1']:.3f}"
    if "transfer/sparse_head/test/worst_group" in final:
        line += (
            " transfer (test average / worst group): sparse head "
            f"{final['transfer/sparse_head/test/average']:.3f}/"
            f"{final['transfer/sparse_head/test/worst_group']:.3f}"
        )
        if "transfer/erm/test/worst_group" in final:
            line += (
                f", ERM {final['transfer/erm/test/average']:.3f}/"
                f"{final['transfer/erm/test/worst_group']:.3f}"
            )
    return line + f"; pictures in {pictures_dir}"


def _scores(
    config, dataset, state, layout, protocol
) -> evaluate.RepresentationEvaluation:
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


def _finish(config, workdir, dataset, settings, state, layout, writer) -> dict:
    """Metrics on uniform factors, support recovery, pictures, transfer.

    The fast metrics of the evaluations during training are computed once
    more (so their curves end at the last step), then the final protocol's,
    which replace the fast values of the metrics both compute.
    """
    fast = evaluate.Protocol.fast(config.eval.num_samples)
    scores = dict(_scores(config, dataset, state, layout, fast).scores)
    evaluation = _scores(config, dataset, state, layout, final_protocol(config))
    scores.update(evaluation.scores)
    # A held-out episode with independent factors, from its own seed stream.
    held_out = make_episode_sampler(
        config, dataset, correlation=0.0, seed=config.seed + loop.EVAL_SEED_OFFSET
    )(0)
    usage = evaluate.heads_usage(state.params, state.apply_fn, held_out, settings)
    scores.update(
        evaluate.support_recovery_metrics(
            usage, held_out.tasks.support, evaluation.feature_to_factor
        )
    )
    step = int(state.step)
    final = {f"eval/{k}": v for k, v in scores.items()}
    if parallel.is_main_process():
        writer.write_scalars(step, final)
        _write_pictures(config, workdir, dataset, evaluation, usage, held_out, step)
    if "transfer" in config:  # the dataset's labelled splits (config.transfer)
        benchmark = labelled.open_labelled_benchmark(config)
        final.update(transfer_scores(config, workdir, benchmark, state))
    return final


def _write_pictures(
    config, workdir, dataset, evaluation, usage, held_out, step
) -> None:
    """The PNG pictures of docs/method.md's evaluation, under pictures/."""
    directory = os.path.join(workdir, PICTURES_DIR)
    names = tuple(dataset.factor_names)
    plots.plot_activation_matrix(
        usage,
        os.path.join(directory, "activation_matrix.png"),
        true_support=held_out.tasks.support,
        factor_names=names,
        feature_to_factor=evaluation.feature_to_factor,
        title=(
            "Features each task's head uses, on a held-out episode of "
            f"{len(usage)} new tasks (independent factors)"
        ),
    )
    protocol = final_protocol(config)
    dci = evaluate.DCI_PREFIXES[protocol.dci_regressor]
    plots.plot_importance_matrix(
        evaluation.importance,
        os.path.join(directory, "dci_importance.png"),
        factor_names=names,
        feature_to_factor=evaluation.feature_to_factor,
        title=(
            f"DCI importance ({protocol.dci_regressor}): disentanglement "
            f"{evaluation.scores[dci + '_disentanglement']:.2f}, completeness "
            f"{evaluation.scores[dci + '_completeness']:.2f}"
        ),
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
