"""The problems of an adversarial run: a `Problem` (statement, signature, reference, hidden and visible tests) and
`load_problems` for the generated task suite, MBPP (local JSONL), HumanEval and a user JSON file.

What each source gives (docs/adversarial.md has the table):
    suite      prompt = signature + one-sentence docstring + one `>>>` example; program = prompt + completion (a body);
               hidden = the task's 4 asserts; visible = the `>>>` example as one assert. Splits: train = the suite's
               train split, heldout = its held-out split, val = held-out problems after the first `val_offset`
               (pass eval.heldout_problems), so val never overlaps the scored problems.
    mbpp       prompt = the description and the first test assert in a docstring (the harness's MBPP prompt, one
               example instead of three); program = the completion alone (a whole program, MBPP's format); hidden =
               the 3 standard asserts (scores match plain MBPP pass@1), visible = the first of them, which the prompt
               shows anyway. Splits: train 601-974, heldout 11-510 (test), val 511-600. The references listed in
               harness.code_tasks.MBPP_KNOWN_BAD (they fail their own tests in CPython 3.11) are left out.
    humaneval  HumanEval's prompt; program = prompt + completion; hidden = its `check` test; visible = the
               docstring's `>>>` examples that parse as `call == literal` (none where the docstring has none, and
               examples the reference itself fails are dropped on validation). Split: heldout only (val = after
               `val_offset`); train is refused (164 problems, no train split).
    json       `{"problems": [{...}, ...]}` with the fields of `Problem.to_dict`; an optional per-problem "split"
               (train | heldout | val, default heldout). Bad fields give one line naming problem, field, value, fix.

Every reference is validated on load (unless `validate=False`): the program of the reference runs in the sandbox
against its hidden and visible tests, and a failure is a one-line DataError naming the problem. Pass the run's
`Judge` (or a harness `Pool`) as `validate_with` so loading reuses the run's sandbox pool.
"""

from __future__ import annotations

import ast
import difflib
import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

from autoresearch.errors import ConfigError, DataError
from autoresearch.harness.code_tasks import MBPP_KNOWN_BAD, CodeTask, load_humaneval, load_mbpp, mbpp_prompt
from autoresearch.harness.sandbox import Job, ProgramResult
from autoresearch.testbeds.common.tasks import SuiteTask, make_suite

__all__ = ["Problem", "ProblemSplit", "SOURCES", "load_problems", "validate_problems", "docstring_examples",
           "problems_from_json", "suite_problem", "is_generated_suite"]

ProblemSplit = Literal["train", "heldout", "val"]
SOURCES = ("suite", "mbpp", "humaneval", "json")
_SPLITS = ("train", "heldout", "val")
_MBPP_SPLIT = {"train": "train", "heldout": "test", "val": "validation"}
_JSON_REQUIRED = ("id", "prompt", "entry_point", "reference", "hidden_tests")
_VALIDATE_TEST_S, _VALIDATE_PROGRAM_S = 10.0, 60.0


