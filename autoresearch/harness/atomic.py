"""Crash-safe file writes: temp file + fsync + `os.replace`, append-only JSONL, and an advisory file lock.

A crash at any moment leaves either the old file or the new one, never half of one (STYLE.md §12). A kill -9 between
the temp write and the rename leaves a `.NAME.XXXX.tmp` file; `remove_stale_temps` clears them once the caller holds
the lock of the folder. `disk_error` tells a full, read-only or immutable disk (errors the user fixes, not bugs) apart
from other `OSError`s, so callers can turn them into one-line errors naming the path.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "atomic_write_text", "atomic_write_bytes", "atomic_write_yaml", "append_jsonl", "read_jsonl", "scan_jsonl",
    "JsonlScan", "file_lock", "remove_stale_temps", "disk_error", "disk_errors", "CACHE_ELSEWHERE",
]

CACHE_ELSEWHERE = "--set data.cache_dir=DIR (or AUTORESEARCH_CACHE=DIR)"  # where the token cache can move

# errno -> (what it means, the fix the user can apply)
_DISK_ERRNOS = {
    errno.ENOSPC: ("no space left on device (ENOSPC)", "free space on that disk"),
    errno.EDQUOT: ("disk quota exceeded (EDQUOT)", "free space or raise the quota"),
    errno.EROFS: ("read-only file system (EROFS)", "remount it read-write"),
    errno.EACCES: ("permission denied (EACCES)", "make it writable (chmod/chown)"),
    errno.EPERM: ("operation not permitted (EPERM; immutable?)", "clear the flag (`chattr -i`) or make it writable"),
}


def disk_error(e: BaseException, path: str | Path, elsewhere: str = "") -> str | None:
    """One-line description of a full/read-only/immutable-disk error on `path`, or None for any other error.

    `elsewhere` names the option that moves the files to another disk, e.g. "--root DIR"; it is offered as the
    second fix.
    """
    if not isinstance(e, OSError) or e.errno not in _DISK_ERRNOS:
        return None
    what, fix = _DISK_ERRNOS[e.errno]
    where = Path(e.filename) if isinstance(e.filename, (str, Path)) and e.filename else Path(path)
    return f"cannot write {where}: {what}; {fix}" + (f", or use {elsewhere} on another disk" if elsewhere else "")


@contextlib.contextmanager
def disk_errors(
    path: str | Path, error: type[Exception], elsewhere: str = "", then: str = ""
) -> Iterator[None]:
    """Re-raise a full/read-only/immutable-disk OSError under `path` as one-line `error(disk_error(...) + then)`.

    Any other exception passes through unchanged.
    """
    try:
        yield
    except OSError as e:
        msg = disk_error(e, path, elsewhere)
        if msg is None:
            raise
        raise error(msg + then) from None


def _umask() -> int:
    """The process umask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old or the new content, never a partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a file we persist gets the mode open() would give
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Atomic text write (UTF-8)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_yaml(path: str | Path, data: Any) -> None:
    """Atomic YAML write of plain data, keys in insertion order."""
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))


def append_jsonl(path: str | Path, record: dict[str, Any]) -> None:
    """Append one JSON line; a single write() of a full line, flushed, so lines never interleave."""
    line = json.dumps(record, default=_jsonable) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def _jsonable(x: Any) -> Any:
    if hasattr(x, "item"):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSONL file, skipping lines that are not JSON objects (see `scan_jsonl` to learn which ones)."""
    return scan_jsonl(path).records


@dataclass
class JsonlScan:
    """What a JSONL file holds: the good records, the damaged lines, and whether the last line is torn."""

    records: list[dict[str, Any]] = field(default_factory=list)
    bad: list[tuple[int, str]] = field(default_factory=list)  # (1-based line number, the line) of damaged lines
    torn_tail: bool = False  # the last line has no newline and does not parse: a crash mid-append, not damage

    def describe_bad(self, path: str | Path) -> str:
        n, line = self.bad[0]
        more = f" (and {len(self.bad) - 1} more line(s))" if len(self.bad) > 1 else ""
        return f"{path} line {n} is not a JSON object ({line[:40]!r}){more}"


def scan_jsonl(path: str | Path) -> JsonlScan:
    """Read a JSONL file and report every line that is not a JSON object; a missing file is empty.

    A last line without its newline that does not parse is a torn append (kill mid-write), reported as `torn_tail`
    and not as damage; any other unparsable line — garbled bytes, a hand edit — is listed in `bad` with its number.
    """
    scan = JsonlScan()
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        return scan
    lines = raw.split(b"\n")
    last = len(lines) - 1  # the piece after the final newline ('' when the file ends with one)
    for i, b in enumerate(lines):
        if not b.strip():
            continue
        text = b.decode("utf-8", errors="replace")
        try:
            rec = json.loads(b)
        except (json.JSONDecodeError, UnicodeDecodeError):
            rec = None
        if isinstance(rec, dict):
            scan.records.append(rec)
        elif i == last:
            scan.torn_tail = True
        else:
            scan.bad.append((i + 1, text))
    return scan


def remove_stale_temps(directory: str | Path) -> list[Path]:
    """Delete the `.NAME.XXXX.tmp` files `atomic_write_bytes` leaves when killed; call it only while holding the
    folder's lock (a live writer's temp file looks the same). Returns what was removed."""
    removed = []
    for p in Path(directory).glob(".*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            removed.append(p)
    return removed


@contextlib.contextmanager
def file_lock(path: str | Path) -> Iterator[None]:
    """Exclusive advisory lock (flock) on `path`, held for the `with` block; works across processes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
