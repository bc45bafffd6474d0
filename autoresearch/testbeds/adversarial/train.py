"""The adversarial testbed's training loop, top to bottom: config → sandbox judge → problems → tokenizer → SFT data →
both models → optimizers → resume → loop (generator SFT, discriminator SFT, score before RL, the RL schedule) →
score after RL → results.

One global step counter: steps 1..S are the generator's SFT, S+1..S+D the discriminator's (D = disc_sft_frac x S), then the RL slots of
`trainer.schedule(cfg)` (N disc + N gen + K pairs per stage), cut at `max_steps` when set. At the end of SFT the
frozen KL references take the SFT weights, the held-out problems are scored (`*_sft` results) and the state is kept
as stage 0's end; at the end of every RL stage the val problems pick the best checkpoint (checkpoints.py) and the
state is kept as that stage's end (`train(..., from_stage=s)` restarts the RL at stage s from it).

Determinism: SFT batches are a function of (seed, step), RL problems of (seed, slot), sampling draws from torch's RNG
(checkpointed), and every evaluation runs under `preserved_rng`, so a run resumed from any checkpoint logs the same
per-step losses as an uninterrupted one, bit for bit on CPU. Both models (and their references) are saved by the kit's
checkpoint_state / resume_run: the generator as `model` (what `load_model` and eval-code read), the discriminator and
both frozen references under their own keys; the optimizers are one list (SFT of each role, then RL of each role).
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from autoresearch.errors import CheckpointError, ConfigError
from autoresearch.harness.checkpoint import set_rng_state
from autoresearch.harness.config import to_dict
from autoresearch.harness.progress import TrainProgress
from autoresearch.harness.registry import Experiment, open_experiment
from autoresearch.harness.settings import cache_root
from autoresearch.harness.tokenizer import ByteTokenizer, Tokenizer, cached_bpe, load_tokenizer
from autoresearch.testbeds.adversarial.checkpoints import CheckpointManager
from autoresearch.testbeds.adversarial.config import AdversarialConfig
from autoresearch.testbeds.adversarial.freeze import reference_copy
from autoresearch.testbeds.adversarial.grpo import make_rl_optimizer
from autoresearch.testbeds.adversarial.judge import Judge
from autoresearch.testbeds.adversarial.mutants import mutants
from autoresearch.testbeds.adversarial.policy import Policy, build_policy
from autoresearch.testbeds.adversarial.problems import Problem, load_problems
from autoresearch.testbeds.adversarial.rewards import run_programs
from autoresearch.testbeds.adversarial.sft import discriminator_pairs, generator_pairs, sft_texts
from autoresearch.testbeds.adversarial.trainer import AdversarialTrainer, preserved_rng, schedule
from autoresearch.testbeds.common.checkpoint_state import checkpoint_state
from autoresearch.testbeds.common.device import setup_device
from autoresearch.testbeds.common.generate import context_length
from autoresearch.testbeds.common.optim import apply_precision, build_optimizers, lr_multiplier, set_lr
from autoresearch.testbeds.common.perf_summary import perf_summary
from autoresearch.testbeds.common.resume import resume_run
from autoresearch.testbeds.common.run_start import start_run
from autoresearch.testbeds.common.run_state import RunState
from autoresearch.testbeds.common.sft_data import SFTData, build_sft_data
from autoresearch.testbeds.common.step_record import finish_step, step_record
from autoresearch.testbeds.common.train_step import micro_step, optimizer_step

__all__ = ["train", "AdvData", "build_data", "build_tokenizer", "load_policies", "TOKENIZER_FILE"]

_EVAL_SEED = 1_000_003
"""Offset of the held-out scoring's sampling seed from train.seed."""
TOKENIZER_FILE = "tokenizer.json"
"""The run's tokenizer, saved in the experiment folder (load_model, inference)."""


@dataclass
class AdvData:
    """Problems, tokenizer and SFT rows of a run."""

    tokenizer: Tokenizer
    train_problems: list[Problem]
    heldout: list[Problem]
    val: list[Problem]
    gen_sft: SFTData
    disc_sft: SFTData
    meta: dict[str, Any]


