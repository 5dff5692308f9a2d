"""The config every experiment starts from, and config-string arguments.

Experiment files in experiments/ call `base_config()`, set what differs and
pass the config argument (the text after ':' in
``--config=experiments/shapes3d.py:ARG``) to `apply_arguments`. ARG is a
comma-separated list of

* an ablation of docs/method.md: ``full`` (default), ``sparse_only``,
  ``share_only`` or ``erm``;
* ``rho=<float>``: correlation between every pair of training factors;
* ``share_variant=<usage|per_feature|count>``: the sharing regulariser;
* ``share_placement=<outer|inner>``: where the sharing term sits;
* ``share_weight=<float>``: lambda_share;
* ``alpha=<float>``: the sparsity weight (fraction of lambda_max);
* ``seed=<int>``: the run's seed;
* ``steps=<int>``: num_train_steps (e.g. the long setting of
  experiments/shapes3d.py, ``:steps=5000``);
* ``<section>.<field>=<value>``: any other config field, e.g.
  ``share.warmup_steps=200`` (the value is read as the field's type; a
  tuple as values separated by ``;``). This is what sweeps over a field use
  (``python -m sparse_shared_jax.sweep --grid=...``).

For example ``experiments/shapes3d.py:erm,rho=0.5,seed=2``.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
from collections.abc import Callable

import ml_collections

from sparse_shared_jax import inner
from sparse_shared_jax.errors import ConfigError, DataError

ABLATIONS = ("full", "sparse_only", "share_only", "erm")


def base_config() -> ml_collections.ConfigDict:
    """Every config field, with defaults for the fast vector dataset."""
    config = ml_collections.ConfigDict()
    # What is trained on what (sparse_shared_jax/trainers): 'ground_truth'
    # here, 'benchmark' for configs.benchmark_config.
    config.trainer = "ground_truth"
    config.seed = 0  # parameters, episodes and evaluation all derive from it
    config.num_train_steps = 1500
    config.log_every_steps = 100  # console + TensorBoard scalars
    config.eval_every_steps = 500  # disentanglement metrics during training

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
    # 'mlp', 'conv', 'resnet18', 'resnet50' or 'bert' (models.ENCODERS)
    config.model.name = "mlp"
    config.model.num_features = 10  # k
    # Architecture options passed to the encoder: hidden_sizes for 'mlp';
    # channels and hidden_size for 'conv'; width, norm, ... for the ResNets and
    # num_layers, hidden_size, pooling, ... for 'bert' (see models/).
    config.model.options = ml_collections.ConfigDict({"hidden_sizes": (256, 256)})
    # Start a new run from pretrained encoder weights ('' = random init): a
    # file in pretrained_format: 'flax' (models.pretrained.save_variables), or
    # an .npz of 'torchvision_resnet' or 'hf_bert' parameters (see
    # models/pretrained.py).
    config.model.pretrained_path = ""
    config.model.pretrained_format = "flax"

    # Episodes: T tasks, each with its own support and query set.
    config.episode = ml_collections.ConfigDict()
    config.episode.num_tasks = 16  # T
    config.episode.support_size = 64  # n_s
    config.episode.query_size = 64  # n_q

    # The inner sparse-head problem. The solver's settings and their defaults
    # are inner.InnerSettings' (one definition, see inner.py).
    solver = inner.DEFAULTS
    config.inner = ml_collections.ConfigDict()
    config.inner.alpha = 0.3  # lam_t = alpha * lambda_max_t (relative mode)
    config.inner.lambda_mode = "relative"  # 'relative' or 'absolute'
    config.inner.penalty = solver.penalty  # 'group_lasso' or 'l1'
    config.inner.ridge = solver.ridge
    config.inner.maxiter = solver.maxiter
    config.inner.tol = solver.tol
    config.inner.differentiation = solver.differentiation  # 'implicit'/'unrolled'
    # Implicit-diff linear solve: "active_cg" (CG on the optimality conditions
    # of the active features; measured equal to "gmres" to 1e-14 in float64 and
    # faster, see results/benchmark_cpu.md), "gmres", "bicgstab" or "normal_cg".
    config.inner.linear_solve = solver.linear_solve
    config.inner.linear_solve_tol = solver.linear_solve_tol
    config.inner.normalization = "episode"  # feature standardisation: 'episode'/'none'

    # The feature-sharing regulariser.
    config.share = ml_collections.ConfigDict()
    # lambda_share. Chosen with the variant by the vector data's sweep
    # (results/sharing_nonlinear_mixing.md): the 'count' term at 0.03 removes
    # redundant features at rho <= 0.5; every weight that does so collapses
    # features at rho = 0.9, and it collapsed the image experiments, which
    # override it (see the README).
    config.share.weight = 0.03
    # 'count' (a smooth count of the features used), 'usage' (entropy of the
    # average usage) or 'per_feature'; see losses.sharing_regularizer.
    config.share.variant = "count"
    config.share.temperature = 0.5  # 'count' only: when a feature counts as rare
    # The weight rises linearly from 0 over this many steps ('outer' placement).
    config.share.warmup_steps = 0
    # Project the sharing gradient so that it never raises a task's query
    # loss (bilevel.outer_value_and_grad; 'outer' placement).
    config.share.projected = False
    config.share.placement = "outer"  # 'outer' or 'inner'
    # Usage smoothing, 'inner' placement only. Measured: 1e-2 did not converge in
    # 300 float32 iterations (optimality error 1.6, NaN implicit gradient); 0.1
    # converged in 219.
    config.share.smoothing = 0.1

    # The outer optimiser.
    config.outer = ml_collections.ConfigDict()
    config.outer.optimizer = "adam"  # 'adam' or 'adamw'
    config.outer.learning_rate = 1e-3
    config.outer.weight_decay = 0.0  # 'adamw' only

    # Evaluation on uniformly sampled factors (see evaluate.Protocol).
    config.eval = ml_collections.ConfigDict()
    # During training: observations encoded for fast metrics (random-forest
    # DCI, logged as rf_dci_*; an 80/20 split).
    config.eval.num_samples = 5000
    # The final evaluation, disentanglement_lib's protocol: points the metrics
    # are fit on and scored on, and the DCI importance model ('gbt' as in
    # disentanglement_lib, or the faster 'random_forest').
    config.eval.final_num_train = 10_000
    config.eval.final_num_test = 5_000
    config.eval.final_dci_regressor = "gbt"
    # BetaVAE and FactorVAE scores: training and evaluation points, each a
    # batch of 64 factor combinations (0 skips both scores).
    config.eval.intervention_num_train = 10_000
    config.eval.intervention_num_eval = 5_000

    # Devices: the episode is split over all devices along tasks (and examples
    # when T has fewer factors in common with the device count); see parallel.py.
    config.parallel = ml_collections.ConfigDict()
    # 'replicated' parameters and optimiser state, or 'fsdp' (large arrays split
    # over all devices, for encoders too big to replicate).
    config.parallel.param_sharding = "replicated"

    # The training episodes' input pipeline (input_pipeline.py): worker
    # processes that render or read the next episodes while the device
    # computes a step (0: read in the main process, between steps), and the
    # episodes each worker keeps ready. Any value gives the same episodes.
    config.input = ml_collections.ConfigDict()
    config.input.workers = 0
    config.input.buffer_size = 2

    # Orbax checkpoints under <workdir>/checkpoints.
    config.checkpoint = ml_collections.ConfigDict()
    config.checkpoint.every_steps = 500  # also saved at the end
    config.checkpoint.max_to_keep = 3
    return config


def set_image_ground_truth(
    config: ml_collections.ConfigDict, num_features: int
) -> None:
    """Sets what the rendered-image experiments share (in place).

    A conv encoder with `num_features` features, episodes of 10 tasks with
    32 support and 16 query examples, the sharing term measured on these
    images, and the final evaluation's sizes for image data.
    """
    config.model.name = "conv"
    config.model.num_features = num_features
    config.model.options = ml_collections.ConfigDict()

    config.episode.num_tasks = 10
    config.episode.support_size = 32
    config.episode.query_size = 16

    # The sharing term measured on the default scenes (experiments/
    # shapes3d.py). The vector data's 'count' at 0.03 (base_config) collapsed
    # the tasks there (seed 0, 600 steps: 1.6 features per task, 4 distinct
    # features for 6 factors, MCC 0.43); 'usage' at 0.01 did not.
    config.share.variant = "usage"
    config.share.weight = 0.01

    config.eval.num_samples = 3000
    # BetaVAE/FactorVAE on 200 + 100 points (disentanglement_lib: 10,000 +
    # 5,000): each point renders and encodes a batch of 64-128 images, about
    # 90 s here instead of 50 min on 2 CPU cores.
    config.eval.intervention_num_train = 200
    config.eval.intervention_num_eval = 100


def benchmark_config(name: str) -> ml_collections.ConfigDict:
    """The config of meta-training on a real benchmark's labels, then transfer.

    The sections model, episode, inner, share, outer, parallel, input and
    checkpoint are those of `base_config()`; `data` names the benchmark and the label
    fields tasks are built from (see data/meta_tasks.py), `eval` the
    meta-validation episodes and `transfer` the sparse target head and its
    baselines (transfer_config; trainers/benchmark.py).

    Args:
      name: the benchmark and its TFDS builder config, e.g. 'celeba/64px'.
    """
    base = base_config()
    config = ml_collections.ConfigDict()
    config.trainer = "benchmark"
    config.seed = 0
    config.num_train_steps = 2000
    config.log_every_steps = 50
    config.eval_every_steps = 500  # meta-validation episodes

    config.data = ml_collections.ConfigDict()
    config.data.name = name  # a benchmark of data.benchmarks.BENCHMARKS[/config]
    config.data.data_dir = ""  # TFDS data directory ('' = TFDS's default)
    config.data.manual_dir = ""  # the hand download ('' = <data_dir>/downloads/manual)
    # Label fields tasks are built from ('' entries not allowed; empty = the
    # benchmark's meta labels).
    config.data.task_fields = ()
    config.data.allow_label_tasks = False  # may tasks use the target 'label'?
    config.data.allow_attribute_tasks = False  # ... or the evaluation 'attribute'?
    config.data.label_type = "binary"  # 'binary' (value pairs) or 'multiclass'
    config.data.num_classes = 2  # classes per task, 'multiclass' only
    # Text benchmarks: the BERT vocab.txt, the token length, lowercasing.
    config.data.vocab_path = ""
    config.data.max_length = 128
    config.data.lowercase = True

    for section in ("model", "episode", "inner", "share", "outer", "parallel"):
        config[section] = base[section]
    config.model.name = "resnet18"
    config.model.num_features = 32
    config.model.options = ml_collections.ConfigDict()

    # Meta-validation: query accuracy of tasks drawn from the validation split.
    config.eval = ml_collections.ConfigDict()
    config.eval.num_episodes = 4

    config.transfer = transfer_config(alphas=(0.0, 0.01, 0.03, 0.1, 0.3))
    config.transfer.erm_steps = 2000

    config.checkpoint = base.checkpoint
    config.input = base.input
    return config


def transfer_config(alphas) -> ml_collections.ConfigDict:
    """The `transfer` section: a sparse head for a target on the frozen encoder,
    and its baselines (transfer.evaluate_transfer, trainers/erm.py).

    Args:
      alphas: the penalties (fractions of lambda_max) of the sparse head and
        of last-layer retraining, each chosen on the validation split.
    """
    section = ml_collections.ConfigDict()
    section.alphas = tuple(alphas)
    # Examples encoded per split (a fixed random subset; 0 = the whole split).
    section.max_examples = 0
    # The heads' solver: config.inner's settings with this iteration cap and
    # tolerance (a head is solved once, so more accurately than in training).
    section.head_maxiter = 3000
    section.head_tol = 1e-6
    # The ERM baseline: the same encoder trained on the target label by Adam
    # (0 steps = no ERM baseline; a softmax head for more than two classes).
    section.erm_steps = 1500
    section.erm_batch_size = 64
    section.erm_learning_rate = 1e-3
    # Early stopping of the baselines: their worst-group accuracy on the
    # validation split every this many steps; the best step's model is the
    # baseline (0 = the last step's).
    section.erm_eval_every_steps = 100
    # Group DRO (Sagawa et al. 2020), the reference that trains with the
    # group labels: the ERM settings above, group-balanced minibatches, and
    # the group weights' ascent step (their value, 0.01).
    section.group_dro = False
    section.dro_step_size = 0.01
    return section


def apply_ablation(config: ml_collections.ConfigDict, ablation: str) -> None:
    """Switches off sparsity and/or sharing for an ablation (in place)."""
    if ablation not in ABLATIONS:
        raise ConfigError(f"Unknown ablation {ablation!r}; choose one of {ABLATIONS}.")
    if ablation in ("share_only", "erm"):
        config.inner.alpha = 0.0
    if ablation in ("sparse_only", "erm"):
        config.share.weight = 0.0


def apply_arguments(
    config: ml_collections.ConfigDict, argument: str | None
) -> ml_collections.ConfigDict:
    """Applies a config-string argument such as ``'erm,rho=0.5,seed=2'``.

    Raises:
      ValueError: naming the token that is not understood.
    """
    for token in (argument or "").split(","):
        token = token.strip()
        if not token:
            continue
        if "=" not in token:
            apply_ablation(config, token)
            continue
        key, value = (part.strip() for part in token.split("=", 1))
        if key == "rho":
            if "correlation" not in config.data:
                raise ConfigError(
                    f"rho= in {argument!r}: this experiment's data has no factor "
                    "correlation (real benchmarks)."
                )
            config.data.correlation = float(value)
        elif key == "share_variant":
            config.share.variant = value
        elif key == "share_placement":
            config.share.placement = value
        elif key == "share_weight":
            config.share.weight = float(value)
        elif key == "alpha":
            config.inner.alpha = float(value)
        elif key == "seed":
            config.seed = int(value)
        elif key == "steps":
            config.num_train_steps = int(value)
        elif "." in key:
            set_field(config, key, value)
        else:
            raise ConfigError(
                f"Unknown config argument {key!r} in {argument!r}; use an ablation "
                f"{ABLATIONS}, rho=, share_variant=, share_placement=, "
                "share_weight=, alpha=, seed=, steps= or <section>.<field>=<value>."
            )
    return config


def set_field(config: ml_collections.ConfigDict, path: str, text: str) -> None:
    """Sets the dotted config field `path` from `text`, read as its type.

    Raises:
      ValueError: naming the field if it does not exist or `text` is not a
        value of its type.
    """
    *sections, name = path.split(".")
    parent = config
    for section in sections:
        if section not in parent or not isinstance(
            parent[section], ml_collections.ConfigDict
        ):
            raise ConfigError(f"No config section {section!r} in {path!r}.")
        parent = parent[section]
    if name not in parent:
        raise ConfigError(
            f"No config field {path!r}{did_you_mean(path, field_paths(config))}."
        )
    current = parent[name]
    try:
        if isinstance(current, bool):
            if text.lower() not in ("true", "false"):
                raise ValueError(text)
            value = text.lower() == "true"
        elif isinstance(current, tuple | list):
            kind = type(current[0]) if current else str
            value = tuple(kind(part) for part in text.split(";") if part)
        elif isinstance(current, int | float | str):
            value = type(current)(text)
        else:
            raise ValueError(text)
    except ValueError:
        raise ConfigError(
            f"config.{path}={text!r}: expected a value of type "
            f"{type(current).__name__}."
        ) from None
    parent[name] = value


def load_experiment(path: str) -> Callable[[str | None], ml_collections.ConfigDict]:
    """The get_config function of an experiment file (experiments/*.py).

    Raises:
      FileNotFoundError: if there is no file at `path`.
    """
    if not os.path.exists(path):
        raise DataError(f"No experiment config file at {path!r}.")
    spec = importlib.util.spec_from_file_location("experiment", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config


def field_paths(config: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
    """Every field of `config` as a dotted path, e.g. 'inner.alpha'."""
    paths = []
    for key, value in config.items():
        if isinstance(value, ml_collections.ConfigDict):
            paths += field_paths(value, f"{prefix}{key}.")
        else:
            paths.append(f"{prefix}{key}")
    return paths


def did_you_mean(path: str, paths: list[str]) -> str:
    """ " (did you mean X?)" for the closest of `paths` to `path`, or ''."""
    close = difflib.get_close_matches(path, paths, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
