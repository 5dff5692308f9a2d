"""MultiNLI with negation groups (Sagawa et al., 2020), as a TFDS builder.

Importing this module registers ``multinli_negation`` (`MultiNLINegation`).
It reads the original MultiNLI 1.0 release (JSON Lines) and the group-DRO
split file ``metadata_random.csv`` from a manual directory and writes, per
example,

  'text' (str): the premise (MultiNLI's ``sentence1``);
  'text_pair' (str): the hypothesis (``sentence2``), the second segment of a
    sentence-pair encoder's input;
  'label': entailment (0), neutral (1) or contradiction (2);
  'attribute': 1 if the hypothesis contains a negation word, else 0;
  'group': label * 2 + attribute (6 groups);
  'id': MultiNLI's ``pairID``;
  'genre': the text's genre (10 genres), a meta label.

Splits are group DRO's: the labelled pairs of MultiNLI's train, matched and
mismatched development files, shuffled into train / validation / test (50% /
20% / 30%; about 206k / 82k / 124k pairs). TFDS's own ``multi_nli`` builder
keeps MultiNLI's official splits and has neither the negation attribute nor
these splits, which is why the project has its own builder.

Negation words. As in group DRO (after Gururangan et al., 2018), a hypothesis
has a negation if, with ASCII punctuation deleted, lower-cased and split at
single spaces, one of its words is 'nobody', 'no', 'never' or 'nothing'. So
"No one came." and "There's nothing left!" have one; "He did not go." and
"Nothingness." do not. The builder computes it from the text and checks it
against the ``sentence2_has_negation`` column of ``metadata_random.csv``.

Meta labels: only 'genre' (a user may also form tasks from the NLI label
itself). The negation attribute is the evaluation attribute and is not a
meta label.

import tensorflow_datasets as tfds
from sparse_shared_jax.data.benchmarks import multinli  # registers it

builder = tfds.builder("multinli_negation", data_dir=DIR)
builder.download_and_prepare(
    download_config=tfds.download.DownloadConfig(manual_dir=MANUAL_DIR)
)
source = tfds.data_source("multinli_negation", data_dir=DIR, split="test")
source[0]["text"].decode()  # text fields come back as UTF-8 bytes
"""

from __future__ import annotations

import dataclasses
import json
import string
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from sparse_shared_jax.data.benchmarks._common import (
    BenchmarkBuilder,
    BenchmarkDataError,
    Record,
    find_release_root,
    iter_csv,
    manual_dir_of,
    require_paths,
)
from sparse_shared_jax.data.benchmarks._spec import BenchmarkSpec

LABEL_NAMES = ("entailment", "neutral", "contradiction")
ATTRIBUTE_NAMES = ("no_negation", "negation")
# The five training genres, then the five of the mismatched development set.
GENRES = (
    "fiction",
    "government",
    "slate",
    "telephone",
    "travel",
    "facetoface",
    "letters",
    "nineeleven",
    "oup",
    "verbatim",
)
NEGATION_WORDS = frozenset({"nobody", "no", "never", "nothing"})

# The release's files, in the order the rows of metadata_random.csv follow.
JSONL_FILES = (
    "multinli_1.0_train.jsonl",
    "multinli_1.0_dev_matched.jsonl",
    "multinli_1.0_dev_mismatched.jsonl",
)
METADATA_FILE = "metadata_random.csv"
# How metadata_random.csv codes labels and splits.
_METADATA_LABELS = {0: "contradiction", 1: "entailment", 2: "neutral"}
_METADATA_SPLITS = {"train": 0, "validation": 1, "test": 2}
# 'gold_label' of pairs whose annotators reached no consensus (left out).
_NO_CONSENSUS = "-"
_JSON_KEYS = ("gold_label", "pairID", "genre", "sentence1", "sentence2")
_DELETE_PUNCTUATION = str.maketrans("", "", string.punctuation)

