"""Runs the ablations of design/method.md over seeds and writes a table.

    python -m sparse_shared_jax.ablation --experiment=experiments/shapes3d.py \
        --workdir=workdirs/ablation_shapes3d --seeds=3 \
        --output=results/ablation_shapes3d.md

Each (ablation, seed) run trains in `<workdir>/<ablation>_seed<seed>` with
the experiment's config and the argument ``<ablation>,seed=<seed>`` (plus
``--argument`` if given); finished runs are not repeated, so an interrupted
sweep continues where it stopped. The table gives mean ± standard deviation
over seeds.
"""

from __future__ import annotations

import json
import os
import time

import numpy as np
from absl import app, flags, logging

from sparse_shared_jax import configs, scalar_logs, train
from sparse_shared_jax.configs import load_experiment

FLAGS = flags.FLAGS


def _define_flags() -> None:
    """Defines the flags; only when run as a program, so that importing this
    module next to another entry point does not define the same flag twice."""
    flags.DEFINE_string(
        "experiment", None, "Experiment config file (experiments/*.py)."
    )
    flags.DEFINE_string("workdir", None, "Directory holding one workdir per run.")
    flags.DEFINE_integer("seeds", 3, "Number of seeds (0 .. seeds-1).")
    flags.DEFINE_list("ablations", list(configs.ABLATIONS), "Ablations to run.")
    flags.DEFINE_string("argument", "", "Extra config argument, e.g. 'rho=0.9'.")
    flags.DEFINE_string(
        "output", None, "Markdown table path (default <workdir>/ablation.md)."
    )
    flags.DEFINE_bool(
        "table_only", False, "Tabulate the finished runs without training the others."
    )
    flags.mark_flags_as_required(["experiment", "workdir"])


# (column title, metrics.json key)
COLUMNS = (
    ("DCI D", "eval/dci_disentanglement"),
    ("DCI C", "eval/dci_completeness"),
    ("DCI I", "eval/dci_informativeness_test"),
    ("MIG", "eval/mig"),
    ("MCC", "eval/mcc"),
    ("support F1", "eval/support_f1"),
    ("query acc.", "train/query_accuracy"),
    ("features/task", "train/active_features"),
    ("distinct features", "train/distinct_features"),
)


def run_sweep(
    get_config,
    workdir: str,
    ablations,
    seeds: int,
    argument: str = "",
    train_missing: bool = True,
) -> dict[str, list[dict]]:
    """Trains every (ablation, seed); returns ablation -> list of final metrics.

    With train_missing=False only the runs that already finished are read.
    """
    results: dict[str, list[dict]] = {}
    for ablation in ablations:
        for seed in range(seeds):
            run_dir = os.path.join(workdir, f"{ablation}_seed{seed}")
            metrics_path = os.path.join(run_dir, "metrics.json")
            if os.path.exists(metrics_path):
                logging.info("%s exists; not rerunning", metrics_path)
                with open(metrics_path) as f:
                    metrics = json.load(f)
            elif not train_missing:
                continue
            else:
                full_argument = ",".join(
                    part for part in (ablation, f"seed={seed}", argument) if part
                )
                logging.info("Running %s in %s", full_argument, run_dir)
                start = time.perf_counter()
                metrics = train.train_and_evaluate(get_config(full_argument), run_dir)
                logging.info(
                    "%s took %.0fs", full_argument, time.perf_counter() - start
                )
            results.setdefault(ablation, []).append(metrics)
    return results


def markdown_table(results: dict[str, list[dict]]) -> str:
    """Mean ± sample standard deviation over seeds, one row per ablation.

    A row with a single seed shows the value alone.
    """
    header = "| ablation | seeds | " + " | ".join(title for title, _ in COLUMNS) + " |"
    lines = [header, "|" + " --- |" * (len(COLUMNS) + 2)]
    for ablation, runs in results.items():
        cells = []
        for _, key in COLUMNS:
            values = np.array([run[key] for run in runs], dtype=float)
            cell = f"{values.mean():.3f}"
            if len(values) > 1:
                cell += f" ± {values.std(ddof=1):.3f}"
            cells.append(cell)
        lines.append(f"| {ablation} | {len(runs)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    scalar_logs.quiet_library_logs()
    get_config = load_experiment(FLAGS.experiment)
    results = run_sweep(
        get_config,
        FLAGS.workdir,
        FLAGS.ablations,
        FLAGS.seeds,
        FLAGS.argument,
        train_missing=not FLAGS.table_only,
    )
    output = FLAGS.output or os.path.join(FLAGS.workdir, "ablation.md")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    command = (
        f"python -m sparse_shared_jax.ablation --experiment={FLAGS.experiment} "
        f"--seeds={FLAGS.seeds}"
        + (f" --argument={FLAGS.argument}" if FLAGS.argument else "")
    )
    with open(output, "w") as f:
        f.write(f"Made by `{command}`.\n\n" + markdown_table(results))
    print(markdown_table(results))
    logging.info("Table written to %s", output)


if __name__ == "__main__":
    _define_flags()
    app.run(main)
