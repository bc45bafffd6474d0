"""Coders of the research pipeline (agents/coders/): patch, cmd, the command-line agents (fake executables on PATH),
the process-group timeout, the allowed-paths filter and the example patches. No network: every agent is a script."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autoresearch.agents.coders import (
    CliAgentCoder,
    CommandCoder,
    NoneCoder,
    PatchCoder,
    cap_text,
    changed_paths,
    enforce,
    first_match,
    match_glob,
    patch_paths,
    render_task,
    run_in_group,
)
from autoresearch.agents.coders import process as process_mod
from autoresearch.agents.roles import Flag, TaskSpec
from autoresearch.errors import AutoresearchError, ConfigError

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "pipeline"
GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}


def git(tree: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(tree), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout


def make_repo(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    return root


@pytest.fixture
def ws(tmp_path) -> Path:
    """A workspace repo with a surface file, a protected workspace.yaml and a .gitignore."""
    return make_repo(tmp_path / "ws", {"surface/a.py": "x = 1\ny = 2\n", "surface/b.py": "z = 3\n",
                                       "workspace.yaml": "testbed: surface/testbed.py:T\n",
                                       ".gitignore": "*.log\n"})


@pytest.fixture
def wt(ws) -> Path:
    """An idea version's linked worktree on branch idea/t/v1 (as pipeline/worktrees.py makes them)."""
    path = ws / ".autoresearch" / "worktrees" / "t-v1"
    git(ws, "worktree", "add", "-q", "-b", "idea/t/v1", str(path))
    return path


def task(**kw) -> TaskSpec:
    base = dict(idea="scale the attention", name="attn-temp", description="add an attention temperature",
                flags=[Flag("model.attn_temperature", "float", 1.0, 0.5)], files=["surface/a.py"],
                expected_effect="lower val loss", effect_size=0.01, metric="val_loss", needs_code=True)
    base.update(kw)
    return TaskSpec(**base)


def script(path: Path, body: str) -> Path:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return path


def gone(pid: int) -> bool:
    """True when `pid` no longer runs (absent, or a zombie waiting for a reaper that is not us)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state in ("Z", "X")


def wait_gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if gone(pid):
            return True
        time.sleep(0.05)
    return gone(pid)


# --- the task text ---------------------------------------------------------------------------------------------------


def test_task_text_names_flags_files_rule_and_feedback():
    text = render_task(task(), None, ["surface/**"])
    assert "model.attn_temperature" in text and "off = 1.0" in text and "on = 0.5" in text
    assert "- surface/a.py" in text and "bit-identical" in text and "surface/**" in text
    assert "Feedback" not in text
    again = render_task(task(), "Traceback: NameError: q_scale")
    assert "## Feedback from the previous attempt" in again and "NameError: q_scale" in again
    assert "Fix only this error" in again


def test_cap_text_keeps_head_and_tail():
    text = "H" * 5000 + "M" * 10_000 + "T" * 5000
    out = cap_text(text, 100, 200)
    assert out.startswith("H" * 100) and out.endswith("T" * 200) and "19700 characters left out" in out
    assert cap_text("short", 100, 200) == "short"


# --- coder none --------------------------------------------------------------------------------------------------------


def test_none_coder_does_nothing(wt):
    res = NoneCoder().implement(task(needs_code=False), wt)
    assert res.ok and NoneCoder.edits is False and NoneCoder.spec == "none"
    assert git(wt, "status", "--porcelain") == ""


# --- cmd:PATH --------------------------------------------------------------------------------------------------------


def test_cmd_coder_runs_in_worktree_with_task_file_and_env(tmp_path, wt):
    seen = tmp_path / "seen"
    exe = script(tmp_path / "coder.sh", f"""
