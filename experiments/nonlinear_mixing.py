"""Vector observations from 5 factors through a random invertible MLP.

The fastest ground-truth experiment (under a minute on a laptop CPU):

    python -m sparse_shared_jax.main --config=experiments/nonlinear_mixing.py \
        --workdir=workdirs/nonlinear_mixing

The config argument (after ':') picks an ablation and more, e.g.
``experiments/nonlinear_mixing.py:erm,rho=0.5,seed=1``; see
sparse_shared_jax/configs.py for the fields and the argument syntax.
"""

import ml_collections

from sparse_shared_jax import configs


def get_config(argument: str | None = None) -> ml_collections.ConfigDict:
    """The config; `argument` as in configs.apply_arguments."""
    return configs.apply_arguments(configs.base_config(), argument)
