"""Tests of the text benchmark builders on tiny copies in the real formats.

Each test writes a few records in the original release's on-disk format
(MultiNLI 1.0 JSON Lines + group DRO's metadata_random.csv; WILDS's
all_data_with_identities.csv) into a manual directory, prepares the builder
offline into a temporary data_dir, and reads it back with
``tfds.data_source`` (no TensorFlow needed).
"""

import csv
import json

import pytest
import tensorflow_datasets as tfds

from sparse_shared_jax.data.benchmarks import _common, civil_comments, multinli
from sparse_shared_jax.data.benchmarks._common import BenchmarkDataError


@pytest.fixture(autouse=True, scope="module")
def _no_progress_bars():
    tfds.disable_progress_bar()
    yield
    tfds.enable_progress_bar()


def _prepare(name, data_dir, manual_dir):
    builder = tfds.builder(name, data_dir=data_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
    )
    return builder


def _read_split(name, data_dir, split):
    source = tfds.data_source(name, data_dir=data_dir, split=split)
    return [source[index] for index in range(len(source))]


# ----------------------------------------------------------------------------
# MultiNLI.

# (file, gold_label, genre, premise, hypothesis, has negation, group-DRO split
# code or None for no-consensus pairs, which metadata_random.csv lacks).
_PAIRS = [
    ("train", "neutral", "fiction", "A man sat.", "No one came.", 1, 0),
    ("train", "contradiction", "slate", "It rained.", "There's nothing left!", 1, 1),
    ("train", "entailment", "travel", "He stayed.", "He did not go.", 0, 2),
    ("train", "contradiction", "government", "Ok.", "Nothingness, again.", 0, 0),
    ("train", "contradiction", "telephone", "Uh, yes.", "Nobody, never.", 1, 0),
    ("train", "entailment", "fiction", "Sure.", "I know.", 0, 2),
    ("dev_matched", "-", "slate", "Hm.", "No way.", 1, None),
    ("dev_matched", "neutral", "travel", 'She said "hi".', "It was a no-show.", 0, 1),
    ("dev_matched", "entailment", "fiction", "Café au lait.", "Never again", 1, 0),
    ("dev_mismatched", "contradiction", "letters", "Dear all,", "NO WAY", 1, 2),
    ("dev_mismatched", "-", "oup", "Text.", "Maybe.", 0, None),
    ("dev_mismatched", "neutral", "verbatim", "Words.", "Words, words.", 0, 0),
]
# group DRO's label codes in metadata_random.csv.
_DRO_LABEL_CODES = {"contradiction": 0, "entailment": 1, "neutral": 2}
_MNLI = "multinli_negation"


def _mnli_json(file, index, gold_label, genre, premise, hypothesis):
    """One line of a multinli_1.0_*.jsonl file, with all its keys."""
    return json.dumps(
        {
            "annotator_labels": [gold_label],
            "genre": genre,
            "gold_label": gold_label,
            "pairID": f"{file}-{index}e",
            "promptID": f"{file}-{index}",
            "sentence1": premise,
            "sentence1_binary_parse": "( x )",
            "sentence1_parse": "(ROOT (X x))",
            "sentence2": hypothesis,
            "sentence2_binary_parse": "( y )",
            "sentence2_parse": "(ROOT (Y y))",
        }
    )


def _write_jsonl(release, pairs):
    """Writes the three multinli_1.0_*.jsonl files of the pairs."""
    release.mkdir(parents=True, exist_ok=True)
    for file in ("train", "dev_matched", "dev_mismatched"):
        lines = [
            _mnli_json(file, index, *pair[1:5])
            for index, pair in enumerate(pairs)
            if pair[0] == file
        ]
        (release / f"multinli_1.0_{file}.jsonl").write_text("\n".join(lines) + "\n")


