"""MetaShift cats vs dogs (indoor / outdoor context).

The release has no label besides cat / dog, so, like experiments/camelyon17.py,
this config meta-trains on the target label itself (allowed explicitly by
data.allow_label_tasks) and is mostly useful with an encoder meta-trained
elsewhere (--config.model.pretrained_path). MetaShift's release has train and
test splits only: 20% of every training group is held out (seed 0) as the
validation split that picks the head's penalty.

    python -m sparse_shared_jax.main --config=experiments/metashift.py \
        --workdir=workdirs/metashift --config.data.data_dir=/data/tfds \
        --config.data.manual_dir=/data/manual/metashift
"""

import ml_collections

from sparse_shared_jax import configs


def get_config(argument: str | None = None) -> ml_collections.ConfigDict:
    """The config; `argument` as in configs.apply_arguments (no rho=)."""
    config = configs.benchmark_config("metashift/224px")
    config.data.task_fields = ("label",)
    config.data.allow_label_tasks = True
    config.model.name = "resnet18"
    config.model.num_features = 32
    config.model.options = ml_collections.ConfigDict({"imagenet_standardize": True})
    config.episode.num_tasks = 8
    config.episode.support_size = 32
    config.episode.query_size = 32
    return configs.apply_arguments(config, argument)
