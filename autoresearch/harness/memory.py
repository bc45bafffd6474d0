"""Will a model fit? The parameter memory a training run needs vs the memory of the device it would run on.

Training holds, per parameter, the fp32 weight, its gradient and up to two optimizer moments (AdamW: 2; Muon: 1), so
16 bytes per parameter is the state before any activation. `check_fits` refuses a config only when that state alone
exceeds the device's total memory (RAM for CPU and MPS, the GPU's memory for CUDA): such a run could never start, and
would otherwise fail minutes later with an allocator traceback, or swap the machine to a halt. Activations come on
top, so a config that passes can still run out of memory; the check is a floor, not a promise.
"""

from __future__ import annotations

from autoresearch.errors import ConfigError
from autoresearch.harness.provenance import memory_bytes

__all__ = ["BYTES_PER_PARAM", "device_memory", "check_fits", "human_bytes"]

BYTES_PER_PARAM = 16


def human_bytes(n: float) -> str:
    """1.5 GB style (decimal units), for messages."""
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.3g} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000
    return f"{n:.3g} PB"  # pragma: no cover


def device_memory(device: str) -> tuple[int, str] | None:
    """(total bytes, what) of the memory a run on `device` (auto | cpu | cuda[:N] | mps) can use; None if unknown."""
    if device.startswith("cuda") or device == "auto":
        import torch

        if torch.cuda.is_available():
            idx = int(device.split(":", 1)[1]) if ":" in device else 0
            if idx < torch.cuda.device_count():
                props = torch.cuda.get_device_properties(idx)
                return int(props.total_memory), f"GPU {idx} ({props.name})"
            return None
        if device != "auto":
            return None  # the training loop says that CUDA is missing
    total = memory_bytes()
    return None if total is None else (total, "RAM")


def check_fits(n_params: int, device: str, fix: str) -> None:
    """Raise a one-line ConfigError when `n_params` parameters cannot even hold their training state on `device`."""
    need = n_params * BYTES_PER_PARAM
    have = device_memory(device)
    if have is not None and need > have[0]:
        raise ConfigError(
            f"the model has ~{n_params:.3g} parameters: training needs at least {human_bytes(need)} "
            f"({BYTES_PER_PARAM} bytes/param for weights, grads and optimizer state) but this machine's {have[1]} "
            f"has {human_bytes(have[0])}; {fix}"
        )
