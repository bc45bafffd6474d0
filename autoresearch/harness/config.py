"""Typed config machinery: dataclasses <-> dicts/YAML, `--set a.b=v` overrides, one-line errors.

Configs are plain dataclasses owned by the component they configure (STYLE.md §3). Each field carries a one-line
help text in its metadata (`param(default, "help")`), which doubles as CLI help. Loading is strict: an unknown key is
an error with a "did you mean", and a value of the wrong type names the field, the value and the expected type.

Every numeric field declares its valid range with the field (`param(0.9, "beta1", ge=0, lt=1)`); a config's
`__post_init__` calls `check_ranges(self, section)`, so presets, YAML files and `--set` overrides are all checked, and
NaN/inf are refused for every float. A guard test asserts that every numeric field of every config declares a range.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

from autoresearch.errors import ConfigError

__all__ = [
    "param",
    "yaml_where",
    "to_dict",
    "from_dict",
    "apply_overrides",
    "parse_override",
    "load_yaml",
    "save_yaml",
    "field_help",
    "field_ranges",
    "require",
    "check_ranges",
    "Range",
    "blame_overrides",
]

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Range:
    """Closed or open bounds of a numeric field; `None` = unbounded on that side."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def contains(self, v: float) -> bool:
        if isinstance(v, float) and not math.isfinite(v):
            return False
        if self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo):
            return False
        return not (self.hi is not None and (v >= self.hi if self.hi_open else v > self.hi))

    def __str__(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"in {'(' if self.lo_open else '['}{_num(self.lo)}, {_num(self.hi)}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f"{'>' if self.lo_open else '>='} {_num(self.lo)}"
        if self.hi is not None:
            return f"{'<' if self.hi_open else '<='} {_num(self.hi)}"
        return "finite"


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def param(default: Any, help: str, *, ge: float | None = None, gt: float | None = None, le: float | None = None,
          lt: float | None = None, **kw: Any) -> Any:
    """A dataclass field with a default, a one-line help text and, for numbers, its valid range (ge/gt/le/lt).

    Mutable defaults use a factory. For a list of numbers the range applies to each item.
    """
    meta: dict[str, Any] = {"help": help}
    if ge is not None or gt is not None or le is not None or lt is not None:
        meta["range"] = Range(lo=gt if gt is not None else ge, hi=lt if lt is not None else le,
                              lo_open=gt is not None, hi_open=lt is not None)
    if isinstance(default, (list, dict, set)) or dataclasses.is_dataclass(default):
        proto = default
        return dataclasses.field(default_factory=lambda: _copy(proto), metadata=meta, **kw)
    return dataclasses.field(default=default, metadata=meta, **kw)


def _copy(x: Any) -> Any:
    import copy

    return copy.deepcopy(x)


def require(ok: bool, field: str, value: Any, rule: str, fix: str) -> None:
    """Raise a one-line ConfigError "`field` rule, got value; fix" unless `ok`."""
    if not ok:
        raise ConfigError(f"`{field}` {rule}, got {value!r}; {fix}")


def check_ranges(cfg: Any, section: str = "") -> None:
    """Raise a one-line ConfigError for the first field of dataclass `cfg` outside its declared range.

    NaN and inf are refused for every float field, with or without a declared range.
    """
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        rng: Range | None = f.metadata.get("range")
        items = value if isinstance(value, (list, tuple)) else [value]
        for v in items:
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                continue
            finite = not isinstance(v, float) or math.isfinite(v)
            if finite and (rng is None or rng.contains(v)):
                continue
            rule = f"must be {rng}" if rng is not None else "must be a finite number"
            if rng is not None and not finite:
                rule = f"must be a finite number {rng}"
            raise ConfigError(f"`{_join(section, f.name)}` {rule}, got {value!r}; use e.g. {_default_of(f)!r}")


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else None  # type: ignore[misc]


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain, YAML-safe dict of a (nested) dataclass; tuples become lists."""

    def conv(x: Any) -> Any:
        if dataclasses.is_dataclass(x) and not isinstance(x, type):
            return {f.name: conv(getattr(x, f.name)) for f in dataclasses.fields(x)}
        if isinstance(x, (list, tuple)):
            return [conv(v) for v in x]
        if isinstance(x, dict):
            return {k: conv(v) for k, v in x.items()}
        if isinstance(x, Path):
            return str(x)
        return x

    return conv(cfg)


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unknown(key: str, options: list[str], where: str) -> ConfigError:
    close = difflib.get_close_matches(key, options, n=1)
    hint = f"did you mean `{_join(where, close[0])}`?" if close else f"valid keys: {', '.join(sorted(options))}"
    return ConfigError(f"unknown config key `{_join(where, key)}`; {hint}")


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_INT = re.compile(r"[+-]?\d+")


def _coerce(tp: Any, value: Any, where: str) -> Any:
    """Check/convert `value` to type `tp`; raise ConfigError naming `where` otherwise."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(a, value, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if len(errors) == 1 else f"`{where}` got {value!r}; expected {_tname(tp)}")
    if origin is Literal:
        choices = get_args(tp)
        if value not in choices:
            close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
            hint = f"did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"`{where}` must be one of {', '.join(repr(c) for c in choices)}, got {value!r}; {hint}".rstrip("; ")
            )
        return value
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            names = [f.name for f in dataclasses.fields(tp)][:4]
            raise ConfigError(f"`{where}` must be a mapping (`key: value` lines, keys such as {', '.join(names)}), "
                              f"got {value!r}")
        return from_dict(tp, value, where)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"`{where}` must be a list, got {value!r}; write it as [a, b, ...]")
        args = get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(f"`{where}` must have {len(args)} items, got {value!r}")
            return tuple(_coerce(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        inner = args[0] if args else Any
        items = [_coerce(inner, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"`{where}` must be a mapping, got {value!r}")
        return dict(value)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"`{where}` must be true or false, got {value!r}")
    if tp in (int, float) and isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        # YAML 1.1 reads `1e-3` and `1e18` (no dot) as strings; they are numbers to anyone writing a config
        text = value.strip().replace("_", "")
        value = int(text) if _INT.fullmatch(text) else float(text)
    if tp is int:
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or (isinstance(value, float) and not value.is_integer())):
            raise ConfigError(f"`{where}` must be an integer, got {value!r}")
        return int(value)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"`{where}` must be a number, got {value!r}")
        try:
            value = float(value)
        except OverflowError:  # an int beyond float range
            raise ConfigError(f"`{where}` must be a finite number, got {value!r}") from None
        if not math.isfinite(value):
            raise ConfigError(f"`{where}` must be a finite number, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"`{where}` must be a string, got {value!r}")
        return value
    return value


def _tname(tp: Any) -> str:
    return getattr(tp, "__name__", str(tp))


def from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build dataclass `cls` from `data`, strictly: unknown keys and wrong types raise ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"`{where or cls.__name__}` must be a mapping, got {data!r}")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            raise _unknown(str(key), list(fields), where)
        kwargs[key] = _coerce(hints[key], value, _join(where, key))
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"`{where or cls.__name__}`: {e}") from None
    except ConfigError as e:
        # a section class names its fields by its usual section (`model.d_model`); here it sits at `where`
        # (codegen's `gpt.d_model`), so every path in the message becomes the one the user actually writes
        section = getattr(cls, "section", "")
        if where and section and section != where:
            raise ConfigError(_relocate(str(e), section, where)) from None
        raise


