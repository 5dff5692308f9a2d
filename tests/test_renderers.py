"""Tests of the procedural 3D-Shapes-style and dSprites-style renderers."""

import itertools

import numpy as np
import pytest

from sparse_shared_jax.data import _render
from sparse_shared_jax.data.dsprites import SyntheticDSprites
from sparse_shared_jax.data.shapes3d import SyntheticShapes3D

# Factor indices everything is traversed from: a mid-sized cube seen from the
# front in a green/cyan/orange scene, and a large heart in the image centre.
_SHAPES3D_BASE = np.array([3, 5, 1, 5, 0, 7])
_DSPRITES_BASE = np.array([2, 5, 0, 16, 16])


@pytest.fixture(scope="module")
def shapes3d():
    return SyntheticShapes3D()


@pytest.fixture(scope="module")
def dsprites():
    return SyntheticDSprites()


@pytest.fixture(scope="module", params=["shapes3d", "dsprites"])
def dataset(request):
    return request.getfixturevalue(request.param)


def _traversal(base: np.ndarray, factor: int, size: int) -> np.ndarray:
    """All values of one factor, the others at `base`: int [size, K]."""
    factors = np.tile(base, (size, 1))
    factors[:, factor] = np.arange(size)
    return factors


# ----------------------------------------------------------------------------
# Both datasets.


def test_shape_dtype_and_range(dataset):
    factors = dataset.sample_factors(24, np.random.default_rng(0))
    images = dataset.observations(factors)
    assert images.shape == (24, *dataset.observation_shape)
    assert images.dtype == np.float32
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert dataset.observations(factors[:0]).shape == (0, *dataset.observation_shape)


def test_deterministic_and_independent_of_the_batch(dataset):
    factors = dataset.sample_factors(40, np.random.default_rng(1))
    together = dataset.observations(factors)
    np.testing.assert_array_equal(together, dataset.observations(factors))
    alone = np.concatenate([dataset.observations(f[None]) for f in factors[:8]])
    np.testing.assert_allclose(alone, together[:8], atol=1e-6)


def test_shapes3d_images_do_not_depend_on_what_was_rendered_before():
    """The geometry cache: a fresh object and one that has cast other
    geometries first give bit-identical images."""
    rng = np.random.default_rng(3)
    earlier, factors = (SyntheticShapes3D().sample_factors(64, rng) for _ in range(2))
    used = SyntheticShapes3D()
    used.observations(earlier)
    np.testing.assert_array_equal(
        used.observations(factors), SyntheticShapes3D().observations(factors)
    )


def test_distinct_factor_combinations_give_distinct_images(dataset):
    """On random pairs of different combinations (dSprites: hearts only, since
    the square and ellipse repeat under rotation as in the real dataset)."""
    rng = np.random.default_rng(7)
    first = dataset.sample_factors(300, rng)
    second = dataset.sample_factors(300, rng)
    if isinstance(dataset, SyntheticDSprites):
        first[:, 0] = second[:, 0] = 2
    different = np.any(first != second, axis=1)
    first, second = first[different], second[different]
    gap = np.abs(dataset.observations(first) - dataset.observations(second))
    assert np.all(gap.reshape(len(first), -1).max(axis=1) > 0.05)


def test_every_factor_changes_the_image_at_every_step(dataset):
    base = _SHAPES3D_BASE if isinstance(dataset, SyntheticShapes3D) else _DSPRITES_BASE
    for factor, (name, size) in enumerate(
        zip(dataset.factor_names, dataset.factor_sizes, strict=True)
    ):
        images = dataset.observations(_traversal(base, factor, size))
        steps = np.abs(np.diff(images, axis=0)).mean(axis=(1, 2, 3))  # [size - 1]
        assert steps.min() > 2e-3, (name, steps)
        flat = images.reshape(size, -1)
        distances = np.abs(flat[:, None] - flat[None]).mean(axis=2)  # [size, size]
        off_diagonal = distances[~np.eye(size, dtype=bool)]
        assert off_diagonal.min() > 1e-3, f"{name}: two values give one image"


def test_bad_factors_raise(dataset):
    good = dataset.sample_factors(3, np.random.default_rng(2))
    for factor, (name, size) in enumerate(
        zip(dataset.factor_names, dataset.factor_sizes, strict=True)
    ):
        for bad_value in (-1, size):
            bad = good.copy()
            bad[1, factor] = bad_value
            with pytest.raises(ValueError, match=rf"'{name}'.*\[0, {size - 1}\]"):
                dataset.observations(bad)
            with pytest.raises(ValueError, match=name):
                dataset.factor_values(bad)
    with pytest.raises(ValueError, match="shape"):
        dataset.observations(good[:, :-1])
    with pytest.raises(ValueError, match="shape"):
        dataset.observations(good[0])
    with pytest.raises(ValueError, match="integer"):
        dataset.observations(good.astype(np.float32))


def test_antialias_must_be_positive():
    for cls in (SyntheticShapes3D, SyntheticDSprites):
        with pytest.raises(ValueError, match="antialias"):
            cls(antialias=0)


