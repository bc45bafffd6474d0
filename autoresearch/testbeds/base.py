"""The testbed contract: typed config from presets -> train within a budget into an experiment folder -> metrics.

Every upper layer (the `train`/`check` verbs, `eval-code --model exp-NNN`, studies) talks only to `Testbed`, so a
user's own testbed — a registered name, `module.path:Class`, or `path/to/file.py:Class` — plugs in exactly like the
built-in ones (DESIGN.md §2). A testbed states a config class and its presets, and implements `train`; everything
else has a default built on those. `tests/test_contract.py` runs every registered testbed (and the fake one) through
the same suite: a new testbed passes it or is not done.

What a testbed promises (the upper layers rely on nothing else):
- `make_config(preset, overrides, config_file=..., round_up=...)` returns a config that `train` will accept, or raises
  a one-line `ConfigError` naming the field, the value and the fix (unknown key, bad value, a budget that is not whole
  steps, a device this machine lacks...). A study validates every arm with it before the first trial.
- `train(cfg, exp)` writes `exp/config.yaml` (the config plus `meta`, whose `testbed` is `self.spec`), one JSONL line
  per logged step carrying `LOG_KEYS`, and `results.yaml` carrying `RESULT_KEYS` + `required_results`; it returns
  the same results. With `resume=True` it continues `exp` from its latest checkpoint, and the per-step losses equal
  those of an uninterrupted run.
- `budget_overrides`/`seed_overrides`/`short_run_overrides` are the only override keys the upper layers write.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from autoresearch.errors import AutoresearchError, CheckpointError, ConfigError, RegistryError
from autoresearch.harness.config import apply_overrides, blame_overrides, from_dict, load_yaml, parse_override
from autoresearch.harness.registry import Experiment
from autoresearch.testbeds.checks import Check, CheckResult, ShortRun
from autoresearch.testbeds.flags import Flag, SearchRange, config_flags

__all__ = ["Testbed", "CheckResult", "CliOption", "LoadedModel", "get_testbed", "register_testbed", "TESTBEDS",
           "LOG_KEYS", "RESULT_KEYS"]

LOG_KEYS = ("step", "loss", "tokens")
"""Keys of every training-step line of log.jsonl (other lines, e.g. a periodic evaluation, carry step and tokens)."""
RESULT_KEYS = ("status", "steps", "tokens", "train_seconds", "seed")
"""Keys of every results.yaml / `train` return value, whatever the status (metrics are NaN when not ok)."""


@dataclass(frozen=True)
class CliOption:
    """A command-line shorthand of a testbed: `--NAME VALUE` means `--set KEY=VALUE` (e.g. codegen's
    `--model gpt` = `--set arch=gpt`), refused in one line when `choices` is given and VALUE is not one of them."""

    key: str
    help: str
    choices: tuple[str, ...] = ()


@dataclass
class LoadedModel:
    """A trained model back from an experiment folder (`Testbed.load_model`)."""

    model: Any
    """torch module in eval mode: forward(x [B, T]) -> logits [B, T, V], and the KV-cache protocol of
    `testbeds/common/generate.py` (sampling, eval-code)."""
    tokenizer: Any
    """encode(text) -> ids, decode(ids) -> text, `vocab_size`, `eot_id`."""
    config: Any
    """the experiment's typed config (`Testbed.load_config`)."""


