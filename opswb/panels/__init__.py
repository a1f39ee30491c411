"""Widget panels of the Ops Console (ipywidgets 8), each a class over a workbench.

    from opswb.panels import build_console
    build_console(opswb.connect("data/opswb.duckdb"))

Panels take any object with the workbench methods (local or remote) and talk to each
other only through traits (``selected_id``, ``selected_ids``, ``detail``, ``result``).
"""

from __future__ import annotations

from .audit import AuditPanel
from .bulk import BulkPanel
from .console import Console, build_console
from .detail import DetailPanel
from .diff import DiffPanel
from .health import HealthBar
from .queue import QueuePanel
from .resolve import ResolvePanel

__all__ = ["AuditPanel", "BulkPanel", "Console", "DetailPanel", "DiffPanel", "HealthBar",
           "QueuePanel", "ResolvePanel", "build_console"]
