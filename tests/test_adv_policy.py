"""Policies of the adversarial testbed: sampling, log-probs with gradients, sanitisation, role methods, backends."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest
import torch
from torch import nn

from autoresearch.errors import ConfigError
from autoresearch.harness.tokenizer import ByteTokenizer
from autoresearch.testbeds.adversarial.config import adversarial_preset
from autoresearch.testbeds.adversarial.policy import (
    MAX_TEXT_CHARS,
    LMPolicy,
    Sample,
    build_model,
    build_policy,
    sanitize_continuation,
    sanitize_critique,
    sanitize_tests,
)
from autoresearch.testbeds.adversarial.problems import Problem
from autoresearch.testbeds.adversarial.stages import STAGES, chain_stages, render_chain
from autoresearch.testbeds.common.config import ModelConfig
from autoresearch.testbeds.common.gpt import GPT
from autoresearch.testbeds.common.hrm_config import HRMConfig

PROBLEM = Problem(
    id="t/0", prompt='def add7(x: int) -> int:\n    """Add 7 to x."""\n', entry_point="add7",
    reference="    return x + 7\n", hidden_tests=("assert add7(1) == 8",), visible_tests=("assert add7(3) == 10",),
    program_prefix='def add7(x: int) -> int:\n    """Add 7 to x."""\n', description="Add 7 to x.")


def tiny_policy(seed: int = 0, seq_len: int = 64, max_new: int = 16) -> LMPolicy:
    torch.manual_seed(seed)
    tok = ByteTokenizer()
    model = GPT(ModelConfig(d_model=32, n_layers=2, n_heads=2, n_kv_heads=2, d_ff=64, seq_len=seq_len),
                tok.vocab_size)
    return LMPolicy(model, tok, "cpu", max_new_tokens=max_new)


class ScriptedPolicy(LMPolicy):
    """A tiny GPT whose `sample` returns fixed answers: tests the role methods' prompts and parsing."""

    def __init__(self, answers: Sequence[str]) -> None:
        base = tiny_policy()
        super().__init__(base.model, base.tokenizer, "cpu")
        self.answers = list(answers)
        self.prompts: list[str] = []

    def sample(self, prompts, n, *, temperature=1.0, top_p=1.0, max_new_tokens=None, greedy=False,
               generator=None):
        self.prompts.extend(prompts)
        out = []
        for p in prompts:
            ids = self.encode(p)
            out.append([Sample(p, ids, self.encode(a), a, False) for a in self.answers[:n]])
        return out


class EotBias(nn.Module):
    """A model whose every next-token distribution puts its mode on eot."""

    def __init__(self, inner: GPT, eot_id: int) -> None:
        super().__init__()
        self.inner, self.eot_id, self.cfg = inner, eot_id, inner.cfg

    def forward(self, idx, targets=None, *, cache=None):
        logits = self.inner(idx, cache=cache).clone()
        logits[..., self.eot_id] += 100.0
        return logits

    def new_cache(self, batch_size, max_len, *, dtype=None):
        return self.inner.new_cache(batch_size, max_len, dtype=dtype)


# --- sampling -----------------------------------------------------------------------------------------------------


def test_sample_shapes_and_eot():
    pol = tiny_policy(max_new=12)
    out = pol.sample(["def f(x):\n", "abc"], 3, temperature=1.0)
    assert [len(r) for r in out] == [3, 3]
    for prompt, row in zip(["def f(x):\n", "abc"], out, strict=True):
        for s in row:
            assert s.prompt == prompt and s.prompt_ids == pol.encode(prompt)
            assert 1 <= len(s.ids) <= 12
            ended = s.ids[-1] == pol.eot_id
            assert s.truncated == (not ended)
            assert pol.eot_id not in s.ids[:-1]
            assert s.text == pol.decode([i for i in s.ids if i != pol.eot_id])
    # An eot produced by the model is kept in ids (the loss is taken on it) and cut from the text.
    eot_first = LMPolicy(EotBias(pol.model, pol.eot_id), pol.tokenizer, "cpu", max_new_tokens=12)
    s = eot_first.sample(["x"], 1, greedy=True)[0][0]
    assert s.ids == [pol.eot_id] and s.text == "" and not s.truncated