class Testbed(ABC):
    """A research subject. Subclasses set `name`, `metrics`, `config_class`, `preset_factories` and implement
    `train`; they override the hooks below where the defaults do not fit (`load_model`, `short_run_overrides`,
    `forward_pass`, `extra_checks`, `summary`)."""

    name: ClassVar[str] = ""
    """Short name shown to people (the registered name of a built-in testbed)."""
    metrics: ClassVar[dict[str, str]] = {}
    """metric name -> better direction ("lower" | "higher"); a study's `metric.name` must be one of them."""
    config_class: ClassVar[type | None] = None
    """The typed config dataclass (its fields are the `--set` keys)."""
    preset_factories: ClassVar[Mapping[str, Callable[[], Any]]] = {}
    """preset name -> function returning a fresh config."""
    default_preset: ClassVar[str] = "tiny"
    """The preset of `autoresearch train NAME` without --preset; every testbed has a CPU-sized `tiny`."""
    required_results: ClassVar[tuple[str, ...]] = ()
    """Numeric results every ok run returns finite (checked by evaluation_pipeline and the contract suite)."""
    summary_keys: ClassVar[tuple[str, ...]] = ("status", "error", "steps", "tokens", "train_seconds")
    """Results printed (in this order, when present) in the `key: value` summary of `autoresearch train`."""
    cli_options: ClassVar[Mapping[str, CliOption]] = {}
    """Command-line shorthands of `train`/`check` (option name without `--` -> CliOption)."""
    check_steps: ClassVar[int] = 20
    """Steps of the short run of `check` when --steps is not given."""
    check_loss_phase: ClassVar[str | None] = None
    """The `phase` of the log lines whose loss the short_training check wants to fall (None: every line with a loss);
    for a run whose phases log losses on different scales (adversarial: SFT cross-entropy, then RL losses)."""
    idea_sections: ClassVar[tuple[str, ...]] = ("model", "optim")
    """Config sections (or top-level fields) whose bool/choice fields are ideas (`flag_space`); infrastructure
    (train, eval, data) never is."""
    search_ranges: ClassVar[Mapping[str, SearchRange]] = {}
    """Numeric ideas: dotted key -> (low, high, "log" | "linear"), sampled by the planner (optuna TPE)."""
    research_surface: ClassVar[Mapping[str, str]] = {}
    """What research ideas may edit: file name in a workspace's `surface/` -> the module copied there (the testbed
    module itself as "testbed.py", the config holding the flags, the model, the optimizer, the training loop and step).
    `autoresearch research init` copies these modules into `surface/`, turning absolute imports between them into
    relative ones; everything else (evaluation, data, metrics, checkpoints, registry, sandbox) stays imported from the
    installed package, never copied. Empty: a user's testbed whose editable files are its module's folder."""
    workspace_defaults: ClassVar[Mapping[str, Any]] = {}
    """The `study:` section a new research workspace of this testbed starts from (`research init`; keys of
    `pipeline.workspace.StudyDefaults`, e.g. a CPU-sized budget and overrides). Empty: the preset as it is."""
    LOG_KEYS: ClassVar[tuple[str, ...]] = LOG_KEYS
    RESULT_KEYS: ClassVar[tuple[str, ...]] = RESULT_KEYS

    _spec: str | None = None

    # --- identity ---------------------------------------------------------------------------------------------

    @property
    def spec(self) -> str:
        """The string `get_testbed` resolves back to this testbed: a registered name, `module.path:Class`, or an
        absolute `path/to/file.py:Class`. Recorded in every experiment's config.yaml as `meta.testbed`."""
        if self._spec:
            return self._spec
        module = type(self).__module__
        file = getattr(sys.modules.get(module), "__file__", None)
        if module.startswith(_FILE_MODULE) and file:  # loaded from a file (get_testbed or another loader)
            return f"{Path(file).resolve()}:{type(self).__qualname__}"
        target = f"{module}:{type(self).__qualname__}"
        return next((n for n, t in TESTBEDS.items() if t == target), target)

    @spec.setter
    def spec(self, value: str) -> None:
        self._spec = value

    # --- configs ----------------------------------------------------------------------------------------------

    @property
    def presets(self) -> tuple[str, ...]:
        """Names of the presets, the default first when it is one of them."""
        names = list(self.preset_factories)
        return tuple(sorted(names, key=lambda n: n != self.default_preset))

    def preset_config(self, preset: str) -> Any:
        """A fresh config of `preset`; an unknown name is a one-line ConfigError with a "did you mean"."""
        if preset not in self.preset_factories:
            close = difflib.get_close_matches(str(preset), list(self.preset_factories), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"choose one of {', '.join(self.preset_factories)}"
            if not self.preset_factories:
                hint = f"the testbed declares no presets (`preset_factories` of {type(self).__name__})"
            raise ConfigError(f"unknown preset {preset!r} for testbed {self.name}; {hint}")
        return self.preset_factories[preset]()

    def make_config(self, preset: str, overrides: Sequence[str] | Mapping[str, Any] | None = None, *,
                    config_file: str | Path | None = None, round_up: bool = False) -> Any:
        """The typed, validated config of `preset`, with the YAML `config_file` laid over it (a partial file changes
        only what it names), then the dotted-key `overrides` (`["model.n_layers=4"]` or `{"model.n_layers": 4}`)
        applied in order, then every cross-field validation (`check_config`, the token budget included; `round_up`
        rounds a budget of partial steps up instead of refusing it).

        Raises a one-line ConfigError naming the field (or file), the value and the fix; nothing is written."""
        cfg = self.preset_config(preset)
        if config_file is not None:
            cfg = load_yaml(config_file, self._config_class(), base=cfg)
        return self.with_overrides(cfg, overrides or [], round_up=round_up)

    def with_overrides(self, cfg: Any, overrides: Sequence[str] | Mapping[str, Any], *, round_up: bool = False) -> Any:
        """A validated copy of `cfg` with `overrides` applied (`cfg` is left unchanged)."""
        out = apply_overrides(cfg, overrides if isinstance(overrides, Mapping) else list(overrides))
        try:
            self.check_config(out, round_up=round_up)
        except ConfigError as e:  # lead with the key the user wrote (`model.seq_len`), not only the field checked
            written = dict(overrides) if isinstance(overrides, Mapping) else dict(map(parse_override, overrides))
            raise blame_overrides(e, written, base_valid=False) from None
        return out

    def check_config(self, cfg: Any, *, round_up: bool = False) -> None:
        """Raise a one-line ConfigError for anything `train` would refuse about `cfg` at its start, so nothing is
        created for a config that cannot run (a study refuses it before the first trial).

        Default: the config's own `check_budget(round_up=...)` when it has one (whole steps of the token budget,
        the model fits this machine; `round_up` rounds `train.train_tokens` up in place instead of refusing), and a
        `train.device` this machine has. Override to add checks (call super)."""
        check = getattr(cfg, "check_budget", None)
        if callable(check):
            rounds = "round_up" in inspect.signature(check).parameters
            check(round_up=round_up) if rounds else check()
        device = getattr(getattr(cfg, "train", None), "device", None)
        if isinstance(device, str) and device not in ("cpu", "auto"):
            from autoresearch.testbeds.common.device import resolve_device  # torch: only for a non-CPU device

            resolve_device(device)

    def load_config(self, exp: Experiment) -> Any:
        """The typed config of an experiment this testbed trained, from its config.yaml.

        Raises a one-line RegistryError when the folder belongs to another testbed (or is an eval-code
        experiment), or when config.yaml is missing, damaged, lacks a section or holds an invalid value."""
        saved = exp.read_config()
        kind = exp.testbed()
        if kind != self.spec:
            what = f"an eval-code experiment (`command: {saved.get('command')}`)" if kind is None else \
                f"a run of testbed {kind}"
            raise RegistryError(f"{exp.id} is {what}, not of testbed {self.spec}; "
                                f"use the testbed that trained it" + ("" if kind is None else f" ({kind})"))
        saved.pop("meta", None)
        cls = self._config_class()
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in saved]
        if missing:
            raise RegistryError(f"{exp.config_path} lacks the section(s) {', '.join(missing)}; restore it from a "
                                "backup (every checkpoint holds a copy under its `config` key)")
        try:
            return from_dict(cls, saved)
        except ConfigError as e:
            raise RegistryError(f"{exp.config_path} is not a valid {self.name} config ({e}); restore it from a "
                                "backup") from None

    def _config_class(self) -> type:
        if self.config_class is None:
            raise ConfigError(f"testbed {self.name} declares no `config_class`; set it on {type(self).__name__}")
        return self.config_class

    def flag_space(self, cfg: Any | None = None) -> list[Flag]:
        """The ideas a planner may propose on `cfg` (default: the default preset), as `Flag`s with off = cfg's value:
        each other value of every bool/choice field under `idea_sections`, then one numeric flag (on=None, with its
        range) per `search_ranges` key (testbeds/flags.py). A bool/choice candidate the config refuses (a
        cross-field rule) is left out; a search range whose ends the config refuses is a one-line ConfigError."""
        cfg = self.preset_config(self.default_preset) if cfg is None else cfg
        out = []
        for flag in config_flags(cfg, self.idea_sections, self.search_ranges):
            values = [flag.low, flag.high] if flag.numeric else [flag.on]
            try:
                for v in values:
                    self.with_overrides(cfg, {flag.key: int(v) if flag.type == "int" else v})  # type: ignore[arg-type]
            except ConfigError as e:
                if flag.numeric:
                    raise ConfigError(f"search range of {flag.key} ({flag.low:g}..{flag.high:g}) is refused by the "
                                      f"config ({e}); fix `search_ranges` of {type(self).__name__}") from None
                continue
            out.append(flag)
        return out

    # --- overrides the upper layers write ---------------------------------------------------------------------

    def budget_overrides(self, *, tokens: int | None = None, seconds: float | None = None) -> dict[str, Any]:
        """Overrides that set the training budget; identical for every trial of a study."""
        out: dict[str, Any] = {}
        if tokens is not None:
            out["train.train_tokens"] = int(tokens)
        if seconds is not None:
            out["train.max_seconds"] = float(seconds)
        return out

    def seed_overrides(self, seed: int) -> dict[str, Any]:
        """Overrides that set the seed of init and data order."""
        return {"train.seed": int(seed)}

    def short_run_overrides(self, steps: int, cfg: Any | None = None) -> dict[str, Any]:
        """Overrides that turn `cfg` (default: the default preset) into a short run of `steps` optimizer steps for
        checks and regression traces: every step logged, a checkpoint in the middle, no time budget, evaluation
        kept small. Default: for configs with `tokens_per_step` and the usual `train` section."""
        cfg = self.preset_config(self.default_preset) if cfg is None else cfg
        per_step = getattr(cfg, "tokens_per_step", None)
        if not isinstance(per_step, int) or per_step <= 0:
            raise ConfigError(f"testbed {self.name}: its config has no `tokens_per_step`, so a short run cannot be "
                              f"derived; override short_run_overrides")
        out = {"train.train_tokens": steps * per_step, "train.log_every": 1,
               "train.checkpoint_every": max(1, steps // 2), "train.max_seconds": 0.0}
        train = getattr(cfg, "train", None)  # keys the config lacks are left out: a testbed without checkpoints
        return {k: v for k, v in out.items() if hasattr(train, k.split(".", 1)[1])}  # fails checkpoint_roundtrip

    # --- training and models ----------------------------------------------------------------------------------

    @abstractmethod
    def train(self, cfg: Any, exp: Experiment, *, resume: bool = False, progress: bool = False) -> dict[str, Any]:
        """Train `cfg` into the experiment folder `exp` and return its results (also written to results.yaml).

        Writes config.yaml with `meta.testbed = self.spec` (unless resuming), log lines with `LOG_KEYS`, results
        with `RESULT_KEYS` + `required_results` and `status` one of ok | diverged (a crash raises and the folder
        records `crashed`). `resume=True` continues `exp` from its latest checkpoint; `progress` shows a bar."""

    def load_model(self, exp: Experiment, device: str = "cpu") -> LoadedModel:
        """The model of an experiment's latest checkpoint, with its tokenizer and config (eval-code, sampling).

        Raises a one-line CheckpointError when the experiment has no checkpoint, RegistryError when its folder is
        not this testbed's. Default: a ConfigError, this testbed has no model to load."""
        raise ConfigError(f"testbed {self.name} has no model to load from {exp.id}; eval-code --model needs a "
                          "testbed that implements load_model (lm, codegen)")

    def checkpoint_model_state(self, exp: Experiment, device: str = "cpu") -> dict[str, Any]:
        """The `model` state dict of an experiment's latest verified checkpoint (for `load_model`); a one-line
        CheckpointError when it has none (with the status, and how to resume a killed run)."""
        from autoresearch.harness.checkpoint import latest_checkpoint, load_checkpoint

        ckpt = latest_checkpoint(exp.checkpoints_dir)
        if ckpt is None:
            status, note = exp.state()
            raise CheckpointError(f"{exp.id} has no checkpoint (status: {status}); "
                                  + (note or "train it to completion first"))
        return load_checkpoint(ckpt, map_location=device)["model"]

    def summary(self, cfg: Any, results: dict[str, Any]) -> dict[str, Any]:
        """The `key: value` lines `autoresearch train` prints after a run: `summary_keys`, then any `required_results`
        and `metrics` they leave out (a user testbed's metric is shown without declaring it twice), when in `results`."""
        keys = [*self.summary_keys, *(k for k in (*self.required_results, *self.metrics) if k not in self.summary_keys)]
        return {k: results[k] for k in dict.fromkeys(keys) if k in results}

    def describe_run(self, cfg: Any) -> str:
        """What `autoresearch train` announces before training, e.g. "240 steps x 2048 tokens"."""
        steps, per_step = getattr(cfg, "steps", None), getattr(cfg, "tokens_per_step", None)
        return f"{steps} steps x {per_step} tokens" if steps is not None and per_step is not None else self.name

    # --- integration checks -----------------------------------------------------------------------------------

    def checks(self, cfg: Any, out_dir: Path, *, steps: int | None = None) -> list[CheckResult]:
        """Run the integration checks on a short run of `steps` (at least 4; default `check_steps`) under
        `out_dir/check_runs`: forward_pass, short_training (the loss falls), checkpoint_roundtrip (a resumed run
        reproduces the losses bit for bit), evaluation_pipeline (`required_results` finite and saved), then the
        testbed's `extra_checks`. Never raises for a failing check: it is a CheckResult with status fail."""
        from autoresearch.testbeds.checks import run_checks

        return run_checks(self, cfg, Path(out_dir), max(4, steps or self.check_steps))

    def forward_pass(self, cfg: Any) -> str:
        """Check hook: build the model of `cfg`, run one batch forward and backward, return a detail (raise
        `checks.CheckFailed` with the reason to fail). Default: nothing to check (a testbed without a model)."""
        return "no model to check: the testbed declares no forward pass"

    def extra_checks(self, cfg: Any, work: Path, run: ShortRun) -> list[Check]:
        """Check hook: more (name, fn) checks run after the default four; `run` is the finished short run, `cfg`
        its config, `work` a scratch folder."""
        return []


TESTBEDS: dict[str, str] = {
    "lm": "autoresearch.testbeds.lm.testbed:LMTestbed",
    "codegen": "autoresearch.testbeds.codegen.testbed:CodegenTestbed",
    "adversarial": "autoresearch.testbeds.adversarial.testbed:AdversarialTestbed",
}

_FILE_MODULE = "_autoresearch_testbed_"
_FORMS = "a registered name ({names}), module.path:Class or path/to/file.py:Class"


def register_testbed(name: str, target: str) -> None:
    """Register `name` -> "module.path:ClassName"."""
    TESTBEDS[name] = target


def get_testbed(ref: str) -> Testbed:
    """The testbed `ref` names: a registered name, `module.path:Class`, or `path/to/file.py:Class` (loaded from the
    file). Its `spec` is set to the canonical form: the registered name, or the file's absolute path."""
    ref = str(ref).strip()
    target = TESTBEDS.get(ref, ref)
    forms = _FORMS.format(names=", ".join(TESTBEDS))
    if ":" not in target:
        close = difflib.get_close_matches(ref, list(TESTBEDS), n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"use {forms}"
        raise ConfigError(f"unknown testbed {ref!r}; {hint}")
    where, cls_name = target.rsplit(":", 1)
    if where.endswith(".py"):
        path = Path(where).expanduser().resolve()
        mod = _load_file(path, ref)
        spec = f"{path}:{cls_name}"
    else:
        try:
            mod = importlib.import_module(where)
        except ModuleNotFoundError as e:
            raise ConfigError(f"testbed {ref!r}: cannot import {where!r} ({e}); check the module path, or use "
                              f"{forms}") from None
        spec = next((n for n, t in TESTBEDS.items() if t == target), target)
    cls = getattr(mod, cls_name, None)
    if cls is None:
        raise ConfigError(f"testbed {ref!r}: {where} has no {cls_name!r}; check the class name")
    if not (isinstance(cls, type) and issubclass(cls, Testbed)):
        raise ConfigError(f"testbed {ref!r}: {cls_name} is not a subclass of autoresearch.testbeds.Testbed; "
                          "derive it from Testbed (see docs/testbeds.md)")
    testbed = cls()
    testbed.spec = spec
    return testbed


def _load_file(path: Path, ref: str) -> Any:
    """Import a testbed file under a name derived from its absolute path (once per process, again after an edit).

    A file whose folder has `__init__.py` is imported as a module of that folder loaded as a package (its name: a
    hash of the folder's path), so its relative imports (`from .gpt import GPT`) work and two copies of one package
    (two worktrees of a research workspace) never collide in one process. Files are compiled from source, never from
    or into `__pycache__`, and an edited folder (its `.py` files' content changed) is imported afresh, so the code run
    is always the code on disk."""
    if not path.is_file():
        raise ConfigError(f"testbed file {str(path)!r} does not exist; check the path in {ref!r}")
    folder = path.parent
    if (folder / "__init__.py").is_file():
        package = _FILE_MODULE + hashlib.sha1(str(folder).encode()).hexdigest()[:12]
        mod_name = f"{package}.{path.stem}"
    else:
        package, mod_name = "", _FILE_MODULE + hashlib.sha1(str(path).encode()).hexdigest()[:12]
    root = package or mod_name
    fingerprint = _fingerprint(folder if package else path)
    loaded = sys.modules.get(root)
    if loaded is not None and getattr(loaded, "__autoresearch_fingerprint__", None) != fingerprint:
        for name in [n for n in sys.modules if n == root or n.startswith(root + ".")]:
            del sys.modules[name]  # edited since it was imported: import the code on disk
    if mod_name in sys.modules:
        return sys.modules[mod_name]
    _install_finder()
    try:
        if package and package not in sys.modules:
            _exec_new(package, folder / "__init__.py", is_package=True).__autoresearch_fingerprint__ = fingerprint
        mod = importlib.import_module(mod_name) if package else _exec_new(mod_name, path, is_package=False)
        if not package:
            mod.__autoresearch_fingerprint__ = fingerprint
    except AutoresearchError:
        _forget(root)
        raise
    except Exception as e:
        _forget(root)
        raise ConfigError(f"testbed file {path} cannot be loaded ({type(e).__name__}: {e}); fix the file") from None
    return mod


def _fingerprint(where: Path) -> str:
    """Content hash of a file, or of the `.py` files directly in a folder (what `_load_file` imports from it)."""
    files = sorted(where.glob("*.py")) if where.is_dir() else [where]
    h = hashlib.sha1()
    for f in files:
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def _forget(root: str) -> None:
    for name in [n for n in sys.modules if n == root or n.startswith(root + ".")]:
        del sys.modules[name]


class _SourceLoader(importlib.machinery.SourceFileLoader):
    """Compiles from source every time: no stale `.pyc` (an edit within the same second and size), and no
    `__pycache__` written into a research workspace's worktrees."""

    def get_code(self, fullname: str) -> Any:
        source = self.get_data(self.path)
        return self.source_to_code(source, self.path)


class _FileTestbedFinder:
    """Finds the submodules of packages loaded by `_load_file` (names under `_FILE_MODULE`) in their folders."""

    @staticmethod
    def find_spec(fullname: str, path: Any = None, target: Any = None) -> Any:
        if not fullname.startswith(_FILE_MODULE) or "." not in fullname:
            return None
        parent = sys.modules.get(fullname.rsplit(".", 1)[0])
        folders = getattr(parent, "__path__", None)
        if not folders:
            return None
        leaf = fullname.rsplit(".", 1)[1]
        for folder in folders:
            sub = Path(folder) / leaf
            if (sub / "__init__.py").is_file():
                return importlib.util.spec_from_file_location(
                    fullname, sub / "__init__.py", loader=_SourceLoader(fullname, str(sub / "__init__.py")),
                    submodule_search_locations=[str(sub)])
            if sub.with_suffix(".py").is_file():
                file = str(sub.with_suffix(".py"))
                return importlib.util.spec_from_file_location(fullname, file, loader=_SourceLoader(fullname, file))
        return None


def _install_finder() -> None:
    if not any(f is _FileTestbedFinder for f in sys.meta_path):
        sys.meta_path.insert(0, _FileTestbedFinder)  # type: ignore[arg-type]


def _exec_new(name: str, file: Path, *, is_package: bool) -> Any:
    spec = importlib.util.spec_from_file_location(
        name, file, loader=_SourceLoader(name, str(file)),
        submodule_search_locations=[str(file.parent)] if is_package else None)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # before exec, so dataclass type hints (PEP 563 strings) resolve in the module
    spec.loader.exec_module(mod)
    return mod
