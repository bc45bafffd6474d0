"""Experiment registry: `experiments/exp-NNN/` folders allocated atomically, each self-describing and validated.

Layout of one experiment (STYLE.md §9):
    config.yaml    fully resolved config + `meta` (git commit, dirty flag, versions, hardware, seed)
    log.jsonl      one line per logged step (step, tokens, loss, lr, grad_norm, tokens_per_s, memory)
    results.yaml   final metrics and status (running | ok | diverged | crashed)
    run.lock       held (flock) by the process training it; holds that process's pid, host and start time
    checkpoints/   resumable checkpoints
    errors.log     tracebacks of crashes
    trackers/      local files of the experiment trackers it mirrors into (`--tracker`: TensorBoard, MLflow, W&B)

Allocation relies on `os.mkdir` being atomic: two processes racing for exp-007 cannot both create it, the loser
moves on to exp-008. A run holds `run.lock` for its whole life (`Experiment.running`), so a second process training
the same experiment is refused with the pid of the first, and a `running` experiment whose lock nobody holds was
killed: `state()` shows it as `killed`. The kernel drops the lock when the process dies, so a reused pid never
makes a dead run look alive.

Every file is validated when read: a damaged one raises a one-line `RegistryError` naming the file, what is wrong
and the fix; `state()` turns that into the status `damaged` so one bad folder never breaks `autoresearch ls`. A full,
read-only or immutable disk is a one-line `RegistryError` naming the path, and leaves the files already written as
they were.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import platform
import re
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from autoresearch.errors import RegistryError
from autoresearch.harness.atomic import (
    JsonlScan,
    append_jsonl,
    atomic_write_text,
    atomic_write_yaml,
    disk_errors,
    remove_stale_temps,
    scan_jsonl,
)
from autoresearch.harness.settings import DEFAULT_EXPERIMENTS_ROOT

if TYPE_CHECKING:
    from autoresearch.harness.trackers import TrackerSet

__all__ = ["Experiment", "new_experiment", "open_experiment", "list_experiments", "DEFAULT_ROOT", "STATUSES",
           "FINISHED", "LOCK"]

DEFAULT_ROOT = DEFAULT_EXPERIMENTS_ROOT
STATUSES = ("running", "ok", "diverged", "crashed")
FINISHED = ("ok", "diverged")  # a resume would overwrite these results; running/killed/crashed/empty may resume
LOCK = "run.lock"
_NAME = re.compile(r"^exp-(\d{3,})$")
_NUMERIC = ("val_loss", "val_bpb", "perplexity", "val_loss_init", "steps", "tokens", "params", "tokens_per_s",
            "train_seconds", "wall_seconds", "heldout_loss", "peak_memory_mb")


def _writing(path: Path, elsewhere: str = "--root DIR") -> contextlib.AbstractContextManager[None]:
    """Turn a full/read-only/immutable-disk OSError on `path` into a one-line RegistryError."""
    return disk_errors(path, RegistryError, elsewhere)


def _proc_start(pid: int) -> str | None:
    """Start time of `pid` in clock ticks since boot (/proc/PID/stat field 22), or None without /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


