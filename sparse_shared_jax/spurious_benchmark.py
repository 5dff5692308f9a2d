"""The generated spurious-correlation benchmark: full method vs ERM vs retraining.

    python -m sparse_shared_jax.spurious_benchmark \
        --workdir=workdirs/spurious_shapes3d --seeds=0,1,2 \
        --output=results/spurious_shapes3d.md

For every seed, in `<workdir>`:

* ``method_seed<s>/``: the full method meta-trained by
  `train.train_and_evaluate` with experiments/spurious_shapes3d.py
  (argument ``seed=<s>``), then ``transfer.json``: a sparse head for the
  target on its frozen encoder (`transfer.select_sparse_head`);
* ``erm_seed<s>/``: ERM (`transfer.train_erm`) with its parameters in
  ``params.msgpack``, its test scores in ``erm.json`` and those of
  last-layer retraining on its features in ``last_layer.json``.

Finished pieces are read back instead of recomputed, so an interrupted run
continues where it stopped. The Markdown table gives average and
worst-group test accuracy, mean ± standard deviation over seeds.
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections.abc import Callable, Sequence

import ml_collections
import numpy as np
from absl import app, flags, logging

from sparse_shared_jax import (
    atomic_files,
    data,
    models,
    scalar_logs,
    train,
    trained_encoder,
    transfer,
)
from sparse_shared_jax.configs import load_experiment
from sparse_shared_jax.data import spurious

EXPERIMENT = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
    "experiments",
    "spurious_shapes3d.py",
)
METHODS = (
    ("full method (sparse head, frozen encoder)", "method"),
    ("ERM", "erm"),
    ("last-layer retraining on ERM features", "last_layer"),
)

FLAGS = flags.FLAGS


def _define_flags() -> None:
    """Defines the flags; only when run as a program, so that importing this
    module next to another entry point does not define the same flag twice."""
    flags.DEFINE_string(
        "workdir", None, "Directory holding every run of the benchmark."
    )
    flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds, e.g. 0,1,2.")
    flags.DEFINE_string("experiment", EXPERIMENT, "Experiment config file.")
    flags.DEFINE_string(
        "output", None, "Markdown table path (default <workdir>/spurious_shapes3d.md)."
    )
    flags.mark_flags_as_required(["workdir"])


def _progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _read_json(path: str) -> dict | None:
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


@functools.lru_cache(maxsize=2)
def _splits(options_json: str) -> dict[str, spurious.SpuriousSplit]:
    """The rendered splits of the dataset with these options (cached)."""
    dataset = data.ground_truth(spurious.DATASET_NAME, **json.loads(options_json))
    return {name: dataset.split(name) for name in spurious.SPLITS}


def benchmark_splits(config: ml_collections.ConfigDict) -> dict:
    """name -> SpuriousSplit of the config's dataset (must be spurious_shapes3d)."""
    if config.data.name != spurious.DATASET_NAME:
        raise ValueError(
            f"config.data.name must be {spurious.DATASET_NAME!r} for this "
            f"benchmark; got {config.data.name!r}."
        )
    return _splits(json.dumps(config.data.options.to_dict(), sort_keys=True))


def _encoder(config: ml_collections.ConfigDict):
    return models.get_encoder(
        config.model.name, config.model.num_features, **config.model.options.to_dict()
    )


def _test_record(test_scores: dict) -> dict:
    """JSON-ready test scores (group ids as strings, as JSON keys are)."""
    return {
        "average": test_scores["average"],
        "worst_group": test_scores["worst_group"],
        "per_group": {str(g): a for g, a in test_scores["per_group"].items()},
    }


def _scores_record(selection: transfer.HeadSelection, test_scores: dict) -> dict:
    """JSON-ready record of a selected head and its test scores."""
    return {
        **_test_record(test_scores),
        "alpha": selection.alpha,
        "num_active": selection.head.num_active,
        "weights": selection.head.weights.tolist(),
        "selection_worst_group": {
            str(a): s["worst_group"] for a, s in selection.scores.items()
        },
    }


