"""Plain `git` through subprocess, for the workspace and its idea worktrees: one call = one process, no library.

Commits made here carry a fixed identity and skip hooks and signing (`-c` flags), so they work on a machine without
a git configuration and never stop on a user's pre-commit hook; they are machine commits on idea branches (and the one
"init workspace" commit). A failing command is a one-line PipelineError with the command and git's first error line.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from autoresearch.errors import PipelineError

__all__ = ["git", "git_ok", "commit_args", "IDENTITY"]

IDENTITY = ("-c", "user.name=autoresearch", "-c", "user.email=autoresearch@localhost", "-c", "commit.gpgsign=false")
"""Identity and signing of every commit the pipeline makes."""


def _env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    for key in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):  # a caller's git environment must not redirect us
        env.pop(key, None)
    env["GIT_TERMINAL_PROMPT"] = "0"
    env.setdefault("LC_ALL", "C")
    env.update(extra or {})
    return env


def git(cwd: str | Path, *args: str, env: Mapping[str, str] | None = None, check: bool = True,
        timeout: float = 120.0) -> str:
    """Run `git -C cwd ARGS` and return its stdout (stripped of the final newline); a failure is a one-line
    PipelineError naming the command and git's message (unless `check` is False: then stdout of whatever ran)."""
    cmd = ["git", "-C", str(cwd), *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(env), timeout=timeout)
    except FileNotFoundError:
        raise PipelineError("`git` is not installed (needed for research workspaces); install git") from None
    except subprocess.TimeoutExpired:
        raise PipelineError(f"`git {' '.join(args)}` in {cwd} took more than {timeout:.0f} s; check the repository "
                            "(a lock file .git/index.lock left by a killed git?)") from None
    if check and proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        first = next((ln for ln in lines if ln.startswith(("fatal:", "error:"))), lines[0] if lines else "")
        raise PipelineError(f"`git {' '.join(args)}` failed in {cwd} (exit {proc.returncode}): {first.strip()}")
    return proc.stdout[:-1] if proc.stdout.endswith("\n") else proc.stdout


def git_ok(cwd: str | Path, *args: str) -> bool:
    """Whether `git -C cwd ARGS` exits 0 (output discarded)."""
    try:
        proc = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, env=_env(None), timeout=120)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False
    return proc.returncode == 0


def commit_args(message: str, paths: Sequence[str] = ()) -> list[str]:
    """Arguments of a machine commit of `message` (only `paths` when given), with the fixed identity, no hooks."""
    return [*IDENTITY, "commit", "--no-verify", "--quiet", "-m", message, *(["--", *paths] if paths else [])]
