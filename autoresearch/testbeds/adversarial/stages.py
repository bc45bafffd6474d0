"""The five reasoning stages of the generator's chain, their tagged text format, the prompts of both roles, and the
canonical (SFT-target) texts derived mechanically from any `Problem`.

A chain is text with one section per stage, each opened by its tag line, ending with the code:

    ### informal            the statement restated + the example's answer when short ("Example answer: 10.")
    ### plan                numbered steps from the signature and the reference's statements (inputs, constants, ...)
    ### pseudocode          the reference body in words (`return x + 7` -> `RETURN x PLUS 7`)
    ### constraints         the visible examples as executable `assert f(..) == ..` lines (never hidden tests)
    ### code                the reference completion as ast.unparse writes it (the form mutants take, so a "wrong"
                            critique example differs from an "ok" one only in the bug): program = problem.program(code)

`stages=1` is the code section alone (the matched-compute ablation). Prompts: the generator continues
`problem.prompt + prefix sections + "### <next stage>\n"`; the discriminator continues `problem.prompt + "### tests\n"`
(answer: assert lines) or `problem.prompt + chain through a stage + "### critique\n"` (answer: "ok" | "wrong").
An optional `### feedback` section after the prompt carries a previous attempt's failures (multi-attempt).

Round trip: `parse_chain(render_chain(c, s), s) == c` for sections that are empty or end with a newline (all
canonical ones do). Canonical tests of a suite problem: the visible example plus fresh inputs near it (each argument
perturbed: ints +-k, strings/lists/dicts edited), outputs computed by running the suite's own reference in-process
(template code this package generated in this process, `problems.is_generated_suite`, never a model's or a
user's, even when a user file says source "suite"); inputs equal to a hidden test's are skipped,
so no hidden test text reaches a training text. Other sources' canonical tests are their visible examples.
"""

from __future__ import annotations

import ast
import copy
import functools
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from autoresearch.testbeds.adversarial.mutants import mutants, normalize_code
from autoresearch.testbeds.adversarial.problems import Problem, is_generated_suite
from autoresearch.testbeds.common._templates import WORDS

__all__ = ["Stage", "STAGES", "STAGE_NAMES", "TESTS_TAG", "CRITIQUE_TAG", "FEEDBACK_TAG", "CRITIQUE_OK",
           "CRITIQUE_WRONG", "chain_stages", "stage_by_name", "canonical_chain", "render_chain", "parse_chain",
           "generator_prompt", "tests_prompt", "critique_prompt", "canonical_tests", "code_of", "canonical_critiques",
           "pseudocode_of", "corrupt_text"]


@dataclass(frozen=True)
class Stage:
    """One reasoning stage: its place, name, tag line in chain text, what it holds and how it is checked."""

    index: int
    name: str
    tag: str
    description: str
    checkable: str


STAGES: tuple[Stage, ...] = (
    Stage(1, "informal", "### informal", "the statement restated in plain words, with the example",
          "mentions the problem's constants and example output"),
    Stage(2, "plan", "### plan", "numbered steps: inputs, constants, one step per statement",
          "numbered lines; constants match the reference's"),
    Stage(3, "pseudocode", "### pseudocode", "the body in words (RETURN x PLUS 7)", "one line per statement"),
    Stage(4, "constraints", "### constraints", "the visible examples as assert lines",
          "executable asserts: each must pass on the reference"),
    Stage(5, "code", "### code", "the completion (a function body, or a whole program for MBPP)",
          "runs in the sandbox against the tests"),
)
STAGE_NAMES = tuple(s.name for s in STAGES)
TESTS_TAG = "### tests"
CRITIQUE_TAG = "### critique"
FEEDBACK_TAG = "### feedback"
CRITIQUE_OK = "ok"
CRITIQUE_WRONG = "wrong"


def chain_stages(n_stages: int) -> tuple[Stage, ...]:
    """5 -> all five stages in order; 1 -> (code,)."""
    if n_stages == 5:
        return STAGES
    if n_stages == 1:
        return (STAGES[-1],)
    raise ValueError(f"n_stages must be 5 or 1, got {n_stages}")


def stage_by_name(name: str) -> Stage:
    for s in STAGES:
        if s.name == name:
            return s
    raise KeyError(f"unknown stage {name!r}; stages: {', '.join(STAGE_NAMES)}")


# --- chain text -----------------------------------------------------------------------------------------------------
def _ordered(chain: dict[str, str], stages: Sequence[Stage] | None) -> list[Stage]:
    if stages is None:
        return [s for s in STAGES if s.name in chain]
    return list(stages)


