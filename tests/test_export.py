"""The HTML export: nbconvert's lab rendering, offline, and the same page on every run."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import nbformat
from bs4 import BeautifulSoup
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
    return str(body)


def assert_nbconverts_page(nb: nbformat.NotebookNode) -> str:
    """opsnb's page is nbconvert's: the same document once parsed as nbconvert parses it
    (nbconvert's HTMLExporter writes its page out from a BeautifulSoup tree)."""
    ours, _ = export._get_exporter().from_notebook_node(nb, resources={"metadata": {"name": "t"}})
    assert str(BeautifulSoup(ours, features="html.parser")) == plain_nbconvert(nb)
    return str(ours)


def test_the_page_is_nbconverts_and_repeated_cells_are_rendered_once(tmp_path: Path) -> None:
    filters = export._get_exporter().filters
    highlighted, cleaned = filters["highlight_code"].cache, filters["clean_html"].cache
    for run in (1, 2):
        nb = executed(run)
        assert_nbconverts_page(nb)  # remembering and the page's finish change nothing
        page = export.to_html(json.loads(nbformat.writes(nb)), tmp_path / f"{run}.html", title="t")
        html = page.read_text()
        assert f"run {run}</td>" in html and "data:image/png;base64," in html
        assert f'alt="{export.MISSING_ALT}"' in html
        assert html.count('tabindex="0"') == 6  # 3 inputs, 3 outputs
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


def test_the_page_gets_nbconverts_attributes_where_nbconvert_puts_them() -> None:
    """Images without alt text, cell inputs and outputs: found as a parser finds them, not
    in scripts, comments or attribute values, in tags that span lines or close with "/>"."""
    html_output = "\n".join(
        [
            '<img src="a.png">',
            '<img alt="" src="b.png"/>',
            '<img\nsrc="c.png"\nclass="x"\n>',
            "<!-- <img src='in-a-comment.png'> -->",
            "<script>var s = '<div class=\"jp-OutputArea-output\"><img src=d>';</script>",
            '<div title="a > b" class="jp-OutputArea-output extra">nested output</div>',
            '<p data-note="<img src=e>">text</p>',
        ]
    )
    nb = executed(1)
    nb.cells[1].outputs.append(
        nbformat.v4.new_output("display_data", {"text/html": html_output, "text/plain": "x"})
    )
    page = assert_nbconverts_page(nb)
    assert "<!-- <img src='in-a-comment.png'> -->" in page
    assert '<div class="jp-OutputArea-output"><img src=d>\';' in page
    assert '<img alt="" src="b.png"/>' in page


def test_a_page_without_images_or_cells_is_left_as_it_is() -> None:
    html = "<html><body><p>nothing to add</p></body></html>"
    assert export.finish_page(html) == html
