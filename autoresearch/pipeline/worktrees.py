"""Idea versions as git worktrees: branch `idea/<name>/v<k>` checked out under `DIR/.autoresearch/worktrees/`.

Each version gets its own branch and folder, so several versions run side by side and each trial runs that folder's
code (`testbed_spec`). Everything here is plain `git` (subprocess): `worktree add` creates a branch ref and a folder
but never touches the user's checked-out branch, HEAD or index; commits happen inside the worktree; a diff is taken
through a throw-away index, so even the worktree's own index is left alone. `create_version` is idempotent: after a
`kill -9` it reuses the branch (and the folder when git still knows it). `remove` keeps the branch and writes the
version's diff to `DIR/ideas/<name>/v<k>.diff` before the folder goes.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from autoresearch.errors import PipelineError
from autoresearch.harness.atomic import atomic_write_text
from autoresearch.pipeline._git import commit_args, git, git_ok

if TYPE_CHECKING:
    from autoresearch.pipeline.workspace import Workspace

__all__ = ["VersionTree", "branch_name", "create_version", "commit_edit", "diff", "changed_paths", "remove",
           "testbed_spec", "save_diff", "diff_file"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
_DIFF_ARGS = ("--no-color", "--no-ext-diff", "--no-renames", "--src-prefix=a/", "--dst-prefix=b/", "--binary")


@dataclass(frozen=True)
class VersionTree:
    """Version k of an idea: its branch, its worktree folder, the commit it started from, the workspace root."""

    name: str
    k: int
    branch: str
    path: Path
    base_commit: str
    root: Path

    @property
    def label(self) -> str:
        return f"{self.name}/v{self.k}"


def branch_name(name: str, k: int) -> str:
    """`idea/<name>/v<k>`; a name git or a folder cannot hold is a one-line PipelineError."""
    if not _NAME.match(name or "") or ".." in name or name.endswith((".", ".lock")):
        raise PipelineError(f"idea name {name!r} cannot name a branch; use 1-100 letters, digits, `_`, `-` or `.` "
                            "(no `..`, not ending in `.` or `.lock`), starting with a letter or digit")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise PipelineError(f"version number {k!r} of idea {name} must be an integer >= 1")
    return f"idea/{name}/v{k}"


def diff_file(root: Path, name: str, k: int) -> Path:
    """Where the diff of version k of `name` is kept: `ideas/<name>/v<k>.diff`."""
    return root / "ideas" / name / f"v{k}.diff"


def _registered(root: Path) -> dict[Path, str]:
    """Worktree folder -> checked-out branch ref ('' when detached) as git knows them."""
    out: dict[Path, str] = {}
    path: Path | None = None
    for line in git(root, "worktree", "list", "--porcelain").splitlines():
        if line.startswith("worktree "):
            path = Path(line[len("worktree "):]).resolve()
            out[path] = ""
        elif line.startswith("branch ") and path is not None:
            out[path] = line[len("branch "):]
    return out


def create_version(ws: Workspace, idea_name: str, k: int, base: str = "HEAD") -> VersionTree:
    """Branch `idea/<name>/v<k>` from `base` (a commit-ish of the workspace) checked out in its own worktree.

    Idempotent: an existing branch is reused with its commits (its base is the merge-base with `base`); an existing
    worktree of that branch is reused; a folder left half-made by a killed `git worktree add` is cleared first."""
    root = ws.root
    branch = branch_name(idea_name, k)
    path = (ws.worktrees_dir / f"{idea_name}-v{k}").resolve()
    ref = f"refs/heads/{branch}"
    base_sha = git(root, "rev-parse", "--verify", "--quiet", f"{base}^{{commit}}", check=False)
    if not base_sha:
        raise PipelineError(f"base {base!r} of {branch} is not a commit of {root}; commit the workspace first "
                            "(`autoresearch research init` does)")
    exists = git_ok(root, "show-ref", "--verify", "--quiet", ref)
    git(root, "worktree", "prune")  # forget folders deleted behind git's back (a killed run, a manual rm)
    registered = _registered(root)
    if path in registered and registered[path] != ref:
        raise PipelineError(f"worktree {path} holds {registered[path] or 'a detached HEAD'}, not {branch}; remove it "
                            f"with `git worktree remove --force {path}`")
    if path not in registered:
        other = next((p for p, b in registered.items() if b == ref), None)
        if other is not None:
            raise PipelineError(f"branch {branch} is checked out in {other}; remove that worktree first "
                                f"(`git worktree remove --force {other}`)")
        if path.exists():
            shutil.rmtree(path)  # left by a kill during `worktree add`: git does not know it, nothing of value
        path.parent.mkdir(parents=True, exist_ok=True)
        if exists:
            git(root, "worktree", "add", "--quiet", str(path), branch)
        else:
            git(root, "worktree", "add", "--quiet", "-b", branch, str(path), base_sha)
    base_commit = git(root, "merge-base", base_sha, ref) if exists else base_sha
    return VersionTree(idea_name, k, branch, path, base_commit, root)


def commit_edit(tree: VersionTree, message: str) -> str | None:
    """Commit everything changed in the worktree (new and deleted files too); the new commit's sha, or None when
    nothing changed."""
    _require(tree)
    git(tree.path, "add", "--all")
    if git_ok(tree.path, "diff", "--cached", "--quiet"):
        return None
    git(tree.path, *commit_args(message or f"{tree.label}"))
    return git(tree.path, "rev-parse", "HEAD")


def _snapshot(tree: VersionTree) -> str:
    """A tree object of the worktree's files as they are now (committed or not, untracked included), made in a
    temporary index so neither the worktree's index nor anything else changes."""
    _require(tree)
    with tempfile.TemporaryDirectory(prefix="autoresearch-index-") as tmp:
        env = {"GIT_INDEX_FILE": os.path.join(tmp, "index")}
        git(tree.path, "read-tree", "HEAD", env=env)
        git(tree.path, "add", "--all", env=env)
        return git(tree.path, "write-tree", env=env)


