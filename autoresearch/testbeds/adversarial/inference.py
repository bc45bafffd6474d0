"""Inference with a trained adversarial experiment: the generator's reasoning chain and code for a problem, executed in
the sandbox, with optional multi-attempt feedback and CodeT-style ranking by the discriminator's tests.

    with InferenceEngine.from_checkpoint("exp-003") as engine:
        sol = engine.solve_problem(problem, attempts=2)           # chain + code, run on the visible tests
        sol.chain["plan"], sol.code, sol.passed, sol.hidden_passed
        engine.solve_batch(problems, n=8, rank=True)               # CodeT: 8 candidates ranked by agreement

What runs on which tests (so that nothing the model is judged on leaks into what it sees):
- `tests` (default: the problem's visible example tests, the ones its prompt already shows) decide `passed`, pick a
  candidate when n > 1 without ranking, and are fed back to the generator on the next attempt ("# failed: ...").
- the problem's hidden tests only score the result (`hidden_passed`); they are never fed back nor used to choose.
- ranking (`rank=True`) never uses the reference either: the discriminator writes tests, every candidate runs them,
  candidates passing the same set of tests form a consensus set, and the set with the largest
  |candidates| x |tests passed| wins (CodeT, Chen et al. 2022, "dual execution agreement").

The trainer (or the metrics) may build an engine on live policies: `InferenceEngine(generator, discriminator, cfg,
judge=judge)`; `failure_feedback` / `discriminator_feedback` are the feedback texts of multi-attempt, and
`generate_tests(..., attempts=A, targets=...)` is the discriminator's multi-attempt ("your tests did not catch this
bug": it uses the reference to keep only valid tests, so it is for training and scoring, not for unknown problems).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from autoresearch.errors import ConfigError, RegistryError
from autoresearch.harness.registry import Experiment
from autoresearch.harness.sandbox import ProgramResult
from autoresearch.testbeds.adversarial.config import AdversarialConfig
from autoresearch.testbeds.adversarial.judge import Judge
from autoresearch.testbeds.adversarial.problems import Problem
from autoresearch.testbeds.adversarial.rewards import parse_tests, run_programs, test_key, test_validity
from autoresearch.testbeds.adversarial.stages import Stage, chain_stages, code_of, render_chain

__all__ = ["InferenceEngine", "Solution", "Attempt", "Candidate", "TestAttempt", "failure_feedback",
           "discriminator_feedback", "codet_rank", "attempt_metrics", "solutions_summary", "inference_metrics"]

MAX_FEEDBACK_TESTS = 3
"""Failing tests quoted in one feedback text (tiny models have a short context)."""
MAX_FEEDBACK_CHARS = 400
"""Longest feedback text; the rest is cut."""

_STATUS_WORDS = {"fail": "wrong answer", "error": "runtime error", "timeout": "timeout", "memory": "out of memory",
                 "syntax_error": "syntax error", "output_limit": "output limit"}


# --- results ------------------------------------------------------------------------------------------------------

@dataclass
class Candidate:
    """One sampled chain of an attempt and how it ran."""

    chain: dict[str, str]
    code: str
    result: ProgramResult | None = None       # on the attempt's tests (None: no tests to run)
    hidden: ProgramResult | None = None       # on the hidden tests (None: not scored)
    agreement: tuple[int, ...] = ()           # ranking: indices of the generated tests it passes
    score: float | None = None                # ranking: |consensus set| x |tests passed|
    truncated: bool = False                   # the chain hit the generator's max_new_tokens

    @property
    def passed(self) -> bool | None:
        return None if self.result is None else self.result.passed

    @property
    def hidden_passed(self) -> bool | None:
        return None if self.hidden is None else self.hidden.passed

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "chain": self.chain, "passed": self.passed, "hidden_passed": self.hidden_passed,
                "status": self.result.status if self.result else None,
                "hidden_status": self.hidden.status if self.hidden else None,
                "agreement": list(self.agreement), "score": self.score, "truncated": self.truncated}


@dataclass
class Attempt:
    """One attempt: the feedback it was given, its candidates and the one chosen."""

    index: int                                # 1-based
    feedback: str
    candidates: list[Candidate]
    chosen: int = 0                           # index into candidates
    generated_tests: tuple[str, ...] = ()     # ranking: the discriminator's tests (deduplicated, bounded)

    @property
    def best(self) -> Candidate:
        return self.candidates[self.chosen]

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "feedback": self.feedback, "chosen": self.chosen,
                "passed": self.best.passed, "hidden_passed": self.best.hidden_passed,
                "generated_tests": list(self.generated_tests), "candidates": [c.to_dict() for c in self.candidates]}


@dataclass
class Solution:
    """The answer to one problem: the chosen chain and code of the last attempt, and every attempt."""

    problem_id: str
    stages: tuple[str, ...]
    tests: tuple[str, ...]                    # the tests the attempts ran on (given, or the visible ones)
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def final(self) -> Candidate:
        return self.attempts[-1].best

    @property
    def chain(self) -> dict[str, str]:
        return self.final.chain

    @property
    def code(self) -> str:
        return self.final.code

    @property
    def passed(self) -> bool | None:
        """The final code passes `tests` (None: there were no tests to run)."""
        return self.final.passed

    @property
    def hidden_passed(self) -> bool | None:
        """The final code passes the problem's hidden tests (None: not scored)."""
        return self.final.hidden_passed

    @property
    def status(self) -> str:
        r = self.final.result or self.final.hidden
        return r.status if r is not None else "not_run"

    def to_dict(self) -> dict[str, Any]:
        return {"problem_id": self.problem_id, "chain": self.chain, "code": self.code, "passed": self.passed,
                "hidden_passed": self.hidden_passed, "status": self.status, "tests": list(self.tests),
                "attempts": [a.to_dict() for a in self.attempts]}


