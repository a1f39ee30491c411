"""`python -m opswb.api serve --db PATH` or `python -m opswb.api openapi [FILE]`."""

from opswb.api.server import _main

_main()
