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
from html.parser import HTMLParser
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
        _exporter = _page_exporter_class()(
            template_name="lab",
            log=_exporter_log(),
            filters=_remembering_filters(),
            # validate the notebook once, after all preprocessors, not after each of them
            optimistic_validation=True,
        )
    return _exporter


def _page_exporter_class() -> type:
    """nbconvert's HTML exporter, finishing its page without parsing it into a tree.

    ``HTMLExporter.from_notebook_node`` renders the template, then parses the whole page
    with BeautifulSoup only to add two attributes: a generic ``alt`` on images that have
    none, and ``tabindex="0"`` on cell inputs and outputs. A runbook's page has some 7,000
    tags (highlighted code, tables): that parse and the re-serialisation were two thirds of
    an export. Here the template's page is taken before that step, and the same attributes
    are written into the same start tags, found by the standard library's HTML tokenizer,
    the one BeautifulSoup's parser uses. The exporter's own set-up (filters, resources,
    widget state) stays nbconvert's: ``_TemplatePage`` sits between ``HTMLExporter`` and
    ``TemplateExporter`` in the method order, keeps the rendered page, and hands
    ``HTMLExporter`` an empty one to parse.
    """
    from nbconvert import HTMLExporter
    from nbconvert.exporters.templateexporter import TemplateExporter

    class _TemplatePage(TemplateExporter):
        rendered: str | None = None

        def from_notebook_node(self, nb: Any, resources: Any = None, **kw: Any) -> Any:
            html, resources = super().from_notebook_node(nb, resources, **kw)
            self.rendered = html
            return "", resources

    class PageExporter(HTMLExporter, _TemplatePage):
        def from_notebook_node(self, nb: Any, resources: Any = None, **kw: Any) -> Any:
            self.rendered = None
            _, resources = super().from_notebook_node(nb, resources, **kw)
            page, self.rendered = self.rendered, None
            if page is None:  # nbconvert no longer renders through TemplateExporter
                raise RuntimeError("nbconvert's HTMLExporter did not render a page")
            return finish_page(page), resources

    return PageExporter


# What HTMLExporter adds to the rendered page (nbconvert 7.x, from_notebook_node).
MISSING_ALT = "No description has been provided for this image"
FOCUSABLE = frozenset({"jp-Cell-inputWrapper", "jp-OutputArea-output"})  # divs in .jp-Notebook


class _StartTags(HTMLParser):
    """Where attributes go: into each start tag that needs one."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        # (line and column where the tag starts, how far into it the text goes, text)
        self.inserts: list[tuple[int, int, int, str]] = []
        self._in_notebook = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        classes = set(next((v or "" for n, v in attrs if n == "class"), "").split())
        if "jp-Notebook" in classes:
            self._in_notebook = True
        if tag == "img" and "alt" not in names:
            extra = f'alt="{MISSING_ALT}"'
        elif tag == "div" and self._in_notebook and classes & FOCUSABLE and "tabindex" not in names:
            extra = 'tabindex="0"'
        else:
            return
        raw = self.get_starttag_text() or ""
        # bs4 writes an added attribute last, before the ">" (or "/>")
        self.inserts.append((*self.getpos(), len(raw) - (2 if raw.endswith("/>") else 1), extra))


def finish_page(html: str) -> str:
    """Add what nbconvert's HTMLExporter adds to a rendered page: ``alt`` text on images
    without any, ``tabindex="0"`` on the notebook's cell inputs and outputs."""
    tags = _StartTags()
    tags.feed(html)
    tags.close()
    if not tags.inserts:
        return html
    line_starts = [0] + [m.end() for m in re.finditer("\n", html)]
    parts, done = [], 0
    for line, column, into, extra in tags.inserts:
        at = line_starts[line - 1] + column + into
        parts += [html[done:at], " ", extra]
        done = at
    parts.append(html[done:])
    return "".join(parts)


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
