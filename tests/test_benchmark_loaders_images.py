"""Tests of the image benchmark builders on tiny copies in the real formats.

Each test writes a handful of images and the release's metadata files into a
temporary manual directory, laid out as the original download is, prepares the
builder offline and reads the ArrayRecord files back with a TFDS data source.
Every fabricated image is one colour (or, for Camelyon17, random pixels) that
identifies its record, so a test can check which file each example was read
from.
"""

import pickle

import numpy as np
import PIL.Image
import pytest
import tensorflow_datasets as tfds

from sparse_shared_jax.data import benchmarks
from sparse_shared_jax.data.benchmarks import _common
from sparse_shared_jax.data.benchmarks.celeba import CELEBA_ATTRIBUTES

# Solid colours survive resizing exactly and JPEG (quality 95-100) nearly.
_JPEG_ATOL = 3


@pytest.fixture(autouse=True, scope="module")
def _no_progress_bars():
    tfds.disable_progress_bar()
    yield
    tfds.enable_progress_bar()


def _colour(index: int) -> tuple[int, int, int]:
    """A distinct RGB colour per record index."""
    return (37 * index % 256, 255 - 23 * index % 256, 90 + 11 * index % 160)


def _write_image(path, colour, size=(20, 14), image_format="JPEG"):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = PIL.Image.new("RGB", size, colour)
    image.save(
        path,
        format=image_format,
        **({"quality": 100} if image_format == "JPEG" else {}),
    )


def _prepare(name, manual_dir, data_dir, size=8, image_format="png"):
    """Prepares `name` at a test-sized config from `manual_dir`."""
    config = benchmarks.ImageConfig(
        name=f"test{size}{image_format}", image_size=size, image_format=image_format
    )
    builder = tfds.builder(name, config=config, data_dir=data_dir)
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
    )
    return builder


def _examples_by_id(builder, split) -> dict[str, dict]:
    return {
        example["id"].decode(): example
        for example in builder.as_data_source(split=split)
    }


def _check_common_fields(examples, spec, size):
    for example in examples.values():
        assert example["image"].shape == (size, size, 3)
        assert example["image"].dtype == np.uint8
        num_attributes = len(spec.attribute_names)
        assert (
            example["group"] == example["label"] * num_attributes + example["attribute"]
        )
        assert set(example) == {
            "image",
            "label",
            "attribute",
            "group",
            "id",
            *spec.meta_labels,
        }


# ----------------------------------------------------------------------------
# Waterbirds: metadata.csv + CUB class folders.

# (split code, y, place) of each fabricated image.
_WATERBIRDS_ROWS = (
    [(0, 0, 0)] * 3 + [(0, 0, 1)] + [(0, 1, 0)] + [(0, 1, 1)] * 2
    + [(1, 0, 0), (1, 0, 1), (1, 1, 0), (1, 1, 1)]
    + [(2, 0, 0)] + [(2, 0, 1)] * 2 + [(2, 1, 0)] * 2 + [(2, 1, 1)]
)  # fmt: skip
# Group counts [landbird+land, landbird+water, waterbird+land, waterbird+water].
_WATERBIRDS_GROUPS = {
    "train": [3, 1, 1, 2],
    "validation": [1, 1, 1, 1],
    "test": [1, 2, 2, 1],
}
_SPECIES = {0: "026.Bronzed_Cowbird", 1: "001.Black_footed_Albatross"}


def _write_waterbirds(root, drop_column=None):
    """A Waterbirds release in root/waterbird_complete95_forest2water2."""
    release = root / "waterbird_complete95_forest2water2"
    columns = ["img_id", "img_filename", "y", "split", "place", "place_filename"]
    lines = [",".join(c for c in columns if c != drop_column)]
    for index, (split, y, place) in enumerate(_WATERBIRDS_ROWS):
        filename = f"{_SPECIES[y]}/Bird_{index:04d}.jpg"
        size = (20, 14) if index % 2 else (14, 20)
        _write_image(release / filename, _colour(index), size)
        values = dict(
            img_id=index + 1, img_filename=filename, y=y, split=split, place=place,
            place_filename=f"/o/ocean/{index:08d}.jpg",
        )  # fmt: skip
        lines.append(",".join(str(values[c]) for c in columns if c != drop_column))
    (release / "metadata.csv").write_text("\n".join(lines) + "\n")
    return release