pwd > {seen}.cwd
echo "$AUTORESEARCH_TASK_FILE" > {seen}.file
cp "$AUTORESEARCH_TASK_FILE" {seen}.task
printf '%s' "$AUTORESEARCH_TASK" > {seen}.env
printf '%s' "$AUTORESEARCH_FEEDBACK" > {seen}.feedback
echo 'temperature = 0.5' >> surface/a.py
echo edited
""")
    res = CommandCoder(exe).implement(task(), wt)
    assert res.ok and res.exit_code == 0 and "edited" in res.log and "cmd:" in res.log
    assert Path(f"{seen}.cwd").read_text().strip() == str(wt.resolve())
    task_file = Path(Path(f"{seen}.file").read_text().strip())
    assert task_file.name == ".autoresearch-task.md"
    assert not task_file.is_relative_to(wt.resolve()) and not task_file.exists()  # outside, and removed after
    assert "model.attn_temperature" in Path(f"{seen}.task").read_text()
    assert Path(f"{seen}.env").read_text().strip() == Path(f"{seen}.task").read_text().strip()
    assert Path(f"{seen}.feedback").read_text() == ""
    assert git(wt, "status", "--porcelain").split() == ["M", "surface/a.py"]  # the task file never lands in the diff
    assert "+temperature = 0.5" in git(wt, "diff")


def test_cmd_coder_failing_twice_then_fixed_gets_the_feedback(tmp_path, wt):
    count, feedback = tmp_path / "count", tmp_path / "feedback"
    exe = script(tmp_path / "flaky.sh", f"""
n=$(cat {count} 2>/dev/null || echo 0); n=$((n + 1)); echo $n > {count}
printf '%s\\n' "--- attempt $n: $AUTORESEARCH_FEEDBACK" >> {feedback}
if [ $n -le 2 ]; then echo "SyntaxError: attempt $n broke surface/a.py" >&2; exit 3; fi
grep -q 'SyntaxError: attempt 2' "$AUTORESEARCH_TASK_FILE" || exit 4
echo 'fixed = True' >> surface/a.py
""")
    coder, fb, results = CommandCoder(exe), None, []
    for _ in range(3):
        res = coder.implement(task(), wt, fb)
        results.append(res)
        if res.ok:
            break
        fb = res.log
    assert [r.ok for r in results] == [False, False, True]
    assert [r.exit_code for r in results] == [3, 3, 0]
    assert "exited with code 3" in results[0].log and "SyntaxError: attempt 1" in results[0].log
    lines = feedback.read_text().splitlines()
    assert lines[0] == "--- attempt 1: " and "SyntaxError: attempt 1" in feedback.read_text().split("--- attempt 2")[1]
    assert "fixed = True" in (wt / "surface" / "a.py").read_text()


def test_cmd_coder_that_hangs_is_killed_with_its_children(tmp_path, wt, monkeypatch):
    monkeypatch.setattr(process_mod, "TERM_GRACE_S", 0.5)
    pids = tmp_path / "pids"
    # the child ignores SIGTERM, so only the group SIGKILL after the grace period ends it
    exe = script(tmp_path / "hang.sh", f"""
