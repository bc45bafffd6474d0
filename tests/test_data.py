"""Tests of the data pipeline: every source type, the hash split, the token cache, the train stream and val windows."""

from __future__ import annotations

import json
import os
import re

import numpy as np
import pytest
import torch

import autoresearch.harness.data as datamod
from autoresearch.errors import DataError
from autoresearch.harness.data import (
    TokenData,
    TrainStream,
    load_token_data,
    read_documents,
    split_documents,
    val_windows,
)
from autoresearch.harness.tokenizer import EOT, ByteTokenizer
from autoresearch.testbeds.common.config import DataConfig


def docs(n: int = 80) -> list[str]:
    return [f"# document {i}\n" + "".join(f"line {j} of doc {i}: value = {i * j} ✓\n" for j in range(20)) for i in range(n)]


def cfg(tmp_path, source, **kw) -> DataConfig:
    base = dict(source=str(source), tokenizer="byte", val_fraction=0.2, cache_dir=str(tmp_path / "cache"))
    base.update(kw)
    return DataConfig(**base)


def check_token_data(d: TokenData) -> None:
    assert d.train.dtype == np.uint16 and isinstance(d.train, np.memmap)
    assert len(d.train) == d.meta["n_train_tokens"] > 0 and len(d.val) == d.meta["n_val_tokens"] > 0
    eot = d.tokenizer.eot_id
    assert d.train[-1] == eot and d.val[-1] == eot
    # bits per byte uses token_bytes: it must add up to the text bytes of each split
    assert int(d.token_bytes[d.train].sum()) == d.meta["train_bytes"]
    assert int(d.token_bytes[d.val].sum()) == d.meta["val_bytes"]


def test_jsonl_source(tmp_path):
    p = tmp_path / "c.jsonl"
    p.write_text("\n".join(json.dumps({"body": d, "id": i}) for i, d in enumerate(docs())) + "\n\n")
    d = load_token_data(cfg(tmp_path, p, text_field="body"))
    check_token_data(d)
    assert d.meta["n_docs"] == 80 and d.meta["kind"] == "jsonl"
    with pytest.raises(DataError, match=r"c.jsonl:1 has no field `data.text_field`='text'.*keys: body, id"):
        load_token_data(cfg(tmp_path, p))


def test_text_file_source_splits_on_eot_or_paragraphs(tmp_path):
    p = tmp_path / "book.txt"
    p.write_text(EOT.join(docs(30)))
    assert read_documents(str(p)) == docs(30)
    q = tmp_path / "plain.txt"
    paras = [f"paragraph {i} " + "word " * 300 for i in range(100)]
    q.write_text("\n\n".join(paras))
    got = read_documents(str(q))
    assert "\n\n".join(got) == "\n\n".join(paras)
    assert 10 < len(got) < 100 and all(len(g) >= datamod._CHUNK for g in got[:-1])
    check_token_data(load_token_data(cfg(tmp_path, q)))
    capped = read_documents(str(q), max_corpus_mb=0.05)
    assert sum(len(c) + 2 for c in capped) <= 50_000 + 2 and capped[0] == got[0]


def test_directory_source_recursive_sorted_skipping_binary_and_hidden(tmp_path):
    root = tmp_path / "corpus"
    for i, d in enumerate(docs(40)):
        sub = root / f"part{i % 3}"
        sub.mkdir(parents=True, exist_ok=True)
        (sub / f"f{i:02d}.txt").write_text(d)
    (root / "blob.dat").write_bytes(b"\x00\x01binary")
    (root / ".hidden").mkdir()
    (root / ".hidden" / "secret.txt").write_text("hidden text")
    (root / "empty.txt").write_text("   \n")
    got = read_documents(str(root))
    assert len(got) == 40 and "hidden text" not in got
    assert got[0] == docs(40)[0] and got[1] == docs(40)[3]  # part0/f00, part0/f03, ...: sorted by path
    d = load_token_data(cfg(tmp_path, root))
    check_token_data(d)
    assert d.meta["kind"] == "dir"


