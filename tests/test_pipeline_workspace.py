"""The research workspace (pipeline/workspace.py + surface.py), its idea worktrees (worktrees.py) and the harness
integrity checks (integrity.py); package-relative loading of a copied testbed (`get_testbed` on `file.py:Class`)."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from autoresearch.agents.coders.allowed_paths import match_glob
from autoresearch.errors import ConfigError, PipelineError
from autoresearch.harness.config import to_dict
from autoresearch.harness.registry import new_experiment
from autoresearch.pipeline import integrity, worktrees
from autoresearch.pipeline.surface import module_file, rewrite_imports
from autoresearch.pipeline.workspace import INIT_MESSAGE, Workspace, init_workspace, load
from autoresearch.pipeline.worktrees import (
    changed_paths,
    commit_edit,
    create_version,
    diff,
    diff_file,
    remove,
)
from autoresearch.testbeds import TESTBEDS, get_testbed
from tests.conftest import codegen_micro_overrides, micro_overrides

FAKE = Path(__file__).resolve().parent / "fake_testbed.py"


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True).stdout.strip()


def _one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg, msg
    return msg


@pytest.fixture(scope="module")
def lm_ws(tmp_path_factory) -> Workspace:
    """One LM workspace shared by the tests that only read it (worktree tests make their own)."""
    return init_workspace(tmp_path_factory.mktemp("lmws") / "ws", "lm")


# --- init ---------------------------------------------------------------------------------------------------------


def test_init_lm_commits_surface_and_workspace_file_and_excludes_state(tmp_path, capsys):
    ws = init_workspace(tmp_path / "ws", "lm")
    assert capsys.readouterr() == ("", "")  # the CLI prints; the function does not
    root = ws.root
    assert _git(root, "log", "--format=%s") == INIT_MESSAGE  # exactly one commit
    tracked = set(_git(root, "ls-files").splitlines())
    surface = {f"surface/{n}" for n in [*get_testbed("lm").research_surface, "__init__.py"]}
    assert tracked == {"workspace.yaml", *surface}
    assert ws.file.testbed == "surface/testbed.py:LMTestbed" and ws.file.base_testbed == "lm"
    assert ws.file.editable == ["surface/**"] and "workspace.yaml" in ws.file.protected
    (ws.state_dir / "pipeline.yaml").write_text("x: 1\n")
    (root / "surface" / "__pycache__").mkdir(exist_ok=True)
    (root / "surface" / "__pycache__" / "gpt.cpython-311.pyc").write_bytes(b"\0")
    assert _git(root, "status", "--porcelain") == ""  # .autoresearch/ and bytecode are excluded, never committed
    assert load(root).file == ws.file and Workspace.load(root).root == root
    with pytest.raises(PipelineError) as e:
        init_workspace(root, "lm")
    assert "already a research workspace" in _one_line(e)


def test_surface_copy_imports_its_own_modules_and_the_installed_rest(lm_ws):
    src = (lm_ws.root / "surface" / "train.py").read_text()
    assert "from .gpt import GPT" in src and "from .config import LMConfig" in src
    assert "from autoresearch.testbeds.lm.evaluate import evaluate" in src  # evaluation stays installed
    assert "from autoresearch.testbeds.common.gpt" not in src
    config = (lm_ws.root / "surface" / "config.py").read_text()
    assert "        from .gpt import GPT" in config  # an import inside a function is rewritten too
    tb = lm_ws.testbed()
    mod = sys.modules[type(tb).__module__]
    assert mod.__file__ == str(lm_ws.root / "surface" / "testbed.py")
    from autoresearch.testbeds.common.gpt import GPT
    from autoresearch.testbeds.lm.evaluate import evaluate

    train = importlib.import_module(mod.__name__.rsplit(".", 1)[0] + ".train")
    assert train.GPT is not GPT and train.GPT.__module__.endswith(".gpt") and train.evaluate is evaluate
    assert tb.spec == f"{lm_ws.root / 'surface' / 'testbed.py'}:LMTestbed"
    assert not (lm_ws.root / "surface" / "__pycache__").exists()  # compiled from source, no bytecode written


def test_every_builtin_surface_names_its_testbed_module_and_existing_modules():
    for name in TESTBEDS:
        tb = get_testbed(name)
        surface = type(tb).research_surface
        assert surface["testbed.py"] == type(tb).__module__
        assert all(module_file(m).is_file() for m in surface.values())


def test_rewrite_imports_refuses_an_import_it_cannot_make_relative():
    local = {"pkg.gpt": "gpt", "pkg.optim": "optim"}
    out = rewrite_imports("from pkg.gpt import GPT\ndef f():\n    from pkg.optim import (\n        a,\n    )\n"
                          "from pkg.other import x\n", local)
    assert out == "from .gpt import GPT\ndef f():\n    from .optim import (\n        a,\n    )\nfrom pkg.other import x\n"
    for bad in ("import pkg.gpt\n", "import pkg.gpt as g\n", "from pkg import gpt\n", "from pkg.gpt \\\n import GPT\n"):
        with pytest.raises(PipelineError) as e:
            rewrite_imports(bad, local, where="f.py")
        assert "f.py line 1" in _one_line(e)


def _losses(exp) -> list[float]:
    return [r["loss"] for r in exp.read_log() if "loss" in r and "step" in r]


def test_copied_lm_trains_bit_identical_losses(lm_ws, cache_dir, tmp_path):
    per_testbed = []
    for tb in (get_testbed("lm"), lm_ws.testbed()):
        cfg = tb.make_config("tiny", micro_overrides(cache_dir))
        exp = new_experiment(tmp_path / "experiments")
        tb.train(cfg, exp)
        per_testbed.append(_losses(exp))
        assert exp.testbed() == tb.spec
    installed, copy = per_testbed
    assert len(installed) == 8 and [x.hex() for x in copy] == [x.hex() for x in installed]


@pytest.mark.slow
def test_copied_codegen_trains_bit_identical_losses(tmp_path, cache_dir):
    ws = init_workspace(tmp_path / "ws", "codegen")
    assert ws.file.testbed == "surface/testbed.py:CodegenTestbed"
    assert {"hrm.py", "models.py", "gpt.py", "train.py"} <= {p.name for p in (ws.root / "surface").iterdir()}
    per_testbed = []
    for tb in (get_testbed("codegen"), ws.testbed()):
        cfg = tb.make_config("tiny", [*codegen_micro_overrides(cache_dir), "train.train_tokens=1152",
                                      "eval.heldout_tasks=2", "eval.n_samples=1", "eval.k=[1]"])
        exp = new_experiment(tmp_path / "experiments")
        tb.train(cfg, exp)
        per_testbed.append(_losses(exp))
    installed, copy = per_testbed
    assert len(installed) == 3 and [x.hex() for x in copy] == [x.hex() for x in installed]
    from autoresearch.testbeds.codegen.models import build_model

    train = importlib.import_module(type(ws.testbed()).__module__.rsplit(".", 1)[0] + ".train")
    assert train.build_model is not build_model and train.build_model.__module__.endswith(".models")


def test_init_refuses_unknown_testbed_and_preset_in_one_line(tmp_path):
    with pytest.raises(ConfigError) as e:
        init_workspace(tmp_path / "a", "lmm")
    assert "did you mean 'lm'" in _one_line(e)
    with pytest.raises(ConfigError) as e:
        init_workspace(tmp_path / "b", "lm", preset="tinyy")
    assert "unknown preset 'tinyy'" in _one_line(e)
    (tmp_path / "f").write_text("")
    with pytest.raises(PipelineError) as e:
        init_workspace(tmp_path / "f", "lm")
    assert "is a file" in _one_line(e)


def test_init_finishes_after_a_kill_before_the_commit(tmp_path):
    root = tmp_path / "ws"
    init_workspace(root, "lm")
    _git(root, "update-ref", "-d", "HEAD")  # as if killed before the commit: files there, nothing committed
    shutil.rmtree(root / "surface")
    ws = init_workspace(root, "lm")
    assert _git(root, "log", "--format=%s") == INIT_MESSAGE and (ws.root / "surface" / "gpt.py").is_file()


# --- a user's own testbed: nothing copied -------------------------------------------------------------------------


def _user_repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "bench").mkdir(parents=True)
    shutil.copy(FAKE, root / "bench" / "tb.py")
    (root / "README.md").write_text("mine\n")
    _git(root.parent, "init", "--quiet", str(root))
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=u", "-c", "user.email=u@x", "commit", "--quiet", "-m", "mine")
    return root


def test_user_file_testbed_becomes_a_workspace_without_copying(tmp_path):
    root = _user_repo(tmp_path)
    head = _git(root, "rev-parse", "HEAD")
    ws = init_workspace(root, "bench/tb.py:FakeTestbed")
    assert not (root / "surface").exists()
    assert ws.file.testbed == "bench/tb.py:FakeTestbed" and ws.file.editable == ["bench/**"]
    assert ws.file.base_testbed == f"{root / 'bench' / 'tb.py'}:FakeTestbed"
    assert _git(root, "rev-parse", "HEAD~1") == head and _git(root, "show", "--name-only", "--format=", "HEAD") == \
        "workspace.yaml"
    assert ws.testbed().spec == f"{root / 'bench' / 'tb.py'}:FakeTestbed"
    assert ws.is_editable("bench/tb.py") and not ws.is_editable("README.md") and not ws.is_editable("workspace.yaml")


def test_user_module_testbed_becomes_a_file_spec_and_outside_files_are_refused(tmp_path, monkeypatch):
    root = _user_repo(tmp_path)
    (root / "bench" / "__init__.py").write_text("")
    _git(root, "add", "-A")
    _git(root, "-c", "user.name=u", "-c", "user.email=u@x", "commit", "--quiet", "-m", "pkg")
    monkeypatch.syspath_prepend(str(root))
    ws = init_workspace(root, "bench.tb:FakeTestbed")
    assert ws.file.testbed == "bench/tb.py:FakeTestbed" and ws.file.base_testbed == "bench.tb:FakeTestbed"
    other = _user_repo(tmp_path / "other")
    with pytest.raises(PipelineError) as e:
        init_workspace(other, "bench.tb:FakeTestbed")  # resolves to the first repo's module: not inside `other`
    assert "outside the workspace" in _one_line(e)


def test_user_testbed_uncommitted_is_refused(tmp_path):
    root = _user_repo(tmp_path)
    (root / "bench" / "tb.py").write_text(FAKE.read_text() + "\n# edited\n")
    with pytest.raises(PipelineError) as e:
        init_workspace(root, "bench/tb.py:FakeTestbed")
    assert "uncommitted changes" in _one_line(e) and "bench" in str(e.value)
    (root / "new").mkdir()
    shutil.copy(FAKE, root / "new" / "tb.py")
    with pytest.raises(PipelineError) as e:
        init_workspace(root, "new/tb.py:FakeTestbed")
    assert "uncommitted" in _one_line(e) or "not committed" in str(e.value)


def test_builtin_workspace_inside_another_repo_is_its_own_repo_a_user_testbed_is_not(tmp_path):
    outer = _user_repo(tmp_path)
    before = _user_view(outer)
    ws = init_workspace(outer / "ws", "lm")
    assert _git(ws.root, "rev-parse", "--show-toplevel") == str(ws.root) and _user_view(outer)[:2] == before[:2]
    with pytest.raises(PipelineError) as e:
        init_workspace(outer / "bench", "tb.py:FakeTestbed")
    assert f"inside the git repository {outer}" in _one_line(e)


# --- workspace.yaml validation --------------------------------------------------------------------------------------


@pytest.mark.parametrize("edit, field", [
    ({"gates": {"design": "humann"}}, "gates.design"),
    ({"gates": {"desing": "human"}}, "gates.desing"),
    ({"colour": "red"}, "colour"),
    ({"editable": "surface/**"}, "editable"),
    ({"editable": [1]}, "editable[0]"),
    ({"protected": ["/etc/**"]}, "protected[0]"),
    ({"editable": ["../x/**"]}, "editable[0]"),
    ({"study": {"seeds": {"initial": 1}}}, "seeds.initial"),
    ({"study": {"preset": 3}}, "study.preset"),
    ({"budgets": {"max_versions": -1}}, "budgets.max_versions"),
    ({"testbed": "surface/testbed.py"}, "testbed"),
    ({"testbed": "surface/gone.py:LMTestbed"}, "testbed"),
    ({"version": 2}, "version"),
])
def test_workspace_file_errors_are_one_line_naming_the_field(lm_ws, tmp_path, edit, field):
    root = tmp_path / "copy"
    shutil.copytree(lm_ws.root / "surface", root / "surface")
    data = yaml.safe_load((lm_ws.root / "workspace.yaml").read_text())
    for k, v in edit.items():
        data[k] = {**data[k], **v} if isinstance(v, dict) and isinstance(data.get(k), dict) else v
    (root / "workspace.yaml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as e:
        load(root)
    msg = _one_line(e)
    assert str(root / "workspace.yaml") in msg and field in msg, msg


@pytest.mark.parametrize("text", ["", "[1, 2]\n", "testbed: [\n", b"\xff\xfe"])
def test_damaged_workspace_file_is_one_line(tmp_path, text):
    (tmp_path / "workspace.yaml").write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError) as e:
        load(tmp_path)
    assert "workspace.yaml" in _one_line(e)


def test_missing_workspace_is_one_line(tmp_path):
    for root in (tmp_path, tmp_path / "nope"):
        with pytest.raises(PipelineError) as e:
            load(root)
        assert "research init" in _one_line(e)


def test_gates_default_to_auto_and_globs_match_folders():
    from autoresearch.pipeline.workspace import GATE_STAGES, WorkspaceFile

    wf = WorkspaceFile(testbed="surface/testbed.py:X", gates={"design": "human"})
    assert wf.gates == {s: ("human" if s == "design" else "auto") for s in GATE_STAGES}
    assert match_glob("surface/a.py", "surface/**") and match_glob("surface/x/b.py", "surface/**")
    assert match_glob("surface", "surface/**") and not match_glob("surfaces/a.py", "surface/**")
    assert match_glob("a/b/c.py", "**/*.py") and match_glob("c.py", "**/*.py") and not match_glob("a/c.py", "*.py")


# --- package-relative loading ---------------------------------------------------------------------------------------


def _pkg(folder: Path, value: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "__init__.py").write_text("")
    (folder / "helper.py").write_text(f"VALUE = {value}\n")
    (folder / "tb.py").write_text(FAKE.read_text() + "\nfrom .helper import VALUE\n")
    return folder / "tb.py"


def test_get_testbed_loads_a_package_file_with_relative_imports_and_reloads_an_edit(tmp_path):
    a, b = _pkg(tmp_path / "a" / "pkg", 1), _pkg(tmp_path / "b" / "pkg", 2)
    ta, tb = get_testbed(f"{a}:FakeTestbed"), get_testbed(f"{b}:FakeTestbed")
    ma, mb = sys.modules[type(ta).__module__], sys.modules[type(tb).__module__]
    assert (ma.VALUE, mb.VALUE) == (1, 2) and ma.__name__ != mb.__name__ and type(ta) is not type(tb)
    assert type(get_testbed(f"{a}:FakeTestbed")) is type(ta)  # unchanged: the same module
    (a.parent / "helper.py").write_text("VALUE = 3\n")  # same size, same second: still seen
    again = get_testbed(f"{a}:FakeTestbed")
    assert sys.modules[type(again).__module__].VALUE == 3 and type(again) is not type(ta)
    assert not (a.parent / "__pycache__").exists()
    (a.parent / "helper.py").write_text("VALUE = (\n")
    with pytest.raises(ConfigError) as e:
        get_testbed(f"{a}:FakeTestbed")
    assert "cannot be loaded" in _one_line(e)


# --- worktrees ------------------------------------------------------------------------------------------------------


def _user_view(root: Path) -> tuple[str, str, str, str]:
    return (_git(root, "rev-parse", "HEAD"), _git(root, "symbolic-ref", "HEAD"), _git(root, "status", "--porcelain"),
            _git(root, "ls-files", "--stage"))


def test_worktree_create_commit_diff_remove_leaves_the_users_checkout_alone(tmp_path):
    ws = init_workspace(tmp_path / "ws", "lm")
    (ws.root / "notes.txt").write_text("the user's own untracked file\n")
    before = _user_view(ws.root)
    tree = create_version(ws, "attn-temp", 1)
    assert tree.branch == "idea/attn-temp/v1" and tree.path == ws.worktrees_dir / "attn-temp-v1"
    assert tree.base_commit == before[0]
    assert commit_edit(tree, "nothing") is None and diff(tree) == ""
    gpt = tree.path / "surface" / "gpt.py"
    gpt.write_text(gpt.read_text() + "\nATTN_TEMP = 1.0\n")
    (tree.path / "surface" / "extra.py").write_text("X = 1\n")  # untracked: part of the edit too
    assert changed_paths(tree) == ["surface/extra.py", "surface/gpt.py"]
    d = diff(tree)
    assert "+ATTN_TEMP = 1.0" in d and "b/surface/extra.py" in d
    sha = commit_edit(tree, "add attention temperature")
    assert sha and _git(ws.root, "rev-parse", tree.branch) == sha
    assert diff(tree) == d  # committed or not, the same change
    assert _user_view(ws.root) == before
    saved = remove(tree)
    assert saved == diff_file(ws.root, "attn-temp", 1) and "+ATTN_TEMP = 1.0" in saved.read_text()
    assert not tree.path.exists() and _git(ws.root, "rev-parse", tree.branch) == sha  # the branch stays
    assert _user_view(ws.root) == before
    assert worktrees.testbed_spec(tree, ws) == f"{tree.path / 'surface' / 'testbed.py'}:LMTestbed"


def test_create_version_is_idempotent_after_a_kill(tmp_path):
    ws = init_workspace(tmp_path / "ws", "lm")
    tree = create_version(ws, "idea", 2)
    (tree.path / "surface" / "gpt.py").write_text("# v2\n")
    sha = commit_edit(tree, "edit")
    assert create_version(ws, "idea", 2) == tree  # same branch, same folder, same base
    shutil.rmtree(tree.path)  # killed: the folder is gone, git still lists the worktree
    again = create_version(ws, "idea", 2)
    assert again == tree and (again.path / "surface" / "gpt.py").read_text() == "# v2\n"
    assert _git(ws.root, "rev-parse", "HEAD") != sha and _git(again.path, "rev-parse", "HEAD") == sha
    remove(again)
    again.path.mkdir(parents=True)
    (again.path / "half").write_text("left by a killed `git worktree add`")
    third = create_version(ws, "idea", 2)
    assert third.base_commit == tree.base_commit and (third.path / "surface" / "gpt.py").read_text() == "# v2\n"
    assert len(_git(ws.root, "worktree", "list").splitlines()) == 2


def test_two_worktrees_copies_load_side_by_side(tmp_path):
    ws = init_workspace(tmp_path / "ws", "lm")
    t1, t2 = create_version(ws, "a", 1), create_version(ws, "b", 1)
    gpt = t2.path / "surface" / "gpt.py"
    gpt.write_text(gpt.read_text() + "\nMARK = 'b'\n")
    tb1, tb2 = get_testbed(worktrees.testbed_spec(t1, ws)), get_testbed(worktrees.testbed_spec(t2, ws))
    p1, p2 = (type(t).__module__.rsplit(".", 1)[0] for t in (tb1, tb2))
    assert p1 != p2 and type(tb1) is not type(tb2)
    g1, g2 = importlib.import_module(f"{p1}.gpt"), importlib.import_module(f"{p2}.gpt")
    assert not hasattr(g1, "MARK") and g2.MARK == "b" and g1.GPT is not g2.GPT
    assert g1.__file__ == str(t1.path / "surface" / "gpt.py")
    assert to_dict(tb1.preset_config("tiny")) == to_dict(tb2.preset_config("tiny"))


def test_bad_idea_names_and_bases_are_one_line(tmp_path, lm_ws):
    assert create_version(lm_ws, "muon-lr-0.031-and-mlp-swiglu", 1).branch == "idea/muon-lr-0.031-and-mlp-swiglu/v1"
    for name in ("", "a/b", "../x", "-x", "a b", "x" * 101, "a..b", "a.", "a.lock", ".a"):
        with pytest.raises(PipelineError) as e:
            create_version(lm_ws, name, 1)
        assert "cannot name a branch" in _one_line(e)
    with pytest.raises(PipelineError) as e:
        create_version(lm_ws, "x", 0)
    assert ">= 1" in _one_line(e)
    with pytest.raises(PipelineError) as e:
        create_version(lm_ws, "x", 1, base="no-such-ref")
    assert "not a commit" in _one_line(e)


# --- integrity ------------------------------------------------------------------------------------------------------


def test_check_edit_reports_paths_outside_editable_and_protected(tmp_path):
    ws = init_workspace(tmp_path / "ws", "lm")
    tree = create_version(ws, "sneaky", 1)
    (tree.path / "surface" / "optim.py").write_text("# fine\n")
    assert integrity.check_edit(ws, tree, tree.base_commit) == []
    (tree.path / "workspace.yaml").write_text("testbed: x:Y\n")
    (tree.path / "evil.py").write_text("# outside\n")
    (tree.path / ".autoresearch").mkdir()
    (tree.path / ".autoresearch" / "pipeline.yaml").write_text("{}\n")  # excluded from git, so not even seen ...
    problems = integrity.check_edit(ws, tree.path, tree.base_commit)
    assert any(p.startswith("workspace.yaml: a protected path") for p in problems), problems
    assert any(p.startswith("evil.py: outside the editable paths (surface/**)") for p in problems), problems
    assert len(problems) == 2
    commit_edit(tree, "committed edits are seen too")
    assert len(integrity.check_edit(ws, tree, None)) == 2


def test_protected_hash_moves_with_protected_files_and_the_installed_package(tmp_path, monkeypatch):
    ws = init_workspace(tmp_path / "ws", "lm")
    pkg = tmp_path / "pkg"
    shutil.copytree(integrity.package_root(), pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    monkeypatch.setattr(integrity, "package_root", lambda: pkg)
    h0 = integrity.protected_hash(ws)
    assert integrity.protected_hash(ws) == h0 and len(h0) == 64
    (ws.state_dir / "pipeline.yaml").write_text("stage: design\n")  # the pipeline's own state: not hashed
    (ws.root / "experiments" / "exp-001").mkdir(parents=True)  # outputs and the user's untracked files: not hashed
    (ws.root / "experiments" / "exp-001" / "log.jsonl").write_text("{}\n")
    (ws.root / "notes.txt").write_text("mine\n")
    assert integrity.protected_hash(ws) == h0
    assert integrity.protected_files(ws) == ["workspace.yaml"]
    gpt = ws.root / "surface" / "gpt.py"
    text = gpt.read_text()
    gpt.write_text(text + "# edited in the user's checkout, not in a worktree\n")
    assert integrity.protected_hash(ws) != h0
    gpt.write_text(text)
    assert integrity.protected_hash(ws) == h0
    evaluate = pkg / "testbeds" / "lm" / "evaluate.py"
    evaluate.write_text(evaluate.read_text() + "\n# a tweak to the evaluation\n")
    h1 = integrity.protected_hash(ws)
    assert h1 != h0
    (ws.design_dir).mkdir()
    (ws.design_dir / "baselines.yaml").write_text("value: 1.0\n")
    h2 = integrity.protected_hash(ws)
    assert h2 != h1
    tree = create_version(ws, "v", 1)
    problems = integrity.check_edit(ws, tree, tree.base_commit, before_hash=h0)
    assert len(problems) == 1 and "protected hash changed" in problems[0]
