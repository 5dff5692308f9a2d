"""ResNet and Transformer encoders: shapes, gradients, weights on disk.

The converters are checked against torch-layout reference forward passes
written here from torchvision's and HuggingFace's definitions (NCHW
convolutions with [out, in, h, w] kernels; x @ W.T + b dense layers), on
fabricated checkpoints with the real parameter names at tiny widths.
Models are initialised under jit with 'rbg' keys, which compile much faster
on CPU than the default threefry keys.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import linen as nn
from scipy import special

from sparse_shared_jax import models
from sparse_shared_jax.models import pretrained

RESNET18_STAGES = (2, 2, 2, 2)
RESNET50_STAGES = (3, 4, 6, 3)
TINY_BERT = dict(
    vocab_size=30,
    hidden_size=8,
    num_layers=2,
    num_heads=2,
    intermediate_size=16,
    max_length=12,
    pad_id=0,
    sep_id=3,
)
# [CLS]=2, [SEP]=3, [PAD]=0: a text pair and a single text, L = 10.
BERT_IDS = np.array(
    [[2, 5, 6, 7, 3, 8, 9, 3, 0, 0], [2, 5, 3, 0, 0, 0, 0, 0, 0, 0]], np.int32
)
# Token types as BERT's tokenizer assigns them (pads 0).
BERT_SEGMENTS = np.array(
    [[0, 0, 0, 0, 0, 1, 1, 1, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0, 0, 0]]
)


def _key(seed=0):
    return jax.random.key(seed, impl="rbg")


def _init(model, x):
    return jax.jit(model.init)(_key(), x)


def _loss_and_grad(model):
    """jit(variables, x -> ((sum of squared features, features), gradient))."""

    def loss(variables, x):
        features = model.apply(variables, x)
        return jnp.sum(features**2), features

    return jax.jit(jax.value_and_grad(loss, has_aux=True))


def _features(loss_and_grad, variables, x):
    """The encoder's output, from a function made by _loss_and_grad."""
    (_, features), _ = loss_and_grad(variables, x)
    return features


def _assert_finite_nonzero(tree):
    norms = [float(jnp.linalg.norm(leaf)) for leaf in jax.tree.leaves(tree)]
    assert all(np.isfinite(norms)) and sum(norms) > 0


def _identity_projection(variables):
    """Sets the projection to the identity: the encoder returns its pooled vector.

    Works on abstract variables (jax.eval_shape) too, whose other leaves a
    converter has filled.
    """
    params = dict(variables["params"])
    size = params["projection"]["kernel"].shape[0]
    params["projection"] = {"kernel": jnp.eye(size), "bias": jnp.zeros(size)}
    return {**variables, "params": params}


# ----------------------------------------------------------------- ResNet


def _torchvision_state_dict(block, stage_sizes, width, seed=0):
    """A torchvision ResNet state_dict (names, shapes) with random values."""
    rng = np.random.default_rng(seed)
    state = {}
    expansion = 1 if block == "basic" else 4

    def conv(name, out, inp, size):
        std = np.sqrt(2.0 / (inp * size * size))
        state[f"{name}.weight"] = rng.normal(0, std, (out, inp, size, size))

    def bn(name, channels):
        state[f"{name}.weight"] = rng.uniform(0.5, 1.5, channels)
        state[f"{name}.bias"] = rng.normal(0, 0.1, channels)
        state[f"{name}.running_mean"] = rng.normal(0, 0.1, channels)
        state[f"{name}.running_var"] = rng.uniform(0.5, 2.0, channels)
        state[f"{name}.num_batches_tracked"] = np.array(1000, np.int64)

    conv("conv1", width, 3, 7)
    bn("bn1", width)
    inp = width
    for stage, num_blocks in enumerate(stage_sizes, start=1):
        planes = width * 2 ** (stage - 1)
        for index in range(num_blocks):
            prefix = f"layer{stage}.{index}"
            stride = 2 if stage > 1 and index == 0 else 1
            if block == "basic":
                conv(f"{prefix}.conv1", planes, inp, 3)
                bn(f"{prefix}.bn1", planes)
                conv(f"{prefix}.conv2", planes, planes, 3)
                bn(f"{prefix}.bn2", planes)
            else:
                conv(f"{prefix}.conv1", planes, inp, 1)
                bn(f"{prefix}.bn1", planes)
                conv(f"{prefix}.conv2", planes, planes, 3)
                bn(f"{prefix}.bn2", planes)
                conv(f"{prefix}.conv3", planes * 4, planes, 1)
                bn(f"{prefix}.bn3", planes * 4)
            if stride != 1 or inp != planes * expansion:
                conv(f"{prefix}.downsample.0", planes * expansion, inp, 1)
                bn(f"{prefix}.downsample.1", planes * expansion)
            inp = planes * expansion
    state["fc.weight"] = rng.normal(0, 0.01, (1000, inp))
    state["fc.bias"] = np.zeros(1000)
    return {
        name: value.astype(np.float32) if value.dtype == np.float64 else value
        for name, value in state.items()
    }


