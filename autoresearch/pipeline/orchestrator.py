"""The orchestrator of a research workspace: the loop idea -> design -> implementation -> training -> analysis ->
revision, version after version, until one is KEPT or a budget is spent; then the report.

"The orchestrator decides, agents execute" (DESIGN.md §7): roles never talk to each other; everything goes through
this loop and the files on disk. Each version is one `VersionRecord` in `DIR/.autoresearch/pipeline.yaml`, and its
`status` says how far it got:

    planned --design gate--> implementing --(implement_version: coder, integrity, compile, lint, flags, checks,
    regression, judge)--> implemented --implementation gate--> training --(study, training gate)--> analysed
    --analysis gate--> kept | rejected | inconclusive | crashed          (escalated: the fix loop gave up)

The state is saved after every step (atomic writes), so `kill -9` at any moment loses at most the step in flight:
a finished version is never touched again, a study continues its folder (finished trials are adopted, never trained
again), an implementation in flight starts over on a clean worktree, and every gate decision is looked up before it
is asked again. One run at a time per workspace (an `flock` on `.autoresearch/run.lock`, released by the kernel when
the process dies). Budgets (versions, trials, seconds) are checked before each new version: a version that started
is finished. What the run was started with (idea, roles, gates, budgets, flags) is kept in pipeline.yaml `options`,
so `research resume` continues with the same roles.

Language-model roles (`--agent SPEC`, or an LLM spec for one role) share one `AgentEnv` (pipeline/agent_env.py):
budgets from workspace.yaml `agents:` and `--budget-dollars/--budget-tokens/--budget-calls`, checked before every
call, and the transcript `.autoresearch/transcripts.jsonl`. `env.version` is set to the version each stage works on.
A spent LLM budget stops the run (`status: stopped`, event `budget` naming which budget; `research resume
--budget-... N` goes on); a role whose model fails (an LLMError, an answer that never validated) escalates its
version with that one line, never a traceback.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from autoresearch.errors import AutoresearchError, BudgetError, LLMError, PipelineError
from autoresearch.harness.atomic import atomic_write_text, atomic_write_yaml
from autoresearch.pipeline import gates as gate_rules
from autoresearch.pipeline.report import version_label, write_idea_log, write_report
from autoresearch.pipeline.version_study import (
    BaselineFile,
    build_study,
    read_baselines,
    run_version_study,
    summarize,
    write_baselines,
)

if TYPE_CHECKING:
    from autoresearch.agents.roles import Analysis, Analyzer, Coder, Judge, Planner, Reviser, StudySummary, TaskSpec
    from autoresearch.pipeline.state import PipelineState, VersionRecord
    from autoresearch.pipeline.workspace import Workspace

__all__ = ["RunOptions", "Roles", "Orchestrator", "FINISHED", "run_pipeline", "resume_pipeline", "read_options",
           "check_user_flags"]

_SAFE_NAME = re.compile(r"[^A-Za-z0-9_-]+")
FINISHED = ("kept", "rejected", "inconclusive", "crashed", "escalated")
"""Version statuses that end a version (its worktree is removed; nothing of it runs again)."""

Emit = Callable[[str, dict[str, Any]], None]


@dataclass
class RunOptions:
    """What `research run` was started with; stored in `.autoresearch/run.yaml` and reused by `research resume`."""

    idea: str = ""
    planner: str = "none"
    coder: str = "none"
    judge: str = "rules"
    analyzer: str = "rules"
    reviser: str = "none"
    gates: dict[str, str] = field(default_factory=dict)
    """stage -> mode given on the command line (over workspace.yaml `gates:`)."""
    max_versions: int | None = None
    """None = the workspace's `budgets.max_versions` (0 there = no limit)."""
    max_trials: int | None = None
    max_seconds: float | None = None
    flags: dict[str, str] = field(default_factory=dict)
    """`--flag KEY=VALUE`, as written."""
    workers: int | None = None
    seed: int = 0
    agent: str = ""
    """`--agent SPEC`: the language model of every role not given explicitly (already applied to the role specs)."""
    budget_dollars: float | None = None
    """LLM budget of the run in USD (None = workspace.yaml `agents.budgets.run`; 0 = no limit)."""
    budget_tokens: int | None = None
    budget_calls: int | None = None

    def uses_llm(self) -> bool:
        """Whether any role is a language model (then the run has an AgentEnv)."""
        from autoresearch.agents.role_specs import is_llm_spec

        return any(is_llm_spec(getattr(self, r)) for r in ("planner", "coder", "judge", "analyzer", "reviser"))


