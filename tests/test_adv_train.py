"""The adversarial training loop end to end on micro models (testbeds/adversarial/train.py): results and log keys,
the experiment's files, resume bit-exact from an SFT and from an RL checkpoint, resume from a given stage, rl.mode
none, and the one-line refusals."""

from __future__ import annotations

import math
import shutil

import pytest

from autoresearch.errors import ConfigError
from autoresearch.harness.checkpoint import load_checkpoint, save_checkpoint
from autoresearch.harness.registry import Experiment, new_experiment
from autoresearch.testbeds import Testbed, get_testbed
from autoresearch.testbeds.adversarial.checkpoints import CheckpointManager
from tests.conftest import adversarial_micro_overrides

METRICS = ("pass@1", "pass@1_sft", "pass@1_greedy", "gen_reward", "test_validity", "catch_rate", "mutation_score")


def _cfg(cache, *more: str):
    tb = get_testbed("adversarial")
    return tb, tb.make_config("tiny", [*adversarial_micro_overrides(cache), *more])


@pytest.fixture(scope="module")
def run(tmp_path_factory, cache_dir):
    """One micro run (code stage, N=1, K=1: 4 SFT steps per role, 4 RL steps, checkpoints every 5 steps)."""
    tb, cfg = _cfg(cache_dir, "rl.k_alternations=1", "train.checkpoint_every=5")
    exp = new_experiment(tmp_path_factory.mktemp("adv") / "experiments")
    return tb, cfg, exp, tb.train(cfg, exp)


def test_a_run_reports_scores_before_and_after_rl(run):
    tb, cfg, exp, res = run
    assert res["status"] == "ok" and res["steps"] == cfg.steps == 12
    assert (res["sft_steps"], res["rl_steps"]) == (8, 4)
    missing = [k for k in (*Testbed.RESULT_KEYS, *tb.required_results, *METRICS) if k not in res]
    assert not missing, missing
    assert all(0.0 <= res[k] <= 1.0 for k in METRICS if k != "gen_reward")
    assert -0.5 <= res["gen_reward"] <= 1.0
    assert exp.read_results()["pass@1"] == res["pass@1"]
    assert set(res["stage_metrics"]) == {"code"} and res["stage_metrics"]["code"]["gen_steps"] == 2.0
    assert res["sandbox_level"] in ("strict", "reduced") and res["eval_seconds"] > 0


def test_log_lines_carry_step_loss_tokens_and_phase(run):
    _, _, exp, _ = run
    log = exp.read_log()
    assert [r["step"] for r in log] == list(range(1, 13))
    assert all({"step", "loss", "tokens", "phase"} <= set(r) for r in log)
    assert [r["phase"] for r in log] == ["gen_sft"] * 4 + ["disc_sft"] * 4 + ["rl"] * 4
    rl = [r for r in log if r["phase"] == "rl"]
    assert [r["role"] for r in rl] == ["disc", "gen", "disc", "gen"] and {r["stage"] for r in rl} == {"code"}
    assert all({"reward_mean", "groups_kept", "updates", "grad_norm"} <= set(r) for r in rl)
    tokens = [r["tokens"] for r in log]
    assert tokens == sorted(tokens) and tokens[7] == 8 * 512 and tokens[-1] > tokens[7]  # RL counts sampled tokens


def test_the_experiment_holds_tokenizer_and_all_checkpoints(run):
    tb, cfg, exp, res = run
    assert (exp.path / "tokenizer.json").is_file()
    m = CheckpointManager(exp.checkpoints_dir)
    assert m.latest().name == "step-0000012.pt"
    assert m.stages_saved() == [0, 5]  # end of SFT, end of the code stage
    final = m.load_latest()
    assert {"model", "discriminator", "ref_generator", "ref_discriminator", "optimizers", "rng", "adversarial"} <= \
        set(final)
    assert len(final["optimizers"]) == 6  # SFT Muon + AdamW per role, RL AdamW per role
    assert m.best_info()["stage"] in (0, 5)
    loaded = tb.load_model(exp)
    assert all(loaded.model.state_dict()[k].equal(v) for k, v in final["model"].items())  # the generator