MULTINLI = BenchmarkSpec(
    name="multinli_negation",
    modality="text",
    label_names=LABEL_NAMES,
    attribute_names=ATTRIBUTE_NAMES,
    splits=tuple(_METADATA_SPLITS),
    shift="subpopulation",
    meta_labels=("genre",),
    manual_download=f"""\
The builder does not download MultiNLI. Put two things in the manual directory:
  1. MultiNLI 1.0: download https://cims.nyu.edu/~sbowman/multinli/multinli_1.0.zip
     and extract it in the manual directory, which creates multinli_1.0/ with
     {", ".join(JSONL_FILES)}.
  2. group DRO's split file: download
     https://raw.githubusercontent.com/kohpangwei/group_DRO/master/dataset_metadata/multinli/{METADATA_FILE}
     into the manual directory itself.
Layout: <manual_dir>/{METADATA_FILE} and
<manual_dir>/multinli_1.0/multinli_1.0_train.jsonl (and the two dev files).""",
)


def has_negation(hypothesis: str) -> bool:
    """Whether a hypothesis contains a negation word, by group DRO's rule.

    Args:
      hypothesis: the sentence.

    Returns:
      True if, with ASCII punctuation deleted, lower-cased and split at single
      spaces (a tab does not separate words), a word is in `NEGATION_WORDS`.
    """
    words = hypothesis.translate(_DELETE_PUNCTUATION).lower().split(" ")
    return not NEGATION_WORDS.isdisjoint(words)


@dataclasses.dataclass(frozen=True)
class _Metadata:
    """The rows of metadata_random.csv, one per labelled pair, in file order.

    Attributes:
      path: the file.
      labels: int [n] group DRO's label codes (`_METADATA_LABELS`).
      negations: int [n] its sentence2_has_negation column, 0 or 1.
      splits: int [n] its split codes (`_METADATA_SPLITS`).
      lines: int [n] the line each row ends on, for error messages.
    """

    path: epath.Path
    labels: np.ndarray
    negations: np.ndarray
    splits: np.ndarray
    lines: np.ndarray

    def where(self, row: int) -> str:
        return f"{self.path}, record {row} (line {self.lines[row]})"


def _read_metadata(path: epath.Path) -> _Metadata:
    """Reads and checks group DRO's metadata_random.csv."""
    rows = [
        (
            record.integer("gold_label", _METADATA_LABELS),
            record.integer("sentence2_has_negation", (0, 1)),
            record.integer("split", _METADATA_SPLITS.values()),
            record.line,
        )
        for record in iter_csv(path, ("gold_label", "sentence2_has_negation", "split"))
    ]
    columns = np.array(rows, dtype=np.int64).reshape(-1, 4)  # [n, 4]
    return _Metadata(path, *columns.T)


def _iter_jsonl(path: epath.Path) -> Iterator[Record]:
    """The JSON objects of a JSON Lines file, as records; blank lines skipped.

    Raises:
      BenchmarkDataError: naming the file and line of a line that is not a
        JSON object.
    """
    with path.open("r", encoding="utf-8") as file:
        index = 0
        for line_number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            record = Record(path, index, line_number, {})
            try:
                fields = json.loads(line)
            except json.JSONDecodeError as error:
                raise record.error(f"is not valid JSON ({error}).") from error
            if not isinstance(fields, dict):
                raise record.error("is not a JSON object.")
            yield dataclasses.replace(record, fields=fields)
            index += 1


def _labelled_pairs(root: epath.Path) -> Iterator[tuple[Record, int]]:
    """The pairs with a gold label, in metadata_random.csv's order.

    Yields:
      (record, label index in `LABEL_NAMES`) for every pair of the three
      files whose annotators agreed on a label.

    Raises:
      BenchmarkDataError: naming the file and record of a pair that lacks a
        needed key or has an unknown label or genre.
    """
    for name in JSONL_FILES:
        for record in _iter_jsonl(root / name):
            for key in _JSON_KEYS:
                if not isinstance(record.fields.get(key), str):
                    raise record.error(f"lacks the text field {key!r}.")
            gold_label = record.fields["gold_label"]
            if gold_label == _NO_CONSENSUS:
                continue
            if gold_label not in LABEL_NAMES:
                raise record.error(
                    f"has gold_label {gold_label!r}; expected one of "
                    f"{LABEL_NAMES} or {_NO_CONSENSUS!r}."
                )
            if record.fields["genre"] not in GENRES:
                raise record.error(
                    f"has genre {record.fields['genre']!r}; expected one of {GENRES}."
                )
            yield record, LABEL_NAMES.index(gold_label)


