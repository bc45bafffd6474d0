"""Imports flow one way: harness <- testbeds <- research <- agents <- cli (STYLE.md §4)."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "autoresearch"
ORDER = ["harness", "testbeds", "research", "agents", "cli"]


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
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
    assert all((PKG / layer).is_dir() for layer in ORDER[:3] + ["cli"])


def test_public_api_resolves():
    import importlib

    for pkg in ("autoresearch", "autoresearch.harness", "autoresearch.harness.sandbox", "autoresearch.testbeds",
                "autoresearch.testbeds.lm", "autoresearch.testbeds.codegen", "autoresearch.research"):
        mod = importlib.import_module(pkg)
        assert mod.__all__, pkg
        missing = [n for n in mod.__all__ if not hasattr(mod, n)]
        assert not missing, (pkg, missing)