def load_run_problems(cfg: AdversarialConfig, judge: Judge | None, *, validate: bool = True
                      ) -> tuple[list[Problem], list[Problem], list[Problem]]:
    """(train, held-out, val) problems of `cfg.data.source`; references validated in the sandbox when `validate`."""
    d, e = cfg.data, cfg.eval
    kw: dict[str, Any] = {"seed": d.suite_seed, "path": d.path, "validate": validate, "validate_with": judge}
    train = load_problems(d.source, split="train", n=d.train_problems, **kw)
    heldout = load_problems(d.source, split="heldout", n=e.heldout_problems, **kw)
    val = (load_problems(d.source, split="val", n=e.val_problems, val_offset=e.heldout_problems, **kw)
           if e.val_problems > 0 else [])
    return train, heldout, val


def build_tokenizer(cfg: AdversarialConfig, texts: list[str]) -> Tokenizer:
    """Raw bytes, or a byte-level BPE trained on the SFT texts of both roles (cached by their hash)."""
    if cfg.data.tokenizer == "byte":
        return ByteTokenizer()
    digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()
    return cached_bpe(texts, cfg.data.vocab_size, digest, cache_root(cfg.data.cache_dir))


def build_data(cfg: AdversarialConfig, judge: Judge | None, tokenizer: Tokenizer | None = None,
               *, validate: bool = True) -> AdvData:
    """Problems, the tokenizer (given, e.g. init_from's, or trained on the SFT texts) and both roles' SFT rows."""
    train, heldout, val = load_run_problems(cfg, judge, validate=validate)
    gen_pairs = generator_pairs(train, cfg.stages)
    disc_pairs = discriminator_pairs(train, seed=cfg.data.suite_seed, n_stages=cfg.stages)
    tok = tokenizer or build_tokenizer(cfg, sft_texts(train, cfg.stages))
    gen_sft = build_sft_data(gen_pairs, tok, cfg.seq_len, pack=True, seed=cfg.train.seed)
    disc_sft = build_sft_data(disc_pairs, tok, cfg.seq_len, pack=True, seed=cfg.train.seed + 1)
    meta = {"tokenizer": tok.name, "vocab_size": tok.vocab_size, "train_problems": len(train),
            "heldout_problems": len(heldout), "val_problems": len(val), "gen_sft_pairs": len(gen_pairs),
            "gen_sft_rows": gen_sft.n_rows, "gen_sft_dropped": gen_sft.dropped, "disc_sft_pairs": len(disc_pairs),
            "disc_sft_rows": disc_sft.n_rows, "disc_sft_dropped": disc_sft.dropped}
    return AdvData(tok, train, heldout, val, gen_sft, disc_sft, meta)


def _init_generator(cfg: AdversarialConfig, exp: Experiment, device: torch.device) -> tuple[nn.Module, Tokenizer]:
    """The model and tokenizer of the codegen experiment `init_from` (through the registry, not its module)."""
    from autoresearch.testbeds.base import get_testbed

    src = open_experiment(cfg.init_from, root=exp.path.parent)
    spec = src.testbed()
    if spec is None:
        raise ConfigError(f"init_from={cfg.init_from!r} is not a trained testbed run; name a codegen experiment")
    loaded = get_testbed(spec).load_model(src, device=str(device))
    ctx = context_length(loaded.model)
    if ctx is not None and ctx < cfg.seq_len:
        raise ConfigError(f"init_from={cfg.init_from!r}: its model's context is {ctx} tokens, shorter than this run's "
                          f"seq_len {cfg.seq_len}; set gpt.seq_len={ctx} (and hrm.seq_len) or init from another run")
    return loaded.model, loaded.tokenizer


