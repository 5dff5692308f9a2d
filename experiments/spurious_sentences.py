"""The generated text benchmark: sentences with known factors and a spurious token.

Sentences of a small grammar (sparse_shared_jax/data/sentences.py) whose six
factors are known: subject, tense, object (two per topic), negation, the
sentiment (four negative, four positive meanings; "not" flips the written
adjective, so "was not terrible" is positive) and the ending ("." or "!").
The target is the sentence's sentiment, which needs two words (the negation
and the adjective); the spurious attribute is the ending, one token, "!"
going with a positive sentence on 99% of the 4,800 training sentences (24
in each minority group) and independent of it on the validation and test
splits. (With the target the written adjective's polarity, one token as
easy as the ending, ERM scores 1.000 on every group: see
results/spurious_sentences.md.) A small pre-LayerNorm BERT-style encoder is
trained from scratch on the grammar's own WordPiece vocabulary,
meta-trained on episodes of the training split's sentences with binary
tasks on two random factors each, so the identifiability metrics (DCI, MIG,
MCC on uniformly drawn factors) apply to text too; then the transfer
evaluation and its baselines run as in experiments/spurious_shapes3d.py.

    python -m sparse_shared_jax.main --config=experiments/spurious_sentences.py \
        --workdir=workdirs/spurious_sentences

The config argument (after ':') is as in sparse_shared_jax/configs.py.
"""

import ml_collections

from sparse_shared_jax import configs
from sparse_shared_jax.data import sentences

AGREEMENT = 0.99


def get_config(argument: str | None = None) -> ml_collections.ConfigDict:
    """The config; `argument` as in configs.apply_arguments."""
    config = configs.base_config()
    config.num_train_steps = 600
    config.log_every_steps = 50
    config.eval_every_steps = 200
    config.checkpoint.every_steps = 200

    config.data.name = "spurious_sentences"
    config.data.options = ml_collections.ConfigDict(
        {
            "agreement": AGREEMENT,
            "train_size": 4800,
            "validation_size": 1000,
            "test_size": 2000,
            "split_seed": 0,
            "label_factor": "sentiment",
            "attribute_factor": "ending",
            # '' = the grammar's own vocabulary; a BERT vocab.txt that covers
            # the grammar also works (set model.options' vocab_size, pad_id
            # and sep_id to its own).
            "vocab_path": "",
            "max_length": sentences.DEFAULT_MAX_LENGTH,
            # The fifth factor is the sentence's sentiment, which "not" flips
            # the written adjective of: no single token gives the target
            # away, where the ending "!" does (see data/sentences.py).
            "negation_flips": True,
        }
    )
    # The training split's label-attribute correlation, 2 p - 1.
    config.data.correlation = 2 * AGREEMENT - 1
    config.data.task_support = "fixed"
    config.data.num_relevant = 2

    vocabulary = sentences.grammar_vocabulary()
    config.model.name = "bert"
    config.model.num_features = 10
    config.model.options = ml_collections.ConfigDict(
        {
            "vocab_size": len(vocabulary),
            "max_length": sentences.DEFAULT_MAX_LENGTH,
            "pad_id": vocabulary["[PAD]"],
            "sep_id": vocabulary["[SEP]"],
            "hidden_size": 64,
            "num_layers": 2,
            "num_heads": 4,
            "intermediate_size": 128,
            "pooling": "mean",
            "pre_layer_norm": True,
        }
    )
    config.episode.num_tasks = 10
    config.episode.support_size = 32
    config.episode.query_size = 16

    config.transfer = configs.transfer_config(
        alphas=(0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7)
    )
    # The baselines see as many sentences as the 600 meta-training steps do
    # (as in experiments/spurious_scale.py).
    config.transfer.erm_steps = 4500
    config.transfer.group_dro = True
    return configs.apply_arguments(config, argument)
