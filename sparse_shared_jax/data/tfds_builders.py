"""TFDS builders that write the procedural datasets in the real datasets' format.

Importing this module registers two TFDS builders, ``synthetic_shapes3d``
(`SyntheticShapes3D`, in TFDS ``shapes3d``'s format) and ``synthetic_dsprites``
(`SyntheticDSprites`, in TFDS ``dsprites``'s format). Preparing renders the
factor grid and writes ``image``, ``label_<key>`` (the class index) and
``value_<key>`` (the natural value, float32) per factor, as ArrayRecord files,
so ``tfds.data_source`` reads them without TensorFlow. Nothing is downloaded
and the result is deterministic.

Configs: ``full`` (the default) renders the whole grid (480,000 scenes,
737,280 sprites; a few minutes on one core, with a progress bar); ``tiny``
keeps 2 values of every factor, its first and last (64 scenes, 32 sprites).
A config's labels index its own grid, so every config is a complete grid that
`TfdsGroundTruth` can serve.

import tensorflow_datasets as tfds
from sparse_shared_jax.data import tfds_builders  # registers the builders

tfds.builder("synthetic_shapes3d/tiny", data_dir=DIR).download_and_prepare()
source = tfds.data_source("synthetic_shapes3d/tiny", data_dir=DIR, split="train")

Once prepared, a dataset also loads without importing this module: TFDS
restores its features from the prepared files. (The ``tfds build`` command of
tensorflow-datasets 4.9.10 imports TensorFlow at start-up; without it, prepare
with the Python API as above.)
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
import PIL.Image
import tensorflow_datasets as tfds
import tqdm

from sparse_shared_jax.data.dsprites import SyntheticDSprites
from sparse_shared_jax.data.ground_truth import GroundTruthDataset
from sparse_shared_jax.data.shapes3d import SyntheticShapes3D
from sparse_shared_jax.data.tfds_adapters import (
    DSPRITES_FORMAT,
    SHAPES3D_FORMAT,
    TfdsFormat,
)

# Images rendered per renderer call (50 MB of float32 RGB images).
_RENDER_BATCH = 1024


@dataclasses.dataclass(eq=False)
class GridConfig(tfds.core.BuilderConfig):
    """A sub-grid of a procedural dataset.

    Attributes:
      values_per_factor: None keeps every index of every factor; k keeps k
        evenly spaced indices of each factor, its first and last included
        (all of them for a factor with at most k).
    """

    values_per_factor: int | None = None

    def factor_subsets(self, factor_sizes: Sequence[int]) -> list[np.ndarray]:
        """The renderer's indices each factor takes: K int arrays, increasing."""
        if self.values_per_factor is None:
            return [np.arange(size) for size in factor_sizes]
        spaced = [
            np.linspace(0, size - 1, self.values_per_factor).round()
            for size in factor_sizes
        ]
        return [np.unique(indices).astype(np.int64) for indices in spaced]


def _grid_configs() -> list[GridConfig]:
    return [
        GridConfig(name="full", description="The whole factor grid."),
        GridConfig(
            name="tiny",
            description="2 values (the first and last) of every factor.",
            values_per_factor=2,
        ),
    ]


