"""Muon step time vs forward+backward time: torch.optim.Muon (before) vs our batched Muon (after), in one run.

    python benchmarks/optimizer_step.py [--preset tiny] [--steps 20] [--threads 1] [--ns-dtype auto|fp32|bf16]
                                        [--device cpu|cuda] [--set KEY=VALUE ...]

Two copies of the same GPT (same seed, same initial weights) train in lockstep on the same batches from the preset's
token data, in fp32 with `--threads` threads (default 1: a quickstart trial): one with `torch.optim.Muon` + AdamW (what
`build_optimizers` returned before issue 13), one with `testbeds/common/muon.py`'s Muon + the same AdamW. Per step
each copy's forward+backward, Muon step and AdamW step are timed separately (time.perf_counter, after gradient
clipping); interleaving the copies step by step exposes both to the same machine noise, and medians over the steps
after the first (warm-up, untimed) are printed. At the end: the largest absolute difference of any parameter between
the two copies, the same relative to how far the parameters moved, and both final losses.

On CUDA (`--device cuda`; benchmarks/gpu_figures.py runs it at the 5dollar preset) the times are taken after a
`torch.cuda.synchronize()` and the model runs in fp32 weights as on CPU (TF32 matmuls where the device setup enables
them). Printed ratios: `muon_step_speedup` (before/after Muon step time), each arm's optimizer share of a training step
(Muon + AdamW over fwd+bwd + Muon + AdamW), and `step_speedup` (before/after whole step).
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch

from autoresearch.harness.config import apply_overrides
from autoresearch.harness.data import TrainStream, load_token_data
from autoresearch.harness.provenance import hardware_info
from autoresearch.testbeds.common.gpt import GPT
from autoresearch.testbeds.common.muon import Muon, ns_dtype_for
from autoresearch.testbeds.common.optim import build_optimizers
from autoresearch.testbeds.lm.config import LMConfig, preset

NS_DTYPES = {"auto": None, "fp32": torch.float32, "bf16": torch.bfloat16}


class Arm:
    """One model copy and its [Muon, AdamW] pair; collects per-step times in ms."""

    def __init__(self, name: str, cfg: LMConfig, vocab: int, muon: type[torch.optim.Optimizer],
                 ns_dtype: torch.dtype | None, device: torch.device) -> None:
        self.name = name
        self.device = device
        torch.manual_seed(cfg.train.seed)
        self.model = GPT(cfg.model, vocab).to(device)
        self.initial = {k: v.detach().clone() for k, v in self.model.named_parameters()}
        muon_opt, self.adamw = build_optimizers(self.model, cfg.optim)
        group = muon_opt.param_groups[0]
        kwargs = {k: group[k] for k in ("lr", "momentum", "nesterov", "weight_decay")}
        self.muon = Muon(group["params"], ns_dtype=ns_dtype, **kwargs) if muon is Muon else muon(group["params"], **kwargs)
        self.grad_clip = cfg.optim.grad_clip
        self.times: dict[str, list[float]] = {"fwd_bwd": [], "muon": [], "adamw": []}
        self.loss = float("nan")

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def step(self, x: torch.Tensor, y: torch.Tensor, record: bool) -> None:
        x, y = x.to(self.device), y.to(self.device)
        t0 = self._now()
        loss = self.model(x, y)
        loss.backward()
        t1 = self._now()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        t2 = self._now()
        self.muon.step()
        t3 = self._now()
        self.adamw.step()
        t4 = self._now()
        for opt in (self.muon, self.adamw):
            opt.zero_grad(set_to_none=True)
        self.loss = loss.item()
        if record:
            for key, seconds in (("fwd_bwd", t1 - t0), ("muon", t3 - t2), ("adamw", t4 - t3)):
                self.times[key].append(seconds * 1e3)

    def median(self, key: str) -> float:
        return statistics.median(self.times[key])


def compare(cfg: LMConfig, steps: int, device: torch.device, ns_dtype: torch.dtype | None = None) -> dict[str, Any]:
    """Train the before/after copies in lockstep for `steps` timed steps; the figures `main` prints, as a dict."""
    data = load_token_data(cfg.data)
    stream = TrainStream(data.train, cfg.train.batch_size, cfg.model.seq_len, seed=cfg.train.seed)
    before = Arm("torch.optim.Muon", cfg, data.tokenizer.vocab_size, torch.optim.Muon, None, device)
    after = Arm("batched Muon", cfg, data.tokenizer.vocab_size, Muon, ns_dtype, device)
    arms = (before, after)
    for step in range(steps + 1):
        x, y = stream.next_batch()
        for arm in arms if step % 2 == 0 else arms[::-1]:
            arm.step(x, y, record=step > 0)
    out: dict[str, Any] = {
        "steps": steps, "device": str(device), "threads": torch.get_num_threads(),
        "ns_dtype": str(ns_dtype or ns_dtype_for(device)).removeprefix("torch."),
        "muon_matrices": len(before.muon.param_groups[0]["params"]),
        "shapes": sorted({tuple(p.shape) for p in before.muon.param_groups[0]["params"]}),
    }
    for arm, key in ((before, "before"), (after, "after")):
        fb, mu, ad = arm.median("fwd_bwd"), arm.median("muon"), arm.median("adamw")
        out[key] = {"name": arm.name, "fwd_bwd_ms": fb, "muon_ms": mu, "adamw_ms": ad, "final_loss": arm.loss,
                    "muon_over_fwd_bwd": mu / fb, "optimizer_share": (mu + ad) / (fb + mu + ad)}
    b, a = out["before"], out["after"]
    out["muon_step_speedup"] = b["muon_ms"] / a["muon_ms"]
    out["step_speedup"] = (b["fwd_bwd_ms"] + b["muon_ms"] + b["adamw_ms"]) / (a["fwd_bwd_ms"] + a["muon_ms"]
                                                                              + a["adamw_ms"])
    params_b, params_a = dict(before.model.named_parameters()), dict(after.model.named_parameters())
    diffs = {k: (params_a[k] - params_b[k]).abs().max().item() for k in params_b}
    moves = {k: (params_b[k] - before.initial[k]).abs().max().item() for k in params_b}
    muon_ids = {id(p) for p in before.muon.param_groups[0]["params"]}
    in_muon = {k for k, p in params_b.items() if id(p) in muon_ids}
    for label, keys in (("muon", in_muon), ("adamw", set(params_b) - in_muon)):
        if keys:
            k = max(keys, key=lambda k: diffs[k])
            out[f"max_abs_diff_{label}"] = {"param": k, "diff": diffs[k], "moved": moves[k]}
    worst = max(diffs, key=lambda k: diffs[k] / max(moves[k], 1e-12))
    out["worst_relative"] = {"param": worst, "diff": diffs[worst], "moved": moves[worst],
                             "ratio": diffs[worst] / max(moves[worst], 1e-12)}
    return out


def report(r: dict[str, Any]) -> None:
    """Print `compare`'s figures as a table and `key: value` lines."""
    print(f"batched Muon Newton–Schulz dtype: {r['ns_dtype']} (torch.optim.Muon: always bfloat16); "
          f"{r['muon_matrices']} Muon matrices, shapes {r['shapes']}")
    print(f"{'arm':<18}{'fwd+bwd ms':>12}{'muon ms':>10}{'adamw ms':>10}{'muon/fwd+bwd':>14}{'optimizer share':>17}")
    for key in ("before", "after"):
        a = r[key]
        print(f"{a['name']:<18}{a['fwd_bwd_ms']:>12.1f}{a['muon_ms']:>10.1f}{a['adamw_ms']:>10.1f}"
              f"{a['muon_over_fwd_bwd']:>14.2f}{a['optimizer_share']:>16.1%}")
    print(f"muon_step_speedup: {r['muon_step_speedup']:.1f}x  step_speedup: {r['step_speedup']:.2f}x  "
          f"(medians of {r['steps']} steps)")
    for label in ("muon", "adamw"):
        if f"max_abs_diff_{label}" in r:
            d = r[f"max_abs_diff_{label}"]
            print(f"max_abs_param_diff {label} params: {d['diff']:.3g} ({d['param']}; it moved {d['moved']:.3g} "
                  f"from init) after {r['steps'] + 1} steps")
    w = r["worst_relative"]
    print(f"worst relative: {w['param']} diff {w['diff']:.3g} / move {w['moved']:.3g} = {w['ratio']:.2%}")
    print(f"final_loss: before {r['before']['final_loss']:.4f}  after {r['after']['final_loss']:.4f}  "
          f"(diff {r['after']['final_loss'] - r['before']['final_loss']:+.4f})")


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--steps", type=int, default=20, help="timed steps (one untimed warm-up step comes first)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--ns-dtype", choices=sorted(NS_DTYPES), default="auto",
                    help="Newton–Schulz dtype of the batched Muon (auto: bf16 only where native)")
    ap.add_argument("--set", dest="sets", action="append", default=[])
    args = ap.parse_args()
    cfg = apply_overrides(preset(args.preset), args.sets) if args.sets else preset(args.preset)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    hw = hardware_info(str(device))
    print(f"config: preset={args.preset} steps={args.steps} threads={torch.get_num_threads()} precision=fp32 "
          f"tokens/step={cfg.tokens_per_step} device={device} cpu={hw.get('cpu')!r} gpu={hw.get('gpu', '-')!r}")
    report(compare(cfg, args.steps, device, NS_DTYPES[args.ns_dtype]))


if __name__ == "__main__":
    main()