def diff(tree: VersionTree) -> str:
    """The version's whole change: base commit -> the worktree's files now (commits, uncommitted and new files)."""
    return git(tree.path, "diff", *_DIFF_ARGS, tree.base_commit, _snapshot(tree))


def changed_paths(tree: VersionTree) -> list[str]:
    """Relative paths changed since the base commit (added, modified, deleted; both sides of a rename), sorted."""
    out = git(tree.path, "diff", "--name-only", "--no-renames", "-z", tree.base_commit, _snapshot(tree))
    return sorted(p for p in out.split("\0") if p)


def save_diff(tree: VersionTree) -> Path:
    """Write the version's diff to `ideas/<name>/v<k>.diff` (atomically) and return the file."""
    path = diff_file(tree.root, tree.name, tree.k)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, diff(tree))
    return path


def remove(tree: VersionTree) -> Path | None:
    """Save the version's diff, then remove its worktree folder (`git worktree remove --force` + prune). The branch
    stays. Returns the diff file (None when the folder was already gone: the diff of the branch is saved then)."""
    saved: Path | None = None
    if tree.path.is_dir() and (tree.path / ".git").exists():
        saved = save_diff(tree)
    elif git_ok(tree.root, "show-ref", "--verify", "--quiet", f"refs/heads/{tree.branch}"):
        path = diff_file(tree.root, tree.name, tree.k)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, git(tree.root, "diff", *_DIFF_ARGS, tree.base_commit, tree.branch))
        saved = path
    if tree.path.resolve() in _registered(tree.root):
        git(tree.root, "worktree", "remove", "--force", str(tree.path))
    if tree.path.exists():
        shutil.rmtree(tree.path)
    git(tree.root, "worktree", "prune")
    return saved


def testbed_spec(tree: VersionTree, ws: Workspace) -> str:
    """The absolute testbed spec of the worktree's copy (`.../surface/testbed.py:Class`): what its trials load."""
    return ws.testbed_spec(tree.path)


def _require(tree: VersionTree) -> None:
    if not tree.path.is_dir():
        raise PipelineError(f"worktree {tree.path} of {tree.branch} does not exist; create it again with "
                            "create_version (the branch keeps its commits)")
