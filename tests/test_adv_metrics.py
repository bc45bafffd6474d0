"""Adversarial metrics: pass@k and failure breakdown, validity / catch rate, mutation score, coherence, critiques."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from autoresearch.harness.sandbox import bwrap_status
from autoresearch.testbeds.adversarial.config import RewardConfig
from autoresearch.testbeds.adversarial.judge import Judge
from autoresearch.testbeds.adversarial.metrics import (
    coherence,
    critique_accuracy,
    discriminator_metrics,
    hidden_results,
    mutation_score,
    pass_at_k_metrics,
    policy_critic,
    policy_regenerator,
)
from autoresearch.testbeds.adversarial.problems import Problem, load_problems
from autoresearch.testbeds.adversarial.stages import STAGES, canonical_critiques, canonical_tests, stage_by_name

_OK, _ = bwrap_status()
pytestmark = [pytest.mark.timeout(120)]
CFG = RewardConfig(test_timeout_s=0.5, program_timeout_s=3.0, workers=2, allow_reduced=not _OK)
PROB = Problem(
    id="t/add3", prompt='def add3(x):\n    """Return x plus 3.\n    >>> add3(0)\n    3\n    """\n', entry_point="add3",
    reference="    return x + 3\n",
    hidden_tests=("assert add3(1) == 4", "assert add3(-3) == 0", "assert add3(10) == 13"),
    visible_tests=("assert add3(0) == 3",),
    program_prefix='def add3(x):\n    """Return x plus 3.\n    >>> add3(0)\n    3\n    """\n', source="json",
    description="Return x plus 3.",
)
REF, WRONG, SYNTAX = "    return x + 3\n", "    return x + 2\n", "    return x +\n"


@pytest.fixture(scope="module")
def judge():
    with Judge(CFG) as j:
        yield j


def test_pass_at_k_and_failure_breakdown(judge):
    res = hidden_results(judge, [PROB, PROB], [[REF, WRONG, SYNTAX, REF], [WRONG, WRONG, "    return x.y\n", REF]])
    m = pass_at_k_metrics(res, ks=(1, 2, 8))
    assert m["pass@1"] == pytest.approx((2 / 4 + 1 / 4) / 2)
    assert m["pass@2"] == pytest.approx((1 - (2 * 1) / (4 * 3) + 1 - (3 * 2) / (4 * 3)) / 2)
    assert "pass@8" not in m  # k > n is not reported
    assert m["failure_rate"] == pytest.approx(5 / 8)
    assert (m["status/pass"], m["status/fail"], m["status/error"], m["status/syntax_error"]) == (3 / 8, 3 / 8, 1 / 8,
                                                                                                 1 / 8)
    assert pass_at_k_metrics([]) == {"problems": 0.0, "samples": 0.0}


def test_validity_catch_rate_and_false_alarms(judge):
    lenient = "    return int(x) + 3\n"  # right on the hidden (int) tests, wrong on floats
    answer = "assert add3(1) == 4\nassert add3(1.5) == 4.5\nassert add3(1) == 99\nassert True"
    m = discriminator_metrics(judge, [PROB], [answer], [[REF, WRONG, SYNTAX, lenient]])
    assert m["disc_validity"] == pytest.approx(2 / 3)
    assert m["disc_malformed_rate"] == pytest.approx(1 / 4)
    assert m["catch_rate"] == 1.0 and m["codes_wrong"] == 2  # WRONG and SYNTAX fail hidden tests, both caught
    assert m["false_alarm_rate"] == 0.5 and m["codes_right"] == 2  # lenient passes hidden, fails a valid test
    weak = discriminator_metrics(judge, [PROB], ["assert add3(3) >= 4\nassert add3(1) == 2"],
                                 [[WRONG, "    return 0\n"]])
    assert weak["disc_validity"] == 0.5 and weak["catch_rate"] == 0.5  # invalid tests never catch
    none = discriminator_metrics(judge, [PROB], [""], [[WRONG]])
    assert none["disc_no_valid_test"] == 1.0 and none["catch_rate"] == 0.0


def test_mutation_score_excludes_equivalent_mutants_and_counts_only_valid_tests(judge):
    pool = [[WRONG, "    return x - 3\n", "    return x * 1 + 3\n", "    return x + 3 if x != 5 else 0\n"]]
    full = mutation_score(judge, [PROB], ["assert add3(1) == 4"], 0, mutant_codes=pool)
    assert (full["mutants"], full["mutants_equivalent"], full["mutants_killed"]) == (4, 2, 2)
    assert full["mutation_score"] == 1.0 and full["mutation_score_visible"] == 1.0
    half = mutation_score(judge, [PROB], ["assert add3(3) >= 4"], 0, mutant_codes=pool)
    assert half["mutation_score"] == 0.5
    invalid = mutation_score(judge, [PROB], ["assert add3(1) == 99\nassert add3(3) == 0"], 0, mutant_codes=pool)
    assert invalid["mutation_score"] == 0.0  # every mutant fails these, but so does the reference
    real = mutation_score(judge, [PROB], ["assert add3(1) == 4"], 4, seed=0)  # mutants.py's own mutants
    assert real["mutants"] >= 1 and 0.0 <= real["mutation_score"] <= 1.0


def test_canonical_tests_of_suite_problems_are_valid_and_kill_mutants(judge):
    probs = load_problems("suite", split="heldout", n=6, validate_with=judge)
    answers = [canonical_tests(p) for p in probs]
    m = discriminator_metrics(judge, probs, answers)
    assert m["disc_validity"] == 1.0 and m["disc_malformed_rate"] == 0.0
    assert mutation_score(judge, probs, answers, 4)["mutation_score"] > 0.5


# --- coherence ----------------------------------------------------------------------------------------------------
STAGES3 = (stage_by_name("informal"), stage_by_name("plan"), stage_by_name("code"))


def _stub(code_from: str | None):
    """A greedy 'model': informal 'Add 3 to x.', plan '1. add 3', code = x + (the number in `code_from`'s text)."""

    def regenerate(problems, prefixes, stage):
        out = []
        for prefix in prefixes:
            chain = {"informal": "Add 3 to x.\n", "plan": "1. add 3\n"}
            chain.update({k: v for k, v in prefix.items()})
            n = int(re.findall(r"-?\d+", chain[code_from])[-1]) if code_from else 3
            chain["code"] = f"    return x + {n}\n"
            out.append(chain)
        return out

    return regenerate


def test_coherence_detects_which_stage_the_code_follows(judge):
    follows_informal = coherence(judge, [PROB, PROB], _stub("informal"), STAGES3, seed=0)
    assert follows_informal["coherence/informal"] == 1.0 and follows_informal["coherence/plan"] == 0.0
    assert follows_informal["coherence_n/informal"] == 2 and follows_informal["coherence"] == 0.5
    ignores = coherence(judge, [PROB], _stub(None), STAGES3)
    assert ignores["coherence"] == 0.0 and ignores["code_changed/informal"] == 0.0
    assert coherence(judge, [PROB], _stub(None), (stage_by_name("code"),)) == {}


def test_coherence_is_deterministic(judge):
    a = coherence(judge, [PROB], _stub("plan"), STAGES3, seed=3)
    assert a == coherence(judge, [PROB], _stub("plan"), STAGES3, seed=3)
    assert a["coherence/plan"] == 1.0  # plan '1. add 3': the step number is left alone, the 3 is changed
    assert a["coherence/informal"] == 0.0


# --- critiques ----------------------------------------------------------------------------------------------------
def test_critique_accuracy_with_stub_critics():
    pairs = dict(canonical_critiques(PROB, 5, 0))
    assert set(pairs.values()) == {"ok", "wrong"}
    oracle = critique_accuracy(lambda ps: [pairs[p] for p in ps], [PROB])
    assert oracle["critique_accuracy"] == 1.0 and oracle["critique_n"] == len(pairs)
    always_ok = critique_accuracy(lambda ps: ["ok"] * len(ps), [PROB])
    assert always_ok["critique_acc_ok"] == 1.0 and always_ok["critique_acc_wrong"] == 0.0
    assert 0.0 < always_ok["critique_accuracy"] < 1.0
    assert critique_accuracy(lambda ps: ["maybe"] * len(ps), [PROB])["critique_accuracy"] == 0.0


# --- adapters to the Policy interface -----------------------------------------------------------------------------
@dataclass
class _Sample:
    text: str


class _FakePolicy:
    def sample_chains(self, problems, prefixes, stage, stages, n, *, temperature, max_new_tokens=None, **kw):
        assert temperature == 0.0 and n == 1
        return [[(_Sample(""), {**p, stage.name: "x\n", "code": REF})] for p in prefixes]

    def sample_texts(self, prompts, n, temperature, max_new_tokens, top_p=1.0):
        assert temperature == 0.0
        return [[_Sample(" ok\n")] for _ in prompts]


def test_policy_adapters():
    regen = policy_regenerator(_FakePolicy(), STAGES)
    chains = regen([PROB], [{"informal": "a\n"}], STAGES[1])
    assert chains == [{"informal": "a\n", "plan": "x\n", "code": REF}]
    assert policy_critic(_FakePolicy())(["p1", "p2"]) == ["ok", "ok"]
