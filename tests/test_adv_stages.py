"""adversarial/stages.py: stage metadata, chain text format, prompts of both roles, canonical texts and tests."""

from __future__ import annotations

import random
import statistics
from pathlib import Path

import pytest

from autoresearch.harness.sandbox import bwrap_status
from autoresearch.harness.tokenizer import train_bpe
from autoresearch.testbeds.adversarial.config import RewardConfig
from autoresearch.testbeds.adversarial.judge import Judge
from autoresearch.testbeds.adversarial.problems import Problem, load_problems
from autoresearch.testbeds.adversarial.sft import sft_texts
from autoresearch.testbeds.adversarial.stages import (
    CRITIQUE_OK,
    CRITIQUE_TAG,
    CRITIQUE_WRONG,
    STAGE_NAMES,
    STAGES,
    TESTS_TAG,
    canonical_chain,
    canonical_critiques,
    canonical_tests,
    chain_stages,
    code_of,
    corrupt_text,
    critique_prompt,
    generator_prompt,
    parse_chain,
    pseudocode_of,
    render_chain,
    stage_by_name,
    tests_prompt,
)

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "adversarial_problems.json"


@pytest.fixture(scope="module")
def suite() -> list[Problem]:
    return load_problems("suite", split="train", n=200, validate=False)


@pytest.fixture(scope="module")
def judge():
    ok, _ = bwrap_status()
    with Judge(RewardConfig(workers=2, allow_reduced=not ok)) as j:
        yield j


def body_problem(body: str, desc: str = "Return x plus 7.") -> Problem:
    prompt = f'def f(x: int) -> int:\n    """{desc}\n    >>> f(3)\n    10\n    """\n'
    return Problem(id="p", prompt=prompt, entry_point="f", reference=body, hidden_tests=("assert f(0) == 7\n",),
                   visible_tests=("assert f(3) == 10\n",), program_prefix=prompt, source="json", description=desc)


def test_five_stages_in_order_with_tags():
    assert STAGE_NAMES == ("informal", "plan", "pseudocode", "constraints", "code")
    assert [s.index for s in STAGES] == [1, 2, 3, 4, 5]
    assert all(s.tag == f"### {s.name}" and s.description and s.checkable for s in STAGES)
    assert chain_stages(5) == STAGES and chain_stages(1) == (stage_by_name("code"),)
    with pytest.raises(ValueError, match="5 or 1"):
        chain_stages(3)


def test_render_parse_round_trip(suite):
    probs = suite + load_problems(str(EXAMPLES), validate=False)
    for p in probs:
        for n in (5, 1):
            c = canonical_chain(p, n)
            assert parse_chain(render_chain(c, chain_stages(n)), chain_stages(n)) == c
            assert parse_chain(render_chain(c)) == {**dict.fromkeys(STAGE_NAMES, ""), **c}


def test_parse_chain_tolerates_junk_and_missing_sections():
    assert parse_chain("") == dict.fromkeys(STAGE_NAMES, "")
    assert parse_chain(None) == dict.fromkeys(STAGE_NAMES, "")  # type: ignore[arg-type]
    got = parse_chain("stuff\n### code\n    return 1\n### tests\nassert f(1) == 1\n")
    assert got["informal"] == "stuff\n" and got["code"] == "    return 1\n" and got["plan"] == ""
    rnd = random.Random(0)
    for _ in range(200):
        text = "".join(rnd.choice(["### code\n", "### plan", "\n", "x", "###", " ", "\r\n", "### informal\n"])
                       for _ in range(30))
        out = parse_chain(text)
        assert set(out) == set(STAGE_NAMES)


def test_stages_1_is_code_only(suite):
    p = suite[0]
    chain = canonical_chain(p, 1)
    assert list(chain) == ["code"] and code_of(chain) == canonical_chain(p)["code"]
    prompt = generator_prompt(p, stage=chain_stages(1)[0], n_stages=1)
    assert prompt == p.prompt + "### code\n"
    assert generator_prompt(p, n_stages=1) == prompt


def test_generator_prompt_is_prompt_prefix_and_next_tag(suite):
    p = suite[3]
    chain = canonical_chain(p)
    assert generator_prompt(p) == p.prompt + "### informal\n"
    prefix = {k: chain[k] for k in ("informal", "plan")}
    got = generator_prompt(p, prefix)
    assert got == p.prompt + render_chain(prefix) + "### pseudocode\n"
    assert generator_prompt(p, prefix, stage_by_name("pseudocode")) == got
    fb = generator_prompt(p, prefix, feedback="failed: assert f(1) == 2")
    assert fb.startswith(p.prompt + "### feedback\nfailed: assert f(1) == 2\n### informal\n")
    # the whole canonical text is the prompt continued by the rest of the chain
    assert (p.prompt + render_chain(chain)).startswith(got)


def test_discriminator_prompts(suite):
    p = suite[5]
    chain = canonical_chain(p)
    assert tests_prompt(p) == p.prompt + TESTS_TAG + "\n"
    assert tests_prompt(p, "missed bug") == p.prompt + "### feedback\nmissed bug\n" + TESTS_TAG + "\n"
    cp = critique_prompt(p, chain, stage_by_name("plan"))
    assert cp == p.prompt + render_chain({k: chain[k] for k in ("informal", "plan")}) + CRITIQUE_TAG + "\n"


