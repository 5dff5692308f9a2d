"""Waterbirds (bird type vs background): meta-train on species pairs.

Tasks: a binary task tells two CUB species apart (the ``species`` meta
label, 200 values; each task draws a random pair). A species is all
waterbird or all landbird, so these are fine-grained versions of the target,
never of the background. Transfer: a sparse head for waterbird vs landbird,
worst-group accuracy over (bird type, background). The training split has
about 24 images per species, so support and query sets are small.

    python -m sparse_shared_jax.main --config=experiments/waterbirds.py \
        --workdir=workdirs/waterbirds --config.data.data_dir=/data/tfds \
        --config.data.manual_dir=/data/manual/waterbirds

Needs the release downloaded by hand (docs/distribution_shift_benchmarks.md);
a GPU or TPU is advised, and ImageNet weights (docs/backbones.md) are the
usual start for 4,795 training images.
"""

import ml_collections

from sparse_shared_jax import configs


def get_config(argument: str | None = None) -> ml_collections.ConfigDict:
    """The config; `argument` as in configs.apply_arguments (no rho=)."""
    config = configs.benchmark_config("waterbirds/224px")
    config.model.name = "resnet50"
    config.model.num_features = 32
    config.model.options = ml_collections.ConfigDict({"imagenet_standardize": True})
    config.episode.num_tasks = 16
    config.episode.support_size = 10
    config.episode.query_size = 10
    return configs.apply_arguments(config, argument)
