"""SFT rows: loss only on answers (-100 on prompts and padding), packing, determinism, MBPP and suite sources."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from autoresearch.errors import DataError
from autoresearch.harness.code_tasks import mbpp_prompt
from autoresearch.testbeds.common.hrm import HRM
from autoresearch.testbeds.common.hrm_config import HRMConfig
from autoresearch.testbeds.common.sft_data import IGNORE_INDEX, build_sft_data, mbpp_pairs, suite_pairs
from autoresearch.testbeds.common.tasks import make_suite

MBPP = Path(__file__).parents[2] / "shared/data/mbpp/mbpp.jsonl"


class ByteTok:
    vocab_size = 257
    eot_id = 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode())

    def decode(self, ids: list[int]) -> str:
        return bytes(i for i in ids if i < 256).decode(errors="replace")


TOK = ByteTok()
PAIRS = [("Q: 1+1?\nA:", " 2"), ("Q: say hi\nA:", " hi there"), ("Q: long one\nA:", " abcdefghij"),
         ("Q: x\nA:", " y"), ("Q: empty?\nA:", "")]


def _answers(data) -> list[str]:
    """The labelled spans of every row, decoded: loss must sit exactly on answers + eot."""
    out = []
    for row in data.labels.tolist():
        span: list[int] = []
        for y in row + [IGNORE_INDEX]:
            if y == IGNORE_INDEX:
                if span:
                    out.append(TOK.decode(span) + ("<eot>" if span[-1] == TOK.eot_id else ""))
                span = []
            else:
                span.append(y)
    return out


def test_labels_only_on_answers_unpacked():
    data = build_sft_data(PAIRS, TOK, seq_len=32, pack=False, seed=0)
    assert data.n_rows == 5 and data.inputs.shape == data.labels.shape == (5, 32)
    assert sorted(_answers(data)) == sorted(a + "<eot>" for _, a in PAIRS)
    assert data.answer_tokens == sum(len(a) + 1 for _, a in PAIRS)
    for x, y in zip(data.inputs.tolist(), data.labels.tolist(), strict=True):
        text = TOK.decode(x)
        prompt = next(p for p, _ in PAIRS if text.startswith(p))
        # labels[t] is the token after inputs[t]: the first labelled position is the prompt's last token.
        first = next(i for i, v in enumerate(y) if v != IGNORE_INDEX)
        assert first == len(prompt) - 1
        assert all(v == IGNORE_INDEX for v in y[:first])


def test_packing_keeps_examples_whole_and_the_same_loss_tokens():
    packed = build_sft_data(PAIRS * 4, TOK, seq_len=40, pack=True, seed=0)
    unpacked = build_sft_data(PAIRS * 4, TOK, seq_len=40, pack=False, seed=0)
    assert packed.n_rows < unpacked.n_rows == 20
    assert packed.answer_tokens == unpacked.answer_tokens
    assert sorted(_answers(packed)) == sorted(_answers(unpacked))
    for x in packed.inputs.tolist():
        assert TOK.decode(x).startswith("Q: ")  # every row starts at an example's start


def test_too_long_examples_are_dropped_and_counted():
    data = build_sft_data(PAIRS + [("Q: " + "z" * 100, "a")], TOK, seq_len=30, pack=False)
    assert data.dropped == 1 and data.n_examples == 5
    with pytest.raises(DataError, match="seq_len"):
        build_sft_data([("z" * 50, "a")], TOK, seq_len=8)


def test_deterministic_by_seed_and_batches_cover_each_epoch():
    a = build_sft_data(PAIRS * 3, TOK, seq_len=32, pack=False, seed=1)
    b = build_sft_data(PAIRS * 3, TOK, seq_len=32, pack=False, seed=1)
    c = build_sft_data(PAIRS * 3, TOK, seq_len=32, pack=False, seed=2)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.inputs, c.inputs)
    n = a.n_rows  # 15 rows, batches of 5: steps 0-2 are epoch 0, 3-5 epoch 1
    epoch0 = torch.cat([a.batch(s, 5)[0] for s in range(3)])
    epoch1 = torch.cat([a.batch(s, 5)[0] for s in range(3, 6)])
    rows = {tuple(r) for r in a.inputs.tolist()}
    assert len(epoch0) == n and {tuple(r) for r in epoch0.tolist()} == rows
    assert not torch.equal(epoch0, epoch1)  # a new permutation each epoch
    assert torch.equal(a.batch(4, 5)[1], b.batch(4, 5)[1])  # resumable: batch k depends only on (seed, k)


def test_suite_pairs_and_model_loss_uses_only_answers():
    tasks = make_suite("train", 20, seed=0)
    data = build_sft_data(suite_pairs(tasks), TOK, seq_len=400, seed=0)
    assert data.dropped == 0 and data.n_examples == 20
    assert sorted(_answers(data)) == sorted(t.reference + "<eot>" for t in tasks)
    torch.manual_seed(0)
    m = HRM(HRMConfig(d_model=16, n_heads=2, layers_per_stack=1, h_cycles=1, l_cycles=1, d_ff=32, seq_len=400), 257)
    x, y = data.batch(0, 2)
    logits = m(x)
    mask = y != IGNORE_INDEX
    want = torch.nn.functional.cross_entropy(logits[mask], y[mask])
    torch.testing.assert_close(m(x, y), want)


@pytest.mark.skipif(not MBPP.is_file(), reason=f"MBPP data not found at {MBPP} (shared/data beside the checkout)")
def test_mbpp_train_pairs():
    pairs = mbpp_pairs(MBPP, "train")
    assert len(pairs) == 374
    prompt, answer = pairs[0]
    assert prompt.startswith('"""\n') and prompt.endswith('"""\n') and prompt.count("assert ") == 3
    assert prompt == mbpp_prompt(prompt.split("\n")[1], prompt.split("\n")[2:5])  # the evaluator's prompt
    assert "def " in answer and "\r" not in answer and answer.endswith("\n")
    data = build_sft_data(pairs, TOK, seq_len=1024, seed=0)
    assert data.n_examples + data.dropped == 374 and data.dropped < 10