@dataclass
class TestAttempt:
    """One attempt of the discriminator's multi-attempt test writing (`InferenceEngine.generate_tests`)."""

    __test__ = False  # not a pytest test class

    index: int
    feedback: str
    tests: tuple[str, ...]                    # kept tests (parsed, deduplicated, bounded)
    valid: tuple[bool, ...]                   # the reference passes each
    caught: tuple[bool, ...]                  # per target code: some valid test fails it

    @property
    def validity(self) -> float:
        return sum(self.valid) / len(self.valid) if self.valid else 0.0

    @property
    def catch_rate(self) -> float:
        return sum(self.caught) / len(self.caught) if self.caught else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "validity": self.validity, "catch_rate": self.catch_rate}


# --- feedback texts -----------------------------------------------------------------------------------------------

def failure_feedback(tests: Sequence[str], result: ProgramResult) -> str:
    """What the generator is told about its previous attempt: the tests it failed (at most MAX_FEEDBACK_TESTS), each
    with the kind of failure, as comment lines; "" when it passed or nothing ran."""
    if result.passed:
        return ""
    if not result.program.passed:  # the code itself did not run: no test result means anything
        what = _STATUS_WORDS.get(result.program.status, result.program.status)
        detail = f": {result.program.exc_type}" if result.program.exc_type else ""
        return _cut(f"# your code did not run ({what}{detail})")
    lines = []
    for test, r in zip(tests, result.tests, strict=False):
        if not r.passed:
            detail = f" {r.exc_type}" if r.status == "error" and r.exc_type else ""
            lines.append(f"# failed: {test.strip()} ({_STATUS_WORDS.get(r.status, r.status)}{detail})")
        if len(lines) == MAX_FEEDBACK_TESTS:
            break
    if not lines and len(result.tests) < len(tests):  # the run stopped before reaching the rest of the tests
        lines.append(f"# failed: {tests[len(result.tests)].strip()} (not reached)")
    return _cut("\n".join(lines))


def discriminator_feedback(code: str) -> str:
    """What the discriminator is told when a wrong code passed all its valid tests: the code it let through."""
    return _cut("# your tests did not catch this bug:\n" + "\n".join(f"# {line}" for line in code.strip().splitlines()))


def _cut(text: str) -> str:
    return text if len(text) <= MAX_FEEDBACK_CHARS else text[: MAX_FEEDBACK_CHARS - 3] + "..."