def render_chain(chain: dict[str, str], stages: Sequence[Stage] | None = None) -> str:
    """The sections of `stages` (default: the stages present in `chain`, in order), each `tag\\n` + text; a
    non-empty text not ending in a newline gets one."""
    out = []
    for s in _ordered(chain, stages):
        text = chain.get(s.name, "")
        out.append(f"{s.tag}\n{text}" + ("\n" if text and not text.endswith("\n") else ""))
    return "".join(out)


def parse_chain(text: str, stages: Sequence[Stage] | None = None) -> dict[str, str]:
    """Sections of `stages` (default: all five) found in `text` by their tag lines; missing ones are "". Text
    before the first tag line belongs to `stages[0]`: to parse a model's answer to `generator_prompt(..., stage=s)`
    (which ends with s's tag line), pass the stages from s on. A tests / critique / feedback tag ends the current
    section. Never raises."""
    stages = list(STAGES if stages is None else stages)
    out = {s.name: "" for s in stages}
    if not stages or not isinstance(text, str):
        return out
    by_tag = {s.tag: s.name for s in stages}
    current: str | None = stages[0].name
    buf: dict[str, list[str]] = {s.name: [] for s in stages}
    for line in text.splitlines(keepends=True):
        head = line.rstrip("\r\n").rstrip()
        if head in by_tag:
            current = by_tag[head]
            buf[current] = []  # a repeated tag starts the section over
            continue
        if head in (TESTS_TAG, CRITIQUE_TAG, FEEDBACK_TAG):
            current = None
            continue
        if current is not None:
            buf[current].append(line)
    for name, lines in buf.items():
        out[name] = "".join(lines)
    return out


def code_of(chain: dict[str, str]) -> str:
    """The code stage's text: the completion for `problem.program()`."""
    return chain.get("code", "")


# --- prompts ------------------------------------------------------------------------------------------------------
def _feedback(feedback: str) -> str:
    if not feedback.strip():
        return ""
    return f"{FEEDBACK_TAG}\n{feedback.rstrip()}\n"


def generator_prompt(problem: Problem, prefix_chain: dict[str, str] | None = None, stage: Stage | None = None,
                     feedback: str = "", n_stages: int = 5) -> str:
    """problem.prompt [+ feedback] + the rendered prefix stages + the next stage's tag line; the model continues
    with that stage's text and every later one through the code. `stage` default: the first stage of
    `chain_stages(n_stages)` not in `prefix_chain`."""
    prefix_chain = prefix_chain or {}
    if stage is None:
        stage = next((s for s in chain_stages(n_stages) if s.name not in prefix_chain), STAGES[-1])
    before = [s for s in STAGES if s.index < stage.index and s.name in prefix_chain]
    return problem.prompt + _feedback(feedback) + render_chain(prefix_chain, before) + stage.tag + "\n"


def tests_prompt(problem: Problem, feedback: str = "") -> str:
    """The discriminator's tests prompt: problem.prompt [+ feedback] + "### tests\\n"; the answer is assert lines."""
    return problem.prompt + _feedback(feedback) + TESTS_TAG + "\n"


tests_prompt.__test__ = False  # type: ignore[attr-defined]  # not a pytest test when imported into a test module


def critique_prompt(problem: Problem, chain: dict[str, str], stage: Stage) -> str:
    """problem.prompt + the chain's sections through `stage` + "### critique\\n"; the answer is "ok" or "wrong"."""
    through = [s for s in STAGES if s.index <= stage.index and s.name in chain]
    return problem.prompt + render_chain(chain, through) + CRITIQUE_TAG + "\n"


# --- canonical texts ----------------------------------------------------------------------------------------------
_BINOP = {ast.Add: "PLUS", ast.Sub: "MINUS", ast.Mult: "TIMES", ast.Div: "DIVIDED BY", ast.FloorDiv: "DIV",
          ast.Mod: "MOD", ast.Pow: "POW", ast.BitAnd: "BITAND", ast.BitOr: "BITOR", ast.BitXor: "XOR",
          ast.LShift: "SHL", ast.RShift: "SHR", ast.MatMult: "MATMUL"}
_CMP = {ast.Gt: "GREATER THAN", ast.Lt: "LESS THAN", ast.GtE: "AT LEAST", ast.LtE: "AT MOST", ast.Eq: "EQUALS",
        ast.NotEq: "NOT EQUALS", ast.In: "IN", ast.NotIn: "NOT IN", ast.Is: "IS", ast.IsNot: "IS NOT"}