@pytest.fixture(scope="module")
def waterbirds(tmp_path_factory):
    manual_dir = tmp_path_factory.mktemp("manual")
    _write_waterbirds(manual_dir)
    return _prepare("waterbirds", manual_dir, tmp_path_factory.mktemp("tfds"))


def test_waterbirds_fields_splits_and_groups(waterbirds):
    spec = benchmarks.BENCHMARKS["waterbirds"]
    assert spec.meta_labels == ("species",)
    assert set(waterbirds.info.splits) == set(spec.splits)
    for split, counts in _WATERBIRDS_GROUPS.items():
        source = waterbirds.as_data_source(split=split)
        np.testing.assert_array_equal(benchmarks.group_counts(source, spec), counts)
        examples = _examples_by_id(waterbirds, split)
        _check_common_fields(examples, spec, size=8)
        for image_id, example in examples.items():
            index = int(image_id[-8:-4])
            _, y, place = _WATERBIRDS_ROWS[index]
            assert (example["label"], example["attribute"]) == (y, place)
            assert example["species"] == (0 if y else 25)  # CUB class 001 or 026
            np.testing.assert_allclose(
                example["image"],
                np.broadcast_to(_colour(index), (8, 8, 3)),
                atol=_JPEG_ATOL,
            )


def test_waterbirds_default_config_stores_224px_jpegs(tmp_path):
    manual_dir = tmp_path / "manual"
    _write_waterbirds(manual_dir)
    builder = tfds.builder("waterbirds", data_dir=tmp_path / "tfds")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
    )
    assert builder.info.full_name == "waterbirds/224px/1.0.0"
    example = builder.as_data_source(split="validation")[0]
    index = int(example["id"].decode()[-8:-4])
    assert example["image"].shape == (224, 224, 3)
    np.testing.assert_allclose(
        example["image"],
        np.broadcast_to(_colour(index), (224, 224, 3)),
        atol=_JPEG_ATOL,
    )


def test_waterbirds_missing_place_column_names_the_file(tmp_path):
    manual_dir = tmp_path / "manual"
    release = _write_waterbirds(manual_dir, drop_column="place")
    with pytest.raises(benchmarks.BenchmarkDataError) as error:
        _prepare("waterbirds", manual_dir, tmp_path / "tfds")
    message = str(error.value)
    assert str(release / "metadata.csv") in message
    assert "lacks the column(s) ['place']" in message


def test_waterbirds_corrupt_image_names_the_file_and_record(tmp_path):
    manual_dir = tmp_path / "manual"
    release = _write_waterbirds(manual_dir)
    broken = release / _SPECIES[0] / "Bird_0002.jpg"  # record 2, line 4
    broken.write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(benchmarks.BenchmarkDataError) as error:
        _prepare("waterbirds", manual_dir, tmp_path / "tfds")
    message = str(error.value)
    assert f"{release / 'metadata.csv'}, record 2 (line 4)" in message
    assert f"cannot read the image {broken}" in message


def test_waterbirds_bad_label_value_names_the_record(tmp_path):
    manual_dir = tmp_path / "manual"
    release = _write_waterbirds(manual_dir)
    metadata = release / "metadata.csv"
    lines = metadata.read_text().splitlines()
    lines[1] = lines[1].replace(",0,0,0,", ",2,0,0,")  # y=2 in record 0
    metadata.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        benchmarks.BenchmarkDataError,
        match=r"record 0 \(line 2\): column 'y' holds '2'; expected one of \[0, 1\]",
    ):
        _prepare("waterbirds", manual_dir, tmp_path / "tfds")


# ----------------------------------------------------------------------------
# CelebA: img_align_celeba/ + list_attr_celeba.txt + list_eval_partition.txt.

# (partition, Blond_Hair, Male) of each fabricated image.
_CELEBA_ROWS = [
    (0, 0, 0), (0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 0), (0, 1, 1),
    (1, 0, 1), (1, 1, 0),
    (2, 0, 0), (2, 1, 1),
]  # fmt: skip
_CELEBA_GROUPS = {
    "train": [2, 1, 2, 1],
    "validation": [0, 1, 1, 0],
    "test": [1, 0, 0, 1],
}


