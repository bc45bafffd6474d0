"""The adversarial judge: one sandbox pool per run, strict by default, batched runs in input order."""

from __future__ import annotations

import os

import pytest

from autoresearch.errors import SandboxError
from autoresearch.harness.sandbox import Job, bwrap_status
from autoresearch.harness.sandbox import pool as pool_mod
from autoresearch.testbeds.adversarial import judge as judge_mod
from autoresearch.testbeds.adversarial.config import RewardConfig
from autoresearch.testbeds.adversarial.judge import Judge

_OK, _WHY = bwrap_status()
needs_strict = pytest.mark.skipif(not _OK and not os.environ.get("CI"), reason=f"no strict sandbox here: {_WHY}")
pytestmark = [pytest.mark.timeout(60)]


def _cfg(**kw) -> RewardConfig:
    base = dict(workers=2, test_timeout_s=0.5, program_timeout_s=3.0, allow_reduced=not _OK)
    return RewardConfig(**{**base, **kw})


def test_batch_runs_in_order_with_typed_statuses():
    with Judge(_cfg()) as judge:
        jobs = [
            ("def f(x): return x + 1", ("assert f(1) == 2", "assert f(1) == 3")),
            Job(program="def f(x): return x", tests=("assert f(1) == 1",), id="job"),
            ("def f(x) return", ("assert f(1) == 2",)),
            ("def f(x):\n    while True: pass", ["assert f(1) == 2", "assert 1 == 1"]),
        ]
        out = judge.run(jobs)
        assert [r.status for r in out] == ["fail", "pass", "syntax_error", "timeout"]
        assert [t.status for t in out[0].tests] == ["pass", "fail"]
        assert [t.status for t in out[3].tests] == ["timeout", "pass"] and out[3].children == 2
        assert out[1].id == "job"
        assert judge.jobs_run == 4 and judge.seconds > 0
        assert judge.run([]) == []
        assert judge.workers == 2
    with pytest.raises(SandboxError, match="closed"):
        judge.run([("x = 1", ("assert x == 1",))])


def test_timeouts_come_from_the_reward_config():
    with Judge(_cfg(test_timeout_s=0.2, program_timeout_s=1.0)) as judge:
        r = judge.run([("import time", ("time.sleep(0.5)", "time.sleep(0.05)"))])[0]
        assert [t.status for t in r.tests] == ["timeout", "pass"]


@needs_strict
def test_strict_level_by_default():
    with Judge(RewardConfig(workers=1)) as judge:
        assert judge.level == "strict"


def test_missing_bwrap_is_one_line_naming_allow_reduced(monkeypatch):
    monkeypatch.setattr(judge_mod, "bwrap_status", lambda: (False, "bwrap not found on PATH"))
    monkeypatch.setattr(pool_mod, "bwrap_status", lambda: (False, "bwrap not found on PATH"))
    with pytest.raises(SandboxError) as e:
        Judge(RewardConfig(workers=1))
    msg = str(e.value)
    assert "\n" not in msg and "reward.allow_reduced" in msg and "bwrap not found" in msg
    with Judge(RewardConfig(workers=1, allow_reduced=True)) as judge:
        assert judge.level == "reduced"
        assert judge.run([("def f(): return 1", ("assert f() == 1",))])[0].passed
