"""Decoding speed: KV-cached vs uncached generation of the causal HRM (and the LM testbed's GPT if present), one run.

    python benchmarks/generate_speed.py [--preset tiny] [--batch 1] [--prompt 64] [--new 128] [--repeats 3]
                                        [--vocab 4096] [--threads 0] [--device cpu]

Random weights (speed does not depend on them), greedy decoding with no stop, so both modes produce exactly
`batch x new` tokens and the same tokens (checked). Runs alternate cached/uncached `--repeats` times and the
medians are compared. Prints tokens/s of both modes, the ratio, and seconds per 128-token sample (amortised over the
batch) — the figure to set against the 188 s/sample of the public uncached HRM-on-MBPP attempt (DESIGN.md §4).
On a busy CPU pass `--threads 1`: small decode steps lose more to thread hand-off than they gain. The GPT is parameter-matched to
the HRM (`param_match.match_gpt_config`).
"""

from __future__ import annotations

import argparse
import statistics

import torch

from autoresearch.testbeds.common.generate import generate
from autoresearch.testbeds.common.hrm import HRM
from autoresearch.testbeds.common.hrm_config import hrm_preset


def bench(name: str, model: torch.nn.Module, args: argparse.Namespace) -> None:
    gen = torch.Generator().manual_seed(0)
    prompts = torch.randint(0, args.vocab, (args.batch, args.prompt), generator=gen).tolist()
    generate(model, prompts, max_new_tokens=4)  # warm-up (allocator, kernels)
    speeds: dict[bool, list[float]] = {True: [], False: []}
    tokens: dict[bool, list[list[int]]] = {}
    for _ in range(args.repeats):
        for cached in (True, False):
            res = generate(model, prompts, max_new_tokens=args.new, use_cache=cached)
            speeds[cached].append(res.tokens_per_s)
            tokens[cached] = res.tokens
    same = tokens[True] == tokens[False]
    on, off = statistics.median(speeds[True]), statistics.median(speeds[False])
    n = sum(p.numel() for p in model.parameters())
    print(f"{name}: params {n:,}  batch {args.batch}  prompt {args.prompt}  new {args.new}  "
          f"cached {on:,.0f} tok/s  uncached {off:,.0f} tok/s  ratio {on / off:.1f}x  "
          f"s per 128-token sample (batch wall / batch) cached {128 / on:.3f}  uncached {128 / off:.3f}  "
          f"same_tokens {same}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--prompt", type=int, default=64)
    ap.add_argument("--new", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch default)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = hrm_preset(args.preset)
    print(f"device {args.device}  threads {torch.get_num_threads()}  hrm preset {args.preset}: d_model {cfg.d_model}, "
          f"{cfg.layers_per_stack} blocks/stack, {cfg.h_cycles}x{cfg.l_cycles} cycles, {cfg.cache_slots} cache slots")
    hrm = HRM(cfg, args.vocab).to(args.device).eval()
    bench("hrm", hrm, args)
    try:
        from autoresearch.testbeds.codegen.param_match import match_gpt_config
        from autoresearch.testbeds.common.gpt import GPT
    except ImportError as e:
        print(f"gpt: skipped ({e})")
        return
    gpt = GPT(match_gpt_config(cfg, args.vocab), args.vocab).to(args.device).eval()
    bench("gpt", gpt, args)


if __name__ == "__main__":
    main()