# --- ranking ------------------------------------------------------------------------------------------------------

def codet_rank(passed: Sequence[Sequence[bool]]) -> tuple[int, list[float]]:
    """CodeT's dual execution agreement over `passed[c][t]` (candidate c passes generated test t): candidates that
    pass exactly the same tests form a consensus set, scored |candidates in it| x |tests it passes|; returns the first
    candidate of the best set (ties: the larger set, then the earlier candidate) and every candidate's set score.
    With no generated test every score is 0 and the first candidate wins."""
    if not passed:
        raise ValueError("codet_rank needs at least one candidate")
    keys = [frozenset(t for t, ok in enumerate(row) if ok) for row in passed]
    size: dict[frozenset[int], int] = {}
    for k in keys:
        size[k] = size.get(k, 0) + 1
    scores = [float(size[k] * len(k)) for k in keys]
    best = min(range(len(keys)), key=lambda c: (-scores[c], -size[keys[c]], c))
    return best, scores


# --- the engine ---------------------------------------------------------------------------------------------------

class InferenceEngine:
    """A generator (and its discriminator) answering problems; owns a sandbox `Judge` unless one is given.

    Use it as a context manager (or call `close()`) so that the sandbox pool it started is stopped."""

    def __init__(self, generator: Any, discriminator: Any | None, cfg: AdversarialConfig, *,
                 judge: Judge | None = None, source: str = "") -> None:
        self.generator = generator
        self.discriminator = discriminator
        self.cfg = cfg
        self.source = source
        self.stages: tuple[Stage, ...] = chain_stages(cfg.stages)
        self._judge = judge
        self._own_judge = judge is None

    # --- construction / lifetime ---

    @classmethod
    def from_checkpoint(cls, exp: str | Path | Experiment, device: str = "cpu", best: bool = True, *,
                        root: str | Path | None = None) -> InferenceEngine:
        """Both policies, the tokenizer and the config of an adversarial experiment (`exp-NNN`, `NNN`, a folder, or
        an `Experiment`), from its best checkpoint (`best=True`: the one picked on the val problems; the latest one
        when the run saved no best) or its latest. Another testbed's experiment, a run without checkpoints or a
        damaged checkpoint is a one-line error naming it."""
        from autoresearch.harness.registry import DEFAULT_ROOT, open_experiment
        from autoresearch.testbeds.adversarial.testbed import AdversarialTestbed

        if not isinstance(exp, Experiment):
            exp = open_experiment(exp, root if root is not None else DEFAULT_ROOT)
        testbed = AdversarialTestbed()
        kind = exp.testbed()
        if kind == f"{AdversarialTestbed.__module__}:{AdversarialTestbed.__qualname__}":
            testbed.spec = kind  # trained under its module path (before it was registered): the same testbed
        if kind != testbed.spec:
            what = "an eval-code run" if kind is None else f"a `train {kind}` run"
            raise RegistryError(f"{exp.id} is {what}, not an adversarial experiment; pass the exp-NNN of an "
                                "`autoresearch train adversarial` run (`autoresearch ls` shows the testbed of each)")
        cfg = testbed.load_config(exp)
        # torch is imported only once the folder is known to be right: a wrong --model fails in a second
        from autoresearch.harness.checkpoint import latest_checkpoint
        from autoresearch.testbeds.adversarial.checkpoints import CheckpointManager
        from autoresearch.testbeds.adversarial.train import load_policies

        ckpts = CheckpointManager(exp.checkpoints_dir)
        use_best = best and latest_checkpoint(ckpts.best_dir) is not None
        path = latest_checkpoint(ckpts.best_dir if use_best else ckpts.directory)
        generator, discriminator = load_policies(cfg, exp, device, best=use_best)
        where = ("best" if use_best else "latest (no best saved)" if best else "latest") + (
            f" {path.name}" if path is not None else "")
        return cls(generator.eval(), discriminator.eval(), cfg, source=f"{exp.id} {where}")

    @property
    def judge(self) -> Judge:
        if self._judge is None:
            self._judge = Judge(self.cfg.reward)
            self._judge.__enter__()
        return self._judge

    def close(self) -> None:
        if self._own_judge and self._judge is not None:
            self._judge.__exit__(None, None, None)
            self._judge = None

    def __enter__(self) -> InferenceEngine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the generator ---

    def get_reasoning_chain(self, problem: Problem, feedback: str = "") -> dict[str, str]:
        """The generator's greedy chain for `problem`: stage name -> text (code last)."""
        return self.generator.generate_chain(problem, self.stages, n=1, temperature=0.0, feedback=feedback)[0]

    def render(self, chain: dict[str, str]) -> str:
        """The chain as the tagged text the generator writes ("### informal" ... "### code")."""
        return render_chain(chain, self.stages)

    def solve_problem(self, problem: Problem, tests: Sequence[str] | None = None, n: int = 1, attempts: int = 1,
                      rank: bool = False, *, temperature: float | None = None, score_hidden: bool = True) -> Solution:
        """`solve_batch` of one problem."""
        return self.solve_batch([problem], tests=None if tests is None else [tests], n=n, attempts=attempts,
                                rank=rank, temperature=temperature, score_hidden=score_hidden)[0]

    def solve_batch(self, problems: Sequence[Problem], tests: Sequence[Sequence[str]] | None = None, n: int = 1,
                    attempts: int = 1, rank: bool = False, *, temperature: float | None = None,
                    score_hidden: bool = True) -> list[Solution]:
        """Answer every problem: per attempt, `n` chains (greedy when n = 1, else sampled at `temperature`, default
        eval.temperature), executed on the problem's tests (`tests[i]`, default its visible tests); a chosen
        candidate that fails them gets a next attempt with the failures as feedback, up to `attempts`. Candidates
        are chosen by CodeT ranking (`rank`), else the first one passing the tests (else the first). Each attempt's
        sandbox runs are batched across problems. `score_hidden`: also run each candidate on the hidden tests."""
        _check_counts(n, attempts)
        if rank and self.discriminator is None:
            raise ConfigError("ranking (rank=True / --rank) needs the discriminator, and this engine has none; "
                              "drop --rank or load an experiment that trained one")
        if tests is not None and len(tests) != len(problems):
            raise ConfigError(f"tests must give one list per problem: {len(tests)} lists for {len(problems)} problems")
        temp = (self.cfg.eval.temperature or 0.8) if temperature is None else temperature
        temp = 0.0 if n == 1 else temp
        own = [tuple(t) for t in tests] if tests is not None else [tuple(p.visible_tests) for p in problems]
        sols = [Solution(p.id, tuple(s.name for s in self.stages), own[i]) for i, p in enumerate(problems)]
        todo = list(range(len(problems)))
        for a in range(1, attempts + 1):
            feedbacks = []
            for i in todo:
                prev = sols[i].attempts[-1] if sols[i].attempts else None
                feedbacks.append(failure_feedback(own[i], prev.best.result) if prev and prev.best.result else "")
            # one batched sampling call per attempt: the policy groups equal-length prompts of all problems
            rows = self.generator.sample_chains([problems[i] for i in todo], [None] * len(todo), self.stages[0],
                                                self.stages, n, temperature=temp, feedback=feedbacks)
            for i, feedback, row in zip(todo, feedbacks, rows, strict=True):
                cands = [Candidate(chain, code_of(chain), truncated=s.truncated) for s, chain in row]
                sols[i].attempts.append(Attempt(a, feedback, cands))
            self._execute([(problems[i], sols[i].attempts[-1], own[i]) for i in todo], score_hidden)
            if rank:
                for i in todo:
                    self._rank(problems[i], sols[i].attempts[-1])
            else:
                for i in todo:
                    att = sols[i].attempts[-1]
                    att.chosen = next((c for c, cand in enumerate(att.candidates) if cand.passed), 0)
            # another attempt only where the chosen code failed tests it can be told about
            todo = [i for i in todo if own[i] and sols[i].final.passed is False]
        return sols

    def _execute(self, work: list[tuple[Problem, Attempt, tuple[str, ...]]], score_hidden: bool) -> None:
        """One sandbox batch for every candidate of every problem (a reward hack is not run: rewards.run_programs)."""
        items: list[tuple[Problem, str, tuple[str, ...]]] = []
        slots: list[tuple[Candidate, str]] = []
        for problem, att, tests in work:
            for cand in att.candidates:
                if tests:
                    items.append((problem, cand.code, tests))
                    slots.append((cand, "result"))
                if score_hidden and problem.hidden_tests:
                    items.append((problem, cand.code, tuple(problem.hidden_tests)))
                    slots.append((cand, "hidden"))
        if items:
            for (cand, what), r in zip(slots, run_programs(self.judge, items), strict=True):
                setattr(cand, what, r)

    def _rank(self, problem: Problem, att: Attempt) -> None:
        """CodeT: the discriminator's tests (greedy + sampled, deduplicated) against every candidate."""
        gen_tests = self._generated_tests(problem, n=max(1, min(len(att.candidates), 4)))
        att.generated_tests = gen_tests
        if not gen_tests:
            att.chosen = 0
            for cand in att.candidates:
                cand.score = 0.0
            return
        results = run_programs(self.judge, [(problem, c.code, gen_tests) for c in att.candidates])
        passed = [[i < len(r.tests) and r.tests[i].passed and r.program.passed for i in range(len(gen_tests))]
                  for r in results]
        att.chosen, scores = codet_rank(passed)
        for cand, row, s in zip(att.candidates, passed, scores, strict=True):
            cand.agreement = tuple(i for i, ok in enumerate(row) if ok)
            cand.score = s

    def _generated_tests(self, problem: Problem, n: int, feedback: str = "") -> tuple[str, ...]:
        """Up to reward.max_tests distinct tests from n discriminator answers (the first greedy, the rest sampled)."""
        texts = self.discriminator.generate_tests(problem, n=1, temperature=0.0, feedback=feedback)
        if n > 1:
            texts += self.discriminator.generate_tests(problem, n=n - 1, temperature=self.cfg.eval.temperature or 0.8,
                                                       feedback=feedback)
        seen: dict[str, str] = {}  # by normalised AST: `f(1) == 2` and `2 == f(1)` are one test
        for text in texts:
            for t in parse_tests(text, problem, self.cfg.reward).tests:
                seen.setdefault(test_key(t), t)
        return tuple(seen.values())[: self.cfg.reward.max_tests]

    # --- the discriminator ---

    def generate_tests(self, problem: Problem, attempts: int = 1, targets: Sequence[str] = ()) -> list[TestAttempt]:
        """The discriminator's tests for `problem`, over up to `attempts` attempts: each attempt's tests are checked
        against the reference (valid) and run on the `targets` (wrong codes: e.g. mutants, or generator samples that
        fail the hidden tests); when a target passes every valid test, the next attempt is told "your tests did not
        catch this bug" with that code. Stops once every target is caught. Needs the problem's reference."""
        _check_counts(1, attempts)
        if self.discriminator is None:
            raise ConfigError("this engine has no discriminator; load an experiment that trained one")
        out: list[TestAttempt] = []
        feedback = ""
        for a in range(1, attempts + 1):
            texts = self.discriminator.generate_tests(problem, n=1, temperature=0.0, feedback=feedback)
            tests = tuple(parse_tests(texts[0], problem, self.cfg.reward).tests) if texts else ()
            valid = tuple(test_validity(self.judge, problem, tests)) if tests else ()
            valid = valid + (False,) * (len(tests) - len(valid))  # a test never reached is not valid
            kept = tuple(t for t, ok in zip(tests, valid, strict=True) if ok)
            caught: tuple[bool, ...] = ()
            if targets:
                if kept:
                    res = run_programs(self.judge, [(problem, code, kept) for code in targets])
                    caught = tuple(not r.passed for r in res)
                else:
                    caught = tuple(False for _ in targets)
            out.append(TestAttempt(a, feedback, tests, valid, caught))
            missed = [code for code, c in zip(targets, caught, strict=True) if not c]
            if not missed:
                break
            feedback = discriminator_feedback(missed[0])
        return out


