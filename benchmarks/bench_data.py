"""Time token-data preparation (cold: read + train BPE + tokenize + write) and the cached load of a preset's corpus.

    python benchmarks/bench_data.py [preset] [--vocab N] [--mb M]

Uses a fresh temporary cache, so it never touches ~/.cache/autoresearch. Prints seconds and the cold/cached ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time

from autoresearch.harness.data import load_token_data
from autoresearch.testbeds.lm.config import preset


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("preset", nargs="?", default="tiny")
    ap.add_argument("--vocab", type=int, default=0)
    ap.add_argument("--mb", type=float, default=0.0)
    args = ap.parse_args()
    cfg = preset(args.preset).data
    cfg.vocab_size = args.vocab or cfg.vocab_size
    cfg.max_corpus_mb = args.mb or cfg.max_corpus_mb
    with tempfile.TemporaryDirectory() as tmp:
        cfg.cache_dir = tmp
        t0 = time.perf_counter()
        d = load_token_data(cfg)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        load_token_data(cfg)
        warm = time.perf_counter() - t0
    m = d.meta
    print(f"source: {m['source']}  corpus_mb: {m['corpus_bytes'] / 1e6:.2f}  vocab: {m['vocab_size']}  "
          f"train_tokens: {m['n_train_tokens']}  val_tokens: {m['n_val_tokens']}  bytes/token: {m['bytes_per_token']}")
    print(f"cold_s: {cold:.2f}  cached_s: {warm:.3f}  ratio: {cold / warm:.0f}x")


if __name__ == "__main__":
    main()
