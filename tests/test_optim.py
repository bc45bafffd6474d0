"""LR schedules and the Muon/AdamW split."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

from autoresearch.testbeds.common.config import OptimConfig
from autoresearch.testbeds.common.optim import build_optimizers, lr_multiplier, schedule_steps, set_lr
from autoresearch.testbeds.lm.config import preset


def test_constant_with_warmup():
    cfg = OptimConfig(schedule="constant", warmup_frac=0.1)
    m = [lr_multiplier(s, 100, cfg) for s in range(100)]
    assert m[0] == pytest.approx(0.1) and m[9] == 1.0 and m[-1] == 1.0


def test_cosine_reaches_floor():
    cfg = OptimConfig(schedule="cosine", min_lr_frac=0.1)
    m = [lr_multiplier(s, 101, cfg) for s in range(101)]
    assert m[0] == 1.0 and m[50] == pytest.approx(0.55) and m[100] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(m, m[1:]))


def test_wsd_stable_then_linear_decay_to_the_floor():
    cfg = OptimConfig(schedule="wsd", warmup_frac=0.0, decay_frac=0.2)
    m = [lr_multiplier(s, 100, cfg) for s in range(100)]
    # 20 decay steps (80..99) each 1/20 lower; the last one is exactly min_lr_frac (was peak/20 = 0.05: issue 8 §3)
    assert m[79] == 1.0 and m[80] == pytest.approx(0.95) and m[89] == pytest.approx(0.5) and m[99] == 0.0


def test_wsd_tiny_preset_ends_at_min_lr_frac():
    cfg = preset("tiny")
    total = cfg.steps  # 240
    last = lr_multiplier(total - 1, total, cfg.optim)
    assert last == cfg.optim.min_lr_frac == 0.0  # the reported fault: 0.00333 (= 1/decay_steps) instead
    floor = OptimConfig(schedule="wsd", decay_frac=0.3, min_lr_frac=0.1)
    assert lr_multiplier(total - 1, total, floor) == pytest.approx(0.1)


STEPS = [1, 2, 3, 4, 7, 10, 99, 240]
WARMUPS = [0.0, 0.05, 0.3, 1.0]
DECAYS = [0.0, 0.2, 0.7, 1.0]  # 0.7/1.0 with warm-up: the decay is longer than the steps that remain


@pytest.mark.parametrize("schedule", ["constant", "cosine", "wsd"])
@pytest.mark.parametrize("total", STEPS)
def test_every_schedule_first_middle_last_step_match_the_definition(schedule, total):
    for warmup_frac, decay_frac, floor in itertools.product(WARMUPS, DECAYS, [0.0, 0.1]):
        cfg = OptimConfig(schedule=schedule, warmup_frac=warmup_frac, decay_frac=decay_frac, min_lr_frac=floor)
        m = [lr_multiplier(s, total, cfg) for s in range(total)]
        W, D = schedule_steps(total, cfg)
        case = (schedule, total, warmup_frac, decay_frac, floor, W, D, m)
        # warm-up: as many steps as documented, rising linearly from peak/W (step 0) to the peak (step W-1)
        assert W == min(round(warmup_frac * total), total if schedule == "constant" else total - 1), case
        for s in range(W):
            assert m[s] == pytest.approx((s + 1) / W), case
        # last step: constant stays at the peak; cosine and wsd end exactly at min_lr_frac
        if schedule == "constant":
            assert m[-1] == 1.0, case
        else:
            assert m[-1] == pytest.approx(floor, abs=1e-12), case
        # after the warm-up: never above the peak nor below the floor, never rising
        after = m[W:]
        assert all(floor - 1e-12 <= x <= 1.0 for x in after), case
        assert all(a >= b - 1e-12 for a, b in zip(after, after[1:])), case
        if schedule == "constant":
            assert after == [1.0] * len(after), case
        if schedule == "cosine" and len(after) >= 3 and len(after) % 2 == 1:
            assert after[0] == 1.0 and after[len(after) // 2] == pytest.approx((1 + floor) / 2), case
        if schedule == "wsd":
            assert 1 <= D <= total - W, case
            assert D == min(max(round(decay_frac * total), 1), total - W), case
            assert m[W:total - D] == [1.0] * (total - D - W), case  # stable phase at the peak
            decay = m[total - D:]
            steps = [a - b for a, b in zip([1.0] + decay, decay)]
            assert all(x == pytest.approx((1 - floor) / D) for x in steps), case  # linear, D equal steps


def test_single_step_and_steps_past_the_end():
    for schedule, want in (("constant", 1.0), ("cosine", 0.1), ("wsd", 0.1)):
        cfg = OptimConfig(schedule=schedule, warmup_frac=1.0, min_lr_frac=0.1)
        assert lr_multiplier(0, 1, cfg) == pytest.approx(want)
        assert lr_multiplier(500, 10, cfg) == lr_multiplier(9, 10, cfg)  # past the end: the last step's value
    assert lr_multiplier(0, 0, OptimConfig(schedule="wsd")) == 0.0  # a degenerate total counts as one step


def test_training_loop_applies_the_last_step_floor(micro_cfg, tmp_path):
    from autoresearch.harness.config import apply_overrides
    from autoresearch.harness.registry import new_experiment
    from autoresearch.testbeds.lm.train import train

    cfg = apply_overrides(micro_cfg, ["optim.schedule=wsd", "optim.decay_frac=0.5", "optim.min_lr_frac=0.25",
                                      "optim.warmup_frac=0.25", "train.train_tokens=512"])  # 4 steps
    exp = new_experiment(tmp_path)
    assert train(cfg, exp)["status"] == "ok"
    rows = [json.loads(line) for line in (exp.path / "log.jsonl").read_text().splitlines()]
    lrs = [r["lr"] for r in rows if "lr" in r]
    peak = cfg.optim.muon_lr
    assert lrs == pytest.approx([peak, peak, 0.625 * peak, 0.25 * peak])


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(10, 4)
        self.w = torch.nn.Linear(4, 4, bias=False)
        self.g = torch.nn.Parameter(torch.ones(4))

    def param_groups(self):
        return [self.w.weight], [self.emb.weight, self.g]


def test_muon_and_adamw_split():
    model = _Tiny()
    opts = build_optimizers(model, OptimConfig())
    assert [type(o).__name__ for o in opts] == ["Muon", "AdamW"]
    assert opts[0].param_groups[0]["params"] == [model.w.weight]
    only = build_optimizers(model, OptimConfig(optimizer="adamw"))
    assert len(only) == 1 and len(only[0].param_groups[0]["params"]) == 3
    assert set_lr(opts, 0.5) == pytest.approx(0.012)
    assert opts[1].param_groups[0]["lr"] == pytest.approx(0.003)


# --- the batched Muon (testbeds/common/muon.py) against torch.optim.Muon ---------------------------------------------
# Same-shape stacks, a tall matrix (joins its transpose's stack), a wide one, and a lone shape, over two param groups.
MUON_SHAPES = [(16, 16)] * 3 + [(8, 16)] * 2 + [(32, 16)] * 2 + [(16, 32)]
# Measured (5 seeds x nesterov on/off x both adjust_lr_fn, 5 steps, torch 2.13 CPU): bf16 Newton–Schulz = torch's
# bit for bit (max diff 0.0); fp32 Newton–Schulz vs torch's bf16 one: max |diff| 9.7e-4, at most 1.7% of how far the
# parameters moved. The bounds leave ~2x headroom; a wrong coefficient, transpose, norm or LR scale is 10-100x off.
BF16_ATOL = 1e-5
FP32_ATOL = 2e-3
FP32_REL = 0.03


def _muon_run(make, *, steps=5, seed=0, nesterov=True, adjust_lr_fn=None, shapes=MUON_SHAPES):
    """Params after `steps` Muon steps on seeded random grads; (initial, final) lists."""
    g = torch.Generator().manual_seed(seed)
    init = [torch.randn(s, generator=g) * 0.1 for s in shapes]
    params = [torch.nn.Parameter(p.clone()) for p in init]
    half = len(params) // 2
    groups = [{"params": params[:half]}, {"params": params[half:], "lr": 0.01, "weight_decay": 0.0}]
    opt = make(groups, lr=0.02, weight_decay=0.1, momentum=0.95, nesterov=nesterov, adjust_lr_fn=adjust_lr_fn)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=g) * 0.01
        opt.step()
    return init, [p.detach() for p in params]


def _ours(ns_dtype):
    from autoresearch.testbeds.common.muon import Muon

    return lambda groups, **kw: Muon(groups, ns_dtype=ns_dtype, **kw)


@pytest.mark.parametrize("shapes", [[(16, 16)] * 4, MUON_SHAPES], ids=["same_shape", "mixed_shapes"])
@pytest.mark.parametrize("nesterov", [True, False])
@pytest.mark.parametrize("adjust_lr_fn", [None, "match_rms_adamw"])
def test_batched_muon_equals_torch_muon(shapes, nesterov, adjust_lr_fn):
    for seed in range(2):
        kw = dict(seed=seed, nesterov=nesterov, adjust_lr_fn=adjust_lr_fn, shapes=shapes)
        init, ref = _muon_run(torch.optim.Muon, **kw)
        _, bf16 = _muon_run(_ours(torch.bfloat16), **kw)
        _, fp32 = _muon_run(_ours(torch.float32), **kw)
        for p0, r, b, f in zip(init, ref, bf16, fp32):
            assert (b - r).abs().max().item() <= BF16_ATOL, (seed, tuple(r.shape))
            assert (f - r).abs().max().item() <= FP32_ATOL, (seed, tuple(r.shape))
            assert ((f - r).abs().max() / (r - p0).abs().max()).item() <= FP32_REL, (seed, tuple(r.shape))


def test_fp32_newton_schulz_is_closer_to_the_exact_iteration_than_torchs_bf16():
    """The fp32 path is not an approximation of torch's: it computes the same polynomial with less rounding."""
    from torch.optim._muon import DEFAULT_A, DEFAULT_B, DEFAULT_C, _zeropower_via_newtonschulz

    from autoresearch.testbeds.common.muon import newton_schulz

    coef = (DEFAULT_A, DEFAULT_B, DEFAULT_C)
    g = torch.randn(3, 48, 24, generator=torch.Generator().manual_seed(0))
    exact = newton_schulz(g.double(), coef, 5, 1e-7, torch.float64)
    ours = newton_schulz(g, coef, 5, 1e-7, torch.float32)
    torchs = torch.stack([_zeropower_via_newtonschulz(m, coef, 5, 1e-7) for m in g]).double()
    assert (ours - exact).abs().max() < 1e-5 < (torchs - exact).abs().max()
    # and the iteration orthogonalises: singular values in torch's documented band (~0.5..1.5), not the input's
    sv = torch.linalg.svdvals(ours)
    assert sv.min() > 0.4 and sv.max() < 1.6


