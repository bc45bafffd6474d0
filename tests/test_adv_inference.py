"""Adversarial inference engine (issue 12, items 8 and 10): chains + code run in the sandbox, multi-attempt feedback of
visible-test failures (never hidden tests), CodeT ranking by the discriminator's tests without the reference, the
discriminator's "your tests did not catch this bug" attempts, per-attempt metrics, one-line errors."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from autoresearch.errors import ConfigError
from autoresearch.harness.sandbox import ProgramResult, TestResult, bwrap_status
from autoresearch.testbeds.adversarial.config import AdversarialConfig, RewardConfig
from autoresearch.testbeds.adversarial.inference import (
    MAX_FEEDBACK_CHARS,
    MAX_FEEDBACK_TESTS,
    InferenceEngine,
    attempt_metrics,
    codet_rank,
    discriminator_feedback,
    failure_feedback,
    inference_metrics,
    solutions_summary,
)
from autoresearch.testbeds.adversarial.judge import Judge
from autoresearch.testbeds.adversarial.problems import Problem
from autoresearch.testbeds.adversarial.stages import STAGE_NAMES

_OK, _ = bwrap_status()
pytestmark = [pytest.mark.timeout(180)]
REWARD = RewardConfig(test_timeout_s=1.0, program_timeout_s=4.0, workers=2, allow_reduced=not _OK)
PROMPT = 'def add3(x):\n    """Add three.\n    >>> add3(0)\n    3\n    """\n'
PROB = Problem(id="t/add3", prompt=PROMPT, entry_point="add3", reference="    return x + 3\n",
               hidden_tests=("assert add3(1) == 4\n", "assert add3(-3) == 0\n", "assert add3(10) == 13\n"),
               visible_tests=("assert add3(0) == 3\n",), program_prefix=PROMPT)
RIGHT, WRONG, WRONG2 = "    return x + 3\n", "    return x + 2\n", "    return 3\n"


def _chain(code: str) -> dict[str, str]:
    return {"informal": "add three to x\n", "plan": "1. return x plus 3\n", "pseudocode": "RETURN x PLUS 3\n",
            "constraints": "assert add3(0) == 3\n", "code": code}


@dataclass
class _S:
    truncated: bool = False


class ScriptedGenerator:
    """Stands in for a Policy: answers with scripted codes; records every prompt's feedback."""

    def __init__(self, codes_by_attempt: list[list[str]]) -> None:
        self.codes = codes_by_attempt
        self.feedbacks: list[str] = []
        self.temperatures: list[float] = []

    def sample_chains(self, problems, prefix_chains, stage, stages, n, *, temperature, feedback=None, **kw):
        out = []
        for fb in feedback or [""] * len(problems):
            self.feedbacks.append(fb)
            self.temperatures.append(temperature)
            codes = self.codes[min(len(self.feedbacks), len(self.codes)) - 1]
            out.append([(_S(), _chain(codes[j % len(codes)])) for j in range(n)])
        return out

    def generate_chain(self, problem, stages, n=1, temperature=0.0, feedback=""):
        return [c for _, c in self.sample_chains([problem], [None], stages[0], stages, n, temperature=temperature,
                                                 feedback=[feedback])[0]]


class ScriptedDiscriminator:
    def __init__(self, answers: list[str], on_feedback: str | None = None) -> None:
        self.answers = answers
        self.on_feedback = on_feedback
        self.feedbacks: list[str] = []

    def generate_tests(self, problem, n=1, temperature=0.0, feedback=""):
        self.feedbacks.append(feedback)
        if feedback and self.on_feedback is not None:
            return [self.on_feedback] * n
        return [self.answers[i % len(self.answers)] for i in range(n)]


@pytest.fixture(scope="module")
def judge():
    with Judge(REWARD) as j:
        yield j


def _engine(gen, disc=None, judge=None) -> InferenceEngine:
    cfg = AdversarialConfig(reward=REWARD)
    return InferenceEngine(gen, disc, cfg, judge=judge)


