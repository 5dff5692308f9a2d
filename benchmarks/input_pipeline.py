"""What the input pipeline (`input_pipeline.EpisodeStream`) costs and buys.

For one experiment (default: the default image experiment, a freshly
initialised encoder), and each worker count of --workers:

* **pipeline alone**: episodes/s that the stream delivers as global arrays,
  steps --warmup..--warmup+--episodes-1 (the first --warmup episodes, with
  the workers' start-up and the renderer's first ray-casts, are timed apart
  as "start-up s");
* **step with the pipeline**: seconds per training step when every step
  takes its episode from the stream, dispatched as the training loop does
  (at most two steps in flight), after as many untimed steps as the
  workers buffer, against **step alone**: the same jitted step on one
  episode that is already on the device. Both are medians over --repeats
  passes of --steps steps, interleaved so that other load falls on all
  alike; "overhead" is their ratio minus 1.

    python benchmarks/input_pipeline.py
    python benchmarks/input_pipeline.py --experiment experiments/nonlinear_mixing.py

Prints a Markdown table (and writes it with --output).
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import tempfile
import time

import jax

from sparse_shared_jax import configs, loop, parallel, trainers


def stream_for(config, workers: int, workdir: str):
    """The run's job and its episode stream with `workers` workers."""
    config = config.copy_and_resolve_references()
    config.input.workers = workers
    job = trainers.get(config.trainer).prepare(config, workdir)
    return job, job.batch_at


def pipeline_rate(stream, sharding, warmup: int, episodes: int) -> tuple[float, float]:
    """(start-up seconds, episodes/s after it) of a fresh stream."""
    start = time.perf_counter()
    for step in range(warmup):
        jax.block_until_ready(stream(step, sharding))
    ready = time.perf_counter()
    for step in range(warmup, warmup + episodes):
        jax.block_until_ready(stream(step, sharding))
    return ready - start, episodes / (time.perf_counter() - ready)


def seconds_per_step(train_step, state, batches) -> tuple[float, object]:
    """(seconds per step over `batches`, the state after them): the device
    batches dispatched as loop.run_training_loop does (the step donates the
    state)."""
    start, previous_loss, count = time.perf_counter(), None, 0
    for batch in batches:
        state, metrics = train_step(state, batch)
        if previous_loss is not None:
            jax.block_until_ready(previous_loss)
        previous_loss, count = metrics["loss"], count + 1
    jax.block_until_ready(previous_loss)
    return (time.perf_counter() - start) / count, state


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiment", default="experiments/shapes3d.py")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--warmup", type=int, default=8)
    parser.add_argument("--episodes", type=int, default=40)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()

    config = configs.load_experiment(args.experiment)()
    workdir = tempfile.mkdtemp(prefix="input_pipeline_benchmark_")
    jobs = {w: stream_for(config, w, workdir) for w in args.workers}
    job = jobs[args.workers[0]][0]
    layout = loop.layout_of(config, job)
    sharding = layout.episode

    rates = {}
    for workers, (_, stream) in jobs.items():
        rates[workers] = pipeline_rate(stream, sharding, args.warmup, args.episodes)
        stream.close()
        print(f"pipeline, {workers} workers: {rates[workers]}", flush=True)

    state, shardings = parallel.create_sharded(
        job.init_state, layout.mesh, layout.param_sharding
    )
    train_step = loop.jit_train_step(job.train_step, layout, shardings)
    fixed = job.batch_at(0, sharding)
    state, _ = jax.block_until_ready(train_step(state, fixed))  # compile
    alone, piped = [], {w: [] for w in args.workers}
    next_step = dict.fromkeys(args.workers, args.warmup + args.episodes)
    for repeat in range(args.repeats):
        seconds, state = seconds_per_step(train_step, state, [fixed] * args.steps)
        alone.append(seconds)
        for workers, (_, stream) in jobs.items():
            # Untimed first: the workers (re)start, and the buffers they
            # filled while other rows ran drain to their steady level.
            untimed = max(1, workers * config.input.buffer_size)
            timed = range(
                next_step[workers] + untimed, next_step[workers] + untimed + args.steps
            )
            _, state = seconds_per_step(
                train_step,
                state,
                (stream(s, sharding) for s in range(next_step[workers], timed.start)),
            )
            seconds, state = seconds_per_step(
                train_step, state, (stream(s, sharding) for s in timed)
            )
            piped[workers].append(seconds)
            next_step[workers] = timed.stop
        print(f"repeat {repeat + 1}/{args.repeats} done", flush=True)
    for _, stream in jobs.values():
        stream.close()

    step_alone = statistics.median(alone)
    lines = [
        f"{args.experiment}, {jax.device_count()} {jax.default_backend()} "
        f"device(s), {os.cpu_count()} CPU cores; medians of {args.repeats} "
        f"passes of {args.steps} steps",
        "",
        "| workers | start-up s | pipeline alone, episodes/s | step alone, s "
        "| step with the pipeline, s | overhead |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for workers in args.workers:
        startup, rate = rates[workers]
        step = statistics.median(piped[workers])
        lines.append(
            f"| {workers} | {startup:.1f} | {rate:.1f} | {step_alone:.3f} | "
            f"{step:.3f} | {step / step_alone - 1:+.1%} |"
        )
    print("\n".join(lines))
    if args.output:
        pathlib.Path(args.output).write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
