"""The small-LLM pretraining testbed behind the `Testbed` contract (GPT + Muon, val_loss/bpb at a token budget)."""

from __future__ import annotations

from typing import Any

from autoresearch.harness.registry import Experiment
from autoresearch.testbeds.base import LoadedModel, Testbed
from autoresearch.testbeds.lm.config import PRESETS, LMConfig

__all__ = ["LMTestbed"]


class LMTestbed(Testbed):
    """`autoresearch train lm` / `check lm` / studies with `testbed: lm`."""

    name = "lm"
    metrics = {"val_loss": "lower", "val_bpb": "lower", "perplexity": "lower", "tokens_per_s": "higher"}
    config_class = LMConfig
    preset_factories = PRESETS
    required_results = ("val_loss", "val_bpb", "perplexity", "tokens_per_s", "train_seconds", "wall_seconds",
                        "peak_memory_mb", "steps", "tokens", "params", "achieved_tflops")
    summary_keys = ("status", "error", "val_loss", "val_loss_init", "val_bpb", "perplexity", "params", "steps",
                    "tokens", "tokens_per_s", "precision", "achieved_tflops", "mfu", "peak_memory_mb",
                    "train_seconds", "wall_seconds")
    check_steps = 30
    # Numeric ideas the planner samples (optuna TPE). Learning rates: log ranges ~4x either side of the presets' values
    # (Muon 0.02 as in Keller Jordan's Muon runs on modded-nanogpt; AdamW 6e-3 for the embeddings of small GPTs);
    # warm-up and WSD cool-down fractions: the 0-20% / 5-50% that WSD studies sweep (Hägele et al. 2024,
    # arXiv:2405.18392, find a 10-20% cool-down matches cosine).
    search_ranges = {"optim.muon_lr": (0.005, 0.08, "log"), "optim.adamw_lr": (0.001, 0.03, "log"),
                     "optim.warmup_frac": (0.0, 0.2, "linear"), "optim.decay_frac": (0.05, 0.5, "linear")}
    # A workspace's studies start at the quickstart's CPU size (studies/lm_quickstart.yaml: 48 steps of 16 x 128
    # tokens, one thread per trial, 10 val batches; ~1 min per Muon trial on a 2-core CPU).
    workspace_defaults = {"overrides": {"train.threads": 1, "train.log_every": 4, "eval.val_batches": 10},
                          "budget": {"tokens": 98304}, "decision": {"min_effect": 0.01}}
    research_surface = {
        "testbed.py": "autoresearch.testbeds.lm.testbed",
        "config.py": "autoresearch.testbeds.lm.config",
        "common_config.py": "autoresearch.testbeds.common.config",
        "gpt.py": "autoresearch.testbeds.common.gpt",
        "optim.py": "autoresearch.testbeds.common.optim",
        "train.py": "autoresearch.testbeds.lm.train",
        "train_step.py": "autoresearch.testbeds.common.train_step",
        "checks.py": "autoresearch.testbeds.lm.checks",
    }

    def train(self, cfg: LMConfig, exp: Experiment, *, resume: bool = False, progress: bool = False) -> dict[str, Any]:
        from autoresearch.testbeds.lm.train import train

        return train(cfg, exp, resume=resume, progress=progress, testbed=self.spec)

    def load_model(self, exp: Experiment, device: str = "cpu") -> LoadedModel:
        """The GPT of the latest checkpoint, the corpus tokenizer (rebuilt from the cache), the LMConfig."""
        from autoresearch.harness.data import load_token_data
        from autoresearch.testbeds.common.gpt import GPT

        state = self.checkpoint_model_state(exp, device)  # first: a run without one says how to resume it
        cfg = self.load_config(exp)
        tokenizer = load_token_data(cfg.data).tokenizer
        model = GPT(cfg.model, tokenizer.vocab_size)
        model.load_state_dict(state)
        return LoadedModel(model.to(device).eval(), tokenizer, cfg)

    def short_run_overrides(self, steps: int, cfg: LMConfig | None = None) -> dict[str, Any]:
        cfg = self.preset_config(self.default_preset) if cfg is None else cfg
        return {**super().short_run_overrides(steps, cfg), "eval.val_batches": min(cfg.eval.val_batches, 4),
                "eval.every": 0}

    def summary(self, cfg: LMConfig, results: dict[str, Any]) -> dict[str, Any]:
        out = super().summary(cfg, results)
        if results.get("precision"):
            out["precision"] = f"{results['precision']} ({results['precision_reason']})"
        return out

    def forward_pass(self, cfg: LMConfig) -> str:
        from autoresearch.testbeds.lm.checks import forward_pass

        return forward_pass(cfg)
