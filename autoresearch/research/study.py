"""The study file: typed sections, strict YAML loading with one-line errors, and resolution against a testbed.

A study file declares everything a verdict depends on *before* any trial runs (DESIGN.md §6): testbed + preset +
base overrides, the budget (identical for every trial), the metric and its direction, the recorded baseline, the
seed plan, the decision rule, the ideas (typed flag overrides) and an optional A/A control. `load_study` parses and
checks the file; `resolve_study` builds every arm's config through `testbed.make_config`, so a misspelt flag or a bad
value fails before the first trial with the testbed's own "did you mean" message.

The A/A control is the baseline config run on its own seeds (base + seed_offset + i, paired by index i with
baseline seed base + i). Same-seed pairing would give Δ = 0 exactly on CPU (training is deterministic), which tests
nothing; offset seeds make it a genuine A/A comparison whose only difference is seed noise.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from autoresearch.errors import AutoresearchError, ConfigError, StudyError
from autoresearch.harness.config import from_dict, param, parse_override, require, to_dict
from autoresearch.harness.trackers import TRACKERS
from autoresearch.research.verdicts import DecisionRule
from autoresearch.testbeds.base import Testbed, get_testbed

__all__ = [
    "Budget",
    "MetricSpec",
    "BaselineRecord",
    "SeedPlan",
    "Control",
    "Regression",
    "Resources",
    "Idea",
    "Study",
    "ResolvedStudy",
    "load_study",
    "check_study",
    "read_study_yaml",
    "parse_study",
    "resolve_study",
    "load_testbed",
    "definition_hash",
    "definition_changes",
    "BASELINE",
]

BASELINE = "baseline"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

# Ranges of the study file's numbers. They bound what a person can mean (and what every testbed, numpy and torch
# accept as a seed), so a typo such as `seeds.max: 1000000000` or `budget.tokens: 1.0e18` fails at load time,
# before any folder is created, instead of scheduling a billion trials or a run that never ends.
MAX_SEED = 2**31 - 1
MAX_SEEDS = 1000
MAX_TOKENS = 10**12
MAX_SECONDS = 30 * 24 * 3600.0
MAX_IDEAS = 200
MAX_NAME = 100
MAX_REGRESSION_STEPS = 10_000
MAX_WORKERS = 1024
MAX_GPUS_PER_TRIAL = 64
LATER_RESOURCES: dict[str, Any] = {"gpus_per_trial": 0.0, "trackers": [], "nproc_per_trial": 1}
"""`resources` keys added after studies stopped hashing resources, with their defaults (legacy_definition_hash
leaves them out)."""


@dataclass
class Budget:
    """Training budget of every trial (identical for all arms); empty = the preset's own budget."""

    tokens: int | None = param(None, "training tokens per trial")
    seconds: float | None = param(None, "wall-clock seconds of training per trial")

    def __post_init__(self) -> None:
        require(self.tokens is None or self.tokens > 0, "budget.tokens", self.tokens, "must be > 0", "e.g. 163840")
        require(self.tokens is None or self.tokens <= MAX_TOKENS, "budget.tokens", self.tokens,
                f"must be <= {MAX_TOKENS:.0e} (a trial of more tokens would not finish)", "e.g. 163840")
        require(self.seconds is None or 0 < self.seconds <= MAX_SECONDS, "budget.seconds", self.seconds,
                f"must be in (0, {MAX_SECONDS:.0f}] (30 days)", "e.g. 60")


@dataclass
class MetricSpec:
    """The metric the verdict is about."""

    name: str = param("val_loss", "a metric the testbed reports (its `metrics` dict)")
    direction: Literal["lower", "higher", ""] = param("", "lower | higher is better; empty = the testbed's")


@dataclass
class BaselineRecord:
    """The recorded baseline value the study must reproduce before testing ideas."""

    value: float | None = param(None, "recorded metric of the baseline; null = record the first measurement")
    tolerance: float = param(0.05, "allowed relative deviation of the reproduced mean (0.05 = 5%)")
    source: str = param("", "where the recorded value came from (run, paper, commit)")

    def __post_init__(self) -> None:
        require(self.value is None or math.isfinite(self.value), "baseline.value", self.value,
                "must be a finite number or null", "write the measured value, or null to record the first measurement")
        require(0.0 < self.tolerance < 1.0, "baseline.tolerance", self.tolerance, "must be in (0, 1)", "use 0.05")