def _write_multinli(manual_dir, metadata_columns=None):
    """Writes the release (multinli_1.0/) and metadata_random.csv of _PAIRS."""
    _write_jsonl(manual_dir / "multinli_1.0", _PAIRS)
    columns = metadata_columns or ["gold_label", "sentence2_has_negation", "split"]
    rows = [
        {
            "": position,  # group DRO writes the pandas index first.
            "gold_label": _DRO_LABEL_CODES[gold],
            "sentence2_has_negation": negation,
            "split": split,
        }
        for position, (_, gold, _, _, _, negation, split) in enumerate(_PAIRS)
        if split is not None
    ]
    with open(manual_dir / "metadata_random.csv", "w", newline="") as file:
        writer = csv.DictWriter(
            file, ["", *columns], extrasaction="ignore", lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture(scope="module")
def multinli_data_dir(tmp_path_factory):
    manual_dir = tmp_path_factory.mktemp("manual_multinli")
    _write_multinli(manual_dir)
    data_dir = tmp_path_factory.mktemp("tfds")
    _prepare(_MNLI, data_dir, manual_dir)
    return data_dir


@pytest.mark.parametrize(
    ("hypothesis", "expected"),
    [
        ("No one came.", True),
        ("There's nothing left!", True),
        ("Nobody, never.", True),
        ("NO WAY", True),
        ("(never)", True),
        ("He did not go.", False),
        ("Nothingness, again.", False),
        ("I know.", False),  # 'no' inside a word
        ("It was a no-show.", False),  # punctuation is deleted: 'noshow'
        ("yes\tno", False),  # words are split at spaces only
        ("None of them.", False),
    ],
)
def test_negation_rule_on_known_hypotheses(hypothesis, expected):
    assert multinli.has_negation(hypothesis) is expected


def test_multinli_builds_group_dro_splits_and_fields(multinli_data_dir):
    splits = {
        split: _read_split(_MNLI, multinli_data_dir, split)
        for split in multinli.MULTINLI.splits
    }
    assert multinli.MULTINLI.splits == ("train", "validation", "test")
    assert {split: len(ex) for split, ex in splits.items()} == {
        "train": 5,
        "validation": 2,
        "test": 3,
    }
    by_id = {
        ex["id"].decode(): (split, ex) for split, exs in splits.items() for ex in exs
    }
    # The no-consensus pairs are left out.
    assert "dev_matched-6e" not in by_id and "dev_mismatched-10e" not in by_id
    split, ex = by_id["dev_matched-8e"]
    assert split == "train"
    assert ex["text"].decode() == "Café au lait."
    assert ex["text_pair"].decode() == "Never again"
    assert (ex["label"], ex["attribute"], ex["group"]) == (0, 1, 1)  # entailment
    assert multinli.GENRES[ex["genre"]] == "fiction"
    split, ex = by_id["dev_mismatched-9e"]
    assert split == "test"
    assert (ex["label"], ex["attribute"], ex["group"]) == (2, 1, 5)
    assert multinli.GENRES[ex["genre"]] == "letters"
    assert set(ex) == {
        "text",
        "text_pair",
        "label",
        "attribute",
        "group",
        "id",
        "genre",
    }
    # Groups: entailment-/+ negation, neutral-/+, contradiction-/+.
    counts = {
        split: _common.group_counts(exs, multinli.MULTINLI).tolist()
        for split, exs in splits.items()
    }
    assert counts == {
        "train": [0, 1, 1, 1, 1, 1],
        "validation": [0, 0, 1, 0, 0, 1],
        "test": [2, 0, 0, 0, 0, 1],
    }


def test_multinli_missing_manual_dir_names_the_download(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        _prepare(_MNLI, tmp_path / "tfds", tmp_path / "absent")
    message = str(error.value)
    assert "multinli_1.0.zip" in message
    assert "metadata_random.csv" in message


def test_multinli_missing_metadata_file_names_it(tmp_path):
    _write_multinli(tmp_path / "manual")
    (tmp_path / "manual" / "metadata_random.csv").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks \['metadata_random.csv'\]"):
        _prepare(_MNLI, tmp_path / "tfds", tmp_path / "manual")


def test_multinli_missing_group_column_names_file_and_column(tmp_path):
    _write_multinli(tmp_path / "manual", metadata_columns=["gold_label", "split"])
    with pytest.raises(BenchmarkDataError) as error:
        _prepare(_MNLI, tmp_path / "tfds", tmp_path / "manual")
    message = str(error.value)
    assert "metadata_random.csv" in message
    assert "'sentence2_has_negation'" in message


def test_multinli_corrupted_record_names_file_and_line(tmp_path):
    _write_multinli(tmp_path / "manual")
    path = tmp_path / "manual" / "multinli_1.0" / "multinli_1.0_train.jsonl"
    lines = path.read_text().splitlines()
    lines[3] = lines[3][:40]  # a truncated line 4
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(BenchmarkDataError, match=r"train\.jsonl, record 3 \(line 4\)"):
        _prepare(_MNLI, tmp_path / "tfds", tmp_path / "manual")


def test_multinli_record_without_hypothesis_is_named(tmp_path):
    _write_multinli(tmp_path / "manual")
    path = tmp_path / "manual" / "multinli_1.0" / "multinli_1.0_dev_matched.jsonl"
    lines = path.read_text().splitlines()
    record = json.loads(lines[1])
    del record["sentence2"]
    lines[1] = json.dumps(record)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        BenchmarkDataError,
        match=r"dev_matched\.jsonl, record 1 \(line 2\): lacks .*'sentence2'",
    ):
        _prepare(_MNLI, tmp_path / "tfds", tmp_path / "manual")


@pytest.mark.parametrize(
    ("position", "change", "expected"),
    [
        (4, ("contradiction", "neutral"), "has gold_label 0 (contradiction)"),
        (1, ("nothing", "anything"), "has sentence2_has_negation 1"),
    ],
)
def test_multinli_metadata_that_disagrees_with_the_files_is_named(
    tmp_path, position, change, expected
):
    _write_multinli(tmp_path / "manual")
    # Edit a train pair's label or hypothesis in the files only.
    old, new = change
    pairs = list(_PAIRS)
    file, gold, genre, premise, hypothesis, negation, split = pairs[position]
    gold, hypothesis = gold.replace(old, new), hypothesis.replace(old, new)
    pairs[position] = (file, gold, genre, premise, hypothesis, negation, split)
    _write_jsonl(tmp_path / "manual" / "multinli_1.0", pairs)
    with pytest.raises(BenchmarkDataError) as error:
        _prepare(_MNLI, tmp_path / "tfds", tmp_path / "manual")
    message = str(error.value)
    assert f"metadata_random.csv, record {position} (line {position + 2})" in message
    assert (
        f"multinli_1.0_train.jsonl, record {position} (line {position + 1})" in message
    )
    assert expected in message
    assert "do not belong together" in message


def test_multinli_metadata_with_missing_rows_is_rejected(tmp_path):
    _write_multinli(tmp_path / "manual")
    path = tmp_path / "manual" / "metadata_random.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n")
    with pytest.raises(BenchmarkDataError, match="has only 9 rows"):
        _prepare(_MNLI, tmp_path / "tfds", tmp_path / "manual")


