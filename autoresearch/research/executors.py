"""Executors: how a study's trials are started. Every executor keeps what a subprocess per trial gives (DESIGN.md
§2): a crash, OOM or `kill -9` of one trial cannot take the study down, no state leaks between seeds, and the study
process stays the single writer of state.json and the ledger.

    local        the default: warm workers (warm_pool.py) — a pre-warmed process (torch, numpy and the testbed
                 modules imported once) forks a fresh child per trial attempt
    subprocess   a fresh interpreter per trial attempt (`python -m autoresearch.research.trial SPEC`)
    ray          each attempt a Ray task with the trial's declared resources, on a local Ray instance or an existing
                 cluster (`--address`); optional extra `autoresearch[scale]` (ray_executor.py)
"""

from __future__ import annotations

import logging

from autoresearch.errors import StudyError
from autoresearch.research.trial import AttemptLauncher

__all__ = ["EXECUTORS", "make_launcher"]

EXECUTORS = ("local", "subprocess", "ray")

log = logging.getLogger(__name__)


def make_launcher(executor: str = "local", *, address: str | None = None, workers: int = 1) -> AttemptLauncher:
    """The AttemptLauncher of `executor` (one of EXECUTORS); StudyError (one line) for an unknown name or an
    `address` given to an executor that has none."""
    if executor not in EXECUTORS:
        raise StudyError(f"`--executor` must be one of {', '.join(EXECUTORS)}, got {executor!r}; e.g. --executor local")
    if address is not None and executor != "ray":
        raise StudyError(f"`--address` is for --executor ray only (got --executor {executor}); drop it, or add "
                         "--executor ray")
    if executor == "subprocess":
        return AttemptLauncher()
    if executor == "local":
        from autoresearch.research.warm_pool import WarmLauncher, fork_available

        if fork_available():
            return WarmLauncher()
        log.warning("--executor local: warm trial workers need fork() on Linux; each trial runs as a fresh subprocess")
        return AttemptLauncher()
    from autoresearch.research.ray_executor import RayLauncher  # lazy: ray is an optional extra

    return RayLauncher(address=address, workers=workers)
