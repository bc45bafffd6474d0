"""Corpus -> tokens: read a source into documents, split train/val by document hash, tokenize once, cache, stream.

Sources (`DataConfig.source`):
    stdlib           the running interpreter's standard library `.py` files (no site-packages, no test folders)
    FILE.jsonl       one JSON object per line; the document is its `text_field`
    FILE             a text file; split into documents on `<|endoftext|>`, else into ~8 KiB runs of paragraphs (a
                     longer paragraph, e.g. one record per line with no blank line, is cut at line ends)
    DIR              every text file under DIR (recursive, sorted by path, hidden and binary files skipped)
    DIR of *.bin     pre-tokenized shards (format below)
    hf:NAME[:CONFIG] a HF `datasets` dataset, split "train", streamed (keyed in the cache by name only), or a
                     `save_to_disk` folder / local .json/.jsonl file given as NAME
At most `max_corpus_mb` MB are read. A folder over the cap keeps a deterministic spread sample of its files (chosen by
hash of the relative path), so the cap does not take only the alphabetically first sub-folders.

Text must be UTF-8: a file that is not (latin-1, UTF-16, ...) stops with its path, byte offset and an `iconv` command,
never silently replaced (the byte counts behind val_bpb must be the bytes on disk); a binary file given as the source
(a NUL byte, or over 5% control bytes) is refused, and one inside a folder is skipped. The stdlib corpus skips any
non-UTF-8 file instead (there is nothing for the user to convert).

Split: a document is in val when the first 8 bytes of sha256(document) / 2**64 < val_fraction, so it does not depend
on document order and duplicates never straddle the split. When whole documents leave train or val empty (a few large
files or records), every document is cut into ~8 KiB chunks at line ends and split again (still by hash, so still
deterministic); when even that fails, the error names a val_fraction that works or says how much text is missing.
Tokens are `doc, EOT, doc, EOT, ...` per split.

Cache: `<cache>/tokens/<key>/{train.bin, val.bin, tokenizer.json, meta.json}`, key = sha256 of (source fingerprint:
resolved path + file names, sizes and mtimes; cap; val_fraction; text_field; tokenizer spec). Token files are raw
little-endian uint16 (vocab <= 65536) or uint32, memory-mapped on load. A folder is built under a temporary name and
renamed into place when complete, under a file lock, so a crash mid-tokenisation never leaves a cache that is used.

Pre-tokenized shard format (a folder of `*.bin`): either llm.c shards (1024-byte header of int32, magic 20240520 ->
uint16 or 20240801 -> uint32, header[2] = token count) or headerless little-endian token ids described by a sidecar
`meta.json` {"dtype": "uint16" | "uint32", "tokenizer": "tokenizer.json" | "byte"} (tokenizer path relative to the
folder; `data.tokenizer=PATH` overrides it). Shards whose name contains `val` form the validation split; without
any, the stream is cut into documents at EOT and split by document hash like text.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shlex
import shutil
import sys
import sysconfig
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autoresearch.errors import DataError
from autoresearch.harness.atomic import CACHE_ELSEWHERE, atomic_write_text, disk_error, file_lock
from autoresearch.harness.settings import cache_root
from autoresearch.harness.tokenizer import EOT, ByteTokenizer, HFTokenizer, Tokenizer, cached_bpe, load_tokenizer

__all__ = [
    "TokenData",
    "ValSet",
    "TrainStream",
    "load_token_data",
    "preload",
    "read_documents",
    "split_documents",
    "val_windows",
]

_FORMAT = 2  # bump when the cache layout or the document rules change (2: long paragraphs cut at lines, strict UTF-8)
_CHUNK = 8192  # target size of a document cut from one long text file
_STDLIB_SKIP = {"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"}
_LLMC_MAGIC = {20240520: np.uint16, 20240801: np.uint32}


# --- results ---------------------------------------------------------------------------------------------------------


@dataclass
class TokenData:
    """Train and val token streams (memory-mapped), their tokenizer, per-token byte lengths and provenance."""

    train: np.ndarray
    val: np.ndarray
    tokenizer: Tokenizer
    token_bytes: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class ValSet:
    """Pinned validation windows: `batches` of (x, y) LongTensors [B, T], their sha256 and the target count."""

    batches: list[tuple[torch.Tensor, torch.Tensor]]
    hash: str
    n_tokens: int


# --- sources -> documents --------------------------------------------------------------------------------------------


def _cap_bytes(max_corpus_mb: float) -> int:
    return int(max_corpus_mb * 1_000_000)


def _stdlib_files() -> tuple[Path, list[Path]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        # pruning in place stops os.walk from descending into site-packages (GBs here) and test suites
        dirnames[:] = sorted(d for d in dirnames if d not in _STDLIB_SKIP and not d.startswith("."))
        files += [Path(dirpath) / f for f in filenames if f.endswith(".py")]
    return root, sorted(files)


def _dir_files(root: Path) -> list[Path]:
    files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
        files += [Path(dirpath) / f for f in filenames if not f.startswith(".")]
    return sorted(files)


def _select(root: Path, files: list[Path], cap: int) -> list[Path]:
    """Files within the byte cap: all if they fit, else a spread sample ordered by hash of the relative path."""
    sizes = {f: f.stat().st_size for f in files}
    if sum(sizes.values()) <= cap:
        return files
    order = sorted(files, key=lambda f: hashlib.sha1(f.relative_to(root).as_posix().encode()).hexdigest())
    kept, total = set(), 0
    for f in order:
        if total >= cap:
            break
        kept.add(f)
        total += sizes[f]
    return [f for f in files if f in kept]


def _fingerprint(paths: list[Path]) -> list[Any]:
    out = []
    for p in paths:
        st = p.stat()
        out.append([str(p), st.st_size, st.st_mtime_ns])
    return out


_CONTROL = bytes(b for b in range(32) if b not in b"\t\n\x0c\r\x1b") + b"\x7f"  # not in text (ESC: coloured logs)


def _binary_reason(raw: bytes) -> str | None:
    """Why `raw` is not text (a NUL byte; > 5% control bytes in its first 64 KiB), or None when it may be text."""
    nul = raw.find(b"\x00")
    if nul >= 0:
        return f"a NUL byte at offset {nul}"
    head = raw[:65536]
    ctrl = len(head) - len(head.translate(None, _CONTROL))
    if head and ctrl > 0.05 * len(head):  # random bytes: 11%; text: ~0
        return f"{ctrl / len(head):.0%} control bytes in its first {len(head)} bytes"
    return None


def _decode(raw: bytes, where: str) -> str:
    """Strict UTF-8, or a one-line DataError naming the file, the byte offset and a conversion command."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        q = shlex.quote(where)
        raise DataError(f"{where} is not UTF-8: byte 0x{raw[e.start]:02x} at offset {e.start} (line {line}); convert "
                        f"it, e.g. `iconv -f latin1 -t utf-8 {q} > {shlex.quote(where + '.utf8')}`, and use that "
                        f"file") from None