sh -c 'trap "" TERM; while :; do sleep 1; done' &
echo $! > {pids}
echo $$ >> {pids}
echo started
sleep 300
""")
    t0 = time.monotonic()
    res = CommandCoder(exe, timeout_s=1.0).implement(task(), wt)
    took = time.monotonic() - t0
    assert not res.ok and "killed after its timeout of 1 s" in res.log and "started" in res.log
    assert took < 10, took
    for pid in map(int, pids.read_text().split()):
        assert wait_gone(pid), f"process {pid} of the hung coder survived the timeout"


def test_cmd_coder_background_job_does_not_outlive_a_normal_exit(tmp_path, wt):
    pid_file = tmp_path / "pid"
    exe = script(tmp_path / "bg.sh", f"sleep 300 &\necho $! > {pid_file}\nexit 0\n")
    t0 = time.monotonic()
    res = CommandCoder(exe).implement(task(), wt)
    assert res.ok and time.monotonic() - t0 < 10
    assert wait_gone(int(pid_file.read_text()))


def test_cmd_coder_output_is_capped(tmp_path, wt):
    exe = script(tmp_path / "chatty.sh", "echo FIRSTLINE; head -c 300000 /dev/zero | tr '\\0' x; echo; "
                                         "echo LASTLINE; exit 1\n")
    res = CommandCoder(exe).implement(task(), wt)
    assert not res.ok and res.exit_code == 1
    assert "FIRSTLINE" in res.log and "LASTLINE" in res.log and "bytes left out" in res.log
    assert len(res.log) < 10_000


@pytest.mark.parametrize("make,needle", [
    (lambda p: p / "missing.sh", "no such file"),
    (lambda p: p, "is a folder"),
    (lambda p: (p / "plain.sh").write_text("echo hi\n") and p / "plain.sh", "chmod +x"),
])
def test_cmd_coder_bad_path_is_one_line(tmp_path, make, needle):
    with pytest.raises(ConfigError) as e:
        CommandCoder(make(tmp_path))
    assert needle in str(e.value) and "\n" not in str(e.value) and "cmd:" in str(e.value)


def test_cmd_coder_bare_name_is_looked_up_on_path(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script(bindir / "mycoder", "exit 0\n")
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    assert CommandCoder("mycoder").path == (bindir / "mycoder").resolve()
    with pytest.raises(ConfigError, match="is not on PATH"):
        CommandCoder("no-such-coder-anywhere")


def test_cmd_coder_without_shebang_fails_the_attempt_in_words(tmp_path, wt):
    exe = tmp_path / "noshebang"
    exe.write_bytes(b"\x00\x01garbage")
    exe.chmod(0o755)
    res = CommandCoder(exe).implement(task(), wt)
    assert not res.ok and "could not be started" in res.log


def test_run_in_group_reads_no_stdin(tmp_path):
    # an agent reading stdin (codex exec does) must see EOF at once, not wait for a pipe that never closes
    out = run_in_group(["sh", "-c", "cat; echo done"], tmp_path, dict(os.environ), 5.0)
    assert out.exit_code == 0 and out.output.strip() == "done" and not out.timed_out


# --- command-line agents (fake executables on PATH) ---------------------------------------------------------------


def fake_agent(bindir: Path, name: str, body: str) -> Path:
    """A fake agent that records its argv (one JSON list) to $FAKE_ARGV and then runs `body`."""
    bindir.mkdir(exist_ok=True)
    exe = bindir / name
    exe.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                   "open(os.environ['FAKE_ARGV'], 'w').write(json.dumps(sys.argv))\n" + body)
    exe.chmod(0o755)
    return exe


@pytest.fixture
def agent_env(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_ARGV", str(tmp_path / "argv.json"))
    return bindir, tmp_path / "argv.json"


def test_claude_runs_print_mode_with_its_flags_and_edits(agent_env, wt):
    bindir, argv_file = agent_env
    fake_agent(bindir, "claude", """
with open('surface/a.py', 'a') as f:
    f.write('attn_temperature = 1.0\\n')
print(json.dumps({"type": "result", "subtype": "success", "is_error": False, "num_turns": 3,
                  "result": "done", "total_cost_usd": 0.01}))
