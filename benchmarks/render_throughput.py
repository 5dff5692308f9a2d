"""Rendering throughput of the procedural datasets on one CPU core.

Prints a Markdown table of images per second (median over repeats, each on a
fresh uniformly sampled batch) for each renderer and batch size:

    python benchmarks/render_throughput.py [--batch-sizes 64 512] [--repeats 7]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from sparse_shared_jax.data.dsprites import SyntheticDSprites
from sparse_shared_jax.data.ground_truth import GroundTruthDataset
from sparse_shared_jax.data.shapes3d import SyntheticShapes3D

RENDERERS = {
    "SyntheticShapes3D (antialias=2, default)": SyntheticShapes3D(antialias=2),
    "SyntheticShapes3D (antialias=1)": SyntheticShapes3D(antialias=1),
    "SyntheticDSprites (antialias=1, default)": SyntheticDSprites(antialias=1),
    "SyntheticDSprites (antialias=4)": SyntheticDSprites(antialias=4),
}


def images_per_second(
    dataset: GroundTruthDataset, batch_size: int, repeats: int
) -> float:
    """Median rendering rate over `repeats` batches, after one warm-up batch."""
    rng = np.random.default_rng(0)
    dataset.observations(dataset.sample_factors(batch_size, rng))
    seconds = []
    for _ in range(repeats):
        factors = dataset.sample_factors(batch_size, rng)
        start = time.perf_counter()
        dataset.observations(factors)
        seconds.append(time.perf_counter() - start)
    return batch_size / float(np.median(seconds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core

    header = " | ".join(f"batch {size}" for size in args.batch_sizes)
    print(f"| renderer (images/s, one core) | {header} |")
    print("|---" * (len(args.batch_sizes) + 1) + "|")
    for name, dataset in RENDERERS.items():
        rates = (
            images_per_second(dataset, size, args.repeats) for size in args.batch_sizes
        )
        print(f"| {name} | " + " | ".join(f"{rate:,.0f}" for rate in rates) + " |")


if __name__ == "__main__":
    main()
