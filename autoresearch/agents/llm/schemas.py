"""The structured answers of the LLM roles, as pydantic models: what a planner, judge, analyzer, reviser and coder
must answer with. The field descriptions are part of the JSON schema the model is shown (json_schema_for), so they
are written for the model.

Lenient where a real answer is harmless to repair (pydantic's lax mode already turns "3" into 3.0 and "yes" into
True): unknown keys are ignored; a string where a list of strings is wanted becomes a one-item list; decisions and
kinds are matched case-insensitively with a few synonyms ("Approved" -> approve); flag types accept JSON-schema
spellings ("boolean", "integer", "number", "string"). Strict where a repair would guess: a missing field, a value
of the wrong kind for its flag, an `on` outside a flag's choices are validation errors, sent back to the model.

Bounds (`maxItems`, a required `flags`) appear in the schema only, never in validation: a grammar-constrained decoder
(llama.cpp's server turns a forced tool call's schema into a grammar) then closes every list, where a small model
otherwise repeats the same task until max_tokens cuts the JSON off (measured with SmolLM2-135M: 3 of 4 plans cut
off). A strong model's longer answer is still accepted. No `maxLength`: llama.cpp's converter nests one optional
per character, and a 2,500-character bound crashed its server (measured).
"""

from __future__ import annotations

import copy
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from autoresearch.agents.roles import Flag, TaskSpec

__all__ = ["FlagOut", "TaskOut", "PlanOut", "VerdictOut", "AnalysisOut", "RevisionOut", "EditOut", "task_from_out",
           "json_schema_for", "task_name"]

FlagValue = bool | int | float | str | None

_FLAG_TYPE_WORDS = {"boolean": "bool", "integer": "int", "number": "float", "double": "float", "str": "choice",
                    "string": "choice", "enum": "choice", "categorical": "choice", "literal": "choice"}
_DECISION_WORDS = {"approved": "approve", "accept": "approve", "accepted": "approve", "rejected": "reject",
                   "revision": "revise", "needs revision": "revise", "needs_revision": "revise", "revised": "revise"}


def _word(v: Any, synonyms: dict[str, str]) -> Any:
    if isinstance(v, str):
        w = v.strip().strip(".").lower()
        return synonyms.get(w, w)
    return v


def _bound(**kw: int) -> dict[str, Any]:
    """Schema-only bounds (see the module docstring): `Field(json_schema_extra=_bound(maxItems=3))`."""
    return dict(kw)


def _as_list(v: Any) -> Any:
    """A lone string as a one-item list (an empty one as []); None as []."""
    if v is None:
        return []
    if isinstance(v, str):
        return [v] if v.strip() else []
    return v


class _Out(BaseModel):
    model_config = ConfigDict(extra="ignore")


class FlagOut(_Out):
    """One config key the idea switches."""

    key: str = Field(description="the dotted config key, e.g. `model.qk_norm` (an existing key from the flag space, "
                                 "or a new one the coder adds)")
    type: Literal["bool", "choice", "int", "float"] = Field(
        description="bool | choice | int | float")
    off: FlagValue = Field(description="the baseline value: the config's current default, so that flag off = the "
                                       "baseline code path")
    on: FlagValue = Field(description="the idea's value")
    choices: list[FlagValue] | None = Field(default=None, description="type choice only: every allowed value",
                                            json_schema_extra=_bound(maxItems=12))
    low: float | None = Field(default=None, description="int/float only: the lower end of a sensible range")
    high: float | None = Field(default=None, description="int/float only: the upper end of a sensible range")
    log: bool = Field(default=False, description="int/float only: the range is searched on a log scale")

    @field_validator("type", mode="before")
    @classmethod
    def _type_word(cls, v: Any) -> Any:
        return _word(v, _FLAG_TYPE_WORDS)

    @model_validator(mode="after")
    def _values_fit_type(self) -> FlagOut:
        self.off = _coerce(self.key, self.type, "off", self.off)
        self.on = _coerce(self.key, self.type, "on", self.on)
        if self.type == "choice" and self.choices and self.on not in self.choices:
            raise ValueError(f"flag {self.key}: on={self.on!r} is not one of its choices {self.choices!r}")
        return self


