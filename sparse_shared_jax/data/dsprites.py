"""dSprites-style sprites rendered on demand from their factors.

A white shape (square, ellipse or heart) on a black 64 x 64 background, with
the factor grid of DeepMind's dSprites (Matthey et al., 2017): 3 shapes x 6
scales x 40 orientations x 32 x 32 positions = 737,280 images. Nothing is
stored: every call rasterises the requested sprites, vectorised over the batch.
"""

from __future__ import annotations

import numpy as np

from sparse_shared_jax.data import _render
from sparse_shared_jax.data.ground_truth import GroundTruthDataset

_IMAGE_SIZE = 64
_NUM_SHAPES = 3
_SCALES = np.linspace(0.5, 1.0, 6)
_ORIENTATIONS = np.arange(40) * (2.0 * np.pi / 40)  # radians, [0, 2 pi)
_POSITIONS = np.linspace(0.0, 1.0, 32)

# Sprite sizes at scale 1 in image units (1 = the image side): the square's
# half-side, the ellipse's semi-axes, and the heart's half-width.
_SQUARE_HALF_SIDE = 0.125
_ELLIPSE_SEMI_AXES = (0.16, 0.08)
_HEART_HALF_WIDTH = 0.14
# The heart is the region (x^2 + y^2 - 1)^3 <= x^2 y^3; in those coordinates
# it spans x in [-1.139, 1.139] and y in [-1, 1.236]. Shift it so the middle of
# its vertical extent sits on the sprite centre.
_HEART_EXTENT_X = 1.139
_HEART_CENTRE_Y = 0.118
# Sprite centres stay this far from the image border, so a scale-1 sprite at
# any orientation (the square's corner reaches 0.125 * sqrt(2) = 0.177) keeps
# at least a pixel (0.016) clear of it.
_MARGIN = 0.2
# Side in pixels of the window each sprite is drawn in: it holds the disc of
# radius _MARGIN around the centre wherever the centre falls in a pixel.
_WINDOW = int(np.ceil(2 * _MARGIN * _IMAGE_SIZE)) + 2
# Sub-pixels drawn at once (4M: 16 MB per float32 temporary).
_CHUNK_SUBPIXELS = 2**22


