"""Harness layer: configs, experiment registry, checkpoints, metrics, data + tokenizers (sandbox and pass@k too).

The lowest layer: it never imports testbeds, research, agents or cli.
"""

from __future__ import annotations

from autoresearch.harness.atomic import append_jsonl, atomic_write_text, atomic_write_yaml, file_lock, read_jsonl
from autoresearch.harness.checkpoint import latest_checkpoint, load_checkpoint, save_checkpoint
from autoresearch.harness.config import apply_overrides, from_dict, load_yaml, param, save_yaml, to_dict
from autoresearch.harness.data import TokenData, TrainStream, ValSet, load_token_data, read_documents, val_windows
from autoresearch.harness.metrics import bits_per_byte, gpu_peak_flops, mfu, peak_memory_bytes, perplexity
from autoresearch.harness.provenance import run_metadata
from autoresearch.harness.registry import Experiment, list_experiments, new_experiment, open_experiment
from autoresearch.harness.tokenizer import ByteTokenizer, HFTokenizer, Tokenizer, load_tokenizer, train_bpe

__all__ = [
    "append_jsonl",
    "atomic_write_text",
    "atomic_write_yaml",
    "file_lock",
    "read_jsonl",
    "latest_checkpoint",
    "load_checkpoint",
    "save_checkpoint",
    "apply_overrides",
    "from_dict",
    "load_yaml",
    "param",
    "save_yaml",
    "to_dict",
    "TokenData",
    "TrainStream",
    "ValSet",
    "load_token_data",
    "read_documents",
    "val_windows",
    "bits_per_byte",
    "gpu_peak_flops",
    "mfu",
    "peak_memory_bytes",
    "perplexity",
    "run_metadata",
    "Experiment",
    "list_experiments",
    "new_experiment",
    "open_experiment",
    "ByteTokenizer",
    "HFTokenizer",
    "Tokenizer",
    "load_tokenizer",
    "train_bpe",
]
