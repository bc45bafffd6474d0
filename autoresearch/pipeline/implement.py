"""The implementation stage of one idea version: the coder edits the version's worktree, and the edit is proven
harmless to the baseline before any study runs it (issue 10 §5).

One attempt = coder -> allowed paths and harness integrity (`protected`) -> compile and lint of the edited Python
files (`compile`, `lint`) -> the task's flags exist with their declared off value as the config default (`design`)
-> the testbed's integration checks with the flags on (`checks`) -> the baseline-path regression: a short run with
every flag off must give per-step losses bit-identical to the trace of the unedited base commit (`regression`) ->
the judge's review (`review`). A failed step goes through the fix loop (fix_loop.py): its capped error is the
coder's feedback for the next attempt, 3 attempts per kind, then an Escalation; `design` and `protected` escalate at
once. A passing edit is committed on the version's branch.

Process boundaries: this module runs in the orchestrator's process; everything that imports the worktree's code —
the flag probe, the checks with the flags on, the short run with the flags off — runs in ONE child per attempt
(`python -m autoresearch.pipeline.implement JOB.json`, `child_main` below: one interpreter and one torch import) in
its own process group, killed with its group on timeout, with the worktree's testbed spec, so it runs THAT worktree's
code (a module loaded in this process would also stay cached across the coder's attempts).
The base commit's trace is recorded once per base commit, declared short run and machine fingerprint under
`<ws>/.autoresearch/traces/`, from a temporary detached worktree of the base commit (two runs that must agree, which
proves the short run is deterministic); research/regression.py reads and compares the traces.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autoresearch.agents.coders.process import run_in_group
from autoresearch.errors import PipelineError
from autoresearch.harness.atomic import atomic_write_text, file_lock
from autoresearch.pipeline import integrity, worktrees
from autoresearch.pipeline._git import git
from autoresearch.pipeline.errors_log import ErrorsLog, cap_error
from autoresearch.pipeline.fix_loop import Escalation, Failure, FixLoop, error_gist
from autoresearch.research import regression as reg

if TYPE_CHECKING:
    from autoresearch.agents.roles import Coder, Evidence, Judge, TaskSpec, Verdict
    from autoresearch.pipeline.state import Attempt, VersionRecord
    from autoresearch.pipeline.workspace import Workspace
    from autoresearch.pipeline.worktrees import VersionTree

__all__ = ["ImplementSettings", "ImplementOutcome", "implement_version", "base_trace",
           "compile_errors", "lint_errors", "child_main"]

Log = Callable[[str], None]


@dataclass
class ImplementSettings:
    """Budgets of the verification runs (small: they run on every attempt)."""

    regression_steps: int = 8
    """optimizer steps of the short baseline-path run (every step's loss compared bit for bit)."""
    check_steps: int = 4
    """steps of the integration checks' short training (the testbed runs at least 4)."""
    seed: int = 0
    timeout_s: float = 900.0
    """each child process (probe, checks, short run) is killed with its process group after this many seconds."""
    threads: int = 1
    """torch threads of each child process."""
    parallel: bool = True
    """record the base commit's two trace runs side by side, next to the attempt's own child (first time only)."""
    lint: bool = True
    verify_unchanged: bool = False
    """also run the checks and the regression when the worktree equals the base commit (coder `none`): the code is
    then the base's own, so by default both are skipped (said so in the evidence)."""


@dataclass
class ImplementOutcome:
    """The result of the implementation stage for one version."""

    ok: bool
    attempts: list[Attempt] = field(default_factory=list)
    evidence: Evidence | None = None
    escalation: Escalation | None = None
    verdict: Verdict | None = None
    commit: str | None = None
    """the commit of the passing edit on the version's branch (None: nothing to commit, or not ok)."""
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    """seconds per step of the last attempt (coder, integrity, compile, lint, probe, checks, regression, review)."""


# --- the stage ------------------------------------------------------------------------------------------------------


def implement_version(ws: Workspace, tree: VersionTree, task: TaskSpec, coder: Coder, *, judge: Judge,
                      log: Log | None = None, record: VersionRecord | None = None,
                      save: Callable[[], None] | None = None,
                      settings: ImplementSettings | None = None) -> ImplementOutcome:
    """Run the coder on `tree` for `task` until the edit passes every step and the judge approves, or escalate.

    Each failed attempt is appended to `ws`'s errors.log (with its diff) and to `record.attempts` (then `save()` is
    called, so pipeline.yaml shows it at once). A coder that makes no edits (`coder.edits` False) gets one try: a
    failure escalates at once. Raises PipelineError only for what is not the edit's fault (the base commit's own
    short run crashes or is not deterministic, git fails)."""
    st = settings or ImplementSettings()
    say = log or (lambda _msg: None)
    t_start = time.perf_counter()
    version = tree.label

    def on_attempt(a: Attempt) -> None:
        if record is not None:
            record.attempts.append(a)
            if save is not None:
                save()

    loop = FixLoop(version, ErrorsLog(ws.errors_log), ws.logs_dir / "attempts", root=ws.root, on_attempt=on_attempt,
                   task_line=f"task {task.name!r}: {task.description}")
    work = Path(ws.state_dir) / "implement" / version.replace("/", "-")
    while True:
        run = _Attempt(ws, tree, task, st, work, say)
        failure = run.steps(coder, loop.feedback)
        evidence = run.evidence
        verdict = None
        if failure is None:
            t0 = time.perf_counter()
            verdict = judge.review(task, evidence)
            run.timings["review"] = time.perf_counter() - t0
            if verdict.decision != "approve":
                failure = Failure("review", f"judge ({getattr(judge, 'spec', '') or type(judge).__name__}) says "
                                            f"{verdict.decision}: " + "; ".join(verdict.reasons or ["no reason given"]))
        if failure is None:
            commit = worktrees.commit_edit(tree, f"autoresearch: {version} {task.name}: {task.description}"[:200])
            say(f"implementation of {version} passed ({_summary(run.timings)})")
            return ImplementOutcome(True, list(loop.attempts), evidence, None, verdict, commit,
                                    time.perf_counter() - t_start, dict(run.timings))
        at_once = not getattr(coder, "edits", True) or (failure.kind == "review" and verdict is not None
                                                        and verdict.decision == "reject")
        say(f"{version}: {failure.kind} failed (attempt {loop.counts[failure.kind] + 1}): "
            f"{_first_line(failure.error)}")
        escalation = loop.fail(failure, run.diff, at_once=at_once)
        if escalation is not None:
            say(f"{version}: escalated ({escalation.reason})")
            return ImplementOutcome(False, list(loop.attempts), evidence, escalation, verdict, None,
                                    time.perf_counter() - t_start, dict(run.timings))


class _Attempt:
    """The steps of one attempt; each returns a Failure or None and fills `evidence`."""

    def __init__(self, ws: Workspace, tree: VersionTree, task: TaskSpec, st: ImplementSettings, work: Path,
                 say: Log) -> None:
        from autoresearch.agents.roles import Evidence

        self.ws, self.tree, self.task, self.st, self.say, self.work = ws, tree, task, st, say, work
        self.evidence = Evidence()
        self.details: list[str] = []
        self.timings: dict[str, float] = {}
        self.diff = ""
        self.spec = ws.testbed_spec(tree.path)

    def _timed(self, name: str, fn: Callable[[], Failure | None]) -> Failure | None:
        t0 = time.perf_counter()
        try:
            return fn()
        finally:
            self.timings[name] = round(time.perf_counter() - t0, 3)

    def _note(self, line: str) -> None:
        self.details.append(line)
        self.evidence.details = "\n".join(self.details)

    def steps(self, coder: Coder, feedback: str | None) -> Failure | None:
        ev = self.evidence
        before = integrity.protected_hash(self.ws)  # before and after every edit (issue 10 §2)
        if getattr(coder, "edits", True):
            self.say(f"coder {getattr(coder, 'spec', '') or type(coder).__name__} on {self.tree.path}")
            failure = self._timed("coder", lambda: self._coder(coder, feedback))
            self.diff = ev.diff = worktrees.diff(self.tree)
            if failure:
                return failure
        else:
            self.diff = ev.diff = worktrees.diff(self.tree)
        changed = worktrees.changed_paths(self.tree)
        ev.changed_paths = changed
        for name, fn in (("integrity", lambda: self._integrity(before)), ("compile", lambda: self._compile(changed)),
                         ("lint", lambda: self._lint(changed))):
            failure = self._timed(name, fn)
            if failure:
                return failure
        if not changed and not self.st.verify_unchanged:
            failure = self._verify(["probe"])
            if failure is None:
                ev.checks_ok = ev.regression_ok = True
                self._note("checks and regression skipped: no code change (the worktree is the base commit)")
            return failure
        return self._verify(["probe", "checks", "short_run"])

    # --- the steps ------------------------------------------------------------------------------------------------

    def _coder(self, coder: Coder, feedback: str | None) -> Failure | None:
        res = coder.implement(self.task, Path(self.tree.path), feedback)
        if res.ok:
            return None
        code = "" if res.exit_code is None else f" (exit code {res.exit_code})"
        return Failure("coder", f"the coder failed{code}:\n{res.log}")

    def _integrity(self, before: str) -> Failure | None:
        problems = integrity.check_edit(self.ws, self.tree, None, before)
        self.evidence.editable_ok = not problems
        if problems:
            self._note("refused: " + "; ".join(problems))
            return Failure("protected", f"the edit is refused: {'; '.join(problems)} (the edit is kept in "
                                        f"{self.tree.path} for a person to see, not reverted)")
        return None

    def _compile(self, changed: list[str]) -> Failure | None:
        errors = compile_errors(Path(self.tree.path), changed)
        self.evidence.compile_ok = not errors
        if errors:
            self._note(f"compile: {len(errors)} file(s) do not compile")
            return Failure("compile", "\n".join(errors))
        return None

    def _lint(self, changed: list[str]) -> Failure | None:
        if not self.st.lint:
            self.evidence.lint_ok = True
            return None
        out = lint_errors(Path(self.tree.path), changed)
        self.evidence.lint_ok = out is None
        if out:
            self._note("lint: ruff found errors (F, E9)")
            return Failure("lint", out)
        return None

    def _verify(self, stages: list[str]) -> Failure | None:
        """One child process runs the stages in order (one interpreter and one torch import per attempt): the flag
        probe, the checks with the flags on, the short run with the flags off; the base trace is recorded meanwhile
        (first time only). The first failed stage is the attempt's failure."""
        t0 = time.perf_counter()
        job = {"testbed": self.spec, "preset": _study(self.ws)[0], "overrides": _study(self.ws)[1],
               "flags": [f.to_dict() for f in self.task.flags], "before_testbed": self.ws.testbed_spec(),
               "stages": stages,
               "check_steps": self.st.check_steps, "regression_steps": self.st.regression_steps, "seed": self.st.seed}
        with ThreadPoolExecutor(1) as pool:
            base = pool.submit(base_trace, self.ws, self.tree.base_commit, self.st, self.say) \
                if "short_run" in stages else None
            res, error = run_child(job, self.work, cwd=Path(self.tree.path), st=self.st)
            recorded = base.result() if base is not None else None  # a PipelineError of the base's own run raises
        for stage in stages:
            self.timings[stage] = float(res.get(stage, {}).get("seconds", 0.0))
        self.timings["verify"] = round(time.perf_counter() - t0, 3)
        for stage in stages:
            out = res.get(stage)
            if out is None or "error" in out:
                why = out["error"] if out is not None else error
                self._note(f"{stage}: crashed")
                return Failure(_STAGE_KIND[stage], f"{_STAGE_WHAT[stage]} crashed:\n{why}")
            failure = getattr(self, f"_judge_{stage}")(out, recorded)
            if failure:
                return failure
        return None

    def _judge_probe(self, out: dict[str, Any], _recorded: Any) -> Failure | None:
        """The task's flags are config fields whose default (in the workspace's baseline config) is the declared
        off value, and the on values build a valid config."""
        for f in self.task.flags:  # off values of keys the edit added, read from the edited config's defaults
            if f.off is None and f.key in out.get("completed", {}):
                f.off = out["completed"][f.key]
        problems = [f"flag {k!r} is not a field of the config" for k in out["missing"]]
        problems += [f"flag {k!r}: its config default is {d!r} but the task declares off = {off!r}; the off value "
                     f"must be the default, so that flag off = the baseline" for k, d, off in out["wrong_off"]]
        problems += [out["design_error"]] if out.get("design_error") else []
        if problems:
            self._note("design: " + "; ".join(problems))
            return Failure("design", "the task cannot run as declared: " + "; ".join(problems)
                           + " — change the task's flags (design) or the config")
        if out.get("flags") is not None:
            from autoresearch.agents.roles import Flag

            flags = [Flag.from_dict(dict(f)) for f in out["flags"]]
            if [f.to_dict() for f in flags] != [f.to_dict() for f in self.task.flags]:
                self._note("flags completed from the edited config: " + ", ".join(
                    f"{f.key} off={f.off!r} on={f.on!r}" for f in flags))
            self.task.flags[:] = flags  # the orchestrator records the task with the off values the edit defined
        if out["on_error"]:
            self._note(f"flags on: {out['on_error']}")
            return Failure("checks", f"the config refuses the task's on values {self.task.on_overrides()}: "
                                     f"{out['on_error']}")
        return None

    def _judge_checks(self, out: dict[str, Any], _recorded: Any) -> Failure | None:
        failed = [c for c in out["checks"] if c.get("status") != "pass"]
        self.evidence.checks_ok = not failed
        if failed:
            lines = [f"{c['name']}: {c.get('status')} — {c.get('detail', '')}" for c in failed]
            self._note("checks failed: " + "; ".join(c["name"] for c in failed))
            return Failure("checks", "integration checks failed with the task's flags on:\n" + "\n".join(lines))
        self._note(f"checks: {len(out['checks'])} passed with the flags on")
        return None

    def _judge_short_run(self, out: dict[str, Any], recorded: tuple[reg.Trace, Path]) -> Failure | None:
        trace, store = recorded
        off = self.task.off_overrides()
        fresh = reg.read_trace(out["exp"])
        diff = reg.first_difference(trace, fresh)
        self.evidence.regression_ok = diff is None
        if diff:
            self._note(f"regression: {diff}")
            return Failure("regression", f"with every task flag off {off} the per-step losses differ from the base "
                                         f"commit {self.tree.base_commit[:12]}'s trace ({store}): {diff}; the "
                                         f"flag-off path must leave the baseline computation exactly as it was")
        self._note(f"regression: {len(fresh.steps)} steps bit-identical to the base commit's trace")
        return None


_STAGE_KIND = {"probe": "checks", "checks": "checks", "short_run": "regression"}
_STAGE_WHAT = {"probe": "building the workspace's baseline config with the worktree's testbed",
               "checks": "the integration checks (flags on)", "short_run": "the short run with every flag off"}


# --- the base commit's trace ----------------------------------------------------------------------------------------


def base_trace(ws: Workspace, base_commit: str, st: ImplementSettings, say: Log | None = None,
               ) -> tuple[reg.Trace, Path]:
    """The recorded per-step loss trace of the base commit's short run (recorded now if missing: two runs in a
    temporary worktree of the base commit, which must agree bit for bit), and where it is stored."""
    from autoresearch.harness.provenance import machine_fingerprint

    preset, overrides = _study(ws)
    declared = {"overrides": overrides, "steps": st.regression_steps, "seed": st.seed}
    key = reg.trace_key(str(ws.file.testbed), preset, declared, machine_fingerprint())
    store = ws.traces_dir / f"{base_commit[:12]}-{key}.json"
    with file_lock(store.with_name(f".{store.name}.lock")):
        found = reg.load_trace(store)
        if found is not None:
            return found[0], store
        (say or (lambda _m: None))(f"recording the baseline trace of base commit {base_commit[:12]}")
        tmp = Path(ws.state_dir) / "tmp" / f"base-{store.stem}"  # one per trace: the lock serialises its use
        _drop_worktree(ws, tmp)  # left by a run killed while recording
        git(ws.root, "worktree", "add", "--detach", "--force", str(tmp), base_commit)
        try:
            spec = ws.testbed_spec(tmp)
            job = {"testbed": spec, "preset": preset, "overrides": overrides, "flags": [], "stages": ["short_run"],
                   "regression_steps": st.regression_steps, "seed": st.seed}
            work = Path(ws.state_dir) / "implement" / f"base-{base_commit[:12]}"
            with ThreadPoolExecutor(2 if st.parallel else 1) as pool:
                runs = list(pool.map(lambda _i: run_child(job, work, cwd=tmp, st=st), range(2)))
            exps = []
            for res, error in runs:
                out = res.get("short_run") or {"error": error}
                if "error" in out:
                    raise PipelineError(f"the base commit {base_commit[:12]}'s own short run failed, so no baseline "
                                        f"trace can be recorded: {_first_line(out['error'])}; fix the workspace's "
                                        f"testbed or the `study:` overrides in workspace.yaml")
                exps.append(out["exp"])
            traces = [reg.read_trace(exp) for exp in exps]
            diff = reg.first_difference(traces[0], traces[1])
            if diff:
                raise PipelineError(f"the base commit {base_commit[:12]}'s short run is not deterministic (two "
                                    f"identical runs differ, {diff}); make CPU training deterministic (fixed threads, "
                                    f"seeded data order) before the baseline path can be checked")
            meta = {"base_commit": base_commit, "testbed": str(ws.file.testbed), "preset": preset,
                    "declared": declared, "key": key, "exp": exps[0]}
            reg.save_trace(store, traces[0], meta)
            return traces[0], store
        finally:
            _drop_worktree(ws, tmp)


def _drop_worktree(ws: Workspace, path: Path) -> None:
    """Remove a temporary worktree (registered or not) and let git forget it."""
    git(ws.root, "worktree", "remove", "--force", str(path), check=False)
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
    git(ws.root, "worktree", "prune", check=False)


# --- the edited files -------------------------------------------------------------------------------------------------


def compile_errors(root: Path, paths: list[str]) -> list[str]:
    """The syntax errors of the changed .py files that exist (a deleted file has nothing to compile); nothing is
    written (no __pycache__ in the worktree)."""
    errors = []
    for rel in paths:
        path = root / rel
        if not rel.endswith(".py") or not path.is_file():
            continue
        try:
            compile(path.read_bytes(), str(rel), "exec", dont_inherit=True)
        except (SyntaxError, ValueError) as e:
            errors.append("".join(traceback.format_exception_only(type(e), e)).rstrip())
    return errors


def lint_errors(root: Path, paths: list[str]) -> str | None:
    """ruff's report on the changed .py files (rules F and E9: undefined names, unused imports, syntax), or None when
    clean; None too (with nothing checked) when ruff is not installed."""
    files = [rel for rel in paths if rel.endswith(".py") and (root / rel).is_file()]
    if not files:
        return None
    try:
        import ruff  # noqa: F401  (only to know it is installed; it runs as `python -m ruff`)
    except ImportError:
        return None
    argv = [sys.executable, "-m", "ruff", "check", "--isolated", "--no-cache", "--select", "F,E9",
            "--output-format", "concise", *files]
    out = run_in_group(argv, root, _child_env(root, 1), 120.0)
    if out.exit_code == 0:
        return None
    return out.output.strip() or f"ruff exited with code {out.exit_code}"


# --- child processes ----------------------------------------------------------------------------------------------


def run_child(job: dict[str, Any], work: Path, *, cwd: Path, st: ImplementSettings) -> tuple[dict[str, Any], str]:
    """Run `child_main` on `job` in a fresh folder under `work`, in `cwd`: (the stages' results, the error text when
    the child died or timed out before finishing — then the first stage without a result is the one that failed)."""
    work.mkdir(parents=True, exist_ok=True)
    n = 1
    while True:  # a fresh folder per run: never read the result of an earlier attempt's code
        folder = work / f"run-{n}"
        try:
            folder.mkdir()
            break
        except FileExistsError:
            n += 1
    atomic_write_text(folder / "job.json", json.dumps(job, indent=1, default=str))
    argv = [sys.executable, "-m", "autoresearch.pipeline.implement", str(folder / "job.json")]
    out = run_in_group(argv, cwd, _child_env(cwd, st.threads), st.timeout_s)
    atomic_write_text(folder / "output.log", out.output)
    try:
        res = json.loads((folder / "result.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        res = {}
    if out.timed_out:
        return res, f"timed out after {st.timeout_s:g} s (killed with its process group); output:\n{cap_error(out.output)}"
    return res, f"the process exited with code {out.exit_code} before finishing:\n{cap_error(out.output)}"


def _child_env(worktree: Path, threads: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
                "PYTHONPATH": os.pathsep.join(p for p in [str(worktree), env.get("PYTHONPATH", "")] if p)})
    return env


def child_main(argv: list[str]) -> int:
    """`python -m autoresearch.pipeline.implement JOB.json`: runs the job's stages in order and rewrites result.json
    after each ({stage: {...result, "seconds"}} or {stage: {"error": ...}}); stops at the first stage that fails."""
    job_path = Path(argv[0])
    job = json.loads(job_path.read_text())
    folder = job_path.parent
    result: dict[str, Any] = {}
    testbed = None
    for stage in job["stages"]:
        t0 = time.perf_counter()
        try:
            if testbed is None:
                from autoresearch.testbeds.base import get_testbed

                testbed = get_testbed(job["testbed"])
            out = _CHILD_STAGES[stage](testbed, job, folder)
        except Exception as e:
            traceback.print_exc()
            out = {"error": f"{type(e).__name__}: {e}".strip()[:2000]}
        out["seconds"] = round(time.perf_counter() - t0, 3)
        result[stage] = out
        atomic_write_text(folder / "result.json", json.dumps(result, indent=1, default=str))
        if "error" in out or out.get("failed"):
            break
    return 0


def _child_probe(testbed: Any, job: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Each given flag is a config field and a declared off value is its default; then `complete_flags` against the
    workspace root's config (the code before the edit) fills the off values left None and adds each new bool field
    the edit introduced; the on values must build a valid config. The completed flags serve the later stages."""
    from autoresearch.agents.roles import Flag
    from autoresearch.errors import ConfigError
    from autoresearch.harness.config import to_dict
    from autoresearch.testbeds.base import get_testbed
    from autoresearch.testbeds.flags import complete_flags

    after = testbed.make_config(job["preset"], job["overrides"])
    values = to_dict(after)
    missing, wrong = [], []
    for flag in job["flags"]:
        node: Any = values
        for part in flag["key"].split("."):
            node = node.get(part, _MISSING) if isinstance(node, dict) else _MISSING
        if node is _MISSING:
            missing.append(flag["key"])
        elif flag["off"] is not None and (node != flag["off"] or (type(node) is bool) != (type(flag["off"]) is bool)):
            wrong.append((flag["key"], node, flag["off"]))
    out: dict[str, Any] = {"missing": missing, "wrong_off": wrong, "design_error": "", "on_error": ""}
    if missing or wrong:
        return {**out, "failed": True}
    if job.get("before_testbed"):
        before = get_testbed(job["before_testbed"]).make_config(job["preset"], job["overrides"])
        try:
            completed = complete_flags([Flag.from_dict(dict(f)) for f in job["flags"]], before, after)
        except ConfigError as e:
            return {**out, "design_error": str(e), "failed": True}
        job["flags"] = [f.to_dict() for f in completed]  # what the checks (on) and the short run (off) use
    try:
        testbed.make_config(job["preset"], {**job["overrides"], **{f["key"]: f["on"] for f in job["flags"]}})
    except ConfigError as e:
        out["on_error"] = str(e)
    return {**out, "flags": job["flags"], "failed": bool(out["on_error"])}


def _child_checks(testbed: Any, job: dict[str, Any], folder: Path) -> dict[str, Any]:
    on = {f["key"]: f["on"] for f in job["flags"]}
    cfg = testbed.make_config(job["preset"], {**job["overrides"], **on}, round_up=True)
    rows = testbed.checks(cfg, folder / "checks", steps=job["check_steps"])
    rows = [{"name": c.name, "status": c.status, "detail": c.detail, "seconds": c.seconds} for c in rows]
    return {"checks": rows, "failed": any(r["status"] != "pass" for r in rows)}


def _child_short_run(testbed: Any, job: dict[str, Any], folder: Path) -> dict[str, Any]:
    from autoresearch.harness.registry import new_experiment

    off = {f["key"]: f["off"] for f in job["flags"]}
    overrides = {**job["overrides"], **off}
    base = testbed.make_config(job["preset"], overrides)
    overrides.update({**testbed.short_run_overrides(job["regression_steps"], base),
                      **testbed.seed_overrides(job["seed"])})
    cfg = testbed.make_config(job["preset"], overrides)
    exp = new_experiment(folder / "runs")
    res = testbed.train(cfg, exp, progress=False) or {}
    if res.get("status", "ok") != "ok":
        return {"error": f"the short run ended with status {res.get('status')}: {res.get('error', '')}".rstrip(": ")}
    return {"exp": str(exp.path)}


_MISSING = object()
_CHILD_STAGES: dict[str, Callable[[Any, dict[str, Any], Path], dict[str, Any]]] = {
    "probe": _child_probe, "checks": _child_checks, "short_run": _child_short_run}


# --- small things -------------------------------------------------------------------------------------------------


def _study(ws: Workspace) -> tuple[str, dict[str, Any]]:
    """The workspace's baseline: its study preset and overrides."""
    study = ws.file.study
    return str(study.preset), dict(study.overrides or {})


def _first_line(text: str) -> str:
    return error_gist(text)[:300]


def _summary(timings: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.1f}s" for k, v in timings.items())


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1:]))