@dataclass(frozen=True)
class Problem:
    """One programming problem as both roles see it; `program(completion)` is what the sandbox runs."""

    id: str
    """"suite-train/12", "MBPP/601", "HumanEval/0", or a user id."""
    prompt: str
    """What both roles see: signature + docstring (suite, HumanEval, usually json), MBPP: a docstring."""
    entry_point: str
    reference: str
    """A reference completion: program(reference) passes the hidden and the visible tests."""
    hidden_tests: tuple[str, ...]
    """Assert snippets never shown to a model (scoring and equivalent-mutant detection only)."""
    visible_tests: tuple[str, ...] = ()
    """Assert snippets of the prompt's example(s); may be shown and trained on."""
    program_prefix: str = ""
    """program(completion) = program_prefix + completion (suite, HumanEval: the prompt; MBPP: empty)."""
    source: str = "json"
    """suite | mbpp | humaneval | json."""
    template: str = ""
    """The suite template name (suite problems only)."""
    description: str = ""
    """The one-sentence statement."""

    def program(self, completion: str) -> str:
        return self.program_prefix + completion

    def to_dict(self) -> dict[str, Any]:
        """The user-JSON form (tuples as lists); `from_dict(p.to_dict(), ...) == p`."""
        d = asdict(self)
        d["hidden_tests"], d["visible_tests"] = list(self.hidden_tests), list(self.visible_tests)
        return d

    @classmethod
    def from_dict(cls, d: Any, where: str) -> Problem:
        """A problem from user JSON; anything wrong is a one-line DataError naming `where`, the field and the fix.

        Required: id, prompt, entry_point, reference, hidden_tests (a non-empty list of assert snippets).
        Optional: visible_tests, program_prefix (default: the prompt, i.e. the reference continues the prompt;
        give "" when the reference is a whole program), description, source, template; "split" is read by the loader.
        """
        if not isinstance(d, dict):
            raise DataError(f"{where}: a problem must be a JSON object, got {type(d).__name__}; "
                            'write {"id": ..., "prompt": ..., "entry_point": ..., "reference": ..., "hidden_tests": [...]}')
        known = {f.name for f in fields(cls)} | {"split"}
        for key in d:
            if key not in known:
                close = difflib.get_close_matches(str(key), sorted(known), n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"known fields: {', '.join(sorted(known))}"
                raise DataError(f"{where}: unknown field {key!r}; {hint}")
        for key in _JSON_REQUIRED:
            if key not in d:
                raise DataError(f"{where}: missing required field {key!r}; add it (required: {', '.join(_JSON_REQUIRED)})")
        pid = d["id"]
        if not isinstance(pid, str) or not pid.strip():
            raise DataError(f"{where}: field 'id' must be a non-empty string, got {pid!r}; give the problem a name")
        at = f"{where} (problem {pid!r})"
        for key in ("prompt", "entry_point", "reference", "program_prefix", "description", "source", "template"):
            if key in d and not isinstance(d[key], str):
                raise DataError(f"{at}: field {key!r} must be a string, got {type(d[key]).__name__} {d[key]!r:.60}; "
                                "quote it")
        if not d["entry_point"].isidentifier():
            raise DataError(f"{at}: field 'entry_point' must be a Python function name, got {d['entry_point']!r}; "
                            "give the name of the function the tests call")
        if not d["reference"].strip():
            raise DataError(f"{at}: field 'reference' is empty; give a reference solution that passes the tests")
        tests: dict[str, tuple[str, ...]] = {}
        for key in ("hidden_tests", "visible_tests"):
            raw = d.get(key, [])
            if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
                raise DataError(f"{at}: field {key!r} must be a list of strings (assert snippets), got {raw!r:.80}; "
                                'write e.g. ["assert f(1) == 2"]')
            for i, t in enumerate(raw):
                try:
                    ast.parse(t)
                except SyntaxError as e:
                    raise DataError(f"{at}: {key}[{i}] does not parse ({e.msg}): {t!r:.80}; fix the snippet") from None
            tests[key] = tuple(t if t.endswith("\n") else t + "\n" for t in raw)
        if not tests["hidden_tests"]:
            raise DataError(f"{at}: field 'hidden_tests' is empty; give at least one assert (a problem without "
                            "hidden tests cannot be scored)")
        prompt = d["prompt"]
        return cls(id=pid, prompt=prompt, entry_point=d["entry_point"], reference=d["reference"],
                   hidden_tests=tests["hidden_tests"], visible_tests=tests["visible_tests"],
                   program_prefix=d.get("program_prefix", prompt), source=d.get("source", "json"),
                   template=d.get("template", ""), description=d.get("description", ""))


# --- docstring examples -------------------------------------------------------------------------------------------
_EXAMPLE = re.compile(r"^\s*>>> (.+)$")


def docstring_examples(prompt: str, entry_point: str) -> tuple[str, ...]:
    """`assert call == expected` for each `>>> call` line of the prompt whose next line is a Python literal and whose
    call is an expression calling `entry_point` (other examples, e.g. prints or multi-line ones, are skipped)."""
    lines = prompt.splitlines()
    out: list[str] = []
    for i, line in enumerate(lines[:-1]):
        m = _EXAMPLE.match(line)
        nxt = lines[i + 1].strip()
        if not m or not nxt or nxt.startswith(">>>") or nxt.endswith('"""') or nxt.endswith("'''"):
            continue
        call = m.group(1).strip()
        try:
            tree = ast.parse(call, mode="eval")
            ast.literal_eval(nxt)
        except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
            continue
        top = tree.body
        if isinstance(top, ast.Call) and isinstance(top.func, ast.Name) and top.func.id == "print":
            continue  # doctest output of print(...) is text, not the value
        if not any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == entry_point
                   for n in ast.walk(tree)):
            continue
        out.append(f"assert {call} == {nxt}\n")
    return tuple(out)


# --- sources --------------------------------------------------------------------------------------------------------
_GENERATED: set[tuple[str, str]] = set()  # (prompt, reference) of every suite problem this process generated


