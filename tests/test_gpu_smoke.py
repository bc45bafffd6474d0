"""GPU smoke tests (marker `gpu`: they skip themselves without CUDA; `pytest -m gpu` or benchmarks/gpu_figures.sh runs
them on a GPU machine), and the CPU side of benchmarks/gpu_figures.py: on a machine without CUDA it says so and
exits 0."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.gpu
@needs_cuda
def test_tiny_lm_trains_on_the_gpu_in_bf16(micro_cfg, tmp_path):
    from autoresearch.harness.config import apply_overrides
    from autoresearch.harness.registry import new_experiment
    from autoresearch.testbeds.lm.train import train

    cfg = apply_overrides(micro_cfg, ["train.device=cuda", "train.precision=bf16", "train.train_tokens=2048"])
    res = train(cfg, new_experiment(tmp_path))
    assert res["status"] == "ok" and res["device"].startswith("cuda") and res["precision"] == "bf16"
    assert res["peak_memory_mb"] > 0 and res["tokens_per_s"] > 0
    assert 0 < res["val_loss"] < 20


@pytest.mark.gpu
@needs_cuda
def test_batched_muon_on_the_gpu_matches_torch_muon():
    from autoresearch.testbeds.common.muon import Muon

    g = torch.Generator(device="cuda").manual_seed(0)
    shapes = [(256, 256)] * 3 + [(128, 256), (512, 256), (256, 1024)]
    results = []
    for make in (torch.optim.Muon, Muon):
        params = [torch.nn.Parameter(torch.full(s, 0.01, device="cuda")) for s in shapes]
        opt = make(params, lr=0.02)
        g.manual_seed(0)
        for _ in range(3):
            for p in params:
                p.grad = torch.randn(p.shape, generator=g, device="cuda") * 0.01
            opt.step()
        results.append(params)
    # bf16 Newton–Schulz on both sides (native bf16) or fp32 on ours (pre-Ampere): bf16-rounding-sized differences
    for a, b in zip(*results):
        assert (a - b).abs().max().item() < 2e-3


@pytest.mark.gpu
@needs_cuda
def test_gpu_figures_sees_the_gpu():
    sys.path.insert(0, str(REPO / "benchmarks"))
    import gpu_figures

    assert gpu_figures.no_gpu_reason() is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="the no-GPU path; this machine has CUDA")
def test_gpu_figures_says_no_gpu_and_exits_cleanly(tmp_path):
    out = tmp_path / "figures.json"
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_figures.py"), "--out", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("no GPU:") and "nothing measured" in proc.stdout
    assert proc.stderr == "" and not out.exists()
