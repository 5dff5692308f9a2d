"""Vector observations from 5 factors through a random invertible MLP.

The fastest ground-truth experiment (a couple of minutes on a laptop CPU):

    python -m sparse_shared_jax.main --config=experiments/nonlinear_mixing.py \
        --workdir=/tmp/nonlinear_mixing

The config argument picks an ablation of design/method.md, e.g.
``--config=experiments/nonlinear_mixing.py:erm``:

* ``full`` (default): sparse heads and the feature-sharing regulariser;
* ``sparse_only``: sparse heads, no sharing term (Lachapelle et al., 2023);
* ``share_only``: the sharing term with dense (ridge-only) heads;
* ``erm``: plain multi-task learning, neither sparsity nor sharing.
"""

import ml_collections

VARIANTS = ("full", "sparse_only", "share_only", "erm")


def get_config(variant: str | None = None) -> ml_collections.ConfigDict:
    """Returns the experiment config for `variant` (one of VARIANTS)."""
    variant = variant or "full"
    if variant not in VARIANTS:
        raise ValueError(f"Unknown variant {variant!r}; choose one of {VARIANTS}.")
    config = ml_collections.ConfigDict()
    config.seed = 0
    config.num_train_steps = 1500
    config.log_every_steps = 100

    # Ground-truth data and the task distribution.
    config.data = ml_collections.ConfigDict()
    config.data.name = "nonlinear_mixing"  # any name in data.registered_names()
    # Options passed to data.ground_truth(name, **options).
    config.data.options = ml_collections.ConfigDict(
        {"num_factors": 5, "num_values": 12, "observation_dim": 20, "seed": 0}
    )
    config.data.correlation = 0.0  # rho between every pair of training factors
    config.data.label_type = "binary"  # 'binary', 'multiclass' or 'regression'
    config.data.num_classes = 4  # classes of 'multiclass' tasks (>= 2)
    config.data.task_support = "bernoulli"  # 'bernoulli' or 'fixed'
    config.data.support_prob = 0.5  # factor inclusion probability ('bernoulli')
    config.data.num_relevant = 2  # factors per task ('fixed')
    config.data.snr = 10.0  # signal-to-noise variance ratio ('regression')

    # The shared encoder f_theta(x) in R^k.
    config.model = ml_collections.ConfigDict()
    config.model.name = "mlp"  # 'mlp' or 'conv'
    config.model.num_features = 10  # k
    config.model.hidden_sizes = (256, 256)  # 'mlp' only

    # Episodes: T tasks, each with its own support and query set.
    config.episode = ml_collections.ConfigDict()
    config.episode.num_tasks = 16  # T
    config.episode.support_size = 64  # n_s
    config.episode.query_size = 64  # n_q

    # The inner sparse-head problem (see inner.solve_heads).
    config.inner = ml_collections.ConfigDict()
    config.inner.alpha = 0.3  # lam_t = alpha * lambda_max_t (relative mode)
    config.inner.lambda_mode = "relative"  # 'relative' or 'absolute'
    config.inner.penalty = "group_lasso"  # 'group_lasso' or 'l1'
    config.inner.ridge = 1e-3
    config.inner.maxiter = 300
    config.inner.tol = 1e-5
    config.inner.differentiation = "implicit"  # 'implicit' or 'unrolled'
    config.inner.linear_solve = "gmres"  # 'gmres', 'bicgstab' or 'normal_cg'
    config.inner.linear_solve_tol = 1e-6
    config.inner.normalization = "episode"  # feature standardisation: 'episode'/'none'

    # The feature-sharing regulariser.
    config.share = ml_collections.ConfigDict()
    config.share.weight = 0.01  # lambda_share
    config.share.variant = "usage"  # 'usage' or 'per_feature'
    config.share.placement = "outer"  # 'outer' or 'inner'
    config.share.smoothing = 1e-2  # usage smoothing, 'inner' placement only

    # The outer optimiser.
    config.outer = ml_collections.ConfigDict()
    config.outer.optimizer = "adam"  # 'adam' or 'adamw'
    config.outer.learning_rate = 1e-3
    config.outer.weight_decay = 0.0  # 'adamw' only

    # Final evaluation on uniformly sampled factors.
    config.eval = ml_collections.ConfigDict()
    config.eval.num_samples = 5000  # observations encoded for the metrics

    if variant in ("share_only", "erm"):
        config.inner.alpha = 0.0
    if variant in ("sparse_only", "erm"):
        config.share.weight = 0.0
    return config