def _celeba_attributes(index: int) -> np.ndarray:
    """int [40] values in {-1, 1} of image `index`, with its label and gender."""
    values = np.where(np.random.default_rng(index).random(40) < 0.5, -1, 1)
    _, blond, male = _CELEBA_ROWS[index]
    values[CELEBA_ATTRIBUTES.index("Blond_Hair")] = 2 * blond - 1
    values[CELEBA_ATTRIBUTES.index("Male")] = 2 * male - 1
    return values


def _write_celeba(root, header=CELEBA_ATTRIBUTES):
    """A CelebA download in the Google Drive layout: Img/, Anno/, Eval/."""
    attribute_lines = [str(len(_CELEBA_ROWS)), " ".join(header) + " "]
    partition_lines = []
    for index, (partition, _, _) in enumerate(_CELEBA_ROWS):
        filename = f"{index + 1:06d}.jpg"
        _write_image(
            root / "Img" / "img_align_celeba" / filename, _colour(index), (18, 22)
        )
        values = _celeba_attributes(index)[: len(header)]
        attribute_lines.append(filename + "".join(f" {v:2d}" for v in values))
        partition_lines.append(f"{filename} {partition}")
    (root / "Anno").mkdir()
    (root / "Anno" / "list_attr_celeba.txt").write_text(
        "\n".join(attribute_lines) + "\n"
    )
    (root / "Eval").mkdir()
    (root / "Eval" / "list_eval_partition.txt").write_text(
        "\n".join(partition_lines) + "\n"
    )


@pytest.fixture(scope="module")
def celeba(tmp_path_factory):
    manual_dir = tmp_path_factory.mktemp("manual")
    _write_celeba(manual_dir)
    return _prepare("celeba", manual_dir, tmp_path_factory.mktemp("tfds"))


def test_celeba_fields_splits_groups_and_meta_labels(celeba):
    spec = benchmarks.BENCHMARKS["celeba"]
    assert len(spec.meta_labels) == 38
    assert "Male" not in spec.meta_labels and "Blond_Hair" not in spec.meta_labels
    for split, counts in _CELEBA_GROUPS.items():
        source = celeba.as_data_source(split=split)
        np.testing.assert_array_equal(benchmarks.group_counts(source, spec), counts)
        examples = _examples_by_id(celeba, split)
        _check_common_fields(examples, spec, size=8)
        for image_id, example in examples.items():
            index = int(image_id[:6]) - 1
            _, blond, male = _CELEBA_ROWS[index]
            assert (example["label"], example["attribute"]) == (blond, male)
            values = _celeba_attributes(index)
            for name in spec.meta_labels:
                assert example[name] == (values[CELEBA_ATTRIBUTES.index(name)] + 1) // 2
            np.testing.assert_allclose(
                example["image"],
                np.broadcast_to(_colour(index), (8, 8, 3)),
                atol=_JPEG_ATOL,
            )


def test_celeba_missing_group_attribute_names_the_file(tmp_path):
    header = tuple(name for name in CELEBA_ATTRIBUTES if name != "Male")
    _write_celeba(tmp_path / "manual", header=header)
    with pytest.raises(benchmarks.BenchmarkDataError) as error:
        _prepare("celeba", tmp_path / "manual", tmp_path / "tfds")
    message = str(error.value)
    assert f"{tmp_path / 'manual' / 'Anno' / 'list_attr_celeba.txt'}, line 2" in message
    assert "lacks the attribute column(s) ['Male']" in message


def test_celeba_short_record_names_the_line(tmp_path):
    _write_celeba(tmp_path / "manual")
    attributes = tmp_path / "manual" / "Anno" / "list_attr_celeba.txt"
    lines = attributes.read_text().splitlines()
    lines[5] = " ".join(lines[5].split()[:-3])  # record 3 loses 3 values
    attributes.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        benchmarks.BenchmarkDataError,
        match=r"list_attr_celeba.txt, record 3 \(line 6\): has 38 fields",
    ):
        _prepare("celeba", tmp_path / "manual", tmp_path / "tfds")


def test_celeba_truncated_image_names_the_file_and_record(tmp_path):
    _write_celeba(tmp_path / "manual")
    image = tmp_path / "manual" / "Img" / "img_align_celeba" / "000002.jpg"
    image.write_bytes(image.read_bytes()[:40])
    with pytest.raises(benchmarks.BenchmarkDataError) as error:
        _prepare("celeba", tmp_path / "manual", tmp_path / "tfds")
    assert "list_attr_celeba.txt, record 1 (line 4)" in str(error.value)
    assert f"cannot read the image {image}" in str(error.value)


