"""Provenance of a run: git commit + dirty flag, package versions, hardware, command line; the machine fingerprint.

Written into every experiment's `config.yaml` under `meta` so a result can be traced to the code and machine that
produced it (STYLE.md §9). The one place that reads machine facts (/proc/cpuinfo, memory, versions):
`machine_fingerprint()` keys regression traces and a study's recorded environment, `hardware_info()` describes a run.
Importing this module does not import torch.
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

__all__ = ["git_info", "package_versions", "hardware_info", "run_metadata", "machine_fingerprint", "cpu_model",
           "read_cpuinfo", "memory_bytes", "memory_gb"]

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


def read_cpuinfo(path: str | Path = "/proc/cpuinfo") -> str | None:
    """The text of /proc/cpuinfo, or None where there is none (macOS, Windows, a sandbox without /proc)."""
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return None


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's `model name` from /proc/cpuinfo (or the given text), else what `platform` knows."""
    text = read_cpuinfo() if cpuinfo is None else cpuinfo
    for line in (text or "").splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip().lower() == "model name":
            return value.strip()
    return platform.processor() or platform.machine()


def memory_bytes() -> int | None:
    """Physical memory (RAM) in bytes, None where the OS does not say (not POSIX)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def memory_gb() -> float | None:
    """Physical memory in GiB (one decimal), None where the OS does not say."""
    total = memory_bytes()
    return None if total is None else round(total / 2**30, 1)


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "-"


def machine_fingerprint() -> dict[str, str]:
    """What a bit-for-bit CPU result depends on besides the code: interpreter, libraries, CPU, and the precision
    `train.precision=auto` resolves to on this CPU (a trace recorded when the default was bf16 must not be compared
    with an fp32 run of the same declared config). Keys regression traces (research/regression.py)."""
    import torch

    from autoresearch.harness.precision import resolve_precision

    auto = resolve_precision("auto", torch.device("cpu")).precision
    return {"python": platform.python_version(), "torch": _version("torch"), "numpy": _version("numpy"),
            "machine": platform.machine(), "cpu": cpu_model(), "precision_auto": auto}


def hardware_info(device: str | None = None) -> dict[str, Any]:
    """CPU model/cores/memory and, when CUDA is in use, the GPU name and memory."""
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }
    if (mem := memory_gb()) is not None:
        info["memory_gb"] = mem
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
