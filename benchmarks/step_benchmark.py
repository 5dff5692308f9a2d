"""Cost of one jitted outer training step: bilevel (implicit, unrolled) vs multi-task.

Times three steps on the same encoder and the same episode:

* ``implicit``: `bilevel.train_step`, heads differentiated implicitly;
* ``unrolled``: the same with BilevelSettings(differentiation='unrolled');
* ``multitask``: `multitask.train_step`, linear heads trained jointly with the
  encoder by gradient descent (no inner problem; the floor).

The centre point is the default experiment (experiments/shapes3d.py: conv
encoder on 64x64x3 images, T=10, n_s=32, n_q=16, k=10, inner maxiter 300);
the sweep varies one axis at a time around it (T in {4, 16, 64}, k in
{16, 64, 256}, maxiter in {50, 200, 1000}, bfloat16 encoder), or, with
--full_grid, takes every combination. The episode is one real episode of the
experiment (rendered once, so rendering is not timed), so the inner solver
works on realistic labels.

Each configuration is measured in a fresh subprocess that compiles the
three steps (trace + compile time, wall and CPU seconds, the latter less
sensitive to other load; the compiled step's XLA scratch memory,
i.e. its temp buffers; and the scratch memory of the inner solve and its
gradient compiled alone, without the encoder, on the axes in
--memory_axes), then runs them round robin:
one step of each in turn, two warm-up rounds, then repeats x steps rounds,
every step waited for with block_until_ready. Interleaving makes load from
other processes on a shared machine fall on the three alike, so the ratio to
the multi-task step stays meaningful; reported are median step time and
examples/s, and the machine's 1-minute load average before and after. On
the axes in --memory_axes every method also gets a process of its own for its
peak memory: peak RSS on CPU (includes compilation; a process's peak only
grows, hence one process each), peak device memory on GPU.

    python benchmarks/step_benchmark.py                  # one axis at a time
    python benchmarks/step_benchmark.py --full_grid      # every combination
    python benchmarks/step_benchmark.py --axes centre maxiter --platform gpu

Writes results/benchmark_<platform>.json and .md and prints the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import platform
import resource
import subprocess
import sys
import time

METHODS = ("implicit", "unrolled", "multitask")
CENTRE = {"num_tasks": 10, "num_features": 10, "maxiter": 300, "dtype": "float32"}
AXES = {
    "maxiter": (50, 200, 1000),
    "num_tasks": (4, 16, 64),
    "num_features": (16, 64, 256),
    "dtype": ("bfloat16",),
}
AXIS_NAMES = ("centre", *AXES)
EXPERIMENT = os.path.join(os.path.dirname(__file__), "..", "experiments", "shapes3d.py")
_WARMUP_STEPS = 2
_RESULT_PREFIX = "RESULT "


def sweep(axes: tuple[str, ...], full_grid: bool) -> list[tuple[str, dict]]:
    """The configurations to measure: (axis name, point) pairs.

    One axis at a time around CENTRE (the points of `axes`; 'centre' is the
    default itself), or every combination with `full_grid` (axis 'grid').
    A point sets num_tasks (T), num_features (k), maxiter and dtype.
    """
    if full_grid:
        values = itertools.product(*((CENTRE[name], *AXES[name]) for name in AXES))
        return [("grid", dict(zip(AXES, point, strict=True))) for point in values]
    points = [("centre", dict(CENTRE))] if "centre" in axes else []
    for name in AXES:
        if name in axes:
            points += [(name, {**CENTRE, name: value}) for value in AXES[name]]
    return points


# ----------------------------------------------------------------------------
# The workers: measurements inside one subprocess.


def _load_experiment_config():
    import importlib.util

    spec = importlib.util.spec_from_file_location("experiment", EXPERIMENT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def _config(point: dict, linear_solve: str | None):
    config = _load_experiment_config()
    config.episode.num_tasks = point["num_tasks"]
    config.model.num_features = point["num_features"]
    config.inner.maxiter = point["maxiter"]
    if linear_solve:
        config.inner.linear_solve = linear_solve
    return config


def _episode(config):
    """One real episode of the experiment, on the device."""
    import jax

    from sparse_shared_jax import bilevel
    from sparse_shared_jax import data as data_lib
    from sparse_shared_jax.trainers import ground_truth

    dataset = data_lib.ground_truth(config.data.name, **config.data.options.to_dict())
    episode = ground_truth.make_episode_sampler(config, dataset)(0)
    return jax.device_put(bilevel.EpisodeBatch.from_episode(episode))


def _build(method: str, dtype: str, config, example_x):
    """The jittable step of `method`, its static settings and initial state."""
    import jax
    import jax.numpy as jnp

    from sparse_shared_jax import bilevel, loop, models, multitask
    from sparse_shared_jax.config_validation import bilevel_settings

    encoder = models.get_encoder(
        config.model.name,
        config.model.num_features,
        dtype=jnp.dtype(dtype),
        **config.model.options.to_dict(),
    )
    optimizer = loop.make_optimizer(config.outer)
    rng = jax.random.key(config.seed)
    bilevel_options = bilevel_settings(config)
    if method == "multitask":
        settings = multitask.MultitaskSettings(
            loss=bilevel_options.loss,
            num_classes=bilevel_options.num_classes,
            normalization=bilevel_options.normalization,
        )
        state = multitask.create_train_state(
            encoder, rng, example_x, config.episode.num_tasks, settings, optimizer
        )
        step_fn = multitask.train_step
    else:
        settings = dataclasses.replace(
            bilevel_options,
            solver=dataclasses.replace(bilevel_options.solver, differentiation=method),
        )
        state = bilevel.create_train_state(encoder, rng, example_x, optimizer)
        step_fn = bilevel.train_step
    # The inner solver and the losses work in float32 whatever the encoder's
    # computation dtype.
    state = state.replace(
        apply_fn=lambda params, x: encoder.apply(params, x).astype(jnp.float32)
    )
    return step_fn, settings, state


def _compile(step_fn, settings, state, episode):
    """(compiled step, trace + compile wall seconds, and CPU seconds).

    The CPU time (all this process's threads) is the better measure on a
    loaded machine, where wall time also counts waiting for a core.
    """
    import jax

    start, start_cpu = time.perf_counter(), time.process_time()
    jitted = jax.jit(step_fn, static_argnums=2, donate_argnums=0)
    compiled = jitted.lower(state, episode, settings).compile()
    return compiled, time.perf_counter() - start, time.process_time() - start_cpu


def _temp_mb(compiled) -> float:
    memory = compiled.memory_analysis()
    return memory.temp_size_in_bytes / 2**20 if memory else float("nan")


def _inner_temp_mb(settings, episode, config) -> float:
    """Scratch memory of the inner solve and its gradient alone: the compiled
    gradient of the mean query output with respect to the features."""
    import jax
    import jax.numpy as jnp

    from sparse_shared_jax import bilevel

    k = config.model.num_features
    support = jnp.zeros((*episode.support_y.shape, k), jnp.float32)
    query = jnp.zeros((*episode.query_y.shape, k), jnp.float32)

    def query_output(support, query):
        heads = bilevel.fit_heads(support, episode.support_y, settings)
        return jnp.mean(query @ heads.W + heads.b[:, None, :])

    gradient = jax.jit(jax.grad(query_output, argnums=(0, 1)))
    return _temp_mb(gradient.lower(support, query).compile())


def measure_point_in_process(
    point: dict,
    methods: list[str],
    linear_solve: str | None,
    steps: int,
    repeats: int,
    max_seconds: float,
    inner_memory: bool,
) -> dict:
    """Compile time, scratch memory and median step time of every method.

    With `inner_memory`, also the scratch memory of the inner solve alone.

    The steps run round robin, one step of each method in turn, so that load
    from other processes on a shared machine falls on all methods alike and
    their ratio stays meaningful.
    """
    import jax
    import numpy as np

    config = _config(point, linear_solve)
    episode = _episode(config)
    # Pay one-time tracing and compilation costs before timing any compile.
    _, _, warm_state = _build("multitask", point["dtype"], config, episode.support_x[0])
    encode = jax.jit(lambda params, x: warm_state.apply_fn(params["encoder"], x))
    encode.lower(warm_state.params, episode.support_x[0]).compile()
    results, runs = {}, {}
    for method in methods:
        step_fn, settings, state = _build(
            method, point["dtype"], config, episode.support_x[0]
        )
        compiled, compile_s, compile_cpu_s = _compile(step_fn, settings, state, episode)
        runs[method] = [compiled, state, None]
        results[method] = {
            "compile_s": compile_s,
            "compile_cpu_s": compile_cpu_s,
            "xla_temp_mb": _temp_mb(compiled),
        }
        if inner_memory and method != "multitask":
            results[method]["inner_temp_mb"] = _inner_temp_mb(settings, episode, config)

    def step(method):
        compiled, state, _ = runs[method]
        start = time.perf_counter()
        state, metrics = compiled(state, episode)
        jax.block_until_ready(state)
        runs[method][1:] = [state, metrics]
        return time.perf_counter() - start

    warm_round_s = 0.0
    for _ in range(_WARMUP_STEPS):
        warm_round_s = sum(step(method) for method in methods)
    # Fewer steps for slow cases, at least 2 per repeat.
    steps = max(2, min(steps, int(max_seconds / (repeats * warm_round_s))))
    seconds = {method: [] for method in methods}
    for _ in range(repeats * steps):
        for method in methods:
            seconds[method].append(step(method))
    num_examples = point["num_tasks"] * (
        config.episode.support_size + config.episode.query_size
    )
    for method, times in seconds.items():
        step_s = float(np.median(times))
        metrics = runs[method][2]
        results[method].update(
            step_ms=1e3 * step_s,
            step_ms_repeat_medians=[
                1e3 * float(np.median(times[i : i + steps]))
                for i in range(0, len(times), steps)
            ],
            num_timed_steps=len(times),
            examples_per_s=num_examples / step_s,
            loss=float(metrics["loss"]),
        )
        if method != "multitask":
            results[method].update(
                inner_iterations=float(metrics["inner_iterations"]),
                inner_optimality_error=float(metrics["inner_optimality_error"]),
            )
    return results


def measure_peak_memory(point: dict, method: str, linear_solve: str | None) -> dict:
    """Peak memory of one method's step, alone in this process: host RSS
    (includes compilation) and, on an accelerator, peak device memory."""
    import jax

    config = _config(point, linear_solve)
    episode = _episode(config)
    step_fn, settings, state = _build(
        method, point["dtype"], config, episode.support_x[0]
    )
    compiled, _, _ = _compile(step_fn, settings, state, episode)
    for _ in range(_WARMUP_STEPS):
        state, _ = compiled(state, episode)
        jax.block_until_ready(state)
    result = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10}
    device = jax.devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and "peak_bytes_in_use" in stats:
        result["peak_device_mb"] = stats["peak_bytes_in_use"] / 2**20
    return result


# ----------------------------------------------------------------------------
# The driver: subprocesses, then the JSON and the table.


def _run_worker(request: dict, args) -> dict:
    """Runs a worker request in a fresh Python process; returns its result."""
    command = [
        sys.executable,
        os.path.abspath(__file__),
        "--worker",
        json.dumps(request),
    ]
    env = dict(os.environ)
    if args.platform != "auto":
        env["JAX_PLATFORMS"] = args.platform
    finished = subprocess.run(command, env=env, capture_output=True, text=True)
    for line in finished.stdout.splitlines():
        if line.startswith(_RESULT_PREFIX):
            return json.loads(line[len(_RESULT_PREFIX) :])
    raise RuntimeError(
        f"Worker {request} failed (exit {finished.returncode}):\n{finished.stderr}"
    )


def _worker(request: dict) -> dict:
    if request["mode"] == "memory":
        return measure_peak_memory(
            request["point"], request["method"], request["linear_solve"]
        )
    return measure_point_in_process(
        request["point"],
        request["methods"],
        request["linear_solve"],
        request["steps"],
        request["repeats"],
        request["max_seconds"],
        request["inner_memory"],
    )


def measure_point(axis: str, point: dict, args) -> list[dict]:
    """All methods at one configuration: one process for compile times,
    scratch memory and step times, then, on the axes in args.memory_axes,
    the inner solve's scratch memory and one process per method for its peak
    memory."""
    memory = axis in args.memory_axes or args.full_grid
    load_before = os.getloadavg()[0]
    timing = _run_worker(
        {
            "mode": "time",
            "point": point,
            "methods": args.methods,
            "linear_solve": args.linear_solve,
            "steps": args.steps,
            "repeats": args.repeats,
            "max_seconds": args.max_seconds,
            "inner_memory": memory,
        },
        args,
    )
    load = [load_before, os.getloadavg()[0]]
    results = []
    for method in args.methods:
        result = {"axis": axis, "method": method, **point, **timing[method]}
        if memory:
            request = {
                "mode": "memory",
                "point": point,
                "method": method,
                "linear_solve": args.linear_solve,
            }
            result.update(_run_worker(request, args))
        result["load_average_1min"] = load
        results.append(result)
    return results


def machine_description() -> dict:
    """CPU model, core count, accelerator and library versions."""
    import jax
    import jaxlib

    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            names = [
                line.split(":", 1)[1].strip() for line in f if "model name" in line
            ]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_cores": os.cpu_count(),
        "memory_gb": round(
            os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1
        ),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "backend": jax.default_backend(),
        "devices": [device.device_kind for device in jax.devices()],
    }


def markdown_table(results: list[dict]) -> str:
    """One row per result; 'x multitask' divides by the multi-task step time
    measured (interleaved) in the same process."""
    floor = {
        (r["axis"], r["num_tasks"], r["num_features"], r["maxiter"], r["dtype"]): r[
            "step_ms"
        ]
        for r in results
        if r["method"] == "multitask"
    }
    has_device = any("peak_device_mb" in r for r in results)
    memory_key = "peak_device_mb" if has_device else "peak_rss_mb"
    header = (
        "| axis | T | k | maxiter | encoder | method | compile s (CPU s) | step ms "
        "| x multitask | examples/s | XLA temp MB | inner temp MB "
        f"| {'peak device MB' if has_device else 'peak RSS MB'} "
        "| inner iters | inner opt. error |"
    )
    lines = [header, "|---" * (header.count("|") - 1) + "|"]
    for r in results:
        key = (r["axis"], r["num_tasks"], r["num_features"], r["maxiter"], r["dtype"])
        ratio = r["step_ms"] / floor.get(key, float("nan"))
        memory = f"{r[memory_key]:.0f}" if memory_key in r else "-"
        cpu = f"{r['compile_cpu_s']:.1f}" if "compile_cpu_s" in r else "-"
        bilevel = r["method"] != "multitask"
        inner_temp = f"{r['inner_temp_mb']:.2f}" if "inner_temp_mb" in r else "-"
        inner = (
            f"{inner_temp} | {memory} | {r['inner_iterations']:.0f} "
            f"| {r['inner_optimality_error']:.1e}"
            if bilevel
            else f"- | {memory} | - | -"
        )
        lines.append(
            f"| {r['axis']} | {r['num_tasks']} | {r['num_features']} | "
            f"{r['maxiter'] if bilevel else '-'} | {r['dtype']} | {r['method']} | "
            f"{r['compile_s']:.1f} ({cpu}) | {r['step_ms']:.0f} | {ratio:.2f} | "
            f"{r['examples_per_s']:.0f} | {r['xla_temp_mb']:.1f} | {inner} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platform", choices=("auto", "cpu", "gpu"), default="auto")
    parser.add_argument("--full_grid", action="store_true")
    parser.add_argument("--axes", nargs="+", choices=AXIS_NAMES, default=AXIS_NAMES)
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=METHODS)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--max_seconds",
        type=float,
        default=60.0,
        help="cap on a point's timed steps (fewer steps per repeat if slow)",
    )
    parser.add_argument(
        "--linear_solve",
        default=None,
        help="override config.inner.linear_solve (e.g. active_cg, gmres)",
    )
    parser.add_argument(
        "--memory_axes",
        nargs="*",
        choices=AXIS_NAMES,
        default=("centre", "maxiter"),
        help="axes that also measure the inner solve's scratch memory and give "
        "every method a process of its own for its peak memory (all with "
        "--full_grid)",
    )
    parser.add_argument(
        "--output", default=None, help="path without suffix (.json and .md added)"
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        default=None,
        metavar="JSON",
        help="measure nothing; combine the JSON outputs of earlier runs (e.g. "
        "different --axes run side by side) into one output",
    )
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        result = _worker(json.loads(args.worker))
        print(_RESULT_PREFIX + json.dumps(result), flush=True)
        return

    if args.merge:
        merge_runs(args.merge, args.output, args.linear_solve)
        return
    if args.platform != "auto":
        os.environ["JAX_PLATFORMS"] = args.platform
    machine = machine_description()
    args.methods = list(args.methods)
    command = "python " + " ".join([os.path.relpath(__file__), *sys.argv[1:]])
    output = args.output or os.path.join(
        os.path.dirname(__file__), "..", "results", f"benchmark_{machine['backend']}"
    )
    results = []
    for axis, point in sweep(tuple(args.axes), args.full_grid):
        for result in measure_point(axis, point, args):
            results.append(result)
            print(
                f"{axis} {point} {result['method']}: compile "
                f"{result['compile_s']:.1f} s, step {result['step_ms']:.0f} ms "
                f"(load {result['load_average_1min']})",
                flush=True,
            )
        write_outputs(output, command, machine, args.linear_solve, results)
    print(markdown_table(results))


def merge_runs(paths: list[str], output: str | None, linear_solve: str | None):
    """Combines runs' JSON files, rows ordered by axis as in a single sweep;
    a row of a later file replaces the same (axis, point, method) before."""
    runs = []
    for path in paths:
        with open(path) as f:
            runs.append(json.load(f))
    machine = runs[0]["machine"]
    rows = {}
    for r in (r for run in runs for r in run["results"]):
        key = (r["axis"], *(r[name] for name in AXES), r["method"])
        rows[key] = r
    order = {axis: i for i, axis in enumerate((*AXIS_NAMES, "grid"))}
    results = sorted(rows.values(), key=lambda r: order[r["axis"]])
    command = "; ".join(run["command"] for run in runs)
    output = output or os.path.join(
        os.path.dirname(__file__), "..", "results", f"benchmark_{machine['backend']}"
    )
    write_outputs(output, command, machine, linear_solve, results)
    print(markdown_table(results))


def write_outputs(output, command, machine, linear_solve, results) -> None:
    """Writes output.json and output.md (rewritten after every point)."""
    with open(output + ".json", "w") as f:
        json.dump(
            {"command": command, "machine": machine, "results": results}, f, indent=2
        )
    with open(output + ".md", "w") as f:
        f.write(
            f"Command: `{command}`\n\nMachine: {machine['cpu']}, "
            f"{machine['cpu_cores']} cores, {machine['memory_gb']} GB; devices "
            f"{machine['devices']}; jax {machine['jax']}, Python "
            f"{machine['python']}. Inner linear solve: "
            f"{linear_solve or 'the config default'}. 'x multitask' compares "
            "with the multi-task step run interleaved in the same process; "
            "absolute times of different rows were taken at different machine "
            "load (load_average_1min in the JSON).\n\n"
            f"{markdown_table(results)}\n"
        )


if __name__ == "__main__":
    main()
