"""Typed config of an adversarial experiment (`AdversarialConfig`) and its presets `tiny` (2 CPU cores, <= 15 min)
and `gpu`.

One experiment = SFT of a generator and a discriminator (separate models, same architecture config) on the problems'
canonical stage texts, then GRPO-style RL in the N+N+K pattern per reasoning stage, scored before and after RL on
held-out problems in the sandbox (docs/adversarial.md). `train.train_tokens` is each model's SFT budget; the RL
budget is the schedule of `rl` (stages x (2N + 2K) steps).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal

from autoresearch.errors import ConfigError
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
from autoresearch.testbeds.common.hrm_config import HRMConfig, hrm_tiny

__all__ = [
    "HFModelConfig",
    "AdvDataConfig",
    "RLConfig",
    "RewardConfig",
    "AdvEvalConfig",
    "AdversarialConfig",
    "ADVERSARIAL_PRESETS",
    "adversarial_preset",
    "RL_MODES",
]

RL_MODES = ("none", "visible", "discriminator", "shuffled")


@dataclass
class HFModelConfig:
    """A Hugging Face causal LM as both roles' backbone (arch=hf; extra `autoresearch[rl]`)."""

    section: ClassVar[str] = "hf"

    model: str = param("", "local folder (or hub name when online) of a transformers causal LM + its tokenizer")
    lora_r: int = param(0, "LoRA rank via peft (0 = full fine-tuning)", ge=0, le=4096)
    lora_alpha: float = param(16.0, "LoRA alpha", gt=0)
    dtype: Literal["auto", "fp32", "bf16"] = param("auto", "weights dtype: auto = bf16 on CUDA, fp32 elsewhere")

    def __post_init__(self) -> None:
        check_ranges(self, "hf")


@dataclass
class AdvDataConfig:
    """Problems, stages and tokenizer."""

    section: ClassVar[str] = "data"

    source: str = param("suite", "problems: suite (generated task suite) | mbpp | humaneval | PATH.json (user file)")
    path: str = param("", "source=mbpp: the MBPP JSONL (default: $AUTORESEARCH_MBPP or ../shared/data/mbpp)")
    train_problems: int = param(2000, "problems for SFT and RL (suite: train split; others: their train split)",
                                ge=1, le=10**7)
    suite_seed: int = param(0, "seed of the generated task suite", ge=0, le=2**63 - 1)
    tokenizer: Literal["bpe", "byte"] = param("bpe", "byte-level BPE trained on the train problems' SFT texts, or bytes")
    vocab_size: int = param(1024, "BPE vocabulary size", ge=258, le=MAX_VOCAB)
    cache_dir: str = param("", "tokenizer cache (default: $AUTORESEARCH_CACHE or ~/.cache/autoresearch)")

    def __post_init__(self) -> None:
        check_ranges(self, "data")
        require(bool(self.source.strip()), "data.source", self.source, "must not be empty", "use 'suite'")


