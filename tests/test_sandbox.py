"""Sandbox behaviour: the result taxonomy, timeouts (fixed and calibrated), the pool, levels and config checks."""

from __future__ import annotations

import os
import signal
import time

import pytest

from autoresearch.errors import ConfigError, DataError, SandboxError
from autoresearch.harness.sandbox import (
    Job,
    Pool,
    ProgramResult,
    SandboxConfig,
    TestResult,
    aggregate_status,
    bwrap_status,
    calibrated_timeouts,
)
from autoresearch.harness.sandbox import isolation as iso_mod
from autoresearch.harness.sandbox import pool as pool_mod

_OK, _WHY = bwrap_status()
needs_strict = pytest.mark.skipif(not _OK and not os.environ.get("CI"), reason=f"no strict sandbox here: {_WHY}")
pytestmark = [pytest.mark.timeout(60)]


@pytest.fixture(scope="module")
def pool():
    with Pool(SandboxConfig(workers=2, test_timeout_s=1.0, program_timeout_s=3.0, allow_reduced=not _OK)) as p:
        yield p


def statuses(r: ProgramResult) -> list[str]:
    return [t.status for t in r.tests]


# --- taxonomy -----------------------------------------------------------------------------------------------------
def test_pass_fail_error_per_test_with_messages_and_lines(pool):
    prog = "def inc(x):\n    return x + 1\n\ndef boom(x):\n    return x / 0\n"
    tests = ("assert inc(1) == 2", "assert inc(1) == 3", "assert inc(2) == 4, 'custom msg'", "boom(1)")
    r = pool.run(Job(program=prog, tests=tests))
    assert statuses(r) == ["pass", "fail", "fail", "error"]
    assert r.status == "error" and not r.passed and r.syntax_valid
    assert r.tests[1].message == "assertion failed: assert inc(1) == 3" and r.tests[1].where == "test"
    assert r.tests[2].message == "custom msg"
    err = r.tests[3]
    assert (err.exc_type, err.where, err.line) == ("ZeroDivisionError", "program", 5)  # the line in the program
    assert r.human_eval_result() == "failed: assertion failed: assert inc(1) == 3"


def test_all_pass_and_output_is_captured(pool):
    r = pool.run(Job(program="import sys\nprint('out')\nprint('err', file=sys.stderr)", tests=("assert 1",) * 3))
    assert r.passed and r.status == "pass" and statuses(r) == ["pass"] * 3
    assert r.stdout == "out\n" and r.stderr == "err\n"
    assert r.human_eval_result() == "passed"


def test_syntax_error_in_program(pool):
    r = pool.run(Job(program="def f(:\n    pass", tests=("assert f() is None", "assert True")))
    assert r.status == "syntax_error" and not r.syntax_valid
    assert r.program.exc_type == "SyntaxError" and r.program.line == 1 and r.program.where == "program"
    assert statuses(r) == ["syntax_error", "syntax_error"]  # no test can run without the program
    assert r.human_eval_result().startswith("failed: syntax error")


def test_syntax_error_in_a_test_snippet_is_that_tests_status(pool):
    r = pool.run(Job(program="x = 1", tests=("assert x == 1", "assert (", "assert x")))
    assert statuses(r) == ["pass", "syntax_error", "pass"]
    assert r.syntax_valid  # the program itself compiles


def test_null_bytes_are_a_syntax_error(pool):
    assert pool.run(Job(program="x = 1\x00", tests=("assert x",))).status == "syntax_error"


def test_program_top_level_error_fails_every_test(pool):
    r = pool.run(Job(program="import not_a_module_xyz", tests=("assert True", "assert True")))
    assert r.status == "error" and r.program.exc_type == "ModuleNotFoundError"
    assert statuses(r) == ["error", "error"] and "program failed" in r.tests[0].message


def test_memory_status(pool):
    r = pool.run(Job(program="x = 1", tests=("y = bytearray(4 << 30)", "assert x == 1")))
    assert statuses(r) == ["memory", "pass"] and r.status == "memory"


