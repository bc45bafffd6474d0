"""The LM training loop: determinism, exact resume, divergence, crash status, budgets."""

from __future__ import annotations

import copy

import pytest

from autoresearch.errors import CheckpointError
from autoresearch.harness.registry import new_experiment
from autoresearch.testbeds.lm.train import train


def _losses(exp):
    return [(r["step"], r["loss"]) for r in exp.read_log() if "loss" in r]


def test_run_writes_complete_folder_and_learns(micro_cfg, tmp_path):
    micro_cfg.train.train_tokens = 4 * 32 * 30
    exp = new_experiment(tmp_path)
    res = train(micro_cfg, exp)
    assert res["status"] == "ok" and res["steps"] == 30 and res["tokens"] == 3840
    assert res["val_loss"] < res["val_loss_init"] - 0.3
    cfg = exp.read_config()
    assert cfg["model"]["d_model"] == 32 and cfg["meta"]["seed"] == 0 and "versions" in cfg["meta"]
    assert "commit" in cfg["meta"]["git"] and "hardware" in cfg["meta"]
    log = exp.read_log()
    assert len(log) == 30 and set(log[0]) >= {"step", "tokens", "loss", "lr", "grad_norm", "tokens_per_s", "memory_mb"}
    assert exp.read_results()["val_bpb"] == res["val_bpb"] > 0
    assert any(exp.checkpoints_dir.glob("step-*.pt"))


def test_deterministic_for_a_seed(micro_cfg, tmp_path):
    a = new_experiment(tmp_path)
    b = new_experiment(tmp_path)
    c = new_experiment(tmp_path)
    train(micro_cfg, a)
    train(copy.deepcopy(micro_cfg), b)
    other = copy.deepcopy(micro_cfg)
    other.train.seed = 1
    train(other, c)
    assert _losses(a) == _losses(b)
    assert _losses(a) != _losses(c)


class _Crash(RuntimeError):
    pass


def test_resume_reproduces_uninterrupted_losses_bit_for_bit(micro_cfg, tmp_path):
    micro_cfg.train.train_tokens = 4 * 32 * 12
    micro_cfg.train.checkpoint_every = 4
    full = new_experiment(tmp_path)
    train(micro_cfg, full)

    def crash_at_10(step, record):
        if step == 10:
            raise _Crash("simulated crash")

    broken = new_experiment(tmp_path)
    with pytest.raises(_Crash):
        from autoresearch.testbeds.lm import train as train_mod

        train_mod.train(micro_cfg, broken, on_step=crash_at_10)
    assert broken.read_results()["status"] == "crashed"
    assert "simulated crash" in broken.errors_path.read_text()
    res = train(micro_cfg, broken, resume=True)  # resumes from the step-8 checkpoint
    assert res["status"] == "ok"
    assert _losses(broken) == _losses(full)  # steps 9..12 recomputed, equal bit for bit; no duplicated lines
    assert res["val_loss"] == full.read_results()["val_loss"]


def test_resume_without_checkpoint_is_clear(micro_cfg, tmp_path):
    exp = new_experiment(tmp_path)
    with pytest.raises(CheckpointError, match="no checkpoint to resume from"):
        train(micro_cfg, exp, resume=True)


def test_divergence_stops_fast(micro_cfg, tmp_path):
    micro_cfg.train.train_tokens = 4 * 32 * 50
    micro_cfg.optim.optimizer = "adamw"
    micro_cfg.optim.adamw_lr = 50.0
    micro_cfg.optim.grad_clip = 0.0
    exp = new_experiment(tmp_path)
    res = train(micro_cfg, exp)
    assert res["status"] == "diverged", res
    assert res["steps"] < 50 and "at step" in res["error"]
    assert exp.read_results()["status"] == "diverged"


def test_grad_accum_and_time_budget(micro_cfg, tmp_path):
    micro_cfg.train.grad_accum = 2
    micro_cfg.train.train_tokens = 4 * 2 * 32 * 3
    res = train(micro_cfg, new_experiment(tmp_path))
    assert res["steps"] == 3 and res["tokens"] == 768
    micro_cfg.train.train_tokens = 4 * 2 * 32 * 10_000
    micro_cfg.train.max_seconds = 0.5
    res = train(micro_cfg, new_experiment(tmp_path))
    assert res["status"] == "ok" and 0 < res["steps"] < 10_000 and res["train_seconds"] >= 0.5


def test_adamw_only_and_flags_train(micro_cfg, tmp_path):
    for sets in ({"optimizer": "adamw"}, {"schedule": "cosine", "warmup_frac": 0.2}):
        cfg = copy.deepcopy(micro_cfg)
        for k, v in sets.items():
            setattr(cfg.optim, k, v)
        assert train(cfg, new_experiment(tmp_path))["status"] == "ok"


