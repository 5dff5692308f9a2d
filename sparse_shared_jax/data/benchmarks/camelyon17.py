"""Camelyon17-WILDS (Bandi et al., 2018; Koh et al., ICML 2021): tumour patches.

96x96 patches of lymph-node slides from 5 hospitals: the label is whether the
central 32x32 region holds tumour tissue, the domain the hospital (0-4, WILDS's
numbering). The shift is between hospitals: report accuracy on the held-out
hospitals (out-of-distribution).

Read from the WILDS release ``camelyon17_v1.0``: ``metadata.csv`` (an unnamed
index column, then ``patient``, ``node``, ``x_coord``, ``y_coord``,
``tumor``, ``slide``, ``center``, ``split``) and
``patches/patient_<PPP>_node_<N>/patch_patient_<PPP>_node_<N>_x_<X>_y_<Y>.png``.
WILDS's official splits, by hospital:

  train           hospitals 0, 3, 4 with ``split`` 0      302,436 patches
  id_validation   hospitals 0, 3, 4 with ``split`` 1       33,560
  validation      hospital 1 (out-of-distribution)         34,904
  test            hospital 2 (out-of-distribution)         85,054

('validation' is WILDS's 'val', the split for model selection; 'id_validation'
its 'id_val'.)

TFDS's ``patch_camelyon`` is a different dataset (PCam, from Camelyon16,
without hospitals), hence this builder.

Meta-training labels: none besides the tumour label. The slide (in the id,
``patient_<PPP>_node_<N>``) identifies the hospital, so slide or hospital
tasks would train on the domain; tasks may only re-use the tumour label (for
example one task per training slide).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import tensorflow_datasets as tfds
from etils import epath

from sparse_shared_jax.data.benchmarks._common import (
    BenchmarkBuilder,
    ImageConfig,
    Record,
    encode_image,
    find_release_root,
    image_configs,
    iter_csv,
    load_image,
    manual_dir_of,
)
from sparse_shared_jax.data.benchmarks._spec import BenchmarkSpec

NUM_HOSPITALS = 5
# WILDS's out-of-distribution hospitals (0-indexed, as in metadata.csv).
VALIDATION_HOSPITAL = 1
TEST_HOSPITAL = 2

CAMELYON17 = BenchmarkSpec(
    name="camelyon17_wilds",
    modality="image",
    label_names=("normal", "tumor"),
    attribute_names=tuple(f"hospital_{index}" for index in range(NUM_HOSPITALS)),
    splits=("train", "id_validation", "validation", "test"),
    shift="domain",
    meta_labels=(),
    manual_download=(
        "Download Camelyon17-WILDS v1.0 (camelyon17_v1.0.tar.gz, about 10 GB) "
        "from https://worksheets.codalab.org/rest/bundles/"
        "0xe45e15f39fb54e9d9e919556af67aabe/contents/blob/ (or with "
        "`pip install wilds` and wilds.get_dataset('camelyon17', "
        "download=True, root_dir=DIR)), and extract it into the manual "
        "directory: it must hold metadata.csv and patches/, directly or in "
        "the folder camelyon17_v1.0/ the archive creates."
    ),
)

_COLUMNS = ("patient", "node", "x_coord", "y_coord", "tumor", "center", "split")
_MARKERS = ("metadata.csv", "patches")
# The `split` codes of the training hospitals' patches.
_IN_DISTRIBUTION_SPLITS = {"train": 0, "id_validation": 1}


class Camelyon17Wilds(BenchmarkBuilder):
    """Camelyon17-WILDS: tumour label, hospital domain, WILDS's official splits.

    Images are stored as PNGs of the config's size: the native 96x96 patches
    unchanged in the default config, resized otherwise.
    """

    name = "camelyon17_wilds"
    SPEC = CAMELYON17
    MANUAL_DOWNLOAD_INSTRUCTIONS = CAMELYON17.manual_download
    BUILDER_CONFIGS: ClassVar[list[ImageConfig]] = image_configs(
        (96, 64), "png", "Camelyon17-WILDS"
    )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        manual_dir = manual_dir_of(dl_manager, self.name)
        root = find_release_root(manual_dir, _MARKERS, self.SPEC)
        return {
            split: self._generate_examples(root, split) for split in self.SPEC.splits
        }

    def _generate_examples(
        self, root: epath.Path, split: str
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yields (patch file, example) for the patches of one split."""
        config = self.builder_config
        for record in iter_csv(root / "metadata.csv", _COLUMNS):
            hospital = record.integer("center", range(NUM_HOSPITALS))
            if official_split(record, hospital) != split:
                continue
            patch = _patch_path(record)
            pixels = load_image(root / patch, config.image_size, record=record)
            yield (
                patch,
                self._example(
                    encode_image(pixels, config.image_format),
                    label=record.integer("tumor", (0, 1)),
                    attribute=hospital,
                    example_id=patch,
                ),
            )


def official_split(record: Record, hospital: int) -> str:
    """WILDS's official split of a patch: by hospital, then its `split` code."""
    if hospital == VALIDATION_HOSPITAL:
        return "validation"
    if hospital == TEST_HOSPITAL:
        return "test"
    code = record.integer("split", _IN_DISTRIBUTION_SPLITS.values())
    return "train" if code == _IN_DISTRIBUTION_SPLITS["train"] else "id_validation"


def _patch_path(record: Record) -> str:
    """'patches/patient_<PPP>_node_<N>/patch_..._x_<X>_y_<Y>.png' of a record."""
    patient = record.integer("patient")  # Written zero-padded, e.g. '004'.
    slide = f"patient_{patient:03d}_node_{record.integer('node')}"
    x, y = record.integer("x_coord"), record.integer("y_coord")
    return f"patches/{slide}/patch_{slide}_x_{x}_y_{y}.png"
