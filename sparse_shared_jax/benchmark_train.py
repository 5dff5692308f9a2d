"""Meta-training on a real benchmark's labels, then the transfer evaluation.

`meta_train_and_transfer(config, workdir)` runs a `configs.benchmark_config`
experiment (experiments/celeba.py, waterbirds.py, ...):

1. opens the benchmark's splits (`data.benchmark_splits`), preparing it from
   the manual download if needed;
2. meta-trains the encoder with the bilevel method on episodes of tasks built
   from the training split's label fields (`data.meta_tasks`; by default the
   benchmark's meta labels, never the evaluation attribute unless the config
   says so), with the loop, checkpoints and logs of `train` — resumable, and
   evaluated every config.eval_every_steps on tasks drawn from the
   validation split (meta-validation query accuracy);
3. freezes the encoder and fits a sparse head for the target label on the
   training split (`transfer.select_sparse_head`, penalty chosen by
   validation worst-group accuracy), then reports average and worst-group
   accuracy on every split (for domain-shift benchmarks such as Camelyon17,
   the test split's average accuracy is the out-of-distribution accuracy).
   Next to it: last-layer retraining on the same frozen features with the
   group-balanced validation split, and the baselines ERM (the same encoder
   trained on the target label, config.transfer.erm_steps) and last-layer
   retraining on the ERM features.

Writes `transfer.json`, `metrics.json` and the ERM model
(`erm_params.msgpack`) in the workdir.
"""

from __future__ import annotations

import functools
import os

import jax
import ml_collections
import numpy as np
from absl import logging

from sparse_shared_jax import (
    atomic_files,
    bilevel,
    checkpoints,
    evaluate,
    models,
    parallel,
    scalar_logs,
    train,
    transfer,
)
from sparse_shared_jax.config_validation import (
    bilevel_settings,
    task_fields,
    validate_benchmark_config,
)
from sparse_shared_jax.data import benchmark_splits, meta_tasks
from sparse_shared_jax.data.benchmarks.civil_comments import IDENTITIES, mention_field
from sparse_shared_jax.models import tokenizer

TRANSFER_FILE = "transfer.json"
ERM_FILE = "erm_params.msgpack"
# The split the target head is fit on, and the one its penalty is chosen on.
FIT_SPLIT, SELECTION_SPLIT = "train", "validation"
# Part of each training group held out as validation where a benchmark has none.
_HELD_OUT_FRACTION = 0.2
# Meta-validation episodes use the seed config.seed + _EVAL_SEED_OFFSET.
_EVAL_SEED_OFFSET = 1_000_003


def open_benchmark(config: ml_collections.ConfigDict) -> dict:
    """split name -> BenchmarkSplit of the config's benchmark.

    Always holds 'train' and 'validation': a benchmark without an official
    validation split gets one held out of its training split.
    """
    spec = benchmark_splits.benchmark_spec(config.data.name)
    tokenize = None
    if spec.modality == "text":
        wordpiece = tokenizer.WordPieceTokenizer.from_vocab_file(
            config.data.vocab_path, lowercase=config.data.lowercase
        )
        _check_token_ids(config, wordpiece)

        def tokenize(texts, pairs):
            return wordpiece.encode(texts, pairs, max_length=config.data.max_length).ids

    splits = benchmark_splits.open_splits(
        config.data.name,
        data_dir=config.data.data_dir or None,
        manual_dir=config.data.manual_dir or None,
        tokenize=tokenize,
    )
    if SELECTION_SPLIT not in splits:  # MetaShift: train and test only
        splits[FIT_SPLIT], splits[SELECTION_SPLIT] = (
            benchmark_splits.hold_out_validation(
                splits[FIT_SPLIT], _HELD_OUT_FRACTION, seed=0
            )
        )
        logging.info(
            "%s has no validation split: %d%% of every training group is held "
            "out as one (seed 0), for meta-validation and the head's penalty",
            config.data.name,
            round(100 * _HELD_OUT_FRACTION),
        )
    return splits