def _resume_from(tb, cfg, src: Experiment, k: int, dst_path) -> Experiment:
    state = load_checkpoint(src.checkpoints_dir / f"step-{k:07d}.pt")
    dst = Experiment(dst_path)
    dst.checkpoints_dir.mkdir(parents=True)
    shutil.copy(src.config_path, dst.config_path)
    shutil.copy(src.log_path, dst.log_path)
    save_checkpoint(dst.checkpoints_dir, k, {key: v for key, v in state.items() if key != "step"})
    tb.train(cfg, dst, resume=True)
    return dst


_TIMING = ("tokens_per_s", "elapsed_s", "memory_mb", "step_seconds")


def _losses(exp: Experiment, after: int = 0) -> list[dict]:
    """Every logged field of the steps after `after` but the timings: losses, and for RL steps the sampled tokens,
    rewards and kept groups too (so the comparison also holds when an RL step's groups were all dropped)."""
    return [{k: v for k, v in r.items() if k not in _TIMING} for r in exp.read_log() if r["step"] > after]


@pytest.mark.slow
def test_resume_from_an_rl_checkpoint_is_bit_exact(run, tmp_path):
    tb, cfg, exp, res = run
    dst = _resume_from(tb, cfg, exp, 10, tmp_path / "resumed")  # step 10 = the second RL step
    assert _losses(dst) == _losses(exp) and len(_losses(dst, 10)) == 2
    again = dst.read_results()
    assert again["pass@1"] == res["pass@1"] and again["pass@1_sft"] == res["pass@1_sft"]
    assert again["stage_metrics"] == res["stage_metrics"]


def test_mode_none_is_sft_only(cache_dir, tmp_path):
    # log_every above the SFT steps: no SFT line is logged, the last SFT losses are still reported (a user found NaN)
    tb, cfg = _cfg(cache_dir, "rl.mode=none", "eval.coherence_problems=0", "train.log_every=50")
    exp = new_experiment(tmp_path)
    res = tb.train(cfg, exp)
    assert res["steps"] == 8 and res["rl_steps"] == 0
    assert not [r for r in exp.read_log() if r.get("phase") == "gen_sft"]  # only the run's last step is logged
    assert math.isfinite(res["gen_sft_loss"]) and math.isfinite(res["disc_sft_loss"])
    assert res["pass@1"] == res["pass@1_sft"] and res["test_validity"] == res["test_validity_sft"]


def test_max_steps_cuts_inside_sft(cache_dir, tmp_path):
    tb, cfg = _cfg(cache_dir, "max_steps=3", "eval.coherence_problems=0", "eval.mutants=0")
    exp = new_experiment(tmp_path)
    res = tb.train(cfg, exp)
    assert res["steps"] == 3 and res["tokens"] == 3 * cfg.tokens_per_step
    assert [r["phase"] for r in exp.read_log()] == ["gen_sft", "gen_sft", "gen_sft"]
    assert math.isnan(res["disc_sft_loss"]) and res["pass@1"] == res["pass@1_sft"]


def test_from_stage_needs_resume(cache_dir, tmp_path):
    tb, cfg = _cfg(cache_dir)
    from autoresearch.testbeds.adversarial.train import train

    with pytest.raises(ConfigError, match="from_stage=2 restarts an existing run; pass resume=True"):
        train(cfg, new_experiment(tmp_path), from_stage=2)


