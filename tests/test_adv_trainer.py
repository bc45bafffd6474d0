"""The adversarial RL schedule and steps (testbeds/adversarial/trainer.py): the N+N+K shape per stage, the views on
it, freezing of the other role during a step (weights bitwise unchanged), a rewarded sample changing the trained
role's weights, the visible and shuffled modes, determinism of the problems per slot and of the RNG around scoring."""

from __future__ import annotations

import math
import random
from types import SimpleNamespace

import pytest
import torch

from autoresearch.harness.config import apply_overrides
from autoresearch.harness.tokenizer import ByteTokenizer
from autoresearch.testbeds.adversarial import trainer as trainer_mod
from autoresearch.testbeds.adversarial.config import adversarial_preset
from autoresearch.testbeds.adversarial.grpo import make_rl_optimizer
from autoresearch.testbeds.adversarial.policy import build_policy
from autoresearch.testbeds.adversarial.problems import load_problems
from autoresearch.testbeds.adversarial.stages import STAGES
from autoresearch.testbeds.adversarial.trainer import (
    AdversarialTrainer,
    _shuffle_finite,
    preserved_rng,
    schedule,
)

MICRO = ["gpt.d_model=32", "gpt.n_layers=2", "gpt.n_heads=2", "gpt.n_kv_heads=2", "gpt.d_ff=64", "gpt.seq_len=256",
         "rl.prompts_per_step=2", "rl.max_new_tokens=12", "rl.max_test_tokens=12", "rl.lr=0.01",
         "rl.match_stages=false", "disc_sft_frac=1.0"]


def _cfg(*more: str):
    return apply_overrides(adversarial_preset("tiny"), [*MICRO, *more])


# --- the schedule ---------------------------------------------------------------------------------------------


def test_schedule_is_n_disc_n_gen_then_k_pairs_per_stage_in_order():
    cfg = _cfg("rl.n_steps=2", "rl.k_alternations=1")
    slots = schedule(cfg)
    assert len(slots) == 5 * (2 + 2 + 2) == cfg.rl_steps
    per_stage = [[r for s, r in slots if s.name == st.name] for st in STAGES]
    assert all(roles == ["disc", "disc", "gen", "gen", "disc", "gen"] for roles in per_stage)
    assert [s.index for s, _ in slots] == sorted(s.index for s, _ in slots)  # stages 1 -> 5 in order
    one = _cfg("stages=1", "rl.match_stages=true", "rl.n_steps=1", "rl.k_alternations=2")  # as many as 5 stages
    assert [(s.name, r) for s, r in schedule(one)] == ([("code", "disc")] * 5 + [("code", "gen")] * 5
                                                      + [("code", "disc"), ("code", "gen")] * 10)
    assert one.rl_steps == len(schedule(one)) == len(schedule(_cfg("rl.n_steps=1", "rl.k_alternations=2")))
    plain = _cfg("stages=1", "rl.match_stages=false", "rl.n_steps=1", "rl.k_alternations=2")
    assert [r for _, r in schedule(plain)] == ["disc", "gen", "disc", "gen", "disc", "gen"] and plain.rl_steps == 6


@pytest.mark.parametrize(("mode", "n"), [("none", 0), ("visible", 5 * (3 + 2)), ("discriminator", 5 * (6 + 4)),
                                         ("shuffled", 5 * (6 + 4))])
def test_schedule_length_matches_the_configs_step_count(mode, n):
    cfg = _cfg(f"rl.mode={mode}", "rl.n_steps=3", "rl.k_alternations=2")
    slots = schedule(cfg)
    assert len(slots) == n == cfg.rl_steps
    if mode == "visible":  # no discriminator RL at all
        assert {r for _, r in slots} == {"gen"}


def test_max_steps_cuts_the_run():
    cfg = _cfg("rl.n_steps=1", "rl.k_alternations=0", "train.train_tokens=32768", "max_steps=5")
    assert cfg.sft_steps == 8 and cfg.steps == 5
    assert _cfg("rl.n_steps=1", "rl.k_alternations=0", "train.train_tokens=32768").steps == 16 + 10


def _stub_trainer(cfg) -> tuple[AdversarialTrainer, list[int]]:
    problems = [SimpleNamespace(id=f"p{i}") for i in range(10)]
    t = AdversarialTrainer(cfg, None, None, problems, None, gen_opt=None, disc_opt=None)  # type: ignore[arg-type]
    ran: list[int] = []

    def fake_step(i: int) -> dict:
        ran.append(i)
        return {"loss": 0.0}

    t.step = fake_step  # type: ignore[method-assign]
    return t, ran


