"""The adversarial checkpoint manager (testbeds/adversarial/checkpoints.py): latest for resume, stage ends for a
resume from a given stage, the best checkpoint by 0.7 x generator reward + 0.3 x test validity, and one-line errors
for damaged or missing files. The end-to-end resume from a stage is in test_adv_train.py."""

from __future__ import annotations

import math

import pytest
import torch

from autoresearch.errors import CheckpointError
from autoresearch.testbeds.adversarial.checkpoints import CheckpointManager, best_score


def _state(x: float) -> dict:
    return {"model": {"w": torch.full((3,), x)}, "discriminator": {"w": torch.full((3,), -x)}, "rng": {},
            "adversarial": {"best_score": None}}


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg, msg
    return msg


def _flip_byte(path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_best_score_is_the_seeds_rule():
    assert best_score(1.0, 0.0) == pytest.approx(0.7)
    assert best_score(0.0, 1.0) == pytest.approx(0.3)
    assert best_score(0.5, 0.5) == pytest.approx(0.5)
    assert best_score(math.nan, 1.0) == pytest.approx(0.3)  # no signal counts 0, never NaN


def test_latest_keeps_the_newest_two(tmp_path):
    m = CheckpointManager(tmp_path)
    assert m.latest() is None
    for step in (1, 2, 3):
        m.save(step, _state(step))
    assert m.latest().name == "step-0000003.pt"
    assert sorted(p.name for p in tmp_path.glob("step-*.pt")) == ["step-0000002.pt", "step-0000003.pt"]
    assert torch.equal(m.load_latest()["model"]["w"], torch.full((3,), 3.0))


def test_best_is_kept_only_when_the_score_improves(tmp_path):
    m = CheckpointManager(tmp_path)
    assert m.best_info() is None
    first = m.consider_best(4, _state(4), gen_reward=0.2, validity=0.5, stage=0, previous=None)
    assert first == pytest.approx(0.7 * 0.2 + 0.3 * 0.5)
    assert m.consider_best(6, _state(6), gen_reward=0.1, validity=0.6, stage=1, previous=first) is None  # 0.25 < 0.29
    assert m.consider_best(7, _state(7), gen_reward=0.2, validity=0.5, stage=2, previous=first) is None  # a tie keeps
    better = m.consider_best(8, _state(8), gen_reward=0.5, validity=0.5, stage=3, previous=first)
    assert better == pytest.approx(0.5)
    info = m.best_info()
    assert info["step"] == 8 and info["stage"] == 3 and info["score"] == pytest.approx(0.5)
    best = m.load_best()
    assert best["step"] == 8 and best["best_score"] == pytest.approx(0.5)
    assert torch.equal(best["discriminator"]["w"], torch.full((3,), -8.0))
    assert [p.name for p in m.best_dir.glob("step-*.pt")] == ["step-0000008.pt"]  # one best only
    assert m.latest() is None  # the best folder is not the resume folder


def test_stage_ends_resume_the_next_stage(tmp_path):
    m = CheckpointManager(tmp_path)
    for stage, step in [(0, 10), (1, 14), (2, 18)]:
        m.save_stage_end(stage, step, _state(step))
    assert m.stages_saved() == [0, 1, 2]
    state = m.load_stage_start(2)  # stage 2 starts from the end of stage 1
    assert state["step"] == 14 and state["stage_end"] == 1
    assert m.load_stage_start(1)["step"] == 10  # stage 1 starts from the end of SFT
    with pytest.raises(CheckpointError) as e:
        m.load_stage_start(5)
    msg = _one_line(e)
    assert "end of stage 4" in msg and "stages that can be resumed: 1, 2, 3" in msg
    with pytest.raises(CheckpointError, match="must be >= 1"):
        m.load_stage_start(0)


def test_a_corrupted_checkpoint_is_a_one_line_error(tmp_path):
    m = CheckpointManager(tmp_path)
    m.save(5, _state(5))
    m.consider_best(5, _state(5), gen_reward=0.3, validity=0.3, stage=0, previous=None)
    m.save_stage_end(0, 5, _state(5))
    _flip_byte(tmp_path / "step-0000005.pt")
    _flip_byte(m.best_dir / "step-0000005.pt")
    with pytest.raises(CheckpointError) as e:
        m.load_latest()
    assert "is corrupted" in _one_line(e) and "step-0000005.pt" in str(e.value)
    with pytest.raises(CheckpointError) as e:
        m.load_best()
    assert "is corrupted" in _one_line(e) and "best" in str(e.value)
    (m.stage_dir(0) / "step-0000005.pt").write_bytes(b"short")
    with pytest.raises(CheckpointError) as e:
        m.load_stage_start(1)
    assert "is truncated" in _one_line(e)
    (m.best_dir / "best.yaml").write_text("score: [unclosed\n")
    with pytest.raises(CheckpointError) as e:
        m.best_info()
    assert "best.yaml is damaged" in _one_line(e)


def test_missing_checkpoints_say_what_to_do(tmp_path):
    m = CheckpointManager(tmp_path / "checkpoints")
    with pytest.raises(CheckpointError) as e:
        m.load_latest()
    assert "holds no checkpoint" in _one_line(e)
    with pytest.raises(CheckpointError) as e:
        m.load_best()
    assert "no best checkpoint" in _one_line(e)
    with pytest.raises(CheckpointError) as e:
        m.load_stage_start(1)
    assert "stages that can be resumed: none" in _one_line(e)
