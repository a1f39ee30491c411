"""`opswb report`: run the health report notebook with papermill and export offline HTML.

Writes ``<out>/health_<as_of>.ipynb`` (the executed notebook), ``health_<as_of>.json``
(the summary, written by the notebook) and ``health_<as_of>.html`` (no code cells, charts
as embedded PNGs, no script or stylesheet from a CDN). Exit code: 0 all thresholds met,
2 a threshold breached (after both files are written, so cron and CI can alert), 1 the
notebook failed (its output notebook is still written, with papermill's error banner).

papermill and nbformat are imported lazily: importing them costs seconds and the rest of
the CLI must stay quick.
"""

from __future__ import annotations

import json
import os
import re
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from opswb.report.data import file_stamp, iso, parse_time

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "health_report.ipynb"
PARAMETERS = ("db", "as_of", "since", "tenant_id", "max_open", "max_oldest_open_hours",
              "max_invalid", "record_snapshot", "out_json")
EXIT_OK, EXIT_FAILED, EXIT_BREACHED = 0, 1, 2

# The lab template, minus everything it would fetch from a CDN (require.js, MathJax,
# mermaid, the widget manager): the report is read offline and renders no widgets.
_OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""
_REMOTE = re.compile(r"^\s*(?:https?:)?//", re.IGNORECASE)
_CSS_REMOTE = re.compile(r"(?:url\(|@import)\s*[\"']?\s*(?:https?:)?//", re.IGNORECASE)


class _RemoteRefs(HTMLParser):
    """Collects what a browser would fetch from the network: resource URLs, CSS imports."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_style = tag == "style"
        if tag == "a":  # a link is only followed when clicked
            return
        for name, value in attrs:
            if name in ("src", "href", "srcset", "data", "poster") and value \
                    and _REMOTE.search(value):
                self.found.append(f"<{tag} {name}={value[:80]}>")
            if name == "style" and value and _CSS_REMOTE.search(value):
                self.found.append(f"<{tag} style=...{value[:80]}>")

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style and _CSS_REMOTE.search(data):
            self.found.append("<style> " + _CSS_REMOTE.search(data).group(0))


def remote_references(markup: str) -> list[str]:
    """Every network resource an HTML page would load (empty for a self-contained page)."""
    parser = _RemoteRefs()
    parser.feed(markup)
    parser.close()
    return parser.found


def report_paths(out: str | Path, as_of: Any) -> dict[str, Path]:
    """The notebook, HTML and JSON paths of the report for ``as_of``."""
    stem = Path(out) / f"health_{file_stamp(parse_time(as_of))}"
    return {"ipynb": stem.with_suffix(".ipynb"), "html": stem.with_suffix(".html"),
            "json": stem.with_suffix(".json")}


def run_report(db: str, out: str = "reports", as_of: str | None = None,
               params: dict | None = None) -> int:
    """Execute the notebook, write the .ipynb, .json and .html; 0 ok, 2 breached, 1 failed."""
    extra = dict(params or {})
    settable = [p for p in PARAMETERS if p not in ("db", "out_json")]
    unknown = sorted(set(extra) - set(settable))
    if unknown:
        # db and out_json follow --db and --out, so that the files land where promised.
        raise ValueError(f"unknown report parameter(s) {', '.join(unknown)}; "
                         f"known: {', '.join(settable)} (the store is --db)")
    given = as_of if as_of is not None else extra.get("as_of")
    when = parse_time(given)
    paths = report_paths(out, when)
    paths["ipynb"].parent.mkdir(parents=True, exist_ok=True)
    # A stale summary from an earlier run must never pass for this run's verdict.
    paths["json"].unlink(missing_ok=True)
    import papermill as pm  # seconds to import: only once the arguments are known good
    target = str(db)
    if "://" not in target:  # a file path; a serve or postgresql:// URL stays as it is
        target = str(Path(target).resolve())
    # Without an explicit as_of the notebook takes "now" itself, after it has recorded this
    # run's snapshot, so the snapshot and any decision of the last seconds are counted; the
    # file name keeps the run's start time.
    extra.update(db=target, as_of=None if given in (None, "") else when.isoformat(),
                 out_json=str(paths["json"].resolve()))
    try:
        # The API token stays in the environment the kernel inherits: a parameter would be
        # written into the output notebook.
        pm.execute_notebook(str(NOTEBOOK), str(paths["ipynb"]), parameters=extra,
                            kernel_name="python3", language="python", cwd=os.getcwd(),
                            progress_bar=False, log_output=False,
                            # The kernel's start-up warnings would land in every cron mail.
                            extra_arguments=["--IPKernelApp.log_level=ERROR"])
    except pm.PapermillExecutionError as e:
        _export_quietly(paths)
        print(f"opswb report: the notebook failed ({e.ename}: {e.evalue}); see "
              f"{paths['ipynb']}", file=sys.stderr)
        return EXIT_FAILED
    export_html(paths["ipynb"], paths["html"], title=f"opswb health report {iso(when)}")
    summary = json.loads(paths["json"].read_text(encoding="utf-8"))
    for line in summary["breaches"]:
        print(f"opswb report: BREACH: {line}", file=sys.stderr)
    print(f"opswb report: wrote {paths['html']}")
    return EXIT_BREACHED if summary["breached"] else EXIT_OK


def export_html(notebook: str | Path, html_path: str | Path, title: str | None = None) -> Path:
    """Export an executed notebook to self-contained HTML without code cells."""
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(notebook), as_version=4)
    if title:
        nb.metadata["title"] = title
    exporter = HTMLExporter(template_name="lab", exclude_input=True,
                            exclude_input_prompt=True, exclude_output_prompt=True,
                            extra_loaders=[DictLoader({"opswb_offline.html.j2":
                                                       _OFFLINE_TEMPLATE})],
                            template_file="opswb_offline.html.j2")
    body, _ = exporter.from_notebook_node(nb)
    found = remote_references(body)
    if found:
        # A report that would reach the network offline is a bug, not a degraded report.
        raise RuntimeError(f"report HTML would load remote resources: {found[:3]}")
    path = Path(html_path)
    path.write_text(body, encoding="utf-8")
    return path


def _export_quietly(paths: dict[str, Path]) -> None:
    """Export the failed notebook too, so the HTML shows the error; never mask it."""
    try:
        export_html(paths["ipynb"], paths["html"], title="opswb health report (FAILED)")
    except Exception as e:  # noqa: BLE001 - the execution error is the one to report
        print(f"opswb report: could not export HTML: {e}", file=sys.stderr)