def _torchvision_forward(state, images, block, stage_sizes):
    """torchvision's ResNet forward up to the average pool: [N, H, W, 3] -> [N, C]."""

    def conv(x, name, stride, pad):
        return jax.lax.conv_general_dilated(
            x,
            jnp.asarray(state[f"{name}.weight"], x.dtype),
            (stride, stride),
            [(pad, pad), (pad, pad)],
            dimension_numbers=("NCHW", "OIHW", "NCHW"),
        )

    def bn(x, name):
        def stat(leaf):
            return jnp.asarray(state[f"{name}.{leaf}"], x.dtype)[None, :, None, None]

        normalized = (x - stat("running_mean")) / jnp.sqrt(stat("running_var") + 1e-5)
        return normalized * stat("weight") + stat("bias")

    relu = jax.nn.relu
    x = jnp.transpose(images, (0, 3, 1, 2))  # NCHW
    x = relu(bn(conv(x, "conv1", 2, 3), "bn1"))
    x = jax.lax.reduce_window(
        x,
        -jnp.inf,
        jax.lax.max,
        (1, 1, 3, 3),
        (1, 1, 2, 2),
        [(0, 0)] * 2 + [(1, 1)] * 2,
    )
    for stage, num_blocks in enumerate(stage_sizes, start=1):
        for index in range(num_blocks):
            p = f"layer{stage}.{index}"
            stride = 2 if stage > 1 and index == 0 else 1
            if block == "basic":
                y = relu(bn(conv(x, f"{p}.conv1", stride, 1), f"{p}.bn1"))
                y = bn(conv(y, f"{p}.conv2", 1, 1), f"{p}.bn2")
            else:  # torchvision's v1.5 bottleneck: the stride on the 3x3
                y = relu(bn(conv(x, f"{p}.conv1", 1, 0), f"{p}.bn1"))
                y = relu(bn(conv(y, f"{p}.conv2", stride, 1), f"{p}.bn2"))
                y = bn(conv(y, f"{p}.conv3", 1, 0), f"{p}.bn3")
            if f"{p}.downsample.0.weight" in state:
                x = bn(conv(x, f"{p}.downsample.0", stride, 0), f"{p}.downsample.1")
            x = relu(y + x)
    return jnp.mean(x, axis=(2, 3))


def _torchvision_resnet(directory, block, stage_sizes, width, images, seed=0):
    """A frozen-BN ResNet loaded from a fabricated torchvision checkpoint.

    Returns the model, its variables (identity projection) and the checkpoint.
    """
    state = _torchvision_state_dict(block, stage_sizes, width, seed)
    path = str(directory / f"{block}.npz")
    np.savez(path, **state)
    model = models.ResNet(
        num_features=8 * width * (1 if block == "basic" else 4),
        stage_sizes=stage_sizes,
        block=block,
        width=width,
        norm="frozen_batch",
    )
    abstract = jax.eval_shape(model.init, _key(), images)
    variables = pretrained.load_pretrained(path, "torchvision_resnet", abstract)
    return model, _identity_projection(variables), state


