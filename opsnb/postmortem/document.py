"""The postmortem as a list of blocks, rendered twice: Markdown (``render_md``) and one
self-contained HTML page (``render_html``). Text in blocks uses a small inline subset of
Markdown both renderers understand: ``**bold**``, ``_italic_``, `` `code` `` and
``[label](relative/path)``.

A :class:`FreeText` block is what people write (the executive summary, the five whys...):
its ``default`` is what opsnb proposes, its ``content`` what the merge with the previous
version kept (see ``merge``). Everything else is regenerated from the record every time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..incidents.model import duration_words


@dataclass
class Heading:
    level: int
    text: str
    anchor: str = ""


@dataclass
class Para:
    text: str


@dataclass
class FreeText:
    key: str
    default: str
    inline: bool = False
    content: str | None = None  # what people wrote (kept by the merge), else None

    @property
    def text(self) -> str:
        return self.default if self.content is None else self.content


@dataclass
class Fields:
    """``**Label**: value`` lines (the header); a value may be free text."""

    items: list[tuple[str, str | FreeText]]


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class Code:
    text: str
    lang: str = "text"


@dataclass
class Mermaid:
    source: str


@dataclass
class Image:
    path: str  # relative to the postmortem folder
    caption: str
    data: bytes


@dataclass
class Bullets:
    items: list[str]
    ordered: bool = False


@dataclass
class Rule:
    pass


Block = Heading | Para | FreeText | Fields | Table | Code | Mermaid | Image | Bullets | Rule


@dataclass
class Document:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> None:
        self.blocks.extend(blocks)

    def free_texts(self) -> Iterator[FreeText]:
        for block in self.blocks:
            if isinstance(block, FreeText):
                yield block
            elif isinstance(block, Fields):
                yield from (v for _, v in block.items if isinstance(v, FreeText))


# --- formatting ------------------------------------------------------------------------------


class Formatter:
    """Times, percentages and durations as the postmortem writes them: all times in UTC,
    ``HH:MM`` (``HH:MM:SS`` when ``seconds``), with the date when it is not ``day``."""

    def __init__(self, day: datetime, *, seconds: bool = False) -> None:
        self.day = day.date()
        self.seconds = seconds

    def time(self, moment: datetime | None) -> str:
        if moment is None:
            return "-"
        clock = moment.strftime("%H:%M:%S" if self.seconds else "%H:%M")
        return clock if moment.date() == self.day else f"{moment:%Y-%m-%d} {clock}"

    @staticmethod
    def pct(value: float | None, digits: int = 2) -> str:
        return "-" if value is None else f"{value * 100:.{digits}f}%"

    @staticmethod
    def ms(seconds: float | None) -> str:
        return "-" if seconds is None else f"{seconds * 1000:,.0f} ms"

    @staticmethod
    def count(value: float | None) -> str:
        return "-" if value is None else f"{round(value):,}"

    @staticmethod
    def minutes(value: float | None) -> str:
        return "-" if value is None else f"{value:,.1f} min"

    def duration(self, delta: timedelta | None) -> str:
        if delta is None:
            return "-"
        if delta < timedelta(0):
            return "-" + self.duration(-delta)
        if self.seconds and delta < timedelta(minutes=10):
            minutes, rest = divmod(int(delta.total_seconds()), 60)  # as the clock shows
            return f"{minutes} min {rest} s" if minutes else f"{rest} s"
        return duration_words(delta)


def slug(text: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in text.lower()).split())
