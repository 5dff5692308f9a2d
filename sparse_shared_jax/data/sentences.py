"""Generated sentences with known factors: text for the identifiability metrics.

Every factor combination is one sentence of a small grammar,

    <subject> <thinks|thought> that <object> <is|was> [not] <adjective><.|!>

e.g. "my sister thought that the concert was not wonderful !", with six
factors (their values in the order of the tuples below):

* ``subject`` (8): who speaks;
* ``tense`` (2): present ("thinks ... is") or past ("thought ... was");
* ``object`` (8): what is judged, two per topic (sport, food, travel, music),
  so the topic is ``object // 2``;
* ``negation`` (2): without or with "not";
* ``adjective`` (8): four negative, then four positive words, so the
  adjective's polarity (the sentiment of the word) is its upper half;
* ``ending`` (2): "." or "!", a token that carries no meaning here and so
  makes a clean spurious cue.

With ``negation_flips=True`` the fifth factor is instead ``sentiment`` (8):
what the sentence says, four negative then four positive meanings; the
word written is the meaning's adjective, or under "not" its antonym (the
adjective four places away: "was not terrible" says what "was wonderful"
says). The sentence's sentiment is then a function of two words, the
negation and the adjective, and no single token gives it away.

Observations are the sentences' WordPiece ids, int32 [max_length]
([CLS] words [SEP] [PAD]...), read by the 'bert' encoder
(`models.TextTransformer`). The tokenizer's vocabulary is the grammar's own
(`grammar_vocabulary`: the special tokens, then every word and punctuation
mark of the grammar), or a BERT vocab.txt given by `vocab_path`; a
vocabulary that does not cover the grammar is refused, naming the words it
lacks.

`SpuriousSentences` is the spurious-token benchmark on these sentences
(`data.spurious.SpuriousBenchmark`): by default the target is the
adjective's polarity and the spurious attribute the ending, "!" agreeing
with a positive adjective on 99% of the training split.

data/__init__.py registers ``'sentences'`` and ``'spurious_sentences'``.
"""

from __future__ import annotations

import itertools

import ml_collections
import numpy as np

from sparse_shared_jax.data import spurious
from sparse_shared_jax.data.ground_truth import GroundTruthDataset
from sparse_shared_jax.errors import ConfigError
from sparse_shared_jax.models import tokenizer

SUBJECTS = (
    "the teacher",
    "my sister",
    "the old man",
    "our neighbour",
    "the driver",
    "a tourist",
    "the manager",
    "his friend",
)
TENSES = (("thinks", "is"), ("thought", "was"))
OBJECTS = (
    "the match",
    "the race",
    "the soup",
    "the dinner",
    "the trip",
    "the hotel",
    "the concert",
    "the album",
)
NEGATIONS = ("", "not")
ADJECTIVES = (
    "terrible",
    "awful",
    "boring",
    "dreadful",
    "wonderful",
    "great",
    "delightful",
    "excellent",
)
ENDINGS = (".", "!")
FACTOR_NAMES = ("subject", "tense", "object", "negation", "adjective", "ending")
# The factor names with negation_flips=True (module doc).
FLIPPED_FACTOR_NAMES = FACTOR_NAMES[:4] + ("sentiment",) + FACTOR_NAMES[5:]
FACTOR_SIZES = tuple(
    len(values)
    for values in (SUBJECTS, TENSES, OBJECTS, NEGATIONS, ADJECTIVES, ENDINGS)
)
SPECIAL_TOKENS = (tokenizer.PAD, tokenizer.UNK, tokenizer.CLS, tokenizer.SEP, "[MASK]")
# The longest sentence has 11 words and marks; with [CLS] and [SEP], 13.
DEFAULT_MAX_LENGTH = 16


