"""Supervised fine-tuning rows: (prompt, answer) pairs -> token ids with the loss on the answer only.

Each pair is tokenized as `encode(prompt) + encode(answer) + [eot_id]` — prompt and answer separately, so the
prompt's tokens are exactly those generation starts from (a BPE could merge across the boundary otherwise).
Rows hold `seq_len + 1` tokens; `inputs = row[:-1]`, `labels = row[1:]`, and a label is -100 (the `ignore_index`
of the models' cross-entropy) unless it is an answer or eot token, so only the answer is learned.

`pack=True` fills rows with whole examples in a seeded shuffled order (a new row when the next one does not
fit; an example is never split; later examples attend to earlier ones, separated by eot, as in packed
pretraining); `pack=False` puts one example per row. Unused positions hold eot as input and -100 as label. Examples longer than `seq_len + 1` tokens are left
out and counted in `dropped`. Batches are a deterministic function of (seed, step): every epoch is a seeded
permutation of the rows, so a resumed run gets the same batches.
Sources: MBPP's train split (the harness's MBPP loader and prompt) and the generated task suite (`tasks.py`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from autoresearch.errors import ConfigError, DataError
from autoresearch.harness.code_tasks import CodeTask, load_mbpp

__all__ = ["IGNORE_INDEX", "SFTData", "build_sft_data", "mbpp_pairs", "suite_pairs"]

IGNORE_INDEX = -100


def mbpp_pairs(path: str | Path, split: str = "train") -> list[tuple[str, str]]:
    """(evaluator prompt, reference program) for every MBPP task of `split` (train = task_ids 601-974).

    The prompt is the harness's `mbpp_prompt` (description and asserts in a docstring), the one pass@k uses.
    """
    return [(t.prompt, t.reference if t.reference.endswith("\n") else t.reference + "\n")
            for t in load_mbpp(path, split)]


def suite_pairs(tasks: Sequence[CodeTask]) -> list[tuple[str, str]]:
    """(prompt, reference completion) of any `CodeTask`s, e.g. the generated suite's."""
    return [(t.prompt, t.reference) for t in tasks]


@dataclass
class SFTData:
    """Fixed rows of SFT tokens and their loss mask; `batch(step, batch_size)` is deterministic by seed."""

    inputs: torch.Tensor
    """int64 [rows, seq_len]."""
    labels: torch.Tensor
    """int64 [rows, seq_len]: the next token where it is an answer token, else -100."""
    n_examples: int
    dropped: int
    seed: int = 0
    _perms: dict[int, torch.Tensor] = field(default_factory=dict, repr=False)

    @property
    def n_rows(self) -> int:
        return self.inputs.shape[0]

    @property
    def answer_tokens(self) -> int:
        """Tokens that carry loss (answers + eot), over all rows."""
        return int((self.labels != IGNORE_INDEX).sum())

    def batch(self, step: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch `step` (0-based) of the endless stream of seeded per-epoch permutations of the rows."""
        if batch_size < 1:
            raise ConfigError(f"`batch_size` must be >= 1, got {batch_size}; use e.g. 16")
        rows = [self._row(g) for g in range(step * batch_size, (step + 1) * batch_size)]
        idx = torch.tensor(rows)
        return self.inputs[idx], self.labels[idx]

    def _row(self, g: int) -> int:
        epoch, within = divmod(g, self.n_rows)
        if epoch not in self._perms:
            gen = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            self._perms = {epoch: torch.randperm(self.n_rows, generator=gen)}  # keep one epoch: memory stays flat
        return int(self._perms[epoch][within])


def build_sft_data(pairs: Sequence[tuple[str, str]], tokenizer: Any, seq_len: int, *, pack: bool = True,
                   seed: int = 0) -> SFTData:
    """Tokenize (prompt, answer) pairs with any tokenizer having `encode` and `eot_id`; see the module docstring."""
    if seq_len < 2:
        raise ConfigError(f"`seq_len` must be >= 2, got {seq_len}; use the model's seq_len")
    eot = getattr(tokenizer, "eot_id", None)
    if eot is None:
        raise ConfigError("the tokenizer has no `eot_id`; SFT answers end with eot so generation learns to stop")
    width = seq_len + 1
    examples: list[tuple[list[int], list[bool]]] = []
    dropped = 0
    for prompt, answer in pairs:
        p, a = tokenizer.encode(prompt), tokenizer.encode(answer) + [eot]
        if len(p) + len(a) > width:
            dropped += 1
            continue
        examples.append((p + a, [False] * len(p) + [True] * len(a)))
    if not examples:
        raise DataError(f"no SFT example fits in seq_len={seq_len} ({len(pairs)} pairs, {dropped} too long); "
                        "raise seq_len or give shorter pairs")
    random.Random(f"sft:{seed}").shuffle(examples)
    rows: list[tuple[list[int], list[bool]]] = []
    for ids, mask in examples:
        if pack and rows and len(rows[-1][0]) + len(ids) <= width:
            rows[-1][0].extend(ids)
            rows[-1][1].extend(mask)
        else:
            rows.append((list(ids), list(mask)))
    tokens = torch.full((len(rows), width), eot, dtype=torch.long)
    loss = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, (ids, mask) in enumerate(rows):
        tokens[i, : len(ids)] = torch.tensor(ids)
        loss[i, : len(mask)] = torch.tensor(mask)
    labels = tokens[:, 1:].masked_fill(~loss[:, 1:], IGNORE_INDEX)
    return SFTData(tokens[:, :-1].contiguous(), labels.contiguous(), len(examples), dropped, seed)
