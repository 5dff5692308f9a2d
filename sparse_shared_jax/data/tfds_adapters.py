"""Ground-truth datasets served from TFDS: the real 3D Shapes and dSprites.

`TfdsGroundTruth` reads a prepared TFDS dataset through ``tfds.data_source``
(random access to ArrayRecord files, no TensorFlow needed) and serves it with
the `GroundTruthDataset` interface: `observations(factors)` looks up the record
of each factor combination, `factor_values(factors)` returns the stored values.

TFDS stores every factor ``key`` of these datasets as two features,
``label_<key>`` (the class index) and ``value_<key>`` (the natural value), next
to ``image``. Records are not stored in factor order (TFDS shuffles them while
writing), so the adapter reads the labels of every record once and builds the
index from them; it requires every factor combination exactly once.

from sparse_shared_jax import data

dataset = data.ground_truth("tfds:shapes3d", data_dir="/data/tfds")
images = dataset.observations(dataset.sample_factors(8, rng=0))  # [8, 64, 64, 3]
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow_datasets as tfds
from absl import logging

from sparse_shared_jax.data import _render
from sparse_shared_jax.data.dsprites import SyntheticDSprites
from sparse_shared_jax.data.ground_truth import GroundTruthDataset
from sparse_shared_jax.data.shapes3d import SyntheticShapes3D


@dataclasses.dataclass(frozen=True)
class TfdsFormat:
    """How a ground-truth dataset's factors and images are stored in TFDS.

    Attributes:
      factor_names: the names the `GroundTruthDataset` gives its factors.
      feature_keys: per factor, the TFDS key: its class index is the feature
        ``label_<key>`` and its natural value ``value_<key>``.
      pixel_max: the stored uint8 value of full intensity; images are served
        divided by it.
    """

    factor_names: tuple[str, ...]
    feature_keys: tuple[str, ...]
    pixel_max: int

    def label_features(self) -> list[str]:
        return [f"label_{key}" for key in self.feature_keys]

    def value_features(self) -> list[str]:
        return [f"value_{key}" for key in self.feature_keys]


# TFDS `shapes3d`: 10 floor hues x 10 wall hues x 10 object hues x 8 scales x
# 4 shapes x 15 orientations, RGB images with values 0-255.
SHAPES3D_FORMAT = TfdsFormat(
    factor_names=SyntheticShapes3D.factor_names,
    feature_keys=SyntheticShapes3D.factor_names,
    pixel_max=255,
)
# TFDS `dsprites`: 3 shapes x 6 scales x 40 orientations x 32 x 32 positions,
# binary images stored with values 0 and 1 (as in DeepMind's HDF5 file).
DSPRITES_FORMAT = TfdsFormat(
    factor_names=SyntheticDSprites.factor_names,
    feature_keys=("shape", "scale", "orientation", "x_position", "y_position"),
    pixel_max=1,
)


class TfdsGroundTruth(GroundTruthDataset):
    """A prepared TFDS dataset of a complete factor grid, float32 images in [0, 1].

    `factor_sizes` are the numbers of classes of the ``label_*`` features and
    `observation_shape` the shape of ``image``. Building the index reads every
    record once, about 0.1 ms a record: up to a minute or so for the real
    datasets' 0.5M-0.7M images.

    Args:
      name: the TFDS dataset, e.g. ``"shapes3d"`` or ``"shapes3d:2.0.0"``.
      data_format: the dataset's feature layout.
      data_dir: the TFDS data directory; None uses TFDS's default
        (``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``).
      split: the split holding the grid.

    Raises:
      FileNotFoundError: if the dataset is not prepared in `data_dir` (the
        message says how to prepare or copy it).
      ValueError: if its records do not hold every factor combination exactly
        once.
      NotImplementedError: TFDS's own, if the dataset is prepared only as
        TFRecord files, which have no random access.
    """

    def __init__(
        self,
        name: str,
        data_format: TfdsFormat,
        data_dir: str | os.PathLike | None = None,
        split: str = "train",
    ):
        builder = tfds.builder(name, data_dir=data_dir)
        features = builder.info.features
        self.factor_names = data_format.factor_names
        self.factor_sizes = tuple(
            features[key].num_classes for key in data_format.label_features()
        )
        self.observation_shape = tuple(features["image"].shape)
        self._pixel_scale = np.float32(1.0 / data_format.pixel_max)
        self._source = _open_data_source(builder, name, split)
        labels, values = _read_factors(self._source, data_format, name)
        self._record_of = _index_records(labels, self.factor_sizes, name, split)
        self._values = values[self._record_of]  # [num combinations, K]

    def observations(self, factors: np.ndarray) -> np.ndarray:
        """Reads the images: int [num, K] -> float32 [num, *observation_shape].

        Raises:
          ValueError: if `factors` is not [num, K] or an index is out of range.
        """
        records = self._record_of[self._combinations(factors)]
        images = np.empty((len(records), *self.observation_shape), np.float32)
        # One batched read: ArrayRecord fetches scattered records in parallel.
        for row, example in enumerate(self._source.__getitems__(records.tolist())):
            images[row] = example["image"]
        images *= self._pixel_scale
        return images

    def factor_values(self, factors: np.ndarray) -> np.ndarray:
        """The stored ``value_*`` features: int [num, K] -> float64 [num, K].

        Raises:
          ValueError: if `factors` is not [num, K] or an index is out of range.
        """
        return self._values[self._combinations(factors)].astype(np.float64)

    def _combinations(self, factors: np.ndarray) -> np.ndarray:
        """Validated int [num, K] indices -> int [num] flat grid positions."""
        factors = _render.check_factor_indices(
            factors, self.factor_names, self.factor_sizes
        )
        return np.ravel_multi_index(factors.T, self.factor_sizes)


class TfdsShapes3D(TfdsGroundTruth):
    """TFDS ``shapes3d`` (Burgess & Kim, 2018), float32 [64, 64, 3] in [0, 1].

    Factors and values as in `SyntheticShapes3D`: floor, wall and object hue
    (10 each, values in [0, 0.9]), scale (8, [0.75, 1.25]), shape (4, 0-3),
    orientation (15, [-30, 30] degrees).

    Args:
      data_dir: the TFDS data directory holding ``shapes3d/2.0.0``.
      split: the split to read.
    """

    def __init__(self, data_dir: str | os.PathLike | None = None, split: str = "train"):
        super().__init__("shapes3d", SHAPES3D_FORMAT, data_dir=data_dir, split=split)


class TfdsDSprites(TfdsGroundTruth):
    """TFDS ``dsprites`` (Matthey et al., 2017), float32 [64, 64, 1] in {0, 1}.

    Factors as in `SyntheticDSprites` (shape, scale, orientation, pos_x,
    pos_y), read from the TFDS features ``label_shape``, ``label_scale``,
    ``label_orientation``, ``label_x_position`` and ``label_y_position``.
    Values are dSprites' own: shape 1-3, scale [0.5, 1], orientation
    ``linspace(0, 2 pi, 40)`` radians, positions [0, 1].

    Args:
      data_dir: the TFDS data directory holding ``dsprites/<version>``.
      split: the split to read.
      version: the prepared version, e.g. ``"2.1.0"``; None: TFDS's default.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike | None = None,
        split: str = "train",
        version: str | None = None,
    ):
        name = "dsprites" if version is None else f"dsprites:{version}"
        super().__init__(name, DSPRITES_FORMAT, data_dir=data_dir, split=split)