def test_output_past_the_cap_is_drained_and_marked_truncated_never_failed():
    with Pool(SandboxConfig(workers=1, output_limit_bytes=1000, allow_reduced=not _OK)) as p:
        r = p.run(Job(program="x = 1", tests=("print('a' * 600)", "print('b' * 600)", "assert x")))
        assert statuses(r) == ["pass", "pass", "pass"] and r.passed and r.output_truncated
        assert r.stdout == "a" * 600 + "\n" + "b" * 399  # the cap covers the whole job: the first 1000 bytes
        # Both streams, and far more than a pipe buffer (the child would block if the rest were not read).
        big = "import sys\nfor _ in range(200):\n    print('o' * 1000)\n    sys.stderr.write('e' * 1000)\n"
        r = p.run(Job(program=big, tests=("assert True",)))
        assert r.passed and r.output_truncated and len(r.stdout) + len(r.stderr) == 1000
        small = p.run(Job(program="print('hi')", tests=("assert True",)))
        assert small.passed and not small.output_truncated and small.stdout == "hi\n"
        assert ProgramResult.from_wire({**_wire(r), "output_truncated": True}, "strict").to_dict()["output_truncated"]


def _wire(r: ProgramResult) -> dict:
    return {"program": r.program.to_dict(), "tests": [t.to_dict() for t in r.tests]}


def test_correct_answer_printing_100kb_over_humaneval_tests_passes(pool):
    from autoresearch.harness.code_tasks import load_humaneval

    t = load_humaneval()[0]  # has_close_elements: its check() calls the candidate 7 times
    noisy = t.reference.replace("    for idx", "    print('debug ' * 2500)\n    for idx", 1)
    r = pool.run(t.job(noisy))
    assert r.passed and r.output_truncated and len(r.stdout) == 65536, (r.status, r.first_failure)


def test_per_test_timeout_then_remaining_tests_resume(pool):
    r = pool.run(Job(program="import time", tests=("time.sleep(30)", "assert 1 + 1 == 2"), test_timeout_s=0.5))
    assert statuses(r) == ["timeout", "pass"] and r.children == 2
    assert r.status == "timeout" and r.human_eval_result() == "timed out"
    assert r.duration_s < 2.0


def test_program_timeout_bounds_the_whole_job(pool):
    t0 = time.monotonic()
    r = pool.run(Job(program="x = 1", tests=("import time; time.sleep(0.6)",) * 5, program_timeout_s=1.0))
    assert time.monotonic() - t0 < 2.5
    assert r.status == "timeout" and statuses(r)[:1] == ["pass"] and "timeout" in statuses(r)


def test_top_level_infinite_loop_times_out_all_tests(pool):
    r = pool.run(Job(program="while True:\n    pass", tests=("assert True", "assert True"), program_timeout_s=1.0))
    assert r.program.status == "timeout" and statuses(r) == ["timeout", "timeout"]


def test_per_test_timeouts_may_differ(pool):
    job = Job(program="import time", tests=("time.sleep(0.4)", "time.sleep(0.4)"), test_timeout_s=(1.0, 0.2))
    assert statuses(pool.run(job)) == ["pass", "timeout"]


def test_tests_share_the_program_globals_in_order(pool):
    r = pool.run(Job(program="acc = []", tests=("acc.append(1)", "acc.append(2)", "assert acc == [1, 2]")))
    assert r.passed


def test_hash_seed_is_fixed_across_executors(pool):
    jobs = [Job(program="print(hash('abc'), list({'x', 'y', 'z'}))", tests=("assert True",)) for _ in range(4)]
    outs = {r.stdout for r in pool.map(jobs)}
    assert len(outs) == 1  # both executors, every job: same str hashes, same set order


def test_zero_tests_is_not_a_pass(pool):
    r = pool.run(Job(program="x = 1"))
    assert r.tests == () and not r.passed and r.status == "error"


# --- results ------------------------------------------------------------------------------------------------------
def test_aggregate_status_orders_failures():
    ok = TestResult("pass")
    assert aggregate_status(ok, (ok, TestResult("fail"), TestResult("error"))) == "error"
    assert aggregate_status(ok, (TestResult("fail"), ok)) == "fail"
    assert aggregate_status(ok, (TestResult("error"), TestResult("timeout"))) == "timeout"
    assert aggregate_status(TestResult("syntax_error"), (ok,)) == "syntax_error"
    assert aggregate_status(ok, ()) == "error"
    with pytest.raises(ValueError, match="status must be one of"):
        TestResult("passed")


def test_result_roundtrip_dict():
    t = TestResult("fail", "AssertionError", "m", "test", 3, 0.5)
    assert TestResult.from_dict(t.to_dict()) == t


# --- calibrated timeouts ------------------------------------------------------------------------------------------
def _ref(*test_s: float, program_s: float = 0.01) -> ProgramResult:
    tests = tuple(TestResult("pass", duration_s=t) for t in test_s)
    return ProgramResult("pass", TestResult("pass", duration_s=program_s), tests, "strict")


