"""Imports flow one way: harness <- testbeds <- research <- agents <- pipeline <- cli (STYLE.md §4)."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "autoresearch"
ORDER = ["harness", "testbeds", "research", "agents", "pipeline", "cli"]


def _imports(path: Path) -> set[str]:
    """Absolute names of the modules `path` imports; a relative import is resolved against the file's package, found
    by walking up to the folder named `autoresearch`."""
    tree = ast.parse(path.read_text())
    parts = path.parts[:-1]
    package = list(parts[len(parts) - 1 - parts[::-1].index("autoresearch"):]) if "autoresearch" in parts else []
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module)
        elif isinstance(node, ast.ImportFrom) and node.level > 0 and package:
            base = package[: len(package) - node.level + 1]
            out.update(".".join([*base, node.module]) if node.module else ".".join([*base, a.name]) for a in node.names)
    return out


def test_lower_layers_never_import_higher():
    violations = []
    for i, layer in enumerate(ORDER):
        higher = ORDER[i + 1 :]
        for f in (PKG / layer).rglob("*.py"):
            for mod in _imports(f):
                parts = mod.split(".")
                if parts[0] == "autoresearch" and len(parts) > 1 and parts[1] in higher:
                    violations.append(f"{f.relative_to(PKG)} imports {mod}")
    assert not violations, violations


def test_layers_exist():
    assert all((PKG / layer).is_dir() for layer in ORDER)


def test_public_api_resolves():
    import importlib

    for pkg in ("autoresearch", "autoresearch.harness", "autoresearch.harness.sandbox", "autoresearch.testbeds",
                "autoresearch.testbeds.common", "autoresearch.testbeds.lm", "autoresearch.testbeds.codegen",
                "autoresearch.research", "autoresearch.pipeline"):
        mod = importlib.import_module(pkg)
        assert mod.__all__, pkg
        missing = [n for n in mod.__all__ if not hasattr(mod, n)]
        assert not missing, (pkg, missing)


def _sibling_violations(testbeds: Path) -> list[str]:
    """Imports from one testbed package into another (`common` is the shared kit: any testbed may import it, it
    imports no testbed; base.py/checks.py at the top of testbeds/ are the contract, importable by all)."""
    packages = {p.name for p in testbeds.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    violations = []
    for pkg in sorted(packages):
        for f in (testbeds / pkg).rglob("*.py"):
            for mod in _imports(f):
                parts = mod.split(".")
                if parts[:2] != ["autoresearch", "testbeds"] or len(parts) < 3 or parts[2] not in packages:
                    continue
                other = parts[2]
                if other != pkg and (other != "common" or pkg == "common"):
                    violations.append(f"{f.relative_to(testbeds.parent)} imports {mod}")
    return violations


def test_no_imports_between_sibling_testbeds():
    assert (PKG / "testbeds" / "common").is_dir()
    assert not _sibling_violations(PKG / "testbeds")


def test_sibling_import_check_catches_each_kind(tmp_path):
    """The check itself: a testbed importing a sibling, and the kit importing a testbed, are both caught."""
    tb = tmp_path / "autoresearch" / "testbeds"
    for pkg, src in {"lm": "from autoresearch.testbeds.common.gpt import GPT\nimport autoresearch.testbeds.base\n",
                     "codegen": "from autoresearch.testbeds.lm.model import GPT\nfrom ..lm import config\n",
                     "common": "import autoresearch.testbeds.codegen.hrm\n"}.items():
        (tb / pkg).mkdir(parents=True)
        (tb / pkg / "__init__.py").write_text("")
        (tb / pkg / "train.py").write_text(src)
    assert sorted(_sibling_violations(tb)) == [
        "testbeds/codegen/train.py imports autoresearch.testbeds.lm",
        "testbeds/codegen/train.py imports autoresearch.testbeds.lm.model",
        "testbeds/common/train.py imports autoresearch.testbeds.codegen.hrm",
    ]