def is_generated_suite(problem: Problem) -> bool:
    """True when `problem`'s prompt and reference are those of a suite task generated in this process: template code
    written by this package, safe to run in-process (stages.canonical_tests). A user file claiming source "suite"
    is not trusted."""
    return problem.source == "suite" and (problem.prompt, problem.reference) in _GENERATED


def suite_problem(task: SuiteTask, split: str, index: int) -> Problem:
    """A suite task as a Problem, id "suite-<split>/<index>"."""
    _GENERATED.add((task.prompt, task.reference))
    return Problem(id=f"suite-{split}/{index}", prompt=task.prompt, entry_point=task.entry_point,
                   reference=task.reference, hidden_tests=tuple(task.tests),
                   visible_tests=docstring_examples(task.prompt, task.entry_point), program_prefix=task.program_prefix,
                   source="suite", template=task.template, description=task.description)


def _suite(split: str, n: int | None, seed: int, val_offset: int) -> list[Problem]:
    if n is None:
        raise ConfigError("source=suite needs a number of problems `n`; set data.train_problems / "
                          "eval.heldout_problems")
    if split == "val":
        tasks = make_suite("heldout", val_offset + n, seed)[val_offset:]
        return [suite_problem(t, "val", val_offset + i) for i, t in enumerate(tasks)]
    return [suite_problem(t, split, i) for i, t in enumerate(make_suite(split, n, seed))]  # type: ignore[arg-type]


def _mbpp_problem(t: CodeTask) -> Problem:
    first = t.tests[0] if t.tests else ""
    visible = (first,) if first and not t.setup_code else ()
    prompt = mbpp_prompt(t.description, [first.strip()] if visible else [])
    ref = t.reference if t.reference.endswith("\n") else t.reference + "\n"
    return Problem(id=t.task_id, prompt=prompt, entry_point=t.entry_point, reference=ref, hidden_tests=t.tests,
                   visible_tests=visible, program_prefix="", source="mbpp", description=t.description.strip())


def _humaneval_problem(t: CodeTask) -> Problem:
    doc = ""
    m = re.search(r'("""|\'\'\')\s*(.+?)(\n\s*\n|>>>|\1)', t.prompt, re.S)
    if m:
        doc = " ".join(m.group(2).split())
    return Problem(id=t.task_id, prompt=t.prompt, entry_point=t.entry_point, reference=t.reference,
                   hidden_tests=t.tests, visible_tests=docstring_examples(t.prompt, t.entry_point),
                   program_prefix=t.program_prefix, source="humaneval", description=doc)