def load_policies(cfg: AdversarialConfig, exp: Experiment, device: str | torch.device = "cpu", *, best: bool = False
                  ) -> tuple[Policy, Policy]:
    """(generator, discriminator) of an experiment's latest (or best) checkpoint, with the run's saved tokenizer."""
    ckpts = CheckpointManager(exp.checkpoints_dir)
    state = ckpts.load_best(str(device)) if best else ckpts.load_latest(str(device))
    tok_path = exp.path / TOKENIZER_FILE
    if not tok_path.is_file():
        raise CheckpointError(f"{tok_path} is missing, so the models cannot be decoded; restore it from a backup")
    tok = load_tokenizer(tok_path)
    init_model = _init_generator(cfg, exp, torch.device(device))[0] if cfg.init_from else None  # its architecture
    gen = build_policy(cfg, tok, "generator", device, model=init_model)
    disc = build_policy(cfg, tok, "discriminator", device)
    gen.model.load_state_dict(state["model"])
    disc.model.load_state_dict(state["discriminator"])
    return gen.eval(), disc.eval()


class _SFTLoss(nn.Module):
    """model(x, y) -> answer-only cross-entropy for a policy whose model does not take labels (an HF model)."""

    def __init__(self, policy: Policy) -> None:
        super().__init__()
        self.policy = policy

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = self.policy._logits(x, torch.ones_like(x))
        return F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), ignore_index=-100)


def _sft_optimizers(cfg: AdversarialConfig, policy: Policy, precision: str) -> list[torch.optim.Optimizer]:
    if hasattr(policy.model, "param_groups"):
        return build_optimizers(policy.model, cfg.optim, precision=precision)
    opt = torch.optim.AdamW(policy.trainable_parameters(), lr=cfg.optim.adamw_lr, weight_decay=0.0)
    for g in opt.param_groups:
        g["peak_lr"] = g["lr"]
    return [opt]


def train(cfg: AdversarialConfig, exp: Experiment, *, resume: bool = False, progress: bool = False,
          testbed: str = "adversarial", from_stage: int | None = None) -> dict[str, Any]:
    """Train `cfg` into `exp`, score it, return the results (also written to results.yaml); `testbed` is the name
    recorded as `meta.testbed`. `resume` continues from the latest checkpoint; `from_stage=s` (with resume) restarts
    the RL schedule at stage s from the checkpoint saved at the end of stage s - 1 (0 = the end of SFT)."""
    t_wall = time.perf_counter()
    with exp.running(resume=resume):
        return _train(cfg, exp, resume=resume, progress=progress, testbed=testbed, from_stage=from_stage,
                      t_wall=t_wall)