@dataclass
class Roles:
    planner: Planner
    coder: Coder
    judge: Judge
    analyzer: Analyzer
    reviser: Reviser

    @classmethod
    def from_options(cls, o: RunOptions, env: Any = None) -> Roles:
        """The roles of `o`; `env` (an AgentEnv) goes to the language-model ones (a standalone one when None)."""
        from autoresearch.agents.role_specs import make_role

        return cls(*(make_role(r, getattr(o, r), env=env)
                     for r in ("planner", "coder", "judge", "analyzer", "reviser")))


def read_options(ws: Workspace) -> RunOptions:
    """The options the workspace's run was started with (pipeline.yaml `options`)."""
    from autoresearch.pipeline.state import load_state, state_exists

    if not state_exists(ws):
        raise PipelineError(f"no run to resume in {ws.root} (no {ws.state_file}); start one with "
                            f"`autoresearch research run --workspace {ws.root}`")
    data = dict(load_state(ws).options or {})
    known = {f for f in RunOptions.__dataclass_fields__}
    unknown = sorted(set(data) - known)
    if unknown:
        raise PipelineError(f"{ws.state_file}: `options` has unknown key(s) {', '.join(unknown)}; remove them "
                            f"(valid: {', '.join(sorted(known))})")
    return RunOptions(**data)


@contextmanager
def _run_lock(ws: Workspace) -> Iterator[None]:
    """One runner per workspace; the kernel frees the lock when the process dies (kill -9 included)."""
    ws.state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(ws.state_dir / "run.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + 10  # a run killed a moment ago may still be releasing its children
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise PipelineError(f"another `research run`/`resume` is active in {ws.root}; wait for it, or "
                                        f"stop it first") from None
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)


