"""Adversarial rewards: test sanitising, validity, the outcome table and every known reward hack (issue 12, item 4)."""

from __future__ import annotations

import pytest

from autoresearch.harness.sandbox import ProgramResult, TestResult, bwrap_status
from autoresearch.testbeds.adversarial.config import RewardConfig
from autoresearch.testbeds.adversarial.judge import Judge
from autoresearch.testbeds.adversarial.problems import Problem
from autoresearch.testbeds.adversarial.rewards import (
    OUTCOME_SCORES,
    TestSet,
    completion_hazard,
    discriminator_reward,
    generator_reward,
    hidden_outcomes,
    parse_tests,
    score_group,
    test_validity,
    visible_reward,
    visible_rewards,
)

_OK, _ = bwrap_status()
pytestmark = [pytest.mark.timeout(120)]
CFG = RewardConfig(max_tests=6, max_test_chars=200, test_timeout_s=0.5, program_timeout_s=3.0, invalid_penalty=0.5,
                   workers=2, allow_reduced=not _OK)
PROB = Problem(
    id="t/add3", prompt="def add3(x):\n", entry_point="add3", reference="    return x + 3\n",
    hidden_tests=("assert add3(1) == 4", "assert add3(-3) == 0", "assert add3(10) == 13"),
    visible_tests=("assert add3(0) == 3",), program_prefix="def add3(x):\n",
)
REF, WRONG, SYNTAX = "    return x + 3\n", "    return x + 2\n", "    return x +\n"


@pytest.fixture(scope="module")
def judge():
    with Judge(CFG) as j:
        yield j


def gen(judge, completions, answer, extra=()):
    return score_group(judge, PROB, completions, [answer], extra)


# --- sanitising ---------------------------------------------------------------------------------------------------
def test_parse_keeps_single_line_asserts_that_call_the_entry_point():
    text = "```python\nassert add3(1) == 4\n\nassert add3(2) == 5, 'msg'\n```\n"
    ts = parse_tests(text, PROB, CFG)
    assert ts.tests == ("assert add3(1) == 4", "assert add3(2) == 5, 'msg'")
    assert (ts.n_raw, ts.n_malformed, ts.n_duplicate, ts.n_dropped_bound) == (2, 0, 0, 0)


@pytest.mark.parametrize("line, why", [
    ("assert True", "does not call add3"),
    ("assert 1 == 1", "does not call add3"),
    ("assert add(1) == 4", "does not call add3"),
    ("add3(1) == 4", "not a single assert"),
    ("assert add3(1) == 4; import os", "not a single assert"),
    ("print(add3(1))", "not a single assert"),
    ("assert add3(1 == 4", "does not parse"),
    ("### tests", "not a single assert"),
    ("assert (y := add3(1)) == 4", "NamedExpr"),
    ("assert add3.__code__.co_code == b''", "dunder attribute"),
    ("assert add3(1) == 4 or __import__('os')._exit(0)", "__import__"),
    ("assert globals()['add3'](1) == 4 and add3(1)", "globals"),
    ("assert id(add3(1)) > 0", "uses id"),
    ("assert hash(str(add3(1))) != 0", "uses hash"),
    ("assert add3(" + "1 + " * 60 + "1) > 0", "too long"),
])
def test_malformed_tests_are_counted_and_dropped(line, why):
    ts = parse_tests(line + "\nassert add3(1) == 4", PROB, CFG)
    assert ts.tests == ("assert add3(1) == 4",)
    assert ts.n_malformed == 1 and why in ts.reasons[0]


def test_duplicates_by_normalised_ast_count_once():
    text = "assert add3(1) == 4\nassert add3(1)==4\nassert 4 == add3( 1 )\nassert add3(1) == 4, 'again'\n" \
           "assert add3(2) == 5"
    ts = parse_tests(text, PROB, CFG)
    assert ts.tests == ("assert add3(1) == 4", "assert add3(2) == 5")
    assert ts.n_duplicate == 3 and ts.n_malformed == 0


def test_tests_beyond_max_tests_are_dropped():
    text = "\n".join(f"assert add3({i}) == {i + 3}" for i in range(10))
    ts = parse_tests(text, PROB, CFG)
    assert ts.n_kept == CFG.max_tests == 6 and ts.n_dropped_bound == 4
    assert ts.tests[-1] == "assert add3(5) == 8"


# --- validity ------------------------------------------------------------------------------------------------------
def test_validity_is_the_reference_passing_and_a_hanging_test_does_not_spoil_later_ones(judge):
    tests = ["assert add3(1) == 4", "assert add3(sum(range(10**10))) > 0", "assert add3(1) == 5",
             "assert add3(2) == 5", "assert add3([]) == 3", "assert add3(0) == 3"]
    assert test_validity(judge, PROB, tests) == [True, False, False, True, False, True]


def test_many_hanging_tests_still_leave_the_last_valid(judge):
    tests = ["assert add3(sum(range(10**10))) > 0"] * 5 + ["assert add3(2) == 5"]
    assert test_validity(judge, PROB, tests) == [False] * 5 + [True]


