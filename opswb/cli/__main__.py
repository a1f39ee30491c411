"""`python -m opswb.cli`."""

from opswb.cli.commands import main

main()
