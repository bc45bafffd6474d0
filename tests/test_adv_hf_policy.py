"""The Hugging Face backend of the adversarial policies, offline: a tiny GPT-2 and a BPE tokenizer built in the test,
saved with save_pretrained and loaded through HFPolicy (sampling, log-probs with grad, a GRPO step, LoRA)."""

from __future__ import annotations

import pytest
import torch

from autoresearch.errors import ConfigError
from autoresearch.testbeds.adversarial.config import HFModelConfig, RLConfig, adversarial_preset
from autoresearch.testbeds.adversarial.grpo import make_rl_optimizer, rl_step
from autoresearch.testbeds.adversarial.hf_policy import HFPolicy
from autoresearch.testbeds.adversarial.policy import build_policy
from autoresearch.testbeds.adversarial.problems import Problem
from autoresearch.testbeds.adversarial.stages import STAGES

PROBLEM = Problem(
    id="t/0", prompt='def add7(x: int) -> int:\n    """Add 7 to x."""\n', entry_point="add7",
    reference="    return x + 7\n", hidden_tests=("assert add7(1) == 8",), visible_tests=("assert add7(3) == 10",),
    program_prefix='def add7(x: int) -> int:\n    """Add 7 to x."""\n', description="Add 7 to x.")


# --- Hugging Face backend (offline, a model built here) -----------------------------------------------------------


def _tiny_hf_folder(path) -> str:
    pytest.importorskip("transformers")
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from tokenizers import decoders as tk_decoders
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tk_decoders.ByteLevel()
    texts = [PROBLEM.prompt, "### informal\nAdd 7.\n### code\n    return x + 7\n", "assert add7(3) == 10\n"] * 5
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=300, special_tokens=["<|endoftext|>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(fast), n_positions=64, n_embd=32, n_layer=2, n_head=2,
                                       bos_token_id=fast.eos_token_id, eos_token_id=fast.eos_token_id))
    model.save_pretrained(path)
    fast.save_pretrained(path)
    return str(path)


@pytest.mark.slow
def test_hf_policy_offline(tmp_path):
    folder = _tiny_hf_folder(tmp_path / "hf")
    pol = HFPolicy.from_config(HFModelConfig(model=folder), "cpu", max_new_tokens=10)
    assert pol.context_length() == 64 and pol.encode("### code\n")
    torch.manual_seed(0)
    rows = pol.sample([PROBLEM.prompt, "assert"], 3, temperature=1.0)
    torch.manual_seed(0)
    again = pol.sample([PROBLEM.prompt, "assert"], 3, temperature=1.0)
    assert [[s.ids for s in r] for r in rows] == [[s.ids for s in r] for r in again]
    samples = [s for r in rows for s in r]
    assert all(1 <= len(s.ids) <= 10 for s in samples)
    logp, mask = pol.sequence_logprobs(samples)
    assert logp.requires_grad and mask.sum(dim=1).tolist() == [len(s.ids) for s in samples]
    with torch.no_grad():  # the padded batch gives each row its unpadded log-probs
        s = samples[0]
        out = pol.model(torch.tensor([s.prompt_ids + s.ids])).logits[0].log_softmax(-1)
        P = len(s.prompt_ids)
        ref = torch.stack([out[P - 1 + t, tok] for t, tok in enumerate(s.ids)])
    assert torch.allclose(logp[0, :len(s.ids)].detach(), ref, atol=1e-4)
    greedy = pol.sample(["assert"], 2, greedy=True)[0]
    assert greedy[0].ids == greedy[1].ids
    before = {k: v.clone() for k, v in pol.state_dict().items()}
    rl = RLConfig(lr=1e-2, kl_beta=0.0)
    st = rl_step(pol, None, make_rl_optimizer(pol, rl), samples[:2], [1.0, -1.0], rl)
    assert st["updates"] == 1 and st["grad_norm"] > 0
    assert any(not torch.equal(v, before[k]) for k, v in pol.state_dict().items())
    chain = pol.generate_chain(PROBLEM, STAGES, n=1, max_new_tokens=8)
    assert set(chain[0]) == {s.name for s in STAGES}


@pytest.mark.slow
def test_hf_policy_lora_trains_only_the_adapters(tmp_path):
    pytest.importorskip("peft")
    folder = _tiny_hf_folder(tmp_path / "hf")
    pol = HFPolicy.from_config(HFModelConfig(model=folder, lora_r=2), "cpu", max_new_tokens=6)
    trainable = {n for n, p in pol.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    before = {k: v.clone() for k, v in pol.state_dict().items()}
    torch.manual_seed(0)
    samples = pol.sample(["assert"], 2, temperature=1.0)[0]
    rl = RLConfig(lr=1e-2, kl_beta=0.0)
    # LoRA's B starts at zero, so the first step moves B only; a second one moves A through B.
    for _ in range(2):
        rl_step(pol, None, make_rl_optimizer(pol, rl), samples, [1.0, -1.0], rl)
    after = pol.state_dict()
    changed = {k for k in after if not torch.equal(after[k], before[k])}
    assert changed and all("lora_" in k for k in changed)


def test_hf_policy_errors_are_one_line(tmp_path):
    pytest.importorskip("transformers")
    with pytest.raises(ConfigError, match="config.json"):
        HFPolicy.from_config(HFModelConfig(model=str(tmp_path / "missing")), "cpu")
    with pytest.raises(ConfigError, match="hf.model"):
        HFPolicy.from_config(HFModelConfig(model=""), "cpu")
    cfg = adversarial_preset("tiny")
    cfg.arch = "hf"
    cfg.hf = HFModelConfig(model=str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match="config.json"):
        build_policy(cfg, None, "generator", "cpu")


@pytest.mark.parametrize("missing, cfg", [("transformers", HFModelConfig(model="x")),
                                          ("peft", HFModelConfig(model="PLACEHOLDER", lora_r=2))])
def test_missing_packages_name_the_extra(tmp_path, monkeypatch, missing, cfg):
    if missing == "peft":
        cfg.model = _tiny_hf_folder(tmp_path / "hf")
    monkeypatch.setitem(__import__("sys").modules, missing, None)  # `import missing` raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'autoresearch\[rl\]'"):
        HFPolicy.from_config(cfg, "cpu")
