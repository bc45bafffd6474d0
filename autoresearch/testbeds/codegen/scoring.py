"""Scoring of a codegen model: held-out answer loss, and pass@k of its completions executed in the sandbox.

pass@1 (greedy) decodes once per task at temperature 0; pass@k for k <= n uses n samples per task at the configured
temperature with Chen et al.'s unbiased estimator. Completions are cut at the suite's stop sequences and at eot.
Samples and per-sample sandbox results are written beside the experiment (`eval/`) so every number can be audited.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from autoresearch.harness.code_eval import evaluate, write_report, write_samples
from autoresearch.harness.code_tasks import CodeTask
from autoresearch.harness.precision import autocast
from autoresearch.harness.sandbox import SandboxConfig
from autoresearch.testbeds.codegen.config import CodegenConfig
from autoresearch.testbeds.codegen.generate import ModelSampler
from autoresearch.testbeds.codegen.sft_data import SFTData

__all__ = ["heldout_loss", "score_pass_at_k", "STOP"]

STOP = ["\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#", "\nassert"]


@torch.no_grad()
def heldout_loss(
    model: torch.nn.Module, data: SFTData, cfg: CodegenConfig, device: torch.device, precision: str
) -> float:
    """Token-weighted mean cross-entropy on the answer tokens of the held-out tasks, in the run's resolved
    `precision` (`fp32` | `bf16`, see `harness.precision.resolve_precision`)."""
    was = model.training
    model.eval()
    total, count = 0.0, 0
    bs = cfg.eval.batch_size
    for i in range(0, data.n_rows, bs):
        x, y = data.inputs[i : i + bs].to(device), data.labels[i : i + bs].to(device)
        with autocast(device, precision):
            logits = model(x)
        total += float(F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), ignore_index=-100, reduction="sum"))
        count += int((y != -100).sum())
    model.train(was)
    return total / max(count, 1)


def score_pass_at_k(
    model: torch.nn.Module, tokenizer: Any, tasks: list[CodeTask], cfg: CodegenConfig, out_dir: Path
) -> dict[str, Any]:
    """Greedy pass@1 and sampled pass@k of `model` on `tasks`, scored in the sandbox."""
    e = cfg.eval
    was = model.training
    model.eval()
    sandbox = SandboxConfig(allow_reduced=e.allow_reduced, workers=e.workers)
    prompts = [t.prompt for t in tasks]
    out: dict[str, Any] = {}
    runs = [("greedy", 1, 0.0)] + ([("sampled", e.n_samples, e.temperature)] if e.n_samples > 0 else [])
    for name, n, temperature in runs:
        sampler = ModelSampler(model, tokenizer, batch_size=e.gen_batch_size, seed=cfg.train.seed)
        completions = sampler.generate(prompts, n=n, temperature=temperature, top_p=e.top_p,
                                       max_tokens=e.max_new_tokens, stop=STOP)
        samples = [{"task_id": t.task_id, "completion": c} for t, cs in zip(tasks, completions) for c in cs]
        path = write_samples(out_dir / f"{name}_samples.jsonl", samples)
        report = evaluate(samples, tasks, ks=e.k if name == "sampled" else (1,), sandbox=sandbox)
        write_report(report, path.with_name(f"{name}_samples_results.jsonl"), out_dir / f"{name}_summary.yaml")
        s = report.summary
        if name == "greedy":
            out["pass@1_greedy"] = s["pass@1"]
            out["syntax_valid_rate"] = s["syntax_valid_rate"]
            out["gen_tokens_per_s"] = round(sampler.tokens_per_s, 1)
            out["sandbox_level"] = (s.get("isolation") or {}).get("level")
        else:
            out.update({f"pass@{k}": s[f"pass@{k}"] for k in e.k if f"pass@{k}" in s})
            out["syntax_valid_rate_sampled"] = s["syntax_valid_rate"]
    model.train(was)
    return out