def _check_token_ids(config, wordpiece: tokenizer.WordPieceTokenizer) -> None:
    """The encoder's vocabulary size and special ids must match the vocab.txt."""
    options = config.model.options.to_dict()
    expected = {
        "vocab_size": (options.get("vocab_size", 30522), len(wordpiece.vocab)),
        "pad_id": (options.get("pad_id", 0), wordpiece.pad_id),
        "sep_id": (options.get("sep_id", 102), wordpiece.sep_id),
    }
    for option, (model_value, vocab_value) in expected.items():
        if option == "vocab_size" and model_value >= vocab_value:
            continue
        if model_value != vocab_value:
            raise ValueError(
                f"config.model.options.{option} is {model_value} but "
                f"{config.data.vocab_path} gives {vocab_value}; set "
                f"--config.model.options.{option}={vocab_value}."
            )
    if config.data.max_length > options.get("max_length", 512):
        raise ValueError(
            f"config.data.max_length={config.data.max_length} exceeds the "
            f"encoder's position table (model.options.max_length="
            f"{options.get('max_length', 512)})."
        )


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


def device_episode(
    sampler: meta_tasks.MetaTaskSampler,
    split: benchmark_splits.BenchmarkSplit,
    step: int,
    sharding,
) -> bilevel.EpisodeBatch:
    """Episode `step` as global arrays; each process reads only its block."""
    draw = sampler(step)
    input_shape = split.inputs(draw.support_index[0, :1]).shape[1:]
    return train.global_episode(
        (draw.support_index, draw.support_y),
        (draw.query_index, draw.query_y),
        lambda rows: split.inputs(rows).reshape(rows.shape + input_shape),
        input_shape,
        sharding,
    )


def meta_train_and_transfer(config: ml_collections.ConfigDict, workdir: str) -> dict:
    """Meta-trains on the benchmark's label tasks, then evaluates transfer.

    Args:
      config: a benchmark experiment config (`configs.benchmark_config`).
      workdir: directory for everything the run writes; a run with the same
        config resumes from its latest checkpoint.

    Returns:
      The final metrics (also in `workdir/metrics.json`): 'transfer/...'
      scores, the last training scalars and the step.
    """
    validate_benchmark_config(config)
    os.makedirs(workdir, exist_ok=True)
    checkpoints.check_workdir_config(workdir, config, write=parallel.is_main_process())
    splits = open_benchmark(config)
    train_split, validation_split = splits[FIT_SPLIT], splits[SELECTION_SPLIT]
    logging.info(
        "%s: %s examples; tasks from %s",
        config.data.name,
        {name: len(split) for name, split in splits.items()},
        task_fields(config),
    )
    sampler = make_task_sampler(config, train_split, config.seed)
    validation_sampler = make_task_sampler(
        config, validation_split, config.seed + _EVAL_SEED_OFFSET
    )
    settings = bilevel_settings(config)
    layout = parallel.TrainingLayout.create(
        config.episode.num_tasks,
        config.episode.support_size,
        config.episode.query_size,
        config.parallel.param_sharding,
    )
    state, state_shardings = train.create_state(
        config, train_split.inputs(np.zeros(1, np.int64)), layout
    )
    checkpointer = checkpoints.Checkpointer(workdir, config.checkpoint.max_to_keep)
    writer = scalar_logs.ScalarWriter(workdir, enabled=parallel.is_main_process())
    try:
        state = train.resume_or_start(config, state, checkpointer)
        meta_validation = functools.partial(
            _meta_validation,
            loss_fn=jax.jit(
                functools.partial(
                    bilevel.outer_loss, apply_fn=state.apply_fn, settings=settings
                )
            ),
            num_episodes=config.eval.num_episodes,
            sampler=validation_sampler,
            split=validation_split,
            sharding=layout.episode,
        )
        state = train.run_training_loop(
            config,
            state,
            train.jit_train_step(settings, layout, state_shardings),
            lambda step: device_episode(sampler, train_split, step, layout.episode),
            lambda state, step: meta_validation(state),
            checkpointer,
            writer,
        )
        step = int(state.step)
        scores = {f"meta_validation/{k}": v for k, v in meta_validation(state).items()}
        writer.write_scalars(step, scores)
        erm = train_erm_baseline(config, workdir, train_split)
        record = transfer_evaluation(
            config, state.params, state.apply_fn, splits, erm=erm
        )
    finally:
        writer.close()
        checkpointer.close()
    final = dict(scores, step=step)
    final.update(_flatten_scores(record))
    if not parallel.is_main_process():
        return final
    history = scalar_logs.read_history(workdir, step)
    final.update(
        {name: s[-1][1] for name, s in history.items() if name.startswith("train/")}
    )
    atomic_files.write_json(os.path.join(workdir, TRANSFER_FILE), record)
    atomic_files.write_json(os.path.join(workdir, "metrics.json"), final)
    test = record["sparse_head"].get("test", {})
    print(
        f"Final (step {step}): {config.data.name} sparse head (alpha "
        f"{record['sparse_head']['alpha']:g}, {record['sparse_head']['num_active']} "
        f"of {config.model.num_features} features): test average "
        f"{test.get('average', float('nan')):.3f}, worst group "
        f"{test.get('worst_group', float('nan')):.3f}; details in "
        f"{os.path.join(workdir, TRANSFER_FILE)}",
        flush=True,
    )
    return final