def test_canonical_texts_are_mechanical_and_short():
    p = body_problem("    return x + 7\n")
    c = canonical_chain(p)
    assert c["informal"] == "Return x plus 7. Example answer: 10.\n"
    assert c["plan"] == "1. inputs: x\n2. constants: 7\n3. return int\n"
    assert c["pseudocode"] == "RETURN x PLUS 7\n"
    assert c["constraints"] == "assert f(3) == 10\n"
    assert c["code"] == "    return x + 7\n"


def test_pseudocode_spells_out_control_flow():
    p = body_problem("    total = 0\n    for i in range(x):\n        if i % 2 == 0 and i > 1:\n            total += i\n"
                     "        else:\n            total -= 1\n    return total\n")
    assert pseudocode_of(p, p.reference) == (
        "SET total TO 0\nFOR i IN range(x):\n  IF (i MOD 2 EQUALS 0) AND (i GREATER THAN 1):\n"
        "    SET total TO total PLUS i\n  ELSE:\n    SET total TO total MINUS 1\nRETURN total\n")
    assert pseudocode_of(p, "    return (\n") == ""


def test_canonical_chain_code_and_canonical_tests_pass_on_the_reference(judge, suite):
    probs = suite[:100]
    jobs = []
    for p in probs:
        tests = canonical_tests(p)
        lines = tests.splitlines(keepends=True)
        assert len(lines) == 3 and all(t.startswith(f"assert {p.entry_point}(") for t in lines), p.id
        assert not set(lines) & set(p.hidden_tests), p.id
        jobs.append((p.program(p.reference), tuple(lines)))
        jobs.append((p.program(canonical_chain(p)["code"]), p.hidden_tests))
    results = judge.run(jobs)
    bad = [(j[0][-60:], r.status) for j, r in zip(jobs, results, strict=True) if r.status != "pass"]
    assert not bad


def test_canonical_tests_of_other_sources_are_their_visible_examples():
    p = body_problem("    return x + 7\n")
    assert canonical_tests(p) == "assert f(3) == 10\n"
    assert canonical_tests(Problem(id="q", prompt="", entry_point="f", reference="", hidden_tests=("x",))) == ""


def test_corrupt_text_changes_one_value_not_step_numbers():
    rng = random.Random(0)
    text = "1. inputs: x\n2. constants: 7\n3. return int\n"
    for _ in range(20):
        out = corrupt_text(text, rng)
        assert out is not None and out != text and out.startswith("1. inputs: x\n2. constants: ")
    assert corrupt_text("assert f('ab') == 'abx'\n", rng) not in (None, "assert f('ab') == 'abx'\n")
    assert corrupt_text("assert f(1) == True\n", rng) != "assert f(1) == True\n"
    assert corrupt_text("1. inputs: x\n3. return str\n", rng) is None


def test_canonical_critiques_pair_ok_and_wrong_per_stage(suite):
    for p in suite[:30]:
        pairs = canonical_critiques(p, 5, seed=0)
        oks = [q for q, a in pairs if a == CRITIQUE_OK]
        wrongs = [q for q, a in pairs if a == CRITIQUE_WRONG]
        assert len(oks) == 5 and 3 <= len(wrongs) <= 5
        assert all(q.endswith(CRITIQUE_TAG + "\n") for q, _ in pairs)
        assert not set(oks) & set(wrongs)
    pairs = canonical_critiques(suite[0], 1, seed=0)
    assert [a for _, a in pairs] == [CRITIQUE_OK, CRITIQUE_WRONG]


def test_prompt_plus_chain_fits_seq_len_256_with_a_1024_bpe():
    """Measured: BPE 1024 trained on 2000 train problems' SFT texts, 200 held-out problems: prompt + 5-stage chain
    + eot mean 143 tokens, p95 210, max 247 (docs/adversarial.md). Here a smaller BPE (500 problems) must stay
    close: mean <= 170 and at most 2% over 257 (= seq_len 256 + 1, what build_sft_data keeps)."""
    train = load_problems("suite", split="train", n=500, validate=False)
    tok = train_bpe(sft_texts(train), 1024)
    held = load_problems("suite", split="heldout", n=200, validate=False)
    lengths = [len(tok.encode(p.prompt + render_chain(canonical_chain(p)))) + 1 for p in held]
    assert statistics.mean(lengths) <= 170
    assert sum(n > 257 for n in lengths) <= 4


def test_a_user_problem_claiming_source_suite_is_never_run_in_process(suite, tmp_path):
    """Only suite problems generated in this process get extra cases computed in-process; a user file saying
    source "suite" gets its visible examples only (its reference would otherwise run outside the sandbox)."""
    marker = tmp_path / "ran"
    body = f"    open({str(marker)!r}, 'w').write('x')\n    return x + 7\n"
    p = Problem.from_dict({**body_problem(body).to_dict(), "source": "suite"}, "user.json problems[0]")
    assert canonical_tests(p) == "assert f(3) == 10\n" and not marker.exists()
    real = suite[0]
    assert canonical_tests(Problem.from_dict(real.to_dict(), "copy")).count("\n") == 3  # same trusted code
