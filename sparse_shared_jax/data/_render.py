"""Vectorised helpers shared by the procedural renderers.

Pixel grids with supersampling for anti-aliasing, hue-to-RGB conversion, and
validation of the factor indices a renderer is asked to draw.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def subpixel_centres(size: int, antialias: int) -> np.ndarray:
    """Centres of the sub-pixels along one image axis, in image units [0, 1].

    Args:
      size: pixels along the axis.
      antialias: sub-pixels per pixel along the axis (1: pixel centres).

    Returns:
      float32 [size * antialias], increasing.
    """
    num = size * antialias
    return ((np.arange(num) + 0.5) / num).astype(np.float32)


def downsample(images: np.ndarray, antialias: int) -> np.ndarray:
    """Averages `antialias` x `antialias` blocks of sub-pixels into pixels.

    Args:
      images: [num, height * antialias, width * antialias, ...].
      antialias: sub-pixels per pixel along each axis.

    Returns:
      [num, height, width, ...], the same dtype.
    """
    if antialias == 1:
        return images
    # Summing strided views is much faster than a reshaped mean over two axes.
    total = sum(
        images[:, i::antialias, j::antialias]
        for i in range(antialias)
        for j in range(antialias)
    )
    return (total * (1.0 / antialias**2)).astype(images.dtype, copy=False)


def hue_to_rgb(hue: np.ndarray) -> np.ndarray:
    """Fully saturated, full-value colours on the hue wheel (HSV with S = V = 1).

    Args:
      hue: [...] in [0, 1); 0 is red, 1/3 green, 2/3 blue.

    Returns:
      float32 [..., 3] in [0, 1].
    """
    hue = np.asarray(hue, dtype=np.float32)[..., None]  # [..., 1]
    offsets = np.array([0.0, 2.0 / 3.0, 1.0 / 3.0], np.float32)  # R, G, B
    # Each channel is a trapezoid of the hue: 1 within 1/6 of its own hue,
    # falling linearly to 0 at 1/3 away.
    distance = np.abs((hue + offsets) % 1.0 - 0.5)  # [..., 3] in [0, 0.5]
    return np.clip(6.0 * distance - 1.0, 0.0, 1.0).astype(np.float32)


def check_factor_indices(
    factors: np.ndarray,
    factor_names: Sequence[str],
    factor_sizes: Sequence[int],
) -> np.ndarray:
    """Validates integer factor indices before rendering.

    Args:
      factors: [num, K] integers, column i in ``range(factor_sizes[i])``.
      factor_names: the K factor names, for error messages.
      factor_sizes: the K grid sizes.

    Returns:
      The indices as an int64 array [num, K].

    Raises:
      ValueError: if the array is not [num, K], not integer, or an index is out
        of its factor's range (the message names the factor and the range).
    """
    factors = np.asarray(factors)
    num_factors = len(factor_sizes)
    if factors.ndim != 2 or factors.shape[1] != num_factors:
        raise ValueError(
            f"factors must have shape [num, {num_factors}] (one column per factor "
            f"{tuple(factor_names)}); got shape {factors.shape}."
        )
    if not np.issubdtype(factors.dtype, np.integer):
        raise ValueError(f"factors must be integer indices; got dtype {factors.dtype}.")
    factors = factors.astype(np.int64)
    if factors.shape[0] == 0:
        return factors
    lows, highs = factors.min(axis=0), factors.max(axis=0)
    for name, size, low, high in zip(
        factor_names, factor_sizes, lows, highs, strict=True
    ):
        if low < 0 or high >= size:
            raise ValueError(
                f"Factor {name!r} takes indices in [0, {size - 1}]; "
                f"got values in [{low}, {high}]."
            )
    return factors
