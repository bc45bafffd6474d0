"""`autoresearch ls` and `autoresearch show exp-NNN`: the registry as tables.

Both only read. `ls` lists every folder, whatever state it is in: a run no live process holds shows as `killed`, a
folder whose files do not validate as `damaged` with the reason and fix under the table — one bad folder never hides
the others. `show` of a damaged experiment is the one-line error naming the file, what is wrong and the fix.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from autoresearch.cli._common import fmt
from autoresearch.harness.registry import DEFAULT_ROOT, list_experiments, open_experiment

__all__ = ["register"]

_COLUMNS = ("status", "val_loss", "val_bpb", "steps", "tokens", "tokens_per_s", "params", "train_seconds")


def ls(root: Path = typer.Option(Path(DEFAULT_ROOT), "--root", help="experiments directory")) -> None:
    """List experiments with their status and headline metrics."""
    from rich.console import Console
    from rich.table import Table

    exps = list_experiments(root)
    if not exps:
        where = "" if str(root) == str(DEFAULT_ROOT) else f" --root {root}"
        typer.echo(f"no experiments under {root}/; run `autoresearch train lm --preset tiny{where}`")
        return
    table = Table(title=f"experiments ({root})")
    table.add_column("id", no_wrap=True, min_width=7)
    table.add_column("created")
    for c in _COLUMNS:
        table.add_column(c, justify="right" if c != "status" else "left")
    notes = []
    for e in exps:
        status, note = e.state()
        res: dict = {}
        created = "-"
        if status != "damaged":
            res = e.read_results()
            if e.config_path.exists():
                created = (e.read_config().get("meta") or {}).get("created", "-")
        if note:
            notes.append(f"{e.id} {status}: {note}")
        table.add_row(e.id, str(created)[:19], *(fmt(status if c == "status" else res.get(c)) for c in _COLUMNS))
    # piped output (logs, CI) gets a wide table instead of rich's 80 columns, which cut ids to `exp-…`
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    for line in notes:
        typer.echo(line)


def show(
    exp_id: str = typer.Argument(..., help="exp-NNN, NNN or a path"),
    root: Path = typer.Option(Path(DEFAULT_ROOT), "--root", help="experiments directory"),
    tail: int = typer.Option(5, "--tail", help="last N log lines to show"),
) -> None:
    """Show one experiment: results, resolved config, provenance and the last log lines."""
    from rich.console import Console
    from rich.table import Table

    exp = open_experiment(exp_id, root)
    console = Console()
    status, note = exp.state()
    if status in ("empty", "crashed") and not exp.config_path.exists():
        error = exp.read_results().get("error", "")
        typer.echo(f"{exp.id}: {status}, no config.yaml" + (f"; error: {error}" if error else
                   " (the run never started); remove the folder or start a new run"))
        return
    cfg = exp.read_config()
    meta = cfg.pop("meta", {}) or {}
    res = exp.read_results()
    t = Table(title=f"{exp.id} results")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in {**res, "status": status}.items():
        if not isinstance(v, dict):
            t.add_row(k, fmt(v))
    console.print(t)
    c = Table(title="config")
    c.add_column("key")
    c.add_column("value")
    for section, values in cfg.items():
        for k, v in (values or {}).items() if isinstance(values, dict) else [("", values)]:
            c.add_row(f"{section}.{k}" if k else section, fmt(v))
    console.print(c)
    git, hw, versions = (m if isinstance(m := meta.get(k), dict) else {} for k in ("git", "hardware", "versions"))
    console.print(f"created {meta.get('created')}  seed {meta.get('seed')}  git {str(git.get('commit'))[:10]}"
                  f"{' (dirty)' if git.get('dirty') else ''}  torch {versions.get('torch')}  "
                  f"{hw.get('gpu') or hw.get('cpu')}", markup=False)
    if note:
        typer.echo(f"{status}: {note}")
    owner = exp.owner()
    if owner and status in ("running", "killed"):
        typer.echo(f"owner: pid {owner.get('pid')} on {owner.get('host')} since {owner.get('started')}")
    scan = exp.scan_log()
    if scan.bad:
        typer.echo(f"warning: {scan.describe_bad(exp.log_path)}; not shown")
    log = scan.records
    if log:
        lt = Table(title=f"log.jsonl (last {tail} of {len(log)})")
        keys = [k for k in ("step", "tokens", "loss", "lr", "grad_norm", "tokens_per_s", "memory_mb") if k in log[-1]]
        for k in keys:
            lt.add_column(k, justify="right")
        for r in log[-tail:]:
            lt.add_row(*(fmt(r.get(k)) for k in keys))
        console.print(lt)
    typer.echo(f"folder: {exp.path}")


def register(app: typer.Typer) -> None:
    app.command("ls")(ls)
    app.command("show")(show)