def _train(cfg: AdversarialConfig, exp: Experiment, *, resume: bool, progress: bool, testbed: str,
           from_stage: int | None, t_wall: float) -> dict[str, Any]:
    # --- config, device, seeds -------------------------------------------------------------------------------
    cfg.check_budget()
    if from_stage is not None and not resume:
        raise ConfigError(f"from_stage={from_stage} restarts an existing run; pass resume=True (--resume exp-NNN)")
    config = to_dict(cfg)
    device = setup_device(cfg.train)
    S, total = cfg.sft_steps, cfg.steps
    SD = S + cfg.disc_sft_steps  # the first RL step
    slots = schedule(cfg)
    run = start_run(exp, config, cfg.train, device, testbed=testbed, resume=resume)
    prec = run.precision.precision
    seconds = {"sft_seconds": 0.0, "rl_seconds": 0.0, "eval_seconds": 0.0, "setup_seconds": 0.0}

    with Judge(cfg.reward) as judge:
        # --- problems, tokenizer, SFT data -------------------------------------------------------------------
        t0 = time.perf_counter()
        init_model, init_tok = _init_generator(cfg, exp, device) if cfg.init_from else (None, None)
        data = build_data(cfg, judge, init_tok)
        data.tokenizer.save(exp.path / TOKENIZER_FILE)
        equivalent: dict[str, list[str]] = {}

        def non_equivalent_mutants(p: Problem, n: int) -> list[str]:
            """Mutants of p's reference that fail at least one hidden test (an equivalent mutant cannot be caught)."""
            if p.id not in equivalent:
                codes = mutants(p, max(cfg.reward.mutant_targets, cfg.eval.mutants), seed=cfg.data.suite_seed)
                res = run_programs(judge, [(p, c, p.hidden_tests) for c in codes])
                equivalent[p.id] = [c for c, r in zip(codes, res, strict=True) if not r.passed]
            return equivalent[p.id][:n]

        # --- models: generator, discriminator, their frozen SFT references -----------------------------------
        gen = build_policy(cfg, data.tokenizer, "generator", device, model=init_model)
        disc = build_policy(cfg, data.tokenizer, "discriminator", device)
        ref_gen, ref_disc = reference_copy(gen), reference_copy(disc)
        others = {"discriminator": disc.model, "ref_generator": ref_gen.model, "ref_discriminator": ref_disc.model}
        params = sum(p.numel() for p in gen.model.parameters())

        # --- optimizers: SFT (kit: Muon + AdamW) per role, RL (AdamW) per role -------------------------------
        gen_sft_opts, disc_sft_opts = _sft_optimizers(cfg, gen, prec), _sft_optimizers(cfg, disc, prec)
        gen_rl_opt, disc_rl_opt = make_rl_optimizer(gen, cfg.rl), make_rl_optimizer(disc, cfg.rl)
        opts = [*gen_sft_opts, *disc_sft_opts, gen_rl_opt, disc_rl_opt]
        trainer = AdversarialTrainer(cfg, gen, disc, data.train_problems, judge, gen_opt=gen_rl_opt,
                                     disc_opt=disc_rl_opt, ref_generator=ref_gen, ref_discriminator=ref_disc,
                                     mutants=lambda p: non_equivalent_mutants(p, cfg.reward.mutant_targets))
        ckpts = CheckpointManager(exp.checkpoints_dir)
        seconds["setup_seconds"] = time.perf_counter() - t0

        # --- resume or fresh start -----------------------------------------------------------------------------
        extras: dict[str, Any] = {"sft_scores": None, "best_score": None, "best_stage": None, "val": {},
                                  "stage_metrics": {}, "seconds": seconds}
        if resume:
            if from_stage is not None:
                state = ckpts.load_stage_start(from_stage, map_location=str(device))
                _restore(state, exp, config, run, gen.model, opts)
            else:
                state = resume_run(exp, config, run, testbed=testbed, device=device, model=gen.model,
                                   optimizers=opts, streams={})
            for key, module in others.items():
                module.load_state_dict(state[key])
            extras = state["adversarial"]
            seconds = extras["seconds"]
            for name, st in extras["stage_metrics"].items():
                trainer.stage_stats[name] = st

        def state_now() -> dict[str, Any]:
            extras["stage_metrics"] = dict(trainer.stage_stats)
            return checkpoint_state(run, config, gen.model, opts, {}, **{k: m.state_dict() for k, m in others.items()},
                                    adversarial=extras, phase=_phase(run.step, S, SD), stage=_stage_of(run.step, SD, slots))

        def evaluate_val(stage: int) -> None:
            """Val scores of the current models; the best checkpoint when they beat it."""
            if not data.val:
                return
            t = time.perf_counter()
            val = trainer.val_scores(data.val)
            extras["val"][str(stage)] = val
            new = ckpts.consider_best(run.step, state_now(), gen_reward=val["gen_reward"], validity=val["validity"],
                                      stage=stage, previous=extras["best_score"])
            if new is not None:
                extras["best_score"], extras["best_stage"] = new, stage
            seconds["eval_seconds"] += time.perf_counter() - t

        def end_of_sft() -> None:
            """The references take the SFT weights; score before RL; stage 0's end and the first best."""
            ref_gen.model.load_state_dict(gen.model.state_dict())
            ref_disc.model.load_state_dict(disc.model.state_dict())
            if cfg.eval.score and run.step < total:
                t = time.perf_counter()
                extras["sft_scores"] = _score(cfg, trainer, data.heldout, non_equivalent_mutants)
                seconds["eval_seconds"] += time.perf_counter() - t
            if run.step < total:
                evaluate_val(0)
                ckpts.save_stage_end(0, run.step, state_now())

        # --- loop: generator SFT, discriminator SFT, then the RL schedule ------------------------------------------
        bar = TrainProgress(total, enabled=progress)
        bar.advance(run.step)
        B, accum = cfg.train.batch_size, cfg.train.grad_accum
        while run.step < total and not run.out_of_time(cfg.train.max_seconds):
            t0 = time.perf_counter()
            step = run.step
            if step < SD:  # SFT of one role on its canonical texts (answer-only loss)
                role_gen = step < S
                policy, sft, sopts = (gen, data.gen_sft, gen_sft_opts) if role_gen else (disc, data.disc_sft,
                                                                                        disc_sft_opts)
                local = step if role_gen else step - S
                lr = set_lr(sopts, lr_multiplier(local, S if role_gen else SD - S, cfg.optim))
                policy.train()
                fwd = policy.model if hasattr(policy.model, "param_groups") else _SFTLoss(policy)
                loss_sum = torch.zeros((), device=device)
                for micro in range(accum):
                    x, y = sft.batch(local * accum + micro, B)
                    loss_sum += micro_step(fwd, x.to(device), y.to(device), device, prec, accum)
                grad_norm = optimizer_step(sopts, policy.trainable_parameters(), cfg.optim.grad_clip)
                policy.eval()
                phase = "gen_sft" if role_gen else "disc_sft"
                finish_step(run, exp, bar, cfg.train, t0=t0, loss_sum=loss_sum, lr=lr, grad_norm=grad_norm,
                            tokens=cfg.tokens_per_step, total_steps=total, device=device, phase=phase)
                # the last SFT loss of each role, whatever train.log_every (a short SFT may log no line of it)
                extras.setdefault("sft_loss", {})[phase] = float(loss_sum)
                seconds["sft_seconds"] += time.perf_counter() - t0
            else:  # one RL slot: a generator or a discriminator step of its stage
                rec = trainer.step(step - SD)
                dt = time.perf_counter() - t0
                seconds["rl_seconds"] += dt
                _finish_rl_step(run, exp, bar, cfg, rec, dt, device)
            if run.status != "ok":
                break
            if run.step == SD:
                end_of_sft()
            elif run.step > SD and (run.step - SD == len(slots) or
                                       slots[run.step - SD][0] != slots[run.step - SD - 1][0]):
                stage = slots[run.step - SD - 1][0].index
                evaluate_val(stage)
                ckpts.save_stage_end(stage, run.step, state_now())
            if cfg.train.checkpoint_every and run.step % cfg.train.checkpoint_every == 0 and run.step < total:
                ckpts.save(run.step, state_now())
        bar.close()

        # --- score after RL, results -------------------------------------------------------------------------------
        results: dict[str, Any] = {"status": run.status}
        if run.status == "ok":
            ckpts.save(run.step, state_now())
        scores: dict[str, Any] = {}
        if run.status == "ok" and cfg.eval.score:
            t = time.perf_counter()
            rl_ran = run.step > SD
            scores = (_score(cfg, trainer, data.heldout, non_equivalent_mutants)
                      if rl_ran or extras["sft_scores"] is None else dict(extras["sft_scores"]))
            seconds["eval_seconds"] += time.perf_counter() - t
        before = extras["sft_scores"] if extras["sft_scores"] is not None else scores
        results.update(scores)
        results.update({f"{k}_sft": v for k, v in before.items() if isinstance(v, (int, float))})
        results.update({
            "gen_sft_loss": extras.get("sft_loss", {}).get("gen_sft", math.nan),
            "disc_sft_loss": extras.get("sft_loss", {}).get("disc_sft", math.nan),
            "stage_metrics": trainer.stage_metrics(),
            "val": extras["val"],
            "best_score": extras["best_score"],
            "best_stage": extras["best_stage"],
            **perf_summary(run, _flops_per_token(gen.model, cfg.seq_len, params), device, cfg.train.seed, t_wall),
            **{k: round(v, 3) for k, v in seconds.items()},
            "steps": run.step,
            "sft_steps": min(run.step, SD),
            "rl_steps": max(0, run.step - SD),
            "tokens": run.tokens,
            "params": params,
            "arch": cfg.arch,
            "stages": cfg.stages,
            "rl_mode": cfg.rl.mode,
            "sandbox_level": judge.level,
            "data": data.meta,
        })
    if run.error:
        results["error"] = run.error
    exp.write_results(results)
    return results


