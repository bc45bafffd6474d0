"""`autoresearch train lm ...`: one experiment into `experiments/exp-NNN/`, with a progress bar and a summary."""

from __future__ import annotations

from pathlib import Path

import typer

from autoresearch.cli._common import print_summary
from autoresearch.errors import ConfigError
from autoresearch.harness.config import apply_overrides, field_help, from_dict, load_yaml
from autoresearch.harness.registry import DEFAULT_ROOT, new_experiment, open_experiment
from autoresearch.testbeds.lm.config import PRESETS, LMConfig, preset

__all__ = ["register", "lm_config_from_cli"]

train_app = typer.Typer(help="Train a testbed model; each run is a new experiment folder.", no_args_is_help=True)


def lm_config_from_cli(
    preset_name: str, config: Path | None, sets: list[str], train_tokens: int | None, seed: int | None, round_up: bool
) -> LMConfig:
    """Preset (or YAML file) -> --set overrides -> --train-tokens/--seed -> budget check."""
    cfg = load_yaml(config, LMConfig) if config else preset(preset_name)
    overrides = list(sets)
    if train_tokens is not None:
        overrides.append(f"train.train_tokens={train_tokens}")
    if seed is not None:
        overrides.append(f"train.seed={seed}")
    cfg = apply_overrides(cfg, overrides) if overrides else cfg
    return cfg.check_budget(round_up=round_up)


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
    preset_name: str = typer.Option("tiny", "--preset", help=f"named preset: {', '.join(PRESETS)}"),
    config: Path = typer.Option(None, "--config", help="a config YAML (e.g. an experiment's config.yaml)"),
    sets: list[str] = typer.Option([], "--set", help="override a field, e.g. --set model.n_layers=4 (repeatable)"),
    train_tokens: int = typer.Option(None, "--train-tokens", help="token budget (multiple of tokens per step)"),
    seed: int = typer.Option(None, "--seed", help="seed for init and data order"),
    resume: str = typer.Option(None, "--resume", help="continue exp-NNN from its latest checkpoint"),
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
    if resume:
        if sets or config or train_tokens is not None or seed is not None:
            raise ConfigError("--resume continues a run with its saved config; drop --set/--config/--train-tokens/--seed")
        exp = open_experiment(resume, root)
        saved = exp.read_config()
        saved.pop("meta", None)
        cfg = from_dict(LMConfig, saved)
    else:
        cfg = lm_config_from_cli(preset_name, config, sets, train_tokens, seed, round_up)
        exp = new_experiment(root)
    typer.echo(f"experiment: {exp.path}  ({cfg.steps} steps x {cfg.tokens_per_step} tokens)")
    res = train(cfg, exp, resume=bool(resume), progress=not quiet)
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
        "achieved_tflops": res["achieved_tflops"],
        "mfu": res["mfu"],
        "peak_memory_mb": res["peak_memory_mb"],
        "train_seconds": res["train_seconds"],
        "wall_seconds": res["wall_seconds"],
        "folder": str(exp.path),
    })
    if res["status"] != "ok":
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
