"""Every workbench offers SPEC §12's API with the same signatures (workbench.protocol)."""

from __future__ import annotations

import inspect

import pytest

from opswb.workbench.in_server import ServedWorkbench
from opswb.workbench.local import LocalWorkbench
from opswb.workbench.protocol import Workbench
from opswb.workbench.remote import RemoteWorkbench

MEMBERS = sorted(n for n in dir(Workbench) if not n.startswith("_") and n != "views"
                 and callable(getattr(Workbench, n)))


def _shape(fn) -> list[tuple]:
    """Parameter names, kinds, defaults and annotations (as written), and the return."""
    sig = inspect.signature(fn)
    return [(p.name, p.kind, p.default, str(p.annotation)) for p in sig.parameters.values()] \
        + [("return", str(sig.return_annotation))]


@pytest.mark.parametrize("cls", [LocalWorkbench, ServedWorkbench, RemoteWorkbench])
def test_each_workbench_matches_the_protocol(cls):
    assert MEMBERS, "the protocol names no method"
    missing = [n for n in MEMBERS if not callable(getattr(cls, n, None))]
    assert missing == []
    differ = {n: (_shape(getattr(Workbench, n)), _shape(getattr(cls, n)))
              for n in MEMBERS if _shape(getattr(Workbench, n)) != _shape(getattr(cls, n))}
    assert differ == {}
    assert isinstance(getattr(cls, "views", None), property)