@pytest.mark.slow
def test_resume_from_a_stage_reproduces_the_rest_of_the_run(cache_dir, tmp_path):
    from autoresearch.testbeds.adversarial.train import train

    tb, cfg = _cfg(cache_dir, "stages=5", "gpt.seq_len=256", "rl.prompts_per_step=1", "rl.max_new_tokens=24",
                   "eval.coherence_problems=0", "eval.mutants=0", "eval.val_problems=1", "train.train_tokens=1024")
    exp = new_experiment(tmp_path / "a")
    res = train(cfg, exp, testbed=tb.spec)
    assert res["steps"] == 2 + 10  # 1 + 1 SFT, then (disc, gen) x 5 stages
    assert CheckpointManager(exp.checkpoints_dir).stages_saved() == [0, 1, 2, 3, 4, 5]
    copy = tmp_path / "b"
    shutil.copytree(exp.path, copy)
    b = Experiment(copy)
    b.write_results({"status": "running"})
    train(cfg, b, resume=True, from_stage=3, testbed=tb.spec)  # from the end of stage 2 (plan): step 2 + 4
    assert _losses(b) == _losses(exp)
    assert b.read_results()["pass@1"] == res["pass@1"]


def test_max_steps_is_range_checked(cache_dir):
    tb = get_testbed("adversarial")
    with pytest.raises(ConfigError, match=r"`max_steps` must be in \[0, 1000000000\], got -1"):
        tb.make_config("tiny", ["max_steps=-1"])


@pytest.mark.slow
def test_init_from_a_codegen_experiment_takes_its_model_and_tokenizer(cache_dir, tmp_path):
    from tests.conftest import codegen_micro_overrides

    codegen = get_testbed("codegen")
    root = tmp_path / "experiments"
    src = new_experiment(root)
    codegen.train(codegen.make_config("tiny", [*codegen_micro_overrides(cache_dir), "hrm.seq_len=128",
                                               "train.train_tokens=5120", "eval.score=false"]), src)
    source = codegen.load_model(src)
    tb, cfg = _cfg(cache_dir, f"init_from={src.id}", "eval.coherence_problems=0", "eval.mutants=0")
    exp = new_experiment(root)
    assert tb.train(cfg, exp)["status"] == "ok"
    loaded = tb.load_model(exp)
    assert type(loaded.model) is type(source.model)  # the codegen architecture (HRM), not a fresh GPT
    assert loaded.tokenizer.encode("def f(x):\n") == source.tokenizer.encode("def f(x):\n")
    _, short = _cfg(cache_dir, f"init_from={src.id}", "gpt.seq_len=256")
    with pytest.raises(ConfigError, match="its model's context is 128 tokens, shorter than this run's seq_len 256"):
        tb.train(short, new_experiment(root))


def test_scoring_samples_from_a_fixed_seed_and_leaves_the_rng_alone(cache_dir):
    """Held-out sampling draws from one fixed seed (common random numbers: unchanged weights score the same before
    and after RL, although RL drew from the RNG in between), and the training's RNG stream is left as it was."""
    import torch

    from autoresearch.testbeds.adversarial.train import _score

    _, cfg = _cfg(cache_dir)

    class Stub:
        def heldout_scores(self, problems, mutant_codes=None):
            return {"draw": float(torch.rand(()))}

    torch.manual_seed(1)
    a = _score(cfg, Stub(), [], lambda p, n: [])  # type: ignore[arg-type]
    after_a = torch.rand(())
    torch.manual_seed(2)
    b = _score(cfg, Stub(), [], lambda p, n: [])  # type: ignore[arg-type]
    assert a == b
    torch.manual_seed(1)
    assert torch.equal(after_a, torch.rand(()))  # as if no scoring had happened


@pytest.mark.parametrize("steps", [3, 4, 6, 7, 12, 20])
def test_short_runs_have_exactly_the_steps_asked_for(steps):
    tb = get_testbed("adversarial")
    for preset in ("tiny", "gpu"):
        base = tb.preset_config(preset)
        cfg = tb.with_overrides(base, tb.short_run_overrides(steps, base))
        assert cfg.steps == steps
        rl = max(0, steps - 2 * cfg.sft_steps)
        assert rl == (0 if steps < 6 else 2 + steps % 2 if steps < 12 else 4 + steps % 2)  # RL from 6 steps on
        assert cfg.sft_steps >= 2 or steps < 6  # the SFT loss the check reads has >= 2 points
