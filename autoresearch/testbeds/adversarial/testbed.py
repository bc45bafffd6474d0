"""The adversarial testbed behind the `Testbed` contract: a generator and a discriminator SFT-trained on the problems'
canonical stage texts, then trained against each other by GRPO with sandbox rewards (N+N+K per stage), scored on
held-out problems before and after RL (docs/adversarial.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autoresearch.harness.registry import Experiment
from autoresearch.testbeds.adversarial.config import ADVERSARIAL_PRESETS, AdversarialConfig
from autoresearch.testbeds.base import CliOption, LoadedModel, Testbed
from autoresearch.testbeds.checks import Check, ShortRun

__all__ = ["AdversarialTestbed"]


class AdversarialTestbed(Testbed):
    """`autoresearch train adversarial` / `check adversarial` / studies with `testbed: adversarial`."""

    name = "adversarial"
    metrics = {"pass@1": "higher", "pass@1_sft": "higher", "pass@1_greedy": "higher", "gen_reward": "higher",
               "test_validity": "higher", "catch_rate": "higher", "mutation_score": "higher"}
    config_class = AdversarialConfig
    preset_factories = ADVERSARIAL_PRESETS
    required_results = ("gen_sft_loss", "disc_sft_loss", "train_seconds", "wall_seconds", "steps", "tokens",
                        "params")
    summary_keys = ("arch", "stages", "rl_mode", "status", "error", "pass@1_sft", "pass@1", "pass@1_greedy_sft",
                    "pass@1_greedy", "gen_reward", "test_validity", "catch_rate", "mutation_score",
                    "best_score", "best_stage", "sandbox_level", "params", "steps", "sft_steps", "rl_steps",
                    "tokens", "sft_seconds", "rl_seconds", "eval_seconds", "train_seconds", "wall_seconds")
    cli_options = {"stages": CliOption("stages", "5 (informal -> plan -> pseudocode -> constraints -> code) | 1 "
                                                 "(code only, the matched-compute ablation)", ("1", "5"))}
    check_steps = 20
    check_loss_phase = "gen_sft"  # RL losses are surrogate values near 0: the falling loss is the SFT one
    idea_sections = ("rl", "optim")
    search_ranges = {"rl.lr": (1e-5, 1e-3, "log"), "rl.kl_beta": (0.0, 0.1, "linear"),
                     "rl.clip_eps": (0.1, 0.3, "linear")}
    # What an idea may edit: the models, the RL loss and trainer, the SFT texts, the configs. Never copied (so never
    # editable by the code under test): problems.py (references, hidden tests), stages.py (prompts and the code
    # extraction the scoring reads; the canonical texts read the reference), judge.py, rewards.py, metrics.py,
    # mutants.py, inference.py, the sandbox.
    research_surface = {
        "testbed.py": "autoresearch.testbeds.adversarial.testbed",
        "config.py": "autoresearch.testbeds.adversarial.config",
        "common_config.py": "autoresearch.testbeds.common.config",
        "hrm_config.py": "autoresearch.testbeds.common.hrm_config",
        "policy.py": "autoresearch.testbeds.adversarial.policy",
        "grpo.py": "autoresearch.testbeds.adversarial.grpo",
        "freeze.py": "autoresearch.testbeds.adversarial.freeze",
        "trainer.py": "autoresearch.testbeds.adversarial.trainer",
        "train.py": "autoresearch.testbeds.adversarial.train",
        "sft.py": "autoresearch.testbeds.adversarial.sft",
        "gpt.py": "autoresearch.testbeds.common.gpt",
        "hrm.py": "autoresearch.testbeds.common.hrm",
        "optim.py": "autoresearch.testbeds.common.optim",
    }
    # A workspace's studies start at the built-in study's size (studies/adversarial_vs_sft.yaml), one thread per trial.
    workspace_defaults = {"overrides": {"train.threads": 1, "eval.heldout_problems": 50, "eval.val_problems": 12,
                                        "eval.coherence_problems": 8},
                          "metric": {"name": "pass@1", "direction": "higher"}, "decision": {"min_effect": 0.02}}

    def train(self, cfg: AdversarialConfig, exp: Experiment, *, resume: bool = False,
              progress: bool = False) -> dict[str, Any]:
        from autoresearch.testbeds.adversarial.train import train

        return train(cfg, exp, resume=resume, progress=progress, testbed=self.spec)

    def load_model(self, exp: Experiment, device: str = "cpu") -> LoadedModel:
        """The generator of the latest checkpoint (eval-code samples it like a codegen model), its tokenizer (rebuilt
        from the problems and the cache, deterministic given the config) and the AdversarialConfig."""
        from autoresearch.testbeds.adversarial.train import load_policies

        self.checkpoint_model_state(exp, device)  # first: a run without a checkpoint says how to resume it
        cfg = self.load_config(exp)
        gen, _ = load_policies(cfg, exp, device)
        return LoadedModel(gen.model.eval(), gen.tokenizer, cfg)

    def short_run_overrides(self, steps: int, cfg: AdversarialConfig | None = None) -> dict[str, Any]:
        """`steps` logged steps in all: generator SFT, discriminator SFT (as many), then 2 RL steps from 6 steps on
        and 4 from 12 (5 with an odd remainder; N=1, K=1: a discriminator and a generator step of the first stage,
        then the next pair), cut by `max_steps`; fewer than 6 steps: SFT only, the cut inside the discriminator's.
        Every step logged, a checkpoint in the middle, few problems, small scoring."""
        cfg = self.preset_config(self.default_preset) if cfg is None else cfg
        rl = 0 if cfg.rl.mode == "none" else (4 if steps >= 12 else 2 if steps >= 6 else 0)
        # an odd remainder: one more RL step when there are RL steps, else the cut falls inside discriminator SFT
        sft = max(1, (steps - rl) // 2 if rl else -(-steps // 2))
        return {"train.train_tokens": sft * cfg.tokens_per_step, "train.log_every": 1,
                "train.checkpoint_every": max(1, steps // 2), "train.max_seconds": 0.0, "max_steps": steps, "disc_sft_frac": 1.0,
                "rl.n_steps": 1, "rl.k_alternations": 1, "rl.prompts_per_step": min(cfg.rl.prompts_per_step, 2),
                "data.train_problems": min(cfg.data.train_problems, 200),
                "eval.heldout_problems": min(cfg.eval.heldout_problems, 4), "eval.val_problems": min(
                    cfg.eval.val_problems, 2), "eval.n_samples": 0, "eval.k": [1], "eval.mutants": min(
                    cfg.eval.mutants, 2), "eval.coherence_problems": 0}

    def describe_run(self, cfg: AdversarialConfig) -> str:
        return (f"{cfg.arch}, {cfg.stages} stage(s), rl.mode={cfg.rl.mode}: {cfg.sft_steps} generator + "
                f"{cfg.disc_sft_steps} discriminator SFT steps of {cfg.tokens_per_step} tokens, then "
                f"{max(0, cfg.steps - cfg.sft_steps - cfg.disc_sft_steps)} RL steps")

    def forward_pass(self, cfg: AdversarialConfig) -> str:
        from autoresearch.testbeds.adversarial.checks import forward_pass

        return forward_pass(cfg)

    def extra_checks(self, cfg: AdversarialConfig, work: Path, run: ShortRun) -> list[Check]:
        from autoresearch.testbeds.adversarial.checks import reward_sanity, rl_update_nonzero

        return [("reward_sanity", lambda: reward_sanity(cfg)),
                ("rl_update_nonzero", lambda: rl_update_nonzero(self, cfg, run))]
