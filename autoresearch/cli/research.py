"""`autoresearch research ...`: research workspaces and the pipeline that implements, verifies and studies ideas.

    autoresearch research init DIR --testbed lm|codegen|module.path:Class|path/file.py:Class [--preset tiny]
    autoresearch research run ["IDEA"] [--workspace DIR] [--planner none] [--coder none|patch:FILE|cmd:PATH|claude|
        codex|aider] [--judge rules] [--analyzer rules] [--reviser none] [--gate STAGE=MODE ...] [--flag KEY=VALUE ...]
        [--budget-versions N] [--budget-trials N] [--budget-seconds S] [--workers N]
    autoresearch research status|resume|report|list [--workspace DIR]
    autoresearch research gate approve|revise|reject [--note TEXT] [--workspace DIR]

Every command ends with a `key: value` summary; bad input is one line (exit 2). A human gate prints what to run and
exits 0 with `status: waiting`. docs/pipeline.md explains the workspace, the stages, the gates and every file.
"""

from __future__ import annotations

import math
import time
from typing import Any

import typer

from autoresearch.cli._common import print_summary
from autoresearch.errors import ConfigError, PipelineError

__all__ = ["register"]

_WS_HELP = "the research workspace (a folder made by `research init`)"


def _echo(text: str) -> None:
    typer.echo(text)


class _Printer:
    """Pipeline events and the study runner's events as one line each (the study's own printer for the latter)."""

    def __init__(self, metric: str) -> None:
        from autoresearch.cli.study import _Printer as StudyPrinter

        self.study = StudyPrinter(metric)
        self.t0 = time.perf_counter()

    def __call__(self, kind: str, d: dict[str, Any]) -> None:
        t = f"{time.perf_counter() - self.t0:6.1f}s"
        if kind == "event":
            _echo(f"{t} [{d['stage']}] {d['event']}" + (f": {d['detail']}" if d.get("detail") else ""))
        elif kind == "message":
            _echo(f"{t} {d['text']}")
        elif kind == "done":
            _echo(f"{t} {d['message']}")
        else:
            self.study(kind, d)


def _load(workspace: str) -> Any:
    from autoresearch.pipeline.workspace import load

    return load(workspace)


def _check_clean(ws: Any) -> None:
    """Idea branches start from the workspace's last commit: uncommitted edits of tracked files (workspace.yaml, the
    surface) would be silently left out of every version, so they stop the run here."""
    from autoresearch.pipeline._git import git

    dirty = [line[3:] for line in git(ws.root, "status", "--porcelain", "--untracked-files=no").splitlines() if line]
    if dirty:
        raise PipelineError(f"{ws.root / dirty[0]} has uncommitted changes ({len(dirty)} file(s)); idea versions "
                            f"start from the last commit: commit them (`git -C {ws.root} commit -am 'settings'`) or "
                            f"revert them (`git -C {ws.root} checkout -- {dirty[0]}`)")