def _utf8_prefix(raw: bytes) -> bytes:
    """`raw` without a trailing, incomplete UTF-8 sequence (left by cutting a file at the byte cap)."""
    for back in range(1, min(4, len(raw)) + 1):
        b = raw[-back]
        if b & 0xC0 != 0x80:  # the last lead byte
            need = 1 if b < 0x80 else 2 if b >> 5 == 0b110 else 3 if b >> 4 == 0b1110 else 4
            return raw[:-back] if need > back else raw
    return raw


def _chunks(text: str, size: int = _CHUNK) -> list[str]:
    """`text` cut into pieces of about `size` characters at line ends (a longer line is cut at `size`).

    The pieces concatenate back to `text` exactly, so no byte is lost from the corpus.
    """
    out: list[str] = []
    cur: list[str] = []
    n = 0
    for line in text.splitlines(keepends=True):
        while len(line) > size:
            if cur:
                out.append("".join(cur))
                cur, n = [], 0
            out.append(line[:size])
            line = line[size:]
        cur.append(line)
        n += len(line)
        if n >= size:
            out.append("".join(cur))
            cur, n = [], 0
    if cur:
        out.append("".join(cur))
    return out


def _split_text(text: str) -> list[str]:
    """One long text -> documents: on `<|endoftext|>` when present, else runs of paragraphs of >= ~8 KiB.

    A paragraph longer than that (a file with one record per line and no blank line is one paragraph) is cut into
    ~8 KiB chunks at line ends instead, so it does not become one document that no val_fraction can split.
    """
    if EOT in text:
        return [d for d in text.split(EOT) if d.strip()]
    docs, cur, size = [], [], 0
    for para in text.split("\n\n"):
        if len(para) > _CHUNK:
            if cur:
                docs.append("\n\n".join(cur))
                cur, size = [], 0
            docs.extend(_chunks(para))
            continue
        cur.append(para)
        size += len(para) + 2
        if size >= _CHUNK:
            docs.append("\n\n".join(cur))
            cur, size = [], 0
    if cur:
        docs.append("\n\n".join(cur))
    return [d for d in docs if d.strip()]