@dataclass
class SeedPlan:
    """How many seeds each arm gets."""

    initial: int = param(3, "seeds per arm in the first round")
    max: int = param(5, "seeds per arm at most (RETEST adds seeds up to this)")
    step: int = param(1, "seeds added per RETEST round")
    base: int = param(0, "first seed; arm seeds are base, base+1, ...")

    def __post_init__(self) -> None:
        require(self.initial >= 2, "seeds.initial", self.initial, "must be >= 2 (a CI needs two paired deltas)",
                "use 3")
        require(self.initial <= MAX_SEEDS, "seeds.initial", self.initial, f"must be <= {MAX_SEEDS}", "use 3")
        require(self.max >= self.initial, "seeds.max", self.max, f"must be >= seeds.initial={self.initial}",
                f"use {max(self.initial, 5)}")
        require(self.max <= MAX_SEEDS, "seeds.max", self.max,
                f"must be <= {MAX_SEEDS} (every seed is one trial per arm)", f"use {min(max(self.initial, 5), 1000)}")
        require(1 <= self.step <= self.max, "seeds.step", self.step, f"must be in [1, seeds.max={self.max}]", "use 1")
        require(0 <= self.base <= MAX_SEED - self.max, "seeds.base", self.base,
                f"must be in [0, {MAX_SEED - self.max}] (seeds are non-negative 31-bit integers)", "use 0")


@dataclass
class Control:
    """A/A control: the baseline config under another name, on seeds offset by `seed_offset` (paired by index)."""

    name: str = param("aa_control", "name of the control arm")
    seed_offset: int = param(1000, "control seed i = seeds.base + seed_offset + i, paired with baseline seed i")
    description: str = param("A/A control: baseline config on independent seeds; must not be KEPT", "shown in reports")

    def __post_init__(self) -> None:
        require(self.seed_offset != 0, "control.seed_offset", self.seed_offset,
                "must not be 0 (same seeds give Δ = 0 exactly on CPU, which tests nothing)", "use 1000")
        require(abs(self.seed_offset) <= MAX_SEED // 2, "control.seed_offset", self.seed_offset,
                f"must be within ±{MAX_SEED // 2}", "use 1000")


@dataclass
class Regression:
    """Baseline-path regression: a short deterministic run whose per-step losses must reproduce bit for bit."""

    enabled: bool = param(True, "run the baseline-path regression check")
    steps: int = param(8, "optimizer steps of the short run (tokens = steps * cfg.tokens_per_step)")
    tokens: int | None = param(None, "token budget of the short run instead of `steps` (testbeds without tokens_per_step)")
    overrides: dict[str, Any] = param({"train.log_every": 1}, "extra overrides of the short run (log every step!)")
    store: str = param("", "directory of recorded traces (default: $AUTORESEARCH_CACHE/traces or ~/.cache/autoresearch/traces)")

    def __post_init__(self) -> None:
        require(2 <= self.steps <= MAX_REGRESSION_STEPS, "regression.steps", self.steps,
                f"must be in [2, {MAX_REGRESSION_STEPS}] (a short run)", "use 8")
        require(self.tokens is None or 0 < self.tokens <= MAX_TOKENS, "regression.tokens", self.tokens,
                f"must be in [1, {MAX_TOKENS:.0e}]", "leave it out to use `steps`")


