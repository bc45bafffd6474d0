"""The folder of a study (`studies/<name>/`): create it from a study file, re-open it for resume, start it over,
and check that its definition did not change (issue 8 §4-§6).

Everything is validated before anything is created. The resolved study is written to study.yaml and its hash (without
`resources:`, which only schedules trials) into state.json; `prepare_study` refuses another definition under the same
name unless `--restart`, which moves the old folder aside (kept, never deleted); `open_study` refuses a study.yaml
edited since the study started, naming what changed, and names a damaged or deleted one with the fix. A full,
read-only or not-permitted disk becomes one line naming the path (`storage_errors`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from autoresearch.errors import StudyError
from autoresearch.harness.atomic import atomic_write_yaml, disk_errors
from autoresearch.harness.settings import DEFAULT_STUDIES_ROOT
from autoresearch.research.lock import is_running
from autoresearch.research.state import AcceptedBaseline, StudyState, now
from autoresearch.research.study import (
    ResolvedStudy,
    Study,
    check_study,
    definition_changes,
    definition_hash,
    load_study,
    parse_study,
    read_study_yaml,
    resolve_study,
)

__all__ = ["prepare_study", "open_study", "read_definition", "definition_problem", "accept_baseline", "storage_errors", "study_dir_for", "DEFAULT_STUDY_ROOT"]

DEFAULT_STUDY_ROOT = DEFAULT_STUDIES_ROOT


def study_dir_for(name: str, root: str | Path = DEFAULT_STUDY_ROOT) -> Path:
    return Path(root) / name


def storage_errors(path: str | Path, name: str = "", elsewhere: str = "--root DIR") -> AbstractContextManager[None]:
    """Turn a full / read-only / not-permitted disk under `path` into one StudyError naming the path and the fix."""
    then = f", then `autoresearch study resume {name}`" if name else ""
    return disk_errors(path, StudyError, elsewhere, f"{then} (nothing written so far was lost)")


def _matches(resolved: ResolvedStudy, state: StudyState) -> bool:
    """Same definition as the stored hash (`resources` aside). A study created before resources were left out of
    the hash stored the hash of its whole study.yaml: it matches when that file's definition does, and is migrated."""
    stored = state.definition_hash
    if stored in (resolved.definition_hash, resolved.legacy_definition_hash):
        return True
    on_disk = _read_or_none(state.path.parent / "study.yaml")
    if not isinstance(on_disk, dict):
        return False
    legacy = hashlib.sha256(json.dumps(on_disk, sort_keys=True, default=str).encode()).hexdigest()[:16]
    if legacy == stored and definition_hash(on_disk) == resolved.definition_hash:
        with state.lock:
            state.definition_hash = resolved.definition_hash
            state.save()
        return True
    return False


def _read_or_none(path: Path) -> Any:
    """The parsed YAML of `path`, or None when it is missing, unreadable or damaged (the caller rewrites it)."""
    try:
        return read_study_yaml(path)
    except StudyError:
        return None


def _changes(resolved: ResolvedStudy, state: StudyState) -> str:
    old = state.definition
    if not old:  # a state from before definitions were stored: the study.yaml beside it (when not edited)
        old = _read_or_none(state.path.parent / "study.yaml") or {}
        old = old if isinstance(old, dict) else {}
    diff = definition_changes(old, resolved.definition) if old else []
    return f" ({'; '.join(diff)})" if diff else ""