def _read_files(files: list[Path], cap: int, *, skip_undecodable: bool = False) -> tuple[list[str], int]:
    """(documents, number of binary files skipped); a non-UTF-8 text file is an error unless `skip_undecodable`."""
    docs, total, skipped = [], 0, 0
    for f in files:
        raw = f.read_bytes()
        if _binary_reason(raw) is not None:
            skipped += 1
            continue
        try:
            text = _decode(raw, str(f))
        except DataError:
            if not skip_undecodable:
                raise
            skipped += 1
            continue
        if text.strip():
            docs.append(text)
            total += len(raw)
        if total >= cap:
            break
    return docs, skipped


def _read_jsonl(path: Path, field_name: str, cap: int) -> list[str]:
    docs, total, offset = [], 0, 0
    with path.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            start, offset = offset, offset + len(line)
            if not line.strip():
                continue
            try:
                row = json.loads(line.decode("utf-8"))
            except UnicodeDecodeError as e:
                q, out = shlex.quote(str(path)), shlex.quote(f"{path}.utf8")
                raise DataError(f"{path}:{n} is not UTF-8: byte 0x{line[e.start]:02x} at offset {start + e.start}; "
                                f"convert the file, e.g. `iconv -f latin1 -t utf-8 {q} > {out}`") from None
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{n} is not valid JSON ({e.msg}); fix the line or remove it") from e
            if not isinstance(row, dict) or field_name not in row:
                keys = ", ".join(row) if isinstance(row, dict) else type(row).__name__
                raise DataError(f"{path}:{n} has no field `data.text_field`={field_name!r} (keys: {keys}); "
                                f"set data.text_field to the text key")
            text = row[field_name]
            if not isinstance(text, str):
                raise DataError(f"{path}:{n} field {field_name!r} is {json.dumps(text)[:40]}, not a string; "
                                f"write the text as a JSON string or drop the line")
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as e:  # a lone surrogate escape such as "\ud800": not text
                raise DataError(f"{path}:{n} field {field_name!r} holds an unpaired surrogate escape at character "
                                f"{e.start}; fix the JSON escape (emoji are written as a pair: \\ud83d\\ude00)") from None
            if text.strip():
                docs.append(text)
                total += len(text.encode("utf-8"))
            if total >= cap:
                break
    return docs


def _read_hf(spec: str, field_name: str, cap: int) -> list[str]:
    try:
        import datasets
    except ImportError as e:
        raise DataError(f"`data.source`={spec!r} needs the `datasets` package; pip install 'autoresearch[hf]'") from e
    name, _, config = spec[3:].partition(":")
    p = Path(name)
    if p.is_dir():
        ds = datasets.load_from_disk(str(p))
    elif p.is_file():
        kind = "json" if p.suffix in (".json", ".jsonl") else p.suffix.lstrip(".")
        ds = datasets.load_dataset(kind, data_files=str(p), split="train")
    else:
        # streaming reads only what the cap needs instead of downloading the whole dataset
        ds = datasets.load_dataset(name, config or None, split="train", streaming=True)
    if isinstance(ds, datasets.DatasetDict):
        if "train" not in ds:
            raise DataError(f"`data.source`={spec!r} has splits {list(ds)}, no 'train'; save the train split")
        ds = ds["train"]
    cols = getattr(ds, "column_names", None)
    if cols is not None and field_name not in cols:
        raise DataError(f"`data.text_field`={field_name!r} is not a column of {spec!r} (columns: {', '.join(cols)}); "
                        f"set data.text_field")
    docs, total = [], 0
    for n, row in enumerate(ds):
        text = row[field_name]
        if not isinstance(text, str):
            raise DataError(f"row {n} of {spec!r} has {field_name!r} = {text!r:.40}, not a string; set data.text_field "
                            f"to a text column")
        if text.strip():
            try:
                total += len(text.encode("utf-8"))
            except UnicodeEncodeError as e:  # not text: it would crash tokenisation later
                raise DataError(f"row {n} of {spec!r} holds an unpaired surrogate at character {e.start}; remove it "
                                f"from the dataset's text") from None
            docs.append(text)
        if total >= cap:
            break
    return docs


def _source_kind(source: str) -> str:
    if source == "stdlib":
        return "stdlib"
    if source.startswith("hf:"):
        return "hf"
    p = Path(source).expanduser()
    if not p.exists():
        raise DataError(f"`data.source` path does not exist, got {source!r}; use stdlib, hf:NAME or an existing "
                        f"file/folder")
    if p.is_file():
        return "jsonl" if p.suffix == ".jsonl" else "text"
    if any(p.glob("*.bin")):
        return "shards"
    return "dir"