def _relocate(message: str, section: str, where: str) -> str:
    """`message` with every dotted path under `section` (`model.n_heads`, backticked or not) moved under `where`."""
    return re.sub(rf"(?<![\w.]){re.escape(section)}\.(?=\w)", f"{where}.", message)


def blame_overrides(err: ConfigError, written: Mapping[str, Any], *, base_valid: bool = True) -> ConfigError:
    """`err` led by the key(s) the user wrote that broke a rule stated on another field.

    A cross-field rule names the field it is checked on (`hrm.d_model` must be divisible by hrm.n_heads=3), which
    need not be the key the user set (`--set hrm.n_heads=3`). The culprit is a written key the message mentions (as
    `hrm.n_heads`, or as a bare `n_heads` of the same section, then of any section); when the config was valid before
    the keys were written (`base_valid`), else the only written key, else the written keys of the field's section.
    `err` comes back unchanged when it already names a written key or no culprit is found.
    """
    msg = str(err)
    m = re.search(r"`([^`]+)`", msg)
    if m is None or not written:
        return err
    subject = m.group(1)
    if any(subject == k or subject.startswith((f"{k}.", f"{k}[")) for k in written):
        return err
    section, rest = subject.rpartition(".")[0], msg[m.end():]

    def said(name: str) -> bool:
        return re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", rest) is not None

    culprits = [k for k in written if said(k) or (k.rpartition(".")[0] == section and said(k.rpartition(".")[2]))]
    culprits = culprits or [k for k in written if said(k.rpartition(".")[2])]
    if not culprits and base_valid:
        culprits = list(written) if len(written) == 1 else [k for k in written if k.rpartition(".")[0] == section]
    if not culprits:
        return err
    head = ", ".join(f"`{k}`={written[k]!r}" for k in culprits)
    return ConfigError(f"{head}: {msg}")