def _archive(sdir: Path) -> Path:
    """Move a study folder aside (never delete: its trials stay readable) and return where it went."""
    if is_running(sdir):
        raise StudyError(f"study {sdir.name!r} is running; stop it before `--restart` (it would be moved aside "
                         f"while its trials write into it)")
    dest = sdir.with_name(f"{sdir.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
    n = 1
    while dest.exists():
        n += 1
        dest = sdir.with_name(f"{sdir.name}.old-{time.strftime('%Y%m%d-%H%M%S')}-{n}")
    os.rename(sdir, dest)
    return dest


def prepare_study(path: str | Path | Study, root: str | Path = DEFAULT_STUDY_ROOT,
                  restart: bool = False) -> tuple[ResolvedStudy, Path]:
    """Load + resolve a study file (or check an in-memory `Study`) and create (or re-open, if identical) its folder
    with study.yaml and state.

    Everything is validated before anything is created. An existing study with the same definition is continued
    (a changed `resources:` section is taken over); with another definition it is refused unless `restart`, which
    moves the old folder to `<name>.old-<time>` and starts afresh. A missing or damaged study.yaml is rewritten
    from the file when the definition matches the state; a moved-aside state.json is rebuilt."""
    if isinstance(path, (str, Path)):
        resolved = resolve_study(load_study(path))
        again = f"`autoresearch study run {path} --restart`"
    else:
        resolved = resolve_study(check_study(path))
        again = "`run_study(study, restart=True)`"
    sdir = study_dir_for(resolved.name, root)
    state_path = sdir / "state.json"
    with storage_errors(sdir, resolved.name):
        if sdir.exists() and restart:
            _archive(sdir)
        elif state_path.exists():
            old = StudyState.load(state_path)
            if not _matches(resolved, old):
                raise StudyError(
                    f"study {resolved.name!r} already exists in {sdir} with another definition"
                    f"{_changes(resolved, old)}; continue the old one with `autoresearch study resume "
                    f"{resolved.name}`, or start over with the edited file: {again} "
                    f"(moves the old folder aside) or give it a new `name:`")
            _sync_definition_file(sdir, resolved)
            return resolved, sdir
        elif (sdir / "study.yaml").exists():
            _reopen_without_state(sdir, resolved, again)
            return resolved, sdir
        sdir.mkdir(parents=True, exist_ok=True)
        atomic_write_yaml(sdir / "study.yaml", resolved.definition)
        StudyState.create(state_path, resolved.name, resolved.definition_hash, resolved.definition)
    return resolved, sdir


def _sync_definition_file(sdir: Path, resolved: ResolvedStudy) -> None:
    """Rewrite study.yaml when it is missing, damaged or differs (only `resources` can differ here)."""
    path = sdir / "study.yaml"
    if path.is_dir():
        raise StudyError(f"study file {path} is a folder, not a YAML file; move it aside (`mv {path} {path}.bad`) and "
                         f"run the study file again (finished trials are kept)")
    if _read_or_none(path) != resolved.definition:
        atomic_write_yaml(path, resolved.definition)


def _reopen_without_state(sdir: Path, resolved: ResolvedStudy, again: str) -> None:
    """study.yaml without state.json (moved aside as advised): rebuild the state if the definitions agree."""
    on_disk = _read_or_none(sdir / "study.yaml")
    if isinstance(on_disk, dict) and on_disk != resolved.definition:
        if definition_hash(on_disk) != resolved.definition_hash:
            diff = definition_changes(on_disk, resolved.definition)
            raise StudyError(f"study {resolved.name!r} in {sdir} was defined differently"
                             f"{' (' + '; '.join(diff) + ')' if diff else ''}; start over with "
                             f"{again} or give the study a new `name:`")
    _sync_definition_file(sdir, resolved)
    StudyState.create(sdir / "state.json", resolved.name, resolved.definition_hash, resolved.definition)


_RESTORE = ("restore it from the original study file with `autoresearch study run FILE` (same definition; finished "
            "trials are kept)")


def read_definition(sdir: Path) -> dict[str, Any]:
    """The resolved study in `sdir/study.yaml`; missing, unreadable or damaged is one StudyError naming the file."""
    path = sdir / "study.yaml"
    if not path.exists() and not path.is_symlink():
        raise StudyError(f"study file {path} is missing (deleted?); {_RESTORE}")
    data = read_study_yaml(path, _RESTORE)
    if not isinstance(data, dict) or "ideas" not in data or "resolved" not in data:
        got = type(data).__name__ if not isinstance(data, dict) else "keys " + str(list(data))[:60]
        raise StudyError(f"study file {path} is damaged: expected the resolved study (sections `ideas`, `resolved`, "
                         f"...), got {got}; {_RESTORE}")
    return data


def definition_problem(sdir: Path) -> str:
    """What is wrong with the study.yaml of a study folder, in one line ('' when it reads as a resolved study)."""
    try:
        read_definition(sdir)
    except StudyError as e:
        return str(e)
    return ""


def open_study(name: str, root: str | Path = DEFAULT_STUDY_ROOT) -> tuple[ResolvedStudy, Path]:
    """Re-open an existing study from its resolved study.yaml (the original file may have changed since).

    study.yaml is checked against the definition hash in state.json: an edited study.yaml is refused (its trials
    would be paired with trials of another definition); a damaged or deleted one names the file and the fix."""
    sdir = study_dir_for(name, root)
    path = sdir / "study.yaml"
    state_path = sdir / "state.json"
    restore = _RESTORE
    if not path.exists():
        if state_path.exists() or sdir.is_dir():
            raise StudyError(f"study file {path} is missing (deleted?); {restore}")
        have = sorted(p.parent.name for p in Path(root).glob("*/study.yaml")) if Path(root).is_dir() else []
        raise StudyError(f"no study {name!r} under {root}/ (have: {', '.join(have) or 'none'}); start one with "
                         f"`autoresearch study run FILE`")
    data = read_definition(sdir)
    data.pop("resolved", None)
    try:
        resolved = resolve_study(parse_study(data, source=str(path)))
    except StudyError as e:
        raise StudyError(f"{e} — the study in {sdir} no longer validates; fix the study file and start over with "
                         f"`autoresearch study run FILE --restart` (the old folder is moved aside)") from None
    if resolved.name != name:
        raise StudyError(f"study file {path} names the study {resolved.name!r}, not {name!r}; {restore}")
    if not state_path.exists():
        with storage_errors(sdir, name):
            StudyState.create(state_path, resolved.name, resolved.definition_hash, resolved.definition)
        return resolved, sdir
    state = StudyState.load(state_path)
    if not _matches(resolved, state):
        raise StudyError(f"study file {path} was edited after the study started{_changes(resolved, state)}; trials "
                         f"of two definitions cannot share a verdict: undo the edit, or start a new study with the "
                         f"edited file: `autoresearch study run FILE --restart` (moves the old folder aside) or a "
                         f"new `name:`")
    return resolved, sdir


def accept_baseline(name: str, root: str | Path = DEFAULT_STUDY_ROOT, value: float | None = None) -> AcceptedBaseline:
    """Accept the measured baseline mean (or `value`) as the study's recorded baseline; `resume` then continues."""
    if value is not None and not math.isfinite(value):
        raise StudyError(f"`--value` must be a finite number, got {value}; give the baseline metric, e.g. --value 5.13")
    sdir = study_dir_for(name, root)
    state = StudyState.load(sdir / "state.json")
    measured = state.baseline.measured
    if value is None and measured is None:
        raise StudyError(f"study {name!r} has no measured baseline yet; run or resume it first "
                         f"(`autoresearch study resume {name}`)")
    chosen = float(measured if value is None else value)
    accepted = AcceptedBaseline(chosen, now(), state.baseline.recorded, state.baseline.values)
    with storage_errors(sdir, name), state.lock:
        state.baseline.accepted = accepted
        state.stages.pop("baseline", None)
        state.save()
    return accepted
