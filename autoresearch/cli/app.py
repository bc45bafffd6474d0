"""The `autoresearch` typer app: registers each verb module and prints errors on one line.

An `AutoresearchError` is printed as `error: <message>` and exits with code 2; `--debug` shows the traceback.
"""

from __future__ import annotations

import os
import sys

import typer

from autoresearch.errors import AutoresearchError
from autoresearch.harness.settings import load_settings

__all__ = ["app", "main"]

app = typer.Typer(
    name="autoresearch",
    help="Plan, implement and verify deep-learning research ideas: testbeds, experiments, checks, studies.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="show full tracebacks on errors")) -> None:
    if debug:
        os.environ["AUTORESEARCH_DEBUG"] = "1"


def _register() -> None:
    # Each verb lives in its own module with a `register(app)` function; missing optional verbs are skipped.
    import importlib

    for mod in ("train", "check", "experiments", "eval_code", "infer", "study", "research"):
        try:
            m = importlib.import_module(f"autoresearch.cli.{mod}")
        except ModuleNotFoundError as e:
            if e.name == f"autoresearch.cli.{mod}":
                continue
            raise
        m.register(app)


_register()


def main() -> None:
    """Console-script entry point."""
    debug = "--debug" in sys.argv
    try:
        debug = debug or load_settings().debug  # also validates every variable in ENV_VARS, before any work
        app()
    except AutoresearchError as e:
        if debug:
            raise
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
