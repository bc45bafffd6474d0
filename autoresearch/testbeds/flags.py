"""Idea flags of a testbed config: the typed `Flag`, the flag space a planner explores, and the flags a coder's edit
added (read back from the config before and after the edit).

A flag is a dotted config key (`model.qk_norm`) with an `off` value — the baseline, equal to the config's value so
that flag off = the baseline code path — and the idea's `on` value. The flag space of a config (`config_flags`):
- every boolean field of the idea sections gives its negation; every Literal field gives each other choice;
- every numeric key of the testbed's `search_ranges` gives a numeric flag (on=None: a planner samples it);
- infrastructure (train.*, eval.*, data.*) is never an idea: only the declared idea sections are walked.
It lives in the testbeds layer because `Testbed.flag_space` returns it; the agents layer re-exports it.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from autoresearch.errors import ConfigError
from autoresearch.harness.config import parse_override

__all__ = ["Flag", "FLAG_TYPES", "SearchRange", "config_flags", "config_fields", "flags_from_config_diff",
           "parse_user_flags", "complete_flags"]

FlagType = Literal["bool", "choice", "int", "float"]
FLAG_TYPES: tuple[str, ...] = ("bool", "choice", "int", "float")
SearchRange = tuple[float, float, str]
"""(low, high, "log" | "linear") of a numeric flag."""


@dataclass
class Flag:
    """One config key an idea switches (a dotted `--set` key such as `model.qk_norm`)."""

    key: str
    type: FlagType
    off: Any
    """the baseline value: the config's value, so that flag off = the baseline code path."""
    on: Any
    """the idea's value (None in a flag space for a numeric flag not sampled yet, or a value still to be given)."""
    choices: list[Any] | None = None
    """type choice: every allowed value."""
    low: float | None = None
    """int/float: the searched range's lower end."""
    high: float | None = None
    log: bool = False
    """int/float: search the range on a log scale."""

    def __post_init__(self) -> None:
        if self.type not in FLAG_TYPES:
            raise ConfigError(f"flag {self.key}: type {self.type!r} is not one of {', '.join(FLAG_TYPES)}")
        if self.type == "choice" and self.choices and self.on is not None and self.on not in self.choices:
            raise ConfigError(f"flag {self.key}: value {self.on!r} is not one of its choices "
                              f"{', '.join(map(repr, self.choices))}")

    @property
    def numeric(self) -> bool:
        return self.type in ("int", "float")

    def with_on(self, value: Any) -> Flag:
        """A copy switching to `value`."""
        return dataclasses.replace(self, on=value)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: Any) -> Flag:
        if not isinstance(d, dict):
            raise ConfigError(f"a flag must be a mapping (key, type, off, on), got {type(d).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(map(str, d)) - names)
        if unknown:
            raise ConfigError(f"flag {d.get('key', '?')} has unknown key(s) {', '.join(unknown)}; "
                              f"use {', '.join(sorted(names))}")
        missing = [k for k in ("key", "type", "off", "on") if k not in d]
        if missing:
            raise ConfigError(f"flag {d.get('key', '?')} lacks {', '.join(missing)}; give key, type, off and on")
        return cls(**d)


def config_fields(cfg: Any, prefix: str = "") -> dict[str, tuple[Any, Any]]:
    """dotted key -> (resolved type, value) of every leaf field of a (nested) config dataclass."""
    out: dict[str, tuple[Any, Any]] = {}
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        key, value = f"{prefix}{f.name}", getattr(cfg, f.name)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            out.update(config_fields(value, key + "."))
        else:
            out[key] = (hints.get(f.name, Any), value)
    return out


def _flag_type(tp: Any, value: Any) -> str | None:
    if tp is bool or isinstance(value, bool):
        return "bool"
    if get_origin(tp) is Literal:
        return "choice"
    if tp is int or (tp is Any and isinstance(value, int)):
        return "int"
    if tp is float or (tp is Any and isinstance(value, float)):
        return "float"
    return None


def config_flags(cfg: Any, sections: Iterable[str], ranges: Mapping[str, SearchRange] | None = None) -> list[Flag]:
    """The flag space of `cfg`: bool/choice alternatives of the fields under `sections` (a section name, or a
    top-level field's name such as codegen's `arch`), then one numeric flag per `ranges` key, in that order.
    A `ranges` entry that is not a numeric field of `cfg`, or whose range is malformed, is a one-line ConfigError."""
    fields = config_fields(cfg)
    flags: list[Flag] = []
    for section in sections:
        for key, (tp, value) in fields.items():
            if key != section and not key.startswith(section + "."):
                continue
            kind = _flag_type(tp, value)
            if kind == "bool":
                flags.append(Flag(key, "bool", off=value, on=not value))
            elif kind == "choice":
                choices = list(get_args(tp))
                flags.extend(Flag(key, "choice", off=value, on=c, choices=choices) for c in choices if c != value)
    for key, rng in (ranges or {}).items():
        if key not in fields:
            raise ConfigError(f"search range {key!r} is not a config key of {type(cfg).__name__}; fix the "
                              "testbed's `search_ranges`")
        tp, value = fields[key]
        kind = _flag_type(tp, value)
        if kind not in ("int", "float"):
            raise ConfigError(f"search range {key!r}: the field is not numeric ({value!r}); search ranges are for "
                              "int/float fields, bool and choice fields are in the flag space already")
        low, high, scale = _check_range(key, rng)
        if kind == "int":
            low, high = math.ceil(low), math.floor(high)
        flags.append(Flag(key, kind, off=value, on=None, low=low, high=high, log=scale == "log"))  # type: ignore[arg-type]
    return flags


def _check_range(key: str, rng: Any) -> tuple[float, float, str]:
    ok = isinstance(rng, (tuple, list)) and len(rng) == 3 and rng[2] in ("log", "linear")
    if ok:
        low, high = float(rng[0]), float(rng[1])
        ok = math.isfinite(low) and math.isfinite(high) and low < high and (rng[2] == "linear" or low > 0)
    if not ok:
        raise ConfigError(f"search range {key!r} = {rng!r} must be (low, high, 'log'|'linear') with low < high "
                          "(and low > 0 for log); fix the testbed's `search_ranges`")
    return float(rng[0]), float(rng[1]), str(rng[2])


def flags_from_config_diff(before: Any, after: Any) -> list[Flag]:
    """The flags a coder's edit added: every config key of `after` (the edited testbed's config) that `before` (the
    base commit's) lacks, with off = its new default. A new bool gives on = the negation; any other new field needs
    its on value from the user (`--flag KEY=VALUE`), so its `on` is None (see `complete_flags`)."""
    old = config_fields(before)
    out: list[Flag] = []
    for key, (tp, value) in config_fields(after).items():
        if key in old:
            continue
        kind = _flag_type(tp, value) or "choice"
        choices = list(get_args(tp)) if get_origin(tp) is Literal else None
        out.append(Flag(key, kind, off=value, on=(not value) if kind == "bool" else None, choices=choices))  # type: ignore[arg-type]
    return out


def parse_user_flags(items: Mapping[str, Any] | Iterable[str], cfg: Any | None = None) -> list[Flag]:
    """Flags of `--flag KEY=VALUE` (strings, values parsed as YAML scalars) or a {key: value} mapping (values taken
    as given). With `cfg`
    holding KEY, off = cfg's value and the type follows the field; a key the config lacks yet (a coder will add it)
    gets off=None, filled in after the edit by `complete_flags`."""
    pairs = list(items.items()) if isinstance(items, Mapping) else [parse_override(str(s)) for s in items]
    fields = config_fields(cfg) if cfg is not None else {}
    out: list[Flag] = []
    for key, value in pairs:
        if key in fields:
            tp, off = fields[key]
            kind = _flag_type(tp, off) or "choice"
            choices = list(get_args(tp)) if get_origin(tp) is Literal else None
            out.append(Flag(key, kind, off=off, on=value, choices=choices))  # type: ignore[arg-type]
        else:
            out.append(Flag(key, _value_type(value), off=None, on=value))  # type: ignore[arg-type]
    return out


def _value_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    return "float" if isinstance(value, float) else "choice"


def complete_flags(given: list[Flag], before: Any, after: Any) -> list[Flag]:
    """The task's flags after a coder's edit, read against the edited config `after` (the base config: `before`):
    each given flag gets off = `after`'s value (its type from the field); each new bool field of the diff that was
    not given is added (on = its negation). A one-line ConfigError when a given key is not in `after` (the edit did
    not add it), when a new non-bool field has no value (`--flag KEY=VALUE`), or when no flag results at all (the
    idea cannot be expressed as a flag) — the pipeline treats these as design problems."""
    fields = config_fields(after)
    keys = {f.key for f in given}
    missing = sorted(k for k in keys if k not in fields)
    if missing:
        raise ConfigError(f"flag(s) {', '.join(missing)} are not config keys after the edit; the edit must add each "
                          "as a config field whose default keeps the baseline path (or fix --flag)")
    out = parse_user_flags({f.key: f.on for f in given}, after)
    new = [f for f in flags_from_config_diff(before, after) if f.key not in keys]
    unset = [f.key for f in new if f.on is None]
    if unset:
        raise ConfigError(f"the edit added config field(s) {', '.join(unset)} without an on value; give it with "
                          f"--flag {unset[0]}=VALUE")
    out += new
    if not out:
        raise ConfigError("the edit added no config field and no --flag was given: the idea is not expressed as a "
                          "flag; add a config field whose default keeps the baseline path (or pass --flag KEY=VALUE)")
    return out