# ----------------------------------------------------------------------------
# Camelyon17-WILDS: metadata.csv + patches/patient_PPP_node_N/*.png.

# (patient, node, center, split code, tumor) of each fabricated patch.
_CAMELYON_ROWS = [
    (4, 4, 0, 0, 1), (4, 4, 0, 0, 0), (10, 2, 3, 0, 1), (15, 1, 4, 0, 0),
    (4, 4, 0, 1, 1), (10, 2, 3, 1, 0),
    (20, 0, 1, 0, 1), (21, 3, 1, 1, 0),  # hospital 1: OOD validation
    (40, 1, 2, 0, 0), (42, 3, 2, 0, 1), (42, 3, 2, 1, 1),  # hospital 2: test
]  # fmt: skip
_CAMELYON_SPLITS = {
    "train": [0, 1, 2, 3],
    "id_validation": [4, 5],
    "validation": [6, 7],
    "test": [8, 9, 10],
}


def _camelyon_patch(index: int) -> np.ndarray:
    return np.random.default_rng(index).integers(0, 256, (96, 96, 3), dtype=np.uint8)


def _write_camelyon(root, drop_column=None):
    """A Camelyon17-WILDS release in root/camelyon17_v1.0."""
    release = root / "camelyon17_v1.0"
    columns = [
        "",
        "patient",
        "node",
        "x_coord",
        "y_coord",
        "tumor",
        "slide",
        "center",
        "split",
    ]
    lines = [",".join(c for c in columns if c != drop_column)]
    for index, (patient, node, center, split, tumor) in enumerate(_CAMELYON_ROWS):
        x, y = 3200 + 96 * index, 21000 + 32 * index
        slide = f"patient_{patient:03d}_node_{node}"
        path = release / "patches" / slide / f"patch_{slide}_x_{x}_y_{y}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        PIL.Image.fromarray(_camelyon_patch(index)).save(path)
        values = {
            "": index, "patient": f"{patient:03d}", "node": node, "x_coord": x,
            "y_coord": y, "tumor": tumor, "slide": index // 2, "center": center,
            "split": split,
        }  # fmt: skip
        lines.append(",".join(str(values[c]) for c in columns if c != drop_column))
    (release / "metadata.csv").write_text("\n".join(lines) + "\n")
    return release


def test_camelyon17_official_splits_by_hospital_with_native_patches(tmp_path):
    _write_camelyon(tmp_path / "manual")
    # The default config stores the native 96x96 patches losslessly.
    builder = tfds.builder("camelyon17_wilds", data_dir=tmp_path / "tfds")
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=tmp_path / "manual")
    )
    spec = benchmarks.BENCHMARKS["camelyon17_wilds"]
    assert spec.shift == "domain" and spec.num_groups == 10
    assert set(builder.info.splits) == set(spec.splits)
    for split, indices in _CAMELYON_SPLITS.items():
        examples = _examples_by_id(builder, split)
        _check_common_fields(examples, spec, size=96)
        assert len(examples) == len(indices)
        for index in indices:
            patient, node, center, _, tumor = _CAMELYON_ROWS[index]
            x, y = 3200 + 96 * index, 21000 + 32 * index
            slide = f"patient_{patient:03d}_node_{node}"
            example = examples[f"patches/{slide}/patch_{slide}_x_{x}_y_{y}.png"]
            assert (example["label"], example["attribute"]) == (tumor, center)
            np.testing.assert_array_equal(example["image"], _camelyon_patch(index))


def test_camelyon17_missing_hospital_column_names_the_file(tmp_path):
    release = _write_camelyon(tmp_path / "manual", drop_column="center")
    with pytest.raises(
        benchmarks.BenchmarkDataError, match="lacks the column\\(s\\) \\['center'\\]"
    ) as error:
        _prepare("camelyon17_wilds", tmp_path / "manual", tmp_path / "tfds")
    assert str(release / "metadata.csv") in str(error.value)