def test_directory_cap_takes_a_deterministic_spread_sample(tmp_path):
    root = tmp_path / "corpus"
    root.mkdir()
    for i, d in enumerate(docs(100)):
        (root / f"f{i:03d}.txt").write_text(d)
    size = len(docs(1)[0].encode())
    a = read_documents(str(root), max_corpus_mb=30 * size / 1e6)
    assert 25 <= len(a) <= 31 and a == read_documents(str(root), max_corpus_mb=30 * size / 1e6)
    idx = [docs(100).index(x) for x in a]
    assert idx == sorted(idx) and idx[-1] > 50  # path order kept, not just the first 30 files


def test_stdlib_source_is_python_without_tests(tmp_path):
    d = load_token_data(cfg(tmp_path, "stdlib", max_corpus_mb=0.3, val_fraction=0.3))
    check_token_data(d)
    assert 0.3e6 <= d.meta["corpus_bytes"] < 0.3e6 + 500_000
    text = d.tokenizer.decode(d.train[:20000].tolist())
    assert "def " in text or "import " in text
    files = datamod._stdlib_files()[1]
    assert files and all(f.suffix == ".py" for f in files)
    assert not any({"site-packages", "test", "tests"} & set(f.parts) for f in files)


def _write_shards(folder, train, val, meta: dict | None):
    folder.mkdir()
    np.asarray(train, dtype="<u2").tofile(folder / "data_train_000.bin")
    if val is not None:
        np.asarray(val, dtype="<u2").tofile(folder / "data_val_000.bin")
    if meta is not None:
        (folder / "meta.json").write_text(json.dumps(meta))


def test_pretokenized_shards_with_sidecar(tmp_path):
    rng = np.random.default_rng(0)
    tr, va = rng.integers(0, 256, 5000), rng.integers(0, 256, 700)
    _write_shards(tmp_path / "sh", tr, va, {"dtype": "uint16", "tokenizer": "byte"})
    d = load_token_data(cfg(tmp_path, tmp_path / "sh", tokenizer="bpe"))
    assert np.array_equal(d.train, tr) and np.array_equal(d.val, va)
    assert isinstance(d.tokenizer, ByteTokenizer) and d.meta["kind"] == "shards"
    assert d.meta["val_bytes"] == 700


def test_pretokenized_llmc_header_and_eot_split(tmp_path):
    folder = tmp_path / "llmc"
    folder.mkdir()
    rng = np.random.default_rng(1)
    stream = np.concatenate([np.append(rng.integers(0, 256, 50), 256) for _ in range(200)])
    header = np.zeros(256, dtype="<i4")
    header[:3] = [20240520, 1, len(stream)]
    with open(folder / "shard_000.bin", "wb") as fh:
        fh.write(header.tobytes())
        fh.write(stream.astype("<u2").tobytes())
    d = load_token_data(cfg(tmp_path, folder, tokenizer="byte", val_fraction=0.25))
    assert len(d.train) + len(d.val) == len(stream)
    assert 0.1 < len(d.val) / len(stream) < 0.4 and d.val[-1] == 256 and d.train[-1] == 256
    assert len(d.val) % 51 == 0  # whole documents


def test_pretokenized_errors(tmp_path):
    _write_shards(tmp_path / "nometa", np.arange(100), np.arange(50), None)
    with pytest.raises(DataError, match="name no tokenizer.*meta.json"):
        load_token_data(cfg(tmp_path, tmp_path / "nometa", tokenizer="bpe"))
    with pytest.raises(DataError, match="no llm.c header.*dtype"):
        load_token_data(cfg(tmp_path, tmp_path / "nometa", tokenizer="byte"))
    _write_shards(tmp_path / "big", np.arange(1000), np.arange(50), {"dtype": "uint16", "tokenizer": "byte"})
    with pytest.raises(DataError, match="token id 999 >= tokenizer vocab_size 257"):
        load_token_data(cfg(tmp_path, tmp_path / "big", tokenizer="bpe"))


