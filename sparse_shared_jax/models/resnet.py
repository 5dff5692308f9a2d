"""ResNet-18 and ResNet-50 image encoders with a projection to k features.

The layout follows torchvision's ResNets (v1.5: the stride of a bottleneck
block sits on its 3x3 convolution) with explicit torch-style padding, so that
torchvision weights converted by `models.pretrained` give the same numbers.

Normalisation. The training code differentiates and updates *every* variable
that `encoder.init` returns, and it calls `apply(variables, x)` without
mutable collections. BatchNorm's running statistics therefore could never be
updated, so there are two choices:

* norm='group' (default, for training from scratch): GroupNorm, which has no
  running statistics and behaves the same in training and evaluation.
* norm='frozen_batch' (for pretrained torchvision weights): batch norm frozen
  at the checkpoint's values, y = (x - mean) / sqrt(var + eps) * scale + bias,
  with mean, var, scale and bias stored in the 'frozen' collection and read
  under `jax.lax.stop_gradient`. Their gradients are exactly zero, so SGD and
  Adam leave them unchanged; decoupled weight decay (AdamW) would still shrink
  them, so mask it with `trainable_mask`, e.g.
  `optax.adamw(lr, weight_decay=wd, mask=models.trainable_mask)`.
"""

from collections.abc import Callable, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

NORMS = ("group", "frozen_batch")
BLOCKS = ("basic", "bottleneck")
FROZEN = "frozen"  # the collection holding the frozen batch-norm statistics

# The RGB statistics torchvision's ImageNet weights were trained with.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

_BOTTLENECK_EXPANSION = 4
_BATCH_NORM_EPS = 1e-5  # torch.nn.BatchNorm2d's default


class FrozenBatchNorm(nn.Module):
    """Batch norm with fixed statistics and affine: no gradient, no updates.

    y = (x - mean) / sqrt(var + epsilon) * scale + bias over the last axis.
    Initialised to the identity (mean 0, var 1, scale 1, bias 0); load real
    values with `models.pretrained`.

    Attributes:
      epsilon: added to the variance.
      dtype: computation dtype (None: promote the input with float32).
    """

    epsilon: float = _BATCH_NORM_EPS
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        channels = x.shape[-1]

        def frozen(name: str, value: float) -> jax.Array:
            variable = self.variable(
                FROZEN, name, lambda: jnp.full((channels,), value, jnp.float32)
            )
            return jax.lax.stop_gradient(variable.value)

        mean, var = frozen("mean", 0.0), frozen("var", 1.0)
        scale, bias = frozen("scale", 1.0), frozen("bias", 0.0)
        multiplier = scale * jax.lax.rsqrt(var + self.epsilon)  # [c]
        shift = bias - mean * multiplier  # [c]
        dtype = self.dtype or jnp.promote_types(x.dtype, jnp.float32)
        return x.astype(dtype) * multiplier.astype(dtype) + shift.astype(dtype)


def trainable_mask(variables: Any) -> Any:
    """Pytree of bools like `variables`: False on the frozen statistics.

    Use it as optax's weight-decay mask so frozen batch norms stay fixed.
    """
    return {
        collection: jax.tree.map(lambda _, c=collection: c != FROZEN, tree)
        for collection, tree in variables.items()
    }


def _conv(features: int, kernel: int, stride: int, name: str, dtype: Any) -> nn.Conv:
    """A bias-free convolution padded like torch (kernel // 2 on each side)."""
    pad = kernel // 2
    return nn.Conv(
        features,
        (kernel, kernel),
        strides=(stride, stride),
        padding=((pad, pad), (pad, pad)),
        use_bias=False,
        kernel_init=nn.initializers.variance_scaling(2.0, "fan_out", "normal"),
        dtype=dtype,
        name=name,
    )


