"""Device setup of a training run (testbeds/common/device.py): one place for both testbeds' loops."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from autoresearch.errors import AutoresearchError
from autoresearch.testbeds.common.config import TrainConfig
from autoresearch.testbeds.common.device import resolve_device, setup_device


def test_auto_resolves_to_what_this_machine_has():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_is_one_line_with_the_fix():
    with pytest.raises(AutoresearchError, match=r"^`train.device` is 'cuda:1' but CUDA is not available; "
                                                 r"use --set train.device=cpu$"):
        resolve_device("cuda:1")


def test_setup_sets_threads_and_seed():
    before = torch.get_num_threads()
    try:
        device = setup_device(TrainConfig(device="cpu", threads=1, seed=7))
        assert device == torch.device("cpu") and torch.get_num_threads() == 1
        drawn = torch.randn(3)
        torch.manual_seed(7)
        assert torch.equal(drawn, torch.randn(3))
    finally:
        torch.set_num_threads(before)


def test_setup_on_cuda_switches_tf32_on_and_resets_peak_memory(monkeypatch):
    """Both loops get the CUDA switches (codegen used to skip them); faked here so it runs without a GPU."""
    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda d: calls.append(d))
    # stand-ins for torch's switch objects: patching their attributes directly cannot be undone on every pytest
    # (cuBLASModule has no real `allow_tf32` attribute), and a failed undo would leave CUDA "available" for later tests
    matmul, cudnn = SimpleNamespace(allow_tf32=False), SimpleNamespace(allow_tf32=False)
    monkeypatch.setattr(torch.backends.cuda, "matmul", matmul)
    monkeypatch.setattr(torch.backends, "cudnn", cudnn)
    assert setup_device(TrainConfig(device="cuda:0")) == torch.device("cuda:0")
    assert matmul.allow_tf32 and cudnn.allow_tf32
    assert calls == [torch.device("cuda:0")]