def test_hue_to_rgb_primaries():
    rgb = _render.hue_to_rgb(np.array([0.0, 1 / 6, 1 / 3, 1 / 2, 2 / 3, 5 / 6]))
    expected = [[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 1, 1], [0, 0, 1], [1, 0, 1]]
    np.testing.assert_allclose(rgb, expected, atol=1e-6)


# ----------------------------------------------------------------------------
# 3D-Shapes-style scenes.


def test_shapes3d_factor_values(shapes3d):
    assert shapes3d.factor_names == (
        "floor_hue",
        "wall_hue",
        "object_hue",
        "scale",
        "shape",
        "orientation",
    )
    assert shapes3d.factor_sizes == (10, 10, 10, 8, 4, 15)  # 480,000 scenes
    factors = np.array([[0, 4, 9, 0, 3, 0], [9, 0, 1, 7, 0, 14]])
    np.testing.assert_allclose(
        shapes3d.factor_values(factors),
        [[0.0, 0.4, 0.9, 0.75, 3.0, -30.0], [0.9, 0.0, 0.1, 1.25, 0.0, 30.0]],
    )
    values = shapes3d.factor_values(_traversal(_SHAPES3D_BASE, 5, 15))[:, 5]
    np.testing.assert_allclose(np.diff(values), 60 / 14)


def _changed(images: np.ndarray) -> np.ndarray:
    """Pixels that differ between any two images: bool [64, 64]."""
    return np.any(np.abs(images - images[:1]) > 1e-6, axis=(0, 3))


@pytest.mark.parametrize("shape", range(4))
def test_shapes3d_hues_colour_disjoint_regions(shape):
    """Without anti-aliasing every pixel shows exactly one of the three regions."""
    dataset = SyntheticShapes3D(antialias=1)
    base = _SHAPES3D_BASE.copy()
    base[4] = shape
    floor, wall, thing = (
        _changed(dataset.observations(_traversal(base, factor, 10)))
        for factor in range(3)
    )
    assert not (floor & wall).any()
    assert not (floor & thing).any()
    assert not (wall & thing).any()
    assert (floor | wall | thing).all()
    rows = np.arange(64)[:, None] * np.ones(64)
    assert rows[floor].mean() > rows[wall].mean() + 10  # floor below the wall
    assert 80 < thing.sum() < 700  # a compact object near the centre
    assert abs(rows[thing].mean() - 32) < 10
    assert abs(rows.T[thing].mean() - 32) < 10


def _object_masks(dataset: SyntheticShapes3D, factors: np.ndarray) -> np.ndarray:
    """Pixels that change with the object hue, for each factor row: [n, 64, 64]."""
    factors = np.repeat(factors, 2, axis=0)
    factors[1::2, 2] = (factors[1::2, 2] + 5) % 10  # the opposite object hue
    images = dataset.observations(factors)
    return np.abs(images[0::2] - images[1::2]).max(axis=3) > 1e-6


def test_shapes3d_scale_grows_the_object_and_shapes_differ():
    dataset = SyntheticShapes3D(antialias=1)
    masks = []
    for shape in range(4):
        base = _SHAPES3D_BASE.copy()
        base[4] = shape
        shape_masks = _object_masks(dataset, _traversal(base, 3, 8))  # [8, 64, 64]
        areas = shape_masks.sum(axis=(1, 2))
        assert np.all(np.diff(areas) > 0), (shape, areas)
        assert 1.5 < areas[-1] / areas[0] < 4.0  # (1.25 / 0.75)^2 = 2.8
        masks.append(shape_masks[-1])
    for a, b in itertools.combinations(masks, 2):
        assert (a & b).sum() / (a | b).sum() < 0.9  # distinct silhouettes


def test_shapes3d_orientation_turns_every_shape():
    """Each orientation step changes the object's own pixels, for all shapes."""
    dataset = SyntheticShapes3D()
    for shape in range(4):
        base = _SHAPES3D_BASE.copy()
        base[4] = shape
        factors = _traversal(base, 5, 15)
        images = dataset.observations(factors)
        masks = _object_masks(dataset, factors)  # [15, 64, 64]
        both = masks[1:] & masks[:-1]  # object in consecutive views
        steps = np.abs(np.diff(images, axis=0)).max(axis=3)  # [14, 64, 64]
        changed_on_object = (steps * both).sum(axis=(1, 2)) / both.sum(axis=(1, 2))
        assert changed_on_object.min() > 5e-3, (shape, changed_on_object)


def test_shapes3d_object_window_holds_every_object_and_shadow(shapes3d):
    """Ray-casting the whole frame gives the same images as the window."""
    factors = np.array(
        [[2, 7, 4, 7, shape, view] for shape in range(4) for view in range(15)]
    )
    full_frame = SyntheticShapes3D()
    full_frame._window = (slice(0, 64), slice(0, 64))
    np.testing.assert_array_equal(
        shapes3d.observations(factors), full_frame.observations(factors)
    )


