"""Widget panels of the Ops Console (ipywidgets 8), each a class over a workbench.

    from opswb.console.panels import build_console
    build_console(opswb.connect("data/opswb.duckdb"))

Panels take any object with the workbench methods (local or remote) and talk to each
other only through traits (``selected_id``, ``selected_ids``, ``detail``, ``result``).
"""

from __future__ import annotations

from opswb.console.panels.app import Console, build_console
from opswb.console.panels.audit import AuditPanel
from opswb.console.panels.bulk import BulkPanel
from opswb.console.panels.detail import DetailPanel
from opswb.console.panels.diff import DiffPanel
from opswb.console.panels.groups import GroupsPanel
from opswb.console.panels.health import HealthBar
from opswb.console.panels.queue import QueuePanel
from opswb.console.panels.resolve import ResolvePanel

__all__ = ["AuditPanel", "BulkPanel", "Console", "DetailPanel", "DiffPanel", "GroupsPanel",
           "HealthBar",
           "QueuePanel", "ResolvePanel", "build_console"]
