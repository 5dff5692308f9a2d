"""The XLA operations that take the training step's time, from a jax.profiler trace.

Compiles the experiment's jitted bilevel training step (a fresh encoder, one
real episode), runs it --steps times under `jax.profiler.trace`, reads the
trace back (`jax.profiler.ProfileData`) and sums the time of every XLA
operation: on an accelerator the events of the device's "XLA Ops" line, on
the CPU those of XLA's CPU client threads. Prints the --top operations by
total time, with their share of all operation time, and writes them to
OUTPUT.md and OUTPUT.json (with the trace directory, for TensorBoard or
Perfetto).

    python benchmarks/profile_step.py --output results/profile_cpu
    python benchmarks/profile_step.py --num_tasks 64 --output results/profile_gpu

benchmarks/accelerator.sh runs it on a GPU with the step benchmark.
"""

from __future__ import annotations

import argparse
import collections
import glob
import json
import os
import tempfile
import time

import jax
import numpy as np

from sparse_shared_jax import bilevel, configs, loop, trainers
from sparse_shared_jax.config_validation import bilevel_settings


def _is_bookkeeping(name: str) -> bool:
    """The CPU runtime's own events (thread pools, the thunk executor)."""
    return "::" in name or name.startswith("end: ")


def operation_times(trace_dir: str) -> dict[str, tuple[float, int]]:
    """XLA operation name -> (total seconds, count) in the trace."""
    (path,) = glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True)
    profile = jax.profiler.ProfileData.from_file(path)
    totals = collections.defaultdict(lambda: [0.0, 0])
    device_planes = [p for p in profile.planes if p.name.startswith("/device:")]
    for plane in device_planes or profile.planes:
        for line in plane.lines:
            if device_planes:
                wanted = line.name == "XLA Ops"
            else:
                wanted = line.name.startswith("tf_XLAPjRtCpuClient")
            if not wanted:
                continue
            for event in line.events:
                if _is_bookkeeping(event.name):
                    continue
                totals[event.name][0] += event.duration_ns * 1e-9
                totals[event.name][1] += 1
    return {name: (seconds, count) for name, (seconds, count) in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="experiments/shapes3d.py")
    parser.add_argument("--num_tasks", type=int, default=None, help="override T")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--top", type=int, default=15)
    parser.add_argument("--output", default=None, help="path without suffix")
    args = parser.parse_args()

    config = configs.load_experiment(args.experiment)()
    if args.num_tasks:
        config.episode.num_tasks = args.num_tasks
    job = trainers.get(config.trainer).prepare(config, tempfile.mkdtemp())
    layout = loop.layout_of(config, job)
    episode = job.batch_at(0, layout.episode)
    settings = bilevel_settings(config)
    step = jax.jit(bilevel.train_step, static_argnums=2, donate_argnums=0)
    state = job.init_state()
    start = time.perf_counter()
    state, _ = step(state, episode, settings)
    jax.block_until_ready(state)
    compile_s = time.perf_counter() - start

    trace_dir = tempfile.mkdtemp(prefix="profile_step_")
    with jax.profiler.trace(trace_dir):
        start = time.perf_counter()
        for _ in range(args.steps):
            state, _ = step(state, episode, settings)
        jax.block_until_ready(state)
        step_s = (time.perf_counter() - start) / args.steps
    times = operation_times(trace_dir)
    total = sum(seconds for seconds, _ in times.values()) or float("nan")
    ranked = sorted(times.items(), key=lambda item: -item[1][0])[: args.top]

    device = jax.devices()[0]
    lines = [
        f"Profile of {args.steps} steps of {os.path.basename(args.experiment)} "
        f"(T = {config.episode.num_tasks}) on {device.device_kind} "
        f"({jax.default_backend()}): step {1e3 * step_s:.1f} ms under the "
        f"profiler, first step (compile) {compile_s:.1f} s; trace in {trace_dir}.",
        "",
        "| operation | ms per step | share of op time | calls per step |",
        "|---|---|---|---|",
    ]
    for name, (seconds, count) in ranked:
        lines.append(
            f"| `{name[:80]}` | {1e3 * seconds / args.steps:.2f} | "
            f"{seconds / total:.1%} | {count / args.steps:.1f} |"
        )
    table = "\n".join(lines)
    print(table)
    if args.output:
        with open(args.output + ".md", "w") as f:
            f.write(table + "\n")
        with open(args.output + ".json", "w") as f:
            json.dump(
                {
                    "experiment": args.experiment,
                    "num_tasks": config.episode.num_tasks,
                    "device": device.device_kind,
                    "step_ms": 1e3 * step_s,
                    "compile_s": compile_s,
                    "trace_dir": trace_dir,
                    "operations": [
                        {
                            "name": name,
                            "ms_per_step": 1e3 * seconds / args.steps,
                            "share": seconds / total,
                            "calls_per_step": count / args.steps,
                        }
                        for name, (seconds, count) in ranked
                    ],
                    "total_op_ms_per_step": 1e3 * float(np.sum(total)) / args.steps,
                },
                f,
                indent=2,
            )


if __name__ == "__main__":
    main()