def _leaves(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted path -> value of every leaf of a nested mapping (what a YAML file writes)."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        key = _join(prefix, str(k))
        out.update(_leaves(v, key) if isinstance(v, dict) and v else {key: v})
    return out


def parse_override(text: str) -> tuple[str, Any]:
    """Split `a.b=value`; the value is parsed as YAML (so 4 -> int, true -> bool, [1,2] -> list)."""
    if "=" not in text:
        raise ConfigError(f"override must look like `key.sub=value`, got {text!r}; e.g. --set model.n_layers=4")
    key, raw = text.split("=", 1)
    key = key.strip()
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key, value


def apply_overrides(cfg: T, overrides: list[str] | dict[str, Any]) -> T:
    """Return a copy of `cfg` with dotted-key overrides applied and re-validated."""
    data = to_dict(cfg)
    items = list(overrides.items() if isinstance(overrides, dict) else (parse_override(o) for o in overrides))
    for key, value in items:
        parts = key.split(".")
        node_cls: Any = type(cfg)
        node = data
        for i, part in enumerate(parts):
            names = [f.name for f in dataclasses.fields(node_cls)]
            if part not in names:
                raise _unknown(part, names, ".".join(parts[:i]))
            if i == len(parts) - 1:
                node[part] = value
            else:
                sub = _hints(node_cls)[part]
                if not dataclasses.is_dataclass(sub):
                    raise ConfigError(f"`{'.'.join(parts[: i + 1])}` is a value, not a section; use --set {'.'.join(parts[: i + 1])}=...")
                node_cls, node = sub, node[part]
    try:
        return from_dict(type(cfg), data)
    except ConfigError as e:
        raise blame_overrides(e, dict(items)) from None


def field_help(cls: type, prefix: str = "") -> list[tuple[str, str, Any]]:
    """(dotted name, help, default) for every leaf field of a dataclass, for `--help` listings and docs."""
    out = []
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        name = _join(prefix, f.name)
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out.extend(field_help(tp, name))
        else:
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None
            )
            rng = f.metadata.get("range")
            help_ = f.metadata.get("help", "") + (f"; {rng}" if rng is not None else "")
            out.append((name, help_, default))
    return out


def field_ranges(cls: type, prefix: str = "") -> list[tuple[str, type, Range | None]]:
    """(dotted name, type, declared range) for every int/float leaf field of a dataclass (lists of numbers too)."""
    out = []
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        name, tp = _join(prefix, f.name), hints[f.name]
        if dataclasses.is_dataclass(tp):
            out.extend(field_ranges(tp, name))  # type: ignore[arg-type]
            continue
        if get_origin(tp) in (list, tuple) and get_args(tp):
            tp = get_args(tp)[0]
        if tp in (int, float):
            out.append((name, tp, f.metadata.get("range")))
    return out


def _merged(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` laid onto `base`, mapping by mapping (a partial section keeps the base's other fields)."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def yaml_where(e: Exception) -> str:
    """" (line L, column C)" of a YAML error's problem mark (1-based), or "" when it has none."""
    mark = getattr(e, "problem_mark", None)
    return f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""


def load_yaml(path: str | Path, cls: type[T], base: T | None = None) -> T:
    """Load and validate a config YAML file (an experiment's `config.yaml` too: its `meta` block is provenance).

    With `base` (e.g. the `--preset`), the file is laid over it, so a partial file changes only what it names;
    without, over the dataclass defaults.

    Every way the file can be unusable (missing, a folder, not UTF-8, not YAML, empty, not a mapping, a bad value)
    is a one-line ConfigError naming the file.
    """
    path = Path(path)
    shown = repr(str(path))
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"config file {shown} does not exist; check the path") from None
    except IsADirectoryError:
        raise ConfigError(f"config file {shown} is a folder; pass a YAML file such as exp-NNN/config.yaml") from None
    except OSError as e:
        raise ConfigError(f"cannot read config file {shown}: {e.strerror}; check its permissions") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {shown} is not UTF-8 text (bad byte 0x{raw[e.start]:02x} at offset {e.start}); "
                          f"pass a YAML config file") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {shown} is not valid YAML{yaml_where(e)}: {str(e).splitlines()[0]}") from None
    sections = ", ".join(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    if data is None:
        raise ConfigError(f"config file {shown} is empty; write a mapping of sections ({sections}), e.g. "
                          f"`train: {{seed: 1}}`, or drop --config to use a preset")
    if not isinstance(data, dict):
        raise ConfigError(f"config file {shown} must hold a mapping of sections ({sections}), got a "
                          f"{type(data).__name__}; write it as `section: {{field: value}}`")
    if "meta" in data and "meta" not in {f.name for f in dataclasses.fields(cls)}:  # type: ignore[arg-type]
        data = {k: v for k, v in data.items() if k != "meta"}  # provenance of a saved experiment, not config
    written = _leaves(data)
    if base is not None:
        data = _merged(to_dict(base), data)
    try:
        return from_dict(cls, data)
    except ConfigError as e:
        raise ConfigError(f"config file {shown}: {blame_overrides(e, written)}") from None


def save_yaml(cfg: Any, path: str | Path) -> None:
    """Write a config (dataclass or dict) as YAML, atomically."""
    from autoresearch.harness.atomic import atomic_write_text

    data = to_dict(cfg) if dataclasses.is_dataclass(cfg) else cfg
    atomic_write_text(path, yaml.safe_dump(data, sort_keys=False))
