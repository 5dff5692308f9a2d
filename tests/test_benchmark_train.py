"""Meta-training on real benchmarks' labels and the transfer evaluation.

End to end on tiny fabricated copies of CelebA and MultiNLI in their release
formats: prepare, meta-train the experiments' configs for two steps at a
tiny size, evaluate transfer, resume; and the config errors.
"""

import json
import os
import subprocess
import sys

import jax
import numpy as np
import PIL.Image
import pytest
import tensorflow_datasets as tfds

from sparse_shared_jax import (
    config_validation,
    configs,
    input_pipeline,
    parallel,
    train,
)
from sparse_shared_jax.data import benchmark_splits, labelled
from sparse_shared_jax.data.benchmarks import civil_comments
from sparse_shared_jax.data.benchmarks.celeba import CELEBA_ATTRIBUTES
from sparse_shared_jax.data.benchmarks.civil_comments import IDENTITIES, mention_field
from sparse_shared_jax.models import tokenizer
from sparse_shared_jax.trainers import benchmark

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Examples per split of the fabricated CelebA copy (partition codes 0, 1, 2).
_CELEBA_SIZES = {0: 32, 1: 16, 2: 16}


@pytest.fixture(autouse=True, scope="module")
def _no_progress_bars():
    tfds.disable_progress_bar()
    yield
    tfds.enable_progress_bar()


def _experiment(name, argument=None):
    return configs.load_experiment(os.path.join(ROOT, "experiments", f"{name}.py"))(
        argument
    )