def _coerce(key: str, kind: str, which: str, v: Any) -> Any:
    """`v` as a value of a flag of type `kind` (a bool flag's "true" -> True, an int flag's 4.0 -> 4); ValueError
    when it is not one."""
    if v is None or kind == "choice":
        return v
    if kind == "bool":
        if isinstance(v, bool):
            return v
        if isinstance(v, str) and v.strip().lower() in ("true", "false"):
            return v.strip().lower() == "true"
        if isinstance(v, int) and v in (0, 1):
            return bool(v)
    else:
        try:
            x = float(v) if not isinstance(v, bool) else None
        except ValueError:
            x = None
        if x is not None:
            if kind == "float":
                return x
            if x == int(x):
                return int(x)
    raise ValueError(f"flag {key}: {which}={v!r} is not {'an' if kind == 'int' else 'a'} {kind} value")


def _flags_required(schema: dict[str, Any]) -> None:
    """The schema asks for `flags` (validation still accepts none: task_check.py names that problem)."""
    schema["required"] = [*schema.get("required", []), "flags"]


class TaskOut(_Out):
    """One version of the idea: the flags it switches and the files a coder touches."""

    model_config = ConfigDict(extra="ignore", json_schema_extra=_flags_required)

    name: str = Field(description="short name for a git branch: lowercase letters, digits and `-`, e.g. "
                                  "`qk-norm-heads`")
    description: str = Field(description="what the idea does and why it may help, 1-3 sentences")
    flags: list[FlagOut] = Field(default_factory=list, description="the config keys the idea switches, each with its "
                                                                   "off (baseline) and on (idea) value",
                                 json_schema_extra=_bound(minItems=1, maxItems=6))
    files: list[str] = Field(default_factory=list, description="workspace-relative files the coder may touch; [] "
                                                               "when every flag already exists",
                             json_schema_extra=_bound(maxItems=12))
    expected_effect: str = Field(default="", description="what should change in the metric, and why")
    effect_size: float | None = Field(default=None, description="expected change of the metric, positive = "
                                                                "better; null when unknown")
    needs_code: bool = Field(default=False, description="true when a flag does not exist yet and a coder must add it")

    @field_validator("files", mode="before")
    @classmethod
    def _files_list(cls, v: Any) -> Any:
        return _as_list(v)


class PlanOut(_Out):
    """A planner's answer: the plan in markdown and the tasks it proposes."""

    plan_md: str = Field(description="the plan in markdown: the hypothesis, what changes, how it is measured")
    tasks: list[TaskOut] = Field(min_length=1, description="the tasks, best first (at least one)",
                                 json_schema_extra=_bound(maxItems=3))
    metrics: dict[str, Any] = Field(default_factory=dict, description='e.g. {"primary": "val_loss", '
                                                                      '"direction": "lower"}')


class VerdictOut(_Out):
    """A judge's answer on one implemented version."""

    decision: Literal["approve", "revise", "reject"] = Field(
        description="approve = correct and faithful to the spec; revise = fixable problems; reject = wrong idea")
    blocking_issues: list[str] = Field(default_factory=list, description="one line per problem that blocks approval "
                                                                         "([] on approve)",
                                                 json_schema_extra=_bound(maxItems=10))
    summary: str = Field(default="", description="one line: the decision's reason")

    @field_validator("decision", mode="before")
    @classmethod
    def _decision_word(cls, v: Any) -> Any:
        return _word(v, _DECISION_WORDS)

    @field_validator("blocking_issues", mode="before")
    @classmethod
    def _issues_list(cls, v: Any) -> Any:
        return _as_list(v)