def _source_plan(source: str, cap: int) -> tuple[str, list[Any], Any]:
    """(kind, cheap fingerprint for the cache key, what to read) without reading document contents."""
    kind = _source_kind(source)
    if kind == "stdlib":
        root, files = _stdlib_files()
        files = _select(root, files, cap)
        return kind, [sys.version, *_fingerprint(files)], files
    if kind == "hf":
        local = Path(source[3:].partition(":")[0]).expanduser()
        if local.is_dir():
            return kind, [source, *_fingerprint(_dir_files(local))], source
        return kind, [source, *_fingerprint([local])] if local.is_file() else [source], source
    p = Path(source).expanduser().resolve()
    if kind in ("jsonl", "text"):
        return kind, _fingerprint([p]), p
    if kind == "shards":
        files = sorted(p.glob("*.bin"))
        side = [p / "meta.json"] if (p / "meta.json").is_file() else []
        return kind, _fingerprint(files + side), p
    files = _select(p, _dir_files(p), cap)
    return kind, _fingerprint(files), (p, files)


def read_documents(source: str, *, text_field: str = "text", max_corpus_mb: float = 32.0) -> list[str]:
    """The documents of a text source (not pre-tokenized shards), capped at `max_corpus_mb`."""
    return _read_source(source, text_field, _cap_bytes(max_corpus_mb))


def _read_source(source: str, text_field: str, cap: int) -> list[str]:
    kind, _, what = _source_plan(source, cap)
    skipped = 0
    if kind == "stdlib":
        docs, _ = _read_files(what, cap, skip_undecodable=True)
    elif kind == "hf":
        docs = _read_hf(source, text_field, cap)
    elif kind == "jsonl":
        docs = _read_jsonl(what, text_field, cap)
    elif kind == "text":
        with open(what, "rb") as fh:
            raw = fh.read(cap + 1)
        binary = _binary_reason(raw)
        if binary is not None:
            raise DataError(f"`data.source` {str(what)!r} is not text ({binary}); point it at a UTF-8 text file, a "
                            f".jsonl or a folder (UTF-16 text: convert it with `iconv -f utf-16 -t utf-8`)")
        if len(raw) > cap:
            cut = raw.rfind(b"\n", 0, cap) + 1
            raw = raw[:cut] if cut else _utf8_prefix(raw[:cap])
        docs = _split_text(_decode(raw, str(what)))
    elif kind == "dir":
        docs, skipped = _read_files(what[1], cap)
    else:
        raise DataError(f"`data.source`={source!r} is a folder of pre-tokenized .bin shards; use load_token_data")
    if not docs:
        why = f" ({skipped} binary file(s) skipped)" if skipped else ""
        raise DataError(f"`data.source`={source!r} gave no non-empty documents{why}; point it at UTF-8 text files or "
                        f"a .jsonl")
    return docs


def _doc_is_val(data: bytes, val_fraction: float) -> bool:
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "big") < val_fraction * 2.0**64


def split_documents(docs: list[str], val_fraction: float) -> tuple[list[str], list[str]]:
    """(train, val) by document hash: deterministic, order-independent, duplicates stay together."""
    train, val = [], []
    for d in docs:
        (val if _doc_is_val(d.encode("utf-8"), val_fraction) else train).append(d)
    return train, val


def _doc_position(doc: str) -> float:
    """Where a document falls in [0, 1): it is in val for every val_fraction above this."""
    return int.from_bytes(hashlib.sha256(doc.encode("utf-8")).digest()[:8], "big") / 2.0**64


def _split_or_explain(docs: list[str], val_fraction: float) -> tuple[list[str], list[str], bool]:
    """(train, val, chunked): whole documents, else ~8 KiB chunks of them; a DataError with a fix that works."""
    train, val = split_documents(docs, val_fraction)
    if train and val:
        return train, val, False
    chunks = [c for d in docs for c in _chunks(d) if c.strip()]
    train, val = split_documents(chunks, val_fraction)
    if train and val:
        return train, val, True
    pos = sorted(_doc_position(c) for c in chunks)
    size = sum(len(c.encode("utf-8")) for c in chunks)
    what = (f"`data.val_fraction`={val_fraction} split {len(docs)} documents ({len(chunks)} chunks of <= "
            f"{_CHUNK // 1024} KiB, {size} bytes) into {len(train)} train / {len(val)} val")
    lo, hi = pos[0], min(pos[-1], 0.4999)
    # a fraction in (lo, hi] puts the lowest-hashed chunk in val and keeps the highest in train
    fix = next((v for v in (math.floor(lo * 10**d + 1) / 10**d for d in (2, 3, 4, 6, 9)) if lo < v <= hi), None)
    if fix is not None:
        raise DataError(f"{what}; use data.val_fraction={fix:g} (the smallest that leaves both non-empty), or add "
                        f"text")
    raise DataError(f"{what}; no val_fraction < 0.5 splits this text: add more text (another ~{_CHUNK // 1024} KiB "
                    f"chunk or document at least)")


