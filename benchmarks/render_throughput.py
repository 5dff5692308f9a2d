"""Rendering throughput of the procedural datasets on one CPU core.

Prints a Markdown table of images per second for each renderer and batch
size: the first batch of a new dataset object ("first"; SyntheticShapes3D
ray-casts each (scale, shape, orientation) geometry the first time it is
asked for, up to 480 of them) and the median over repeats of fresh uniformly
sampled batches after every geometry has been cast once ("steady"):

    python benchmarks/render_throughput.py [--batch-sizes 64 512] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np

from sparse_shared_jax.data.dsprites import SyntheticDSprites
from sparse_shared_jax.data.ground_truth import GroundTruthDataset
from sparse_shared_jax.data.shapes3d import SyntheticShapes3D

RENDERERS = {
    "SyntheticShapes3D (antialias=2, default)": lambda: SyntheticShapes3D(2),
    "SyntheticShapes3D (antialias=1)": lambda: SyntheticShapes3D(1),
    "SyntheticDSprites (antialias=1, default)": lambda: SyntheticDSprites(1),
    "SyntheticDSprites (antialias=4)": lambda: SyntheticDSprites(4),
}


def _every_geometry(dataset: SyntheticShapes3D) -> np.ndarray:
    """Factors [480, 6]: every (scale, shape, orientation), hues at index 0."""
    geometries = np.indices(dataset.factor_sizes[3:]).reshape(3, -1).T
    return np.concatenate([np.zeros((len(geometries), 3), int), geometries], axis=1)


def images_per_second(
    make_dataset: Callable[[], GroundTruthDataset], batch_size: int, repeats: int
) -> tuple[float, float]:
    """(first batch's rate on a new dataset object, median steady rate)."""
    rng = np.random.default_rng(0)
    dataset = make_dataset()
    factors = dataset.sample_factors(batch_size, rng)
    start = time.perf_counter()
    dataset.observations(factors)
    first = batch_size / (time.perf_counter() - start)
    if isinstance(dataset, SyntheticShapes3D):
        dataset.observations(_every_geometry(dataset))
    seconds = []
    for _ in range(repeats):
        factors = dataset.sample_factors(batch_size, rng)
        start = time.perf_counter()
        dataset.observations(factors)
        seconds.append(time.perf_counter() - start)
    return first, batch_size / float(np.median(seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core

    header = " | ".join(
        f"batch {size} first | batch {size} steady" for size in args.batch_sizes
    )
    print(f"| renderer (images/s, one core) | {header} |")
    print("|---" * (2 * len(args.batch_sizes) + 1) + "|")
    for name, make_dataset in RENDERERS.items():
        rates = [
            rate
            for size in args.batch_sizes
            for rate in images_per_second(make_dataset, size, args.repeats)
        ]
        print(f"| {name} | " + " | ".join(f"{rate:,.0f}" for rate in rates) + " |")


if __name__ == "__main__":
    main()
