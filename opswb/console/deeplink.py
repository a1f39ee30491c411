"""Deep links: the console's state (viewed exception, queue filters, sort, search) as a
URL query string, and back; the page title that names what is shown. Pure functions.

Voilà hands the page's query string to the kernel as ``QUERY_STRING``: in the kernel's
environment when the page starts it, or, in a preheated kernel, once
``voila.utils.wait_for_request`` returns (``build_console`` waits for it before it reads
anything). Parameters of Voilà's own (``voila-theme``, ``voila-template``) and unknown
ones are ignored; each value is checked by the workbench, which refuses bad ones.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, urlencode

# URL parameter -> the console's state name (list_exceptions' argument names).
PARAMS = {"exception": "exception", "tenant": "tenant_id", "reason": "reason_code",
          "status": "status", "q": "q", "sort": "sort", "group": "group",
          "assignee": "assignee", "key": "idempotency_key"}
DEFAULTS = {"status": "open", "sort": "age"}
MAX_VALUE = 200


def state_from_query(query_string: str | None) -> dict[str, str]:
    """The console state a query string asks for: ``{"exception": "123",
    "tenant_id": "acme", …}`` (first value of each known parameter, blanks dropped)."""
    state: dict[str, str] = {}
    for name, value in parse_qsl(query_string or "", keep_blank_values=False):
        key = PARAMS.get(name)
        if key is not None and key not in state and value.strip():
            state[key] = value.strip()[:MAX_VALUE]
    return state


def query_from_state(state: dict) -> str:
    """The query string (no ``?``) for a console state, in a stable order; defaults and
    blanks are left out, so the bare console URL is the default view."""
    pairs = []
    for name, key in PARAMS.items():
        value = state.get(key)
        if value in (None, "") or DEFAULTS.get(key) == value:
            continue
        pairs.append((name, str(value)))
    return urlencode(pairs)


def page_title(exception_id: str | None = None, reason_code: str | None = None) -> str:
    """``opswb · #123 IDEMPOTENCY_CONFLICT``, or ``opswb · Ops Console`` with none."""
    if not exception_id:
        return "opswb · Ops Console"
    return f"opswb · #{exception_id}" + (f" {reason_code}" if reason_code else "")


def address_script(query: str, title: str) -> str:
    """JavaScript that puts ``query`` in the address bar (no reload, no new history
    entry) and ``title`` on the tab. Values go in as JSON strings with ``<`` escaped,
    so nothing in them can end the script or run as code."""
    def lit(text: str) -> str:
        return json.dumps(text).replace("<", "\\u003c").replace(">", "\\u003e")
    return (f"(function(){{var q={lit(query)};"
            "history.replaceState(history.state, '', location.pathname + (q ? '?' + q : ''));"
            f"document.title={lit(title)};}})();")
