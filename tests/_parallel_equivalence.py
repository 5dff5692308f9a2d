"""Runs a few training steps on 1 and on all devices; prints a JSON report.

Run by tests/test_parallel.py in a subprocess with
XLA_FLAGS=--xla_force_host_platform_device_count=8 (the device count is fixed
when JAX starts, so it cannot be changed inside the test process).

Usage: python tests/_parallel_equivalence.py STEPS T,N_S,N_Q,MODE [...]

Plain SGD, not the experiments' Adam: Adam's first steps move every
parameter by about +-learning_rate whatever the gradient's size, so a
gradient that is ~0 up to float32 rounding flips sign between reduction
orders and the comparison would test Adam, not the parallel computation.
"""

import json
import sys

import jax
import numpy as np
import optax

from sparse_shared_jax import bilevel, configs, data, loop, parallel
from sparse_shared_jax.trainers import ground_truth


def run(devices, config, num_steps):
    """Final params and per-step losses after `num_steps` steps on `devices`."""
    job = ground_truth.prepare(config, workdir="")
    dataset = data.ground_truth(config.data.name, **config.data.options.to_dict())
    layout = parallel.TrainingLayout.create(
        *job.batch_sizes, config.parallel.param_sharding, devices=devices
    )

    def init_state():  # the run's state with plain SGD (see the module doc)
        return bilevel.create_train_state(
            loop.make_encoder(config),
            jax.random.key(config.seed),
            ground_truth.example_input(dataset),
            optax.sgd(0.1),
        )

    state, shardings = parallel.create_sharded(
        init_state, layout.mesh, layout.param_sharding
    )
    step_fn = loop.jit_train_step(job.train_step, layout, shardings)
    losses = []
    for step in range(num_steps):
        episode = job.batch_at(step, layout.episode)
        if step == 0:
            state, metrics = step_fn(state, episode)
        else:
            # After compilation, the step must not move arrays to or from the
            # host: the guard raises on any implicit transfer.
            with jax.transfer_guard("disallow"):
                state, metrics = step_fn(state, episode)
        losses.append(float(metrics["loss"]))
    param_shardings = {
        str(leaf.sharding.spec) for leaf in jax.tree.leaves(state.params)
    }
    return {
        "params": [np.asarray(leaf) for leaf in jax.tree.leaves(state.params)],
        "losses": losses,
        "compilations": step_fn._cache_size(),
        "mesh": dict(layout.mesh.shape),
        "param_specs": sorted(param_shardings),
    }


def compare(config, num_steps):
    """Runs on one device and on all devices; their differences."""
    one = run(jax.devices()[:1], config, num_steps)
    every = run(jax.devices(), config, num_steps)
    return {
        "max_param_difference": max(
            float(np.max(np.abs(a - b)))
            for a, b in zip(one["params"], every["params"], strict=True)
        ),
        "max_param": max(float(np.max(np.abs(a))) for a in one["params"]),
        "losses_one": one["losses"],
        "losses_all": every["losses"],
        "compilations": [one["compilations"], every["compilations"]],
        "mesh": every["mesh"],
        "param_specs": every["param_specs"],
    }


def main():
    num_steps = int(sys.argv[1])
    reports = {}
    for case in sys.argv[2:]:
        num_tasks, support, query, mode = case.split(",")
        config = configs.base_config()
        config.episode.num_tasks = int(num_tasks)
        config.episode.support_size = int(support)
        config.episode.query_size = int(query)
        config.parallel.param_sharding = mode
        config.inner.maxiter = 100
        reports[case] = compare(config, num_steps)
    print("REPORT " + json.dumps({"device_count": jax.device_count(), **reports}))


if __name__ == "__main__":
    main()
