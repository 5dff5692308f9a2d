"""The trainer registry: a new kind of experiment is one module and one config.

The toy trainer below stands for a user's module: it fits a linear
regression by SGD through the same loop as the built-in trainers, and so
gets checkpoints, resuming, logging and metrics.json for free.
"""

import json
import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax.training import train_state

from sparse_shared_jax import configs, loop, parallel, train, trainers

_TRUE_WEIGHTS = np.array([1.0, -2.0, 0.5], np.float32)


def _validate(config):
    if config.num_train_steps < 1:
        raise ValueError("config.num_train_steps must be >= 1.")


def _prepare(config, workdir):
    """Batches of 8 examples (one 'task'), deterministic in the step."""

    def batch_at(step, sharding):
        rng = np.random.default_rng([config.seed, step])
        x = rng.normal(size=(1, 8, 3)).astype(np.float32)
        y = x @ _TRUE_WEIGHTS
        return tuple(
            parallel.global_array(lambda block, a=a: a[block], a.shape, sharding)
            for a in (x, y)
        )

    def train_step(state, batch):
        x, y = batch

        def loss_fn(params):
            return jnp.mean(jnp.square(x[0] @ params["w"] - y[0]))

        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        return state.apply_gradients(grads=grads), {"loss": loss}

    return loop.Job(
        batch_sizes=(1, 8, 0),
        init_state=lambda: train_state.TrainState.create(
            apply_fn=None, params={"w": jnp.zeros(3)}, tx=optax.sgd(0.1)
        ),
        train_step=train_step,
        batch_at=batch_at,
        finish=lambda state, layout, writer: {
            "step": int(state.step),
            "weights": np.asarray(state.params["w"]).tolist(),
        },
        summary=lambda final: f"toy trainer: step {final['step']}",
    )


toy_trainer = types.SimpleNamespace(validate=_validate, prepare=_prepare)


def toy_config(num_train_steps):
    config = configs.base_config()
    config.trainer = "test_toy_regression"
    config.num_train_steps = num_train_steps
    config.log_every_steps = 10
    config.checkpoint.every_steps = 20
    return config


def test_a_registered_trainer_runs_through_the_loop_and_resumes(tmp_path):
    trainers.register("test_toy_regression", toy_trainer)
    assert "test_toy_regression" in trainers.names()
    final = train.train_and_evaluate(toy_config(60), str(tmp_path / "straight"))
    np.testing.assert_allclose(final["weights"], _TRUE_WEIGHTS, atol=1e-3)
    with open(tmp_path / "straight" / "metrics.json") as f:
        assert json.load(f) == final
    # Stopped at 20 and resumed: the same weights as the straight run.
    train.train_and_evaluate(toy_config(20), str(tmp_path / "resumed"))
    resumed = train.train_and_evaluate(toy_config(60), str(tmp_path / "resumed"))
    assert resumed == final


def test_an_unknown_trainer_is_named():
    config = toy_config(1)
    config.trainer = "nonexistent"
    with pytest.raises(ValueError, match=r"config.trainer must be one of .*'erm'"):
        train.train_and_evaluate(config, "/tmp/unused")


def test_the_built_in_trainers_are_registered():
    assert set(trainers.names()) >= {"ground_truth", "benchmark", "erm"}
