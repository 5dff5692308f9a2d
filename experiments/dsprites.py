"""dSprites-style sprites (shape, scale, orientation, x, y) with a conv encoder.

64x64x1 binary images rendered on demand from the five dSprites factors;
k = 8 features.

    python -m sparse_shared_jax.main --config=experiments/dsprites.py \
        --workdir=workdirs/dsprites

The config argument (after ':') picks an ablation and more, e.g.
``:sparse_only,rho=0.5``; see sparse_shared_jax/configs.py.
"""

import ml_collections

from sparse_shared_jax import configs


def get_config(argument: str | None = None) -> ml_collections.ConfigDict:
    """The config; `argument` as in configs.apply_arguments."""
    config = configs.base_config()
    config.num_train_steps = 1000
    config.log_every_steps = 50
    config.eval_every_steps = 250
    config.checkpoint.every_steps = 250

    config.data.name = "synthetic_dsprites"
    config.data.options = ml_collections.ConfigDict()

    configs.set_image_ground_truth(config, num_features=8)
    return configs.apply_arguments(config, argument)
