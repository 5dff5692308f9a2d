"""Known-answer tests of the WordPiece tokenizer on a tiny vocabulary."""

import numpy as np
import pytest

from sparse_shared_jax.models import tokenizer

VOCAB_LINES = [
    "[PAD]",  # 0
    "[UNK]",  # 1
    "[CLS]",  # 2
    "[SEP]",  # 3
    "[MASK]",  # 4
    "un",  # 5
    "##want",  # 6
    "##ed",  # 7
    "want",  # 8
    "runn",  # 9
    "##ing",  # 10
    ",",  # 11
    "!",  # 12
    "hello",  # 13
    "world",  # 14
    "the",  # 15
    "##aff",  # 16
    "##able",  # 17
    "直",  # 18
    "接",  # 19
    "cafe",  # 20
    "Hello",  # 21
    "a",  # 22
    "##a",  # 23
]


@pytest.fixture
def vocab_file(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("\n".join(VOCAB_LINES) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture
def tok(vocab_file):
    return tokenizer.WordPieceTokenizer.from_vocab_file(vocab_file)


def test_vocab_file_ids_are_line_numbers(vocab_file, tok):
    vocab = tokenizer.load_vocab(vocab_file)
    assert vocab == {token: i for i, token in enumerate(VOCAB_LINES)}
    assert (tok.pad_id, tok.unk_id, tok.cls_id, tok.sep_id) == (0, 1, 2, 3)


def test_lowercase_accents_punctuation_and_wordpieces(tok):
    # Uppercase, an accent on the last letter, a comma glued to the next word.
    assert tok.tokenize("UNwant\u00e9d,running") == [
        "un",
        "##want",
        "##ed",
        ",",
        "runn",
        "##ing",
    ]
    assert tok.tokenize("Hello,World!") == ["hello", ",", "world", "!"]
    assert tok.tokenize("Caf\u00e9") == ["cafe"]
    # A decomposed accent (e + combining acute) is stripped the same way.
    assert tok.tokenize("Cafe\u0301") == ["cafe"]


def test_cased_tokenizer_keeps_case_and_accents(vocab_file):
    cased = tokenizer.WordPieceTokenizer.from_vocab_file(vocab_file, lowercase=False)
    assert cased.tokenize("Hello hello") == ["Hello", "hello"]
    assert cased.tokenize("Caf\u00e9") == ["[UNK]"]  # no accent stripping
    accents_only = tokenizer.WordPieceTokenizer.from_vocab_file(
        vocab_file, lowercase=False, strip_accents=True
    )
    assert accents_only.tokenize("Caf\u00e9 cafe\u0301") == ["[UNK]", "cafe"]


def test_unknown_words_become_one_unk(tok):
    # 'unwantedx' splits into un ##want ##ed but '##x' is missing: one [UNK].
    assert tok.tokenize("unwantedx the") == ["[UNK]", "the"]
    assert tok.tokenize("zebra") == ["[UNK]"]
    # Greedy longest match: 'aaa' -> 'a', '##a', '##a'.
    assert tok.tokenize("aaa") == ["a", "##a", "##a"]


def test_long_words_become_unk(vocab_file):
    tok = tokenizer.WordPieceTokenizer.from_vocab_file(vocab_file, max_chars_per_word=3)
    assert tok.tokenize("aaa aaaa") == ["a", "##a", "##a", "[UNK]"]


def test_whitespace_control_characters_and_cjk(tok):
    assert tok.tokenize(" \tthe\u00a0\n world\x00\u200b ") == ["the", "world"]
    # CJK ideographs are tokens on their own even without spaces.
    assert tok.tokenize("the直接world") == ["the", "直", "接", "world"]


def test_encode_pads_and_masks(tok):
    encoding = tok.encode(["hello world", "the"], max_length=6)
    np.testing.assert_array_equal(
        encoding.ids, [[2, 13, 14, 3, 0, 0], [2, 15, 3, 0, 0, 0]]
    )
    np.testing.assert_array_equal(
        encoding.mask, [[1, 1, 1, 1, 0, 0], [1, 1, 1, 0, 0, 0]]
    )
    assert encoding.ids.dtype == np.int32 and encoding.mask.dtype == np.int32


def test_encode_truncates_single_texts(tok):
    encoding = tok.encode("unwanted running", max_length=5)  # 5 pieces, room for 3
    np.testing.assert_array_equal(encoding.ids, [[2, 5, 6, 7, 3]])
    np.testing.assert_array_equal(encoding.mask, [[1, 1, 1, 1, 1]])


def test_encode_pairs_truncates_the_longer_text_first(tok):
    # 'unwanted running' has 5 pieces, 'hello world' 2; room for 9 - 3 = 6.
    encoding = tok.encode("unwanted running", "hello world", max_length=9)
    np.testing.assert_array_equal(encoding.ids, [[2, 5, 6, 7, 9, 3, 13, 14, 3]])
    # Both longer than half the room (5): the longer text keeps the odd token.
    encoding = tok.encode("unwanted running", "hello world the", max_length=8)
    np.testing.assert_array_equal(encoding.ids, [[2, 5, 6, 7, 3, 13, 14, 3]])
    # Equal lengths: the second text keeps the odd token.
    encoding = tok.encode(["hello world"], ["the the"], max_length=6)
    np.testing.assert_array_equal(encoding.ids, [[2, 13, 3, 15, 15, 3]])
    np.testing.assert_array_equal(encoding.mask, [[1, 1, 1, 1, 1, 1]])


def test_bad_input_is_named(tok):
    with pytest.raises(ValueError, match="lacks the special tokens"):
        tokenizer.WordPieceTokenizer({"[PAD]": 0, "a": 1})
    with pytest.raises(ValueError, match="2 texts but 1 pairs"):
        tok.encode(["a", "a"], ["a"])
    with pytest.raises(ValueError, match="max_length must exceed"):
        tok.encode("a", "a", max_length=3)
