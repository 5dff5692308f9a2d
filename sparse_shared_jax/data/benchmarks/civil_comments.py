"""CivilComments-WILDS (Koh et al., 2021), as a TFDS builder.

Importing this module registers ``civil_comments_wilds``
(`CivilCommentsWilds`). It reads WILDS's ``all_data_with_identities.csv``
(CivilComments-WILDS v1.0) from a manual directory and writes, per comment,

  'text' (str): the comment (``comment_text``; an empty field gives '');
  'label': toxic (1) if the ``toxicity`` score is >= 0.5, else non_toxic (0);
  'attribute': identity (1) if the comment mentions any of the 8 identities
    below, else no_identity (0);
  'group': label * 2 + attribute (4 groups);
  'id': the comment's ``id``;
  'mentions_<identity>' (0/1) for the 8 identities male, female, LGBTQ,
    christian, muslim, other_religions, black, white (lower-cased in the
    field names: 'mentions_lgbtq', ...), for evaluation only;
  'severe_toxicity', 'obscene', 'threat', 'insult', 'identity_attack',
    'sexual_explicit' (0/1), the toxicity sub-types, meta labels.

A score (toxicity, identity, sub-type) is present when it is >= 0.5, as WILDS
thresholds them; an empty identity or sub-type field counts as absent (as
WILDS's comparison of a missing value does). Splits are WILDS's official
``split`` column: 'train', 'val' -> 'validation', 'test' (269,038 / 45,180 /
133,782 comments in v1.0). TFDS's own ``civil_comments`` builder reads the
Kaggle release, which lacks WILDS's splits and its aggregated LGBTQ and
other_religions identities, which is why the project has its own builder.

What to report. The 'group' field is the coarse 2 x 2 grouping (toxic x
mentions any identity) that some group-robustness work trains and selects
with. WILDS's own worst-group accuracy uses 16 overlapping groups: for each
identity j and label y, the comments with mentions_j = 1 and label y; a
comment with several identities is in several groups. Report that one as the
benchmark's worst-group accuracy (the 'mentions_*' fields give it), and the
4-group one as a secondary number.

Meta labels: the six toxicity sub-types. They describe the kind of toxicity,
not who is mentioned, but 'identity_attack' correlates with identity
mentions, so a user studying leakage may leave it out. Never train on the
'mentions_*' fields or 'attribute' unless a config says so explicitly.

import tensorflow_datasets as tfds
from sparse_shared_jax.data.benchmarks import civil_comments  # registers it

builder = tfds.builder("civil_comments_wilds", data_dir=DIR)
builder.download_and_prepare(
    download_config=tfds.download.DownloadConfig(manual_dir=MANUAL_DIR)
)
source = tfds.data_source("civil_comments_wilds", data_dir=DIR, split="test")
source[0]["text"].decode()  # text comes back as UTF-8 bytes
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from sparse_shared_jax.data.benchmarks._common import (
    BenchmarkBuilder,
    Record,
    find_release_root,
    iter_csv,
    manual_dir_of,
)
from sparse_shared_jax.data.benchmarks._spec import BenchmarkSpec

LABEL_NAMES = ("non_toxic", "toxic")
ATTRIBUTE_NAMES = ("no_identity", "identity")
# WILDS's 8 evaluation identities (CSV column names).
IDENTITIES = (
    "male",
    "female",
    "LGBTQ",
    "christian",
    "muslim",
    "other_religions",
    "black",
    "white",
)
TOXICITY_TYPES = (
    "severe_toxicity",
    "obscene",
    "threat",
    "insult",
    "identity_attack",
    "sexual_explicit",
)
# A score (fraction of annotators) at or above this counts as present.
THRESHOLD = 0.5
DATA_FILE = "all_data_with_identities.csv"
# The builder's split names and their values in the CSV's 'split' column.
_CSV_SPLITS = {"train": "train", "validation": "val", "test": "test"}
_COLUMNS = ("id", "comment_text", "split", "toxicity", *TOXICITY_TYPES, *IDENTITIES)


def mention_field(identity: str) -> str:
    """The example field of an identity, e.g. 'LGBTQ' -> 'mentions_lgbtq'."""
    return f"mentions_{identity.lower()}"


def worst_identity_group(
    predictions: np.ndarray, labels: Mapping[str, np.ndarray]
) -> float:
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


CIVIL_COMMENTS = BenchmarkSpec(
    name="civil_comments_wilds",
    modality="text",
    label_names=LABEL_NAMES,
    attribute_names=ATTRIBUTE_NAMES,
    splits=tuple(_CSV_SPLITS),
    shift="subpopulation",
    meta_labels=TOXICITY_TYPES,
    manual_download=f"""\
