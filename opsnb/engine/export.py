"""A self-contained HTML rendering of an executed notebook.

Charts are embedded as data URIs by nbconvert; scripts loaded from the network
(MathJax, require.js) are removed so the page opens offline and never calls out.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import threading
from pathlib import Path
from typing import Any

_REMOTE_SCRIPT = re.compile(r"<script[^>]+src=\"https?://[^\"]*\"[^>]*>\s*</script>", re.I)
_REMOTE_LINK = re.compile(r"<link[^>]+href=\"https?://[^\"]*\"[^>]*>", re.I)


_exporter: Any = None
_warm = False
# One exporter per process (compiling its templates takes a second), used by one export at a
# time: from_notebook_node registers per-notebook filters on the shared instance.
_lock = threading.Lock()


def _get_exporter() -> Any:
    global _exporter
    if _exporter is None:
        from nbconvert import HTMLExporter

        _exporter = HTMLExporter(
            template_name="lab", log=_exporter_log(), filters=_remembering_filters()
        )
    return _exporter


def _remembering_filters() -> dict[str, Any]:
    """nbconvert's code highlighter and HTML cleaner, remembering their answers.

    Every run of a runbook exports the same code cells again: highlighting them (pygments)
    and cleaning the highlighted HTML (bleach) was a third of an export. Both are pure
    functions of their text; outputs, which differ per run, are rendered as before. nbconvert
    takes filters given here over its own (``TemplateExporter.filters``).
    """
    from nbconvert.filters import Highlight2HTML, clean_html

    highlighter = Highlight2HTML(pygments_lexer="ipython3")

    @functools.lru_cache(maxsize=1024)
    def highlight(source: str, language: str | None, magics: str | None) -> str:
        return str(highlighter(source, language, {"magics_language": magics} if magics else {}))

    def highlight_code(source: str, language: str | None = None, metadata: Any = None) -> str:
        return highlight(source, language, (metadata or {}).get("magics_language"))

    @functools.lru_cache(maxsize=1024)
    def clean(text: str) -> str:
        return str(clean_html(text))

    def clean_html_remembered(element: Any) -> str:
        return clean(element.decode() if isinstance(element, bytes) else str(element))

    highlight_code.cache = highlight  # type: ignore[attr-defined]
    clean_html_remembered.cache = clean  # type: ignore[attr-defined]
    return {"highlight_code": highlight_code, "clean_html": clean_html_remembered}


def _exporter_log() -> logging.Logger:
    """nbconvert's logger for our exports, without its warning about every chart: the lab
    template writes no alt text, so nbconvert adds a generic one and warns on each run."""
    log = logging.getLogger("opsnb.export")
    log.addFilter(lambda record: not record.getMessage().startswith("Alternative text"))
    return log


def warm_up() -> None:
    """Import nbconvert and compile its templates by rendering an empty notebook."""
    global _warm
    import nbformat

    with _lock:
        if not _warm:
            _get_exporter().from_notebook_node(nbformat.v4.new_notebook())
            _warm = True


def to_html(nb: Any, path: Path, *, title: str) -> Path:
    import nbformat

    # The on-disk form splits multi-line strings into lists; reads() joins them again.
    node = nbformat.reads(json.dumps(nb), as_version=4) if isinstance(nb, dict) else nb
    with _lock:
        body, _ = _get_exporter().from_notebook_node(node, resources={"metadata": {"name": title}})
    body = _REMOTE_LINK.sub("", _REMOTE_SCRIPT.sub("", body))
    path.write_text(body, encoding="utf-8")
    return path
