"""Training throughput of our trainer vs a minimal plain-PyTorch loop, same model config, same run.

    python benchmarks/train_throughput.py [--preset tiny] [--steps 40] [--repeats 3] [--set KEY=VALUE ...]

Both loops train the same GPT with the same optimizers (Muon + AdamW), precision, batch and sequence length; each is
timed over all its optimizer steps (evaluation and setup excluded). Runs alternate ours/plain `--repeats` times to
spread machine noise, and the medians are compared. Prints tokens/s of both and the ratio (goal: >= 1.0).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from autoresearch.harness.config import apply_overrides
from autoresearch.harness.data import load_token_data
from autoresearch.harness.registry import new_experiment
from autoresearch.testbeds.lm.config import LMConfig, preset
from autoresearch.testbeds.lm.evaluate import autocast
from autoresearch.testbeds.lm.model import GPT
from autoresearch.testbeds.lm.optim import build_optimizers
from autoresearch.testbeds.lm.train import resolve_device, train


def ours(cfg: LMConfig, root: Path) -> float:
    res = train(cfg, new_experiment(root))
    return float(res["tokens_per_s"])


def plain(cfg: LMConfig) -> float:
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
        with autocast(device, cfg.train.precision):
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--set", dest="sets", action="append", default=[])
    args = ap.parse_args()
    cfg = apply_overrides(preset(args.preset), args.sets) if args.sets else preset(args.preset)
    cfg.train.train_tokens = args.steps * cfg.tokens_per_step
    cfg.train.log_every = 10
    cfg.eval.val_batches = 1
    load_token_data(cfg.data)  # warm the token cache so neither side pays for tokenisation
    a, b = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            a.append(ours(cfg, Path(tmp)))
            b.append(plain(cfg))
    ma, mb = statistics.median(a), statistics.median(b)
    print(f"config: preset={args.preset} steps={args.steps} tokens/step={cfg.tokens_per_step} "
          f"precision={cfg.train.precision} device={resolve_device(cfg.train.device)} threads={torch.get_num_threads()}")
    print(f"ours_tokens_per_s: {ma:,.0f}  (runs: {', '.join(f'{v:,.0f}' for v in a)})")
    print(f"plain_tokens_per_s: {mb:,.0f}  (runs: {', '.join(f'{v:,.0f}' for v in b)})")
    print(f"ratio: {ma / mb:.3f}  (goal >= 1.0)")


if __name__ == "__main__":
    main()