@pytest.fixture(scope="module")
def resnet18_tiny():
    """GroupNorm ResNet-18 at width 4: model, images, variables, jitted loss."""
    # Two groups per GroupNorm: with one channel per group, the 1x1 maps of the
    # last stage would normalise to zero.
    model = models.get_encoder("resnet18", num_features=5, width=4, norm_groups=2)
    images = jax.random.uniform(jax.random.key(1), (2, 32, 32, 3))
    return model, images, _init(model, images), _loss_and_grad(model)


@pytest.fixture(scope="module")
def resnet50_tiny(tmp_path_factory):
    """Width-2 ResNet-50 from a fabricated torchvision checkpoint, differentiated."""
    images = jax.random.uniform(jax.random.key(2), (2, 32, 32, 3))
    model, variables, state = _torchvision_resnet(
        tmp_path_factory.mktemp("torchvision"), "bottleneck", RESNET50_STAGES, 2, images
    )
    (_, features), grads = _loss_and_grad(model)(variables, images)
    return dict(
        images=images, variables=variables, state=state, features=features, grads=grads
    )


@pytest.mark.slow
def test_resnet18_forward_and_backward(resnet18_tiny):
    _, images, variables, loss_and_grad = resnet18_tiny
    (_, features), grads = loss_and_grad(variables, images)
    assert features.shape == (2, 5)
    assert np.all(np.isfinite(features))
    _assert_finite_nonzero(grads)
    params = variables["params"]
    assert params["stem_conv"]["kernel"].shape == (7, 7, 3, 4)
    assert params["stage4_block1"]["conv2"]["kernel"].shape == (3, 3, 32, 32)
    assert "shortcut_conv" not in params["stage1_block0"]  # same shape: identity
    assert params["stage2_block0"]["shortcut_conv"]["kernel"].shape == (1, 1, 4, 8)
    assert params["projection"]["kernel"].shape == (32, 5)
    assert "frozen" not in variables  # GroupNorm: nothing but trainable params


@pytest.mark.slow
def test_resnet50_forward_and_backward_leave_frozen_norms_fixed(resnet50_tiny):
    variables, grads = resnet50_tiny["variables"], resnet50_tiny["grads"]
    assert resnet50_tiny["features"].shape == (2, 64)
    _assert_finite_nonzero(grads["params"])
    frozen_grads = jax.tree.leaves(grads["frozen"])
    assert frozen_grads and all(np.all(g == 0) for g in frozen_grads)
    mask = models.trainable_mask(variables)
    assert all(jax.tree.leaves(mask["params"]))
    assert not any(jax.tree.leaves(mask["frozen"]))


def test_adamw_with_the_trainable_mask_leaves_frozen_statistics_fixed():
    variables = {"params": {"w": jnp.ones(3)}, "frozen": {"mean": jnp.ones(3)}}
    grads = {"params": {"w": jnp.ones(3)}, "frozen": {"mean": jnp.zeros(3)}}
    for mask, frozen_changes in ((None, True), (models.trainable_mask, False)):
        optimizer = optax.adamw(0.1, weight_decay=0.5, mask=mask)
        updates, _ = optimizer.update(grads, optimizer.init(variables), variables)
        updated = optax.apply_updates(variables, updates)
        assert np.all(updated["params"]["w"] < 1)
        assert np.any(updated["frozen"]["mean"] != 1) == frozen_changes