@dataclass
class Resources:
    """How trials use the machine."""

    threads_per_trial: int = param(1, "CPU threads per trial (sets OMP_NUM_THREADS); workers default to cores // this")
    workers: int = param(0, "parallel trials (0 = cores // threads_per_trial); --workers overrides")
    timeout_s: float = param(0.0, "kill a trial process (training, checks, regression run) after this many seconds "
                                  "and mark it CRASH (0 = no limit; --timeout overrides)")
    retries: int = param(3, "retries of a trial that failed for an infrastructure reason (killed, no result)")
    gpus_per_trial: float = param(0.0, "GPUs each trial reserves under --executor ray (fractions share a GPU; the "
                                       "local executors pin one GPU per worker instead)")
    nproc_per_trial: int = param(1, "training processes per trial (DistributedDataParallel under torchrun; each gets "
                                    "threads_per_trial threads; the budget and global batch mean the same)")
    trackers: list[str] = param([], "experiment trackers each trial also logs to: tensorboard, mlflow, wandb "
                                    "(--tracker adds more); trials are tagged with study, arm, seed and trial")

    def __post_init__(self) -> None:
        require(1 <= self.threads_per_trial <= MAX_WORKERS, "resources.threads_per_trial", self.threads_per_trial,
                f"must be in [1, {MAX_WORKERS}]", "use 1")
        require(0 <= self.workers <= MAX_WORKERS, "resources.workers", self.workers, f"must be in [0, {MAX_WORKERS}]",
                "use 0 for auto")
        require(math.isfinite(self.timeout_s) and 0 <= self.timeout_s <= MAX_SECONDS, "resources.timeout_s",
                self.timeout_s, f"must be in [0, {MAX_SECONDS:.0f}] seconds", "use 0 for no limit")
        require(0 <= self.retries <= 10, "resources.retries", self.retries, "must be in [0, 10]", "use 3")
        require(1 <= self.nproc_per_trial <= MAX_WORKERS, "resources.nproc_per_trial", self.nproc_per_trial,
                f"must be in [1, {MAX_WORKERS}]", "use 1")
        require(math.isfinite(self.gpus_per_trial) and 0 <= self.gpus_per_trial <= MAX_GPUS_PER_TRIAL,
                "resources.gpus_per_trial", self.gpus_per_trial, f"must be in [0, {MAX_GPUS_PER_TRIAL}]",
                "use 0 (CPU) or 1")
        known = isinstance(self.trackers, list) and all(isinstance(t, str) and t.strip().lower() in TRACKERS
                                                         for t in self.trackers)
        require(known, "resources.trackers", self.trackers, f"must be a list of tracker names ({', '.join(TRACKERS)})",
                "e.g. [tensorboard]")


@dataclass
class Idea:
    """One idea: typed flag overrides applied on top of the baseline config."""

    name: str = param("", "short identifier (letters, digits, _ . -)")
    description: str = param("", "one sentence: what changes and why it might help")
    overrides: dict[str, Any] = param({}, "dotted config keys -> values, e.g. {model.mlp: swiglu}")


@dataclass
class Study:
    """A study: baseline + ideas over seeds, decided by a rule declared up front."""

    name: str = param("", "study name; its folder is studies/<name>/ (default: the file name)")
    description: str = param("", "what the study asks")
    testbed: str = param("lm", "registered testbed name, module.path:Class, or path/to/file.py:Class")
    preset: str = param("tiny", "testbed preset")
    overrides: dict[str, Any] = param({}, "overrides applied to every arm (baseline, ideas, control)")
    budget: Budget = param(Budget(), "training budget, identical for every trial")
    metric: MetricSpec = param(MetricSpec(), "metric and direction")
    baseline: BaselineRecord = param(BaselineRecord(), "recorded baseline value and tolerance")
    seeds: SeedPlan = param(SeedPlan(), "seed plan")
    decision: DecisionRule = param(DecisionRule(), "decision rule (α, min effect, test, CI)")
    control: Control | None = param(None, "optional A/A control arm")
    regression: Regression = param(Regression(), "baseline-path regression check")
    resources: Resources = param(Resources(), "threads, workers, timeouts, retries")
    checks: bool = param(True, "run the testbed's integration checks first")
    ideas: list[Idea] = param([], "the ideas to test")


# --- loading ------------------------------------------------------------------------------------------------------


def _norm_overrides(value: Any, where: str) -> Any:
    """Accept overrides as a mapping or as a list of `key=value` strings (like --set)."""
    if isinstance(value, list):
        out = {}
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise ConfigError(f"`{where}[{i}]` must be a `key=value` string, got {item!r}; or write a mapping")
            k, v = parse_override(item)
            out[k] = v
        return out
    return value


