"""The LLM coder (agents/coders/llm_coder.py) and its edit blocks (agents/coders/edit_blocks.py): parsing messy
SEARCH/REPLACE answers, lenient matching, refused paths, whole-file fallback, and the conversation on a scripted
backend editing a real git worktree. No network."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from autoresearch.agents.coders.edit_blocks import (
    EditBlock,
    apply_edit_blocks,
    closest_lines,
    elided,
    parse_edit_blocks,
    parse_whole_files,
    scan_edit_blocks,
    write_whole_files,
)
from autoresearch.agents.coders.llm_coder import LLMCoder, render_files, select_files
from autoresearch.agents.llm.budget import BudgetBook, Limits
from autoresearch.agents.llm.scripted import ScriptedBackend
from autoresearch.agents.llm.session import AgentEnv
from autoresearch.agents.roles import Flag, TaskSpec
from autoresearch.errors import BudgetError, ConfigError

ALL = lambda p: True  # noqa: E731

CONFIG = '''"""Config of the surface."""

from dataclasses import dataclass


@dataclass
class ModelConfig:
    n_layers: int = 2
    """number of blocks."""
    dropout: float = 0.0
    """dropout probability."""


def build(cfg):
    return cfg.n_layers
'''

MODEL = '''import math


class Block:
    def __init__(self, cfg):
        self.cfg = cfg

    def forward(self, x):
        y = x * 2
        return y + 1
'''


def block(path: str, search: str, replace: str, fence: bool = True) -> str:
    body = f"<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n"
    return f"{path}\n```python\n{body}```\n" if fence else f"{path}\n{body}"


# --- parsing ---------------------------------------------------------------------------------------------------------


PATH_FORMS = [
    "surface/config.py\n```python\n",
    "`surface/config.py`\n```python\n",
    "**surface/config.py**\n```python\n",
    "**File: `surface/config.py`**\n```\n",
    "### surface/config.py\n\n```python\n",
    "surface/config.py:\n```python\n",
    "1. surface/config.py\n```python\n",
    "```python surface/config.py\n",
    "```surface/config.py\n",
    "surface/config.py\n",  # no fence at all
]


@pytest.mark.parametrize("head", PATH_FORMS)
def test_parse_finds_the_path_in_each_form(head):
    text = f"Here is the edit.\n\n{head}<<<<<<< SEARCH\n    a = 1\n=======\n    a = 2\n>>>>>>> REPLACE\n```\n"
    assert parse_edit_blocks(text) == [EditBlock("surface/config.py", "    a = 1\n", "    a = 2\n")]


def test_parse_crlf_two_blocks_one_file_and_a_new_file():
    text = ("I change two places and add a file.\n\n" + block("surface/config.py", "a = 1\n", "a = 2\n")
            + "\nand\n\n```python\n<<<<<<< SEARCH\nb = 1\n=======\nb = 3\n>>>>>>> REPLACE\n```\n\n"
            + block("surface/new_mod.py", "", "X = 1\n")).replace("\n", "\r\n")
    blocks = parse_edit_blocks(text)
    assert blocks == [EditBlock("surface/config.py", "a = 1\n", "a = 2\n"),
                      EditBlock("surface/config.py", "b = 1\n", "b = 3\n"),  # no path of its own: the previous one
                      EditBlock("surface/new_mod.py", "", "X = 1\n")]


def test_parse_marker_variants_and_indented_markers():
    text = ("surface/a.py\n```\n  <<<<<<<< SEARCH\nx\n  ========\ny\n  >>>>>>>> REPLACE\n```\n"
            "surface/b.py\n<<<<<<< ORIGINAL\np\n=======\nq\n>>>>>>> UPDATED\n")
    assert parse_edit_blocks(text) == [EditBlock("surface/a.py", "x\n", "y\n"), EditBlock("surface/b.py", "p\n", "q\n")]


def test_parse_reports_malformed_blocks_and_keeps_the_good_ones():
    text = (block("surface/a.py", "x\n", "y\n") + "surface/b.py\n<<<<<<< SEARCH\nq\n>>>>>>> REPLACE\n"
            + "surface/c.py\n<<<<<<< SEARCH\nr\n=======\ns\n")
    blocks, problems = scan_edit_blocks(text)
    assert blocks == [EditBlock("surface/a.py", "x\n", "y\n")]
    assert len(problems) == 2
    assert "surface/b.py" in problems[0] and "=======" in problems[0]
    assert "surface/c.py" in problems[1] and "REPLACE" in problems[1]


def test_parse_block_without_any_path_has_an_empty_path_and_is_refused(tmp_path):
    blocks = parse_edit_blocks("Sure! Here it is:\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n")
    assert blocks == [EditBlock("", "x\n", "y\n")]
    res = apply_edit_blocks(tmp_path, blocks, allowed=ALL)
    assert not res.applied and "no file path" in res.failed[0].reason


def test_parse_prose_line_is_not_a_path():
    text = "First, change the config as follows\n\n```python\n<<<<<<< SEARCH\nx\n=======\ny\n>>>>>>> REPLACE\n```\n"
    assert parse_edit_blocks(text)[0].path == ""


# --- lenient matching -------------------------------------------------------------------------------------------------

FILE = "def f(x):\n    if x:\n        y = x + 1\n        return y\n    return 0\n"

MATCH_TABLE = [
    # (name, search, replace, expected file)
    ("exact", "        y = x + 1\n", "        y = x + 2\n",
     FILE.replace("x + 1", "x + 2")),
    ("trailing whitespace", "        y = x + 1   \n        return y\t\n", "        y = x + 2\n        return y\n",
     FILE.replace("x + 1", "x + 2")),
    ("less indented search: the replacement is re-indented",
     "y = x + 1\nreturn y\n", "y = x + 1\nif y > 3:\n    y = 3\nreturn y\n",
     FILE.replace("        return y\n", "        if y > 3:\n            y = 3\n        return y\n")),
    ("more indented search", "            y = x + 1\n            return y\n",
     "            y = x - 1\n            return y\n", FILE.replace("x + 1", "x - 1")),
    ("whitespace inside lines", "        y=x+1\n        return  y\n", "        y = x * 3\n        return y\n",
     FILE.replace("x + 1", "x * 3")),
    ("leading and trailing blank lines in the search", "\n\n    if x:\n        y = x + 1\n\n",
     "\n\n    if x is not None:\n        y = x + 1\n\n", FILE.replace("if x:", "if x is not None:")),
    ("blank lines dropped by the model", "def g():\n    return 1\ndef h():\n    return 2\n",
     "def g():\n    return 10\n\n\ndef h():\n    return 2\n", None),
]


@pytest.mark.parametrize("name,search,replace,expected", MATCH_TABLE, ids=[m[0] for m in MATCH_TABLE])
def test_lenient_matching(tmp_path, name, search, replace, expected):
    text = FILE
    if expected is None:
        text = "def g():\n    return 1\n\n\ndef h():\n    return 2\n"
        expected = "def g():\n    return 10\n\n\ndef h():\n    return 2\n"
    (tmp_path / "m.py").write_text(text)
    res = apply_edit_blocks(tmp_path, [EditBlock("m.py", search, replace)], allowed=ALL)
    assert res.ok, res.summary()
    assert (tmp_path / "m.py").read_text() == expected


def test_exact_match_wins_over_a_looser_one(tmp_path):
    (tmp_path / "m.py").write_text("a = 1\n    a = 1\n")
    res = apply_edit_blocks(tmp_path, [EditBlock("m.py", "a = 1\n", "a = 2\n")], allowed=ALL)
    assert res.ok and (tmp_path / "m.py").read_text() == "a = 2\n    a = 1\n"


def test_ambiguous_match_fails_and_names_the_places(tmp_path):
    (tmp_path / "m.py").write_text("x = 0\ny = 1\nx = 0\n")
    res = apply_edit_blocks(tmp_path, [EditBlock("m.py", "x = 0\n", "x = 5\n")], allowed=ALL)
    assert not res.applied
    assert "matches 2 places" in res.failed[0].reason and "lines 1, 3" in res.failed[0].reason
    assert (tmp_path / "m.py").read_text() == "x = 0\ny = 1\nx = 0\n"


def test_mismatch_fails_with_the_closest_lines(tmp_path):
    (tmp_path / "m.py").write_text(MODEL)
    res = apply_edit_blocks(tmp_path, [EditBlock("m.py", "    def forward(self, inp):\n        y = inp * 2\n",
                                                 "x\n")], allowed=ALL)
    assert not res.applied
    f = res.failed[0]
    assert "does not match" in f.reason
    assert "   8 |     def forward(self, x):" in f.closest and "   9 |         y = x * 2" in f.closest
    assert (tmp_path / "m.py").read_text() == MODEL


def test_closest_lines_window_and_empty_inputs():
    text = "".join(f"line {i}\n" for i in range(1, 31))
    out = closest_lines(text, "line 15\nline 16\n", context=1)
    assert out.splitlines() == ["  14 | line 14", "  15 | line 15", "  16 | line 16", "  17 | line 17"]
    assert closest_lines("", "x\n") == "" and closest_lines("a\n", "\n") == ""


# --- applying ---------------------------------------------------------------------------------------------------------


def test_blocks_apply_in_order_and_a_failed_block_changes_nothing(tmp_path):
    (tmp_path / "m.py").write_text("a = 1\nb = 2\n")
    blocks = [EditBlock("m.py", "a = 1\n", "a = 10\n"), EditBlock("m.py", "zzz\n", "q\n"),
              EditBlock("m.py", "a = 10\nb = 2\n", "a = 10\nb = 20\n")]
    res = apply_edit_blocks(tmp_path, blocks, allowed=ALL)
    assert [b.search for b in res.applied] == ["a = 1\n", "a = 10\nb = 2\n"]
    assert len(res.failed) == 1 and not res.ok
    assert (tmp_path / "m.py").read_text() == "a = 10\nb = 20\n"


def test_new_file_and_empty_search_on_an_existing_file(tmp_path):
    (tmp_path / "old.py").write_text("keep = 1\n")
    res = apply_edit_blocks(tmp_path, [EditBlock("pkg/new.py", "", "X = 1\n"), EditBlock("pkg/new.py", "X = 1\n",
                                                                                        "X = 2\n"),
                                       EditBlock("old.py", "", "boom = 1\n")], allowed=ALL)
    assert (tmp_path / "pkg" / "new.py").read_text() == "X = 2\n"
    assert len(res.applied) == 2
    assert "SEARCH text is empty but old.py exists" in res.failed[0].reason
    assert (tmp_path / "old.py").read_text() == "keep = 1\n"
    res = apply_edit_blocks(tmp_path, [EditBlock("missing.py", "a\n", "b\n")], allowed=ALL)
    assert "does not exist" in res.failed[0].reason and not (tmp_path / "missing.py").exists()


@pytest.mark.parametrize("path,why", [
    ("tests/test_x.py", "outside the editable paths"),
    ("../escape.py", "without `..`"),
    ("/etc/passwd", "relative to the workspace root"),
    (".git/config", "inside .git"),
    ("surface/link/evil.py", "outside the workspace"),
])
def test_disallowed_paths_are_refused_and_never_written(tmp_path, path, why):
    root = tmp_path / "ws"
    (root / "surface").mkdir(parents=True)
    (root / ".git").mkdir()
    (tmp_path / "outside").mkdir()
    (root / "surface" / "link").symlink_to(tmp_path / "outside")
    allowed = lambda p: p.startswith("surface/") or p.startswith(".git") or p.startswith("..")  # noqa: E731
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    res = apply_edit_blocks(root, [EditBlock(path, "", "evil = 1\n")], allowed=allowed)
    assert not res.applied and why in res.failed[0].reason
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before


def test_crlf_line_endings_and_file_mode_are_kept(tmp_path):
    p = tmp_path / "run.sh"
    p.write_bytes(b"echo a\r\necho b\r\n")
    os.chmod(p, 0o750)
    res = apply_edit_blocks(tmp_path, [EditBlock("run.sh", "echo b\n", "echo c\necho d\n")], allowed=ALL)
    assert res.ok
    assert p.read_bytes() == b"echo a\r\necho c\r\necho d\r\n"
    assert p.stat().st_mode & 0o777 == 0o750


def test_file_without_final_newline(tmp_path):
    (tmp_path / "m.py").write_text("a = 1\nb = 2")
    res = apply_edit_blocks(tmp_path, [EditBlock("m.py", "b = 2\n", "b = 3\n")], allowed=ALL)
    assert res.ok and (tmp_path / "m.py").read_text() == "a = 1\nb = 3"


# --- whole files ------------------------------------------------------------------------------------------------------


def test_parse_whole_files_forms():
    text = ("Here you go.\n\nsurface/a.py\n```python\nA = 1\n\n\nB = 2\n```\n\n```python surface/b.py\nB = 1\n```\n"
            "```python\nprint('no path: ignored')\n```\n"
            "surface/c.py\n````\nx = '''\n```\n'''\n````\n")
    assert parse_whole_files(text) == {"surface/a.py": "A = 1\n\n\nB = 2\n", "surface/b.py": "B = 1\n",
                                       "surface/c.py": "x = '''\n```\n'''\n"}
    assert parse_whole_files(block("surface/a.py", "x\n", "y\n")) == {}  # edit blocks are not whole files


def test_write_whole_files_refuses_elided_code_and_disallowed_paths(tmp_path):
    (tmp_path / "surface").mkdir()
    (tmp_path / "surface" / "m.py").write_text(MODEL)
    files = {"surface/m.py": "import math\n\n# ... rest of the file unchanged\n", "tests/t.py": "x = 1\n"}
    written, refused = write_whole_files(tmp_path, files, allowed=lambda p: p.startswith("surface/"))
    assert written == [] and len(refused) == 2
    assert "leaves code out" in refused[0] and "outside the editable paths" in refused[1]
    assert (tmp_path / "surface" / "m.py").read_text() == MODEL and not (tmp_path / "tests").exists()
    written, refused = write_whole_files(tmp_path, {"surface/m.py": MODEL.replace("* 2", "* 3")}, allowed=ALL)
    assert written == ["surface/m.py"] and not refused
    assert "x * 3" in (tmp_path / "surface" / "m.py").read_text()


def test_elided():
    assert elided("a\nb\nc\n", "a\n# ... rest of the file\n") == "# ... rest of the file"
    assert elided("a\nb\nc\n", "a\n    # existing code unchanged\n") is not None
    assert elided("a\nb\nc\n", "a\nb\nc\n# ...\n") is None  # not shorter
    assert elided("a\n...\nc\n", "a\n...\n") is None  # the placeholder was already there


# --- the coder on a scripted backend ----------------------------------------------------------------------------------

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


def git(tree: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(tree), *args], check=True, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}).stdout


@pytest.fixture
def tree(tmp_path) -> Path:
    """A git worktree: surface/config.py, surface/model.py (editable), tests/test_x.py and workspace.yaml (not)."""
    root = tmp_path / "wt"
    files = {"surface/config.py": CONFIG, "surface/model.py": MODEL, "tests/test_x.py": "def test(): pass\n",
             "workspace.yaml": "testbed: x\n"}
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    return root


def task(name: str = "head-temp", files: list[str] | None = None) -> TaskSpec:
    return TaskSpec(idea="learn a temperature per head", name=name, description="scale the output",
                    flags=[Flag(key="model.head_temp", type="bool", off=False, on=True)],
                    files=["surface/config.py", "surface/model.py"] if files is None else files, needs_code=True)


CONFIG_EDIT = block("surface/config.py", '    dropout: float = 0.0\n    """dropout probability."""\n',
                    '    dropout: float = 0.0\n    """dropout probability."""\n    head_temp: bool = False\n'
                    '    """learn a temperature per head."""\n')
MODEL_EDIT = block("surface/model.py", "        y = x * 2\n        return y + 1\n",
                   "        y = x * 2\n        if self.cfg.head_temp:\n            y = y * 0.5\n        return y + 1\n")


def coder_for(answers, tmp_path: Path | None = None, **kw) -> tuple[LLMCoder, ScriptedBackend]:
    backend = ScriptedBackend(answers)
    env = kw.pop("env", None) or AgentEnv.standalone(editable=["surface/**"])
    return LLMCoder("scripted:test", env=env, backend=backend, **kw), backend


def texts(request) -> str:
    return "\n".join(m["content"] for m in request.messages)


def test_coder_edits_a_real_git_worktree(tree):
    head = git(tree, "rev-parse", "HEAD")
    coder, backend = coder_for([f"I add the flag and use it.\n\n{CONFIG_EDIT}\n{MODEL_EDIT}"])
    res = coder.implement(task(), tree)
    assert res.ok, res.log
    assert "applied surface/config.py" in res.log and "applied surface/model.py" in res.log
    diff = git(tree, "diff")
    assert "+    head_temp: bool = False" in diff and "+        if self.cfg.head_temp:" in diff
    assert git(tree, "rev-parse", "HEAD") == head  # never commits
    assert git(tree, "status", "--porcelain").split() == ["M", "surface/config.py", "M", "surface/model.py"]
    req = backend.requests[0]
    assert req.role == "coder" and len(backend.requests) == 1
    assert req.messages[0]["role"] == "system" and "SEARCH/REPLACE" in req.messages[0]["content"]
    user = req.messages[-1]["content"]
    assert "# Task: head-temp" in user and "`model.head_temp` (bool): off = False (baseline), on = True" in user
    assert "Editable paths: surface/**" in user
    # the files go verbatim (the template's tidying would collapse the two blank lines before `def build`)
    assert "surface/config.py\n```python\n" + CONFIG + "```" in user


def test_mismatch_sends_the_closest_lines_in_the_next_request(tree):
    wrong = block("surface/model.py", "        y = x * 3\n        return y + 1\n",
                  "        y = x * 3\n        return y\n")
    coder, backend = coder_for([CONFIG_EDIT + wrong, MODEL_EDIT])
    res = coder.implement(task(), tree)
    assert res.ok, res.log
    assert len(backend.requests) == 2
    second = backend.requests[1].messages
    assert second[-2]["role"] == "assistant" and "y = x * 3" in second[-2]["content"]
    reask = second[-1]["content"]
    assert "1 of your 2 edit block(s) failed" in reask and "do not send them again" in reask
    assert "   9 |         y = x * 2" in reask and "  10 |         return y + 1" in reask
    assert "if self.cfg.head_temp" in (tree / "surface" / "model.py").read_text()
    assert (tree / "surface" / "config.py").read_text().count("head_temp") == 1  # not applied twice


def test_a_failed_block_the_model_forgets_is_asked_for_again(tree):
    bad_config = block("surface/config.py", "    n_layers: int = 3\n", "    n_layers: int = 4\n")
    bad_model = block("surface/model.py", "        y = x * 3\n", "        y = x * 4\n")
    coder, backend = coder_for([bad_config + bad_model, CONFIG_EDIT, MODEL_EDIT])
    res = coder.implement(task(), tree)
    assert res.ok, res.log
    third = backend.requests[2].messages[-1]["content"]
    assert "Failed block 1: surface/model.py" in third and "y = x * 3" in third
    assert "surface/config.py (SEARCH" not in third


def test_whole_file_fallback_after_two_reasks(tree):
    wrong = block("surface/model.py", "        z = 0\n", "        z = 1\n")
    new_model = MODEL.replace("        return y + 1\n", "        if self.cfg.head_temp:\n            y = y / 2\n"
                                                         "        return y + 1\n")
    coder, backend = coder_for([wrong, wrong, wrong, f"Here is the file.\n\nsurface/model.py\n```python\n"
                                                      f"{new_model}```\n"])
    res = coder.implement(task(), tree)
    assert res.ok, res.log
    assert len(backend.requests) == 4
    last = backend.requests[3].messages[-1]["content"]
    assert "COMPLETE new content" in last and "surface/model.py" in last and MODEL in last
    assert (tree / "surface" / "model.py").read_text() == new_model
    assert "whole-file fallback for surface/model.py" in res.log and "wrote surface/model.py" in res.log


def test_whole_file_fallback_that_elides_code_fails(tree):
    wrong = block("surface/model.py", "        z = 0\n", "        z = 1\n")
    coder, backend = coder_for([wrong, wrong, wrong, "surface/model.py\n```python\nimport math\n# ... rest unchanged\n"
                                                     "```\n"])
    res = coder.implement(task(), tree)
    assert not res.ok
    assert "leaves code out" in res.log and "failed surface/model.py" in res.log
    assert (tree / "surface" / "model.py").read_text() == MODEL


def test_disallowed_path_is_refused_and_reported(tree):
    evil = block("tests/test_x.py", "def test(): pass\n", "def test(): assert True\n")
    coder, backend = coder_for([evil + CONFIG_EDIT + MODEL_EDIT])
    res = coder.implement(task(), tree)
    assert res.ok, res.log  # the allowed blocks landed; the refused one is logged, not retried
    assert len(backend.requests) == 1
    assert "refused tests/test_x.py: tests/test_x.py is outside the editable paths" in res.log
    assert (tree / "tests" / "test_x.py").read_text() == "def test(): pass\n"
    # only refused blocks: nothing landed, so the model is told why and asked again
    coder, backend = coder_for([evil, evil, evil])
    res = coder.implement(task(), tree)
    assert not res.ok and len(backend.requests) == 3
    assert "outside the editable paths" in backend.requests[1].messages[-1]["content"]
    assert git(tree, "status", "--porcelain").split() == ["M", "surface/config.py", "M", "surface/model.py"]


def test_conversation_persists_across_feedback_and_resets_for_another_version(tree, tmp_path):
    coder, backend = coder_for([CONFIG_EDIT, MODEL_EDIT, "surface/config.py\n```\n<<<<<<< SEARCH\n"
                                "    n_layers: int = 2\n=======\n    n_layers: int = 2  # blocks\n>>>>>>> REPLACE\n```\n"])
    assert coder.implement(task(), tree).ok
    res = coder.implement(task(), tree, feedback="NameError: name 'cfg' is not defined (surface/model.py:9)")
    assert res.ok, res.log
    req = backend.requests[1]
    assert req.messages[:3] == backend.requests[0].messages + [{"role": "assistant", "content": CONFIG_EDIT}]
    last = req.messages[-1]["content"]
    assert "The pipeline reports" in last and "NameError: name 'cfg'" in last and "Fix only this error" in last
    assert "head_temp: bool = False" in last  # the edited files as they are now
    # another version (task name) starts a new conversation
    other = tmp_path / "other"
    git(tree, "worktree", "add", "-q", str(other))
    assert coder.implement(task("head-temp-v2"), other).ok
    third = backend.requests[2].messages
    assert len(third) == 2 and "# Task: head-temp-v2" in third[-1]["content"]


def test_no_blocks_and_truncated_answers_are_asked_again(tree):
    cut = {"text": CONFIG_EDIT + "surface/model.py\n```python\n<<<<<<< SEARCH\n        y = x * 2\n",
           "finish_reason": "length"}
    coder, backend = coder_for(["I would add a flag to the config.", cut, MODEL_EDIT])
    res = coder.implement(task(), tree)
    assert res.ok, res.log
    assert "no SEARCH/REPLACE block" in backend.requests[1].messages[-1]["content"]
    assert "cut off at the token limit" in backend.requests[2].messages[-1]["content"]
    assert "Applied already: 1 block(s) (surface/config.py); do not send them again" in \
        backend.requests[2].messages[-1]["content"]
    assert (tree / "surface" / "config.py").read_text().count("head_temp") == 1
    assert "[cut off at the token limit]" in backend.requests[2].messages[-2]["content"]


def test_no_edit_at_all_fails(tree):
    coder, backend = coder_for(["I cannot do this."] * 4)
    res = coder.implement(task(), tree)
    assert not res.ok and "no edit" in res.log
    assert len(backend.requests) == 3  # the first ask and two re-asks; no whole-file fallback without a failed block
    assert git(tree, "status", "--porcelain") == ""


def test_whole_file_mode(tree):
    new_config = CONFIG.replace('    """dropout probability."""\n', '    """dropout probability."""\n'
                                '    head_temp: bool = False\n    """learn a temperature per head."""\n')
    coder, backend = coder_for([f"surface/config.py\n```python\n{new_config}```\n"], whole_file=True)
    res = coder.implement(task(), tree)
    assert res.ok, res.log
    assert (tree / "surface" / "config.py").read_text() == new_config
    system = backend.requests[0].messages[0]["content"]
    assert "whole files" in system and "<<<<<<< SEARCH" not in system


def test_template_override_from_the_workspace(tree, tmp_path):
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "coder.md").write_text("You are a careful coder. Editable: {{editable}}\n<!-- user -->\n{{task}}\n"
                                      "{{files}}\n")
    env = AgentEnv.standalone(editable=["surface/**"], templates_dir=prompts)
    coder, backend = coder_for([CONFIG_EDIT], env=env)
    assert coder.implement(task(files=["surface/config.py"]), tree).ok
    msgs = backend.requests[0].messages
    assert msgs[0] == {"role": "system", "content": "You are a careful coder. Editable: surface/**"}
    assert CONFIG in msgs[1]["content"]


def test_budget_stops_the_coder_before_the_call(tree):
    env = AgentEnv.standalone(editable=["surface/**"], book=BudgetBook(roles={"coder": Limits(calls=1)}))
    coder, backend = coder_for(["no blocks here", MODEL_EDIT], env=env)
    with pytest.raises(BudgetError):
        coder.implement(task(), tree)
    assert len(backend.requests) == 1


def test_select_files_config_first_within_the_budget(tree):
    (tree / "surface" / "big.py").write_text("x = 1\n" * 4000)
    (tree / "surface" / "__init__.py").write_text("")
    t = task(files=[])
    shown, left = select_files(tree, t, ["surface/**"], budget_tokens=6000)
    assert shown[0] == "surface/config.py" and "surface/model.py" in shown
    assert left == ["surface/big.py"] and "tests/test_x.py" not in shown + left
    shown, _ = select_files(tree, task(files=["surface/model.py", "surface/new.py"]), ["surface/**"], 1)
    assert shown == ["surface/model.py", "surface/new.py"]  # the task's files, always
    text = render_files(tree, shown)
    assert "surface/new.py: does not exist yet" in text and MODEL in text


def test_files_with_fences_inside_get_a_longer_fence(tmp_path):
    (tmp_path / "README.md").write_text("```\ncode\n```\n")
    assert render_files(tmp_path, ["README.md"]) == "README.md\n````\n```\ncode\n```\n````"


def test_select_files_ranks_by_the_task_words(tree):
    (tree / "surface" / "optim.py").write_text("lr = 1\n")
    (tree / "surface" / "attn.py").write_text("# attention heads\ndef attention(): pass  # attention\n")
    t = TaskSpec(idea="scale attention logits", name="s", description="", flags=[], files=[], needs_code=True)
    shown, _ = select_files(tree, t, ["surface/**"], budget_tokens=10_000)
    assert shown[:2] == ["surface/config.py", "surface/attn.py"]


def test_coder_knobs_from_the_workspace_settings(tree):
    env = AgentEnv.standalone(editable=["surface/**"], settings={"coder": {"whole_file": True, "max_reasks": 0}})
    coder, _ = coder_for([], env=env)
    assert coder.whole_file and coder.max_reasks == 0 and coder.max_tokens == 8192
    for bad, word in [({"whole_files": True}, "unknown knob(s) whole_files"), ({"max_reasks": -1}, ">= 0"),
                      ({"max_tokens": "lots"}, "max_tokens must be a whole number"), ({"whole_file": "yes"}, "true")]:
        with pytest.raises(ConfigError, match=word.replace("(", r"\(").replace(")", r"\)")):
            coder_for([], env=AgentEnv.standalone(settings={"coder": bad}))