# --- generator reward ---------------------------------------------------------------------------------------------
def test_outcome_order_syntax_lt_runtime_lt_wrong_lt_pass(judge):
    codes = [REF, WRONG, "    return x.foo\n", "    while True:\n        pass\n", "    return x +\n"]
    g = gen(judge, codes, "assert add3(1) == 4\nassert add3(2) == 5")
    r_pass, r_wrong, r_runtime, r_timeout, r_syntax = g.generator_rewards
    assert (r_pass, r_wrong, r_runtime, r_timeout, r_syntax) == (1.0, 0.0, -0.25, -0.25, -0.5)
    assert r_syntax < r_runtime < r_wrong < r_pass and r_timeout < r_wrong
    assert [r.tests[0].status for r in g.gen_results] == ["pass", "fail", "error", "timeout", "syntax_error"]


def test_partial_pass_is_the_mean_over_valid_tests(judge):
    code = "    return 4 if x == 1 else x + 2\n"
    g = gen(judge, [code], "assert add3(1) == 4\nassert add3(2) == 5\nassert add3(7) == 99")
    assert g.generator_rewards == [0.5]  # invalid third test ignored, wrong on the second


@pytest.mark.parametrize("code", [
    "    import sys\n    sys.exit(0)\n",
    "    import os\n    os._exit(0)\n",
    "    raise SystemExit(0)\n",
    "    exit()\n",
    "    return x + 3\nimport sys\nsys.exit(0)\n",
    "    return x + 3\nimport os\nos._exit(0)\n",
    "    return x + 3\nraise SystemExit\n",
])
def test_early_exit_is_never_a_pass(judge, code):
    g = gen(judge, [code], "assert add3(1) == 4\nassert add3(2) == 5")
    assert g.generator_rewards[0] == OUTCOME_SCORES["error"]
    assert not g.gen_results[0].passed
    assert not hidden_outcomes(judge, PROB, [code])[0].passed


@pytest.mark.parametrize("code", [
    "    class A:\n        def __eq__(self, o):\n            return True\n    return A()\n",
    "    return type('A', (), {'__eq__': lambda s, o: True})()\n",
    "    return x + 3\nimport builtins\nbuiltins.AssertionError = ZeroDivisionError\n",
    "    return x + 3\nlen = lambda v: 3\n",
    "    global sorted\n    sorted = lambda v: v\n    return x + 3\n",
    "    import sys\n    sys.settrace(lambda *a: None)\n    return x + 2\n",
    "    global add3\n    add3 = lambda v: v + 3\n    return x + 2\n",
    "    import sys\n    sys._getframe(1).f_globals['add3'] = lambda v: v + 3\n    return x + 2\n",
])
def test_reward_hacks_are_not_run_and_score_as_errors(judge, code):
    g = gen(judge, [code], "assert add3(1) == 4")
    assert g.generator_rewards == [OUTCOME_SCORES["error"]]
    assert g.gen_results[0].program.exc_type == "RewardHack"
    assert not hidden_outcomes(judge, PROB, [code])[0].passed


def test_hazard_the_reference_shares_is_allowed_and_locals_are_fine():
    plain = "def f(x):\n    return 3 + x\n"
    shadow = "max = 3\ndef f(x):\n    return max + x\n"
    assert completion_hazard(shadow, shadow) == ""
    assert completion_hazard(shadow, plain) == "rebinds max"
    local = "def f(x):\n    max = 3\n    sum = [len for len in range(x)]\n    return max + x\n"
    assert completion_hazard(local, plain) == ""
    assert completion_hazard("for len in range(3):\n    pass\n", plain) == "rebinds len"
    assert completion_hazard("import math as abs\n", plain) == "rebinds abs"
    assert completion_hazard("def f(:\n", "") == ""  # the sandbox reports the syntax error


def test_no_valid_test_is_no_signal_not_a_neutral_reward(judge):
    g = gen(judge, [REF, WRONG], "assert add3(1) == 99\nassert add3(2) == 0")
    assert g.generator_rewards == [None, None]
    g = gen(judge, [REF, WRONG], "")
    assert g.generator_rewards == [None, None]


def test_generator_reward_table_without_sandbox():
    ok, bad = TestResult("pass"), TestResult("fail")
    r = ProgramResult("fail", ok, (bad, ok, bad), "strict")
    assert generator_reward(r, [False, True, False]) == 1.0  # the failed tests are invalid: they do not count
    assert generator_reward(r, [True, True, False]) == 0.5
    assert generator_reward(r, [False, False, False]) is None
    with pytest.raises(ValueError):
        generator_reward(r, [True])


def test_visible_reward_and_no_visible_tests(judge):
    assert visible_reward(judge, PROB, [REF, WRONG]) == [1.0, 0.0]
    from dataclasses import replace

    assert visible_reward(judge, replace(PROB, visible_tests=()), [REF]) == [None]
    both = visible_rewards(judge, [PROB, replace(PROB, visible_tests=()), PROB], [[WRONG], [REF, REF], [SYNTAX]])
    assert both == [[0.0], [None, None], [-0.5]]


