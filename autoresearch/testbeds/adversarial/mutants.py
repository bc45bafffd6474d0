"""Mutants of a reference solution by small `ast` transforms: the buggy codes a discriminator's tests should catch
(mutation score, reward targets, "wrong" critique examples).

Operators (each applied at one site of the reference): an int constant +1 / -1, a string constant edited (first character dropped, last one shifted), True <->
False; + <-> -, * -> +, // <-> %, ** -> *, / -> *; < <-> <=, > <-> >=, == <-> !=, in <-> not in; and <-> or; `not x`
-> `x`; an if/while condition negated; a slice's bounds swapped or its step dropped; a returned `a op b` cut to `a`
(return early, before the last operation); one statement of a block deleted; max <-> min, upper <-> lower,
startswith <-> endswith, sorted's reverse flipped by the bool operator. `mutants(problem, n, seed)` lists every
(site, operator) in a fixed order, shuffles it with `seed`, and keeps the first n that compile and differ from the
reference (by AST); duplicates are dropped. Mutants are written by `ast.unparse` (see `normalize_code`). Whether a mutant is *equivalent* (passes every hidden test) is for the
caller to decide in the sandbox. Deterministic: the same (reference, n, seed) gives the same list.
"""

from __future__ import annotations

import ast
import functools
import random
from collections.abc import Callable

from autoresearch.testbeds.adversarial.problems import Problem

__all__ = ["mutants", "mutate_source", "normalize_code"]

_BINOP_SWAP: dict[type, type] = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Add, ast.FloorDiv: ast.Mod,
                                 ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult, ast.Div: ast.Mult}
_CMP_SWAP: dict[type, type] = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
                               ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot,
                               ast.IsNot: ast.Is}
_NAME_SWAP = {"max": "min", "min": "max", "upper": "lower", "lower": "upper", "startswith": "endswith",
              "endswith": "startswith", "any": "all", "all": "any"}
_HEADER = "def __mutant__():\n"

Edit = Callable[[ast.AST], None]


def _edits(node: ast.AST, parent: ast.AST | None) -> list[Edit]:
    """The in-place mutations applicable at `node` (each a function applied to the copy's node)."""
    out: list[Edit] = []
    if isinstance(node, ast.Constant):
        v = node.value
        docstring = isinstance(parent, ast.Expr) and isinstance(v, str)
        if isinstance(v, bool):
            out.append(lambda n: setattr(n, "value", not n.value))
        elif isinstance(v, int):
            out += [lambda n: setattr(n, "value", n.value + 1), lambda n: setattr(n, "value", n.value - 1)]
        elif isinstance(v, str) and not docstring and not isinstance(parent, ast.JoinedStr):
            out += [lambda n: setattr(n, "value", n.value[1:] if len(n.value) > 1 else n.value + "x"),
                    lambda n: setattr(n, "value", n.value[:-1] + _next_char(n.value[-1]) if n.value else "a")]
    elif isinstance(node, ast.BinOp) and type(node.op) in _BINOP_SWAP:
        out.append(lambda n: setattr(n, "op", _BINOP_SWAP[type(n.op)]()))
    elif isinstance(node, ast.AugAssign) and type(node.op) in _BINOP_SWAP:
        out.append(lambda n: setattr(n, "op", _BINOP_SWAP[type(n.op)]()))
    elif isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            if type(op) in _CMP_SWAP:
                out.append(lambda n, i=i: n.ops.__setitem__(i, _CMP_SWAP[type(n.ops[i])]()))
    elif isinstance(node, ast.BoolOp):
        out.append(lambda n: setattr(n, "op", ast.Or() if isinstance(n.op, ast.And) else ast.And()))
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not) and parent is not None:
        out.append(_drop_not)
    elif isinstance(node, ast.Slice):
        if node.lower is not None or node.upper is not None:
            out.append(_swap_bounds)
        if node.step is not None:
            out.append(lambda n: setattr(n, "step", None))
    elif isinstance(node, ast.Return) and isinstance(node.value, ast.BinOp):
        out.append(lambda n: setattr(n, "value", n.value.left))
    elif isinstance(node, ast.Name) and node.id in _NAME_SWAP and isinstance(parent, ast.Call):
        out.append(lambda n: setattr(n, "id", _NAME_SWAP[n.id]))
    elif isinstance(node, ast.Attribute) and node.attr in _NAME_SWAP:
        out.append(lambda n: setattr(n, "attr", _NAME_SWAP[n.attr]))
    if isinstance(node, ast.If | ast.While):
        out.append(lambda n: setattr(n, "test", ast.UnaryOp(op=ast.Not(), operand=n.test)))
    for field in ("body", "orelse"):
        block = getattr(node, field, None)
        if isinstance(block, list) and len(block) > 1 and not isinstance(node, ast.Module):
            for i, st in enumerate(block):
                if isinstance(st, ast.Assign | ast.AugAssign | ast.Expr | ast.If | ast.For):
                    out.append(lambda n, f=field, i=i: getattr(n, f).pop(i))
    return out


