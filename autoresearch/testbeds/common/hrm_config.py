"""Typed config of the causal HRM (Hierarchical Reasoning Model) and its named presets.

`HRMConfig` is owned by `hrm.py` (STYLE.md §3) and lives here so that reading a config does not import torch. The
vocabulary size is not a field: it comes from the tokenizer, as for the GPT. Presets: `hrm_tiny` (CPU, trains in
minutes), `hrm_small` (CPU, ~3.4M block params), `hrm_gpu` (the official HRM block size: two 4-block stacks, hidden
512, 8 heads, ~27M params in the blocks, DESIGN.md §4).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal

from autoresearch.errors import ConfigError
from autoresearch.harness.config import check_ranges, param, require
from autoresearch.testbeds.common.config import MAX_SEQ_LEN, MAX_WIDTH

__all__ = ["HRMConfig", "HRM_PRESETS", "hrm_preset", "hrm_tiny", "hrm_small", "hrm_gpu"]


@dataclass
class HRMConfig:
    """Causal HRM: two transformer stacks (H slow, L fast) iterated H_cycles x (L_cycles + 1) times per token."""

    section: ClassVar[str] = "hrm"

    d_model: int = param(512, "width of the hidden states z_H, z_L and the token embedding", ge=1, le=MAX_WIDTH)
    n_heads: int = param(8, "attention heads (MHA); head_dim = d_model / n_heads", ge=1, le=1024)
    layers_per_stack: int = param(4, "transformer blocks in each of the H and L stacks", ge=1, le=1024)
    h_cycles: int = param(2, "outer (slow, H) cycles per forward", ge=1, le=256)
    l_cycles: int = param(2, "inner (fast, L) cycles per H cycle", ge=1, le=256)
    d_ff: int = param(1536, "SwiGLU hidden width", ge=1, le=4 * MAX_WIDTH)
    rope_base: float = param(10000.0, "RoPE base frequency (theta)", gt=0)
    seq_len: int = param(1024, "context length in tokens (training windows; generation crops prompts to fit)",
                         ge=1, le=MAX_SEQ_LEN)
    grad_mode: Literal["one_step", "last_k", "full"] = param(
        "one_step", "backprop through: the final L and H calls (HRM one-step gradient), the last k calls, or all calls"
    )
    grad_last_k: int = param(2, "grad_mode=last_k: number of final module calls that carry gradients", ge=1)
    tie_embeddings: bool = param(True, "share the token embedding with the output head")
    init_std: float = param(0.02, "std of the normal init of linear and embedding weights", gt=0, le=1)

    def __post_init__(self) -> None:
        check_ranges(self, "hrm")
        require(self.d_model % self.n_heads == 0, "hrm.d_model", self.d_model,
                f"must be divisible by hrm.n_heads={self.n_heads}", "pick d_model = n_heads * head_dim")
        require((self.d_model // self.n_heads) % 2 == 0, "hrm.d_model", self.d_model,
                f"must give an even head_dim for RoPE (d_model/n_heads = {self.d_model / self.n_heads})",
                "use d_model/n_heads even")
        require(1 <= self.grad_last_k <= self.n_calls, "hrm.grad_last_k", self.grad_last_k,
                f"must be in [1, h_cycles*(l_cycles+1)={self.n_calls}]",
                "use 2 (one-step gradient) or set grad_mode=full")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def n_calls(self) -> int:
        """Module calls per forward: each H cycle runs L l_cycles times, then H once."""
        return self.h_cycles * (self.l_cycles + 1)

    @property
    def n_grad_calls(self) -> int:
        """How many of the final module calls carry gradients under `grad_mode`."""
        if self.grad_mode == "full":
            return self.n_calls
        if self.grad_mode == "one_step":
            return min(2, self.n_calls)
        return self.grad_last_k

    @property
    def cache_slots(self) -> int:
        """KV-cache slots: one per (module call, layer) = layers_per_stack x h_cycles x (l_cycles + 1)."""
        return self.layers_per_stack * self.n_calls


def hrm_tiny() -> HRMConfig:
    """CPU-sized: d 128, 2 blocks per stack, 2x2 cycles (12 block evaluations per token), ~0.85M block params."""
    return HRMConfig(d_model=128, n_heads=4, layers_per_stack=2, h_cycles=2, l_cycles=2, d_ff=384, seq_len=256)


def hrm_small() -> HRMConfig:
    """CPU reference size: d 256, 2 blocks per stack, 2x2 cycles, ~3.4M block params."""
    return HRMConfig(d_model=256, n_heads=4, layers_per_stack=2, h_cycles=2, l_cycles=2, d_ff=768, seq_len=256)


def hrm_gpu() -> HRMConfig:
    """Official HRM block size (DESIGN.md §4): two 4-block stacks, hidden 512, 8 heads, 2x2 cycles, ~27M block params."""
    return HRMConfig(d_model=512, n_heads=8, layers_per_stack=4, h_cycles=2, l_cycles=2, d_ff=1536, seq_len=1024)


HRM_PRESETS: dict[str, Callable[[], HRMConfig]] = {"tiny": hrm_tiny, "small": hrm_small, "gpu": hrm_gpu}


def hrm_preset(name: str) -> HRMConfig:
    """A fresh copy of the named HRM preset."""
    if name not in HRM_PRESETS:
        import difflib

        close = difflib.get_close_matches(name, list(HRM_PRESETS), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"choose one of {', '.join(HRM_PRESETS)}"
        raise ConfigError(f"unknown HRM preset {name!r}; {hint}")
    return HRM_PRESETS[name]()
