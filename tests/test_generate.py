"""Generation: greedy determinism, cached == uncached, stop sequences, eot, top-k/top-p, batching, ModelSampler."""

from __future__ import annotations

import pytest
import torch

from autoresearch.errors import ConfigError
from autoresearch.testbeds.common.generate import ModelSampler, generate, sample_next
from autoresearch.testbeds.common.hrm import HRM
from autoresearch.testbeds.common.hrm_config import HRMConfig

CHARS = "abcdefghijklmnopqrstuvwxyz ():=+\n0123456789"


class CharTokenizer:
    """One token per character plus an eot id: every token boundary is a character boundary."""

    vocab_size = len(CHARS) + 1
    eot_id = len(CHARS)

    def encode(self, text: str) -> list[int]:
        return [CHARS.index(c) for c in text]

    def decode(self, ids: list[int]) -> str:
        return "".join(CHARS[i] for i in ids if i < len(CHARS))


TOK = CharTokenizer()


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny models: per-op thread hand-off costs more than it saves (10x slower with 2 threads on a busy 2-core box).
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def make_model(seed: int = 0, seq_len: int = 96) -> HRM:
    torch.manual_seed(seed)
    cfg = HRMConfig(d_model=32, n_heads=4, layers_per_stack=1, h_cycles=2, l_cycles=2, d_ff=48, seq_len=seq_len,
                    init_std=0.3)
    return HRM(cfg, TOK.vocab_size).eval()


PROMPTS = [TOK.encode("def f(x):\n"), TOK.encode("abc"), TOK.encode("x = 1\ny = "), TOK.encode("zz")]


def test_greedy_is_deterministic_and_cached_equals_uncached():
    m = make_model()
    a = generate(m, PROMPTS, max_new_tokens=20)
    b = generate(m, PROMPTS, max_new_tokens=20)
    c = generate(m, PROMPTS, max_new_tokens=20, use_cache=False)
    assert a.tokens == b.tokens == c.tokens
    assert all(len(t) == 20 for t in a.tokens) and a.finish == ["length"] * 4
    assert len({tuple(t) for t in a.tokens}) > 1  # different prompts, different continuations
    assert a.decoded_tokens == 4 * 20 and a.tokens_per_s > 0


def test_batched_equals_unbatched():
    m = make_model()
    batched = generate(m, PROMPTS, max_new_tokens=15)
    single = [generate(m, [p], max_new_tokens=15).tokens[0] for p in PROMPTS]
    assert batched.tokens == single
    same_len = [TOK.encode("abcd"), TOK.encode("wxyz"), TOK.encode("abcd")]
    res = generate(m, same_len, max_new_tokens=10)  # one batch of 3 rows
    assert res.tokens[0] == res.tokens[2] == generate(m, [same_len[0]], max_new_tokens=10).tokens[0]


def test_stop_sequences_cut_the_text_on_decoded_text():
    m = make_model()
    full = generate(m, [PROMPTS[0]], max_new_tokens=30, decode=TOK.decode)
    text = full.texts[0]
    stop = text[6:8]  # two characters = two tokens: the stop spans a token boundary
    cut = text.find(stop)
    res = generate(m, [PROMPTS[0]], max_new_tokens=30, stop=[stop, "never-appears"], decode=TOK.decode)
    assert res.texts[0] == text[:cut]
    assert res.finish == ["stop"]
    assert len(res.tokens[0]) == cut + len(stop)  # decoding stopped at the token that completed the stop
    with pytest.raises(ConfigError, match="decode"):
        generate(m, [PROMPTS[0]], max_new_tokens=5, stop=["x"])


def test_eot_ends_a_row_but_not_its_batch():
    m = make_model()
    free = generate(m, PROMPTS, max_new_tokens=12)
    eot = free.tokens[1][4]  # pretend the 5th token of row 1 is end-of-text
    res = generate(m, PROMPTS, max_new_tokens=12, eot_id=eot)
    first = free.tokens[1].index(eot)
    assert res.tokens[1] == free.tokens[1][:first] and res.finish[1] == "eot"
    for row in range(4):
        want = free.tokens[row][: free.tokens[row].index(eot)] if eot in free.tokens[row] else free.tokens[row]
        assert res.tokens[row] == want


