"""Cost of the inner solver on real episodes: iterations, accuracy, time.

For each experiment (default: the vector experiment and the default image
experiment), draws episodes 0, 40, 80, ... of a run (the encoder freshly
initialised, or restored from a run's checkpoint with --workdir), encodes
their support sets once, and solves the sparse heads with two solvers of
`inner.solve_heads`, same settings otherwise (the experiment's config.inner):

* ``restart``: linear_solve='active_cg', the default: FISTA with adaptive
  restart (`inner._fista_with_restart`), gradients on the active set;
* ``jaxopt``: linear_solve='gmres': jaxopt's plain FISTA (the forward solve
  of the 'active_cg' path before adaptive restart), gradients through the
  fixed point.

It reports per-task iterations (mean; the per-episode maximum, which the
vectorised solve pays for, averaged over episodes), the fraction of tasks
stopped at maxiter, the optimality error (median, max), and the median time
of the jitted solve alone and of the solve with its gradient (of the mean
query output with respect to the support and query features). Then, with
--step_ratio, the whole jitted training step of each experiment (a freshly
initialised encoder) against the multi-task step (`multitask.train_step`, no
inner problem) on the first episode, interleaved round robin so that other
load falls on both alike; the median over --step_repeats rounds.

    python benchmarks/inner_solver.py
    python benchmarks/inner_solver.py --experiments experiments/shapes3d.py \\
        --workdir workdirs/main
    python benchmarks/inner_solver.py --experiments \\
        experiments/nonlinear_mixing.py --step_ratio --step_repeats 300

Prints a Markdown table (and writes it with --output).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from sparse_shared_jax import bilevel, configs, loop, multitask, trainers
from sparse_shared_jax.config_validation import bilevel_settings

SOLVERS = {"restart": "active_cg", "jaxopt": "gmres"}
EPISODE_STRIDE = 40


def episodes_and_state(config, workdir: str | None, num_episodes: int):
    """Device episodes 0, 40, ... of the run and the encoder's state."""
    trainer = trainers.get(config.trainer)
    if workdir:
        state, job = loop.restore(config, workdir, trainer)
    else:
        job = trainer.prepare(config, "/tmp/inner_solver_benchmark")
        state = job.init_state()
    layout = loop.layout_of(config, job)
    episodes = [
        job.batch_at(EPISODE_STRIDE * i, layout.episode) for i in range(num_episodes)
    ]
    return episodes, state


def median_seconds(fn, *args, repeats: int) -> float:
    jax.block_until_ready(fn(*args))  # compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def solver_rows(name, config, episodes, state, repeats: int) -> list[dict]:
    """One row per solver: iteration and accuracy statistics, and times."""
    base = bilevel_settings(config)
    features = []
    for episode in episodes:
        support, query = jax.jit(
            functools.partial(
                bilevel.episode_features,
                apply_fn=state.apply_fn,
                normalization=base.normalization,
            )
        )(state.params, episode=episode)
        features.append((support, query, episode.support_y))
    rows = []
    for solver, linear_solve in SOLVERS.items():
        settings = dataclasses.replace(
            base, solver=dataclasses.replace(base.solver, linear_solve=linear_solve)
        )
        fit = jax.jit(functools.partial(bilevel.fit_heads, settings=settings))

        def query_output(support, query, support_y, settings=settings):
            heads = bilevel.fit_heads(support, support_y, settings)
            return jnp.mean(query @ heads.W + heads.b[:, None, :])

        gradient = jax.jit(jax.grad(query_output, argnums=(0, 1)))
        iterations, errors, solve_s, gradient_s = [], [], [], []
        for support, query, support_y in features:
            heads = fit(support, support_y)
            iterations.append(np.asarray(heads.num_iterations))
            errors.append(np.asarray(heads.optimality_error))
            solve_s.append(median_seconds(fit, support, support_y, repeats=repeats))
            gradient_s.append(
                median_seconds(gradient, support, query, support_y, repeats=repeats)
            )
        iterations, errors = np.stack(iterations), np.stack(errors)  # [E, T]
        rows.append(
            {
                "experiment": name,
                "solver": solver,
                "iterations_mean": float(iterations.mean()),
                "iterations_episode_max": float(iterations.max(axis=1).mean()),
                "at_maxiter": float(np.mean(iterations >= base.solver.maxiter)),
                "error_median": float(np.median(errors)),
                "error_max": float(errors.max()),
                "solve_ms": 1e3 * float(np.median(solve_s)),
                "gradient_ms": 1e3 * float(np.median(gradient_s)),
            }
        )
    return rows


