"""Data of a codegen experiment: the tokenizer, SFT rows of the generated suite (+ optional MBPP train split),
and the held-out tasks and rows used for scoring.

The tokenizer is the LM testbed's byte-level BPE trained on the offline Python corpus (cached by corpus hash), so
the code model reads Python with Python-shaped tokens; `byte` is there for tests and ablations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from autoresearch.harness.code_tasks import CodeTask
from autoresearch.harness.data import load_token_data
from autoresearch.harness.tokenizer import ByteTokenizer, Tokenizer
from autoresearch.testbeds.codegen.config import CodegenConfig
from autoresearch.testbeds.codegen.sft_data import SFTData, build_sft_data, mbpp_pairs, suite_pairs
from autoresearch.testbeds.codegen.tasks import make_suite
from autoresearch.testbeds.lm.config import DataConfig

__all__ = ["CodeData", "build_code_data", "build_tokenizer"]


@dataclass
class CodeData:
    tokenizer: Tokenizer
    train: SFTData
    heldout: SFTData
    heldout_tasks: list[CodeTask]
    meta: dict[str, Any]


def build_tokenizer(cfg: CodegenConfig) -> Tokenizer:
    if cfg.data.tokenizer == "byte":
        return ByteTokenizer()
    corpus = DataConfig(source=cfg.data.corpus, tokenizer="bpe", vocab_size=cfg.data.vocab_size,
                        max_corpus_mb=cfg.data.corpus_mb, cache_dir=cfg.data.cache_dir)
    return load_token_data(corpus).tokenizer


def build_code_data(cfg: CodegenConfig) -> CodeData:
    tok = build_tokenizer(cfg)
    train_tasks = make_suite("train", cfg.data.train_tasks, seed=cfg.data.suite_seed)
    pairs = suite_pairs(train_tasks)
    n_mbpp = 0
    if cfg.data.mbpp_path:
        extra = mbpp_pairs(cfg.data.mbpp_path, "train")
        n_mbpp = len(extra)
        pairs = pairs + extra
    train = build_sft_data(pairs, tok, cfg.seq_len, pack=True, seed=cfg.train.seed)
    heldout_tasks = make_suite("heldout", cfg.eval.heldout_tasks, seed=cfg.data.suite_seed)
    heldout = build_sft_data(suite_pairs(heldout_tasks), tok, cfg.seq_len, pack=False, seed=0)
    meta = {
        "tokenizer": tok.name,
        "vocab_size": tok.vocab_size,
        "train_tasks": len(train_tasks),
        "mbpp_train_pairs": n_mbpp,
        "train_rows": train.n_rows,
        "train_answer_tokens": train.answer_tokens,
        "train_dropped": train.dropped,
        "heldout_tasks": len(heldout_tasks),
    }
    return CodeData(tok, train, heldout, heldout_tasks, meta)
