"""The one sample -> score path (harness/sample_score.py): prompts and stops by the policy, cleaned completions,
files written in order, chat samplers, and what is left on disk when a step fails."""

from __future__ import annotations

import json

import pytest
import yaml

from autoresearch.harness.code_tasks import CodeTask, chat_prompt, load_humaneval
from autoresearch.harness.postprocess import HUMANEVAL_STOP, MBPP_STOP
from autoresearch.harness.sample_score import sample_and_score, sample_completions
from autoresearch.harness.sandbox import SandboxConfig, bwrap_status

SANDBOX = SandboxConfig(workers=1, allow_reduced=not bwrap_status()[0])


class _Recorder:
    """A sampler that answers from a table and records each call's prompts and stop list."""

    def __init__(self, answers: dict[str, list[str]], chat: bool = False) -> None:
        self.answers, self.chat, self.calls = answers, chat, []

    def generate(self, prompts, n=1, temperature=0.8, top_p=0.95, max_tokens=512, stop=None):
        self.calls.append((list(prompts), stop))
        return [self.answers[p][:n] for p in prompts]


def _suite(k: int):
    from autoresearch.testbeds.common.tasks import make_suite

    return make_suite("heldout", k, seed=0)


def test_sample_and_score_writes_samples_results_and_summary(tmp_path):
    tasks = _suite(2)
    ok, bad = tasks
    answers = {ok.prompt: [ok.reference + "\nprint('demo')\n", "    return None\n"],
               bad.prompt: ["    return None\n", "    x = (\n"]}
    s = _Recorder(answers)
    report = sample_and_score(s, tasks, n=2, temperature=0.8, top_p=0.95, max_tokens=16, ks=(1, 2),
                              samples_path=tmp_path / "greedy_samples.jsonl", sandbox=SANDBOX)
    assert [c[1] for c in s.calls] == [list(HUMANEVAL_STOP)]  # the suite continues its prompt: HumanEval's stops
    assert s.calls[0][0] == [t.prompt for t in tasks]
    rows = [json.loads(x) for x in (tmp_path / "greedy_samples.jsonl").read_text().splitlines()]
    assert [r["task_id"] for r in rows] == [ok.task_id] * 2 + [bad.task_id] * 2
    assert rows[0]["raw"].endswith("print('demo')\n") and "print" not in rows[0]["completion"]  # cut, raw kept
    results = tmp_path / "greedy_samples.jsonl_results.jsonl"
    assert [json.loads(x)["passed"] for x in results.read_text().splitlines()] == [True, False, False, False]
    summary = yaml.safe_load((tmp_path / "greedy_samples.jsonl_summary.yaml").read_text())
    assert summary["pass@1"] == report.summary["pass@1"] == 0.25 and summary["pass@2"] == 0.5
    assert summary["samples"] == str(tmp_path / "greedy_samples.jsonl") and summary["stop_policy"] == "humaneval"


def test_chat_sampler_gets_instructions_and_no_stops(tmp_path):
    t = load_humaneval()[2]
    fenced = f"Sure:\n```python\n{t.prompt}{t.reference}```\nHope it helps."
    s = _Recorder({chat_prompt(t): [fenced]}, chat=True)
    (row,) = sample_completions(s, [t], n=1, temperature=0.0, top_p=1.0, max_tokens=64)
    assert s.calls == [([chat_prompt(t)], None)]
    assert "```" not in row["completion"] and row["raw"] == fenced
    assert t.entry_point in row["completion"]


def test_tasks_of_different_styles_never_share_a_call():
    he = load_humaneval()[:3]
    mbpp = CodeTask("MBPP/9", "mbpp", '"""\nadd\n"""\n', ("assert add(1, 2) == 3",), "add", "def add(a, b): ...")
    tasks = [he[0], mbpp, he[1], he[2]]
    s = _Recorder({t.prompt: ["    pass\n"] for t in tasks})
    done: list[int] = []
    rows = sample_completions(s, tasks, n=1, temperature=0.0, top_p=1.0, max_tokens=8, batch=8,
                              on_sampled=done.append)
    assert [c[1] for c in s.calls] == [list(HUMANEVAL_STOP), list(MBPP_STOP), list(HUMANEVAL_STOP)]
    assert done == [1, 1, 2] and [r["task_id"] for r in rows] == [t.task_id for t in tasks]


def test_a_failed_sampling_allocates_no_folder_and_a_failed_scoring_keeps_the_samples(tmp_path, monkeypatch):
    tasks = _suite(1)

    class Broken:
        def generate(self, *a, **kw):
            raise RuntimeError("server down")

    allocated: list[int] = []

    def where():
        allocated.append(1)
        return tmp_path / "samples.jsonl"

    with pytest.raises(RuntimeError, match="server down"):
        sample_and_score(Broken(), tasks, n=1, temperature=0.0, top_p=1.0, max_tokens=8, samples_path=where)
    assert allocated == []

    from autoresearch.harness import sample_score

    def no_sandbox(*a, **kw):
        raise OSError("sandbox died")

    monkeypatch.setattr(sample_score, "evaluate", no_sandbox)
    s = _Recorder({tasks[0].prompt: [tasks[0].reference]})
    with pytest.raises(OSError, match="sandbox died"):
        sample_and_score(s, tasks, n=1, temperature=0.0, top_p=1.0, max_tokens=8, samples_path=where)
    assert allocated == [1] and json.loads((tmp_path / "samples.jsonl").read_text())["raw"] == tasks[0].reference