def test_views_run_their_slots_of_the_schedule():
    cfg = _cfg("rl.n_steps=2", "rl.k_alternations=1")
    t, ran = _stub_trainer(cfg)
    plan = STAGES[1]
    t.train_discriminator_epoch(plan)
    assert [t.slots[i] for i in ran] == [(plan, "disc")] * 2 and ran == [6, 7]
    ran.clear()
    t.train_generator_epoch(plan)
    assert ran == [8, 9] and {t.slots[i][1] for i in ran} == {"gen"}
    ran.clear()
    t.train_alternating(plan)
    assert ran == [10, 11] and [t.slots[i][1] for i in ran] == ["disc", "gen"]
    ran.clear()
    t.train_stage(plan)
    assert ran == list(range(6, 12))
    ran.clear()
    t.train_full_pipeline()
    assert ran == list(range(30))


def test_problems_of_a_slot_depend_on_seed_and_slot_only():
    a, _ = _stub_trainer(_cfg())
    b, _ = _stub_trainer(_cfg())
    c, _ = _stub_trainer(_cfg("train.seed=1"))
    assert [p.id for p in a.problems_of(3)] == [p.id for p in b.problems_of(3)]
    assert len(a.problems_of(3)) == 2
    assert any([p.id for p in a.problems_of(i)] != [p.id for p in c.problems_of(i)] for i in range(5))
    assert any([p.id for p in a.problems_of(i)] != [p.id for p in a.problems_of(i + 1)] for i in range(5))


# --- real steps on tiny models (rewards faked so the update is known to have signal) ----------------------------


@pytest.fixture(scope="module")
def problems():
    return load_problems("suite", split="train", n=4, seed=0, validate=False)


def _policies(cfg):
    tok = ByteTokenizer()
    torch.manual_seed(0)
    gen = build_policy(cfg, tok, "generator", "cpu").eval()
    disc = build_policy(cfg, tok, "discriminator", "cpu").eval()
    return gen, disc


def _trainer(cfg, problems):
    gen, disc = _policies(cfg)
    t = AdversarialTrainer(cfg, gen, disc, problems, None, gen_opt=make_rl_optimizer(gen, cfg.rl),  # type: ignore[arg-type]
                           disc_opt=make_rl_optimizer(disc, cfg.rl))
    return t, gen, disc


def _fake_scores(calls: list):
    """score_groups stand-in: one rewarded sample per group for both roles, and a spy on who is frozen."""

    def fake(judge, groups):
        calls.append(groups)
        out = []
        for _p, comps, texts, _extra in groups:
            g = [1.0] + [0.0] * (len(comps) - 1)
            d = [1.0] + [0.0] * (len(texts) - 1)
            out.append(SimpleNamespace(generator_rewards=g, discriminator_rewards=d, stats=dict.fromkeys(
                ("validity", "valid_union", "gen_no_signal", "gen_caught", "tests_kept", "tests_valid",
                 "tests_malformed", "tests_duplicate"), 0.0)))
        return out

    return fake


