"""Adversarial multi-stage reasoning RL (testbed `adversarial`, docs/adversarial.md): a generator writes a five-stage
chain ending in code, a discriminator writes tests meant to break it, both trained by GRPO on sandbox rewards.

    config.py       AdversarialConfig and its presets (tiny: 2 CPU cores, gpu)
    problems.py     Problem; loaders for the task suite, MBPP, HumanEval, a user JSON file (references validated)
    stages.py       the five stages, the chain format, prompts of both roles, canonical (SFT) texts
    mutants.py      AST mutants of a reference (mutation score, discriminator targets)
    sft.py          SFT pairs of both roles
    judge.py        the sandbox pool of a run
    rewards.py      generator / discriminator rewards from typed sandbox results
    policy.py       the Policy interface, LMPolicy (our GPT/HRM); hf_policy.py: HFPolicy (transformers, LoRA)
    grpo.py         group advantages, PPO-clip + KL loss, one RL update
    freeze.py       freeze / unfreeze / frozen, the KL reference copy
    trainer.py      the N+N+K schedule and the RL steps (AdversarialTrainer)
    checkpoints.py  latest / stage-end / best checkpoints (CheckpointManager)
    metrics.py      pass@k, validity, catch rate, mutation score, coherence, critique accuracy
    inference.py    InferenceEngine (solve_problem, solve_batch, CodeT ranking, multi-attempt)
    train.py        the training loop; testbed.py: AdversarialTestbed; checks.py: its integration checks

Imports are lazy (PEP 562): reading the config does not pay for torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AdversarialConfig": "config", "ADVERSARIAL_PRESETS": "config", "adversarial_preset": "config",
    "AdversarialTestbed": "testbed",
    "AdversarialTrainer": "trainer", "schedule": "trainer",
    "CheckpointManager": "checkpoints",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'autoresearch.testbeds.adversarial' has no attribute {name!r}")
    return getattr(importlib.import_module(f"autoresearch.testbeds.adversarial.{mod}"), name)


def __dir__() -> list[str]:
    return __all__
