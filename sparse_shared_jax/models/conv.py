"""The convolutional encoder for 64x64 images of the disentanglement literature."""

from collections.abc import Sequence

import flax.linen as nn
import jax
from jax.typing import DTypeLike


class ConvEncoder(nn.Module):
    """Images [..., 64, 64, c] -> features [..., k].

    Four 4x4 stride-2 convolutions (32, 32, 64, 64 channels, ReLU), a dense
    layer of 256 units (ReLU) and a linear layer of k units, as in the
    encoders of Locatello et al. (2019) and disentanglement_lib.

    Attributes:
      num_features: k, the size of the representation.
      channels: output channels of the four convolutions.
      hidden_size: width of the dense layer.
      dtype: the computation dtype, e.g. jnp.bfloat16 (inputs and parameters
        are cast to it, and the features come out in it); None computes in
        the inputs' and parameters' dtype. Parameters are float32 either way.
    """

    num_features: int
    channels: Sequence[int] = (32, 32, 64, 64)
    hidden_size: int = 256
    dtype: DTypeLike | None = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        batch_shape = x.shape[:-3]
        x = x.reshape((-1, *x.shape[-3:]))  # [batch, height, width, channels]
        for num_channels in self.channels:
            x = nn.Conv(
                num_channels, kernel_size=(4, 4), strides=(2, 2), dtype=self.dtype
            )(x)
            x = nn.relu(x)
        x = x.reshape((x.shape[0], -1))
        x = nn.relu(nn.Dense(self.hidden_size, dtype=self.dtype)(x))
        x = nn.Dense(self.num_features, dtype=self.dtype)(x)
        return x.reshape((*batch_shape, self.num_features))
