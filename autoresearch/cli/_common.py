"""Small pieces shared by CLI verbs: `key: value` summaries, and the TESTBED argument of `train`/`check` with the
testbed's own command-line shorthands (`Testbed.cli_options`, e.g. codegen's `--model gpt`)."""

from __future__ import annotations

import difflib
import math
from typing import TYPE_CHECKING, Any

import typer

from autoresearch.errors import ConfigError
from autoresearch.testbeds.base import TESTBEDS

if TYPE_CHECKING:
    from autoresearch.testbeds.base import Testbed

__all__ = ["print_summary", "fmt", "TESTBED_HELP", "TESTBED_COMMAND", "testbed_from_cli"]

TESTBED_HELP = (f"the testbed: a registered name ({', '.join(TESTBEDS)}), module.path:Class, or path/to/file.py:Class "
                "(a user testbed)")
TESTBED_COMMAND = {"allow_extra_args": True, "ignore_unknown_options": True}
"""click settings of a verb taking TESTBED: the testbed's own options arrive in `ctx.args`, read by
`testbed_from_cli`."""


def fmt(value: Any) -> str:
    """Human formatting for summaries and tables: 4 significant decimals, thousands separators, '-' for None."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        return f"{value:.4g}" if abs(value) < 1e-3 and value != 0 else f"{value:.4f}".rstrip("0").rstrip(".")
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10000 else str(value)
    return str(value)


def print_summary(items: dict[str, Any]) -> None:
    """The closing `key: value` block every long job prints (DESIGN.md §1)."""
    for k, v in items.items():
        typer.echo(f"{k}: {fmt(v) if not isinstance(v, str) else v}")


def _choices(values: tuple[str, ...]) -> str:
    return values[0] if len(values) == 1 else f"{', '.join(values[:-1])} or {values[-1]}"


def testbed_from_cli(ref: str, args: list[str], known: list[str]) -> tuple[Testbed, list[str], list[str]]:
    """(testbed, overrides, option names given) of `TESTBED --opt VALUE ...`: each of the testbed's `cli_options`
    becomes its `KEY=VALUE` override; an unknown option (`known`: the verb's own) is a one-line ConfigError."""
    from autoresearch.testbeds.base import get_testbed

    testbed = get_testbed(ref)
    overrides: list[str] = []
    given: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg[2:].partition("=") if arg.startswith("--") else ("", "", "")
        opt = testbed.cli_options.get(name)
        if opt is None:
            if not name:
                raise ConfigError(f"unexpected argument {arg!r} after the testbed {ref!r}; pass options as --NAME "
                                  "VALUE (see --help)")
            options = [f"--{o}" for o in [*known, *testbed.cli_options]]
            close = difflib.get_close_matches(f"--{name}", options, n=1)
            hint = f"did you mean {close[0]}?" if close else "see --help (and --list-flags for config keys)"
            raise ConfigError(f"no option --{name} for testbed {testbed.name}; {hint}")
        if not eq:
            if i + 1 >= len(args) or args[i + 1].startswith("--"):
                raise ConfigError(f"--{name} needs a value: {opt.help}")
            value, i = args[i + 1], i + 1
        if opt.choices and value not in opt.choices:
            raise ConfigError(f"--{name} must be {_choices(opt.choices)}, got {value!r}; use --{name} {opt.choices[0]}")
        overrides.append(f"{opt.key}={value}")
        given.append(f"--{name}")
        i += 1
    return testbed, overrides, given