def test_calibrated_timeouts_scale_and_floor():
    t = calibrated_timeouts(_ref(0.001, 0.5), factor=10, floor_s=0.2, program_floor_s=1.0)
    assert t.test_s == pytest.approx((0.2, 5.0))  # floored, then 10x
    assert t.program_s == pytest.approx(0.2 + 0.2 + 5.0)
    assert calibrated_timeouts(_ref(0.0), factor=10, floor_s=0.1, program_floor_s=3.0).program_s == 3.0


def test_calibration_needs_a_passing_reference():
    bad = ProgramResult("fail", TestResult("pass"), (TestResult("fail", "AssertionError", "x"),), "strict")
    with pytest.raises(DataError, match="must pass to calibrate"):
        calibrated_timeouts(bad, task="T/1")
    with pytest.raises(ValueError):
        calibrated_timeouts(_ref(0.1), factor=0.5)


def test_calibrated_timeout_catches_a_slow_completion_a_fixed_one_lets_pass(pool):
    ref = pool.run(Job(program="import time\ndef f():\n    time.sleep(0.05)\n    return 1", tests=("assert f() == 1",)))
    tmo = calibrated_timeouts(ref, factor=4, floor_s=0.1, program_floor_s=1.0)
    assert 0.1 <= tmo.test_s[0] < 0.6
    slow = "import time\ndef f():\n    time.sleep(0.7)\n    return 1"
    assert pool.run(Job(program=slow, tests=("assert f() == 1",))).passed  # 1 s default lets it through
    r = pool.run(
        Job(program=slow, tests=("assert f() == 1",), test_timeout_s=tmo.test_s, program_timeout_s=tmo.program_s)
    )
    assert statuses(r) == ["timeout"]


# --- pool ---------------------------------------------------------------------------------------------------------
def test_map_keeps_order_and_reports_progress(pool):
    jobs = [Job(program=f"v = {i}", tests=(f"assert v == {i}", "assert v >= 0"), id=str(i)) for i in range(12)]
    seen: list[int] = []
    results = pool.map(jobs, on_result=lambda i, r: seen.append(i))
    assert [r.id for r in results] == [str(i) for i in range(12)] and all(r.passed for r in results)
    assert sorted(seen) == list(range(12))


def test_pool_runs_jobs_in_parallel(pool):
    jobs = [Job(program="import time\ntime.sleep(0.5)", tests=("assert True",)) for _ in range(6)]
    t0 = time.monotonic()
    assert all(r.passed for r in pool.map(jobs))
    assert time.monotonic() - t0 < 2.6  # 3.0 s one at a time; 1.5 s on two executors


def _tree(pid: int) -> list[int]:
    out = [pid]
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/children") as f:
            for child in f.read().split():
                out += _tree(int(child))
    return out


def test_dead_executor_is_restarted():
    with Pool(SandboxConfig(workers=1, allow_reduced=not _OK)) as p:
        (pid,) = p.executor_pids()
        for proc in _tree(pid):  # bwrap and the executor inside it, from outside; SIGKILL leaves no more user code
            os.kill(proc, signal.SIGKILL)
        r = p.run(Job(program="x = 1", tests=("assert x == 1",)))
        assert r.passed and p.restarts == 1 and p.executor_pids() != [pid]


def test_default_workers_is_one_per_core():
    assert SandboxConfig().n_workers == len(os.sched_getaffinity(0))


def test_closed_pool_refuses_jobs():
    p = Pool(SandboxConfig(workers=1, allow_reduced=not _OK))
    p.close()
    with pytest.raises(SandboxError, match="closed"):
        p.submit(Job(program="x = 1", tests=("assert x",)))


# --- levels -------------------------------------------------------------------------------------------------------
@needs_strict
def test_strict_level_reports_every_layer(pool):
    assert pool.isolation.level == "strict"
    assert all(pool.isolation.features.values()), pool.isolation.features
    assert any("kernel is shared" in n for n in pool.isolation.not_covered)  # never claims to cover everything


def test_reduced_level_runs_and_says_what_is_not_covered(capfd):
    with Pool(SandboxConfig(workers=1, level="reduced")) as p:
        r = p.run(Job(program="def f():\n    return 1", tests=("assert f() == 1", "assert f() == 2")))
        assert statuses(r) == ["pass", "fail"] and r.level == "reduced"
        assert p.isolation.level == "reduced"
        assert not p.isolation.features["pid_namespace"] and not p.isolation.features["hidden_paths"]
        assert p.isolation.features["seccomp"]
        blocked = p.run(Job(program="import socket\nsocket.socket()", tests=("assert True",)))
        assert blocked.program.exc_type == "PermissionError"  # seccomp still applies at the reduced level
    err = capfd.readouterr().err
    assert "sandbox isolation: reduced" in err and "not covered" in err