def _norm_factory(
    norm: str, max_groups: int, dtype: Any
) -> Callable[[int, str], nn.Module]:
    """Returns make(channels, name) -> the normalisation layer `norm`."""

    def make(channels: int, name: str) -> nn.Module:
        if norm == "frozen_batch":
            return FrozenBatchNorm(dtype=dtype, name=name)
        groups = min(max_groups, channels)
        if channels % groups:
            raise ValueError(
                f"GroupNorm needs the channel count {channels} to be divisible by "
                f"min(norm_groups, channels) = {groups}; change width or "
                "norm_groups."
            )
        return nn.GroupNorm(num_groups=groups, dtype=dtype, name=name)

    return make


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a residual connection (ResNet-18/34)."""

    channels: int
    stride: int
    make_norm: Callable[[int, str], nn.Module]
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        y = _conv(self.channels, 3, self.stride, "conv1", self.dtype)(x)
        y = nn.relu(self.make_norm(self.channels, "norm1")(y))
        y = _conv(self.channels, 3, 1, "conv2", self.dtype)(y)
        y = self.make_norm(self.channels, "norm2")(y)
        shortcut = _shortcut(x, self.channels, self.stride, self.make_norm, self.dtype)
        return nn.relu(y + shortcut)


class BottleneckBlock(nn.Module):
    """1x1 reduce, 3x3 (strided), 1x1 expand by 4, residual (ResNet-50)."""

    channels: int
    stride: int
    make_norm: Callable[[int, str], nn.Module]
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        out_channels = self.channels * _BOTTLENECK_EXPANSION
        y = _conv(self.channels, 1, 1, "conv1", self.dtype)(x)
        y = nn.relu(self.make_norm(self.channels, "norm1")(y))
        y = _conv(self.channels, 3, self.stride, "conv2", self.dtype)(y)
        y = nn.relu(self.make_norm(self.channels, "norm2")(y))
        y = _conv(out_channels, 1, 1, "conv3", self.dtype)(y)
        y = self.make_norm(out_channels, "norm3")(y)
        shortcut = _shortcut(x, out_channels, self.stride, self.make_norm, self.dtype)
        return nn.relu(y + shortcut)


def _shortcut(
    x: jax.Array,
    out_channels: int,
    stride: int,
    make_norm: Callable[[int, str], nn.Module],
    dtype: Any,
) -> jax.Array:
    """Identity, or a strided 1x1 convolution + norm when the shape changes.

    Called inside a block's compact __call__, so its layers become the
    block's children 'shortcut_conv' and 'shortcut_norm'.
    """
    if stride == 1 and x.shape[-1] == out_channels:
        return x
    x = _conv(out_channels, 1, stride, "shortcut_conv", dtype)(x)
    return make_norm(out_channels, "shortcut_norm")(x)


class ResNet(nn.Module):
    """Images [..., H, W, c] -> features [..., k].

    A 7x7 stride-2 stem convolution, norm, ReLU and 3x3 stride-2 max pool;
    four stages of residual blocks with `width * 2**s` channels (times 4 for
    bottleneck outputs), the first block of stages 2-4 halving the resolution;
    global average pooling; and a linear projection to k features (the input
    of the sparse heads). Use `resnet18` / `resnet50` for the standard depths.

    Attributes:
      num_features: k, the size of the representation.
      stage_sizes: blocks per stage, (2, 2, 2, 2) for ResNet-18 and
        (3, 4, 6, 3) for ResNet-50; fewer for tiny test models.
      block: 'basic' (ResNet-18/34) or 'bottleneck' (ResNet-50/101/152).
      width: channels of the stem and the first stage (64 in the standard
        ResNets; e.g. 4 for tests).
      norm: 'group' (from scratch) or 'frozen_batch' (pretrained torchvision
        weights); see the module docstring.
      norm_groups: GroupNorm groups (capped at the channel count). A group
        must hold more than one value: with 1x1 feature maps (small images),
        a group of one channel normalises to zero.
      imagenet_standardize: if True, inputs are RGB in [0, 1] and are first
        standardised with IMAGENET_MEAN / IMAGENET_STD, as torchvision's
        pretrained weights expect.
      dtype: computation dtype, e.g. jnp.bfloat16 (None: promote the input
        with the float32 parameters). Parameters are always float32 and the
        projection returns float32 (or wider) features.
    """

    num_features: int
    stage_sizes: Sequence[int] = (2, 2, 2, 2)
    block: str = "basic"
    width: int = 64
    norm: str = "group"
    norm_groups: int = 32
    imagenet_standardize: bool = False
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.block not in BLOCKS:
            raise ValueError(f"block must be one of {BLOCKS}, got {self.block!r}.")
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}.")
        if x.ndim < 4:
            raise ValueError(
                f"ResNet expects images [..., height, width, channels]; got shape "
                f"{x.shape}."
            )
        batch_shape = x.shape[:-3]
        x = x.reshape((-1, *x.shape[-3:]))  # [N, H, W, c]
        if self.imagenet_standardize:
            if x.shape[-1] != 3:
                raise ValueError(
                    f"imagenet_standardize needs RGB images; got {x.shape[-1]} "
                    "channels."
                )
            x = (x - jnp.array(IMAGENET_MEAN)) / jnp.array(IMAGENET_STD)
        make_norm = _norm_factory(self.norm, self.norm_groups, self.dtype)
        block_cls = BasicBlock if self.block == "basic" else BottleneckBlock

        x = _conv(self.width, 7, 2, "stem_conv", self.dtype)(x)
        x = nn.relu(make_norm(self.width, "stem_norm")(x))
        x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        for stage, num_blocks in enumerate(self.stage_sizes):
            for index in range(num_blocks):
                x = block_cls(
                    channels=self.width * 2**stage,
                    stride=2 if stage > 0 and index == 0 else 1,
                    make_norm=make_norm,
                    dtype=self.dtype,
                    name=f"stage{stage + 1}_block{index}",
                )(x)
        pooled = jnp.mean(
            x, axis=(1, 2), dtype=jnp.promote_types(x.dtype, jnp.float32)
        )  # [N, C]
        features = nn.Dense(self.num_features, name="projection")(pooled)  # [N, k]
        return features.reshape((*batch_shape, self.num_features))


def resnet18(num_features: int, **options) -> ResNet:
    """ResNet-18 (basic blocks, stages (2, 2, 2, 2)); options as in ResNet."""
    return ResNet(num_features=num_features, block="basic", **options)


def resnet50(num_features: int, **options) -> ResNet:
    """ResNet-50 (bottleneck blocks, stages (3, 4, 6, 3)); options as in ResNet."""
    options = {"stage_sizes": (3, 4, 6, 3), **options}
    return ResNet(num_features=num_features, block="bottleneck", **options)
