"""Flax encoders f_theta(x) -> R^k shared by all tasks."""

import flax.linen as nn

from sparse_shared_jax.models.conv import ConvEncoder
from sparse_shared_jax.models.mlp import MLPEncoder

ENCODERS = {"mlp": MLPEncoder, "conv": ConvEncoder}


def get_encoder(name: str, num_features: int, **options) -> nn.Module:
    """Builds the encoder `name` ('mlp' or 'conv') with k = `num_features`.

    Raises:
      ValueError: naming the known encoders if `name` is unknown.
    """
    if name not in ENCODERS:
        raise ValueError(f"model.name must be one of {tuple(ENCODERS)}, got {name!r}.")
    if num_features < 1:
        raise ValueError(f"model.num_features must be >= 1; got {num_features}.")
    return ENCODERS[name](num_features=num_features, **options)


__all__ = ["ENCODERS", "ConvEncoder", "MLPEncoder", "get_encoder"]