def _restore(state: dict[str, Any], exp: Experiment, config: dict[str, Any], run: RunState, model: nn.Module,
             opts: list[torch.optim.Optimizer]) -> None:
    """resume_run's restore for a chosen (stage-end) state: models, optimizers, RNG, counters, log cut back."""
    if state.get("config") != config:
        raise CheckpointError(f"{exp.config_path} changed since the stage checkpoint was saved; restore the saved "
                              "values to resume from a stage, or start a new run")
    model.load_state_dict(state["model"])
    for opt, sd in zip(opts, state["optimizers"], strict=True):
        opt.load_state_dict(sd)
    set_rng_state(state["rng"])
    run.step, run.tokens, run.first_loss = state["step"], state["tokens"], state["first_loss"]
    run.train_seconds = state["train_seconds"]
    apply_precision(opts, run.precision.precision)
    run.thr.add(state["thr_tokens"], state["thr_seconds"])
    exp.truncate_log(run.step)
    exp.write_results({"status": "running", "resumed_from_step": run.step, "resumed_from_stage": state["stage_end"]})


def _finish_rl_step(run: RunState, exp: Experiment, bar: TrainProgress, cfg: AdversarialConfig, rec: dict[str, Any],
                    dt: float, device: torch.device) -> None:
    """finish_step for an RL step: count it (its sampled tokens), log it with its RL fields, check divergence. Every
    RL step is logged (whatever train.log_every): they are few, slow, and their rewards are the experiment's data."""
    loss = float(rec["loss"])
    run.advance(loss, int(rec["tokens"]), dt)
    fields = {k: v for k, v in rec.items() if k not in ("loss", "tokens", "grad_norm")}
    record = step_record(run, loss, cfg.rl.lr, float(rec.get("grad_norm", 0.0)), device, **fields)
    run.check_diverged(loss, cfg.train.diverge_loss)  # marks the run (status, error) on NaN or blow-up
    exp.log(record)
    bar.update(run.step, loss, run.thr.tokens_per_s)


