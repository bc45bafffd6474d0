"""The implementation stage (pipeline/implement.py), its fix loop (fix_loop.py) and errors.log (errors_log.py).

The pure parts (error capping, attempts per kind, escalation, the log format) are tested without a workspace; the
stage itself on a real workspace of the micro LM (a git repository with the copied research surface), with coders
that write their edit directly into the worktree."""

from __future__ import annotations

from pathlib import Path

import pytest

from autoresearch.pipeline.errors_log import MAX_ERROR_CHARS, ErrorsLog, LogEntry, cap_error
from autoresearch.pipeline.fix_loop import AT_ONCE, MAX_ATTEMPTS, Failure, FixLoop

# --- errors.log and capping -------------------------------------------------------------------------------------------


def test_cap_error_keeps_head_and_tail_lines():
    text = "\n".join(f"line {i}" for i in range(200))
    out = cap_error(text)
    lines = out.splitlines()
    assert lines[:40] == [f"line {i}" for i in range(40)]
    assert lines[-40:] == [f"line {i}" for i in range(160, 200)]
    assert "120 lines left out" in lines[40] and len(lines) == 81
    assert "line 100" not in out
    assert cap_error("short\nerror\n") == "short\nerror"


def test_cap_error_caps_characters_of_long_lines():
    text = "A" * 5000 + "\n" + "\n".join("x" * 300 for _ in range(70)) + "\nLAST"
    out = cap_error(text)
    assert len(out) <= MAX_ERROR_CHARS
    assert out.startswith("AAAA") and out.endswith("LAST") and "characters left out" in out


def test_errors_log_blocks_and_format(tmp_path):
    log = ErrorsLog(tmp_path / "logs" / "errors.log")
    diff = "--- a/x.py\n+++ b/x.py\n=== not a header\n+y = 1\n"
    log.append(LogEntry("temp/v1", "compile", 1, 3, "SyntaxError: invalid syntax", diff, "logs/attempts/a.diff"))
    log.append(LogEntry("temp/v1", "lint", 1, 3, "F821 undefined name 'z'", ""))
    blocks = log.blocks()
    assert len(blocks) == 2
    head = blocks[0].splitlines()[0]
    assert head.startswith("=== ") and head.endswith("version temp/v1 kind compile attempt 1/3")
    assert "SyntaxError: invalid syntax" in blocks[0] and "=== not a header" in blocks[0]
    assert "logs/attempts/a.diff" in blocks[0]
    assert "(no change)" in blocks[1] and "attempt 1/3" in blocks[1]


# --- the fix loop -------------------------------------------------------------------------------------------------


def _loop(tmp_path: Path, seen: list | None = None) -> FixLoop:
    return FixLoop("temp/v1", ErrorsLog(tmp_path / "logs" / "errors.log"), tmp_path / "logs" / "attempts",
                   root=tmp_path, on_attempt=None if seen is None else seen.append, task_line="task 'temp'")


def test_fix_loop_counts_attempts_per_kind(tmp_path):
    seen: list = []
    loop = _loop(tmp_path, seen)
    assert loop.feedback is None
    assert loop.fail(Failure("compile", "SyntaxError one"), "diff 1") is None
    assert "compile" in loop.feedback and "SyntaxError one" in loop.feedback and "1/3" in loop.feedback
    assert loop.fail(Failure("lint", "F401 unused"), "diff 2") is None
    assert loop.fail(Failure("compile", "SyntaxError two"), "diff 3") is None
    assert loop.fail(Failure("lint", "F401 again"), "diff 4") is None  # lint 2/3: another kind's count
    esc = loop.fail(Failure("compile", "SyntaxError three\nat line 4"), "diff 5")
    assert esc is not None and esc.kind == "compile" and "SyntaxError three" in esc.reason
    assert [(a.kind, a.n) for a in esc.attempts] == [("compile", 1), ("lint", 1), ("compile", 2), ("lint", 2),
                                                      ("compile", 3)]
    assert seen == esc.attempts
    assert "failed 3 times" in esc.context and "new instructions" in esc.context
    assert esc.attempts[-1].diff_path == "logs/attempts/temp-v1-compile-3.diff"
    assert (tmp_path / esc.attempts[-1].diff_path).read_text() == "diff 5"
    assert len(ErrorsLog(tmp_path / "logs" / "errors.log").blocks()) == 5
    assert esc.to_dict()["attempts"][0]["kind"] == "compile"


