"""Shared fixtures: a micro LM config on a small slice of the offline corpus, with a per-session token cache."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from autoresearch.testbeds.lm.config import LMConfig, preset

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("token_cache")
    os.environ["AUTORESEARCH_CACHE"] = str(path)
    return path


def micro_overrides(cache: Path) -> list[str]:
    """A ~60k-param GPT that trains a step in milliseconds on 0.5 MB of stdlib source."""
    return [
        "model.d_model=32", "model.n_layers=2", "model.n_heads=2", "model.n_kv_heads=1", "model.d_ff=64",
        "model.seq_len=32", "data.vocab_size=512", "data.max_corpus_mb=0.5", "data.val_fraction=0.25", f"data.cache_dir={cache}",
        "train.batch_size=4", "train.train_tokens=1024", "train.log_every=1", "train.threads=1",
        "eval.val_batches=2", "eval.batch_size=4",
    ]


@pytest.fixture
def micro_cfg(cache_dir) -> LMConfig:
    from autoresearch.harness.config import apply_overrides

    return apply_overrides(preset("tiny"), micro_overrides(cache_dir))


def codegen_micro_overrides(cache: Path) -> list[str]:
    """A ~40k-param HRM on 500 generated tasks; trains a step in milliseconds."""
    return [
        "hrm.d_model=32", "hrm.n_heads=2", "hrm.layers_per_stack=1", "hrm.h_cycles=2", "hrm.l_cycles=1",
        "hrm.d_ff=64", "hrm.seq_len=96", "data.vocab_size=300", "data.train_tasks=500", f"data.cache_dir={cache}",
        "train.batch_size=4", "train.train_tokens=3840", "train.log_every=1", "train.threads=1",
        "eval.heldout_tasks=4", "eval.n_samples=2", "eval.k=[1, 2]", "eval.max_new_tokens=8", "eval.workers=1",
    ]


def adversarial_micro_overrides(cache: Path) -> list[str]:
    """Two ~30k-param GPTs on 40 suite problems, the code stage only, one sandbox worker; a whole run (SFT, RL,
    scoring) takes seconds."""
    return [
        "gpt.d_model=32", "gpt.n_layers=2", "gpt.n_heads=2", "gpt.n_kv_heads=2", "gpt.d_ff=64", "gpt.seq_len=128",
        "stages=1", "data.vocab_size=512", "data.train_problems=40", f"data.cache_dir={cache}", "train.batch_size=4",
        "train.train_tokens=2048", "train.log_every=1", "train.threads=1", "train.device=cpu", "rl.n_steps=1",
        "rl.k_alternations=0", "rl.prompts_per_step=2", "rl.max_new_tokens=48", "rl.max_test_tokens=32",
        "eval.heldout_problems=4", "eval.val_problems=2", "eval.n_samples=0", "eval.mutants=2",
        "eval.coherence_problems=2", "reward.workers=1", "disc_sft_frac=1.0", "rl.match_stages=false",
    ]


@pytest.fixture
def codegen_micro_cfg(cache_dir):
    from autoresearch.harness.config import apply_overrides
    from autoresearch.testbeds.codegen.config import codegen_preset

    return apply_overrides(codegen_preset("tiny"), codegen_micro_overrides(cache_dir))


FAKE_TESTBED = f"{Path(__file__).resolve().parent / 'fake_testbed.py'}:FakeTestbed"


def trained_trials(registry: Path) -> dict[str, int]:
    """trial id -> experiments that finished training for it (the fake testbed writes results only at the end)."""
    out: dict[str, int] = {}
    for exp in registry.iterdir() if registry.is_dir() else []:
        meta, res = exp / "study_trial.yaml", exp / "results.yaml"
        if meta.exists() and res.exists() and (yaml.safe_load(res.read_text()) or {}).get("status") == "ok":
            tid = yaml.safe_load(meta.read_text())["trial"]
            out[tid] = out.get(tid, 0) + 1
    return out


def fake_study_file(tmp_path: Path, name: str, **kw) -> Path:
    """A study file of the fake testbed (2 seeds, one good idea, no checks/regression); `kw` merges into sections."""
    import yaml

    data = {
        "name": name, "testbed": FAKE_TESTBED, "preset": "tiny", "budget": {"tokens": 10_000},
        "baseline": {"value": 3.0, "tolerance": 0.05, "source": "fake"},
        "seeds": {"initial": 2, "max": 2}, "decision": {"alpha": 0.05, "min_effect": 0.01},
        "regression": {"enabled": False, "store": str(tmp_path / "traces")}, "checks": False,
        "ideas": [{"name": "good", "overrides": {"model.boost": 0.2}}],
    }
    for k, v in kw.items():
        data[k] = {**data[k], **v} if isinstance(v, dict) and isinstance(data.get(k), dict) else v
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@contextmanager
def serve_http(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A real local HTTP server on a free port running `handler`; yields its `/v1` base URL (for LLM clients)."""
    srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    finally:
        srv.shutdown()
        srv.server_close()


@pytest.fixture(scope="session")
def local_llm_server() -> Iterator[object]:
    """One real small model behind llama.cpp's OpenAI-compatible server for every `llm_local` test of the session
    (tests/local_llm.py); skips, naming what to install, when the runtime or the model is absent."""
    from tests.local_llm import LocalServer, server_missing

    why = server_missing()
    if why:
        pytest.skip(why)
    server = LocalServer(n_ctx=8192)
    yield server
    server.stop()
