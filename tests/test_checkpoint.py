"""Checkpoints: roundtrip, retention, and clear errors for truncated or corrupted files."""

from __future__ import annotations

import pytest
import torch

from autoresearch.errors import CheckpointError
from autoresearch.harness.checkpoint import (
    latest_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)


def test_roundtrip_and_keep(tmp_path):
    for step in (1, 2, 3):
        save_checkpoint(tmp_path, step, {"w": torch.full((3,), float(step))}, keep=2)
    latest = latest_checkpoint(tmp_path)
    assert latest.name == "step-0000003.pt"
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["step-0000002.pt", "step-0000003.pt"]
    state = load_checkpoint(latest)
    assert state["step"] == 3 and torch.equal(state["w"], torch.full((3,), 3.0))


def test_truncated_checkpoint(tmp_path):
    path = save_checkpoint(tmp_path, 5, {"w": torch.randn(100)})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"truncated \(\d+ bytes, expected \d+\); delete it"):
        load_checkpoint(path)


def test_corrupted_checkpoint(tmp_path):
    path = save_checkpoint(tmp_path, 5, {"w": torch.randn(100)})
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupted"):
        load_checkpoint(path)


def test_missing_and_unlisted(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "step-0000001.pt")
    save_checkpoint(tmp_path, 1, {"w": 1})
    (tmp_path / "step-0000009.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not in"):
        load_checkpoint(tmp_path / "step-0000009.pt")


def test_rng_state_restores_streams():
    s = rng_state()
    a = torch.rand(3)
    set_rng_state(s)
    assert torch.equal(torch.rand(3), a)