def _check_counts(n: int, attempts: int) -> None:
    if not isinstance(n, int) or n < 1:
        raise ConfigError(f"n (candidates per attempt) must be an integer >= 1, got {n!r}; use e.g. n=1")
    if not isinstance(attempts, int) or attempts < 1:
        raise ConfigError(f"attempts must be an integer >= 1, got {attempts!r}; use e.g. attempts=1")


# --- metrics ------------------------------------------------------------------------------------------------------

def attempt_metrics(solutions: Sequence[Solution], max_attempts: int | None = None) -> dict[str, float]:
    """Per-attempt figures of multi-attempt solving: `pass_rate@attempt{a}` = share of problems whose submitted code
    after at most a attempts passes the hidden tests (a problem that stopped earlier keeps its last code);
    `visible_pass_rate@attempt{a}` the same on the attempts' own tests; `mean_attempts`. Problems without a hidden
    score are left out of the hidden rates."""
    if not solutions:
        return {}
    top = max_attempts or max(len(s.attempts) for s in solutions)
    out: dict[str, float] = {}
    for a in range(1, top + 1):
        picks = [s.attempts[min(a, len(s.attempts)) - 1].best for s in solutions]
        hidden = [c.hidden_passed for c in picks if c.hidden_passed is not None]
        visible = [c.passed for c in picks if c.passed is not None]
        if hidden:
            out[f"pass_rate@attempt{a}"] = sum(hidden) / len(hidden)
        if visible:
            out[f"visible_pass_rate@attempt{a}"] = sum(visible) / len(visible)
    out["mean_attempts"] = sum(len(s.attempts) for s in solutions) / len(solutions)
    return out


