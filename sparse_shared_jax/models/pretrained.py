"""Encoder weights in local files: save/restore, and published checkpoints.

Three formats (`FORMATS`), all read into variables shaped like
`encoder.init(rng, x)` (the projection to k features, which no published
checkpoint has, keeps its fresh initialisation):

* 'flax': variables saved by `save_variables` (msgpack).
* 'torchvision_resnet': a torchvision ResNet-18/50 `state_dict` saved as .npz
  under its own names (conv1.weight, layer1.0.bn1.running_mean, ...). Build
  the encoder with norm='frozen_batch' (the running statistics become frozen
  batch norms) and imagenet_standardize=True (inputs RGB in [0, 1]). Export
  it, on a machine with torch and torchvision::

      import numpy as np, torchvision
      model = torchvision.models.resnet50(weights="IMAGENET1K_V2")
      # or: torchvision.models.resnet18(weights="IMAGENET1K_V1")
      np.savez("resnet50.npz",
               **{k: v.cpu().numpy() for k, v in model.state_dict().items()})

* 'hf_bert': a HuggingFace BertModel `state_dict` saved as .npz under its own
  names (embeddings.word_embeddings.weight, encoder.layer.0.attention.self.
  query.weight, pooler.dense.weight, ...; a 'bert.' prefix and the old
  LayerNorm 'gamma'/'beta' names are accepted too). Build the encoder as
  `TextTransformer` with the checkpoint's sizes (the defaults are
  bert-base-uncased) and pre_layer_norm=False; max_length may be smaller than
  the checkpoint's 512 positions (the first rows are kept). Export it, on a
  machine with torch and transformers::

      import numpy as np
      from transformers import BertModel, BertTokenizer
      model = BertModel.from_pretrained("bert-base-uncased")
      np.savez("bert-base-uncased.npz",
               **{k: v.cpu().numpy() for k, v in model.state_dict().items()})
      BertTokenizer.from_pretrained("bert-base-uncased").save_vocabulary(".")
      # -> ./vocab.txt for models.tokenizer.WordPieceTokenizer.from_vocab_file

Arrays the encoder has no place for are named in an error, except the ones a
converter knows to skip (the ImageNet classifier fc.*, BatchNorm's
num_batches_tracked, BERT's position_ids/token_type_ids buffers and cls.*
pre-training heads, and the pooler when the encoder mean-pools).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import flax
import jax
import jax.numpy as jnp
import numpy as np
from flax import traverse_util

from sparse_shared_jax import atomic_files
from sparse_shared_jax.models.resnet import FROZEN

Path = tuple[str, ...]  # a variable's path, e.g. ('params', 'stem_conv', 'kernel')
# Converted arrays by variable path, and checkpoint names that have no place
# (unknown names, or a convolution weight that is not [out, in, h, w]).
Converted = tuple[dict[Path, np.ndarray], list[str]]

# Variables no checkpoint provides: the projection to k features.
_NEW_MODULES = ("projection",)


def save_variables(path: str, variables: Any) -> None:
    """Writes encoder variables (e.g. from `encoder.init`) to a msgpack file."""
    data = flax.serialization.msgpack_serialize(
        jax.device_get(flax.core.unfreeze(variables))
    )
    atomic_files.write_bytes(path, data)


def load_variables(path: str, variables: Any) -> dict:
    """Reads variables written by `save_variables`.

    Args:
      path: the file.
      variables: variables of the same encoder (e.g. from `encoder.init`),
        used to check that every name and shape agrees.

    Returns:
      The stored variables, with the structure of `variables`.
    """
    with open(path, "rb") as f:
        stored = traverse_util.flatten_dict(
            flax.serialization.msgpack_restore(f.read())
        )
    expected = _flat(variables)
    problems = [f"missing {_name(p)}" for p in expected if p not in stored]
    problems += [f"unexpected {_name(p)}" for p in stored if p not in expected]
    problems += [
        f"{_name(p)} has shape {stored[p].shape}, the encoder {expected[p].shape}"
        for p in expected
        if p in stored and stored[p].shape != expected[p].shape
    ]
    if problems:
        raise ValueError(
            f"{path} does not hold this encoder's variables (was it saved from an "
            f"encoder with other options?): {_summary(problems)}"
        )
    return traverse_util.unflatten_dict(
        {p: jnp.asarray(stored[p], expected[p].dtype) for p in expected}
    )


def torchvision_resnet_variables(path: str, variables: Any) -> dict:
    """Loads a torchvision ResNet state_dict (.npz) into ResNet variables.

    Args:
      path: the .npz (see the module docstring for how to export it).
      variables: `encoder.init(...)` of a `models.ResNet` built with
        norm='frozen_batch' and the checkpoint's depth, block and width.

    Returns:
      `variables` with every backbone array replaced (convolution kernels
      transposed from [out, in, h, w] to [h, w, in, out]).
    """
    if FROZEN not in variables:
        raise ValueError(
            "torchvision weights need batch norms: build the ResNet with "
            "norm='frozen_batch' (and imagenet_standardize=True)."
        )
    return _assign(path, variables, _convert_torchvision_resnet(_read_npz(path)))


def hf_bert_variables(path: str, variables: Any) -> dict:
    """Loads a HuggingFace BertModel state_dict (.npz) into TextTransformer variables.

    Args:
      path: the .npz (see the module docstring for how to export it).
      variables: `encoder.init(...)` of a `models.TextTransformer` with the
        checkpoint's sizes and pre_layer_norm=False.

    Returns:
      `variables` with every encoder array replaced (dense kernels transposed
      from [out, in] to [in, out]).
    """
    if "final_norm" in variables["params"]:
        raise ValueError(
            "BERT weights are for post-LN layers: build the TextTransformer with "
            "pre_layer_norm=False."
        )
    params = variables["params"]
    converted = _convert_hf_bert(
        _read_npz(path),
        max_length=params["position_embedding"]["embedding"].shape[0],
        has_pooler="pooler" in params,
    )
    return _assign(path, variables, converted)


FORMATS: dict[str, Callable[[str, Any], dict]] = {
    "flax": load_variables,
    "torchvision_resnet": torchvision_resnet_variables,
    "hf_bert": hf_bert_variables,
}


def load_pretrained(path: str, file_format: str, variables: Any) -> dict:
    """Loads weights from `path` in `file_format` (one of FORMATS) into variables."""
    if file_format not in FORMATS:
        raise ValueError(
            f"The weights format must be one of {tuple(FORMATS)}; got {file_format!r}."
        )
    return FORMATS[file_format](path, variables)


def _read_npz(path: str) -> dict[str, np.ndarray]:
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"No checkpoint at {path}; export one as .npz as the docstring of "
            "sparse_shared_jax.models.pretrained shows."
        )
    with np.load(path) as data:
        return {name: data[name] for name in data.files}


def _convert_torchvision_resnet(arrays: dict[str, np.ndarray]) -> Converted:
    """torchvision names -> ResNet variable paths."""
    batch_norm_leaves = {
        "weight": "scale",
        "bias": "bias",
        "running_mean": "mean",
        "running_var": "var",
    }
    converted, unplaced = {}, []
    for name, array in arrays.items():
        module_name, leaf = name.rsplit(".", 1)
        if module_name == "fc" or leaf == "num_batches_tracked":
            continue  # the ImageNet classifier; a BatchNorm step counter
        module = _torchvision_module(module_name)
        if module is None:
            unplaced.append(name)
        elif "conv" in module[-1] and leaf == "weight" and array.ndim == 4:
            # [out, in, h, w] -> [h, w, in, out]
            converted[("params", *module, "kernel")] = array.transpose(2, 3, 1, 0)
        elif "norm" in module[-1] and leaf in batch_norm_leaves:
            converted[(FROZEN, *module, batch_norm_leaves[leaf])] = array
        else:
            unplaced.append(name)
    return converted, unplaced


def _torchvision_module(name: str) -> Path | None:
    """'layer2.0.downsample.1' -> ('stage2_block0', 'shortcut_norm'), etc."""
    if name in ("conv1", "bn1"):
        return ("stem_conv",) if name == "conv1" else ("stem_norm",)
    match = re.fullmatch(r"layer(\d+)\.(\d+)\.(conv|bn)(\d)", name)
    if match:
        stage, block, kind, index = match.groups()
        layer = f"conv{index}" if kind == "conv" else f"norm{index}"
        return (f"stage{stage}_block{block}", layer)
    match = re.fullmatch(r"layer(\d+)\.(\d+)\.downsample\.([01])", name)
    if match:
        stage, block, index = match.groups()
        layer = "shortcut_conv" if index == "0" else "shortcut_norm"
        return (f"stage{stage}_block{block}", layer)
    return None


# Index buffers some transformers versions keep in the state_dict.
_BERT_BUFFERS = ("embeddings.position_ids", "embeddings.token_type_ids")

# HuggingFace BERT module names -> TextTransformer module paths ({i}: layer).
_BERT_MODULES = {
    "embeddings.word_embeddings": ("token_embedding",),
    "embeddings.position_embeddings": ("position_embedding",),
    "embeddings.token_type_embeddings": ("segment_embedding",),
    "embeddings.LayerNorm": ("embedding_norm",),
    "encoder.layer.{i}.attention.self.query": ("layer{i}", "attention", "query"),
    "encoder.layer.{i}.attention.self.key": ("layer{i}", "attention", "key"),
    "encoder.layer.{i}.attention.self.value": ("layer{i}", "attention", "value"),
    "encoder.layer.{i}.attention.output.dense": ("layer{i}", "attention", "output"),
    "encoder.layer.{i}.attention.output.LayerNorm": ("layer{i}", "attention_norm"),
    "encoder.layer.{i}.intermediate.dense": ("layer{i}", "intermediate"),
    "encoder.layer.{i}.output.dense": ("layer{i}", "output"),
    "encoder.layer.{i}.output.LayerNorm": ("layer{i}", "output_norm"),
    "pooler.dense": ("pooler",),
}


def _convert_hf_bert(
    arrays: dict[str, np.ndarray], max_length: int, has_pooler: bool
) -> Converted:
    """HuggingFace BERT names -> TextTransformer variable paths."""
    converted, unplaced = {}, []
    for original_name, array in arrays.items():
        name = original_name.removeprefix("bert.")
        if name in _BERT_BUFFERS or name.startswith("cls."):
            continue  # constant index buffers; the pre-training heads
        if name.startswith("pooler.") and not has_pooler:
            continue  # the encoder mean-pools
        module_name, leaf = name.rsplit(".", 1)
        leaf = {"gamma": "weight", "beta": "bias"}.get(leaf, leaf)
        module = _bert_module(module_name)
        if module is None or leaf not in ("weight", "bias"):
            unplaced.append(original_name)
        elif module[-1].endswith("embedding"):
            if module == ("position_embedding",):
                array = array[:max_length]  # the encoder may use fewer positions
            converted[("params", *module, "embedding")] = array
        elif module[-1].endswith("norm"):
            flax_leaf = "scale" if leaf == "weight" else "bias"
            converted[("params", *module, flax_leaf)] = array
        else:  # a dense layer: weight [out, in] -> kernel [in, out]
            flax_leaf, array = (
                ("kernel", array.T) if leaf == "weight" else ("bias", array)
            )
            converted[("params", *module, flax_leaf)] = array
    return converted, unplaced


def _bert_module(name: str) -> Path | None:
    match = re.fullmatch(r"encoder\.layer\.(\d+)\.(.+)", name)
    if match is None:
        return _BERT_MODULES.get(name)
    index, rest = match.groups()
    module = _BERT_MODULES.get(f"encoder.layer.{{i}}.{rest}")
    return None if module is None else tuple(m.format(i=index) for m in module)


def _assign(path: str, variables: Any, converted: Converted) -> dict:
    """Replaces variables by converted arrays, checking names and shapes."""
    arrays, unplaced = converted
    flat = _flat(variables)
    problems = [
        f"checkpoint array {name!r} has no place in the encoder" for name in unplaced
    ]
    problems += [f"the encoder has no {_name(p)}" for p in arrays if p not in flat]
    problems += [
        f"{_name(p)}: checkpoint shape {arrays[p].shape}, encoder {flat[p].shape}"
        for p in arrays
        if p in flat and arrays[p].shape != flat[p].shape
    ]
    problems += [
        f"the checkpoint lacks {_name(p)}"
        for p in flat
        if p not in arrays and p[1] not in _NEW_MODULES
    ]
    if problems:
        raise ValueError(
            f"{path} does not fit this encoder (check its depth, block, width or "
            f"sizes against the checkpoint's): {_summary(problems)}"
        )
    for p, array in arrays.items():
        flat[p] = jnp.asarray(array, flat[p].dtype)
    return traverse_util.unflatten_dict(flat)


def _flat(variables: Any) -> dict[Path, Any]:
    return traverse_util.flatten_dict(flax.core.unfreeze(variables))


def _name(path: Path) -> str:
    return "/".join(path)


def _summary(problems: list[str], limit: int = 8) -> str:
    more = f" (and {len(problems) - limit} more)" if len(problems) > limit else ""
    return "; ".join(problems[:limit]) + more
