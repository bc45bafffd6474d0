"""A research workspace: a git repository holding the editable research surface and `workspace.yaml`.

`init_workspace(DIR, "lm")` makes DIR a git repository (or uses the one it is), copies the built-in testbed's research
surface into `DIR/surface/` (pipeline/surface.py), writes `workspace.yaml` (what is editable, what is protected, the
study defaults, gates and budgets) and commits both on the checked-out branch — the only commit the pipeline ever makes
there; every idea version lives on its own branch in a worktree (pipeline/worktrees.py). A user's own testbed
(`path/file.py:Class` or `module.path:Class` inside DIR) is used in place: nothing is copied, its files are the
editable paths. `DIR/.autoresearch/` (state, worktrees, traces) is listed in `.git/info/exclude`, never committed.

`load(DIR)` reads and validates workspace.yaml (one-line ConfigError naming the field) into a `Workspace`.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml

from autoresearch.agents.coders.allowed_paths import match_glob
from autoresearch.errors import AutoresearchError, ConfigError, PipelineError
from autoresearch.harness.atomic import atomic_write_text
from autoresearch.harness.config import check_ranges, from_dict, param, require, to_dict, yaml_where
from autoresearch.pipeline._git import commit_args, git, git_ok
from autoresearch.pipeline.surface import SURFACE_DIR, copy_surface
from autoresearch.research.study import Budget, MetricSpec, SeedPlan
from autoresearch.research.verdicts import DecisionRule
from autoresearch.testbeds.base import TESTBEDS, Testbed, get_testbed

__all__ = [
    "Workspace", "WorkspaceFile", "StudyDefaults", "Budgets", "AgentsSection", "LLMBudgets", "LLMLimits", "LLMPrice",
    "LLM_ROLES", "init_workspace", "load",
    "WORKSPACE_FILE", "STATE_DIR", "OUTPUTS", "GATE_STAGES", "GATE_MODES", "DEFAULT_PROTECTED", "EXCLUDED", "INIT_MESSAGE",
]

WORKSPACE_FILE = "workspace.yaml"
STATE_DIR = ".autoresearch"
GATE_STAGES = ("ideation", "design", "implementation", "training", "analysis", "report")
GATE_MODES = ("human", "auto-judge", "auto")
DEFAULT_PROTECTED = [WORKSPACE_FILE, "design/baselines.yaml", f"{STATE_DIR}/**"]
OUTPUTS = ("design", "logs", "ideas", "studies", "experiments", "report.md", "report.html")
"""What a run writes at the workspace root for people to read (never committed: the user's branch gets one commit)."""
EXCLUDED = (f"/{STATE_DIR}/", *(f"/{o}/" if "." not in o else f"/{o}" for o in OUTPUTS), "__pycache__/", "*.pyc")
"""Lines added to .git/info/exclude: the pipeline's state and outputs, and bytecode a run may leave in a worktree."""
INIT_MESSAGE = "autoresearch: init workspace"
FILE_VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


# --- workspace.yaml -------------------------------------------------------------------------------------------------


@dataclass
class StudyDefaults:
    """What every version's study uses (the research Study's sections of the same names)."""

    preset: str = param("tiny", "testbed preset of every trial")
    overrides: dict[str, Any] = param({}, "overrides applied to every arm (dotted keys -> values)")
    budget: Budget = param(Budget(), "training budget of every trial (tokens and/or seconds; empty = the preset's)")
    metric: MetricSpec = param(MetricSpec(), "metric the verdict is about and its direction")
    seeds: SeedPlan = param(SeedPlan(initial=2, max=4), "seeds per arm (initial, max, step, base)")
    decision: DecisionRule = param(DecisionRule(), "decision rule (alpha, min_effect, test, ci)")
    workers: int = param(0, "parallel trials (0 = cores // threads per trial)", ge=0, le=1024)

    def __post_init__(self) -> None:
        check_ranges(self, "study")


@dataclass
class Budgets:
    """When a research run stops without a KEEP (0 = no limit)."""

    max_versions: int = param(3, "idea versions to try at most", ge=0)
    max_trials: int = param(0, "training trials at most, over all studies", ge=0)
    max_seconds: float = param(0.0, "wall-clock seconds at most", ge=0)

    def __post_init__(self) -> None:
        check_ranges(self, "budgets")


LLM_ROLES = ("planner", "coder", "judge", "analyzer", "reviser")


@dataclass
class LLMLimits:
    """One language-model budget, checked before every call (null or 0 = no limit, as in `budgets`)."""

    section: ClassVar[str] = "limits"
    dollars: float | None = param(None, "USD at most (needs every LLM backend's price)", ge=0)
    tokens: int | None = param(None, "prompt + completion tokens at most", ge=0)
    calls: int | None = param(None, "LLM calls at most (structured re-asks included)", ge=0)
    seconds: float | None = param(None, "seconds waiting for LLM answers at most", ge=0)

    def __post_init__(self) -> None:
        import math

        for name in ("dollars", "tokens", "calls", "seconds"):
            v = getattr(self, name)
            require(v is None or (math.isfinite(v) and v >= 0), f"limits.{name}", v, "must be >= 0 or null",
                    "null or 0 = no limit, e.g. 100")


@dataclass
class LLMBudgets:
    """The LLM budgets of a run, of each idea (all its versions together) and of each role."""

    section: ClassVar[str] = "agents.budgets"
    run: LLMLimits = param(LLMLimits(), "the whole run (`--budget-dollars/--budget-tokens/--budget-calls` override)")
    idea: LLMLimits = param(LLMLimits(), "each idea, over all its versions")
    roles: dict[str, LLMLimits] = param({}, "role (planner, coder, judge, analyzer, reviser) -> its limits")

    def __post_init__(self) -> None:
        roles: dict[str, LLMLimits] = {}
        for role, lim in (self.roles or {}).items():
            if role not in LLM_ROLES:
                import difflib

                close = difflib.get_close_matches(str(role), LLM_ROLES, n=1)
                raise ConfigError(f"unknown role `agents.budgets.roles.{role}`; "
                                  + (f"did you mean `{close[0]}`?" if close else f"roles: {', '.join(LLM_ROLES)}"))
            roles[role] = lim if isinstance(lim, LLMLimits) else from_dict(
                LLMLimits, lim if lim is not None else {}, f"agents.budgets.roles.{role}")
        self.roles = roles


@dataclass
class LLMPrice:
    """A model's price in USD per million tokens."""

    input: float = param(0.0, "USD per 1M prompt tokens", ge=0)
    output: float = param(0.0, "USD per 1M completion tokens", ge=0)

    def __post_init__(self) -> None:
        check_ranges(self, "price")


@dataclass
class AgentsSection:
    """The language-model roles (docs/agents.md): budgets, prices of models the built-in table lacks, judge samples."""

    section: ClassVar[str] = "agents"
    budgets: LLMBudgets = param(LLMBudgets(), "LLM budgets per run, per idea and per role (null or 0 = no limit)")
    prices: dict[str, LLMPrice] = param({}, "model -> {input, output}: USD per 1M tokens (over the built-in table)")
    judge_samples: int = param(3, "fresh LLM-judge conversations at the auto-judge gate (odd: the majority decides)",
                               ge=1, le=9)
    timeout_s: float = param(120.0, "seconds to wait for one LLM answer (a local CPU model may need minutes)",
                             ge=1, le=3600)
    context_tokens: int = param(16000, "workspace text (tokens, ~4 chars each) the planner and coder are shown",
                                ge=256)
    settings: dict[str, Any] = param({}, "role -> its own knobs, e.g. {coder: {whole_file: true}} (docs/agents.md)")

    def __post_init__(self) -> None:
        check_ranges(self, "agents")
        require(self.judge_samples % 2 == 1, "agents.judge_samples", self.judge_samples,
                "must be odd (the majority of the judge's samples decides)", "use 1, 3 or 5")
        prices: dict[str, LLMPrice] = {}
        for model, price in (self.prices or {}).items():
            require(isinstance(price, (dict, LLMPrice)), f"agents.prices.{model}", price,
                    "must be a mapping {input: USD/1M, output: USD/1M}", "e.g. {input: 0.15, output: 0.6}")
            prices[str(model)] = price if isinstance(price, LLMPrice) else from_dict(
                LLMPrice, price, f"agents.prices.{model}")
        self.prices = prices
        for role, knobs in (self.settings or {}).items():
            require(role in LLM_ROLES, f"agents.settings.{role}", role, f"must be a role ({', '.join(LLM_ROLES)})",
                    "e.g. settings: {coder: {whole_file: true}}")
            require(isinstance(knobs, dict), f"agents.settings.{role}", knobs, "must be a mapping of knobs",
                    "e.g. {whole_file: true}")


@dataclass
class WorkspaceFile:
    """`workspace.yaml`: the testbed, what ideas may edit, what is protected, and the study defaults."""

    testbed: str = param("", "the workspace's testbed, relative to its root: surface/testbed.py:Class")
    base_testbed: str = param("", "the testbed it was made from (lm, codegen, or the user's spec)")
    editable: list[str] = param([f"{SURFACE_DIR}/**"], "globs (relative to the root) an idea may change")
    protected: list[str] = param(list(DEFAULT_PROTECTED), "globs no idea may change (hashed before/after edits)")
    study: StudyDefaults = param(StudyDefaults(), "defaults of every version's study")
    gates: dict[str, str] = param({}, "stage -> human | auto-judge | auto (missing stages: auto)")
    budgets: Budgets = param(Budgets(), "when the run stops")
    agents: AgentsSection = param(AgentsSection(), "language-model roles: budgets, prices, judge samples")
    version: int = param(FILE_VERSION, "file format")

    def __post_init__(self) -> None:
        require(self.version == FILE_VERSION, "version", self.version, f"must be {FILE_VERSION}",
                "upgrade autoresearch or re-create the workspace")
        require(":" in self.testbed, "testbed", self.testbed, "must be path/file.py:Class or module.path:Class",
                "e.g. surface/testbed.py:LMTestbed")
        for key in ("editable", "protected"):
            for i, g in enumerate(getattr(self, key)):
                require(bool(g.strip()), f"{key}[{i}]", g, "must be a non-empty glob", "e.g. surface/**")
                require(not g.startswith("/") and ".." not in Path(g).parts, f"{key}[{i}]", g,
                        "must be relative to the workspace root, without `..`", "e.g. surface/**")
        require(bool(self.editable), "editable", self.editable, "must list at least one glob", "e.g. [surface/**]")
        for stage, mode in self.gates.items():
            if stage not in GATE_STAGES:
                import difflib

                close = difflib.get_close_matches(str(stage), GATE_STAGES, n=1)
                raise ConfigError(f"unknown gate stage `gates.{stage}`; "
                                  + (f"did you mean `gates.{close[0]}`?" if close else
                                     f"stages: {', '.join(GATE_STAGES)}"))
            require(mode in GATE_MODES, f"gates.{stage}", mode, f"must be one of {', '.join(GATE_MODES)}",
                    "e.g. human to pause for a person's decision")
        self.gates = {s: self.gates.get(s, "auto") for s in GATE_STAGES}


def read_workspace_file(path: Path) -> WorkspaceFile:
    """Parse and validate workspace.yaml; every problem is one ConfigError line naming the file and the field."""
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PipelineError(f"{path.parent} is not a research workspace (no {WORKSPACE_FILE}); create one with "
                            f"`autoresearch research init {path.parent} --testbed lm`") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {shown} ({type(e).__name__}: {e}); restore it with "
                          f"`git checkout -- {WORKSPACE_FILE}`") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{shown} is not valid YAML{yaml_where(e)}; fix it or restore it with "
                          f"`git checkout -- {WORKSPACE_FILE}`") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{shown} must hold a mapping (testbed, editable, protected, study, gates, budgets, agents), got "
                          f"{type(data).__name__ if data is not None else 'an empty file'}")
    try:
        return from_dict(WorkspaceFile, data)
    except ConfigError as e:
        raise ConfigError(f"{shown}: {e}") from None


