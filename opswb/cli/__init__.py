"""The command line: `opswb` (typer), a thin shell over the workbench."""

from opswb.cli import identity as _identity  # noqa: F401 -- registers the §15 commands
from opswb.cli.commands import app, main

__all__ = ["app", "main"]