def _feature_correlations(features: np.ndarray, split) -> dict:
    """|Pearson correlation| of every feature [n, k] with label and attribute."""

    def correlations(target):
        centred = features - features.mean(axis=0)
        target = target - target.mean()
        norms = np.linalg.norm(centred, axis=0) * np.linalg.norm(target) + 1e-12
        return np.abs(centred.T @ target / norms).tolist()  # [k]

    return {
        "feature_label_correlation": correlations(split.labels.astype(float)),
        "feature_attribute_correlation": correlations(split.attributes.astype(float)),
    }


def _last_layer_record(config, validation_features, validation, test_features, test):
    """Last-layer retraining on frozen features, scored on the test split."""
    selection = transfer.last_layer_retraining(
        validation_features,
        validation.labels,
        validation.groups,
        config.transfer.alphas,
        seed=config.seed,
        **_head_options(config),
    )
    return _scores_record(
        selection,
        transfer.group_scores(selection.head, test_features, test.labels, test.groups),
    )


def _head_options(config: ml_collections.ConfigDict) -> dict:
    return {"ridge": config.inner.ridge, "maxiter": config.transfer.head_maxiter}


def run_method(config: ml_collections.ConfigDict, run_dir: str) -> dict:
    """Meta-trains the full method (unless done) and evaluates its transfer."""
    path = os.path.join(run_dir, "transfer.json")
    cached = _read_json(path)
    if cached is not None:
        return cached
    if _read_json(os.path.join(run_dir, "metrics.json")) is None:
        _progress(f"meta-training the full method in {run_dir}")
        train.train_and_evaluate(config, run_dir)
    splits = benchmark_splits(config)
    encoder = trained_encoder.load_trained_encoder(config, run_dir)
    _progress("transfer evaluation of the meta-trained encoder")
    features = {
        name: transfer.encode_split(encoder.params, encoder.apply_fn, split)
        for name, split in splits.items()
    }
    selection = transfer.select_sparse_head(
        features["train"],
        splits["train"].labels,
        features["validation"],
        splits["validation"].labels,
        splits["validation"].groups,
        config.transfer.alphas,
        **_head_options(config),
    )
    test = splits["test"]
    record = _scores_record(
        selection,
        transfer.group_scores(
            selection.head, features["test"], test.labels, test.groups
        ),
    )
    metrics = _read_json(os.path.join(run_dir, "metrics.json"))
    record["mcc"] = metrics["eval/mcc"]
    record["dci_disentanglement"] = metrics["eval/dci_disentanglement"]
    record.update(_feature_correlations(features["test"], test))
    # Not a baseline: the same group-balanced refit on the method's features.
    record["last_layer"] = _last_layer_record(
        config, features["validation"], splits["validation"], features["test"], test
    )
    atomic_files.write_json(path, record)
    return record


def run_erm(config: ml_collections.ConfigDict, run_dir: str) -> tuple[dict, dict]:
    """Trains ERM (unless done); returns its and last-layer retraining's records."""
    erm_path = os.path.join(run_dir, "erm.json")
    last_layer_path = os.path.join(run_dir, "last_layer.json")
    erm_record, last_layer_record = _read_json(erm_path), _read_json(last_layer_path)
    if erm_record is not None and last_layer_record is not None:
        return erm_record, last_layer_record
    os.makedirs(run_dir, exist_ok=True)
    splits = benchmark_splits(config)
    encoder = _encoder(config)
    params_path = os.path.join(run_dir, "params.msgpack")
    if os.path.exists(params_path):
        model = transfer.load_erm(encoder, splits["train"].images[:1], params_path)
    else:
        _progress(f"training ERM in {run_dir}")
        model = transfer.train_erm(
            encoder,
            splits["train"].images,
            splits["train"].labels,
            num_steps=config.transfer.erm_steps,
            batch_size=config.transfer.erm_batch_size,
            learning_rate=config.transfer.erm_learning_rate,
            seed=config.seed,
        )
        transfer.save_erm(model, params_path)
    _progress("evaluating ERM and last-layer retraining")
    test, validation = splits["test"], splits["validation"]
    test_features = transfer.encode_split(model.params, model.apply_fn, test)
    erm_scores = transfer.group_scores(
        model.head, test_features, test.labels, test.groups
    )
    erm_record = _test_record(erm_scores)
    erm_record.update(_feature_correlations(test_features, test))
    last_layer_record = _last_layer_record(
        config,
        transfer.encode_split(model.params, model.apply_fn, validation),
        validation,
        test_features,
        test,
    )
    atomic_files.write_json(erm_path, erm_record)
    atomic_files.write_json(last_layer_path, last_layer_record)
    return erm_record, last_layer_record