def test_camelyon17_missing_patch_names_the_file_and_record(tmp_path):
    release = _write_camelyon(tmp_path / "manual")
    patch = next((release / "patches" / "patient_015_node_1").glob("*.png"))
    patch.unlink()
    with pytest.raises(benchmarks.BenchmarkDataError) as error:
        _prepare("camelyon17_wilds", tmp_path / "manual", tmp_path / "tfds")
    assert "metadata.csv, record 3 (line 5)" in str(error.value)
    assert f"cannot read the image {patch}" in str(error.value)


# ----------------------------------------------------------------------------
# MetaShift: imageID_to_group.pkl + train/ and val_out_of_domain/ folders.

# (folder, animal, context) of each fabricated image.
_METASHIFT_ROWS = (
    [("train", "cat", "indoor")] * 3 + [("train", "cat", "outdoor")]
    + [("train", "dog", "indoor")] + [("train", "dog", "outdoor")] * 3
    + [("val_out_of_domain", animal, context)
       for animal in ("cat", "dog") for context in ("indoor", "outdoor")]
)  # fmt: skip
_METASHIFT_GROUPS = {"train": [3, 1, 1, 3], "test": [1, 1, 1, 1]}


def _write_metashift(root):
    """The subpopulation-shift folder, its images linked into Visual Genome's."""
    release = root / "MetaShift-subpopulation-shift"
    images = root / "allImages" / "images"
    groups = {"9999999": ["cat(outdoor)"]}  # listed but not copied, as released
    for index, (folder, animal, context) in enumerate(_METASHIFT_ROWS):
        image_id = str(2_400_000 + index)
        _write_image(images / f"{image_id}.jpg", _colour(index), (24, 16))
        link = release / folder / animal / f"{image_id}.jpg"
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(images / f"{image_id}.jpg")
        groups[image_id] = [f"{animal}({context})"]
    with open(release / "imageID_to_group.pkl", "wb") as file:
        pickle.dump(groups, file)
    return release


def test_metashift_fields_splits_and_groups(tmp_path):
    _write_metashift(tmp_path / "manual")
    builder = _prepare("metashift", tmp_path / "manual", tmp_path / "tfds")
    spec = benchmarks.BENCHMARKS["metashift"]
    for split, counts in _METASHIFT_GROUPS.items():
        source = builder.as_data_source(split=split)
        np.testing.assert_array_equal(benchmarks.group_counts(source, spec), counts)
        examples = _examples_by_id(builder, split)
        _check_common_fields(examples, spec, size=8)
        for image_id, example in examples.items():
            index = int(image_id) - 2_400_000
            _, animal, context = _METASHIFT_ROWS[index]
            assert spec.label_names[example["label"]] == animal
            assert spec.attribute_names[example["attribute"]] == context
            np.testing.assert_allclose(
                example["image"],
                np.broadcast_to(_colour(index), (8, 8, 3)),
                atol=_JPEG_ATOL,
            )


def test_metashift_image_without_group_names_the_file(tmp_path):
    release = _write_metashift(tmp_path / "manual")
    groups_file = release / "imageID_to_group.pkl"
    groups = pickle.loads(groups_file.read_bytes())
    del groups["2400004"]  # the train dog
    groups_file.write_bytes(pickle.dumps(groups))
    with pytest.raises(benchmarks.BenchmarkDataError) as error:
        _prepare("metashift", tmp_path / "manual", tmp_path / "tfds")
    assert str(release / "train" / "dog" / "2400004.jpg") in str(error.value)
    assert "the group None" in str(error.value)


def test_metashift_refuses_pickled_code(tmp_path):
    release = _write_metashift(tmp_path / "manual")
    (release / "imageID_to_group.pkl").write_bytes(pickle.dumps({"1": [np.float32(1)]}))
    with pytest.raises(benchmarks.BenchmarkDataError, match="refusing to load numpy"):
        _prepare("metashift", tmp_path / "manual", tmp_path / "tfds")


# ----------------------------------------------------------------------------
# Manual directories.


@pytest.mark.parametrize(
    "name", ["waterbirds", "celeba", "camelyon17_wilds", "metashift"]
)
def test_missing_manual_dir_names_the_download_step(tmp_path, name):
    spec = benchmarks.BENCHMARKS[name]
    with pytest.raises(FileNotFoundError) as error:
        benchmarks.load_benchmark(name, "train", data_dir=tmp_path)
    message = str(error.value)
    assert f"Cannot prepare {name!r}: the files must be downloaded by hand" in message
    assert str(tmp_path / "downloads" / "manual") in message
    assert spec.manual_download in message