def parse_study(data: Any, *, source: str = "<study>", default_name: str = "") -> Study:
    """Build and check a `Study` from parsed YAML; errors are one-line StudyErrors naming `source`."""
    if not isinstance(data, dict):
        raise StudyError(f"study file {source}: must be a mapping of sections, got {type(data).__name__}; "
                         f"see docs/research.md")
    data = dict(data)
    data.setdefault("name", default_name)
    if isinstance(data.get("control"), bool):
        data["control"] = {} if data["control"] else None
    try:
        if "overrides" in data:
            data["overrides"] = _norm_overrides(data["overrides"], "overrides")
        if isinstance(data.get("regression"), dict) and "overrides" in data["regression"]:
            data["regression"] = {**data["regression"], "overrides": _norm_overrides(
                data["regression"]["overrides"], "regression.overrides")}
        if isinstance(data.get("ideas"), list):
            ideas = []
            for i, idea in enumerate(data["ideas"]):
                if isinstance(idea, dict) and "overrides" in idea:
                    idea = {**idea, "overrides": _norm_overrides(idea["overrides"], f"ideas[{i}].overrides")}
                ideas.append(idea)
            data["ideas"] = ideas
        study = from_dict(Study, data)
    except ConfigError as e:
        raise StudyError(f"study file {source}: {e}") from None
    _check(study, source)
    return study


def _check(study: Study, source: str) -> None:
    def fail(msg: str) -> None:
        raise StudyError(f"study file {source}: {msg}")

    if not _NAME.match(study.name) or len(study.name) > MAX_NAME:
        fail(f"`name` must be letters, digits, _ . - (it names the folder), at most {MAX_NAME} characters, got "
             f"{study.name[:120]!r}; e.g. my_study")
    if not study.ideas:
        fail("`ideas` must list at least one idea, got none; add `ideas: [{name: ..., overrides: {...}}]`")
    if len(study.ideas) > MAX_IDEAS:
        fail(f"`ideas` lists {len(study.ideas)} ideas, at most {MAX_IDEAS} are allowed; split the study")
    seen = {BASELINE: "the baseline arm"}
    for i, idea in enumerate(study.ideas):
        if not _NAME.match(idea.name) or len(idea.name) > MAX_NAME:
            fail(f"`ideas[{i}].name` must be letters, digits, _ . -, at most {MAX_NAME} characters, got "
                 f"{idea.name[:120]!r}; e.g. swiglu_mlp")
        if idea.name in seen:
            fail(f"`ideas[{i}].name` {idea.name!r} is already used by {seen[idea.name]}; give every arm its own name")
        if not idea.overrides:
            fail(f"`ideas[{i}].overrides` is empty for {idea.name!r}; an idea must set at least one flag "
                 f"(an unchanged config is an A/A control: declare it as `control:`)")
        seen[idea.name] = f"ideas[{i}]"
    if study.control is not None:
        if not _NAME.match(study.control.name) or study.control.name in seen or len(study.control.name) > MAX_NAME:
            fail(f"`control.name` must be a free identifier (not baseline or an idea), got {study.control.name!r}; "
                 f"use aa_control")
        off, sp = study.control.seed_offset, study.seeds
        if abs(off) < sp.max:
            fail(f"`control.seed_offset` must be at least seeds.max={sp.max} away from 0 (control seeds must not "
                 f"reuse baseline seeds), got {off}; use 1000")
        if not 0 <= sp.base + off <= MAX_SEED - sp.max:
            fail(f"`control.seed_offset` {off} puts the control seeds at {sp.base + off}..{sp.base + off + sp.max - 1},"
                 f" outside [0, {MAX_SEED}]; use 1000")
    if study.decision.ci == "bootstrap" and study.seeds.initial < 10:
        fail(f"`decision.ci: bootstrap` needs seeds.initial >= 10 (a percentile bootstrap under-covers on few seeds), "
             f"got seeds.initial={study.seeds.initial}; use `ci: t`")


def _yaml_problem(e: yaml.YAMLError) -> str:
    """One line of a YAML error: where (line:column of its problem_mark) and what."""
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    what = getattr(e, "problem", None) or " ".join(str(e).split())
    if mark is not None:
        return f"line {mark.line + 1}:{mark.column + 1}: {what}"
    if isinstance(e, yaml.reader.ReaderError):  # a non-printable character (binary data)
        return f"non-printable character #x{e.character:04x} at position {e.position}"
    return str(what)


