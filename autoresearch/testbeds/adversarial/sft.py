"""SFT pairs of both roles from the problems' canonical texts (stages.py), and the texts a BPE is trained on.

Generator: (generator prompt up to a stage's tag line, the rest of the canonical chain through the code). With
`every_stage` (default) there is one pair per start stage: RL at stage s continues a prompt that ends with stage s's
tag line, and a byte-level BPE tokenizes a section start differently when it is the first token of an answer than
inside one (e.g. the code body's leading "\\n    " merges across the tag's newline), so each start is trained as
it is sampled. Discriminator: (tests prompt, canonical tests) for problems that have any, plus the critique pairs
(prompt through a stage, "ok" | "wrong"). Rows: `build_sft_data` (answer-only loss, packed, seeded).
Hidden tests never enter any of these texts (canonical texts use only visible examples and fresh inputs).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from autoresearch.harness.tokenizer import EOT
from autoresearch.testbeds.adversarial.problems import Problem
from autoresearch.testbeds.adversarial.stages import (
    CRITIQUE_OK,
    CRITIQUE_TAG,
    CRITIQUE_WRONG,
    FEEDBACK_TAG,
    canonical_chain,
    canonical_critiques,
    canonical_tests,
    chain_stages,
    generator_prompt,
    render_chain,
    tests_prompt,
)
from autoresearch.testbeds.common.sft_data import SFTData, build_sft_data

__all__ = ["generator_pairs", "discriminator_pairs", "sft_texts", "generator_data", "discriminator_data"]


def generator_pairs(problems: Sequence[Problem], n_stages: int = 5,
                    every_stage: bool = True) -> list[tuple[str, str]]:
    """(prompt, answer) per problem and start stage: the prompt ends with the start stage's tag line, the answer is
    the canonical chain from there through the code. `every_stage=False`: the first stage only. n_stages=1: the
    code alone after "### code"."""
    stages = chain_stages(n_stages)
    starts = stages if every_stage else stages[:1]
    pairs: list[tuple[str, str]] = []
    for p in problems:
        chain = canonical_chain(p, n_stages)
        for i, stage in enumerate(starts):
            prefix = {s.name: chain[s.name] for s in stages[:i]}
            rest = render_chain(chain, stages[i:])[len(stage.tag) + 1:]
            pairs.append((generator_prompt(p, prefix, stage, n_stages=n_stages), rest))
    return pairs


def discriminator_pairs(problems: Sequence[Problem], seed: int = 0, n_stages: int = 5,
                        critiques: bool = True) -> list[tuple[str, str]]:
    """(tests prompt, canonical tests) for every problem with canonical tests, then (with `critiques`) ONE critique
    pair per problem: a stage and a label ("ok" / "wrong") drawn by (seed, problem id).

    One critique per problem, not all ~10 (one per stage and label): with all of them the tests pairs were 9% of the
    rows, and the tiny preset's discriminator (600 SFT steps) then wrote tests for the wrong function name on
    held-out problems (validity 0.03, measured); test writing is the skill the rewards pay for."""
    pairs = [(tests_prompt(p), t) for p in problems if (t := canonical_tests(p))]
    if critiques:
        for p in problems:
            options = canonical_critiques(p, n_stages, seed)
            if options:
                pairs.append(random.Random(f"critique-pick:{seed}:{p.id}").choice(options))
    return pairs


def sft_texts(problems: Sequence[Problem], n_stages: int = 5) -> list[str]:
    """Whole documents (prompt + answer + end-of-text) of both roles, for training the BPE: every chain, every
    tests answer, and the tags and critique words once."""
    texts = [p + a + EOT for p, a in generator_pairs(problems, n_stages, every_stage=False)]
    texts += [p + a + EOT for p, a in discriminator_pairs(problems, critiques=False)]
    texts.append(f"{CRITIQUE_TAG}\n{CRITIQUE_OK}{EOT}{CRITIQUE_TAG}\n{CRITIQUE_WRONG}{EOT}{FEEDBACK_TAG}\n")
    return texts


def generator_data(problems: Sequence[Problem], tokenizer: Any, seq_len: int, n_stages: int = 5, seed: int = 0,
                   every_stage: bool = True) -> SFTData:
    """The generator's SFT rows (packed, answer-only loss)."""
    return build_sft_data(generator_pairs(problems, n_stages, every_stage), tokenizer, seq_len, pack=True, seed=seed)


def discriminator_data(problems: Sequence[Problem], tokenizer: Any, seq_len: int, n_stages: int = 5,
                       seed: int = 0, critiques: bool = True) -> SFTData:
    """The discriminator's SFT rows (packed, answer-only loss)."""
    return build_sft_data(discriminator_pairs(problems, seed, n_stages, critiques), tokenizer, seq_len, pack=True,
                          seed=seed)
