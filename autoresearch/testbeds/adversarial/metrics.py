"""Metrics of an adversarial run, all measured in the sandbox on problems no model trained on (docs/adversarial.md).

    pass@k, failure_rate, status/<s>   generator: unbiased pass@k on the HIDDEN tests (harness estimate_pass_at_k);
                                       share of samples per final status (pass, fail, error, timeout, syntax_error..)
    disc_validity                      discriminator: valid kept tests / kept tests (valid = the reference passes it)
    catch_rate                         generator codes that fail the hidden tests AND fail >= 1 valid discriminator
                                       test of their problem / codes that fail the hidden tests
    false_alarm_rate                   codes that pass the hidden tests but fail a valid discriminator test / codes
                                       that pass the hidden tests (over-specified tests)
    mutation_score                     non-equivalent mutants of the reference killed by the valid discriminator
                                       tests / non-equivalent mutants (a mutant passing every hidden test is
                                       equivalent and left out); `mutation_score_visible`: the same for the visible
                                       example tests, the baseline a discriminator has to beat
    coherence/<stage>                  reasoning coherence by intervention: corrupt the greedy chain's stage text
                                       (stages.corrupt_text, deterministic), regenerate the later stages through the
                                       code greedily, share of problems whose hidden-test outcome (the per-test
                                       statuses) changes; `coherence` = the mean over stages. Near 0 = the code
                                       ignores that stage
    critique_accuracy                  the discriminator's "ok"/"wrong" critiques of canonical chains with and without
                                       a corrupted stage (stages.canonical_critiques); also per label

Functions take plain data (completions, test answers) or callables, a `Judge` and `Problem`s: no training code here.
Each runs its sandbox work in one or two batches over all problems.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from autoresearch.harness.pass_at_k import estimate_pass_at_k
from autoresearch.harness.sandbox import ProgramResult
from autoresearch.testbeds.adversarial.judge import Judge
from autoresearch.testbeds.adversarial.problems import Problem
from autoresearch.testbeds.adversarial.rewards import parse_tests, run_programs, validity_batch
from autoresearch.testbeds.adversarial.stages import (
    CRITIQUE_OK,
    CRITIQUE_WRONG,
    Stage,
    canonical_critiques,
    code_of,
    corrupt_text,
)

__all__ = [
    "hidden_results",
    "pass_at_k_metrics",
    "discriminator_metrics",
    "mutation_score",
    "coherence",
    "critique_accuracy",
    "Regenerate",
    "Critic",
    "policy_regenerator",
    "policy_critic",
]

# (problems, prefix chains, first stage to regenerate) -> the full chains, greedy (one per problem)
Regenerate = Callable[[Sequence[Problem], Sequence[Mapping[str, str]], Stage], list[dict[str, str]]]
# critique prompts -> answers ("ok" | "wrong" | anything else, which counts as wrong)
Critic = Callable[[Sequence[str]], list[str]]


# --- generator: pass@k on hidden tests ------------------------------------------------------------------------
def hidden_results(judge: Judge, problems: Sequence[Problem], completions: Sequence[Sequence[str]]
                   ) -> list[list[ProgramResult]]:
    """Every completion of every problem against that problem's hidden tests, in one sandbox batch."""
    if len(problems) != len(completions):
        raise ValueError(f"{len(problems)} problems but {len(completions)} rows of completions")
    flat = run_programs(judge, [(p, c, p.hidden_tests) for p, row in zip(problems, completions, strict=True)
                                for c in row])
    it = iter(flat)
    return [[next(it) for _ in row] for row in completions]


def pass_at_k_metrics(results: Sequence[Sequence[ProgramResult]], ks: Sequence[int] = (1,)) -> dict[str, float]:
    """pass@k for each k <= the fewest samples of a problem, failure_rate, and status/<s> shares over all samples."""
    rows = [r for r in results if r]
    if not rows:
        return {"problems": 0.0, "samples": 0.0}
    n = [len(r) for r in rows]
    c = [sum(x.passed for x in r) for r in rows]
    out: dict[str, float] = {"problems": float(len(rows)), "samples": float(sum(n))}
    for k in ks:
        if k <= min(n):
            out[f"pass@{k}"] = float(estimate_pass_at_k(n, c, k).mean())
    statuses = Counter(x.status for r in rows for x in r)
    total = sum(n)
    out["failure_rate"] = 1.0 - statuses.get("pass", 0) / total
    for s, m in sorted(statuses.items()):
        out[f"status/{s}"] = m / total
    return out


