"""`autoresearch infer adversarial`: a trained adversarial experiment answers problems with its reasoning chain and
code, run in the sandbox (testbeds/adversarial/inference.py does the work).

    autoresearch infer adversarial --model exp-003 --problem examples/adversarial_problems.json
    autoresearch infer adversarial --model exp-003 --benchmark suite --limit 20 --n 8 --rank --attempts 2 --json

Each problem's chain (stage by stage), its code and its outcome on the visible tests (fed back on a next attempt) and
on the hidden tests (scored, never shown) are printed, then a `key: value` summary whose `pass_rate` is the share of
problems whose submitted code passes the hidden tests. `--json` prints one JSON document instead.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import typer

from autoresearch.cli._common import print_summary
from autoresearch.errors import ConfigError, DataError

__all__ = ["register", "infer"]

INFER_TESTBEDS = ("adversarial",)
BENCHMARKS = ("suite", "mbpp", "humaneval")


def register(app: typer.Typer) -> None:
    app.command("infer", no_args_is_help=True,
                help="Answer problems with a trained model's reasoning chain + code, run in the sandbox "
                     "(testbed: adversarial).")(infer)


def infer(
    testbed: str = typer.Argument(..., metavar="TESTBED", help="the testbed whose model answers: adversarial"),
    model: str = typer.Option(None, "--model", help="exp-NNN (or a folder) of a `train adversarial` run"),
    problem: Path = typer.Option(None, "--problem", help="a JSON file of problems ({\"problems\": [...]}, or one)"),
    benchmark: str = typer.Option(None, "--benchmark", help="suite (held-out generated problems) | mbpp | humaneval"),
    limit: int = typer.Option(None, "--limit", help="only the first N problems (default: the run's "
                              "eval.heldout_problems for suite, every problem otherwise)"),
    n: int = typer.Option(1, "--n", help="candidate chains per attempt (1 = greedy; more = sampled)"),
    attempts: int = typer.Option(1, "--attempts", help="attempts per problem: a failed attempt's visible-test "
                                 "failures are fed back to the generator"),
    rank: bool = typer.Option(False, "--rank", help="rank the --n candidates by agreement with the discriminator's "
                              "tests (CodeT); needs --n >= 2"),
    as_json: bool = typer.Option(False, "--json", help="print one JSON document (solutions + summary)"),
    device: str = typer.Option("cpu", "--device", help="where the models run: cpu | cuda | cuda:N | mps | auto"),
    root: Path = typer.Option(None, "--root", help="experiments directory (default $AUTORESEARCH_EXPERIMENTS or "
                              "experiments/)"),
    latest: bool = typer.Option(False, "--latest", help="use the latest checkpoint instead of the best one"),
    temperature: float = typer.Option(None, "--temperature", help="sampling temperature when --n > 1 "
                                      "(default: the run's eval.temperature)"),
    mbpp_path: Path = typer.Option(None, "--mbpp-path", help="mbpp.jsonl (default: the run's data.path, "
                                   "$AUTORESEARCH_MBPP or ../shared/data/mbpp)"),
    allow_reduced: bool = typer.Option(False, "--allow-reduced", help="run the sandbox without bwrap (reduced level)"),
) -> None:
    """Answer problems with a trained adversarial experiment: chain + code per problem, sandbox outcome, pass rate."""
    _check_args(testbed, model, problem, benchmark, limit, n, attempts, rank, temperature)
    from autoresearch.harness.settings import load_settings
    from autoresearch.testbeds.adversarial.inference import InferenceEngine, solutions_summary

    t0 = time.monotonic()
    device = _device(device)
    engine = InferenceEngine.from_checkpoint(model, device=device, best=not latest,
                                             root=root or load_settings().experiments_root)
    if allow_reduced:
        engine.cfg.reward.allow_reduced = True
    with engine:
        problems = _problems(engine, problem, benchmark, limit, mbpp_path)
        _say(f"{len(problems)} problem(s) from {problem or benchmark}; checkpoint {engine.source}", as_json)
        solutions = []
        for i, p in enumerate(problems):  # one at a time so that each problem prints as soon as it is answered
            sol = engine.solve_problem(p, n=n, attempts=attempts, rank=rank, temperature=temperature)
            solutions.append(sol)
            if not as_json:
                _print_solution(engine, p, sol, i + 1, len(problems))
        summary = solutions_summary(solutions)
        level = engine.judge.level
    summary.update(model=model, checkpoint=engine.source, source=str(problem or benchmark), n=n, attempts=attempts,
                   rank=rank, isolation=level, wall_s=round(time.monotonic() - t0, 1))
    if as_json:
        typer.echo(json.dumps({"summary": summary, "solutions": [s.to_dict() for s in solutions]}, indent=1,
                              default=str))
        return
    statuses = summary.pop("statuses")
    print_summary({k: v for k, v in summary.items() if v is not None})
    typer.echo("statuses: " + ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())))


def _check_args(testbed: str, model: str | None, problem: Path | None, benchmark: str | None, limit: int | None,
                n: int, attempts: int, rank: bool, temperature: float | None) -> None:
    """Every argument error, before a model is loaded or a sandbox started."""
    if testbed not in INFER_TESTBEDS:
        raise ConfigError(f"infer supports the testbed(s) {', '.join(INFER_TESTBEDS)}, got {testbed!r}; use "
                          "`autoresearch infer adversarial --model exp-NNN ...` (other testbeds: "
                          "`autoresearch eval-code --model exp-NNN`)")
    if not model or not model.strip():
        raise ConfigError("--model is required: the exp-NNN of a `train adversarial` run (`autoresearch ls` lists "
                          "them)")
    if (problem is None) == (benchmark is None):
        raise ConfigError("pass exactly one of --problem FILE.json or --benchmark suite|mbpp|humaneval")
    if benchmark is not None and benchmark not in BENCHMARKS:
        raise ConfigError(f"--benchmark must be one of {', '.join(BENCHMARKS)}, got {benchmark!r}")
    if problem is not None and not problem.is_file():
        what = "is a folder" if problem.is_dir() else "does not exist"
        raise DataError(f"--problem {problem} {what}; give a JSON file of problems (see "
                        "examples/adversarial_problems.json)")
    if limit is not None and limit < 1:
        raise ConfigError(f"--limit must be >= 1, got {limit}; omit it for every problem")
    if not 1 <= n <= 1000:
        raise ConfigError(f"--n must be in [1, 1000], got {n}; use e.g. --n 1 (greedy) or --n 8")
    if not 1 <= attempts <= 100:
        raise ConfigError(f"--attempts must be in [1, 100], got {attempts}; use e.g. --attempts 2")
    if rank and n < 2:
        raise ConfigError(f"--rank orders several candidates and needs --n >= 2, got --n {n}; use e.g. --n 8 --rank")
    if temperature is not None and not 0 <= temperature <= 100:
        raise ConfigError(f"--temperature must be in [0, 100], got {temperature}; use e.g. 0.8")


def _device(spec: str) -> str:
    """`--device`, checked against this machine (torch is imported only for a non-CPU device)."""
    if spec == "cpu":
        return spec
    import torch

    if spec == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(spec)
    except (RuntimeError, ValueError):
        raise ConfigError(f"--device must be cpu, cuda, cuda:N, mps or auto, got {spec!r}") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError(f"--device {spec} but CUDA is not available on this machine; use --device cpu")
        if dev.index is not None and dev.index >= count:
            raise ConfigError(f"--device {spec} but this machine has {count} CUDA device(s); use cuda:0..cuda:{count - 1}")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"--device {spec} but MPS is not available on this machine; use --device cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"--device must be cpu, cuda, cuda:N, mps or auto, got {spec!r}")
    return spec


def _problems(engine: Any, problem: Path | None, benchmark: str | None, limit: int | None,
              mbpp_path: Path | None) -> list[Any]:
    """The problems to answer; every reference is validated in the sandbox on load (a broken one names its id)."""
    from autoresearch.testbeds.adversarial.problems import load_problems, problems_from_json, validate_problems

    cfg = engine.cfg
    if problem is not None:  # every problem of the file, whatever its "split"
        probs = validate_problems([p for _, p in problems_from_json(problem)][:limit], engine.judge)
    elif benchmark == "suite":
        probs = load_problems("suite", split="heldout", n=limit or cfg.eval.heldout_problems, seed=cfg.data.suite_seed,
                              validate_with=engine.judge)
    else:
        path = str(mbpp_path) if mbpp_path is not None else (cfg.data.path if benchmark == "mbpp" else "")
        probs = load_problems(str(benchmark), split="heldout", n=limit, path=path, validate_with=engine.judge)
    probs = list(probs)[:limit] if limit else list(probs)
    if not probs:
        raise DataError(f"no problems to answer in {problem or benchmark}; check the file (or --limit)")
    return probs


def _say(msg: str, as_json: bool) -> None:
    typer.echo(msg, err=as_json)


def _outcome(result: Any, n_tests: int) -> str:
    if result is None:
        return "not run (no tests)"
    if result.passed:
        return f"pass ({n_tests}/{n_tests})"
    ok = sum(t.passed for t in result.tests) if result.program.passed else 0
    return f"{result.status} ({ok}/{n_tests} passed)"


def _print_solution(engine: Any, problem: Any, sol: Any, i: int, total: int) -> None:
    typer.echo(f"=== {problem.id} ({i}/{total}) ===")
    for att in sol.attempts:
        head = f"--- attempt {att.index}" + (f", chosen candidate {att.chosen + 1}/{len(att.candidates)}"
                                             if len(att.candidates) > 1 else "")
        if len(sol.attempts) > 1 or len(att.candidates) > 1:
            typer.echo(head)
        if att.feedback:
            typer.echo("feedback:\n" + att.feedback)
        best = att.best
        typer.echo(engine.render(best.chain).rstrip())
        if best.score is not None:
            typer.echo(f"ranking: {len(att.generated_tests)} generated tests; score {best.score:g} "
                       "(|consensus set| x |tests passed|)" if att.generated_tests else
                       "ranking: the discriminator wrote no usable test; first candidate kept")
        typer.echo(f"visible tests: {_outcome(best.result, len(sol.tests))}")
        typer.echo(f"hidden tests: {_outcome(best.hidden, len(problem.hidden_tests))}")
    sys.stdout.flush()