def test_hf_source_from_local_dataset(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_dict({"content": docs(50)})
    ds.save_to_disk(str(tmp_path / "ds"))
    d = load_token_data(cfg(tmp_path, f"hf:{tmp_path / 'ds'}", text_field="content"))
    check_token_data(d)
    assert d.meta["n_docs"] == 50


def test_hf_source_without_datasets_says_how_to_install(tmp_path, monkeypatch):
    import builtins

    real = builtins.__import__

    def fake(name, *a, **k):
        if name == "datasets":
            raise ImportError("no datasets")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(DataError, match=r"pip install 'autoresearch\[hf\]'"):
        read_documents("hf:some/dataset")


def test_bpe_tokenizer_through_the_pipeline(tmp_path):
    p = tmp_path / "c.jsonl"
    p.write_text("\n".join(json.dumps({"text": d}) for d in docs()))
    d = load_token_data(cfg(tmp_path, p, tokenizer="bpe", vocab_size=300))
    check_token_data(d)
    assert d.meta["vocab_size"] <= 300 and d.meta["bytes_per_token"] > 1.5
    assert d.tokenizer.decode(d.val.tolist()).count(EOT) == d.meta["n_val_docs"]
    tok_path = tmp_path / "tok.json"
    d.tokenizer.save(tok_path)
    d2 = load_token_data(cfg(tmp_path, p, tokenizer=str(tok_path)))
    assert np.array_equal(d2.train, d.train) and d2.meta["tokenizer_hash"] == d.meta["tokenizer_hash"]


def test_split_by_document_hash_is_deterministic_and_order_free():
    many = [f"doc number {i}" for i in range(4000)]
    tr, va = split_documents(many, 0.1)
    assert 300 < len(va) < 500 and len(tr) + len(va) == 4000
    tr2, va2 = split_documents(list(reversed(many)), 0.1)
    assert set(va2) == set(va) and set(tr2) == set(tr)
    assert set(split_documents(many, 0.2)[1]) >= set(va)  # a larger fraction only adds documents
    dup_tr, dup_va = split_documents(many + many, 0.1)
    assert not set(dup_tr) & set(dup_va)


def test_cache_is_reused_and_invalidated_by_changes(tmp_path, monkeypatch):
    p = tmp_path / "c.jsonl"
    p.write_text("\n".join(json.dumps({"text": d}) for d in docs()))
    first = load_token_data(cfg(tmp_path, p))
    real_build = datamod._build
    calls = []
    monkeypatch.setattr(datamod, "_build", lambda *a: calls.append(1) or real_build(*a))
    again = load_token_data(cfg(tmp_path, p))
    assert not calls and np.array_equal(again.train, first.train) and again.meta["cache_dir"] == first.meta["cache_dir"]
    assert again.meta["cached"] and not first.meta["cached"]
    load_token_data(cfg(tmp_path, p, val_fraction=0.3))
    assert len(calls) == 1
    p.write_text("\n".join(json.dumps({"text": d + "!"}) for d in docs()))
    os.utime(p, ns=(1, 1))
    changed = load_token_data(cfg(tmp_path, p))
    assert len(calls) == 2 and changed.meta["corpus_hash"] != first.meta["corpus_hash"]


def test_env_cache_dir(tmp_path, monkeypatch):
    p = tmp_path / "c.jsonl"
    p.write_text("\n".join(json.dumps({"text": d}) for d in docs()))
    monkeypatch.setenv("AUTORESEARCH_CACHE", str(tmp_path / "envcache"))
    d = load_token_data(DataConfig(source=str(p), tokenizer="byte", val_fraction=0.2))
    assert d.meta["cache_dir"].startswith(str(tmp_path / "envcache"))


@pytest.mark.parametrize("where", ["_tokenize", "atomic_write_text"])
def test_crash_mid_preparation_leaves_no_usable_cache(tmp_path, monkeypatch, where):
    p = tmp_path / "c.jsonl"
    p.write_text("\n".join(json.dumps({"text": d}) for d in docs()))
    real = getattr(datamod, where)
    state = {"n": 0}

    def crash(*a, **k):
        state["n"] += 1
        if where == "atomic_write_text" or state["n"] == 2:  # after train.bin/val.bin are written, or mid-tokenizing
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(datamod, where, crash)
    with pytest.raises(KeyboardInterrupt):
        load_token_data(cfg(tmp_path, p))
    assert state["n"] >= 1
    tokens_dir = tmp_path / "cache" / "tokens"
    assert not [x for x in tokens_dir.iterdir() if x.is_dir()]  # neither a final nor a temporary folder
    monkeypatch.setattr(datamod, where, real)
    check_token_data(load_token_data(cfg(tmp_path, p)))


def test_source_errors_name_field_value_and_fix(tmp_path):
    with pytest.raises(DataError, match=r"`data.source` path does not exist, got '.*nope'; use stdlib"):
        load_token_data(cfg(tmp_path, tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "a.txt").write_text("\n\n")
    with pytest.raises(DataError, match="gave no non-empty documents"):
        load_token_data(cfg(tmp_path, tmp_path / "empty"))
    one = tmp_path / "one.jsonl"
    one.write_text(json.dumps({"text": "only one doc"}))
    with pytest.raises(DataError, match=r"`data.val_fraction`=0.2 split 1 documents \(1 chunks of <= 8 KiB, 12 bytes\) "
                                        r"into 1 train / 0 val; no val_fraction < 0.5 splits this text: add more text"):
        load_token_data(cfg(tmp_path, one))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "ok"}\n{broken\n')
    with pytest.raises(DataError, match="bad.jsonl:2 is not valid JSON"):
        load_token_data(cfg(tmp_path, bad))


def test_train_stream_windows_are_shifted_pairs_without_replacement():
    tokens = np.arange(1000, dtype=np.uint16)
    s = TrainStream(tokens, batch_size=4, seq_len=10, seed=0)
    assert s.n_windows == 99
    starts = []
    for _ in range(24):  # 96 of the 99 windows of epoch 0
        x, y = s.next_batch()
        assert x.dtype == torch.int64 and x.shape == (4, 10)
        assert torch.equal(x[:, 1:], y[:, :-1]) and torch.equal(y[:, -1], x[:, -1] + 1)
        starts += x[:, 0].tolist()
    assert len(set(starts)) == len(starts)  # no window repeats within an epoch
    assert len({st % 10 for st in starts}) == 1  # one offset per epoch
    other = TrainStream(tokens, 4, 10, seed=1)
    assert not torch.equal(other.next_batch()[0], TrainStream(tokens, 4, 10, seed=0).next_batch()[0])


def test_train_stream_resumes_exactly_across_epochs():
    tokens = np.random.default_rng(0).integers(0, 500, 3000).astype(np.uint16)
    ref = TrainStream(tokens, 8, 32, seed=7)
    want = [ref.next_batch() for _ in range(40)]  # 40*8 = 320 samples > 92 windows: several epochs
    a = TrainStream(tokens, 8, 32, seed=7)
    for _ in range(13):
        a.next_batch()
    state = json.loads(json.dumps(a.state_dict()))  # survives a JSON round trip (checkpoint metadata)
    b = TrainStream(tokens, 8, 32, seed=7)
    b.load_state_dict(state)
    for k in range(13, 40):
        x, y = b.next_batch()
        assert torch.equal(x, want[k][0]) and torch.equal(y, want[k][1])
    with pytest.raises(DataError, match="batch_size=8 but this stream has batch_size=4"):
        TrainStream(tokens, 4, 32, seed=7).load_state_dict(state)


def test_train_stream_too_short():
    with pytest.raises(DataError, match="train split has 30 tokens, fewer than 2\\*seq_len=32"):
        TrainStream(np.arange(30), 2, 16, 0)


def test_val_windows_pinned_hashed_and_checked():
    tokens = np.random.default_rng(0).integers(0, 300, 5000).astype(np.uint16)
    v = val_windows(tokens, n_batches=3, batch_size=4, seq_len=64)
    assert len(v.batches) == 3 and v.n_tokens == 3 * 4 * 64
    starts = [int(np.flatnonzero((tokens[:-64] == x[0].item()) & (tokens[1:-63] == x[1].item()))[0])
              for b in v.batches for x in b[0]]
    assert starts[0] == 0 and all(b - a >= 65 for a, b in zip(starts, starts[1:], strict=False))
    assert starts[-1] + 65 > 5000 - 65 * 2  # spread to the end of the split
    for x, y in v.batches:
        assert x.shape == y.shape == (4, 64) and torch.equal(x[:, 1:], y[:, :-1])
    again = val_windows(tokens.astype(np.uint32), 3, 4, 64)
    assert again.hash == v.hash  # independent of the storage dtype
    changed = tokens.copy()
    changed[0] += 1
    assert val_windows(changed, 3, 4, 64).hash != v.hash
    with pytest.raises(DataError, match=r"val split has 5000 tokens but 20 batches x 4 x 65 need 5200; use "
                                        r"eval.val_batches <= 19"):
        val_windows(tokens, 20, 4, 64)


# --- long documents: cut at line ends; a split that cannot work says what does -------------------------------------


def _records(n_bytes: int) -> str:
    """One record per line, no blank line (a CSV/log-like corpus): the issue's 334 KB file."""
    lines, size, i = [], 0, 0
    while size < n_bytes:
        line = f"{i},user{i * 7919 % 1000},{(i * 31) % 97}.{i % 10},ok,record number {i} of the export\n"
        lines.append(line)
        size += len(line)
        i += 1
    return "".join(lines)


def test_one_record_per_line_file_is_cut_into_chunks_at_line_ends(tmp_path):
    text = _records(334_000)
    p = tmp_path / "records.csv"
    p.write_text(text)
    got = read_documents(str(p))
    assert "".join(got) == text  # no byte lost or added
    assert len(got) == 41  # ~8 KiB each (was 1 document: every val_fraction failed)
    assert all(g.endswith("\n") for g in got) and all(len(g) < datamod._CHUNK + 100 for g in got)
    assert got == read_documents(str(p))  # deterministic
    ok = 0
    for vf in (0.05, 0.1, 0.2, 0.3, 0.45):
        try:
            d = load_token_data(cfg(tmp_path, p, val_fraction=vf))
        except DataError as e:  # only when the fraction is too small for ~41 chunks; then its advice must work
            fix = float(re.search(r"use data.val_fraction=([0-9.]+)", str(e)).group(1))
            d = load_token_data(cfg(tmp_path, p, val_fraction=fix))
        else:
            ok += 1
        check_token_data(d)
        assert d.meta["corpus_bytes"] == len(text.encode()) == p.stat().st_size  # val_bpb divides by disk bytes
    assert ok == 5  # with this content every fraction tried works; the except branch guards other content


def test_long_paragraphs_next_to_short_ones():
    body = _records(20_000).rstrip("\n")
    got = datamod._split_text("intro paragraph\n\n" + body + "\n\nclosing words")
    assert got[0] == "intro paragraph" and got[-1] == "closing words" and len(got) >= 5
    assert "".join(got[1:-1]) == body
    assert datamod._chunks("x" * 20_000) == ["x" * 8192, "x" * 8192, "x" * 3616]  # a single huge line: hard cuts


def test_few_large_documents_fall_back_to_chunks(tmp_path):
    root = tmp_path / "two_files"
    root.mkdir()
    (root / "a.txt").write_text(_records(60_000))
    (root / "b.txt").write_text(_records(70_000).upper())
    sizes = sum(f.stat().st_size for f in root.iterdir())
    assert not all(split_documents(read_documents(str(root)), 0.1))  # as whole files: no split at 0.1
    d = load_token_data(cfg(tmp_path, root, val_fraction=0.1))
    check_token_data(d)
    assert d.meta["chunked"] and d.meta["n_docs"] == 2 and d.meta["corpus_bytes"] == sizes


def test_split_error_gives_a_val_fraction_that_works(tmp_path):
    seen = {"fix": 0, "more text": 0}
    for i in range(40):
        p = tmp_path / f"few{i}.jsonl"
        p.write_text("\n".join(json.dumps({"text": f"doc {i}-{j} " * 20}) for j in range(2)))
        try:
            load_token_data(cfg(tmp_path, p, val_fraction=0.01))
            continue
        except DataError as e:
            msg = str(e)
        assert "\n" not in msg and "split 2 documents" in msg
        m = re.search(r"use data.val_fraction=([0-9.]+) ", msg)
        if m:
            seen["fix"] += 1
            d = load_token_data(cfg(tmp_path, p, val_fraction=float(m.group(1))))  # the advice works
            assert d.meta["n_train_docs"] == d.meta["n_val_docs"] == 1
        else:
            seen["more text"] += 1
            assert "no val_fraction < 0.5 splits this text: add more text" in msg
            for vf in (0.05, 0.2, 0.3, 0.49):  # and it is true: nothing works
                with pytest.raises(DataError):
                    load_token_data(cfg(tmp_path, p, val_fraction=vf))
    assert seen["fix"] and seen["more text"]


# --- encodings and binary input: never replaced silently -------------------------------------------------------------


def _latin1_corpus() -> bytes:
    return ("".join(f"Ligne {i}: café, crème brûlée et façade {i}.\n" for i in range(3000))).encode("latin-1")


def test_latin1_text_file_stops_with_path_offset_and_iconv(tmp_path):
    raw = _latin1_corpus()
    p = tmp_path / "fr.txt"
    p.write_bytes(raw)
    first = next(i for i, b in enumerate(raw) if b >= 0x80)
    with pytest.raises(DataError) as e:
        load_token_data(cfg(tmp_path, p))
    msg = str(e.value)
    assert msg == (f"{p} is not UTF-8: byte 0x{raw[first]:02x} at offset {first} (line 1); convert it, e.g. "
                   f"`iconv -f latin1 -t utf-8 {p} > {p}.utf8`, and use that file")
    fixed = tmp_path / "fr.utf8.txt"
    fixed.write_bytes(raw.decode("latin-1").encode("utf-8"))  # what the iconv advice produces
    d = load_token_data(cfg(tmp_path, fixed))
    check_token_data(d)
    assert d.meta["corpus_bytes"] == fixed.stat().st_size


def test_non_utf8_in_folder_and_jsonl_is_refused_with_offset(tmp_path):
    root = tmp_path / "mixed"
    root.mkdir()
    (root / "a.txt").write_text(docs(1)[0])
    (root / "b.txt").write_bytes(b"fine line\nna\xefve\n")
    with pytest.raises(DataError, match=r"mixed/b.txt is not UTF-8: byte 0xef at offset 12 \(line 2\); convert it"):
        load_token_data(cfg(tmp_path, root))
    j = tmp_path / "l1.jsonl"
    j.write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"l1.jsonl:2 is not UTF-8: byte 0xe9 at offset 28; convert the file, e.g. "
                                        r"`iconv -f latin1"):
        load_token_data(cfg(tmp_path, j))


def test_jsonl_text_that_is_not_a_string_or_has_a_lone_surrogate(tmp_path):
    j = tmp_path / "n.jsonl"
    j.write_text('{"text": "ok"}\n{"text": null}\n')
    with pytest.raises(DataError, match=r"n.jsonl:2 field 'text' is null, not a string"):
        read_documents(str(j))
    s = tmp_path / "s.jsonl"
    s.write_text('{"text": "ok"}\n{"text": "bad \\ud800 half"}\n')
    with pytest.raises(DataError, match=r"s.jsonl:2 field 'text' holds an unpaired surrogate escape at character 4"):
        read_documents(str(s))


def test_binary_source_is_refused(tmp_path):
    rng = np.random.default_rng(0)
    blob = tmp_path / "random.bin.txt"
    blob.write_bytes(rng.integers(0, 256, 3_000_000, dtype=np.uint8).tobytes())  # the 3 MB of random bytes
    with pytest.raises(DataError, match=r"`data.source` '.*random.bin.txt' is not text \(a NUL byte at offset \d+\); "
                                        r"point it at a UTF-8 text file"):
        load_token_data(cfg(tmp_path, blob))
    no_nul = tmp_path / "random_no_nul.txt"
    no_nul.write_bytes(rng.integers(1, 256, 200_000, dtype=np.uint8).tobytes())
    with pytest.raises(DataError, match=r"is not text \(1[01]% control bytes in its first 65536 bytes\)"):
        load_token_data(cfg(tmp_path, no_nul))
    utf16 = tmp_path / "u16.txt"
    utf16.write_bytes("some text\n".encode("utf-16"))
    with pytest.raises(DataError, match=r"is not text .*iconv -f utf-16 -t utf-8"):
        read_documents(str(utf16))
    only_binary = tmp_path / "bins"
    only_binary.mkdir()
    (only_binary / "x.dat").write_bytes(blob.read_bytes()[:5000])
    with pytest.raises(DataError, match=r"gave no non-empty documents \(1 binary file\(s\) skipped\)"):
        load_token_data(cfg(tmp_path, only_binary))
    j = tmp_path / "random.jsonl"
    j.write_bytes(blob.read_bytes()[:5000])
    with pytest.raises(DataError):
        load_token_data(cfg(tmp_path, j))


def test_text_with_escape_sequences_and_tabs_is_text(tmp_path):
    p = tmp_path / "log.txt"
    p.write_text("".join(f"\x1b[32mINFO\x1b[0m\tstep {i}\r\n" for i in range(2000)))
    assert "".join(read_documents(str(p))) == p.read_bytes().decode()


def test_cap_cut_inside_a_multibyte_character(tmp_path):
    p = tmp_path / "one_line.txt"
    p.write_text("é" * 30_000)  # 60 KB, no newline: the cap cuts inside a 2-byte character
    got = read_documents(str(p), max_corpus_mb=0.010001)
    assert "".join(got) == "é" * 5000


def test_hf_rows_that_are_not_text_are_refused(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"content": ["fine text", None]}).save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(DataError, match=r"row 1 of 'hf:.*ds' has 'content' = None, not a string"):
        read_documents(f"hf:{tmp_path / 'ds'}", text_field="content")


def test_preload_opens_a_built_cache_once_and_never_builds_one(micro_cfg, tmp_path, monkeypatch):
    """Warm trial workers (research/warm_pool.py) preload tokens + tokenizer once; trials forked later reuse them."""
    from dataclasses import replace

    from autoresearch.harness import data as data_mod

    monkeypatch.setattr(data_mod, "_PRELOADED", {})  # this process's memo, not shared with other tests
    empty = replace(micro_cfg.data, cache_dir=str(tmp_path / "empty"))
    assert data_mod.preload(empty) is False and not (tmp_path / "empty" / "tokens").exists()  # never builds
    first = data_mod.load_token_data(micro_cfg.data)
    assert "preloaded" not in first.meta
    assert data_mod.preload(micro_cfg.data) is True
    again = data_mod.load_token_data(micro_cfg.data)
    assert again.meta["preloaded"] and again.meta["cached"] and again.meta["n_train_tokens"] == first.meta["n_train_tokens"]
    assert again.tokenizer is data_mod.load_token_data(micro_cfg.data).tokenizer  # opened once, shared
    assert (again.train[:100] == first.train[:100]).all()