# --- discriminator: validity, catch rate ----------------------------------------------------------------------
def discriminator_metrics(judge: Judge, problems: Sequence[Problem], answers: Sequence[str],
                          codes: Sequence[Sequence[str]] = (),
                          hidden: Sequence[Sequence[ProgramResult]] | None = None) -> dict[str, float]:
    """Validity of one discriminator answer per problem and, given generator `codes` per problem (and optionally
    their `hidden_results`), the catch rate and false-alarm rate of its valid tests."""
    cfg = judge.cfg
    sets = [parse_tests(a, p, cfg) for p, a in zip(problems, answers, strict=True)]
    valid = validity_batch(judge, [(p, s.tests) for p, s in zip(problems, sets, strict=True)])
    vt = [tuple(t for t, ok in zip(s.tests, v, strict=True) if ok) for s, v in zip(sets, valid, strict=True)]
    kept = sum(s.n_kept for s in sets)
    n_valid = sum(len(v) for v in vt)
    raw = sum(s.n_raw for s in sets)
    out = {
        "disc_validity": n_valid / kept if kept else 0.0,
        "disc_tests_per_problem": kept / max(len(sets), 1),
        "disc_valid_per_problem": n_valid / max(len(sets), 1),
        "disc_malformed_rate": sum(s.n_malformed for s in sets) / raw if raw else 0.0,
        "disc_duplicate_rate": sum(s.n_duplicate for s in sets) / raw if raw else 0.0,
        "disc_no_valid_test": sum(1 for v in vt if not v) / max(len(sets), 1),
    }
    if not codes:
        return out
    if hidden is None:
        hidden = hidden_results(judge, problems, codes)
    items = [(p, c, t) for p, row, t in zip(problems, codes, vt, strict=True) for c in row if t]
    it = iter(run_programs(judge, items))
    wrong = caught = right = alarms = 0
    for row, hrow, t in zip(codes, hidden, vt, strict=True):
        for _code, h in zip(row, hrow, strict=True):
            fails_disc = bool(t) and not next(it).passed
            if h.passed:
                right += 1
                alarms += fails_disc
            else:
                wrong += 1
                caught += fails_disc
    out.update({
        "catch_rate": caught / wrong if wrong else 0.0,
        "false_alarm_rate": alarms / right if right else 0.0,
        "codes_wrong": float(wrong),
        "codes_right": float(right),
    })
    return out


# --- mutation score -------------------------------------------------------------------------------------------
def mutation_score(judge: Judge, problems: Sequence[Problem], answers: Sequence[str], n_mutants: int,
                   seed: int = 0, mutant_codes: Sequence[Sequence[str]] | None = None) -> dict[str, float]:
    """Share of non-equivalent mutants of each reference killed by the valid tests of the problem's answer
    (pooled over problems), and the same for the visible example tests. `mutant_codes` overrides the mutants
    (default: mutants.mutants(problem, n_mutants, seed))."""
    from autoresearch.testbeds.adversarial.mutants import mutants

    cfg = judge.cfg
    pools = list(mutant_codes) if mutant_codes is not None else [mutants(p, n_mutants, seed) for p in problems]
    sets = [parse_tests(a, p, cfg) for p, a in zip(problems, answers, strict=True)]
    valid = validity_batch(judge, [(p, s.tests) for p, s in zip(problems, sets, strict=True)])
    vt = [tuple(t for t, ok in zip(s.tests, v, strict=True) if ok) for s, v in zip(sets, valid, strict=True)]
    # one job per mutant: hidden tests (equivalence), then the valid answer tests, then the visible tests
    items = [(p, m, (*p.hidden_tests, *t, *p.visible_tests)) for p, ms, t in zip(problems, pools, vt, strict=True)
             for m in ms]
    it = iter(run_programs(judge, items))
    total = equivalent = killed = killed_visible = 0
    for p, ms, t in zip(problems, pools, vt, strict=True):
        nh, nt = len(p.hidden_tests), len(t)
        for _m in ms:
            r = next(it)
            total += 1
            statuses = [x.passed for x in r.tests]
            if r.program.passed and all(statuses[:nh]):
                equivalent += 1
                continue
            # a mutant is killed by a test set when the set is non-empty and some test of it does not pass
            killed += nt > 0 and not all(statuses[nh:nh + nt])
            killed_visible += len(p.visible_tests) > 0 and not all(statuses[nh + nt:])
    live = total - equivalent
    return {
        "mutation_score": killed / live if live else 0.0,
        "mutation_score_visible": killed_visible / live if live else 0.0,
        "mutants": float(total),
        "mutants_equivalent": float(equivalent),
        "mutants_killed": float(killed),
    }


# --- coherence by intervention --------------------------------------------------------------------------------
def _outcome(r: ProgramResult) -> tuple[str, ...]:
    return (r.program.status, *(t.status for t in r.tests))