def _write_celeba(root):
    """A CelebA release of 64 faces; every (Blond_Hair, Male) group in every split.

    An image's brightness follows Blond_Hair and its red channel Smiling, so
    the features carry the labels.
    """
    rng = np.random.default_rng(0)
    attribute_lines, partition_lines = [], []
    index = 0
    for partition, size in _CELEBA_SIZES.items():
        for position in range(size):
            values = np.where(rng.random(len(CELEBA_ATTRIBUTES)) < 0.5, -1, 1)
            blond, male = position % 2, (position // 2) % 2
            values[CELEBA_ATTRIBUTES.index("Blond_Hair")] = 2 * blond - 1
            values[CELEBA_ATTRIBUTES.index("Male")] = 2 * male - 1
            smiling = values[CELEBA_ATTRIBUTES.index("Smiling")] > 0
            filename = f"{index + 1:06d}.jpg"
            colour = (200 if smiling else 40, 60 + 150 * blond, 90)
            path = root / "img_align_celeba" / filename
            path.parent.mkdir(parents=True, exist_ok=True)
            PIL.Image.new("RGB", (18, 22), colour).save(path, quality=95)
            attribute_lines.append(filename + "".join(f" {v:2d}" for v in values))
            partition_lines.append(f"{filename} {partition}")
            index += 1
    header = [str(index), " ".join(CELEBA_ATTRIBUTES)]
    (root / "list_attr_celeba.txt").write_text("\n".join(header + attribute_lines))
    (root / "list_eval_partition.txt").write_text("\n".join(partition_lines) + "\n")


def _tiny_celeba_config(data_dir, manual_dir):
    config = _experiment("celeba")
    config.data.data_dir = str(data_dir)
    config.data.manual_dir = str(manual_dir)
    config.data.task_fields = ("Smiling", "Young", "Eyeglasses")
    config.model.name = "resnet18"
    config.model.num_features = 6
    config.model.options.width = 4
    config.model.options.norm_groups = 2
    config.episode.num_tasks = 2
    config.episode.support_size = 8
    config.episode.query_size = 4
    config.num_train_steps = 2
    config.log_every_steps = 1
    config.eval_every_steps = 1
    config.checkpoint.every_steps = 1
    config.eval.num_episodes = 2
    config.transfer.alphas = (0.0, 0.1)
    config.transfer.erm_steps = 3
    config.transfer.erm_batch_size = 8
    return config


@pytest.fixture(scope="module")
def celeba_dirs(tmp_path_factory):
    """(TFDS data dir, manual dir) of the fabricated copy, prepared once."""
    manual_dir = tmp_path_factory.mktemp("celeba_manual")
    _write_celeba(manual_dir)
    return tmp_path_factory.mktemp("tfds"), manual_dir


@pytest.mark.slow
def test_celeba_meta_trains_on_attributes_and_evaluates_transfer(tmp_path, celeba_dirs):
    config = _tiny_celeba_config(*celeba_dirs)
    workdir = str(tmp_path / "run")
    final = train.train_and_evaluate(config, workdir)

    assert final["step"] == 2
    for head in ("sparse_head", "method_last_layer", "erm", "erm_last_layer"):
        for split in ("train", "validation", "test"):
            for score in ("average", "worst_group"):
                assert 0.0 <= final[f"transfer/{head}/{split}/{score}"] <= 1.0
        assert final.get(f"transfer/{head}/alpha", 0.0) in (0.0, 0.1)
        assert 0 <= final[f"transfer/{head}/num_active"] <= 6
    assert "transfer/erm/alpha" not in final  # ERM's head is not penalised
    assert os.path.isdir(os.path.join(workdir, "erm", "checkpoints", "3"))
    assert 0.0 <= final["meta_validation/query_accuracy"] <= 1.0
    assert np.isfinite(final["train/loss"])
    with open(os.path.join(workdir, "transfer.json")) as f:
        record = json.load(f)
    assert record["num_examples"] == {"train": 32, "validation": 16, "test": 16}
    # 4 groups, each of 4 test images.
    assert set(record["sparse_head"]["test"]["per_group"]) == {"0", "1", "2", "3"}
    with open(os.path.join(workdir, "metrics.json")) as f:
        assert json.load(f)["step"] == 2
    with open(os.path.join(workdir, "scalars.jsonl")) as f:
        logged = [json.loads(line) for line in f]
    assert any("eval/query_accuracy" in entry for entry in logged)  # step 1

    # The same command again resumes from the last checkpoint: no new step,
    # the same encoder and the saved ERM model, so the same transfer scores.
    again = train.train_and_evaluate(config, workdir)
    assert again == final

    # A finished run re-evaluates transfer with another penalty grid.
    config.transfer.alphas = (0.1,)
    regraded = train.train_and_evaluate(config, workdir)
    assert regraded["step"] == 2
    assert regraded["transfer/sparse_head/alpha"] == 0.1
    assert regraded["transfer/erm/test/average"] == final["transfer/erm/test/average"]
    # Training the saved ERM model longer resumes it (early stopping goes on
    # comparing against its best step); changing how it trains is refused.
    config.transfer.erm_steps = 4
    longer = train.train_and_evaluate(config, workdir)
    assert longer["transfer/erm/step"] in (3, 4)
    assert os.path.isdir(os.path.join(workdir, "erm", "checkpoints", "4"))
    config.transfer.erm_learning_rate = 0.5
    with pytest.raises(ValueError, match=r"transfer.erm_learning_rate: 0.001 -> 0.5"):
        train.train_and_evaluate(config, workdir)


def _first_loss(workdir):
    with open(os.path.join(workdir, "scalars.jsonl")) as f:
        return next(json.loads(line) for line in f)["train/loss"]


@pytest.mark.slow
def test_eight_devices_give_the_loss_of_one(tmp_path, celeba_dirs):
    config = _tiny_celeba_config(*celeba_dirs)
    config.num_train_steps = 1
    config.transfer.erm_steps = 0
    train.train_and_evaluate(config, str(tmp_path / "one"))
    config_path = tmp_path / "config.json"
    config_path.write_text(config.to_json())
    script = (
        "import json, sys, ml_collections, jax\n"
        "from sparse_shared_jax import train\n"
        "assert jax.device_count() == 8\n"
        "config = ml_collections.ConfigDict(json.load(open(sys.argv[1])))\n"
        "train.train_and_evaluate(config, sys.argv[2])\n"
    )
    env = dict(os.environ)
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    env["JAX_PLATFORMS"] = "cpu"
    result = subprocess.run(
        [sys.executable, "-c", script, str(config_path), str(tmp_path / "eight")],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    # T = 2 tasks x 4 example shards; float32 reductions in another order.
    assert _first_loss(tmp_path / "eight") == pytest.approx(
        _first_loss(tmp_path / "one"), abs=1e-4
    )


def test_tasks_come_only_from_the_configured_fields(celeba_dirs):
    config = _tiny_celeba_config(*celeba_dirs)
    config.data.task_fields = ()  # the 38 meta labels
    splits = labelled.open_benchmark(config)
    sampler = benchmark.make_task_sampler(config, splits["train"], seed=0)
    fields = {task.field for step in range(50) for task in sampler(step).tasks}
    assert "Male" not in fields and "Blond_Hair" not in fields
    assert "attribute" not in fields and len(fields) > 10


def test_worker_processes_read_the_same_benchmark_episodes(celeba_dirs):
    config = _tiny_celeba_config(*celeba_dirs)
    split = labelled.open_benchmark(config)["train"]
    source = benchmark.SplitEpisodes(
        benchmark.make_task_sampler(config, split, seed=0), split
    )
    sharding = parallel.TrainingLayout.create(2, 8, 4).episode

    def episodes(workers):
        stream = input_pipeline.EpisodeStream(source, 3, workers=workers)
        read = [jax.tree.map(np.asarray, stream(step, sharding)) for step in range(3)]
        stream.close()
        return read

    jax.tree.map(np.testing.assert_array_equal, episodes(1), episodes(0))


def test_attribute_tasks_need_an_explicit_switch(celeba_dirs):
    config = _tiny_celeba_config(*celeba_dirs)
    config.data.task_fields = ("Smiling", "attribute")
    with pytest.raises(ValueError, match="allow_attribute_tasks"):
        config_validation.validate_benchmark_config(config)
    config.data.allow_attribute_tasks = True
    config_validation.validate_benchmark_config(config)
    config.data.task_fields = ("Male",)
    with pytest.raises(ValueError, match="not a meta label of celeba"):
        config_validation.validate_benchmark_config(config)


@pytest.mark.slow
def test_missing_download_names_the_manual_step(tmp_path, celeba_dirs):
    config = _tiny_celeba_config(tmp_path / "tfds", tmp_path / "nowhere")
    config.transfer.erm_steps = 0  # no ERM baseline: not what this test checks
    with pytest.raises(FileNotFoundError, match="img_align_celeba"):
        train.train_and_evaluate(config, str(tmp_path / "run"))
    # Rerunning in the same workdir with the download's paths fixed is allowed.
    config.data.data_dir, config.data.manual_dir = map(str, celeba_dirs)
    config.num_train_steps = 0
    final = train.train_and_evaluate(config, str(tmp_path / "run"))
    assert final["step"] == 0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"name": "imagenet"}, "config.data.name must be a benchmark"),
        ({"label_type": "regression"}, "config.data.label_type"),
    ],
)
def test_bad_benchmark_config_values_are_named(tmp_path, override, message):
    config = _tiny_celeba_config(tmp_path / "tfds", tmp_path)
    for field, value in override.items():
        config.data[field] = value
    with pytest.raises(ValueError, match=message):
        config_validation.validate_benchmark_config(config)
    with pytest.raises(ValueError, match="rho="):
        _experiment("celeba", "rho=0.5")


