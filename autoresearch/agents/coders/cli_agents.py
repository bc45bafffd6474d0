"""Coders `claude`, `codex` and `aider`: command-line coding agents run non-interactively in the worktree.

Each runs exactly like a `cmd:` coder (command.py `run_coder`: same task file and environment, own process group,
timeout, capped output, stdin from /dev/null); only the argv differs — each agent's documented non-interactive form
(DESIGN.md §7):
- Claude Code: `claude -p TASK --output-format json --max-turns N --allowedTools Read,Edit,...` (print mode; only
  the file tools are pre-approved, so it cannot run shell commands; the JSON result says whether it stopped on an
  error or on its turn limit, which makes the attempt fail even with exit code 0);
- Codex: `codex exec --sandbox workspace-write --skip-git-repo-check TASK` (writes confined to the worktree; exec
  never asks for approval; stdin must not be left open or it waits for more input);
- aider: `aider --yes-always --no-auto-commits --no-dirty-commits --no-gitignore --message TASK FILES` (the pipeline
  commits, not aider; aider must not add `.aider*` to .gitignore; its chat/input history go to the temporary task
  folder, and the repo-map cache it leaves in the worktree root is removed, so none of it lands in the diff).
The executable is found on PATH (or given); a missing one is a one-line error with the install command. Which paths
the agent may change is enforced afterwards by the pipeline (allowed_paths.py), as for every coder.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autoresearch.agents.coders.command import DEFAULT_TIMEOUT_S, resolve_executable, run_coder
from autoresearch.agents.roles import Coder, CoderResult, TaskSpec
from autoresearch.errors import ConfigError

__all__ = ["CliAgentCoder", "CLI_AGENTS", "INSTALL_HINTS", "CLAUDE_TOOLS"]

CLI_AGENTS = ("claude", "codex", "aider")
INSTALL_HINTS = {
    "claude": "install Claude Code (`npm install -g @anthropic-ai/claude-code`) or give its path",
    "codex": "install the Codex CLI (`npm install -g @openai/codex`) or give its path",
    "aider": "install aider (`python -m pip install aider-chat`) or give its path",
}
CLAUDE_TOOLS = "Read,Edit,MultiEdit,Write,Glob,Grep"
"""Claude Code tools allowed without asking: reading and editing files only."""
_LITTER = {"aider": (".aider.tags.cache*",)}
"""Files an agent leaves in the worktree root that are not part of the edit (removed when the run created them)."""


class CliAgentCoder(Coder):
    """A command-line coding agent (`claude`, `codex` or `aider`) as a coder."""

    def __init__(self, kind: str, executable: str | Path | None = None, *, timeout_s: float = DEFAULT_TIMEOUT_S,
                 max_turns: int = 30, model: str | None = None, extra_args: list[str] | None = None,
                 editable: list[str] | None = None) -> None:
        if kind not in CLI_AGENTS:
            raise ConfigError(f"coder {kind!r} is not a command-line agent; use one of {', '.join(CLI_AGENTS)}")
        self.kind = kind
        self.spec = kind  # type: ignore[misc]  # per instance: which agent
        self.path = resolve_executable(str(executable or kind), kind, INSTALL_HINTS[kind])
        self.timeout_s, self.max_turns, self.model = timeout_s, max_turns, model
        self.extra_args = list(extra_args or [])
        self.editable = editable

    def argv(self, text: str, task_file: Path, task: TaskSpec) -> list[str]:
        """The agent's command line for the task `text` (its file `task_file`; temporary files go beside it)."""
        exe, model = str(self.path), self.model
        if self.kind == "claude":
            return [exe, "-p", text, "--output-format", "json", "--max-turns", str(self.max_turns),
                    "--allowedTools", CLAUDE_TOOLS, *(["--model", model] if model else []), *self.extra_args]
        if self.kind == "codex":
            return [exe, "exec", "--sandbox", "workspace-write", "--skip-git-repo-check",
                    *(["--model", model] if model else []), *self.extra_args, text]
        tmp = task_file.parent
        return [exe, "--yes-always", "--no-auto-commits", "--no-dirty-commits", "--no-gitignore", "--no-stream",
                "--no-pretty", "--no-check-update", "--analytics-disable",
                "--chat-history-file", str(tmp / "aider.chat.history.md"),
                "--input-history-file", str(tmp / "aider.input.history"),
                *(["--model", model] if model else []), *self.extra_args, "--message", text, *task.files]

    def implement(self, task: TaskSpec, worktree: Path, feedback: str | None = None) -> CoderResult:
        worktree = Path(worktree)
        litter = _LITTER.get(self.kind, ())
        before = {p.name for g in litter for p in worktree.glob(g)}
        argv_for: Callable[[str, Path], list[str]] = lambda text, file: self.argv(text, file, task)  # noqa: E731
        res = run_coder(self.spec, argv_for, task, worktree, feedback, timeout_s=self.timeout_s,
                        editable=self.editable)
        for g in litter:
            for p in worktree.glob(g):
                if p.name in before:
                    continue
                if p.is_dir():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink(missing_ok=True)
        if self.kind == "claude" and res.ok:
            res = _check_claude(res)
        return res


def _claude_result(output: str) -> dict[str, Any]:
    """The fields of Claude Code's JSON result in `output`: the last line that parses as a JSON object, else (the
    line was cut by the output cap: its long `result` text) its leading fields read with a pattern."""
    for line in reversed(output.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                obj = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(obj, dict):
                return obj
    found: dict[str, Any] = {}
    if m := re.search(r'"subtype"\s*:\s*"([^"]*)"', output):
        found["subtype"] = m.group(1)
    if m := re.search(r'"is_error"\s*:\s*(true|false)', output):
        found["is_error"] = m.group(1) == "true"
    return found


def _check_claude(res: CoderResult) -> CoderResult:
    """Fail an exit-0 Claude Code run whose JSON result reports an error (e.g. subtype `error_max_turns`), and put
    its turns and cost in the log's first line."""
    obj = _claude_result(res.log)
    if not obj:
        return res
    subtype = str(obj.get("subtype", ""))
    failed = bool(obj.get("is_error")) or subtype not in ("", "success")
    facts = [f"{k}: {obj[k]}" for k in ("subtype", "num_turns", "total_cost_usd") if k in obj]
    head = ("claude reported a failure" if failed else "claude finished") + (f" ({', '.join(facts)})" if facts else "")
    return CoderResult(ok=not failed, log=f"{head}\n{res.log}", exit_code=res.exit_code, seconds=res.seconds)