class Orchestrator:
    """Drives one workspace's pipeline; construct it again on the same workspace to resume."""

    def __init__(self, ws: Workspace, options: RunOptions, *, roles: Roles | None = None,
                 emit: Emit | None = None, new_run: bool = False, env: Any = None) -> None:
        self.ws = ws
        self.o = options
        self.new_run = new_run  # `research run` (may start the next run) rather than `research resume`
        self.emit: Emit = emit or (lambda kind, data: None)
        self.st: PipelineState = _load_or_new(ws, options.idea)
        self.env = env
        """the LLM roles' AgentEnv (None when no role is a language model)."""
        if self.env is None and options.uses_llm():
            from autoresearch.pipeline.agent_env import build_agent_env

            self.env = build_agent_env(ws, run=self._run_number(), dollars=options.budget_dollars,
                                       tokens=options.budget_tokens, calls=options.budget_calls,
                                       emit=lambda kind, data: self.emit(kind, data), tried=lambda: self._tasks())
        self.roles = roles or Roles.from_options(options, self.env)
        if self.env is not None:
            from autoresearch.agents.llm.budget import check_prices
            from autoresearch.pipeline.agent_env import llm_backends

            check_prices(self.env.book, llm_backends(self.roles))  # a dollar budget needs every price, at start
        self.modes = gate_rules.gate_modes(dict(ws.file.gates or {}), options.gates)
        b = ws.file.budgets
        self.max_versions = options.max_versions if options.max_versions is not None else b.max_versions
        self.max_trials = options.max_trials if options.max_trials is not None else b.max_trials
        self.max_seconds = options.max_seconds if options.max_seconds is not None else b.max_seconds
        self._t_mark = time.monotonic()

    # --- persistence ---

    def _save(self) -> None:
        from autoresearch.pipeline.state import save_state

        t = time.monotonic()
        self.st.budget_used.seconds += t - self._t_mark
        self._t_mark = t
        save_state(self.ws, self.st)

    def _event(self, stage: str, event: str, detail: str = "") -> None:
        from autoresearch.pipeline.state import record

        record(self.st, stage, event, detail)
        self._save()
        self.emit("event", {"stage": stage, "event": event, "detail": detail})

    # --- the loop ---

    def run(self) -> PipelineState:
        """Go on from wherever the state is until a version is kept, a budget is spent, the planner has nothing left,
        a human gate waits, or an escalation stops the run; always ends by writing the report."""
        with _run_lock(self.ws):
            self.st = _load_or_new(self.ws, self.o.idea)  # fresh, now that no other runner can write it
            self._t_mark = time.monotonic()
            st = self.st
            st.options = asdict(self.o)
            unfinished = any(x.status not in FINISHED for x in st.versions)
            if st.status in ("done", "stopped", "escalated") and self.new_run and st.history and not unfinished:
                self._start_next_run(st)  # a finished workspace takes a new idea: earlier versions stay as history
            elif st.status == "done":
                self.emit("done", {"message": "the run is finished; `research report` re-renders the report, "
                                              "`research run` starts a new one"})
                return st
            elif self.new_run and st.history and st.idea != self.o.idea:
                raise PipelineError(f"{self.ws.root} has an unfinished run (idea {st.idea or '(flag space)'!r}, "
                                    f"status {st.status}); continue it with `autoresearch research resume --workspace "
                                    f"{self.ws.root}` (or decide its gate), then start the new idea")
            if not st.idea and self.o.idea:
                st.idea = self.o.idea
            if not st.base_commit:
                st.base_commit = self._head()
            if not st.integrity_hash:
                from autoresearch.pipeline.integrity import protected_hash

                st.integrity_hash = protected_hash(self.ws)
            st.status, st.waiting_for = "running", ""
            self._event(st.stage, "run", f"roles planner={self.o.planner} coder={self.o.coder} judge={self.o.judge} "
                                         f"analyzer={self.o.analyzer} reviser={self.o.reviser}")
            self._replay_observations()
            if self.env is not None:  # the spend so far, now that no other runner appends to the transcript
                from autoresearch.pipeline.agent_env import read_records

                self.env.run = st.run
                self.env.book.load(read_records(self.ws), run=st.run)
            try:
                end = self._loop()
            except BudgetError as e:
                end = self._budget_stop(str(e))
            if end in ("wait", "escalated", "stopped"):
                self._write_outputs()
                return self.st
            st.stage = "report"
            self._event("report", "report", end)
            st.stage, st.status = "done", "done"
            self._event("done", "done", end)
            self._write_outputs()
            return st

    def _start_next_run(self, st: PipelineState) -> None:
        """`research run` on a finished workspace: the next run, with this idea and these options, from the current
        commit; its budgets count from zero; the earlier runs' versions stay (the planner never repeats them)."""
        from autoresearch.pipeline.integrity import protected_hash
        from autoresearch.pipeline.state import BudgetUsed

        st.run, st.run_from = st.run + 1, len(st.versions)
        st.idea, st.stage, st.waiting_for = self.o.idea, "ideation", ""
        st.budget_used = BudgetUsed()
        st.base_commit, st.integrity_hash = self._head(), protected_hash(self.ws)
        self._event("ideation", "new run", f"run {st.run}: {self.o.idea or '(explore the flag space)'}")

    def _run_number(self) -> int:
        """The run the next `run()` works on (a finished workspace given a new idea starts the next one)."""
        st = self.st
        unfinished = any(x.status not in FINISHED for x in st.versions)
        nxt = st.status in ("done", "stopped", "escalated") and self.new_run and st.history and not unfinished
        return st.run + 1 if nxt else st.run

    def _loop(self) -> str:
        """Versions until a stop; returns why it stopped (a sentence, or wait / escalated / stopped)."""
        while True:
            v = next((x for x in self.st.versions if x.status not in FINISHED), None)
            if v is None:
                if any(x.status == "kept" for x in self.st.versions[self.st.run_from:]):
                    return "a version was kept"
                spent = self._budget_spent()
                if spent:
                    self._event("ideation", "budget", spent)
                    return spent
                try:
                    v = self._new_version()
                except LLMError as e:  # the planner's or the reviser's model failed: nothing to escalate but the run
                    self.st.status = "escalated"
                    self._event("ideation", "escalated", f"ideation failed: {_one_line(e)}; `autoresearch research "
                                                         f"resume` asks again")
                    return "escalated"
                if v is None:
                    return "the planner has nothing left to propose"
            try:
                end = self._advance(v)
            except LLMError as e:
                end = self._llm_escalation(v, e)
            if end:
                return end

    def _set_version(self, label: str) -> None:
        """Which version the LLM calls from now on are about (idea budgets, transcripts)."""
        if self.env is not None:
            self.env.version = label

    def _budget_stop(self, reason: str) -> str:
        """An LLM budget would be passed by the next call (which was not made): the run stops, resumable."""
        self.st.status = "stopped"
        self._event(self.st.stage, "budget", _one_line(reason))
        return "stopped"

    def _llm_escalation(self, v: VersionRecord, e: LLMError) -> str:
        """A role's model failed on `v` (no answer, or none that validated): the version escalates with the one
        line, and the run stops for a person to look (`research resume` goes on with the next idea)."""
        from autoresearch.pipeline import worktrees
        from autoresearch.pipeline.errors_log import ErrorsLog, LogEntry

        label, stage = version_label(v), self.st.stage
        reason = f"the {stage} stage's language model failed: {_one_line(e)}"
        diff = ""
        if v.worktree:
            tree = worktrees.create_version(self.ws, v.name, v.k, base=self.st.base_commit or "HEAD")
            self._save_diff(v, tree)
            diff = worktrees.diff(tree)
        ErrorsLog(self.ws.errors_log).append(LogEntry(label, "llm", 1, 1, f"{reason}\nthe calls are in "
                                                      f"{self.ws.state_dir / 'transcripts.jsonl'}", diff,
                                                      v.diff_path))
        self._finish(v, "escalated", reason)
        self.st.status = "escalated"
        self._event(stage, "escalated", f"{label}: {reason}")
        return "escalated"

    def _budget_spent(self) -> str:
        used = self.st.budget_used
        if self.max_versions and used.versions >= self.max_versions:
            return f"budget spent: {used.versions} of {self.max_versions} versions"
        if self.max_trials and used.trials >= self.max_trials:
            return f"budget spent: {used.trials} of {self.max_trials} trials"
        if self.max_seconds and used.seconds >= self.max_seconds:
            return f"budget spent: {used.seconds:.0f} of {self.max_seconds:g} seconds"
        return ""

    # --- ideation ---

    def _tasks(self, status: tuple[str, ...] | None = None) -> list[TaskSpec]:
        from autoresearch.agents.roles import TaskSpec

        return [TaskSpec.from_dict(v.task) for v in self.st.versions if status is None or v.status in status]

    def _replay_observations(self) -> None:
        """The planner's TPE history of a resumed run: every finished version's result, oldest first."""
        from autoresearch.agents.roles import TaskSpec

        for v in self.st.versions:
            if v.status in FINISHED and v.status != "escalated":
                self.roles.planner.observe(TaskSpec.from_dict(v.task), (v.metrics or {}).get("delta"),
                                           v.status == "kept")

    def _new_version(self) -> VersionRecord | None:
        """The reviser's next version of the last idea, else the planner's next idea; None = nothing left."""
        from autoresearch.agents.roles import Analysis, TaskSpec
        from autoresearch.pipeline.state import VersionRecord, now

        self.st.stage = "ideation"
        task, k = None, 1
        last = self.st.versions[-1] if self.st.versions else None
        if last is not None and last.status in ("rejected", "inconclusive", "crashed") and last.analysis:
            same = [x for x in self.st.versions if x.name == last.name and x.analysis]
            history = [(TaskSpec.from_dict(x.task), Analysis(**x.analysis)) for x in same[:-1]]
            self._set_version(version_label(last))  # the reviser's calls count to the idea it revises
            task = self.roles.reviser.revise(TaskSpec.from_dict(last.task), Analysis(**last.analysis), history)
            if task is not None:
                task.name, k = last.name, last.k + 1
        if task is None:
            self._set_version("")  # no version exists yet: the planner's calls count to the run (and its role)
            tasks = self.roles.planner.propose(self._plan_context(), 1)
            if not tasks:
                return None
            task = tasks[0]
            taken = {x.name for x in self.st.versions}
            task.name = _SAFE_NAME.sub("-", task.name).strip("-_")[:70] or "idea"  # a branch / folder name
            base, i = task.name, 2
            while task.name in taken:  # a planner's name that an earlier idea used: keep branches apart
                task.name, i = f"{base}-{i}", i + 1
        v = VersionRecord(name=task.name, k=k, branch=f"idea/{task.name}/v{k}", worktree="", status="planned",
                          task=task.to_dict(), started_at=now())
        self.st.versions.append(v)
        self.st.budget_used.versions += 1
        self._event("ideation", "proposed", f"{version_label(v)}: {task.description or task.idea}")
        return v

    def _plan_context(self) -> Any:
        from autoresearch.agents.roles import PlanContext

        testbed = self.ws.testbed() if hasattr(self.ws, "testbed") else _load_testbed(self.ws)
        d = self.ws.file.study
        base = testbed.make_config(d.preset, dict(d.overrides or {}))
        flag_space = testbed.flag_space(base) if hasattr(testbed, "flag_space") else []
        metric = d.metric if isinstance(d.metric, str) else getattr(d.metric, "name", "")
        return PlanContext(idea=self.st.idea, testbed=testbed, base_config=base, flag_space=flag_space,
                           tried=self._tasks(), kept=self._tasks(("kept",)), seed=self.o.seed, metric=metric,
                           user_flags=dict(self.o.flags), coder_edits=bool(getattr(self.roles.coder, "edits", True)),
                           idea_log=self.env.idea_log() if self.env is not None else "")

    # --- one version ---

    def _advance(self, v: VersionRecord) -> str:
        """Run `v` from its status through its remaining stages; '' when it finished and the loop goes on."""
        label = version_label(v)
        from autoresearch.agents.roles import TaskSpec

        task = TaskSpec.from_dict(v.task)
        self._set_version(label)
        if v.status == "planned":
            end = self._gate("ideation", v)
            if end is not None:
                return end
            self.st.stage = "design"
            self._write_design()
            self._write_llm_plan(v, task)
            end = self._gate("design", v)
            if end is not None:
                return end
            v.status = "implementing"
            self._event("implementation", "start", label)
        if v.status == "implementing":
            self.st.stage = "implementation"
            end = self._implement(v, task)
            if end is not None:
                return end
        if v.status == "implemented":
            end = self._gate("implementation", v, task=task)
            if end is not None:
                return end
            v.status = "training"
            self._event("training", "start", label)
        if v.status == "training":
            self.st.stage = "training"
            end = self._train(v, task)
            if end is not None:
                return end
            end = self._gate("training", v)
            if end is not None:
                return end
            self.st.stage = "analysis"
            self._analyse(v, task)
        if v.status == "analysed":
            end = self._gate("analysis", v)
            if end is not None:
                return end
            self._finish(v, _status_of(v), (v.analysis or {}).get("summary", ""))
            if v.status == "kept":
                self._event("analysis", "kept", f"{label} was KEPT")
        return ""

    def _gate(self, stage: str, v: VersionRecord, *, task: TaskSpec | None = None) -> str | None:
        """None = go on; otherwise the loop's end (wait / stopped) or '' after a `revise` that finished the version."""
        label = version_label(v)
        mode = self.modes.get(stage, "auto")
        evidence = self._read_evidence(v) if stage == "implementation" and mode == "auto-judge" else None
        res = gate_rules.pass_gate(self.st, stage, label, mode, judge=self.roles.judge, task=task,
                                   evidence=evidence, judge_spec=self.o.judge,
                                   samples=self.env.judge_samples if self.env is not None else 1)
        if res.decision == "wait":
            self.st.status, self.st.waiting_for = "waiting", f"{stage}:{label}"
            self._event(stage, "waiting", f"human gate after {stage} of {label}")
            return "wait"
        if mode != "auto":
            self._event(stage, f"gate {res.decision}", f"{label} by {res.by}{': ' + res.note if res.note else ''}")
        else:
            self._save()
        if res.decision == "approve":
            return None
        note = f"{res.decision} at the {stage} gate by {res.by}" + (f": {res.note}" if res.note else "")
        self._finish(v, "rejected", note)
        if res.decision == "reject":
            self.st.status = "stopped"
            self._event(stage, "stopped", note)
            return "stopped"
        return ""

    def _write_llm_plan(self, v: VersionRecord, task: TaskSpec) -> None:
        """A language-model planner's own plan of this version: design/<name>-v<k>.md (linked from plan.md). The
        rule-based planner's plan is plan.md itself."""
        from autoresearch.agents.role_specs import is_llm_spec

        if not is_llm_spec(self.o.planner) or v.k != 1:  # v2, v3...: the reviser's task, not the planner's plan
            return
        design = self.roles.planner.design(self._plan_context(), [task])
        path = self.ws.root / "design" / f"{v.name}-v{v.k}.md"
        atomic_write_text(path, design.plan_md.rstrip() + "\n")
        plan = self.ws.root / "design" / "plan.md"
        atomic_write_text(plan, plan.read_text() + f"\nThe planner's plan of {version_label(v)}: [{path.name}]"
                                                   f"({path.name}).\n")

    def _write_design(self) -> None:
        """design/plan.md, tasks.yaml (every version's task), metrics.yaml (the study defaults)."""
        d = self.ws.root / "design"
        d.mkdir(parents=True, exist_ok=True)
        study = self.ws.file.study
        metric = study.metric if isinstance(study.metric, str) else getattr(study.metric, "name", "val_loss")
        lines = ["# Plan", "", f"Idea: {self.st.idea or '(explore the flag space of the testbed)'}", ""]
        for v in self.st.versions:
            t = v.task
            lines.append(f"- **{version_label(v)}** ({v.status}): {t.get('description') or t.get('idea')}; expected: "
                         f"{t.get('expected_effect') or '-'}")
        lines += ["", "Each version: the flags off reproduce the baseline bit for bit (regression), flags on are the "
                      "idea arm of a study over seeds; the verdict rule is in design/metrics.yaml."]
        atomic_write_text(d / "plan.md", "\n".join(lines) + "\n")
        atomic_write_yaml(d / "tasks.yaml", {"tasks": [{"version": version_label(v), **v.task}
                                                       for v in self.st.versions]})
        from autoresearch.harness.config import to_dict

        def plain(x: Any) -> Any:
            return x if isinstance(x, (dict, str, int, float, type(None))) else to_dict(x)

        atomic_write_yaml(d / "metrics.yaml", {"primary": metric, "budget": plain(study.budget),
                                               "seeds": plain(study.seeds), "decision": plain(study.decision),
                                               "also": ["tokens_per_s", "peak_memory_mb"]})

    # --- implementation ---

    def _implement(self, v: VersionRecord, task: TaskSpec) -> str | None:
        from autoresearch.pipeline import worktrees
        from autoresearch.pipeline.implement import implement_version

        label = version_label(v)
        tree = worktrees.create_version(self.ws, v.name, v.k, base=self.st.base_commit or "HEAD")
        if v.worktree:  # a run killed during this implementation: start it over on a clean worktree
            _clean_worktree(tree)
            self._event("implementation", "restart", f"{label}: an interrupted implementation starts over")
        v.worktree, v.branch, v.base_commit = str(tree.path), tree.branch, tree.base_commit
        v.attempts = []  # errors.log keeps the attempts of an interrupted implementation
        self._save()
        self.emit("stage", {"stage": f"implementation of {label} (coder {self.o.coder})"})
        out = implement_version(self.ws, tree, task, self.roles.coder, judge=self.roles.judge,
                                log=lambda msg: self.emit("message", {"text": msg}), record=v, save=self._save)
        v.task = task.to_dict()  # the off values of flags the edit added are known now
        if out.evidence is not None:
            self._write_evidence(v, out.evidence)
        if not out.ok:
            esc = out.escalation
            kind = getattr(esc, "kind", "implementation")
            reason = getattr(esc, "reason", "") or "the implementation failed"
            self._save_diff(v, tree)
            self._finish(v, "escalated", f"escalated after the {kind} step failed: {reason}")
            if kind == "design":  # back to design: the planner proposes the next idea
                self._event("implementation", "escalated", f"{label}: {reason}; back to design")
                return ""
            self.st.status = "escalated"
            self._event("implementation", "escalated", f"{label}: {reason}; see logs/errors.log, then "
                                                        f"`autoresearch research resume` goes on with the next idea")
            return "escalated"
        self._save_diff(v, tree)
        from autoresearch.pipeline.integrity import protected_hash

        v.integrity_hash = protected_hash(self.ws)
        v.status = "implemented"
        self._event("implementation", "implemented", label)
        return None

    def _save_diff(self, v: VersionRecord, tree: Any) -> None:
        from autoresearch.pipeline import worktrees

        v.diff_path = str(worktrees.save_diff(tree).relative_to(self.ws.root))

    def _evidence_path(self, v: VersionRecord) -> Path:
        return self.ws.state_dir / "evidence" / f"{v.name}-v{v.k}.yaml"

    def _write_evidence(self, v: VersionRecord, evidence: Any) -> None:
        path = self._evidence_path(v)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_yaml(path, evidence.to_dict())

    def _read_evidence(self, v: VersionRecord) -> Any:
        from autoresearch.agents.roles import Evidence

        path = self._evidence_path(v)
        return Evidence(**(yaml.safe_load(path.read_text()) or {})) if path.is_file() else None

    # --- training and analysis ---

    def _train(self, v: VersionRecord, task: TaskSpec) -> str | None:
        from autoresearch.pipeline import worktrees

        label = version_label(v)
        baselines_path = self.ws.root / "design" / "baselines.yaml"
        baseline = read_baselines(baselines_path)
        tree = worktrees.create_version(self.ws, v.name, v.k, base=self.st.base_commit or "HEAD")
        study = build_study(self.ws, worktrees.testbed_spec(tree, self.ws), task, v.k, baseline)
        v.study_dir = str(self.ws.root / "studies" / study.name)
        # which code the study measures: its trials' folders point into the worktree, which is removed afterwards
        atomic_write_yaml(Path(v.study_dir) / "version.yaml", {
            "version": label, "branch": tree.branch, "commit": self._head(tree.path), "base_commit": tree.base_commit,
            "diff": str(worktrees.diff_file(self.ws.root, v.name, v.k)), "integrity_hash": self.st.integrity_hash})
        self._save()
        self.emit("stage", {"stage": f"training of {label}: study {study.name}"})
        try:
            sdir = run_version_study(study, self.ws.root, emit=self.emit, workers=self.o.workers)
        except AutoresearchError as e:
            self._count_trials()
            self._finish(v, "crashed", f"the study stopped: {e}")
            self.st.status = "stopped"
            self._event("training", "stopped", f"{label}: {e}")
            return "stopped"
        summary = summarize(sdir)
        self._count_trials()
        v.verdict = summary.verdict
        v.metrics = {k: _plain(getattr(summary, k)) for k in (
            "metric", "direction", "baseline_mean", "idea_mean", "delta", "ci_low", "ci_high", "p_value", "n_seeds",
            "baseline_tokens_per_s", "idea_tokens_per_s", "baseline_memory", "idea_memory")}
        code = self._verdict_code(sdir)
        if code:
            v.metrics["code"] = code
        if baseline.value is None:
            self._record_baseline(sdir, summary, study.name, baseline)
        self._summary_cache = summary
        self._event("training", "verdict", f"{label}: {summary.verdict}")
        return None

    def _verdict_code(self, sdir: Path) -> str:
        from autoresearch.research.state import StudyState

        v = StudyState.load(sdir / "state.json").verdicts.get("idea")
        return v.code if v else ""

    def _record_baseline(self, sdir: Path, summary: StudySummary, name: str, baseline: BaselineFile) -> None:
        from autoresearch.research.state import StudyState

        st = StudyState.load(sdir / "state.json")
        value = st.baseline.measured
        if value is None:
            return
        n = len(st.baseline.values)
        source = f"measured by study {name} ({n} baseline seeds, {st.created_at[:10]})"
        write_baselines(self.ws.root / "design" / "baselines.yaml",
                        BaselineFile(float(value), baseline.tolerance, source, summary.metric))
        from autoresearch.research.study import BaselineRecord

        self.st.baseline = BaselineRecord(value=float(value), tolerance=baseline.tolerance, source=source)

    def _count_trials(self) -> None:
        import json

        n = 0
        for v in self.st.versions[self.st.run_from:]:  # this run's trials (the budget counts per run)
            p = Path(v.study_dir) / "state.json" if v.study_dir else None
            if p is not None and p.is_file():
                try:
                    n += len(json.loads(p.read_text()).get("trials", {}))
                except (OSError, ValueError):
                    pass
        self.st.budget_used.trials = n

    def _analyse(self, v: VersionRecord, task: TaskSpec) -> None:
        summary = getattr(self, "_summary_cache", None) or summarize(Path(v.study_dir))
        analysis: Analysis = self.roles.analyzer.analyze(task, summary)
        v.analysis = analysis.to_dict()
        path = Path(v.study_dir) / "analysis.md"
        ev = "\n".join(f"- {k}: {_readable(x)}" for k, x in analysis.evidence.items())
        text = str(getattr(analysis, "text", "") or "").strip()  # an LLM analyzer's reasoning (Markdown)
        atomic_write_text(path, f"# Analysis of {version_label(v)}\n\nKind: **{analysis.kind}**\n\n"
                                f"{analysis.summary}\n\n" + (f"## Reasoning\n\n{text}\n\n" if text else "")
                                + f"## Evidence\n\n{ev}\n")
        v.status = "analysed"
        self._event("analysis", analysis.kind, f"{version_label(v)}: {analysis.summary}")

    # --- the end of a version, of the run ---

    def _finish(self, v: VersionRecord, status: str, lesson: str) -> None:
        from autoresearch.pipeline import worktrees
        from autoresearch.pipeline.state import now

        v.status, v.lesson, v.finished_at = status, lesson, now()
        if v.worktree:
            tree = worktrees.create_version(self.ws, v.name, v.k, base=self.st.base_commit or "HEAD")
            worktrees.remove(tree)
            v.worktree = ""
        if status != "escalated":
            from autoresearch.agents.roles import TaskSpec

            self.roles.planner.observe(TaskSpec.from_dict(v.task), (v.metrics or {}).get("delta"), status == "kept")
        self._event(self.st.stage, f"version {status}", f"{version_label(v)}: {lesson}")
        write_idea_log(self.ws, self.st)

    def _write_outputs(self) -> None:
        write_idea_log(self.ws, self.st)
        md, html = write_report(self.ws, self.st)
        self.emit("report", {"markdown": str(md), "html": str(html)})

    def _head(self, checkout: Path | None = None) -> str:
        import subprocess

        where = str(checkout or self.ws.root)
        r = subprocess.run(["git", "-C", where, "rev-parse", "HEAD"], capture_output=True, text=True)
        return r.stdout.strip()


