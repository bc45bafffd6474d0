"""Checkpoints that resume exactly and detect corruption.

A checkpoint is `step-NNNNNNN.pt` (a torch.save of a plain dict: model, optimizers, schedule, RNG states, data
position, step, the run's config and its hash, anything else the loop puts in) plus an entry in `manifest.json`
holding its size and sha256. Both are written atomically, the manifest last, so a crash mid-save leaves the previous
checkpoint as the latest one; the temp file such a crash leaves is removed by the next save or resume.

Every read is validated and every failure is a one-line `CheckpointError` naming the file, what is wrong and a fix
that works: a truncated or corrupted checkpoint is skipped on resume (the run continues from the one before and
recomputes the steps since, bit for bit), or, when it is the only one, the error says to start a new run; a missing
or damaged manifest says so and points at `--rebuild-manifest`, which re-lists the checkpoint files that load; a
config edited since the checkpoint was saved is refused with the fields that differ. A full, read-only or immutable
disk at save time is a one-line error too, and leaves the earlier checkpoints intact.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import random
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from autoresearch.errors import CheckpointError
from autoresearch.harness.atomic import atomic_write_bytes, atomic_write_text, disk_error, remove_stale_temps

__all__ = [
    "save_checkpoint", "load_checkpoint", "latest_checkpoint", "load_for_resume", "rebuild_manifest", "config_hash",
    "rng_state", "set_rng_state", "MANIFEST",
]

MANIFEST = "manifest.json"
_FILE = re.compile(r"^step-(\d{7,})\.pt$")
_REBUILD = "add --rebuild-manifest to the --resume command to re-list the checkpoint files that load"


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


def config_hash(config: dict[str, Any]) -> str:
    """sha256 of a resolved config dict (key order-independent); stored in every checkpoint."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


# --- manifest --------------------------------------------------------------------------------------------------------

def _valid_entry(e: Any) -> bool:
    return (isinstance(e, dict) and isinstance(e.get("file"), str) and bool(_FILE.match(e["file"]))
            and isinstance(e.get("step"), int) and isinstance(e.get("bytes"), int)
            and isinstance(e.get("sha256"), str) and len(e["sha256"]) == 64)


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("step-*.pt") if _FILE.match(p.name))


