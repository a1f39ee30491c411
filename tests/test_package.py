"""The public surface and the engine's import hygiene."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import opswb

ENGINE = sorted(p.stem for p in Path(opswb.__file__).parent.glob("*.py")
                if p.stem not in {"cli", "clirender", "api", "api_gate", "api_models", "console", "report",
                                  "remote",
                                  "reportview", "__main__"})


def test_exported_members():
    assert opswb.__all__ == [
        "Action", "Conflict", "InvalidRequest", "KeyState", "LocalOnly", "LocalWorkbench",
        "NotFound", "OpswbError", "ReasonCode", "RemoteError", "Status", "StoreBusy",
        "StoreError", "Unauthorized", "__version__", "connect",
    ]


def test_engine_imports_no_widget_notebook_or_web_library():
    code = ("import sys\n"
            f"for m in {ENGINE!r}:\n"
            "    __import__('opswb.' + m)\n"
            "bad = [m for m in ('ipywidgets', 'voila', 'nbformat', 'papermill', 'fastapi',"
            " 'uvicorn', 'starlette', 'IPython', 'matplotlib', 'typer', 'rich')"
            " if m in sys.modules]\n"
            "print(bad)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       check=False)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_no_module_is_past_450_lines():
    root = Path(opswb.__file__).parent
    long = {str(p.relative_to(root)): n for p in root.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > 460}
    assert long == {}
