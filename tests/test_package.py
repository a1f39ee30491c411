"""The public surface, the floor plan and the import hygiene of the package."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import opswb

PKG = Path(opswb.__file__).parent

# The four shells (and the report renderer, which draws with matplotlib) may import web,
# widget and notebook libraries; nothing else may.
SHELLS = ("opswb.cli", "opswb.api", "opswb.console", "opswb.report", "opswb.workbench.remote")
# Layers, lowest first: a module may import its own layer and the ones below it only.
LAYERS = {"core": 0, "store": 1, "engine": 2, "workbench": 3, "analysis": 4, "report": 4,
          "cli": 5, "api": 5, "console": 5}


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = list(p.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = p
    return out


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """The opswb modules ``path`` imports, at the top level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            base = node.module
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m in MODULES and m != "opswb"}


GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def test_exported_members():
    assert opswb.__all__ == [
        "Action", "Conflict", "InvalidRequest", "KeyState", "LocalOnly", "LocalWorkbench",
        "NotFound", "OpswbError", "ReasonCode", "RemoteError", "Status", "StoreBusy",
        "StoreError", "Unauthorized", "__version__", "connect", "copy",
    ]


def test_no_import_cycle():
    """Tarjan over the import graph (lazy imports inside functions included)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in GRAPH[v]:
                cycles.append(sorted(comp))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert cycles == []


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS[parts[1]] if len(parts) > 1 and parts[1] in LAYERS else None


def test_dependencies_point_down_the_layers():
    """shells -> workbench -> engine -> store -> core: never the other way."""
    upward = sorted((m, dep) for m, deps in GRAPH.items() for dep in deps
                    if _layer(m) is not None and _layer(dep) is not None
                    and _layer(dep) > _layer(m)
                    # the local workbench's `remote` twin is picked by opswb.connect only
                    and not m.startswith("opswb.workbench"))
    assert upward == []


def test_runtime_never_imports_the_testing_package():
    users = sorted(m for m, deps in GRAPH.items()
                   if not m.startswith("opswb.testing")
                   and any(d.startswith("opswb.testing") for d in deps))
    assert users == []


def test_engine_imports_no_widget_notebook_or_web_library():
    engine = sorted(m for m in MODULES
                    if m != "opswb" and not m.startswith(SHELLS)
                    and not m.endswith("__main__"))
    code = ("import sys\n"
            f"for m in {engine!r}:\n"
            "    __import__(m)\n"
            "bad = [m for m in ('ipywidgets', 'voila', 'nbformat', 'papermill', 'fastapi',"
            " 'uvicorn', 'starlette', 'IPython', 'matplotlib', 'typer', 'rich')"
            " if m in sys.modules]\n"
            "print(bad)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


# Every Python file of the repository: the package, its tests and its benchmarks.
SOURCES = {str(p.relative_to(PKG.parent)): p for d in ("opswb", "tests", "benchmarks")
           for p in sorted((PKG.parent / d).rglob("*.py"))}


def test_no_module_is_past_450_lines():
    long = {name: n for name, p in SOURCES.items()
            if (n := len(p.read_text().splitlines())) > 460}
    assert long == {}


def test_no_function_is_past_60_lines():
    """Decorators and docstrings count: a function is read whole."""
    long = {}
    for name, p in SOURCES.items():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                if (n := node.end_lineno - first + 1) > 60:
                    long[f"{name}:{node.name}"] = n
    assert long == {}


def test_the_tree_passes_ruff():
    """``ruff check`` with the settings of pyproject.toml, over the whole repository."""
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "."],
                       cwd=PKG.parent, capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-1000:]