def test_newton_schulz_rejects_too_many_steps_and_non_stacks():
    from autoresearch.testbeds.common.muon import newton_schulz

    with pytest.raises(ValueError, match="less than 100"):
        newton_schulz(torch.randn(1, 4, 4), (1.0, 0.0, 0.0), 100, 1e-7, torch.float32)
    with pytest.raises(ValueError, match="stack of matrices"):
        newton_schulz(torch.randn(4, 4), (1.0, 0.0, 0.0), 5, 1e-7, torch.float32)


def test_build_optimizers_uses_the_batched_muon_and_leaves_adamw_alone():
    from autoresearch.testbeds.common.muon import Muon

    model = _Tiny()
    muon, adamw = build_optimizers(model, OptimConfig())
    assert type(muon) is Muon and isinstance(muon, torch.optim.Muon)
    assert type(adamw) is torch.optim.AdamW
    (only,) = build_optimizers(model, OptimConfig(optimizer="adamw"))
    assert type(only) is torch.optim.AdamW
    # the state dict is torch's: same param-group keys (no extra key an old checkpoint would lack)
    ours = Muon([torch.nn.Parameter(torch.zeros(4, 4))]).state_dict()["param_groups"][0]
    ref = torch.optim.Muon([torch.nn.Parameter(torch.zeros(4, 4))]).state_dict()["param_groups"][0]
    assert ours == ref