def test_resnet_keeps_leading_batch_axes_and_dtype():
    model = models.resnet18(3, width=4, stage_sizes=(1, 1), dtype=jnp.bfloat16)
    images = jnp.zeros((2, 3, 16, 16, 3))
    variables = jax.eval_shape(model.init, _key(), images)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(variables))
    features = jax.eval_shape(model.apply, variables, images)
    assert features.shape == (2, 3, 3) and features.dtype == jnp.float32
    jaxpr = jax.make_jaxpr(model.apply)(variables, images).jaxpr
    conv_dtypes = {
        eqn.outvars[0].aval.dtype
        for eqn in jaxpr.eqns
        if eqn.primitive.name == "conv_general_dilated"
    }
    assert conv_dtypes == {jnp.dtype(jnp.bfloat16)}


def test_frozen_batch_norm_matches_the_batch_norm_formula(float64):
    rng = np.random.default_rng(0)
    x = rng.normal(2.0, 3.0, (4, 5, 5, 6))
    stats = {
        "mean": rng.normal(size=6),
        "var": rng.uniform(0.1, 4.0, 6),
        "scale": rng.normal(size=6),
        "bias": rng.normal(size=6),
    }
    frozen = models.FrozenBatchNorm()
    y = frozen.apply({"frozen": stats}, jnp.asarray(x))
    expected = (x - stats["mean"]) / np.sqrt(stats["var"] + 1e-5) * stats[
        "scale"
    ] + stats["bias"]
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    # The same numbers as flax's BatchNorm in inference mode.
    batch_norm = nn.BatchNorm(use_running_average=True, epsilon=1e-5)
    reference = batch_norm.apply(
        {
            "params": {"scale": stats["scale"], "bias": stats["bias"]},
            "batch_stats": {"mean": stats["mean"], "var": stats["var"]},
        },
        jnp.asarray(x),
    )
    np.testing.assert_allclose(y, reference, rtol=1e-12, atol=1e-12)
    # Initialised to the identity (up to epsilon).
    init = frozen.init(_key(), jnp.asarray(x))
    np.testing.assert_allclose(frozen.apply(init, jnp.asarray(x)), x, rtol=1e-5)


@pytest.mark.parametrize(
    ("block", "stages", "expected"),
    [("basic", RESNET18_STAGES, 122), ("bottleneck", RESNET50_STAGES, 320)],
)
def test_fabricated_torchvision_checkpoints_have_the_real_name_count(
    block, stages, expected
):
    # len(torchvision.models.resnet18().state_dict()) == 122, resnet50: 320.
    state = _torchvision_state_dict(block, stages, width=2)
    assert len(state) == expected
    assert "layer1.0.downsample.0.weight" in state or block == "basic"
    assert "layer2.0.downsample.1.running_var" in state


def test_torchvision_resnet50_conversion_matches_torchvision_forward(resnet50_tiny):
    variables, state = resnet50_tiny["variables"], resnet50_tiny["state"]
    params, frozen = variables["params"], variables["frozen"]
    # Spot checks of where arrays land.
    np.testing.assert_array_equal(
        params["stage2_block0"]["conv2"]["kernel"],
        state["layer2.0.conv2.weight"].transpose(2, 3, 1, 0),
    )
    np.testing.assert_array_equal(
        params["stage1_block0"]["shortcut_conv"]["kernel"][0, 0],
        state["layer1.0.downsample.0.weight"][:, :, 0, 0].T,
    )
    np.testing.assert_array_equal(
        frozen["stage4_block2"]["norm3"]["var"], state["layer4.2.bn3.running_var"]
    )
    np.testing.assert_array_equal(frozen["stem_norm"]["scale"], state["bn1.weight"])
    # Every checkpoint value is used exactly once (fc and counters aside).
    used = np.sort(
        np.concatenate(
            [
                np.ravel(leaf)
                for path, leaf in jax.tree_util.tree_leaves_with_path(variables)
                if "projection" not in jax.tree_util.keystr(path)
            ]
        )
    )
    given = np.sort(
        np.concatenate(
            [
                np.ravel(value)
                for name, value in state.items()
                if not name.startswith("fc.") and "num_batches" not in name
            ]
        )
    )
    np.testing.assert_array_equal(used, given)
    # The whole network agrees with torchvision's forward pass.
    reference = jax.jit(_torchvision_forward, static_argnums=(2, 3))(
        state, resnet50_tiny["images"], "bottleneck", RESNET50_STAGES
    )
    assert np.abs(reference).max() > 0.1
    np.testing.assert_allclose(
        resnet50_tiny["features"], reference, rtol=1e-4, atol=1e-5
    )