def _open_data_source(
    builder: tfds.core.DatasetBuilder, name: str, split: str
) -> Sequence[Any]:
    """The random-access source of `split`.

    Raises:
      FileNotFoundError: if the dataset is not prepared in the data directory,
        saying how to prepare or copy it.
    """
    try:
        return builder.as_data_source(split=split)
    except (NotImplementedError, KeyError) as error:
        # What TFDS raises when no files are there (no random-access format,
        # or no splits). For a prepared dataset (a wrong split, TFRecord files)
        # its own message says what is wrong.
        if builder.is_prepared():
            raise
        raise _not_prepared_error(builder, name) from error


def _not_prepared_error(
    builder: tfds.core.DatasetBuilder, name: str
) -> FileNotFoundError:
    """Names the dataset and directory searched, and how to fix it."""
    root = builder.data_dir_root
    return FileNotFoundError(
        f"The TFDS dataset {builder.info.full_name!r} is not prepared in "
        f"data_dir {root}: {builder.data_dir} does not exist or holds no "
        "dataset_info.json, and nothing is downloaded here. Prepare it as "
        f"ArrayRecord files, tfds.builder({name!r}, data_dir=DIR, "
        "file_format='array_record').download_and_prepare() (for the real "
        "shapes3d and dsprites this downloads them and needs TensorFlow and "
        "h5py: run it on a machine with internet access), then copy "
        f"DIR/{builder.name} into {root}, or pass data_dir=DIR (or set "
        "TFDS_DATA_DIR)."
    )


def _read_factors(
    source: Sequence[Any], data_format: TfdsFormat, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Reads every record's factor labels and values, in record order.

    Records are read one at a time: in order, that is about as fast as batched
    reads, and it needs only the `Sequence` protocol (TFDS's mock data sources
    have no working ``__getitems__``).

    Returns:
      (labels int64 [num_records, K], values float32 [num_records, K]).
    """
    label_keys, value_keys = data_format.label_features(), data_format.value_features()
    labels = np.empty((len(source), len(label_keys)), np.int64)
    values = np.empty((len(source), len(value_keys)), np.float32)
    logging.info("Indexing the %d records of TFDS %r.", len(source), name)
    start_time = time.perf_counter()
    for record in range(len(source)):
        example = source[record]
        labels[record] = [example[key] for key in label_keys]
        values[record] = [example[key] for key in value_keys]
    logging.info("Indexed TFDS %r in %.1f s.", name, time.perf_counter() - start_time)
    return labels, values


def _index_records(
    labels: np.ndarray, factor_sizes: tuple[int, ...], name: str, split: str
) -> np.ndarray:
    """The record holding each factor combination.

    Args:
      labels: int [num_records, K] factor indices of each record.
      factor_sizes: the K grid sizes.
      name: the TFDS name, for error messages.
      split: the split read, for error messages.

    Returns:
      int64 [prod(factor_sizes)]: the record index of each combination, in
      C order of the factors.

    Raises:
      ValueError: if a combination is missing or appears more than once.
    """
    combinations = np.ravel_multi_index(labels.T, factor_sizes)
    counts = np.bincount(combinations, minlength=int(np.prod(factor_sizes)))
    if (counts != 1).any():
        missing = np.flatnonzero(counts == 0)
        example = ""
        if missing.size:
            first = tuple(int(i) for i in np.unravel_index(missing[0], factor_sizes))
            example = f"; e.g. factors {first} are missing"
        raise ValueError(
            f"The {split!r} split of TFDS {name!r} holds {len(labels)} records "
            f"covering {np.count_nonzero(counts)} of the {counts.size} factor "
            f"combinations {factor_sizes}{example}; a ground-truth dataset "
            "needs every combination exactly once. Read the full split "
            "(not a slice) of a completely prepared dataset."
        )
    record_of = np.empty(counts.size, np.int64)
    record_of[combinations] = np.arange(len(labels))
    return record_of
