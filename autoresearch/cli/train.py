"""`autoresearch train TESTBED ...`: one experiment into `experiments/exp-NNN/`, with a progress bar and a summary.

One command for every testbed, built-in or the user's (`path/to/file.py:Class`): it goes through the `Testbed`
contract only (make_config, load_config, train, summary), so nothing here knows a testbed by name.

`--nproc N` (N > 1): this process validates the run and allocates its experiment as usual, then becomes torchrun's
agent and runs the same command as N ranks (`--into` the allocated folder); a failed rank ends it with one line
naming the rank. The same command launched by `torchrun` directly works too: rank 0 allocates (or opens for
`--resume`) the experiment and tells the other ranks its folder; only rank 0 prints.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from autoresearch.cli._common import TESTBED_COMMAND, TESTBED_HELP, print_summary, testbed_from_cli
from autoresearch.errors import ConfigError, DistributedError, RegistryError
from autoresearch.harness.config import field_help, to_dict
from autoresearch.harness.registry import DEFAULT_ROOT, FINISHED, Experiment, new_experiment, open_experiment
from autoresearch.testbeds.base import Testbed

__all__ = ["register", "config_from_cli"]

OPTIONS = ["preset", "config", "set", "train-tokens", "seed", "resume", "rebuild-manifest", "round-up", "root",
           "list-flags", "quiet", "nproc", "into", "tracker"]


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
    nproc: int = typer.Option(1, "--nproc", help="processes on this machine (DistributedDataParallel under torchrun; "
                              "train.batch_size stays the global batch and must be divisible by N)"),
    into: str = typer.Option(None, "--into", hidden=True, help="(--nproc) train into this freshly allocated folder"),
    tracker: list[str] = typer.Option([], "--tracker", help="also log to tensorboard, mlflow or wandb (repeatable; "
                                      "see docs/testbeds.md)"),
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
    from autoresearch.harness.trackers import check_trackers

    trackers = check_trackers(tracker)  # an unknown name or a missing package: one line, before any folder exists
    from autoresearch.testbeds.common import distributed

    if nproc < 1:
        raise ConfigError(f"--nproc must be >= 1, got {nproc}; use 1 for a single process")
    if distributed.launched():
        if nproc > 1 and nproc != distributed.world_size():
            raise ConfigError(f"--nproc {nproc} but torchrun started {distributed.world_size()} processes; drop "
                              "--nproc when launching with torchrun")
        _train_rank(ctx, testbed, extra, shorthands, preset_name, config, sets, train_tokens, seed, resume,
                    rebuild_manifest, round_up, root, quiet, into, trackers=trackers)
        return
    if nproc > 1:
        _launch_ranks(testbed, nproc, extra, preset_name, config, sets, train_tokens, seed, resume, rebuild_manifest,
                      round_up, root, shorthands)
        return
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
    exp = exp.with_trackers(trackers, {"testbed": testbed.spec})
    try:
        res = testbed.train(cfg, exp, resume=resume is not None, progress=not quiet)
    finally:
        exp.close_trackers()
    print_summary({"experiment": exp.id, **testbed.summary(cfg, res), "folder": str(exp.path)})
    if res["status"] != "ok":
        raise typer.Exit(1)


def _given(preset_name: str | None, sets: list[str], config: Path | None, train_tokens: int | None, seed: int | None,
           shorthands: list[str]) -> list[str]:
    return [*(["--preset"] if preset_name is not None else []), *(["--set"] if sets else []),
            *(["--config"] if config else []), *(["--train-tokens"] if train_tokens is not None else []),
            *(["--seed"] if seed is not None else []), *shorthands]


def _launch_ranks(
    testbed: Testbed, nproc: int, extra: list[str], preset_name: str | None, config: Path | None, sets: list[str],
    train_tokens: int | None, seed: int | None, resume: str | None, rebuild_manifest: bool, round_up: bool,
    root: Path, shorthands: list[str],
) -> None:
    """`--nproc N`: every check a single-process run makes, up front (a refused run starts no process), then this
    same command as N torchrun ranks into the allocated (or resumed) experiment."""
    from autoresearch.testbeds.common import distributed

    if resume is not None:
        exp = _open_for_resume(testbed, resume, root, rebuild_manifest,
                               _given(preset_name, sets, config, train_tokens, seed, shorthands))
        cfg = testbed.load_config(exp)
    else:
        cfg = config_from_cli(testbed, preset_name, config, sets, train_tokens, seed, extra, round_up)
    batch = getattr(getattr(cfg, "train", None), "batch_size", None)
    if isinstance(batch, int) and batch % nproc:
        raise ConfigError(f"`train.batch_size` is the global batch and must be divisible by --nproc {nproc}, got "
                          f"{batch}; use --set train.batch_size={max(nproc, batch // nproc * nproc)} or another --nproc")
    argv = _without_nproc(sys.argv[1:])
    if resume is None:
        exp = new_experiment(root)  # after every validation: a refused config leaves no folder
        argv += ["--into", str(exp.path)]
    try:
        distributed.launch(nproc, distributed.python_module_cmd("autoresearch", argv),
                           resume_hint=f"continue with `autoresearch train {testbed.spec} --resume {exp.id} --root "
                                       f"{root} --nproc {nproc}`")
    except DistributedError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None


def _without_nproc(argv: list[str]) -> list[str]:
    out: list[str] = []
    skip = False
    for a in argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            out.append(a)
    return out


def _train_rank(
    ctx: typer.Context, testbed: Testbed, extra: list[str], shorthands: list[str], preset_name: str | None,
    config: Path | None, sets: list[str], train_tokens: int | None, seed: int | None, resume: str | None,
    rebuild_manifest: bool, round_up: bool, root: Path, quiet: bool, into: str | None,
    trackers: list[str] | None = None,
) -> None:
    """One rank of a torchrun launch: rank 0 validates and opens the experiment, then every rank trains into it."""
    from autoresearch.harness.registry import Experiment
    from autoresearch.testbeds.common import distributed

    distributed.init()
    main = distributed.is_main()
    exp: Experiment | None = None
    if main:
        if resume is not None:
            exp = _open_for_resume(testbed, resume, root, rebuild_manifest,
                                   _given(preset_name, sets, config, train_tokens, seed, shorthands))
        else:
            exp = open_experiment(into, root) if into else new_experiment(root)
    exp = Experiment(Path(distributed.broadcast_object(str(exp.path) if exp is not None else None)))
    cfg = (testbed.load_config(exp) if resume is not None
           else config_from_cli(testbed, preset_name, config, sets, train_tokens, seed, extra, round_up))
    if main:  # rank 0 alone writes the registry, so it alone mirrors it into the trackers
        exp = exp.with_trackers(trackers or [], {"testbed": testbed.spec, "nproc": distributed.world_size()})
    try:
        if main:
            typer.echo(f"experiment: {exp.path}  ({testbed.describe_run(cfg)}, {distributed.world_size()} processes)")
        res = testbed.train(cfg, exp, resume=resume is not None, progress=not quiet and main)
    finally:
        exp.close_trackers()
        distributed.teardown()
    if main:
        print_summary({"experiment": exp.id, **testbed.summary(cfg, res), "nproc": distributed.world_size(),
                       "folder": str(exp.path)})
    if res["status"] != "ok":
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("train", context_settings=TESTBED_COMMAND, no_args_is_help=True)(train)
