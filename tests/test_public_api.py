"""The public API of `autoresearch` (autoresearch/__init__.py): every exported name resolves, the lazy table and the
TYPE_CHECKING block agree, and `import autoresearch` does not import torch."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import autoresearch

INIT = Path(autoresearch.__file__)


def test_every_exported_name_resolves():
    for name in autoresearch.__all__:
        assert getattr(autoresearch, name) is not None, name
    assert "_LAZY" not in autoresearch.__all__ and "importlib" not in autoresearch.__all__
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        autoresearch.nope  # noqa: B018


def test_main_names_are_the_objects_they_name():
    from autoresearch.harness.code_eval import evaluate
    from autoresearch.research.runner import run_study
    from autoresearch.research.study import Study
    from autoresearch.testbeds.base import Testbed, get_testbed

    assert autoresearch.Testbed is Testbed and autoresearch.get_testbed is get_testbed
    assert autoresearch.Study is Study and autoresearch.evaluate is evaluate
    assert autoresearch.run_study is run_study
    assert issubclass(autoresearch.ConfigError, autoresearch.AutoresearchError)
    assert autoresearch.get_testbed("lm").name == "lm"


def test_type_checking_block_names_the_same_imports_as_the_lazy_table():
    tree = ast.parse(INIT.read_text())
    block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
    typed = {(a.asname or a.name): (imp.module, a.name) for imp in block.body if isinstance(imp, ast.ImportFrom)
             for a in imp.names}
    assert typed == autoresearch._LAZY
    errors = {n for n in autoresearch.__all__ if n.endswith("Error")}
    assert set(autoresearch.__all__) == {"__version__", *autoresearch._LAZY, *errors}
    assert errors == set(autoresearch.errors.__all__)


def test_import_autoresearch_does_not_import_torch():
    code = ("import sys, autoresearch; "
            "heavy = [m for m in ('torch', 'numpy', 'autoresearch.testbeds', 'autoresearch.research') "
            "if m in sys.modules]; print(heavy)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]", r.stdout


@pytest.mark.parametrize("package", ["autoresearch.harness", "autoresearch.testbeds", "autoresearch.research"])
def test_layer_packages_export_only_public_names_that_resolve(package):
    import importlib

    mod = importlib.import_module(package)
    assert not [n for n in mod.__all__ if n.startswith("_")], mod.__all__
    for name in mod.__all__:
        assert getattr(mod, name) is not None, f"{package}.{name}"
