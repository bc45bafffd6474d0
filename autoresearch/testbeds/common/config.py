"""Config sections shared by the testbeds: the GPT, the optimizers and schedule, the token corpus, the training
budget and mechanics — and the one rule that ties them together, a token budget of whole optimizer steps.

Each section is owned by the component it configures (STYLE.md §3); a testbed's config (`LMConfig`,
`CodegenConfig`) groups the sections it uses with its own.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from autoresearch.errors import ConfigError
from autoresearch.harness.config import check_ranges, param, require

__all__ = [
    "ModelConfig",
    "OptimConfig",
    "DataConfig",
    "TrainConfig",
    "MAX_WIDTH",
    "MAX_SEQ_LEN",
    "MAX_VOCAB",
    "MAX_TOKENS",
    "check_whole_steps",
    "check_pass_at_k",
]

# Documented upper bounds of sizes (far above anything these testbeds train; a value beyond them is a typo, and a
# model that passes them but not this machine's memory is refused by `check_budget` with an estimate).
MAX_WIDTH = 65_536  # d_model (d_ff: 4x); GPT-3 175B is 12,288
MAX_SEQ_LEN = 1_048_576
MAX_VOCAB = 1_048_576  # token ids are stored as uint32 beyond 65,536
MAX_TOKENS = 10**15  # train.train_tokens
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d+)?")


def _default(cls: type, name: str) -> Any:
    return next(f.default for f in dataclasses.fields(cls) if f.name == name)


@dataclass
class ModelConfig:
    """GPT architecture (DESIGN.md §3 anchor: pre-norm RMSNorm, RoPE, GQA, QK-norm, squared-ReLU, tied embeddings)."""

    section: ClassVar[str] = "model"

    d_model: int = param(512, "width of the residual stream", ge=1, le=MAX_WIDTH)
    n_layers: int = param(22, "number of transformer blocks", ge=1, le=1024)
    n_heads: int = param(8, "attention query heads", ge=1, le=1024)
    n_kv_heads: int = param(4, "key/value heads (GQA); must divide n_heads", ge=1, le=1024)
    d_ff: int = param(2048, "hidden width of the MLP", ge=1, le=4 * MAX_WIDTH)
    seq_len: int = param(2048, "context length in tokens", ge=1, le=MAX_SEQ_LEN)
    rope_base: float = param(10000.0, "RoPE base frequency (theta)", gt=0)
    qk_norm: bool = param(True, "RMSNorm on queries and keys before RoPE")
    mlp: Literal["relu2", "swiglu", "gelu"] = param("relu2", "MLP activation: squared ReLU, SwiGLU or GELU")
    norm: Literal["rmsnorm", "layernorm"] = param("rmsnorm", "normalisation layer")
    tie_embeddings: bool = param(True, "share the input embedding with the output head")
    init_std: float = param(0.02, "std of the normal init of linear and embedding weights", gt=0, le=1)

    def __post_init__(self) -> None:
        check_ranges(self, "model")
        require(self.d_model % self.n_heads == 0, "model.d_model", self.d_model,
                f"must be divisible by model.n_heads={self.n_heads}", "pick d_model = n_heads * head_dim")
        require(self.n_heads % self.n_kv_heads == 0, "model.n_kv_heads", self.n_kv_heads,
                f"must divide model.n_heads={self.n_heads}", "use a divisor of n_heads (1 = MQA, n_heads = MHA)")
        require((self.d_model // self.n_heads) % 2 == 0, "model.d_model", self.d_model,
                "must give an even head_dim for RoPE", "use d_model/n_heads even")


@dataclass
class OptimConfig:
    """Optimizers and LR schedule: Muon on 2-D hidden weights + AdamW on the rest, or AdamW on everything."""

    section: ClassVar[str] = "optim"

    optimizer: Literal["muon", "adamw"] = param("muon", "muon = Muon(hidden 2-D) + AdamW(rest); adamw = AdamW only")
    muon_lr: float = param(0.024, "Muon learning rate", gt=0)
    muon_momentum: float = param(0.95, "Muon momentum", ge=0, lt=1)
    muon_nesterov: bool = param(True, "Nesterov momentum in Muon")
    muon_weight_decay: float = param(0.0, "Muon decoupled weight decay", ge=0)
    adamw_lr: float = param(0.006, "AdamW learning rate (embeddings, norms; every param when optimizer=adamw)", gt=0)
    adamw_beta1: float = param(0.9, "AdamW beta1", ge=0, lt=1)
    adamw_beta2: float = param(0.95, "AdamW beta2", ge=0, lt=1)
    adamw_weight_decay: float = param(0.2, "AdamW decoupled weight decay", ge=0)
    grad_clip: float = param(1.0, "clip the global grad norm to this (0 = off)", ge=0)
    schedule: Literal["constant", "cosine", "wsd"] = param(
        "constant", "LR schedule: constant, cosine or warmup-stable-decay; cosine/wsd end at min_lr_frac on the last step")
    warmup_frac: float = param(0.0, "linear warm-up over round(warmup_frac*steps) steps, from peak/W to the peak",
                               ge=0, le=1)
    decay_frac: float = param(0.2, "wsd: final linear decay over round(decay_frac*steps) steps (at least 1)", ge=0, le=1)
    min_lr_frac: float = param(0.0, "cosine/wsd: LR of the last step as a fraction of the peak", ge=0, le=1)

    def __post_init__(self) -> None:
        check_ranges(self, "optim")


@dataclass
class DataConfig:
    """Where tokens come from and how they are tokenized."""

    section: ClassVar[str] = "data"

    source: str = param("stdlib", "stdlib | PATH (text file, directory, .jsonl, .bin shard dir) | hf:NAME[:CONFIG]")
    text_field: str = param("text", "field holding the text in .jsonl / HF datasets")
    tokenizer: str = param("bpe", "bpe = byte-level BPE trained on the corpus (cached); byte = raw bytes; or a tokenizer.json path")
    vocab_size: int = param(49152, "BPE vocabulary size (ignored for byte)", ge=258, le=MAX_VOCAB)
    max_corpus_mb: float = param(32.0, "cap on corpus size read from the source, in MB", gt=0, le=1_000_000)
    val_fraction: float = param(0.05, "fraction of documents held out for validation (split by document hash)",
                                gt=0, lt=0.5)
    cache_dir: str = param("", "token cache directory (default: $AUTORESEARCH_CACHE or ~/.cache/autoresearch)")

    def __post_init__(self) -> None:
        check_ranges(self, "data")
        for name in ("source", "text_field", "tokenizer"):
            v = getattr(self, name)
            require(bool(v.strip()), f"data.{name}", v, "must not be empty", f"use e.g. {_default(DataConfig, name)!r}")


@dataclass
class TrainConfig:
    """Training budget and mechanics."""

    section: ClassVar[str] = "train"

    batch_size: int = param(8, "sequences per micro-batch (the global batch: --nproc N processes take B/N rows each)",
                            ge=1, le=1_048_576)
    grad_accum: int = param(1, "micro-batches accumulated per optimizer step", ge=1, le=1_048_576)
    train_tokens: int = param(8_000_000, "token budget; must be a multiple of batch_size*grad_accum*seq_len",
                              ge=1, le=MAX_TOKENS)
    max_seconds: float = param(0.0, "optional wall-clock budget of training (eval and compile excluded; 0 = none)",
                               ge=0)
    precision: Literal["auto", "fp32", "bf16"] = param(
        "auto", "auto = bf16 where the device computes it natively (CUDA sm80+, CPU with AVX512-BF16/AMX), else fp32; "
        "or force fp32 / bf16 autocast")
    compile: bool = param(False, "torch.compile the model (cold compile excluded from tokens/s)")
    device: str = param("auto", "auto | cpu | cuda | cuda:N | mps")
    seed: int = param(0, "seed for init, data order and everything else", ge=0, le=2**63 - 1)
    log_every: int = param(10, "log one line to log.jsonl every N steps", ge=1)
    checkpoint_every: int = param(0, "save a resumable checkpoint every N steps (0 = only at the end)", ge=0)
    diverge_loss: float = param(3.0, "stop as diverged if loss > this x the first logged loss, or NaN/inf (0 = only "
                                     "NaN/inf)", ge=0)
    threads: int = param(0, "CPU threads for torch (0 = torch default)", ge=0, le=4096)

    def __post_init__(self) -> None:
        check_ranges(self, "train")
        require(_DEVICE.fullmatch(self.device) is not None, "train.device", self.device,
                "must be auto, cpu, cuda, cuda:N or mps", "use --set train.device=auto")
        require(self.diverge_loss == 0 or self.diverge_loss > 1, "train.diverge_loss", self.diverge_loss,
                "must be > 1 (a factor over the first loss) or 0 (off)", "use e.g. 3.0")


def check_whole_steps(train: TrainConfig, tokens_per_step: int, round_up: bool = False) -> None:
    """The rule of every testbed that trains whole optimizer steps: `train.train_tokens` is a multiple of
    `tokens_per_step` (batch_size*grad_accum*seq_len). With `round_up`, round it up in place instead of failing."""
    tokens = train.train_tokens
    if tokens % tokens_per_step == 0:
        return
    up = -(-tokens // tokens_per_step) * tokens_per_step
    if round_up:
        train.train_tokens = up
        return
    down = tokens // tokens_per_step * tokens_per_step
    nearest = f"{down} or {up}" if down else f"{up}"
    raise ConfigError(f"`train.train_tokens` must be a multiple of batch_size*grad_accum*seq_len={tokens_per_step}, "
                      f"got {tokens}; use {nearest}, or pass --round-up")


def check_pass_at_k(k: list[int], n_samples: int, example: str) -> None:
    """The rule of every pass@k setting: `eval.k` lists at least one k, none above `eval.n_samples` (pass@k needs
    n >= k; n_samples 0 = greedy only). `example` is the fix shown for an empty list, e.g. "[1, 10]"."""
    require(len(k) > 0, "eval.k", k, "must list at least one k", f"use e.g. {example}")
    require(n_samples == 0 or max(k) <= n_samples, "eval.k", k,
            f"must not exceed eval.n_samples={n_samples} (pass@k needs n >= k)", "lower k or raise n_samples")
