"""Settings in one place: every path and environment variable autoresearch reads, as one typed, validated object.

`load_settings()` reads the environment *when called* (a test or a parent process may set a variable after import)
and returns a frozen `Settings`; a value that cannot work (a cache "folder" that is a file, a URL without a scheme)
is one ConfigError line naming the variable, the value and the fix. Nothing here creates folders or touches the
disk beyond `stat`: the code that writes a cache reports its own disk errors (harness/atomic.py `disk_error`).

`ENV_VARS` documents every variable (name, meaning, default); README.md's table lists the same names (a test checks
it), and a guard test forbids reading these variables anywhere else in the package.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from autoresearch.errors import ConfigError

__all__ = ["Settings", "EnvVar", "ENV_VARS", "load_settings", "cache_root", "DEFAULT_EXPERIMENTS_ROOT",
           "DEFAULT_STUDIES_ROOT", "DEFAULT_OPENAI_BASE_URL"]

DEFAULT_EXPERIMENTS_ROOT = "experiments"
"""Experiment registry of the CLI verbs (`--root`), relative to the current directory."""
DEFAULT_STUDIES_ROOT = "studies"
"""Folder holding study folders (`study run --root`), relative to the current directory."""
DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"


@dataclass(frozen=True)
class EnvVar:
    """One environment variable: its name, what it sets, its default in words, and who sets it."""

    name: str
    meaning: str
    default: str
    internal: bool = False  # set by autoresearch itself for its own child processes, not by users


ENV_VARS: tuple[EnvVar, ...] = (
    EnvVar("AUTORESEARCH_CACHE", "cache root: token files (`tokens/`), tokenizers (`tokenizers/`), regression "
           "traces (`traces/`); `data.cache_dir` / `regression.store` override it per run", "~/.cache/autoresearch"),
    EnvVar("AUTORESEARCH_EXPERIMENTS", "experiment registry that `eval-code --model exp-NNN` loads from",
           "experiments (in the current directory)"),
    EnvVar("AUTORESEARCH_MBPP", "MBPP `mbpp.jsonl` for `eval-code --benchmark mbpp` (`--mbpp-path` overrides it)",
           "../shared/data/mbpp/mbpp.jsonl (from the current directory)"),
    EnvVar("OPENAI_BASE_URL", "endpoint of `--model openai:MODEL` without `@URL`", DEFAULT_OPENAI_BASE_URL),
    EnvVar("OPENAI_API_KEY", "bearer key sent to OpenAI-compatible endpoints", "none (a local server needs none)"),
    EnvVar("AUTORESEARCH_DEBUG", "1 = print full tracebacks instead of one-line errors (what `--debug` sets)", "0"),
    EnvVar("CUDA_VISIBLE_DEVICES", "GPUs a study may use; each parallel trial is pinned to one of them",
           "every GPU of /proc/driver/nvidia/gpus"),
    EnvVar("AUTORESEARCH_TRIAL_ATTEMPT", "attempt number of a study trial (research/trial.py)", "1", internal=True),
    EnvVar("AUTORESEARCH_TRIAL_PARENT", "pid of the study runner a trial must die with (research/trial.py)", "none",
           internal=True),
)

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


@dataclass(frozen=True)
class Settings:
    """Paths and endpoints of this process, from the environment (see `ENV_VARS`); build with `load_settings()`."""

    cache_root: Path
    """$AUTORESEARCH_CACHE, else ~/.cache/autoresearch."""
    experiments_root: Path
    """$AUTORESEARCH_EXPERIMENTS, else `experiments` (relative to the current directory)."""
    studies_root: Path
    """`studies` (relative to the current directory); no variable."""
    mbpp_path: Path
    """$AUTORESEARCH_MBPP, else ../shared/data/mbpp/mbpp.jsonl from the current directory."""
    openai_base_url: str
    """$OPENAI_BASE_URL without a trailing slash, else https://api.openai.com/v1."""
    openai_api_key: str = field(repr=False)
    """$OPENAI_API_KEY, else "" (never printed)."""
    debug: bool = False
    """$AUTORESEARCH_DEBUG is 1/true/yes/on."""

    @property
    def tokens_dir(self) -> Path:
        """Cached token files, one folder per corpus+tokenizer key (harness/data.py)."""
        return self.cache_root / "tokens"

    @property
    def tokenizers_dir(self) -> Path:
        """Cached BPE tokenizers (harness/tokenizer.py `cached_bpe`, the codegen testbed)."""
        return self.cache_root / "tokenizers"

    @property
    def traces_dir(self) -> Path:
        """Recorded regression traces shared by every study on this machine (research/regression.py)."""
        return self.cache_root / "traces"


def _path(env: Mapping[str, str], name: str) -> Path | None:
    """The variable as a user path (`~` expanded), None when unset or empty."""
    raw = env.get(name, "").strip()
    if not raw:
        return None
    if "\x00" in raw:
        raise ConfigError(f"environment variable {name}={raw!r} holds a NUL byte; set it to a plain path")
    return Path(raw).expanduser()


def _folder(env: Mapping[str, str], name: str, default: Path) -> Path:
    path = _path(env, name)
    if path is None:
        return default
    if path.exists() and not path.is_dir():
        raise ConfigError(f"environment variable {name}={str(path)!r} is a file, not a folder; point it at a "
                          f"folder or unset it (default {default})")
    return path


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings of this process from `environ` (default: `os.environ`, read now), validated."""
    env = os.environ if environ is None else environ
    home_cache = Path.home() / ".cache" / "autoresearch"
    mbpp = _path(env, "AUTORESEARCH_MBPP")
    if mbpp is not None and mbpp.is_dir():
        raise ConfigError(f"environment variable AUTORESEARCH_MBPP={str(mbpp)!r} is a folder; point it at the "
                          f"mbpp.jsonl file inside it")
    url = env.get("OPENAI_BASE_URL", "").strip() or DEFAULT_OPENAI_BASE_URL
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"environment variable OPENAI_BASE_URL={url!r} must start with http:// or https://; "
                          f"e.g. http://127.0.0.1:8000/v1")
    debug = env.get("AUTORESEARCH_DEBUG", "").strip().lower()
    if debug not in _TRUE + _FALSE:
        raise ConfigError(f"environment variable AUTORESEARCH_DEBUG={debug!r} must be 1 or 0; use "
                          f"AUTORESEARCH_DEBUG=1 (or --debug) for tracebacks")
    return Settings(
        cache_root=_folder(env, "AUTORESEARCH_CACHE", home_cache),
        experiments_root=_folder(env, "AUTORESEARCH_EXPERIMENTS", Path(DEFAULT_EXPERIMENTS_ROOT)),
        studies_root=Path(DEFAULT_STUDIES_ROOT),
        mbpp_path=mbpp if mbpp is not None else Path.cwd().parent / "shared" / "data" / "mbpp" / "mbpp.jsonl",
        openai_base_url=url.rstrip("/"),
        openai_api_key=env.get("OPENAI_API_KEY", ""),
        debug=debug in _TRUE,
    )


def cache_root(configured: str | Path = "") -> Path:
    """Cache root of a run: the config's `cache_dir` when set, else `load_settings().cache_root`."""
    if str(configured).strip():
        return Path(configured).expanduser()
    return load_settings().cache_root