# --- discriminator reward -----------------------------------------------------------------------------------------
def _ts(n: int, malformed: int = 0) -> TestSet:
    return TestSet(tuple(f"assert add3({i}) == {i + 3}" for i in range(n)), n + malformed, n_malformed=malformed)


def test_discriminator_reward_table():
    assert discriminator_reward(_ts(0), [], [], CFG) == 0.0
    assert discriminator_reward(_ts(0, malformed=3), [], [], CFG) == 0.0
    assert discriminator_reward(_ts(6), [True] * 6, [1.0] * 6, CFG) == 1.0
    assert discriminator_reward(_ts(6), [True] * 6, [0.0] * 6, CFG) == pytest.approx(0.5 / 1.5)
    assert discriminator_reward(_ts(6), [False] * 6, [1.0] * 6, CFG) == 0.0
    one_valid = discriminator_reward(_ts(1), [True], [1.0], CFG)
    assert one_valid == pytest.approx((1 / 6 + 0.5) / 1.5)
    assert discriminator_reward(_ts(2), [True, False], [1.0, 1.0], CFG) < one_valid  # invalid: penalised
    assert discriminator_reward(_ts(1, malformed=1), [True], [1.0], CFG) < one_valid
    assert discriminator_reward(_ts(1), [True], [0.5], CFG) < one_valid
    for n in range(7):
        for k in range(n + 1):
            r = discriminator_reward(_ts(n, malformed=k), [True] * n, [1.0] * n, CFG)
            assert 0.0 <= r <= 1.0
    with pytest.raises(ValueError):
        discriminator_reward(_ts(2), [True], [1.0], CFG)


def test_invalid_tests_the_generator_fails_get_no_credit_and_are_penalised(judge):
    wrong = [WRONG] * 4
    invalid = gen(judge, wrong, "assert add3(1) == 99")  # every target fails it, but so does the reference
    nothing = gen(judge, wrong, "assert add3(1) == 99\nassert add3(2) == 99\nassert add3(3) == 99")
    useless = gen(judge, [REF] * 4, "assert add3(1) == 4")  # valid, catches nothing
    catching = gen(judge, wrong, "assert add3(1) == 4")  # valid, catches every target
    both = gen(judge, wrong, "assert add3(1) == 4\nassert add3(1) == 99")
    assert invalid.valid == [[False]] and invalid.caught == [[0.0]]
    assert nothing.discriminator_rewards[0] < invalid.discriminator_rewards[0] < useless.discriminator_rewards[0]
    assert useless.discriminator_rewards[0] < catching.discriminator_rewards[0]
    assert both.discriminator_rewards[0] < catching.discriminator_rewards[0]
    assert catching.caught == [[1.0]]


def test_duplicate_tests_earn_once(judge):
    once = gen(judge, [WRONG] * 4, "assert add3(1) == 4")
    thrice = gen(judge, [WRONG] * 4, "assert add3(1) == 4\nassert add3(1)==4\nassert 4 == add3(1)")
    assert thrice.discriminator_rewards == once.discriminator_rewards
    assert thrice.test_sets[0].n_duplicate == 2


def test_zero_tests_gets_zero(judge):
    for answer in ("", "assert True\nnot a test"):
        g = gen(judge, [WRONG] * 4, answer)
        assert g.discriminator_rewards == [0.0] and g.generator_rewards == [None] * 4


def test_huge_and_hanging_tests_earn_nothing(judge):
    long = "assert add3(" + "1 + " * 60 + "1) > 0"
    hang = "assert add3(sum(range(10**10))) > 0"
    g = gen(judge, [WRONG] * 4, f"{long}\n{hang}\nassert add3(1) == 4")
    assert g.test_sets[0].n_malformed == 1 and g.valid == [[False, True]]
    alone = gen(judge, [WRONG] * 4, "assert add3(1) == 4")
    assert g.discriminator_rewards[0] < alone.discriminator_rewards[0]


def test_catches_count_mutants_and_skip_targets_that_do_not_run(judge):
    # targets: REF (passes), a syntax error (uninformative: left out), the mutant x - 3 (caught)
    g = gen(judge, [REF, "    return x +\n"], "assert add3(1) == 4", extra=["    return x - 3\n"])
    assert g.caught == [[0.5]]
    assert len(g.generator_rewards) == 2 and len(g.gen_results) == 2


def test_answers_share_validity_and_the_generator_sees_their_union(judge):
    g = score_group(judge, PROB, [WRONG], ["assert add3(1) == 4\nassert add3(0) == 9", "assert 4 == add3(1)\n"
                                           "assert add3(5) == 8"])
    assert g.valid == [[True, False], [True, True]]
    assert g.valid_tests == ("assert add3(1) == 4", "assert add3(5) == 8")
    assert g.stats["tests_kept"] == 4 and g.stats["tests_valid"] == 3 and g.stats["validity"] == 0.75
