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