def test_torchvision_resnet18_conversion_matches_torchvision_forward(tmp_path):
    images = jax.random.uniform(jax.random.key(3), (2, 24, 24, 3))
    model, variables, state = _torchvision_resnet(
        tmp_path, "basic", RESNET18_STAGES, 4, images, seed=1
    )
    features = jax.jit(model.apply)(variables, images)
    reference = jax.jit(_torchvision_forward, static_argnums=(2, 3))(
        state, images, "basic", RESNET18_STAGES
    )
    np.testing.assert_allclose(features, reference, rtol=1e-4, atol=1e-5)


def test_torchvision_converter_names_what_does_not_fit(tmp_path, resnet18_tiny):
    _, images, group_norm_variables, _ = resnet18_tiny
    state = _torchvision_state_dict("basic", RESNET18_STAGES, width=4)
    path = str(tmp_path / "resnet18.npz")
    np.savez(path, **state)
    with pytest.raises(ValueError, match="norm='frozen_batch'"):
        pretrained.torchvision_resnet_variables(path, group_norm_variables)
    narrow = models.resnet18(5, width=2, norm="frozen_batch")
    variables = jax.eval_shape(narrow.init, _key(), images)
    with pytest.raises(ValueError, match=r"stem_conv/kernel: checkpoint shape"):
        pretrained.torchvision_resnet_variables(path, variables)
    wide = models.resnet18(5, width=4, norm="frozen_batch")
    variables = jax.eval_shape(wide.init, _key(), images)
    np.savez(path, **state, **{"layer9.0.conv1.weight": np.zeros((4, 4, 3, 3))})
    with pytest.raises(ValueError, match="encoder has no params/stage9_block0/conv1"):
        pretrained.torchvision_resnet_variables(path, variables)
    np.savez(path, **state, **{"layer1.0.conv9.bias": np.zeros(4)})
    with pytest.raises(ValueError, match="'layer1.0.conv9.bias' has no place"):
        pretrained.torchvision_resnet_variables(path, variables)
    with pytest.raises(FileNotFoundError, match="export one as .npz"):
        pretrained.torchvision_resnet_variables(str(tmp_path / "no.npz"), variables)


# ------------------------------------------------------------ Transformer


def _hf_bert_state_dict(vocab, hidden, layers, intermediate, positions, seed=0):
    """A HuggingFace BertModel state_dict (names, shapes) with random values."""
    rng = np.random.default_rng(seed)
    state = {}

    def dense(name, out, inp):
        state[f"{name}.weight"] = rng.normal(0, 1 / np.sqrt(inp), (out, inp))
        state[f"{name}.bias"] = rng.normal(0, 0.1, out)

    def layer_norm(name):
        state[f"{name}.weight"] = rng.uniform(0.5, 1.5, hidden)
        state[f"{name}.bias"] = rng.normal(0, 0.1, hidden)

    state["embeddings.word_embeddings.weight"] = rng.normal(0, 1, (vocab, hidden))
    state["embeddings.position_embeddings.weight"] = rng.normal(
        0, 1, (positions, hidden)
    )
    state["embeddings.token_type_embeddings.weight"] = rng.normal(0, 1, (2, hidden))
    layer_norm("embeddings.LayerNorm")
    for i in range(layers):
        p = f"encoder.layer.{i}"
        for name in ("query", "key", "value"):
            dense(f"{p}.attention.self.{name}", hidden, hidden)
        dense(f"{p}.attention.output.dense", hidden, hidden)
        layer_norm(f"{p}.attention.output.LayerNorm")
        dense(f"{p}.intermediate.dense", intermediate, hidden)
        dense(f"{p}.output.dense", hidden, intermediate)
        layer_norm(f"{p}.output.LayerNorm")
    dense("pooler.dense", hidden, hidden)
    state = {name: value.astype(np.float32) for name, value in state.items()}
    state["embeddings.position_ids"] = np.arange(positions)[None]
    state["embeddings.token_type_ids"] = np.zeros((1, positions), np.int64)
    return state


