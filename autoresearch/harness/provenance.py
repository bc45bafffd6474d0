"""Provenance of a run: git commit + dirty flag, package versions, hardware, command line.

Written into every experiment's `config.yaml` under `meta` so a result can be traced to the code and machine that
produced it (STYLE.md §9).
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["git_info", "package_versions", "hardware_info", "run_metadata"]

_PACKAGES = ("autoresearch", "torch", "numpy", "tokenizers")


def git_info(path: str | Path | None = None) -> dict[str, Any]:
    """Commit and dirty flag of the git checkout holding the package (or `path`); nulls outside git."""
    cwd = Path(path) if path else Path(__file__).resolve().parents[2]

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": bool(status)}


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware_info(device: str | None = None) -> dict[str, Any]:
    """CPU model/cores/memory and, when CUDA is in use, the GPU name and memory."""
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        info["memory_gb"] = round(pages / 2**30, 1)
    except (ValueError, OSError):
        pass
    if torch.cuda.is_available() and (device is None or str(device).startswith("cuda")):
        idx = torch.device(device).index or 0 if device else 0
        props = torch.cuda.get_device_properties(idx)
        info.update(gpu=props.name, gpu_memory_gb=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda)
    return info


def run_metadata(seed: int, device: str | None = None) -> dict[str, Any]:
    """Everything that describes where/when/how a run happened."""
    return {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "seed": seed,
        "git": git_info(),
        "versions": package_versions(),
        "hardware": hardware_info(device),
        "argv": sys.argv,
        "host": platform.node(),
    }
