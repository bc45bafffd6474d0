"""`autoresearch check lm ...`: the integration checks, written to checks.yaml; non-zero exit if any fails."""

from __future__ import annotations

from pathlib import Path

import typer

from autoresearch.cli.train import lm_config_from_cli
from autoresearch.errors import ConfigError
from autoresearch.testbeds.lm.config import PRESETS

__all__ = ["register"]

check_app = typer.Typer(help="Run a testbed's integration checks.", no_args_is_help=True)


@check_app.command("lm")
def check_lm(
    preset_name: str = typer.Option("tiny", "--preset", help=f"named preset: {', '.join(PRESETS)}"),
    config: Path = typer.Option(None, "--config", help="a config YAML"),
    sets: list[str] = typer.Option([], "--set", help="override a field (repeatable)"),
    steps: int = typer.Option(30, "--steps", help="steps of the short training run"),
    out: Path = typer.Option(Path("."), "--out", help="directory for checks.yaml and the check runs"),
) -> None:
    """forward_pass, short_training, checkpoint_roundtrip, evaluation_pipeline."""
    from autoresearch.testbeds.lm.checks import run_checks

    _check_steps(steps)
    cfg = lm_config_from_cli(preset_name, config, sets, None, None, round_up=True)
    out.mkdir(parents=True, exist_ok=True)
    _report("lm", run_checks(cfg, out, steps=max(4, steps)), out)


@check_app.command("codegen")
def check_codegen(
    arch: str = typer.Option("hrm", "--model", help="hrm | gpt"),
    preset_name: str = typer.Option("tiny", "--preset", help="named preset: tiny, small, gpu"),
    sets: list[str] = typer.Option([], "--set", help="override a field (repeatable)"),
    steps: int = typer.Option(20, "--steps", help="steps of the short training run"),
    out: Path = typer.Option(Path("."), "--out", help="directory for checks.yaml and the check runs"),
) -> None:
    """The four checks plus generate_and_score (sample held-out tasks, score them in the sandbox)."""
    from autoresearch.cli.train import config_from_cli
    from autoresearch.testbeds.codegen.checks import run_checks
    from autoresearch.testbeds.codegen.config import CodegenConfig, codegen_preset

    _check_steps(steps)
    if arch not in ("hrm", "gpt"):
        raise ConfigError(f"--model must be hrm or gpt, got {arch!r}; use --model hrm")
    cfg = config_from_cli(CodegenConfig, codegen_preset, preset_name, None, sets, None, None, extra=[f"arch={arch}"])
    _report("codegen", run_checks(cfg, out, steps=max(4, steps)), out)


def _check_steps(steps: int) -> None:
    if not 1 <= steps <= 100_000:
        raise ConfigError(f"--steps must be in [1, 100000], got {steps}; use e.g. --steps 30 (at least 4 are run)")


def _report(name: str, results: list, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    from autoresearch.testbeds.checks import write_checks

    out.mkdir(parents=True, exist_ok=True)
    write_checks(results, out / "checks.yaml")
    table = Table(title=f"integration checks ({name})")
    for col in ("check", "status", "seconds", "detail"):
        table.add_column(col)
    for r in results:
        style = "green" if r.ok else "red"
        table.add_row(r.name, f"[{style}]{r.status}[/]", f"{r.seconds:.1f}", r.detail)
    Console().print(table)
    failed = [r.name for r in results if not r.ok]
    typer.echo(f"checks: {len(results) - len(failed)}/{len(results)} passed")
    typer.echo(f"file: {out / 'checks.yaml'}")
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(check_app, name="check")
