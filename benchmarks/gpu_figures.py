"""The GPU figures of issue 13 §5 in one short run: 5dollar LM eager vs torch.compile, a short codegen `gpu` run, and
the Muon step before/after — a table and a JSON file. Exits 0 saying "no GPU" where CUDA is unavailable.

    python benchmarks/gpu_figures.py [--tokens 8000000] [--codegen-steps 300] [--codegen-score] [--optim-steps 10]
                                     [--skip lm_eager,lm_compile,codegen,optim] [--out gpu_figures.json]
                                     [--registry DIR]
    bash benchmarks/gpu_figures.sh      # the GPU smoke tests (pytest -m gpu), then this script

Rows (each one training run through the testbed's own `train`, in bf16 — `train.precision=bf16` — on cuda:0):
- `lm_eager`, `lm_compile`: the `5dollar` preset (88.6M params, 8x2048 tokens per step, Muon + AdamW, constant LR)
  for `--tokens` tokens (default 8M = 489 steps), `train.compile` off / on. tokens/s and MFU are the training loop's
  own (results.yaml: cold compile excluded), MFU against the GPU's bf16 dense peak (harness/metrics.py; goal >= 50%
  on H100/H200, the 5-dollar-llm anchor reaches ~37-45%), peak memory = torch.cuda.max_memory_allocated, val_loss on
  the preset's 20 pinned validation batches of the offline corpus (not comparable with the anchor's 4.84: see the
  preset's docstring).
- `codegen`: the codegen `gpu` preset (HRM, 27M block params) for `--codegen-steps` steps; held-out loss only unless
  `--codegen-score` (then pass@k on 50 held-out tasks x 10 samples in the sandbox: needs bubblewrap, else reduced).
- `optim`: benchmarks/optimizer_step.py at the 5dollar preset on cuda: torch.optim.Muon vs the batched Muon
  (bf16 Newton–Schulz on a GPU with native bf16), step ms vs fwd+bwd ms, and the parameter difference.
Budget: on one H100/H200 the whole script should take a few minutes (8M tokens at ~40% MFU is ~15 s of training per
LM row; tokenising the corpus at vocab 49152 once, and the cold compile, come on top).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

import torch

ROWS = ("lm_eager", "lm_compile", "codegen", "optim")


def no_gpu_reason() -> str | None:
    """Why this machine cannot produce the figures, or None when cuda:0 is usable."""
    if not torch.cuda.is_available():
        built = torch.version.cuda or "none (a CPU-only build)"
        return f"no GPU: torch.cuda.is_available() is False (torch {torch.__version__}, CUDA build {built})"
    return None


def train_row(testbed_name: str, preset: str, overrides: dict[str, Any], root: Path) -> dict[str, Any]:
    """One training run through the testbed contract; its results plus the wall time of the whole call."""
    from autoresearch.harness.registry import new_experiment
    from autoresearch.testbeds import get_testbed

    testbed = get_testbed(testbed_name)
    cfg = testbed.make_config(preset, overrides)
    exp = new_experiment(root)
    t0 = time.perf_counter()
    res = dict(testbed.train(cfg, exp))
    res["call_seconds"] = round(time.perf_counter() - t0, 1)
    res["experiment"] = str(exp.path)
    return res


def lm_overrides(tokens: int, compile_: bool) -> dict[str, Any]:
    return {"train.device": "cuda", "train.precision": "bf16", "train.compile": compile_, "train.train_tokens": tokens}


def codegen_overrides(steps: int, score: bool) -> dict[str, Any]:
    from autoresearch.testbeds.codegen.config import codegen_preset

    cfg = codegen_preset("gpu")
    over: dict[str, Any] = {"train.device": "cuda", "train.precision": "bf16",
                            "train.train_tokens": steps * cfg.tokens_per_step, "eval.score": score}
    if score:
        over |= {"eval.heldout_tasks": 50, "eval.n_samples": 10, "eval.allow_reduced": True}
    return over


def optim_row(steps: int) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from optimizer_step import compare  # type: ignore[import-not-found]

    from autoresearch.testbeds.lm.config import preset

    torch.backends.cuda.matmul.allow_tf32 = True
    return compare(preset("5dollar"), steps, torch.device("cuda"))


def fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def print_table(rows: dict[str, dict[str, Any]]) -> None:
    print(f"\n{'row':<12}{'tokens/s':>12}{'MFU':>8}{'peak MB':>10}{'metric':>26}{'train s':>9}{'call s':>8}")
    for name, r in rows.items():
        if "error" in r:
            print(f"{name:<12}  FAILED: {r['error']}")
            continue
        if name == "optim":
            b, a = r["before"], r["after"]
            print(f"{name:<12}  Muon step {b['muon_ms']:.1f} -> {a['muon_ms']:.1f} ms ({r['muon_step_speedup']:.1f}x), "
                  f"fwd+bwd {a['fwd_bwd_ms']:.1f} ms, optimizer share {b['optimizer_share']:.1%} -> "
                  f"{a['optimizer_share']:.1%}; max |param diff| muon {r['max_abs_diff_muon']['diff']:.3g}")
            continue
        metric = (f"val_loss {r['val_loss']:.4f}" if "val_loss" in r
                  else f"heldout_loss {fmt(r.get('heldout_loss'), '.4f')}")
        if r.get("pass@1") is not None:
            metric += f" p@1 {r['pass@1']:.3f}"
        mfu = "-" if r.get("mfu") is None else f"{r['mfu']:.1%}"
        print(f"{name:<12}{fmt(r.get('tokens_per_s'), ',.0f'):>12}{mfu:>8}"
              f"{fmt(r.get('peak_memory_mb'), ',.0f'):>10}{metric:>26}{fmt(r.get('train_seconds'), '.1f'):>9}"
              f"{r['call_seconds']:>8.1f}")
    if "lm_eager" in rows and "lm_compile" in rows and "error" not in rows["lm_eager"] | rows["lm_compile"]:
        e, c = rows["lm_eager"]["tokens_per_s"], rows["lm_compile"]["tokens_per_s"]
        print(f"compile_speedup: {c / e:.2f}x (tokens/s, cold compile excluded)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--tokens", type=int, default=489 * 8 * 2048, help="LM token budget (multiple of 16384)")
    ap.add_argument("--codegen-steps", type=int, default=300)
    ap.add_argument("--codegen-score", action="store_true", help="also pass@k (50 tasks x 10 samples)")
    ap.add_argument("--optim-steps", type=int, default=10)
    ap.add_argument("--skip", default="", help=f"comma-separated rows to skip: {', '.join(ROWS)}")
    ap.add_argument("--out", default="gpu_figures.json", help="where the figures go as JSON")
    ap.add_argument("--registry", default=None, help="keep the experiments here (default: a temporary folder)")
    args = ap.parse_args(argv)
    reason = no_gpu_reason()
    if reason is not None:
        print(f"{reason}; nothing measured. Run this script on a CUDA machine (see its docstring).")
        return 0
    skip = {s for s in args.skip.split(",") if s}
    unknown = skip - set(ROWS)
    if unknown:
        print(f"error: --skip has unknown rows {sorted(unknown)}; choose from {', '.join(ROWS)}", file=sys.stderr)
        return 2
    from autoresearch.harness.provenance import hardware_info

    hw = hardware_info("cuda")
    print(f"gpu: {torch.cuda.get_device_name(0)!r}  torch {torch.__version__}  CUDA {torch.version.cuda}  "
          f"cpu {hw.get('cpu')!r}")
    rows: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.registry) if args.registry else Path(tmp)
        plan = {
            "lm_eager": lambda: train_row("lm", "5dollar", lm_overrides(args.tokens, False), root),
            "lm_compile": lambda: train_row("lm", "5dollar", lm_overrides(args.tokens, True), root),
            "codegen": lambda: train_row("codegen", "gpu", codegen_overrides(args.codegen_steps, args.codegen_score),
                                         root),
            "optim": lambda: optim_row(args.optim_steps),
        }
        for name, run in plan.items():
            if name in skip:
                continue
            print(f"--- {name}", flush=True)
            t0 = time.perf_counter()
            try:
                rows[name] = run()
            except Exception as exc:  # one failed row must not cost the others (GPU time is scarce)
                traceback.print_exc()
                rows[name] = {"error": f"{type(exc).__name__}: {exc}".splitlines()[0][:200]}
            print(f"--- {name} done in {time.perf_counter() - t0:.1f} s", flush=True)
            torch.cuda.empty_cache()
    print_table(rows)
    Path(args.out).write_text(json.dumps({"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__,
                                          "rows": rows}, indent=2, default=str) + "\n")
    print(f"figures written to {args.out}")
    return 1 if any("error" in r for r in rows.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