def test_sampling_is_reproducible_under_a_seed():
    pol = tiny_policy()
    torch.manual_seed(5)
    a = pol.sample(["def f(x):\n", "ab"], 4, temperature=1.0)
    torch.manual_seed(5)
    b = pol.sample(["def f(x):\n", "ab"], 4, temperature=1.0)
    torch.manual_seed(6)
    c = pol.sample(["def f(x):\n", "ab"], 4, temperature=1.0)
    ids = lambda out: [[s.ids for s in row] for row in out]  # noqa: E731
    assert ids(a) == ids(b)
    assert ids(a) != ids(c)
    gen = torch.Generator().manual_seed(3)
    d = pol.sample(["ab"], 2, generator=gen)
    gen = torch.Generator().manual_seed(3)
    assert ids(pol.sample(["ab"], 2, generator=gen)) == ids(d)


def test_greedy_gives_n_equal_copies():
    pol = tiny_policy()
    row = pol.sample(["def f(x):\n"], 3, greedy=True)[0]
    assert len(row) == 3 and row[0].ids == row[1].ids == row[2].ids
    assert row[0] is not row[1]
    assert pol.sample_texts(["def f(x):\n"], 1, 0.0, None)[0][0].ids == row[0].ids


# --- log-probs ----------------------------------------------------------------------------------------------------


def test_logprobs_have_grad_and_equal_the_stepwise_distribution():
    pol = tiny_policy()
    samples = [s for row in pol.sample(["def f(x):\n", "abc"], 2, temperature=1.0) for s in row]
    logp, mask = pol.sequence_logprobs(samples)
    assert logp.requires_grad and logp.shape == mask.shape == (4, max(len(s.ids) for s in samples))
    assert mask.sum(dim=1).tolist() == [len(s.ids) for s in samples]
    assert torch.all(logp[~mask] == 0) and torch.all(logp[mask] < 0)
    (logp.sum()).backward()
    assert pol.model.embed.weight.grad is not None and pol.model.embed.weight.grad.abs().sum() > 0
    with torch.no_grad():
        for b, s in enumerate(samples):
            seq = torch.tensor([s.prompt_ids + s.ids])
            lsm = pol.model(seq)[0].log_softmax(-1)
            P = len(s.prompt_ids)
            ref = torch.stack([lsm[P - 1 + t, tok] for t, tok in enumerate(s.ids)])
            assert torch.allclose(logp[b, :len(s.ids)].detach(), ref, atol=1e-5)


def test_logprobs_match_the_sampling_distribution_at_temperature_1():
    pol = tiny_policy(seed=1, max_new=1)
    with torch.no_grad():
        pol.model.embed.weight.mul_(40)  # a peaked next-token distribution: few tokens carry the mass
    torch.manual_seed(0)
    n = 4000
    row = pol.sample(["ab"], n, temperature=1.0, max_new_tokens=1)[0]
    with torch.no_grad():
        probs = pol.model(torch.tensor([pol.encode("ab")]))[0, -1].softmax(-1)
        logp, _ = pol.sequence_logprobs(row[:50])
    counts = torch.bincount(torch.tensor([s.ids[0] for s in row]), minlength=probs.numel()).float() / n
    tv = 0.5 * float((counts - probs).abs().sum())
    assert tv < 0.05, tv
    for s, lp in zip(row[:50], logp[:, 0], strict=True):
        assert math.isclose(float(lp), math.log(float(probs[s.ids[0]])), rel_tol=1e-4, abs_tol=1e-5)
    # At temperature T the log-probs are those of logits / T.
    lp_t, _ = pol.sequence_logprobs(row[:5], temperature=2.0)
    ref = (pol.model(torch.tensor([pol.encode("ab")]))[0, -1] / 2.0).log_softmax(-1)
    assert torch.allclose(lp_t[:, 0].detach(), ref[[s.ids[0] for s in row[:5]]].detach(), atol=1e-5)


