"""MetaShift Cats vs Dogs (Liang & Zou, ICLR 2022): indoor/outdoor context.

Visual Genome photos of cats and dogs: the label is cat vs dog, the spurious
attribute the context, indoor or outdoor. In training most cats are indoors
and most dogs outdoors; the held-out split is balanced. Report worst-group
accuracy over the 4 (animal, context) groups. The subpopulation-shift
literature evaluates on it next to Waterbirds, CelebA, MultiNLI and
CivilComments (e.g. SubpopBench, Yang et al., ICML 2023) as a spurious
correlation that occurs naturally in photos rather than being pasted on.

Read from the folder that the MetaShift repository's
``dataset/subpopulation_shift_cat_dog_indoor_outdoor.py`` writes,
``MetaShift-subpopulation-shift/``: ``imageID_to_group.pkl`` (a pickled dict:
image id -> ['cat(indoor)'] and the like), ``train/{cat,dog}/<id>.jpg`` and
``val_out_of_domain/{cat,dog}/<id>.jpg`` (symbolic links into Visual Genome's
images, which must resolve). With the script's defaults: train 850 cats (750
indoor, 100 outdoor) and 850 dogs (100 indoor, 750 outdoor); 'test' (the
release's val_out_of_domain) 144 images in each of the 4 groups.

Splits: 'train' and 'test' only, as released; a validation set for model
selection must be carved out of 'train' by the user.

Meta-training labels: none besides the label. The context subsets MetaShift
defines (e.g. cat(sofa)) are not part of this release and describe the
indoor/outdoor attribute, so they are not stored.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import tensorflow_datasets as tfds
from etils import epath

from sparse_shared_jax.data.benchmarks._common import (
    BenchmarkBuilder,
    BenchmarkDataError,
    ImageConfig,
    encode_image,
    find_release_root,
    image_configs,
    load_image,
    manual_dir_of,
)
from sparse_shared_jax.data.benchmarks._spec import BenchmarkSpec

METASHIFT = BenchmarkSpec(
    name="metashift",
    modality="image",
    label_names=("cat", "dog"),
    attribute_names=("indoor", "outdoor"),
    splits=("train", "test"),
    shift="subpopulation",
    meta_labels=(),
    manual_download=(
        "Generate MetaShift's Cats vs Dogs subpopulation-shift set: download "
        "the Visual Genome images (https://nlp.stanford.edu/data/gqa/images.zip, "
        "about 20 GB, unzipped to allImages/images/), clone "
        "https://github.com/Weixin-Liang/MetaShift, set IMAGE_DATA_FOLDER in "
        "dataset/Constants.py and SUBPOPULATION_SHIFT_DATASET_FOLDER in "
        "dataset/subpopulation_shift_cat_dog_indoor_outdoor.py, and run that "
        "script from dataset/. The manual directory must hold its output "
        "(imageID_to_group.pkl, train/, val_out_of_domain/), directly or in "
        "the folder MetaShift-subpopulation-shift/; its image links must "
        "resolve."
    ),
)

_GROUPS_FILE = "imageID_to_group.pkl"
# Our split -> the release's folder.
_SPLIT_FOLDERS = {"train": "train", "test": "val_out_of_domain"}
_MARKERS = (_GROUPS_FILE, *_SPLIT_FOLDERS.values())
# A group name of imageID_to_group.pkl, e.g. 'cat(indoor)'.
_GROUP_NAME = re.compile(r"(cat|dog)\((indoor|outdoor)\)")


class MetaShift(BenchmarkBuilder):
    """MetaShift Cats vs Dogs: cat/dog label, indoor/outdoor attribute.

    Images are stored as square JPEGs (quality 95) of the config's size: the
    Visual Genome photos have their shorter side resized and the centre kept.
    """

    name = "metashift"
    SPEC = METASHIFT
    MANUAL_DOWNLOAD_INSTRUCTIONS = METASHIFT.manual_download
    BUILDER_CONFIGS: ClassVar[list[ImageConfig]] = image_configs(
        (224, 64), "jpeg", "MetaShift"
    )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        manual_dir = manual_dir_of(dl_manager, self.name)
        root = find_release_root(manual_dir, _MARKERS, self.SPEC)
        group_of_image = _read_groups(root / _GROUPS_FILE)
        return {
            split: self._generate_examples(root / folder, group_of_image)
            for split, folder in _SPLIT_FOLDERS.items()
        }

    def _generate_examples(
        self, split_dir: epath.Path, group_of_image: Mapping[str, str]
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """Yields (image id, example) for every image of one split folder."""
        config = self.builder_config
        for label, animal in enumerate(self.SPEC.label_names):
            for path in sorted((split_dir / animal).glob("*.jpg")):
                image_id = path.stem
                group = group_of_image.get(image_id)
                match = _GROUP_NAME.fullmatch(group or "")
                if match is None or match.group(1) != animal:
                    raise BenchmarkDataError(
                        f"{path}: {_GROUPS_FILE} gives image {image_id!r} the "
                        f"group {group!r}; expected '{animal}(indoor)' or "
                        f"'{animal}(outdoor)'."
                    )
                pixels = load_image(path, config.image_size)
                yield (
                    image_id,
                    self._example(
                        encode_image(pixels, config.image_format),
                        label=label,
                        attribute=self.SPEC.attribute_names.index(match.group(2)),
                        example_id=image_id,
                    ),
                )


class _PlainDataUnpickler(pickle.Unpickler):
    """Loads pickles of built-in containers and strings only.

    Refuses every class or function, so a tampered file cannot run code.
    """

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(
            f"refusing to load {module}.{name}: only plain data is expected."
        )


def _read_groups(path: epath.Path) -> dict[str, str]:
    """Reads imageID_to_group.pkl: image id -> group name, e.g. 'cat(indoor)'.

    The release maps each id to a one-element list; a bare string is accepted.

    Raises:
      BenchmarkDataError: naming the file (and the image id) if it is not a
        pickled dict of ids to one group name each.
    """
    try:
        with path.open("rb") as file:
            groups = _PlainDataUnpickler(file).load()
    except (pickle.UnpicklingError, EOFError, ValueError) as error:
        raise BenchmarkDataError(f"{path}: cannot be read: {error}") from error
    if not isinstance(groups, dict):
        raise BenchmarkDataError(
            f"{path}: expected a dict of image id -> group, found "
            f"{type(groups).__name__}."
        )
    group_of_image = {}
    for image_id, value in groups.items():
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list | tuple) or len(names) != 1:
            raise BenchmarkDataError(
                f"{path}: image {image_id!r} has the group {value!r}; expected "
                "one group name such as ['cat(indoor)']."
            )
        group_of_image[str(image_id)] = names[0]
    return group_of_image
