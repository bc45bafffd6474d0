"""`autoresearch study ...`: run, resume, watch and report studies (baseline + ideas over seeds -> verdicts).

    autoresearch study run FILE|quickstart [--workers N] [--root studies] [--registry experiments] [--timeout S]
                                           [--restart]
    autoresearch study resume NAME [--retry-crashed] [--timeout S]
    autoresearch study status NAME [--watch]
    autoresearch study report NAME
    autoresearch study accept-baseline NAME [--value X]
    autoresearch study list
"""

from __future__ import annotations

import math
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from autoresearch.errors import StudyError
from autoresearch.harness.settings import DEFAULT_STUDIES_ROOT
from autoresearch.harness.trackers import check_trackers

__all__ = ["register", "builtin_study"]

# piped output (CI logs, `| tee`) gets a wide console so the verdict table stays one line per idea
console = Console(highlight=False) if sys.stdout.isatty() else Console(highlight=False, width=160)
_STYLE = {"KEEP": "bold green", "DISCARD": "bold red", "RETEST": "yellow", "CRASH": "bold magenta"}


def builtin_study(name: str) -> Path | None:
    """Path of a study file shipped in the package (`quickstart` = lm_quickstart, `codegen_hrm_vs_gpt`,
    `adversarial_vs_sft`), or None."""
    base = resources.files("autoresearch") / "studies"
    for cand in (name, f"{name}.yaml", f"lm_{name}.yaml"):
        p = base / cand
        if p.is_file() and cand.endswith(".yaml"):
            return Path(str(p))
    return None


def _resolve_file(file: str) -> Path:
    p = Path(file)
    if p.is_file():
        return p
    if p.is_dir():
        raise StudyError(f"study file {file!r} is a folder, not a YAML file; give the path of a study .yaml file "
                         f"(resume a study folder with `autoresearch study resume NAME --root DIR`)")
    if p.exists() or p.is_symlink():  # a dangling link, a device, ...: load_study names what is wrong
        return p
    builtin = builtin_study(file)
    if builtin is not None:
        return builtin
    raise StudyError(f"study file {file!r} does not exist and is not a built-in study; give a path to a YAML file "
                     f"or a built-in study: quickstart, codegen_hrm_vs_gpt, adversarial_vs_sft")


def _f(x: Any, spec: str = "+.4f") -> str:
    return "-" if x is None or (isinstance(x, float) and not math.isfinite(x)) else format(float(x), spec)


def _p(p: Any) -> str:
    if p is None or (isinstance(p, float) and not math.isfinite(p)):
        return "-"
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"


def _check_numbers(workers: int | None = None, timeout: float | None = None, interval: float | None = None) -> None:
    """Every number of the command line has a range, checked before anything is created."""
    from autoresearch.research.study import MAX_SECONDS, MAX_WORKERS

    if workers is not None and not 0 <= workers <= MAX_WORKERS:
        raise StudyError(f"`--workers` must be in [0, {MAX_WORKERS}] (0 = auto: cores // threads per trial), got "
                         f"{workers}; e.g. --workers 2")
    if timeout is not None and not (math.isfinite(timeout) and 0 <= timeout <= MAX_SECONDS):
        raise StudyError(f"`--timeout` must be in [0, {MAX_SECONDS:.0f}] seconds (0 = no limit), got {timeout}; "
                         f"e.g. --timeout 3600")
    if interval is not None and not (math.isfinite(interval) and 0.1 <= interval <= 3600):
        raise StudyError(f"`--interval` must be in [0.1, 3600] seconds, got {interval}; e.g. --interval 2")


