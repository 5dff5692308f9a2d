"""Labelled splits: what a transfer evaluation and an ERM baseline read.

Every benchmark with a target, a spurious attribute and groups (the six real
ones in `data.benchmarks`, prepared by `data.benchmark_splits`, and the
generated `spurious_shapes3d`) is opened through `open_labelled_benchmark`
as splits that follow one protocol, `LabelledSplit`:

    benchmark = open_labelled_benchmark(config)
    train = benchmark.splits["train"]
    train.labels["label"], train.labels["group"]  # int32 [n] columns
    train.inputs(np.array([0, 5]))  # the encoder inputs of two rows

Scores particular to a benchmark (CivilComments' worst identity group) come
with it, in `LabelledBenchmark.extra_scores`.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Mapping
from typing import Protocol

import ml_collections
import numpy as np
from absl import logging

from sparse_shared_jax.data import benchmark_splits, benchmarks
from sparse_shared_jax.data.ground_truth import ground_truth
from sparse_shared_jax.models import tokenizer

# The split a target head is fit on, and the one its penalty is chosen on.
FIT_SPLIT, SELECTION_SPLIT = "train", "validation"
# Part of each training group held out as validation where a benchmark has none.
HELD_OUT_FRACTION = 0.2


class LabelledSplit(Protocol):
    """One split: integer label columns in memory, inputs read by rows.

    `labels` holds at least 'label' (the target), 'attribute' (the spurious
    attribute or domain) and 'group' (label x attribute), int32 [n] each.
    """

    labels: Mapping[str, np.ndarray]

    def __len__(self) -> int: ...

    def inputs(self, rows: np.ndarray) -> np.ndarray:
        """int [b] rows -> the encoder's inputs [b, *input_shape]."""
        ...


def example_inputs(split: LabelledSplit) -> np.ndarray:
    """The inputs [1, *input_shape] of the split's first row (to initialise
    an encoder on, or to read the input shape from)."""
    return split.inputs(np.zeros(1, np.int64))


def read_rows(split: LabelledSplit, rows: np.ndarray) -> np.ndarray:
    """int rows of any shape [...] -> their inputs [..., *input_shape]."""
    inputs = split.inputs(rows.reshape(-1))
    return inputs.reshape(rows.shape + inputs.shape[1:])


# (predictions int [n], label columns of the same rows) -> a score.
ExtraScore = Callable[[np.ndarray, Mapping[str, np.ndarray]], float]


@dataclasses.dataclass(frozen=True)
class LabelledBenchmark:
    """A benchmark's labelled splits and how it is scored.

    Attributes:
      splits: name -> split; always 'train' and 'validation' (held out of
        the training split where the benchmark has none), usually 'test'.
      num_classes: classes of the target label.
      extra_scores: (name, function) of the benchmark's own scores, reported
        next to average and worst-group accuracy.
    """

    splits: dict[str, LabelledSplit]
    num_classes: int
    extra_scores: tuple[tuple[str, ExtraScore], ...] = ()


def is_real_benchmark(name: str) -> bool:
    """Whether `name` (e.g. 'celeba/64px') is one of `data.benchmarks`."""
    return name.split("/")[0] in benchmarks.BENCHMARKS


def open_labelled_benchmark(config: ml_collections.ConfigDict) -> LabelledBenchmark:
    """The labelled splits of config.data.name.

    A real benchmark is prepared if needed and opened (`open_benchmark`); a
    ground-truth dataset must provide `labelled_splits()` (as
    `spurious_shapes3d` does).

    Raises:
      ValueError: if the dataset has no labelled splits.
    """
    if is_real_benchmark(config.data.name):
        spec = benchmark_splits.benchmark_spec(config.data.name)
        return LabelledBenchmark(
            open_benchmark(config), len(spec.label_names), spec.extra_scores
        )
    options = json.dumps(config.data.options.to_dict(), sort_keys=True)
    return _generated_benchmark(config.data.name, options)


@functools.lru_cache(maxsize=2)
def _generated_benchmark(name: str, options_json: str) -> LabelledBenchmark:
    """A ground-truth dataset's rendered labelled splits (cached: a run's
    transfer and its ERM baseline read the same images)."""
    dataset = ground_truth(name, **json.loads(options_json))
    if not hasattr(dataset, "labelled_splits"):
        raise ValueError(
            f"config.data.name {name!r} has no labelled splits for a transfer "
            "evaluation (a config 'transfer' section needs a dataset with a "
            "target and groups, such as 'spurious_shapes3d', or a real benchmark)."
        )
    splits = dataset.labelled_splits()
    num_classes = int(max(split.labels["label"].max() for split in splits.values()))
    return LabelledBenchmark(splits, num_classes + 1)


def open_benchmark(config: ml_collections.ConfigDict) -> dict:
    """split name -> BenchmarkSplit of the config's real benchmark.

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
                splits[FIT_SPLIT], HELD_OUT_FRACTION, seed=0
            )
        )
        logging.info(
            "%s has no validation split: %d%% of every training group is held "
            "out as one (seed 0), for meta-validation and the head's penalty",
            config.data.name,
            round(100 * HELD_OUT_FRACTION),
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
