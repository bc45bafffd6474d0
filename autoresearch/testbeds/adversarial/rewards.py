"""Rewards of the generator and the discriminator, computed from typed sandbox results (never from pytest text).

Every figure comes from a `ProgramResult` of the `Judge` (judge.py): a per-test status from the sandbox. The seed
this testbed re-does (DESIGN.md §8) parsed pytest's summary (pass rates above 1; collection errors and timeouts read
as (0, 0) and paid a neutral 0.5) and paid its discriminator (1 - gen_pass) x validity, i.e. for invalid tests the
generator also fails. Here:

Sanitising a discriminator answer (`parse_tests`): every non-blank line (code fences aside) is a candidate test. It
is MALFORMED unless it is one `assert` statement that parses, is at most `reward.max_test_chars` long, calls the
problem's entry point by name, and uses none of: `:=`, yield/await, dunder attributes or names, and the names in
`FORBIDDEN_TEST_NAMES` (introspection, eval/exec, I/O, nondeterminism). Well-formed tests are deduplicated by their
normalised AST (assert message dropped, operands of a single `==`/`!=` put in a fixed order): a duplicate counts
once. The first `reward.max_tests` unique ones are kept; the rest are dropped (no credit, no penalty).

Validity (`test_validity`): a kept test is VALID iff the reference program passes it in the sandbox (status pass).
Tests run in order in one process; a test that crashes or hangs is killed and the rest resume in a fresh process
(`ProgramResult.children` > 1), and the reference's job gets `program_timeout_s + n_tests * test_timeout_s`, so one
bad test never makes the tests after it invalid. A test that times out on the reference is invalid.

Generator reward (`generator_reward`): the mean over VALID tests of the per-test outcome score; no valid test ->
None (NO SIGNAL: the sample is left out of its group, never paid a neutral 0.5).

    outcome of a test (OUTCOME_SCORES)                         score
    pass                                                        1.0
    fail (AssertionError: wrong answer)                         0.0
    error (exception, crash, early exit: sys.exit(0),          -0.25
      os._exit(0), raise SystemExit), timeout, memory,
      output_limit, a reward hack (see below)
    syntax_error (the whole program does not compile)          -0.5

So syntax error < runtime error = timeout < wrong answer < pass, program-wide and test by test. A program whose top
level fails (syntax error, exception, early exit) gets that status on every test. An early exit never passes: the
sandbox counts a test as passed only when its child reports it (executor.py). REWARD HACKS: a completion that
defines comparison/truth dunders (`__eq__`, `__bool__`, `__len__`, ... as `def` or as a string key), rebinds a
builtin name in the module namespace the tests run in (`len = ...` at top level or via `global`; a local variable
named `max` is fine), replaces one of its functions at run time (`global f`), or touches `builtins`,
`__builtins__`, `gc`, `inspect`, `ctypes` or frame/trace hooks (`sys.settrace`, `sys._getframe`, `sys.modules`,
`f_locals`, ...), when the problem's reference does not, is not run: it scores as `error` on every test
(`completion_hazard`; the always-equal object is the classic hack that passes `assert f(x) == y`).

Discriminator reward (`discriminator_reward`), with M = reward.max_tests and p = reward.invalid_penalty:

    r = ( sum over VALID kept tests of caught(t)  -  p x (#invalid kept + #malformed) ) / M
    reward = clip((r + p) / (1 + p), 0, 1);   zero kept tests -> 0.0 (the lowest reward: silence is never safe)

where caught(t) = the share of the TARGET codes that do not pass test t. Targets = the generator's group samples for
the problem (+ `reward.mutant_targets` mutants of the reference); a target whose program fails at top level
(syntax error, crash on import) is left out, since every test "catches" it. So: an invalid test earns nothing even
when every target fails it and costs p/M; a duplicate earns once; a valid test that catches nothing earns 0 (reward
p/(1+p) for an all-valid answer that catches nothing, 1.0 for M valid tests that fail every target).
"""

from __future__ import annotations

import ast
import builtins
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from autoresearch.harness.sandbox import Job, ProgramResult, TestResult
from autoresearch.testbeds.adversarial.config import RewardConfig
from autoresearch.testbeds.adversarial.judge import Judge

