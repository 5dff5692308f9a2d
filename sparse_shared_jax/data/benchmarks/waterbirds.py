"""Waterbirds (Sagawa et al., ICLR 2020): birds pasted on land or water scenes.

CUB-200-2011 birds cut out and pasted onto Places backgrounds: the label is
waterbird vs landbird, the spurious attribute the background (land or water),
which agrees with the label for 95% of the training images. Report worst-group
accuracy over the 4 (label, background) groups.

Read from the original release: ``metadata.csv`` (columns ``img_filename``,
``y``, ``split``, ``place``; ``split`` 0/1/2 = train/validation/test) next to
the 200 CUB class folders, e.g. ``001.Black_footed_Albatross/<name>.jpg``.
Official split sizes: 4,795 / 1,199 / 5,794; training groups (landbird, land)
3,498, (landbird, water) 184, (waterbird, land) 56, (waterbird, water) 1,057.

Meta-training labels: ``species``, the CUB class (0-199, from the image's
folder). A species is either a waterbird or a landbird, so species tasks are
fine-grained versions of the target label, never of the background. The
background ('attribute', and the Places scene in ``place_filename``, which is
not stored) must not be used for meta-training.
"""

from __future__ import annotations

import re
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

NUM_SPECIES = 200

WATERBIRDS = BenchmarkSpec(
    name="waterbirds",
    modality="image",
    label_names=("landbird", "waterbird"),
    attribute_names=("land", "water"),
    splits=("train", "validation", "test"),
    shift="subpopulation",
    meta_labels=("species",),
    manual_download=(
        "Download the Waterbirds release of Sagawa et al. (2020), "
        "https://nlp.stanford.edu/data/dro/waterbird_complete95_forest2water2.tar.gz "
        "(or the WILDS copy, waterbirds_v1.0.tar.gz from "
        "https://worksheets.codalab.org/rest/bundles/"
        "0x505056d5cdea4e4eaa0e242cbfe2daa4/contents/blob/), and extract it "
        "into the manual directory: it must hold metadata.csv and the 200 "
        "CUB class folders (001.Black_footed_Albatross/ ...), directly or in "
        "the folder the archive creates."
    ),
)

# The release's `split` codes.
_SPLIT_CODES = {"train": 0, "validation": 1, "test": 2}
_COLUMNS = ("img_filename", "y", "split", "place")
# Files that single out the release root in a shared manual directory.
_MARKERS = ("metadata.csv", "001.Black_footed_Albatross")
# A CUB class folder: '<3-digit class number>.<name>'.
_SPECIES_FOLDER = re.compile(r"(\d{3})\.")


class Waterbirds(BenchmarkBuilder):
    """Waterbirds: landbird/waterbird label, land/water background attribute.

    Images are stored as square JPEGs (quality 95) of the config's size: the
    originals (of varying sizes) have their shorter side resized and the
    centre kept.
    """

    name = "waterbirds"
    SPEC = WATERBIRDS
    MANUAL_DOWNLOAD_INSTRUCTIONS = WATERBIRDS.manual_download
    BUILDER_CONFIGS: ClassVar[list[ImageConfig]] = image_configs(
        (224, 64), "jpeg", "Waterbirds"
    )

    def _meta_features(self) -> dict[str, tfds.features.FeatureConnector]:
        return {"species": tfds.features.ClassLabel(num_classes=NUM_SPECIES)}

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        manual_dir = manual_dir_of(dl_manager, self.name)
        root = find_release_root(manual_dir, _MARKERS, self.SPEC)
        return {
            split: self._generate_examples(root, code)
            for split, code in _SPLIT_CODES.items()
        }

    def _generate_examples(
        self, root: epath.Path, split_code: int
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yields (image file, example) for the records of one split."""
        config = self.builder_config
        for record in iter_csv(root / "metadata.csv", _COLUMNS):
            if record.integer("split", _SPLIT_CODES.values()) != split_code:
                continue
            filename = record.text("img_filename")
            pixels = load_image(root / filename, config.image_size, record=record)
            yield (
                filename,
                self._example(
                    encode_image(pixels, config.image_format),
                    label=record.integer("y", (0, 1)),
                    attribute=record.integer("place", (0, 1)),
                    example_id=filename,
                    species=_species(record, filename),
                ),
            )


def _species(record: Record, filename: str) -> int:
    """The CUB class (0-199) of an image, from its folder '<NNN>.<name>/'."""
    match = _SPECIES_FOLDER.match(filename)
    if match is None or not 1 <= int(match.group(1)) <= NUM_SPECIES:
        raise record.error(
            f"img_filename {filename!r} is not in a CUB class folder "
            "'<001-200>.<name>/'."
        )
    return int(match.group(1)) - 1
