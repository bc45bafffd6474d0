"""`autoresearch check lm ...`: the integration checks, written to checks.yaml; non-zero exit if any fails."""

from __future__ import annotations

from pathlib import Path

import typer

from autoresearch.cli.train import lm_config_from_cli
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
    from rich.console import Console
    from rich.table import Table

    from autoresearch.testbeds.lm.checks import run_checks, write_checks

    cfg = lm_config_from_cli(preset_name, config, sets, None, None, round_up=True)
    out.mkdir(parents=True, exist_ok=True)
    results = run_checks(cfg, out, steps=max(4, steps))
    write_checks(results, out / "checks.yaml")
    table = Table(title="integration checks (lm)")
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
