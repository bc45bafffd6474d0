"""Completion post-processing: fences, stop sequences, function extraction, per-benchmark assembly."""

from __future__ import annotations

from autoresearch.harness.code_tasks import load_humaneval
from autoresearch.harness.postprocess import (
    HUMANEVAL_STOP,
    extract_function,
    postprocess_completion,
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
