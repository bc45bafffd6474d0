"""`TrackerSet`: the trackers of one experiment behind one object, so that no tracker can stop the run.

`Experiment` (harness/registry.py) calls it after each write of log.jsonl, results.yaml and config.yaml. The
registry's files stay the record: a tracker mirrors them. So the first exception a tracker raises is printed once as
a one-line warning on stderr and that tracker is dropped for the rest of the run (a dead tracking server would
otherwise cost a network timeout on every logged step); the run and the other trackers go on.
"""

from __future__ import annotations

import sys
from typing import Any

from autoresearch.harness.trackers.base import Tracker, flatten, numbers

__all__ = ["TrackerSet"]


class TrackerSet:
    """Fans records out to `trackers`; a failing tracker is warned about once and dropped."""

    def __init__(self, trackers: list[Tracker]) -> None:
        self.trackers = list(trackers)
        self.failed: dict[str, str] = {}
        """name -> the one-line error that dropped it."""
        self._closed = False

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.trackers]

    def _each(self, what: str, *args: Any) -> None:
        if self._closed:
            return
        for t in list(self.trackers):
            try:
                getattr(t, what)(*args)
            except Exception as e:  # a tracker must never stop the run: warn once, drop it
                self.drop(t, what, e)

    def report(self, name: str, what: str, error: BaseException) -> None:
        """The one warning about tracker `name` failing in `what` (stderr, one line)."""
        first = (str(error).strip().splitlines() or [""])[0][:200]
        self.failed[name] = f"{type(error).__name__}: {first}".rstrip(": ")
        print(f"warning: tracker {name} failed in {what} ({self.failed[name]}); it logs nothing more for this run "
              f"(log.jsonl and results.yaml are complete)", file=sys.stderr, flush=True)

    def drop(self, tracker: Tracker, what: str, error: BaseException) -> None:
        """Warn once that `tracker` failed in `what` and stop calling it (it is closed, best effort)."""
        self.report(tracker.name, what, error)
        if tracker in self.trackers:
            self.trackers.remove(tracker)
        if what != "close":
            try:
                tracker.close()
            except Exception:  # already reported: the tracker is broken
                pass

    def log_record(self, record: dict[str, Any]) -> None:
        """One log.jsonl record: its numbers at its `step`."""
        step = record.get("step")
        step = step if isinstance(step, int) and not isinstance(step, bool) else None
        metrics = numbers(flatten(record), skip=("step",))
        if metrics:
            self._each("log_metrics", step, metrics)

    def log_results(self, results: dict[str, Any]) -> None:
        """results.yaml: its numbers and strings, flattened (lists and None are left out)."""
        flat = {k: v for k, v in flatten(results).items()
                if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
        self._each("log_summary", flat)

    def log_config(self, config: dict[str, Any]) -> None:
        """config.yaml without its `meta` section (run metadata goes in as tags, not parameters)."""
        self._each("log_config", flatten({k: v for k, v in config.items() if k != "meta"}))

    def set_tags(self, tags: dict[str, Any]) -> None:
        self._each("set_tags", {k: str(v) for k, v in tags.items() if v is not None})

    def close(self) -> None:
        """End every tracker's run; idempotent."""
        if self._closed:
            return
        for t in list(self.trackers):
            try:
                t.close()
            except Exception as e:
                self.drop(t, "close", e)
        self._closed = True
