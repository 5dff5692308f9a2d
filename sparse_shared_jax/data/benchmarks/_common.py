"""What the distribution-shift benchmark builders share.

Every benchmark is a TFDS `BenchmarkBuilder`: it reads the files of the
original release from a manual directory (nothing is downloaded), and writes
the fields of its `BenchmarkSpec` as ArrayRecord files, so
``tfds.data_source`` reads them without TensorFlow. This module holds

* `BenchmarkBuilder`, the base class (features, ArrayRecord files, the manual
  directory and its error message);
* `ImageConfig`, a builder config for the stored image size and encoding;
* readers that name the file and record of any malformed input
  (`iter_csv`, `Record`, `load_image`), raising `BenchmarkDataError`;
* `load_benchmark`, which prepares a benchmark if needed and opens a split.

from sparse_shared_jax.data import benchmarks

source = benchmarks.load_benchmark(
    "waterbirds", "test", data_dir="/data/tfds", manual_dir="/data/manual/waterbirds"
)
example = source[0]  # {'image': uint8 [224, 224, 3], 'label': 1, 'group': 3, ...}
"""

from __future__ import annotations

import csv
import dataclasses
import inspect
import io
import os
from collections.abc import Collection, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import PIL.Image
import tensorflow_datasets as tfds
from etils import epath

from sparse_shared_jax.data.benchmarks._spec import BenchmarkSpec

IMAGE_FORMATS = ("png", "jpeg")
# Quality of the JPEG images written when a config stores JPEG.
_JPEG_QUALITY = 95


class BenchmarkDataError(ValueError):
    """A file or record of a benchmark's manual download is malformed."""


# ----------------------------------------------------------------------------
# Groups.


def group_of(label: int, attribute: int, num_attributes: int) -> int:
    """The evaluation group of a (label, attribute) pair.

    Args:
      label: the target class, in [0, num_labels).
      attribute: the spurious attribute or domain, in [0, num_attributes).
      num_attributes: how many attribute values there are.

    Returns:
      label * num_attributes + attribute, as `BenchmarkSpec` defines it.
    """
    return label * num_attributes + attribute


def group_names(spec: BenchmarkSpec) -> tuple[str, ...]:
    """Names of the groups in `group_of` order, e.g. 'waterbird+water'."""
    return tuple(
        f"{label}+{attribute}"
        for label in spec.label_names
        for attribute in spec.attribute_names
    )


def group_counts(
    source: Sequence[Mapping[str, Any]], spec: BenchmarkSpec
) -> np.ndarray:
    """How many examples of `source` fall in each group: int64 [num_groups].

    Reads every record. For an image benchmark, open the source with
    ``decoders={'image': tfds.decode.SkipDecoding()}`` to skip decoding its
    images.
    """
    groups = [int(source[index]["group"]) for index in range(len(source))]
    return np.bincount(np.asarray(groups, np.int64), minlength=spec.num_groups)


# ----------------------------------------------------------------------------
# Metadata records.


@dataclasses.dataclass(frozen=True)
class Record:
    """One record of a metadata file: its fields, and where it is.

    Attributes:
      path: the file.
      index: the record's 0-based position among the file's data records.
      line: the line of the file where the record ends (1-based).
      fields: the record's values by column name.
    """

    path: epath.Path
    index: int
    line: int
    fields: Mapping[str, str]

    def where(self) -> str:
        """'<file>, record <index> (line <line>)', for error messages."""
        return f"{self.path}, record {self.index} (line {self.line})"

    def error(self, message: str) -> BenchmarkDataError:
        """An error naming this record, to raise."""
        return BenchmarkDataError(f"{self.where()}: {message}")

    def text(self, column: str) -> str:
        """The value of `column`, stripped of surrounding spaces."""
        return self.fields[column].strip()

    def integer(self, column: str, allowed: Collection[int] | None = None) -> int:
        """The value of `column` as an int.

        Accepts integral decimals such as '1.0', which some releases write.

        Args:
          column: the column name.
          allowed: the values it may take; None accepts any int.

        Raises:
          BenchmarkDataError: naming the file, record, column and value, if the
            value is not an integer or not in `allowed`.
        """
        value = self.text(column)
        try:
            number = float(value)
        except ValueError:
            number = float("nan")
        if not number.is_integer():
            raise self.error(f"column {column!r} holds {value!r}, not an integer.")
        if allowed is not None and int(number) not in allowed:
            raise self.error(
                f"column {column!r} holds {value!r}; expected one of {sorted(allowed)}."
            )
        return int(number)


