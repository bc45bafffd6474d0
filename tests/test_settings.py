"""Settings in one place (harness/settings.py): defaults, the environment read at call time, one-line errors for
unusable values, no second reader of these variables in the package, and the README table."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from autoresearch.errors import ConfigError
from autoresearch.harness.settings import ENV_VARS, cache_root, load_settings

PACKAGE = Path(__file__).resolve().parents[1] / "autoresearch"
README = PACKAGE.parent / "README.md"


def test_defaults_from_an_empty_environment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = load_settings({})
    assert s.cache_root == Path.home() / ".cache" / "autoresearch"
    assert (s.tokens_dir, s.tokenizers_dir, s.traces_dir) == (s.cache_root / "tokens", s.cache_root / "tokenizers",
                                                               s.cache_root / "traces")
    assert s.experiments_root == Path("experiments") and s.studies_root == Path("studies")
    assert s.mbpp_path == tmp_path.parent / "shared" / "data" / "mbpp" / "mbpp.jsonl"
    assert s.openai_base_url == "https://api.openai.com/v1" and s.openai_api_key == "" and s.debug is False


def test_values_from_the_environment(tmp_path):
    s = load_settings({"AUTORESEARCH_CACHE": "~/somewhere", "AUTORESEARCH_EXPERIMENTS": str(tmp_path / "exps"),
                       "AUTORESEARCH_MBPP": str(tmp_path / "m.jsonl"), "OPENAI_BASE_URL": "http://127.0.0.1:8000/v1/",
                       "OPENAI_API_KEY": "sk-secret", "AUTORESEARCH_DEBUG": "1"})
    assert s.cache_root == Path.home() / "somewhere"  # `~` expanded, not a folder named "~"
    assert s.experiments_root == tmp_path / "exps" and s.mbpp_path == tmp_path / "m.jsonl"
    assert s.openai_base_url == "http://127.0.0.1:8000/v1" and s.openai_api_key == "sk-secret" and s.debug
    assert "sk-secret" not in repr(s)
    assert load_settings({"AUTORESEARCH_CACHE": "  ", "AUTORESEARCH_DEBUG": "0"}).cache_root == \
        Path.home() / ".cache" / "autoresearch"  # empty = unset


@pytest.mark.parametrize("name, value, match", [
    ("AUTORESEARCH_CACHE", "{file}", r"AUTORESEARCH_CACHE='.*f.txt' is a file, not a folder; point it at a folder"),
    ("AUTORESEARCH_EXPERIMENTS", "{file}", r"AUTORESEARCH_EXPERIMENTS='.*f.txt' is a file, not a folder"),
    ("AUTORESEARCH_MBPP", "{dir}", r"AUTORESEARCH_MBPP='.*' is a folder; point it at the mbpp.jsonl file"),
    ("OPENAI_BASE_URL", "localhost:8000", r"OPENAI_BASE_URL='localhost:8000' must start with http:// or https://"),
    ("AUTORESEARCH_DEBUG", "maybe", r"AUTORESEARCH_DEBUG='maybe' must be 1 or 0"),
    ("AUTORESEARCH_CACHE", "a\x00b", r"AUTORESEARCH_CACHE='a\\x00b' holds a NUL byte"),
])
def test_unusable_values_are_one_line_errors_naming_variable_value_and_fix(tmp_path, name, value, match):
    (tmp_path / "f.txt").write_text("x")
    value = value.format(file=tmp_path / "f.txt", dir=tmp_path)
    with pytest.raises(ConfigError, match=f"^environment variable {match}") as e:
        load_settings({name: value})
    assert "\n" not in str(e.value)


def test_the_environment_is_read_when_called_not_at_import(tmp_path, monkeypatch):
    from autoresearch.harness.code_tasks import default_mbpp_path
    from autoresearch.harness.llm.openai_compat import OpenAIClient
    from autoresearch.research.regression import trace_store

    monkeypatch.setenv("AUTORESEARCH_CACHE", str(tmp_path / "c"))
    monkeypatch.setenv("AUTORESEARCH_MBPP", str(tmp_path / "m.jsonl"))
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:1/v1")
    assert cache_root() == tmp_path / "c" and trace_store() == tmp_path / "c" / "traces"
    assert cache_root("~/x") == Path.home() / "x" and trace_store(str(tmp_path / "t")) == tmp_path / "t"
    assert default_mbpp_path() == tmp_path / "m.jsonl"
    assert OpenAIClient("m").base_url == "http://127.0.0.1:1/v1"
    assert OpenAIClient("m", base_url="http://h:2/v1/").base_url == "http://h:2/v1"


def _env_reads(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, name) of every `os.environ.get("X")`, `os.getenv("X")`, `os.environ["X"]` read, `"X" in os.environ`."""
    def is_environ(n: ast.AST) -> bool:
        return isinstance(n, ast.Attribute) and n.attr == "environ"

    out = []
    for node in ast.walk(tree):
        arg = None
        if isinstance(node, ast.Call) and node.args and isinstance(node.func, ast.Attribute):
            f = node.func
            if (f.attr == "get" and is_environ(f.value)) or f.attr == "getenv":
                arg = node.args[0]
        elif isinstance(node, ast.Subscript) and is_environ(node.value) and isinstance(node.ctx, ast.Load):
            arg = node.slice
        elif isinstance(node, ast.Compare) and any(is_environ(c) for c in node.comparators):
            arg = node.left
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            out.append((node.lineno, arg.value))
    return out


def test_no_module_but_settings_reads_the_user_variables():
    users = {v.name for v in ENV_VARS if not v.internal and v.name != "CUDA_VISIBLE_DEVICES"}
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "settings.py":
            continue
        for line, name in _env_reads(ast.parse(path.read_text(), str(path))):
            if name in users or name.startswith(("AUTORESEARCH_", "OPENAI_")) and name not in {
                    v.name for v in ENV_VARS}:
                found.append(f"{path.relative_to(PACKAGE.parent)}:{line} reads ${name}")
    assert not found, "read these through autoresearch.harness.settings.load_settings(): " + "; ".join(found)


def test_the_guard_sees_each_way_of_reading_a_variable():
    src = ('import os\nos.environ.get("OPENAI_API_KEY")\nos.getenv("AUTORESEARCH_CACHE")\n'
           'os.environ["AUTORESEARCH_MBPP"]\n"AUTORESEARCH_DEBUG" in os.environ\nos.environ["AUTORESEARCH_X"] = "1"\n')
    assert [n for _, n in _env_reads(ast.parse(src))] == ["OPENAI_API_KEY", "AUTORESEARCH_CACHE", "AUTORESEARCH_MBPP",
                                                          "AUTORESEARCH_DEBUG"]


def test_readme_documents_every_variable():
    text = README.read_text()
    missing = [v.name for v in ENV_VARS if f"| `{v.name}` |" not in text]
    assert not missing, f"add {missing} to the environment table in README.md"


def test_cli_refuses_an_unusable_variable_with_one_line(tmp_path):
    (tmp_path / "f").write_text("x")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AUTORESEARCH_CACHE": str(tmp_path / "f")}
    r = subprocess.run([sys.executable, "-m", "autoresearch", "experiments", "ls", "--root", str(tmp_path)],
                       capture_output=True, text=True, timeout=120, env=env, cwd=PACKAGE.parent)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith("error: environment variable AUTORESEARCH_CACHE=") and r.stderr.count("\n") == 1
