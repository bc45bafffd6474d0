"""Tokenizers: a small interface, a raw byte tokenizer, and HF `tokenizers` JSON tokenizers (trained or loaded).

Every tokenizer exposes `token_bytes()`, the UTF-8 byte length of each token id, so that bits per byte
(sum of CE nats / ln 2 / sum of token_bytes[targets]) compares models with different vocabularies (STYLE.md §10).
Special tokens count 0 bytes. For byte-level BPE the count is exact: summed over an encoding it equals the text's
UTF-8 length.

A byte-level BPE trained on the corpus is cached on disk keyed by (hash of the training text, vocab size); HF trains
one on 5 MB in about a second (DESIGN.md §3), and training is deterministic, so the cache only saves time.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from autoresearch.errors import DataError
from autoresearch.harness.atomic import CACHE_ELSEWHERE, atomic_write_text, disk_error

__all__ = [
    "Tokenizer",
    "ByteTokenizer",
    "HFTokenizer",
    "EOT",
    "train_bpe",
    "cached_bpe",
    "load_tokenizer",
]

EOT = "<|endoftext|>"
_EOT_CANDIDATES = (EOT, "<|end_of_text|>", "</s>", "<eos>", "<|eos|>", "<|im_end|>", "[SEP]")
_BYTE_FORMAT = "autoresearch-byte-tokenizer"


class Tokenizer(ABC):
    """Text <-> token ids, with the byte length of each token and a stable content hash."""

    name: str = ""
    vocab_size: int
    eot_id: int
    """End-of-text token, written between documents."""

    @abstractmethod
    def encode(self, text: str) -> list[int]:
        """Token ids of `text` (no special tokens added)."""

    @abstractmethod
    def decode(self, ids: Sequence[int]) -> str:
        """Text of `ids`; invalid UTF-8 becomes U+FFFD."""

    @abstractmethod
    def token_bytes(self) -> np.ndarray:
        """int64 array [vocab_size]: UTF-8 bytes each token stands for (0 for special tokens)."""

    @abstractmethod
    def to_json(self) -> str:
        """Serialised form written by `save` and read back by `load_tokenizer`."""

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        """Encode many texts (implementations may parallelise)."""
        return [self.encode(t) for t in texts]

    def save(self, path: str | Path) -> None:
        """Write the tokenizer atomically (a `tokenizer.json` any HF tokenizer can read, or the byte marker)."""
        try:
            atomic_write_text(path, self.to_json())
        except OSError as e:  # a full or read-only cache disk: one line with the fix, not a traceback
            if (msg := disk_error(e, path, CACHE_ELSEWHERE)) is None:
                raise
            raise DataError(msg) from None

    @staticmethod
    def load(path: str | Path) -> Tokenizer:
        """Load a tokenizer saved by `save` or any HF `tokenizer.json`."""
        return load_tokenizer(path)

    @cached_property
    def hash(self) -> str:
        """sha256 of the serialised tokenizer: equal hashes mean identical encodings."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, vocab_size={self.vocab_size}, hash={self.hash[:12]})"


class ByteTokenizer(Tokenizer):
    """Raw UTF-8 bytes 0..255 plus one end-of-text token (id 256): vocab 257, nothing to train."""

    name = "byte"

    def __init__(self) -> None:
        self.vocab_size = 257
        self.eot_id = 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def encode_array(self, text: str) -> np.ndarray:
        """Fast path used by data preparation (no Python list of ints)."""
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8)

    def decode(self, ids: Sequence[int]) -> str:
        return bytes(i for i in ids if 0 <= i < 256).decode("utf-8", errors="replace")

    def token_bytes(self) -> np.ndarray:
        out = np.ones(self.vocab_size, dtype=np.int64)
        out[self.eot_id] = 0
        return out

    def to_json(self) -> str:
        return json.dumps({"type": _BYTE_FORMAT, "vocab_size": 257, "eot_id": 256})


