"""Typed config of a codegen experiment (`CodegenConfig`: model, data, budget, held-out scoring) and its presets.

The causal HRM's own config (`HRMConfig`, presets hrm_tiny/small/gpu) is the kit's (testbeds/common/hrm_config.py),
shared with the adversarial testbed.
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
    ModelConfig,
    OptimConfig,
    TrainConfig,
    check_pass_at_k,
    check_whole_steps,
)
from autoresearch.testbeds.common.hrm_config import HRMConfig, hrm_gpu, hrm_small, hrm_tiny

__all__ = [
    "CodeDataConfig",
    "CodeEvalConfig",
    "CodegenConfig",
    "CODEGEN_PRESETS",
    "codegen_preset",
    "lm_data_errors",
]


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
        check_pass_at_k(self.k, self.n_samples, "[1, 10]")


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
