"""Structural diff of two JSON values with JSON-Pointer paths (RFC 6901)."""

from __future__ import annotations

from typing import Any

from opswb.core.fingerprint import normalize_numbers


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def json_diff(first: Any, last: Any) -> dict:
    """Return ``{"changed": [...], "added": [...], "removed": [...]}`` from first to last.

    ``changed`` items are ``{"path", "first", "last"}``; ``added`` items ``{"path",
    "last"}``; ``removed`` items ``{"path", "first"}``. Numbers compare by value.
    """
    out: dict = {"changed": [], "added": [], "removed": []}
    _walk(normalize_numbers(first), normalize_numbers(last), "", out)
    return out


def _walk(a: Any, b: Any, path: str, out: dict) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in a:
            p = f"{path}/{_escape(k)}"
            if k in b:
                _walk(a[k], b[k], p, out)
            else:
                out["removed"].append({"path": p, "first": a[k]})
        for k in b:
            if k not in a:
                out["added"].append({"path": f"{path}/{_escape(k)}", "last": b[k]})
        return
    if isinstance(a, list) and isinstance(b, list):
        for i in range(max(len(a), len(b))):
            p = f"{path}/{i}"
            if i >= len(b):
                out["removed"].append({"path": p, "first": a[i]})
            elif i >= len(a):
                out["added"].append({"path": p, "last": b[i]})
            else:
                _walk(a[i], b[i], p, out)
        return
    if type(a) is not type(b) or a != b:
        out["changed"].append({"path": path, "first": a, "last": b})
