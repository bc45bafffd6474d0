"""The testbed interface: build from config -> train with a budget -> evaluate -> metrics dict.

The research layer talks only to this interface, so a user's own testbed (a Python module path such as
`mypkg.mytestbed:MyTestbed`) plugs in the same way as the built-in ones (DESIGN.md §2).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autoresearch.errors import ConfigError
from autoresearch.harness.registry import Experiment

__all__ = ["Testbed", "CheckResult", "get_testbed", "register_testbed", "TESTBEDS"]


@dataclass
class CheckResult:
    """One integration check: name, pass|fail, a human-readable detail."""

    name: str
    status: str
    detail: str
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "pass"


class Testbed(ABC):
    """A research subject. Implementations own a typed config class and its presets."""

    name: str = ""
    metrics: dict[str, str] = {}
    """metric name -> better direction ("lower" | "higher")."""

    @abstractmethod
    def make_config(self, preset: str, overrides: list[str] | dict[str, Any] | None = None) -> Any:
        """The typed, validated config for `preset` with dotted-key overrides applied."""

    @abstractmethod
    def train(self, cfg: Any, exp: Experiment, *, resume: bool = False, progress: bool = False) -> dict[str, Any]:
        """Train within the config's budget, evaluate, fill `exp`, return the results dict (incl. `status`)."""

    @abstractmethod
    def checks(self, cfg: Any, out_dir: Path) -> list[CheckResult]:
        """Run the integration checks (forward_pass, short_training, checkpoint_roundtrip, evaluation_pipeline...)."""

    def budget_overrides(self, *, tokens: int | None = None, seconds: float | None = None) -> dict[str, Any]:
        """Overrides that set the training budget; identical for every trial of a study."""
        out: dict[str, Any] = {}
        if tokens is not None:
            out["train.train_tokens"] = int(tokens)
        if seconds is not None:
            out["train.max_seconds"] = float(seconds)
        return out

    def seed_overrides(self, seed: int) -> dict[str, Any]:
        return {"train.seed": int(seed)}

    def check_config(self, cfg: Any) -> None:
        """Raise a one-line ConfigError for anything `train` would refuse about `cfg` at its start (e.g. a token
        budget that is not whole steps), so a study can refuse it before the first trial. Default: the config's own
        `check_budget()` when it has one (LMConfig); override to add checks."""
        check = getattr(cfg, "check_budget", None)
        if callable(check):
            check()


TESTBEDS: dict[str, str] = {
    "lm": "autoresearch.testbeds.lm.testbed:LMTestbed",
    "codegen": "autoresearch.testbeds.codegen.testbed:CodegenTestbed",
}


def register_testbed(name: str, target: str) -> None:
    """Register `name` -> "module.path:ClassName"."""
    TESTBEDS[name] = target


def get_testbed(name: str) -> Testbed:
    """Instantiate a testbed by registered name or by `module.path:ClassName`."""
    target = TESTBEDS.get(name, name)
    if ":" not in target:
        raise ConfigError(f"unknown testbed {name!r}; use one of {', '.join(TESTBEDS)} or 'module.path:ClassName'")
    mod_name, cls_name = target.split(":", 1)
    try:
        mod = importlib.import_module(mod_name)
    except ModuleNotFoundError as e:
        raise ConfigError(f"testbed {name!r}: cannot import {mod_name!r} ({e}); check the module path") from None
    cls = getattr(mod, cls_name, None)
    if cls is None:
        raise ConfigError(f"testbed {name!r}: {mod_name} has no {cls_name!r}; check the class name")
    return cls()