def read_study_yaml(path: str | Path, fix: str = "fix the syntax") -> Any:
    """The parsed YAML of a study file; anything unreadable is one StudyError naming the file, what is wrong and `fix`
    (a folder, missing, not permitted, not UTF-8 text, not valid YAML with line:column)."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise StudyError(f"study file {str(path)!r} does not exist; {fix}") from None
    except IsADirectoryError:
        raise StudyError(f"study file {str(path)!r} is a folder, not a YAML file; {fix}") from None
    except UnicodeDecodeError as e:
        raise StudyError(f"study file {path} is not UTF-8 text (byte 0x{e.object[e.start]:02x} at offset {e.start}; "
                         f"binary?); {fix}") from None
    except OSError as e:
        raise StudyError(f"study file {path} cannot be read ({e.strerror or type(e).__name__}); {fix}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise StudyError(f"study file {path} is not valid YAML ({_yaml_problem(e)}); {fix}") from None
    except RecursionError:
        raise StudyError(f"study file {path} is not valid YAML (nested too deeply); {fix}") from None


def load_study(path: str | Path) -> Study:
    """Read and check a study file (YAML)."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise StudyError(f"study file {str(path)!r} does not exist; check the path (built-in: `quickstart`)")
    data = read_study_yaml(path, "give a YAML study file (see docs/research.md)" if path.is_dir() else
                           "fix the file (see docs/research.md)")
    if isinstance(data, dict):
        known = [f.name for f in dataclasses.fields(Study)]
        for key in data:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"did you mean `{close[0]}`?" if close else f"valid sections: {', '.join(known)}"
                raise StudyError(f"study file {path}: unknown section `{key}`; {hint}")
    study = parse_study(data, source=str(path), default_name=path.stem)
    study.testbed = _absolute_ref(study.testbed, path.parent)
    return study


def check_study(study: Study) -> Study:
    """An in-memory `Study` checked exactly as a study file is (returns a checked copy, errors name `<Study NAME>`);
    a file testbed given by a relative path (`tb.py:Class`) is resolved against the working folder."""
    if not isinstance(study, Study):
        raise StudyError(f"expected a Study or the path of a study file, got {type(study).__name__}; build one with "
                         f"`Study(name=..., ideas=[Idea(...)])` or `load_study(path)`")
    checked = parse_study(to_dict(study), source=f"<Study {study.name!r}>")
    checked.testbed = _absolute_ref(checked.testbed, Path.cwd())
    return checked


def _absolute_ref(ref: str, base_dir: Path) -> str:
    """A file testbed (`some/file.py:Class`) is resolved relative to the study file's folder."""
    if ".py:" in ref:
        file, cls = ref.rsplit(":", 1)
        p = Path(file)
        if not p.is_absolute():
            p = (base_dir / p) if (base_dir / p).exists() else p.resolve()
        return f"{p.resolve()}:{cls}"
    return ref


def load_testbed(ref: str) -> Testbed:
    """A testbed by registered name, `module.path:Class`, or `path/to/file.py:Class` (`get_testbed`: a file in a
    folder with `__init__.py` is imported with its package, so a research workspace's surface copy works)."""
    return get_testbed(ref)


# --- resolution against the testbed -------------------------------------------------------------------------------


@dataclass
class ResolvedStudy:
    """A checked study bound to its testbed: the overrides of every arm and the derived numbers."""

    study: Study
    testbed: Testbed
    direction: str
    arms: dict[str, dict[str, Any]]
    """arm name -> overrides (base + budget + idea), seed excluded; arms are baseline, ideas..., control."""
    regression_overrides: dict[str, Any]
    """overrides of the short regression run: base + every idea flag explicitly off + short budget + regression."""
    regression_key_overrides: dict[str, Any]
    """the declared part of the short run (without the explicit flag-off values) — what its trace is keyed by."""
    definition: dict[str, Any]
    """the normalized study as written to studies/<name>/study.yaml."""

    @property
    def name(self) -> str:
        return self.study.name

    @property
    def idea_names(self) -> list[str]:
        """Arms that get a verdict: the ideas, then the control."""
        return [a for a in self.arms if a != BASELINE]

    def seed(self, arm: str, index: int) -> int:
        """Seed of `arm` at pairing index `index`."""
        s = self.study.seeds.base + index
        if self.study.control is not None and arm == self.study.control.name:
            s += self.study.control.seed_offset
        return s

    def trial_overrides(self, arm: str, index: int) -> dict[str, Any]:
        return {**self.arms[arm], **self.testbed.seed_overrides(self.seed(arm, index))}

    def description(self, arm: str) -> str:
        if arm == BASELINE:
            return f"baseline ({self.study.testbed} {self.study.preset})"
        if self.study.control is not None and arm == self.study.control.name:
            return self.study.control.description
        return next(i.description for i in self.study.ideas if i.name == arm) or arm

    @property
    def definition_hash(self) -> str:
        """Hash of everything a verdict depends on. `resources` (workers, threads, timeout, retries) is left out:
        how trials are scheduled does not change what they measure, so raising a timeout keeps the study."""
        return definition_hash(self.definition)

    @property
    def legacy_definition_hash(self) -> str:
        """The hash studies created before resources were excluded stored (resources included, without the keys
        added since, LATER_RESOURCES, while they keep their defaults)."""
        res = {k: v for k, v in (self.definition.get("resources") or {}).items()
               if not (k in LATER_RESOURCES and v == LATER_RESOURCES[k])}
        old = {**self.definition, "resources": res} if "resources" in self.definition else self.definition
        return hashlib.sha256(json.dumps(old, sort_keys=True, default=str).encode()).hexdigest()[:16]