def _read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest, validated; a missing one is empty only when no checkpoint file exists either."""
    path = directory / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        files = _files(directory)
        if files:
            names = ", ".join(p.name for p in files[-3:])
            raise CheckpointError(f"{path} is missing, so the {len(files)} checkpoint file(s) there ({names}) cannot "
                                  f"be verified; restore it from a backup, or {_REBUILD}") from None
        return {"checkpoints": []}
    try:
        data = json.loads(raw)
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        raise CheckpointError(f"{path} is damaged (not valid JSON); {_REBUILD}") from None
    if not isinstance(data, dict) or not isinstance(data.get("checkpoints"), list):
        raise CheckpointError(f"{path} is damaged (no `checkpoints` list); {_REBUILD}")
    bad = [e for e in data["checkpoints"] if not _valid_entry(e)]
    if bad:
        raise CheckpointError(f"{path} is damaged (entry {str(bad[0])[:60]!r} lacks file/step/bytes/sha256); {_REBUILD}")
    return data


def _write_manifest(directory: Path, entries: list[dict[str, Any]]) -> None:
    atomic_write_text(directory / MANIFEST, json.dumps({"checkpoints": entries}, indent=1))


def rebuild_manifest(directory: str | Path) -> list[dict[str, Any]]:
    """Re-list the `step-*.pt` files that load (torch.load succeeds and the saved step matches the name).

    The recovery for a missing or damaged manifest. A file cut short does not load and is left out; a bit flip inside
    tensor data cannot be detected without the lost hash, which is why this is an explicit step, not automatic.
    Returns the entries written.
    """
    directory = Path(directory)
    remove_stale_temps(directory)
    entries = []
    for p in _files(directory):
        data = p.read_bytes()
        try:
            state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
        except Exception:  # noqa: BLE001 - any unpickling failure means the file is unusable
            continue
        step = int(_FILE.match(p.name).group(1))  # type: ignore[union-attr]
        if isinstance(state, dict) and state.get("step") == step:
            entries.append({"file": p.name, "step": step, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    if not entries:
        raise CheckpointError(f"no checkpoint file in {directory} loads; start a new run (without --resume)")
    _save_or_explain(lambda: _write_manifest(directory, entries), directory / MANIFEST)
    return entries


# --- save ------------------------------------------------------------------------------------------------------------

def _save_or_explain(write: Any, path: Path) -> None:
    try:
        write()
    except OSError as e:
        msg = disk_error(e, path, elsewhere="--root DIR")
        if msg is None:
            raise
        raise CheckpointError(f"{msg}; earlier checkpoints are intact, continue with --resume") from None


def save_checkpoint(directory: str | Path, step: int, state: dict[str, Any], keep: int = 2) -> Path:
    """Save `state` as the checkpoint of `step`; keep the newest `keep` checkpoints.

    The caller holds the run's lock (the experiment's `run.lock`): temp files of killed saves are removed here.
    """
    directory = Path(directory)
    name = f"step-{step:07d}.pt"
    _save_or_explain(lambda: directory.mkdir(parents=True, exist_ok=True), directory)
    remove_stale_temps(directory)
    extra: dict[str, Any] = {"step": step}
    if isinstance(state.get("config"), dict):  # lets a resume detect a config.yaml edited since (load_for_resume)
        extra["config_sha256"] = config_hash(state["config"])
    buf = io.BytesIO()
    torch.save({**state, **extra}, buf)
    data = buf.getvalue()
    manifest = _read_manifest(directory)
    _save_or_explain(lambda: atomic_write_bytes(directory / name, data), directory / name)
    entries = [e for e in manifest["checkpoints"] if e["file"] != name and (directory / e["file"]).exists()]
    entries.append({"file": name, "step": step, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()})
    entries.sort(key=lambda e: e["step"])
    dropped = entries[:-keep] if keep > 0 else []
    entries = entries[-keep:] if keep > 0 else entries
    _save_or_explain(lambda: _write_manifest(directory, entries), directory / MANIFEST)
    for old in dropped:  # after the manifest stops naming them: a crash here leaves only unlisted files
        with contextlib.suppress(OSError):
            (directory / old["file"]).unlink()
    return directory / name


# --- load ------------------------------------------------------------------------------------------------------------

def latest_checkpoint(directory: str | Path) -> Path | None:
    """Path of the newest checkpoint listed in the manifest whose file exists, or None if there is none."""
    directory = Path(directory)
    entries = [e for e in _read_manifest(directory)["checkpoints"] if (directory / e["file"]).exists()]
    return directory / entries[-1]["file"] if entries else None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Verify size + sha256 against the manifest, then load. Raises CheckpointError with the fix."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist; list {path.parent} or start without --resume")
    entries = _read_manifest(path.parent)["checkpoints"]
    entry = next((e for e in entries if e["file"] == path.name), None)
    if entry is None:
        raise CheckpointError(f"checkpoint {path} is not in {path.parent / MANIFEST}; it may be a partial save — delete it")
    data = path.read_bytes()
    earlier = [e for e in entries if e["step"] < entry["step"] and (path.parent / e["file"]).exists()]
    fix = (f"delete it; --resume then continues from {earlier[-1]['file']}" if earlier
           else "delete it and start a new run (there is no earlier checkpoint)")
    if len(data) != entry["bytes"]:
        raise CheckpointError(f"checkpoint {path} is truncated ({len(data)} bytes, expected {entry['bytes']}); {fix}")
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry["sha256"]:
        raise CheckpointError(
            f"checkpoint {path} is corrupted (sha256 {digest[:12]}…, expected {entry['sha256'][:12]}…); {fix}"
        )
    try:
        state = torch.load(io.BytesIO(data), map_location=map_location, weights_only=False)
    except Exception as e:  # noqa: BLE001 - the hash matched, so the writer saved something unloadable
        raise CheckpointError(f"checkpoint {path} does not load ({type(e).__name__}); {fix}") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(state).__name__}, not a state dict; {fix}")
    return state


def _config_diff(saved: dict[str, Any], now: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(saved) | set(now), key=str):
        a, b = saved.get(k, "<absent>"), now.get(k, "<absent>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += _config_diff(a, b, f"{prefix}{k}.")
        elif a != b:
            out.append(f"{prefix}{k}: {a!r} -> {b!r}")
    return out


def load_for_resume(
    directory: str | Path, config: dict[str, Any], config_file: str | Path, map_location: str | torch.device = "cpu"
) -> dict[str, Any] | None:
    """State of the newest checkpoint that verifies, to resume a run of `config`; None when there is no checkpoint.

    The caller holds the run's lock. Stale temp files are removed; a truncated or corrupted newest checkpoint is
    skipped with a warning naming it (resuming from the one before recomputes the steps since, bit for bit); a
    checkpoint saved under another config (`config_file` edited since) is refused with the fields that differ.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return None
    remove_stale_temps(directory)
    entries = _read_manifest(directory)["checkpoints"]
    if not entries:
        return None
    problems: list[str] = []
    for entry in reversed(entries):
        path = directory / entry["file"]
        try:
            state = load_checkpoint(path, map_location=map_location)
        except CheckpointError as e:
            problems.append(str(e).split("; ")[0])
            continue
        if problems:
            print(f"warning: skipped {'; '.join(problems)}; resuming from {path.name} instead", file=sys.stderr,
                  flush=True)
        _check_config(state, config, config_file, path)
        return state
    raise CheckpointError(f"no usable checkpoint in {directory} ({'; '.join(problems)}); start a new run "
                          "without --resume")


def _check_config(state: dict[str, Any], config: dict[str, Any], config_file: str | Path, path: Path) -> None:
    saved_hash = state.get("config_sha256")
    saved = state.get("config")
    if saved_hash is None and not isinstance(saved, dict):
        return  # a checkpoint from before configs were recorded: nothing to compare
    if saved_hash == config_hash(config) or (saved_hash is None and saved == config):
        return
    diff = _config_diff(saved, config) if isinstance(saved, dict) else []
    what = ", ".join(diff[:3]) + (f" (+{len(diff) - 3} more)" if len(diff) > 3 else "") if diff else "hash differs"
    raise CheckpointError(f"{config_file} changed since checkpoint {path.name} was saved ({what}); restore the saved "
                          "values to resume, or start a new run with the new config")
