"""Overhead of the study machinery: study wall time vs the sum of its trials' own training time, for each executor
on the same study in one run (issue 13 §4: before/after warm trial workers).

    python benchmarks/study_overhead.py [--trial-seconds 5] [--ideas 2] [--seeds 2] [--workers 1]
    python benchmarks/study_overhead.py --study studies/lm_quickstart.yaml --workers 2   # the real quickstart
    python benchmarks/study_overhead.py --executors subprocess,local                     # the default pair

Default: a study on the fake testbed (tests/fake_testbed.py) whose trials "train" for --trial-seconds each (sleeping
steps, so the machine's load does not change the training time), with integration checks, the regression check and
the report, run through the real runner once per executor (`subprocess`: a fresh interpreter per trial, the
"before"; `local`: warm workers, the "after"), each in its own temporary study and registry. "Training time" is the
wall time of each trial's `testbed.train()` call, measured inside the trial process. With W workers the ideal study
wall time is Σ train / W, so overhead = wall / (Σ train / W) − 1 (it includes idle workers at the end of a round).

The overhead splits into a per-trial part (interpreter start or fork, imports, data loading, result handling: the
attempt's wall time minus its train() time) and a per-study part (stats, state, ledger, report); the script
extrapolates both to longer trials and prints the trial length from which the goal (< 5%) holds. The last lines
compare the executors: overhead and per-trial overhead of each, and the ratio subprocess / local. A `--study` file's
regression-trace store is shared by the runs (the first may record the trace, the next compare against it); point
`regression.store` at a fresh folder for equal work.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from autoresearch.research.runner import StudyRunner  # noqa: E402
from autoresearch.research.state import StudyState  # noqa: E402
from autoresearch.research.study_dir import prepare_study  # noqa: E402


def fake_study(tmp: Path, trial_seconds: float, ideas: int, seeds: int) -> Path:
    steps = 20
    data = {
        "name": "overhead", "testbed": f"{REPO / 'tests' / 'fake_testbed.py'}:FakeTestbed", "preset": "tiny",
        "overrides": {"train.step_seconds": trial_seconds / steps}, "budget": {"tokens": steps * 1000},
        "baseline": {"value": None}, "seeds": {"initial": seeds, "max": seeds},
        "regression": {"enabled": True, "steps": 4, "store": str(tmp / "traces")}, "checks": True,
        "ideas": [{"name": f"idea{i}", "overrides": {"model.boost": 0.01 * (i + 1)}} for i in range(ideas)],
    }
    path = tmp / "overhead.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def measure(path: Path, tmp: Path, executor: str, workers: int) -> dict[str, float]:
    """Run the study at `path` with `executor` in a fresh study folder and registry under `tmp`; its figures."""
    resolved, sdir = prepare_study(path, tmp / "studies")
    t0 = time.perf_counter()
    StudyRunner(resolved, sdir, registry=tmp / "experiments", workers=workers, executor=executor).run()
    wall = time.perf_counter() - t0
    trials = list(StudyState.load(sdir / "state.json").trials.values())
    n = len(trials)
    train = sum(t.train_wall_s for t in trials)
    proc = sum(t.wall_s for t in trials)
    return {"n": n, "wall": wall, "train": train, "proc": proc,
            "own": sum(float(t.metrics.get("train_seconds", 0.0)) for t in trials),
            "overhead": wall / (train / workers) - 1, "per_trial": (proc - train) / n, "per_study": wall - proc / workers}


def report(executor: str, f: dict[str, float], w: int) -> None:
    n = int(f["n"])
    print(f"[{executor}] {n} trials (mean train() {f['train'] / n:.2f} s), workers {w}")
    print(f"[{executor}] wall_s: {f['wall']:.2f}")
    print(f"[{executor}] sum_train_s: {f['train']:.2f}")
    print(f"[{executor}] sum_trial_process_s: {f['proc']:.2f}")
    print(f"[{executor}] sum_testbed_train_seconds: {f['own']:.2f}")
    print(f"[{executor}] overhead_pct: {100 * f['overhead']:.2f}   (wall / (sum_train / workers) - 1)")
    print(f"[{executor}] per_trial_overhead_s: {f['per_trial']:.2f}   (start + imports + data + result, per trial)")
    print(f"[{executor}] per_study_overhead_s: {f['per_study']:.2f}   (checks, stats, state, ledger, report)")
    for t in (30.0, 60.0, 120.0, 300.0, 600.0):
        est = (n * f["per_trial"] + w * f["per_study"]) / (n * t)
        print(f"[{executor}] extrapolated_overhead_pct_at_{int(t)}s_trials: {100 * est:.2f}")
    need = (n * f["per_trial"] + w * f["per_study"]) / (n * 0.05)
    print(f"[{executor}] goal_lt_5pct_from_trial_seconds: {need:.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--study", help="a study file to measure instead of the fake study")
    ap.add_argument("--trial-seconds", type=float, default=5.0)
    ap.add_argument("--ideas", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--executors", default="subprocess,local",
                    help="comma-separated executors to compare, in this order (default: subprocess,local)")
    args = ap.parse_args()
    executors = [e.strip() for e in args.executors.split(",") if e.strip()]

    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        print(f"study: {'fake testbed' if not args.study else args.study}, executors {', '.join(executors)}")
        for ex in executors:  # the fake study gets its own regression-trace store per executor: same work for each
            (tmp / ex).mkdir()
            path = Path(args.study) if args.study else fake_study(tmp / ex, args.trial_seconds, args.ideas, args.seeds)
            figures[ex] = measure(path, tmp / ex, ex, args.workers)
            report(ex, figures[ex], args.workers)
    for ex, f in figures.items():
        print(f"{ex}: overhead_pct {100 * f['overhead']:.2f}  per_trial_overhead_s {f['per_trial']:.2f}  "
              f"wall_s {f['wall']:.2f}")
    if "subprocess" in figures and "local" in figures:
        before, after = figures["subprocess"], figures["local"]
        print(f"ratio_overhead_subprocess_over_local: {before['overhead'] / max(after['overhead'], 1e-9):.2f}")
        print(f"ratio_per_trial_overhead_subprocess_over_local: "
              f"{before['per_trial'] / max(after['per_trial'], 1e-9):.2f}")
        print(f"ratio_wall_subprocess_over_local: {before['wall'] / after['wall']:.2f}")


if __name__ == "__main__":
    main()
