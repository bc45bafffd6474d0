"""Coder `cmd:PATH`: any executable, run in the worktree with the task as a file and in the environment.

The contract an executable sees (docs/pipeline.md repeats it):
- cwd = the idea version's worktree (a git worktree on the branch `idea/<name>/v<k>`; never the user's checkout);
- `AUTORESEARCH_TASK_FILE`: path of the task as Markdown (`.autoresearch-task.md`, written in a temporary folder
  OUTSIDE the worktree, so it never lands in the diff; removed afterwards);
- `AUTORESEARCH_TASK`: the same text; `AUTORESEARCH_FEEDBACK`: the capped error of the previous failed attempt
  ("" on the first attempt; also a section of the task file); `AUTORESEARCH_WORKTREE`: the worktree's path;
- stdin is /dev/null; stdout and stderr are captured together and kept capped (head + tail);
- exit 0 = "I made my edit"; anything else = the attempt failed, its output goes back as feedback;
- it must finish within the timeout; then its whole process group is killed (SIGTERM, then SIGKILL).
Its edit is whatever it changed in the worktree: the pipeline reads it back as the git diff, checks the allowed
paths (allowed_paths.py) and commits it. The command-line agents (cli_agents.py) run through the same `run_coder`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from autoresearch.agents.coders.process import run_in_group
from autoresearch.agents.coders.task_prompt import TASK_FILE_NAME, render_task
from autoresearch.agents.roles import Coder, CoderResult, TaskSpec
from autoresearch.errors import ConfigError

__all__ = ["CommandCoder", "run_coder", "resolve_executable", "DEFAULT_TIMEOUT_S", "ENV_TASK_FILE", "ENV_TASK",
           "ENV_FEEDBACK", "ENV_WORKTREE"]

DEFAULT_TIMEOUT_S = 1800.0
"""Wall-clock limit of one coder run (30 min: a command-line agent's edit with a few test runs)."""
ENV_TASK_FILE = "AUTORESEARCH_TASK_FILE"
ENV_TASK = "AUTORESEARCH_TASK"
ENV_FEEDBACK = "AUTORESEARCH_FEEDBACK"
ENV_WORKTREE = "AUTORESEARCH_WORKTREE"
_ENV_VALUE_MAX = 100_000
"""Linux refuses a single environment string over 128 KiB (MAX_ARG_STRLEN); the file always has the full text."""
_GIT_ENV = ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR")
"""Set when the pipeline itself runs inside a git hook; they would point the coder's git at another repository."""


def resolve_executable(name: str, spec: str, hint: str) -> Path:
    """The absolute path of the executable `name` (a path, or a bare name looked up on PATH); a one-line ConfigError
    naming `spec` and `hint` when it is missing, a folder or not executable."""
    p = Path(name).expanduser()
    if "/" not in name and not p.exists():
        found = shutil.which(name)
        if found is None:
            raise ConfigError(f"coder {spec}: `{name}` is not on PATH; {hint}")
        return Path(found)
    if not p.exists():
        raise ConfigError(f"coder {spec}: no such file {p}; {hint}")
    if p.is_dir():
        raise ConfigError(f"coder {spec}: {p} is a folder, not an executable; {hint}")
    if not os.access(p, os.X_OK):
        raise ConfigError(f"coder {spec}: {p} is not executable; run `chmod +x {p}`")
    return p.resolve()


def _env(task_file: Path, text: str, feedback: str | None, worktree: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _GIT_ENV}
    if len(text) > _ENV_VALUE_MAX:
        text = text[:_ENV_VALUE_MAX] + f"\n[... cut: the full task is in ${ENV_TASK_FILE}]\n"
    env.update({ENV_TASK_FILE: str(task_file), ENV_TASK: text, ENV_FEEDBACK: (feedback or "")[:_ENV_VALUE_MAX],
                ENV_WORKTREE: str(worktree)})
    return env


def run_coder(spec: str, argv_for: Callable[[str, Path], list[str]], task: TaskSpec, worktree: Path, feedback: str | None, *,
              timeout_s: float, editable: list[str] | None = None) -> CoderResult:
    """Write the task file outside the worktree, run `argv_for(task_text, task_file)` (a callable returning the
    argv) in the worktree with the task environment, and turn the outcome into a CoderResult (ok = exit 0 within
    the timeout; log = a header line naming `spec`, the exit and the time, then the capped output)."""
    worktree = Path(worktree).resolve()
    if not worktree.is_dir():
        return CoderResult(ok=False, log=f"coder {spec}: the worktree {worktree} does not exist", seconds=0.0)
    text = render_task(task, feedback, editable)
    with tempfile.TemporaryDirectory(prefix="autoresearch-task-") as tmp:
        task_file = Path(tmp) / TASK_FILE_NAME
        task_file.write_text(text, encoding="utf-8")
        argv = argv_for(text, task_file)
        try:
            out = run_in_group(argv, worktree, _env(task_file, text, feedback, worktree), timeout_s)
        except OSError as e:  # exec format error (no shebang), permission lost since the check...
            return CoderResult(ok=False, exit_code=None, seconds=0.0,
                               log=f"coder {spec} could not be started: {e}; a script needs a `#!` line and the "
                                   f"executable bit")
    if out.timed_out:
        head = (f"coder {spec} was killed after its timeout of {timeout_s:g} s (its process group got SIGTERM, then "
                f"SIGKILL); make it finish sooner or raise the coder timeout")
    else:
        head = f"coder {spec} exited with code {out.exit_code} after {out.seconds:.1f} s"
    log = f"{head}\n{out.output}" if out.output else head
    return CoderResult(ok=out.exit_code == 0 and not out.timed_out, log=log, exit_code=out.exit_code,
                       seconds=out.seconds)


class CommandCoder(Coder):
    """`cmd:PATH`: runs the executable PATH in the worktree (see the module docstring for what it sees)."""

    def __init__(self, path: str | Path, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 editable: list[str] | None = None) -> None:
        self.spec = f"cmd:{path}"  # type: ignore[misc]  # per instance: the spec names the executable
        self.path = resolve_executable(str(path), self.spec, "give the path of an executable file, e.g. "
                                                             "cmd:./my_coder.sh")
        self.timeout_s = timeout_s
        self.editable = editable

    def implement(self, task: TaskSpec, worktree: Path, feedback: str | None = None) -> CoderResult:
        return run_coder(self.spec, lambda _text, _file: [str(self.path)], task, worktree, feedback,
                         timeout_s=self.timeout_s, editable=self.editable)