def _bert_forward(state, ids, segments, num_heads, pad_id):
    """HuggingFace BertModel's forward: (last hidden states, pooled output)."""

    def w(name):
        return state[name].astype(np.float64)

    def dense(x, name):
        return x @ w(f"{name}.weight").T + w(f"{name}.bias")

    def layer_norm(x, name):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + 1e-12) * w(f"{name}.weight") + w(
            f"{name}.bias"
        )

    batch, length = ids.shape
    x = (
        w("embeddings.word_embeddings.weight")[ids]
        + w("embeddings.position_embeddings.weight")[np.arange(length)]
        + w("embeddings.token_type_embeddings.weight")[segments]
    )
    x = layer_norm(x, "embeddings.LayerNorm")
    additive_mask = np.where(ids == pad_id, np.finfo(np.float64).min, 0.0)
    hidden = x.shape[-1]
    head = hidden // num_heads
    for i in range(
        len([n for n in state if n.endswith("attention.self.query.weight")])
    ):
        p = f"encoder.layer.{i}"

        def split(y):
            return y.reshape(batch, length, num_heads, head).transpose(0, 2, 1, 3)

        q, k, v = (
            split(dense(x, f"{p}.attention.self.{n}"))
            for n in ("query", "key", "value")
        )
        scores = (
            q @ k.transpose(0, 1, 3, 2) / np.sqrt(head) + additive_mask[:, None, None]
        )
        probs = special.softmax(scores, axis=-1)
        context = (probs @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
        x = layer_norm(
            x + dense(context, f"{p}.attention.output.dense"),
            f"{p}.attention.output.LayerNorm",
        )
        inner = dense(x, f"{p}.intermediate.dense")
        inner = 0.5 * inner * (1 + special.erf(inner / np.sqrt(2)))
        x = layer_norm(x + dense(inner, f"{p}.output.dense"), f"{p}.output.LayerNorm")
    pooled = np.tanh(dense(x[:, 0], "pooler.dense"))
    return x, pooled


def _tiny_bert_state(seed=0):
    return _hf_bert_state_dict(
        vocab=TINY_BERT["vocab_size"],
        hidden=TINY_BERT["hidden_size"],
        layers=TINY_BERT["num_layers"],
        intermediate=TINY_BERT["intermediate_size"],
        positions=20,  # more than max_length: the converter keeps the first rows
        seed=seed,
    )


@pytest.fixture(scope="module")
def tiny_bert():
    """A tiny BERT ('cls' pooling, post-LN): model, ids, variables, jitted loss."""
    model = models.get_encoder("bert", num_features=4, **TINY_BERT)
    ids = jnp.asarray(BERT_IDS)
    return model, ids, _init(model, ids), _loss_and_grad(model)


def _check_transformer_forward_and_backward(model, ids, variables, loss_and_grad):
    (_, features), grads = loss_and_grad(variables, ids)
    assert features.shape == (2, 4)
    _assert_finite_nonzero(grads)
    params = variables["params"]
    assert params["layer1"]["attention"]["query"]["kernel"].shape == (8, 8)
    assert params["layer0"]["intermediate"]["kernel"].shape == (8, 16)
    assert ("final_norm" in params) == model.pre_layer_norm
    assert ("pooler" in params) == (model.pooling == "cls")


def test_transformer_forward_and_backward(tiny_bert):
    _check_transformer_forward_and_backward(*tiny_bert)


def test_transformer_mean_pooling_pre_ln_forward_and_backward():
    model = models.TextTransformer(4, pooling="mean", pre_layer_norm=True, **TINY_BERT)
    ids = jnp.asarray(BERT_IDS)
    _check_transformer_forward_and_backward(
        model, ids, _init(model, ids), _loss_and_grad(model)
    )


def test_transformer_bfloat16_computation_keeps_float32_parameters(tiny_bert):
    model, ids, variables, loss_and_grad = tiny_bert
    (_, features), _ = loss_and_grad(variables, ids)
    low = models.TextTransformer(4, dtype=jnp.bfloat16, **TINY_BERT)
    low_features = jax.jit(low.apply)(variables, ids)
    assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(variables))
    assert low_features.dtype == jnp.float32
    assert not np.array_equal(features, low_features)  # it did run in bfloat16
    np.testing.assert_allclose(low_features, features, rtol=0.05, atol=0.05)