__all__ = [
    "OUTCOME_SCORES",
    "HACK_STATUS",
    "FORBIDDEN_TEST_NAMES",
    "TestSet",
    "GroupScore",
    "parse_tests",
    "check_test",
    "test_key",
    "completion_hazard",
    "test_validity",
    "validity_batch",
    "generator_reward",
    "discriminator_reward",
    "score_group",
    "score_groups",
    "visible_reward",
    "visible_rewards",
    "hidden_outcomes",
    "run_programs",
]

OUTCOME_SCORES: dict[str, float] = {
    "pass": 1.0,
    "fail": 0.0,
    "error": -0.25,
    "timeout": -0.25,
    "memory": -0.25,
    "output_limit": -0.25,
    "syntax_error": -0.5,
}
HACK_STATUS = "error"  # a completion flagged by completion_hazard scores as a runtime error on every test

FORBIDDEN_TEST_NAMES = frozenset({
    "globals", "locals", "vars", "dir", "eval", "exec", "compile", "open", "input", "breakpoint", "help", "exit",
    "quit", "getattr", "setattr", "delattr", "hasattr", "id", "hash", "memoryview", "print", "object", "super",
})
_HACK_DUNDERS = frozenset({
    "__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__bool__", "__len__", "__hash__", "__contains__",
    "__instancecheck__", "__subclasscheck__", "__class__",
})
_HACK_MODULES = frozenset({"builtins", "gc", "inspect", "ctypes"})
# frame and tracing hooks: a trace function can rewrite the frames the tests run in
_HACK_ATTRS = frozenset({"settrace", "setprofile", "_getframe", "modules", "f_locals", "f_globals", "f_back",
                         "f_lineno", "f_trace", "tb_frame", "gi_frame", "cr_frame", "excepthook"})
_BUILTIN_NAMES = frozenset(n for n in dir(builtins) if not n.startswith("_"))
_FENCES = ("```",)


class _ProblemLike(Protocol):
    id: str
    entry_point: str
    reference: str
    hidden_tests: tuple[str, ...]
    visible_tests: tuple[str, ...]

    def program(self, completion: str) -> str: ...


# --- sanitising a discriminator answer --------------------------------------------------------------------------
@dataclass(frozen=True)
class TestSet:
    """The tests kept from one discriminator answer and what was thrown away."""

    __test__ = False  # not a pytest class

    tests: tuple[str, ...]
    n_raw: int = 0  # candidate lines (non-blank, code fences aside)
    n_duplicate: int = 0  # well-formed but the same normalised AST as an earlier one
    n_dropped_bound: int = 0  # unique and well-formed, beyond reward.max_tests
    n_malformed: int = 0  # not one parseable assert / too long / no call of the entry point / forbidden construct
    reasons: tuple[str, ...] = ()  # "line 2: too long (250 > 200 chars)" per malformed line, for feedback and logs

    @property
    def n_kept(self) -> int:
        return len(self.tests)


