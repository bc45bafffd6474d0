"""The code-generation testbed behind the `Testbed` contract (HRM or parameter-matched GPT, pass@k on held-out
generated tasks)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autoresearch.harness.registry import Experiment
from autoresearch.testbeds.base import CliOption, LoadedModel, Testbed
from autoresearch.testbeds.checks import Check, ShortRun
from autoresearch.testbeds.codegen.config import CODEGEN_PRESETS, CodegenConfig

__all__ = ["CodegenTestbed"]


class CodegenTestbed(Testbed):
    """`autoresearch train codegen` / `check codegen` / studies with `testbed: codegen`."""

    name = "codegen"
    metrics = {"pass@1_greedy": "higher", "pass@1": "higher", "pass@10": "higher", "heldout_loss": "lower",
               "tokens_per_s": "higher"}
    config_class = CodegenConfig
    preset_factories = CODEGEN_PRESETS
    required_results = ("heldout_loss", "tokens_per_s", "train_seconds", "wall_seconds", "peak_memory_mb", "steps",
                        "tokens", "params")
    summary_keys = ("arch", "status", "error", "pass@1_greedy", "pass@1", "pass@10", "syntax_valid_rate",
                    "heldout_loss", "heldout_loss_init", "gen_tokens_per_s", "sandbox_level", "params", "steps",
                    "tokens", "tokens_per_s", "precision", "peak_memory_mb", "train_seconds", "wall_seconds")
    cli_options = {"model": CliOption("arch", "hrm | gpt (the GPT is parameter-matched to the HRM config)",
                                      ("hrm", "gpt"))}
    check_steps = 20
    # Ideas: the HRM's own fields (grad_mode, ...), the optimizer, and the architecture itself (arch=gpt: the
    # parameter-matched GPT). Numeric: learning rates on log ranges ~4x either side of the presets' values; the L
    # cycles per H cycle around the HRM paper's 2 (Wang et al. 2025, arXiv:2506.21734), which trade compute for
    # depth (tokens/s moves with them: the analyzer's `systems` kind).
    idea_sections = ("hrm", "optim", "arch")
    search_ranges = {"optim.muon_lr": (0.005, 0.08, "log"), "optim.adamw_lr": (0.0005, 0.01, "log"),
                     "optim.warmup_frac": (0.0, 0.2, "linear"), "hrm.l_cycles": (1, 4, "linear")}
    # A workspace's studies start at the built-in study's size (studies/codegen_hrm_vs_gpt.yaml: greedy pass@1 on
    # 200 held-out tasks, one thread per trial), with a 4x smaller token budget so a version fits a CPU session.
    workspace_defaults = {"overrides": {"train.threads": 1, "eval.n_samples": 0, "eval.k": [1],
                                        "eval.heldout_tasks": 200},
                          "budget": {"tokens": 512000}, "metric": {"name": "pass@1_greedy", "direction": "higher"},
                          "decision": {"min_effect": 0.02}}
    research_surface = {
        "testbed.py": "autoresearch.testbeds.codegen.testbed",
        "config.py": "autoresearch.testbeds.codegen.config",
        "common_config.py": "autoresearch.testbeds.common.config",
        "gpt.py": "autoresearch.testbeds.common.gpt",
        "hrm.py": "autoresearch.testbeds.common.hrm",
        "hrm_config.py": "autoresearch.testbeds.common.hrm_config",
        "models.py": "autoresearch.testbeds.codegen.models",
        "param_match.py": "autoresearch.testbeds.codegen.param_match",
        "optim.py": "autoresearch.testbeds.common.optim",
        "train.py": "autoresearch.testbeds.codegen.train",
        "train_step.py": "autoresearch.testbeds.common.train_step",
        "checks.py": "autoresearch.testbeds.codegen.checks",
    }

    def train(self, cfg: CodegenConfig, exp: Experiment, *, resume: bool = False,
              progress: bool = False) -> dict[str, Any]:
        from autoresearch.testbeds.codegen.train import train

        return train(cfg, exp, resume=resume, progress=progress, testbed=self.spec)

    def load_model(self, exp: Experiment, device: str = "cpu") -> LoadedModel:
        """The HRM or GPT of the latest checkpoint, the tokenizer (rebuilt from the train tasks and the cache, which
        is deterministic given the config), the CodegenConfig."""
        from autoresearch.testbeds.codegen.data import build_tokenizer
        from autoresearch.testbeds.codegen.models import build_model
        from autoresearch.testbeds.common.tasks import make_suite

        state = self.checkpoint_model_state(exp, device)  # first: a run without one says how to resume it
        cfg = self.load_config(exp)
        tokenizer = build_tokenizer(cfg, make_suite("train", cfg.data.train_tasks, seed=cfg.data.suite_seed))
        model = build_model(cfg, tokenizer.vocab_size)
        model.load_state_dict(state)
        return LoadedModel(model.to(device).eval(), tokenizer, cfg)

    def short_run_overrides(self, steps: int, cfg: CodegenConfig | None = None) -> dict[str, Any]:
        cfg = self.preset_config(self.default_preset) if cfg is None else cfg
        return {**super().short_run_overrides(steps, cfg), "data.train_tasks": min(cfg.data.train_tasks, 2000),
                "eval.heldout_tasks": min(cfg.eval.heldout_tasks, 8), "eval.score": False}

    def describe_run(self, cfg: CodegenConfig) -> str:
        return f"{cfg.arch}, {super().describe_run(cfg)}"

    def forward_pass(self, cfg: CodegenConfig) -> str:
        from autoresearch.testbeds.codegen.checks import forward_pass

        return forward_pass(cfg)

    def extra_checks(self, cfg: CodegenConfig, work: Path, run: ShortRun) -> list[Check]:
        from autoresearch.testbeds.codegen.checks import generate_and_score

        return [("generate_and_score", lambda: generate_and_score(self, cfg, run, work / "scored"))]