@pytest.mark.parametrize("kind", sorted(AT_ONCE))
def test_fix_loop_escalates_design_and_protected_at_once(tmp_path, kind):
    esc = _loop(tmp_path).fail(Failure(kind, "flag 'model.x' is not a field of the config"), "")
    assert esc is not None and esc.kind == kind and len(esc.attempts) == 1 and "at once" in esc.context


def test_fix_loop_escalates_at_once_when_asked(tmp_path):
    esc = _loop(tmp_path).fail(Failure("checks", "forward_pass: fail"), "", at_once=True)
    assert esc is not None and "cannot retry" in esc.context


def test_feedback_is_capped(tmp_path):
    loop = _loop(tmp_path)
    loop.fail(Failure("checks", "\n".join(f"trace line {i}" for i in range(500))), "")
    fb = loop.feedback
    assert "trace line 0" in fb and "trace line 499" in fb and "trace line 250" not in fb
    assert MAX_ATTEMPTS == 3


# --- the stage on a real workspace of the micro LM ----------------------------------------------------------------

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "pipeline"
TEMP_FLAG = {"key": "model.attn_temperature", "type": "float", "off": 1.0, "on": 2.0}


@pytest.fixture(scope="module")
def ws(tmp_path_factory, cache_dir):
    """One workspace of the LM (surface copied, committed) with the micro config as its study overrides; shared by
    the tests of this module so the base commit's trace is recorded once."""
    from autoresearch.harness.config import parse_override
    from autoresearch.pipeline.workspace import init_workspace
    from tests.conftest import micro_overrides

    ws = init_workspace(tmp_path_factory.mktemp("ws") / "ws", "lm", preset="tiny")
    ws.file.study.overrides = dict(parse_override(o) for o in micro_overrides(cache_dir))
    return ws


def _task(name: str, flags: list[dict] | None = None):
    from autoresearch.agents.roles import Flag, TaskSpec

    return TaskSpec(idea="scale the attention logits", name=name, description="attention temperature",
                    flags=[Flag.from_dict(f) for f in (flags if flags is not None else [TEMP_FLAG])],
                    files=["surface/gpt.py", "surface/common_config.py"], needs_code=True)


def _git(tree: Path, *args: str, stdin: bytes | None = None) -> None:
    import subprocess

    subprocess.run(["git", "-C", str(tree), *args], input=stdin, check=True, capture_output=True)


def _apply(name: str):
    def edit(tree: Path) -> None:
        _git(tree, "reset", "--hard", "-q")
        _git(tree, "clean", "-fdq")
        _git(tree, "apply", "-", stdin=(EXAMPLES / name).read_bytes())
    return edit


def _head(tree: Path) -> str:
    import subprocess

    return subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], check=True, capture_output=True,
                          text=True).stdout.strip()


def _restore(tree: Path) -> None:
    _git(tree, "reset", "--hard", "-q")
    _git(tree, "clean", "-fdq")


def _coder(*steps, edits: bool = True):
    """A coder that runs `steps[i]` on its i-th call (the last one again after that) and remembers the feedback."""
    from autoresearch.agents.roles import Coder, CoderResult

    class ScriptCoder(Coder):
        spec = "script"

        def __init__(self) -> None:
            self.feedback: list[str | None] = []

        def implement(self, task, worktree, feedback=None):
            self.feedback.append(feedback)
            result = steps[min(len(self.feedback), len(steps)) - 1](Path(worktree))
            return result if isinstance(result, CoderResult) else CoderResult(ok=True, log="edited")

    ScriptCoder.edits = edits
    return ScriptCoder()


def _implement(ws, name: str, coder, task=None, **kw):
    from autoresearch.agents.role_specs import make_judge
    from autoresearch.pipeline.implement import implement_version
    from autoresearch.pipeline.worktrees import create_version

    tree = create_version(ws, name, 1)
    return tree, implement_version(ws, tree, task or _task(name), coder, judge=make_judge("rules"), **kw)


@pytest.mark.slow
def test_unedited_worktree_passes_the_regression(ws):
    from autoresearch.pipeline.implement import ImplementSettings

    coder = _coder(lambda tree: None, edits=False)
    task = _task("unedited", [{"key": "model.qk_norm", "type": "bool", "off": True, "on": False}])
    tree, out = _implement(ws, "unedited", coder, task, settings=ImplementSettings(verify_unchanged=True))
    assert out.ok and out.escalation is None and out.attempts == [] and out.commit is None
    ev = out.evidence
    assert ev.editable_ok and ev.compile_ok and ev.lint_ok and ev.checks_ok and ev.regression_ok
    assert "bit-identical" in ev.details
    assert len(list(ws.traces_dir.glob(f"{tree.base_commit[:12]}-*.json"))) == 1