def _entry_def(problem: Problem, completion: str) -> ast.FunctionDef | None:
    try:
        tree = ast.parse(problem.program(completion))
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == problem.entry_point:
            return node
    return None


def _body(fn: ast.FunctionDef) -> list[ast.stmt]:
    body = list(fn.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    return body


def _expr(e: ast.expr) -> str:
    """An expression in words: operators spelled out, everything else as Python."""
    if isinstance(e, ast.BinOp) and type(e.op) in _BINOP:
        return f"{_expr(e.left)} {_BINOP[type(e.op)]} {_atom(e.right)}"
    if isinstance(e, ast.Compare) and all(type(o) in _CMP for o in e.ops):
        parts = [_expr(e.left)]
        for op, right in zip(e.ops, e.comparators, strict=True):
            parts += [_CMP[type(op)], _expr(right)]
        return " ".join(parts)
    if isinstance(e, ast.BoolOp):
        word = " AND " if isinstance(e.op, ast.And) else " OR "
        return word.join(_atom(v) for v in e.values)
    if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.Not):
        return f"NOT {_atom(e.operand)}"
    if isinstance(e, ast.ListComp | ast.SetComp | ast.GeneratorExp) and len(e.generators) == 1:
        g = e.generators[0]
        conds = "".join(f" IF {_expr(c)}" for c in g.ifs)
        return f"EACH {_expr(e.elt)} FOR {ast.unparse(g.target)} IN {_expr(g.iter)}{conds}"
    if isinstance(e, ast.DictComp) and len(e.generators) == 1:
        g = e.generators[0]
        conds = "".join(f" IF {_expr(c)}" for c in g.ifs)
        return f"MAP {_expr(e.key)} TO {_expr(e.value)} FOR {ast.unparse(g.target)} IN {_expr(g.iter)}{conds}"
    if isinstance(e, ast.Call):
        args = [_expr(a) for a in e.args] + [f"{k.arg}={_expr(k.value)}" for k in e.keywords if k.arg]
        return f"{ast.unparse(e.func)}({', '.join(args)})"
    return ast.unparse(e)


def _atom(e: ast.expr) -> str:
    s = _expr(e)
    return f"({s})" if isinstance(e, ast.BinOp | ast.BoolOp | ast.Compare) else s


def _stmts(body: Sequence[ast.stmt], depth: int, out: list[str]) -> None:
    pad = "  " * depth
    for st in body:
        if isinstance(st, ast.Return):
            out.append(f"{pad}RETURN {_expr(st.value) if st.value else 'NOTHING'}")
        elif isinstance(st, ast.Assign):
            out.append(f"{pad}SET {' = '.join(ast.unparse(t) for t in st.targets)} TO {_expr(st.value)}")
        elif isinstance(st, ast.AugAssign) and type(st.op) in _BINOP:
            t = ast.unparse(st.target)
            out.append(f"{pad}SET {t} TO {t} {_BINOP[type(st.op)]} {_atom(st.value)}")
        elif isinstance(st, ast.For):
            out.append(f"{pad}FOR {ast.unparse(st.target)} IN {_expr(st.iter)}:")
            _stmts(st.body, depth + 1, out)
        elif isinstance(st, ast.While):
            out.append(f"{pad}WHILE {_expr(st.test)}:")
            _stmts(st.body, depth + 1, out)
        elif isinstance(st, ast.If):
            out.append(f"{pad}IF {_expr(st.test)}:")
            _stmts(st.body, depth + 1, out)
            if st.orelse:
                out.append(f"{pad}ELSE:")
                _stmts(st.orelse, depth + 1, out)
        elif isinstance(st, ast.Expr):
            out.append(f"{pad}DO {_expr(st.value)}")
        else:
            out.extend(pad + line for line in ast.unparse(st).splitlines())


def pseudocode_of(problem: Problem, completion: str) -> str:
    """The entry point's body of program(completion) in words, one line per statement (2-space nesting);
    "" when it does not parse or has no entry point."""
    fn = _entry_def(problem, completion)
    if fn is None:
        return ""
    out: list[str] = []
    _stmts(_body(fn), 0, out)
    return "".join(line + "\n" for line in out)


def _constants(stmts: Sequence[ast.stmt]) -> list[str]:
    seen: list[str] = []
    for st in stmts:
        for node in ast.walk(st):
            if isinstance(node, ast.Constant) and not isinstance(node.value, bool) and node.value is not None:
                r = repr(node.value)
                if r not in seen and len(r) <= 20:
                    seen.append(r)
    return seen[:4]