def _parse(source: str) -> ast.Module:
    """ast.parse without the SyntaxWarnings (e.g. "invalid decimal literal") that model output provokes on stderr."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ast.parse(source)


def check_test(line: str, entry_point: str, max_chars: int) -> str:
    """Why `line` is not an acceptable test ("" when it is)."""
    if len(line) > max_chars:
        return f"too long ({len(line)} > {max_chars} chars)"
    try:
        tree = _parse(line)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return "does not parse"
    if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assert):
        return "not a single assert statement"
    calls_entry = False
    for node in ast.walk(tree.body[0]):
        if isinstance(node, (ast.NamedExpr, ast.Yield, ast.YieldFrom, ast.Await)):
            return f"uses {type(node).__name__}"
        if isinstance(node, ast.Attribute) and node.attr.startswith("__"):
            return f"uses the dunder attribute {node.attr}"
        if isinstance(node, ast.Name):
            if node.id.startswith("__") or node.id in FORBIDDEN_TEST_NAMES:
                return f"uses {node.id}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == entry_point:
            calls_entry = True
    if not calls_entry:
        return f"does not call {entry_point}"
    return ""


def test_key(line: str) -> str:
    """The normalised AST of a well-formed test: duplicates share a key."""
    node = _parse(line).body[0]
    assert isinstance(node, ast.Assert)
    expr = node.test
    if isinstance(expr, ast.Compare) and len(expr.ops) == 1 and isinstance(expr.ops[0], (ast.Eq, ast.NotEq)):
        a, b = ast.dump(expr.left, annotate_fields=False), ast.dump(expr.comparators[0], annotate_fields=False)
        return f"{type(expr.ops[0]).__name__}({min(a, b)}, {max(a, b)})"
    return ast.dump(expr, annotate_fields=False)


test_key.__test__ = False  # type: ignore[attr-defined]


def parse_tests(text: str, problem: Any, cfg: RewardConfig) -> TestSet:
    """Sanitise a discriminator answer into a bounded, deduplicated `TestSet` (rules: module docstring)."""
    entry = problem if isinstance(problem, str) else problem.entry_point
    kept: list[str] = []
    seen: set[str] = set()
    n_raw = n_dup = n_bound = 0
    reasons: list[str] = []
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(_FENCES):
            continue
        n_raw += 1
        why = check_test(line, entry, cfg.max_test_chars)
        if why:
            reasons.append(f"line {no}: {why}")
            continue
        key = test_key(line)
        if key in seen:
            n_dup += 1
        elif len(kept) >= cfg.max_tests:
            n_bound += 1
        else:
            seen.add(key)
            kept.append(line)
    return TestSet(tuple(kept), n_raw, n_dup, n_bound, len(reasons), tuple(reasons))


# --- reward hacks of a generator ----------------------------------------------------------------------------------
def _module_bindings(tree: ast.Module) -> set[str]:
    """Names bound in the module's namespace (where the tests run): module-level assignments, defs, classes,
    imports, loop/with targets, and names declared `global` anywhere. Locals of functions do not reach the tests."""
    out: set[str] = set()
    scoped = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.ListComp, ast.SetComp,
              ast.DictComp, ast.GeneratorExp)
    todo: list[ast.AST] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            out.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            out.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            out.add(node.id)
        if not isinstance(node, scoped):
            todo.extend(ast.iter_child_nodes(node))
    for node in ast.walk(tree):
        if isinstance(node, ast.Global):
            out.update(node.names)
    return out


def _hazards(code: str) -> set[str]:
    try:
        tree = _parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()  # the sandbox reports the syntax error
    out = {f"rebinds {n}" for n in _module_bindings(tree) if n in _BUILTIN_NAMES}
    # a function that replaces a module-level function at run time changes what later tests call
    defs = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    out.update(f"rebinds {n} at run time" for node in ast.walk(tree) if isinstance(node, ast.Global)
               for n in node.names if n in defs)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in _HACK_DUNDERS:
            out.add(f"defines {node.name}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in _HACK_DUNDERS:
            out.add(f"names {node.value}")
        elif isinstance(node, ast.Attribute) and node.attr in _HACK_DUNDERS and isinstance(node.ctx, ast.Store):
            out.add(f"assigns {node.attr}")
        elif isinstance(node, ast.Attribute) and node.attr in _HACK_ATTRS:
            out.add(f"uses .{node.attr}")
        elif isinstance(node, ast.Name) and node.id == "__builtins__":
            out.add("uses __builtins__")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            if isinstance(node, ast.ImportFrom):
                out.update(f"uses .{a.name}" for a in node.names if a.name in _HACK_ATTRS)
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            out.update(f"imports {m}" for m in mods if m.split(".")[0] in _HACK_MODULES)
    return out


def completion_hazard(program: str, reference_program: str = "") -> str:
    """Why a whole program looks like a reward hack ("" when it does not); constructs the problem's reference program
    also uses are allowed (a reference validated on its own tests may legitimately shadow `max` or define `__eq__`).
    A program that does not parse has no hazards: the sandbox reports its syntax error."""
    extra = _hazards(program) - _hazards(reference_program)
    return "; ".join(sorted(extra))


def _hack_result(why: str, n_tests: int, level: str) -> ProgramResult:
    r = TestResult(HACK_STATUS, "RewardHack", f"not run: {why}"[:500], where="program")
    return ProgramResult(HACK_STATUS, r, tuple(r for _ in range(n_tests)), level)


# --- running programs -----------------------------------------------------------------------------------------
def run_programs(judge: Judge, items: Sequence[tuple[Any, str, Sequence[str]]]) -> list[ProgramResult]:
    """Run each (problem, completion, tests) as `problem.program(completion)` + tests in one batch; completions
    flagged by `completion_hazard` are not run and come back as errors (RewardHack) on every test."""
    jobs: list[Job] = []
    where: list[int] = []
    out: list[ProgramResult | None] = []
    for problem, completion, tests in items:
        program = problem.program(completion)
        why = completion_hazard(program, problem.program(problem.reference))
        if why:
            out.append(_hack_result(why, len(tests), judge.level))
            continue
        where.append(len(out))
        out.append(None)
        jobs.append(Job(program=program, tests=tuple(tests)))
    for i, r in zip(where, judge.run(jobs), strict=True):
        out[i] = r
    return [r for r in out if r is not None]


def validity_batch(judge: Judge, items: Sequence[tuple[Any, Sequence[str]]]) -> list[list[bool]]:
    """`test_validity` for several (problem, tests) pairs in one sandbox batch."""
    cfg = judge.cfg
    jobs = [
        Job(
            program=problem.program(problem.reference),
            tests=tuple(tests),
            # every test gets its own time: a hanging test cannot eat the budget of the tests after it
            program_timeout_s=cfg.program_timeout_s + len(tests) * cfg.test_timeout_s,
        )
        for problem, tests in items
    ]
    results = judge.run([j for j in jobs if j.tests])
    it = iter(results)
    return [[t.passed for t in next(it).tests] if tests else [] for _, tests in items]


def test_validity(judge: Judge, problem: Any, tests: Sequence[str]) -> list[bool]:
    """Per test: does the problem's reference pass it in the sandbox?"""
    return validity_batch(judge, [(problem, tests)])[0]