# --- feedback texts -----------------------------------------------------------------------------------------------
def _result(statuses: list[str], program: str = "pass") -> ProgramResult:
    tests = tuple(TestResult(s, exc_type="ZeroDivisionError" if s == "error" else "") for s in statuses)
    prog = TestResult(program, exc_type="SyntaxError" if program == "syntax_error" else "")
    status = program if program != "pass" else next((s for s in statuses if s != "pass"), "pass")
    return ProgramResult(status, prog, tests if program == "pass" else (), "strict")


def test_failure_feedback_names_failing_tests_and_their_kind():
    tests = ["assert f(1) == 2", "assert f(2) == 3", "assert f(3) == 4"]
    text = failure_feedback(tests, _result(["pass", "fail", "error"]))
    assert text.splitlines() == ["# failed: assert f(2) == 3 (wrong answer)",
                                 "# failed: assert f(3) == 4 (runtime error ZeroDivisionError)"]
    assert "f(1)" not in text
    assert failure_feedback(tests, _result(["pass"] * 3)) == ""


def test_failure_feedback_of_code_that_does_not_run_and_bounds():
    text = failure_feedback(["assert f(1) == 2"], _result([], program="syntax_error"))
    assert text == "# your code did not run (syntax error: SyntaxError)"
    many = [f"assert f({i}) == {i}" for i in range(10)]
    assert len(failure_feedback(many, _result(["fail"] * 10)).splitlines()) == MAX_FEEDBACK_TESTS
    long = [f"assert f({'9' * 500}) == 1"]
    assert len(failure_feedback(long, _result(["fail"]))) == MAX_FEEDBACK_CHARS


def test_discriminator_feedback_quotes_the_code_that_got_through():
    text = discriminator_feedback(WRONG)
    assert text.startswith("# your tests did not catch this bug:") and "# return x + 2" in text


# --- CodeT ranking ------------------------------------------------------------------------------------------------
def test_codet_prefers_the_largest_agreement_not_the_most_tests():
    # candidates 0-2 agree on tests {0, 1}; candidate 3 alone passes {0, 1, 2}: 3 x 2 = 6 beats 1 x 3 = 3
    passed = [[True, True, False], [True, True, False], [True, True, False], [True, True, True]]
    best, scores = codet_rank(passed)
    assert best == 0 and scores == [6.0, 6.0, 6.0, 3.0]
    # a single candidate passing many tests beats a pair passing none
    best, scores = codet_rank([[False, False], [False, False], [True, True]])
    assert best == 2 and scores == [0.0, 0.0, 2.0]


def test_codet_ties_and_no_tests():
    assert codet_rank([[True, False], [False, True]]) == (0, [1.0, 1.0])  # tie -> earlier candidate
    assert codet_rank([[], [], []]) == (0, [0.0, 0.0, 0.0])
    with pytest.raises(ValueError):
        codet_rank([])


# --- the engine, with scripted policies and the real sandbox -------------------------------------------------------
def test_multi_attempt_feeds_back_visible_failures_only(judge):
    gen = ScriptedGenerator([[WRONG], [RIGHT]])
    sol = _engine(gen, judge=judge).solve_problem(PROB, attempts=3)
    assert len(sol.attempts) == 2  # stopped once the visible test passed
    first, second = sol.attempts
    assert first.feedback == "" and first.best.passed is False and first.best.hidden_passed is False
    assert second.feedback == "# failed: assert add3(0) == 3 (wrong answer)" == gen.feedbacks[1]
    assert sol.passed and sol.hidden_passed and sol.code == RIGHT and sol.chain["code"] == RIGHT
    for hidden in PROB.hidden_tests:
        assert hidden.strip() not in "".join(gen.feedbacks)  # hidden tests never reach the model
    assert gen.temperatures == [0.0, 0.0]  # n = 1: greedy
    m = attempt_metrics([sol], max_attempts=3)
    assert m["pass_rate@attempt1"] == 0.0 and m["pass_rate@attempt2"] == 1.0 and m["pass_rate@attempt3"] == 1.0
    assert m["mean_attempts"] == 2.0
    d = sol.to_dict()
    assert d["passed"] is True and len(d["attempts"]) == 2 and d["attempts"][0]["candidates"][0]["status"] == "fail"


