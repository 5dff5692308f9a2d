"""Shape and gradient tests of the encoders."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sparse_shared_jax import models


@pytest.mark.parametrize(
    ("name", "observation_shape"), [("mlp", (20,)), ("conv", (64, 64, 3))]
)
@pytest.mark.slow
def test_encoder_maps_batch_to_features_and_has_gradients(name, observation_shape):
    encoder = models.get_encoder(name, num_features=7)
    x = jax.random.normal(jax.random.key(0), (5, *observation_shape))
    params = encoder.init(jax.random.key(1), x)
    features = encoder.apply(params, x)
    assert features.shape == (5, 7)
    gradient = jax.grad(lambda p: jnp.sum(encoder.apply(p, x) ** 2))(params)
    norms = [float(jnp.linalg.norm(g)) for g in jax.tree.leaves(gradient)]
    assert all(np.isfinite(norms)) and sum(norms) > 0


def test_conv_encoder_architecture():
    encoder = models.get_encoder("conv", num_features=10)
    x = jnp.zeros((2, 64, 64, 1))
    params = encoder.init(jax.random.key(0), x)["params"]
    kernels = [params[f"Conv_{i}"]["kernel"].shape for i in range(4)]
    assert kernels == [(4, 4, 1, 32), (4, 4, 32, 32), (4, 4, 32, 64), (4, 4, 64, 64)]
    assert params["Dense_0"]["kernel"].shape == (4 * 4 * 64, 256)
    assert params["Dense_1"]["kernel"].shape == (256, 10)


def test_conv_encoder_keeps_leading_batch_axes():
    encoder = models.get_encoder("conv", num_features=3, channels=(4, 4, 4, 4))
    x = jnp.zeros((2, 3, 64, 64, 1))
    params = encoder.init(jax.random.key(0), x)
    assert encoder.apply(params, x).shape == (2, 3, 3)


def test_unknown_encoder_is_rejected():
    with pytest.raises(ValueError, match="model.name must be one of"):
        models.get_encoder("transformer", num_features=3)
