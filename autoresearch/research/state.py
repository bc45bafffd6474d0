"""The state file of a study (`studies/<name>/state.json`) and the lock that keeps one runner per study.

The state says which stages are done, every finished trial with its numbers, the planned seeds per arm and the
latest verdicts. It is rewritten atomically after every change (temp file + `os.replace`), so a `kill -9` at any
moment leaves the last complete state; `study resume` continues from it. Trials that finished after the last save
(the child wrote its result, the runner died before recording it) are adopted from their `result.json`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from autoresearch.errors import StudyError
from autoresearch.harness.atomic import atomic_write_text

__all__ = ["StudyState", "STAGES", "runner_lock", "is_running", "now"]

STAGES = ("checks", "baseline", "regression", "trials", "report")


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")


class StudyState:
    """A JSON document with thread-safe, atomic saves."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data
        self.lock = threading.RLock()

    @classmethod
    def load(cls, path: str | Path) -> StudyState:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise StudyError(f"no state file {path}; is {path.parent.name} a study? run `autoresearch study run FILE`") from None
        except json.JSONDecodeError:
            raise StudyError(f"state file {path} is corrupt; the ledger ({path.parent / 'ledger.jsonl'}) still "
                             f"holds every finished trial") from None
        return cls(path, data)

    @classmethod
    def create(cls, path: str | Path, name: str, definition_hash: str) -> StudyState:
        state = cls(Path(path), {
            "version": 1, "name": name, "definition_hash": definition_hash, "created_at": now(),
            "stage": STAGES[0], "stages": {}, "trials": {}, "planned": {}, "round": 0, "verdicts": {},
            "baseline": {}, "regression": {}, "runs": [], "environment": {}, "done": False,
        })
        state.save()
        return state

    def save(self) -> None:
        with self.lock:
            atomic_write_text(self.path, json.dumps(self.data, indent=1, default=str))

    # --- helpers ---

    def stage_done(self, stage: str) -> bool:
        return self.data["stages"].get(stage, {}).get("status") == "done"

    def set_stage(self, stage: str, status: str, **info: Any) -> None:
        with self.lock:
            self.data["stages"][stage] = {"status": status, "at": now(), **info}
            self.data["stage"] = stage
            self.save()

    def trial(self, trial_id: str) -> dict[str, Any] | None:
        return self.data["trials"].get(trial_id)

    def record_trial(self, trial_id: str, record: dict[str, Any]) -> None:
        with self.lock:
            self.data["trials"][trial_id] = record
            self.data.setdefault("running", {}).pop(trial_id, None)
            self._touch()
            self.save()

    def mark_running(self, trial_id: str, on: bool) -> None:
        with self.lock:
            running = self.data.setdefault("running", {})
            if on:
                running[trial_id] = now()
            else:
                running.pop(trial_id, None)
            self.save()

    def _touch(self) -> None:
        if self.data["runs"]:
            self.data["runs"][-1]["last_progress"] = time.time()

    def start_run(self, workers: int) -> None:
        with self.lock:
            self.data["running"] = {}
            self.data["runs"].append({"pid": os.getpid(), "started": time.time(), "ended": None,
                                      "last_progress": time.time(), "workers": workers})
            self.save()

    def end_run(self) -> None:
        with self.lock:
            if self.data["runs"]:
                self.data["runs"][-1]["ended"] = time.time()
            self.save()

    def wall_seconds(self) -> float:
        """Wall time of all runner sessions; a killed session counts up to its last recorded progress."""
        total = 0.0
        for r in self.data["runs"]:
            end = r.get("ended") or r.get("last_progress") or r["started"]
            total += max(0.0, end - r["started"])
        return total


@contextlib.contextmanager
def runner_lock(study_dir: Path) -> Iterator[None]:
    """Hold `studies/<name>/.runner.lock` for the runner's lifetime; a second runner fails at once.

    flock is released by the kernel when the process dies, so a `kill -9`ed runner never leaves a stale lock.
    """
    path = study_dir / ".runner.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = Path(path).read_text().strip() or "?"
            raise StudyError(f"study {study_dir.name!r} is already running (pid {pid}); watch it with "
                             f"`autoresearch study status {study_dir.name} --watch`") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def is_running(study_dir: Path) -> bool:
    """True if a runner holds the study's lock right now."""
    path = study_dir / ".runner.lock"
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