def test_every_benchmark_experiment_config_validates_its_settings(tmp_path):
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]))
    for name in (
        "celeba",
        "waterbirds",
        "multinli",
        "civil_comments",
        "camelyon17",
        "metashift",
    ):
        config = _experiment(name, "seed=1")
        assert config_validation.is_benchmark_config(config)
        if name in ("multinli", "civil_comments"):
            with pytest.raises(ValueError, match="config.data.vocab_path"):
                config_validation.validate_benchmark_config(config)
            config.data.vocab_path = str(vocab)
        config_validation.validate_benchmark_config(config)


def test_label_columns_are_cached_next_to_the_prepared_files(celeba_dirs):
    data_dir, manual_dir = celeba_dirs
    first = benchmark_splits.open_splits(
        "celeba/64px", data_dir=data_dir, manual_dir=manual_dir
    )
    caches = list(data_dir.glob("celeba/64px/*/label_columns_*.npz"))
    assert sorted(path.name for path in caches) == [
        "label_columns_test.npz",
        "label_columns_train.npz",
        "label_columns_validation.npz",
    ]
    again = benchmark_splits.open_splits("celeba/64px", data_dir=data_dir)
    for split in first:
        assert first[split].labels.keys() == again[split].labels.keys()
        for field, column in first[split].labels.items():
            np.testing.assert_array_equal(column, again[split].labels[field])
    assert len(again["train"].labels) == 3 + 38  # label, attribute, group + meta