def test_transformer_rejects_bad_ids():
    model = models.TextTransformer(4, **TINY_BERT)
    with pytest.raises(ValueError, match="integer token ids"):
        model.init(_key(), jnp.zeros((2, 5)))
    with pytest.raises(ValueError, match="max_length=12"):
        model.init(_key(), jnp.zeros((2, 13), jnp.int32))


def test_hf_bert_conversion_matches_bert_forward(tmp_path):
    state = _tiny_bert_state()
    path = str(tmp_path / "bert.npz")
    extra = {"cls.predictions.bias": np.zeros(TINY_BERT["vocab_size"], np.float32)}
    np.savez(path, **state, **extra)
    model = models.TextTransformer(TINY_BERT["hidden_size"], **TINY_BERT)
    ids = jnp.asarray(BERT_IDS)
    abstract = jax.eval_shape(model.init, _key(), ids)
    variables = pretrained.load_pretrained(path, "hf_bert", abstract)
    params = variables["params"]
    np.testing.assert_array_equal(
        params["layer1"]["attention"]["value"]["kernel"],
        state["encoder.layer.1.attention.self.value.weight"].T,
    )
    np.testing.assert_array_equal(
        params["position_embedding"]["embedding"],
        state["embeddings.position_embeddings.weight"][:12],
    )
    np.testing.assert_array_equal(
        params["layer0"]["output_norm"]["scale"],
        state["encoder.layer.0.output.LayerNorm.weight"],
    )
    _, pooled = _bert_forward(
        state, BERT_IDS, BERT_SEGMENTS, TINY_BERT["num_heads"], TINY_BERT["pad_id"]
    )
    # Two more [PAD] columns than the reference: padding must change nothing.
    padded = jnp.pad(ids, ((0, 0), (0, 2)))
    features = jax.jit(model.apply)(_identity_projection(variables), padded)
    np.testing.assert_allclose(features, pooled, rtol=1e-5, atol=1e-6)

    # The names inside task models ('bert.' prefix) and old LayerNorm names.
    def old_name(name):
        name = "bert." + name
        if "LayerNorm" in name:
            return name.replace(".weight", ".gamma").replace(".bias", ".beta")
        return name

    np.savez(path, **{old_name(n): v for n, v in state.items()})
    renamed = pretrained.hf_bert_variables(path, abstract)
    jax.tree.map(np.testing.assert_array_equal, renamed, variables)