# ----------------------------------------------------------------------------
# CivilComments-WILDS.

_CC = "civil_comments_wilds"
# Columns as in WILDS v1.0 (a leading pandas index, extra columns ignored).
_CC_COLUMNS = [
    "",
    "id",
    "comment_text",
    "split",
    "created_date",
    "toxicity",
    *civil_comments.TOXICITY_TYPES,
    "transgender",
    "jewish",
    *civil_comments.IDENTITIES,
    "identity_any",
]


def _comment(index, text, split, toxicity, **scores):
    """A CSV row: every score absent (0.0) unless given."""
    row = dict.fromkeys(_CC_COLUMNS, "0.0")
    row.update({"": index, "id": 1000 + index, "comment_text": text, "split": split})
    row.update(created_date="2016-01-01 00:00:00+00", toxicity=toxicity)
    row.update(scores)
    return row


# (row, expected label, attribute, mentioned identities)
_COMMENTS = [
    (_comment(0, "Fine, thanks.", "train", "0.0"), 0, 0, ()),
    (
        _comment(1, 'He said "no",\nthen left.', "train", "0.5", male="0.5"),
        1,
        1,
        ("male",),
    ),
    (_comment(2, "Rude words", "train", "0.8", insult="0.9", obscene="0.5"), 1, 0, ()),
    (
        _comment(3, "About faith", "train", "0.1", christian="1.0", muslim="0.6"),
        0,
        1,
        ("christian", "muslim"),
    ),
    (
        _comment(4, "Only others", "train", "0.2", transgender="1.0", jewish="0.8"),
        0,
        0,
        (),
    ),
    (_comment(5, "Almost", "val", "0.49", LGBTQ="0.49", white="0.3"), 0, 0, ()),
    (_comment(6, "Threat", "val", "0.7", threat="0.5", LGBTQ="0.7"), 1, 1, ("LGBTQ",)),
    (_comment(7, "Unrated", "test", "0.0", female="", black=""), 0, 0, ()),
    (
        _comment(8, "", "test", "0.6", black="0.5", identity_attack="0.5"),
        1,
        1,
        ("black",),
    ),
    (
        _comment(9, "Héllo", "test", "0.0", other_religions="0.75"),
        0,
        1,
        ("other_religions",),
    ),
]