@pytest.mark.slow
def test_compiled_run_matches_eager(micro_cfg, tmp_path):
    micro_cfg.train.train_tokens = 4 * 32 * 6
    eager = new_experiment(tmp_path)
    train(micro_cfg, eager)
    compiled_cfg = copy.deepcopy(micro_cfg)
    compiled_cfg.train.compile = True
    compiled = new_experiment(tmp_path)
    res = train(compiled_cfg, compiled)
    assert res["status"] == "ok"
    for (s1, a), (s2, b) in zip(_losses(eager), _losses(compiled), strict=True):
        assert s1 == s2 and a == pytest.approx(b, rel=2e-2)


# --- issue 8: resume safety ------------------------------------------------------------------------------------------

def _crashed_run(cfg, root, at=10):
    """A run with checkpoints every 4 steps that crashed at step `at` (checkpoints 4 and 8 on disk)."""
    def crash(step, record):
        if step == at:
            raise _Crash("simulated crash")

    exp = new_experiment(root)
    with pytest.raises(_Crash):
        train(cfg, exp, on_step=crash)
    return exp


@pytest.fixture
def resumable(micro_cfg, tmp_path):
    micro_cfg.train.train_tokens = 4 * 32 * 12
    micro_cfg.train.checkpoint_every = 4
    full = new_experiment(tmp_path)
    train(micro_cfg, full)
    return micro_cfg, full, _crashed_run(micro_cfg, tmp_path)


def test_resume_skips_a_truncated_newest_checkpoint_and_still_matches(resumable, capsys):
    cfg, full, broken = resumable
    newest = broken.checkpoints_dir / "step-0000008.pt"
    newest.write_bytes(newest.read_bytes()[:1000])
    (broken.checkpoints_dir / ".step-0000012.pt.kill.tmp").write_bytes(b"half")  # a kill during a save
    (broken.path / ".results.yaml.kill.tmp").write_bytes(b"half")
    res = train(cfg, broken, resume=True)
    err = capsys.readouterr().err
    assert "step-0000008.pt is truncated" in err and "resuming from step-0000004.pt" in err
    assert res["status"] == "ok"
    assert _losses(broken) == _losses(full)
    assert not list(broken.path.rglob(".*.tmp"))


def test_resume_after_config_edit_is_one_line_not_a_size_mismatch(resumable):
    import dataclasses

    import yaml

    cfg, _, broken = resumable
    saved = yaml.safe_load(broken.config_path.read_text())
    saved["model"]["d_model"] = 64
    broken.config_path.write_text(yaml.safe_dump(saved))
    changed = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, d_model=64))
    with pytest.raises(CheckpointError, match=r"config.yaml changed since checkpoint step-0000008.pt was saved "
                                              r"\(model.d_model: 32 -> 64\)") as e:
        train(changed, broken, resume=True)
    assert "\n" not in str(e.value)


def test_resume_refuses_a_garbled_log_line_with_its_number(resumable):
    from autoresearch.errors import RegistryError

    cfg, _, broken = resumable
    lines = broken.log_path.read_text().splitlines()
    lines[2] = "#garbled#"
    broken.log_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(RegistryError, match=r"log.jsonl line 3 is not a JSON object \('#garbled#'\); repair or delete"):
        train(cfg, broken, resume=True)
    assert broken.log_path.read_text().splitlines()[2] == "#garbled#"  # kept for the user to repair


def test_disk_full_at_checkpoint_write_is_one_line_and_resumable(micro_cfg, tmp_path, monkeypatch):
    import errno

    import autoresearch.harness.checkpoint as ckpt

    micro_cfg.train.train_tokens = 4 * 32 * 12
    micro_cfg.train.checkpoint_every = 4
    full = new_experiment(tmp_path)
    train(micro_cfg, full)
    real = ckpt.atomic_write_bytes

    def fill_at_8(path, data):
        if path.name == "step-0000008.pt":
            raise OSError(errno.ENOSPC, "No space left on device", str(path) + ".x.tmp")
        real(path, data)

    monkeypatch.setattr(ckpt, "atomic_write_bytes", fill_at_8)
    exp = new_experiment(tmp_path)
    with pytest.raises(CheckpointError, match=r"no space left on device \(ENOSPC\); free space .*continue with --resume"):
        train(micro_cfg, exp)
    monkeypatch.undo()
    assert exp.read_results()["status"] == "crashed"
    assert [p.name for p in exp.checkpoints_dir.glob("*.pt")] == ["step-0000004.pt"]
    assert train(micro_cfg, exp, resume=True)["status"] == "ok" and _losses(exp) == _losses(full)


def test_resume_while_another_process_runs_it_is_refused(resumable):
    from autoresearch.errors import RegistryError

    cfg, _, broken = resumable
    before = broken.results_path.read_bytes()
    with broken.running(resume=True), pytest.raises(RegistryError, match="already being trained by pid"):
        train(cfg, broken, resume=True)
    assert broken.results_path.read_bytes() == before
