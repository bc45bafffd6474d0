"""MBPP (Austin et al. 2021, CC-BY-4.0) from a local JSONL: standard splits, the prompt format, `CodeTask`s.

The prompt is a docstring holding the problem statement and then its assert tests, one per line, followed by a
newline, as bigcode-evaluation-harness and evalplus write it (they show the first test, the MBPP paper all three;
`n_prompt_tests` picks). The model then writes the whole program (imports + `def`). Fine-tuning (`sft_data`) and
evaluation must use this one function so that they see the same prompt.
Nothing is downloaded: the file lives beside the checkout (`../shared/data/mbpp/mbpp.jsonl`, DESIGN.md §4).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Literal

from autoresearch.errors import ConfigError, DataError
from autoresearch.testbeds.codegen.tasks import CodeTask

__all__ = ["MBPP_SPLITS", "MBPPSplit", "load_mbpp", "mbpp_prompt", "mbpp_entry_point", "mbpp_tasks"]

MBPPSplit = Literal["prompt", "test", "validation", "train"]
MBPP_SPLITS: dict[str, tuple[int, int]] = {"prompt": (1, 10), "test": (11, 510), "validation": (511, 600),
                                           "train": (601, 974)}
"""Standard splits by task_id (inclusive ranges)."""
_FIELDS = ("task_id", "text", "code", "test_list")


def load_mbpp(path: str | Path, split: MBPPSplit | Literal["all"] = "train") -> list[dict[str, Any]]:
    """Rows of `split` (or all 974) from mbpp.jsonl, in task_id order."""
    if split != "all" and split not in MBPP_SPLITS:
        raise ConfigError(f"unknown MBPP split {split!r}; use one of {', '.join(MBPP_SPLITS)} or 'all'")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"MBPP file {str(path)!r} does not exist; point to mbpp.jsonl (e.g. ../shared/data/mbpp/)")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{n} is not valid JSON ({e.msg}); re-fetch mbpp.jsonl") from None
        missing = [f for f in _FIELDS if f not in row]
        if missing:
            raise DataError(f"{path}:{n} lacks MBPP fields {missing}; is this mbpp.jsonl?")
        rows.append(row)
    if split != "all":
        lo, hi = MBPP_SPLITS[split]
        rows = [r for r in rows if lo <= int(r["task_id"]) <= hi]
    if not rows:
        raise DataError(f"MBPP file {str(path)!r} has no rows in split {split!r}; check the file")
    return sorted(rows, key=lambda r: int(r["task_id"]))


def mbpp_prompt(row: dict[str, Any], n_prompt_tests: int = 3) -> str:
    """The problem statement and its first `n_prompt_tests` asserts in a docstring, ending with a newline."""
    tests = "\n".join(row["test_list"][:n_prompt_tests])
    return f'"""\n{row["text"].strip()}\n{tests}\n"""\n'


def mbpp_entry_point(row: dict[str, Any]) -> str:
    """The function the tests call (from the first assert, else the reference's last top-level def)."""
    m = re.match(r"\s*assert\s+(?:not\s+)?\(?\s*([A-Za-z_]\w*)\s*\(", row["test_list"][0])
    if m and m.group(1) not in ("set", "sorted", "math", "abs", "round", "int", "float", "str", "list", "tuple"):
        return m.group(1)
    defs = re.findall(r"^def\s+([A-Za-z_]\w*)", _code(row), flags=re.M)
    if not defs:
        raise DataError(f"MBPP task {row['task_id']}: cannot find the entry point in its tests or code")
    return defs[-1]


def mbpp_tasks(path: str | Path, split: MBPPSplit | Literal["all"] = "train", n_prompt_tests: int = 3) -> list[CodeTask]:
    """MBPP rows as `CodeTask`s: the completion is the whole program; setup then tests run after it."""
    return [
        CodeTask(
            task_id=f"mbpp/{row['task_id']}",
            prompt=mbpp_prompt(row, n_prompt_tests),
            entry_point=mbpp_entry_point(row),
            tests=list(row["test_list"]),
            reference=_code(row),
            template="mbpp",
            setup=row.get("test_setup_code", "") or "",
        )
        for row in load_mbpp(path, split)
    ]


def _code(row: dict[str, Any]) -> str:
    code = row["code"].replace("\r\n", "\n").rstrip()
    return code + "\n"
