"""Sweeps: runs an experiment over ablations, seeds and a grid; tabulates.

    python -m sparse_shared_jax.sweep --experiment=experiments/shapes3d.py \\
        --workdir=workdirs/ablation_shapes3d --seeds=3 \\
        --output=results/ablation_shapes3d.md

Each run trains in its own workdir under --workdir with the experiment's
config and a config argument made of the ablation, ``seed=<seed>``, one cell
of the --grid and --argument; finished runs are not repeated, so an
interrupted sweep continues where it stopped. A grid sweeps config arguments:

    --grid=rho=0,0.5,0.9 --grid=share_weight=0,0.01,0.1

runs every combination (here 9) for every ablation and seed. The table has
one row per ablation and grid cell: mean ± standard deviation over seeds of
the columns --columns names: 'disentanglement' (the standard protocol's
metrics, the default), 'fast' (the same with random-forest DCI),
'transfer' (the transfer evaluation's test accuracies, for experiments
with a transfer section such as experiments/spurious_shapes3d.py) or
'features' (what the frozen encoders hold: the largest |correlation| of a
feature with the target and with the spurious attribute).
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Sequence

import numpy as np
from absl import app, flags, logging

from sparse_shared_jax import atomic_files, configs, scalar_logs, train
from sparse_shared_jax.configs import load_experiment

FLAGS = flags.FLAGS


def _define_flags() -> None:
    """Defines the flags; only when run as a program, so that importing this
    module next to another entry point does not define the same flag twice."""
    flags.DEFINE_string(
        "experiment", None, "Experiment config file (experiments/*.py)."
    )
    flags.DEFINE_string("workdir", None, "Directory holding one workdir per run.")
    flags.DEFINE_integer(
        "seeds", 3, "Number of seeds (first_seed .. first_seed + seeds - 1)."
    )
    flags.DEFINE_integer(
        "first_seed", 0, "The first seed; e.g. 1 adds seeds to runs made elsewhere."
    )
    flags.DEFINE_list("ablations", list(configs.ABLATIONS), "Ablations to run.")
    flags.DEFINE_string("argument", "", "Extra config argument, e.g. 'rho=0.9'.")
    flags.DEFINE_multi_string(
        "grid",
        [],
        "A config argument and its values, 'key=v1,v2,...'; repeat the flag for "
        "a grid over several (every combination runs).",
    )
    flags.DEFINE_enum(
        "columns",
        "disentanglement",
        list(COLUMN_SETS),
        "The table's columns: disentanglement, fast, transfer or features.",
    )
    flags.DEFINE_string(
        "output", None, "Markdown table path (default <workdir>/sweep.md)."
    )
    flags.DEFINE_bool(
        "table_only", False, "Tabulate the finished runs without training the others."
    )
    flags.DEFINE_bool(
        "reevaluate",
        False,
        "Run the final evaluation of finished runs again (after a change to "
        "what it computes, e.g. --argument=transfer.group_dro=True); their "
        "training is not repeated.",
    )
    flags.mark_flags_as_required(["experiment", "workdir"])


# (column title, metrics.json key)
COLUMNS = (
    ("DCI D", "eval/dci_disentanglement"),
    ("DCI C", "eval/dci_completeness"),
    ("DCI I", "eval/dci_informativeness_test"),
    ("MIG", "eval/mig"),
    ("MCC", "eval/mcc"),
    ("BetaVAE", "eval/beta_vae_score"),
    ("FactorVAE", "eval/factor_vae_score"),
    ("support F1", "eval/support_f1"),
    ("query acc.", "train/query_accuracy"),
    ("features/task", "train/active_features"),
    ("distinct features", "train/distinct_features"),
)
# The same with the fast evaluation's random-forest DCI (runs whose final
# evaluation used eval.final_dci_regressor='random_forest', e.g. notebooks).
FAST_COLUMNS = tuple(
    (f"{title} (RF)", key.replace("eval/dci_", "eval/rf_dci_"))
    if key.startswith("eval/dci_")
    else (title, key)
    for title, key in COLUMNS
)
# Test accuracy (average / worst group) of every head of a transfer evaluation.
TRANSFER_COLUMNS = (
    ("sparse head avg.", "transfer/sparse_head/test/average"),
    ("sparse head worst", "transfer/sparse_head/test/worst_group"),
    ("ERM avg.", "transfer/erm/test/average"),
    ("ERM worst", "transfer/erm/test/worst_group"),
    ("last layer (ERM) avg.", "transfer/erm_last_layer/test/average"),
    ("last layer (ERM) worst", "transfer/erm_last_layer/test/worst_group"),
    ("last layer (method) avg.", "transfer/method_last_layer/test/average"),
    ("last layer (method) worst", "transfer/method_last_layer/test/worst_group"),
    ("group DRO avg.", "transfer/group_dro/test/average"),
    ("group DRO worst", "transfer/group_dro/test/worst_group"),
    ("MCC", "eval/mcc"),
)
# What the frozen encoders hold: the largest |correlation| of any feature with
# the target and with the spurious attribute (test split).
FEATURE_COLUMNS = tuple(
    (f"{title} {target} |corr|", f"transfer/features/{encoder}/max_{key}")
    for title, encoder in (("method", "method"), ("ERM", "erm"))
    for target, key in (
        ("label", "label_correlation"),
        ("attribute", "attribute_correlation"),
    )
)
COLUMN_SETS = {
    "disentanglement": COLUMNS,
    "fast": FAST_COLUMNS,
    "transfer": TRANSFER_COLUMNS,
    "features": FEATURE_COLUMNS,
}


def grid_cells(grid: Sequence[str]) -> list[str]:
    """Every combination of a grid, as config arguments.

    Args:
      grid: entries 'key=v1,v2,...' (a config-argument key and its values).

    Returns:
      ['key1=a,key2=x', 'key1=a,key2=y', ...]; [''] for an empty grid.

    Raises:
      ValueError: naming an entry without '=' or without values.
    """
    axes = []
    for entry in grid:
        key, _, values = entry.partition("=")
        values = [value.strip() for value in values.split(",") if value.strip()]
        if not key.strip() or not values:
            raise ValueError(
                f"--grid={entry!r}: expected 'key=v1,v2,...', e.g. "
                "'share_weight=0,0.01,0.1'."
            )
        axes.append([f"{key.strip()}={value}" for value in values])
    return [",".join(cell) for cell in itertools.product(*axes)]


def run_name(ablation: str, cell: str, seed: int) -> str:
    """The workdir name of one run: '<ablation>[_<cell>]_seed<seed>'."""
    parts = [ablation, *cell.split(",")] if cell else [ablation]
    return "_".join([*parts, f"seed{seed}"])


def run_sweep(
    get_config,
    workdir: str,
    ablations,
    seeds: int,
    argument: str = "",
    train_missing: bool = True,
    grid: Sequence[str] = (),
    first_seed: int = 0,
    reevaluate: bool = False,
) -> dict[str, list[dict]]:
    """Trains every (ablation, grid cell, seed); returns row label -> final metrics.

    The row label is the ablation, followed by the grid cell if there is a
    grid ('full, rho=0.9,share_weight=0.1'). The seeds are first_seed ..
    first_seed + seeds - 1. With train_missing=False only the runs that
    already finished are read. With reevaluate=True finished runs run again:
    the loop trains nothing it has done, so only their final evaluation is
    repeated (with what the config adds, e.g. a new baseline).
    """
    results: dict[str, list[dict]] = {}
    cells = grid_cells(grid)
    for ablation, cell in itertools.product(ablations, cells):
        label = f"{ablation}, {cell}" if cell else ablation
        for seed in range(first_seed, first_seed + seeds):
            run_dir = os.path.join(workdir, run_name(ablation, cell, seed))
            metrics_path = os.path.join(run_dir, "metrics.json")
            if os.path.exists(metrics_path) and not reevaluate:
                logging.info("%s exists; not rerunning", metrics_path)
                with open(metrics_path) as f:
                    metrics = json.load(f)
            elif not train_missing and not os.path.exists(metrics_path):
                continue
            else:
                full_argument = ",".join(
                    part for part in (ablation, f"seed={seed}", cell, argument) if part
                )
                logging.info("Running %s in %s", full_argument, run_dir)
                start = time.perf_counter()
                metrics = train.train_and_evaluate(get_config(full_argument), run_dir)
                logging.info(
                    "%s took %.0fs", full_argument, time.perf_counter() - start
                )
            results.setdefault(label, []).append(metrics)
    return results


def markdown_table(
    results: dict[str, list[dict]], columns: Sequence[tuple[str, str]] = COLUMNS
) -> str:
    """Mean ± sample standard deviation over seeds, one row per run label.

    A row with a single seed shows the value alone; a metric the runs did not
    compute (e.g. BetaVAE with intervention points 0) shows '–'.

    Args:
      results: run label -> the final metrics of its seeds.
      columns: (title, metrics key) pairs; FAST_COLUMNS for runs evaluated
        with the random-forest DCI.
    """
    header = "| run | seeds | " + " | ".join(title for title, _ in columns) + " |"
    lines = [header, "|" + " --- |" * (len(columns) + 2)]
    for label, runs in results.items():
        cells = []
        for _, key in columns:
            values = np.array([run.get(key, np.nan) for run in runs], dtype=float)
            if np.isnan(values).any():
                cells.append("–")
                continue
            cell = f"{values.mean():.3f}"
            if len(values) > 1:
                cell += f" ± {values.std(ddof=1):.3f}"
            cells.append(cell)
        lines.append(f"| {label} | {len(runs)} | " + " | ".join(cells) + " |")
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
        grid=FLAGS.grid,
        first_seed=FLAGS.first_seed,
        reevaluate=FLAGS.reevaluate,
    )
    output = FLAGS.output or os.path.join(FLAGS.workdir, "sweep.md")
    command = (
        f"python -m sparse_shared_jax.sweep --experiment={FLAGS.experiment} "
        f"--ablations={','.join(FLAGS.ablations)} --seeds={FLAGS.seeds}"
        + (f" --first_seed={FLAGS.first_seed}" if FLAGS.first_seed else "")
        + "".join(f" --grid={entry}" for entry in FLAGS.grid)
        + (f" --argument={FLAGS.argument}" if FLAGS.argument else "")
        + (f" --columns={FLAGS.columns}" if FLAGS.columns != "disentanglement" else "")
    )
    table = markdown_table(results, COLUMN_SETS[FLAGS.columns])
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    atomic_files.write_text(output, f"Made by `{command}`.\n\n{table}")
    print(table)
    logging.info("Table written to %s", output)


if __name__ == "__main__":
    _define_flags()
    app.run(main)
