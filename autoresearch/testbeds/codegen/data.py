"""Data of a codegen experiment: the tokenizer, SFT rows of the generated suite (+ optional MBPP train split),
and the held-out tasks and rows used for scoring.

With `data.pretrain_steps` > 0 the first steps are plain next-token pretraining on an LM corpus (the offline Python
stdlib by default), tokenized with the same tokenizer through the LM testbed's token cache; then SFT on the suite.

The tokenizer is a byte-level BPE (HF tokenizers, cached by text hash) trained by default on the generated train
tasks' text (`data.corpus=suite`), or on the offline Python corpus (`stdlib`) or a user corpus; `byte` is raw bytes.
Held-out tasks never feed the tokenizer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from autoresearch.harness.code_tasks import CodeTask
from autoresearch.harness.data import load_token_data
from autoresearch.harness.settings import cache_root
from autoresearch.harness.tokenizer import ByteTokenizer, Tokenizer, cached_bpe
from autoresearch.testbeds.codegen.config import CodegenConfig, lm_data_errors
from autoresearch.testbeds.common.config import DataConfig
from autoresearch.testbeds.common.sft_data import SFTData, build_sft_data, mbpp_pairs, suite_pairs
from autoresearch.testbeds.common.tasks import make_suite, to_training_text

__all__ = ["CodeData", "build_code_data", "build_tokenizer"]


@dataclass
class CodeData:
    tokenizer: Tokenizer
    train: SFTData
    heldout: SFTData
    heldout_tasks: list[CodeTask]
    meta: dict[str, Any]
    pretrain: np.ndarray | None = None
    """Token ids of the pretraining corpus (train split), tokenized with `tokenizer`, when pretrain_steps > 0."""


def build_tokenizer(cfg: CodegenConfig, train_tasks: list[CodeTask]) -> Tokenizer:
    """Raw bytes, a BPE trained on the train tasks' text (`suite`), or the LM testbed's BPE of a corpus."""
    if cfg.data.tokenizer == "byte":
        return ByteTokenizer()
    if cfg.data.corpus == "suite":
        texts = [to_training_text(t) for t in train_tasks]
        digest = hashlib.sha256("\x00".join(texts).encode()).hexdigest()
        return cached_bpe(texts, cfg.data.vocab_size, digest, cache_root(cfg.data.cache_dir))
    with lm_data_errors("data.corpus"):
        corpus = DataConfig(source=cfg.data.corpus, tokenizer="bpe", vocab_size=cfg.data.vocab_size,
                            max_corpus_mb=cfg.data.corpus_mb, cache_dir=cfg.data.cache_dir)
        return load_token_data(corpus).tokenizer


def build_code_data(cfg: CodegenConfig) -> CodeData:
    train_tasks = make_suite("train", cfg.data.train_tasks, seed=cfg.data.suite_seed)
    tok = build_tokenizer(cfg, train_tasks)
    pairs = suite_pairs(train_tasks)
    n_mbpp = 0
    if cfg.data.mbpp_path:
        extra = mbpp_pairs(cfg.data.mbpp_path, "train")
        n_mbpp = len(extra)
        pairs = pairs + extra
    train = build_sft_data(pairs, tok, cfg.seq_len, pack=True, seed=cfg.train.seed)
    heldout_tasks = make_suite("heldout", cfg.eval.heldout_tasks, seed=cfg.data.suite_seed)
    heldout = build_sft_data(suite_pairs(heldout_tasks), tok, cfg.seq_len, pack=False, seed=0)
    pretrain = None
    if cfg.data.pretrain_steps > 0:
        # the pretraining corpus goes through the LM testbed's cached token files, with this experiment's tokenizer
        root = cache_root(cfg.data.cache_dir) / "tokenizers"
        path = root / f"codegen-{tok.hash[:16]}.json"
        if not path.is_file():
            tok.save(path)
        with lm_data_errors("data.pretrain_source"):
            pretrain = load_token_data(DataConfig(source=cfg.data.pretrain_source, tokenizer=str(path),
                                                  max_corpus_mb=cfg.data.corpus_mb, cache_dir=cfg.data.cache_dir)).train
    meta = {
        "tokenizer": tok.name,
        "vocab_size": tok.vocab_size,
        "train_tasks": len(train_tasks),
        "mbpp_train_pairs": n_mbpp,
        "train_rows": train.n_rows,
        "train_answer_tokens": train.answer_tokens,
        "train_dropped": train.dropped,
        "heldout_tasks": len(heldout_tasks),
        "pretrain_tokens_available": 0 if pretrain is None else len(pretrain),
    }
    return CodeData(tok, train, heldout, heldout_tasks, meta, pretrain)
