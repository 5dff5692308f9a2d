"""CelebA (Liu et al., ICCV 2015) as the blond-hair / gender benchmark.

The group-robustness setting of Sagawa et al. (ICLR 2020): the label is
Blond_Hair, the spurious attribute Male (blond men are 0.85% of the training
set). Report worst-group accuracy over the 4 (hair, gender) groups.

Read from the original release (https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html):
``img_align_celeba/`` (the aligned and cropped 178x218 JPEGs),
``list_attr_celeba.txt`` (line 1: the number of images; line 2: the 40
attribute names; then ``<image> <40 values of -1 or 1>``) and
``list_eval_partition.txt`` (``<image> <0/1/2>`` = train/validation/test).
Official split sizes: 162,770 / 19,867 / 19,962; training groups (not blond,
female) 71,629, (not blond, male) 66,874, (blond, female) 22,880, (blond, male)
1,387.

Why not TFDS's ``celeb_a``: it downloads from Google Drive links that are
often quota-limited, and it writes no label/attribute/group fields (only the
40 attributes as booleans); this builder reads the files a user downloads by
hand and writes the benchmark's fields like every other benchmark here.

Meta-training labels: the other 38 attributes (every attribute but Blond_Hair
and Male), as 0/1 fields named as in the release (e.g. ``Smiling``). Male is
the evaluation attribute and is kept out of them; a config that wants tasks on
it must read 'attribute' explicitly.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import tensorflow_datasets as tfds
from etils import epath

from sparse_shared_jax.data.benchmarks._common import (
    BenchmarkBuilder,
    BenchmarkDataError,
    ImageConfig,
    Record,
    encode_image,
    find_release_root,
    image_configs,
    load_image,
    manual_dir_of,
)
from sparse_shared_jax.data.benchmarks._spec import BenchmarkSpec

# The 40 attributes, in the order of list_attr_celeba.txt.
CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes",
    "Bald", "Bangs", "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair",
    "Blurry", "Brown_Hair", "Bushy_Eyebrows", "Chubby", "Double_Chin",
    "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones",
    "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard",
    "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
    "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair",
    "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace",
    "Wearing_Necktie", "Young",
)  # fmt: skip
LABEL_ATTRIBUTE = "Blond_Hair"
GROUP_ATTRIBUTE = "Male"

CELEBA = BenchmarkSpec(
    name="celeba",
    modality="image",
    label_names=("not_blond", "blond"),
    attribute_names=("female", "male"),
    splits=("train", "validation", "test"),
    shift="subpopulation",
    meta_labels=tuple(
        name
        for name in CELEBA_ATTRIBUTES
        if name not in (LABEL_ATTRIBUTE, GROUP_ATTRIBUTE)
    ),
    manual_download=(
        "Download CelebA from https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html "
        "(Google Drive or Baidu): Img/img_align_celeba.zip, "
        "Anno/list_attr_celeba.txt and Eval/list_eval_partition.txt. Put them "
        "in the manual directory with the zip extracted: it must hold "
        "img_align_celeba/ (000001.jpg ...), list_attr_celeba.txt and "
        "list_eval_partition.txt, each directly or in a folder directly inside "
        "it (the Drive layout Img/, Anno/, Eval/ works)."
    ),
)

_ATTRIBUTES_FILE = "list_attr_celeba.txt"
_PARTITION_FILE = "list_eval_partition.txt"
_IMAGE_FOLDER = "img_align_celeba"
# list_eval_partition.txt's codes.
_SPLIT_CODES = {"train": 0, "validation": 1, "test": 2}


class CelebA(BenchmarkBuilder):
    """CelebA: Blond_Hair label, Male attribute, 38 attribute meta labels.

    Images are stored as square JPEGs (quality 95) of the config's size: the
    178x218 aligned faces have their width resized to it and the centre kept
    (as the usual centre crop to 178x178, then resize).
    """

    name = "celeba"
    SPEC = CELEBA
    MANUAL_DOWNLOAD_INSTRUCTIONS = CELEBA.manual_download
    BUILDER_CONFIGS: ClassVar[list[ImageConfig]] = image_configs(
        (224, 64), "jpeg", "CelebA"
    )

    def _meta_features(self) -> dict[str, tfds.features.FeatureConnector]:
        return {
            name: tfds.features.ClassLabel(names=("no", "yes"))
            for name in self.SPEC.meta_labels
        }

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        manual_dir = manual_dir_of(dl_manager, self.name)
        images = find_release_root(manual_dir, (_IMAGE_FOLDER,), self.SPEC)
        attributes = find_release_root(manual_dir, (_ATTRIBUTES_FILE,), self.SPEC)
        partitions = find_release_root(manual_dir, (_PARTITION_FILE,), self.SPEC)
        partition_of = _read_partitions(partitions / _PARTITION_FILE)
        return {
            split: self._generate_examples(
                images / _IMAGE_FOLDER,
                attributes / _ATTRIBUTES_FILE,
                partition_of,
                code,
            )
            for split, code in _SPLIT_CODES.items()
        }

    def _generate_examples(
        self,
        image_dir: epath.Path,
        attributes_file: epath.Path,
        partition_of: Mapping[str, int],
        split_code: int,
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yields (image file, example) for the images of one partition."""
        config = self.builder_config
        for record in _iter_attribute_records(attributes_file):
            image_id = record.text("image_id")
            if image_id not in partition_of:
                raise record.error(f"{image_id!r} is not in {_PARTITION_FILE}.")
            if partition_of[image_id] != split_code:
                continue
            # -1/1 in the file -> 0/1.
            values = {
                name: (record.integer(name, (-1, 1)) + 1) // 2
                for name in CELEBA_ATTRIBUTES
            }
            pixels = load_image(image_dir / image_id, config.image_size, record=record)
            yield (
                image_id,
                self._example(
                    encode_image(pixels, config.image_format),
                    label=values[LABEL_ATTRIBUTE],
                    attribute=values[GROUP_ATTRIBUTE],
                    example_id=image_id,
                    **{name: values[name] for name in self.SPEC.meta_labels},
                ),
            )