# ----------------------------------------------------------------------------
# dSprites-style sprites.


def test_dsprites_factor_values(dsprites):
    assert dsprites.factor_names == ("shape", "scale", "orientation", "pos_x", "pos_y")
    assert dsprites.factor_sizes == (3, 6, 40, 32, 32)  # 737,280 sprites
    factors = np.array([[0, 0, 0, 0, 31], [2, 5, 10, 31, 0]])
    np.testing.assert_allclose(
        dsprites.factor_values(factors),
        [[1.0, 0.5, 0.0, 0.0, 1.0], [3.0, 1.0, np.pi / 2, 1.0, 0.0]],
    )


def test_dsprites_large_batches_are_drawn_in_chunks_seamlessly():
    dataset = SyntheticDSprites(antialias=4)  # 334 sprites per chunk
    factors = dataset.sample_factors(700, np.random.default_rng(4))
    images = dataset.observations(factors)
    np.testing.assert_array_equal(
        images[320:350], dataset.observations(factors[320:350])
    )
    assert images.reshape(700, -1).max(axis=1).min() == 1.0  # every sprite drawn


def test_dsprites_binary_unless_antialiased(dsprites):
    factors = dsprites.sample_factors(16, np.random.default_rng(3))
    assert set(np.unique(dsprites.observations(factors))) <= {0.0, 1.0}
    smooth = SyntheticDSprites(antialias=4).observations(factors)
    assert ((smooth > 0) & (smooth < 1)).any()


def _centroid(images: np.ndarray) -> np.ndarray:
    """Centres of mass (x, y) in pixel-index units: [n, 2]."""
    weights = images[..., 0]
    index = np.arange(64, dtype=np.float64)
    total = weights.sum(axis=(1, 2))
    x = (weights.sum(axis=1) * index).sum(axis=1) / total
    y = (weights.sum(axis=2) * index).sum(axis=1) / total
    return np.stack([x, y], axis=1)


@pytest.mark.parametrize("axis", [0, 1])
def test_dsprites_position_moves_the_centre_of_mass(axis):
    dataset = SyntheticDSprites(antialias=4)
    base = np.array([1, 3, 7, 10, 20])  # a tilted ellipse: centre of mass = centre
    centroid = _centroid(dataset.observations(_traversal(base, 3 + axis, 32)))
    expected = (0.2 + 0.6 * np.linspace(0, 1, 32)) * 64 - 0.5  # pixel index
    np.testing.assert_allclose(centroid[:, axis], expected, atol=0.1)
    other = 0.2 + 0.6 * base[4 - axis] / 31
    np.testing.assert_allclose(centroid[:, 1 - axis], other * 64 - 0.5, atol=0.1)


def test_dsprites_areas_grow_with_scale_and_differ_by_shape():
    dataset = SyntheticDSprites(antialias=4)
    areas = np.stack(
        [
            dataset.observations(_traversal(np.array([shape, 0, 3, 16, 16]), 1, 6)).sum(
                axis=(1, 2, 3)
            )
            for shape in range(3)
        ]
    )  # [shape, scale], pixels
    assert np.all(np.diff(areas, axis=1) > 0)
    scales = np.linspace(0.5, 1, 6)
    np.testing.assert_allclose(
        areas / areas[:, -1:], np.tile(scales**2, (3, 1)), rtol=0.05
    )
    # Analytic areas at scale 1: square, ellipse, and the heart curve's 3.66.
    expected = np.array([0.25**2, np.pi * 0.16 * 0.08, 3.66 * (0.14 / 1.139) ** 2])
    np.testing.assert_allclose(areas[:, -1], expected * 64**2, rtol=0.02)
    for a, b in itertools.combinations(areas[:, -1], 2):
        assert abs(a / b - 1) > 0.1


def test_dsprites_symmetries_match_dsprites(dsprites):
    """The square repeats every 90 degrees, the ellipse every 180; the heart never."""
    for shape, period in ((0, 10), (1, 20)):
        images = dsprites.observations(
            _traversal(np.array([shape, 5, 0, 9, 20]), 2, 40)
        )
        differing = np.abs(images[period:] - images[:-period]).sum(axis=(1, 2, 3))
        assert differing.max() <= 2  # pixels; only ties at the edge may flip
    hearts = dsprites.observations(_traversal(_DSPRITES_BASE, 2, 40)).reshape(40, -1)
    assert len(np.unique(hearts, axis=0)) == 40


def test_dsprites_sprites_stay_whole_at_the_edges():
    """A large square at 45 degrees keeps its area in every corner of the grid."""
    dataset = SyntheticDSprites(antialias=4)
    factors = np.array(
        [[0, 5, 5, x, y] for x in (0, 15, 31) for y in (0, 16, 31)]
    )  # orientation 5: 45 degrees
    images = dataset.observations(factors)
    areas = images.sum(axis=(1, 2, 3))
    np.testing.assert_allclose(areas, 0.25**2 * 64**2, rtol=0.02)
    assert images[:, [0, -1]].max() == 0 and images[:, :, [0, -1]].max() == 0