@pytest.mark.parametrize(
    ("name", "missing"),
    [
        ("waterbirds", "['metadata.csv', '001.Black_footed_Albatross']"),
        ("celeba", "['img_align_celeba']"),
        ("camelyon17_wilds", "['metadata.csv', 'patches']"),
        ("metashift", "['imageID_to_group.pkl', 'train', 'val_out_of_domain']"),
    ],
)
def test_manual_dir_without_the_release_names_what_is_missing(tmp_path, name, missing):
    manual_dir = tmp_path / "manual"
    (manual_dir / "other_dataset").mkdir(parents=True)
    with pytest.raises(FileNotFoundError) as error:
        benchmarks.load_benchmark(
            name, "train", data_dir=tmp_path, manual_dir=manual_dir
        )
    message = str(error.value)
    assert (
        f"neither {manual_dir} nor any folder directly inside it holds all of {missing}"
        in message
    )
    assert benchmarks.BENCHMARKS[name].manual_download in message


def test_load_benchmark_prepares_once_then_reads_the_files(tmp_path):
    _write_metashift(tmp_path / "manual")
    source = benchmarks.load_benchmark(
        "metashift/64px",
        "test",
        data_dir=tmp_path / "tfds",
        manual_dir=tmp_path / "manual",
    )
    assert len(source) == 4 and source[0]["image"].shape == (64, 64, 3)
    # Prepared: the manual directory is no longer needed.
    again = benchmarks.load_benchmark(
        "metashift/64px", "test", data_dir=tmp_path / "tfds"
    )
    assert sorted(ex["id"] for ex in again) == sorted(ex["id"] for ex in source)
    # The files alone describe the dataset, as for a user without this package.
    prepared = tmp_path / "tfds" / "metashift" / "64px" / "1.0.0"
    restored = tfds.builder_from_directory(prepared).as_data_source(split="test")
    by_id = {example["id"]: example for example in restored}
    for example in source:
        for key, value in example.items():
            np.testing.assert_array_equal(by_id[example["id"]][key], value)


# ----------------------------------------------------------------------------
# Shared helpers.


def test_group_of_and_group_names_agree():
    spec = benchmarks.BENCHMARKS["waterbirds"]
    names = _common.group_names(spec)
    assert names == (
        "landbird+land",
        "landbird+water",
        "waterbird+land",
        "waterbird+water",
    )
    assert names[benchmarks.group_of(1, 0, 2)] == "waterbird+land"
    camelyon = benchmarks.BENCHMARKS["camelyon17_wilds"]
    assert (
        _common.group_names(camelyon)[benchmarks.group_of(1, 3, 5)]
        == "tumor+hospital_3"
    )


def test_iter_csv_reads_multiline_fields_and_names_short_records(tmp_path):
    path = tmp_path / "table.csv"
    path.write_text('id,text,y\n1,"two\nlines",1.0\n2,plain\n')
    records = _common.iter_csv(path, ["id", "text", "y"])
    first = next(records)
    assert (first.text("text"), first.integer("y"), first.line) == ("two\nlines", 1, 3)
    with pytest.raises(
        benchmarks.BenchmarkDataError,
        match=r"record 1 \(line 4\): has a different number of fields",
    ):
        next(records)
    with pytest.raises(
        benchmarks.BenchmarkDataError,
        match="column 'text' holds 'two\\\\nlines', not an integer",
    ):
        first.integer("text")


def test_load_image_resizes_the_shorter_side_and_keeps_the_centre(tmp_path):
    pixels = np.zeros((40, 20, 3), np.uint8)  # [H, W, 3]: a tall image
    pixels[10:30] = 255  # the centre 20x20 is white, the rest black
    PIL.Image.fromarray(pixels).save(tmp_path / "tall.png")
    image = _common.load_image(tmp_path / "tall.png", 10)
    assert image.shape == (10, 10, 3) and image.dtype == np.uint8
    # White but for bicubic's reach into the black band at the crop's edges.
    np.testing.assert_array_equal(image[2:-2], 255)
    assert image.mean() > 240
    same = _common.load_image(tmp_path / "tall.png", 20)  # no resampling
    np.testing.assert_array_equal(same, pixels[10:30])