def _dump(wf: WorkspaceFile) -> str:
    head = ("# The research workspace (docs/pipeline.md). `editable`: what ideas may change; `protected`: what no\n"
            "# edit may touch (hashed with the installed evaluation code before and after every edit); `study`: the\n"
            "# defaults of every version's study; `gates`: stage -> human | auto-judge | auto; `budgets`: 0 = none;\n"
            "# `agents`: the language-model roles' budgets (null = none), model prices, judge samples (docs/agents.md).\n")
    return head + yaml.safe_dump(to_dict(wf), sort_keys=False)


# --- the workspace ----------------------------------------------------------------------------------------------


@dataclass
class Workspace:
    """A loaded workspace: its root (the git checkout of the user's branch) and its validated workspace.yaml."""

    root: Path
    file: WorkspaceFile

    @classmethod
    def load(cls, root: str | Path) -> Workspace:
        """The workspace at `root` (see `load`)."""
        return load(root)

    @property
    def workspace_file(self) -> Path:
        return self.root / WORKSPACE_FILE

    @property
    def state_dir(self) -> Path:
        """`.autoresearch/`: pipeline.yaml, worktrees/, traces/ (git-excluded)."""
        return self.root / STATE_DIR

    @property
    def state_file(self) -> Path:
        return self.state_dir / "pipeline.yaml"

    @property
    def worktrees_dir(self) -> Path:
        return self.state_dir / "worktrees"

    @property
    def traces_dir(self) -> Path:
        """Baseline-path regression traces, one per base commit."""
        return self.state_dir / "traces"

    @property
    def design_dir(self) -> Path:
        """design/: plan.md, tasks.yaml, baselines.yaml, metrics.yaml."""
        return self.root / "design"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"

    @property
    def errors_log(self) -> Path:
        return self.logs_dir / "errors.log"

    @property
    def ideas_dir(self) -> Path:
        """ideas/: idea_log.md and each version's diff ideas/<name>/v<k>.diff."""
        return self.root / "ideas"

    @property
    def studies_dir(self) -> Path:
        return self.root / "studies"

    @property
    def experiments_dir(self) -> Path:
        """The registry of every trial's experiment folder."""
        return self.root / "experiments"

    def testbed_spec(self, checkout: str | Path | None = None) -> str:
        """The testbed spec of `checkout` (default: the root; a worktree's path for that version's code): a file
        spec made absolute, a module spec as written."""
        where, cls = self.file.testbed.rsplit(":", 1)
        if not where.endswith(".py"):
            return self.file.testbed
        base = Path(checkout) if checkout is not None else self.root
        return f"{(base / where).resolve()}:{cls}"

    def testbed(self, checkout: str | Path | None = None) -> Testbed:
        """The testbed of `checkout` (default: the root), loaded from its files."""
        return get_testbed(self.testbed_spec(checkout))

    def is_editable(self, path: str) -> bool:
        """Whether an idea may change the relative path `path` (matches an editable glob, no protected one)."""
        return any(match_glob(path, g) for g in self.file.editable) and not self.is_protected(path)

    def is_protected(self, path: str) -> bool:
        return any(match_glob(path, g) for g in self.file.protected)