def _write_civil_comments(manual_dir, rows=None, columns=_CC_COLUMNS):
    """Writes civilcomments_v1.0/all_data_with_identities.csv."""
    release = manual_dir / "civilcomments_v1.0"
    release.mkdir(parents=True)
    rows = rows if rows is not None else [row for row, *_ in _COMMENTS]
    path = release / "all_data_with_identities.csv"
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(
            file, columns, extrasaction="ignore", lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def civil_comments_data_dir(tmp_path_factory):
    manual_dir = tmp_path_factory.mktemp("manual_civil_comments")
    _write_civil_comments(manual_dir)
    data_dir = tmp_path_factory.mktemp("tfds")
    _prepare(_CC, data_dir, manual_dir)
    return data_dir


def test_civil_comments_builds_wilds_splits_and_fields(civil_comments_data_dir):
    splits = {
        split: _read_split(_CC, civil_comments_data_dir, split)
        for split in civil_comments.CIVIL_COMMENTS.splits
    }
    assert {split: len(exs) for split, exs in splits.items()} == {
        "train": 5,
        "validation": 2,
        "test": 3,
    }
    examples = {int(ex["id"]) - 1000: ex for exs in splits.values() for ex in exs}
    assert sorted(examples) == list(range(len(_COMMENTS)))
    mention_fields = [
        civil_comments.mention_field(i) for i in civil_comments.IDENTITIES
    ]
    assert mention_fields[2] == "mentions_lgbtq"
    for index, (row, label, attribute, identities) in enumerate(_COMMENTS):
        ex = examples[index]
        assert ex["text"].decode() == row["comment_text"]
        assert (ex["label"], ex["attribute"]) == (label, attribute), index
        assert ex["group"] == 2 * label + attribute
        mentioned = {
            identity
            for identity in civil_comments.IDENTITIES
            if ex[civil_comments.mention_field(identity)] == 1
        }
        assert mentioned == set(identities), index
    assert set(examples[0]) == {
        "text",
        "label",
        "attribute",
        "group",
        "id",
        *mention_fields,
        *civil_comments.TOXICITY_TYPES,
    }
    # Sub-types at >= 0.5: row 2 insult 0.9 and obscene 0.5, row 6 threat,
    # row 8 identity_attack.
    subtypes = {
        index: {t for t in civil_comments.TOXICITY_TYPES if examples[index][t]}
        for index in examples
    }
    assert subtypes[2] == {"insult", "obscene"}
    assert subtypes[6] == {"threat"}
    assert subtypes[8] == {"identity_attack"}
    assert sum(map(len, subtypes.values())) == 4
    counts = {
        split: _common.group_counts(exs, civil_comments.CIVIL_COMMENTS).tolist()
        for split, exs in splits.items()
    }
    # non_toxic-/+identity, toxic-/+identity.
    assert counts == {
        "train": [2, 1, 1, 1],
        "validation": [1, 0, 0, 1],
        "test": [1, 1, 0, 1],
    }


def test_civil_comments_missing_manual_dir_names_the_download(tmp_path):
    with pytest.raises(FileNotFoundError) as error:
        _prepare(_CC, tmp_path / "tfds", tmp_path / "absent")
    message = str(error.value)
    assert "worksheets.codalab.org" in message
    assert "all_data_with_identities.csv" in message


def test_civil_comments_manual_dir_without_the_csv_names_it(tmp_path):
    (tmp_path / "manual" / "civilcomments_v1.0").mkdir(parents=True)
    (tmp_path / "manual" / "civilcomments_v1.0" / "RELEASE_v1.0.txt").write_text("")
    with pytest.raises(
        FileNotFoundError, match=r"holds all of \['all_data_with_identities.csv'\]"
    ):
        _prepare(_CC, tmp_path / "tfds", tmp_path / "manual")


@pytest.mark.parametrize("column", ["LGBTQ", "toxicity", "split"])
def test_civil_comments_missing_column_names_file_and_column(tmp_path, column):
    columns = [name for name in _CC_COLUMNS if name != column]
    _write_civil_comments(tmp_path / "manual", columns=columns)
    with pytest.raises(BenchmarkDataError) as error:
        _prepare(_CC, tmp_path / "tfds", tmp_path / "manual")
    message = str(error.value)
    assert "all_data_with_identities.csv" in message
    assert f"['{column}']" in message


@pytest.mark.parametrize(
    ("index", "change", "expected"),
    [
        (3, {"toxicity": "abc"}, "column 'toxicity' holds 'abc'"),
        (3, {"toxicity": ""}, "column 'toxicity' holds ''"),
        (3, {"muslim": "1.7"}, "column 'muslim' holds '1.7'"),
        (3, {"split": "dev"}, "column 'split' holds 'dev'"),
    ],
)
def test_civil_comments_corrupted_record_names_file_and_line(
    tmp_path, index, change, expected
):
    rows = [dict(row) for row, *_ in _COMMENTS]
    rows[index].update(change)
    path = _write_civil_comments(tmp_path / "manual", rows=rows)
    with pytest.raises(BenchmarkDataError) as error:
        _prepare(_CC, tmp_path / "tfds", tmp_path / "manual")
    message = str(error.value)
    # Row 1's comment spans two lines, so record 3 ends on line 6.
    assert f"{path}, record 3 (line 6)" in message
    assert expected in message


def test_civil_comments_truncated_record_names_file_and_line(tmp_path):
    path = _write_civil_comments(tmp_path / "manual")
    lines = path.read_text(encoding="utf-8").split("\n")
    lines[7] = lines[7][:20]  # record 5, after the two-line comment
    path.write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(
        BenchmarkDataError, match=r"record 5 \(line 8\): has a different"
    ):
        _prepare(_CC, tmp_path / "tfds", tmp_path / "manual")
