"""SEARCH/REPLACE edit blocks: parsing a language model's answer and applying it to a worktree, leniently.

The format is aider's (DESIGN.md §7: edit blocks for strong models, whole files for weak ones; lenient matching
mattered — turning it off gave ~9x more failed edits):

    surface/config.py
    ```python
    <<<<<<< SEARCH
        lr: float = 3e-4
    =======
        lr: float = 3e-4
        head_temp: bool = False
    >>>>>>> REPLACE
    ```

The path is the line before the block (or before its fence), bare, `backticked`, **bold**, `# headed`, `File: ...`
or with a trailing colon, or in the fence's info string (```` ```python surface/config.py ````); a block without a
path of its own edits the previous block's file. Blocks may stand inside or outside ``` fences; CRLF answers and
5..9-character markers are read too (`ORIGINAL` / `UPDATED` as well, aider's older words).

Applying a block tries, in order, until one finds the SEARCH text: exact lines; lines ignoring trailing whitespace;
lines ignoring a uniform indentation difference (the replacement is re-indented by the same difference); lines
ignoring all whitespace; the same with the SEARCH text's leading/trailing blank lines dropped; and last its non-blank
lines ignoring whitespace, with any blank lines between them (models drop or add blank lines). A SEARCH text
that matches several places fails (the reason names them); one that matches nowhere fails with the closest lines of
the file (`closest_lines`) so the model can quote them right. An empty SEARCH creates a missing file (and fails on an
existing non-empty one: it would not say what to replace). Paths outside `allowed` (the editable globs), absolute,
with `..`, inside `.git` or through a symlink out of the root fail the block and are never written. A file keeps its
line endings (CRLF stays CRLF) and mode; every write is atomic.

Pure: no model, no pipeline; `llm_coder.py` drives it.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from autoresearch.harness.atomic import atomic_write_bytes

__all__ = [
    "EditBlock",
    "BlockFailure",
    "ApplyResult",
    "parse_edit_blocks",
    "scan_edit_blocks",
    "apply_edit_blocks",
    "closest_lines",
    "parse_whole_files",
    "write_whole_files",
    "elided",
]

_HEAD = re.compile(r"^\s*<{5,9}\s*(SEARCH|ORIGINAL)\s*$", re.I)
_DIVIDER = re.compile(r"^\s*={5,9}\s*$")
_TAIL = re.compile(r"^\s*>{5,9}\s*(REPLACE|UPDATED)\s*$", re.I)
_FENCE = re.compile(r"^\s*(`{3,}|~{3,})(.*)$")
_PATHLIKE = re.compile(r"^[\w.\-/\\+@]+$")
_LABEL = re.compile(r"^(?:file(?:name)?|path)\s*:\s*", re.I)
_BULLET = re.compile(r"^(?:[-*+]|\d+[.)])\s+")


@dataclass(frozen=True)
class EditBlock:
    """One edit: replace `search` (whole lines, each ending in a newline; "" = create the file) by `replace` in the
    workspace-relative file `path` ("" when the answer named none)."""

    path: str
    search: str
    replace: str


@dataclass(frozen=True)
class BlockFailure:
    """A block that was not applied: why (one line), and the file's closest lines to its SEARCH text (numbered)."""

    block: EditBlock
    reason: str
    closest: str = ""
    refused: bool = False
    """the path itself may not be written (outside the editable paths, absolute, `..`, .git, a symlink out)."""