def _snapshot(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same(a, b) -> bool:
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("role", ["gen", "disc"])
def test_a_step_trains_its_role_and_freezes_the_other(role, problems, monkeypatch):
    cfg = _cfg("stages=1", "rl.n_steps=1", "rl.k_alternations=0")
    t, gen, disc = _trainer(cfg, problems)
    trained, other = (gen, disc) if role == "gen" else (disc, gen)
    calls: list = []
    monkeypatch.setattr(trainer_mod, "score_groups", _fake_scores(calls))
    seen: dict = {}
    real_rl_step = trainer_mod.rl_step

    def spy(policy, *a, **kw):
        seen["other_requires_grad"] = any(p.requires_grad for p in other.model.parameters())
        seen["trained_requires_grad"] = all(p.requires_grad for p in trained.model.parameters())
        return real_rl_step(policy, *a, **kw)

    monkeypatch.setattr(trainer_mod, "rl_step", spy)
    before_trained, before_other = _snapshot(trained.model), _snapshot(other.model)
    i = t.slot_indices(role=role)[0]
    rec = t.step(i)
    assert calls and rec["role"] == role and rec["updates"] == 1 and rec["groups_kept"] == 2
    assert seen == {"other_requires_grad": False, "trained_requires_grad": True}  # frozen during the step
    assert _same(before_other, _snapshot(other.model))  # the other role: bitwise unchanged
    assert not _same(before_trained, _snapshot(trained.model))  # one rewarded sample moved the trained role
    # the first PPO pass has ratio 1, so the surrogate is minus the mean (normalised) advantage, ~0 by construction;
    # the evidence of learning is the gradient (docs/adversarial.md)
    assert rec["grad_norm"] > 0 and math.isfinite(rec["loss"])
    assert all(p.requires_grad for p in other.model.parameters())  # unfrozen again after the step
    assert t.stage_metrics()["code"][f"{role}_steps"] == 1.0


def test_a_step_whose_groups_have_no_variance_changes_nothing(problems, monkeypatch):
    cfg = _cfg("stages=1", "rl.n_steps=1", "rl.k_alternations=0")
    t, gen, _ = _trainer(cfg, problems)

    def flat(judge, groups):
        return [SimpleNamespace(generator_rewards=[0.5] * len(c), discriminator_rewards=[0.0] * len(x),
                                stats={"validity": 0.0, "valid_union": 0.0, "gen_no_signal": 0.0, "gen_caught": 0.0})
                for _p, c, x, _e in groups]

    monkeypatch.setattr(trainer_mod, "score_groups", flat)
    before = _snapshot(gen.model)
    rec = t.step(t.slot_indices(role="gen")[0])
    assert rec["updates"] == 0 and rec["groups_kept"] == 0 and rec["loss"] == 0.0
    assert _same(before, _snapshot(gen.model))


def test_visible_mode_rewards_on_visible_tests_and_samples_no_tests(problems, monkeypatch):
    cfg = _cfg("stages=1", "rl.mode=visible", "rl.n_steps=1", "rl.k_alternations=0")
    t, gen, disc = _trainer(cfg, problems)
    assert [r for _, r in t.slots] == ["gen"]
    asked: list = []

    def fake_visible(judge, problem, codes):
        asked.append(problem.id)
        return [1.0] + [0.0] * (len(codes) - 1)

    monkeypatch.setattr(trainer_mod, "visible_reward", fake_visible)
    monkeypatch.setattr(trainer_mod, "score_groups", lambda *a: pytest.fail("visible mode used discriminator tests"))
    monkeypatch.setattr(disc, "sample_tests", lambda *a, **k: pytest.fail("visible mode sampled discriminator tests"))
    before = _snapshot(gen.model)
    rec = t.step(0)
    assert len(asked) == 2 and rec["updates"] == 1
    assert not _same(before, _snapshot(gen.model))


def test_shuffle_permutes_finite_rewards_and_keeps_no_signal_in_place():
    R = torch.tensor([[1.0, 0.0, math.nan, 0.5], [0.25, math.nan, 0.75, 0.0]], dtype=torch.float64)
    out = _shuffle_finite(R, random.Random(3))
    assert torch.equal(torch.isnan(out), torch.isnan(R))
    assert sorted(out[torch.isfinite(out)].tolist()) == sorted(R[torch.isfinite(R)].tolist())
    assert torch.equal(out.nan_to_num(9), _shuffle_finite(R, random.Random(3)).nan_to_num(9))  # a function of the seed
    assert any(not torch.equal(_shuffle_finite(R, random.Random(s)).nan_to_num(9), R.nan_to_num(9))
               for s in range(5))


@pytest.mark.parametrize("mode", ["discriminator", "shuffled"])
def test_shuffled_mode_permutes_the_generator_rewards_of_a_step(mode, problems, monkeypatch):
    cfg = _cfg("stages=1", f"rl.mode={mode}", "rl.n_steps=1", "rl.k_alternations=0", "rl.prompts_per_step=4")
    t, _, _ = _trainer(cfg, problems)

    def graded(judge, groups):
        return [SimpleNamespace(generator_rewards=[float(j) + 10 * k for j in range(len(c))],
                                discriminator_rewards=[0.0] * len(x), stats=dict.fromkeys(
                                    ("validity", "valid_union", "gen_no_signal", "gen_caught"), 0.0))
                for k, (_p, c, x, _e) in enumerate(groups)]

    got: list = []
    monkeypatch.setattr(trainer_mod, "score_groups", graded)
    monkeypatch.setattr(t, "_update", lambda policy, ref, opt, samples, R: got.append(R) or {"loss": 0.0})
    t.step(t.slot_indices(role="gen")[0])
    R = got[0]
    straight = torch.tensor([[float(j) + 10 * k for j in range(4)] for k in range(4)], dtype=torch.float64)
    assert sorted(R.flatten().tolist()) == sorted(straight.flatten().tolist())
    assert torch.equal(R, straight) == (mode == "discriminator")


def test_preserved_rng_gives_back_the_stream():
    torch.manual_seed(5)
    with preserved_rng():
        torch.rand(10)
        random.random()
    a = torch.rand(3)
    torch.manual_seed(5)
    assert torch.equal(a, torch.rand(3))