def solutions_summary(solutions: Sequence[Solution]) -> dict[str, Any]:
    """The closing figures of `autoresearch infer`: problems, hidden pass rate of the submitted code (what a user
    gets), visible pass rate, the oracle rate (any final-attempt candidate passes hidden), statuses, per attempt."""
    hidden = [s.hidden_passed for s in solutions if s.hidden_passed is not None]
    visible = [s.passed for s in solutions if s.passed is not None]
    oracle = [any(c.hidden_passed for c in s.attempts[-1].candidates) for s in solutions
              if s.attempts and s.attempts[-1].candidates[0].hidden is not None]
    statuses: dict[str, int] = {}
    for s in solutions:
        statuses[s.status] = statuses.get(s.status, 0) + 1
    out: dict[str, Any] = {"problems": len(solutions),
                           "pass_rate": sum(hidden) / len(hidden) if hidden else None,
                           "scored_hidden": len(hidden),
                           "visible_pass_rate": sum(visible) / len(visible) if visible else None,
                           "any_candidate_pass_rate": sum(oracle) / len(oracle) if oracle else None,
                           "statuses": statuses}
    out.update(attempt_metrics(solutions))
    return out


def inference_metrics(engine: InferenceEngine, problems: Sequence[Problem]) -> dict[str, float]:
    """The held-out figures of multi-attempt solving and CodeT ranking that the config asks for (empty when
    eval.max_attempts == 1 and eval.codet_candidates == 0), for results.yaml:
    `pass_rate@attempt{a}` (a = 1..eval.max_attempts; attempt 1 = greedy pass@1) and `mean_attempts`;
    `pass@1_codet` (the CodeT-ranked pick of eval.codet_candidates samples passes the hidden tests) and
    `pass_any_codet` (some candidate does: the ceiling of any ranking). Uses the engine's policies as they are
    (call it under no_grad and with the RNG preserved, as the held-out scoring does)."""
    ev = engine.cfg.eval
    out: dict[str, float] = {}
    if not problems:
        return out
    if ev.max_attempts > 1:
        out.update(attempt_metrics(engine.solve_batch(problems, attempts=ev.max_attempts), ev.max_attempts))
    if ev.codet_candidates > 0 and engine.discriminator is not None:
        s = solutions_summary(engine.solve_batch(problems, n=ev.codet_candidates, rank=ev.codet_candidates > 1))
        out["pass@1_codet"] = s["pass_rate"] if s["pass_rate"] is not None else math.nan
        out["pass_any_codet"] = (s["any_candidate_pass_rate"] if s["any_candidate_pass_rate"] is not None
                                 else math.nan)
    return out
