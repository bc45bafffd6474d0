"""Tests of the tokenizers: byte and byte-level BPE round trips, token byte lengths, hashing, caching, loading."""

from __future__ import annotations

import json

import numpy as np
import pytest

import autoresearch.harness.tokenizer as tokmod
from autoresearch.errors import DataError
from autoresearch.harness.tokenizer import (
    EOT,
    ByteTokenizer,
    HFTokenizer,
    Tokenizer,
    cached_bpe,
    load_tokenizer,
    train_bpe,
)

TEXTS = [
    f"def f{i}(x):\n    return x * {i} + len('héllo wörld')  # ünïcode ✓ 😀\n\nclass C{i}:\n    pass\n" for i in range(60)
] + ["The quick brown fox jumps over the lazy dog. " * 5, "日本語のテキスト、そして emoji 🎉🎉."]


@pytest.fixture(scope="module")
def bpe() -> HFTokenizer:
    return train_bpe(TEXTS, 400)


def test_byte_tokenizer_roundtrip_and_bytes(tmp_path):
    tok = ByteTokenizer()
    text = "héllo 😀\n"
    ids = tok.encode(text)
    assert ids == list(text.encode("utf-8")) and tok.decode(ids) == text
    assert tok.vocab_size == 257 and tok.eot_id == 256
    tb = tok.token_bytes()
    assert tb.shape == (257,) and tb[tok.eot_id] == 0 and tb[:256].sum() == 256
    assert tok.decode(ids + [tok.eot_id]) == text  # EOT has no text
    tok.save(tmp_path / "t.json")
    back = Tokenizer.load(tmp_path / "t.json")
    assert isinstance(back, ByteTokenizer) and back.hash == tok.hash


def test_bpe_roundtrip_and_exact_token_bytes(bpe):
    assert 257 < bpe.vocab_size <= 400
    assert bpe.eot_id == 0 and bpe.encode(EOT) == [0]
    tb = bpe.token_bytes()
    assert tb.shape == (bpe.vocab_size,) and tb[bpe.eot_id] == 0 and tb.min() == 0
    for text in TEXTS + ["unseen ✗ ßtring with \t tabs\r\n and ☃", ""]:
        ids = bpe.encode(text)
        assert bpe.decode(ids) == text
        # bits per byte relies on this: the byte lengths of the tokens add up to the text's UTF-8 length
        assert int(tb[ids].sum()) == len(text.encode("utf-8"))
    assert bpe.encode_batch(TEXTS[:3]) == [bpe.encode(t) for t in TEXTS[:3]]
    assert len(bpe.encode(TEXTS[0])) < len(TEXTS[0].encode("utf-8"))  # merges learned


def test_bpe_training_is_deterministic_and_saves(bpe, tmp_path):
    again = train_bpe(TEXTS, 400)
    assert again.hash == bpe.hash
    assert train_bpe(TEXTS[:30], 400).hash != bpe.hash
    bpe.save(tmp_path / "tokenizer.json")
    back = load_tokenizer(tmp_path / "tokenizer.json")
    assert back.hash == bpe.hash and back.eot_id == bpe.eot_id
    assert back.encode(TEXTS[5]) == bpe.encode(TEXTS[5])
    assert np.array_equal(back.token_bytes(), bpe.token_bytes())


def test_cached_bpe_reuses_disk_copy(tmp_path, monkeypatch):
    first = cached_bpe(TEXTS, 300, "abc123", tmp_path)
    assert (tmp_path / "tokenizers" / "bpe-300-abc123.json").is_file()

    def boom(*a, **k):
        raise AssertionError("retrained although cached")

    monkeypatch.setattr(tokmod, "train_bpe", boom)
    second = cached_bpe(TEXTS, 300, "abc123", tmp_path)
    assert second.hash == first.hash and second.name == "bpe-300"
    with pytest.raises(AssertionError, match="retrained"):
        cached_bpe(TEXTS, 300, "other", tmp_path)


def _word_level(tmp_path, specials: list[str]) -> str:
    from tokenizers import Tokenizer as HFTok
    from tokenizers import models, pre_tokenizers

    vocab = {w: i for i, w in enumerate(["[UNK]", "héllo", "world", *specials])}
    t = HFTok(models.WordLevel(vocab, unk_token="[UNK]"))
    t.pre_tokenizer = pre_tokenizers.Whitespace()
    t.add_special_tokens(specials)
    path = tmp_path / "user.json"
    t.save(str(path))
    return str(path)


def test_load_user_tokenizer_json(tmp_path):
    tok = load_tokenizer(_word_level(tmp_path, ["</s>"]))
    assert isinstance(tok, HFTokenizer) and tok.eot_id == 3 and tok.vocab_size == 4
    assert tok.encode("héllo world") == [1, 2]
    assert list(tok.token_bytes()) == [len("[UNK]"), 6, 5, 0]


def test_load_errors_are_one_line_with_fix(tmp_path):
    with pytest.raises(DataError, match="no end-of-text token.*add"):
        load_tokenizer(_word_level(tmp_path, []))
    with pytest.raises(DataError, match="does not exist.*tokenizer.json"):
        load_tokenizer(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("not json")
    with pytest.raises(DataError, match="not JSON"):
        load_tokenizer(tmp_path / "bad.json")
    (tmp_path / "odd.json").write_text(json.dumps({"hello": 1}))
    with pytest.raises(DataError, match="cannot read tokenizer"):
        load_tokenizer(tmp_path / "odd.json")
    with pytest.raises(DataError, match="vocab_size"):
        train_bpe(TEXTS, 100)
