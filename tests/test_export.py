"""The HTML export: nbconvert's lab rendering, offline, and the same page on every run."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from PIL import Image

from opsnb.engine import export


def png() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (4, 3), "red").save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode()


def executed(run: int) -> nbformat.NotebookNode:
    """A small executed runbook: the cells are the same on every run, the outputs not."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["language_info"] = {"name": "python", "pygments_lexer": "ipython3"}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Checks\n\nThe pool, **by state**."),
        nbformat.v4.new_code_cell("steps.pool(rb, marks)  # the <b>pool</b>\nprint('done')"),
        nbformat.v4.new_code_cell("%%bash\necho hello"),
    ]
    nb.cells[1].outputs = [
        nbformat.v4.new_output("display_data", {"image/png": png(), "text/plain": "<Figure>"}),
        nbformat.v4.new_output(
            "display_data",
            {
                "text/html": f"<table><tr><td>run {run}</td></tr></table>",
                "text/plain": f"run {run}",
            },
        ),  # fmt: skip
        nbformat.v4.new_output("stream", name="stdout", text=f"done {run}\n"),
    ]
    return nb


def plain_nbconvert(nb: nbformat.NotebookNode) -> str:
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(
        nb, resources={"metadata": {"name": "t"}}
    )
    return export._REMOTE_LINK.sub("", export._REMOTE_SCRIPT.sub("", body))


def test_the_page_is_nbconverts_and_repeated_cells_are_rendered_once(tmp_path: Path) -> None:
    filters = export._get_exporter().filters
    highlighted, cleaned = filters["highlight_code"].cache, filters["clean_html"].cache
    for run in (1, 2):
        nb = executed(run)
        page = export.to_html(json.loads(nbformat.writes(nb)), tmp_path / f"{run}.html", title="t")
        html = page.read_text()
        assert html == plain_nbconvert(nb)  # remembering changes nothing on the page
        assert f"run {run}</td>" in html and "data:image/png;base64," in html
        assert "&lt;b&gt;pool&lt;/b&gt;" in html  # code is still escaped, run after run
        assert not export._REMOTE_SCRIPT.search(html) and not export._REMOTE_LINK.search(html)
    # the second run's code cells came from what the first run rendered
    assert highlighted.cache_info().hits >= 2
    assert cleaned.cache_info().hits >= 2


def test_markdown_from_parameters_cannot_add_markup_to_the_page(tmp_path: Path) -> None:
    """A maintenance reason typed by the operator (or anything measured) is shown as text."""
    from opsnb.runtime.show import without_html

    reason = "DB upgrade <img src=x onerror=alert(1)> & <script>alert(2)</script>"
    nb = executed(1)
    nb.cells[1].outputs = [
        nbformat.v4.new_output(
            "display_data",
            {"text/markdown": without_html(f"**Reason**: {reason}"), "text/plain": reason},
        )
    ]
    html = export.to_html(json.loads(nbformat.writes(nb)), tmp_path / "m.html", title="t")
    page = html.read_text()
    assert "<strong>Reason</strong>: DB upgrade &lt;img" in page
    assert 'onerror="' not in page and "<script>alert(2)" not in page  # no element made
