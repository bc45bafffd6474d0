"""Generated task suite: determinism, split disjointness, references pass and wrong completions fail (plain exec)."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from autoresearch.errors import ConfigError
from autoresearch.harness.code_tasks import CodeTask
from autoresearch.testbeds.common.tasks import EOT_TEXT, make_suite, split_of, template_names, to_training_text

# Runs each program in a fresh namespace with plain exec, in a child process (the sandbox replaces this later).
_RUNNER = r"""
import contextlib, io, json, sys
out = []
for prog in json.load(sys.stdin):
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            exec(compile(prog, "<task>", "exec"), {"__name__": "__task__"})
        out.append("pass")
    except AssertionError:
        out.append("fail")
    except BaseException as e:
        out.append(type(e).__name__)
sys.stdout.write(json.dumps(out))
"""


def full_program(task: CodeTask, completion: str) -> str:
    """What the sandbox runs for a job: the program, then each test snippet in the same globals."""
    return task.program(completion) + "\n" + "".join(task.tests)


def run_programs(programs: list[str]) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", _RUNNER], input=json.dumps(programs), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def suites():
    return make_suite("train", 1500, seed=0), make_suite("heldout", 500, seed=0)


def test_deterministic_by_seed_and_distinct():
    a, b, c = make_suite("train", 200, seed=3), make_suite("train", 200, seed=3), make_suite("train", 200, seed=4)
    assert a == b
    assert [t.prompt for t in a] != [t.prompt for t in c]
    assert len({t.prompt for t in a}) == 200
    assert [t.task_id for t in a] == [f"gen-train/{i}" for i in range(200)]
    assert make_suite("train", 50, seed=3) == a[:50]  # a prefix: n does not change earlier tasks


def test_splits_are_parameter_disjoint(suites):
    train, held = suites
    train_keys, held_keys = {t.key for t in train}, {t.key for t in held}
    assert train_keys.isdisjoint(held_keys)
    assert {t.prompt for t in train}.isdisjoint({t.prompt for t in held})
    assert all(split_of(eval(t.key)) == "train" for t in train)  # noqa: S307 - keys are reprs of our own tuples
    assert all(split_of(eval(t.key)) == "heldout" for t in held)  # noqa: S307
    # Every template has behaviours in both splits: held-out measures new behaviours, not new templates.
    assert {t.template for t in train} == {t.template for t in held} == set(template_names())
    families = {t.family for t in held}
    assert families == {"arithmetic", "strings", "lists", "dicts", "loops", "conditionals"}


def test_heldout_behaviours_are_new_but_solvable_from_the_docstring(suites):
    train, held = suites
    # The constants of a held-out task appear in its docstring (the model can read them) ...
    for t in held:
        doc = t.prompt.split('"""')[1].split(">>>")[0]
        key = eval(t.key)  # noqa: S307 - a repr of our own tuple
        numbers = [str(v) for v in key if isinstance(v, int) and not isinstance(v, bool)
                   and re.search(rf"(?<![\w.-]){re.escape(str(v))}(?!\d)", t.reference)]  # constants of the code
        strings = re.findall(r'"([^"]*)"', t.reference)
        assert all(re.search(rf"(?<!\d){re.escape(v)}(?!\d)", doc) for v in numbers), (t.task_id, doc, key)
        assert all(f'"{v}"' in doc for v in strings), (t.task_id, doc, strings)
    # ... and its (template, constants) pair was never trained on.
    trained = {(t.template, t.key) for t in train}
    assert not any((t.template, t.key) in trained for t in held)


def test_task_shape_is_the_harness_code_task(suites):
    for t in suites[0][:300]:
        assert isinstance(t, CodeTask) and t.benchmark == "codegen-suite"
        assert t.prompt.startswith(f"def {t.entry_point}(") and t.prompt.endswith('    """\n')
        assert ">>> " + t.entry_point + "(" in t.prompt and t.description in t.prompt
        assert all(line.startswith("    ") for line in t.reference.splitlines())
        assert len(t.tests) == 4 and all(s.startswith(f"assert {t.entry_point}(") for s in t.tests)
        assert to_training_text(t) == t.prompt + t.reference + EOT_TEXT
        assert t.program("X") == t.prompt + "X"  # a completion continues the prompt, as in HumanEval
        job = t.job(t.reference)
        assert job.program == t.prompt + t.reference and job.tests == t.tests


def _mutant(body: str) -> str:
    """A near miss: the first int literal + 1, else the first string literal replaced."""
    m = re.search(r"(?<![\w.])(\d+)", body)
    if m:
        return body[: m.start()] + str(int(m.group(1)) + 1) + body[m.end():]
    m = re.search(r'"[^"]*"', body)
    assert m, body
    return body[: m.start()] + '"qqq"' + body[m.end():]


def test_references_pass_and_wrong_completions_fail(suites):
    tasks = suites[0] + suites[1]
    programs = []
    for t in tasks:
        first_arg = t.prompt.split("(", 1)[1].split(":", 1)[0]
        programs += [full_program(t, c) for c in (t.reference, "    return None\n", f"    return {first_arg}\n",
                                                  _mutant(t.reference), "    return (\n")]
    results = run_programs(programs)
    for i, t in enumerate(tasks):
        ref, none, ident, mutant, syntax = results[5 * i : 5 * i + 5]
        assert ref == "pass", (t.task_id, t.prompt + t.reference, ref)
        assert none != "pass" and ident != "pass", t.task_id  # constant and identity answers fail
        assert mutant != "pass", (t.task_id, _mutant(t.reference))  # an off-by-one constant fails
        assert syntax == "SyntaxError"


def test_bad_arguments():
    with pytest.raises(ConfigError, match="split"):
        make_suite("test", 3)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="templates"):
        make_suite("train", 3, templates=["nope"])
    only = make_suite("heldout", 20, seed=1, templates=["add_const", "fizz"])
    assert {t.template for t in only} == {"add_const", "fizz"}