# --- tokenisation and cache ------------------------------------------------------------------------------------------


def _dtype_for(vocab_size: int) -> type[np.unsignedinteger]:
    return np.uint16 if vocab_size <= 2**16 else np.uint32


def _tokenize(tok: Tokenizer, docs: list[str], dtype: type) -> np.ndarray:
    """doc, EOT, doc, EOT, ... as one flat array."""
    if not docs:
        return np.zeros(0, dtype=dtype)
    eot = np.array([tok.eot_id], dtype=dtype)
    if isinstance(tok, ByteTokenizer):
        parts = [tok.encode_array(d).astype(dtype) for d in docs]
    else:
        parts = [np.asarray(ids, dtype=dtype) for ids in tok.encode_batch(docs)]
    return np.concatenate([x for p in parts for x in (p, eot)])


def _tokenizer_spec(cfg: Any) -> tuple[str, Tokenizer | None]:
    """(spec string for the cache key, the tokenizer when it does not depend on the corpus)."""
    if cfg.tokenizer == "byte":
        tok = ByteTokenizer()
        return f"byte:{tok.hash}", tok
    if cfg.tokenizer == "bpe":
        return f"bpe:{cfg.vocab_size}", None
    tok = load_tokenizer(Path(cfg.tokenizer).expanduser())
    return f"file:{tok.hash}", tok


def _sha(parts: list[str]) -> str:
    h = hashlib.sha256()
    for p in parts:
        b = p.encode("utf-8")
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)
    return h.hexdigest()


_PRELOADED: dict[str, TokenData] = {}
"""Cached tokens opened ahead of time by `preload` in this process (a warm trial worker), by cache key."""


def _cache_key(cfg: Any) -> tuple[str, str, Tokenizer | None]:
    """(cache key, source kind, the tokenizer when it does not depend on the corpus) of a DataConfig."""
    kind, fp, _ = _source_plan(cfg.source, _cap_bytes(cfg.max_corpus_mb))
    tok_spec, tok = _tokenizer_spec(cfg)
    key_src = json.dumps([_FORMAT, kind, fp, cfg.max_corpus_mb, cfg.val_fraction, cfg.text_field, tok_spec])
    return hashlib.sha256(key_src.encode()).hexdigest()[:20], kind, tok


def preload(cfg: Any) -> bool:
    """Open the cached tokens and tokenizer of `cfg` (a DataConfig) once in this process, so that `load_token_data`
    here and in every process forked from here (the warm trial workers of research/warm_pool.py) reuses them instead
    of loading them per trial. Never builds a cache: tokenizing starts thread pools, which a process that forks must
    not have. False when the cache does not exist yet (the first trial builds it; a later preload picks it up)."""
    key, _, _ = _cache_key(cfg)
    if key in _PRELOADED:
        return True
    final = cache_root(cfg.cache_dir) / "tokens" / key
    if not (final / "meta.json").is_file():
        return False
    _PRELOADED[key] = _open(final)
    return True


def load_token_data(cfg: Any) -> TokenData:
    """Tokens of `cfg` (a DataConfig), from the cache when present, else read + tokenize + cache them atomically."""
    t0 = time.perf_counter()
    key, kind, tok = _cache_key(cfg)
    root = cache_root(cfg.cache_dir)
    final = root / "tokens" / key
    warm = _PRELOADED.get(key)
    if warm is not None and (final / "meta.json").is_file():  # opened once by this warm worker: reuse it
        meta = {**warm.meta, "cached": True, "preloaded": True, "load_seconds": round(time.perf_counter() - t0, 3)}
        return TokenData(train=warm.train, val=warm.val, tokenizer=warm.tokenizer, token_bytes=warm.token_bytes,
                         meta=meta)
    try:
        with file_lock(root / "tokens" / f"{key}.lock"):  # parallel trials wait for one build instead of racing
            cached = (final / "meta.json").is_file()
            if not cached:
                for stale in final.parent.glob(f".{key}.tmp-*"):  # left by a killed build; we hold the lock
                    shutil.rmtree(stale, ignore_errors=True)
                _build(cfg, kind, final, tok)
            data = _open(final)
    except OSError as e:  # full / read-only / immutable cache disk (`_build` already removed its partial folder)
        if (msg := disk_error(e, root, CACHE_ELSEWHERE)) is None:
            if not str(e.filename or "").startswith(str(root)):
                raise
            raise DataError(f"token cache: cannot use {e.filename} ({e.strerror}); "
                            f"point {CACHE_ELSEWHERE} at a writable folder") from None
        if not (final / "meta.json").is_file():
            raise DataError(f"token cache: {msg}") from None
        cached, data = True, _open(final)  # a read-only cache that already holds these tokens: read it unlocked
    data.meta["cached"] = cached
    data.meta["load_seconds"] = round(time.perf_counter() - t0, 3)
    return data


