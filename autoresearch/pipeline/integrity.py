"""Harness integrity: what an idea's edit may touch, and a hash of everything that measures the result.

`protected_hash(ws)` is a sha256 over the workspace's protected files (by glob, sorted, path + content; the pipeline's
own `.autoresearch/` state excluded, it changes as the run goes), over the workspace checkout (HEAD and uncommitted
changes of tracked files: coders work in worktrees, never there) and over every `.py` file of the installed
`autoresearch` package — evaluation, data, metrics, registry, sandbox: all of it measures, none of it is research
surface. `check_edit` lists the problems of a version's edit: a changed path outside the editable globs or inside a
protected one, and a hash that moved while the coder ran. An edit with problems is refused (the attempt fails with kind
`protected`); nothing here reverts anything. Every study result records the hash it was measured with.
"""

from __future__ import annotations

import fnmatch
import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

from autoresearch.agents.coders.allowed_paths import match_glob
from autoresearch.pipeline.workspace import STATE_DIR

if TYPE_CHECKING:
    from autoresearch.pipeline.workspace import Workspace
    from autoresearch.pipeline.worktrees import VersionTree

__all__ = ["protected_hash", "protected_files", "checkout_state", "package_root", "package_files", "check_edit", "edit_problems"]

_SKIP_DIRS = {".git", STATE_DIR, "__pycache__"}


def package_root() -> Path:
    """The installed `autoresearch` package folder (its `.py` files are all hashed)."""
    import autoresearch

    return Path(autoresearch.__file__).resolve().parent


def package_files(root: Path | None = None) -> list[Path]:
    """Every `.py` file of the package, sorted (bytecode caches skipped)."""
    root = package_root() if root is None else root
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def protected_files(ws: Workspace) -> list[str]:
    """Relative posix paths of the files under the workspace root matching a protected glob, sorted; `.git/` and the
    pipeline's `.autoresearch/` are never walked, nor folders no protected glob can reach (experiments/...)."""
    out = []
    stack = [ws.root]
    while stack:
        folder = stack.pop()
        for p in folder.iterdir():
            rel = p.relative_to(ws.root).as_posix()
            if p.is_dir() and not p.is_symlink():
                if p.name not in _SKIP_DIRS and any(_may_hold(rel, g) for g in ws.file.protected):
                    stack.append(p)
            elif any(match_glob(rel, g) for g in ws.file.protected):
                out.append(rel)
    return sorted(out)


def _may_hold(folder: str, pattern: str) -> bool:
    """Whether a file under the relative `folder` can match `pattern` (its leading parts match the folder's)."""
    parts, pat = folder.split("/"), pattern.split("/")
    for i, part in enumerate(parts):
        if i >= len(pat) - 1:
            return "**" in pat[-1]
        if "**" in pat[i]:
            return True
        if not fnmatch.fnmatchcase(part, pat[i]):
            return False
    return True


def checkout_state(ws: Workspace) -> bytes:
    """The workspace checkout as the user has it: HEAD and the uncommitted changes of tracked files (an idea's
    coder works in its worktree and must leave both alone)."""
    from autoresearch.pipeline._git import git

    head = git(ws.root, "rev-parse", "--verify", "--quiet", "HEAD", check=False)
    return (head + "\0" + git(ws.root, "diff", "--binary", "--no-color", "--no-ext-diff", "HEAD", check=False)).encode()


def protected_hash(ws: Workspace) -> str:
    """sha256 (hex) over the protected files, the checkout's HEAD and uncommitted tracked changes, and the installed
    package's `.py` files: path and content of each."""
    h = hashlib.sha256()
    for rel in protected_files(ws):
        h.update(b"W\0" + rel.encode() + b"\0" + _read(ws.root / rel) + b"\0")
    h.update(b"C\0" + checkout_state(ws) + b"\0")
    pkg = package_root()
    for p in package_files(pkg):
        h.update(b"P\0" + p.relative_to(pkg).as_posix().encode() + b"\0" + _read(p) + b"\0")
    return h.hexdigest()


def _read(p: Path) -> bytes:
    try:
        return p.read_bytes()
    except OSError as e:  # unreadable counts as a content of its own (and so as a change)
        return f"<unreadable: {e.strerror}>".encode()


def edit_problems(ws: Workspace, paths: list[str]) -> list[str]:
    """One line per changed path an idea may not change: protected, or outside every editable glob."""
    problems = []
    for rel in paths:
        if ws.is_protected(rel):
            problems.append(f"{rel}: a protected path ({', '.join(g for g in ws.file.protected if match_glob(rel, g))})"
                            " — an idea may not change it")
        elif not any(match_glob(rel, g) for g in ws.file.editable):
            problems.append(f"{rel}: outside the editable paths ({', '.join(ws.file.editable)})")
    return problems


def check_edit(ws: Workspace, worktree: VersionTree | Path, base_commit: str | None = None,
               before_hash: str | None = None) -> list[str]:
    """The problems of the edit in `worktree` since `base_commit` (default: the tree's own): every changed path
    (committed or not, new files too) must be editable and not protected, and `protected_hash(ws)` must still equal
    `before_hash` (taken before the coder ran; skipped when None). Empty list = the edit is allowed."""
    from autoresearch.pipeline.worktrees import VersionTree, changed_paths

    if isinstance(worktree, VersionTree):
        tree = worktree if base_commit is None else VersionTree(
            worktree.name, worktree.k, worktree.branch, worktree.path, base_commit, worktree.root)
    else:
        if base_commit is None:
            raise ValueError("check_edit: base_commit is required with a worktree path")
        tree = VersionTree("", 0, "", Path(worktree), base_commit, ws.root)
    problems = edit_problems(ws, changed_paths(tree))
    if before_hash is not None:
        after = protected_hash(ws)
        if after != before_hash:
            problems.append(f"protected hash changed ({before_hash[:12]} -> {after[:12]}): a protected file, the "
                            f"workspace checkout (its HEAD or a tracked file) or the installed evaluation code "
                            f"({package_root()}) was edited")
    return problems