def test_given_tests_replace_the_visible_ones(judge):
    gen = ScriptedGenerator([[WRONG2]])  # returns 3: passes add3(0) == 3, fails add3(1) == 4
    eng = _engine(gen, judge=judge)
    assert eng.solve_problem(PROB).passed is True
    sol = eng.solve_problem(PROB, tests=["assert add3(1) == 4"], attempts=2)
    assert sol.passed is False and len(sol.attempts) == 2 and "add3(1) == 4" in sol.attempts[1].feedback


def test_without_tests_there_is_one_attempt_and_no_outcome(judge):
    bare = Problem(id="t/bare", prompt=PROMPT, entry_point="add3", reference=RIGHT, hidden_tests=PROB.hidden_tests,
                   program_prefix=PROMPT)
    gen = ScriptedGenerator([[WRONG], [RIGHT]])
    sol = _engine(gen, judge=judge).solve_problem(bare, attempts=3)
    assert len(sol.attempts) == 1 and sol.passed is None and sol.hidden_passed is False
    sol = _engine(ScriptedGenerator([[RIGHT]]), judge=judge).solve_problem(bare, score_hidden=False)
    assert sol.hidden_passed is None and sol.status == "not_run"


def test_n_candidates_without_ranking_pick_the_first_passing_one(judge):
    gen = ScriptedGenerator([[WRONG, WRONG, RIGHT, RIGHT]])
    sol = _engine(gen, judge=judge).solve_problem(PROB, n=4, temperature=0.7)
    att = sol.attempts[0]
    assert len(att.candidates) == 4 and att.chosen == 2 and sol.passed and gen.temperatures == [0.7]
    s = solutions_summary([sol])
    assert s["pass_rate"] == 1.0 and s["any_candidate_pass_rate"] == 1.0 and s["problems"] == 1


def test_codet_ranking_uses_generated_tests_not_the_reference(judge):
    # The reference is deliberately wrong here: ranking must not look at it (at inference it is unknown).
    broken = Problem(id="t/broken-ref", prompt=PROMPT, entry_point="add3", reference="    return 0\n",
                     hidden_tests=PROB.hidden_tests, visible_tests=(), program_prefix=PROMPT)
    # three candidates agree with the discriminator's first two tests; WRONG2 passes only the bogus third one
    gen = ScriptedGenerator([[WRONG2, RIGHT, RIGHT, WRONG]])
    disc = ScriptedDiscriminator(["assert add3(1) == 4\nassert add3(5) == 8\nassert add3(1) == 4\n",
                                  "assert add3(7) == 3\nassert 8 == add3(5)\n"])
    sol = _engine(gen, disc, judge=judge).solve_problem(broken, n=4, rank=True, temperature=0.8)
    att = sol.attempts[0]
    assert att.generated_tests == ("assert add3(1) == 4", "assert add3(5) == 8", "assert add3(7) == 3")
    assert att.chosen == 1 and sol.code == RIGHT and sol.hidden_passed is True
    assert att.candidates[1].score == 4.0 and att.candidates[1].agreement == (0, 1)  # 2 candidates x 2 tests
    assert att.candidates[0].score == 1.0 and att.candidates[3].score == 0.0


