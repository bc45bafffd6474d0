"""`autoresearch train TESTBED ...`: one experiment into `experiments/exp-NNN/`, with a progress bar and a summary.

One command for every testbed, built-in or the user's (`path/to/file.py:Class`): it goes through the `Testbed`
contract only (make_config, load_config, train, summary), so nothing here knows a testbed by name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from autoresearch.cli._common import TESTBED_COMMAND, TESTBED_HELP, print_summary, testbed_from_cli
from autoresearch.errors import ConfigError, RegistryError
from autoresearch.harness.config import field_help, to_dict
from autoresearch.harness.registry import DEFAULT_ROOT, FINISHED, Experiment, new_experiment, open_experiment
from autoresearch.testbeds.base import Testbed

__all__ = ["register", "config_from_cli"]

OPTIONS = ["preset", "config", "set", "train-tokens", "seed", "resume", "rebuild-manifest", "round-up", "root",
           "list-flags", "quiet"]


def config_from_cli(
    testbed: Testbed, preset_name: str | None, config: Path | None, sets: list[str], train_tokens: int | None = None,
    seed: int | None = None, extra: list[str] | None = None, round_up: bool = False,
) -> Any:
    """Preset -> YAML file laid over it -> shorthands, --set, --train-tokens, --seed -> every validation."""
    overrides = [*(extra or []), *sets]
    overrides += [f"{k}={v}" for k, v in testbed.budget_overrides(tokens=train_tokens).items()]
    if seed is not None:
        overrides += [f"{k}={v}" for k, v in testbed.seed_overrides(seed).items()]
    return testbed.make_config(preset_name or testbed.default_preset, overrides, config_file=config,
                               round_up=round_up)


def _open_for_resume(testbed: Testbed, resume: str, root: Path, rebuild_manifest: bool, given: list[str]) -> Experiment:
    """The experiment `--resume` names; refused up front when this testbed cannot resume it."""
    if not resume.strip():
        raise ConfigError(f"--resume needs an experiment (exp-NNN, NNN or a folder), got {resume!r}; "
                          "run `autoresearch ls` to see them, or drop --resume to start a new run")
    if given:
        drop = "/".join(["--preset", "--set", "--config", "--train-tokens", "--seed",
                         *(f"--{n}" for n in testbed.cli_options)])
        raise ConfigError(f"--resume continues a run with its saved config; drop {drop}")
    exp = open_experiment(resume, root)
    saved = exp.read_config()
    kind = exp.testbed()
    if kind != testbed.spec:
        what = f"an eval-code experiment (`command: {saved.get('command')}`)" if kind is None else f"a `train {kind}` run"
        fix = ("it has no training to resume; run eval-code again" if kind is None
               else f"resume it with `autoresearch train {kind} --resume {exp.id}`")
        raise RegistryError(f"{exp.id} is {what}, not a training run of the {testbed.spec} testbed; {fix}")
    if rebuild_manifest:  # before the status check: a finished run's checkpoints serve eval-code --model
        if exp.is_alive():
            raise RegistryError(f"{exp.id} is being trained by another process; rebuild its manifest after it stops")
        from autoresearch.harness.checkpoint import rebuild_manifest as rebuild

        entries = rebuild(exp.checkpoints_dir)
        typer.echo(f"rebuilt {exp.checkpoints_dir}/manifest.json: {', '.join(e['file'] for e in entries)}")
        if exp.status in FINISHED:
            typer.echo(f"{exp.id} finished with status {exp.status}; nothing to resume")
            raise typer.Exit(0)
    exp.check_resumable()
    return exp


def flags_table(testbed: Testbed) -> None:
    """Every config key of the testbed with its help and default, its presets and its shorthands."""
    from rich.console import Console
    from rich.table import Table

    cls = testbed.config_class
    if cls is None:
        raise ConfigError(f"testbed {testbed.name} declares no `config_class`, so it has no flags to list")
    preset = testbed.default_preset
    values = _leaves(to_dict(testbed.preset_config(preset))) if preset in testbed.presets else {}
    table = Table(title=f"{testbed.name} testbed flags (--set KEY=VALUE); presets: {', '.join(testbed.presets)}")
    for col in ("key", f"{preset} preset" if values else "default", "help"):
        table.add_column(col)
    for name, help_, default in field_help(cls):
        table.add_row(name, repr(values.get(name, default)), help_)
    for name, opt in testbed.cli_options.items():
        table.add_row(f"--{name}", f"(sets {opt.key})", opt.help)
    Console().print(table)


def _leaves(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in data.items():
        out.update(_leaves(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def train(
    ctx: typer.Context,
    testbed_ref: str = typer.Argument(..., metavar="TESTBED", help=TESTBED_HELP),
    preset_name: str = typer.Option(None, "--preset", help="named preset (default tiny; --list-flags lists them); a "
                                    "--config file is laid over it"),
    config: Path = typer.Option(None, "--config", help="a config YAML (e.g. an experiment's config.yaml)"),
    sets: list[str] = typer.Option([], "--set", help="override a field, e.g. --set model.n_layers=4 (repeatable)"),
    train_tokens: int = typer.Option(None, "--train-tokens", help="token budget (multiple of tokens per step)"),
    seed: int = typer.Option(None, "--seed", help="seed for init and data order"),
    resume: str = typer.Option(None, "--resume", help="continue exp-NNN from its latest checkpoint"),
    rebuild_manifest: bool = typer.Option(False, "--rebuild-manifest",
                                          help="with --resume: re-list the checkpoint files that load (lost manifest)"),
    round_up: bool = typer.Option(False, "--round-up", help="round --train-tokens up to whole steps"),
    root: Path = typer.Option(Path(DEFAULT_ROOT), "--root", help="experiments directory"),
    list_flags: bool = typer.Option(False, "--list-flags", help="print every config key with its help and exit"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
) -> None:
    """Train a testbed's model within its budget into a new experiment folder; print a `key: value` summary.

    A testbed's own options follow TESTBED, e.g. `train codegen --model gpt`; `--list-flags` shows them.
    """
    testbed, extra, shorthands = testbed_from_cli(testbed_ref, ctx.args, OPTIONS)
    if list_flags:
        flags_table(testbed)
        return
    if rebuild_manifest and resume is None:
        raise ConfigError("--rebuild-manifest repairs an experiment's checkpoints; use it with --resume exp-NNN")
    if resume is not None:
        given = [*(["--preset"] if preset_name is not None else []), *(["--set"] if sets else []), *(["--config"] if config else []),
                 *(["--train-tokens"] if train_tokens is not None else []), *(["--seed"] if seed is not None else []),
                 *shorthands]
        exp = _open_for_resume(testbed, resume, root, rebuild_manifest, given)
        cfg = testbed.load_config(exp)
    else:
        cfg = config_from_cli(testbed, preset_name, config, sets, train_tokens, seed, extra, round_up)
        exp = new_experiment(root)  # after every validation: a refused config leaves no folder
    typer.echo(f"experiment: {exp.path}  ({testbed.describe_run(cfg)})")
    res = testbed.train(cfg, exp, resume=resume is not None, progress=not quiet)
    print_summary({"experiment": exp.id, **testbed.summary(cfg, res), "folder": str(exp.path)})
    if res["status"] != "ok":
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("train", context_settings=TESTBED_COMMAND, no_args_is_help=True)(train)
