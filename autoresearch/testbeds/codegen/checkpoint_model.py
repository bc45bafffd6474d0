"""Load a trained model back from an experiment folder, and sample from it through the harness's Sampler interface.

`autoresearch eval-code --model exp-NNN` uses this: the spec `exp-NNN` (or a path to an experiment) is resolved in
the registry, the model is rebuilt from the saved config, its latest checkpoint is verified and loaded, and the
tokenizer is rebuilt from the cache (it is deterministic given the config). Works for codegen experiments (HRM or
GPT) and LM-testbed experiments (GPT on the stdlib corpus).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from autoresearch.errors import CheckpointError
from autoresearch.harness.checkpoint import latest_checkpoint, load_checkpoint
from autoresearch.harness.config import from_dict
from autoresearch.harness.registry import DEFAULT_ROOT, Experiment, open_experiment
from autoresearch.harness.samplers import Sampler, register_sampler_factory
from autoresearch.testbeds.codegen.config import CodegenConfig
from autoresearch.testbeds.codegen.generate import ModelSampler

__all__ = ["load_experiment_model", "ExperimentSampler", "register_experiment_sampler"]


def load_experiment_model(exp: Experiment, device: str = "cpu") -> tuple[torch.nn.Module, Any, Any]:
    """(model in eval mode, tokenizer, config) of an experiment's latest checkpoint."""
    saved = exp.read_config()
    saved.pop("meta", None)
    ckpt = latest_checkpoint(exp.checkpoints_dir)
    if ckpt is None:
        status, note = exp.state()  # `killed` (with how to resume) for a `running` run whose process is gone
        raise CheckpointError(
            f"{exp.id} has no checkpoint (status: {status}); " + (note or "train it to completion first")
        )
    if "arch" in saved:
        from autoresearch.testbeds.codegen.data import build_tokenizer
        from autoresearch.testbeds.codegen.models import build_model
        from autoresearch.testbeds.codegen.tasks import make_suite

        cfg: Any = from_dict(CodegenConfig, saved)
        tokenizer = build_tokenizer(cfg, make_suite("train", cfg.data.train_tasks, seed=cfg.data.suite_seed))
        model = build_model(cfg, tokenizer.vocab_size)
    else:
        from autoresearch.harness.data import load_token_data
        from autoresearch.testbeds.lm.config import LMConfig
        from autoresearch.testbeds.lm.model import GPT

        cfg = from_dict(LMConfig, saved)
        tokenizer = load_token_data(cfg.data).tokenizer
        model = GPT(cfg.model, tokenizer.vocab_size)
    model.load_state_dict(load_checkpoint(ckpt, map_location=device)["model"])
    return model.to(device).eval(), tokenizer, cfg


class ExperimentSampler(Sampler):
    """A `Sampler` over a trained experiment's model (KV-cached decoding)."""

    def __init__(self, spec: str, root: str | Path | None = None) -> None:
        root = root or os.environ.get("AUTORESEARCH_EXPERIMENTS", DEFAULT_ROOT)
        self.exp = open_experiment(spec, root)
        self.model, self.tokenizer, self.config = load_experiment_model(self.exp)
        self._inner = ModelSampler(self.model, self.tokenizer)

    @property
    def tokens_per_s(self) -> float:
        return self._inner.tokens_per_s

    def generate(self, prompts, n=1, temperature=0.8, top_p=0.95, max_tokens=512, stop=None):  # noqa: D102
        return self._inner.generate(list(prompts), n=n, temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                                    stop=stop)


def register_experiment_sampler() -> None:
    """Make `get_sampler("exp-NNN")` load that experiment's model."""
    register_sampler_factory("exp-", ExperimentSampler)
