"""The adversarial RL schedule and its steps: a generator and a discriminator trained against each other by GRPO, with
rewards from the sandbox (DESIGN.md §8; docs/adversarial.md).

The schedule (`schedule(cfg)`) is one list of (stage, role) slots: for each stage of the chain in order, N
discriminator steps, N generator steps, then K (discriminator, generator) pairs; rl.mode=visible has no discriminator
slots. `train_discriminator_epoch`, `train_generator_epoch`, `train_alternating`, `train_stage` and
`train_full_pipeline` are views on it: each runs its slots through `step(i)`, which the training loop (train.py) also
calls one slot at a time, so a run resumed at any slot does exactly what the uninterrupted one did.

One RL step at stage s (either role; the other role is frozen for the whole step, `freeze.frozen`):
1. P problems, drawn from (train.seed, slot index) alone;
2. the generator's greedy chain gives each problem its prefix stages < s (no grad);
3. G continuations from stage s to the code are sampled (torch's RNG), and G tests blocks from the discriminator;
4. the sandbox scores the group (`rewards.score_groups`): generator rewards on reference-validated tests (visible:
   on the problem's visible tests; shuffled: permuted across the step's samples, the control), discriminator
   rewards for valid tests that fail the codes and mutants of the reference;
5. group-normalised advantages (zero-variance and no-signal groups dropped) and one `grpo.rl_step` of the trained
   role against its frozen SFT reference. A step whose groups are all dropped updates nothing (logged `updates: 0`).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from autoresearch.harness.checkpoint import rng_state, set_rng_state
from autoresearch.harness.progress import TrainProgress
from autoresearch.testbeds.adversarial.config import AdversarialConfig
from autoresearch.testbeds.adversarial.freeze import frozen
from autoresearch.testbeds.adversarial.grpo import group_advantages, rl_step
from autoresearch.testbeds.adversarial.judge import Judge
from autoresearch.testbeds.adversarial.policy import Policy, Sample
from autoresearch.testbeds.adversarial.problems import Problem
from autoresearch.testbeds.adversarial.rewards import (
    generator_reward,
    parse_tests,
    run_programs,
    score_groups,
    validity_batch,
    visible_reward,
)
from autoresearch.testbeds.adversarial.stages import Stage, chain_stages, code_of

__all__ = ["ROLES", "Slot", "schedule", "AdversarialTrainer", "preserved_rng"]

ROLES = ("disc", "gen")
Slot = tuple[Stage, str]
"""One RL step of the schedule: (stage, "disc" | "gen")."""
StepHook = Callable[[int, dict[str, Any]], None]


def schedule(cfg: AdversarialConfig) -> list[Slot]:
    """Every RL step of the run in order: per stage of `chain_stages(cfg.stages)`, N x disc, N x gen, K x (disc, gen);
    without the disc slots for rl.mode=visible (no discriminator RL); empty for rl.mode=none.

    `--stages 1` is the matched-compute ablation: its one (code) stage gets 5N + 5N + 5K steps, as many RL steps as
    the five stages of the full chain (rl.match_stages; off: N + N + K)."""
    if cfg.rl.mode == "none":
        return []
    stages = chain_stages(cfg.stages)
    rounds = 5 // len(stages) if cfg.rl.match_stages else 1
    n, k = cfg.rl.n_steps * rounds, cfg.rl.k_alternations * rounds
    out: list[Slot] = []
    for stage in stages:
        out += [(stage, "disc")] * n + [(stage, "gen")] * n + [(stage, "disc"), (stage, "gen")] * k
    if cfg.rl.mode == "visible":
        out = [s for s in out if s[1] == "gen"]
    return out


@contextmanager
def preserved_rng() -> Iterator[None]:
    """Every RNG back to its state at entry on exit: evaluation inside never shifts the training's random stream
    (a run scored at a stage end, or not, samples the same RL tokens afterwards)."""
    state = rng_state()
    try:
        yield
    finally:
        set_rng_state(state)


@dataclass
class _StageStats:
    steps: dict[str, int] = field(default_factory=lambda: {"disc": 0, "gen": 0})
    sums: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, role: str, rec: dict[str, Any]) -> None:
        self.steps[role] += 1
        for key in ("reward_mean", "validity", "groups_kept", "loss", "grad_norm", "kl", "gen_no_signal"):
            v = rec.get(key)
            if isinstance(v, (int, float)) and math.isfinite(v):
                name = f"{role}_{key}"
                self.sums[name] = self.sums.get(name, 0.0) + float(v)
                self.counts[name] = self.counts.get(name, 0) + 1

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {f"{r}_steps": float(n) for r, n in self.steps.items()}
        out.update({k: round(self.sums[k] / self.counts[k], 6) for k in sorted(self.sums)})
        return out


class AdversarialTrainer:
    """The RL phase of one run: both policies, their frozen SFT references, their RL optimizers, the train problems
    and the judge. `step(i)` runs slot i of `schedule(cfg)` and returns its log fields."""

    def __init__(self, cfg: AdversarialConfig, generator: Policy, discriminator: Policy, problems: Sequence[Problem],
                 judge: Judge, *, gen_opt: torch.optim.Optimizer, disc_opt: torch.optim.Optimizer,
                 ref_generator: Policy | None = None, ref_discriminator: Policy | None = None,
                 mutants: Callable[[Problem], Sequence[str]] | None = None) -> None:
        if not problems:
            from autoresearch.errors import ConfigError

            raise ConfigError("the RL phase has no train problems; raise data.train_problems")
        self.cfg = cfg
        self.gen, self.disc = generator, discriminator
        self.ref_gen, self.ref_disc = ref_generator, ref_discriminator
        self.gen_opt, self.disc_opt = gen_opt, disc_opt
        self.problems = list(problems)
        self.judge = judge
        self.mutants = mutants
        self.stages = chain_stages(cfg.stages)
        self.slots = schedule(cfg)
        self.stage_stats: dict[str, _StageStats] = {}

    # --- the schedule's views --------------------------------------------------------------------------------------

    def slot_indices(self, stage: Stage | None = None, role: str | None = None) -> list[int]:
        """Indices of the schedule's slots of `stage` (all when None) and `role` (both when None)."""
        return [i for i, (s, r) in enumerate(self.slots)
                if (stage is None or s.index == stage.index) and (role is None or r == role)]

    def run_slots(self, indices: Sequence[int], on_step: StepHook | None = None,
                  progress: bool = False) -> list[dict[str, Any]]:
        """Run the given slots in order; `on_step(i, record)` after each (the loop's logging and checkpoints)."""
        bar = TrainProgress(len(indices), enabled=progress)
        out = []
        for n, i in enumerate(indices, 1):
            rec = self.step(i)
            out.append(rec)
            bar.update(n, float(rec["loss"]), 0.0)
            if on_step is not None:
                on_step(i, rec)
        bar.close()
        return out

    def train_discriminator_epoch(self, stage: Stage, on_step: StepHook | None = None) -> list[dict[str, Any]]:
        """The N discriminator steps of `stage` (the generator frozen)."""
        idx = self.slot_indices(stage)
        return self.run_slots(idx[: self._n_leading(idx, "disc")], on_step)

    def train_generator_epoch(self, stage: Stage, on_step: StepHook | None = None) -> list[dict[str, Any]]:
        """The N generator steps of `stage` (the discriminator frozen), after its N discriminator steps."""
        idx = self.slot_indices(stage)
        start = self._n_leading(idx, "disc")
        return self.run_slots(idx[start: start + self._n_leading(idx[start:], "gen")], on_step)

    def train_alternating(self, stage: Stage, on_step: StepHook | None = None) -> list[dict[str, Any]]:
        """The K rapid (discriminator, generator) pairs of `stage`, after its N + N steps."""
        idx = self.slot_indices(stage)
        start = self._n_leading(idx, "disc")
        start += self._n_leading(idx[start:], "gen")
        return self.run_slots(idx[start:], on_step)

    def train_stage(self, stage: Stage, on_step: StepHook | None = None) -> dict[str, float]:
        """N + N + K steps of `stage`; its metrics (mean reward, validity, kept groups, loss per role)."""
        self.run_slots(self.slot_indices(stage), on_step)
        return self.stage_metrics().get(stage.name, {})

    def train_full_pipeline(self, on_step: StepHook | None = None, progress: bool = False
                            ) -> dict[str, dict[str, float]]:
        """Every stage in order (1 -> 5, or the code stage alone); metrics per stage."""
        self.run_slots(list(range(len(self.slots))), on_step, progress)
        return self.stage_metrics()

    def _n_leading(self, idx: Sequence[int], role: str) -> int:
        """How many of the slots `idx` at its start have `role` (the N block of a stage; visible mode: no disc)."""
        n = 0
        for i in idx:
            if self.slots[i][1] != role or n >= self.cfg.rl.n_steps:
                break
            n += 1
        return n

    def stage_metrics(self) -> dict[str, dict[str, float]]:
        """stage name -> means over its steps so far (rewards, validity, kept groups, losses) per role."""
        return {name: st.summary() for name, st in self.stage_stats.items()}

    # --- one step ----------------------------------------------------------------------------------------------

    def problems_of(self, i: int) -> list[Problem]:
        """The P problems of slot i: a function of (train.seed, i) alone, so a resumed run draws the same."""
        rng = random.Random(f"adversarial-rl:{self.cfg.train.seed}:{i}")
        n = min(self.cfg.rl.prompts_per_step, len(self.problems))
        return [self.problems[j] for j in rng.sample(range(len(self.problems)), n)]

    def step(self, i: int) -> dict[str, Any]:
        """Run slot i (generator or discriminator step of its stage); returns the log fields of the step."""
        stage, role = self.slots[i]
        t0 = time.perf_counter()
        with frozen(self.disc if role == "gen" else self.gen):
            rec = self._gen_step(i, stage) if role == "gen" else self._disc_step(i, stage)
        rec = {"phase": "rl", "stage": stage.name, "role": role, **rec, "step_seconds": round(time.perf_counter() - t0,
                                                                                              3)}
        self.stage_stats.setdefault(stage.name, _StageStats()).add(role, rec)
        return rec

    def _rollout(self, problems: Sequence[Problem], stage: Stage, *, tests: bool
                 ) -> tuple[list[list[Sample]], list[list[str]], list[list[Sample]], list[list[str]]]:
        """Sampled generator continuations from `stage` (greedy prefix before it) with their codes, and, when
        `tests`, sampled discriminator tests blocks; no gradients."""
        rl = self.cfg.rl
        G = rl.group_size
        with torch.no_grad():
            prefixes: list[dict[str, str] | None] = [None] * len(problems)
            if stage.index > self.stages[0].index:
                greedy = self.gen.sample_chains(problems, [None] * len(problems), self.stages[0], self.stages, 1,
                                                temperature=0.0, max_new_tokens=rl.max_new_tokens)
                prefixes = [{s.name: row[0][1].get(s.name, "") for s in self.stages if s.index < stage.index}
                            for row in greedy]
            rows = self.gen.sample_chains(problems, prefixes, stage, self.stages, G, temperature=rl.temperature,
                                          top_p=rl.top_p, max_new_tokens=rl.max_new_tokens)
            gen_samples = [[s for s, _ in row] for row in rows]
            codes = [[code_of(chain) for _, chain in row] for row in rows]
            disc_samples: list[list[Sample]] = [[] for _ in problems]
            texts: list[list[str]] = [[] for _ in problems]
            if tests:
                trows = self.disc.sample_tests(problems, G, temperature=rl.temperature, top_p=rl.top_p,
                                               max_new_tokens=rl.max_test_tokens)
                disc_samples = [[s for s, _ in row] for row in trows]
                texts = [[t for _, t in row] for row in trows]
        return gen_samples, codes, disc_samples, texts

    def _gen_step(self, i: int, stage: Stage) -> dict[str, Any]:
        cfg = self.cfg
        problems = self.problems_of(i)
        samples, codes, _, texts = self._rollout(problems, stage, tests=cfg.rl.mode != "visible")
        extra: dict[str, Any] = {}
        if cfg.rl.mode == "visible":
            rewards = [visible_reward(self.judge, p, c) for p, c in zip(problems, codes, strict=True)]
        else:
            scores = score_groups(self.judge, [(p, c, t, ()) for p, c, t in zip(problems, codes, texts, strict=True)])
            rewards = [s.generator_rewards for s in scores]
            extra = _mean_stats(scores, ("validity", "valid_union", "gen_no_signal", "gen_caught"))
        R = torch.tensor([[math.nan if r is None else float(r) for r in row] for row in rewards], dtype=torch.float64)
        if cfg.rl.mode == "shuffled":
            R = _shuffle_finite(R, random.Random(f"adversarial-shuffle:{cfg.train.seed}:{i}"))
        return {**self._update(self.gen, self.ref_gen, self.gen_opt, samples, R), **extra}

    def _disc_step(self, i: int, stage: Stage) -> dict[str, Any]:
        problems = self.problems_of(i)
        _, codes, samples, texts = self._rollout(problems, stage, tests=True)
        extra_targets = [tuple(self.mutants(p)) if self.mutants is not None else () for p in problems]
        scores = score_groups(self.judge, [(p, c, t, m) for p, c, t, m in zip(problems, codes, texts, extra_targets,
                                                                               strict=True)])
        R = torch.tensor([s.discriminator_rewards for s in scores], dtype=torch.float64)
        extra = _mean_stats(scores, ("validity", "tests_kept", "tests_valid", "tests_malformed", "tests_duplicate",
                                     "gen_caught"))
        return {**self._update(self.disc, self.ref_disc, self.disc_opt, samples, R), **extra}

    def _update(self, policy: Policy, ref: Policy | None, opt: torch.optim.Optimizer, samples: list[list[Sample]],
                R: torch.Tensor) -> dict[str, Any]:
        """Group advantages of rewards R [P, G] and one rl_step on the kept samples; the step's log fields."""
        adv, keep = group_advantages(R)
        finite = torch.isfinite(R)
        kept = [(samples[p][g], float(adv[p, g])) for p in range(R.shape[0]) for g in range(R.shape[1])
                if bool(keep[p]) and bool(finite[p, g])]
        flat = R[finite]
        rec: dict[str, Any] = {
            "reward_mean": float(flat.mean()) if flat.numel() else None,  # None: no signal (JSON has no NaN)
            "reward_std": float(flat.std()) if flat.numel() > 1 else 0.0,
            "no_signal": int((~finite).sum()),
            "groups_kept": int(keep.sum()),
            "groups": int(R.shape[0]),
            "tokens": sum(len(s.prompt_ids) + len(s.ids) for row in samples for s in row),
        }
        if not kept:  # every group zero-variance or without signal: nothing to learn from, nothing changes
            return {**rec, "loss": 0.0, "grad_norm": 0.0, "kl": 0.0, "clip_frac": 0.0, "updates": 0, "skipped": 0}
        policy.eval()  # no dropout: the sampling and the loss see the same function
        stats = rl_step(policy, ref, opt, [s for s, _ in kept], [a for _, a in kept], self.cfg.rl)
        return {**rec, "loss": stats["loss"], "grad_norm": stats["grad_norm"], "kl": stats["kl"],
                "clip_frac": stats["clip_frac"], "updates": stats["updates"], "skipped": stats["skipped"],
                "trained_samples": len(kept)}

    # --- the val score that picks the best checkpoint -------------------------------------------------------------

    def val_scores(self, problems: Sequence[Problem]) -> dict[str, float]:
        """Generator reward (greedy chain's code on the hidden tests, outcome scores) and test validity (share of the
        discriminator's greedy kept tests that the reference passes) on `problems`; RNG untouched."""
        if not problems:
            return {"gen_reward": math.nan, "validity": math.nan}
        with torch.no_grad(), preserved_rng():
            chains = self.gen.sample_chains(problems, [None] * len(problems), self.stages[0], self.stages, 1,
                                            temperature=0.0, max_new_tokens=self.cfg.rl.max_new_tokens)
            codes = [code_of(row[0][1]) for row in chains]
            tests = self.disc.sample_tests(problems, 1, temperature=0.0, max_new_tokens=self.cfg.rl.max_test_tokens)
        results = run_programs(self.judge, [(p, c, p.hidden_tests) for p, c in zip(problems, codes, strict=True)])
        rewards = [generator_reward(r, [True] * len(p.hidden_tests)) for p, r in zip(problems, results, strict=True)]
        got = [r for r in rewards if r is not None]
        sets = [parse_tests(row[0][1], p, self.cfg.reward) for p, row in zip(problems, tests, strict=True)]
        valid = validity_batch(self.judge, [(p, s.tests) for p, s in zip(problems, sets, strict=True)])
        kept = sum(s.n_kept for s in sets)
        return {"gen_reward": sum(got) / len(got) if got else math.nan,
                "validity": sum(sum(v) for v in valid) / kept if kept else 0.0}


    def heldout_scores(self, problems: Sequence[Problem], mutant_codes: Sequence[Sequence[str]] | None = None
                       ) -> dict[str, Any]:
        """The held-out metrics of the current models (metrics.py; docs/adversarial.md): greedy and sampled pass@k on
        the hidden tests, generator reward (mean outcome score of the greedy code on the hidden tests), the
        discriminator's validity, catch rate (of the sampled codes) and mutation score, coherence by intervention
        and critique accuracy on the first eval.coherence_problems, and multi-attempt / CodeT figures when
        eval.max_attempts > 1 / eval.codet_candidates > 0. Call it under no_grad + preserved_rng."""
        from autoresearch.testbeds.adversarial.metrics import (
            coherence,
            critique_accuracy,
            discriminator_metrics,
            hidden_results,
            mutation_score,
            pass_at_k_metrics,
            policy_critic,
            policy_regenerator,
        )

        ev, rl = self.cfg.eval, self.cfg.rl
        if not problems:
            return {}
        t0 = time.perf_counter()
        first = self.stages[0]
        greedy = self.gen.sample_chains(problems, [None] * len(problems), first, self.stages, 1, temperature=0.0,
                                        max_new_tokens=rl.max_new_tokens)
        greedy_codes = [[code_of(row[0][1])] for row in greedy]
        g_res = hidden_results(self.judge, problems, greedy_codes)
        out: dict[str, Any] = {"pass@1_greedy": pass_at_k_metrics(g_res, (1,)).get("pass@1", 0.0)}
        rewards = [generator_reward(r[0], [True] * len(p.hidden_tests)) for p, r in zip(problems, g_res, strict=True)]
        got = [r for r in rewards if r is not None]
        out["gen_reward"] = sum(got) / len(got) if got else math.nan
        codes, res = greedy_codes, g_res
        if ev.n_samples > 0:
            rows = self.gen.sample_chains(problems, [None] * len(problems), first, self.stages, ev.n_samples,
                                          temperature=max(ev.temperature, 1e-6), max_new_tokens=rl.max_new_tokens)
            codes = [[code_of(chain) for _, chain in row] for row in rows]
            res = hidden_results(self.judge, problems, codes)
        sampled = pass_at_k_metrics(res, tuple(ev.k) if ev.n_samples > 0 else (1,))
        out.update({k: v for k, v in sampled.items() if k not in ("problems", "samples")})
        tests = self.disc.sample_tests(problems, 1, temperature=0.0, max_new_tokens=rl.max_test_tokens)
        answers = [row[0][1] for row in tests]
        disc = discriminator_metrics(self.judge, problems, answers, codes=codes, hidden=res)
        out.update(disc)
        out["test_validity"] = disc["disc_validity"]
        if ev.mutants > 0:
            out.update(mutation_score(self.judge, problems, answers, ev.mutants, seed=self.cfg.data.suite_seed,
                                      mutant_codes=mutant_codes))
        sub = list(problems[: ev.coherence_problems])
        if sub and len(self.stages) > 1:
            out.update(coherence(self.judge, sub, policy_regenerator(self.gen, self.stages, rl.max_new_tokens),
                                 self.stages, seed=self.cfg.data.suite_seed))
        if sub:
            out.update(critique_accuracy(policy_critic(self.disc), sub, self.cfg.stages, seed=self.cfg.data.suite_seed))
        if ev.max_attempts > 1 or ev.codet_candidates > 0:  # multi-attempt feedback and CodeT ranking (inference.py)
            from autoresearch.testbeds.adversarial.inference import InferenceEngine, inference_metrics

            out.update(inference_metrics(InferenceEngine(self.gen, self.disc, self.cfg, judge=self.judge), problems))
        out["score_seconds"] = round(time.perf_counter() - t0, 3)
        return out


def _shuffle_finite(R: torch.Tensor, rng: random.Random) -> torch.Tensor:
    """R with its finite entries permuted across the whole step (the shuffled-reward control keeps the reward
    distribution and the no-signal pattern, and breaks the link between a sample and its reward)."""
    out = R.clone()
    finite = torch.isfinite(R).flatten()
    where = [int(j) for j in torch.nonzero(finite).flatten()]
    values = [float(R.flatten()[j]) for j in where]
    rng.shuffle(values)
    flat = out.flatten()
    for j, v in zip(where, values, strict=True):
        flat[j] = v
    return flat.reshape(R.shape)


def _mean_stats(scores: Sequence[Any], keys: Sequence[str]) -> dict[str, float]:
    return {k: round(sum(s.stats[k] for s in scores) / len(scores), 6) for k in keys} if scores else {}