def _swap_bounds(n: ast.AST) -> None:
    assert isinstance(n, ast.Slice)
    n.lower, n.upper = n.upper, n.lower


def _next_char(c: str) -> str:
    return {"z": "a", "Z": "A", "9": "0"}.get(c, chr(ord(c) + 1)) if c.isalnum() and c.isascii() else "a"


def _drop_not(n: ast.AST) -> None:
    # `not x` -> `not not x` (= bool(x)): the node stays in place, so no parent needs rewriting.
    assert isinstance(n, ast.UnaryOp)
    n.operand = ast.UnaryOp(op=ast.Not(), operand=n.operand)


def _parse(reference: str) -> tuple[ast.Module, bool] | None:
    """(tree, wrapped): a body (indented continuation of a prompt) is parsed inside a dummy def."""
    try:
        return ast.parse(reference), False
    except SyntaxError:
        pass
    try:
        return ast.parse(_HEADER + reference), True
    except SyntaxError:
        return None


def _unparse(tree: ast.Module, wrapped: bool) -> str:
    text = ast.unparse(ast.fix_missing_locations(tree))
    if wrapped:
        text = text.split("\n", 1)[1] if "\n" in text else ""
    return text + "\n"


def normalize_code(code: str) -> str:
    """`code` (a body or a whole program) as `ast.unparse` writes it, the form mutants are written in, so that a
    mutant differs from the normalised reference only where it was mutated; unchanged when it does not parse."""
    parsed = _parse(code)
    if parsed is None:
        return code
    try:
        return _unparse(*parsed)
    except (ValueError, RecursionError):  # pragma: no cover - unparse of a parsed tree
        return code


def mutate_source(reference: str, n: int, seed: int = 0) -> list[str]:
    """Up to n distinct mutants of a completion or program (see the module docstring)."""
    parsed = _parse(reference)
    if parsed is None or n <= 0:
        return []
    tree, wrapped = parsed
    source = _HEADER + reference if wrapped else reference
    nodes = list(ast.walk(tree))
    parents: dict[int, ast.AST] = {}
    for p in nodes:
        for c in ast.iter_child_nodes(p):
            parents[id(c)] = p
    sites = [(i, k) for i, node in enumerate(nodes) for k in range(len(_edits(node, parents.get(id(node)))))]
    random.Random(f"mutants:{seed}:{reference}").shuffle(sites)
    original = ast.dump(tree)
    seen = {original}
    out: list[str] = []
    for i, k in sites:
        if len(out) == n:
            break
        clone = ast.parse(source)  # a fresh tree: cheaper than deepcopy, same node order
        cnodes = list(ast.walk(clone))
        cparents = {id(c): p for p in cnodes for c in ast.iter_child_nodes(p)}
        node = cnodes[i]
        try:
            _edits(node, cparents.get(id(node)))[k](node)
            dump = ast.dump(clone)
            if dump in seen:
                continue
            text = _unparse(clone, wrapped)
            compile(_HEADER + text if wrapped else text, "<mutant>", "exec")
        except (SyntaxError, ValueError, TypeError, AttributeError, IndexError, RecursionError):
            continue
        seen.add(dump)
        out.append(text)
    return out


def mutants(problem: Problem, n: int, seed: int = 0) -> list[str]:
    """Up to n distinct completions from AST mutations of `problem.reference`, each different from it."""
    return list(_mutants(problem.reference, n, seed))


@functools.lru_cache(maxsize=1 << 16)
def _mutants(reference: str, n: int, seed: int) -> tuple[str, ...]:
    # Cached: SFT critiques, reward targets and the mutation score all ask for the same problems' mutants.
    norm = normalize_code(reference)
    return tuple(m for m in mutate_source(reference, n, seed) if m not in (reference, norm))