def _meta_validation(
    state, *, loss_fn, num_episodes, sampler, split, sharding
) -> dict[str, float]:
    """Mean outer-loss diagnostics (query loss, accuracy, ...) over episodes
    0..num_episodes-1 of `sampler`, on `split` (the same episodes every time).

    `loss_fn(params, episode=...)` is the jitted `bilevel.outer_loss`.
    """
    totals: dict[str, float] = {}
    for index in range(num_episodes):
        episode = device_episode(sampler, split, index, sharding)
        _, aux = loss_fn(state.params, episode=episode)
        for name, value in aux.items():
            totals[name] = totals.get(name, 0.0) + float(value)
    return {name: value / num_episodes for name, value in totals.items()}


def _subset_rows(num_rows: int, max_examples: int, seed: int) -> np.ndarray:
    """All rows, or a fixed random subset of `max_examples` (sorted)."""
    if not max_examples or max_examples >= num_rows:
        return np.arange(num_rows)
    rng = np.random.default_rng([seed, 11])
    return np.sort(rng.choice(num_rows, size=max_examples, replace=False))


def _encode_splits(params, apply_fn, splits: dict, rows_of: dict) -> dict:
    """split name -> features [n, k] of the split's `rows_of[name]`."""
    features = {}
    for name, split in splits.items():
        rows = rows_of[name]
        logging.info("Encoding %d examples of the %s split", len(rows), name)
        features[name] = evaluate.encode_rows(
            params,
            apply_fn,
            len(rows),
            lambda positions, rows=rows, split=split: split.inputs(rows[positions]),
            batch_size=256,
        )
    return features


def transfer_evaluation(
    config, params, apply_fn, splits: dict, erm: transfer.ErmModel | None = None
) -> dict:
    """The frozen encoder's sparse target head, and the baselines.

    Encodes every split (or config.transfer.max_examples of each) and scores
    on every split:

    * 'sparse_head': the method's transfer, a sparse head fit on the training
      split with the penalty chosen by validation worst-group accuracy;
    * 'method_last_layer': last-layer retraining (group-balanced validation
      split) on the same frozen features;
    * with `erm`: 'erm', the ERM model's own head, and 'erm_last_layer',
      last-layer retraining on the ERM features (the usual baseline).

    Returns:
      {'num_examples': {split: n}, head name: {'alpha', 'num_active', split:
      {'average', 'worst_group', 'per_group'} (and for CivilComments
      'worst_identity_group', WILDS's 16 overlapping groups)}}; ERM's alpha
      is None.
    """
    rows_of = {
        name: _subset_rows(len(split), config.transfer.max_examples, config.seed)
        for name, split in splits.items()
    }
    labels = {
        name: {field: column[rows_of[name]] for field, column in split.labels.items()}
        for name, split in splits.items()
    }
    alphas = tuple(float(a) for a in config.transfer.alphas)
    selection = labels[SELECTION_SPLIT]

    def last_layer(features):
        return transfer.last_layer_retraining(
            features[SELECTION_SPLIT],
            selection["label"],
            selection["group"],
            alphas,
            config.seed,
        )

    features = _encode_splits(params, apply_fn, splits, rows_of)
    sparse = transfer.select_sparse_head(
        features[FIT_SPLIT],
        labels[FIT_SPLIT]["label"],
        features[SELECTION_SPLIT],
        selection["label"],
        selection["group"],
        alphas,
    )
    method_retrained = last_layer(features)
    heads = {
        "sparse_head": (sparse.alpha, sparse.head, features),
        "method_last_layer": (
            method_retrained.alpha,
            method_retrained.head,
            features,
        ),
    }
    if erm is not None:
        erm_features = _encode_splits(erm.params, erm.apply_fn, splits, rows_of)
        heads["erm"] = (None, erm.head, erm_features)
        retrained = last_layer(erm_features)
        heads["erm_last_layer"] = (retrained.alpha, retrained.head, erm_features)
    record = {"num_examples": {name: len(rows) for name, rows in rows_of.items()}}
    for key, (alpha, head, head_features) in heads.items():
        record[key] = {"alpha": alpha, "num_active": head.num_active}
        for name in splits:
            record[key][name] = _split_scores(head, head_features[name], labels[name])
    return record


