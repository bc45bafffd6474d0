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
