"""MLP encoder for vector observations."""

from collections.abc import Sequence

import flax.linen as nn
import jax


class MLPEncoder(nn.Module):
    """Maps observations [..., d] to k features [..., k] through a ReLU MLP.

    Attributes:
      num_features: k, the size of the representation.
      hidden_sizes: widths of the hidden layers.
    """

    num_features: int
    hidden_sizes: Sequence[int] = (256, 256)

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        for width in self.hidden_sizes:
            x = nn.relu(nn.Dense(width)(x))
        return nn.Dense(self.num_features)(x)