def _phase(step: int, S: int, SD: int) -> str:
    """The phase of step index `step`: generator SFT before S, discriminator SFT before SD (= S + D), then RL."""
    return "gen_sft" if step < S else "disc_sft" if step < SD else "rl"


def _stage_of(step: int, SD: int, slots: list[Any]) -> int:
    """The RL stage the next step belongs to (0 during SFT, which ends at step index SD)."""
    i = step - SD
    return slots[i][0].index if 0 <= i < len(slots) else (slots[-1][0].index if slots and i >= 0 else 0)


def _flops_per_token(model: nn.Module, seq_len: int, params: int) -> float:
    fn = getattr(model, "flops_per_token", None)
    return float(fn(seq_len)) if callable(fn) else 6.0 * params


def _score(cfg: AdversarialConfig, trainer: AdversarialTrainer, problems: list[Problem], mutant_pool: Any
           ) -> dict[str, Any]:
    """Held-out metrics of the current models (trainer.heldout_scores); the training's RNG untouched. The sampling
    draws from one fixed seed every time (common random numbers): scored before and after RL, unchanged weights give
    identical figures, so a before/after difference is the weights', not the sampler's (measured on the tiny preset:
    the same generator scored 0.7525 and 0.71 sampled pass@1 with two different RNG states)."""
    with torch.no_grad(), preserved_rng():
        torch.manual_seed(cfg.train.seed + _EVAL_SEED)
        return trainer.heldout_scores(problems, mutant_codes=[mutant_pool(p, cfg.eval.mutants) for p in problems])