def _one_line(e: BaseException | str) -> str:
    """An error as one line (a model's message may span several)."""
    return " ".join(str(e).split())[:600]


def _clean_worktree(tree: Any) -> None:
    """Back to the version's base commit with no stray files: what a killed coder or a commit of an interrupted
    implementation left in the version's own worktree (never the user's checkout) is dropped."""
    from autoresearch.pipeline._git import git

    git(tree.path, "reset", "--quiet", "--hard", tree.base_commit)
    git(tree.path, "clean", "-fdq")


def _load_or_new(ws: Workspace, idea: str) -> PipelineState:
    from autoresearch.pipeline.state import load_state, new_state, state_exists

    return load_state(ws) if state_exists(ws) else new_state(idea)


def _status_of(v: VersionRecord) -> str:
    verdict = v.verdict
    if verdict == "KEEP":
        return "kept"
    if verdict == "CRASH":
        return "crashed"
    if (v.metrics or {}).get("code") in ("max_seeds", "inconclusive"):
        return "inconclusive"
    return "rejected"


def _plain(x: Any) -> Any:
    import math

    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _readable(x: Any) -> str:
    """An evidence value for analysis.md: floats to 4 significant digits, mappings as `k: v` pairs, lists joined."""
    if isinstance(x, float):
        return "n/a" if _plain(x) is None else f"{x:.4g}"
    if isinstance(x, dict):
        return "; ".join(f"{k}: {_readable(v)}" for k, v in x.items()) or "-"
    if isinstance(x, (list, tuple)):
        return ", ".join(_readable(v) for v in x) or "-"
    return str(x)


