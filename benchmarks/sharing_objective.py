"""The outer objective of finished runs, term by term, on held-out episodes.

For each workdir (a ground-truth run), restores its encoder and evaluates,
on episodes of its training distribution that training never drew (their
own seed stream), the mean query loss and accuracy of the solved heads, the
sharing regulariser of a chosen variant (default: the 'count' term), the
features used, and the objective query loss + weight * sharing. Comparing
two runs tells whether the sharing term's objective prefers one
representation over the other, e.g. a collapsed run over a disentangled one:

    python benchmarks/sharing_objective.py --weight=0.03 \
        --workdirs=workdirs/sparse_only_rho09,workdirs/full_rho09

Prints a Markdown table (mean over --episodes episodes, with the standard
error).
"""

from __future__ import annotations

import dataclasses
import os

import jax
import numpy as np
from absl import app, flags

from sparse_shared_jax import bilevel, checkpoints, data, loop, trained_encoder
from sparse_shared_jax.config_validation import bilevel_settings
from sparse_shared_jax.trainers import ground_truth

FLAGS = flags.FLAGS
flags.DEFINE_list("workdirs", None, "Finished ground-truth runs.")
flags.DEFINE_integer("episodes", 50, "Held-out episodes per run.")
flags.DEFINE_string("variant", "count", "The sharing variant to evaluate.")
flags.DEFINE_float("weight", 0.03, "The sharing weight of the objective.")
flags.mark_flags_as_required(["workdirs"])

# Held-out episodes: a seed stream training never uses.
_SEED_OFFSET = 2 * loop.EVAL_SEED_OFFSET


def evaluate_run(workdir: str) -> dict[str, np.ndarray]:
    """Per-episode query loss, accuracy, sharing and features used of a run."""
    config = checkpoints.read_config(workdir)
    encoder = trained_encoder.load_trained_encoder(config, workdir)
    dataset = data.ground_truth(config.data.name, **config.data.options.to_dict())
    sampler = ground_truth.make_episode_sampler(
        config, dataset, seed=config.seed + _SEED_OFFSET
    )
    settings = dataclasses.replace(
        bilevel_settings(config), share_variant=FLAGS.variant, share_weight=0.0
    )
    loss_fn = jax.jit(
        lambda params, episode: bilevel.outer_loss(
            params, encoder.apply_fn, episode, settings
        )[1]
    )
    rows = []
    for index in range(FLAGS.episodes):
        episode = bilevel.EpisodeBatch.from_episode(sampler(index))
        aux = loss_fn(encoder.params, episode)
        rows.append(
            [
                float(aux[name])
                for name in (
                    "query_loss",
                    "query_accuracy",
                    "sharing",
                    "active_features",
                    "distinct_features",
                )
            ]
        )
    return np.asarray(rows)  # [episodes, 5]


def main(argv):
    del argv
    header = (
        f"| run | query loss | query accuracy | sharing ({FLAGS.variant}) | "
        "features/task | distinct features | query loss + "
        f"{FLAGS.weight:g} x sharing |"
    )
    lines = [header, "|" + " --- |" * 7]
    for workdir in FLAGS.workdirs:
        rows = evaluate_run(workdir)
        objective = rows[:, 0] + FLAGS.weight * rows[:, 2]

        def cell(values):
            error = values.std(ddof=1) / np.sqrt(len(values))
            return f"{values.mean():.4f} ± {error:.4f}"

        cells = [cell(rows[:, i]) for i in range(5)] + [cell(objective)]
        lines.append(
            f"| {os.path.basename(workdir.rstrip('/'))} | " + " | ".join(cells) + " |"
        )
        print(lines[-1], flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    app.run(main)
