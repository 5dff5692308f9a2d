"""How fast a prepared real benchmark feeds meta-training episodes.

Fabricates a CelebA release in its on-disk format (random-pixel 178x218
JPEGs, random attributes), prepares `celeba/64px` from it, and times the
three data steps of the benchmark trainer (`trainers.benchmark`):
preparing, reading the label columns (`benchmark_splits.open_splits`) and
reading the inputs of one episode's random rows (`BenchmarkSplit.inputs`,
JPEG decoding included), against
TFDS's own data source decoding every field of the same rows. Prints a
Markdown table with the median of several repeats.

    python benchmarks/benchmark_input_throughput.py --num_images=3000
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import numpy as np
import PIL.Image
import tensorflow_datasets as tfds

from sparse_shared_jax.data import benchmark_splits
from sparse_shared_jax.data.benchmarks.celeba import CELEBA_ATTRIBUTES


def write_celeba(root: str, num_images: int, seed: int = 0) -> None:
    """A CelebA release of `num_images` noise faces: 80% train, 10% / 10%."""
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(root, "img_align_celeba"))
    attribute_lines, partition_lines = [], []
    for index in range(num_images):
        filename = f"{index + 1:06d}.jpg"
        pixels = rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)
        PIL.Image.fromarray(pixels).save(
            os.path.join(root, "img_align_celeba", filename), quality=90
        )
        values = rng.choice((-1, 1), len(CELEBA_ATTRIBUTES))
        attribute_lines.append(filename + "".join(f" {v:2d}" for v in values))
        partition = 0 if index < 0.8 * num_images else 1 + (index % 2)
        partition_lines.append(f"{filename} {partition}")
    with open(os.path.join(root, "list_attr_celeba.txt"), "w") as f:
        f.write("\n".join([str(num_images), " ".join(CELEBA_ATTRIBUTES)]))
        f.write("\n" + "\n".join(attribute_lines) + "\n")
    with open(os.path.join(root, "list_eval_partition.txt"), "w") as f:
        f.write("\n".join(partition_lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num_images", type=int, default=3000)
    parser.add_argument("--episode_size", type=int, default=2048, help="T*(n_s+n_q)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    tfds.disable_progress_bar()
    with tempfile.TemporaryDirectory() as tmp:
        manual_dir, data_dir = os.path.join(tmp, "manual"), os.path.join(tmp, "tfds")
        write_celeba(manual_dir, args.num_images)
        start = time.perf_counter()
        splits = benchmark_splits.open_splits(
            "celeba/64px", data_dir=data_dir, manual_dir=manual_dir
        )
        prepare_and_open = time.perf_counter() - start
        opens = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            splits = benchmark_splits.open_splits("celeba/64px", data_dir=data_dir)
            opens.append(time.perf_counter() - start)
        train = splits["train"]
        every_field = tfds.builder("celeba/64px", data_dir=data_dir).as_data_source(
            "train"
        )
        rng = np.random.default_rng(0)
        reads, full_reads = [], []
        for _ in range(args.repeats):
            rows = rng.integers(0, len(train), args.episode_size)
            start = time.perf_counter()
            inputs = train.inputs(rows)
            reads.append(time.perf_counter() - start)
            start = time.perf_counter()
            records = every_field.__getitems__(rows.tolist())
            images = np.stack([record["image"] for record in records])
            full_inputs = images.astype(np.float32) / 255.0
            full_reads.append(time.perf_counter() - start)
            np.testing.assert_array_equal(inputs, full_inputs)
        assert inputs.shape == (args.episode_size, 64, 64, 3)
    open_s, read_s = statistics.median(opens), statistics.median(reads)
    full_read_s = statistics.median(full_reads)
    print(f"celeba/64px, {args.num_images} fabricated images, {args.repeats} repeats\n")
    print("| step | median time | rate |")
    print("| --- | --- | --- |")
    print(
        f"| prepare from the release + open (once) | {prepare_and_open:.1f} s | "
        f"{args.num_images / prepare_and_open:,.0f} images/s |"
    )
    print(
        f"| open: read all label columns | {open_s:.2f} s | "
        f"{args.num_images / open_s:,.0f} records/s |"
    )
    print(
        f"| one episode's inputs ({args.episode_size} random rows) | "
        f"{read_s:.2f} s | {args.episode_size / read_s:,.0f} images/s |"
    )
    print(
        f"| the same rows, every field decoded (TFDS data source) | "
        f"{full_read_s:.2f} s | {args.episode_size / full_read_s:,.0f} images/s |"
    )


if __name__ == "__main__":
    main()
