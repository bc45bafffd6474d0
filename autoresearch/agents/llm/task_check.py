"""The semantic checks of a task an LLM proposed (planner, reviser), beyond its schema: each problem is one line sent
back to the model in a re-ask (structured.ask_structured's `validate=`).

What is checked, and what is quietly repaired instead (a repair never changes what the idea tests):
- a key of the config outside the flag space's sections (train, data, eval: infrastructure) is refused;
- a key of the config: `off` must be the config default (else re-ask: the model misread the config); `on` must be a
  value of the field's type (a float field's 3 becomes 3.0, an int field's 4.0 becomes 4) and differ from `off`;
  the type, choices and search range come from the config / flag space;
- a key the config lacks: only with a coder that edits (the task then needs code: set), else re-ask "choose from the
  flag space"; a key an earlier version of the idea used keeps that version's off value and type;
- the user's `--flag` values must be in the task; the task's flags and values must not repeat a tried task (memory);
- files must be inside the editable globs;
- a task without flags only when a coder adds them (the pipeline reads them back from the edited config).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from autoresearch.agents.coders.allowed_paths import first_match
from autoresearch.agents.llm.prompt_text import value
from autoresearch.agents.roles import Flag, TaskSpec
from autoresearch.testbeds.flags import config_fields, parse_user_flags

__all__ = ["check_task", "same_value"]

_MAX_KEYS_LISTED = 12


def same_value(a: Any, b: Any) -> bool:
    """Config values equal as a flag compares them: bools only equal bools, numbers within float rounding."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


def _coerce(kind: str, v: Any, choices: Sequence[Any] | None) -> tuple[bool, Any]:
    """(ok, `v` as a value of a `kind` flag)."""
    if v is None:
        return False, v
    if kind == "bool":
        return isinstance(v, bool), v
    if kind in ("int", "float"):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            return False, v
        if kind == "float":
            return True, float(v)
        return (True, int(v)) if float(v).is_integer() else (False, v)
    if choices:
        match = next((c for c in choices if same_value(c, v) or str(c) == str(v)), None)
        return (match is not None), (match if match is not None else v)
    return True, v


def _reference(key: str, config: Any, fields: dict[str, Any], space: dict[str, Flag],
               known: dict[str, Flag]) -> Flag | None:
    """What the config (or an earlier version) says about `key`: type, off = default, choices, range."""
    if key in fields:
        ref = parse_user_flags({key: fields[key][1]}, config)[0]
        sp = space.get(key)
        if sp is not None:
            ref = dataclasses.replace(ref, choices=ref.choices or sp.choices, low=sp.low, high=sp.high, log=sp.log)
        return ref
    return known.get(key)


def check_task(task: TaskSpec, *, config: Any = None, flag_space: Sequence[Flag] = (),
               known: Sequence[Flag] = (), tried: Sequence[TaskSpec] = (), editable: Sequence[str] = (),
               coder_edits: bool | None = None, user_flags: Sequence[Flag] = ()) -> tuple[TaskSpec, list[str]]:
    """(the task with its flags repaired, one line per problem); no problems = the task may be used. `config` = the
    baseline config (None: unknown, e.g. to the reviser); `known` = flags of earlier versions (their off values are
    trusted); `coder_edits` None = unknown (a key neither the config nor `known` holds is then allowed as given)."""
    fields = config_fields(config) if config is not None else {}
    space = {f.key: f for f in flag_space}
    known_by_key = {f.key: f for f in known}
    sections = {k.split(".")[0] for k in space}
    problems: list[str] = []
    flags: list[Flag] = []
    needs_code = task.needs_code
    seen: set[str] = set()
    for f in task.flags:
        if f.key in seen:
            problems.append(f"flag {f.key} appears twice; give each key once")
            continue
        seen.add(f.key)
        if f.key in fields and sections and f.key.split(".")[0] not in sections:
            problems.append(f"flag {f.key} is infrastructure (training length, data, evaluation), not an idea; "
                            f"use keys under {', '.join(sorted(sections))}")
            continue
        ref = _reference(f.key, config, fields, space, known_by_key)
        if ref is None:
            if config is not None and not coder_edits:
                keys = ", ".join(list(dict.fromkeys(space))[:_MAX_KEYS_LISTED]) or "(none)"
                problems.append(f"flag {f.key} is not a config key, and no coder edits code in this run; choose from "
                                f"the flag space: {keys}")
                continue
            if f.on is None:
                problems.append(f"flag {f.key} has no `on` value; give the idea's value")
            needs_code = needs_code or config is not None  # unknown config (reviser): the model's word stands
            flags.append(f)
            continue
        ok_off, off = _coerce(ref.type, f.off, ref.choices)
        if not (ok_off and same_value(off, ref.off)):
            src = "the config default" if f.key in fields else "its off value in the earlier version"
            problems.append(f"flag {f.key}: off must be {src} {value(ref.off)} (the baseline), got {value(f.off)}")
            continue
        ok_on, on = _coerce(ref.type, f.on, ref.choices)
        if not ok_on:
            what = f"one of {', '.join(value(c) for c in ref.choices)}" if ref.choices else f"{'an' if ref.type[0] in 'aeiou' else 'a'} {ref.type} value"
            problems.append(f"flag {f.key}: on must be {what}, got {value(f.on)}")
            continue
        if same_value(on, ref.off):
            problems.append(f"flag {f.key}: on {value(on)} equals off (the default), so the idea arm would be the "
                            "baseline; give a different value")
            continue
        flags.append(dataclasses.replace(ref, on=on))
    if not task.flags and not (needs_code and coder_edits):
        problems.append("the task has no flags; express the idea as at least one config key with off and on values")
    for uf in user_flags:
        mine = next((f for f in flags if f.key == uf.key), None)
        if mine is None or not same_value(mine.on, uf.on):
            problems.append(f"the user fixed flag {uf.key}={value(uf.on)}; include it with exactly that value")
    files = [p.strip().removeprefix("./") for p in task.files if p.strip()]
    if editable:
        outside = [p for p in files if first_match(p, editable) is None]
        if outside:
            problems.append(f"file(s) {', '.join(outside)} are outside the editable paths ({', '.join(editable)}); "
                            "list only editable files")
    out = dataclasses.replace(task, flags=flags, files=files, needs_code=needs_code)
    if not problems and flags:
        sig = out.signature()
        same = next((t for t in tried if t.flags and t.signature() == sig), None)
        if same is not None:
            problems.append(f"these flags and values were already tried as {same.name}; propose something that "
                            "was not tried (another key or another value)")
    return out, problems