class SyntheticDSprites(GroundTruthDataset):
    """dSprites-style binary sprites, float32 [64, 64, 1] in [0, 1].

    Factors (index grid -> natural value returned by `factor_values`):

    * ``shape`` (3): square, ellipse, heart -> 1, 2, 3 (dSprites' values).
    * ``scale`` (6): ``linspace(0.5, 1, 6)``, the sprite's size relative to
      its largest.
    * ``orientation`` (40): ``k * 2 pi / 40`` radians in [0, 2 pi),
      counter-clockwise on screen. (dSprites uses ``linspace(0, 2 pi, 40)``,
      whose ends coincide; here the 40 angles are distinct.) The square
      looks the same every 10 steps (90 degrees) and the ellipse every 20:
      orientation is only identifiable up to the shape's symmetry, as in
      dSprites.
    * ``pos_x``, ``pos_y`` (32 each): ``linspace(0, 1, 32)``; the sprite's
      centre moves from 0.2 to 0.8 of the image side, rightwards for
      ``pos_x`` and downwards (increasing row) for ``pos_y``.

    Args:
      antialias: sub-pixels per pixel along each axis. 1 (the default) gives
        strictly binary images like dSprites; k > 1 averages k x k samples
        per pixel, giving anti-aliased edges.
    """

    factor_names = ("shape", "scale", "orientation", "pos_x", "pos_y")
    factor_sizes = (
        _NUM_SHAPES,
        len(_SCALES),
        len(_ORIENTATIONS),
        len(_POSITIONS),
        len(_POSITIONS),
    )
    observation_shape = (_IMAGE_SIZE, _IMAGE_SIZE, 1)

    def __init__(self, antialias: int = 1):
        if antialias < 1:
            raise ValueError(f"antialias must be >= 1; got {antialias}.")
        self.antialias = antialias
        # Sub-pixel centres across a window, in pixels from its corner.
        self._grid = _render.subpixel_centres(_WINDOW, antialias) * _WINDOW

    def factor_values(self, factors: np.ndarray) -> np.ndarray:
        """Natural values: shape id (1-3), scale, angle (rad), x, y in [0, 1].

        Args:
          factors: int [num, 5] indices.

        Returns:
          float64 [num, 5].
        """
        factors = _render.check_factor_indices(
            factors, self.factor_names, self.factor_sizes
        )
        return _natural_values(factors)

    def observations(self, factors: np.ndarray) -> np.ndarray:
        """Renders sprites: int [num, 5] -> float32 [num, 64, 64, 1].

        Raises:
          ValueError: if `factors` is not [num, 5] or an index is out of range.
        """
        factors = _render.check_factor_indices(
            factors, self.factor_names, self.factor_sizes
        )
        values = _natural_values(factors).astype(np.float32)
        images = np.zeros((len(factors), _IMAGE_SIZE, _IMAGE_SIZE), np.float32)
        # Draw large batches in chunks, bounding the temporaries' memory.
        per_chunk = max(1, _CHUNK_SUBPIXELS // len(self._grid) ** 2)
        for start in range(0, len(factors), per_chunk):
            chunk = slice(start, start + per_chunk)
            self._draw(factors[chunk, 0], values[chunk], images[chunk])
        return images[..., None]

    def _draw(self, shape: np.ndarray, values: np.ndarray, out: np.ndarray) -> None:
        """Draws sprites onto black images.

        Each sprite is rasterised in a window around its centre that holds it
        at any scale and orientation, then pasted into its image.

        Args:
          shape: int [n] shape indices.
          values: float32 [n, 5] natural factor values.
          out: float32 [n, 64, 64] zeros, written in place.
        """
        # Sprite centres (x, y) in pixels, and the windows' top-left pixels.
        centre = (_MARGIN + (1.0 - 2.0 * _MARGIN) * values[:, 3:5]) * _IMAGE_SIZE
        corner = np.floor(centre - _WINDOW / 2).astype(np.int64)
        corner = np.clip(corner, 0, _IMAGE_SIZE - _WINDOW)  # [n, 2]
        side = len(self._grid)
        coverage = np.zeros((len(shape), side, side), np.float32)  # sub-pixels
        for shape_id, inside in enumerate(_INSIDE_TESTS):
            rows = np.flatnonzero(shape == shape_id)
            if rows.size:
                u, v = self._sprite_coordinates(
                    values[rows], centre[rows] - corner[rows]
                )
                coverage[rows] = inside(u, v)
        offsets = np.arange(_WINDOW)
        out[
            np.arange(len(shape))[:, None, None],
            corner[:, 1, None, None] + offsets[None, :, None],
            corner[:, 0, None, None] + offsets[None, None, :],
        ] = _render.downsample(coverage, self.antialias)

    def _sprite_coordinates(
        self, values: np.ndarray, centre: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Window sub-pixel positions in each sprite's frame, in image units.

        Args:
          values: float32 [n, 5] natural factor values.
          centre: [n, 2] sprite centres (x, y) in pixels from the window corner.

        Returns:
          (u, v), each float32 [n, side, side]: rightwards and upwards in the
          sprite's rotated frame, divided by its scale, in units of the image
          side.
        """
        size = values[:, 1, None, None] * _IMAGE_SIZE  # pixels per unit, [n, 1, 1]
        angle = values[:, 2, None, None]
        dx = (self._grid[None, None, :] - centre[:, 0, None, None]) / size
        dy = (centre[:, 1, None, None] - self._grid[None, :, None]) / size  # up
        cos, sin = np.cos(angle), np.sin(angle)
        # Rotate the pixel offsets by -angle: the sprite turns by +angle.
        return cos * dx + sin * dy, cos * dy - sin * dx


def _natural_values(factors: np.ndarray) -> np.ndarray:
    """Validated int [num, 5] indices -> float64 [num, 5] natural values."""
    return np.stack(
        [
            factors[:, 0] + 1.0,
            _SCALES[factors[:, 1]],
            _ORIENTATIONS[factors[:, 2]],
            _POSITIONS[factors[:, 3]],
            _POSITIONS[factors[:, 4]],
        ],
        axis=1,
    )


def _inside_square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(u), np.abs(v)) <= _SQUARE_HALF_SIDE


def _inside_ellipse(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    semi_u, semi_v = _ELLIPSE_SEMI_AXES
    return (u / semi_u) ** 2 + (v / semi_v) ** 2 <= 1.0


def _inside_heart(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    unit = _HEART_HALF_WIDTH / _HEART_EXTENT_X
    x, y = u / unit, v / unit + _HEART_CENTRE_Y
    radial = x**2 + y**2 - 1.0
    return radial**3 <= x**2 * y**3


_INSIDE_TESTS = (_inside_square, _inside_ellipse, _inside_heart)
