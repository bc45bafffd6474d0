"""Disk full, read-only and immutable disks under the registry, the checkpoints and the token cache (issue 8 §6).

Each failure is one line naming the path and the fix (`RegistryError`, `CheckpointError`, `DataError`), and the files
written before are intact. Simulated by making the write raise the errno; where mounting works (root in a container
that allows it), also on a real small or read-only tmpfs — those tests skip themselves elsewhere.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import autoresearch.harness.atomic as atomic
from autoresearch.errors import CheckpointError, DataError, RegistryError
from autoresearch.harness.atomic import disk_error
from autoresearch.harness.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from autoresearch.harness.data import load_token_data
from autoresearch.harness.registry import new_experiment, open_experiment
from autoresearch.harness.tokenizer import EOT
from autoresearch.testbeds.common.config import DataConfig

ERRNOS = [errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT]


def _raise(code: int):
    def boom(*a, **k):
        raise OSError(code, os.strerror(code))

    return boom


def _no_temps(d: Path) -> bool:
    return not list(d.rglob(".*.tmp")) and not list(d.rglob(".*.tmp-*"))


def test_disk_error_names_path_and_fix():
    msg = disk_error(OSError(errno.ENOSPC, "x", "/data/a.pt"), "/ignored", "--root DIR")
    assert msg == ("cannot write /data/a.pt: no space left on device (ENOSPC); free space on that disk, or use "
                   "--root DIR on another disk")
    assert "chattr -i" in disk_error(OSError(errno.EPERM, "x"), "/p")
    assert disk_error(OSError(errno.ENOENT, "x"), "/p") is None and disk_error(ValueError(), "/p") is None


# --- registry -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("code", ERRNOS)
def test_new_experiment_on_unwritable_registry(tmp_path, monkeypatch, code):
    root = tmp_path / "experiments"
    new_experiment(root)
    monkeypatch.setattr(os, "mkdir", _raise(code))
    with pytest.raises(RegistryError, match=rf"cannot write {root}/exp-002: .*\({errno.errorcode[code]}") as e:
        new_experiment(root)
    assert "\n" not in str(e.value) and "--root DIR" in str(e.value)
    monkeypatch.undo()
    assert sorted(p.name for p in root.iterdir()) == ["exp-001"]


@pytest.mark.parametrize("code", ERRNOS)
def test_results_write_failure_keeps_old_results(tmp_path, monkeypatch, code):
    exp = new_experiment(tmp_path)
    exp.write_results({"status": "ok", "val_loss": 1.5})
    monkeypatch.setattr(atomic.os, "fsync", _raise(code))
    with pytest.raises(RegistryError, match=r"cannot write .*results.yaml"):
        exp.write_results({"status": "crashed"})
    monkeypatch.undo()
    assert exp.read_results() == {"status": "ok", "val_loss": 1.5} and _no_temps(tmp_path)


def test_log_append_and_lock_failures_are_one_line(tmp_path, monkeypatch):
    exp = new_experiment(tmp_path)
    exp.log({"step": 1})
    real_open = os.open

    def full_open(path, flags, *a):
        if str(path).endswith(("log.jsonl", "run.lock")):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *a)

    monkeypatch.setattr(os, "open", full_open)
    with pytest.raises(RegistryError, match=r"log.jsonl: read-only file system \(EROFS\); remount it read-write"):
        exp.log({"step": 2})
    with pytest.raises(RegistryError, match=r"run.lock: read-only file system .*a copy of the folder"):
        with exp.running(resume=True):
            pass
    monkeypatch.undo()
    assert exp.read_log() == [{"step": 1}]


# --- checkpoints ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
def test_checkpoint_write_failure_keeps_earlier_checkpoint(tmp_path, monkeypatch, code):
    save_checkpoint(tmp_path, 1, {"w": torch.ones(10)})
    manifest = (tmp_path / "manifest.json").read_bytes()
    monkeypatch.setattr(atomic.os, "fsync", _raise(code))
    with pytest.raises(CheckpointError, match=r"cannot write .*step-0000002.pt: .*earlier checkpoints are intact, "
                                              r"continue with --resume") as e:
        save_checkpoint(tmp_path, 2, {"w": torch.ones(10)})
    assert "\n" not in str(e.value)
    monkeypatch.undo()
    assert (tmp_path / "manifest.json").read_bytes() == manifest and _no_temps(tmp_path)
    assert load_checkpoint(latest_checkpoint(tmp_path))["step"] == 1


# --- token cache ----------------------------------------------------------------------------------------------------

def _data_cfg(tmp_path: Path) -> DataConfig:
    src = tmp_path / "corpus.txt"
    src.write_text(EOT.join(f"document {i}\n{'text ' * 50}\n" for i in range(60)))
    return DataConfig(source=str(src), tokenizer="byte", val_fraction=0.2, cache_dir=str(tmp_path / "cache"))


@pytest.mark.parametrize("code", ERRNOS)
def test_full_token_cache_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, code):
    import autoresearch.harness.data as datamod

    cfg = _data_cfg(tmp_path)
    monkeypatch.setattr(datamod, "_write_array", _raise(code))
    with pytest.raises(DataError, match=r"token cache: cannot write .*data.cache_dir=DIR") as e:
        load_token_data(cfg)
    assert "\n" not in str(e.value)
    monkeypatch.undo()
    assert not [p for p in (tmp_path / "cache" / "tokens").iterdir() if p.is_dir()]  # no partial folder
    assert load_token_data(cfg).meta["cached"] is False  # and it builds once there is room


def test_read_only_cache_that_holds_the_tokens_still_loads(tmp_path, monkeypatch):
    import autoresearch.harness.data as datamod

    cfg = _data_cfg(tmp_path)
    n = len(load_token_data(cfg).train)
    monkeypatch.setattr(datamod, "file_lock", _raise(errno.EROFS))
    d = load_token_data(cfg)
    assert d.meta["cached"] is True and len(d.train) == n


def test_tokenizer_cache_write_failure_is_one_line(tmp_path, monkeypatch):
    from autoresearch.harness.tokenizer import ByteTokenizer

    monkeypatch.setattr(atomic.os, "fsync", _raise(errno.ENOSPC))
    with pytest.raises(DataError, match=r"cannot write .*tok.json: no space left .*data.cache_dir"):
        ByteTokenizer().save(tmp_path / "tok.json")


# --- real file systems (root with mount rights only) ----------------------------------------------------------------

@pytest.fixture
def mount(tmp_path):
    mounted: list[Path] = []

    def do(path: Path, *opts: str) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join(opts or ("size=1m",)), "tmpfs", str(path)],
                           capture_output=True)
        if r.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({r.stderr.decode().strip()[:80]})")
        mounted.append(path)
        return path

    def remount_ro(path: Path) -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)

    do.remount_ro = remount_ro  # type: ignore[attr-defined]
    yield do
    for p in reversed(mounted):
        subprocess.run(["umount", "-l", str(p)], capture_output=True)


def test_real_full_disk_at_checkpoint_write(tmp_path, mount):
    d = mount(tmp_path / "small", "size=1m")
    save_checkpoint(d, 1, {"w": torch.zeros(50_000)}, keep=5)  # ~200 KB
    with pytest.raises(CheckpointError, match=r"no space left on device \(ENOSPC\)"):
        save_checkpoint(d, 2, {"w": torch.zeros(300_000)}, keep=5)  # ~1.2 MB: does not fit
    assert _no_temps(d) and load_checkpoint(latest_checkpoint(d))["step"] == 1


def test_real_full_token_cache(tmp_path, mount):
    cfg = _data_cfg(tmp_path)
    cfg.cache_dir = str(mount(tmp_path / "cache", "size=8k"))
    with pytest.raises(DataError, match=r"token cache: cannot write .*no space left on device"):
        load_token_data(cfg)


def test_real_read_only_registry_new_run_resume_and_ls(tmp_path, mount):
    root = mount(tmp_path / "ro", "size=1m")
    exp = new_experiment(root)
    exp.write_config({"model": {}}, {"created": "2025-01-01"})
    exp.write_results({"status": "crashed"})
    before = {p.name: p.read_bytes() for p in exp.path.iterdir() if p.is_file()}
    mount.remount_ro(root)  # type: ignore[attr-defined]
    with pytest.raises(RegistryError, match=r"cannot write .*exp-002: read-only file system"):
        new_experiment(root)
    with pytest.raises(RegistryError, match=r"run.lock: read-only file system"):
        with open_experiment("exp-001", root).running(resume=True):
            pass
    env = {**os.environ, "COLUMNS": "200"}
    r = subprocess.run([sys.executable, "-m", "autoresearch", "train", "lm", "--root", str(root)], capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "read-only file system (EROFS)" in r.stderr, r.stderr
    r = subprocess.run([sys.executable, "-m", "autoresearch", "ls", "--root", str(root)], capture_output=True,
                       text=True, env=env, timeout=120)
    assert r.returncode == 0 and "exp-001" in r.stdout and "crashed" in r.stdout, r.stderr
    assert {p.name: p.read_bytes() for p in exp.path.iterdir() if p.is_file()} == before


def test_real_immutable_registry(tmp_path):
    root = tmp_path / "imm"
    exp = new_experiment(root)
    exp.write_results({"status": "crashed"})
    r = subprocess.run(["chattr", "+i", str(root), str(exp.path)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"chattr +i does not work here ({r.stderr.decode().strip()[:80]})")
    try:
        with pytest.raises(RegistryError, match=r"exp-002: operation not permitted \(EPERM; immutable\?\); clear the"):
            new_experiment(root)
        with pytest.raises(RegistryError, match=r"run.lock: operation not permitted"):
            with exp.running(resume=True):
                pass
    finally:
        subprocess.run(["chattr", "-i", str(root), str(exp.path)], capture_output=True)
    assert exp.read_results() == {"status": "crashed"} and sorted(p.name for p in root.iterdir()) == ["exp-001"]
