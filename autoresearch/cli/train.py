"""`autoresearch train lm ...`: one experiment into `experiments/exp-NNN/`, with a progress bar and a summary."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from autoresearch.cli._common import print_summary
from autoresearch.errors import ConfigError, RegistryError
from autoresearch.harness.config import apply_overrides, field_help, from_dict, load_yaml
from autoresearch.harness.registry import DEFAULT_ROOT, FINISHED, new_experiment, open_experiment
from autoresearch.testbeds.lm.config import PRESETS, LMConfig, preset

__all__ = ["register", "lm_config_from_cli"]

train_app = typer.Typer(help="Train a testbed model; each run is a new experiment folder.", no_args_is_help=True)


def config_from_cli(
    cls: type, make_preset: Callable[[str], Any], preset_name: str, config: Path | None, sets: list[str],
    train_tokens: int | None, seed: int | None, extra: list[str] | None = None,
) -> Any:
    """Preset -> YAML file laid over it -> --set overrides -> --train-tokens/--seed."""
    cfg = make_preset(preset_name)
    cfg = load_yaml(config, cls, base=cfg) if config else cfg
    overrides = list(extra or []) + list(sets)
    if train_tokens is not None:
        overrides.append(f"train.train_tokens={train_tokens}")
    if seed is not None:
        overrides.append(f"train.seed={seed}")
    cfg = apply_overrides(cfg, overrides) if overrides else cfg
    check = getattr(cfg, "check_budget", None)
    if callable(check) and cls is not LMConfig:  # the LM budget is checked by lm_config_from_cli (with --round-up)
        check()
    return cfg


def lm_config_from_cli(
    preset_name: str, config: Path | None, sets: list[str], train_tokens: int | None, seed: int | None, round_up: bool
) -> LMConfig:
    """The LM config of a command line, with the token budget checked to be whole steps."""
    cfg = config_from_cli(LMConfig, preset, preset_name, config, sets, train_tokens, seed)
    return cfg.check_budget(round_up=round_up)


def _open_for_resume(
    cls: type, testbed: str, resume: str, root: Path, rebuild_manifest: bool, *given: Any
) -> tuple[Any, Any]:
    """The experiment `--resume` names and its saved config; refused up front when this testbed cannot resume it."""
    if not resume.strip():
        raise ConfigError(f"--resume needs an experiment (exp-NNN, NNN or a folder), got {resume!r}; "
                          "run `autoresearch ls` to see them, or drop --resume to start a new run")
    if any(g for g in given):
        raise ConfigError("--resume continues a run with its saved config; drop --set/--config/--train-tokens/--seed")
    exp = open_experiment(resume, root)
    saved = exp.read_config()
    kind = exp.testbed()
    if kind != testbed:
        what = f"an eval-code experiment (`command: {saved.get('command')}`)" if kind is None else f"a `train {kind}` run"
        fix = ("it has no training to resume; run eval-code again" if kind is None
               else f"resume it with `autoresearch train {kind} --resume {exp.id}`")
        raise RegistryError(f"{exp.id} is {what}, not a training run of the {testbed} testbed; {fix}")
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
    saved.pop("meta", None)
    missing = [f.name for f in dataclasses.fields(cls) if f.name not in saved]
    if missing:
        raise RegistryError(f"{exp.config_path} lacks the section(s) {', '.join(missing)}; restore it from a backup "
                            "(every checkpoint holds a copy under its `config` key)")
    try:
        cfg = from_dict(cls, saved)
    except ConfigError as e:
        raise RegistryError(f"{exp.config_path} is not a valid {testbed} config ({e}); restore it from a backup") \
            from None
    return cfg, exp


def _flags_table() -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="LM testbed flags (--set KEY=VALUE)")
    for col in ("key", "default (5dollar)", "help"):
        table.add_column(col)
    for name, help_, default in field_help(LMConfig):
        table.add_row(name, repr(default), help_)
    Console().print(table)


@train_app.command("lm")
def train_lm(
    preset_name: str = typer.Option("tiny", "--preset", help=f"named preset: {', '.join(PRESETS)} (a --config file is laid over it)"),
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
    """Train the small GPT (Muon + AdamW) on the offline corpus within a token budget."""
    from autoresearch.testbeds.lm.train import train

    if list_flags:
        _flags_table()
        return
    if rebuild_manifest and resume is None:
        raise ConfigError("--rebuild-manifest repairs an experiment's checkpoints; use it with --resume exp-NNN")
    if resume is not None:
        cfg, exp = _open_for_resume(LMConfig, "lm", resume, root, rebuild_manifest, sets, config,
                                    train_tokens is not None, seed is not None)
    else:
        cfg = lm_config_from_cli(preset_name, config, sets, train_tokens, seed, round_up)
        from autoresearch.testbeds.lm.train import resolve_device  # torch: imported only when training

        resolve_device(cfg.train.device)  # an unusable device is refused before a folder exists
        exp = new_experiment(root)
    typer.echo(f"experiment: {exp.path}  ({cfg.steps} steps x {cfg.tokens_per_step} tokens)")
    res = train(cfg, exp, resume=resume is not None, progress=not quiet)
    print_summary({
        "experiment": exp.id,
        "status": res["status"],
        **({"error": res["error"]} if res.get("error") else {}),
        "val_loss": res["val_loss"],
        "val_loss_init": res["val_loss_init"],
        "val_bpb": res["val_bpb"],
        "perplexity": res["perplexity"],
        "params": res["params"],
        "steps": res["steps"],
        "tokens": res["tokens"],
        "tokens_per_s": res["tokens_per_s"],
        **({"precision": f"{res['precision']} ({res['precision_reason']})"} if res.get("precision") else {}),
        "achieved_tflops": res["achieved_tflops"],
        "mfu": res["mfu"],
        "peak_memory_mb": res["peak_memory_mb"],
        "train_seconds": res["train_seconds"],
        "wall_seconds": res["wall_seconds"],
        "folder": str(exp.path),
    })
    if res["status"] != "ok":
        raise typer.Exit(1)


@train_app.command("codegen")
def train_codegen(
    arch: str = typer.Option("hrm", "--model", help="hrm | gpt (the GPT is parameter-matched to the HRM config)"),
    preset_name: str = typer.Option("tiny", "--preset", help="named preset: tiny, small, gpu (a --config file is laid over it)"),
    config: Path = typer.Option(None, "--config", help="a config YAML (e.g. an experiment's config.yaml)"),
    sets: list[str] = typer.Option([], "--set", help="override a field, e.g. --set hrm.h_cycles=3 (repeatable)"),
    train_tokens: int = typer.Option(None, "--train-tokens", help="token budget"),
    seed: int = typer.Option(None, "--seed", help="seed for init and data order"),
    resume: str = typer.Option(None, "--resume", help="continue exp-NNN from its latest checkpoint"),
    rebuild_manifest: bool = typer.Option(False, "--rebuild-manifest",
                                          help="with --resume: re-list the checkpoint files that load (lost manifest)"),
    root: Path = typer.Option(Path(DEFAULT_ROOT), "--root", help="experiments directory"),
    quiet: bool = typer.Option(False, "--quiet", help="no progress bar"),
) -> None:
    """Train a code model (causal HRM or matched GPT) on the generated task suite; score pass@k in the sandbox."""
    from autoresearch.testbeds.codegen.config import CodegenConfig, codegen_preset
    from autoresearch.testbeds.codegen.train import train

    if rebuild_manifest and resume is None:
        raise ConfigError("--rebuild-manifest repairs an experiment's checkpoints; use it with --resume exp-NNN")
    if resume is not None:
        cfg, exp = _open_for_resume(CodegenConfig, "codegen", resume, root, rebuild_manifest, sets, config,
                                    train_tokens is not None, seed is not None)
    else:
        if arch not in ("hrm", "gpt"):
            raise ConfigError(f"--model must be hrm or gpt, got {arch!r}; use --model hrm")
        cfg = config_from_cli(CodegenConfig, codegen_preset, preset_name, config, sets, train_tokens, seed,
                              extra=[f"arch={arch}"])
        from autoresearch.testbeds.lm.train import resolve_device  # torch: imported only when training

        resolve_device(cfg.train.device)  # an unusable device is refused before a folder exists
        exp = new_experiment(root)
    typer.echo(f"experiment: {exp.path}  ({cfg.arch}, {cfg.steps} steps x {cfg.tokens_per_step} tokens)")
    res = train(cfg, exp, resume=resume is not None, progress=not quiet)
    keys = ("status", "error", "pass@1_greedy", "pass@1", "pass@10", "syntax_valid_rate", "heldout_loss",
            "heldout_loss_init", "gen_tokens_per_s", "sandbox_level", "params", "steps", "tokens", "tokens_per_s",
            "precision", "peak_memory_mb", "train_seconds", "wall_seconds")
    print_summary({"experiment": exp.id, "arch": cfg.arch, **{k: res[k] for k in keys if k in res},
                   "folder": str(exp.path)})
    if res["status"] != "ok":
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