class AnalysisOut(_Out):
    """An analyzer's reading of a finished study."""

    kind: Literal["win", "noise", "systems", "theory", "bug"] = Field(
        description="win = a real improvement; noise = within seed noise; systems = throughput/memory cost; theory = "
                    "the idea does not help the metric; bug = the implementation is wrong")
    summary: str = Field(description="one line")
    reasoning_md: str = Field(default="", description="the reasoning in markdown, citing the numbers")
    evidence_cited: list[str] = Field(default_factory=list, description="the numbers the reasoning rests on, e.g. "
                                                                        '"delta -0.012 +- 0.004, p=0.01"',
                                                json_schema_extra=_bound(maxItems=10))

    @field_validator("kind", mode="before")
    @classmethod
    def _kind_word(cls, v: Any) -> Any:
        return _word(v, {})

    @field_validator("summary", mode="before")
    @classmethod
    def _one_line(cls, v: Any) -> Any:
        return " ".join(v.split()) if isinstance(v, str) else v

    @field_validator("evidence_cited", mode="before")
    @classmethod
    def _cited_list(cls, v: Any) -> Any:
        return _as_list(v)


class RevisionOut(_Out):
    """A reviser's answer: stop the idea, or the next version's task."""

    stop: bool = Field(description="true = stop this idea (nothing worth trying next)")
    reason: str = Field(description="one line: why stop, or what the next version addresses")
    task: TaskOut | None = Field(default=None, description="the next version (required when stop is false)")

    @model_validator(mode="after")
    def _task_unless_stop(self) -> RevisionOut:
        if not self.stop and self.task is None:
            raise ValueError("give `task` (the next version) when stop is false, or set stop to true")
        return self


class EditOut(_Out):
    """One SEARCH/REPLACE edit of a file."""

    path: str = Field(description="workspace-relative file path")
    search: str = Field(description="the exact lines to find ('' = create the file)")
    replace: str = Field(description="the lines that replace them")


def task_name(name: str, idea: str = "") -> str:
    """`name` as a branch-safe task name (lowercase letters, digits, `-`, `.`; at most 48 chars); from the idea's
    first words when nothing is left."""
    out = re.sub(r"[^a-z0-9.-]+", "-", name.lower()).strip("-.")[:48].strip("-.")
    if not out:
        out = "-".join(re.findall(r"[a-z0-9]+", idea.lower())[:6])[:48].strip("-") or "idea"
    return out


def task_from_out(out: TaskOut, idea: str) -> TaskSpec:
    """The TaskSpec of a validated TaskOut (the name made branch-safe)."""
    flags = [Flag(f.key, f.type, off=f.off, on=f.on, choices=list(f.choices) if f.choices else None,
                  low=f.low, high=f.high, log=f.log) for f in out.flags]
    return TaskSpec(idea=idea, name=task_name(out.name, idea), description=out.description or idea, flags=flags,
                    files=list(out.files), expected_effect=out.expected_effect, effect_size=out.effect_size,
                    needs_code=out.needs_code)


def json_schema_for(model: type[BaseModel]) -> dict[str, Any]:
    """pydantic's JSON schema of `model` with every `$ref` inlined and `$defs` dropped: weak servers (llama.cpp's
    grammar converter, some OpenAI-compatible proxies, Anthropic tool schemas) handle a flat schema best."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any, seen: tuple[str, ...]) -> Any:
        """`node` (a schema) with its refs inlined and pydantic's automatic titles dropped (tokens a model reads)."""
        if isinstance(node, list):
            return [inline(v, seen) for v in node]
        if not isinstance(node, dict):
            return node
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.split("/")[-1]
            if name in seen:
                raise ValueError(f"{model.__name__}: recursive schema ({' -> '.join((*seen, name))}) cannot be "
                                 "inlined")
            rest = {k: v for k, v in node.items() if k != "$ref"}
            return {**inline(copy.deepcopy(defs[name]), (*seen, name)), **inline(rest, seen)}
        out: dict[str, Any] = {}
        for k, v in node.items():
            if k == "title" and isinstance(v, str):
                continue
            if k == "properties" and isinstance(v, dict):
                out[k] = {name: inline(sub, seen) for name, sub in v.items()}  # field names, not schema keywords
            else:
                out[k] = inline(v, seen)
        return out

    return inline(schema, ())