def _step_all(opt, params, g):
    for p in params:
        p.grad = torch.randn(p.shape, generator=g) * 0.01
    opt.step()


def test_state_dict_round_trip_resumes_bit_exact():
    import copy

    from autoresearch.testbeds.common.muon import Muon

    g = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(s, generator=g) * 0.1) for s in MUON_SHAPES]
    opt = Muon(params, lr=0.02)
    for _ in range(3):
        _step_all(opt, params, g)
    saved = ([p.detach().clone() for p in params], copy.deepcopy(opt.state_dict()), g.get_state())  # as if on disk
    for _ in range(3):
        _step_all(opt, params, g)
    # a fresh optimizer on the saved params and state continues exactly as the uninterrupted one
    params2 = [torch.nn.Parameter(p.clone()) for p in saved[0]]
    opt2 = Muon(params2, lr=0.02)
    opt2.load_state_dict(saved[1])
    g.set_state(saved[2])
    for _ in range(3):
        _step_all(opt2, params2, g)
    assert all(torch.equal(a, b) for a, b in zip(params, params2))


def test_a_checkpoint_of_torch_muon_resumes_in_the_batched_muon_and_back():
    """Checkpoints written before the switch (torch.optim.Muon) still resume: the momentum buffers carry over."""
    import copy

    from autoresearch.testbeds.common.muon import Muon

    g = torch.Generator().manual_seed(1)
    params = [torch.nn.Parameter(torch.randn(s, generator=g) * 0.1) for s in MUON_SHAPES]
    old = torch.optim.Muon(params, lr=0.02)
    for _ in range(2):
        _step_all(old, params, g)
    # resumed: the batched Muon on a copy of the params, from the old optimizer's (deep-copied, as if saved) state
    resumed = [torch.nn.Parameter(p.detach().clone()) for p in params]
    new = Muon(resumed, lr=0.02, ns_dtype=torch.bfloat16)
    new.load_state_dict(copy.deepcopy(old.state_dict()))
    for p, q in zip(params, resumed):
        assert torch.equal(new.state[q]["momentum_buffer"], old.state[p]["momentum_buffer"])
    g2 = torch.Generator().set_state(g.get_state())
    for _ in range(2):
        _step_all(old, params, g)
        _step_all(new, resumed, g2)
    assert all((a - b).abs().max() <= BF16_ATOL for a, b in zip(params, resumed))
    back = torch.optim.Muon([torch.nn.Parameter(p.detach().clone()) for p in resumed], lr=0.02)
    back.load_state_dict(copy.deepcopy(new.state_dict()))  # the way back (a downgrade) loads too
    assert len(back.state) == len(MUON_SHAPES)


