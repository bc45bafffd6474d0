"""adversarial/problems.py: Problem, the suite / MBPP / HumanEval / user-JSON loaders, and reference validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autoresearch.errors import ConfigError, DataError
from autoresearch.harness.sandbox import Pool, SandboxConfig, bwrap_status
from autoresearch.testbeds.adversarial.config import RewardConfig
from autoresearch.testbeds.adversarial.judge import Judge
from autoresearch.testbeds.adversarial.problems import (
    Problem,
    docstring_examples,
    load_problems,
    problems_from_json,
    validate_problems,
)
from autoresearch.testbeds.common.tasks import make_suite

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "adversarial_problems.json"
MBPP = REPO.parent / "shared" / "data" / "mbpp" / "mbpp.jsonl"

GOOD = {
    "id": "add1",
    "prompt": 'def add1(x: int) -> int:\n    """Return x plus 1.\n    >>> add1(1)\n    2\n    """\n',
    "entry_point": "add1",
    "reference": "    return x + 1\n",
    "hidden_tests": ["assert add1(0) == 1", "assert add1(5) == 6"],
    "visible_tests": ["assert add1(1) == 2"],
}


@pytest.fixture(scope="module")
def judge():
    ok, _ = bwrap_status()
    with Judge(RewardConfig(workers=2, allow_reduced=not ok)) as j:
        yield j


def write(tmp_path: Path, problems: object) -> Path:
    path = tmp_path / "problems.json"
    path.write_text(json.dumps(problems))
    return path


# --- suite ------------------------------------------------------------------------------------------------------
def test_suite_problem_fields_follow_the_task():
    task = make_suite("train", 3, 0)[1]
    p = load_problems("suite", split="train", n=3, validate=False)[1]
    assert p.id == "suite-train/1" and p.source == "suite" and p.template == task.template
    assert p.prompt == task.prompt and p.hidden_tests == task.tests and p.reference == task.reference
    assert p.program(p.reference) == task.prompt + task.reference
    assert len(p.visible_tests) == 1 and p.visible_tests[0].startswith(f"assert {p.entry_point}(")
    assert p.visible_tests[0] not in p.hidden_tests


def test_suite_val_follows_the_scored_heldout_problems_and_is_disjoint():
    held = load_problems("suite", split="heldout", n=20, validate=False)
    val = load_problems("suite", split="val", n=6, val_offset=20, validate=False)
    longer = make_suite("heldout", 26, 0)
    assert [p.prompt for p in val] == [t.prompt for t in longer[20:]]
    assert not {p.prompt for p in val} & {p.prompt for p in held}
    assert val[0].id == "suite-val/20"
    train = load_problems("suite", split="train", n=50, validate=False)
    assert not {p.prompt for p in train} & {p.prompt for p in held}


def test_suite_needs_n_and_known_split():
    with pytest.raises(ConfigError, match="needs a number"):
        load_problems("suite", split="train", validate=False)
    with pytest.raises(ConfigError, match="split must be one of"):
        load_problems("suite", split="test", n=2, validate=False)
    with pytest.raises(ConfigError, match="did you mean 'suite'"):
        load_problems("suit", split="train", n=2, validate=False)


def test_suite_references_pass_in_the_sandbox(judge):
    probs = load_problems("suite", split="train", n=40, validate_with=judge)
    assert len(probs) == 40


def test_validation_accepts_a_harness_pool():
    ok, _ = bwrap_status()
    with Pool(SandboxConfig(workers=1, allow_reduced=not ok)) as pool:
        assert len(load_problems("suite", split="heldout", n=3, validate_with=pool)) == 3


# --- validation failures ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("change", "expect"), [
    ({"reference": "    return x + 2\n"}, r"problem add1: its reference fails its own tests \(fail on hidden test 0\)"),
    ({"visible_tests": ["assert add1(1) == 3"]}, r"problem add1: .*fail on visible test 0"),
    ({"reference": "    return x +\n"}, r"problem add1: its reference fails its own tests \(syntax_error"),
    ({"reference": "    raise ValueError('no')\n"}, r"problem add1: .*error on hidden test 0"),
])
def test_a_reference_that_fails_its_tests_is_refused_with_its_id(judge, tmp_path, change, expect):
    path = write(tmp_path, {"problems": [{**GOOD, **change}]})
    with pytest.raises(DataError, match=expect) as e:
        load_problems(str(path), validate_with=judge)
    assert "\n" not in str(e.value) and "fix or drop it" in str(e.value)


def test_the_failing_problem_is_named_among_good_ones(judge):
    good = Problem.from_dict(GOOD, "x")
    bad = Problem.from_dict({**GOOD, "id": "broken", "hidden_tests": ["assert add1(0) == 5"]}, "x")
    with pytest.raises(DataError, match="problem broken:"):
        validate_problems([good, bad, good], judge)


# --- user JSON ----------------------------------------------------------------------------------------------------
def test_json_round_trip_and_defaults():
    p = Problem.from_dict(GOOD, "f.json problems[0]")
    assert p.program_prefix == GOOD["prompt"] and p.source == "json"
    assert p.hidden_tests == ("assert add1(0) == 1\n", "assert add1(5) == 6\n")
    assert Problem.from_dict(p.to_dict(), "again") == p


@pytest.mark.parametrize(("problems", "expect"), [
    ("not an object", r"must be an object \{\"problems\""),
    ({"items": []}, r"without a problems list"),
    ({"problems": []}, r"has no problems"),
    ({"problems": ["x"]}, r"problems\[0\]: a problem must be a JSON object, got str"),
    ({"problems": [{k: v for k, v in GOOD.items() if k != "reference"}]}, r"missing required field 'reference'"),
    ({"problems": [{**GOOD, "hiden_tests": []}]}, r"unknown field 'hiden_tests'; did you mean 'hidden_tests'"),
    ({"problems": [{**GOOD, "hidden_tests": "assert add1(0) == 1"}]},
     r"problem 'add1'\): field 'hidden_tests' must be a list of strings"),
    ({"problems": [{**GOOD, "hidden_tests": []}]}, r"field 'hidden_tests' is empty"),
    ({"problems": [{**GOOD, "visible_tests": ["assert add1(1) =="]}]}, r"visible_tests\[0\] does not parse"),
    ({"problems": [{**GOOD, "entry_point": "add 1"}]}, r"'entry_point' must be a Python function name, got 'add 1'"),
    ({"problems": [{**GOOD, "prompt": 3}]}, r"field 'prompt' must be a string, got int 3"),
    ({"problems": [{**GOOD, "id": ""}]}, r"field 'id' must be a non-empty string"),
    ({"problems": [{**GOOD, "split": "dev"}]}, r"field 'split' must be one of train, heldout, val, got 'dev'"),
    ({"problems": [GOOD, GOOD]}, r"problems\[1\]: duplicate id 'add1'"),
])
def test_a_bad_user_file_gives_one_line_naming_field_value_and_fix(tmp_path, problems, expect):
    path = write(tmp_path, problems)
    with pytest.raises(DataError, match=expect) as e:
        problems_from_json(path)
    msg = str(e.value)
    assert "\n" not in msg and ";" in msg  # the rule/value, then the fix


def test_unreadable_or_missing_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(DataError, match="is not valid JSON"):
        load_problems(str(bad), validate=False)
    with pytest.raises(DataError, match="does not exist"):
        load_problems(str(tmp_path / "missing.json"), validate=False)
    with pytest.raises(ConfigError, match="needs a path"):
        load_problems("json", validate=False)


def test_json_split_field_selects_problems(tmp_path):
    path = write(tmp_path, {"problems": [GOOD, {**GOOD, "id": "t", "split": "train"}]})
    assert [p.id for p in load_problems("json", path=path, split="train", validate=False)] == ["t"]
    assert [p.id for p in load_problems(str(path), validate=False)] == ["add1"]
    with pytest.raises(DataError, match="no problems of split 'val'"):
        load_problems(str(path), split="val", validate=False)


def test_the_shipped_examples_load_and_their_references_pass(judge):
    splits = {s: load_problems(str(EXAMPLES), split=s, validate_with=judge) if s != "val" else []
              for s in ("train", "heldout", "val")}
    total = sum(len(v) for v in splits.values())
    assert 5 <= total <= 10 and splits["heldout"]
    for p in splits["train"] + splits["heldout"]:
        assert p.visible_tests and len(p.hidden_tests) >= 3 and p.description


# --- HumanEval / MBPP ---------------------------------------------------------------------------------------------
def test_docstring_examples_become_asserts_and_odd_ones_are_skipped():
    prompt = ('def f(x):\n    """Doc.\n    >>> f(1)\n    2\n    >>> print(f(2))\n    3\n    >>> f(3)\n'
              '    something odd\n    >>> g(1)\n    4\n    >>> f([1, 2])\n    [2, 3]\n    """\n')
    assert docstring_examples(prompt, "f") == ("assert f(1) == 2\n", "assert f([1, 2]) == [2, 3]\n")