def test_split_reads_what_tfds_decodes(celeba_dirs):
    # The splits decode only the fields they need; the values must be those
    # of TFDS's own full decoding of the same records.
    data_dir, manual_dir = celeba_dirs
    train = benchmark_splits.open_splits(
        "celeba/64px", data_dir=data_dir, manual_dir=manual_dir
    )["train"]
    records = tfds.builder("celeba/64px", data_dir=data_dir).as_data_source("train")
    rows = np.array([7, 0, 7, 3])
    expected = [records[int(row)] for row in rows]
    np.testing.assert_array_equal(
        train.inputs(rows),
        np.stack([record["image"] for record in expected]).astype(np.float32) / 255,
    )
    for field, column in train.labels.items():
        np.testing.assert_array_equal(
            column[rows], [record[field] for record in expected], err_msg=field
        )


def test_held_out_validation_keeps_every_group(celeba_dirs):
    config = _tiny_celeba_config(*celeba_dirs)
    train = labelled.open_benchmark(config)["train"]
    rest, held_out = benchmark_splits.hold_out_validation(train, 0.25, seed=0)
    assert len(rest) + len(held_out) == len(train)
    np.testing.assert_array_equal(np.bincount(held_out.labels["group"]), [2, 2, 2, 2])
    # A subset reads the inputs and labels of the rows it was made of.
    subset = train.subset("some", np.array([5, 2, 9]))
    nested = subset.subset("fewer", np.array([2, 1]))
    np.testing.assert_array_equal(nested.inputs([0, 1]), train.inputs([9, 2]))
    np.testing.assert_array_equal(
        nested.labels["Smiling"], train.labels["Smiling"][[9, 2]]
    )


def test_worst_identity_group_on_a_known_case():
    labels = {field: np.zeros(6, np.int32) for field in map(mention_field, IDENTITIES)}
    labels["label"] = np.array([0, 0, 1, 1, 0, 1])
    labels[mention_field("male")][:] = [1, 1, 1, 1, 0, 0]
    labels[mention_field("black")][:] = [0, 1, 0, 1, 0, 0]
    predictions = np.array([0, 1, 1, 1, 1, 0])
    # male & y=0: rows 0,1 -> 1/2; male & y=1: rows 2,3 -> 1; black & y=0: row 1
    # -> 0; black & y=1: row 3 -> 1. Rows 4, 5 mention no identity.
    assert civil_comments.worst_identity_group(predictions, labels) == 0.0
    predictions[1] = 0
    assert civil_comments.worst_identity_group(predictions, labels) == 1.0


# ----------------------------------------------------------------------------
# MultiNLI: text, a BERT-style encoder, a three-class target.

_NLI_LABELS = ("entailment", "neutral", "contradiction")
_DRO_LABEL_CODES = {"contradiction": 0, "entailment": 1, "neutral": 2}
_WORDS = ("the", "cat", "dog", "sat", "ran", "slept", "no", "never", "a", ".")


