"""adversarial/sft.py: SFT pairs of both roles, BPE texts, rows; no hidden test ever reaches a training text."""

from __future__ import annotations

import ast
import re

import pytest

from autoresearch.harness.tokenizer import ByteTokenizer, train_bpe
from autoresearch.testbeds.adversarial.problems import load_problems
from autoresearch.testbeds.adversarial.sft import (
    discriminator_data,
    discriminator_pairs,
    generator_data,
    generator_pairs,
    sft_texts,
)
from autoresearch.testbeds.adversarial.stages import (
    CRITIQUE_OK,
    CRITIQUE_WRONG,
    STAGES,
    canonical_chain,
    render_chain,
    tests_prompt,
)
from autoresearch.testbeds.common.sft_data import IGNORE_INDEX


@pytest.fixture(scope="module")
def suite():
    return load_problems("suite", split="train", n=500, validate=False)


def test_generator_pairs_continue_the_prompt_through_the_code(suite):
    probs = suite[:20]
    first = generator_pairs(probs, 5, every_stage=False)
    assert len(first) == 20
    for (prompt, answer), p in zip(first, probs, strict=True):
        assert prompt == p.prompt + "### informal\n"
        assert prompt + answer == p.prompt + render_chain(canonical_chain(p))
        assert answer.endswith(canonical_chain(p)["code"])
    every = generator_pairs(probs, 5)
    assert len(every) == 5 * 20
    for k, stage in enumerate(STAGES):
        prompt, answer = every[k]
        assert prompt.endswith(stage.tag + "\n") and prompt + answer == first[0][0] + first[0][1]


def test_stages_1_pairs_are_code_only(suite):
    pairs = generator_pairs(suite[:10], 1)
    assert len(pairs) == 10
    for (prompt, answer), p in zip(pairs, suite[:10], strict=True):
        assert prompt == p.prompt + "### code\n" and "###" not in answer
        assert answer == canonical_chain(p, 1)["code"]


def test_discriminator_pairs_hold_tests_and_both_critique_labels(suite):
    pairs = discriminator_pairs(suite[:10], seed=0)
    tests = [(q, a) for q, a in pairs if q.endswith("### tests\n")]
    assert [q for q, _ in tests] == [tests_prompt(p) for p in suite[:10]]
    assert all(ast.parse(a) and a.startswith("assert ") for _, a in tests)
    labels = [a for q, a in pairs if q.endswith("### critique\n")]
    assert len(labels) == 10 and {CRITIQUE_OK, CRITIQUE_WRONG} <= set(labels)  # one critique per problem
    assert len(discriminator_pairs(suite[:40], seed=0)) == 80  # tests pairs are half of the rows
    assert discriminator_pairs(suite[:10], seed=0) == pairs  # deterministic
    assert len(discriminator_pairs(suite[:10], critiques=False)) == 10


@pytest.mark.slow
def test_no_hidden_test_text_in_any_sft_text(suite):
    """500 suite problems, both roles, every pair and every BPE text: neither a hidden assert nor a hidden call."""
    for p in suite:
        texts = [q + a for q, a in generator_pairs([p], 5) + generator_pairs([p], 1) + discriminator_pairs([p])]
        texts += sft_texts([p])
        blob = "\n".join(texts)
        for t in p.hidden_tests:
            call = ast.unparse(ast.parse(t).body[0].test.left)  # type: ignore[attr-defined]
            assert t.strip() not in blob, (p.id, t)
            assert not re.search(r"(?<![\w.])" + re.escape(call) + r"(?![\w(\[])", blob), (p.id, call)


def test_rows_train_on_answers_only(suite):
    probs = suite[:30]
    tok = train_bpe(sft_texts(probs), 400)
    gen = generator_data(probs, tok, seq_len=256, seed=1)
    disc = discriminator_data(probs, tok, seq_len=256, seed=1)
    assert gen.n_examples + gen.dropped == 150 and gen.answer_tokens > 0
    assert disc.n_examples > 30 and disc.answer_tokens > 0
    x, y = gen.batch(0, 4)
    assert x.shape == (4, 256) and (y != IGNORE_INDEX).any() and (y == IGNORE_INDEX).any()
    short = generator_data(probs, ByteTokenizer(), seq_len=512, n_stages=1, seed=0)
    assert short.dropped == 0 and short.n_examples == 30
