"""Training throughput of 1 vs N processes (DistributedDataParallel over gloo on CPU), in one run.

    python benchmarks/ddp_scaling.py [--preset tiny] [--steps 30] [--nproc 2] [--threads 1] [--repeats 1]
                                     [--set KEY=VALUE ...]

Three arms train the same config (same global batch, same tokens) through the real CLI, `autoresearch train lm`:
  1 x T     one process with --threads T (the baseline),
  1 x N*T   one process with N*T threads (the same cores as the DDP arm, spent on intra-op threads instead),
  N x T     `--nproc N`, T threads per rank.
tokens/s is the run's own figure (results.yaml: training steps only — data loading, evaluation, checkpoints and the
processes' start-up are excluded); wall_s is the whole command, start-up included. Arms are interleaved `--repeats`
times and each arm's best run is kept (on a shared machine other processes only ever slow a run down). The final
lines print the ratios N x T / 1 x T (scaling) and N x T / 1 x N*T (DDP vs threads on the same cores), and the
largest per-step loss difference between the DDP arm and the 1 x T arm (same global batch: only rounding differs).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def run_arm(root: Path, preset: str, sets: list[str], nproc: int, threads: int) -> dict[str, float]:
    cmd = [sys.executable, "-m", "autoresearch", "train", "lm", "--preset", preset, "--root", str(root), "--quiet",
           *[a for s in [*sets, f"train.threads={threads}"] for a in ("--set", s)]]
    if nproc > 1:
        cmd += ["--nproc", str(nproc)]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        sys.exit(f"arm {nproc}x{threads} failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}")
    exp = sorted(root.glob("exp-*"))[-1]
    res = yaml.safe_load((exp / "results.yaml").read_text())
    losses = [json.loads(line) for line in (exp / "log.jsonl").read_text().splitlines()]
    return {"tokens_per_s": float(res["tokens_per_s"]), "train_s": float(res["train_seconds"]), "wall_s": wall,
            "val_loss": float(res["val_loss"]),
            "losses": {r_["step"]: r_["loss"] for r_ in losses if "loss" in r_}}  # type: ignore[dict-item]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--steps", type=int, default=30, help="optimizer steps per arm")
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--set", dest="sets", action="append", default=[], help="config override (repeatable)")
    a = ap.parse_args()

    from autoresearch.testbeds.lm.testbed import LMTestbed

    cfg = LMTestbed().make_config(a.preset, a.sets)
    per_step = cfg.tokens_per_step
    sets = [*a.sets, f"train.train_tokens={per_step * a.steps}", "train.log_every=1", "train.checkpoint_every=0"]
    arms = [(1, a.threads), (1, a.threads * a.nproc), (a.nproc, a.threads)]
    best: dict[tuple[int, int], dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(a.repeats):
            for k, arm in enumerate(arms[rep % 3:] + arms[:rep % 3]):  # rotate the order between repeats
                got = run_arm(Path(tmp) / f"r{rep}-{k}", a.preset, sets, *arm)
                if arm not in best or got["tokens_per_s"] > best[arm]["tokens_per_s"]:
                    best[arm] = got
    print(f"preset {a.preset}: {a.steps} steps x {per_step} tokens (global batch {cfg.train.batch_size} x "
          f"{cfg.train.grad_accum} x {cfg.model.seq_len}), best of {a.repeats}")
    print(f"{'arm':>8}  {'tokens/s':>10}  {'train_s':>8}  {'wall_s':>8}  {'val_loss':>8}")
    for (n, t), r in best.items():
        print(f"{f'{n} x {t}':>8}  {r['tokens_per_s']:>10,.0f}  {r['train_s']:>8.2f}  {r['wall_s']:>8.1f}  "
              f"{r['val_loss']:>8.4f}")
    base, same_cores, ddp = (best[arm] for arm in arms)
    d = max(abs(ddp["losses"][s] - base["losses"][s]) for s in base["losses"])
    print(f"scaling {a.nproc} x {a.threads} / 1 x {a.threads}: {ddp['tokens_per_s'] / base['tokens_per_s']:.2f}x")
    print(f"ddp vs threads on the same cores ({a.nproc} x {a.threads} / 1 x {a.nproc * a.threads}): "
          f"{ddp['tokens_per_s'] / same_cores['tokens_per_s']:.2f}x")
    print(f"max |loss difference| {a.nproc} processes vs 1, per step: {d:.2e}")


if __name__ == "__main__":
    main()
