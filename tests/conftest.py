"""Shared fixtures: a micro LM config on a small slice of the offline corpus, with a per-session token cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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


@pytest.fixture
def codegen_micro_cfg(cache_dir):
    from autoresearch.harness.config import apply_overrides
    from autoresearch.testbeds.codegen.config import codegen_preset

    return apply_overrides(codegen_preset("tiny"), codegen_micro_overrides(cache_dir))