class MultiNLINegation(BenchmarkBuilder):
    """MultiNLI with group DRO's splits and negation-word groups.

    Text: 'text' is the premise, 'text_pair' the hypothesis (UTF-8 bytes when
    read back). Label: entailment / neutral / contradiction. Attribute: the
    hypothesis contains 'nobody', 'no', 'never' or 'nothing' (group DRO's
    rule). Groups: label x attribute (6). Splits: group DRO's random 50/20/30
    re-split of MultiNLI's train + matched + mismatched development pairs.
    Meta label: 'genre'.
    """

    name = "multinli_negation"
    SPEC: ClassVar[BenchmarkSpec] = MULTINLI
    MANUAL_DOWNLOAD_INSTRUCTIONS = MULTINLI.manual_download

    def _info(self) -> tfds.core.DatasetInfo:
        info = super()._info()
        features = dict(info.features.items())
        features["text_pair"] = tfds.features.Text()
        return tfds.core.DatasetInfo(
            builder=self,
            description=info.description,
            features=tfds.features.FeaturesDict(features),
            homepage="https://cims.nyu.edu/~sbowman/multinli/",
        )

    def _meta_features(self) -> dict[str, tfds.features.FeatureConnector]:
        return {"genre": tfds.features.ClassLabel(names=GENRES)}

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        manual_dir = manual_dir_of(dl_manager, self.name)
        root = find_release_root(manual_dir, JSONL_FILES, self.SPEC)
        require_paths(manual_dir, (METADATA_FILE,), self.SPEC)
        metadata = _read_metadata(manual_dir / METADATA_FILE)
        return {
            split: self._generate_examples(root, metadata, code)
            for split, code in _METADATA_SPLITS.items()
        }

    def _generate_examples(
        self, root: epath.Path, metadata: _Metadata, split_code: int
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """Yields (row of metadata_random.csv, example) for one split.

        Row k of the metadata describes the k-th labelled pair of the three
        files; its label and negation flag must agree with the pair's.
        """
        num_rows = len(metadata.labels)
        row = -1
        for row, (record, label) in enumerate(_labelled_pairs(root)):
            if row >= num_rows:
                raise record.error(
                    f"is labelled pair {row}, but {metadata.path} has only "
                    f"{num_rows} rows: the files do not belong together."
                )
            if metadata.splits[row] != split_code:
                continue
            premise = record.fields["sentence1"]
            hypothesis = record.fields["sentence2"]
            attribute = int(has_negation(hypothesis))
            self._check_row(metadata, row, record, label, attribute)
            yield (
                row,
                self._example(
                    premise,
                    label=label,
                    attribute=attribute,
                    example_id=record.fields["pairID"],
                    text_pair=hypothesis,
                    genre=record.fields["genre"],
                ),
            )
        if row + 1 != num_rows:
            raise BenchmarkDataError(
                f"{metadata.path} has {num_rows} rows but {root} holds "
                f"{row + 1} labelled pairs: the files do not belong together."
            )

    @staticmethod
    def _check_row(
        metadata: _Metadata, row: int, record: Record, label: int, attribute: int
    ) -> None:
        """Checks that a metadata row describes the pair read from the files."""
        metadata_label = _METADATA_LABELS[int(metadata.labels[row])]
        if metadata_label != LABEL_NAMES[label]:
            raise BenchmarkDataError(
                f"{metadata.where(row)} has gold_label {metadata.labels[row]} "
                f"({metadata_label}) but its pair, {record.where()}, is "
                f"{LABEL_NAMES[label]!r}: the files do not belong together."
            )
        if metadata.negations[row] != attribute:
            raise BenchmarkDataError(
                f"{metadata.where(row)} has sentence2_has_negation "
                f"{metadata.negations[row]} but the hypothesis of "
                f"{record.where()} gives {attribute} by the negation-word rule: "
                f"the files do not belong together."
            )
