"""Harness layer: configs, experiment registry, checkpoints, metrics, data + tokenizers, sandbox and pass@k.

The lowest layer: it never imports testbeds, research, agents or cli. Imports are lazy (PEP 562) so a process that
only needs the registry or the config machinery (every study trial starts as one) does not pay for torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "append_jsonl": "atomic", "atomic_write_text": "atomic", "atomic_write_yaml": "atomic", "file_lock": "atomic",
    "read_jsonl": "atomic",
    "latest_checkpoint": "checkpoint", "load_checkpoint": "checkpoint", "save_checkpoint": "checkpoint",
    "apply_overrides": "config", "from_dict": "config", "load_yaml": "config", "param": "config",
    "save_yaml": "config", "to_dict": "config", "check_ranges": "config",
    "check_fits": "memory",
    "TokenData": "data", "TrainStream": "data", "ValSet": "data", "load_token_data": "data",
    "read_documents": "data", "val_windows": "data",
    "bits_per_byte": "metrics", "gpu_peak_flops": "metrics", "mfu": "metrics", "peak_memory_bytes": "metrics",
    "perplexity": "metrics",
    "run_metadata": "provenance", "machine_fingerprint": "provenance",
    "Settings": "settings", "load_settings": "settings",
    "Experiment": "registry", "list_experiments": "registry", "new_experiment": "registry",
    "open_experiment": "registry",
    "Tracker": "trackers", "TrackerSet": "trackers", "check_trackers": "trackers", "make_trackers": "trackers",
    "ByteTokenizer": "tokenizer", "HFTokenizer": "tokenizer", "Tokenizer": "tokenizer", "load_tokenizer": "tokenizer",
    "train_bpe": "tokenizer",
    "estimate_pass_at_k": "pass_at_k", "pass_at_k_summary": "pass_at_k",
    "CodeTask": "code_tasks", "load_humaneval": "code_tasks", "load_mbpp": "code_tasks", "load_tasks": "code_tasks",
    "evaluate": "code_eval", "read_samples": "code_eval", "write_samples": "code_eval",
    "Sampler": "samplers", "get_sampler": "samplers", "register_sampler_factory": "samplers",
    "postprocess_completion": "postprocess", "stop_policy": "postprocess",
    "sample_and_score": "sample_score",
    "OpenAIClient": "llm", "Message": "llm", "Response": "llm", "Usage": "llm",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'autoresearch.harness' has no attribute {name!r}")
    return getattr(importlib.import_module(f"autoresearch.harness.{mod}"), name)


def __dir__() -> list[str]:
    return __all__
