"""A self-contained HTML rendering of an executed notebook.

Charts are embedded as data URIs by nbconvert; scripts loaded from the network
(MathJax, require.js) are removed so the page opens offline and never calls out.
"""

from __future__ import annotations

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

        _exporter = HTMLExporter(template_name="lab", log=_exporter_log())
    return _exporter


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