@pytest.mark.slow
def test_good_diff_passes_and_is_committed(ws):
    coder = _coder(_apply("good.diff"))
    task = _task("good", [{**TEMP_FLAG, "off": None}])  # a flag the edit adds: its off value comes from the edit
    tree, out = _implement(ws, "good", coder, task)
    assert out.ok, out.escalation
    assert [(f.key, f.off, f.on) for f in task.flags] == [("model.attn_temperature", 1.0, 2.0)]
    assert out.commit and out.evidence.changed_paths == ["surface/common_config.py", "surface/gpt.py"]
    assert out.evidence.regression_ok and out.evidence.checks_ok and coder.feedback == [None]
    assert {"coder", "probe", "checks", "short_run"} <= set(out.timings)


@pytest.mark.slow
def test_flag_off_path_that_changes_the_init_fails_the_regression(ws):
    seen: list = []
    coder = _coder(_apply("bad.diff"), _apply("good.diff"))
    tree, out = _implement(ws, "bad", coder, log=seen.append)
    first = out.attempts[0]
    assert first.kind == "regression" and first.n == 1
    assert "first differing step 1:" in first.error_head
    assert "model.attn_temperature" in first.error_head
    assert coder.feedback[1] is not None and "first differing step 1" in coder.feedback[1]
    assert out.ok and len(out.attempts) == 1  # the fixed edit passed on the second attempt
    assert "trunc_normal_" in (ws.root / first.diff_path).read_text()
    assert any("regression failed" in line for line in seen)


@pytest.mark.slow
def test_syntax_error_is_a_compile_failure_fed_back_to_the_coder(ws):
    def broken(tree: Path) -> None:
        path = tree / "surface" / "gpt.py"
        path.write_text(path.read_text() + "\ndef oops(:\n")

    coder = _coder(broken, _restore)
    task = _task("syntax", [{"key": "model.qk_norm", "type": "bool", "off": True, "on": False}])
    tree, out = _implement(ws, "syntax", coder, task)
    assert [(a.kind, a.n) for a in out.attempts] == [("compile", 1)]
    assert "SyntaxError" in coder.feedback[1] and "surface/gpt.py" in coder.feedback[1]
    assert "`compile` step" in coder.feedback[1]
    assert out.ok and out.evidence.compile_ok


def test_lint_errors_name_the_undefined_name(tmp_path):
    from autoresearch.pipeline.implement import compile_errors, lint_errors

    (tmp_path / "a.py").write_text("def f():\n    return undefined_thing\n")
    (tmp_path / "b.py").write_text("x = 1\n")
    assert compile_errors(tmp_path, ["a.py", "b.py", "gone.py", "notes.txt"]) == []
    out = lint_errors(tmp_path, ["a.py", "b.py"])
    assert out is not None and "undefined_thing" in out and "F821" in out
    assert lint_errors(tmp_path, ["b.py"]) is None
    assert not list(tmp_path.glob("**/__pycache__")) and not (tmp_path / ".ruff_cache").exists()


def test_coder_failing_three_times_escalates_with_every_attempt_logged(ws):
    from autoresearch.agents.roles import CoderResult
    from autoresearch.pipeline.state import PipelineState, VersionRecord, load_state, save_state

    def fails(tree: Path) -> CoderResult:
        (tree / "surface" / "scratch.py").write_text(f"attempt = {len(coder.feedback)}\n")
        return CoderResult(ok=False, log=f"agent crashed, try {len(coder.feedback)}", exit_code=3)

    coder = _coder(fails)
    rec = VersionRecord(name="failing", k=1, branch="idea/failing/v1")
    st = PipelineState(versions=[rec])
    blocks_before = len(ErrorsLog(ws.errors_log).blocks())
    tree, out = _implement(ws, "failing", coder, record=rec, save=lambda: save_state(ws, st))
    esc = out.escalation
    assert not out.ok and esc is not None and esc.kind == "coder" and len(esc.attempts) == 3
    assert [a.n for a in esc.attempts] == [1, 2, 3] and "failed 3 times" in esc.context
    assert esc.reason == "coder: the coder failed (exit code 3): agent crashed, try 3"
    blocks = ErrorsLog(ws.errors_log).blocks()[blocks_before:]
    assert len(blocks) == 3 and all("version failing/v1 kind coder" in b for b in blocks)
    assert "attempt 3/3" in blocks[2] and "+attempt = 3" in blocks[2]  # the diff the attempt left
    saved = load_state(ws)
    assert [(a.kind, a.n) for a in saved.versions[0].attempts] == [("coder", 1), ("coder", 2), ("coder", 3)]
    assert "exit code 3" in coder.feedback[1]