class _ProceduralBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Renders a `GroundTruthDataset`'s grid and stores it in a TFDS format.

    Subclasses set `name`, `renderer_cls` and `tfds_format`. Files are written
    as ArrayRecord unless another `file_format` is passed.
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES: ClassVar[dict[str, str]] = {"1.0.0": "Initial release."}
    renderer_cls: ClassVar[type[GroundTruthDataset]]
    tfds_format: ClassVar[TfdsFormat]

    def __init__(
        self, *, file_format: str | tfds.core.FileFormat | None = None, **kwargs: Any
    ):
        super().__init__(
            file_format=file_format or tfds.core.FileFormat.ARRAY_RECORD, **kwargs
        )

    def _info(self) -> tfds.core.DatasetInfo:
        features = {
            "image": tfds.features.Image(shape=self.renderer_cls.observation_shape)
        }
        for key, subset in zip(
            self.tfds_format.label_features(), self._factor_subsets(), strict=True
        ):
            features[key] = tfds.features.ClassLabel(num_classes=len(subset))
        for key in self.tfds_format.value_features():
            features[key] = tfds.features.Tensor(shape=(), dtype=np.float32)
        return tfds.core.DatasetInfo(
            builder=self,
            description=inspect.cleandoc(self.__doc__),
            features=tfds.features.FeaturesDict(features),
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        del dl_manager  # Nothing to download.
        return {"train": self._generate_examples()}

    def _generate_examples(self) -> Iterator[tuple[int, dict[str, Any]]]:
        """Yields (C-order index in the config's grid, example) for every cell."""
        renderer = self.renderer_cls()
        subsets = self._factor_subsets()
        grid_sizes = tuple(len(subset) for subset in subsets)
        labels = _grid(grid_sizes)  # [num, K]
        with tqdm.tqdm(
            total=len(labels), desc=f"Rendering {self.info.full_name}", unit=" images"
        ) as progress:
            for start in range(0, len(labels), _RENDER_BATCH):
                batch = labels[start : start + _RENDER_BATCH]  # [batch, K]
                keys = np.ravel_multi_index(batch.T, grid_sizes)
                pixels, values = self._render(renderer, subsets, batch)
                for key, *example in zip(keys, pixels, batch, values, strict=True):
                    yield int(key), self._example(*example)
                progress.update(len(batch))

    def _render(
        self,
        renderer: GroundTruthDataset,
        subsets: Sequence[np.ndarray],
        labels: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Renders cells of the config's grid.

        Args:
          renderer: the procedural dataset.
          subsets: per factor, the renderer's index of each label.
          labels: int [num, K] cells of the config's grid.

        Returns:
          (uint8 [num, *observation_shape] stored pixels, float32 [num, K]
          factor values).
        """
        factors = np.stack(
            [subset[column] for subset, column in zip(subsets, labels.T, strict=True)],
            axis=1,
        )  # the renderer's indices, [num, K]
        images = renderer.observations(factors)  # float32 in [0, 1]
        pixels = np.round(images * self.tfds_format.pixel_max).astype(np.uint8)
        return pixels, renderer.factor_values(factors).astype(np.float32)

    def _factor_subsets(self) -> list[np.ndarray]:
        return self.builder_config.factor_subsets(self.renderer_cls.factor_sizes)

    def _example(
        self, pixels: np.ndarray, labels: np.ndarray, values: np.ndarray
    ) -> dict[str, Any]:
        """One record: uint8 [H, W, C] image, int [K] labels, float32 [K] values."""
        # PIL encodes the PNG without TensorFlow; it wants [H, W] for grey.
        image = pixels[..., 0] if pixels.shape[-1] == 1 else pixels
        example: dict[str, Any] = {"image": PIL.Image.fromarray(image)}
        example.update(
            zip(self.tfds_format.label_features(), labels.tolist(), strict=True)
        )
        example.update(zip(self.tfds_format.value_features(), values, strict=True))
        return example


def _grid(sizes: tuple[int, ...]) -> np.ndarray:
    """Every index combination, int64 [prod(sizes), K], first factor fastest.

    With the first factors varying fastest, a render batch of 3D Shapes scenes
    spans few (scale, shape, orientation) geometries, each ray-cast once.
    """
    cells = np.arange(int(np.prod(sizes)))
    return np.stack(np.unravel_index(cells, sizes, order="F"), axis=1)


class SyntheticShapes3DBuilder(_ProceduralBuilder):
    """3D-Shapes-style scenes rendered by `SyntheticShapes3D`.

    Stored like TFDS ``shapes3d``: uint8 RGB images [64, 64, 3] with values
    0-255, and ``label_*``/``value_*`` features for floor_hue, wall_hue,
    object_hue, scale, shape and orientation.
    """

    name = "synthetic_shapes3d"
    BUILDER_CONFIGS: ClassVar[list[GridConfig]] = _grid_configs()
    renderer_cls = SyntheticShapes3D
    tfds_format = SHAPES3D_FORMAT


class SyntheticDSpritesBuilder(_ProceduralBuilder):
    """dSprites-style sprites rendered by `SyntheticDSprites`.

    Stored like TFDS ``dsprites``: uint8 images [64, 64, 1] with values 0 and
    1, and ``label_*``/``value_*`` features for shape, scale, orientation,
    x_position and y_position.
    """

    name = "synthetic_dsprites"
    BUILDER_CONFIGS: ClassVar[list[GridConfig]] = _grid_configs()
    renderer_cls = SyntheticDSprites
    tfds_format = DSPRITES_FORMAT