def coherence(judge: Judge, problems: Sequence[Problem], regenerate: Regenerate, stages: Sequence[Stage],
              seed: int = 0) -> dict[str, float]:
    """Per stage before the code: corrupt that stage of each problem's greedy chain, regenerate the later stages
    greedily, and report the share of problems whose hidden-test outcome changes (module docstring)."""
    stages = tuple(stages)
    if len(stages) < 2 or not problems:
        return {}
    base = regenerate(problems, [{} for _ in problems], stages[0])
    jobs: list[tuple[Problem, str, tuple[str, ...]]] = [(p, code_of(c), p.hidden_tests)
                                                        for p, c in zip(problems, base, strict=True)]
    plan: list[tuple[Stage, list[int], list[dict[str, str]]]] = []
    for i, stage in enumerate(stages[:-1]):
        idx, prefixes = [], []
        for j, (p, chain) in enumerate(zip(problems, base, strict=True)):
            rng = random.Random(f"coherence:{seed}:{p.id}:{stage.name}")
            bad = corrupt_text(chain.get(stage.name, ""), rng)
            if bad is None or bad == chain.get(stage.name, ""):
                continue
            prefix = {s.name: chain.get(s.name, "") for s in stages[:i]}
            prefix[stage.name] = bad
            idx.append(j)
            prefixes.append(prefix)
        regen = regenerate([problems[j] for j in idx], prefixes, stages[i + 1]) if idx else []
        plan.append((stage, idx, regen))
        jobs.extend((problems[j], code_of(c), problems[j].hidden_tests) for j, c in zip(idx, regen, strict=True))
    results = run_programs(judge, jobs)
    before = [_outcome(r) for r in results[: len(problems)]]
    after = iter(results[len(problems):])
    out: dict[str, float] = {}
    shares = []
    for stage, idx, regen in plan:
        changed = code_changed = 0
        for j, chain in zip(idx, regen, strict=True):
            changed += _outcome(next(after)) != before[j]
            code_changed += code_of(chain) != code_of(base[j])
        out[f"coherence_n/{stage.name}"] = float(len(idx))
        if idx:
            out[f"coherence/{stage.name}"] = changed / len(idx)
            out[f"code_changed/{stage.name}"] = code_changed / len(idx)
            shares.append(changed / len(idx))
    if shares:
        out["coherence"] = sum(shares) / len(shares)
    return out


# --- critique accuracy ----------------------------------------------------------------------------------------
def critique_accuracy(critic: Critic, problems: Sequence[Problem], n_stages: int = 5, seed: int = 0
                      ) -> dict[str, float]:
    """Accuracy of the critic's "ok"/"wrong" on canonical chains with and without one corrupted stage; per label
    too (a critic that always answers "ok" scores 1.0 on ok and 0.0 on wrong)."""
    pairs = [pair for p in problems for pair in canonical_critiques(p, n_stages, seed)]
    if not pairs:
        return {}
    answers = critic([prompt for prompt, _ in pairs])
    hits: dict[str, list[bool]] = {CRITIQUE_OK: [], CRITIQUE_WRONG: []}
    for (_, label), answer in zip(pairs, answers, strict=True):
        hits.setdefault(label, []).append(answer.strip().lower() == label)
    flat = [h for v in hits.values() for h in v]
    out = {"critique_accuracy": sum(flat) / len(flat), "critique_n": float(len(flat))}
    for label, v in hits.items():
        if v:
            out[f"critique_acc_{label}"] = sum(v) / len(v)
    return out


# --- adapters for the Policy interface (policy.py): duck-typed, no import of the models --------------------------
def policy_regenerator(policy: Any, stages: Sequence[Stage], max_new_tokens: int | None = None) -> Regenerate:
    """A `Regenerate` from a generator Policy: greedy continuation of each prefix chain from `stage` to the code."""
    stages = tuple(stages)

    def regenerate(problems: Sequence[Problem], prefixes: Sequence[Mapping[str, str]], stage: Stage
                   ) -> list[dict[str, str]]:
        rows = policy.sample_chains(list(problems), list(prefixes), stage, stages, 1, temperature=0.0,
                                    max_new_tokens=max_new_tokens)
        return [row[0][1] for row in rows]

    return regenerate


def policy_critic(policy: Any, max_new_tokens: int = 16) -> Critic:
    """A `Critic` from a discriminator Policy: its greedy, sanitised answer to each critique prompt."""
    from autoresearch.testbeds.adversarial.policy import sanitize_critique

    def critic(prompts: Sequence[str]) -> list[str]:
        rows = policy.sample_texts(list(prompts), 1, 0.0, max_new_tokens)
        return [sanitize_critique(row[0].text) for row in rows]

    return critic