def problems_from_json(path: str | Path) -> list[tuple[str, Problem]]:
    """(split, Problem) for every problem of a user JSON file `{"problems": [...]}`; one-line DataError otherwise."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"problems file {str(p)!r} does not exist; pass a JSON file like examples/adversarial_problems.json")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"problems file {str(p)!r} is not valid JSON ({e}); fix the file") from None
    if not isinstance(data, dict) or not isinstance(data.get("problems"), list):
        raise DataError(f'problems file {str(p)!r} must be an object {{"problems": [...]}}, got '
                        f"{type(data).__name__}{' without a problems list' if isinstance(data, dict) else ''}; "
                        "wrap the problems in that key")
    out: list[tuple[str, Problem]] = []
    seen: set[str] = set()
    for i, d in enumerate(data["problems"]):
        where = f"{p.name} problems[{i}]"
        prob = Problem.from_dict(d, where)
        split = d.get("split", "heldout")
        if split not in _SPLITS:
            raise DataError(f"{where} (problem {prob.id!r}): field 'split' must be one of {', '.join(_SPLITS)}, "
                            f"got {split!r}; use heldout (the default) for problems to score")
        if prob.id in seen:
            raise DataError(f"{where}: duplicate id {prob.id!r}; give every problem its own id")
        seen.add(prob.id)
        out.append((split, prob))
    if not out:
        raise DataError(f"problems file {str(p)!r} has no problems; add at least one")
    return out


def load_problems(source: str, *, split: str = "heldout", n: int | None = None, seed: int = 0,
                  path: str | Path = "", val_offset: int = 0, validate: bool = True,
                  validate_with: Any = None) -> list[Problem]:
    """The problems of `split` (train | heldout | val) from `source` (suite | mbpp | humaneval | a .json path).

    `n`: how many (suite: required; others: the first n, default all). `seed`: the suite's seed. `path`: the MBPP
    JSONL (default: harness.code_tasks.default_mbpp_path) or the JSON file (also accepted as `source`).
    `val_offset` (suite, humaneval): val = problems of the held-out split after the first `val_offset`.
    `validate`: run every reference in the sandbox (see `validate_problems`) through `validate_with` (the run's
    Judge or a harness Pool; default: a temporary Judge with the default RewardConfig).
    """
    if split not in _SPLITS:
        raise ConfigError(f"problem split must be one of {', '.join(_SPLITS)}, got {split!r}; use heldout")
    if n is not None and n < 0:
        raise ConfigError(f"number of problems must be >= 0, got {n}; ask for a positive number")
    if source.endswith(".json") or source == "json":
        file = path if source == "json" else source
        if not file:
            raise ConfigError("source=json needs a path to the problems file; use data.source=PATH.json")
        probs = [p for s, p in problems_from_json(file) if s == split]
        if not probs:
            raise DataError(f"problems file {str(file)!r} has no problems of split {split!r}; set their \"split\" "
                            "field or ask for another split")
    elif source == "suite":
        probs = _suite(split, n, seed, val_offset)
    elif source == "mbpp":
        tasks = load_mbpp(path or None, _MBPP_SPLIT[split])
        probs = [_mbpp_problem(t) for t in tasks if t.task_id not in MBPP_KNOWN_BAD]
    elif source == "humaneval":
        if split == "train":
            raise ConfigError("HumanEval has no train split (164 problems, all held out); train on data.source=suite "
                              "or mbpp and score on humaneval")
        probs = [_humaneval_problem(t) for t in load_humaneval()]
        probs = probs[val_offset:] if split == "val" else probs
    else:
        close = difflib.get_close_matches(source, list(SOURCES), n=1)
        hint = f"did you mean {close[0]!r}?" if close else "use suite, mbpp, humaneval or a PATH.json"
        raise ConfigError(f"unknown problem source {source!r}; {hint}")
    if n is not None:
        probs = probs[:n]
    if validate and probs:
        probs = validate_problems(probs, validate_with)
    return probs


# --- validation -------------------------------------------------------------------------------------------------------
def _run(runner: Any, jobs: list[Job]) -> list[ProgramResult]:
    if hasattr(runner, "run") and not hasattr(runner, "map"):
        return list(runner.run(jobs))  # the adversarial Judge
    return list(runner.map(jobs))  # a harness Pool


def validate_problems(problems: Sequence[Problem], runner: Any = None) -> list[Problem]:
    """Run each reference against its hidden + visible tests in the sandbox; return the problems (HumanEval: with
    the docstring examples its reference fails dropped). A failing reference is a one-line DataError naming its id.

    `runner`: a `Judge` (adversarial/judge.py) or a harness `Pool`; None opens a temporary Judge.
    """
    if runner is None:
        from autoresearch.testbeds.adversarial.judge import Judge

        with Judge() as judge:
            return validate_problems(problems, judge)
    # Generous limits: a reference that is only slow on a loaded machine is not wrong (MBPP/123 takes 2.4-7.3 s).
    jobs = [Job(program=p.program(p.reference), tests=p.hidden_tests + p.visible_tests, id=p.id,
                test_timeout_s=_VALIDATE_TEST_S, program_timeout_s=_VALIDATE_PROGRAM_S) for p in problems]
    out: list[Problem] = []
    for p, r in zip(problems, _run(runner, jobs), strict=True):
        n_hidden = len(p.hidden_tests)
        bad = [i for i, t in enumerate(r.tests) if not t.passed]
        if not r.program.passed:
            raise DataError(f"problem {p.id}: its reference fails its own tests ({r.program.status} in the program: "
                            f"{r.program.exc_type} {r.program.message:.80}); fix or drop it")
        complete = len(r.tests) == n_hidden + len(p.visible_tests)
        if p.source == "humaneval" and complete and bad and min(bad) >= n_hidden:
            keep = tuple(t for i, t in enumerate(p.visible_tests) if n_hidden + i not in bad)
            out.append(replace(p, visible_tests=keep))
            continue
        if bad or not complete:
            i = bad[0] if bad else len(r.tests)
            status = r.tests[i].status if i < len(r.tests) else r.status
            which = f"hidden test {i}" if i < n_hidden else f"visible test {i - n_hidden}"
            raise DataError(f"problem {p.id}: its reference fails its own tests ({status} on {which}); fix or drop it")
        out.append(p)
    return out