The builder does not download CivilComments-WILDS. Download WILDS's
civilcomments v1.0 archive,
  https://worksheets.codalab.org/rest/bundles/0x8cd3de0634154aeaad2ee6eb96723c6e/contents/blob/
(a .tar.gz), and extract it in the manual directory; or, with the `wilds`
package (pip install wilds), run in Python
  wilds.get_dataset("civilcomments", root_dir="<manual_dir>", download=True)
Either way the manual directory then holds civilcomments_v1.0/{DATA_FILE}
(the file may also sit in the manual directory itself).""",
    extra_scores=(("worst_identity_group", worst_identity_group),),
)


def _score(record: Record, column: str, *, required: bool) -> float:
    """A score in [0, 1] from the CSV; an empty optional field gives 0.

    Raises:
      BenchmarkDataError: naming the file, record and column if the value is
        not a number in [0, 1], or is empty and `required`.
    """
    value = record.text(column)
    if not value and not required:
        return 0.0
    try:
        score = float(value)
    except ValueError:
        score = math.nan
    if not 0.0 <= score <= 1.0:  # Also rejects NaN.
        raise record.error(f"column {column!r} holds {value!r}, not a score in [0, 1].")
    return score


def _present(record: Record, column: str) -> int:
    """1 if an identity or sub-type score is >= `THRESHOLD`, else 0."""
    return int(_score(record, column, required=False) >= THRESHOLD)


class CivilCommentsWilds(BenchmarkBuilder):
    """CivilComments-WILDS: toxicity with identity-mention groups.

    Text: the comment (UTF-8 bytes when read back). Label: toxicity >= 0.5.
    Attribute: mentions any of WILDS's 8 identities (score >= 0.5). Groups:
    label x attribute (4); the 'mentions_*' fields give WILDS's 16
    overlapping identity x label groups. Splits: WILDS's official ones. Meta
    labels: the six toxicity sub-types (score >= 0.5).
    """

    name = "civil_comments_wilds"
    SPEC: ClassVar[BenchmarkSpec] = CIVIL_COMMENTS
    MANUAL_DOWNLOAD_INSTRUCTIONS = CIVIL_COMMENTS.manual_download

    def _info(self) -> tfds.core.DatasetInfo:
        info = super()._info()
        features = dict(info.features.items())
        for identity in IDENTITIES:
            features[mention_field(identity)] = tfds.features.ClassLabel(num_classes=2)
        return tfds.core.DatasetInfo(
            builder=self,
            description=info.description,
            features=tfds.features.FeaturesDict(features),
            homepage="https://wilds.stanford.edu/datasets/#civilcomments",
        )

    def _meta_features(self) -> dict[str, tfds.features.FeatureConnector]:
        return {
            name: tfds.features.ClassLabel(num_classes=2) for name in TOXICITY_TYPES
        }

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        manual_dir = manual_dir_of(dl_manager, self.name)
        path = find_release_root(manual_dir, (DATA_FILE,), self.SPEC) / DATA_FILE
        return {
            split: self._generate_examples(path, csv_split)
            for split, csv_split in _CSV_SPLITS.items()
        }

    def _generate_examples(
        self, path: epath.Path, csv_split: str
    ) -> Iterator[tuple[int, dict[str, Any]]]:
        """Yields (record index in the CSV, example) for the comments of a split."""
        for record in iter_csv(path, _COLUMNS):
            split = record.text("split")
            if split not in _CSV_SPLITS.values():
                raise record.error(
                    f"column 'split' holds {split!r}; expected one of "
                    f"{sorted(_CSV_SPLITS.values())}."
                )
            if split != csv_split:
                continue
            label = int(_score(record, "toxicity", required=True) >= THRESHOLD)
            mentions = {
                mention_field(identity): _present(record, identity)
                for identity in IDENTITIES
            }
            yield (
                record.index,
                self._example(
                    record.fields["comment_text"],
                    label=label,
                    attribute=max(mentions.values()),  # any of the 8 identities
                    example_id=record.text("id"),
                    **mentions,
                    **{name: _present(record, name) for name in TOXICITY_TYPES},
                ),
            )
