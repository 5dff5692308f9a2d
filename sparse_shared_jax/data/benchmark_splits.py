"""A prepared benchmark's splits: label columns in memory, inputs on demand.

Meta-training and transfer need every example's labels (to draw tasks and
groups) but only a few inputs at a time. `open_splits` prepares the benchmark
if needed (`benchmarks.load_benchmark`'s manual-directory rules), reads the
integer label columns of each split once, without decoding images (cached
next to the prepared files as ``label_columns_<split>.npz``), and returns
`BenchmarkSplit`s whose `inputs(rows)` decodes the images (float32 in
[0, 1]) or tokenizes the texts (int32 token ids) of just those rows,
leaving their label fields undecoded:

    splits = open_splits("celeba/64px", data_dir="/data/tfds")
    train = splits["train"]
    train.labels["Smiling"]  # int32 [n]
    train.inputs(np.array([0, 5]))  # float32 [2, 64, 64, 3]
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from absl import logging
from etils import epath

from sparse_shared_jax.data import benchmarks
from sparse_shared_jax.data.benchmarks import BenchmarkSpec

# The encoder's inputs among a record's fields.
_INPUT_FIELDS = ("image", "text", "text_pair")
# Every other field is an integer label, except the example's identifier.
_NON_LABEL_FIELDS = (*_INPUT_FIELDS, "id")
# Records read per call when scanning the label columns.
_SCAN_CHUNK = 4096

# texts [n] (and second texts of pairs, or None) -> int32 token ids [n, L].
Tokenize = Callable[[Sequence[str], Sequence[str] | None], np.ndarray]


class BenchmarkSplit:
    """One split of a prepared benchmark.

    Attributes:
      name: the split, e.g. 'train'.
      spec: the benchmark's spec.
      labels: field -> int32 [n]: 'label', 'attribute', 'group' and every
        other integer field of the records (meta labels, evaluation-only
        fields such as CivilComments' ``mentions_*``).
    """

    def __init__(
        self,
        name: str,
        spec: BenchmarkSpec,
        source: Sequence[Mapping[str, Any]],
        labels: Mapping[str, np.ndarray],
        tokenize: Tokenize | None = None,
        source_rows: np.ndarray | None = None,
    ):
        """Wraps a data source; see `open_splits`.

        `source_rows` (int [n]) makes this split the subset of the source's
        records at those rows (`labels` then holds theirs); None: all records.
        """
        if spec.modality == "text" and tokenize is None:
            raise ValueError(f"{spec.name} is a text benchmark: pass `tokenize`.")
        self.name = name
        self.spec = spec
        self.labels = dict(labels)
        self._source = source
        self._tokenize = tokenize
        self._source_rows = source_rows

    def subset(self, name: str, rows: np.ndarray) -> BenchmarkSplit:
        """The split of this split's `rows` (int [m]), called `name`."""
        rows = np.asarray(rows, dtype=np.int64)
        source_rows = rows if self._source_rows is None else self._source_rows[rows]
        labels = {field: column[rows] for field, column in self.labels.items()}
        return BenchmarkSplit(
            name, self.spec, self._source, labels, self._tokenize, source_rows
        )

    def __len__(self) -> int:
        return len(self.labels["label"])

    def inputs(self, rows: np.ndarray) -> np.ndarray:
        """The encoder inputs of `rows` (int [b], any order, repeats allowed).

        Returns:
          float32 [b, S, S, 3] in [0, 1] for images; int32 [b, L] token ids
          for text ('text', paired with 'text_pair' where the benchmark has
          it, e.g. MultiNLI's premise and hypothesis).
        """
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if self._source_rows is not None:
            rows = self._source_rows[rows]
        records = self._source.__getitems__(rows.tolist())
        if self.spec.modality == "image":
            images = np.stack([record["image"] for record in records])
            return np.divide(images, np.float32(255), dtype=np.float32)
        texts = [_text(record["text"]) for record in records]
        pairs = None
        if "text_pair" in records[0]:
            pairs = [_text(record["text_pair"]) for record in records]
        return self._tokenize(texts, pairs)


def hold_out_validation(
    train: BenchmarkSplit, fraction: float, seed: int
) -> tuple[BenchmarkSplit, BenchmarkSplit]:
    """Splits a training split into ('train', 'validation') parts.

    For benchmarks without an official validation split (MetaShift): a fixed
    `fraction` of every group, drawn with `seed`, becomes 'validation'.

    Returns:
      (the rest as 'train', the held-out part as 'validation').
    """
    rng = np.random.default_rng([seed, 13])
    held_out = np.zeros(len(train), dtype=bool)
    groups = train.labels["group"]
    for group in np.unique(groups):
        members = rng.permutation(np.flatnonzero(groups == group))
        held_out[members[: round(fraction * len(members))]] = True
    return (
        train.subset("train", np.flatnonzero(~held_out)),
        train.subset("validation", np.flatnonzero(held_out)),
    )


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


class _FieldsSource:
    """A split's records with only some fields parsed and decoded.

    TFDS's data source decodes every feature of a record; decoding only the
    inputs made reading a CelebA episode about 3x faster (its 40 attribute fields
    cost more than the JPEG), and scanning the labels skips the inputs.
    """

    def __init__(self, builder: tfds.core.DatasetBuilder, split: str, fields):
        self._records = builder.as_data_source(
            split=split,
            deserialize_method=tfds.decode.DeserializeMethod.RAW_BYTES,
        )
        self._features = tfds.features.FeaturesDict(
            {field: builder.info.features[field] for field in fields}
        )

    def __len__(self) -> int:
        return len(self._records)

    def __getitems__(self, rows: Sequence[int]) -> list[dict[str, Any]]:
        return [
            self._features.deserialize_example_np(record)
            for record in self._records.__getitems__(rows)
        ]


def _label_columns(source: Sequence[Mapping[str, Any]], where: str) -> dict:
    """Reads every field of every record: field -> int32 [n]."""
    columns: dict[str, list] = {}
    start_time = time.perf_counter()
    for start in range(0, len(source), _SCAN_CHUNK):
        rows = list(range(start, min(start + _SCAN_CHUNK, len(source))))
        for record in source.__getitems__(rows):
            for field, value in record.items():
                columns.setdefault(field, []).append(value)
    logging.info(
        "Read the labels of %d records of %s in %.1fs",
        len(source),
        where,
        time.perf_counter() - start_time,
    )
    return {field: np.asarray(values, np.int32) for field, values in columns.items()}


def _read_cache(path: epath.Path) -> dict[str, np.ndarray] | None:
    """The label columns cached by `_write_cache`, or None if there are none."""
    if not path.exists():
        return None
    with path.open("rb") as f, np.load(f) as columns:
        return {field: columns[field] for field in columns.files}


def _write_cache(path: epath.Path, labels: Mapping[str, np.ndarray]) -> None:
    """Caches label columns next to the prepared files (skipped if read-only).

    Reading the columns parses every record (minutes for CelebA); the cache
    makes later opens instant. Written to a unique name, then renamed, so
    processes writing at once never leave half a file.
    """
    partial = path.parent / f"{path.name}.{uuid.uuid4().hex}.tmp"
    try:
        with partial.open("wb") as f:
            np.savez(f, **labels)
        partial.rename(path)
    except OSError as error:
        logging.warning("Could not cache the label columns at %s: %s", path, error)


def open_splits(
    name: str,
    *,
    data_dir: os.PathLike | str | None,
    manual_dir: os.PathLike | str | None = None,
    splits: Sequence[str] | None = None,
    tokenize: Tokenize | None = None,
) -> dict[str, BenchmarkSplit]:
    """Opens a benchmark's splits, preparing it first if needed.

    Args:
      name: the benchmark with an optional builder config, e.g. 'celeba' or
        'celeba/64px' (`benchmarks.BENCHMARKS` has the names).
      data_dir: the TFDS data directory (None: TFDS's default).
      manual_dir: where the original release was downloaded by hand, read
        only to prepare (None: <data_dir>/downloads/manual).
      splits: which splits (default: all of the spec's official splits).
      tokenize: turns texts into token ids; required for text benchmarks.

    Returns:
      split name -> BenchmarkSplit.

    Raises:
      ValueError: if `name` is not a benchmark.
      FileNotFoundError, benchmarks.BenchmarkDataError: as
        `benchmarks.load_benchmark` (missing download, malformed files).
    """
    spec = benchmark_spec(name)
    splits = tuple(spec.splits if splits is None else splits)
    unknown = [split for split in splits if split not in spec.splits]
    if unknown:
        raise ValueError(
            f"{spec.name} has no split(s) {unknown}; it has {spec.splits}."
        )
    # Prepares if needed (with the manual-directory error messages).
    benchmarks.load_benchmark(name, splits[0], data_dir=data_dir, manual_dir=manual_dir)
    builder = tfds.builder(name, data_dir=data_dir)
    fields = tuple(builder.info.features)
    label_fields = [field for field in fields if field not in _NON_LABEL_FIELDS]
    input_fields = [field for field in fields if field in _INPUT_FIELDS]
    opened = {}
    for split in splits:
        cache = epath.Path(builder.data_dir) / f"label_columns_{split}.npz"
        labels = _read_cache(cache)
        if labels is None:
            labels = _label_columns(
                _FieldsSource(builder, split, label_fields), f"{name} {split}"
            )
            _write_cache(cache, labels)
        inputs = _FieldsSource(builder, split, input_fields)
        opened[split] = BenchmarkSplit(split, spec, inputs, labels, tokenize)
    return opened


def benchmark_spec(name: str) -> BenchmarkSpec:
    """The spec of 'celeba' or 'celeba/64px'.

    Raises:
      ValueError: naming the known benchmarks if `name` is none of them.
    """
    spec = benchmarks.BENCHMARKS.get(name.split("/")[0])
    if spec is None:
        raise ValueError(
            f"{name!r} is not a benchmark; the benchmarks are "
            f"{tuple(benchmarks.BENCHMARKS)} (optionally with a config, e.g. "
            "'celeba/64px')."
        )
    return spec