def definition_hash(definition: dict[str, Any]) -> str:
    """Hash of a resolved study definition without its `resources` section."""
    core = {k: v for k, v in definition.items() if k != "resources"}
    return hashlib.sha256(json.dumps(core, sort_keys=True, default=str).encode()).hexdigest()[:16]


def definition_changes(old: dict[str, Any], new: dict[str, Any], limit: int = 3) -> list[str]:
    """Dotted keys whose values differ between two definitions, as `key old -> new` (resources ignored)."""
    out: list[str] = []

    def walk(a: Any, b: Any, where: str) -> None:
        if len(out) >= limit or where == "resources":
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for k in list(a) + [k for k in b if k not in a]:
                walk(a.get(k), b.get(k), f"{where}.{k}" if where else str(k))
        elif a != b:
            out.append(f"{where} {a!r} -> {b!r}")

    walk(old, new, "")
    return out


def _config_error(msg: str, study: Study, where: str) -> StudyError:
    return StudyError(f"study {study.name!r}, {where}: {msg}")


def resolve_study(study: Study) -> ResolvedStudy:
    """Bind the study to its testbed and validate every arm's config before any trial runs."""
    try:
        testbed = load_testbed(study.testbed)
    except AutoresearchError as e:
        raise StudyError(f"study {study.name!r}: {e}") from None
    metrics = dict(getattr(testbed, "metrics", {}) or {})
    if metrics and study.metric.name not in metrics:
        close = difflib.get_close_matches(study.metric.name, list(metrics), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"choose one of {', '.join(metrics)}"
        raise StudyError(f"study {study.name!r}: `metric.name` {study.metric.name!r} is not reported by testbed "
                         f"{study.testbed!r}; {hint}")
    direction = study.metric.direction or metrics.get(study.metric.name, "lower")

    budget = testbed.budget_overrides(tokens=study.budget.tokens, seconds=study.budget.seconds)
    seed_keys = set(testbed.seed_overrides(0))
    for key in study.overrides:
        if key in budget:
            raise _config_error(f"`overrides` sets {key!r}, which `budget:` also sets; keep it in one place (budget)",
                                study, "overrides")
        if key in seed_keys:
            raise _config_error(f"`overrides` sets the seed key {key!r}; seeds come from `seeds:`", study, "overrides")

    def build(overrides: dict[str, Any], where: str) -> Any:
        try:
            cfg = testbed.make_config(study.preset, dict(overrides))
        except AutoresearchError as e:
            raise _partial_steps(testbed, study, overrides, where) or _config_error(str(e), study, where) from None
        _check_runnable(testbed, cfg, study, where)
        return cfg

    arms: dict[str, dict[str, Any]] = {BASELINE: {**study.overrides, **budget}}
    base_cfg = build(arms[BASELINE], "baseline config")
    base_dict = _as_dict(base_cfg)
    for i, idea in enumerate(study.ideas):
        for key in idea.overrides:
            if key in budget:
                raise _config_error(f"sets {key!r}, the study budget; budgets are identical for every trial — "
                                    f"remove it from the idea", study, f"ideas[{i}] ({idea.name})")
            if key in seed_keys:
                raise _config_error(f"sets the seed key {key!r}; seeds come from `seeds:` — remove it",
                                    study, f"ideas[{i}] ({idea.name})")
        arms[idea.name] = {**arms[BASELINE], **idea.overrides}
        cfg = build(arms[idea.name], f"ideas[{i}] ({idea.name})")
        if _as_dict(cfg) == base_dict:
            raise _config_error("its overrides leave the config equal to the baseline; an unchanged config is an "
                                "A/A control — declare it under `control:` or change a flag", study,
                                f"ideas[{i}] ({idea.name})")
    if study.control is not None:
        arms[study.control.name] = dict(arms[BASELINE])

    # every flag any idea touches, set explicitly to its baseline ("off") value
    flags_off: dict[str, Any] = {}
    for idea in study.ideas:
        for key in idea.overrides:
            found, value = _lookup(base_dict, key)
            if found:
                flags_off[key] = value
    reg_overrides: dict[str, Any] = {}
    reg_key: dict[str, Any] = {}
    if study.regression.enabled:
        tokens = study.regression.tokens
        if tokens is None:
            per_step = getattr(base_cfg, "tokens_per_step", None)
            if not isinstance(per_step, int) or per_step <= 0:
                raise _config_error("cannot derive the short run's tokens: the config has no `tokens_per_step`; "
                                    "set `regression.tokens`", study, "regression")
            tokens = study.regression.steps * per_step
        short = testbed.budget_overrides(tokens=tokens)
        reg_key = {**study.overrides, **short, **study.regression.overrides}
        reg_overrides = {**study.overrides, **flags_off, **short, **study.regression.overrides}
        build(reg_overrides, "regression.overrides")

    definition = to_dict(study)
    definition["resolved"] = {"direction": direction, "arms": arms, "regression_overrides": reg_overrides}
    return ResolvedStudy(study, testbed, direction, arms, reg_overrides, reg_key, definition)


def _partial_steps(testbed: Testbed, study: Study, overrides: dict[str, Any], where: str) -> StudyError | None:
    """The error of a token budget that is not whole steps, in the study's terms (the key to set and its value)
    instead of the testbed's (`train.train_tokens`, `--round-up`); None when the config fails for another reason.
    Found by asking `make_config` to round the budget up: if that config builds, the budget was the only problem."""
    key = next((k for k, v in testbed.budget_overrides(tokens=1).items() if v == 1), None)
    tokens = overrides.get(key) if key else None
    try:
        rounded = testbed.make_config(study.preset, dict(overrides), round_up=True)  # type: ignore[call-arg]
    except (AutoresearchError, TypeError):  # another problem, or a testbed whose make_config cannot round
        return None
    fixed = getattr(getattr(rounded, "train", None), "train_tokens", None)
    per_step = getattr(rounded, "tokens_per_step", None)
    if not isinstance(tokens, int) or not isinstance(fixed, int) or fixed == tokens or not isinstance(per_step, int):
        return None
    return _whole_steps(per_step, tokens, fixed, study, where)


def _whole_steps(per_step: int, tokens: int, fixed: int, study: Study, where: str) -> StudyError:
    key = "regression.tokens" if where.startswith("regression") else "budget.tokens"
    return _config_error(f"the testbed trains whole steps of {per_step} tokens, so a budget of {tokens} tokens cannot "
                         f"run; set `{key}: {fixed}` (a multiple of {per_step})", study, where)


def _check_runnable(testbed: Testbed, cfg: Any, study: Study, where: str) -> None:
    """What the testbed would refuse at the start of `train` (a budget of partial steps, ...), found now: otherwise
    every trial crashes on it (issue 8 §4)."""
    check = getattr(testbed, "check_config", None)
    try:
        if callable(check):
            check(cfg)
        else:  # a user testbed written against an older interface: its config may still carry the check
            budget_check = getattr(cfg, "check_budget", None)
            if callable(budget_check):
                budget_check()
    except AutoresearchError as e:
        per_step = getattr(cfg, "tokens_per_step", None)
        tokens = getattr(getattr(cfg, "train", None), "train_tokens", None)
        if isinstance(per_step, int) and per_step > 0 and isinstance(tokens, int) and tokens % per_step:
            raise _whole_steps(per_step, tokens, max(1, -(-tokens // per_step)) * per_step, study, where) from None
        raise _config_error(str(e), study, where) from None


def _lookup(tree: Any, dotted: str) -> tuple[bool, Any]:
    node = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _as_dict(cfg: Any) -> Any:
    return to_dict(cfg) if dataclasses.is_dataclass(cfg) else cfg
