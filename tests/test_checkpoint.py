"""Checkpoints: roundtrip, retention, clear errors for damaged files and manifests, fallback on resume."""

from __future__ import annotations

import pytest
import torch

from autoresearch.errors import CheckpointError
from autoresearch.harness.checkpoint import (
    config_hash,
    latest_checkpoint,
    load_checkpoint,
    load_for_resume,
    rebuild_manifest,
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


# --- issue 8: stale temp files, damaged checkpoints and manifests, config changes ------------------------------------

def _tmp_files(d):
    return sorted(p.name for p in d.glob(".*.tmp"))


def test_temp_files_of_a_killed_save_are_removed_by_the_next_save(tmp_path):
    save_checkpoint(tmp_path, 1, {"w": 1})
    (tmp_path / ".step-0000002.pt.k1ll3d.tmp").write_bytes(b"half a checkpoint")
    (tmp_path / ".manifest.json.x.tmp").write_text("{")
    save_checkpoint(tmp_path, 2, {"w": 2})
    assert _tmp_files(tmp_path) == []
    assert latest_checkpoint(tmp_path).name == "step-0000002.pt"


def test_temp_files_are_removed_on_resume(tmp_path):
    save_checkpoint(tmp_path, 1, {"w": 1})
    (tmp_path / ".step-0000002.pt.k1ll3d.tmp").write_bytes(b"half")
    assert load_for_resume(tmp_path, {}, "config.yaml")["step"] == 1
    assert _tmp_files(tmp_path) == []


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete"])
def test_damaged_newest_checkpoint_resumes_from_the_one_before(tmp_path, capsys, damage):
    save_checkpoint(tmp_path, 4, {"w": 4})
    newest = save_checkpoint(tmp_path, 8, {"w": 8})
    data = newest.read_bytes()
    if damage == "truncate":
        newest.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        newest.write_bytes(data[:-40] + bytes([data[-40] ^ 0xFF]) + data[-39:])
    else:
        newest.unlink()
    if damage != "delete":  # the advice names the checkpoint resume will use, and following it works
        with pytest.raises(CheckpointError, match=r"delete it; --resume then continues from step-0000004\.pt"):
            load_checkpoint(newest)
    assert load_for_resume(tmp_path, {}, "config.yaml")["step"] == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "step-0000008.pt" in err and "resuming from step-0000004.pt" in err
    newest.unlink(missing_ok=True)  # the advice: delete it
    assert latest_checkpoint(tmp_path).name == "step-0000004.pt"
    assert load_for_resume(tmp_path, {}, "config.yaml")["step"] == 4
    save_checkpoint(tmp_path, 12, {"w": 12})  # the manifest forgets the deleted file on the next save
    assert [p.name for p in sorted(tmp_path.glob("*.pt"))] == ["step-0000004.pt", "step-0000012.pt"]


def test_only_checkpoint_damaged_says_start_a_new_run(tmp_path):
    path = save_checkpoint(tmp_path, 4, {"w": 4})
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"truncated.*no earlier checkpoint"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match=r"no usable checkpoint in .*truncated.*start a new run"):
        load_for_resume(tmp_path, {}, "config.yaml")


def test_missing_manifest_is_named_and_rebuild_recovers(tmp_path):
    save_checkpoint(tmp_path, 4, {"w": 4})
    save_checkpoint(tmp_path, 8, {"w": 8})
    (tmp_path / "manifest.json").unlink()
    for fn in (latest_checkpoint, lambda d: load_for_resume(d, {}, "config.yaml")):
        with pytest.raises(CheckpointError, match=r"manifest.json is missing.*2 checkpoint file.*--rebuild-manifest"):
            fn(tmp_path)
    # a checkpoint cut short is left out of the rebuilt manifest
    p8 = tmp_path / "step-0000008.pt"
    p8.write_bytes(p8.read_bytes()[:-10])
    assert [e["file"] for e in rebuild_manifest(tmp_path)] == ["step-0000004.pt"]
    assert load_for_resume(tmp_path, {}, "config.yaml")["step"] == 4


def test_empty_folder_has_no_checkpoint(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    assert load_for_resume(tmp_path, {}, "c.yaml") is None
    assert load_for_resume(tmp_path / "absent", {}, "c.yaml") is None
    with pytest.raises(CheckpointError, match="no checkpoint file .* loads"):
        rebuild_manifest(tmp_path)


@pytest.mark.parametrize("content", [b"\x8f\x00\xffrandom\x13", b"{}", b"[]", b'{"checkpoints": [{"file": 1}]}',
                                     b'{"checkpoints": "x"}', b""])
def test_damaged_manifest_is_one_line(tmp_path, content):
    save_checkpoint(tmp_path, 1, {"w": 1})
    (tmp_path / "manifest.json").write_bytes(content)
    for fn in (latest_checkpoint, lambda d: load_for_resume(d, {}, "c.yaml"), lambda d: save_checkpoint(d, 2, {})):
        with pytest.raises(CheckpointError, match=r"manifest.json is damaged .*--rebuild-manifest") as e:
            fn(tmp_path)
        assert "\n" not in str(e.value)
    assert [e["step"] for e in rebuild_manifest(tmp_path)] == [1]


def test_config_changed_since_checkpoint_is_refused_with_the_fields(tmp_path):
    cfg = {"model": {"d_model": 32, "n_layers": 2}, "train": {"seed": 0}}
    save_checkpoint(tmp_path, 4, {"w": 1, "config": cfg})
    assert load_for_resume(tmp_path, cfg, "config.yaml")["config_sha256"] == config_hash(cfg)
    changed = {"model": {"d_model": 64, "n_layers": 2}, "train": {"seed": 0}}
    with pytest.raises(CheckpointError, match=r"config.yaml changed since checkpoint step-0000004.pt was saved "
                                              r"\(model.d_model: 32 -> 64\); restore"):
        load_for_resume(tmp_path, changed, "config.yaml")
    assert config_hash({"b": 1, "a": 2}) == config_hash({"a": 2, "b": 1})
