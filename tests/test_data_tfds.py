"""Tests of the TFDS builders and adapters, offline and without TensorFlow.

The builders' tiny configs are prepared into a temporary data_dir and read
back with ``tfds.data_source``. The real ``shapes3d`` is served from
``tfds.testing.mock_data``: TFDS's own builder supplies the real feature spec,
and a data source generated on access supplies its complete 480,000-record
grid (TFDS's default random mock records cannot cover a factor grid; they are
used to check that an incomplete grid is rejected).
"""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from sparse_shared_jax import data
from sparse_shared_jax.data import tfds_builders
from sparse_shared_jax.data.dsprites import SyntheticDSprites
from sparse_shared_jax.data.shapes3d import SyntheticShapes3D
from sparse_shared_jax.data.tfds_adapters import (
    DSPRITES_FORMAT,
    SHAPES3D_FORMAT,
    TfdsGroundTruth,
)

# (builder, its renderer, its TFDS format)
_BUILDERS = {
    "synthetic_shapes3d": (SyntheticShapes3D, SHAPES3D_FORMAT),
    "synthetic_dsprites": (SyntheticDSprites, DSPRITES_FORMAT),
}
# Stored pixels are the renderer's output rounded to 1 / pixel_max.
_ROUNDING = 0.5 / 255 + 1e-6


@pytest.fixture(autouse=True, scope="module")
def _no_progress_bars():
    tfds.disable_progress_bar()
    yield
    tfds.enable_progress_bar()


@pytest.fixture(scope="module")
def tiny_data_dir(tmp_path_factory):
    """A data_dir holding both builders' tiny configs."""
    data_dir = tmp_path_factory.mktemp("tfds")
    for name in _BUILDERS:
        tfds.builder(f"{name}/tiny", data_dir=data_dir).download_and_prepare()
    return data_dir


def _tiny_factors(name: str, labels: np.ndarray) -> np.ndarray:
    """The renderer's factor indices of tiny-config labels: int [n, K]."""
    renderer_cls, _ = _BUILDERS[name]
    config = tfds_builders.GridConfig(name="tiny", values_per_factor=2)
    subsets = config.factor_subsets(renderer_cls.factor_sizes)
    return np.stack([s[c] for s, c in zip(subsets, labels.T, strict=True)], axis=1)


# ----------------------------------------------------------------------------
# Builders.


@pytest.mark.parametrize("name", list(_BUILDERS))
def test_tiny_config_reads_back_as_rendered(tiny_data_dir, name):
    renderer_cls, tfds_format = _BUILDERS[name]
    source = tfds.data_source(f"{name}/tiny", data_dir=tiny_data_dir, split="train")
    num_factors = len(renderer_cls.factor_sizes)
    assert len(source) == 2**num_factors
    examples = source.__getitems__(list(range(len(source))))
    labels = np.array(
        [[ex[k] for k in tfds_format.label_features()] for ex in examples]
    )
    assert len(np.unique(labels, axis=0)) == len(source)  # the complete 2^K grid

    factors = _tiny_factors(name, labels)
    renderer = renderer_cls()
    images = np.stack([ex["image"] for ex in examples])
    assert images.dtype == np.uint8
    assert images.shape == (len(source), *renderer.observation_shape)
    np.testing.assert_allclose(
        images / tfds_format.pixel_max,
        renderer.observations(factors),
        atol=_ROUNDING,
    )
    values = np.array(
        [[ex[k] for k in tfds_format.value_features()] for ex in examples]
    )
    np.testing.assert_allclose(values, renderer.factor_values(factors), rtol=1e-6)


def test_preparing_is_deterministic_and_loads_from_files(tiny_data_dir, tmp_path):
    name = "synthetic_dsprites/tiny"
    tfds.builder(name, data_dir=tmp_path).download_and_prepare()
    first = tfds.data_source(name, data_dir=tiny_data_dir, split="train")
    # Read through the prepared files alone, as without this package's code.
    builder = tfds.builder_from_directory(tmp_path / name / "1.0.0")
    second = builder.as_data_source(split="train")
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        assert a.keys() == b.keys()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_adapter_serves_a_prepared_tiny_grid(tiny_data_dir):
    dataset = TfdsGroundTruth(
        "synthetic_shapes3d/tiny", SHAPES3D_FORMAT, data_dir=tiny_data_dir
    )
    assert dataset.factor_names == SyntheticShapes3D.factor_names
    assert dataset.factor_sizes == (2,) * 6
    factors = dataset.sample_factors(10, rng=0)
    renderer_factors = _tiny_factors("synthetic_shapes3d", factors)
    renderer = SyntheticShapes3D()
    np.testing.assert_allclose(
        dataset.observations(factors),
        renderer.observations(renderer_factors),
        atol=_ROUNDING,
    )
    np.testing.assert_allclose(
        dataset.factor_values(factors),
        renderer.factor_values(renderer_factors),
        rtol=1e-6,
    )