def load(root: str | Path) -> Workspace:
    """Read `root/workspace.yaml` into a Workspace. Not a workspace, a damaged file, or a testbed file that does not
    exist: a one-line error naming the file, the field and the fix."""
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise PipelineError(f"workspace {root} does not exist; create it with "
                            f"`autoresearch research init {root} --testbed lm`")
    wf = read_workspace_file(root / WORKSPACE_FILE)
    ws = Workspace(root, wf)
    where = wf.testbed.rsplit(":", 1)[0]
    if where.endswith(".py") and not (root / where).is_file():
        raise ConfigError(f"{ws.workspace_file}: `testbed` file {where} does not exist in {root}; restore it "
                          f"(`git checkout -- {where}`) or fix `testbed`")
    return ws


# --- init -----------------------------------------------------------------------------------------------------


def init_workspace(root: str | Path, testbed: str, *, preset: str | None = None) -> Workspace:
    """Make `root` a research workspace for `testbed` (a registered name, `module.path:Class` or
    `path/file.py:Class`) and return it; prints nothing.

    A built-in testbed's research surface is copied into `root/surface/`; a user's testbed inside `root` is used in
    place. workspace.yaml (+ surface/) is committed on the checked-out branch. Running it again after a kill before
    the commit finishes the job; on a finished workspace it is a one-line PipelineError."""
    root = Path(root).expanduser().resolve()
    if root.exists() and not root.is_dir():
        raise PipelineError(f"workspace {root} is a file; give a folder")
    root.mkdir(parents=True, exist_ok=True)
    testbed = _in_root(root, testbed.strip())
    builtin = testbed in TESTBEDS
    _ensure_repo(root, nested=builtin)
    if git_ok(root, "cat-file", "-e", f"HEAD:{WORKSPACE_FILE}"):
        raise PipelineError(f"{root} is already a research workspace ({WORKSPACE_FILE} is committed); start a run "
                            f"with `autoresearch research run --workspace {root}`")
    tb = get_testbed(testbed)
    if builtin:
        cls = type(tb)
        copy_surface(cls.research_surface, root / SURFACE_DIR, testbed_class=cls.__name__)
        spec, editable, paths = f"{SURFACE_DIR}/testbed.py:{cls.__name__}", [f"{SURFACE_DIR}/**"], [SURFACE_DIR]
    else:
        spec, editable = _user_testbed(root, tb)
        paths = []
    wf = WorkspaceFile(testbed=spec, base_testbed=testbed if builtin else tb.spec, editable=editable,
                       study=_study_defaults(tb, preset))
    atomic_write_text(root / WORKSPACE_FILE, _dump(wf))
    _exclude(root)
    (root / STATE_DIR).mkdir(exist_ok=True)
    ws = Workspace(root, wf)
    try:
        ws.testbed()  # the copy (or the user's file) loads as the workspace will load it
    except AutoresearchError as e:
        raise PipelineError(f"the workspace's testbed {spec} does not load ({e}); report this") from None
    git(root, "add", "--force", "--", WORKSPACE_FILE, *paths)  # even if a .gitignore names them
    git(root, *commit_args(INIT_MESSAGE, [WORKSPACE_FILE, *paths]))
    return ws


