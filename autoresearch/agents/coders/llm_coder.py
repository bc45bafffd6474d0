"""Coder `openai:MODEL[@URL]`, `anthropic:MODEL`, ... : a language model edits the worktree with SEARCH/REPLACE blocks.

One conversation per idea version (DESIGN.md §7: the Coder keeps a persistent session and fixes only the error it is
told). A first attempt (`feedback` None), another task name or another worktree starts a new conversation: the
template (`templates/coder.md`, overridable as DIR/prompts/coder.md) with the task (`render_task`) and the files'
current text. A later attempt of the same version continues it with the pipeline's error ("fix only this") and the
current text of the files edited so far. Each attempt:

1. ask; parse the answer's edit blocks (edit_blocks.py) and apply them under the editable globs (lenient matching);
2. blocks that failed (or an answer without blocks, or one cut off at the token limit) go back to the model with the
   reason and the file's closest lines — at most `max_reasks` (2) times;
3. still failing: one request for the whole new content of the files whose blocks failed (the fallback for weak
   models; aider uses whole files for them), written only when it does not elide code.

`whole_file=True` (workspace.yaml `agents.settings.coder.whole_file`) asks for whole files from the start
(`templates/coder_whole.md`). The result's `ok` is True when every block of the attempt ended up applied; its log
lists each applied and failed block. Every call goes through LLMSession (budgets before the call, transcript);
BudgetError and LLMError propagate to the pipeline. The coder never commits and never runs anything: the pipeline
reads the edit back as the git diff and enforces the allowed paths again (allowed_paths.enforce).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from autoresearch.agents.coders.allowed_paths import match_glob
from autoresearch.agents.coders.edit_blocks import (
    ApplyResult,
    BlockFailure,
    apply_edit_blocks,
    parse_whole_files,
    scan_edit_blocks,
    write_whole_files,
)
from autoresearch.agents.coders.process import cap_text
from autoresearch.agents.coders.task_prompt import render_task
from autoresearch.agents.llm.backend import Backend, LLMRequest
from autoresearch.agents.llm.session import AgentEnv, LLMSession
from autoresearch.agents.llm.templates import prompt_messages
from autoresearch.agents.roles import Coder, CoderResult, TaskSpec
from autoresearch.errors import ConfigError

__all__ = ["LLMCoder", "select_files", "render_files", "KNOBS"]

KNOBS = ("whole_file", "max_reasks", "max_tokens", "max_chars")
"""workspace.yaml `agents.settings.coder` knobs: whole files from the start; re-asks per attempt (2); answer tokens
(4096, whole files 8192); conversation characters kept (16 x context_tokens)."""

_FILES_MARK = "\x00autoresearch-files\x00"
"""Stands for the files in the rendered template: file text must not pass through the template's tidying (it
collapses blank lines, and a SEARCH part must quote them as they are)."""
_SKIP_DIRS = {".git", ".autoresearch", "__pycache__", ".venv", "node_modules", ".mypy_cache", ".pytest_cache",
              ".ruff_cache"}
_MAX_WALK = 2000
"""Files looked at when choosing which editable files to show (a huge tree is not walked to the end)."""


def _fence(text: str) -> str:
    """A backtick fence longer than any run of backticks at a line start in `text`."""
    longest = max((len(x) - len(x.lstrip("`")) for x in text.splitlines()), default=0)
    return "`" * max(3, longest + 1)


def render_files(root: Path, paths: list[str]) -> str:
    """Each file as `PATH` then its text in a fence (longer than any fence inside it); a missing file is one line
    saying so (create it with an empty SEARCH part)."""
    parts = []
    for rel in paths:
        p = Path(root) / rel
        if not p.is_file():
            parts.append(f"{rel}: does not exist yet (create it with an empty SEARCH part)")
            continue
        text = p.read_bytes().decode("utf-8", errors="replace").replace("\r\n", "\n")
        fence = _fence(text)
        lang = "python" if rel.endswith(".py") else ""
        parts.append(f"{rel}\n{fence}{lang}\n{text}{'' if text.endswith(chr(10)) or not text else chr(10)}{fence}")
    return "\n\n".join(parts)


def _editable_files(root: Path, globs: list[str]) -> list[str]:
    """The .py files under `root` that an editable glob matches, workspace-relative, sorted."""
    out: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
        for name in sorted(filenames):
            if not name.endswith(".py"):
                continue
            rel = Path(dirpath, name).relative_to(root).as_posix()
            if any(match_glob(rel, g) for g in globs):
                out.append(rel)
            if len(out) >= _MAX_WALK:
                return out
    return out


def select_files(root: Path, task: TaskSpec, globs: list[str], budget_tokens: int) -> tuple[list[str], list[str]]:
    """(files to show in full, editable files left out). The task's files are always shown; without them, the
    editable .py files — config files first, then the files the task text names, then the others by how often they
    use the task's words (idea words of 4+ letters, the flags' sections; `attention` finds the model file) — while
    their text fits `budget_tokens` (characters / 4)."""
    if task.files:
        return list(dict.fromkeys(task.files)), []
    candidates = _editable_files(Path(root), globs)
    text = f"{task.idea}\n{task.description}\n" + " ".join(f.key for f in task.flags)
    words = {w for w in re.findall(r"[a-z_]{4,}", text.lower())} | {f.key.split(".")[0] for f in task.flags}

    def rank(rel: str) -> tuple[int, int, str]:
        stem = Path(rel).stem
        if "config" in stem:
            return 0, 0, rel
        if stem != "__init__" and stem in text:
            return 1, 0, rel
        try:
            body = Path(root, rel).read_text(encoding="utf-8", errors="replace").lower()
        except OSError:
            body = ""
        return 2 if stem != "__init__" else 3, -sum(body.count(w) for w in words), rel

    shown, left, used = [], [], 0
    for rel in sorted(candidates, key=rank):
        cost = (Path(root, rel).stat().st_size + len(rel) + 16) // 4
        if used + cost <= budget_tokens:
            shown.append(rel)
            used += cost
        else:
            left.append(rel)
    return shown, left


def _failures_text(failed: list[BlockFailure], total: int) -> str:
    lines = [f"{len(failed)} of your {total} edit block(s) failed and were NOT applied"
             + (" (the others were applied: do not send them again)" if len(failed) < total else "") + ":", ""]
    for i, f in enumerate(failed, 1):
        first = f.block.search.strip().splitlines()[0] if f.block.search.strip() else "(empty)"
        lines += [f"## Failed block {i}: {f.block.path or '(no path)'} (SEARCH starts with `{first.strip()[:80]}`)",
                  "", f.reason]
        if f.closest:
            lines += ["", f"The closest lines in {f.block.path} (line numbers are not part of the file):", "```",
                      f.closest, "```"]
        lines.append("")
    lines.append("Send corrected SEARCH/REPLACE blocks for the failed blocks only, copying the SEARCH lines exactly "
                 "from the file.")
    return "\n".join(lines)


class LLMCoder(Coder):
    """A language model as the coder: SEARCH/REPLACE edit blocks, re-asks with the closest lines, whole-file fallback;
    one conversation per idea version (module doc)."""

    def __init__(self, backend_spec: str, *, env: AgentEnv, backend: Backend | None = None,
                 whole_file: bool | None = None, max_reasks: int = 2, max_tokens: int | None = None) -> None:
        knobs: dict[str, Any] = dict((env.settings or {}).get("coder") or {})
        unknown = sorted(set(knobs) - set(KNOBS))
        if unknown:
            raise ConfigError(f"workspace.yaml agents.settings.coder has unknown knob(s) {', '.join(unknown)}; "
                              f"use {', '.join(KNOBS)}")
        for name in ("max_reasks", "max_tokens", "max_chars"):
            v = knobs.get(name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < (0 if name == "max_reasks"
                                                                                         else 1)):
                raise ConfigError(f"workspace.yaml agents.settings.coder.{name} must be a whole number "
                                  f"{'>= 0' if name == 'max_reasks' else '>= 1'}, got {v!r}")
        if not isinstance(knobs.get("whole_file", False), bool):
            raise ConfigError(f"workspace.yaml agents.settings.coder.whole_file must be true or false, got "
                              f"{knobs['whole_file']!r}")
        if backend is None:
            from autoresearch.agents.llm.specs import make_backend

            backend = make_backend(backend_spec, prices=env.prices, timeout_s=getattr(env, "timeout_s", 120.0))
        self.spec = backend_spec  # type: ignore[misc]  # per instance: which model
        self.env = env
        self.backend = backend
        self.session = LLMSession(env, "coder", backend)
        self.whole_file = bool(knobs.get("whole_file", False) if whole_file is None else whole_file)
        self.max_reasks = int(knobs.get("max_reasks", max_reasks))
        self.max_tokens = int(max_tokens or knobs.get("max_tokens") or (8192 if self.whole_file else 4096))
        self.max_chars = int(knobs.get("max_chars") or 16 * env.context_tokens)
        """the conversation is trimmed to about this many characters (default: 4x the file budget)."""
        self.messages: list[dict[str, str]] = []
        """the current conversation (system, user, assistant, ...), as sent."""
        self._key: tuple[str, str] | None = None
        self._touched: list[str] = []

    # --- the conversation -------------------------------------------------------------------------------------------

    def _ask(self, text: str) -> tuple[str, bool]:
        """(the answer, whether it was cut off at the token limit), both kept in the conversation."""
        self.messages.append({"role": "user", "content": text})
        self._trim()
        reply = self.session.ask(LLMRequest(list(self.messages), max_tokens=self.max_tokens, temperature=0.0,
                                            role="coder"))
        answer, cut = reply.text or "", reply.finish_reason == "length"
        self.messages.append({"role": "assistant", "content": answer + ("\n[cut off at the token limit]" if cut
                                                                         else "")})
        return answer, cut

    def _trim(self) -> None:
        """Drop the oldest user/assistant pairs after the first answer while the conversation is longer than
        `max_chars` (the first request and answer stay: they hold the task and the first edit)."""
        head = next((i + 1 for i, m in enumerate(self.messages) if m["role"] == "assistant"), len(self.messages))
        while (sum(len(m["content"]) for m in self.messages) > self.max_chars
               and len(self.messages) - head > 2):
            del self.messages[head:head + 2]

    def _start(self, task: TaskSpec, root: Path, feedback: str | None, globs: list[str]) -> str:
        shown, left = select_files(root, task, globs, self.env.context_tokens)
        other = ("Other editable files (not shown; edit them only if you must): " + ", ".join(left)) if left else ""
        msgs = prompt_messages("coder_whole" if self.whole_file else "coder", self.env,
                               task=render_task(task, feedback, globs), editable=", ".join(globs),
                               files=_FILES_MARK, other_files=other or "(none)")
        files = render_files(root, shown) if shown else "(no files shown)"
        self.messages = [{"role": m["role"], "content": m["content"].replace(_FILES_MARK, files)} for m in msgs[:-1]]
        self._touched = list(shown) if task.files else []
        return msgs[-1]["content"].replace(_FILES_MARK, files)

    def _continue(self, root: Path, feedback: str | None) -> str:
        files = render_files(root, self._touched) if self._touched else ""
        how = ("whole files" if self.whole_file else "SEARCH/REPLACE blocks")
        text = ["The pipeline reports an error with the edit (it is kept in the files):", "", "```",
                (feedback or "the previous attempt failed").rstrip(), "```", "",
                f"Fix only this error; keep the rest of the edit. Answer with {how}."]
        if files:
            text += ["", "The edited files as they are now:", "", files]
        return "\n".join(text)

    # --- one attempt -----------------------------------------------------------------------------------------------

    def implement(self, task: TaskSpec, worktree: Path, feedback: str | None = None) -> CoderResult:
        root = Path(worktree)
        key = (task.name, str(root.resolve()))
        globs = list(self.env.editable or task.files or ["**"])

        def allowed(rel: str) -> bool:
            return any(match_glob(rel, g) for g in globs)

        if feedback is None or key != self._key or not self.messages:
            self._key = key
            prompt = self._start(task, root, feedback, globs)
        else:
            prompt = self._continue(root, feedback)
        log: list[str] = [f"coder {self.spec}"]
        applied: list[str] = []
        pending: list[BlockFailure] = []
        answer, cut = self._ask(prompt)
        for reask in range(self.max_reasks + 1):
            result, problems, whole = self._apply(answer, cut, root, allowed)
            applied += [b.path for b in result.applied] + whole
            log += [f"applied {b.path}" for b in result.applied] + [f"wrote {p}" for p in whole]
            # a refused block (a path the coder may not write) is logged, never retried: the model is told only when
            # nothing else landed. Other failures: this round's, and the earlier ones on files this round did not
            # touch (a re-ask that resends only some of the failed blocks leaves the others failed).
            log += [f"refused {f.block.path}: {f.reason}" for f in result.failed if f.refused]
            failed = [f for f in result.failed if not f.refused]
            seen = {b.path for b in result.applied} | {f.block.path for f in result.failed} | set(whole)
            pending = [f for f in pending if f.block.path not in seen] + failed
            if not problems and not pending and applied:
                break
            if reask == self.max_reasks:
                break
            report = pending + [f for f in result.failed if f.refused]
            answer, cut = self._ask(self._reask_text(result, problems, report))
        if pending and not self.whole_file:
            paths = sorted({f.block.path for f in pending if f.block.path and allowed(f.block.path)
                            and (root / f.block.path).is_file()})
            if paths:
                log.append(f"whole-file fallback for {', '.join(paths)}")
                written, refused = self._whole_file_fallback(root, paths, allowed)
                applied += written
                log += [f"wrote {p}" for p in written] + [f"refused {r}" for r in refused]
                pending = [f for f in pending if f.block.path not in written]
        self._touched = list(dict.fromkeys(self._touched + applied))
        log += [f"failed {f.block.path or '(no path)'}: {f.reason}" for f in pending]
        if not applied and not pending:
            log.append("failed: the model proposed no edit")
        ok = bool(applied) and not pending
        log.append(f"{self.session.calls} call(s) so far in this session")
        return CoderResult(ok, cap_text("\n".join(log), 3000, 3000))

    def _apply(self, answer: str, truncated: bool, root: Path, allowed: Any) -> tuple[ApplyResult, list[str],
                                                                                     list[str]]:
        """(what the edit blocks did, problems with the answer's format, whole files written)."""
        blocks, problems = scan_edit_blocks(answer)
        if truncated:
            problems.append("your answer was cut off at the token limit; send fewer, smaller blocks")
        result = apply_edit_blocks(root, blocks, allowed=allowed)
        whole: list[str] = []
        if not blocks and self.whole_file and not truncated:
            files = parse_whole_files(answer)
            whole, refused = write_whole_files(root, files, allowed=allowed)
            problems += refused
            if not files:
                problems.append("your answer has no file: give each file's path on a line, then its whole new "
                                "content in a ``` fence")
        elif not blocks and not problems:
            problems.append("your answer has no SEARCH/REPLACE block: give the path on a line, then ```, "
                            "<<<<<<< SEARCH, the lines to find, =======, the new lines, >>>>>>> REPLACE, ```")
        return result, problems, whole

    def _reask_text(self, result: ApplyResult, problems: list[str], failed: list[BlockFailure]) -> str:
        """The re-ask: what was wrong with the answer's format, the blocks that failed (this answer's, and earlier
        ones not sent again) with the closest lines, and which blocks were applied (not to be sent again: a block
        whose REPLACE keeps its SEARCH lines would apply twice)."""
        parts = []
        if problems:
            parts += ["Your answer could not be used completely:", *(f"- {p}" for p in problems), ""]
        if result.applied and not failed:
            parts += [f"Applied already: {len(result.applied)} block(s) "
                      f"({', '.join(dict.fromkeys(b.path for b in result.applied))}); do not send them again.", ""]
        if failed:
            parts.append(_failures_text(failed, len(result.applied) + len(failed)))
        elif not self.whole_file:
            parts.append("Send the SEARCH/REPLACE blocks for the rest of the edit.")
        else:
            parts.append("Send the complete new content of each file you change.")
        return "\n".join(parts)

    def _whole_file_fallback(self, root: Path, paths: list[str], allowed: Any) -> tuple[list[str], list[str]]:
        text = "\n".join([
            "The edit blocks still do not apply. Instead, send the COMPLETE new content of "
            + ("this file" if len(paths) == 1 else "these files") + f" ({', '.join(paths)}), with the task's change "
            "made: its path alone on a line, then every line of the new file in a ``` fence. Never write `...` or "
            "\"rest unchanged\": whatever you leave out is deleted.", "", "The files as they are now:", "",
            render_files(root, paths)])
        answer, cut = self._ask(text)
        if cut:
            return [], [f"{', '.join(paths)}: the answer was cut off at the token limit"]
        files = {p: t for p, t in parse_whole_files(answer).items() if p.strip().removeprefix("./") in paths}
        if not files:
            return [], [f"{', '.join(paths)}: the answer holds no whole file for them"]
        return write_whole_files(root, files, allowed=allowed)