# ----------------------------------------------------------------------------
# The real TFDS shapes3d, mocked.


class _Shapes3DGrid:
    """A real-format TFDS ``shapes3d`` train split, generated on access.

    Every one of the 480,000 factor combinations once, in a shuffled record
    order as TFDS writes it. A record has the features of TFDS's ``shapes3d``
    as a TFDS data source returns them (ints, floats, a uint8 image); its image
    is one colour, the combination's C-order index in base 256, so a test can
    tell which record was read.
    """

    def __init__(self, features: tfds.features.FeaturesDict):
        self._image_shape = features["image"].shape
        self._labels = SHAPES3D_FORMAT.label_features()
        self._values = SHAPES3D_FORMAT.value_features()
        sizes = tuple(features[key].num_classes for key in self._labels)
        cells = np.random.default_rng(0).permutation(int(np.prod(sizes)))
        factors = np.stack(np.unravel_index(cells, sizes), axis=1)
        self._factors = factors.tolist()
        values = SyntheticShapes3D().factor_values(factors).astype(np.float32)
        self._factor_values = values.tolist()
        digits = (cells[:, None] // np.array([256**2, 256, 1])) % 256
        self._colours = digits.astype(np.uint8)  # [num, rgb]

    def __len__(self) -> int:
        return len(self._factors)

    def __getitem__(self, record: int) -> dict:
        image = np.broadcast_to(self._colours[record], self._image_shape)
        example = {"image": image}
        example.update(zip(self._labels, self._factors[record], strict=True))
        example.update(zip(self._values, self._factor_values[record], strict=True))
        return example

    def __getitems__(self, records: list[int]) -> list[dict]:
        return [self[record] for record in records]


def _mock_grid_source(builder, split, **kwargs):
    """Stands in for `DatasetBuilder.as_data_source` under `mock_data`."""
    del kwargs
    assert (builder.name, split) == ("shapes3d", "train")
    return _Shapes3DGrid(builder.info.features)


@pytest.mark.slow
def test_mock_shapes3d_serves_like_the_procedural_one(tmp_path):
    with tfds.testing.mock_data(
        policy=tfds.testing.MockPolicy.USE_CODE, as_data_source_fn=_mock_grid_source
    ):
        dataset = data.ground_truth("tfds:shapes3d", data_dir=tmp_path)
    procedural = data.ground_truth("synthetic_shapes3d")
    assert dataset.factor_names == procedural.factor_names
    assert dataset.factor_sizes == procedural.factor_sizes
    assert dataset.observation_shape == procedural.observation_shape

    factors = dataset.sample_factors(32, rng=np.random.default_rng(0))
    images = dataset.observations(factors)
    expected = procedural.observations(factors)
    assert images.shape == expected.shape == (32, 64, 64, 3)
    assert images.dtype == expected.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    # Each image is the record of its own factor combination.
    pixels = np.round(images[:, 0, 0] * 255).astype(np.int64)  # [32, rgb]
    cells = pixels @ np.array([256**2, 256, 1])
    np.testing.assert_array_equal(
        cells, np.ravel_multi_index(factors.T, dataset.factor_sizes)
    )
    np.testing.assert_allclose(
        dataset.factor_values(factors), procedural.factor_values(factors), rtol=1e-6
    )
    assert dataset.observations(factors[:0]).shape == (0, 64, 64, 3)
    with pytest.raises(ValueError, match="'shape' takes indices in"):
        dataset.observations(np.array([[0, 0, 0, 0, 4, 0]]))


def test_mock_records_that_miss_combinations_are_rejected(tmp_path):
    with (
        tfds.testing.mock_data(
            num_examples=16, policy=tfds.testing.MockPolicy.USE_CODE
        ),
        pytest.raises(ValueError, match=r"16 records covering \d+ of the 480000"),
    ):
        data.ground_truth("tfds:shapes3d", data_dir=tmp_path)


# ----------------------------------------------------------------------------
# Missing datasets.


@pytest.mark.parametrize(
    ("name", "tfds_name"),
    [("tfds:shapes3d", "shapes3d/2.0.0"), ("tfds:dsprites", "dsprites/2.0.0")],
)
def test_missing_dataset_names_it_and_how_to_prepare_it(tmp_path, name, tfds_name):
    with pytest.raises(FileNotFoundError) as error:
        data.ground_truth(name, data_dir=tmp_path)
    message = str(error.value)
    assert f"'{tfds_name}' is not prepared in data_dir {tmp_path}" in message
    assert "file_format='array_record'" in message
    assert "download_and_prepare()" in message