def test_strict_unavailable_needs_explicit_opt_in(monkeypatch):
    monkeypatch.setattr(pool_mod, "bwrap_status", lambda: (False, "bwrap not found on PATH"))
    with pytest.raises(SandboxError, match="apt-get install -y bubblewrap"):
        Pool(SandboxConfig(workers=1))
    with Pool(SandboxConfig(workers=1, allow_reduced=True)) as p:
        assert p.isolation.level == "reduced"


def test_isolation_level_is_computed_from_reported_features():
    full = dict.fromkeys(iso_mod.STRICT_FEATURES, True)
    assert iso_mod.isolation_from_features("strict", full).level == "strict"
    assert iso_mod.isolation_from_features("reduced", full).level == "reduced"
    missing = iso_mod.isolation_from_features("strict", {**full, "no_network": False})
    assert missing.level == "reduced" and iso_mod.FEATURE_GAPS["no_network"] in missing.not_covered


# --- config -------------------------------------------------------------------------------------------------------
def test_job_and_config_validation():
    with pytest.raises(TypeError, match="wrap it"):
        Job(program="x", tests="assert x")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="one timeout per test"):
        Job(program="x", tests=("a", "b"), test_timeout_s=(1.0,))
    with pytest.raises(ConfigError, match="memory_mb"):
        SandboxConfig(memory_mb=8)
    with pytest.raises(ConfigError, match="level"):
        SandboxConfig(level="loose")  # type: ignore[arg-type]
    wire = Job(program="p", tests=("t1", "t2")).wire(SandboxConfig(test_timeout_s=2.0, program_timeout_s=7.0))
    assert wire["test_timeouts"] == [2.0, 2.0] and wire["program_timeout"] == 7.0


# --- threads: RLIMIT_NPROC and RLIMIT_AS sized from measurement ----------------------------------------------------
def _outermost_calls(task) -> int:
    """How many times `task`'s tests call its entry point from outside (recursion not counted); trusted code only."""
    ep = task.entry_point
    counter = (
        f"\n_calls, _depth, _orig = [0], [0], {ep}\ndef {ep}(*a, **k):\n    _calls[0] += _depth[0] == 0\n"
        "    _depth[0] += 1\n    try:\n        return _orig(*a, **k)\n    finally:\n        _depth[0] -= 1\n"
    )
    g: dict = {"__name__": "__count__"}
    exec(compile(task.program(task.reference) + counter, "<ref>", "exec"), g)
    for t in task.tests:
        exec(compile(t, "<test>", "exec"), g)
    return g["_calls"][0]


def test_thread_budget_covers_humaneval_calls_measured():
    from autoresearch.harness.code_tasks import load_humaneval
    from autoresearch.harness.sandbox.config import THREADS_PER_JOB

    calls = {t.task_id: _outermost_calls(t) for t in load_humaneval()}
    assert max(calls.values()) == calls["HumanEval/53"] == 105  # the figure config.py cites
    assert max(calls.values()) + 1 <= THREADS_PER_JOB  # one leaked thread per call, plus the main thread
    assert SandboxConfig(workers=3).nproc == 3 * THREADS_PER_JOB and SandboxConfig(max_processes=7).nproc == 7
    with pytest.raises(ConfigError, match="max_processes"):
        SandboxConfig(max_processes=-1)


def test_correct_answer_leaking_a_thread_per_call_passes():
    from autoresearch.harness.code_tasks import load_humaneval

    t = load_humaneval()[53]  # add(x, y): check() calls it 105 times
    leaky = (
        "    import threading\n    threading.Thread(target=threading.Event().wait, daemon=True).start()\n"
        + t.reference
    )
    with Pool(SandboxConfig(workers=2, allow_reduced=not _OK)) as p:
        # Two at once: the job uid (and so its RLIMIT_NPROC count) is shared by the pool's executors.
        results = p.map([t.job(leaky), t.job(leaky)])
        probe = p.run(Job(program="import threading", tests=("assert threading.stack_size() == 4 << 20",)))
    assert [r.status for r in results] == ["pass", "pass"], results[0].first_failure
    assert probe.passed, probe.first_failure
