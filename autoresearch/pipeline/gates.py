"""Stage gates of the research pipeline: after a stage's output exists, a gate decides whether the version goes on.

Modes (per stage, from `workspace.yaml` `gates:` or `research run --gate STAGE=MODE`, the command line winning):
- `auto`: passes at once (decision approve, by `auto`);
- `auto-judge`: the judge role decides. At the implementation gate it reviews the version's evidence (diff, compile,
  lint, checks, regression) — a judge whose `review` takes `samples` (the LLM judge) is sampled that many times in
  fresh conversations and the majority decides (workspace.yaml `agents.judge_samples`, default 3); the other stages
  hold nothing a judge can review, so they pass (by `judge:<spec>`);
- `human`: the run pauses — state `status: waiting`, `waiting_for: <stage>` — and the CLI prints what to run;
  `research gate approve|revise|reject [--note ...]` records the decision and `research resume` goes on.

What a decision does (the same at every gate): `approve` — the version goes on to the next stage; `revise` — this
version stops here (its lesson is the note) and the reviser / planner proposes the next one; `reject` — the version
stops and the whole run stops (status `stopped`). Every decision is appended to the state's `gates` list, so a
resumed run finds an earlier decision instead of asking twice.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING

from autoresearch.errors import ConfigError

if TYPE_CHECKING:
    from autoresearch.agents.roles import Evidence, Judge, TaskSpec
    from autoresearch.pipeline.state import GateDecision, PipelineState

__all__ = ["GATE_MODES", "GATED_STAGES", "DECISIONS", "GateResult", "parse_gates", "gate_modes", "find_decision",
           "pass_gate", "decide_gate", "takes_samples"]

GATE_MODES = ("human", "auto-judge", "auto")
GATED_STAGES = ("ideation", "design", "implementation", "training", "analysis", "report")
"""Stages a gate may be set for (workspace.yaml lists them all). The report stage has no gate to pass: the run ends
with it, so a mode set for it is accepted and has no effect."""
DECISIONS = ("approve", "revise", "reject")


@dataclass
class GateResult:
    """What a gate said: a decision, or `wait` (a human gate with no decision yet)."""

    decision: str
    """approve | revise | reject | wait."""
    by: str = ""
    note: str = ""


def _check_pair(stage: str, mode: str, where: str) -> None:
    if stage not in GATED_STAGES:
        raise ConfigError(f"{where}: unknown stage {stage!r}; gates exist after {', '.join(GATED_STAGES)}")
    if mode not in GATE_MODES:
        raise ConfigError(f"{where}: gate mode {mode!r} for {stage} is not one of {', '.join(GATE_MODES)}; "
                          f"e.g. {stage}=human")


def parse_gates(items: list[str]) -> dict[str, str]:
    """`--gate STAGE=MODE` options -> {stage: mode}; one-line ConfigError naming a bad item and the fix."""
    out: dict[str, str] = {}
    for item in items:
        stage, eq, mode = item.partition("=")
        if not eq:
            raise ConfigError(f"--gate {item!r} must be STAGE=MODE, e.g. --gate implementation=human "
                              f"(stages: {', '.join(GATED_STAGES)}; modes: {', '.join(GATE_MODES)})")
        _check_pair(stage.strip(), mode.strip(), f"--gate {item}")
        out[stage.strip()] = mode.strip()
    return out


def gate_modes(workspace_gates: dict[str, str] | None, cli: dict[str, str] | None) -> dict[str, str]:
    """Every gated stage's mode: the command line over the workspace file over `auto`."""
    modes = {s: "auto" for s in GATED_STAGES}
    for stage, mode in (workspace_gates or {}).items():
        _check_pair(stage, mode, "workspace.yaml `gates`")
        modes[stage] = mode
    modes.update(cli or {})
    return modes


def find_decision(st: PipelineState, stage: str, version: str) -> GateDecision | None:
    """The latest decision recorded for this gate of this version, if any."""
    for g in reversed(st.gates):
        if g.stage == stage and g.version == version:
            return g
    return None


def takes_samples(judge: Judge) -> bool:
    """Whether `judge.review` accepts `samples=` (the LLM judge: N fresh conversations, the majority decides)."""
    try:
        return "samples" in inspect.signature(judge.review).parameters
    except (TypeError, ValueError):
        return False


def pass_gate(st: PipelineState, stage: str, version: str, mode: str, *, judge: Judge | None = None,
              task: TaskSpec | None = None, evidence: Evidence | None = None, judge_spec: str = "rules",
              samples: int = 1) -> GateResult:
    """Decide the gate after `stage` of `version` ("name/vk"), recording auto and judge decisions in the state; a
    human gate without a recorded decision returns `wait` (the caller pauses the run). `samples` goes to a judge
    whose review takes it (the LLM judge at the auto-judge gate); the rule-based judge is asked once."""
    from autoresearch.pipeline.state import GateDecision, now

    earlier = find_decision(st, stage, version)
    if earlier is not None:
        return GateResult(earlier.decision, earlier.by, earlier.note)
    if mode == "human":
        return GateResult("wait")
    if mode == "auto-judge" and judge is not None and task is not None and evidence is not None:
        if samples > 1 and takes_samples(judge):
            verdict = judge.review(task, evidence, samples=samples)  # type: ignore[call-arg]
        else:
            verdict = judge.review(task, evidence)
        decision, by, note = verdict.decision, f"judge:{judge_spec}", "; ".join(verdict.reasons)
    elif mode == "auto-judge":
        decision, by, note = "approve", f"judge:{judge_spec}", f"nothing for a judge to review after {stage}"
    else:
        decision, by, note = "approve", "auto", ""
    st.gates.append(GateDecision(stage=stage, version=version, mode=mode, decision=decision, note=note, by=by,
                                 at=now()))
    return GateResult(decision, by, note)


def decide_gate(st: PipelineState, decision: str, note: str = "") -> GateDecision:
    """`research gate approve|revise|reject`: record a person's decision for the gate the run waits at."""
    from autoresearch.pipeline.state import GateDecision, now

    if decision not in DECISIONS:
        raise ConfigError(f"gate decision {decision!r} is not one of {', '.join(DECISIONS)}; e.g. "
                          f"`autoresearch research gate approve`")
    if st.status != "waiting" or not st.waiting_for:
        raise ConfigError(f"no gate is waiting for a decision (pipeline status {st.status!r}); "
                          f"`autoresearch research status` shows where the run is")
    stage, _, version = st.waiting_for.partition(":")
    g = GateDecision(stage=stage, version=version, mode="human", decision=decision, note=note, by="human", at=now())
    st.gates.append(g)
    st.status, st.waiting_for = "decided", ""  # `research resume` acts on it
    return g
