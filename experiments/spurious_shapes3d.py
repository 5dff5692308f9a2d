"""The generated spurious-correlation benchmark (sparse_shared_jax/data/spurious.py).

3D-Shapes-style scenes; the target is the binarised object shape, the
spurious attribute the binarised floor hue, which agrees with the label on
95% of the 4,800 training images and is independent of it on the
validation and test splits. The encoder is meta-trained on episodes drawn
from the training split's images only, with binary tasks on exactly two
random factors each ('fixed' supports), so no meta-training task is the
target task (a function of the shape alone). The transfer evaluation
(sparse_shared_jax/transfer.py) then fits the target head on the frozen
features; ERM trains the same encoder on the target label (in
<workdir>/erm).

    python -m sparse_shared_jax.main --config=experiments/spurious_shapes3d.py \
        --workdir=workdirs/spurious_shapes3d

and the table over seeds:

    python -m sparse_shared_jax.sweep --experiment=experiments/spurious_shapes3d.py \
        --ablations=full --seeds=3 --columns=transfer \
        --workdir=workdirs/spurious_shapes3d --output=results/spurious_shapes3d.md

200 outer steps, a third of the 600 of experiments/shapes3d.py: on 2 CPU
cores shared with other jobs, three seeds of the method and of ERM had to
fit in about 1.5 hours (the recorded table used this setting).

The config argument (after ':') is as in sparse_shared_jax/configs.py,
e.g. ``:seed=1``. `config.transfer` holds the transfer evaluation and the
ERM baseline (configs.transfer_config).
"""

import ml_collections

from sparse_shared_jax import configs
from sparse_shared_jax.data import spurious


def get_config(argument: str | None = None) -> ml_collections.ConfigDict:
    """The config; `argument` as in configs.apply_arguments."""
    config = configs.base_config()
    config.num_train_steps = 200
    config.log_every_steps = 50
    config.eval_every_steps = 200
    config.checkpoint.every_steps = 200

    agreement = 0.95
    config.data.name = spurious.DATASET_NAME
    config.data.options = ml_collections.ConfigDict(
        {
            "antialias": 1,
            "agreement": agreement,
            "train_size": 4800,
            "validation_size": 1000,
            "test_size": 2000,
            "split_seed": 0,
            # The target and the shortcut (data/spurious.py): any two factors
            # with an even number of values, e.g. label_factor='scale'.
            "label_factor": "shape",
            "attribute_factor": "floor_hue",
        }
    )
    # Episodes come from the training split: the label-attribute correlation
    # of balanced binary variables agreeing with probability p is 2p - 1.
    config.data.correlation = 2 * agreement - 1
    config.data.task_support = "fixed"
    config.data.num_relevant = 2

    configs.set_image_ground_truth(config, num_features=10)

    # Transfer evaluation and the baselines (sparse_shared_jax/transfer.py).
    config.transfer = configs.transfer_config(
        alphas=(0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7)
    )
    return configs.apply_arguments(config, argument)