def _flags(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip() or not value.strip():
            raise ConfigError(f"--flag {item!r} must be KEY=VALUE (the idea's value of a config key), e.g. "
                              f"--flag model.attn_temperature=0.5")
        out[key.strip()] = value.strip()
    return out


def _budget(name: str, value: float | None, integer: bool = True) -> None:
    if value is not None and (not math.isfinite(value) or value < 0):
        raise ConfigError(f"`--budget-{name}` must be >= 0 (0 = no limit), got {value:g}; e.g. --budget-{name} "
                          f"{'3' if integer else '3600'}")


def _summary(ws: Any, st: Any) -> None:
    from autoresearch.pipeline.report import version_label

    kept = [version_label(v) for v in st.versions if v.status == "kept"]
    items: dict[str, Any] = {
        "workspace": str(ws.root),
        "status": st.status,
        "stage": st.stage,
        "versions": len(st.versions),
        "kept": ", ".join(kept) or "-",
        "trials": st.budget_used.trials,
        "seconds": round(st.budget_used.seconds, 1),
    }
    if st.status == "waiting":
        stage, _, label = st.waiting_for.partition(":")
        items["waiting_for"] = f"{stage} gate of {label}"
        items["next"] = (f"autoresearch research gate approve|revise|reject --workspace {ws.root} [--note TEXT], "
                         f"then autoresearch research resume --workspace {ws.root}")
    elif st.status == "escalated":
        items["next"] = (f"read {ws.root / 'logs' / 'errors.log'}; `autoresearch research resume --workspace "
                         f"{ws.root}` goes on with the next idea")
    if (ws.root / "report.md").is_file():
        items["report"] = str(ws.root / "report.html")
        items["idea_log"] = str(ws.root / "ideas" / "idea_log.md")
    print_summary(items)


def register(app: typer.Typer) -> None:
    research = typer.Typer(help="Research workspaces: ideas implemented in git worktrees, proven baseline-safe, "
                                "studied to a verdict, revised until one wins (docs/pipeline.md).",
                           no_args_is_help=True)
    app.add_typer(research, name="research")

    @research.command("init")
    def init_cmd(
        directory: str = typer.Argument(..., help="folder to make a research workspace (created if missing)"),
        testbed: str = typer.Option(..., "--testbed", help="lm, codegen, module.path:Class or path/file.py:Class"),
        preset: str = typer.Option("", "--preset", help="the studies' preset (default: the testbed's)"),
    ) -> None:
        """Make DIR a git repository holding an editable copy of the testbed's research surface + workspace.yaml."""
        from autoresearch.pipeline.workspace import init_workspace

        ws = init_workspace(directory, testbed, preset=preset or None)
        print_summary({"workspace": str(ws.root), "testbed": ws.file.testbed, "base_testbed": ws.file.base_testbed,
                       "editable": ", ".join(ws.file.editable), "protected": ", ".join(ws.file.protected),
                       "preset": ws.file.study.preset, "metric": ws.file.study.metric.name,
                       "next": f"autoresearch research run --workspace {ws.root}"})

    @research.command("run")
    def run_cmd(
        idea: str = typer.Argument("", help="the idea in words (empty: explore the testbed's flag space)"),
        workspace: str = typer.Option(".", "--workspace", "-w", help=_WS_HELP),
        planner: str = typer.Option("none", "--planner", help="planner role: none"),
        coder: str = typer.Option("none", "--coder", help="coder role: none, patch:FILE, cmd:PATH, claude, codex, "
                                                         "aider"),
        judge: str = typer.Option("rules", "--judge", help="judge role: rules"),
        analyzer: str = typer.Option("rules", "--analyzer", help="analyzer role: rules"),
        reviser: str = typer.Option("none", "--reviser", help="reviser role: none"),
        gate: list[str] = typer.Option([], "--gate", help="STAGE=MODE, e.g. implementation=human (stages: design, "
                                                          "implementation, training, analysis; modes: human, "
                                                          "auto-judge, auto); repeatable"),
        flag: list[str] = typer.Option([], "--flag", help="KEY=VALUE: the idea's value of a config key; repeatable"),
        budget_versions: int = typer.Option(None, "--budget-versions", help="versions at most (0 = no limit)"),
        budget_trials: int = typer.Option(None, "--budget-trials", help="trials at most (0 = no limit)"),
        budget_seconds: float = typer.Option(None, "--budget-seconds", help="wall-clock seconds (0 = no limit)"),
        workers: int = typer.Option(None, "--workers", help="parallel trials (default: workspace.yaml)"),
        seed: int = typer.Option(0, "--seed", help="the planner's seed"),
    ) -> None:
        """Run the pipeline on the workspace until a version is KEPT or a budget is spent; on a finished workspace this
        starts the next run (earlier versions stay in the idea log and are never proposed again)."""
        from autoresearch.pipeline.gates import parse_gates
        from autoresearch.pipeline.orchestrator import Orchestrator, Roles, RunOptions, check_user_flags

        _budget("versions", budget_versions)
        _budget("trials", budget_trials)
        _budget("seconds", budget_seconds, integer=False)
        if workers is not None and not 0 <= workers <= 1024:
            raise ConfigError(f"`--workers` must be in [0, 1024] (0 = auto), got {workers}; e.g. --workers 2")
        opts = RunOptions(idea=idea, planner=planner, coder=coder, judge=judge, analyzer=analyzer, reviser=reviser,
                          gates=parse_gates(gate), max_versions=budget_versions, max_trials=budget_trials,
                          max_seconds=budget_seconds, flags=_flags(flag), workers=workers, seed=seed)
        roles = Roles.from_options(opts)  # an unknown role spec or a missing patch file fails before anything runs
        ws = _load(workspace)
        _check_clean(ws)
        check_user_flags(ws, opts.flags, coder_edits=bool(getattr(roles.coder, "edits", True)))
        orch = Orchestrator(ws, opts, roles=roles, emit=_Printer(ws.file.study.metric.name), new_run=True)
        _summary(ws, orch.run())

    @research.command("resume")
    def resume_cmd(workspace: str = typer.Option(".", "--workspace", "-w", help=_WS_HELP)) -> None:
        """Continue the workspace's run (after a gate decision, an escalation, Ctrl-C or kill -9)."""
        from autoresearch.pipeline.orchestrator import Orchestrator, read_options

        ws = _load(workspace)
        _check_clean(ws)
        from autoresearch.pipeline.state import load_state

        st = load_state(ws)
        if st.status == "waiting":
            stage, _, label = st.waiting_for.partition(":")
            raise PipelineError(f"the run waits for a decision at the {stage} gate of {label}; decide first with "
                                f"`autoresearch research gate approve|revise|reject --workspace {ws.root}`")
        orch = Orchestrator(ws, read_options(ws), emit=_Printer(ws.file.study.metric.name))
        _summary(ws, orch.run())

    @research.command("status")
    def status_cmd(workspace: str = typer.Option(".", "--workspace", "-w", help=_WS_HELP)) -> None:
        """Where the run stands: stage, each version's status and verdict, the last events."""
        from autoresearch.pipeline.report import numbers_line, version_label
        from autoresearch.pipeline.state import load_state

        ws = _load(workspace)
        st = load_state(ws)
        for v in st.versions:
            _echo(f"{version_label(v):<32} {v.status:<13} {v.verdict or '-':<8} {numbers_line(v) or v.lesson[:100]}")
        for ev in st.history[-5:]:
            _echo(f"  {ev.at} [{ev.stage}] {ev.event}: {ev.detail}"[:200])
        _summary(ws, st)

    @research.command("gate")
    def gate_cmd(
        decision: str = typer.Argument(..., help="approve | revise | reject"),
        note: str = typer.Option("", "--note", help="why (recorded with the decision)"),
        workspace: str = typer.Option(".", "--workspace", "-w", help=_WS_HELP),
    ) -> None:
        """Decide the human gate the run waits at; then `research resume` goes on."""
        from autoresearch.pipeline.gates import decide_gate
        from autoresearch.pipeline.state import load_state, record, save_state

        ws = _load(workspace)
        st = load_state(ws)
        g = decide_gate(st, decision, note)
        record(st, g.stage, f"gate {g.decision}", f"{g.version} by human" + (f": {note}" if note else ""))
        save_state(ws, st)
        print_summary({"gate": g.stage, "version": g.version, "decision": g.decision, "note": g.note or "-",
                       "next": f"autoresearch research resume --workspace {ws.root}"})

    @research.command("report")
    def report_cmd(workspace: str = typer.Option(".", "--workspace", "-w", help=_WS_HELP)) -> None:
        """Re-render report.md, report.html and ideas/idea_log.md from pipeline.yaml."""
        from autoresearch.pipeline.report import write_idea_log, write_report
        from autoresearch.pipeline.state import load_state

        ws = _load(workspace)
        st = load_state(ws)
        log = write_idea_log(ws, st)
        md, html = write_report(ws, st)
        print_summary({"report": str(md), "html": str(html), "idea_log": str(log), "versions": len(st.versions)})

    @research.command("list")
    def list_cmd(workspace: str = typer.Option(".", "--workspace", "-w", help=_WS_HELP)) -> None:
        """Every idea version: branch, status, verdict, diff."""
        from autoresearch.pipeline.report import version_label
        from autoresearch.pipeline.state import load_state, state_exists

        ws = _load(workspace)
        st = load_state(ws) if state_exists(ws) else None
        versions = st.versions if st else []
        for v in versions:
            _echo(f"{version_label(v):<32} {v.branch:<40} {v.status:<13} {v.verdict or '-':<8} {v.diff_path or '-'}")
        print_summary({"workspace": str(ws.root), "versions": len(versions),
                       "status": st.status if st else "no run yet"})