def test_humaneval_is_heldout_only_with_parsed_examples():
    probs = load_problems("humaneval", validate=False)
    assert len(probs) == 164 and probs[0].id == "HumanEval/0" and probs[0].source == "humaneval"
    assert probs[0].visible_tests[0].startswith("assert has_close_elements(")
    assert probs[0].program(probs[0].reference).startswith(probs[0].prompt)
    assert len(load_problems("humaneval", split="val", val_offset=150, validate=False)) == 14
    with pytest.raises(ConfigError, match="HumanEval has no train split"):
        load_problems("humaneval", split="train", validate=False)


@pytest.mark.slow
def test_humaneval_references_validate_and_failing_examples_are_dropped(judge):
    probs = load_problems("humaneval", n=30, validate=False)
    kept = validate_problems(probs, judge)
    assert [p.id for p in kept] == [p.id for p in probs]
    assert sum(len(p.visible_tests) for p in kept) > 10


@pytest.mark.skipif(not MBPP.is_file(), reason="MBPP data not present")
def test_mbpp_problems_show_one_example_and_keep_the_standard_tests(judge):
    probs = load_problems("mbpp", split="train", n=4, path=MBPP, validate_with=judge)
    p = probs[0]
    assert p.id == "MBPP/601" and p.program_prefix == "" and p.source == "mbpp"
    assert len(p.hidden_tests) == 3 and p.visible_tests == p.hidden_tests[:1]
    assert p.visible_tests[0].strip() in p.prompt and p.hidden_tests[1].strip() not in p.prompt
    ids = {q.id for q in load_problems("mbpp", split="train", path=MBPP, validate=False)}
    assert "MBPP/642" not in ids and len(ids) == 374 - 1  # MBPP_KNOWN_BAD left out
    assert load_problems("mbpp", split="val", n=1, path=MBPP, validate=False)[0].id == "MBPP/511"