def test_ns_dtype_follows_the_native_bf16_rule(monkeypatch):
    import autoresearch.testbeds.common.muon as muon_mod
    from autoresearch.harness import precision

    cpu = torch.device("cpu")
    monkeypatch.setattr(precision, "read_cpuinfo", lambda: "flags\t: fpu avx2 fma")
    assert muon_mod.ns_dtype_for(cpu) == torch.float32
    monkeypatch.setattr(precision, "read_cpuinfo", lambda: "flags\t: fpu avx2 avx512_bf16 amx_bf16")
    assert muon_mod.ns_dtype_for(cpu) == torch.bfloat16


def test_newton_schulz_dtype_follows_the_runs_precision_and_a_resume_can_reset_it() -> None:
    """build_optimizers(precision=) fixes Muon's Newton–Schulz dtype; apply_precision (what a resume calls with the
    precision the run began with) resets it; the AdamW-only optimizer is left alone."""
    from autoresearch.testbeds.common.muon import Muon
    from autoresearch.testbeds.common.optim import apply_precision

    model = _Tiny()
    muon, adamw = build_optimizers(model, OptimConfig(), precision="fp32")
    assert isinstance(muon, Muon) and muon.ns_dtype == torch.float32
    apply_precision([muon, adamw], "bf16")
    assert muon.ns_dtype == torch.bfloat16 and not hasattr(adamw, "ns_dtype")
    assert build_optimizers(model, OptimConfig(), precision="bf16")[0].ns_dtype == torch.bfloat16
    with pytest.raises(ValueError, match="precision"):
        build_optimizers(model, OptimConfig(), precision="fp16")