test_validity.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported into one


# --- rewards ----------------------------------------------------------------------------------------------------
def generator_reward(result: ProgramResult, valid_mask: Sequence[bool]) -> float | None:
    """Mean outcome score over the valid tests of a job run on all of `valid_mask`'s tests; None = no signal."""
    if len(result.tests) != len(valid_mask):
        raise ValueError(f"result has {len(result.tests)} tests, valid_mask {len(valid_mask)}")
    scores = [OUTCOME_SCORES[t.status] for t, ok in zip(result.tests, valid_mask, strict=True) if ok]
    if not scores:
        return None
    if not result.syntax_valid:
        return OUTCOME_SCORES["syntax_error"]
    return sum(scores) / len(scores)


def discriminator_reward(test_set: TestSet, valid: Sequence[bool], caught: Sequence[float],
                         cfg: RewardConfig) -> float:
    """The discriminator's reward in [0, 1] for one answer (table in the module docstring)."""
    if len(valid) != test_set.n_kept or len(caught) != test_set.n_kept:
        raise ValueError(f"{test_set.n_kept} kept tests but {len(valid)} validity flags and {len(caught)} catches")
    if test_set.n_kept == 0:
        return 0.0
    p = cfg.invalid_penalty
    n_invalid = sum(1 for v in valid if not v)
    credit = sum(min(max(c, 0.0), 1.0) for v, c in zip(valid, caught, strict=True) if v)
    r = (credit - p * (n_invalid + test_set.n_malformed)) / cfg.max_tests
    return min(max((r + p) / (1.0 + p), 0.0), 1.0)


# --- a whole group ----------------------------------------------------------------------------------------------
@dataclass
class GroupScore:
    """Rewards and statistics of one problem's group: G generator completions against D discriminator answers."""

    generator_rewards: list[float | None]  # [G]; None = no valid test (no signal)
    discriminator_rewards: list[float]  # [D]
    test_sets: list[TestSet]  # [D]
    valid: list[list[bool]]  # [D][kept tests of answer d]
    caught: list[list[float]]  # [D][kept tests of answer d]; 0 for invalid tests
    valid_tests: tuple[str, ...]  # the union of valid tests (deduplicated) the generator was scored on
    gen_results: list[ProgramResult]  # [G], on valid_tests
    stats: dict[str, float] = field(default_factory=dict)


def score_group(judge: Judge, problem: Any, completions: Sequence[str], test_texts: Sequence[str],
                extra_targets: Sequence[str] = ()) -> GroupScore:
    """`score_groups` for one problem."""
    return score_groups(judge, [(problem, completions, test_texts, extra_targets)])[0]


