"""Device setup of a training run: resolve `train.device`, then threads, seed, the CUDA TF32 switch and a fresh
peak-memory counter — once, before the model is built, identically in every testbed's loop."""

from __future__ import annotations

import torch

from autoresearch.errors import AutoresearchError
from autoresearch.testbeds.common import distributed
from autoresearch.testbeds.common.config import TrainConfig

__all__ = ["resolve_device", "setup_device"]


def resolve_device(spec: str) -> torch.device:
    """`auto` -> cuda when available, else cpu; a CUDA device on a machine without CUDA is refused in one line."""
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise AutoresearchError(f"`train.device` is {spec!r} but CUDA is not available; use --set train.device=cpu")
    return torch.device(spec)


def setup_device(train_cfg: TrainConfig) -> torch.device:
    """Resolve the run's device and set the process up for it: the process group when torchrun started it (a rank
    on CUDA gets `cuda:LOCAL_RANK`), CPU threads, the seed of init and data order (the same on every rank), TF32 for
    the fp32 matmuls on CUDA, and a fresh peak-memory counter (the run's `peak_memory_mb`)."""
    distributed.init()
    device = distributed.place(resolve_device(train_cfg.device))
    if train_cfg.threads > 0:
        torch.set_num_threads(train_cfg.threads)
    torch.manual_seed(train_cfg.seed)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.cuda.reset_peak_memory_stats(device)
    return device
