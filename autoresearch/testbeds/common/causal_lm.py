"""The causal-LM model protocol: what the training loops, the optimizer builder and generation (`generate.py`) rely
on in a testbed's model. The GPT (`gpt.py`) and the codegen HRM implement it; a new model does too, or it cannot be
trained by the kit or sampled by `ModelSampler`."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

__all__ = ["CausalLM", "KVCacheLike"]


@runtime_checkable
class KVCacheLike(Protocol):
    """A model's key/value cache: `pos` positions of up to `max_len` are filled, for `batch_size` sequences."""

    pos: int
    max_len: int
    batch_size: int

    def reset(self) -> None: ...


@runtime_checkable
class CausalLM(Protocol):
    """A next-token model (an `nn.Module`): logits, or the mean cross-entropy when given targets.

    With `cache`, `forward` consumes `idx` after the cache's `pos` tokens (positions pos..pos+T) and advances the cache
    by T; the logits equal those of a full forward over the whole sequence (the exactness generate.py relies on).
    """

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, *,
                cache: Any = None) -> torch.Tensor:
        """`idx` [B, T] -> logits [B, T, V]; with `targets` [B, T] (-100 = ignored) the mean cross-entropy."""
        ...

    def new_cache(self, batch_size: int, max_len: int, *, dtype: torch.dtype | None = None) -> KVCacheLike:
        """An empty cache for `batch_size` sequences of up to `max_len` tokens, on the model's device."""
        ...

    def num_params(self) -> int:
        """Unique trainable parameters (a tied head counts once)."""
        ...

    def flops_per_token(self, seq_len: int | None = None) -> float:
        """Training FLOPs per token at context `seq_len` (the model's own when None), for achieved TFLOP/s and MFU."""
        ...

    def param_groups(self) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
        """(2-D hidden weights for Muon, everything else for AdamW), each parameter once (`build_optimizers`)."""
        ...
