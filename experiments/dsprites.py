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

    config.model.name = "conv"
    config.model.num_features = 8
    config.model.options = ml_collections.ConfigDict()

    config.episode.num_tasks = 10
    config.episode.support_size = 32
    config.episode.query_size = 16

    # The sharing term of experiments/shapes3d.py ('count' at 0.03 collapsed
    # the tasks on those scenes; not measured on these).
    config.share.variant = "usage"
    config.share.weight = 0.01

    config.eval.num_samples = 3000
    # BetaVAE/FactorVAE on 200 + 100 points (disentanglement_lib: 10,000 +
    # 5,000): each point renders and encodes a batch of 64-128 images, about
    # 90 s here instead of 50 min on 2 CPU cores.
    config.eval.intervention_num_train = 200
    config.eval.intervention_num_eval = 100
    return configs.apply_arguments(config, argument)