def sentence(factors: np.ndarray, negation_flips: bool = False) -> str:
    """The sentence of one factor combination: int [6] -> str.

    With `negation_flips`, factor 4 is the sentiment and a negated sentence
    writes its antonym (module doc).
    """
    subject, tense, obj, negation, adjective, ending = (int(f) for f in factors)
    if negation_flips and negation:
        adjective = (adjective + len(ADJECTIVES) // 2) % len(ADJECTIVES)
    verb, copula = TENSES[tense]
    words = [SUBJECTS[subject], verb, "that", OBJECTS[obj], copula]
    words += [NEGATIONS[negation]] if NEGATIONS[negation] else []
    return " ".join(words + [ADJECTIVES[adjective], ENDINGS[ending]])


def all_factors() -> np.ndarray:
    """Every factor combination, in row-major order: int64 [N, 6]."""
    return np.array(list(itertools.product(*map(range, FACTOR_SIZES))), np.int64)


def grammar_words() -> list[str]:
    """Every word and punctuation mark of the grammar, sorted."""
    phrases = (*SUBJECTS, *sum(TENSES, ()), "that", *OBJECTS, "not")
    words = {word for phrase in phrases for word in phrase.split()}
    return sorted(words | set(ADJECTIVES) | set(ENDINGS))


def grammar_vocabulary() -> dict[str, int]:
    """The grammar's WordPiece vocabulary: token -> id, special tokens first
    ([PAD] = 0), then `grammar_words`."""
    return {token: i for i, token in enumerate(SPECIAL_TOKENS + tuple(grammar_words()))}


def check_vocabulary(vocab: dict[str, int], source: str) -> None:
    """Refuses a vocabulary that cannot spell every word of the grammar.

    Raises:
      ValueError: naming the words that become [UNK] and the fix.
    """
    wordpiece = tokenizer.WordPieceTokenizer(vocab)
    missing = [w for w in grammar_words() if tokenizer.UNK in wordpiece.tokenize(w)]
    if missing:
        raise ValueError(
            f"The vocabulary {source} does not cover the grammar of "
            f"data.sentences: {missing} become [UNK]. Use the grammar's own "
            "vocabulary (data.options.vocab_path='') or a vocab.txt that has "
            "these words (or WordPiece pieces that spell them)."
        )


class GeneratedSentences(GroundTruthDataset):
    """Sentences of the grammar above as token ids (module doc).

    Args:
      vocab_path: a BERT-style vocab.txt ('': the grammar's own vocabulary,
        `grammar_vocabulary`).
      max_length: L, the token ids per sentence, special tokens included.
      negation_flips: whether factor 4 is the sentence's sentiment, which
        "not" flips the written adjective of (module doc), rather than the
        written adjective.
    """

    factor_sizes = FACTOR_SIZES

    def __init__(
        self,
        vocab_path: str = "",
        max_length: int = DEFAULT_MAX_LENGTH,
        negation_flips: bool = False,
    ):
        self.factor_names = FLIPPED_FACTOR_NAMES if negation_flips else FACTOR_NAMES
        if vocab_path:
            vocab = tokenizer.load_vocab(vocab_path)
            check_vocabulary(vocab, vocab_path)
        else:
            vocab = grammar_vocabulary()
        self.vocab = vocab
        self.observation_shape = (max_length,)
        self.observation_dtype = np.int32
        wordpiece = tokenizer.WordPieceTokenizer(vocab)
        self.pad_id, self.sep_id = wordpiece.pad_id, wordpiece.sep_id
        texts = [sentence(f, negation_flips) for f in all_factors()]
        longest = max(len(wordpiece.tokenize(text)) for text in texts) + 2
        if max_length < longest:
            raise ValueError(
                f"max_length={max_length} cuts sentences of the grammar, whose "
                f"longest needs {longest} ids with [CLS] and [SEP]; set "
                f"data.options.max_length >= {longest}."
            )
        self._ids = wordpiece.encode(texts, max_length=max_length).ids  # [N, L]
        self._strides = np.cumprod((1,) + FACTOR_SIZES[::-1])[:-1][::-1]  # [6]

    @property
    def vocab_size(self) -> int:
        """Rows the encoder's token embedding needs."""
        return max(self.vocab.values()) + 1

    def check_encoder(self, model: ml_collections.ConfigDict) -> None:
        """Refuses a config.model that cannot read these token ids.

        Raises:
          ConfigError: naming the model option that disagrees with the
            vocabulary, and its value.
        """
        if model.name != "bert":
            raise ConfigError(
                f"config.model.name is {model.name!r}, but the sentences are "
                "token ids; use 'bert' (models.TextTransformer)."
            )
        needed = {
            "vocab_size": self.vocab_size,
            "pad_id": self.pad_id,
            "sep_id": self.sep_id,
        }
        for option, value in needed.items():
            if model.options.get(option) != value:
                raise ConfigError(
                    f"config.model.options.{option} is "
                    f"{model.options.get(option)!r}; the sentences' vocabulary "
                    f"needs {value}. Set it to {value}."
                )
        if model.options.get("max_length", 512) < self.observation_shape[0]:
            raise ConfigError(
                "config.model.options.max_length is "
                f"{model.options.get('max_length')}; the sentences have "
                f"{self.observation_shape[0]} ids. Set it to at least that."
            )

    def observations(self, factors: np.ndarray) -> np.ndarray:
        """Token ids: int [num, 6] -> int32 [num, max_length]."""
        return self._ids[np.asarray(factors, np.int64) @ self._strides]


class SpuriousSentences(spurious.SpuriousBenchmark):
    """`GeneratedSentences` with a biased training split (data.spurious).

    Args:
      vocab_path, max_length, negation_flips: as `GeneratedSentences`'.
      label_factor: the target's factor; by default the fifth factor, i.e.
        the written adjective's polarity, or with negation_flips the
        sentence's sentiment.
      Others as `data.spurious.SpuriousBenchmark`'s; by default the
      attribute is the ending ("!" = 1).
    """

    def __init__(
        self,
        agreement: float = 0.99,
        train_size: int = 4800,
        validation_size: int = 1000,
        test_size: int = 2000,
        split_seed: int = 0,
        label_factor: str | None = None,
        attribute_factor: str = "ending",
        vocab_path: str = "",
        max_length: int = DEFAULT_MAX_LENGTH,
        negation_flips: bool = False,
    ):
        if label_factor is None:
            names = FLIPPED_FACTOR_NAMES if negation_flips else FACTOR_NAMES
            label_factor = names[4]
        super().__init__(
            GeneratedSentences(vocab_path, max_length, negation_flips),
            "spurious_sentences",
            agreement,
            train_size,
            validation_size,
            test_size,
            split_seed,
            label_factor,
            attribute_factor,
        )