def iter_csv(
    path: os.PathLike | str,
    required_columns: Sequence[str],
    *,
    delimiter: str = ",",
) -> Iterator[Record]:
    """Reads a metadata table with a header row, one `Record` per data row.

    The header is checked before the first record is yielded. Quoted fields may
    span lines (as in CivilComments).

    Args:
      path: the file.
      required_columns: columns every record must have.
      delimiter: the field separator.

    Yields:
      The records in file order.

    Raises:
      FileNotFoundError: if the file does not exist.
      BenchmarkDataError: naming the file if a required column is missing from
        the header, or the file and record if a row has too few or too many
        fields or cannot be parsed.
    """
    path = epath.Path(path)
    # (epath files open with universal newlines: a quoted "\r\n" reads as "\n".)
    with path.open("r", encoding="utf-8") as file:
        reader = csv.DictReader(file, delimiter=delimiter, restval=None)
        header = reader.fieldnames or []
        missing = [column for column in required_columns if column not in header]
        if missing:
            raise BenchmarkDataError(
                f"{path}: the header lacks the column(s) {missing} (it has "
                f"{header}). Is this the original release's file?"
            )
        rows = enumerate(reader)
        while True:
            try:
                index, row = next(rows)
            except StopIteration:
                return
            except csv.Error as error:  # e.g. an unclosed quote runs to the limit
                raise BenchmarkDataError(
                    f"{path}, after line {reader.line_num}: unreadable CSV ({error})."
                ) from error
            record = Record(path, index, reader.line_num, row)
            if None in row or None in row.values():
                raise record.error(
                    f"has a different number of fields than the header's {len(header)}."
                )
            yield record


# ----------------------------------------------------------------------------
# The manual directory.


def manual_dir_of(dl_manager: tfds.download.DownloadManager, name: str) -> epath.Path:
    """The manual directory of a download manager, checked to exist.

    Args:
      dl_manager: the download manager `_split_generators` receives.
      name: the benchmark's name, for the message.

    Raises:
      FileNotFoundError: if the directory does not exist or is empty; the
        message names it and holds the builder's manual download instructions.
    """
    try:
        return dl_manager.manual_dir
    except AssertionError as error:  # How TFDS reports a missing manual dir.
        raise FileNotFoundError(
            f"Cannot prepare {name!r}: the files must be downloaded by hand. "
            f"{error}\nThen prepare with manual_dir=<that directory>, e.g. "
            f"load_benchmark({name!r}, split, data_dir=DIR, manual_dir=...)."
        ) from error


def find_release_root(
    manual_dir: os.PathLike | str, markers: Sequence[str], spec: BenchmarkSpec
) -> epath.Path:
    """The folder of a release: `manual_dir` or a folder directly inside it.

    Users extract an archive into the manual directory, so the release's files
    may sit in the directory itself or in the folder the archive creates; the
    default manual directory (<data_dir>/downloads/manual) may hold several
    benchmarks' folders, so `markers` should single out this one's.

    Args:
      manual_dir: the manual directory.
      markers: names of files or folders the release root holds, all of them,
        e.g. ('metadata.csv', 'patches').
      spec: the benchmark, for the message.

    Returns:
      `manual_dir` if it holds every marker, else the first folder inside it
      (in name order) that does.

    Raises:
      FileNotFoundError: naming the directory, the markers and the manual
        download instructions, if no such folder exists.
    """
    manual_dir = epath.Path(manual_dir)
    candidates = [manual_dir]
    if manual_dir.is_dir():
        candidates += sorted(path for path in manual_dir.iterdir() if path.is_dir())
    for candidate in candidates:
        if all((candidate / marker).exists() for marker in markers):
            return candidate
    raise FileNotFoundError(
        f"{spec.name}: neither {manual_dir} nor any folder directly inside it "
        f"holds all of {list(markers)}.\n{spec.manual_download}"
    )


