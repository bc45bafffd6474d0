"""The append-only ledger: karpathy-style results.tsv + ledger.jsonl, idempotent keys, crash repair, locked appends."""

from __future__ import annotations

import json
import multiprocessing as mp

from autoresearch.research.ledger import Ledger, tsv_columns


def _trial(key: str, **kw) -> dict:
    rec = {"key": key, "kind": "trial", "commit": "abc1234", "arm": "swiglu", "description": "SwiGLU MLP",
           "status": "ok", "metric": 4.9123456789, "memory_gb": 0.61, "seed": 2, "delta": 0.0123}
    rec.update(kw)
    return rec


def _rows(ledger: Ledger) -> list[list[str]]:
    return [ln.split("\t") for ln in ledger.tsv.read_text().splitlines()]


def test_tsv_columns_follow_karpathy_plus_seed_delta_verdict(tmp_path):
    led = Ledger(tmp_path, "val_loss")
    assert led.append(_trial("trial:a"))
    rows = _rows(led)
    assert rows[0] == ["commit", "val_loss", "memory_gb", "status", "description", "seed", "delta", "verdict"]
    assert rows[0] == tsv_columns("val_loss")
    assert rows[1] == ["abc1234", "4.912346", "0.6", "ok", "swiglu: SwiGLU MLP", "2", "+0.012300", ""]


def test_crash_rows_show_zero_like_karpathy_and_keep_the_error(tmp_path):
    led = Ledger(tmp_path, "val_bpb")
    led.append(_trial("trial:b", status="crashed", metric=None, error="RuntimeError: boom\tbad", delta=None))
    row = _rows(led)[1]
    assert row[1] == "0.000000" and row[2] == "0.0" and row[3] == "crashed"
    assert "RuntimeError: boom bad" in row[4]  # tabs never break the columns
    assert len(row) == 8


def test_verdict_rows(tmp_path):
    led = Ledger(tmp_path, "val_loss")
    led.append({"key": "verdict:swiglu:n3", "kind": "verdict", "arm": "swiglu", "verdict": "RETEST", "n": 3,
                "mean": -0.004, "idea_mean": 4.95, "reason": "CI contains 0", "commit": "abc1234"})
    row = _rows(led)[1]
    assert row[3] == "retest" and row[5] == "n=3" and row[6] == "-0.004000" and row[7] == "RETEST"


def test_appends_are_idempotent_by_key_and_never_rewrite(tmp_path):
    led = Ledger(tmp_path, "val_loss")
    assert led.append(_trial("trial:a"))
    before = led.jsonl.read_bytes()
    assert not led.append(_trial("trial:a", metric=1.0))  # same key: skipped, first record kept
    assert led.append(_trial("trial:b"))
    after = led.jsonl.read_bytes()
    assert after.startswith(before)  # append-only
    assert [r["key"] for r in led.records()] == ["trial:a", "trial:b"]
    assert len(_rows(led)) == 3


def test_tsv_is_repaired_after_a_crash_between_the_two_writes(tmp_path):
    led = Ledger(tmp_path, "val_loss")
    led.append(_trial("trial:a"))
    # simulate a kill after the JSONL line was written but before the TSV row
    with open(led.jsonl, "a") as f:
        f.write(json.dumps(_trial("trial:b", seed=7)) + "\n")
    assert len(_rows(led)) == 2
    assert not led.append(_trial("trial:b"))  # resume re-appends the same record: no duplicate ...
    rows = _rows(led)
    assert len(rows) == 3 and rows[2][5] == "7"  # ... and the missing TSV row is filled in
    led.append(_trial("trial:c", seed=9))
    assert [r[5] for r in _rows(led)[1:]] == ["2", "7", "9"]


def test_torn_last_line_is_ignored(tmp_path):
    led = Ledger(tmp_path, "val_loss")
    led.append(_trial("trial:a"))
    with open(led.jsonl, "a") as f:
        f.write('{"key": "trial:x", "kin')  # torn write of a killed process
    assert [r["key"] for r in led.records()] == ["trial:a"]


def _writer(path: str, who: int, n: int) -> None:
    led = Ledger(path, "val_loss")
    for i in range(n):
        led.append(_trial(f"trial:{who}:{i}", seed=i, description="x" * 500))


def test_concurrent_processes_neither_interleave_nor_duplicate(tmp_path):
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, 25)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    led = Ledger(tmp_path, "val_loss")
    keys = [r["key"] for r in led.records()]
    assert len(keys) == 100 and len(set(keys)) == 100
    rows = _rows(led)
    assert len(rows) == 101 and all(len(r) == 8 for r in rows)


def _pair(key: str, arm: str, index: int, metric: float, **kw) -> dict:
    return _trial(key, arm=arm, index=index, seed=index, metric=metric, delta=None, trial=f"{arm}-s{index}", **kw)


def test_delta_is_filled_in_when_the_pair_completes_whichever_finished_first(tmp_path):
    for direction, expect in (("lower", "+0.250000"), ("higher", "-0.250000")):
        led = Ledger(tmp_path / direction, "val_loss", direction=direction)
        led.append(_pair("trial:idea-s0:a1", "idea", 0, 2.75))  # the idea trial finishes before its baseline
        assert _rows(led)[1][6] == ""  # no pair yet
        led.append(_pair("trial:baseline-s0:a1", "baseline", 0, 3.0))
        rows = _rows(led)
        assert rows[1][6] == expect and rows[2][6] == ""  # the idea row got its Δ; the baseline has none
        led.append(_pair("trial:idea-s1:a1", "idea", 1, 2.0, status="crashed"))
        assert _rows(led)[3][6] == ""  # a crashed trial has no Δ


def test_a_torn_last_line_is_terminated_before_the_next_append(tmp_path):
    led = Ledger(tmp_path, "val_loss")
    led.append(_trial("trial:a"))
    with open(led.jsonl, "a") as f:
        f.write('{"key": "trial:x", "kin')  # torn write of a killed process
    assert led.append(_trial("trial:b"))
    assert [r["key"] for r in led.records()] == ["trial:a", "trial:b"]  # b is not glued onto the torn line
    assert "line 2 is not a JSON object" in led.problem()  # the torn fragment is reported, not hidden
    assert len(_rows(led)) == 3


def test_a_garbled_middle_line_is_reported_and_results_tsv_is_rebuilt(tmp_path):
    led = Ledger(tmp_path, "val_loss")
    for k in "abc":
        led.append(_trial(f"trial:{k}"))
    lines = led.jsonl.read_text().splitlines(keepends=True)
    led.jsonl.write_text(lines[0] + "\x00garbled\x00\n" + lines[2])
    assert f"{led.jsonl} line 2 is not a JSON object" in led.problem()
    led.tsv.unlink()
    led.rebuild()
    assert len(_rows(led)) == 3  # header + the two readable records; the damage is in problem(), not silent
    led.tsv.write_text("commit\tval_lo")  # torn results.tsv
    led.rebuild()
    assert len(_rows(led)) == 3 and _rows(led)[0] == tsv_columns("val_loss")