def _step(st: ast.stmt, returns: str) -> str:
    if isinstance(st, ast.Return):
        return f"return {returns}" if returns else "return the result"
    if isinstance(st, ast.Assign):
        return f"set {', '.join(ast.unparse(t) for t in st.targets)}"
    if isinstance(st, ast.AugAssign):
        return f"update {ast.unparse(st.target)}"
    if isinstance(st, ast.For):
        return f"loop over {ast.unparse(st.iter)}"
    if isinstance(st, ast.While):
        return "loop while the condition holds"
    if isinstance(st, ast.If):
        return "branch on a condition"
    return f"do {type(st).__name__.lower()}"


def _plan(problem: Problem) -> str:
    fn = _entry_def(problem, problem.reference)
    if fn is None:
        return f"1. write {problem.entry_point}\n"
    args = [a.arg for a in fn.args.args]  # their types are in the signature already
    returns = ast.unparse(fn.returns) if fn.returns else ""
    body = _body(fn)
    steps = [f"inputs: {', '.join(args) or 'none'}"]
    consts = _constants(body)
    if consts:
        steps.append(f"constants: {', '.join(consts)}")
    steps += [_step(st, returns) for st in body[:6]]
    return "".join(f"{i}. {s}\n" for i, s in enumerate(steps, 1))


def _split_assert(test: str) -> tuple[str, str] | None:
    """(call, expected) of `assert call == expected`, else None."""
    try:
        node = ast.parse(test.strip()).body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if len(node) != 1 or not isinstance(node[0], ast.Assert):
        return None
    t = node[0].test
    if isinstance(t, ast.Compare) and len(t.ops) == 1 and isinstance(t.ops[0], ast.Eq):
        return ast.unparse(t.left), ast.unparse(t.comparators[0])
    return None


_SHORT_OUTPUT = 24  # characters; keeps prompt + chain <= 256 BPE tokens for the suite (module docstring)


def _informal(problem: Problem) -> str:
    text = problem.description.strip() or f"Write {problem.entry_point}."
    if problem.visible_tests:
        parts = _split_assert(problem.visible_tests[0])
        if parts and len(parts[1]) <= _SHORT_OUTPUT:  # long outputs stay in the prompt and constraints only
            text += f" Example answer: {parts[1]}."
    return text + "\n"


def canonical_chain(problem: Problem, n_stages: int = 5) -> dict[str, str]:
    """Stage name -> canonical text (the generator's SFT target) for the stages of `chain_stages(n_stages)`."""
    return dict(_canonical_chain(problem, n_stages))


@functools.lru_cache(maxsize=1 << 16)
def _canonical_chain(problem: Problem, n_stages: int) -> tuple[tuple[str, str], ...]:
    # Cached (problems are frozen): SFT pairs of both roles, BPE texts and critiques all need the same chains.
    texts = {
        "informal": lambda: _informal(problem),
        "plan": lambda: _plan(problem),
        "pseudocode": lambda: pseudocode_of(problem, problem.reference),
        "constraints": lambda: "".join(t if t.endswith("\n") else t + "\n" for t in problem.visible_tests),
        "code": lambda: normalize_code(problem.reference),
    }
    return tuple((s.name, texts[s.name]()) for s in chain_stages(n_stages))


# --- canonical tests ----------------------------------------------------------------------------------------------
def _call_args(test: str, entry_point: str) -> tuple | None:
    """The literal positional arguments of the entry-point call in `assert f(...) == ...`, else None."""
    try:
        node = ast.parse(test.strip()).body[0]
        assert isinstance(node, ast.Assert) and isinstance(node.test, ast.Compare)
        call = node.test.left
        assert isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == entry_point
        assert not call.keywords
        return tuple(ast.literal_eval(a) for a in call.args)
    except (AssertionError, SyntaxError, ValueError, TypeError, IndexError, RecursionError, MemoryError):
        return None