def step_ratio(config, episode, repeats: int) -> dict:
    """Median jitted training-step times of the bilevel and multi-task steps,
    interleaved, on one episode with the config's encoder."""
    encoder = loop.make_encoder(config)
    optimizer = loop.make_optimizer(config.outer)
    rng = jax.random.key(config.seed)
    example = episode.support_x[0]
    settings = bilevel_settings(config)
    multitask_settings = multitask.MultitaskSettings(
        loss=settings.loss,
        num_classes=settings.num_classes,
        normalization=settings.normalization,
    )
    steps = {
        "bilevel": (
            jax.jit(bilevel.train_step, static_argnums=2, donate_argnums=0),
            bilevel.create_train_state(encoder, rng, example, optimizer),
            settings,
        ),
        "multitask": (
            jax.jit(multitask.train_step, static_argnums=2, donate_argnums=0),
            multitask.create_train_state(
                encoder,
                rng,
                example,
                config.episode.num_tasks,
                multitask_settings,
                optimizer,
            ),
            multitask_settings,
        ),
    }
    states = {name: state for name, (_, state, _) in steps.items()}
    times = {name: [] for name in steps}
    for round_index in range(2 + repeats):  # two warm-up rounds
        for name, (step, _, step_settings) in steps.items():
            start = time.perf_counter()
            states[name], _ = step(states[name], episode, step_settings)
            jax.block_until_ready(states[name])
            if round_index >= 2:
                times[name].append(time.perf_counter() - start)
    bilevel_ms = 1e3 * float(np.median(times["bilevel"]))
    multitask_ms = 1e3 * float(np.median(times["multitask"]))
    return {
        "bilevel_ms": bilevel_ms,
        "multitask_ms": multitask_ms,
        "ratio": bilevel_ms / multitask_ms,
    }


def markdown(rows: list[dict], ratios: dict[str, dict]) -> str:
    lines = [
        "| experiment | solver | iterations/task | max/episode | at maxiter "
        "| opt. error median | opt. error max | solve ms | solve + gradient ms |",
        "|---" * 9 + "|",
    ]
    for r in rows:
        lines.append(
            f"| {r['experiment']} | {r['solver']} | {r['iterations_mean']:.1f} | "
            f"{r['iterations_episode_max']:.1f} | {r['at_maxiter']:.2f} | "
            f"{r['error_median']:.1e} | {r['error_max']:.1e} | {r['solve_ms']:.2f} "
            f"| {r['gradient_ms']:.2f} |"
        )
    if ratios:
        lines += [
            "",
            "| experiment | bilevel step ms | multi-task step ms | ratio |",
            "|---|---|---|---|",
        ]
        for name, r in ratios.items():
            lines.append(
                f"| {name} | {r['bilevel_ms']:.1f} | {r['multitask_ms']:.1f} | "
                f"{r['ratio']:.2f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--experiments",
        nargs="+",
        default=["experiments/nonlinear_mixing.py", "experiments/shapes3d.py"],
    )
    parser.add_argument(
        "--workdir",
        nargs="*",
        default=[],
        help="a run's workdir per experiment (same order) whose latest "
        "checkpoint encodes the episodes; default: a fresh encoder",
    )
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--step_ratio", action="store_true")
    parser.add_argument("--step_repeats", type=int, default=20)
    parser.add_argument("--output", default=None, help="Markdown file to write")
    args = parser.parse_args()

    rows, ratios = [], {}
    for index, path in enumerate(args.experiments):
        config = configs.load_experiment(path)()
        workdir = args.workdir[index] if index < len(args.workdir) else None
        name = os.path.basename(path) + (" (trained)" if workdir else "")
        episodes, state = episodes_and_state(config, workdir, args.episodes)
        rows += solver_rows(name, config, episodes, state, args.repeats)
        print(markdown(rows, ratios), flush=True)
        if args.step_ratio:  # a fresh encoder either way: the step's cost
            ratios[os.path.basename(path)] = step_ratio(
                config, episodes[0], args.step_repeats
            )
    table = markdown(rows, ratios)
    print(table)
    if args.output:
        with open(args.output, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    main()
