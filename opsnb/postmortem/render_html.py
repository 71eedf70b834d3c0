"""The postmortem as one self-contained HTML page that opens offline: images embedded as
``data:`` URIs, styles inline, no script at all, nothing fetched from the network (an
image a person linked from the web in a free-text section becomes a plain link). The
gantt chart is its image; its mermaid source is shown under it for copying. Links to the
appendix's notebooks are relative, to the files next to the page."""

from __future__ import annotations

import base64
import html
import re
from typing import Any

from .document import (
    Bullets,
    Code,
    Document,
    Fields,
    FreeText,
    Heading,
    Image,
    Mermaid,
    Para,
    Rule,
    Table,
    slug,
)

CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;line-height:1.5;
color:#1f2328;max-width:1040px;margin:2em auto;padding:0 1.5em}
h1{border-bottom:1px solid #d0d7de;padding-bottom:.3em}
h2{border-bottom:1px solid #d0d7de;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}
th,td{border:1px solid #d0d7de;padding:4px 9px;text-align:left;vertical-align:top}
th{background:#f6f8fa}
code{background:#f6f8fa;padding:1px 4px;border-radius:4px;font-size:.9em}
pre{background:#f6f8fa;padding:10px;border-radius:6px;overflow-x:auto}
pre code{padding:0;background:none}
figure{margin:1em 0}
figure img{max-width:100%;border:1px solid #d0d7de;border-radius:4px}
figcaption{font-size:.85em;color:#57606a}
.free{border-left:4px solid #0969da;padding:.1em 1em;margin:.8em 0;background:#f6fbff}
.free-inline{border-bottom:2px solid #0969da}
nav{font-size:.9em;background:#f6f8fa;padding:.5em 1em;border-radius:6px}
nav a{margin-right:1em}
.task-list-item{list-style:none}
details summary{cursor:pointer;color:#57606a;font-size:.9em}
"""

_CODE = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*(.+?)\*\*")
_ITALIC = re.compile(r"(?<![\w*])_(.+?)_(?![\w*])")
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_REMOTE_IMG = re.compile(r"<img\s[^>]*src=\"(https?://[^\"]*)\"[^>]*?/?>", re.I)


def inline(text: str) -> str:
    """The inline subset of Markdown (code, bold, italic, links) as HTML, escaped."""
    codes: list[str] = []

    def keep(match: re.Match[str]) -> str:
        codes.append(f"<code>{html.escape(match[1])}</code>")
        return f"\x00{len(codes) - 1}\x00"

    out = html.escape(_CODE.sub(keep, text), quote=False)
    out = _LINK.sub(lambda m: f'<a href="{m[2].replace(chr(34), "&quot;")}">{m[1]}</a>', out)
    out = _BOLD.sub(r"<strong>\1</strong>", out)
    out = _ITALIC.sub(r"<em>\1</em>", out)
    return re.sub(r"\x00(\d+)\x00", lambda m: codes[int(m[1])], out)


def markdown(text: str) -> str:
    """What people wrote, as HTML: raw HTML escaped, remote images made into links."""
    try:
        import mistune
    except ImportError:  # pragma: no cover - nbconvert depends on mistune
        return f"<pre>{html.escape(text)}</pre>"
    render: Any = mistune.create_markdown(
        escape=True, plugins=["table", "strikethrough", "task_lists"]
    )
    body = str(render(text))
    return _REMOTE_IMG.sub(lambda m: f'<a href="{m[1]}">{html.escape(m[1])}</a>', body)


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render(document: Document) -> str:
    sections = [b for b in document.blocks if isinstance(b, Heading) and b.level == 2]
    nav = " ".join(f'<a href="#{slug(h.text)}">{html.escape(h.text)}</a>' for h in sections)
    body = "\n".join(_block(b) for b in document.blocks)
    title = html.escape(document.title)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{title}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"<h1>{title}</h1>\n<nav>{nav}</nav>\n{body}\n</body>\n</html>\n"
    )


def _block(block: object) -> str:
    if isinstance(block, Heading):
        level = min(max(block.level, 2), 6)
        return f'<h{level} id="{slug(block.text)}">{inline(block.text)}</h{level}>'
    if isinstance(block, Para):
        return f"<p>{inline(block.text)}</p>"
    if isinstance(block, FreeText):
        return f'<div class="free" data-free-text="{block.key}">{markdown(block.text)}</div>'
    if isinstance(block, Fields):
        lines = []
        for label, value in block.items:
            if isinstance(value, FreeText):
                shown = f'<span class="free-inline">{html.escape(value.text.strip())}</span>'
            else:
                shown = inline(value)
            lines.append(f"<strong>{html.escape(label)}</strong>: {shown}")
        return "<p>" + "<br>\n".join(lines) + "</p>"
    if isinstance(block, Table):
        head = "".join(f"<th>{inline(h)}</th>" for h in block.header)
        rows = "\n".join(
            "<tr>" + "".join(f"<td>{inline(c)}</td>" for c in row) + "</tr>" for row in block.rows
        )
        return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}\n</tbody>\n</table>"
    if isinstance(block, Code):
        return f"<pre><code>{html.escape(block.text)}</code></pre>"
    if isinstance(block, Mermaid):
        return (
            "<details><summary>mermaid source of this chart (renders in Markdown viewers "
            f"that support mermaid)</summary><pre><code>{html.escape(block.source)}"
            "</code></pre></details>"
        )
    if isinstance(block, Image):
        alt = html.escape(block.caption)
        return (
            f'<figure><img src="{data_uri(block.data)}" alt="{alt}">'
            f"<figcaption>{inline(block.caption)}</figcaption></figure>"
        )
    if isinstance(block, Bullets):
        tag = "ol" if block.ordered else "ul"
        items = "".join(f"<li>{inline(i)}</li>" for i in block.items)
        return f"<{tag}>{items}</{tag}>"
    if isinstance(block, Rule):
        return "<hr>"
    raise TypeError(f"unknown block {block!r}")
