"""Flax encoders f_theta(x) -> R^k shared by all tasks."""

from collections.abc import Callable

import flax.linen as nn

from sparse_shared_jax.models.conv import ConvEncoder
from sparse_shared_jax.models.mlp import MLPEncoder
from sparse_shared_jax.models.pretrained import FORMATS as PRETRAINED_FORMATS
from sparse_shared_jax.models.pretrained import load_pretrained
from sparse_shared_jax.models.resnet import (
    FrozenBatchNorm,
    ResNet,
    resnet18,
    resnet50,
    trainable_mask,
)
from sparse_shared_jax.models.transformer import TextTransformer

# name -> constructor(num_features=k, **options).
ENCODERS: dict[str, Callable[..., nn.Module]] = {
    "mlp": MLPEncoder,
    "conv": ConvEncoder,
    "resnet18": resnet18,
    "resnet50": resnet50,
    "bert": TextTransformer,
}


def get_encoder(name: str, num_features: int, **options) -> nn.Module:
    """Builds the encoder `name` (a key of ENCODERS) with k = `num_features`.

    Options are the encoder's attributes, e.g. hidden_sizes for 'mlp',
    width/norm for 'resnet18' and 'resnet50' (see models.ResNet), or
    num_layers/hidden_size/pooling for 'bert' (see models.TextTransformer).

    Raises:
      ValueError: naming the known encoders if `name` is unknown.
    """
    if name not in ENCODERS:
        raise ValueError(f"model.name must be one of {tuple(ENCODERS)}, got {name!r}.")
    if num_features < 1:
        raise ValueError(f"model.num_features must be >= 1; got {num_features}.")
    return ENCODERS[name](num_features=num_features, **options)


__all__ = [
    "ENCODERS",
    "ConvEncoder",
    "FrozenBatchNorm",
    "MLPEncoder",
    "PRETRAINED_FORMATS",
    "ResNet",
    "TextTransformer",
    "get_encoder",
    "load_pretrained",
    "resnet18",
    "resnet50",
    "trainable_mask",
]
