"""`autoresearch research ...`: research workspaces and the pipeline that implements, verifies and studies ideas.

    autoresearch research init DIR --testbed lm|codegen|module.path:Class|path/file.py:Class [--preset tiny]
    autoresearch research run ["IDEA"] [--workspace DIR] [--agent LLM] [--planner none|LLM] [--coder none|patch:FILE|
        cmd:PATH|claude|codex|aider|LLM] [--judge rules|LLM] [--analyzer rules|LLM] [--reviser none|LLM]
        [--gate STAGE=MODE ...] [--flag KEY=VALUE ...] [--budget-versions N] [--budget-trials N] [--budget-seconds S]
        [--budget-dollars USD] [--budget-tokens N] [--budget-calls N] [--workers N]
    autoresearch research resume [--budget-dollars USD] [--budget-tokens N] [--budget-calls N] [--workspace DIR]
    autoresearch research status|report|list [--workspace DIR]

LLM = openai:MODEL[@URL] | anthropic:MODEL | litellm:MODEL | replay:FILE | scripted:FILE (docs/agents.md).
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
from autoresearch.errors import AutoresearchError, ConfigError, PipelineError

__all__ = ["register"]

_WS_HELP = "the research workspace (a folder made by `research init`)"
_LLM = "openai:MODEL, openai:MODEL@URL, anthropic:MODEL, litellm:MODEL, replay:FILE, scripted:FILE"  # no [..]: rich markup
_LLM_HELP = f"or a language model: {_LLM} (default: --agent, else {{}})"


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
        elif kind == "llm":
            _echo(f"{t} {d['text']}")
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


def _absolute_files(spec: str) -> str:
    """`scripted:FILE` / `replay:FILE` with FILE made absolute, so that `research resume` from another folder finds
    it (the spec is stored with the run's options)."""
    from pathlib import Path

    scheme, sep, arg = spec.partition(":")
    if sep and scheme.strip() in ("scripted", "replay") and arg.strip():
        return f"{scheme.strip()}:{Path(arg.strip()).expanduser().resolve()}"
    return spec


def _role_specs(agent: str, given: dict[str, str]) -> dict[str, str]:
    from autoresearch.agents.role_specs import resolve_specs

    return {role: _absolute_files(spec) for role, spec in resolve_specs(given, _absolute_files(agent)).items()}


def _llm_budgets(dollars: float | None, tokens: int | None, calls: int | None) -> dict[str, Any]:
    _budget("dollars", dollars, integer=False)
    _budget("tokens", tokens)
    _budget("calls", calls)
    return {"budget_dollars": dollars, "budget_tokens": tokens, "budget_calls": calls}


def _spend_lines(ws: Any) -> tuple[list[str], dict[str, Any]]:
    """`research status`'s per-role LLM spend table and the summary items (both empty without LLM calls)."""
    from autoresearch.pipeline.agent_env import read_records

    try:
        records = read_records(ws)
    except AutoresearchError as e:
        return [f"llm transcript: {e}"], {}
    if not records:
        return [], {}
    from autoresearch.pipeline.transcript_md import spend_rows

    lines = [f"{'role':<10} {'calls':>6} {'tokens in':>11} {'tokens out':>11} {'cost':>12} {'seconds':>8}"]
    lines += [f"{r[0]:<10} {r[1]:>6} {r[2]:>11} {r[3]:>11} {r[4]:>12} {r[5]:>8}" for r in spend_rows(records)]
    calls = len(records)
    tokens = sum(int((r.get("usage") or {}).get("prompt", 0)) + int((r.get("usage") or {}).get("completion", 0))
                 for r in records)
    known = [float(r["cost_usd"]) for r in records if r.get("cost_usd") is not None]
    cost = f"{sum(known):.4f}" + ("" if len(known) == calls else f" (+{calls - len(known)} calls of unknown cost)")
    return lines, {"llm_calls": calls, "llm_tokens": tokens, "llm_cost_usd": cost}


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
    elif st.status == "escalated" and st.history and st.history[-1].stage == "ideation":
        items["error"] = st.history[-1].detail.split("; `autoresearch research resume`")[0]
        items["next"] = (f"autoresearch research resume --workspace {ws.root} asks the planner's or reviser's model "
                         f"again (the calls are in {ws.state_dir / 'transcripts.jsonl'})")
    elif st.status == "escalated":
        items["next"] = (f"read {ws.root / 'logs' / 'errors.log'}; `autoresearch research resume --workspace "
                         f"{ws.root}` goes on with the next idea")
    elif st.status == "stopped" and st.history and st.history[-1].event == "budget":
        items["stopped_by"] = st.history[-1].detail
        items["next"] = (f"autoresearch research resume --workspace {ws.root} with a higher --budget-dollars/"
                         "--budget-tokens/--budget-calls (or raise workspace.yaml agents.budgets and commit it)")
    items.update(_spend_lines(ws)[1])
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
        agent: str = typer.Option("", "--agent", help=f"the language model of every role not given explicitly: {_LLM}"),
        planner: str = typer.Option("", "--planner", help="planner role: none, " + _LLM_HELP.format("none")),
        coder: str = typer.Option("", "--coder", help="coder role: none, patch:FILE, cmd:PATH, claude, codex, aider, "
                                                     + _LLM_HELP.format("none")),
        judge: str = typer.Option("", "--judge", help="judge role: rules, " + _LLM_HELP.format("rules")),
        analyzer: str = typer.Option("", "--analyzer", help="analyzer role: rules, " + _LLM_HELP.format("rules")),
        reviser: str = typer.Option("", "--reviser", help="reviser role: none, " + _LLM_HELP.format("none")),
        gate: list[str] = typer.Option([], "--gate", help="STAGE=MODE, e.g. implementation=human (stages: design, "
                                                          "implementation, training, analysis; modes: human, "
                                                          "auto-judge, auto); repeatable"),
        flag: list[str] = typer.Option([], "--flag", help="KEY=VALUE: the idea's value of a config key; repeatable"),
        budget_versions: int = typer.Option(None, "--budget-versions", help="versions at most (0 = no limit)"),
        budget_trials: int = typer.Option(None, "--budget-trials", help="trials at most (0 = no limit)"),
        budget_seconds: float = typer.Option(None, "--budget-seconds", help="wall-clock seconds (0 = no limit)"),
        budget_dollars: float = typer.Option(None, "--budget-dollars", help="LLM spend of the run in USD (0 = no "
                                             "limit; default: workspace.yaml agents.budgets.run)"),
        budget_tokens: int = typer.Option(None, "--budget-tokens", help="LLM tokens of the run (0 = no limit)"),
        budget_calls: int = typer.Option(None, "--budget-calls", help="LLM calls of the run (0 = no limit)"),
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
        llm_budgets = _llm_budgets(budget_dollars, budget_tokens, budget_calls)
        if workers is not None and not 0 <= workers <= 1024:
            raise ConfigError(f"`--workers` must be in [0, 1024] (0 = auto), got {workers}; e.g. --workers 2")
        specs = _role_specs(agent, {"planner": planner, "coder": coder, "judge": judge, "analyzer": analyzer,
                                    "reviser": reviser})
        from autoresearch.agents.llm.redact import redact_text

        idea = redact_text(idea)  # a key pasted into the idea must not reach pipeline.yaml, the report or a model
        opts = RunOptions(idea=idea, **specs, gates=parse_gates(gate), max_versions=budget_versions,
                          max_trials=budget_trials, max_seconds=budget_seconds, flags=_flags(flag), workers=workers,
                          seed=seed, agent=_absolute_files(agent), **llm_budgets)
        if idea.strip() and not flag and specs["planner"] == "none" and specs["coder"] == "none":
            _echo("note: planner none does not read the idea's words: it explores the testbed's flag space; give "
                  "--flag KEY=VALUE, a coder that edits, or an LLM planner (--planner/--agent) to run this idea")
        roles = None
        if not opts.uses_llm():
            roles = Roles.from_options(opts)  # an unknown role spec or a missing patch file fails before anything runs
        ws = _load(workspace)
        _check_clean(ws)
        # the language-model roles are made with the run's AgentEnv (budgets, transcript): by the orchestrator, which
        # refuses a bad spec, a missing key or a dollar budget on an unpriced model here, before anything runs
        orch = Orchestrator(ws, opts, roles=roles, emit=_Printer(ws.file.study.metric.name), new_run=True)
        check_user_flags(ws, opts.flags, coder_edits=bool(getattr(orch.roles.coder, "edits", True)))
        _summary(ws, orch.run())

    @research.command("resume")
    def resume_cmd(
        workspace: str = typer.Option(".", "--workspace", "-w", help=_WS_HELP),
        budget_dollars: float = typer.Option(None, "--budget-dollars", help="a new LLM budget of the run in USD "
                                             "(0 = no limit; default: the run's own)"),
        budget_tokens: int = typer.Option(None, "--budget-tokens", help="a new LLM token budget (0 = no limit)"),
        budget_calls: int = typer.Option(None, "--budget-calls", help="a new LLM call budget (0 = no limit)"),
    ) -> None:
        """Continue the workspace's run (after a gate decision, an escalation, a spent LLM budget, Ctrl-C or kill -9);
        `--budget-dollars/--budget-tokens/--budget-calls` replace the run's LLM budgets."""
        import dataclasses

        from autoresearch.pipeline.orchestrator import Orchestrator, read_options

        llm_budgets = {k: v for k, v in _llm_budgets(budget_dollars, budget_tokens, budget_calls).items()
                       if v is not None}

        ws = _load(workspace)
        _check_clean(ws)
        from autoresearch.pipeline.state import load_state

        st = load_state(ws)
        if st.status == "waiting":
            stage, _, label = st.waiting_for.partition(":")
            raise PipelineError(f"the run waits for a decision at the {stage} gate of {label}; decide first with "
                                f"`autoresearch research gate approve|revise|reject --workspace {ws.root}`")
        opts = dataclasses.replace(read_options(ws), **llm_budgets)
        orch = Orchestrator(ws, opts, emit=_Printer(ws.file.study.metric.name))
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
        for line in _spend_lines(ws)[0]:  # the language-model spend per role, from the transcript
            _echo(line)
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
