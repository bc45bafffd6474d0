"""One path from a sampler to a pass@k report: sample completions, clean them by the one stop policy, score them.

    report = sample_and_score(sampler, tasks, n=10, temperature=0.8, top_p=0.95, max_tokens=512, ks=(1, 10),
                              samples_path=out / "samples.jsonl")

`eval-code --model` and the codegen testbed's own pass@k (greedy and sampled) both call `sample_and_score`, so one
checkpoint gets one score whichever asks. Per task, `postprocess.stop_policy` decides the prompt (a chat model gets
`code_tasks.chat_prompt`), the stop sequences the sampler cuts at and the clean-up of the raw text. The samples file
(`task_id`, the cleaned `completion`, the model's `raw` text) is written before scoring starts, so a crash in the
sandbox loses no sampling; then the per-sample results and the summary are written as `code_eval.evaluate` makes them.
This module runs in the caller's process; the sandbox pool it starts (or is given) owns the executor processes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from autoresearch.harness.code_eval import (
    DEFAULT_KS,
    EvalReport,
    evaluate,
    results_path_for,
    write_report,
    write_samples,
)
from autoresearch.harness.code_tasks import CodeTask, chat_prompt
from autoresearch.harness.postprocess import stop_policy
from autoresearch.harness.sandbox import Pool, ProgramResult, SandboxConfig

__all__ = ["CompletionSampler", "is_chat", "sample_completions", "sample_and_score", "summary_path_for"]


class CompletionSampler(Protocol):
    """What `sample_and_score` needs: `harness.samplers.Sampler` and `testbeds.common.generate.ModelSampler`."""

    def generate(
        self, prompts: list[str], n: int, temperature: float, top_p: float, max_tokens: int,
        stop: Sequence[str] | None = None,
    ) -> list[list[str]]: ...


def is_chat(sampler: object) -> bool:
    """Whether `sampler` talks to a chat model (OpenAISampler(chat=True)): it gets instructions, not raw prompts."""
    return bool(getattr(sampler, "chat", False))


def summary_path_for(results_path: str | Path) -> Path:
    """`<samples>_summary.yaml` beside `<samples>_results.jsonl`."""
    p = Path(results_path)
    return p.with_name(p.name.replace("_results.jsonl", "_summary.yaml"))


def sample_completions(
    sampler: CompletionSampler,
    tasks: Sequence[CodeTask],
    *,
    n: int,
    temperature: float,
    top_p: float,
    max_tokens: int,
    batch: int = 8,
    on_sampled: Callable[[int], None] | None = None,
) -> list[dict[str, Any]]:
    """`n` samples per task, in task order: `{"task_id", "completion" (cleaned), "raw"}`.

    Tasks go to the sampler `batch` at a time (a progress step); consecutive tasks sharing a stop list share a call.
    `on_sampled(k)` is called with the number of tasks each call finished.
    """
    chat = is_chat(sampler)
    policies = [stop_policy(t, chat) for t in tasks]
    samples: list[dict[str, Any]] = []
    i = 0
    while i < len(tasks):
        j = i + 1
        while j < len(tasks) and j - i < batch and policies[j].stop == policies[i].stop:
            j += 1
        chunk = tasks[i:j]
        prompts = [chat_prompt(t) if chat else t.prompt for t in chunk]
        outs = sampler.generate(prompts, n=n, temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                                stop=list(policies[i].stop) or None)
        for t, policy, texts in zip(chunk, policies[i:j], outs):
            samples += [{"task_id": t.task_id, "completion": policy.clean(raw, t.entry_point), "raw": raw}
                        for raw in texts]
        if on_sampled is not None:
            on_sampled(len(chunk))
        i = j
    return samples


def sample_and_score(
    sampler: CompletionSampler,
    tasks: Sequence[CodeTask],
    *,
    n: int,
    temperature: float,
    top_p: float,
    max_tokens: int,
    samples_path: str | Path | Callable[[], str | Path],
    ks: Iterable[int] = DEFAULT_KS,
    results_path: str | Path | None = None,
    summary_path: str | Path | None = None,
    sandbox: SandboxConfig | None = None,
    pool: Pool | None = None,
    calibrate: bool = False,
    summary_extra: Mapping[str, Any] | None = None,
    batch: int = 8,
    on_sampled: Callable[[int], None] | None = None,
    on_result: Callable[[int, ProgramResult], None] | None = None,
) -> EvalReport:
    """Sample `n` completions per task from `sampler`, write them to `samples_path`, score them in the sandbox (a
    pool from `sandbox` unless `pool` is given), and write the per-sample results (`results_path`, default
    `<samples>_results.jsonl`) and the summary (`summary_path`, default `<samples>_summary.yaml`; it records the
    samples path and the stop policy) with `summary_extra` merged in. Returns the report (summary included).

    `samples_path` may be a function returning the path, called once sampling has succeeded (eval-code allocates
    its experiment folder then, so a sampling error leaves no empty folder behind).
    """
    tasks = list(tasks)
    samples = sample_completions(sampler, tasks, n=n, temperature=temperature, top_p=top_p, max_tokens=max_tokens,
                                 batch=batch, on_sampled=on_sampled)
    path = write_samples(samples_path() if callable(samples_path) else samples_path, samples)
    report = evaluate(samples, tasks, ks=ks, pool=pool, sandbox=sandbox, calibrate=calibrate, on_result=on_result)
    modes = sorted({stop_policy(t, is_chat(sampler)).mode for t in tasks})
    report.summary.update(samples=str(path), stop_policy=("chat-" if is_chat(sampler) else "") + "+".join(modes))
    report.summary.update(summary_extra or {})
    results = Path(results_path) if results_path is not None else results_path_for(path)
    write_report(report, results, summary_path if summary_path is not None else summary_path_for(results))
    return report