def _write_multinli(root):
    """72 labelled pairs in multinli_1.0/ and group DRO's metadata_random.csv.

    Every split holds every (label, negation) group; genres alternate between
    fiction and travel. The hypothesis' verb follows the label.
    """
    release = root / "multinli_1.0"
    release.mkdir()
    lines, metadata = (
        [],
        ["," + ",".join(("gold_label", "sentence2_has_negation", "split"))],
    )
    for index in range(72):
        label = _NLI_LABELS[index % 3]
        negation = (index // 3) % 2
        split = (index // 6) % 3  # 24 pairs per split, 4 per group
        verb = ("sat", "ran", "slept")[index % 3]
        hypothesis = f"{'no' if negation else 'a'} dog {verb} ."
        lines.append(
            json.dumps(
                {
                    "gold_label": label,
                    "pairID": f"p{index}",
                    "genre": ("fiction", "travel")[(index // 7) % 2],
                    "sentence1": "the cat sat .",
                    "sentence2": hypothesis,
                }
            )
        )
        metadata.append(f"{index},{_DRO_LABEL_CODES[label]},{negation},{split}")
    (release / "multinli_1.0_train.jsonl").write_text("\n".join(lines) + "\n")
    for name in ("dev_matched", "dev_mismatched"):
        (release / f"multinli_1.0_{name}.jsonl").write_text("")
    (root / "metadata_random.csv").write_text("\n".join(metadata) + "\n")
    vocab = root / "vocab.txt"
    vocab.write_text("\n".join(("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *_WORDS)))
    return vocab


@pytest.mark.slow
def test_multinli_meta_trains_a_text_encoder_and_fits_a_three_class_head(tmp_path):
    manual_dir = tmp_path / "manual"
    manual_dir.mkdir()
    vocab = _write_multinli(manual_dir)
    config = _experiment("multinli")
    config.data.data_dir = str(tmp_path / "tfds")
    config.data.manual_dir = str(manual_dir)
    config.data.vocab_path = str(vocab)
    config.data.max_length = 16
    config.model.num_features = 4
    config.model.options = {
        "vocab_size": 15, "hidden_size": 8, "num_layers": 1, "num_heads": 2,
        "intermediate_size": 16, "max_length": 16, "sep_id": 3,
    }  # fmt: skip
    config.outer.learning_rate = 1e-3
    config.episode.num_tasks = 2
    config.episode.support_size = 6
    config.episode.query_size = 4
    config.num_train_steps = 2
    config.eval_every_steps = 10
    config.transfer.alphas = (0.0,)
    config.transfer.erm_steps = 5
    final = train.train_and_evaluate(config, str(tmp_path / "run"))
    assert final["step"] == 2
    # 6 groups (3 labels x negation) scored on the test split.
    with open(tmp_path / "run" / "transfer.json") as f:
        record = json.load(f)
    assert len(record["sparse_head"]["test"]["per_group"]) == 6
    # ERM trains a softmax head on the three classes; both retrained heads too.
    for head in ("erm", "erm_last_layer", "method_last_layer"):
        assert len(record[head]["test"]["per_group"]) == 6, head
    assert 0.0 <= final["transfer/sparse_head/test/worst_group"] <= 1.0

    # Inputs are the premise and hypothesis of each record, as TFDS decodes them.
    train_split = labelled.open_benchmark(config)["train"]
    records = tfds.data_source(
        config.data.name, data_dir=config.data.data_dir, split="train"
    )
    rows = [3, 0]
    wordpiece = tokenizer.WordPieceTokenizer.from_vocab_file(str(vocab))
    expected = wordpiece.encode(
        [records[row]["text"].decode() for row in rows],
        [records[row]["text_pair"].decode() for row in rows],
        max_length=config.data.max_length,
    )
    np.testing.assert_array_equal(train_split.inputs(np.array(rows)), expected.ids)

    # The encoder's special ids must be those of the vocab.txt.
    config.model.options.sep_id = 102
    with pytest.raises(ValueError, match="model.options.sep_id=3"):
        labelled.open_benchmark(config)