def _read_partitions(path: epath.Path) -> dict[str, int]:
    """Reads list_eval_partition.txt: image file -> 0 (train), 1 or 2.

    Raises:
      BenchmarkDataError: naming the file and line of a malformed line.
    """
    partition_of = {}
    with path.open("r") as file:
        for line_number, line in enumerate(file, start=1):
            fields = line.split()
            if not fields:
                continue
            record = Record(
                path,
                len(partition_of),
                line_number,
                dict(zip(("image_id", "partition"), fields, strict=False)),
            )
            if len(fields) != 2:
                raise record.error("expected '<image file> <partition 0, 1 or 2>'.")
            partition_of[fields[0]] = record.integer("partition", _SPLIT_CODES.values())
    return partition_of


def _iter_attribute_records(path: epath.Path) -> Iterator[Record]:
    """Reads list_attr_celeba.txt, one `Record` per image.

    Fields: 'image_id' and each attribute name of the header (values '-1'/'1').

    Raises:
      BenchmarkDataError: naming the file if the count line is not a number,
        the header lacks one of the 40 attributes, or the file holds fewer or
        more images than its count line says; naming the file and record if a
        line has the wrong number of fields.
    """
    with path.open("r") as file:
        count_line = file.readline().strip()
        header = file.readline().split()
        if not count_line.isdigit():
            raise BenchmarkDataError(
                f"{path}, line 1: expected the number of images, found "
                f"{count_line!r}. Is this the original {_ATTRIBUTES_FILE}?"
            )
        missing = [name for name in CELEBA_ATTRIBUTES if name not in header]
        if missing:
            raise BenchmarkDataError(
                f"{path}, line 2: the header lacks the attribute column(s) "
                f"{missing}; CelebA's 40 attributes are needed (the label "
                f"{LABEL_ATTRIBUTE}, the group attribute {GROUP_ATTRIBUTE} and "
                "the meta labels)."
            )
        columns = ("image_id", *header)
        num_records = 0
        for line_number, line in enumerate(file, start=3):
            fields = line.split()
            if not fields:
                continue
            record = Record(
                path, num_records, line_number, dict(zip(columns, fields, strict=False))
            )
            if len(fields) != len(columns):
                raise record.error(
                    f"has {len(fields)} fields; expected the image and "
                    f"{len(header)} attribute values."
                )
            num_records += 1
            yield record
    if num_records != int(count_line):
        raise BenchmarkDataError(
            f"{path}: line 1 announces {count_line} images but the file lists "
            f"{num_records}; the file is incomplete."
        )