def _in_root(root: Path, ref: str) -> str:
    """A relative `file.py:Class` that exists under `root` is taken from there (else from the current folder)."""
    where, _, cls = ref.rpartition(":")
    if where.endswith(".py") and not Path(where).is_absolute() and (root / where).is_file():
        return f"{root / where}:{cls}"
    return ref


def _ensure_repo(root: Path, *, nested: bool) -> None:
    """`root` is the top of a git work tree: an existing one, or a new repository — inside another repository only
    when `nested` (a built-in testbed's workspace is self-contained; a user's testbed is researched in its own repo)."""
    if git(root, "rev-parse", "--is-bare-repository", check=False) == "true":
        raise PipelineError(f"{root} is a bare git repository; give a checkout")
    top = git(root, "rev-parse", "--show-toplevel", check=False) if git_ok(root, "rev-parse") else ""
    if top and Path(top).resolve() == root:
        return
    if top and not nested:
        raise PipelineError(f"{root} is inside the git repository {top}; run `autoresearch research init {top}` "
                            "(a user's testbed is researched at the root of its repository)")
    git(root, "init", "--quiet")


def _exclude(root: Path) -> None:
    path = Path(git(root, "rev-parse", "--git-path", "info/exclude"))
    path = path if path.is_absolute() else root / path
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = path.read_text().splitlines() if path.is_file() else []
    missing = [e for e in EXCLUDED if e not in lines]
    if missing:
        atomic_write_text(path, "\n".join([*lines, "# autoresearch research workspace", *missing]) + "\n")