def test_top_k_and_top_p_sanity():
    torch.manual_seed(0)
    logits = torch.randn(4, 30) * 3
    top3 = torch.topk(logits, 3).indices
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):
        assert torch.equal(sample_next(logits, 5.0, top_k=1, generator=gen), logits.argmax(-1))
        assert torch.equal(sample_next(logits, 1.0, top_p=1e-6, generator=gen), logits.argmax(-1))
        s = sample_next(logits, 2.0, top_k=3, generator=gen)
        assert all(int(s[b]) in top3[b].tolist() for b in range(4))
    # top-p keeps the smallest prefix of sorted tokens reaching the mass: here exactly the top two.
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    seen = {int(sample_next(probs.log(), 1.0, top_p=0.75, generator=gen)) for _ in range(300)}
    assert seen == {0, 1}
    # Plain sampling follows softmax(logits / T).
    draws = torch.stack([sample_next(probs.log().expand(1000, 4), 1.0, generator=gen) for _ in range(20)]).flatten()
    freq = torch.bincount(draws, minlength=4).float() / draws.numel()
    torch.testing.assert_close(freq, probs[0], atol=0.02, rtol=0)


def test_seeded_sampling_is_reproducible():
    m = make_model()

    def run(seed: int) -> list[list[int]]:
        g = torch.Generator().manual_seed(seed)
        return generate(m, PROMPTS[:2], max_new_tokens=12, temperature=1.0, top_p=0.9, generator=g).tokens

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_long_prompts_are_cropped_to_the_context():
    m = make_model(seq_len=32)
    long = TOK.encode("abcdefghij" * 5)
    res = generate(m, [long], max_new_tokens=8)
    assert res.prompt_truncated == [True] and len(res.tokens[0]) == 8
    assert res.tokens == generate(m, [long[-24:]], max_new_tokens=8).tokens
    with pytest.raises(ConfigError, match="context"):
        generate(m, [long], max_new_tokens=32)


def test_model_sampler_shape_greedy_and_stop():
    m = make_model()
    sampler = ModelSampler(m, TOK, batch_size=3, seed=0)
    greedy = sampler.generate(["def f(x):\n", "abc"], n=4, temperature=0.0, top_p=1.0, max_tokens=16, stop=None)
    assert len(greedy) == 2 and all(len(s) == 4 for s in greedy)
    assert len(set(greedy[0])) == 1
    assert greedy[0][0] == generate(m, [PROMPTS[0]], max_new_tokens=16, decode=TOK.decode,
                                    eot_id=TOK.eot_id).texts[0]
    sampled = sampler.generate(["abc"], n=5, temperature=1.0, top_p=0.95, max_tokens=16, stop=[])
    again = ModelSampler(m, TOK, batch_size=3, seed=0).generate(["zz", "abc"], 5, 1.0, 0.95, 16, [])
    assert sampled[0] == again[1]  # seeded per prompt: independent of the other prompts and their order
    assert ModelSampler(m, TOK, batch_size=3, seed=1).generate(["abc"], 5, 1.0, 0.95, 16, []) != sampled
    assert len(set(sampled[0])) > 1
    stop = greedy[1][0][3:5]
    cut = sampler.generate(["abc"], n=2, temperature=0.0, top_p=1.0, max_tokens=16, stop=[stop])
    assert cut[0] == [greedy[1][0][: greedy[1][0].find(stop)]] * 2
    assert sampler.tokens_per_s > 0


def test_gpt_of_the_lm_testbed_generates_through_the_same_api():
    lm = pytest.importorskip("autoresearch.testbeds.common.gpt")
    from autoresearch.testbeds.common.config import ModelConfig

    torch.manual_seed(0)
    gpt = lm.GPT(ModelConfig(d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, d_ff=64, seq_len=64), TOK.vocab_size)
    cached = generate(gpt, PROMPTS, max_new_tokens=12)
    assert cached.tokens == generate(gpt, PROMPTS, max_new_tokens=12, use_cache=False).tokens
    out = ModelSampler(gpt, TOK).generate(["abc"], n=2, temperature=0.8, top_p=0.9, max_tokens=8, stop=["\n"])
    assert len(out[0]) == 2 and all("\n" not in s for s in out[0])