""")
    res = CliAgentCoder("claude", max_turns=7).implement(task(), wt)
    argv = json.loads(argv_file.read_text())
    assert res.ok, res.log
    assert argv[1] == "-p" and "model.attn_temperature" in argv[2]
    assert argv[argv.index("--output-format") + 1] == "json"
    assert argv[argv.index("--max-turns") + 1] == "7"
    tools = argv[argv.index("--allowedTools") + 1].split(",")
    assert {"Edit", "Write", "Read"} <= set(tools) and "Bash" not in tools
    assert res.log.startswith("claude finished (subtype: success, num_turns: 3")
    assert "+attn_temperature = 1.0" in git(wt, "diff")


def test_claude_error_result_fails_the_attempt_even_with_exit_0(agent_env, wt):
    bindir, _ = agent_env
    fake_agent(bindir, "claude", 'print(json.dumps({"type": "result", "subtype": "error_max_turns", '
                                 '"is_error": False, "num_turns": 30}))\n')
    res = CliAgentCoder("claude").implement(task(), wt)
    assert not res.ok and res.exit_code == 0 and "error_max_turns" in res.log.splitlines()[0]


def test_claude_result_cut_by_the_output_cap_is_still_read(agent_env, wt):
    bindir, _ = agent_env
    fake_agent(bindir, "claude", 'print(json.dumps({"type": "result", "subtype": "success", "is_error": True, '
                                 '"result": "x" * 50000}))\n')
    res = CliAgentCoder("claude").implement(task(), wt)
    assert not res.ok and res.log.startswith("claude reported a failure")


def test_codex_runs_exec_in_a_workspace_write_sandbox(agent_env, wt):
    bindir, argv_file = agent_env
    fake_agent(bindir, "codex", """
sys.stdin.read()  # hangs unless stdin is closed
open('surface/b.py', 'a').write('w = 4\\n')
print('final message')
""")
    res = CliAgentCoder("codex", timeout_s=20).implement(task(), wt)
    argv = json.loads(argv_file.read_text())
    assert res.ok, res.log
    assert argv[1] == "exec" and argv[argv.index("--sandbox") + 1] == "workspace-write"
    assert argv[-1].startswith("# Task: attn-temp")
    assert changed_paths(wt, "HEAD") == ["surface/b.py"]


def test_aider_runs_with_message_files_and_leaves_no_litter(agent_env, wt):
    bindir, argv_file = agent_env
    fake_agent(bindir, "aider", """