def _perturb(v: Any, rng: random.Random, ints: Sequence[int], letters: str) -> Any:
    """A value near `v` of the same type; `ints` / `letters` are the problem's own constants (boundary cases)."""
    if isinstance(v, bool):
        return not v
    if isinstance(v, int):
        if ints and rng.random() < 0.4:
            return max(0, rng.choice(ints) + rng.choice([-1, 0, 1]))
        return max(0, v + rng.choice([-3, -2, -1, 1, 2, 3, 5, 7]))
    if isinstance(v, float):
        return round(v + rng.choice([-1.5, -0.5, 0.5, 1.0, 2.5]), 3)
    if isinstance(v, str):
        pool = v + letters or "abc"
        ops = [lambda s: s + rng.choice(pool), lambda s: s[::-1], lambda s: s[1:] or s + s,
               lambda s: rng.choice(pool) + s, lambda s: "".join(rng.sample(s, len(s))),
               lambda s: "".join(rng.choice(pool) for _ in range(max(1, len(s))))]
        return rng.choice(ops)(v)
    if isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in v):
        near = [max(0, c + d) for c in ints for d in (-1, 0, 1)] or [rng.randint(0, 20)]
        ops = [lambda xs: xs + [rng.randint(0, 20)], lambda xs: xs[::-1], lambda xs: xs[1:] or xs + xs,
               lambda xs: [max(0, x + rng.choice([-1, 1, 2])) for x in xs],
               lambda xs: rng.sample(xs, len(xs)) + [rng.choice(near)], lambda xs: xs + [rng.choice(near)],
               lambda xs: [rng.choice(near) if rng.random() < 0.5 else x for x in xs]]
        return rng.choice(ops)(list(v))
    if isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, int) for k, x in v.items()):
        d = dict(v)
        choice = rng.random()
        if choice < 0.4 and d:
            k = rng.choice(sorted(d))
            d[k] = max(0, (rng.choice(ints) if ints and rng.random() < 0.5 else d[k]) + rng.choice([-1, 1, 2]))
        elif choice < 0.8 or len(d) < 2:
            d[rng.choice(WORDS)] = rng.randint(0, 20)
        else:
            del d[rng.choice(sorted(d))]
        return d
    return v


def _literal(v: Any) -> bool:
    """`repr(v)` is a Python literal that evaluates back to `v` (plain data, checked structurally: no parsing)."""
    if v is None or isinstance(v, bool | int | str):
        return True
    if isinstance(v, float):
        return v == v and v not in (float("inf"), float("-inf"))
    if isinstance(v, list | tuple):
        return all(_literal(x) for x in v)
    if isinstance(v, dict):
        return all(_literal(k) and _literal(x) for k, x in v.items())
    return False


def _suite_cases(problem: Problem, n: int) -> list[str]:
    """Up to n fresh `assert` lines for a suite problem (see the module docstring)."""
    seen = {repr(a) for t in problem.hidden_tests + problem.visible_tests
            if (a := _call_args(t, problem.entry_point)) is not None}
    base = [a for t in problem.visible_tests if (a := _call_args(t, problem.entry_point)) is not None]
    if not base:
        return []
    ns: dict[str, Any] = {}
    try:
        exec(compile(problem.program(problem.reference), f"<suite {problem.id}>", "exec"), ns)  # noqa: S102 - our template code
    except Exception:  # noqa: BLE001 - a broken reference gives no extra cases; validation reports it
        return []
    fn = ns.get(problem.entry_point)
    stated = problem.description or problem.prompt
    ints = sorted({int(m) for m in re.findall(r"(?<![\w.])\d{1,3}(?![\w.])", stated)})
    letters = "".join(sorted({c for q in _STR.findall(stated) for c in "".join(q) if c.isalpha()}))
    rng = random.Random(f"canonical-tests:{problem.id}:{problem.prompt}")
    cases: list[tuple[str, str]] = []
    for _ in range(60 * max(n, 1)):
        if len(cases) == 4 * n:
            break
        src = rng.choice(base)
        args = tuple(_perturb(a, rng, ints, letters) if rng.random() < 0.8 or len(src) == 1 else a for a in src)
        if rng.random() < 0.3:  # a second step reaches inputs further from the example
            args = tuple(_perturb(a, rng, ints, letters) for a in args)
        if repr(args) in seen:
            continue
        seen.add(repr(args))
        try:
            result = fn(*copy.deepcopy(args))  # type: ignore[misc]
        except Exception:  # noqa: BLE001 - an input outside the function's domain (e.g. index past the end)
            continue
        if not _literal(result) or not all(_literal(a) for a in args):
            continue
        cases.append((f"assert {problem.entry_point}({', '.join(repr(a) for a in args)}) == {result!r}\n",
                      repr(result)))
    # Prefer outputs not seen yet (tests that tell behaviours apart), then the rest in drawing order.
    outs = {parts[1] for t in problem.visible_tests if (parts := _split_assert(t))}
    picked: list[str] = []
    for line, out in cases:
        if out not in outs and len(picked) < n:
            picked.append(line)
            outs.add(out)
    picked += [line for line, _ in cases if line not in picked][: n - len(picked)]
    return picked


