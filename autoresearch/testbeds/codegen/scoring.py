"""Scoring of a codegen model: held-out answer loss, and pass@k of its completions executed in the sandbox.

pass@1 (greedy) decodes once per task at temperature 0; pass@k for k <= n uses n samples per task at the configured
temperature with Chen et al.'s unbiased estimator. Sampling, the stop policy (the suite's tasks continue their prompt,
so HumanEval's stop sequences; and eot) and scoring are `harness.sample_score.sample_and_score`, the path
`eval-code --model` takes too, so both give one checkpoint the same score. Samples and per-sample sandbox results are
written beside the experiment (`eval/`) so every number can be audited.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from autoresearch.harness.code_tasks import CodeTask
from autoresearch.harness.precision import autocast
from autoresearch.harness.sample_score import sample_and_score
from autoresearch.harness.sandbox import Pool, SandboxConfig
from autoresearch.testbeds.codegen.config import CodegenConfig
from autoresearch.testbeds.common.generate import ModelSampler
from autoresearch.testbeds.common.sft_data import SFTData

__all__ = ["heldout_loss", "score_pass_at_k"]


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
    out: dict[str, Any] = {}
    runs = [("greedy", 1, 0.0)] + ([("sampled", e.n_samples, e.temperature)] if e.n_samples > 0 else [])
    with Pool(sandbox) as pool:
        for name, n, temperature in runs:
            sampler = ModelSampler(model, tokenizer, batch_size=e.gen_batch_size, seed=cfg.train.seed)
            report = sample_and_score(
                sampler, tasks, n=n, temperature=temperature, top_p=e.top_p, max_tokens=e.max_new_tokens,
                ks=e.k if name == "sampled" else (1,), pool=pool, samples_path=out_dir / f"{name}_samples.jsonl",
                batch=max(1, len(tasks)),  # one call: ModelSampler fills its own gen_batch_size batches across tasks
                results_path=out_dir / f"{name}_samples_results.jsonl", summary_path=out_dir / f"{name}_summary.yaml",
            )
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
