"""Typed config of the causal HRM (Hierarchical Reasoning Model) and its named presets.

`HRMConfig` is owned by `hrm.py` (STYLE.md §3). The vocabulary size is not a field: it comes from the tokenizer, as
for the LM testbed's GPT. Presets: `hrm_tiny` (CPU, trains in minutes), `hrm_small` (CPU, ~3.4M block params),
`hrm_gpu` (the official HRM block size: two 4-block stacks, hidden 512, 8 heads, ~27M params in the blocks,
DESIGN.md §4).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import ClassVar, Literal

from autoresearch.errors import AutoresearchError, ConfigError
from autoresearch.harness.config import check_ranges, param, require
from autoresearch.testbeds.common.config import (
    MAX_SEQ_LEN,
    MAX_VOCAB,
    MAX_WIDTH,
    ModelConfig,
    OptimConfig,
    TrainConfig,
    check_whole_steps,
)

__all__ = [
    "HRMConfig",
    "HRM_PRESETS",
    "hrm_preset",
    "hrm_tiny",
    "hrm_small",
    "hrm_gpu",
    "CodeDataConfig",
    "CodeEvalConfig",
    "CodegenConfig",
    "CODEGEN_PRESETS",
    "codegen_preset",
    "lm_data_errors",
]


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


# --- the codegen experiment ------------------------------------------------------------------------------------------


@dataclass
class CodeDataConfig:
    """Tokenizer and training data of a codegen experiment."""

    section: ClassVar[str] = "data"

    corpus: str = param("suite", "text the BPE is trained on: suite (the generated train tasks) | stdlib | PATH")
    tokenizer: Literal["bpe", "byte"] = param("bpe", "byte-level BPE trained on `corpus` (cached) or raw bytes")
    vocab_size: int = param(1024, "BPE vocabulary size", ge=258, le=MAX_VOCAB)
    corpus_mb: float = param(8.0, "cap on the corpus read for the tokenizer (stdlib / PATH), MB", gt=0, le=1_000_000)
    train_tasks: int = param(20000, "generated train-split tasks used for supervised training", ge=1, le=10**8)
    suite_seed: int = param(0, "seed of the generated task suite (train and held-out tasks)", ge=0, le=2**63 - 1)
    mbpp_path: str = param("", "if set, also train on MBPP's train split (task ids 601-974) from this JSONL")
    pretrain_steps: int = param(0, "first N optimizer steps: next-token pretraining on `pretrain_source`, then SFT",
                                ge=0)
    pretrain_source: str = param("stdlib", "pretraining corpus (any LM-testbed data.source), same tokenizer")
    cache_dir: str = param("", "tokenizer/token cache (default: $AUTORESEARCH_CACHE or ~/.cache/autoresearch)")

    def __post_init__(self) -> None:
        check_ranges(self, "data")
        require(bool(self.corpus.strip()), "data.corpus", self.corpus, "must not be empty", "use 'suite'")
        require(bool(self.pretrain_source.strip()), "data.pretrain_source", self.pretrain_source, "must not be empty",
                "use 'stdlib'")


@contextlib.contextmanager
def lm_data_errors(field: str) -> Iterator[None]:
    """Errors of the LM data pipeline, fed with `field` (data.corpus / data.pretrain_source) as its `data.source`,
    name the field the user set: `data.source` -> `field`, `data.max_corpus_mb` -> `data.corpus_mb`."""
    try:
        yield
    except AutoresearchError as e:
        msg = str(e)
        fixed = msg.replace("`data.source`", f"`{field}`").replace("data.max_corpus_mb", "data.corpus_mb")
        if fixed == msg:
            raise
        raise type(e)(fixed) from None


@dataclass
class CodeEvalConfig:
    """Held-out scoring: answer loss and pass@k executed in the sandbox."""

    section: ClassVar[str] = "eval"

    heldout_tasks: int = param(200, "held-out generated tasks scored at the end", ge=1, le=10**7)
    n_samples: int = param(10, "sampled completions per task for pass@k (0 = greedy pass@1 only)", ge=0, le=100_000)
    temperature: float = param(0.8, "sampling temperature of the pass@k samples (0 = greedy)", ge=0, le=100)
    top_p: float = param(0.95, "nucleus sampling threshold", gt=0, le=1)
    max_new_tokens: int = param(48, "longest completion, in tokens", ge=1, le=MAX_SEQ_LEN)
    k: list[int] = param([1, 10], "pass@k values reported (k <= n_samples)", ge=1, le=100_000)
    batch_size: int = param(32, "rows per batch of the held-out loss", ge=1, le=1_048_576)
    gen_batch_size: int = param(16, "samples decoded together", ge=1, le=1_048_576)
    workers: int = param(0, "sandbox executors (0 = one per core)", ge=0, le=4096)
    allow_reduced: bool = param(False, "score at the reduced sandbox level when bubblewrap is missing")
    score: bool = param(True, "run pass@k at the end of training (off: held-out loss only)")

    def __post_init__(self) -> None:
        check_ranges(self, "eval")
        require(len(self.k) > 0, "eval.k", self.k, "must list at least one k", "use e.g. [1, 10]")
        require(self.n_samples == 0 or max(self.k) <= self.n_samples, "eval.k", self.k,
                f"must not exceed eval.n_samples={self.n_samples} (pass@k needs n >= k)", "lower k or raise n_samples")


@dataclass
class CodegenConfig:
    """One codegen experiment: which model (HRM or the parameter-matched GPT), data, budget, scoring."""

    arch: Literal["hrm", "gpt"] = param("hrm", "model: causal HRM, or the shared GPT (testbeds/common/gpt.py)")
    match_params: bool = param(True, "arch=gpt: size the GPT to the HRM config's parameter count (else use `gpt`)")
    hrm: HRMConfig = param(HRMConfig(), "HRM architecture (also the parameter target of the matched GPT)")
    gpt: ModelConfig = param(ModelConfig(), "GPT architecture when match_params is false")
    optim: OptimConfig = param(OptimConfig(), "optimizers and schedule (shared with the LM testbed)")
    train: TrainConfig = param(TrainConfig(), "budget and mechanics (shared with the LM testbed)")
    data: CodeDataConfig = param(CodeDataConfig(), "tokenizer and training tasks")
    eval: CodeEvalConfig = param(CodeEvalConfig(), "held-out scoring")

    @property
    def seq_len(self) -> int:
        return self.gpt.seq_len if self.arch == "gpt" and not self.match_params else self.hrm.seq_len

    @property
    def tokens_per_step(self) -> int:
        return self.train.batch_size * self.train.grad_accum * self.seq_len

    @property
    def steps(self) -> int:
        return max(1, self.train.train_tokens // self.tokens_per_step)

    def param_count(self) -> int:
        """Parameters of the model this config trains (a matched GPT has the HRM's count, within 5%)."""
        vocab = 257 if self.data.tokenizer == "byte" else self.data.vocab_size
        if self.arch == "gpt" and not self.match_params:
            import torch

            from autoresearch.testbeds.common.gpt import GPT

            with torch.device("meta"):
                return int(GPT(self.gpt, vocab).num_params())
        from autoresearch.testbeds.codegen.param_match import hrm_param_count

        return hrm_param_count(self.hrm, vocab)

    def check_budget(self, round_up: bool = False) -> CodegenConfig:
        """Validate that the token budget is whole steps (optionally round it up instead of failing) and that the
        model's training state fits in the memory of `train.device` on this machine (harness/memory.py)."""
        from autoresearch.harness.memory import check_fits

        where = "gpt" if self.arch == "gpt" and not self.match_params else "hrm"
        check_fits(self.param_count(), self.train.device, f"use a smaller {where}.d_model / d_ff / depth")
        check_whole_steps(self.train, self.tokens_per_step, round_up)
        return self


def codegen_tiny() -> CodegenConfig:
    """CPU: HRM tiny (d 128, 2+2 blocks, 2x2 cycles, seq 128), 1024-token suite BPE, ~2M tokens (~5 min)."""
    hrm = hrm_tiny()
    hrm.seq_len = 128
    return CodegenConfig(
        hrm=hrm,
        optim=OptimConfig(muon_lr=0.02, adamw_lr=0.003, schedule="wsd", warmup_frac=0.02, decay_frac=0.2),
        train=TrainConfig(batch_size=16, train_tokens=16 * 128 * 1000, log_every=20, seed=0),
        eval=CodeEvalConfig(heldout_tasks=200, n_samples=10),
    )


def codegen_small() -> CodegenConfig:
    """CPU, longer: HRM small (d 256), 2048-token BPE, ~4M tokens."""
    hrm = hrm_small()
    hrm.seq_len = 128
    return CodegenConfig(
        hrm=hrm,
        optim=OptimConfig(muon_lr=0.02, adamw_lr=0.003, schedule="wsd", warmup_frac=0.02, decay_frac=0.2),
        data=CodeDataConfig(vocab_size=2048, train_tasks=40000),
        train=TrainConfig(batch_size=16, train_tokens=16 * 128 * 2000, log_every=20),
        eval=CodeEvalConfig(heldout_tasks=300, n_samples=10),
    )


def codegen_gpu() -> CodegenConfig:
    """GPU: the official HRM block size (27M), seq 256, 4096-token BPE, suite + stdlib-sized budget of 50M tokens."""
    hrm = hrm_gpu()
    hrm.seq_len = 256
    return CodegenConfig(
        hrm=hrm,
        optim=OptimConfig(muon_lr=0.02, adamw_lr=0.003, schedule="wsd", warmup_frac=0.02, decay_frac=0.2),
        data=CodeDataConfig(vocab_size=4096, train_tasks=200000),
        train=TrainConfig(batch_size=64, train_tokens=64 * 256 * 3000, log_every=50),
        eval=CodeEvalConfig(heldout_tasks=500, n_samples=20, k=[1, 10]),
    )


CODEGEN_PRESETS: dict[str, Callable[[], CodegenConfig]] = {"tiny": codegen_tiny, "small": codegen_small,
                                                            "gpu": codegen_gpu}


def codegen_preset(name: str) -> CodegenConfig:
    """A fresh copy of the named codegen experiment preset."""
    if name not in CODEGEN_PRESETS:
        import difflib

        close = difflib.get_close_matches(name, list(CODEGEN_PRESETS), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"choose one of {', '.join(CODEGEN_PRESETS)}"
        raise ConfigError(f"unknown preset {name!r} for testbed codegen; {hint}")
    return CODEGEN_PRESETS[name]()
