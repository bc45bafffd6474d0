"""Completion post-processing: fences, stop sequences, function extraction, per-benchmark assembly."""

from __future__ import annotations

import pytest

from autoresearch.harness.code_tasks import load_humaneval
from autoresearch.harness.postprocess import (
    HUMANEVAL_STOP,
    MBPP_STOP,
    CodeBlock,
    choose_block,
    code_blocks,
    extract_function,
    looks_fenced,
    postprocess_completion,
    stop_policy,
    strip_fences,
    truncate_at_stop,
)


def test_strip_fences():
    assert strip_fences("no fence\n") == "no fence\n"
    assert strip_fences("Here:\n```python\ndef f():\n    return 1\n```\nDone.") == "def f():\n    return 1"
    assert strip_fences("```\nx = 1\n```") == "x = 1"
    two = "```text\nnot code\n```\nand\n```py\ny = 2\n```"
    assert strip_fences(two) == "y = 2"  # the python-tagged block wins over an earlier untagged one
    assert strip_fences("```python\ndef f():\n    return 1") == "def f():\n    return 1"  # cut-off generation


def test_truncate_at_stop():
    text = "    return x\n\ndef other():\n    pass\nprint(1)"
    assert truncate_at_stop(text, HUMANEVAL_STOP) == "    return x\n"
    assert truncate_at_stop("abc", ["zz"]) == "abc"
    assert truncate_at_stop("a#b", ["", "#"]) == "a"


def test_extract_function_keeps_definitions_and_drops_demo_code():
    code = (
        "import math\nLIMIT = 3\n\ndef helper(x):\n    return x * 2\n\n@staticmethod\ndef target(x):\n"
        "    return helper(x) + LIMIT\n\nprint(target(1))\nassert target(1) == 5\n"
        "if __name__ == '__main__':\n    target(input())\n"
    )
    out = extract_function(code, "target")
    assert "import math" in out and "LIMIT = 3" in out and "def helper" in out and "@staticmethod" in out
    assert "print(" not in out and "assert" not in out and "__main__" not in out
    assert extract_function(code, "missing") is None
    truncated = "def target(x):\n    return x\n\ndef half(y):\n    return (y +"
    assert extract_function(truncated, "target") == "def target(x):\n    return x\n"


def test_humaneval_body_continuation_is_cut_at_stops():
    t = load_humaneval()[2]  # truncate_number
    raw = "    return number % 1.0\n\n\ndef check():\n    pass\n"
    comp = postprocess_completion(raw, t.entry_point, "humaneval")
    assert comp == "    return number % 1.0\n\n"
    ns: dict = {}
    exec(compile(t.program(comp), "<p>", "exec"), ns)  # trusted snippet: checks the assembled program works
    assert ns["truncate_number"](3.5) == 0.5


def test_humaneval_chat_answer_with_whole_function_is_a_valid_redefinition():
    t = load_humaneval()[2]
    raw = (
        "Sure! Here is the function:\n```python\ndef truncate_number(number: float) -> float:\n"
        "    return number - int(number)\n\nprint(truncate_number(3.5))\n```\nHope this helps."
    )
    comp = postprocess_completion(raw, t.entry_point, "humaneval")
    assert comp.startswith("\ndef truncate_number") and "print(" not in comp
    ns: dict = {}
    exec(compile(t.program(comp), "<p>", "exec"), ns)
    assert ns["truncate_number"](2.25) == 0.25


def test_mbpp_completion_is_a_whole_program():
    raw = "def add(a, b):\n    return a + b\nassert add(1, 2) == 3\nprint(add(2, 2))\n"
    assert postprocess_completion(raw, "add", "mbpp") == "def add(a, b):\n    return a + b\n"
    fenced = (
        "```python\nimport os\n\nclass Node:\n    pass\n\ndef add(a, b):\n    return a + b\n\nprint(add(1, 1))\n```"
    )
    comp = postprocess_completion(fenced, "add", "mbpp")
    assert "class Node" in comp and "import os" in comp and "print" not in comp  # no stop cut on fenced code
    assert postprocess_completion("x = (", "add", "mbpp") == "x = ("  # left for the sandbox to call a syntax error