@dataclass
class RLConfig:
    """GRPO-style RL of both roles (DESIGN.md §8): group sampling, group-normalised advantages, PPO-clip, KL to SFT."""

    section: ClassVar[str] = "rl"

    mode: Literal["none", "visible", "discriminator", "shuffled"] = param(
        "discriminator", "none = SFT only; visible = generator rewarded on the visible example tests (no "
        "discriminator RL); discriminator = co-trained, generator rewarded on reference-validated discriminator "
        "tests; shuffled = as discriminator but generator rewards permuted across the batch (control)")
    group_size: int = param(4, "G: samples per prompt (groups whose rewards are all equal are dropped)", ge=4, le=1024)
    prompts_per_step: int = param(8, "problems per RL step", ge=1, le=100_000)
    n_steps: int = param(2, "N: discriminator steps, then N generator steps, per stage", ge=0, le=100_000)
    k_alternations: int = param(2, "K: rapid (discriminator, generator) step pairs after the N+N, per stage",
                                ge=0, le=100_000)
    lr: float = param(1e-4, "AdamW learning rate of the RL updates (both roles)", gt=0, le=1)
    weight_decay: float = param(0.0, "AdamW weight decay of the RL updates", ge=0)
    clip_eps: float = param(0.2, "PPO clip epsilon of the per-token ratio", gt=0, le=10)
    kl_beta: float = param(0.02, "weight of the KL to the frozen SFT policy (k3 estimator)", ge=0, le=100)
    ppo_epochs: int = param(1, "optimizer passes over each step's samples (ratios move off 1 after the first)",
                            ge=1, le=100)
    temperature: float = param(1.0, "sampling temperature of the RL groups", gt=0, le=100)
    top_p: float = param(1.0, "nucleus threshold of the RL groups", gt=0, le=1)
    max_grad_norm: float = param(1.0, "clip the global grad norm of each RL update (0 = off)", ge=0)
    match_stages: bool = param(True, "stages=1: run as many RL steps as the five stages would (5N + 5N + 5K on the "
                                     "code stage), the matched-compute ablation; off: N + N + K")
    max_new_tokens: int = param(160, "longest generator answer (whole chain), in tokens", ge=1, le=MAX_SEQ_LEN)
    max_test_tokens: int = param(96, "longest discriminator answer (tests block), in tokens", ge=1, le=MAX_SEQ_LEN)

    def __post_init__(self) -> None:
        check_ranges(self, "rl")


@dataclass
class RewardConfig:
    """How sandbox outcomes become rewards (docs/adversarial.md has the tables)."""

    section: ClassVar[str] = "reward"

    max_tests: int = param(6, "tests kept per discriminator answer (after dedup); the rest are dropped", ge=1, le=1000)
    max_test_chars: int = param(200, "longest test line; longer ones are invalid", ge=8, le=100_000)
    test_timeout_s: float = param(1.0, "wall-clock limit of one test in the sandbox, seconds", gt=0, le=600)
    program_timeout_s: float = param(5.0, "wall-clock limit of one program with all its tests, seconds", gt=0,
                                     le=3600)
    invalid_penalty: float = param(0.5, "discriminator: penalty per invalid test (in units of one caught test)",
                                   ge=0, le=100)
    mutant_targets: int = param(2, "mutants of the reference added to the codes a discriminator is scored on",
                                ge=0, le=100)
    workers: int = param(0, "sandbox executors (0 = one per core)", ge=0, le=4096)
    allow_reduced: bool = param(False, "run the sandbox at the reduced level when bubblewrap is missing")

    def __post_init__(self) -> None:
        check_ranges(self, "reward")


@dataclass
class AdvEvalConfig:
    """Held-out scoring before and after RL."""

    section: ClassVar[str] = "eval"

    heldout_problems: int = param(100, "held-out problems scored (suite: held-out split)", ge=1, le=10**7)
    val_problems: int = param(24, "further held-out problems that pick the best checkpoint (never scored)",
                              ge=0, le=10**7)
    n_samples: int = param(4, "sampled chains per problem for pass@k (0 = greedy pass@1 only)", ge=0, le=100_000)
    k: list[int] = param([1], "pass@k values reported (k <= n_samples)", ge=1, le=100_000)
    temperature: float = param(0.8, "temperature of the pass@k samples", ge=0, le=100)
    mutants: int = param(6, "mutants of each reference for the mutation score", ge=0, le=1000)
    coherence_problems: int = param(24, "problems of the coherence-by-intervention metric (0 = off)", ge=0,
                                    le=10**6)
    max_attempts: int = param(1, "attempts per problem with feedback of the previous attempt's failures", ge=1,
                              le=100)
    codet_candidates: int = param(0, "rank this many candidates by agreement with generated tests (0 = off)",
                                  ge=0, le=1000)
    score: bool = param(True, "score before and after RL (off: training only)")

    def __post_init__(self) -> None:
        check_ranges(self, "eval")
        check_pass_at_k(self.k, self.n_samples, "[1]")