def run_benchmark(
    get_config: Callable[[str], ml_collections.ConfigDict],
    workdir: str,
    seeds: Sequence[int],
) -> dict[str, list[dict]]:
    """Runs (or reads back) every method for every seed.

    Args:
      get_config: an experiment's get_config (takes the argument ``seed=<s>``).
      workdir: the directory of all runs.
      seeds: the seeds.

    Returns:
      method key ('method', 'erm', 'last_layer') -> one record per seed, each
      with 'average' and 'worst_group' test accuracy.
    """
    results: dict[str, list[dict]] = {key: [] for _, key in METHODS}
    for seed in seeds:
        config = get_config(f"seed={seed}")
        start = time.perf_counter()
        _progress(f"seed {seed}: full method")
        results["method"].append(
            run_method(config, os.path.join(workdir, f"method_seed{seed}"))
        )
        _progress(f"seed {seed}: ERM and last-layer retraining")
        erm, last_layer = run_erm(config, os.path.join(workdir, f"erm_seed{seed}"))
        results["erm"].append(erm)
        results["last_layer"].append(last_layer)
        _progress(
            f"seed {seed} done in {time.perf_counter() - start:.0f}s: worst-group "
            + ", ".join(
                f"{key} {results[key][-1]['worst_group']:.3f}" for _, key in METHODS
            )
        )
    return results


def _mean_std(values: Sequence[float]) -> str:
    values = np.asarray(values, dtype=float)
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{values.mean():.3f} ± {values.std(ddof=1):.3f}"


def _pair(record: dict) -> str:
    return f"{record['average']:.3f} / {record['worst_group']:.3f}"


def markdown_table(results: dict[str, list[dict]], seeds: Sequence[int]) -> str:
    """The summary table (mean ± sample std over seeds) and a per-seed table."""
    lines = [
        "| method | seeds | average accuracy | worst-group accuracy |",
        "| --- | --- | --- | --- |",
    ]
    rows = [(title, results[key]) for title, key in METHODS]
    rows.append(
        (
            "(extra) last-layer retraining on the full method's features",
            [run["last_layer"] for run in results["method"]],
        )
    )
    for title, runs in rows:
        lines.append(
            f"| {title} | {len(runs)} | {_mean_std([r['average'] for r in runs])} | "
            f"{_mean_std([r['worst_group'] for r in runs])} |"
        )
    lines += [
        "",
        "Per seed (test accuracy average / worst group; alpha: the chosen "
        "penalty, features: non-zero head weights of k):",
        "",
        "| seed | full method | alpha, features | MCC | ERM | last-layer "
        "retraining | alpha, features | (extra) retraining on the method's "
        "features |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for index, seed in enumerate(seeds):
        method, erm, last = (results[key][index] for _, key in METHODS)
        lines.append(
            f"| {seed} | {_pair(method)} | {method['alpha']:g}, "
            f"{method['num_active']} | {method['mcc']:.3f} | {_pair(erm)} | "
            f"{_pair(last)} | {last['alpha']:g}, {last['num_active']} | "
            f"{_pair(method['last_layer'])} |"
        )
    return "\n".join(lines) + "\n"


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    scalar_logs.quiet_library_logs()
    seeds = [int(seed) for seed in FLAGS.seeds]
    results = run_benchmark(load_experiment(FLAGS.experiment), FLAGS.workdir, seeds)
    output = FLAGS.output or os.path.join(FLAGS.workdir, "spurious_shapes3d.md")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    command = (
        f"python -m sparse_shared_jax.spurious_benchmark --workdir={FLAGS.workdir} "
        f"--seeds={','.join(map(str, seeds))}"
        + (
            f" --experiment={FLAGS.experiment}"
            if FLAGS.experiment != EXPERIMENT
            else ""
        )
        + (f" --output={FLAGS.output}" if FLAGS.output else "")
    )
    table = markdown_table(results, seeds)
    with open(output, "w") as f:
        f.write(f"Made by `{command}`.\n\n" + table)
    print(table)
    logging.info("Table written to %s", output)


if __name__ == "__main__":
    _define_flags()
    app.run(main)