def train_erm_baseline(
    config: ml_collections.ConfigDict, workdir: str, train_split
) -> transfer.ErmModel | None:
    """ERM on the target label (unless done: read back from the workdir).

    The same encoder as the method (from config.model.pretrained_path when
    set, else from scratch) with a linear head, trained by Adam for
    config.transfer.erm_steps on the training split; saved in
    `<workdir>/erm_params.msgpack`. A softmax head when the target has more
    than two classes (MultiNLI). None when erm_steps is 0.
    """
    if not config.transfer.erm_steps:
        return None
    encoder = models.get_encoder(
        config.model.name, config.model.num_features, **config.model.options.to_dict()
    )
    example_x = train_split.inputs(np.zeros(1, np.int64))
    path = os.path.join(workdir, ERM_FILE)
    if os.path.exists(path):
        logging.info("ERM baseline read from %s", path)
        return transfer.load_erm(encoder, example_x, path)
    initial = None
    if config.model.pretrained_path:
        initial = models.load_pretrained(
            config.model.pretrained_path,
            config.model.pretrained_format,
            encoder.init(jax.random.key(config.seed), example_x),
        )
    logging.info("Training the ERM baseline for %d steps", config.transfer.erm_steps)
    model = transfer.train_erm(
        encoder,
        train_split.input_view(),
        train_split.labels["label"],
        num_steps=config.transfer.erm_steps,
        batch_size=min(config.transfer.erm_batch_size, len(train_split)),
        learning_rate=config.transfer.erm_learning_rate,
        seed=config.seed,
        initial_params=initial,
        num_classes=len(train_split.spec.label_names),
    )
    if parallel.is_main_process():
        transfer.save_erm(model, path)
    return model


def _split_scores(head: transfer.LinearHead, features, labels) -> dict:
    """Average / worst-group / per-group accuracy (+ WILDS identity groups)."""
    scores = transfer.group_scores(head, features, labels["label"], labels["group"])
    record = {
        "average": scores["average"],
        "worst_group": scores["worst_group"],
        "per_group": {str(g): a for g, a in scores["per_group"].items()},
    }
    if all(mention_field(identity) in labels for identity in IDENTITIES):
        record["worst_identity_group"] = worst_identity_group(
            head.predict(features), labels
        )
    return record


def worst_identity_group(predictions: np.ndarray, labels: dict) -> float:
    """CivilComments-WILDS' metric: the worst accuracy over its 16 groups.

    Group (identity j, label y) holds the comments that mention j and have
    label y; a comment mentioning several identities is in several groups.
    Empty groups are skipped.

    Args:
      predictions: int [n].
      labels: field -> int [n], with 'label' and every ``mentions_<identity>``.
    """
    correct = predictions == labels["label"]
    accuracies = [
        correct[members].mean()
        for identity in IDENTITIES
        for y in (0, 1)
        if (
            members := (labels[mention_field(identity)] == 1) & (labels["label"] == y)
        ).any()
    ]
    return float(min(accuracies)) if accuracies else float("nan")


def _flatten_scores(record: dict) -> dict[str, float]:
    """'transfer/<head>/<split>/<score>' -> value, for metrics.json."""
    flat = {}
    for head, head_record in record.items():
        if head == "num_examples":
            continue
        if head_record["alpha"] is not None:
            flat[f"transfer/{head}/alpha"] = head_record["alpha"]
        flat[f"transfer/{head}/num_active"] = head_record["num_active"]
        for split, scores in head_record.items():
            if isinstance(scores, dict):
                for name, value in scores.items():
                    if name != "per_group":
                        flat[f"transfer/{head}/{split}/{name}"] = value
    return flat