@dataclass
class AdversarialConfig:
    """One adversarial experiment: backbone, SFT budget, problems, RL schedule, rewards, scoring."""

    arch: Literal["gpt", "hrm", "hf"] = param("gpt", "backbone of both roles: the kit's GPT, the causal HRM, or an "
                                                     "HF causal LM (hf.model)")
    stages: int = param(5, "reasoning stages in the generator's chain: 5 (informal -> plan -> pseudocode -> "
                           "constraints -> code) or 1 (code only, the matched-compute ablation)", ge=1, le=5)
    init_from: str = param("", "initialise the generator from a codegen experiment (path or exp-NNN) instead of "
                               "training it from scratch (same tokenizer is used)")
    gpt: ModelConfig = param(ModelConfig(), "GPT architecture (arch=gpt), both roles")
    hrm: HRMConfig = param(HRMConfig(), "HRM architecture (arch=hrm), both roles")
    hf: HFModelConfig = param(HFModelConfig(), "HF causal LM (arch=hf)")
    optim: OptimConfig = param(OptimConfig(), "SFT optimizers and schedule (shared kit)")
    train: TrainConfig = param(TrainConfig(), "SFT budget per model and run mechanics (shared kit)")
    data: AdvDataConfig = param(AdvDataConfig(), "problems and tokenizer")
    rl: RLConfig = param(RLConfig(), "reinforcement learning")
    reward: RewardConfig = param(RewardConfig(), "sandbox rewards")
    eval: AdvEvalConfig = param(AdvEvalConfig(), "held-out scoring")
    disc_sft_frac: float = param(1.0, "discriminator SFT steps as a fraction of the generator's (train.train_tokens "
                                      "sets the generator's)", gt=0, le=100)
    max_steps: int = param(0, "stop the run after this many logged steps in all (generator SFT, discriminator SFT, "
                              "RL); 0 = the whole run. Short runs and checks cut the schedule with it", ge=0,
                           le=10**9)

    def __post_init__(self) -> None:
        check_ranges(self)  # the top-level numbers (max_steps); the sections check their own
        require(self.stages in (1, 5), "stages", self.stages, "must be 5 or 1", "use --stages 1 for the ablation")

    @property
    def seq_len(self) -> int:
        return self.hrm.seq_len if self.arch == "hrm" else self.gpt.seq_len

    @property
    def tokens_per_step(self) -> int:
        return self.train.batch_size * self.train.grad_accum * self.seq_len

    @property
    def sft_steps(self) -> int:
        """SFT optimizer steps of the generator (`train.train_tokens` / tokens per step)."""
        return max(1, self.train.train_tokens // self.tokens_per_step)

    @property
    def disc_sft_steps(self) -> int:
        """SFT optimizer steps of the discriminator: `disc_sft_frac` x the generator's, at least 1."""
        return max(1, round(self.sft_steps * self.disc_sft_frac))

    @property
    def steps(self) -> int:
        """Logged steps of a whole run: generator SFT, then discriminator SFT, then the RL schedule, cut at
        `max_steps` when that is set."""
        total = self.sft_steps + self.disc_sft_steps + self.rl_steps
        return min(total, self.max_steps) if self.max_steps else total

    @property
    def rl_steps(self) -> int:
        """RL steps of the whole schedule: per trained stage, N disc + N gen + K (disc, gen) pairs (x5 for the single
        stage of stages=1 with rl.match_stages); rl.mode=visible
        trains no discriminator, so its schedule is the generator steps alone (N + K per stage)."""
        if self.rl.mode == "none":
            return 0
        # stages=1 (the matched-compute ablation) runs as many RL steps as the five stages (trainer.schedule)
        stage_slots = 5 if self.stages == 5 or self.rl.match_stages else 1
        if self.rl.mode == "visible":
            return stage_slots * (self.rl.n_steps + self.rl.k_alternations)
        return stage_slots * (2 * self.rl.n_steps + 2 * self.rl.k_alternations)

    def check_budget(self, round_up: bool = False) -> AdversarialConfig:
        """The SFT budget is whole steps (or rounded up) and an HF backbone names its model."""
        if self.arch == "hf":
            require(bool(self.hf.model.strip()), "hf.model", self.hf.model, "must name a model folder for arch=hf",
                    "use --set hf.model=PATH, or arch=gpt")
        else:
            check_whole_steps(self.train, self.tokens_per_step, round_up)
        return self


def adversarial_tiny() -> AdversarialConfig:
    """2 CPU cores, <= 15 min: two ~0.9M-param GPTs (d 128, 4 layers, seq 256); generator SFT 500 steps of 16 x 256
    tokens on 2000 problems, discriminator SFT 200; RL 5 stages x (1+1+1x2) steps of 6 problems x G=4; 64 held-out
    problems scored before and after RL. Measured budget split and results: docs/adversarial.md."""
    return AdversarialConfig(
        gpt=ModelConfig(d_model=128, n_layers=4, n_heads=4, n_kv_heads=4, d_ff=512, seq_len=256),
        hrm=_hrm_tiny_256(),
        optim=OptimConfig(muon_lr=0.02, adamw_lr=0.003, schedule="wsd", warmup_frac=0.02, decay_frac=0.2),
        train=TrainConfig(batch_size=16, train_tokens=16 * 256 * 500, log_every=20, seed=0, device="auto"),
        disc_sft_frac=0.4,
        data=AdvDataConfig(train_problems=2000, vocab_size=1024),
        rl=RLConfig(group_size=4, prompts_per_step=6, n_steps=1, k_alternations=1),
        eval=AdvEvalConfig(heldout_problems=64, val_problems=8, n_samples=4, k=[1], mutants=6,
                           coherence_problems=8),
    )


def adversarial_gpu() -> AdversarialConfig:
    """One GPU: two ~20M-param GPTs (d 384, 8 layers, seq 512), SFT 3000 steps of 64 x 512 tokens, RL with G=8."""
    return AdversarialConfig(
        gpt=ModelConfig(d_model=384, n_layers=8, n_heads=6, n_kv_heads=6, d_ff=1536, seq_len=512),
        optim=OptimConfig(muon_lr=0.02, adamw_lr=0.003, schedule="wsd", warmup_frac=0.02, decay_frac=0.2),
        train=TrainConfig(batch_size=64, train_tokens=64 * 512 * 3000, log_every=50, device="auto"),
        data=AdvDataConfig(train_problems=50000, vocab_size=2048),
        rl=RLConfig(group_size=8, prompts_per_step=32, n_steps=10, k_alternations=10, max_new_tokens=256),
        eval=AdvEvalConfig(heldout_problems=500, val_problems=64, n_samples=10, k=[1, 10], mutants=10,
                           coherence_problems=100),
    )


def _hrm_tiny_256() -> HRMConfig:
    hrm = hrm_tiny()
    hrm.seq_len = 256
    return hrm


ADVERSARIAL_PRESETS: dict[str, Callable[[], AdversarialConfig]] = {"tiny": adversarial_tiny,
                                                                    "gpu": adversarial_gpu}


def adversarial_preset(name: str) -> AdversarialConfig:
    """A fresh copy of the named adversarial preset."""
    if name not in ADVERSARIAL_PRESETS:
        close = difflib.get_close_matches(name, list(ADVERSARIAL_PRESETS), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"choose one of {', '.join(ADVERSARIAL_PRESETS)}"
        raise ConfigError(f"unknown preset {name!r} for testbed adversarial; {hint}")
    return ADVERSARIAL_PRESETS[name]()