# --- CommonMark fences ----------------------------------------------------------------------------------------------
def _run(program: str, call: str):
    ns: dict = {}
    exec(compile(program, "<p>", "exec"), ns)  # trusted test snippets only
    return eval(call, ns)


def test_four_backtick_fence_holding_a_three_backtick_line_is_kept_whole():
    raw = 'Here:\n````python\ndef render(x):\n    s = """\n```\ncode\n```\n"""\n    return s + str(x)\n````\nDone.\n'
    (b,) = code_blocks(raw)
    assert b.tag == "python" and b.closed and b.body.endswith("return s + str(x)")
    comp = postprocess_completion(raw, "render", "mbpp")
    assert "```\ncode\n```" in comp and _run(comp, "render(1)").endswith("1")


@pytest.mark.parametrize(
    "raw, body",
    [
        ("~~~py\nx = 1\n~~~\n", "x = 1"),  # tildes with an info string
        ("~~~~\nx = 1\n~~~\ny = 2\n~~~~\n", "x = 1\n~~~\ny = 2"),  # a shorter tilde line does not close
        ("```python\nx = 1\n~~~\n```\n", "x = 1\n~~~"),  # the other fence character does not close
        ("```python\nx = 1\n``` not a close\ny = 2\n```", "x = 1\n``` not a close\ny = 2"),  # text after it
        ("```python\nx = 1\n   ````  \n", "x = 1"),  # a longer, indented closing fence closes
        ("``` python title=a.py\nx = 1\n```", "x = 1"),  # info string: first word is the tag
        ("```python\ndef f():\n    return 1", "def f():\n    return 1"),  # unclosed: runs to the end
        ("```python\ndef f():\n    return 1```", "def f():\n    return 1"),  # close glued to the last line
        ("1. Code:\n   ```python\n   def f():\n       return 1\n   ```\n", "def f():\n    return 1"),  # in a list
    ],
)
def test_fence_kinds(raw, body):
    assert strip_fences(raw) == body


def test_inline_triple_backticks_are_not_fences():
    assert code_blocks("Use ```x``` inline, then\n```py\ny = 2\n```") == [CodeBlock("py", "y = 2")]
    assert code_blocks("no fence here") == []


# --- choosing among several blocks ----------------------------------------------------------------------------------
USAGE = "```python\nprint(add(1, 2))\nassert add(2, 2) == 4\n```"
DEF = "```\ndef add(a, b):\n    return a + b\n```"


def test_block_defining_the_entry_point_wins_over_an_earlier_tagged_usage_block():
    raw = f"Usage first:\n{USAGE}\nThe function:\n{DEF}\n"
    assert postprocess_completion(raw, "add", "mbpp") == "def add(a, b):\n    return a + b\n"
    raw2 = f"{DEF}\nTests:\n{USAGE}\n"  # and over a later one
    assert postprocess_completion(raw2, "add", "mbpp") == "def add(a, b):\n    return a + b\n"


def test_block_choice_by_kind():
    other_lang = "```text\n这个函数把两个数相加。\n```\n```bash\npip install nothing\n```\n"
    assert choose_block(code_blocks(other_lang + DEF), "add").body.startswith("def add")
    # No block defines it: a python/untagged block that parses beats an output block and a broken one.
    blocks = code_blocks("```output\n[1, 2]\n```\n```python\nx = (\n```\n```\ny = 3\n```")
    assert choose_block(blocks, "add").body == "y = 3"
    # Several define it: the one that parses wins.
    two = "```python\ndef add(a, b):\n    return a +\n```\n```python\ndef add(a, b):\n    return a+b\n```"
    assert choose_block(code_blocks(two), "add").body.endswith("return a+b")
    # A cut-off final block that still defines the function beats a complete usage block.
    raw = f"{USAGE}\n```python\ndef add(a, b):\n    return a + b\n\nprint(add("
    assert postprocess_completion(raw, "add", "mbpp") == "def add(a, b):\n    return a + b\n"
    assert choose_block([], "add") is None