os.makedirs('.aider.tags.cache.v4', exist_ok=True)
open('.aider.tags.cache.v4/cache.db', 'w').write('x')
hist = sys.argv[sys.argv.index('--chat-history-file') + 1]
open(hist, 'w').write('chat')
open('surface/a.py', 'a').write('t = 2\\n')
""")
    res = CliAgentCoder("aider").implement(task(files=["surface/a.py", "surface/b.py"]), wt)
    argv = json.loads(argv_file.read_text())
    assert res.ok, res.log
    for flag in ("--yes-always", "--no-auto-commits", "--no-dirty-commits", "--no-gitignore"):
        assert flag in argv
    assert "model.attn_temperature" in argv[argv.index("--message") + 1]
    assert argv[-2:] == ["surface/a.py", "surface/b.py"]
    assert not Path(argv[argv.index("--chat-history-file") + 1]).is_relative_to(wt.resolve())
    assert changed_paths(wt, "HEAD") == ["surface/a.py"]  # no cache folder, no history, no .gitignore edit
    assert git(wt, "log", "--oneline").count("\n") == 1  # aider did not commit


@pytest.mark.parametrize("kind,hint", [("claude", "npm install -g @anthropic-ai/claude-code"),
                                       ("codex", "npm install -g @openai/codex"),
                                       ("aider", "pip install aider-chat")])
def test_missing_agent_is_one_line_with_the_install_command(kind, hint, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError) as e:
        CliAgentCoder(kind)
    assert hint in str(e.value) and "not on PATH" in str(e.value) and "\n" not in str(e.value)


def test_unknown_agent_kind_is_refused():
    with pytest.raises(ConfigError, match="claude, codex, aider"):
        CliAgentCoder("cursor")


def test_agent_executable_can_be_given(tmp_path, wt):
    exe = fake_agent(tmp_path / "elsewhere", "my-claude", 'print(json.dumps({"subtype": "success"}))\n')
    os.environ["FAKE_ARGV"] = str(tmp_path / "argv.json")
    try:
        res = CliAgentCoder("claude", exe).implement(task(), wt)
    finally:
        del os.environ["FAKE_ARGV"]
    assert res.ok and json.loads((tmp_path / "argv.json").read_text())[0] == str(exe)


# --- allowed paths ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path,pattern,hit", [
    ("surface/gpt.py", "surface/**", True),
    ("surface/sub/deep/x.py", "surface/**", True),
    ("surfaces/x.py", "surface/**", False),
    ("x/surface/gpt.py", "surface/**", False),
    ("surface/gpt.py", "surface", True),          # a folder pattern covers what is under it
    ("surface/sub/x.py", "surface/*", True),       # surface/sub matches, so everything under it does
    ("surface/a.pyc", "surface/*.py", False),
    ("a.py", "**/*.py", True),
    ("d/e/a.py", "**/*.py", True),
    ("d/e/a.pyc", "**/*.py", False),
    ("workspace.yaml", "workspace.yaml", True),
    ("workspace.yaml.bak", "workspace.yaml", False),
    (".autoresearch/state.yaml", ".autoresearch/**", True),
    ("design/baselines.yaml", "design/baselines.yaml", True),
    ("design/plan.md", "design/baselines.yaml", False),
    ("surface/a1.py", "surface/a[0-9].py", True),
    ("surface/ab.py", "surface/a[!0-9].py", True),
    ("surface/a1.py", "surface/a[!0-9].py", False),
    ("surface/a.py", "./surface/?.py", True),
    ("a+b(c).py", "a+b(c).py", True),              # regex characters are literal
])
def test_match_glob(path, pattern, hit):
    assert match_glob(path, pattern) is hit


def test_first_match_names_the_glob():
    assert first_match("workspace.yaml", ["surface/**", "workspace.yaml"]) == "workspace.yaml"
    assert first_match("notes.txt", ["surface/**"]) is None


def test_enforce_lists_changes_outside_editable_and_inside_protected(ws, wt):
    base = git(wt, "rev-parse", "HEAD").strip()
    (wt / "surface" / "a.py").write_text("x = 10\n")          # editable: fine
    (wt / "surface" / "new.py").write_text("n = 1\n")         # new untracked, editable: fine
    (wt / "workspace.yaml").write_text("testbed: evil\n")     # protected
    (wt / "notes.txt").write_text("hi\n")                     # untracked, not editable
    (wt / "debug.log").write_text("ignored by .gitignore\n")  # ignored: never in the diff
    (wt / "surface" / "b.py").unlink()                        # deletion inside editable: fine
    problems = enforce(wt, base, ["surface/**"], ["workspace.yaml", ".autoresearch/**"])
    assert problems == ["notes.txt: outside the editable paths (surface/**)",
                        "workspace.yaml: protected (matches workspace.yaml)"]
    assert changed_paths(wt, base) == ["notes.txt", "surface/a.py", "surface/b.py", "surface/new.py",
                                       "workspace.yaml"]


def test_enforce_sees_committed_changes_and_protected_beats_editable(ws, wt):
    base = git(wt, "rev-parse", "HEAD").strip()
    (wt / ".gitignore").write_text("")
    git(wt, "commit", "-qam", "coder committed on its own")
    assert enforce(wt, base, ["surface/**"], []) == [".gitignore: outside the editable paths (surface/**)"]
    assert enforce(wt, base, ["**"], [".gitignore"]) == [".gitignore: protected (matches .gitignore)"]
    assert enforce(wt, git(wt, "rev-parse", "HEAD").strip(), ["surface/**"], []) == []


def test_enforce_with_a_bad_base_commit_is_one_line(wt):
    with pytest.raises(AutoresearchError) as e:
        enforce(wt, "0" * 40, ["surface/**"], [])
    assert "\n" not in str(e.value) and "base commit" in str(e.value)


def test_cmd_coder_writing_outside_editable_paths_is_reported(tmp_path, wt):
    exe = script(tmp_path / "sneaky.sh", "echo 'x = 2' >> surface/a.py\necho 'testbed: mine' > workspace.yaml\n"
                                         "mkdir -p tests && echo 'def test(): pass' > tests/test_x.py\n")
    base = git(wt, "rev-parse", "HEAD").strip()
    assert CommandCoder(exe).implement(task(), wt).ok
    assert enforce(wt, base, ["surface/**"], ["workspace.yaml"]) == [
        "tests/test_x.py: outside the editable paths (surface/**)", "workspace.yaml: protected (matches workspace.yaml)"]


# --- patch:FILE -------------------------------------------------------------------------------------------------------


def make_patch(tree: Path, path: str, text: str, out: Path) -> Path:
    """A `git diff` of writing `text` to `path` in `tree` (then undone)."""
    old = (tree / path).read_text()
    (tree / path).write_text(text)
    out.write_text(git(tree, "diff"))
    (tree / path).write_text(old)
    return out


def test_patch_applies_and_rechecks(tmp_path, ws, wt):
    p = make_patch(ws, "surface/a.py", "x = 1\ny = 3\n", tmp_path / "good.diff")
    coder = PatchCoder(p)
    coder.precheck(ws)
    res = coder.implement(task(), wt)
    assert res.ok and res.exit_code is None and "applied good.diff (surface/a.py)" in res.log
    assert (wt / "surface" / "a.py").read_text() == "x = 1\ny = 3\n"
    assert (ws / "surface" / "a.py").read_text() == "x = 1\ny = 2\n"  # the user's checkout is untouched


def test_patch_that_does_not_apply_is_one_line_naming_file_hunk_and_fix(tmp_path, ws, wt):
    p = make_patch(ws, "surface/a.py", "x = 1\ny = 3\n", tmp_path / "stale.diff")
    (wt / "surface" / "a.py").write_text("x = 100\ny = 200\n")
    git(wt, "commit", "-qam", "moved on")
    coder = PatchCoder(p)
    with pytest.raises(ConfigError) as e:
        coder.precheck(wt)
    msg = str(e.value)
    assert "\n" not in msg and "stale.diff does not apply" in msg and "patch failed: surface/a.py:1" in msg
    assert "git diff > FILE" in msg
    res = coder.implement(task(), wt)
    assert not res.ok and "patch failed: surface/a.py:1" in res.log
    assert git(wt, "status", "--porcelain") == ""  # --check first: nothing half-applied


def test_patch_retry_resets_the_worktree_to_its_base_and_says_it_cannot_react(tmp_path, ws, wt):
    p = make_patch(ws, "surface/a.py", "x = 1\ny = 3\n", tmp_path / "good.diff")
    coder = PatchCoder(p)
    assert coder.implement(task(), wt).ok
    (wt / "surface" / "junk.py").write_text("broken(\n")  # a later step dirtied the tree
    res = coder.implement(task(), wt, "SyntaxError in surface/junk.py")
    assert res.ok and "cannot react to feedback" in res.log and "reset the worktree to its base" in res.log
    assert not (wt / "surface" / "junk.py").exists()
    assert git(wt, "status", "--porcelain").split() == ["M", "surface/a.py"]


def test_patch_already_committed_counts_as_applied(tmp_path, ws, wt):
    p = make_patch(ws, "surface/a.py", "x = 1\ny = 3\n", tmp_path / "good.diff")
    assert PatchCoder(p).implement(task(), wt).ok
    git(wt, "commit", "-qam", "the pipeline committed the edit")
    res = PatchCoder(p).implement(task(), wt)  # a resumed run: a new coder, HEAD already has it
    assert res.ok and "already applied" in res.log
    PatchCoder(p).precheck(wt)


def test_patch_never_resets_a_persons_checkout(tmp_path, ws):
    p = make_patch(ws, "surface/a.py", "x = 1\ny = 3\n", tmp_path / "good.diff")
    (ws / "surface" / "b.py").write_text("precious = 1\n")  # uncommitted work of a person on `main`
    res = PatchCoder(p).implement(task(), ws, "retry")
    assert not res.ok and "refusing to reset" in res.log
    assert (ws / "surface" / "b.py").read_text() == "precious = 1\n"


@pytest.mark.parametrize("content,needle", [(None, "no such file"), ("", "is empty")])
def test_patch_file_missing_or_empty_is_one_line(tmp_path, content, needle):
    p = tmp_path / "x.diff"
    if content is not None:
        p.write_text(content)
    with pytest.raises(ConfigError) as e:
        PatchCoder(p)
    assert needle in str(e.value) and "\n" not in str(e.value)


def test_not_a_patch_is_reported(tmp_path, wt):
    p = tmp_path / "notes.diff"
    p.write_text("just some words\n")
    with pytest.raises(ConfigError, match="No valid patches"):
        PatchCoder(p).precheck(wt)


def test_patch_paths():
    diff = ("--- a/x.py\n+++ b/x.py\n@@ -1 +1 @@\n-a\n+b\n--- /dev/null\n+++ b/new.py\n@@ -0,0 +1 @@\n+n\n"
            "--- a/old.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-o\n")
    assert patch_paths(diff) == ["x.py", "new.py", "old.py"]


# --- the example patches against the LM workspace surface ------------------------------------------------------------


def lm_surface_repo(root: Path) -> Path:
    """A real LM workspace (`research init ROOT --testbed lm`): its surface/ is what the example patches are for."""
    from autoresearch.pipeline.workspace import init_workspace

    init_workspace(root, "lm", preset="tiny")
    return root


def load_surface(root: Path):
    """Import root/surface as a package under a unique name; returns (common_config, gpt) modules."""
    name = "surface_" + hashlib.sha1(str(root).encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, root / "surface" / "__init__.py",
                                                  submodule_search_locations=[str(root / "surface")])
    pkg = importlib.util.module_from_spec(spec)
    sys.modules[name] = pkg
    spec.loader.exec_module(pkg)
    return importlib.import_module(f"{name}.common_config"), importlib.import_module(f"{name}.gpt")


@pytest.mark.parametrize("name", ["good.diff", "bad.diff"])
def test_example_patch_applies_to_the_lm_surface(tmp_path, name):
    root = lm_surface_repo(tmp_path / "ws")
    PatchCoder(EXAMPLES / name).precheck(root)
    git(root, "apply", str(EXAMPLES / name))
    assert "attn_temperature" in (root / "surface" / "common_config.py").read_text()
    assert patch_paths((EXAMPLES / name).read_text()) == ["surface/common_config.py", "surface/gpt.py"]


def logits(root: Path, **model) -> object:
    """Logits of a micro GPT built from `root`'s surface (seeded), for a fixed batch."""
    import torch

    cc, gpt = load_surface(root)
    cfg = cc.ModelConfig(d_model=32, n_layers=2, n_heads=2, n_kv_heads=1, d_ff=64, seq_len=16, **model)
    torch.manual_seed(0)
    net = gpt.GPT(cfg, vocab_size=64)
    x = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(1))
    return net(x).detach()


def test_good_patch_keeps_the_baseline_path_and_bad_patch_does_not(tmp_path):
    import torch

    root = lm_surface_repo(tmp_path / "ws")
    trees = {}
    for name in ("good", "bad"):
        trees[name] = tmp_path / name
        git(root, "worktree", "add", "-q", "-b", f"idea/{name}/v1", str(trees[name]))
        assert PatchCoder(EXAMPLES / f"{name}.diff").implement(task(), trees[name]).ok
    base = logits(root)
    assert torch.equal(base, logits(trees["good"]))                               # flag off: bit-identical
    assert not torch.equal(base, logits(trees["good"], attn_temperature=0.5))  # flag on: it does something
    assert not torch.equal(base, logits(trees["bad"]))                            # bad: the baseline changed


def test_examples_readme_names_both_patches():
    text = (EXAMPLES / "README.md").read_text()
    assert "good.diff" in text and "bad.diff" in text and shutil.which("git")
