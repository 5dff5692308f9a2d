"""CivilComments-WILDS (toxicity vs identity mentions): meta-train on sub-types.

Tasks: each toxicity sub-type (severe_toxicity, obscene, threat, insult,
identity_attack, sexual_explicit; score >= 0.5) is a binary task. The
identity mentions are never tasks. identity_attack correlates with identity
mentions: drop it with --config.data.task_fields=... for tasks with no link
to the attribute. Transfer: a sparse head for toxic, with WILDS's
worst-group accuracy over its 16 (identity, label) groups
('worst_identity_group') next to the 4 label x any-identity groups.

    python -m sparse_shared_jax.main --config=experiments/civil_comments.py \
        --workdir=workdirs/civil_comments --config.data.data_dir=/data/tfds \
        --config.data.manual_dir=/data/manual/civilcomments \
        --config.data.vocab_path=/models/bert-base-uncased/vocab.txt

Needs the release downloaded by hand (docs/distribution_shift_benchmarks.md)
and a BERT vocab.txt (pretrained weights: docs/backbones.md). A GPU or TPU
is advised.
"""

import ml_collections

from sparse_shared_jax import configs


def get_config(argument: str | None = None) -> ml_collections.ConfigDict:
    """The config; `argument` as in configs.apply_arguments (no rho=)."""
    config = configs.benchmark_config("civil_comments_wilds")
    config.data.max_length = 128
    config.model.name = "bert"
    config.model.num_features = 32
    config.model.options = ml_collections.ConfigDict({"max_length": 128})
    config.outer.learning_rate = 2e-5
    config.episode.num_tasks = 6
    config.episode.support_size = 32
    config.episode.query_size = 32
    return configs.apply_arguments(config, argument)
