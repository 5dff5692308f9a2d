"""A BERT-style Transformer text encoder with a projection to k features.

Input: int token ids [..., L] as made by `models.tokenizer.WordPieceTokenizer`
([CLS] text [SEP], or [CLS] text_a [SEP] text_b [SEP] for pairs, then [PAD]).
The encoder takes a single array (the training code calls apply(variables, x)),
so the rest is derived from the ids:

* attention mask: ids != pad_id ([PAD] never occurs inside real text);
* segment (token type) ids: 0 up to and including the first [SEP], 1 after
  it, as BERT's pair encoding assigns them (padding positions, which get 1,
  are masked out and never read).

The defaults are bert-base-uncased (vocabulary 30522, 12 post-LN layers of
width 768, 12 heads, 512 positions, [PAD] = 0, [SEP] = 102), so its weights
load with `models.pretrained.hf_bert_variables`. There is no dropout: the
training code applies the encoder without random streams.
"""

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

POOLINGS = ("cls", "mean")

_INIT = nn.initializers.normal(stddev=0.02)  # BERT's initialiser


def _dense(features: int, name: str, dtype: Any) -> nn.Dense:
    return nn.Dense(features, kernel_init=_INIT, dtype=dtype, name=name)


class SelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention over unmasked keys."""

    num_heads: int
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        """x [N, L, H] and mask [N, L] (True = real token) -> [N, L, H]."""
        batch, length, hidden = x.shape
        head_size = hidden // self.num_heads

        def heads(name: str) -> jax.Array:
            y = _dense(hidden, name, self.dtype)(x)
            return y.reshape(batch, length, self.num_heads, head_size)

        query, key, value = heads("query"), heads("key"), heads("value")
        logits = jnp.einsum("nqhd,nkhd->nhqk", query, key) / jnp.sqrt(head_size)
        logits = logits.astype(jnp.promote_types(logits.dtype, jnp.float32))
        logits = jnp.where(
            mask[:, None, None, :], logits, jnp.finfo(logits.dtype).min
        )  # [N, heads, L, L]
        weights = jax.nn.softmax(logits, axis=-1).astype(value.dtype)
        context = jnp.einsum("nhqk,nkhd->nqhd", weights, value)
        context = context.reshape(batch, length, hidden)  # [N, L, H]
        return _dense(hidden, "output", self.dtype)(context)


class TransformerLayer(nn.Module):
    """Self-attention and a GELU MLP, each with a residual and a LayerNorm.

    Post-LN (BERT): x = LN(x + f(x)). Pre-LN: x = x + f(LN(x)).
    """

    num_heads: int
    intermediate_size: int
    pre_layer_norm: bool
    layer_norm_eps: float
    dtype: Any = None

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array) -> jax.Array:
        hidden = x.shape[-1]

        def attention(y):
            return SelfAttention(self.num_heads, self.dtype, name="attention")(y, mask)

        def mlp(y):
            y = _dense(self.intermediate_size, "intermediate", self.dtype)(y)
            return _dense(hidden, "output", self.dtype)(nn.gelu(y, approximate=False))

        for sublayer, norm_name in (
            (attention, "attention_norm"),
            (mlp, "output_norm"),
        ):
            norm = nn.LayerNorm(self.layer_norm_eps, dtype=self.dtype, name=norm_name)
            x = (
                (x + sublayer(norm(x)))
                if self.pre_layer_norm
                else norm(x + sublayer(x))
            )
        return x


class TextTransformer(nn.Module):
    """Token ids [..., L] -> features [..., k].

    Token + position + segment embeddings and a LayerNorm; `num_layers`
    Transformer layers; a pooled sentence vector ('cls': BERT's pooler, tanh of
    a dense layer on the [CLS] state; 'mean': the mean of the unmasked token
    states); a linear projection to k features (the input of the sparse
    heads). See the module docstring for how the mask and segments are derived.

    Attributes:
      num_features: k, the size of the representation.
      vocab_size: rows of the token embedding (the vocab.txt line count).
      hidden_size: width H of the token states.
      num_layers: Transformer layers.
      num_heads: attention heads (must divide hidden_size).
      intermediate_size: width of the MLP inside each layer.
      max_length: rows of the position embedding (the longest input L).
      pad_id: id of [PAD], masked out of attention and of mean pooling.
      sep_id: id of [SEP], whose first occurrence ends segment 0.
      pooling: 'cls' or 'mean'.
      pre_layer_norm: False for BERT's post-LN layers (needed for BERT
        weights); True for pre-LN layers and a final LayerNorm (often easier to
        train from scratch).
      layer_norm_eps: LayerNorm epsilon (1e-12 in BERT).
      dtype: computation dtype, e.g. jnp.bfloat16 (None: float32). Parameters
        are float32; softmax runs in float32 and the projection returns float32.
    """

    num_features: int
    vocab_size: int = 30522
    hidden_size: int = 768
    num_layers: int = 12
    num_heads: int = 12
    intermediate_size: int = 3072
    max_length: int = 512
    pad_id: int = 0
    sep_id: int = 102
    pooling: str = "cls"
    pre_layer_norm: bool = False
    layer_norm_eps: float = 1e-12
    dtype: Any = None

    @nn.compact
    def __call__(self, ids: jax.Array) -> jax.Array:
        self._check(ids)
        batch_shape, length = ids.shape[:-1], ids.shape[-1]
        ids = ids.reshape(-1, length)  # [N, L]
        mask = ids != self.pad_id  # [N, L]
        is_sep = ids == self.sep_id
        segments = jnp.minimum(jnp.cumsum(is_sep, axis=-1) - is_sep, 1)  # [N, L]

        def embed(rows: int, name: str) -> nn.Embed:
            return nn.Embed(
                rows,
                self.hidden_size,
                embedding_init=_INIT,
                dtype=self.dtype,
                name=name,
            )

        x = (
            embed(self.vocab_size, "token_embedding")(ids)
            + embed(self.max_length, "position_embedding")(jnp.arange(length))
            + embed(2, "segment_embedding")(segments)
        )  # [N, L, H]
        x = nn.LayerNorm(self.layer_norm_eps, dtype=self.dtype, name="embedding_norm")(
            x
        )
        for index in range(self.num_layers):
            x = TransformerLayer(
                num_heads=self.num_heads,
                intermediate_size=self.intermediate_size,
                pre_layer_norm=self.pre_layer_norm,
                layer_norm_eps=self.layer_norm_eps,
                dtype=self.dtype,
                name=f"layer{index}",
            )(x, mask)
        if self.pre_layer_norm:
            x = nn.LayerNorm(self.layer_norm_eps, dtype=self.dtype, name="final_norm")(
                x
            )

        x = x.astype(jnp.promote_types(x.dtype, jnp.float32))
        if self.pooling == "cls":
            pooled = jnp.tanh(_dense(self.hidden_size, "pooler", None)(x[:, 0]))
        else:
            weights = mask[..., None].astype(x.dtype)  # [N, L, 1]
            count = jnp.maximum(jnp.sum(weights, axis=1), 1.0)  # [N, 1]
            pooled = jnp.sum(x * weights, axis=1) / count  # [N, H]
        features = nn.Dense(self.num_features, name="projection")(pooled)  # [N, k]
        return features.reshape((*batch_shape, self.num_features))

    def _check(self, ids: jax.Array) -> None:
        if not jnp.issubdtype(ids.dtype, jnp.integer):
            raise ValueError(
                f"TextTransformer expects integer token ids [..., L]; got dtype "
                f"{ids.dtype}. Tokenize text with models.tokenizer first."
            )
        if ids.ndim < 2 or ids.shape[-1] > self.max_length:
            raise ValueError(
                f"TextTransformer expects token ids [..., L] with L <= max_length="
                f"{self.max_length}; got shape {ids.shape}."
            )
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"num_heads={self.num_heads} must divide hidden_size="
                f"{self.hidden_size}."
            )
        if self.pooling not in POOLINGS:
            raise ValueError(
                f"pooling must be one of {POOLINGS}, got {self.pooling!r}."
            )