def test_hf_bert_conversion_for_mean_pooling_and_bad_checkpoints(tmp_path):
    state = _tiny_bert_state(seed=1)
    path = str(tmp_path / "bert.npz")
    np.savez(path, **state)
    model = models.TextTransformer(8, pooling="mean", **TINY_BERT)
    ids = jnp.asarray(BERT_IDS)
    abstract = jax.eval_shape(model.init, _key(), ids)
    variables = pretrained.hf_bert_variables(path, abstract)  # no pooler
    hidden, _ = _bert_forward(state, BERT_IDS, BERT_SEGMENTS, 2, 0)
    mask = (BERT_IDS != 0)[..., None]
    expected = (hidden * mask).sum(1) / mask.sum(1)
    features = jax.jit(model.apply)(_identity_projection(variables), ids)
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)

    pre_ln = models.TextTransformer(8, pre_layer_norm=True, **TINY_BERT)
    with pytest.raises(ValueError, match="pre_layer_norm=False"):
        pretrained.hf_bert_variables(path, jax.eval_shape(pre_ln.init, _key(), ids))
    three_layers = models.TextTransformer(8, **{**TINY_BERT, "num_layers": 3})
    with pytest.raises(ValueError, match="the checkpoint lacks params/layer2"):
        pretrained.hf_bert_variables(
            path, jax.eval_shape(three_layers.init, _key(), ids)
        )
    long = models.TextTransformer(8, **{**TINY_BERT, "max_length": 24})
    with pytest.raises(ValueError, match="position_embedding/embedding: checkpoint"):
        pretrained.hf_bert_variables(path, jax.eval_shape(long.init, _key(), ids))


# -------------------------------------------------------- weights on disk


def test_saved_variables_restore_identical_outputs(tmp_path, resnet18_tiny, tiny_bert):
    _, ids, text_variables, text_loss_and_grad = tiny_bert
    _, images, variables, image_loss_and_grad = resnet18_tiny
    for x, start, loss_and_grad in (
        (images, variables, image_loss_and_grad),
        (ids, text_variables, text_loss_and_grad),
    ):
        path = str(tmp_path / "encoder.msgpack")
        pretrained.save_variables(path, start)
        other = jax.tree.map(lambda leaf: leaf + 1.0, start)  # same shapes
        restored = pretrained.load_pretrained(path, "flax", other)
        jax.tree.map(np.testing.assert_array_equal, restored, start)
        features = _features(loss_and_grad, start, x)
        np.testing.assert_array_equal(_features(loss_and_grad, restored, x), features)
        assert not np.array_equal(_features(loss_and_grad, other, x), features)

    narrow = models.TextTransformer(4, **{**TINY_BERT, "hidden_size": 4})
    with pytest.raises(ValueError, match="has shape"):
        pretrained.load_variables(path, jax.eval_shape(narrow.init, _key(), ids))


def test_registry_builds_the_backbones():
    assert models.get_encoder("resnet18", 3).stage_sizes == RESNET18_STAGES
    resnet50 = models.get_encoder("resnet50", 3, width=8)
    assert (resnet50.stage_sizes, resnet50.block, resnet50.width) == (
        RESNET50_STAGES,
        "bottleneck",
        8,
    )
    tiny = models.get_encoder("resnet50", 3, stage_sizes=(1, 1))
    assert tiny.stage_sizes == (1, 1)
    bert = models.get_encoder("bert", 3)
    assert (bert.vocab_size, bert.hidden_size, bert.num_layers) == (30522, 768, 12)
    with pytest.raises(ValueError, match="format must be one of"):
        pretrained.load_pretrained("x", "torch", {})


def _backbone_size(model, x):
    """Trainable-or-affine values outside the projection (no running stats)."""
    variables = jax.eval_shape(model.init, _key(), x)
    return sum(
        leaf.size
        for path, leaf in jax.tree_util.tree_leaves_with_path(variables)
        if "projection" not in jax.tree_util.keystr(path)
        and not jax.tree_util.keystr(path).endswith(("['mean']", "['var']"))
    )


def test_full_size_backbones_have_the_published_parameter_counts():
    images = jnp.zeros((1, 224, 224, 3))
    # torchvision's counts (11,689,512 and 25,557,032) less the ImageNet fc.
    assert _backbone_size(models.resnet18(8), images) == 11_689_512 - 513_000
    resnet50 = models.resnet50(8, norm="frozen_batch")
    assert _backbone_size(resnet50, images) == 25_557_032 - 2_049_000
    # bert-base-uncased's BertModel (with its pooler).
    ids = jnp.zeros((1, 16), jnp.int32)
    assert _backbone_size(models.TextTransformer(8), ids) == 109_482_240
