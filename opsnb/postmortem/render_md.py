"""The postmortem as Markdown: the editable source. Images are files next to it (relative
links), the timeline's gantt chart is mermaid source (and its image), free-text sections
carry their markers (see ``merge``)."""

from __future__ import annotations

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
)
from .merge import wrap


def cell(text: str) -> str:
    """A table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|") or " "


def fence(text: str, lang: str) -> str:
    ticks = "```"
    while ticks in text:
        ticks += "`"
    return f"{ticks}{lang}\n{text.rstrip()}\n{ticks}"


def render(document: Document) -> str:
    parts = [f"# {document.title}"]
    for block in document.blocks:
        parts.append(_block(block))
    return "\n\n".join(p for p in parts if p is not None).rstrip() + "\n"


def _block(block: object) -> str:
    if isinstance(block, Heading):
        return f"{'#' * block.level} {block.text}"
    if isinstance(block, Para):
        return block.text
    if isinstance(block, FreeText):
        return wrap(block)
    if isinstance(block, Fields):
        lines = []
        for label, value in block.items:
            text = wrap(value) if isinstance(value, FreeText) else value
            lines.append(f"**{label}**: {text}")
        return "  \n".join(lines)
    if isinstance(block, Table):
        head = "| " + " | ".join(cell(h) for h in block.header) + " |"
        rule = "|" + "|".join("---" for _ in block.header) + "|"
        rows = ["| " + " | ".join(cell(c) for c in row) + " |" for row in block.rows]
        return "\n".join([head, rule, *rows])
    if isinstance(block, Code):
        return fence(block.text, block.lang)
    if isinstance(block, Mermaid):
        return fence(block.source, "mermaid")
    if isinstance(block, Image):
        alt = cell(block.caption).replace("[", "(").replace("]", ")")
        return f"![{alt}]({block.path})  \n_{block.caption}_"
    if isinstance(block, Bullets):
        marks = [f"{i}." if block.ordered else "-" for i in range(1, len(block.items) + 1)]
        return "\n".join(f"{m} {item}" for m, item in zip(marks, block.items, strict=True))
    if isinstance(block, Rule):
        return "---"
    raise TypeError(f"unknown block {block!r}")
