"""Coder `patch:FILE`: a person's unified diff (e.g. `git diff > my.diff` in a workspace), applied in the worktree.

`git apply --check` runs first, so a patch that does not apply changes nothing and is reported in one line naming
the file, git's first failure (the hunk's file and line, or a missing file) and the fix. `precheck(tree)` runs the
same check without touching anything, so `research run --coder patch:FILE` can refuse a stale patch at the start.

A patch cannot react to feedback: on a retry of the fix loop the worktree is reset to the commit it had when this
coder first saw it (its base) and the same patch is applied again, and the log says so. The reset only ever runs in
an idea version's tree — a linked git worktree or a branch named `idea/...` — never in a person's checkout.
A patch already contained in the tree's HEAD (applies in reverse) counts as applied, so a resumed run does not fail
on an edit it committed before being killed.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from autoresearch.agents.roles import Coder, CoderResult, TaskSpec
from autoresearch.errors import ConfigError

__all__ = ["PatchCoder", "patch_paths"]

_HINT = "make it with `git diff > FILE` in a worktree of the workspace at its current commit"


def _git(tree: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", "-C", str(tree), *args], input=stdin, capture_output=True, check=False)
    except FileNotFoundError as e:
        raise ConfigError("coder patch: `git` is not installed; install git (the pipeline needs it)") from e


def _errors(proc: subprocess.CompletedProcess[bytes]) -> str:
    """git's first two `error:` lines (e.g. `patch failed: surface/gpt.py:120`, `surface/gpt.py: patch does not
    apply`) joined on one line; its whole output when it has none."""
    text = (proc.stderr or proc.stdout).decode("utf-8", errors="replace")
    errs = [ln.removeprefix("error: ").strip() for ln in text.splitlines() if ln.startswith("error: ")]
    return "; ".join(errs[:2]) if errs else " ".join(text.split())[:300] or f"git apply exited {proc.returncode}"


def patch_paths(diff: str) -> list[str]:
    """The paths a unified diff touches (the `b/` side of `+++` lines; the `a/` side for deletions), in order."""
    out: list[str] = []
    minus = ""
    for line in diff.splitlines():
        if line.startswith("--- "):
            minus = line[4:].split("\t")[0].strip()
        elif line.startswith("+++ "):
            plus = line[4:].split("\t")[0].strip()
            path = minus if plus == "/dev/null" else plus
            path = path[2:] if path[:2] in ("a/", "b/") else path
            if path and path not in out:
                out.append(path)
    return out


class PatchCoder(Coder):
    """`patch:FILE`: applies the unified diff FILE in the worktree (the same patch on every attempt)."""

    def __init__(self, path: str | Path) -> None:
        self.spec = f"patch:{path}"  # type: ignore[misc]  # per instance: the spec names the file
        p = Path(path).expanduser()
        if not p.is_file():
            raise ConfigError(f"coder patch:{path}: no such file {p.resolve()}; give the path of a unified diff "
                              f"({_HINT})")
        self.path = p.resolve()
        self.data = self.path.read_bytes()
        if not self.data.strip():
            raise ConfigError(f"coder patch:{path}: {self.path} is empty; {_HINT}")
        self._bases: dict[Path, str] = {}

    # --- checks -----------------------------------------------------------------------------------------------------

    def _applies(self, tree: Path, *extra: str) -> subprocess.CompletedProcess[bytes]:
        return _git(tree, "apply", "--check", *extra, "-", stdin=self.data)

    def _failure(self, tree: Path, proc: subprocess.CompletedProcess[bytes]) -> str:
        head = _git(tree, "rev-parse", "--short", "HEAD").stdout.decode().strip() or "?"
        return (f"coder {self.spec}: {self.path.name} does not apply in {tree} (at {head}): {_errors(proc)}; "
                f"update the patch: {_HINT}")

    def precheck(self, tree: Path) -> None:
        """Raise a one-line ConfigError unless the patch applies to `tree`'s files (or is already in them)."""
        tree = Path(tree)
        proc = self._applies(tree)
        if proc.returncode != 0 and self._applies(tree, "--reverse").returncode != 0:
            raise ConfigError(self._failure(tree, proc))

    # --- the edit ---------------------------------------------------------------------------------------------------

    def _reset(self, tree: Path, base: str) -> str | None:
        """Reset `tree` to `base` (tracked and untracked changes); an error line when `tree` is not an idea
        version's tree."""
        dirs = _git(tree, "rev-parse", "--path-format=absolute", "--git-dir", "--git-common-dir").stdout.split()
        linked = len(dirs) == 2 and dirs[0] != dirs[1]  # a linked worktree has its own git dir
        branch = _git(tree, "symbolic-ref", "--short", "-q", "HEAD").stdout.decode().strip()
        if not linked and not branch.startswith("idea/"):
            return (f"coder {self.spec}: refusing to reset {tree} (branch {branch or 'detached'}) before "
                    f"re-applying the patch: it is not an idea version's worktree; run the pipeline, which works "
                    f"in .autoresearch/worktrees/")
        for args in (("reset", "--hard", "-q", base), ("clean", "-fdq")):
            proc = _git(tree, *args)
            if proc.returncode != 0:
                return f"coder {self.spec}: `git {' '.join(args)}` failed in {tree}: {_errors(proc)}"
        return None

    def implement(self, task: TaskSpec, worktree: Path, feedback: str | None = None) -> CoderResult:
        t0 = time.perf_counter()
        tree = Path(worktree).resolve()

        def done(ok: bool, log: str) -> CoderResult:
            return CoderResult(ok=ok, log=log, exit_code=None, seconds=time.perf_counter() - t0)

        head = _git(tree, "rev-parse", "HEAD")
        if head.returncode != 0:
            return done(False, f"coder {self.spec}: {tree} is not a git worktree with a commit: {_errors(head)}")
        base = self._bases.setdefault(tree, head.stdout.decode().strip())
        notes = []
        if feedback is not None:
            notes.append("a patch cannot react to feedback: the worktree was reset to its base and the same patch "
                         "applied again; to fix the error, edit the patch file")
        dirty = _git(tree, "status", "--porcelain").stdout.strip()
        if dirty or head.stdout.decode().strip() != base:
            problem = self._reset(tree, base)
            if problem:
                return done(False, problem)
            notes.append(f"reset the worktree to its base {base[:12]} first")
        paths = ", ".join(patch_paths(self.data.decode("utf-8", errors="replace"))) or "no paths"
        check = self._applies(tree)
        if check.returncode != 0:
            if self._applies(tree, "--reverse").returncode == 0:
                return done(True, "\n".join([f"coder {self.spec}: already applied at HEAD ({paths})", *notes]))
            return done(False, "\n".join([self._failure(tree, check), *notes]))
        proc = _git(tree, "apply", "-", stdin=self.data)
        if proc.returncode != 0:
            return done(False, "\n".join([self._failure(tree, proc), *notes]))
        return done(True, "\n".join([f"coder {self.spec}: applied {self.path.name} ({paths})", *notes]))
