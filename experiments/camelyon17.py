"""Camelyon17-WILDS (tumour patches, hospitals as domains).

The release has no label besides the tumour label: the slide of a patch
belongs to one hospital, so slide or hospital tasks would be domain tasks.
This config therefore meta-trains on the target label itself
(data.task_fields = ('label',), allowed explicitly by
data.allow_label_tasks): every task of an episode is the tumour task on a
fresh class-balanced sample, so the method reduces to a sparse-head version
of ERM. For a real transfer experiment, start from an encoder meta-trained
elsewhere (--config.model.pretrained_path, format 'flax').

Transfer: the sparse head is fit on the training hospitals (0, 3, 4),
chosen on the OOD validation hospital 1, and the test split's average
accuracy (hospital 2) is the out-of-distribution accuracy.

    python -m sparse_shared_jax.main --config=experiments/camelyon17.py \
        --workdir=workdirs/camelyon17 --config.data.data_dir=/data/tfds \
        --config.data.manual_dir=/data/manual/camelyon17
"""

import ml_collections

from sparse_shared_jax import configs


def get_config(argument: str | None = None) -> ml_collections.ConfigDict:
    """The config; `argument` as in configs.apply_arguments (no rho=)."""
    config = configs.benchmark_config("camelyon17_wilds/96px")
    config.data.task_fields = ("label",)
    config.data.allow_label_tasks = True
    config.model.name = "resnet18"
    config.model.num_features = 32
    config.model.options = ml_collections.ConfigDict()
    config.episode.num_tasks = 8
    config.episode.support_size = 64
    config.episode.query_size = 64
    return configs.apply_arguments(config, argument)