def _build(cfg: Any, kind: str, final: Path, tok: Tokenizer | None) -> None:
    t0 = time.perf_counter()
    root = cache_root(cfg.cache_dir)
    if kind == "shards":
        train, val, tok, extra = _from_shards(cfg, tok)
    else:
        docs = _read_source(cfg.source, cfg.text_field, _cap_bytes(cfg.max_corpus_mb))
        train_docs, val_docs, chunked = _split_or_explain(docs, cfg.val_fraction)
        train_hash, val_hash = _sha(train_docs), _sha(val_docs)
        if tok is None:
            tok = cached_bpe(train_docs, cfg.vocab_size, train_hash, root)  # BPE sees train text only
        dtype = _dtype_for(tok.vocab_size)
        train, val = _tokenize(tok, train_docs, dtype), _tokenize(tok, val_docs, dtype)
        tr_b = sum(len(d.encode("utf-8")) for d in train_docs)
        va_b = sum(len(d.encode("utf-8")) for d in val_docs)
        extra = {
            "corpus_hash": _sha([train_hash, val_hash]),
            "n_docs": len(docs), "n_train_docs": len(train_docs), "n_val_docs": len(val_docs), "chunked": chunked,
            "corpus_bytes": tr_b + va_b, "train_bytes": tr_b, "val_bytes": va_b,
            "bytes_per_token": round(tr_b / max(1, len(train) - len(train_docs)), 4),
        }
    meta = {
        "format": _FORMAT, "source": cfg.source, "kind": kind, "tokenizer": cfg.tokenizer,
        "tokenizer_name": tok.name, "tokenizer_hash": tok.hash, "vocab_size": tok.vocab_size, "eot_id": tok.eot_id,
        "dtype": np.dtype(train.dtype).name, "n_train_tokens": int(len(train)), "n_val_tokens": int(len(val)),
        "max_corpus_mb": cfg.max_corpus_mb, "val_fraction": cfg.val_fraction, **extra,
        "prep_seconds": round(time.perf_counter() - t0, 3),
    }
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        _write_array(tmp / "train.bin", train)
        _write_array(tmp / "val.bin", val)
        tok.save(tmp / "tokenizer.json")
        atomic_write_text(tmp / "meta.json", json.dumps(meta, indent=1))  # written last: marks the folder complete
        shutil.rmtree(final, ignore_errors=True)  # a stale folder without meta.json from an older crash
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _write_array(path: Path, arr: np.ndarray) -> None:
    with open(path, "wb") as fh:
        # fh.write, not ndarray.tofile: tofile reports a full disk as an OSError without errno
        fh.write(memoryview(np.ascontiguousarray(arr.astype(arr.dtype.newbyteorder("<"), copy=False))).cast("B"))
        fh.flush()
        os.fsync(fh.fileno())  # data on disk before the rename publishes the folder


def _open(folder: Path) -> TokenData:
    meta = json.loads((folder / "meta.json").read_text())
    tok = load_tokenizer(folder / "tokenizer.json")
    if isinstance(tok, HFTokenizer) and meta.get("tokenizer_name"):
        tok.name = meta["tokenizer_name"]

    def mm(name: str) -> np.ndarray:
        path = folder / name
        if path.stat().st_size == 0:
            return np.zeros(0, dtype=meta["dtype"])
        return np.memmap(path, dtype=np.dtype(meta["dtype"]).newbyteorder("<"), mode="r")

    meta["cache_dir"] = str(folder)
    return TokenData(train=mm("train.bin"), val=mm("val.bin"), tokenizer=tok, token_bytes=tok.token_bytes(),
                     meta=meta)


