"""The research surface of a built-in testbed, copied into a workspace's `surface/` as a Python package.

`Testbed.research_surface` names what ideas may edit (file name in surface/ -> module). Each module's source is copied
as it is installed, except that `from <surface module> import ...` (at any indentation: imports inside functions too)
becomes `from .<file> import ...`, so the copy runs its own model, optimizer and training loop while everything else
(evaluation, data, metrics, checkpoints, registry, sandbox) is still imported from the installed package. `get_testbed`
loads `surface/testbed.py:Class` as a package named after the folder's path, so two worktrees' copies never collide.
"""

from __future__ import annotations

import ast
import importlib.util
import re
from collections.abc import Mapping
from pathlib import Path

from autoresearch.errors import PipelineError
from autoresearch.harness.atomic import atomic_write_text

__all__ = ["SURFACE_DIR", "copy_surface", "rewrite_imports", "module_file"]

SURFACE_DIR = "surface"
_FILE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\.py$")
_FROM = re.compile(r"^(?P<indent>[ \t]*)from[ \t]+(?P<module>[A-Za-z_][\w.]*)[ \t]+import\b", re.M)


def module_file(module: str) -> Path:
    """The source file of an importable module (one-line PipelineError when it has none)."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError) as e:
        raise PipelineError(f"research surface module {module!r} cannot be found ({e}); fix `research_surface`") \
            from None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        raise PipelineError(f"research surface module {module!r} has no Python source file; fix `research_surface` "
                            "(name modules, not packages)")
    return Path(spec.origin)


def rewrite_imports(source: str, local: Mapping[str, str], *, where: str = "<source>") -> str:
    """`source` with every `from M import ...` of a module M in `local` (module -> file stem in surface/) turned into
    `from .stem import ...`. Any other import of a surface module (`import M`, `import M as x`) is refused: the copy
    would silently keep running the installed code."""
    out = _FROM.sub(lambda m: f"{m['indent']}from .{local[m['module']]} import" if m["module"] in local else m[0],
                    source)
    for node in ast.walk(ast.parse(out, filename=where)):
        if isinstance(node, ast.Import):
            left = [a.name for a in node.names if a.name in local]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            left = [node.module] if node.module in local else \
                [f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in local]
        else:
            continue
        if left:
            raise PipelineError(f"{where} line {node.lineno}: this import of the research surface module {left[0]} "
                                f"cannot be made relative; write `from {left[0]} import NAME` on one line")
    return out


def copy_surface(surface: Mapping[str, str], dest: Path, *, testbed_class: str) -> list[str]:
    """Copy the modules of `surface` into the package folder `dest` (created) with relative imports between them;
    returns the files written, relative to `dest` (`__init__.py` first)."""
    if "testbed.py" not in surface:
        raise PipelineError(f"`research_surface` of {testbed_class} lacks \"testbed.py\" (the testbed module itself); "
                            "add it")
    for name in surface:
        if not _FILE.match(name) or name == "__init__.py":
            raise PipelineError(f"`research_surface` file name {name!r} of {testbed_class} is not a module file name; "
                                "use e.g. \"gpt.py\"")
    local = {module: name[:-3] for name, module in surface.items()}
    sources = {name: module_file(module) for name, module in surface.items()}
    dest.mkdir(parents=True, exist_ok=True)
    listing = "\n".join(f"- `{name}`: `{module}`" for name, module in surface.items())
    atomic_write_text(dest / "__init__.py", f'"""The research surface of {testbed_class}: what ideas may edit.\n\n'
                      f"Copied by `autoresearch research init` from the installed package, with imports between "
                      f"these files made relative;\neverything else is imported from the installed `autoresearch`."
                      f"\n\n{listing}\n\"\"\"\n")
    for name, src in sources.items():
        text = rewrite_imports(src.read_text(encoding="utf-8"), local, where=str(src))
        atomic_write_text(dest / name, text)
    return ["__init__.py", *surface]
