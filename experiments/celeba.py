"""CelebA (blond hair vs gender): meta-train on the other 38 attributes.

Tasks: each of CelebA's 38 attributes other than the target Blond_Hair and
the group attribute Male is a binary task (data.task_fields empty = the
benchmark's meta labels). Transfer: a sparse head for Blond_Hair on the
frozen encoder, worst-group accuracy over (hair, gender).

    python -m sparse_shared_jax.main --config=experiments/celeba.py \
        --workdir=workdirs/celeba --config.data.data_dir=/data/tfds \
        --config.data.manual_dir=/data/manual/celeba

Needs the release downloaded by hand (docs/distribution_shift_benchmarks.md);
a GPU or TPU is advised. Start from ImageNet weights with
--config.model.pretrained_path=resnet18.npz
--config.model.pretrained_format=torchvision_resnet and
--config.model.options.norm=frozen_batch (docs/backbones.md).
"""

import ml_collections

from sparse_shared_jax import configs


def get_config(argument: str | None = None) -> ml_collections.ConfigDict:
    """The config; `argument` as in configs.apply_arguments (no rho=)."""
    config = configs.benchmark_config("celeba/64px")
    config.model.name = "resnet18"
    config.model.num_features = 32
    config.model.options = ml_collections.ConfigDict({"imagenet_standardize": True})
    config.episode.num_tasks = 16
    config.episode.support_size = 64
    config.episode.query_size = 64
    return configs.apply_arguments(config, argument)