@functools.lru_cache(maxsize=1 << 16)
def canonical_tests(problem: Problem, n: int = 3) -> str:
    """The discriminator's SFT target: assert lines, never a hidden test. Suite: the visible example + n - 1 fresh
    cases (module docstring); other sources: the visible examples (MBPP's is also one of its standard tests and is
    shown in its prompt)."""
    lines = [t if t.endswith("\n") else t + "\n" for t in problem.visible_tests[:n]]
    if is_generated_suite(problem):
        lines += _suite_cases(problem, n - len(lines))
    return "".join(lines)


# --- critiques ----------------------------------------------------------------------------------------------------
_NUM = re.compile(r"(?<![\w.])-?\d+(?![\w.])")
_STEP = re.compile(r"^\d+\. ", re.M)
_STR = re.compile(r"\"([^\"\n]*)\"|'([^'\n]*)'")


def corrupt_text(text: str, rng: random.Random) -> str | None:
    """`text` with one number changed (+-1..3), else a True/False flipped, else one quoted string edited; step
    numbers at a line start ("2. ") are left alone. None when there is nothing to change."""
    steps = {m.start() for m in _STEP.finditer(text)}
    nums = [m for m in _NUM.finditer(text) if m.start() not in steps]
    if nums:
        m = rng.choice(nums)
        new = int(m.group()) + rng.choice([-3, -2, -1, 1, 2, 3])
        return text[: m.start()] + str(new) + text[m.end():]
    bools = list(re.finditer(r"\b(True|False)\b", text))
    if bools:
        m = rng.choice(bools)
        return text[: m.start()] + ("False" if m.group() == "True" else "True") + text[m.end():]
    strs = list(_STR.finditer(text))
    if strs:
        m = rng.choice(strs)
        return text[: m.end() - 1] + rng.choice("xqz") + text[m.end() - 1:]
    return None


def _corrupt_expected(text: str, rng: random.Random) -> str | None:
    """Assert lines with one line's expected value (right of `==`) corrupted: the inputs stay those of the visible
    examples, so a wrong constraint never spells another input (e.g. a hidden test's call)."""
    lines = text.splitlines(keepends=True)
    order = list(range(len(lines)))
    rng.shuffle(order)
    for i in order:
        call, sep, expected = lines[i].partition(" == ")
        if not sep:
            continue
        bad = corrupt_text(expected, rng)
        if bad is None and expected.strip() in ("[]", "{}", "()", "''", '""'):
            bad = expected.replace(expected.strip(), {"[]": "[0]", "{}": "{'a': 0}", "()": "(0,)"}.get(
                expected.strip(), "'a'"))
        if bad is not None:
            return "".join(lines[:i]) + call + sep + bad + "".join(lines[i + 1:])
    return None


def canonical_critiques(problem: Problem, n_stages: int = 5, seed: int = 0,
                        mutant_codes: Sequence[str] | None = None) -> list[tuple[str, str]]:
    """(critique prompt, "ok" | "wrong") pairs: for each stage of the chain, the canonical chain through it ("ok")
    and the same with that stage corrupted ("wrong"): code and pseudocode from a mutant of the reference
    (`mutant_codes`, default mutants.mutants(problem, 2, seed)), informal / plan by `corrupt_text`, constraints by
    changing one expected value.
    A stage with nothing to corrupt gets only its "ok" pair."""
    rng = random.Random(f"critique:{seed}:{problem.id}")
    chain = canonical_chain(problem, n_stages)
    codes = list(mutant_codes) if mutant_codes is not None else mutants(problem, 2, seed)
    pairs: list[tuple[str, str]] = []
    for stage in chain_stages(n_stages):
        pairs.append((critique_prompt(problem, chain, stage), CRITIQUE_OK))
        bad: str | None = None
        if stage.name == "code" and codes:
            bad = rng.choice(codes)
        elif stage.name == "pseudocode" and codes:
            bad = pseudocode_of(problem, rng.choice(codes)) or None
        elif stage.name == "constraints":
            bad = _corrupt_expected(chain[stage.name], rng)
        elif stage.name in ("informal", "plan"):
            bad = corrupt_text(chain[stage.name], rng)
        if bad is not None and bad != chain[stage.name]:
            pairs.append((critique_prompt(problem, {**chain, stage.name: bad}, stage), CRITIQUE_WRONG))
    return pairs
