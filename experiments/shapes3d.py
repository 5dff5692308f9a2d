"""The default experiment: 3D-Shapes-style scenes with correlated factors.

64x64x3 images rendered on demand from the six factors of 3D Shapes (floor,
wall and object hue, scale, shape, orientation), every pair of training
factors correlated (Gaussian copula, rho = config.data.correlation);
evaluation samples factors uniformly. A conv encoder with k = 10 features
(more than the 6 factors, so redundant copies of a factor are possible and
the sharing term has something to fix).

    python -m sparse_shared_jax.main --config=experiments/shapes3d.py \
        --workdir=workdirs/shapes3d

Takes 15-31 minutes on an idle 2-core machine (the README's quickstart).
The config argument (after ':') picks an ablation and more, e.g.
``:erm,rho=0.9,seed=1``; see sparse_shared_jax/configs.py.
"""

import ml_collections

from sparse_shared_jax import configs


def get_config(argument: str | None = None) -> ml_collections.ConfigDict:
    """The config; `argument` as in configs.apply_arguments."""
    config = configs.base_config()
    config.num_train_steps = 600
    config.log_every_steps = 50
    config.eval_every_steps = 200
    config.checkpoint.every_steps = 200

    config.data.name = "synthetic_shapes3d"
    config.data.options = ml_collections.ConfigDict({"antialias": 1})
    config.data.correlation = 0.5

    configs.set_image_ground_truth(config, num_features=10)
    return configs.apply_arguments(config, argument)
