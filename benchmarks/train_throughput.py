"""Training throughput by precision — the default (`auto`) vs fp32 vs bf16 — and our trainer vs a plain PyTorch loop.

    python benchmarks/train_throughput.py [--preset tiny] [--steps 40] [--repeats 3] [--no-plain] [--set KEY=VALUE ...]

Every arm trains the same GPT with the same optimizers (Muon + AdamW), batch and sequence length in this one process,
so the ratios compare like with like on this machine. Our trainer runs once per precision — `auto` (what the default
resolves to here, printed with its reason), `fp32`, `bf16` — and the plain loop (the loop a researcher would write by
hand) runs in the precision `auto` resolved to. Each arm is timed over all its optimizer steps (evaluation and setup
excluded); after one untimed warm-up run, arms are interleaved `--repeats` times in a rotating order, and each arm's
best run is compared (other processes on a shared machine only ever slow a run down: on 2 busy cores single runs of
one arm spread 752-1,395 tok/s, so medians of 3 ranked identical code paths 20% apart). Goals: auto/fp32 >= 1.0 within noise (the default is never slower than fp32), ours/plain >= 1.0.
On a CPU without native bf16 the bf16 arm is slow (emulated: 18x per matmul on an AVX2-only AMD EPYC) and prints
the one-line bf16 warning; `--steps` small keeps it short.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

from autoresearch.harness.config import apply_overrides
from autoresearch.harness.data import load_token_data
from autoresearch.harness.precision import autocast, resolve_precision
from autoresearch.harness.provenance import hardware_info
from autoresearch.harness.registry import new_experiment
from autoresearch.testbeds.common.device import resolve_device
from autoresearch.testbeds.common.gpt import GPT
from autoresearch.testbeds.common.optim import build_optimizers
from autoresearch.testbeds.lm.config import LMConfig, preset
from autoresearch.testbeds.lm.train import train


def ours(cfg: LMConfig, root: Path) -> float:
    res = train(cfg, new_experiment(root))
    return float(res["tokens_per_s"])


def plain(cfg: LMConfig, precision: str) -> float:
    """The loop a researcher would write by hand: slice windows, forward, backward, clip, step."""
    device = resolve_device(cfg.train.device)
    data = load_token_data(cfg.data)
    torch.manual_seed(cfg.train.seed)
    model = GPT(cfg.model, data.tokenizer.vocab_size).to(device)
    opts = build_optimizers(model, cfg.optim)
    tokens = torch.from_numpy(data.train.astype("int64"))
    B, T = cfg.train.batch_size, cfg.model.seq_len
    g = torch.Generator().manual_seed(cfg.train.seed)
    seconds = 0.0
    for _ in range(cfg.steps):
        t0 = time.perf_counter()
        idx = torch.randint(0, len(tokens) - T - 1, (B,), generator=g)
        x = torch.stack([tokens[i : i + T] for i in idx]).to(device)
        y = torch.stack([tokens[i + 1 : i + T + 1] for i in idx]).to(device)
        with autocast(device, precision):
            loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
        for o in opts:
            o.step()
            o.zero_grad(set_to_none=True)
        loss.item()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds += time.perf_counter() - t0
    return cfg.steps * cfg.tokens_per_step / seconds


def with_precision(cfg: LMConfig, precision: str) -> LMConfig:
    c = copy.deepcopy(cfg)
    c.train.precision = precision  # type: ignore[assignment]
    return c


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-plain", action="store_true", help="skip the plain-PyTorch comparison")
    ap.add_argument("--set", dest="sets", action="append", default=[])
    args = ap.parse_args()
    cfg = apply_overrides(preset(args.preset), args.sets) if args.sets else preset(args.preset)
    cfg.train.train_tokens = args.steps * cfg.tokens_per_step
    cfg.train.log_every = 10
    cfg.eval.val_batches = 1
    device = resolve_device(cfg.train.device)
    if cfg.train.threads > 0:
        torch.set_num_threads(cfg.train.threads)
    auto = resolve_precision("auto", device)
    load_token_data(cfg.data)  # warm the token cache so no arm pays for tokenisation

    arms: dict[str, Callable[[Path], float]] = {
        f"auto({auto.precision})": lambda root: ours(with_precision(cfg, "auto"), root),
        "fp32": lambda root: ours(with_precision(cfg, "fp32"), root),
        "bf16": lambda root: ours(with_precision(cfg, "bf16"), root),
    }
    if not args.no_plain:
        arms[f"plain({auto.precision})"] = lambda root: plain(cfg, auto.precision)
    names = list(arms)
    runs: dict[str, list[float]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory() as tmp:
        warm = with_precision(cfg, auto.precision)
        warm.train.train_tokens = 2 * cfg.tokens_per_step
        ours(warm, Path(tmp))  # untimed: allocator, thread pool and kernel caches warm before the first timed arm
        for r in range(args.repeats):
            for n in names[r % len(names):] + names[: r % len(names)]:
                runs[n].append(arms[n](Path(tmp)))
    best = {n: max(v) for n, v in runs.items()}
    hw = hardware_info(str(device))
    print(f"config: preset={args.preset} steps={args.steps} repeats={args.repeats} tokens/step={cfg.tokens_per_step} "
          f"device={device} threads={torch.get_num_threads()} cpu={hw.get('cpu')!r} gpu={hw.get('gpu', '-')!r}")
    print(f"default: train.precision=auto -> {auto.precision} ({auto.reason})")
    fp32 = best["fp32"]
    for n in names:
        line = f"{n + '_tokens_per_s:':<24}{best[n]:>10,.0f}  x{best[n] / fp32:.3f} vs fp32"
        print(f"{line}  (best of runs: {', '.join(f'{v:,.0f}' for v in runs[n])}; median {statistics.median(runs[n]):,.0f})")
    a = f"auto({auto.precision})"
    print(f"ratio_auto_vs_fp32: {best[a] / fp32:.3f}  (goal >= 1.0 within noise: the default is never slower than fp32)")
    if not args.no_plain:
        print(f"ratio_ours_vs_plain: {best[a] / best[f'plain({auto.precision})']:.3f}  (goal >= 1.0, both {auto.precision})")


if __name__ == "__main__":
    main()
