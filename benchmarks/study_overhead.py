"""Overhead of the study machinery: study wall time vs the sum of its trials' own training time.

    python benchmarks/study_overhead.py [--trial-seconds 5] [--ideas 2] [--seeds 2] [--workers 1]
    python benchmarks/study_overhead.py --study studies/lm_quickstart.yaml --workers 2   # a real study

Default: a study on the fake testbed (tests/fake_testbed.py) whose trials "train" for --trial-seconds each (sleeping
steps, so the machine's load does not change the training time), with integration checks, the regression check and
the report, run through the real runner (subprocess per trial). "Training time" is the wall time of each trial's
`testbed.train()` call, measured inside the trial process. With W workers the ideal study wall time is
Σ train / W, so overhead = wall / (Σ train / W) − 1 (it includes idle workers at the end of a round).

The overhead splits into a per-trial part (interpreter start, imports, spawning, result handling: the trial process
time minus its train() time) and a per-study part (stats, state, ledger, report); the script extrapolates both to
longer trials, where the fixed costs matter less, and prints the trial length from which the goal (< 3%) holds.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--study", help="a study file to measure instead of the fake study")
    ap.add_argument("--trial-seconds", type=float, default=5.0)
    ap.add_argument("--ideas", type=int, default=2)
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        path = Path(args.study) if args.study else fake_study(tmp, args.trial_seconds, args.ideas, args.seeds)
        resolved, sdir = prepare_study(path, tmp / "studies")
        t0 = time.perf_counter()
        StudyRunner(resolved, sdir, registry=tmp / "experiments", workers=args.workers).run()
        wall = time.perf_counter() - t0
        state = StudyState.load(sdir / "state.json")
        trials = list(state.trials.values())
        train = sum(t.train_wall_s for t in trials)
        proc = sum(t.wall_s for t in trials)
        own = sum(float(t.metrics.get("train_seconds", 0.0)) for t in trials)
        n = len(trials)

    w = args.workers
    overhead = wall / (train / w) - 1
    per_trial = (proc - train) / n
    per_study = wall - proc / w
    print(f"study: {'fake testbed' if not args.study else args.study}, {n} trials "
          f"(mean train() {train / n:.2f} s), workers {w}")
    print(f"wall_s: {wall:.2f}")
    print(f"sum_train_s: {train:.2f}")
    print(f"sum_trial_process_s: {proc:.2f}")
    print(f"sum_testbed_train_seconds: {own:.2f}")
    print(f"overhead_pct: {100 * overhead:.2f}   (wall / (sum_train / workers) - 1)")
    print(f"per_trial_overhead_s: {per_trial:.2f}   (process start + imports + spawn + result, per trial)")
    print(f"per_study_overhead_s: {per_study:.2f}   (checks subprocess, stats, state, ledger, report)")
    for t in (30.0, 60.0, 120.0, 300.0, 600.0):
        est = (n * per_trial + w * per_study) / (n * t)
        print(f"extrapolated_overhead_pct_at_{int(t)}s_trials: {100 * est:.2f}")
    need = (n * per_trial + w * per_study) / (n * 0.03)
    print(f"goal_lt_3pct_from_trial_seconds: {need:.0f}")


if __name__ == "__main__":
    main()
