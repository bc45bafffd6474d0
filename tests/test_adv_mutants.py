"""adversarial/mutants.py: AST mutants of a reference: distinct, compiling, different, deterministic, mostly killed."""

from __future__ import annotations

import ast

import pytest

from autoresearch.harness.sandbox import bwrap_status
from autoresearch.testbeds.adversarial.config import RewardConfig
from autoresearch.testbeds.adversarial.judge import Judge
from autoresearch.testbeds.adversarial.mutants import mutants, mutate_source, normalize_code
from autoresearch.testbeds.adversarial.problems import Problem, load_problems


def body_problem(body: str) -> Problem:
    prompt = 'def f(x, xs):\n    """Doc."""\n'
    return Problem(id="p", prompt=prompt, entry_point="f", reference=body, hidden_tests=("assert True\n",),
                   program_prefix=prompt)


def test_mutants_differ_compile_and_are_distinct():
    probs = load_problems("suite", split="train", n=100, validate=False)
    for p in probs:
        ms = mutants(p, 6, seed=0)
        assert ms, p.id
        assert len(set(ms)) == len(ms)
        ref = ast.dump(ast.parse(p.program(p.reference)))
        for m in ms:
            assert m != p.reference and m != normalize_code(p.reference)
            compile(p.program(m), "<m>", "exec")
            assert ast.dump(ast.parse(p.program(m))) != ref


def test_deterministic_by_seed():
    p = body_problem("    t = 0\n    for i in range(x):\n        t += i * 3\n    return t\n")
    assert mutants(p, 4, seed=1) == mutants(p, 4, seed=1)
    many = [tuple(mutants(p, 2, seed=s)) for s in range(6)]
    assert len(set(many)) > 1


@pytest.mark.parametrize(("body", "expected"), [
    ("    return x + 7\n", {"    return x - 7\n", "    return x + 8\n", "    return x + 6\n", "    return x\n"}),
    ("    return x < 3\n", {"    return x <= 3\n"}),
    ("    return x == 3 and x != 4\n", {"    return x == 3 or x != 4\n", "    return x != 3 and x != 4\n"}),
    ("    return xs[1:4]\n", {"    return xs[4:1]\n"}),
    ("    return xs[::-1]\n", {"    return xs[:]\n"}),
    ("    return max(xs)\n", {"    return min(xs)\n"}),
    ("    return 'ab'.upper()\n", {"    return 'ab'.lower()\n", "    return 'b'.upper()\n", "    return 'ac'.upper()\n"}),
    ("    return sorted(xs, reverse=True)\n", {"    return sorted(xs, reverse=False)\n"}),
    ("    if x > 2:\n        return 1\n    return 0\n", {"    if not x > 2:\n        return 1\n    return 0\n"}),
    ("    t = 0\n    t += x\n    return t\n", {"    t = 0\n    return t\n", "    t = 0\n    t -= x\n    return t\n"}),
])
def test_each_operator_kind_is_produced(body, expected):
    got = set(mutants(body_problem(body), 50, seed=0))
    assert expected <= got, got


def test_whole_programs_and_unparseable_references():
    prog = "def f(x):\n    return x * 2\n"
    p = Problem(id="m", prompt='"""Double x."""\n', entry_point="f", reference=prog, hidden_tests=("x",),
                source="mbpp")
    ms = mutants(p, 10, seed=0)
    assert "def f(x):\n    return x + 2\n" in ms and "def f(x):\n    return x * 3\n" in ms
    assert mutants(body_problem("    return (\n"), 5, 0) == []
    assert mutate_source("x = 1\n", 0) == []


def test_normalize_code_is_the_mutants_form():
    assert normalize_code('    out = {}\n    out["a"] = 1\n    return out\n') == \
        "    out = {}\n    out['a'] = 1\n    return out\n"
    assert normalize_code("    return (\n") == "    return (\n"


def test_most_suite_mutants_fail_a_hidden_test():
    """The caller drops equivalent mutants; most must be real bugs (killed by the hidden tests)."""
    ok, _ = bwrap_status()
    probs = load_problems("suite", split="heldout", n=30, validate=False)
    jobs = [(p.program(m), p.hidden_tests) for p in probs for m in mutants(p, 3, seed=0)]
    with Judge(RewardConfig(workers=2, allow_reduced=not ok)) as judge:
        results = judge.run(jobs)
    killed = sum(r.status != "pass" for r in results) / len(results)
    assert killed >= 0.8, killed