def _load_testbed(ws: Workspace) -> Any:
    from autoresearch.testbeds.base import get_testbed

    spec = ws.file.testbed
    if ".py:" in spec and not Path(spec.split(":")[0]).is_absolute():
        spec = str(ws.root / spec)
    return get_testbed(spec)


def check_user_flags(ws: Workspace, flags: dict[str, str], *, coder_edits: bool) -> None:
    """`--flag KEY=VALUE` before anything runs: a key of the workspace's config must take the value (one ConfigError
    line naming the flag, else the run would escalate on it later); a key the config lacks is refused unless the
    coder edits code (it may add the flag: its value is then checked after the edit)."""
    from autoresearch.errors import ConfigError
    from autoresearch.harness.config import to_dict

    if not flags:
        return
    study = ws.file.study
    tb = ws.testbed()
    cfg = tb.make_config(study.preset, dict(study.overrides))
    base = to_dict(cfg)
    for key, value in flags.items():
        node: Any = base
        for part in key.split("."):
            node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
        if node is _MISSING:
            if not coder_edits:
                raise ConfigError(f"--flag {key}={value}: the workspace's config has no `{key}` and coder none adds no "
                                  f"code; pick a key from `autoresearch train {ws.file.base_testbed} --list-flags`, "
                                  f"or a coder that adds the flag (patch:FILE, cmd:PATH, ...)")
            continue
        try:
            tb.with_overrides(cfg, [f"{key}={value}"])
        except ConfigError as e:
            raise ConfigError(f"--flag {key}={value}: {e}") from None


_MISSING = object()


def run_pipeline(ws: Workspace, options: RunOptions, *, emit: Emit | None = None) -> PipelineState:
    """`research run`: start the workspace's pipeline with these options (the next run when the last one finished;
    the same unfinished run when the idea is the same; PipelineError when an unfinished run has another idea)."""
    return Orchestrator(ws, options, emit=emit, new_run=True).run()


def resume_pipeline(ws: Workspace, *, emit: Emit | None = None) -> PipelineState:
    """`research resume`: continue with the options the run was started with."""
    return Orchestrator(ws, read_options(ws), emit=emit).run()