def score_groups(judge: Judge, groups: Sequence[tuple[Any, Sequence[str], Sequence[str], Sequence[str]]]
                 ) -> list[GroupScore]:
    """Score many (problem, G completions, D discriminator answers, extra target codes e.g. mutants) groups.

    Two sandbox batches for all groups together: (1) each reference against the union of its answers' kept tests
    (validity); (2) every completion and extra target against its problem's valid tests. Invalid tests are never
    run on generator code (a hanging invalid test would otherwise cost every sample its time budget).
    """
    cfg = judge.cfg
    sets = [[parse_tests(t, problem, cfg) for t in answers] for problem, _, answers, _ in groups]
    unions: list[list[str]] = []
    for ts in sets:
        seen: dict[str, str] = {}
        for s in ts:
            for t in s.tests:
                seen.setdefault(test_key(t), t)
        unions.append(list(seen.values()))
    valid_union = validity_batch(judge, [(g[0], u) for g, u in zip(groups, unions, strict=True)])
    valid_tests = [tuple(t for t, ok in zip(u, v, strict=True) if ok) for u, v in zip(unions, valid_union,
                                                                                         strict=True)]
    items = [(problem, code, vt) for (problem, comps, _, extra), vt in zip(groups, valid_tests, strict=True)
             for code in (*comps, *extra)]
    results = iter(run_programs(judge, items))
    out = []
    for (_p, comps, _, extra), ts, union, vu, vt in zip(groups, sets, unions, valid_union, valid_tests,
                                                             strict=True):
        target_results = [next(results) for _ in range(len(comps) + len(extra))]
        gen = target_results[: len(comps)]
        ones = [True] * len(vt)
        gen_rewards = [generator_reward(r, ones) for r in gen]
        informative = [r for r in target_results if r.program.passed]
        col = {test_key(t): i for i, t in enumerate(vt)}
        fails = [sum(1 for r in informative if not r.tests[i].passed) / len(informative) if informative else 0.0
                 for i in range(len(vt))]
        by_key = {test_key(t): ok for t, ok in zip(union, vu, strict=True)}
        valid = [[by_key[test_key(t)] for t in s.tests] for s in ts]
        caught = [[fails[col[test_key(t)]] if ok else 0.0 for t, ok in zip(s.tests, v, strict=True)]
                  for s, v in zip(ts, valid, strict=True)]
        disc = [discriminator_reward(s, v, c, cfg) for s, v, c in zip(ts, valid, caught, strict=True)]
        n_kept = sum(s.n_kept for s in ts)
        n_valid = sum(sum(v) for v in valid)
        signal = [r for r in gen_rewards if r is not None]
        stats = {
            "answers": float(len(ts)),
            "tests_raw": float(sum(s.n_raw for s in ts)),
            "tests_kept": float(n_kept),
            "tests_valid": float(n_valid),
            "tests_malformed": float(sum(s.n_malformed for s in ts)),
            "tests_duplicate": float(sum(s.n_duplicate for s in ts)),
            "tests_dropped_bound": float(sum(s.n_dropped_bound for s in ts)),
            "validity": n_valid / n_kept if n_kept else 0.0,
            "valid_union": float(len(vt)),
            "gen_no_signal": float(len(gen_rewards) - len(signal)),
            "gen_reward_mean": sum(signal) / len(signal) if signal else 0.0,
            "gen_pass_valid": sum(1 for r in gen if r.passed) / len(gen) if gen and vt else 0.0,
            "gen_caught": sum(1 for r in gen if vt and not r.passed) / len(gen) if gen else 0.0,
            "disc_reward_mean": sum(disc) / len(disc) if disc else 0.0,
        }
        out.append(GroupScore(gen_rewards, disc, ts, valid, caught, vt, gen, stats))
    return out


# --- visible and hidden tests -----------------------------------------------------------------------------------
def visible_reward(judge: Judge, problem: Any, completions: Sequence[str]) -> list[float | None]:
    """Generator rewards on the problem's visible example tests (rl.mode=visible; valid by construction: the
    reference was validated on them at load). No visible test -> None (no signal) for every completion."""
    return visible_rewards(judge, [problem], [completions])[0]


def visible_rewards(judge: Judge, problems: Sequence[Any], completions: Sequence[Sequence[str]]
                    ) -> list[list[float | None]]:
    """`visible_reward` for many problems in one sandbox batch."""
    items = [(p, c, tuple(p.visible_tests)) for p, row in zip(problems, completions, strict=True) for c in row
             if p.visible_tests]
    it = iter(run_programs(judge, items))
    return [[generator_reward(next(it), [True] * len(p.visible_tests)) if p.visible_tests else None for _ in row]
            for p, row in zip(problems, completions, strict=True)]


def hidden_outcomes(judge: Judge, problem: Any, completions: Sequence[str]) -> list[ProgramResult]:
    """Each completion against the problem's hidden tests (scoring only; never a training signal)."""
    return run_programs(judge, [(problem, c, tuple(problem.hidden_tests)) for c in completions])
