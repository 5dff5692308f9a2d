"""MultiNLI (entailment vs negation words): meta-train on genre pairs.

Tasks: a binary task tells two genres apart (the ``genre`` meta label, 10
values in group DRO's splits). The negation attribute is never a task.
Transfer: a sparse three-class (softmax, group-lasso) head for the NLI label,
worst-group accuracy over label x negation (6 groups).

    python -m sparse_shared_jax.main --config=experiments/multinli.py \
        --workdir=workdirs/multinli --config.data.data_dir=/data/tfds \
        --config.data.manual_dir=/data/manual/multinli \
        --config.data.vocab_path=/models/bert-base-uncased/vocab.txt

Needs the release downloaded by hand (docs/distribution_shift_benchmarks.md)
and a BERT vocab.txt; start from bert-base-uncased weights with
--config.model.pretrained_path=bert.npz --config.model.pretrained_format=hf_bert
(docs/backbones.md). A GPU or TPU is advised.
"""

import ml_collections

from sparse_shared_jax import configs


def get_config(argument: str | None = None) -> ml_collections.ConfigDict:
    """The config; `argument` as in configs.apply_arguments (no rho=)."""
    config = configs.benchmark_config("multinli_negation")
    config.data.max_length = 128
    config.model.name = "bert"
    config.model.num_features = 32
    config.model.options = ml_collections.ConfigDict({"max_length": 128})
    config.outer.learning_rate = 2e-5
    config.episode.num_tasks = 8
    config.episode.support_size = 32
    config.episode.query_size = 32
    return configs.apply_arguments(config, argument)