def test_protected_file_edit_is_refused_and_kept(ws):
    def edit(tree: Path) -> None:
        (tree / "workspace.yaml").write_text((tree / "workspace.yaml").read_text() + "# sneaky\n")

    coder = _coder(edit)
    tree, out = _implement(ws, "protected", coder)
    esc = out.escalation
    assert not out.ok and esc is not None and esc.kind == "protected" and len(out.attempts) == 1
    assert "workspace.yaml" in esc.reason and "protected" in esc.reason
    assert (tree.path / "workspace.yaml").read_text().endswith("# sneaky\n")  # refused, never reverted
    assert not out.evidence.editable_ok and coder.feedback == [None]
    assert out.commit is None and _head(tree.path) == tree.base_commit  # nothing committed either


def test_edit_outside_the_editable_paths_is_refused(ws):
    coder = _coder(lambda tree: (tree / "notes.txt").write_text("hi\n"))
    tree, out = _implement(ws, "outside", coder)
    assert out.escalation is not None and out.escalation.kind == "protected"
    assert "notes.txt: outside the editable paths" in out.escalation.reason


@pytest.mark.slow
def test_task_flag_missing_from_the_config_escalates_at_once(ws):
    """Both design problems in one probe: a flag that is no config field, and one whose off value is not the
    config default (qk_norm defaults to True)."""
    from autoresearch.agents.role_specs import make_coder

    task = _task("missing", [{"key": "model.no_such_flag", "type": "bool", "off": False, "on": True},
                             {"key": "model.qk_norm", "type": "bool", "off": False, "on": True}])
    tree, out = _implement(ws, "missing", make_coder("none"), task)
    esc = out.escalation
    assert not out.ok and esc is not None and esc.kind == "design" and len(out.attempts) == 1
    assert "'model.no_such_flag' is not a field of the config" in esc.reason
    assert "its config default is True but the task declares off = False" in esc.reason
    assert "at once" in esc.context


def test_child_timeout_kills_and_fails_the_step(ws):
    from autoresearch.agents.role_specs import make_coder
    from autoresearch.pipeline.implement import ImplementSettings

    task = _task("slow", [{"key": "model.qk_norm", "type": "bool", "off": True, "on": False}])
    tree, out = _implement(ws, "slow", make_coder("none"), task, settings=ImplementSettings(timeout_s=0.3))
    assert out.escalation is not None and out.escalation.kind == "checks"
    assert "timed out after 0.3 s" in out.attempts[0].error_head


@pytest.mark.slow
def test_judge_revise_feeds_back_and_reject_escalates(ws):
    from autoresearch.agents.roles import Judge, Verdict
    from autoresearch.pipeline.implement import implement_version
    from autoresearch.pipeline.worktrees import create_version

    class TwoStepJudge(Judge):
        spec = "two-step"

        def __init__(self) -> None:
            self.seen = []

        def review(self, task, evidence):
            self.seen.append(evidence)
            if len(self.seen) == 1:
                return Verdict("revise", ["the flag's help text does not say what off means"])
            return Verdict("reject", ["the idea duplicates qk_norm"])

    judge = TwoStepJudge()
    coder = _coder(lambda tree: None)
    task = _task("review", [{"key": "model.qk_norm", "type": "bool", "off": True, "on": False}])
    tree = create_version(ws, "review", 1)
    out = implement_version(ws, tree, task, coder, judge=judge)
    assert [(a.kind, a.n) for a in out.attempts] == [("review", 1), ("review", 2)]
    assert "what off means" in coder.feedback[1] and "`review` step" in coder.feedback[1]
    assert out.escalation is not None and "duplicates qk_norm" in out.escalation.reason
    assert out.verdict is not None and out.verdict.decision == "reject"
    assert judge.seen[0].checks_ok and judge.seen[0].regression_ok  # no code change: the base's own code
