"""`autoresearch check TESTBED ...`: the testbed's integration checks, written to checks.yaml; non-zero exit if any
fails. One command for every testbed (`Testbed.checks`), built-in or the user's."""

from __future__ import annotations

from pathlib import Path

import typer

from autoresearch.cli._common import TESTBED_COMMAND, TESTBED_HELP, testbed_from_cli
from autoresearch.cli.train import config_from_cli
from autoresearch.errors import ConfigError
from autoresearch.testbeds.checks import CheckResult

__all__ = ["register"]

OPTIONS = ["preset", "config", "set", "steps", "out"]


def check(
    ctx: typer.Context,
    testbed_ref: str = typer.Argument(..., metavar="TESTBED", help=TESTBED_HELP),
    preset_name: str = typer.Option(None, "--preset", help="named preset (default tiny)"),
    config: Path = typer.Option(None, "--config", help="a config YAML laid over the preset"),
    sets: list[str] = typer.Option([], "--set", help="override a field (repeatable)"),
    steps: int = typer.Option(None, "--steps", help="steps of the short training run (default: the testbed's, "
                              "lm 30, codegen 20; at least 4)"),
    out: Path = typer.Option(Path("."), "--out", help="directory for checks.yaml and the check runs"),
) -> None:
    """Run a testbed's integration checks: forward_pass, short_training, checkpoint_roundtrip, evaluation_pipeline,
    plus its own (codegen: generate_and_score, held-out tasks sampled and scored in the sandbox)."""
    testbed, extra, _ = testbed_from_cli(testbed_ref, ctx.args, OPTIONS)
    if steps is not None and not 1 <= steps <= 100_000:
        raise ConfigError(f"--steps must be in [1, 100000], got {steps}; use e.g. --steps 30 (at least 4 are run)")
    cfg = config_from_cli(testbed, preset_name, config, sets, extra=extra, round_up=True)
    out.mkdir(parents=True, exist_ok=True)
    _report(testbed.name, testbed.checks(cfg, out, steps=steps), out)


def _report(name: str, results: list[CheckResult], out: Path) -> None:
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
    app.command("check", context_settings=TESTBED_COMMAND, no_args_is_help=True)(check)
