"""The trial scheduler: runs a batch of `TrialSpec`s on N parallel workers, one subprocess per trial, each worker
pinned to one GPU when there are GPUs.

Threads: one thread per worker, each waiting on one trial subprocess (`trial.run_trial`); the caller's thread waits
for the batch and emits a heartbeat while it runs. The caller gets each outcome through `on_done(spec, outcome)`, run
in the worker thread that ran the trial; an exception raised there (or by a trial) stops the batch: the stop event
is set, running trials are killed (`run_trial` watches it) and queued ones never start, and the exception propagates
to `run`. The scheduler knows nothing of studies — the study runner and any later pipeline that runs trials (of
worktree code, say) give it specs and callbacks.

GPU pinning: worker slot k runs its trials with `CUDA_VISIBLE_DEVICES` = the k-th (mod n) of the devices this
process may use, so parallel trials never share a GPU; without GPUs the environment is left alone.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from autoresearch.research.trial import AttemptLauncher, TrialInterrupted, TrialOutcome, TrialSpec, run_trial

__all__ = ["TrialScheduler", "default_workers", "gpu_count", "HEARTBEAT_S", "Emit", "OnDone", "OnStart"]

HEARTBEAT_S = 60.0
"""While trials run, a progress line this often (a stage can run for minutes between finished trials)."""

Emit = Callable[[str, dict[str, Any]], None]
OnStart = Callable[[TrialSpec], None]
OnDone = Callable[[TrialSpec, TrialOutcome], None]


def gpu_count() -> int:
    """NVIDIA GPUs visible to this process, without importing torch (honours CUDA_VISIBLE_DEVICES)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([d for d in visible.split(",") if d.strip() and d.strip() != "-1"])
    gpus = Path("/proc/driver/nvidia/gpus")
    return len(list(gpus.iterdir())) if gpus.is_dir() else 0


def default_workers(threads_per_trial: int = 1) -> int:
    """Parallel trials that fit the machine: usable cores // threads per trial, at most one per GPU when there are
    GPUs (each worker slot is pinned to one GPU through CUDA_VISIBLE_DEVICES), at least 1."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count() or 1
    n = max(1, cores // max(1, threads_per_trial))
    gpus = gpu_count()
    return min(n, gpus) if gpus else n


class TrialScheduler:
    """Runs batches of trials under `trials_dir/<trial id>/` on `workers` parallel subprocesses.

    Events through `emit`: `batch` (trial ids, workers), `trial_start` (per trial) and `heartbeat` (done/total,
    running trials with their seconds so far). `done` counts what the caller `tick()`s — the caller decides what
    counts as a finished trial of the batch."""

    def __init__(
        self,
        trials_dir: Path,
        workers: int,
        *,
        emit: Emit | None = None,
        stop: threading.Event | None = None,
        lock_fd: int | None = None,
        rerun_failed: bool = False,
        env: Callable[[TrialSpec], dict[str, str]] | None = None,
        launcher: AttemptLauncher | None = None,
    ) -> None:
        self.trials_dir = Path(trials_dir)
        self.workers = workers
        self.emit: Emit = emit or (lambda kind, data: None)
        self.stop = stop or threading.Event()
        self.lock_fd = lock_fd
        """a descriptor every trial inherits (the study's runner lock: held until the runner and its trials end)."""
        self.rerun_failed = rerun_failed
        self.env = env
        self.launcher = launcher or AttemptLauncher()
        """how each attempt's process is started (executors.py): a fresh interpreter, a warm worker, a Ray task."""
        """extra environment of a trial's subprocess (e.g. the worktree it runs), beside the GPU pinning."""
        self.total = 0
        self.done = 0
        self._count = threading.Lock()
        self._started: dict[str, float] = {}
        self._slots: queue.Queue[int] = queue.Queue()
        for slot in range(workers):
            self._slots.put(slot)
        self._gpus = gpu_count()

    def tick(self) -> int:
        """Count one more finished trial of this batch; returns the count."""
        with self._count:
            self.done += 1
            return self.done

    def run(self, specs: list[TrialSpec], on_done: OnDone, on_start: OnStart | None = None) -> None:
        """Run `specs` (in this order of start) and return when all finished; raises the first error of a trial or a
        callback after stopping the others."""
        if not specs:
            return
        self.total, self.done = len(specs), 0
        self.emit("batch", {"trials": [s.trial_id for s in specs], "workers": self.workers})
        pool = ThreadPoolExecutor(max_workers=min(self.workers, len(specs)), thread_name_prefix="trial")
        futures = [pool.submit(self._run_one, spec, on_done, on_start) for spec in specs]
        t0 = time.monotonic()
        try:
            while True:
                done, pending = wait(futures, timeout=HEARTBEAT_S, return_when=FIRST_EXCEPTION)
                if not pending or any(f.exception() is not None for f in done):
                    break
                now_ = time.monotonic()
                running = {tid: now_ - t for tid, t in list(self._started.items())}
                self.emit("heartbeat", {"done": self.done, "total": self.total, "running": running,
                                        "elapsed_s": now_ - t0})
            for f in done:
                f.result()
        except BaseException:
            self.stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        pool.shutdown(wait=True)

    def visible_device(self, slot: int) -> str:
        """CUDA_VISIBLE_DEVICES of a worker slot: one device out of those this process may use."""
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        ids = [d.strip() for d in visible.split(",") if d.strip()] if visible else [str(i) for i in range(self._gpus)]
        return ids[slot % len(ids)]

    def _run_one(self, spec: TrialSpec, on_done: OnDone, on_start: OnStart | None) -> None:
        if self.stop.is_set():
            return
        slot = self._slots.get()  # a worker slot; with GPUs, slot k runs on GPU k % n so parallel trials never share
        if self.stop.is_set():
            self._slots.put(slot)
            return
        if on_start is not None:
            on_start(spec)
        self._started[spec.trial_id] = time.monotonic()
        self.emit("trial_start", {"trial": spec.trial_id, "kind": spec.kind, "arm": spec.arm, "seed": spec.seed,
                                  "timeout_s": spec.timeout_s})
        env = {"CUDA_VISIBLE_DEVICES": self.visible_device(slot)} if self._gpus else {}
        if self.env is not None:
            env.update(self.env(spec))
        try:
            out = run_trial(spec, self.trials_dir / spec.trial_id, stop=self.stop, env=env, lock_fd=self.lock_fd,
                            rerun_failed=self.rerun_failed, launcher=self.launcher)
        except TrialInterrupted:
            return
        except BaseException:
            self.stop.set()  # here, before this worker takes the next queued trial
            raise
        finally:
            self._slots.put(slot)
            self._started.pop(spec.trial_id, None)
        try:
            on_done(spec, out)
        except BaseException:
            self.stop.set()
            raise