def test_helper_from_another_block_is_kept():
    raw = (
        "A helper:\n```python\nimport math\n\ndef is_prime(n):\n    return n > 1 and all(n % d for d in "
        "range(2, math.isqrt(n) + 1))\n```\nThen:\n```python\ndef count_primes(xs):\n"
        "    return sum(map(is_prime, xs))\n\nprint(count_primes([2, 3, 4]))\n```"
    )
    comp = postprocess_completion(raw, "count_primes", "mbpp")
    assert "def is_prime" in comp and "import math" in comp and "print(" not in comp
    assert _run(comp, "count_primes([2, 3, 4, 9, 11])") == 3


def test_unfenced_prose_and_indented_code():
    prose = "Sure! Here is the function:\n\ndef add(a, b):\n    return a + b\n\nThis adds two numbers."
    assert postprocess_completion(prose, "add", "mbpp") == "def add(a, b):\n    return a + b\n"
    indented = "The answer:\n\n    def add(a, b):\n        return a + b\n\nIt works."
    assert postprocess_completion(indented, "add", "mbpp") == "def add(a, b):\n    return a + b\n"
    t = load_humaneval()[2]
    he = indented.replace("add(a, b)", "truncate_number(number)").replace("a + b", "number % 1.0")
    comp = postprocess_completion(he, t.entry_point, "humaneval")
    assert _run(t.program(comp), "truncate_number(2.5)") == 0.5


def test_humaneval_fenced_body_at_column_zero_is_indented_into_the_function():
    t = load_humaneval()[2]
    comp = postprocess_completion("```python\nreturn number % 1.0\n```", t.entry_point, "humaneval")
    assert comp == "    return number % 1.0"
    assert _run(t.program(comp), "truncate_number(3.25)") == 0.25


@pytest.mark.parametrize(
    "text, fenced",
    [
        ("```python\ndef f():\n    pass\n```\n", True),
        ("\n  ~~~\nx = 1\n~~~\n", True),
        ("````py\nx = '```'\n````", True),
        ("    return 1\n", False),
        ("def f():\n    '''```'''\n", False),
    ],
)
def test_looks_fenced_only_for_completions_that_begin_with_a_fence(text, fenced):
    assert looks_fenced(text) is fenced


def _suite_task():
    from autoresearch.testbeds.common.tasks import make_suite

    return make_suite("heldout", 1, seed=0)[0]


def test_stop_policy_follows_the_prompt_style():
    """One policy for every scorer: a task that continues its prompt (HumanEval, the generated suite) is cut at
    HumanEval's stops, a whole-program task (MBPP-shaped: no program_prefix) at MBPP's; chat gets no sampler stops."""
    from autoresearch.harness.code_tasks import CodeTask

    he, suite = load_humaneval()[0], _suite_task()
    mbpp = CodeTask("MBPP/1", "mbpp", '"""\nadd\n"""\n', ("assert add(1, 2) == 3",), "add", "def add(a, b): ...")
    assert stop_policy(he).stop == stop_policy(suite).stop == HUMANEVAL_STOP
    assert stop_policy(suite).mode == "humaneval" and stop_policy(mbpp).mode == "mbpp"
    assert stop_policy(mbpp).stop == MBPP_STOP
    assert stop_policy(he, chat=True).stop == () and stop_policy(he, chat=True).cut == HUMANEVAL_STOP


def test_stop_policy_clean_for_suite_continuations():
    """The cases where the codegen testbed's former stop list and HumanEval's differ, on a suite task."""
    t = _suite_task()
    clean = stop_policy(t).clean
    body = "    return x\n"
    assert clean(body + "\nif __name__ == '__main__':\n    print(1)\n", t.entry_point) == body
    assert clean(body + "if x:\n    pass\n", t.entry_point) == body[:-1]  # any top-level `if` ends the body
    assert clean(body + "print(f(1))\n", t.entry_point) == body[:-1]
    assert clean(body + "assert f(1) == 2\n", t.entry_point) == body + "assert f(1) == 2\n"  # not a HumanEval stop
    assert clean(body + "def g():\n    pass\n", t.entry_point) == body[:-1]
    assert clean("    return 1\n    # done\n", t.entry_point) == "    return 1\n    # done\n"  # indented: kept
