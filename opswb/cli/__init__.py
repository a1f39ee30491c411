"""The command line: `opswb` (typer), a thin shell over the workbench."""

from opswb.cli.commands import app, main

__all__ = ["app", "main"]
