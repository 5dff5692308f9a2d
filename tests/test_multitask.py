"""Tests of the plain multi-task baseline step."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sparse_shared_jax import bilevel, data, models, multitask


def fixed_episode(label_type="binary", num_tasks=4, **options):
    dataset = data.ground_truth("nonlinear_mixing", observation_dim=8, seed=0)
    sampler = data.EpisodeSampler(
        dataset,
        num_tasks=num_tasks,
        support_size=24,
        query_size=16,
        label_type=label_type,
        seed=0,
        **options,
    )
    return bilevel.EpisodeBatch.from_episode(sampler(0))


@pytest.mark.parametrize(
    ("label_type", "settings"),
    [
        ("binary", multitask.MultitaskSettings()),
        (
            "multiclass",
            multitask.MultitaskSettings(loss="softmax", num_classes=3),
        ),
    ],
)
def test_state_holds_one_head_per_task(label_type, settings):
    options = {"num_classes": 3} if label_type == "multiclass" else {}
    episode = fixed_episode(label_type, **options)
    encoder = models.get_encoder("mlp", num_features=5, hidden_sizes=(16,))
    state = multitask.create_train_state(
        encoder, jax.random.key(0), episode.support_x[0], 4, settings, optax.sgd(0.1)
    )
    C = settings.num_outputs
    assert state.params["heads"]["W"].shape == (4, 5, C)
    assert state.params["heads"]["b"].shape == (4, C)
    loss, aux = multitask.multitask_loss(
        state.params, state.apply_fn, episode, settings
    )
    # Zero heads predict uniformly: the loss is log(C) (log 2 for logistic).
    np.testing.assert_allclose(loss, np.log(max(C, 2)), rtol=1e-6)
    assert 0.0 <= float(aux["accuracy"]) <= 1.0


def test_train_step_compiles_once_and_fits_a_fixed_episode():
    episode = fixed_episode()
    settings = multitask.MultitaskSettings()
    encoder = models.get_encoder("mlp", num_features=5, hidden_sizes=(32,))
    state = multitask.create_train_state(
        encoder, jax.random.key(0), episode.support_x[0], 4, settings, optax.adam(1e-2)
    )
    step = jax.jit(
        chex.assert_max_traces(multitask.train_step, n=1),
        static_argnums=2,
        donate_argnums=0,
    )
    losses = []
    for _ in range(60):
        state, metrics = step(state, episode, settings)
        losses.append(float(metrics["loss"]))
    assert set(metrics) == {"loss", "accuracy", "grad_norm"}
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0], losses
    assert float(metrics["accuracy"]) > 0.8
    # The encoder was trained too, not only the heads.
    fresh = encoder.init(jax.random.key(0), episode.support_x[0])
    moved = jax.tree.map(
        lambda a, b: float(jnp.max(jnp.abs(a - b))), state.params["encoder"], fresh
    )
    assert min(jax.tree.leaves(moved)) > 0


def test_mismatched_task_count_and_bad_settings_raise():
    episode = fixed_episode(num_tasks=4)
    settings = multitask.MultitaskSettings()
    encoder = models.get_encoder("mlp", num_features=5, hidden_sizes=(16,))
    state = multitask.create_train_state(
        encoder, jax.random.key(0), episode.support_x[0], 3, settings, optax.sgd(0.1)
    )
    with pytest.raises(ValueError, match="3 heads but the episode has 4 tasks"):
        multitask.multitask_loss(state.params, state.apply_fn, episode, settings)
    with pytest.raises(ValueError, match="needs num_classes >= 2"):
        multitask.MultitaskSettings(loss="softmax")
    with pytest.raises(ValueError, match="normalization must be one of"):
        multitask.MultitaskSettings(normalization="batch")