# --- pre-tokenized shards --------------------------------------------------------------------------------------------


def _read_shard(path: Path, dtype: Any, cap_left: int) -> np.ndarray:
    with path.open("rb") as fh:
        head = np.frombuffer(fh.read(1024), dtype="<i4") if path.stat().st_size >= 1024 else np.zeros(0, "<i4")
    if len(head) and int(head[0]) in _LLMC_MAGIC:
        dt = np.dtype(_LLMC_MAGIC[int(head[0])])
        n = min(int(head[2]), cap_left // dt.itemsize)
        return np.fromfile(path, dtype=dt.newbyteorder("<"), count=n, offset=1024)
    if dtype is None:
        raise DataError(f"shard {path} has no llm.c header and {path.parent / 'meta.json'} gives no dtype; write "
                        f'meta.json {{"dtype": "uint16", "tokenizer": "tokenizer.json"}} beside the shards')
    dt = np.dtype(dtype).newbyteorder("<")
    if path.stat().st_size % dt.itemsize:
        raise DataError(f"shard {path} has {path.stat().st_size} bytes, not a multiple of {dt.name}; fix meta.json dtype")
    return np.fromfile(path, dtype=dt, count=cap_left // dt.itemsize)


def _from_shards(cfg: Any, tok: Tokenizer | None) -> tuple[np.ndarray, np.ndarray, Tokenizer, dict[str, Any]]:
    folder = Path(cfg.source).expanduser().resolve()
    side = json.loads((folder / "meta.json").read_text()) if (folder / "meta.json").is_file() else {}
    if tok is None:  # data.tokenizer=bpe (the default) means "use the shards' own tokenizer"
        spec = side.get("tokenizer")
        if not spec:
            raise DataError(f"pre-tokenized shards in {folder} name no tokenizer; add \"tokenizer\": "
                            f"\"tokenizer.json\" to {folder / 'meta.json'} or set data.tokenizer=PATH")
        tok = ByteTokenizer() if spec == "byte" else load_tokenizer(folder / spec)
    cap = _cap_bytes(cfg.max_corpus_mb)
    dtype = side.get("dtype")
    parts: dict[str, list[np.ndarray]] = {"train": [], "val": []}
    used = 0
    for f in sorted(folder.glob("*.bin")):
        if used >= cap:
            break
        arr = _read_shard(f, dtype, cap - used)
        used += arr.nbytes
        parts["val" if "val" in f.name else "train"].append(arr)
    if not parts["train"] and not parts["val"]:
        raise DataError(f"shards in {folder} hold no tokens; write token ids into the .bin files")
    out_dtype = _dtype_for(tok.vocab_size)
    train = np.concatenate(parts["train"]).astype(out_dtype) if parts["train"] else np.zeros(0, out_dtype)
    val = np.concatenate(parts["val"]).astype(out_dtype) if parts["val"] else None
    if val is None:
        train, val = _split_token_stream(train, tok.eot_id, cfg.val_fraction)
    for name, arr in (("train", train), ("val", val)):
        if len(arr) == 0:
            raise DataError(f"pre-tokenized {name} split in {folder} is empty; add a *val*.bin shard or documents "
                            f"separated by EOT id {tok.eot_id}")
        top = int(arr.max())
        if top >= tok.vocab_size:
            raise DataError(f"shard token id {top} >= tokenizer vocab_size {tok.vocab_size} in {folder}; "
                            f"set data.tokenizer to the tokenizer the shards were made with")
    tb = tok.token_bytes()
    return train, val, tok, {
        "corpus_hash": hashlib.sha256(train.tobytes() + val.tobytes()).hexdigest(),
        "corpus_bytes": int(tb[train].sum() + tb[val].sum()),
        "train_bytes": int(tb[train].sum()), "val_bytes": int(tb[val].sum()),
    }


def _split_token_stream(tokens: np.ndarray, eot: int, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    bounds = np.unique(np.concatenate([[0], np.flatnonzero(tokens == eot) + 1, [len(tokens)]]))
    is_val = np.zeros(len(tokens), dtype=bool)
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        if b > a and _doc_is_val(tokens[a:b].astype("<u4").tobytes(), val_fraction):
            is_val[a:b] = True
    return tokens[~is_val], tokens[is_val]


# --- batches ---------------------------------------------------------------------------------------------------------


def _windows(tokens: np.ndarray, starts: np.ndarray, seq_len: int) -> np.ndarray:
    idx = starts[:, None] + np.arange(seq_len + 1)[None, :]
    return np.asarray(tokens[idx], dtype=np.int64)


class TrainStream:
    """Deterministic, resumable (x, y) batches of windows of `seq_len` + 1 tokens drawn without replacement.

    Each epoch cuts the stream into non-overlapping windows at a random offset and visits them in a random order, both
    drawn from `default_rng([seed, epoch])`; batch k is samples k*B .. k*B+B-1 of that endless sequence. So the state
    is just the batch counter, and a resumed stream repeats an uninterrupted one exactly.

    Multi-process training: `batch_size` stays the global batch B and rank r of `world` returns only rows
    r*B/world .. (r+1)*B/world - 1 of each global batch — disjoint slices that together are exactly the batch one
    process would read. The state (the batch counter) is the same on every rank and for any `world`.
    """

    def __init__(self, tokens: np.ndarray, batch_size: int, seq_len: int, seed: int, *, rank: int = 0,
                 world: int = 1) -> None:
        self.tokens, self.batch_size, self.seq_len, self.seed = tokens, int(batch_size), int(seq_len), int(seed)
        if world < 1 or not 0 <= rank < world or self.batch_size % world:
            raise DataError(f"train batch of {batch_size} rows cannot be split over {world} processes (rank {rank}); "
                            f"use a batch_size divisible by the number of processes")
        self.rows = range(rank * self.batch_size // world, (rank + 1) * self.batch_size // world)
        self.n_windows = (len(tokens) - seq_len) // seq_len
        if self.n_windows < 1:
            raise DataError(f"train split has {len(tokens)} tokens, fewer than 2*seq_len={2 * seq_len}; use a "
                            f"larger corpus (data.max_corpus_mb) or a shorter model.seq_len")
        self.step = 0
        self._epoch: tuple[int, int, np.ndarray] | None = None

    def _order(self, epoch: int) -> tuple[int, np.ndarray]:
        if self._epoch is None or self._epoch[0] != epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._epoch = (epoch, int(rng.integers(self.seq_len)), rng.permutation(self.n_windows))
        return self._epoch[1], self._epoch[2]

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        starts = np.empty(len(self.rows), dtype=np.int64)
        for j, b in enumerate(self.rows):
            i = self.step * self.batch_size + b
            offset, perm = self._order(i // self.n_windows)
            starts[j] = offset + perm[i % self.n_windows] * self.seq_len
        self.step += 1
        w = torch.from_numpy(_windows(self.tokens, starts, self.seq_len))
        return w[:, :-1].contiguous(), w[:, 1:].contiguous()

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            yield self.next_batch()

    @property
    def epoch(self) -> float:
        """Fraction of passes over the train windows consumed so far."""
        return self.step * self.batch_size / self.n_windows

    def state_dict(self) -> dict[str, int]:
        return {"step": self.step, "seed": self.seed, "batch_size": self.batch_size, "seq_len": self.seq_len,
                "n_tokens": int(len(self.tokens))}

    def load_state_dict(self, d: dict[str, int]) -> None:
        for k in ("seed", "batch_size", "seq_len", "n_tokens"):
            mine = int(len(self.tokens)) if k == "n_tokens" else getattr(self, k)
            if int(d[k]) != mine:
                raise DataError(f"train stream state was saved with {k}={d[k]} but this stream has {k}={mine}; "
                                f"resume with the same data and train config")
        self.step = int(d["step"])


def val_windows(tokens: np.ndarray, n_batches: int, batch_size: int, seq_len: int) -> ValSet:
    """`n_batches` x `batch_size` non-overlapping windows, evenly spaced over the val split; hashed."""
    n = n_batches * batch_size
    need = n * (seq_len + 1)
    if len(tokens) < need:
        fit = len(tokens) // ((seq_len + 1) * batch_size)
        raise DataError(f"val split has {len(tokens)} tokens but {n_batches} batches x {batch_size} x {seq_len + 1} "
                        f"need {need}; use eval.val_batches <= {fit} or raise data.val_fraction / data.max_corpus_mb")
    stride = (len(tokens) - (seq_len + 1)) // (n - 1) if n > 1 else 0
    w = _windows(tokens, np.arange(n, dtype=np.int64) * stride, seq_len)
    digest = hashlib.sha256(f"{n_batches}x{batch_size}x{seq_len}".encode() + w.astype("<i8").tobytes()).hexdigest()
    t = torch.from_numpy(w)
    batches = [(t[i:i + batch_size, :-1].contiguous(), t[i:i + batch_size, 1:].contiguous())
               for i in range(0, n, batch_size)]
    return ValSet(batches=batches, hash=digest, n_tokens=n * seq_len)