@dataclass
class ApplyResult:
    """What `apply_edit_blocks` did: the blocks written, the blocks refused or not found."""

    applied: list[EditBlock] = field(default_factory=list)
    failed: list[BlockFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every block applied (and there was at least one)."""
        return bool(self.applied) and not self.failed

    def summary(self) -> str:
        """One line per block: `applied PATH` or `failed PATH: REASON`."""
        lines = [f"applied {b.path}" for b in self.applied]
        lines += [f"failed {f.block.path or '(no path)'}: {f.reason}" for f in self.failed]
        return "\n".join(lines)


# --- parsing -----------------------------------------------------------------------------------------------------


def _path_from_line(line: str, nearest: bool) -> str | None:
    """The file path a line before a block names, or None. `nearest`: the line right before the block (or its fence),
    where a bare word without `.` or `/` (a `Makefile`) is accepted as well."""
    s = line.strip()
    if not s or s == "...":
        return None
    if m := _FENCE.match(s):
        words = [w for w in m.group(2).split() if _PATHLIKE.match(w) and ("." in w or "/" in w)]
        return words[-1] if words else None
    prev = None
    while prev != s:  # peel decorations in any order: `**File: `x.py`**:`, `### x.py`, `1. x.py`
        prev = s
        s = _LABEL.sub("", _BULLET.sub("", s.strip().strip("*`#:").strip()))
    if not s or not _PATHLIKE.match(s) or s.strip(".") == "":
        return None
    if "." in s or "/" in s or nearest:
        return s.replace("\\", "/")
    return None


def _find_path(lines: list[str], head: int, stop: int) -> str | None:
    """The path named in the (up to 3) lines above the SEARCH marker at `head`, not above line `stop`."""
    for k, i in enumerate(range(head - 1, max(stop, head - 3) - 1, -1)):
        s = lines[i].strip()
        if not s:
            continue
        m = _FENCE.match(s)
        found = _path_from_line(s, nearest=k == 0 or (k == 1 and _FENCE.match(lines[head - 1].strip()) is not None))
        if found:
            return found
        if m is None and k > 0:
            return None  # a prose line: stop looking further up
    return None


def scan_edit_blocks(text: str) -> tuple[list[EditBlock], list[str]]:
    """The edit blocks in `text`, and one line per malformed block (a SEARCH without its `=======` or its
    `>>>>>>> REPLACE`), to tell the model."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    blocks: list[EditBlock] = []
    problems: list[str] = []
    last_path, stop, i = "", 0, 0
    while i < len(lines):
        if not _HEAD.match(lines[i]):
            i += 1
            continue
        path = _find_path(lines, i, stop) or last_path
        j = i + 1
        while j < len(lines) and not _DIVIDER.match(lines[j]) and not _HEAD.match(lines[j]):
            j += 1
        if j >= len(lines) or not _DIVIDER.match(lines[j]):
            problems.append(f"block {len(blocks) + len(problems) + 1} ({path or 'no path'}): `<<<<<<< SEARCH` "
                            f"without its `=======` line")
            i = j
            continue
        k = j + 1
        while k < len(lines) and not _TAIL.match(lines[k]) and not _HEAD.match(lines[k]):
            k += 1
        if k >= len(lines) or not _TAIL.match(lines[k]):
            problems.append(f"block {len(blocks) + len(problems) + 1} ({path or 'no path'}): no `>>>>>>> REPLACE` "
                            f"line after its `=======`")
            i = k
            continue
        search = "".join(line + "\n" for line in lines[i + 1:j])
        replace = "".join(line + "\n" for line in lines[j + 1:k])
        blocks.append(EditBlock(path, search, replace))
        last_path, stop, i = path, k + 1, k + 1
    return blocks, problems


def parse_edit_blocks(text: str) -> list[EditBlock]:
    """The SEARCH/REPLACE blocks of a model's answer, in order (malformed ones are left out; `scan_edit_blocks`
    says which)."""
    return scan_edit_blocks(text)[0]


def parse_whole_files(text: str) -> dict[str, str]:
    """Whole files in a model's answer: fenced blocks whose info string (```` ```python surface/x.py ````) or the line
    above the fence names a path -> the fenced text (ending in a newline). A later fence for the same path wins."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    files: dict[str, str] = {}
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence = m.group(1)
        path = _path_from_line(lines[i], nearest=False)
        if path is None:
            above = next((lines[k] for k in range(i - 1, max(-1, i - 3), -1) if lines[k].strip()), "")
            path = _path_from_line(above, nearest=False) if not _FENCE.match(above) else None
        end = i + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        body = lines[i + 1:end]
        if path is not None and end < len(lines) and not any(_HEAD.match(x) for x in body):
            files[path] = "".join(line + "\n" for line in body)
        i = end + 1
    return files


# --- matching ----------------------------------------------------------------------------------------------------


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _reindent(lines: list[str], extra: str, remove: str) -> list[str]:
    """Add `extra` before every non-blank line, or remove `remove` from where it starts a line."""
    out = []
    for line in lines:
        if not line.strip():
            out.append(line)
        elif extra:
            out.append(extra + line)
        elif remove and line.startswith(remove):
            out.append(line[len(remove):])
        else:
            out.append(line.lstrip(" \t") if remove else line)
    return out


def _shift(window: list[str], search: list[str]) -> tuple[str, str] | None:
    """(extra, remove) when `window` equals `search` up to one indentation difference shared by every non-blank
    line (file lines `extra` deeper, or `remove` shallower), else None."""
    shift: tuple[str, str] | None = None
    for f, s in zip(window, search, strict=True):
        f, s = f.rstrip(), s.rstrip()
        if not f and not s:
            continue
        if f.lstrip() != s.lstrip() or not f or not s:
            return None
        fi, si = _indent(f), _indent(s)
        if len(fi) >= len(si) and fi.endswith(si):
            this = (fi[: len(fi) - len(si)], "")
        elif si.endswith(fi):
            this = ("", si[: len(si) - len(fi)])
        else:
            return None
        if shift is None:
            shift = this
        elif shift != this:
            return None
    return shift


def _squash(line: str) -> str:
    return "".join(line.split())


Hit = tuple[int, int, tuple[str, str]]
"""(first line, end line (exclusive), (extra, remove) indentation) of a match."""


def _find(content: list[str], search: list[str]) -> tuple[str, list[Hit]]:
    """(how, the matches) at the first level that matches (module doc); ("", []) when none does."""
    n = len(search)
    starts = range(len(content) - n + 1)
    levels: list[tuple[str, Callable[[list[str]], tuple[str, str] | None]]] = [
        ("exact", lambda w: ("", "") if w == search else None),
        ("ignoring trailing whitespace",
         lambda w: ("", "") if [x.rstrip() for x in w] == [x.rstrip() for x in search] else None),
        ("ignoring indentation", lambda w: _shift(w, search)),
        ("ignoring whitespace", lambda w: _first_shift(w, search) if [_squash(x) for x in w] ==
         [_squash(x) for x in search] else None),
    ]
    for how, test in levels:
        hits = [(i, i + n, sh) for i in starts if (sh := test(content[i:i + n])) is not None]
        if hits:
            return how, hits
    return "", []


def _find_loose(content: list[str], search: list[str]) -> list[Hit]:
    """Matches ignoring blank lines and whitespace: the search's non-blank lines in order, only blank lines between
    them in the file (models drop or add blank lines, e.g. the two between top-level functions)."""
    want = [(_squash(x), x) for x in search if x.strip()]
    have = [(i, _squash(x)) for i, x in enumerate(content) if x.strip()]
    m = len(want)
    if not m:
        return []
    hits = []
    for p in range(len(have) - m + 1):
        if all(have[p + k][1] == want[k][0] for k in range(m)):
            first, last = have[p][0], have[p + m - 1][0]
            hits.append((first, last + 1, _first_shift([content[first]], [want[0][1]])))
    return hits


def _first_shift(window: list[str], search: list[str]) -> tuple[str, str]:
    """The indentation difference of the first non-blank line pair (to re-indent a whitespace-insensitive match)."""
    for f, s in zip(window, search, strict=True):
        if f.strip() and s.strip():
            fi, si = _indent(f), _indent(s)
            if len(fi) >= len(si) and fi.endswith(si):
                return fi[: len(fi) - len(si)], ""
            if si.endswith(fi):
                return "", si[: len(si) - len(fi)]
            return "", ""
    return "", ""


def _trim_blank(search: list[str], replace: list[str]) -> tuple[list[str], list[str]]:
    """`search` without leading/trailing blank lines; as many blank lines dropped from the same ends of `replace`."""
    lead = next((i for i, x in enumerate(search) if x.strip()), len(search))
    trail = next((i for i, x in enumerate(reversed(search)) if x.strip()), 0)
    s = search[lead: len(search) - trail]
    r_lead = min(lead, next((i for i, x in enumerate(replace) if x.strip()), len(replace)))
    r_trail = min(trail, next((i for i, x in enumerate(reversed(replace)) if x.strip()), 0))
    return s, replace[r_lead: len(replace) - r_trail]


def closest_lines(text: str, search: str, context: int = 2) -> str:
    """The window of `text` most like `search` (difflib ratio over same-length windows), with `context` lines around
    it, each line as `  NNN | line` (1-based); "" when `text` is empty."""
    content = text.replace("\r\n", "\n").split("\n") if text else []
    if text.endswith("\n"):
        content = content[:-1]
    want = [x.strip() for x in search.replace("\r\n", "\n").rstrip("\n").split("\n")]
    if not content or not any(want):
        return ""
    n = min(len(want), len(content))
    target = "\n".join(want)
    best, best_i = -1.0, 0
    matcher = difflib.SequenceMatcher(autojunk=False)
    matcher.set_seq2(target)
    for i in range(len(content) - n + 1):
        matcher.set_seq1("\n".join(x.strip() for x in content[i:i + n]))
        if matcher.real_quick_ratio() <= best or matcher.quick_ratio() <= best:
            continue
        if (r := matcher.ratio()) > best:
            best, best_i = r, i
    lo, hi = max(0, best_i - context), min(len(content), best_i + n + context)
    width = len(str(hi))
    return "\n".join(f"  {k + 1:>{width}} | {content[k]}" for k in range(lo, hi))


# --- applying ----------------------------------------------------------------------------------------------------


def _safe_path(root: Path, path: str, allowed: Callable[[str], bool]) -> tuple[Path | None, str]:
    """(the file under `root`, "") for a path an edit may write, else (None, the reason)."""
    if not path:
        return None, "no file path before the block; put the file's path on the line above `<<<<<<< SEARCH`"
    rel = path.strip().removeprefix("./")
    parts = rel.split("/")
    if rel.startswith("/") or re.match(r"^[A-Za-z]:", rel) or ".." in parts or "" in parts:
        return None, f"path {path!r} must be relative to the workspace root, without `..`"
    if parts[0] == ".git":
        return None, "paths inside .git are never edited"
    if not allowed(rel):
        return None, f"{rel} is outside the editable paths; edit only those files"
    target = root / rel
    try:
        target.resolve().relative_to(root.resolve())
    except ValueError:
        return None, f"{rel} leads outside the workspace (a symlink); it is never written"
    return target, ""


def _read(target: Path) -> tuple[list[str], bool, bool]:
    """(lines without their line endings, uses CRLF, ends with a newline) of a text file."""
    raw = target.read_bytes().decode("utf-8")
    crlf = "\r\n" in raw
    text = raw.replace("\r\n", "\n")
    lines = text.split("\n")
    ends_nl = text.endswith("\n")
    if ends_nl:
        lines = lines[:-1]
    return ([] if text == "" else lines), crlf, ends_nl or text == ""


def _apply_one(content: list[str], block: EditBlock) -> tuple[list[str] | None, str]:
    """The file's new lines, or (None, the reason the block's SEARCH was not found exactly once)."""
    search = block.search.split("\n")[:-1] if block.search else []
    replace = block.replace.split("\n")[:-1] if block.replace else []
    trimmed = _trim_blank(search, replace)
    tries = [(search, replace)] + ([trimmed] if trimmed[0] != search and trimmed[0] else [])
    r = replace
    for s, r_try in tries:
        how, hits = _find(content, s)
        if hits:
            r = r_try
            break
    else:
        how, hits, r = "ignoring blank lines and whitespace", _find_loose(content, search), trimmed[1]
    if len(hits) > 1:
        where = ", ".join(str(i + 1) for i, _, _ in hits[:5])
        return None, (f"the SEARCH text matches {len(hits)} places ({how}; lines {where}); include more "
                      "surrounding lines so that it matches exactly one")
    if not hits:
        return None, ("the SEARCH text does not match the file (not even ignoring whitespace and blank lines); "
                      "quote the file's lines exactly as they are")
    start, end, (extra, remove) = hits[0]
    return content[:start] + _reindent(r, extra, remove) + content[end:], ""


def apply_edit_blocks(root: Path, blocks: list[EditBlock], *, allowed: Callable[[str], bool]) -> ApplyResult:
    """Apply `blocks` in order under `root` (a later block sees the earlier ones' edits; a failed block changes
    nothing); each changed file is written once, atomically, keeping its line endings and mode."""
    root = Path(root)
    result = ApplyResult()
    files: dict[Path, tuple[list[str], bool, bool, bool]] = {}  # path -> (lines, crlf, final newline, exists)
    for block in blocks:
        target, why = _safe_path(root, block.path, allowed)
        if target is None:
            result.failed.append(BlockFailure(block, why, refused=bool(block.path)))
            continue
        if target not in files:
            if target.is_dir():
                result.failed.append(BlockFailure(block, f"{block.path} is a folder, not a file"))
                continue
            if target.exists():
                try:
                    files[target] = (*_read(target), True)
                except UnicodeDecodeError:
                    result.failed.append(BlockFailure(block, f"{block.path} is not UTF-8 text; it cannot be edited"))
                    continue
            else:
                files[target] = ([], False, True, False)
        lines, crlf, ends_nl, exists = files[target]
        if not block.search.strip():
            if exists and any(x.strip() for x in lines):
                result.failed.append(BlockFailure(
                    block, f"the SEARCH text is empty but {block.path} exists; quote the lines to replace",
                    closest_lines("\n".join(lines[:12]), "\n".join(lines[:12]))))
                continue
            files[target] = (block.replace.split("\n")[:-1], crlf, True, True)
            result.applied.append(block)
            continue
        if not exists:
            result.failed.append(BlockFailure(block, f"{block.path} does not exist; to create it, leave the SEARCH "
                                                     "part empty"))
            continue
        new, why = _apply_one(lines, block)
        if new is None:
            result.failed.append(BlockFailure(block, why, closest_lines("\n".join(lines), block.search)))
            continue
        files[target] = (new, crlf, ends_nl, exists)
        result.applied.append(block)
    touched = {root / b.path.strip().removeprefix("./") for b in result.applied}
    for target, (lines, crlf, ends_nl, _) in files.items():
        if target in touched:
            _write(target, lines, crlf, ends_nl)
    return result


def _write(target: Path, lines: list[str], crlf: bool, ends_nl: bool) -> None:
    text = "\n".join(lines) + ("\n" if ends_nl and lines else "")
    if crlf:
        text = text.replace("\n", "\r\n")
    mode = target.stat().st_mode & 0o7777 if target.exists() else None
    atomic_write_bytes(target, text.encode("utf-8"))
    if mode is not None:
        os.chmod(target, mode)


_ELIDED = re.compile(r"^\s*(?:#|//|/\*|<!--)?\s*(?:\.\.\.|…)|\b(?:rest of (?:the )?(?:file|code|class|function)|"
                     r"(?:remains?|stays?|is|are) unchanged|unchanged code|existing code)\b", re.I)


def elided(old: str, new: str) -> str | None:
    """The first line of `new` that looks like a placeholder for left-out code (`# ...`, `... rest of the file`,
    `# existing code unchanged`) and is not in `old`, when `new` is shorter than `old`; else None. A weak model's
    "whole file" that elides code would delete it."""
    if len(new.splitlines()) >= len(old.splitlines()):
        return None
    before = {x.strip() for x in old.splitlines()}
    return next((x for x in new.splitlines() if _ELIDED.search(x) and x.strip() not in before), None)


def write_whole_files(root: Path, files: dict[str, str], *, allowed: Callable[[str], bool]) -> tuple[list[str],
                                                                                                  list[str]]:
    """Write whole files (`parse_whole_files`) under `root`: (paths written, one line per path refused: not allowed,
    or shorter than before with a placeholder for left-out code, `elided`). A file keeps its CRLF line endings and
    mode."""
    written, refused = [], []
    for path, text in files.items():
        target, why = _safe_path(Path(root), path, allowed)
        if target is None:
            refused.append(f"{path}: {why}")
            continue
        if target.is_dir():
            refused.append(f"{path}: a folder, not a file")
            continue
        old = target.read_bytes().decode("utf-8", errors="replace") if target.exists() else ""
        if (line := elided(old, text)) is not None:
            refused.append(f"{path}: the new content leaves code out ({line.strip()!r}); send every line of the file")
            continue
        crlf = "\r\n" in old
        lines = text.split("\n")
        ends_nl = text.endswith("\n")
        _write(target, lines[:-1] if ends_nl else lines, crlf, ends_nl)
        written.append(path.strip().removeprefix("./"))
    return written, refused
