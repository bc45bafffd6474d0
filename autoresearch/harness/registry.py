"""Experiment registry: `experiments/exp-NNN/` folders allocated atomically, each self-describing.

Layout of one experiment (STYLE.md §9):
    config.yaml    fully resolved config + `meta` (git commit, dirty flag, versions, hardware, seed)
    log.jsonl      one line per logged step (step, tokens, loss, lr, grad_norm, tokens_per_s, memory)
    results.yaml   final metrics and status (running | ok | diverged | crashed)
    checkpoints/   resumable checkpoints
    errors.log     tracebacks of crashes

Allocation relies on `os.mkdir` being atomic: two processes racing for exp-007 cannot both create it, the loser
moves on to exp-008.
"""

from __future__ import annotations

import contextlib
import os
import re
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from autoresearch.errors import RegistryError
from autoresearch.harness.atomic import append_jsonl, atomic_write_yaml, read_jsonl

__all__ = ["Experiment", "new_experiment", "open_experiment", "list_experiments", "DEFAULT_ROOT", "STATUSES"]

DEFAULT_ROOT = "experiments"
STATUSES = ("running", "ok", "diverged", "crashed")
_NAME = re.compile(r"^exp-(\d{3,})$")


@dataclass(frozen=True)
class Experiment:
    """Handle on one experiment folder; all writes are atomic or append-only."""

    path: Path

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

    def write_config(self, config: dict[str, Any], meta: dict[str, Any]) -> None:
        atomic_write_yaml(self.config_path, {**config, "meta": meta})

    def read_config(self) -> dict[str, Any]:
        return _read_yaml(self.config_path)

    def log(self, record: dict[str, Any]) -> None:
        append_jsonl(self.log_path, record)

    def read_log(self) -> list[dict[str, Any]]:
        return read_jsonl(self.log_path)

    def truncate_log(self, after_step: int) -> None:
        """Drop log lines past `after_step` (used on resume so the log never holds a step twice)."""
        import json

        from autoresearch.harness.atomic import atomic_write_text

        keep = [r for r in self.read_log() if r.get("step", -1) <= after_step]
        atomic_write_text(self.log_path, "".join(json.dumps(r) + "\n" for r in keep))

    def write_results(self, results: dict[str, Any]) -> None:
        atomic_write_yaml(self.results_path, results)

    def read_results(self) -> dict[str, Any]:
        return _read_yaml(self.results_path) if self.results_path.exists() else {}

    def log_error(self, text: str) -> None:
        with open(self.errors_path, "a") as f:
            f.write(text.rstrip() + "\n")

    @contextlib.contextmanager
    def recording_crashes(self) -> Iterator[None]:
        """Inside the block, an exception marks the run `crashed` (with the error) and logs its traceback."""
        try:
            yield
        except KeyboardInterrupt:
            self.write_results({**self.read_results(), "status": "crashed", "error": "interrupted (KeyboardInterrupt)"})
            raise
        except Exception as e:
            self.log_error(traceback.format_exc())
            self.write_results({**self.read_results(), "status": "crashed", "error": f"{type(e).__name__}: {e}"})
            raise

    @property
    def status(self) -> str:
        return str(self.read_results().get("status", "empty"))


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise RegistryError(f"{path} does not exist; is {path.parent.name} a finished experiment?") from None
    except yaml.YAMLError as e:
        raise RegistryError(f"{path} is not valid YAML ({str(e).splitlines()[0]}); restore it from a backup") from None
    return data or {}


def _numbers(root: Path) -> list[int]:
    if not root.is_dir():
        return []
    return sorted(int(m.group(1)) for p in root.iterdir() if p.is_dir() and (m := _NAME.match(p.name)))


def new_experiment(root: str | Path = DEFAULT_ROOT) -> Experiment:
    """Allocate the next free `exp-NNN` under `root`, atomically (safe across concurrent processes)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    n = (max(_numbers(root), default=0)) + 1
    while True:
        path = root / f"exp-{n:03d}"
        try:
            os.mkdir(path)
        except FileExistsError:
            n += 1
            continue
        (path / "checkpoints").mkdir()
        return Experiment(path)


def open_experiment(ref: str | Path, root: str | Path = DEFAULT_ROOT) -> Experiment:
    """Open `exp-003`, `3` or a path to an experiment folder."""
    ref_s = str(ref)
    candidates = [Path(ref_s)]
    if ref_s.isdigit():
        candidates.append(Path(root) / f"exp-{int(ref_s):03d}")
    candidates.append(Path(root) / ref_s)
    for c in candidates:
        if c.is_dir() and (c / "config.yaml").exists() or (c.is_dir() and _NAME.match(c.name)):
            return Experiment(c)
    have = ", ".join(f"exp-{n:03d}" for n in _numbers(Path(root))[-5:]) or "none"
    raise RegistryError(f"no experiment {ref_s!r} under {root}/ (latest: {have}); run `autoresearch ls` to see them")


def list_experiments(root: str | Path = DEFAULT_ROOT) -> list[Experiment]:
    """All experiments under `root`, in number order."""
    root = Path(root)
    return [Experiment(root / f"exp-{n:03d}") for n in _numbers(root)]