def test_a_prompt_longer_than_the_context_is_cropped_from_the_left():
    pol = tiny_policy(seq_len=32, max_new=8)
    long_prompt = "0123456789" * 6
    s = pol.sample([long_prompt], 1, temperature=1.0)[0][0]
    # The sample records the context it was drawn under: the prompt's last context - max_new_tokens tokens.
    assert s.prompt_ids == pol.encode(long_prompt)[-24:]
    logp, _ = pol.sequence_logprobs([s])
    with torch.no_grad():
        lsm = pol.model(torch.tensor([s.prompt_ids + s.ids]))[0].log_softmax(-1)
    ref = torch.stack([lsm[24 - 1 + t, tok] for t, tok in enumerate(s.ids)])
    assert torch.allclose(logp[0, :len(s.ids)].detach(), ref, atol=1e-5)
    # A hand-built sample longer than the context keeps its last context + 1 tokens.
    s = Sample(long_prompt, pol.encode(long_prompt), s.ids, s.text, s.truncated)
    logp, mask = pol.sequence_logprobs([s])
    seq = (s.prompt_ids + s.ids)[-33:]
    with torch.no_grad():
        lsm = pol.model(torch.tensor([seq[:-1]]))[0].log_softmax(-1)
    k = len(s.ids)
    ref = torch.stack([lsm[32 - k + t, tok] for t, tok in enumerate(s.ids)])
    assert torch.allclose(logp[0, :k].detach(), ref, atol=1e-5)
    with pytest.raises(ConfigError, match="context"):
        pol.sequence_logprobs([Sample("a", [1], [2] * 40, "", True)])


def test_logprobs_refuse_bad_input():
    pol = tiny_policy()
    with pytest.raises(ConfigError, match="no samples"):
        pol.sequence_logprobs([])
    with pytest.raises(ConfigError, match="prompt"):
        pol.sequence_logprobs([Sample("", [], [1], "", False)])
    with pytest.raises(ConfigError, match=">= 1"):
        pol.sample(["a"], 0)


# --- sanitisation -------------------------------------------------------------------------------------------------

LATER = [s.tag for s in STAGES[1:]]


@pytest.mark.parametrize("text, expected", [
    ("restated\n### plan\n1. x\n### code\n    return x\n", "restated\n### plan\n1. x\n### code\n    return x\n"),
    ("a\n### code\n    return 1\n### tests\nassert f(1) == 2\n", "a\n### code\n    return 1\n"),  # foreign tag
    ("a\n### code\n    return 1\n### plan\n2. y\n", "a\n### code\n    return 1\n"),  # out of order
    ("a\n### plan\nx\n### plan\ny\n", "a\n### plan\nx\n"),  # repeated tag
    ("a\n### Step 1\nb\n", "a\n"),  # a made-up tag
    ("a\n### feedback\nyour code failed\n", "a\n"),
    ("a   \n\n\n  \n", "a\n"),  # trailing junk
    ("", ""),
    ("    return x  # ### not a tag\n", "    return x  # ### not a tag\n"),  # '###' inside a line stays
])
def test_sanitize_continuation(text, expected):
    assert sanitize_continuation(text, LATER) == expected


def test_sanitize_caps_length():
    assert len(sanitize_continuation("x" * (MAX_TEXT_CHARS + 100), LATER)) == MAX_TEXT_CHARS + 1
    assert len(sanitize_tests("assert f(1) == 1\n" * 1000)) <= MAX_TEXT_CHARS


@pytest.mark.parametrize("text, expected", [
    ("assert f(1) == 2\nassert f(2) == 3\n", "assert f(1) == 2\nassert f(2) == 3"),
    ("assert f(1) == 2\n### code\n    return 1\n", "assert f(1) == 2"),
    ("\n\nassert f(1) == 2   \n\n", "assert f(1) == 2"),
    ("### tests\nassert f(1) == 2\n", ""),
])
def test_sanitize_tests(text, expected):
    assert sanitize_tests(text) == expected


@pytest.mark.parametrize("text, expected", [("ok\n", "ok"), (" wrong \n### critique\nok", "wrong"), ("", "")])
def test_sanitize_critique(text, expected):
    assert sanitize_critique(text) == expected


# --- role methods -------------------------------------------------------------------------------------------------


def test_generate_chain_parses_the_continuation():
    answer = ("Add 7. Example: add7(3) gives 10.\n### plan\n1. inputs: x\n### pseudocode\nRETURN x PLUS 7\n"
              "### constraints\nassert add7(3) == 10\n### code\n    return x + 7\n### tests\nassert add7(1) == 8\n")
    pol = ScriptedPolicy([answer, "junk"])
    chains = pol.generate_chain(PROBLEM, STAGES, n=2, temperature=1.0)
    assert chains[0]["informal"] == "Add 7. Example: add7(3) gives 10.\n"
    assert chains[0]["pseudocode"] == "RETURN x PLUS 7\n"
    assert chains[0]["code"] == "    return x + 7\n"  # the trailing `### tests` section is cut
    assert chains[1] == {"informal": "junk\n", "plan": "", "pseudocode": "", "constraints": "", "code": ""}
    assert pol.prompts[0] == PROBLEM.prompt + "### informal\n"
    assert pol.generate_code(PROBLEM, n=1) == ["    return x + 7\n"]