@dataclass(frozen=True)
class Experiment:
    """Handle on one experiment folder; all writes are atomic or append-only, all reads validated.

    With `trackers` (see `with_trackers`), every write of log.jsonl, results.yaml and config.yaml is mirrored into
    them after the file is written; a failing tracker is a warning, never an error of the run."""

    path: Path
    trackers: TrackerSet | None = field(default=None, compare=False, repr=False)

    def with_trackers(self, names: list[str] | tuple[str, ...], tags: dict[str, Any] | None = None,
                      run_name: str | None = None) -> Experiment:
        """This experiment mirrored into the named trackers (harness/trackers), tagged with `experiment` and `tags`;
        their local files go under `trackers/`. Close them with `close_trackers` (`running()` does at its end)."""
        if not names:
            return self
        from autoresearch.harness.trackers import make_trackers

        ts = make_trackers(names, run_name=run_name or self.id, tags={"experiment": self.id, **(tags or {})},
                           log_dir=self.path / "trackers")
        return replace(self, trackers=ts)

    def close_trackers(self) -> None:
        """End the trackers' runs (idempotent; no-op without trackers)."""
        if self.trackers is not None:
            self.trackers.close()

    @property
    def id(self) -> str:
        return self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def log_path(self) -> Path:
        return self.path / "log.jsonl"

    @property
    def results_path(self) -> Path:
        return self.path / "results.yaml"

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def errors_path(self) -> Path:
        return self.path / "errors.log"

    @property
    def lock_path(self) -> Path:
        return self.path / LOCK

    # --- config ----------------------------------------------------------------------------------------------------

    def write_config(self, config: dict[str, Any], meta: dict[str, Any]) -> None:
        with _writing(self.config_path):
            atomic_write_yaml(self.config_path, {**config, "meta": meta})
        if self.trackers is not None:
            self.trackers.log_config(config)
            git = meta.get("git") if isinstance(meta.get("git"), dict) else {}
            self.trackers.set_tags({"testbed": meta.get("testbed"), "seed": meta.get("seed"),
                                    "git_commit": git.get("commit")})

    def read_config(self) -> dict[str, Any]:
        """config.yaml as a mapping of sections plus `meta`; damaged or missing is a RegistryError with the fix."""
        fix = "restore it from a backup (every checkpoint holds a copy under its `config` key)"
        data = _read_yaml(self.config_path, fix, missing=f"is this a finished experiment? {fix}")
        if data is None or data == {}:
            raise RegistryError(f"{self.config_path} is empty; {fix}")
        if not isinstance(data, dict):
            raise RegistryError(f"{self.config_path} holds a {type(data).__name__}, not a mapping of sections; {fix}")
        if "meta" in data and not isinstance(data["meta"], dict):
            raise RegistryError(f"{self.config_path} has a `meta` that is not a mapping; {fix}")
        return data

    def testbed(self) -> str | None:
        """The testbed that trained this experiment, None for an eval-code one: `meta.testbed` of config.yaml, the
        spec `testbeds.get_testbed` resolves (a registered name, `module.path:Class`, or an absolute
        `file.py:Class`). A folder written before runs recorded it is guessed from its sections (`arch`: codegen)."""
        cfg = self.read_config()
        if "command" in cfg:
            return None
        meta = cfg.get("meta") or {}
        if isinstance(meta.get("testbed"), str) and meta["testbed"]:
            return str(meta["testbed"])
        return "codegen" if "arch" in cfg else "lm"

    def _resume_hint(self) -> str:
        try:
            tb = self.testbed()
        except RegistryError:
            tb = "lm"
        root = "" if self.path.parent == Path(DEFAULT_ROOT) else f" --root {self.path.parent}"
        return f"`autoresearch train {tb} --resume {self.id}{root}`" if tb else "rerun eval-code"

    # --- log -------------------------------------------------------------------------------------------------------

    def log(self, record: dict[str, Any]) -> None:
        with _writing(self.log_path):
            append_jsonl(self.log_path, record)
        if self.trackers is not None:
            self.trackers.log_record(record)

    def scan_log(self) -> JsonlScan:
        """log.jsonl: good records, damaged lines (with numbers), and whether the last line is a torn append."""
        try:
            return scan_jsonl(self.log_path)
        except OSError as e:
            raise RegistryError(f"cannot read {self.log_path} ({e.strerror}); make it readable") from None

    def read_log(self) -> list[dict[str, Any]]:
        return self.scan_log().records

    def truncate_log(self, after_step: int) -> None:
        """Drop log lines past `after_step` (used on resume so the log never holds a step twice).

        A damaged line (not a torn last append) is never dropped silently: it is a RegistryError with its number.
        """
        scan = self.scan_log()
        if scan.bad:
            raise RegistryError(f"{scan.describe_bad(self.log_path)}; repair or delete that line, then resume again")
        keep = [r for r in scan.records if not isinstance(r.get("step"), int) or r["step"] <= after_step]
        with _writing(self.log_path):
            atomic_write_text(self.log_path, "".join(json.dumps(r) + "\n" for r in keep))

    # --- results ---------------------------------------------------------------------------------------------------

    def write_results(self, results: dict[str, Any]) -> None:
        with _writing(self.results_path):
            atomic_write_yaml(self.results_path, results)
        if self.trackers is not None:
            self.trackers.log_results(results)

    def read_results(self) -> dict[str, Any]:
        """results.yaml as a mapping with a known `status`; {} while it does not exist yet."""
        if not self.results_path.exists():
            return {}
        fix = f"delete it and resume the run with {self._resume_hint()} to rewrite it"
        data = _read_yaml(self.results_path, fix)
        if not isinstance(data, dict):
            what = "is empty" if data is None else f"holds a {type(data).__name__}, not a mapping"
            raise RegistryError(f"{self.results_path} {what}; {fix}")
        status = data.get("status")
        if status not in STATUSES:
            got = "has no `status`" if status is None else f"has status {status!r}"
            raise RegistryError(f"{self.results_path} {got} (expected one of {', '.join(STATUSES)}); {fix}")
        for k in _NUMERIC:
            v = data.get(k)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
                raise RegistryError(f"{self.results_path} has `{k}`: {v!r}, not a number; {fix}")
        return data

    def log_error(self, text: str) -> None:
        with _writing(self.errors_path), open(self.errors_path, "a") as f:
            f.write(text.rstrip() + "\n")

    @property
    def status(self) -> str:
        return str(self.read_results().get("status", "empty"))

    # --- the run: lock, owner, crash recording ---------------------------------------------------------------------

    @contextlib.contextmanager
    def running(self, *, resume: bool = False) -> Iterator[None]:
        """Hold `run.lock` for the block, record this process as the owner, mark an exception `crashed`.

        Refuses (RegistryError) when another live process holds the lock, and on `resume`, a finished experiment
        (checked again under the lock: another resume may have finished it meanwhile). Temp files of killed writes
        are removed once the lock is held.
        """
        fd = self._acquire_lock(resume)
        try:
            if resume:
                self.check_resumable()
            with contextlib.suppress(OSError):
                remove_stale_temps(self.path)
            with self.recording_crashes():
                yield
        finally:
            self.close_trackers()  # after a crash was recorded, so the trackers see the final status
            os.close(fd)  # releases the flock

    def _acquire_lock(self, resume: bool) -> int:
        elsewhere = "--root DIR" if not resume else "a copy of the folder on a writable disk with --root"
        with _writing(self.lock_path, elsewhere):
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            for attempt in range(20):  # an `ls` probing the lock holds it for microseconds: retry briefly
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if attempt == 19:
                        raise
                    time.sleep(0.025)
                except OSError as e:  # a file system without flock: run unlocked rather than not at all
                    if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
                        raise
                    break
            owner = {"pid": os.getpid(), "host": platform.node(), "proc_start": _proc_start(os.getpid()),
                     "started": datetime.now(UTC).isoformat(timespec="seconds")}
            with _writing(self.lock_path, elsewhere):
                os.ftruncate(fd, 0)
                os.pwrite(fd, (json.dumps(owner) + "\n").encode(), 0)
            return fd
        except BlockingIOError:
            os.close(fd)
            o = self.owner() or {}
            who = f"pid {o.get('pid')} on {o.get('host')} since {o.get('started')}" if o else "another process"
            kill = f"stop it with `kill {o.get('pid')}` and resume" if o.get("pid") else "stop it and resume"
            raise RegistryError(f"{self.id} is already being trained by {who}; wait for it to finish, or {kill}") \
                from None
        except BaseException:
            os.close(fd)
            raise

    def owner(self) -> dict[str, Any] | None:
        """pid, host, proc_start and started of the process that last ran this experiment (from run.lock)."""
        try:
            data = json.loads(self.lock_path.read_bytes())
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def is_alive(self) -> bool:
        """Whether a live process holds this experiment's lock (probed without blocking; never creates the file)."""
        try:
            fd = os.open(self.lock_path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:  # no flock here: fall back to the recorded pid and its start time (pid reuse)
            o = self.owner() or {}
            pid = o.get("pid")
            return (isinstance(pid, int) and o.get("host") == platform.node()
                    and o.get("proc_start") is not None and _proc_start(pid) == o.get("proc_start"))
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)

    def state(self) -> tuple[str, str]:
        """(status to show, note): `killed` for a `running` experiment no live process holds, `damaged` (the note
        says why and how to fix it) for a folder whose files do not validate, `empty` before results exist."""
        try:
            res = self.read_results()
            # a run that crashed before writing its config (e.g. a bad device) is `crashed`, not damaged
            if self.config_path.exists() or (res and res.get("status") != "crashed"):
                self.read_config()
        except RegistryError as e:
            return "damaged", str(e)
        status = str(res.get("status", "empty"))
        if status == "running" and not self.is_alive():
            o = self.owner() or {}
            who = f"pid {o['pid']} on {o.get('host')}" if o.get("pid") else "its process"
            return "killed", f"{who} is gone; continue it with {self._resume_hint()}"
        return status, ""

    def check_resumable(self) -> None:
        """Refuse to resume a finished experiment (its results would be overwritten)."""
        status = self.status
        if status in FINISHED:
            raise RegistryError(
                f"{self.id} finished with status {status}; --resume only continues unfinished runs (running, killed, "
                f"crashed); start a new run instead, e.g. `autoresearch train {self.testbed() or 'lm'} "
                f"--config {self.config_path}`"
            )

    @contextlib.contextmanager
    def recording_crashes(self) -> Iterator[None]:
        """Inside the block, an exception marks the run `crashed` (with the error) and logs its traceback.

        Recording is best effort: when the disk is full or read-only, the original error is what surfaces.
        """
        try:
            yield
        except KeyboardInterrupt:
            with contextlib.suppress(Exception):
                self.write_results({**self._results_or_empty(), "status": "crashed",
                                    "error": "interrupted (KeyboardInterrupt)"})
            raise
        except Exception as e:
            with contextlib.suppress(Exception):
                self.log_error(traceback.format_exc())
            with contextlib.suppress(Exception):
                first = (str(e).strip().splitlines() or [""])[0]
                self.write_results({**self._results_or_empty(), "status": "crashed",
                                    "error": f"{type(e).__name__}: {first}"})
            raise

    def _results_or_empty(self) -> dict[str, Any]:
        try:
            return self.read_results()
        except RegistryError:
            return {}