def _study_defaults(tb: Testbed, preset: str | None) -> StudyDefaults:
    preset = preset or tb.default_preset
    tb.preset_config(preset)  # an unknown preset fails here, with the testbed's "did you mean"
    metric = "val_loss" if "val_loss" in tb.metrics else next(iter(tb.metrics), "val_loss")
    base = to_dict(StudyDefaults(preset=preset, metric=MetricSpec(name=metric)))
    for key, value in tb.workspace_defaults.items():  # the testbed's CPU-sized start (Testbed.workspace_defaults)
        base[key] = {**base[key], **value} if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    try:
        return from_dict(StudyDefaults, base)
    except ConfigError as e:
        raise ConfigError(f"{type(tb).__name__}.workspace_defaults: {e}") from None


def _user_testbed(root: Path, tb: Testbed) -> tuple[str, list[str]]:
    """(workspace-relative spec, editable globs) of a user's testbed whose files live in `root`."""
    cls = type(tb)
    where, cls_name = tb.spec.rsplit(":", 1)
    file = Path(where) if where.endswith(".py") else _module_path(where)
    rel = _inside(root, file, f"testbed {tb.spec}")
    if cls.research_surface:
        editable = sorted({_inside(root, _module_path(m), f"research_surface module {m}")
                           for m in cls.research_surface.values()})
    else:
        folder = Path(rel).parent.as_posix()
        editable = ["**"] if folder == "." else [f"{folder}/**"]
    for path in editable:
        pattern = path[:-3] if path.endswith("/**") else ("." if path == "**" else path)
        if git(root, "status", "--porcelain", "--untracked-files=no", "--", pattern):
            raise PipelineError(f"{root / pattern} has uncommitted changes; commit them first (idea branches start "
                                "from the last commit)")
    if not git_ok(root, "ls-files", "--error-unmatch", "--", rel):
        raise PipelineError(f"testbed file {rel} is not committed in {root}; commit it first (idea branches start "
                            "from the last commit)")
    return f"{rel}:{cls_name}", editable


def _module_path(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        raise PipelineError(f"module {module!r} has no source file; give the testbed as path/file.py:Class")
    return Path(spec.origin)


def _inside(root: Path, file: Path, what: str) -> str:
    try:
        return file.resolve().relative_to(root).as_posix()
    except ValueError:
        raise PipelineError(f"{what} lives in {file.resolve()}, outside the workspace {root}; a user's testbed "
                            "must be inside the repository it is researched in (or use a built-in: lm, codegen)") \
            from None

