"""The per-coder path filter: which paths a coder changed in its worktree, and which of them it was not allowed to.

The pipeline calls `enforce` right after the coder: every changed path (tracked changes against the version's base
commit, committed or not, deletions included, plus new untracked files that git does not ignore) must match an
editable glob and no protected glob. A violation refuses the edit (the attempt fails; it is never silently
reverted). The glob matcher here is the one of the whole pipeline (the workspace's `editable` / `protected` lists),
so that the coder's filter and the workspace integrity check read a pattern the same way.

Glob rules (workspace-relative, `/`-separated, anchored at the worktree root):
- `*` matches within one path segment, `?` one character of a segment, `[abc]` / `[!abc]` a character class;
- `**` matches any number of segments: `surface/**` = everything under surface/, `**/*.py` = every .py file;
- a pattern that matches a folder matches everything under it (`surface` = `surface/**`), as in .gitignore;
  `surface/**` also matches the folder `surface` itself.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from autoresearch.errors import PipelineError

__all__ = ["match_glob", "first_match", "changed_paths", "enforce"]


@lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    p = pattern.strip().removeprefix("./").lstrip("/").rstrip("/")
    out, i = [], 0
    while i < len(p):
        c = p[i]
        if p.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if p.startswith("**", i):
            out.append(".*")
            i += 2
            if i == len(p) and out[-2:-1] == [re.escape("/")]:  # `dir/**` also names the folder itself
                out[-2:] = ["(?:/.*)?"]
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[" and (end := p.find("]", i + 2 if p[i + 1:i + 2] in ("!", "]") else i + 1)) != -1:
            body = p[i + 1:end]
            neg = body.startswith("!")
            body = body[1:] if neg else body
            out.append(f"[{'^' if neg else ''}{body.replace(chr(92), chr(92) * 2)}]")
            i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out))


def match_glob(path: str, pattern: str) -> bool:
    """True if the workspace-relative `path` (or a folder above it) matches `pattern` (rules in the module doc)."""
    rx = _regex(pattern)
    parts = path.strip().removeprefix("./").lstrip("/").split("/")
    return any(rx.fullmatch("/".join(parts[:n])) for n in range(len(parts), 0, -1))


def first_match(path: str, patterns: Iterable[str]) -> str | None:
    """The first of `patterns` that matches `path`, or None."""
    return next((g for g in patterns if match_glob(path, g)), None)


def _git_z(tree: Path, *args: str) -> list[str]:
    try:
        proc = subprocess.run(["git", "-C", str(tree), *args], capture_output=True, check=False)
    except FileNotFoundError as e:
        raise PipelineError("`git` is not installed; install git (the research pipeline needs it)") from e
    if proc.returncode != 0:
        err = " ".join(proc.stderr.decode("utf-8", errors="replace").split())[:300]
        raise PipelineError(f"`git {' '.join(args)}` failed in {tree}: {err}; is it a worktree of the workspace "
                                f"and the base commit one of its commits?")
    return [p for p in proc.stdout.decode("utf-8", errors="surrogateescape").split("\0") if p]


def changed_paths(worktree: Path, base_commit: str) -> list[str]:
    """Every path changed in `worktree` since `base_commit`, sorted: tracked changes (committed, staged or not;
    both sides of a rename; deletions) and untracked files that are not ignored."""
    tracked = _git_z(Path(worktree), "diff", "--name-only", "--no-renames", "-z", base_commit, "--")
    untracked = _git_z(Path(worktree), "ls-files", "--others", "--exclude-standard", "-z")
    return sorted(set(tracked) | set(untracked))


def enforce(worktree: Path, base_commit: str, editable_globs: list[str], protected_globs: list[str]) -> list[str]:
    """One line per changed path the coder may not change: `PATH: protected (matches GLOB)` or `PATH: outside the
    editable paths (GLOBS)`; [] when the edit stays inside the allowed paths."""
    problems = []
    for path in changed_paths(worktree, base_commit):
        if (g := first_match(path, protected_globs)) is not None:
            problems.append(f"{path}: protected (matches {g})")
        elif first_match(path, editable_globs) is None:
            problems.append(f"{path}: outside the editable paths ({', '.join(editable_globs) or 'none'})")
    return problems
