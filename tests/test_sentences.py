"""The generated sentences and their spurious-token benchmark (data/sentences.py)."""

import os

import numpy as np
import pytest
from test_train import EXPERIMENTS_DIR, load_config, shrink

from sparse_shared_jax import data, train
from sparse_shared_jax.data import sentences, spurious
from sparse_shared_jax.models import tokenizer


def test_every_factor_combination_is_its_own_sentence():
    factors = sentences.all_factors()
    assert factors.shape == (int(np.prod(sentences.FACTOR_SIZES)), 6)
    texts = [sentences.sentence(f) for f in factors]
    assert len(set(texts)) == len(texts)
    assert sentences.sentence([1, 1, 6, 1, 4, 1]) == (
        "my sister thought that the concert was not wonderful !"
    )
    assert sentences.sentence([0, 0, 2, 0, 0, 0]) == (
        "the teacher thinks that the soup is terrible ."
    )


def test_with_negation_flips_no_single_token_gives_the_sentiment_away():
    dataset = data.ground_truth("sentences", negation_flips=True)
    assert dataset.factor_names[4] == "sentiment"
    factors = sentences.all_factors()
    texts = [sentences.sentence(f, negation_flips=True) for f in factors]
    assert len(set(texts)) == len(texts)
    # Meaning 0 ("terrible") under "not" writes its antonym.
    assert sentences.sentence([1, 1, 6, 1, 0, 1], negation_flips=True) == (
        "my sister thought that the concert was not wonderful !"
    )
    assert sentences.sentence([1, 1, 6, 0, 0, 1], negation_flips=True) == (
        "my sister thought that the concert was terrible !"
    )
    # Over the whole grammar every token id goes with a positive sentence
    # exactly half the time; the written adjective's polarity and the
    # negation together give it.
    positive = factors[:, 4] >= 4  # [N]
    ids = dataset.observations(factors)  # [N, L]
    for token in np.unique(ids):
        has_token = np.any(ids == token, axis=1)
        if not has_token.all():
            assert positive[has_token].mean() == 0.5, token
    written = np.array([sentences.ADJECTIVES.index(t.split()[-2]) for t in texts])
    np.testing.assert_array_equal(positive, (written >= 4) != (factors[:, 3] == 1))
    spurious_split = data.ground_truth(
        "spurious_sentences", negation_flips=True, label_factor="sentiment"
    ).split("validation")
    np.testing.assert_array_equal(
        spurious_split.labels["label"], spurious_split.factors[:, 4] >= 4
    )


def test_observations_are_the_tokenized_sentences_and_decode_back():
    dataset = data.ground_truth("sentences")
    factors = dataset.sample_factors(50, np.random.default_rng(0))
    ids = dataset.observations(factors)
    assert ids.shape == (50, sentences.DEFAULT_MAX_LENGTH)
    assert ids.dtype == np.int32 == dataset.observation_dtype
    words = {i: t for t, i in dataset.vocab.items()}
    for row, f in zip(ids, factors, strict=True):
        tokens = [words[i] for i in row if i != dataset.pad_id]
        assert tokens[0] == tokenizer.CLS and tokens[-1] == tokenizer.SEP
        assert " ".join(tokens[1:-1]) == sentences.sentence(f)
    # The grammar's vocabulary: every word once, no [UNK] anywhere.
    unknown = dataset.vocab[tokenizer.UNK]
    all_ids = dataset.observations(sentences.all_factors())
    assert not np.any(all_ids == unknown)
    assert dataset.vocab_size == len(sentences.grammar_vocabulary())


def test_a_vocabulary_that_does_not_cover_the_grammar_is_refused(tmp_path):
    vocab = dict(sentences.grammar_vocabulary())
    del vocab["delightful"], vocab["soup"]
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(sorted(vocab, key=vocab.get)) + "\n")
    with pytest.raises(ValueError, match=r"\['delightful', 'soup'\] become \[UNK\]"):
        data.ground_truth("sentences", vocab_path=str(path))
    # A vocabulary that spells a word in WordPiece pieces covers it.
    vocab.update({"delight": len(vocab), "##ful": len(vocab) + 1})
    vocab.update({"so": len(vocab), "##up": len(vocab) + 1})
    path.write_text("\n".join(sorted(vocab, key=vocab.get)) + "\n")
    dataset = data.ground_truth("sentences", vocab_path=str(path), max_length=18)
    assert dataset.vocab_size == len(vocab)
    with pytest.raises(ValueError, match=r"max_length >= 13"):
        data.ground_truth("sentences", max_length=12)


def test_the_spurious_sentences_have_the_requested_groups_and_labels():
    dataset = data.ground_truth("spurious_sentences", train_size=400)
    split = dataset.split("train")
    counts = np.bincount(split.labels["group"], minlength=4)
    np.testing.assert_array_equal(counts, spurious.group_counts(400, 0.99))
    np.testing.assert_array_equal(
        split.labels["label"], (split.factors[:, 4] >= 4).astype(np.int32)
    )  # a positive adjective
    np.testing.assert_array_equal(split.labels["attribute"], split.factors[:, 5])  # "!"
    np.testing.assert_array_equal(split.images, dataset.observations(split.factors))
    test = dataset.split("test")
    np.testing.assert_array_equal(np.bincount(test.labels["group"]), [500] * 4)
    flipped = data.ground_truth("spurious_sentences", negation_flips=True)
    assert flipped.label_factor == "sentiment"  # the default target follows
    with pytest.raises(ValueError, match="agreement must be in"):
        data.ground_truth("spurious_sentences", agreement=1.0)
    with pytest.raises(ValueError, match=r"Unknown factor 'topic'.*'subject'"):
        data.ground_truth("spurious_sentences", label_factor="topic")
    with pytest.raises(ValueError, match="both 'ending'"):
        data.ground_truth("spurious_sentences", label_factor="ending")


def test_an_encoder_that_cannot_read_the_vocabulary_is_refused(tmp_path):
    path = os.path.join(EXPERIMENTS_DIR, "spurious_sentences.py")
    config = shrink(load_config(path))
    config.model.options.vocab_size = 30522
    with pytest.raises(ValueError, match=r"model.options.vocab_size is 30522.*43"):
        train.train_and_evaluate(config, str(tmp_path))
    # The refused config left no record: the fixed one may use the workdir.
    assert not os.path.exists(tmp_path / "config.json")
    config = shrink(load_config(path))
    config.model.name = "conv"
    with pytest.raises(ValueError, match=r"use 'bert'"):
        train.train_and_evaluate(config, str(tmp_path))
