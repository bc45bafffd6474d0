"""The state file of a study (`studies/<name>/state.json`) and the lock that keeps one runner per study.

The state says which stages are done, every finished trial with its numbers, the planned seeds per arm and the
latest verdicts. It is rewritten atomically after every change (temp file + `os.replace`), so a `kill -9` at any
moment leaves the last complete state; `study resume` continues from it. Trials that finished after the last save
(the child wrote its result, the runner died before recording it) are adopted from their `result.json`.

A state file damaged by hand or by a disk fault is refused on load with one line naming the file, what is wrong and
the fix: move it aside, and `resume` rebuilds it from study.yaml and the trials' result files (every finished trial
is adopted again, so nothing is trained twice).

The runner lock is shared with the trial processes (they inherit its file descriptor), so the kernel releases it only
when the runner *and* every trial it started are gone: a `resume` right after a `kill -9` waits for them instead of
starting a second copy of a trial that is still running.
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

__all__ = ["StudyState", "STAGES", "runner_lock", "is_running", "now", "LOCK_WAIT_S"]

STAGES = ("checks", "baseline", "regression", "trials", "report")
LOCK_WAIT_S = 10.0
"""How long a new runner waits for the lock: the trials of a killed runner die within a second (PDEATHSIG)."""

# key -> (type, description) of every field a state file must hold
_SCHEMA: dict[str, tuple[type | tuple[type, ...], str]] = {
    "version": (int, "an integer"), "name": (str, "a string"), "definition_hash": (str, "a string"),
    "stage": (str, "a string"), "stages": (dict, "an object"), "trials": (dict, "an object"),
    "planned": (dict, "an object"), "round": (int, "an integer"), "verdicts": (dict, "an object"),
    "baseline": (dict, "an object"), "regression": (dict, "an object"), "runs": (list, "a list"),
    "environment": (dict, "an object"), "done": (bool, "true or false"),
}


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
        fix = (f"move it aside (`mv {path} {path}.bad`) and `autoresearch study resume {path.parent.name}` rebuilds "
               f"it from study.yaml and the trials' result files")
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            raise StudyError(f"no state file {path}; is {path.parent.name} a study? run `autoresearch study run FILE`") from None
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise StudyError(f"state file {path} is damaged: not JSON ({type(e).__name__} at byte "
                             f"{getattr(e, 'pos', getattr(e, 'start', '?'))}); {fix}") from None
        problem = _invalid(data)
        if problem:
            raise StudyError(f"state file {path} is damaged: {problem}; {fix}")
        return cls(path, data)

    @classmethod
    def create(cls, path: str | Path, name: str, definition_hash: str,
               definition: dict[str, Any] | None = None) -> StudyState:
        state = cls(Path(path), {
            "version": 1, "name": name, "definition_hash": definition_hash, "created_at": now(),
            "stage": STAGES[0], "stages": {}, "trials": {}, "planned": {}, "round": 0, "verdicts": {},
            "baseline": {}, "regression": {}, "runs": [], "environment": {}, "done": False,
            "definition": definition or {},
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


def _invalid(data: Any) -> str:
    """What is wrong with a parsed state document ('' when it is well-formed)."""
    if not isinstance(data, dict):
        return f"expected a JSON object, got {type(data).__name__}"
    missing = [k for k in _SCHEMA if k not in data]
    if missing:
        return f"missing {', '.join(f'`{k}`' for k in missing[:4])}" + (" ..." if len(missing) > 4 else "")
    for key, (tp, what) in _SCHEMA.items():
        if not isinstance(data[key], tp) or (tp is int and isinstance(data[key], bool)):
            return f"`{key}` must be {what}, got {json.dumps(data[key])[:40]}"
    if data["stage"] not in STAGES:
        return f"`stage` is {json.dumps(data['stage'])[:40]}, not one of {', '.join(STAGES)}"
    for stage, info in data["stages"].items():
        if stage not in STAGES or not isinstance(info, dict):
            return f"`stages` holds {json.dumps(stage)[:40]}, not a record of one of {', '.join(STAGES)}"
    for tid, rec in data["trials"].items():
        if not isinstance(rec, dict) or not isinstance(rec.get("status"), str):
            return f"trial record {tid!r} has no `status`"
    return ""


@contextlib.contextmanager
def runner_lock(study_dir: Path, wait_s: float = LOCK_WAIT_S) -> Iterator[int]:
    """Hold `studies/<name>/.runner.lock` for the runner's lifetime; yields the lock's file descriptor.

    flock is released by the kernel when the last holder dies, so a `kill -9`ed runner never leaves a stale lock.
    The runner hands the descriptor to its trial processes, so the lock also stays held while a trial of a killed
    runner is still alive; a new runner waits up to `wait_s` for them, then refuses.
    """
    path = study_dir / ".runner.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pid = Path(path).read_text().strip() or "?"
                if _alive(pid) or time.monotonic() >= deadline:  # a live runner: refuse now; its orphans: wait
                    raise StudyError(f"study {study_dir.name!r} is already running (runner pid {pid}, or trial "
                                     f"processes it started are still alive); watch it with `autoresearch study "
                                     f"status {study_dir.name} --watch`, or stop that process first") from None
                time.sleep(0.1)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield fd
    finally:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _alive(pid: str) -> bool:
    """True if `pid` names a live process other than this one."""
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
