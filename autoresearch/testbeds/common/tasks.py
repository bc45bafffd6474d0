"""A generated suite of small Python programming tasks with reference solutions and hidden tests.

Each task is a HumanEval-style prompt (a signature, a one-sentence docstring and one `>>>` example), a reference
completion (the body, 1-4 lines: `return x + 7`, `return s[::-1] * 2`, a short loop, an if/return), and four hidden
`assert` tests. 37 templates cover arithmetic, strings, lists, dicts, loops and conditionals (`_templates.py`);
a ~1-5M parameter model trained for minutes on a CPU can learn the short bodies, and has to read the constants and
words of the docstring to solve a task it has not seen.

Train and held-out splits are **parameter-disjoint**: every template appears in both, but the behaviour of a task
(template + its constants, words and operators, e.g. ("add_const", 7)) is assigned to exactly one split by a stable
hash (20% held out). So a held-out task is a behaviour never trained on, e.g. "Return x plus 7." when training only
saw other constants with that template; function and argument names are drawn independently and do not decide the
split. Expected outputs come from an independent Python oracle per template, not from running the reference text.
Everything is deterministic by (split, n, seed).

Tasks are the harness's `CodeTask` (as HumanEval: program = prompt + completion, then each test snippet in the same
globals), so the sandbox and the pass@k code score them with `task.job(completion)` like any benchmark.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Literal

from autoresearch.errors import ConfigError, DataError
from autoresearch.harness.code_tasks import CodeTask
from autoresearch.harness.tokenizer import EOT as EOT_TEXT
from autoresearch.testbeds.common._templates import TEMPLATES, Draft

__all__ = [
    "SuiteTask",
    "BENCHMARK",
    "Split",
    "EOT_TEXT",
    "HELDOUT_PERCENT",
    "make_suite",
    "split_of",
    "to_training_text",
    "template_names",
]

Split = Literal["train", "heldout"]
BENCHMARK = "codegen-suite"
HELDOUT_PERCENT = 20
_N_TESTS = 4


@dataclass(frozen=True)
class SuiteTask(CodeTask):
    """A harness `CodeTask` (completion continues the prompt) plus where it came from in the suite."""

    template: str = ""
    family: str = ""
    key: str = ""
    """repr of the behaviour key that decided the split, e.g. "('add_const', 7)"."""


def split_of(key: tuple) -> Split:
    """The split a behaviour key belongs to: a stable hash, HELDOUT_PERCENT of the keys held out."""
    digest = hashlib.sha256(repr(key).encode()).digest()
    return "heldout" if int.from_bytes(digest[:8], "big") % 100 < HELDOUT_PERCENT else "train"


def template_names() -> list[str]:
    return sorted(TEMPLATES)


def make_suite(split: Split, n: int, seed: int = 0, templates: list[str] | None = None) -> list[SuiteTask]:
    """`n` distinct tasks (distinct prompts) of `split`, deterministic by (split, n, seed).

    Templates are drawn uniformly; a drawn behaviour of the other split is redrawn. `templates` restricts the
    template names (default: all).
    """
    if split not in ("train", "heldout"):
        raise ConfigError(f"`split` must be 'train' or 'heldout', got {split!r}; use one of those")
    if n < 0:
        raise ConfigError(f"`n` must be >= 0, got {n}; ask for a number of tasks")
    names = template_names() if templates is None else list(templates)
    unknown = [t for t in names if t not in TEMPLATES]
    if unknown or not names:
        raise ConfigError(f"unknown task templates {unknown or names!r}; choose from {', '.join(template_names())}")
    rng = random.Random(f"codegen-suite:{split}:{seed}")
    tasks: list[SuiteTask] = []
    prompts: set[str] = set()
    for _ in range(20 * n + 100):
        if len(tasks) == n or not names:
            break
        name = rng.choice(names)
        # Redraw within the template, so each template is equally likely whatever share of its keys is held out.
        draft = next((d for d in (TEMPLATES[name][1](rng) for _ in range(200)) if split_of(d.key) == split), None)
        if draft is None:  # this template has no behaviour in `split`
            names.remove(name)
            continue
        task = _build(draft, rng, f"gen-{split}/{len(tasks)}", name)
        if task.prompt in prompts:
            continue
        prompts.add(task.prompt)
        tasks.append(task)
    if len(tasks) < n:
        raise DataError(f"could make only {len(tasks)} distinct {split} tasks of templates {names}, asked for {n}; "
                        "ask for fewer or allow more templates")
    return tasks


def to_training_text(task: CodeTask, eot: str = EOT_TEXT) -> str:
    """Prompt + reference + end-of-text: one pretraining-style document.

    For fine-tuning, tokenize prompt and reference separately (`sft_data`): a BPE can merge the prompt's final
    newline with the body's indentation, and generation starts from the prompt's own tokens.
    """
    return task.prompt + task.reference + eot


def _build(d: Draft, rng: random.Random, task_id: str, template: str) -> SuiteTask:
    """Draw 1 example + _N_TESTS distinct test inputs that a constant or identity answer fails; format the task."""
    must = [tuple(a) for a in d.must]
    for _ in range(100):
        cases: list[tuple[tuple, object]] = []
        seen: set[str] = {repr(a) for a in must}
        for _ in range(200):
            args = d.draw(rng)
            if repr(args) in seen:
                continue
            seen.add(repr(args))
            cases.append((args, d.oracle(*args)))
            if len(cases) == _N_TESTS + 1 - len(must):
                break
        # The example is a random case; the hidden tests hold the template's boundary cases, then random ones.
        cases = cases[:1] + [(a, d.oracle(*a)) for a in must] + cases[1:]
        # Constant answers (`return True`, `return 0`) must fail the hidden tests, so they need >= 2 outputs.
        # An identity answer (`return s`) must fail too.
        if (len(cases) == _N_TESTS + 1 and len({repr(out) for _, out in cases[1:]}) >= 2
                and (len(d.args) > 1 or any(repr(out) != repr(a[0]) for a, out in cases[1:]))):
            break
    else:  # pragma: no cover - a template bug, caught by the suite tests
        raise RuntimeError(f"template {template!r} cannot draw {_N_TESTS + 1} discriminative cases for {d.key}")
    sig = ", ".join(f"{a}: {t}" for a, t in d.args)
    (ex_args, ex_out), tests = cases[0], cases[1:]
    prompt = (
        f"def {d.name}({sig}) -> {d.returns}:\n"
        f'    """{d.doc}\n'
        f"    >>> {_call(d.name, ex_args)}\n"
        f"    {ex_out!r}\n"
        f'    """\n'
    )
    return SuiteTask(
        task_id=task_id,
        benchmark=BENCHMARK,
        prompt=prompt,
        tests=tuple(f"assert {_call(d.name, a)} == {out!r}\n" for a, out in tests),
        entry_point=d.name,
        reference=d.body,
        program_prefix=prompt,
        description=d.doc,
        template=template,
        family=TEMPLATES[template][0],
        key=repr(d.key),
    )


def _call(name: str, args: tuple) -> str:
    return f"{name}({', '.join(repr(a) for a in args)})"