class HFTokenizer(Tokenizer):
    """Wraps a HF `tokenizers.Tokenizer` (our trained byte-level BPE or a user's `tokenizer.json`)."""

    def __init__(self, tok: object, name: str = "hf") -> None:
        self._tok = tok
        self.name = name
        self.vocab_size = int(tok.get_vocab_size(with_added_tokens=True))  # type: ignore[attr-defined]
        eot = next((t for t in _EOT_CANDIDATES if tok.token_to_id(t) is not None), None)  # type: ignore[attr-defined]
        if eot is None:
            raise DataError(
                f"tokenizer {name!r} has no end-of-text token (looked for {', '.join(_EOT_CANDIDATES)}); "
                f"add {EOT!r} as a special token to it or use data.tokenizer=bpe"
            )
        self.eot_id = int(tok.token_to_id(eot))  # type: ignore[attr-defined]

    @classmethod
    def from_file(cls, path: str | Path) -> HFTokenizer:
        from tokenizers import Tokenizer as _HFTok

        try:
            tok = _HFTok.from_file(str(path))
        except Exception as e:  # tokenizers raises a bare Exception on malformed JSON
            raise DataError(f"cannot read tokenizer file {str(path)!r}: {e}; pass a HF tokenizer.json") from e
        return cls(tok, name=Path(path).name)

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False).ids)  # type: ignore[attr-defined]

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        tok = self._tok
        # encode_batch_fast (tokenizers >= 0.20) skips offset tracking, ~2x faster on long documents.
        fn = getattr(tok, "encode_batch_fast", None) or tok.encode_batch  # type: ignore[attr-defined]
        return [e.ids for e in fn(list(texts), add_special_tokens=False)]

    def decode(self, ids: Sequence[int]) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=False)  # type: ignore[attr-defined]

    def token_bytes(self) -> np.ndarray:
        return self._token_bytes.copy()

    @cached_property
    def _token_bytes(self) -> np.ndarray:
        from tokenizers import decoders

        tok = self._tok
        special = {i for i, t in tok.get_added_tokens_decoder().items() if t.special}  # type: ignore[attr-defined]
        byte_level = isinstance(tok.decoder, decoders.ByteLevel)  # type: ignore[attr-defined]
        alphabet = set(_bytes_to_unicode().values())
        out = np.zeros(self.vocab_size, dtype=np.int64)
        for t, i in tok.get_vocab(with_added_tokens=True).items():  # type: ignore[attr-defined]
            if i in special or i >= self.vocab_size:
                continue
            if byte_level and alphabet.issuperset(t):
                out[i] = len(t)  # each char of a byte-level token is exactly one byte
            else:
                out[i] = _approx_token_bytes(t)
        return out

    def to_json(self) -> str:
        return self._json

    @cached_property
    def _json(self) -> str:
        return self._tok.to_str()  # type: ignore[attr-defined]


def _approx_token_bytes(t: str) -> int:
    """Byte length of a non-byte-level token: SentencePiece byte fallback `<0xAB>` is 1, `▁` is a space."""
    if len(t) == 6 and t.startswith("<0x") and t.endswith(">"):
        return 1
    return len(t.replace("\u2581", " ").encode("utf-8"))


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable-character table used by the ByteLevel pre-tokenizer."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs, strict=True)}


def train_bpe(texts: Sequence[str], vocab_size: int) -> HFTokenizer:
    """Train a byte-level BPE (GPT-2 pre-tokenizer regex, all 256 bytes in the alphabet, `<|endoftext|>` = id 0).

    The result may hold fewer than `vocab_size` tokens when the text offers too few merges.
    """
    from tokenizers import Tokenizer as _HFTok
    from tokenizers import decoders, models, pre_tokenizers, trainers

    if vocab_size < 257 + 1:
        raise DataError(f"`data.vocab_size` must be >= 258 for a byte-level BPE, got {vocab_size}; use e.g. 4096")
    tok = _HFTok(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return HFTokenizer(tok, name=f"bpe-{vocab_size}")


def cached_bpe(texts: Sequence[str], vocab_size: int, text_hash: str, cache_dir: str | Path) -> HFTokenizer:
    """`train_bpe` with an on-disk cache keyed by (hash of the training text, vocab size)."""
    path = Path(cache_dir) / "tokenizers" / f"bpe-{vocab_size}-{text_hash[:16]}.json"
    if path.is_file():
        try:
            tok = HFTokenizer.from_file(path)
            tok.name = f"bpe-{vocab_size}"
            return tok
        except DataError:
            pass  # unreadable cache entry: retrain and overwrite it
    tok = train_bpe(texts, vocab_size)
    tok.save(path)
    return tok


def load_tokenizer(path: str | Path) -> Tokenizer:
    """Load a tokenizer written by `Tokenizer.save` or any HF `tokenizer.json`."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"`data.tokenizer` file does not exist, got {str(p)!r}; use bpe, byte or a tokenizer.json path")
    if p.stat().st_size < 4096:  # our byte-tokenizer marker is tiny; HF files are parsed by `tokenizers` itself
        try:
            head = json.loads(p.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DataError(f"tokenizer file {str(p)!r} is not JSON ({e}); pass a HF tokenizer.json") from e
        if isinstance(head, dict) and head.get("type") == _BYTE_FORMAT:
            return ByteTokenizer()
    return HFTokenizer.from_file(p)