def test_generate_stage_output_continues_a_prefix():
    pol = ScriptedPolicy(["RETURN x PLUS 7\n### constraints\nassert add7(3) == 10\n### code\n    return x + 7\n"])
    prefix = {"informal": "Add 7.\n", "plan": "1. inputs: x\n"}
    out = pol.generate_stage_output(PROBLEM, prefix, STAGES[2])
    assert out == ["RETURN x PLUS 7\n"]
    assert pol.prompts[-1] == PROBLEM.prompt + render_chain(prefix, STAGES[:2]) + "### pseudocode\n"
    rows = pol.sample_chains([PROBLEM], [prefix], STAGES[2], STAGES, 1, temperature=1.0)
    assert rows[0][0][1]["plan"] == "1. inputs: x\n" and rows[0][0][1]["code"] == "    return x + 7\n"


def test_code_only_mode():
    pol = ScriptedPolicy(["    return x + 7\n### informal\nblah\n"])
    assert pol.generate_code(PROBLEM, stages=chain_stages(1)) == ["    return x + 7\n"]
    assert pol.prompts[-1] == PROBLEM.prompt + "### code\n"


def test_generate_tests_and_critique():
    pol = ScriptedPolicy(["assert add7(1) == 8\nassert add7(0) == 7\n### code\nx\n"])
    assert pol.generate_tests(PROBLEM) == ["assert add7(1) == 8\nassert add7(0) == 7"]
    assert pol.prompts[-1] == PROBLEM.prompt + "### tests\n"
    assert pol.generate_tests(PROBLEM, feedback="missed: return x + 8")[0].startswith("assert")
    assert "### feedback\nmissed: return x + 8\n" in pol.prompts[-1]
    pol.answers = ["wrong\n### plan\n"]
    assert pol.generate_critique(PROBLEM, {"informal": "Add 7.\n"}, STAGES[0]) == "wrong"
    assert pol.prompts[-1].endswith("### informal\nAdd 7.\n### critique\n")


def test_role_methods_run_on_a_real_model():
    pol = tiny_policy(seq_len=128, max_new=24)
    chain = pol.generate_chain(PROBLEM, STAGES, n=2, temperature=1.0)
    assert len(chain) == 2 and all(set(c) == {s.name for s in STAGES} for c in chain)
    assert isinstance(pol.generate_tests(PROBLEM)[0], str)
    assert isinstance(pol.generate_critique(PROBLEM, chain[0], STAGES[4]), str)


# --- construction -------------------------------------------------------------------------------------------------


def test_build_policy_gpt_and_hrm():
    tok = ByteTokenizer()
    cfg = adversarial_preset("tiny")
    cfg.gpt = ModelConfig(d_model=32, n_layers=1, n_heads=2, n_kv_heads=2, d_ff=64, seq_len=64)
    gen = build_policy(cfg, tok, "generator", "cpu")
    disc = build_policy(cfg, tok, "discriminator", "cpu")
    assert isinstance(gen.model, GPT) and gen.max_new_tokens == cfg.rl.max_new_tokens
    assert disc.max_new_tokens == cfg.rl.max_test_tokens and disc.role == "discriminator"
    cfg.arch = "hrm"
    cfg.hrm = HRMConfig(d_model=32, n_heads=2, layers_per_stack=1, h_cycles=2, l_cycles=1, d_ff=64, seq_len=64)
    hrm = build_policy(cfg, tok, "generator", "cpu")
    assert type(hrm.model).__name__ == "HRM"
    s = hrm.sample(["ab"], 2, temperature=1.0, max_new_tokens=6)[0]
    logp, mask = hrm.sequence_logprobs(s)
    assert logp.requires_grad and mask.any()
    with pytest.raises(ConfigError, match="role"):
        build_policy(cfg, tok, "judge", "cpu")
    cfg.arch = "hf"
    with pytest.raises(ConfigError, match="build_policy"):
        build_model(cfg, tok.vocab_size)


def test_state_dict_round_trip():
    a, b = tiny_policy(seed=0), tiny_policy(seed=1)
    b.load_state_dict(a.state_dict())
    torch.manual_seed(0)
    sa = a.sample(["ab"], 2)
    torch.manual_seed(0)
    assert [s.ids for s in b.sample(["ab"], 2)[0]] == [s.ids for s in sa[0]]