def test_solve_batch_answers_each_problem_in_order(judge):
    other = Problem(id="t/add3-b", prompt=PROMPT, entry_point="add3", reference=RIGHT,
                    hidden_tests=PROB.hidden_tests, visible_tests=("assert add3(2) == 5\n",), program_prefix=PROMPT)
    gen = ScriptedGenerator([[RIGHT]])
    sols = _engine(gen, judge=judge).solve_batch([PROB, other])
    assert [s.problem_id for s in sols] == ["t/add3", "t/add3-b"] and all(s.passed for s in sols)
    assert solutions_summary(sols)["pass_rate"] == 1.0


def test_discriminator_multi_attempt_is_told_what_it_missed(judge):
    weak = "assert add3(0) == 3\nassert add3(0) == 99\n"  # the second is invalid (the reference fails it)
    strong = "assert add3(1) == 4\n"
    disc = ScriptedDiscriminator([weak], on_feedback=strong)
    out = _engine(ScriptedGenerator([[RIGHT]]), disc, judge=judge).generate_tests(PROB, attempts=3,
                                                                                 targets=[WRONG2])
    assert len(out) == 2
    assert out[0].tests == ("assert add3(0) == 3", "assert add3(0) == 99") and out[0].valid == (True, False)
    assert out[0].caught == (False,) and out[0].validity == 0.5
    assert out[1].feedback.startswith("# your tests did not catch this bug:") and "return 3" in out[1].feedback
    assert out[1].caught == (True,) and out[1].catch_rate == 1.0 and disc.feedbacks[1] == out[1].feedback


def test_inference_metrics_follow_the_eval_config(judge):
    gen = ScriptedGenerator([[WRONG, RIGHT, RIGHT]])  # every call answers the same three codes (one per sample)
    disc = ScriptedDiscriminator(["assert add3(1) == 4\n"])
    eng = _engine(gen, disc, judge=judge)
    assert inference_metrics(eng, [PROB]) == {}  # both off by default: nothing is run
    assert gen.feedbacks == []
    eng.cfg.eval.max_attempts, eng.cfg.eval.codet_candidates = 2, 3
    gen.codes = [[WRONG], [RIGHT], [WRONG, RIGHT, RIGHT]]
    m = inference_metrics(eng, [PROB])
    assert m["pass_rate@attempt1"] == 0.0 and m["pass_rate@attempt2"] == 1.0 and m["mean_attempts"] == 2.0
    assert m["pass@1_codet"] == 1.0 and m["pass_any_codet"] == 1.0


def test_get_reasoning_chain_of_a_real_tiny_policy():
    import torch

    from autoresearch.harness.tokenizer import ByteTokenizer
    from autoresearch.testbeds.adversarial.policy import build_policy

    torch.manual_seed(0)
    cfg = AdversarialConfig(reward=REWARD)
    cfg.gpt.d_model, cfg.gpt.n_layers, cfg.gpt.n_heads, cfg.gpt.n_kv_heads, cfg.gpt.d_ff = 32, 2, 2, 2, 64
    cfg.rl.max_new_tokens = 24
    gen = build_policy(cfg, ByteTokenizer(), "generator", "cpu").eval()
    eng = InferenceEngine(gen, None, cfg)
    try:
        chain = eng.get_reasoning_chain(PROB)
        assert tuple(chain) == STAGE_NAMES and all(isinstance(v, str) for v in chain.values())
        assert chain == eng.get_reasoning_chain(PROB)  # greedy: deterministic
        assert eng.render(chain).startswith("### informal\n")
    finally:
        eng.close()


def test_bad_arguments_are_one_line_errors(judge):
    eng = _engine(ScriptedGenerator([[RIGHT]]), judge=judge)
    for kw, needle in [({"n": 0}, "n (candidates"), ({"attempts": 0}, "attempts must"),
                       ({"rank": True, "n": 2}, "needs the discriminator")]:
        with pytest.raises(ConfigError) as e:
            eng.solve_problem(PROB, **kw)
        assert needle in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="one list per problem"):
        eng.solve_batch([PROB], tests=[[], []])
    with pytest.raises(ConfigError, match="no discriminator"):
        eng.generate_tests(PROB)
