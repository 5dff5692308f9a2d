"""The encoders' computation dtype: bfloat16 compute, float32 parameters."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparse_shared_jax import models

ENCODERS = [("mlp", (20,), {}), ("conv", (64, 64, 3), {"channels": (8, 8, 8, 8)})]


@pytest.mark.parametrize(("name", "observation_shape", "options"), ENCODERS)
@pytest.mark.slow
def test_bfloat16_encoder_keeps_float32_parameters_and_close_features(
    name, observation_shape, options
):
    x = jax.random.normal(jax.random.key(0), (4, *observation_shape))
    full = models.get_encoder(name, num_features=5, **options)
    half = models.get_encoder(name, num_features=5, dtype=jnp.bfloat16, **options)
    params = full.init(jax.random.key(1), x)
    # Same parameter tree either way, all float32.
    assert jax.tree.structure(half.init(jax.random.key(1), x)) == jax.tree.structure(
        params
    )
    assert {
        leaf.dtype for leaf in jax.tree.leaves(half.init(jax.random.key(1), x))
    } == {jnp.dtype(jnp.float32)}

    reference = full.apply(params, x)
    features = half.apply(params, x)
    assert reference.dtype == jnp.float32
    assert features.dtype == jnp.bfloat16
    # bfloat16 keeps 8 significant bits (0.4% per rounding); measured 0.5%.
    error = np.linalg.norm(np.asarray(features, np.float32) - reference)
    assert error <= 0.02 * np.linalg.norm(reference)


@pytest.mark.parametrize(("name", "observation_shape", "options"), ENCODERS)
def test_bfloat16_encoder_gradients_are_float32_and_match(
    name, observation_shape, options
):
    x = jax.random.normal(jax.random.key(0), (4, *observation_shape))
    full = models.get_encoder(name, num_features=5, **options)
    half = models.get_encoder(name, num_features=5, dtype=jnp.bfloat16, **options)
    params = full.init(jax.random.key(1), x)

    def loss(encoder):
        return lambda p: jnp.sum(encoder.apply(p, x).astype(jnp.float32) ** 2)

    reference = jax.grad(loss(full))(params)
    gradient = jax.grad(loss(half))(params)
    assert {g.dtype for g in jax.tree.leaves(gradient)} == {jnp.dtype(jnp.float32)}
    flat_gradient = np.concatenate([np.ravel(g) for g in jax.tree.leaves(gradient)])
    flat_reference = np.concatenate([np.ravel(r) for r in jax.tree.leaves(reference)])
    # The backward pass rounds every layer's cotangents too; measured 3-6%.
    error = np.linalg.norm(flat_gradient - flat_reference)
    assert error <= 0.15 * np.linalg.norm(flat_reference)