def require_paths(
    root: epath.Path, relative_paths: Sequence[str], spec: BenchmarkSpec
) -> None:
    """Checks that the release root holds every path of `relative_paths`.

    Raises:
      FileNotFoundError: naming the missing paths and the manual download
        instructions.
    """
    missing = [path for path in relative_paths if not (root / path).exists()]
    if missing:
        raise FileNotFoundError(
            f"{spec.name}: {root} lacks {missing}; the release is incomplete."
            f"\n{spec.manual_download}"
        )


# ----------------------------------------------------------------------------
# Images.


def load_image(
    path: os.PathLike | str, size: int, *, record: Record | None = None
) -> np.ndarray:
    """Reads an image as RGB, resized and centre-cropped to a square.

    The shorter side is resized to `size` (bicubic; no resampling when it is
    already `size`), then the centre `size` x `size` is kept.

    Args:
      path: the image file.
      size: the side of the result.
      record: the metadata record naming the image, for error messages; None
        where the file is the record.

    Returns:
      uint8 [size, size, 3].

    Raises:
      BenchmarkDataError: naming the file (and the record) if the file is
        missing or cannot be decoded (corrupt or truncated).
    """
    try:
        with PIL.Image.open(path) as image:
            image = image.convert("RGB")  # Decodes the whole file.
    except (OSError, SyntaxError, ValueError) as error:
        # PIL raises FileNotFoundError, UnidentifiedImageError (an OSError),
        # OSError for truncated files and SyntaxError/ValueError for some
        # malformed headers.
        message = f"cannot read the image {path}: {error}"
        if record is None:
            raise BenchmarkDataError(message) from error
        raise record.error(message) from error
    width, height = image.size
    if min(width, height) != size:
        scale = size / min(width, height)
        new_size = (max(size, round(width * scale)), max(size, round(height * scale)))
        image = image.resize(new_size, PIL.Image.Resampling.BICUBIC)
        width, height = new_size
    left, top = (width - size) // 2, (height - size) // 2
    image = image.crop((left, top, left + size, top + size))
    return np.asarray(image, dtype=np.uint8)


def encode_image(pixels: np.ndarray, image_format: str) -> bytes:
    """Encodes uint8 [H, W, 3] pixels as PNG or JPEG (quality 95) with PIL."""
    buffer = io.BytesIO()
    options = {"quality": _JPEG_QUALITY} if image_format == "jpeg" else {}
    PIL.Image.fromarray(pixels).save(buffer, format=image_format, **options)
    return buffer.getvalue()


@dataclasses.dataclass(eq=False)
class ImageConfig(tfds.core.BuilderConfig):
    """How an image benchmark stores its images.

    Attributes:
      image_size: the stored images are uint8 [image_size, image_size, 3]:
        the shorter side resized to it, then centre-cropped.
      image_format: 'png' (lossless) or 'jpeg' (quality 95, for releases whose
        originals are JPEG). Both are encoded with PIL, so preparing needs no
        TensorFlow.
    """

    image_size: int = 224
    image_format: str = "png"

    def __post_init__(self):
        if self.image_size < 1:
            raise ValueError(f"image_size must be positive, got {self.image_size}.")
        if self.image_format not in IMAGE_FORMATS:
            raise ValueError(
                f"image_format must be one of {IMAGE_FORMATS}, got "
                f"{self.image_format!r}."
            )


def image_configs(
    sizes: Sequence[int], image_format: str, what: str
) -> list[ImageConfig]:
    """One config per image size, named '<size>px'; the first is the default.

    Args:
      sizes: the image sides.
      image_format: 'png' or 'jpeg'.
      what: the benchmark's name, for the description.
    """
    return [
        ImageConfig(
            name=f"{size}px",
            description=f"{what} images at {size}x{size} ({image_format}).",
            image_size=size,
            image_format=image_format,
        )
        for size in sizes
    ]


# ----------------------------------------------------------------------------
# Builders.


class BenchmarkBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A benchmark read from its original release in a manual directory.

    Writes the features `BenchmarkSpec` documents: the input ('image' or
    'text'), 'label', 'attribute' and 'group' (class labels with the spec's
    names), 'id' (text) and the subclass's meta-label features. Files are
    ArrayRecord unless another `file_format` is passed.

    Subclasses set `name` (= `SPEC.name`), `SPEC`,
    `MANUAL_DOWNLOAD_INSTRUCTIONS` (= `SPEC.manual_download`), image builders
    `BUILDER_CONFIGS` (`image_configs`), and implement
    `_split_generators` (starting with `manual_dir_of`),
    `_generate_examples`, and `_meta_features` if they have meta labels; they
    build examples with `_example`. Through ``tfds.data_source``, text
    features ('id', 'text') come back as UTF-8 bytes.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "Initial release."}
    SPEC: ClassVar[BenchmarkSpec]

    def __init__(
        self, *, file_format: str | tfds.core.FileFormat | None = None, **kwargs: Any
    ):
        super().__init__(
            file_format=file_format or tfds.core.FileFormat.ARRAY_RECORD, **kwargs
        )

    def _info(self) -> tfds.core.DatasetInfo:
        spec = self.SPEC
        features = {
            spec.modality: self._input_feature(),
            "label": tfds.features.ClassLabel(names=spec.label_names),
            "attribute": tfds.features.ClassLabel(names=spec.attribute_names),
            "group": tfds.features.ClassLabel(names=group_names(spec)),
            "id": tfds.features.Text(),
        }
        meta = self._meta_features()
        if set(meta) != set(spec.meta_labels):
            raise ValueError(
                f"{spec.name}: meta features {sorted(meta)} differ from the "
                f"spec's meta_labels {sorted(spec.meta_labels)}."
            )
        features.update(meta)
        return tfds.core.DatasetInfo(
            builder=self,
            description=inspect.getdoc(self) or "",
            features=tfds.features.FeaturesDict(features),
        )

    def _input_feature(self) -> tfds.features.FeatureConnector:
        """The input feature of the spec's modality.

        Text is stored as is; images as square uint8 RGB of the builder
        config's `image_size`, encoded as its `image_format` (an `ImageConfig`).
        """
        if self.SPEC.modality == "text":
            return tfds.features.Text()
        size = self.builder_config.image_size
        return tfds.features.Image(
            shape=(size, size, 3), encoding_format=self.builder_config.image_format
        )

    def _meta_features(self) -> dict[str, tfds.features.FeatureConnector]:
        """The meta-label features, one per name in `SPEC.meta_labels`."""
        return {}

    def _example(
        self, inputs: Any, label: int, attribute: int, example_id: str, **meta: Any
    ) -> dict[str, Any]:
        """One record, with its group computed from label and attribute.

        Args:
          inputs: the 'image' (encoded bytes or uint8 array) or 'text'.
          label: the target class.
          attribute: the spurious attribute or domain.
          example_id: the example's identifier in the original files.
          **meta: the meta-label values.
        """
        num_attributes = len(self.SPEC.attribute_names)
        return {
            self.SPEC.modality: inputs,
            "label": label,
            "attribute": attribute,
            "group": group_of(label, attribute, num_attributes),
            "id": example_id,
            **meta,
        }


def load_benchmark(
    name: str,
    split: str,
    *,
    data_dir: os.PathLike | str | None,
    manual_dir: os.PathLike | str | None = None,
) -> Sequence[dict[str, Any]]:
    """Opens a benchmark split, preparing the benchmark first if needed.

    Args:
      name: the registered name with an optional config, e.g. 'waterbirds' or
        'waterbirds/64px'.
      split: an official split of the benchmark (its spec's `splits`).
      data_dir: the TFDS data directory; None uses TFDS's default.
      manual_dir: the directory holding the original release's files, read
        only if the benchmark is not prepared yet; None uses TFDS's default
        (<data_dir>/downloads/manual).

    Returns:
      A random-access `tfds.data_source`: ``source[i]`` is a dict of NumPy
      values with the fields of the benchmark's spec.

    Raises:
      FileNotFoundError: if the benchmark must be prepared and its files are
        not in the manual directory (the message says how to get them).
      BenchmarkDataError: if a file or record of the release is malformed
        (the message names them).
    """
    # Registers the builders; imported here since they import this module.
    from sparse_shared_jax.data import benchmarks  # noqa: F401

    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        builder.download_and_prepare(
            download_config=tfds.download.DownloadConfig(manual_dir=manual_dir)
        )
    return builder.as_data_source(split=split)