def _read_yaml(path: Path, fix: str, missing: str = "") -> Any:
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise RegistryError(f"{path} does not exist; {missing or fix}") from None
    except UnicodeDecodeError as e:
        raise RegistryError(f"{path} is not UTF-8 text (byte {e.start}); {fix}") from None
    except OSError as e:
        raise RegistryError(f"cannot read {path} ({e.strerror}); make it readable") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise RegistryError(f"{path} is not valid YAML ({str(e).splitlines()[0]}); {fix}") from None


def _numbers(root: Path) -> list[int]:
    try:
        return sorted(int(m.group(1)) for p in root.iterdir() if (m := _NAME.match(p.name)) and p.is_dir())
    except FileNotFoundError:
        return []
    except OSError as e:
        raise RegistryError(f"cannot list {root} ({e.strerror}); make it readable or use --root DIR") from None


def new_experiment(root: str | Path = DEFAULT_ROOT) -> Experiment:
    """Allocate the next free `exp-NNN` under `root`, atomically (safe across concurrent processes)."""
    root = Path(root)
    try:
        with _writing(root):
            root.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise RegistryError(f"--root {root} is not a folder (a file is in the way); use another --root") from None
    n = (max(_numbers(root), default=0)) + 1
    while True:
        path = root / f"exp-{n:03d}"
        try:
            with _writing(path):
                os.mkdir(path)
        except FileExistsError:
            n += 1
            continue
        try:
            with _writing(path / "checkpoints"):
                (path / "checkpoints").mkdir()
        except RegistryError:
            with contextlib.suppress(OSError):
                path.rmdir()  # never leave an empty folder behind a refusal
            raise
        return Experiment(path)


def open_experiment(ref: str | Path, root: str | Path = DEFAULT_ROOT) -> Experiment:
    """Open `exp-003`, `3` or a path to an experiment folder."""
    ref_s = str(ref).strip()
    if not ref_s:
        raise RegistryError(f"an experiment is required (exp-NNN, NNN or a folder), got {str(ref)!r}; "
                            "run `autoresearch ls` to see them")
    candidates = [Path(ref_s)]
    if ref_s.isdigit():
        candidates.append(Path(root) / f"exp-{int(ref_s):03d}")
    candidates.append(Path(root) / ref_s)
    for c in candidates:
        if c.is_dir() and ((c / "config.yaml").exists() or _NAME.match(c.name)):
            return Experiment(c)
    have = ", ".join(f"exp-{n:03d}" for n in _numbers(Path(root))[-5:]) or "none"
    raise RegistryError(f"no experiment {ref_s!r} under {root}/ (latest: {have}); run `autoresearch ls` to see them")


def list_experiments(root: str | Path = DEFAULT_ROOT) -> list[Experiment]:
    """All experiments under `root`, in number order."""
    root = Path(root)
    return [Experiment(root / f"exp-{n:03d}") for n in _numbers(root)]
