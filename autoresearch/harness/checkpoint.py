"""Checkpoints that resume exactly and detect corruption.

A checkpoint is `step-NNNNNNN.pt` (a torch.save of a plain dict: model, optimizers, schedule, RNG states, data
position, step, anything else the loop puts in) plus an entry in `manifest.json` holding its size and sha256.
Both are written atomically, the manifest last, so a crash mid-save leaves the previous checkpoint as the latest one.
Loading checks size and hash first: a truncated or corrupted file is a one-line `CheckpointError` naming the file
and what to do, never an unpickling traceback.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autoresearch.errors import CheckpointError
from autoresearch.harness.atomic import atomic_write_bytes, atomic_write_text

__all__ = ["save_checkpoint", "load_checkpoint", "latest_checkpoint", "rng_state", "set_rng_state", "MANIFEST"]

MANIFEST = "manifest.json"


def rng_state() -> dict[str, Any]:
    """Every RNG a training step can touch."""
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    if not path.exists():
        return {"checkpoints": []}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        raise CheckpointError(f"{path} is corrupted (not valid JSON); delete {directory} to restart the run") from None


def save_checkpoint(directory: str | Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Save `state` as the checkpoint of `step`; keep the newest `keep` checkpoints."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save({**state, "step": step}, buf)
    data = buf.getvalue()
    name = f"step-{step:07d}.pt"
    atomic_write_bytes(directory / name, data)
    manifest = _read_manifest(directory)
    entries = [e for e in manifest["checkpoints"] if e["file"] != name]
    entries.append({"file": name, "step": step, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    entries.sort(key=lambda e: e["step"])
    for old in entries[:-keep] if keep > 0 else []:
        (directory / old["file"]).unlink(missing_ok=True)
    entries = entries[-keep:] if keep > 0 else entries
    atomic_write_text(directory / MANIFEST, json.dumps({"checkpoints": entries}, indent=1))
    return directory / name


def latest_checkpoint(directory: str | Path) -> Path | None:
    """Path of the newest checkpoint listed in the manifest, or None if there is none."""
    directory = Path(directory)
    entries = _read_manifest(directory)["checkpoints"]
    return directory / entries[-1]["file"] if entries else None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Verify size + sha256 against the manifest, then load. Raises CheckpointError with the fix."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist; list {path.parent} or start without --resume")
    entry = next((e for e in _read_manifest(path.parent)["checkpoints"] if e["file"] == path.name), None)
    data = path.read_bytes()
    if entry is None:
        raise CheckpointError(f"checkpoint {path} is not in {path.parent / MANIFEST}; it may be a partial save — delete it")
    if len(data) != entry["bytes"]:
        raise CheckpointError(
            f"checkpoint {path} is truncated ({len(data)} bytes, expected {entry['bytes']}); "
            "delete it and resume from an earlier checkpoint or restart the run"
        )
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry["sha256"]:
        raise CheckpointError(
            f"checkpoint {path} is corrupted (sha256 {digest[:12]}…, expected {entry['sha256'][:12]}…); "
            "delete it and resume from an earlier checkpoint or restart the run"
        )
    return torch.load(io.BytesIO(data), map_location=map_location, weights_only=False)