def _dur(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h{s // 60 % 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


# --- live output ------------------------------------------------------------------------------------------------


class _Printer:
    """Turns runner events into one line each (log-friendly; no cursor tricks)."""

    def __init__(self, metric: str, quiet: bool = False) -> None:
        self.metric = metric
        self.quiet = quiet
        self.t0 = time.perf_counter()

    def __call__(self, kind: str, d: dict[str, Any]) -> None:
        if self.quiet:
            return
        t = f"[dim]{time.perf_counter() - self.t0:6.1f}s[/dim]"
        if kind == "start":
            limit = f", trial timeout {d['timeout_s']:g}s" if d.get("timeout_s") else ", no trial timeout"
            console.print(f"{t} study [bold]{d['name']}[/bold] -> {d['dir']} ({d['workers']} workers{limit})")
        elif kind == "stage":
            console.print(f"{t} [bold cyan]stage {d['stage']}[/bold cyan]")
        elif kind == "batch":
            console.print(f"{t} running {len(d['trials'])} trials on {d['workers']} workers")
        elif kind == "trial_start" and d.get("kind") == "checks":
            console.print(f"{t} integration checks started ({d['trial']}, in a subprocess)")
        elif kind == "trial_start" and d.get("arm") == "regression":
            console.print(f"{t} regression run {d['trial']} started (short deterministic baseline run)")
        elif kind == "heartbeat":
            running = ", ".join(f"{tid} {_dur(sec)}" for tid, sec in sorted(d["running"].items()))
            console.print(f"{t} … {d['done']}/{d['total']} done, {_dur(d['elapsed_s'])} into this batch; running: "
                          f"{running or '-'}")
        elif kind == "warning":
            console.print(f"{t} [yellow]warning:[/yellow] {d['message']}")
        elif kind == "trial_done":
            ok = d["status"] == "ok"
            mark = "[green]ok[/green]" if ok else f"[red]{d['status']}[/red]"
            val = f"{self.metric} {_f(d.get('metric'), '.4f')}" if ok else (d.get("error") or "")[:160]
            delta = f"  Δ {_f(d.get('delta'))}" if d.get("delta") is not None else ""
            retry = f"  ({d['attempts']} attempts)" if d.get("attempts", 1) > 1 else ""
            seed = f"seed {d['seed']}" if d.get("seed") is not None else ""
            console.print(f"{t} [{d['done']:>2}/{d['total']}] {d['trial']:<24} arm {d.get('arm')} {seed} {mark} "
                          f"{val}{delta}  wall {d.get('wall_s', 0):.1f}s (train {d.get('train_wall_s', 0):.1f}s)"
                          f"{retry}")
        elif kind == "checks":
            console.print(f"{t} integration checks finished: "
                          + ", ".join(f"{c['name']} {c['status']}" for c in d["checks"]))
        elif kind == "baseline":
            rec = "no recorded value" if d["recorded"] is None else f"recorded {d['recorded']:.4f} ({100 * d['rel']:.1f}% off)"
            console.print(f"{t} baseline reproduced: mean {self.metric} {d['mean']:.4f} over {len(d['values'])} seeds; "
                          f"{rec}")
        elif kind == "regression":
            console.print(f"{t} baseline-path regression: {d['steps']}-step trace {d['result']} bit for bit")
        elif kind == "verdicts":
            if d["retest"]:
                console.print(f"{t} round {d['round']}: RETEST {', '.join(d['retest'])} (adding seeds)")
        elif kind == "report":
            console.print(f"{t} report: {d['html']}")


def _verdict_table(verdicts: list[Any], metric: str) -> Table:
    conf = f"{100 * verdicts[0].conf:.4g}% CI" if verdicts else "CI"
    table = Table(title="Verdicts", title_justify="left")
    for col in ("idea", "verdict", "Δ (>0 better)", conf, "p", "n", f"idea {metric}", f"baseline {metric}", "reason"):
        table.add_column(col)
    for v in verdicts:
        table.add_row(v.idea, f"[{_STYLE.get(v.verdict, '')}]{v.verdict}[/]", _f(v.mean), f"[{_f(v.lo)}, {_f(v.hi)}]",
                      _p(v.p), str(v.n), _f(v.idea_mean, ".4f"), _f(v.baseline_mean, ".4f"), v.short_reason)
    return table


def _summary(result: Any) -> None:
    console.print(_verdict_table(result.verdicts, result.metric))
    console.print(result.rule)
    counts: dict[str, int] = {}
    for v in result.verdicts:
        counts[v.verdict] = counts.get(v.verdict, 0) + 1
    console.print(f"study: {result.name}")
    console.print("verdicts: " + ", ".join(f"{k} {n}" for k, n in counts.items()))
    console.print(f"trials: {result.trials}")
    console.print(f"wall_s: {result.wall_s:.1f}")
    console.print(f"idea_log: {result.study_dir / 'idea_log.md'}")
    if result.report_html:
        console.print(f"report: {result.report_html}")


def _run(resolved: Any, sdir: Path, registry: str | None, workers: int | None, quiet: bool, retry: bool,
         timeout: float | None = None, executor: str = "local", address: str | None = None,
         trackers: list[str] | None = None) -> None:
    from autoresearch.research.runner import StudyRunner

    runner = StudyRunner(resolved, sdir, registry=registry, workers=workers,
                         emit=_Printer(resolved.study.metric.name, quiet), retry_crashed=retry, timeout_s=timeout,
                         executor=executor, address=address, trackers=trackers)
    _summary(runner.run())


# --- verbs ------------------------------------------------------------------------------------------------------


def register(app: typer.Typer) -> None:
    study = typer.Typer(help="Studies: baseline + ideas over seeds -> statistics, verdicts, idea log and report.",
                        no_args_is_help=True)
    app.add_typer(study, name="study")

    root_opt = typer.Option(DEFAULT_STUDIES_ROOT, "--root", help="folder holding study folders")
    workers_opt = typer.Option(None, "--workers", "-j", help="parallel trials (default: cores // threads per trial)")
    registry_opt = typer.Option(None, "--registry", help="experiment registry root (default: experiments)")
    executor_opt = typer.Option("local", "--executor", help="how trials start: local (warm workers, default), "
                                                           "subprocess (a fresh interpreter each), ray")
    address_opt = typer.Option(None, "--address", help="--executor ray: the cluster to join (default: start a "
                                                       "local Ray instance)")
    tracker_opt = typer.Option([], "--tracker", help="each trial also logs to tensorboard, mlflow or wandb, tagged "
                                                     "with study, arm, seed and trial (repeatable; adds to the study "
                                                     "file's resources.trackers)")
    timeout_opt = typer.Option(None, "--timeout", help="kill a trial process after this many seconds (0 = no "
                                                      "limit; default: resources.timeout_s of the study file)")

    @study.command("run")
    def run_cmd(
        file: str = typer.Argument(..., help="study YAML file, or a built-in study: quickstart, codegen_hrm_vs_gpt, "
                                   "adversarial_vs_sft"),
        workers: int | None = workers_opt,
        root: str = root_opt,
        registry: str | None = registry_opt,
        timeout: float | None = timeout_opt,
        restart: bool = typer.Option(False, "--restart", help="start over: move an existing study of this name "
                                                             "to <name>.old-<time> (kept) and run the file afresh"),
        quiet: bool = typer.Option(False, "--quiet", "-q", help="only print the verdicts and summary"),
        executor: str = executor_opt,
        address: str | None = address_opt,
        tracker: list[str] = tracker_opt,
    ) -> None:
        """Start a study (or continue it, if one with the same name and definition exists)."""
        from autoresearch.research.study_dir import prepare_study

        _check_numbers(workers, timeout)
        check_trackers(tracker)  # an unknown name or a missing package: one line, before the study folder exists
        resolved, sdir = prepare_study(_resolve_file(file), root, restart=restart)
        _run(resolved, sdir, registry, workers, quiet, retry=False, timeout=timeout, executor=executor,
             address=address, trackers=tracker)

    @study.command("resume")
    def resume_cmd(
        name: str = typer.Argument(..., help="study name (its folder under --root)"),
        workers: int | None = workers_opt,
        root: str = root_opt,
        registry: str | None = registry_opt,
        retry_crashed: bool = typer.Option(False, "--retry-crashed", help="run crashed trials again (new attempt)"),
        timeout: float | None = timeout_opt,
        quiet: bool = typer.Option(False, "--quiet", "-q", help="only print the verdicts and summary"),
        executor: str = executor_opt,
        address: str | None = address_opt,
        tracker: list[str] = tracker_opt,
    ) -> None:
        """Continue a study after an interruption; finished trials are never re-run."""
        from autoresearch.research.study_dir import open_study

        _check_numbers(workers, timeout)
        check_trackers(tracker)  # an unknown name or a missing package: one line, before the study folder exists
        resolved, sdir = open_study(name, root)
        _run(resolved, sdir, registry, workers, quiet, retry=retry_crashed, timeout=timeout, executor=executor,
             address=address, trackers=tracker)

    @study.command("status")
    def status_cmd(
        name: str = typer.Argument(..., help="study name"),
        root: str = root_opt,
        watch: bool = typer.Option(False, "--watch", "-w", help="refresh until the study is done (Ctrl-C to stop)"),
        interval: float = typer.Option(2.0, "--interval", help="seconds between refreshes with --watch"),
    ) -> None:
        """Table of arms: seeds done/planned, running trials, mean, Δ, CI, p, verdict."""
        from rich.live import Live

        _check_numbers(interval=interval)
        sdir = Path(root) / name
        if not (sdir / "state.json").exists():
            raise StudyError(f"no study {name!r} under {root}/; start one with `autoresearch study run FILE`")
        table, done = _status_table(sdir)
        if not watch:
            console.print(table)
            return
        with Live(table, console=console, refresh_per_second=4) as live:
            while not done:
                time.sleep(interval)
                table, done = _status_table(sdir)
                live.update(table)

    @study.command("report")
    def report_cmd(name: str = typer.Argument(..., help="study name"), root: str = root_opt) -> None:
        """(Re)write idea_log.md, report.md and report.html from the study's state."""
        from autoresearch.research.idea_log import write_idea_log
        from autoresearch.research.ledger import Ledger
        from autoresearch.research.report import write_report
        from autoresearch.research.state import StudyState
        from autoresearch.research.study_dir import open_study, storage_errors

        resolved, sdir = open_study(name, root)
        state = StudyState.load(sdir / "state.json")
        ledger = Ledger(sdir, resolved.study.metric.name, direction=resolved.direction)
        with storage_errors(sdir, elsewhere=""):
            ledger.rebuild()  # results.tsv is derived: a torn or deleted one comes back
            if not state.verdicts:
                raise StudyError(f"study {name!r} has no verdicts yet (stage {state.stage}); "
                                 f"`autoresearch study resume {name}` first")
            log = write_idea_log(sdir, resolved, state)
            md, html = write_report(sdir, resolved, state, ledger)
        if ledger.problem():
            console.print(f"warning: {ledger.problem()}")
        console.print(f"idea_log: {log}\nresults: {ledger.tsv}\nreport_md: {md}\nreport: {html}")

    @study.command("accept-baseline")
    def accept_cmd(
        name: str = typer.Argument(..., help="study name"),
        value: float | None = typer.Option(None, "--value", help="accept this value instead of the measured mean"),
        root: str = root_opt,
    ) -> None:
        """Accept the measured baseline mean as the recorded baseline of a study that stopped on reproduction."""
        from autoresearch.research.study_dir import accept_baseline

        acc = accept_baseline(name, root, value)
        console.print(f"accepted baseline {acc.value:.6f} for study {name} (was {acc.previous}); "
                      f"continue with `autoresearch study resume {name}`")

    @study.command("list")
    def list_cmd(root: str = root_opt) -> None:
        """Studies under --root with their stage."""
        from autoresearch.research.lock import is_running
        from autoresearch.research.state import StudyState
        from autoresearch.research.study_dir import definition_problem

        table = Table("study", "stage", "trials", "done", "running")
        for st in sorted(Path(root).glob("*/state.json")):
            try:  # resume / status / report refuse a damaged state.json or study.yaml: so does the list
                s = StudyState.load(st)
                problem = definition_problem(st.parent)
                if problem:
                    raise StudyError(problem)
            except StudyError as e:  # one damaged study must not hide the others; the reason without path and fix
                reason = str(e).replace(f"{st.parent}/", "").split("; ")[0]
                table.add_row(st.parent.name, f"damaged: {reason[:120]}", "-", "-", str(is_running(st.parent)))
                continue
            table.add_row(st.parent.name, s.stage, str(len(s.trials)), str(s.done),
                          str(is_running(st.parent)))
        console.print(table)


def _status_table(sdir: Path) -> tuple[Table, bool]:
    """The status table of a study (computed by research/status.py) and whether the study is done."""
    from autoresearch.research.status import study_status
    from autoresearch.research.study import BASELINE

    st = study_status(sdir)
    table = Table(title=f"study {st.name} — stage {st.stage}", title_justify="left")
    for col in ("arm", "done", "planned", "running", "crashed", f"mean {st.metric}", "Δ (>0 better)", "CI", "p",
                "verdict"):
        table.add_column(col)
    for a in st.arms:
        ci = f"[{_f(a.lo)}, {_f(a.hi)}]" if a.delta is not None else "-"
        verdict = a.verdict or ("…" if a.arm != BASELINE else "")
        table.add_row(a.arm, str(a.done), "-" if a.planned is None else str(a.planned), str(a.running),
                      str(a.crashed), _f(a.mean, ".4f"), _f(a.delta), ci, _p(a.p),
                      f"[{_STYLE[verdict]}]{verdict}[/]" if verdict in _STYLE else verdict)
    live = "stopped (resume to continue)" if st.state == "stopped" else st.state
    table.caption = f"{live} · wall {st.wall_s:.0f}s · {st.trials} trials recorded"
    return table, st.state == "done"
