"""MLP encoder for vector observations."""

from collections.abc import Sequence

import flax.linen as nn
import jax
from jax.typing import DTypeLike


class MLPEncoder(nn.Module):
    """Maps observations [..., d] to k features [..., k] through a ReLU MLP.

    Attributes:
      num_features: k, the size of the representation.
      hidden_sizes: widths of the hidden layers.
      dtype: the computation dtype, e.g. jnp.bfloat16 (inputs and parameters
        are cast to it, and the features come out in it); None computes in
        the inputs' and parameters' dtype. Parameters are float32 either way.
    """

    num_features: int
    hidden_sizes: Sequence[int] = (256, 256)
    dtype: DTypeLike | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width in self.hidden_sizes:
            x = nn.relu(nn.Dense(width, dtype=self.dtype)(x))
        return nn.Dense(self.num_features, dtype=self.dtype)(x)
