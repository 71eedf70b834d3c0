"""Keep what people wrote when a postmortem is generated again.

Free-text sections are marked in the Markdown::

    <!-- opsnb:free-text executive-summary sha=1f2e3d4c5b6a -->
    On January 15, 2025, ...
    <!-- /opsnb:free-text -->

``sha`` fingerprints the text opsnb proposed when it wrote the section. On regeneration a
section whose text still has that fingerprint was not edited and gets the new proposal (a
five-whys scaffold follows new findings); an edited section (or one without a fingerprint)
is kept word for word. Sections of the previous version that the new one no longer has are
returned as orphans, so nothing a person wrote is dropped. Everything outside the markers
is regenerated; the previous file is kept next to the new one (``.postmortem.previous.md``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from .document import Document, FreeText

OPEN = re.compile(
    r"<!-- opsnb:free-text (?P<key>[a-z0-9][a-z0-9-]*)(?: sha=(?P<sha>[0-9a-f]+))? -->"
)
CLOSE = "<!-- /opsnb:free-text -->"


@dataclass(frozen=True)
class Written:
    key: str
    content: str
    sha: str | None

    @property
    def edited(self) -> bool:
        return self.sha is None or fingerprint(self.content) != self.sha


def normalise(text: str) -> str:
    lines = text.replace("\r\n", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip("\n")


def fingerprint(text: str) -> str:
    return hashlib.sha256(normalise(text).encode()).hexdigest()[:12]


def wrap(block: FreeText) -> str:
    """The free text with its markers, as it goes into the Markdown."""
    head = f"<!-- opsnb:free-text {block.key} sha={fingerprint(block.default)} -->"
    if block.inline:
        return f"{head}{block.text.strip()}{CLOSE}"
    return f"{head}\n{normalise(block.text)}\n{CLOSE}"


def parse(markdown: str) -> tuple[dict[str, Written], list[str]]:
    """The marked sections of a postmortem's Markdown, and problems found (a section
    without its closing marker runs to the next opening marker)."""
    found: dict[str, Written] = {}
    problems: list[str] = []
    pos = 0
    while match := OPEN.search(markdown, pos):
        start = match.end()
        close = markdown.find(CLOSE, start)
        following = OPEN.search(markdown, start)
        if close < 0 or (following is not None and following.start() < close):
            end = following.start() if following is not None else len(markdown)
            problems.append(f"free-text section {match['key']!r} has no closing marker")
            pos = end
        else:
            end = close
            pos = close + len(CLOSE)
        content = normalise(markdown[start:end])
        if match["key"] in found:
            problems.append(f"free-text section {match['key']!r} appears twice; the first is kept")
            continue
        found[match["key"]] = Written(match["key"], content, match["sha"])
    return found, problems


def merge(document: Document, previous: str | None) -> tuple[list[Written], list[str]]:
    """Put the edited sections of ``previous`` (the last Markdown) into ``document``;
    return (orphans: edited sections the document no longer has, problems)."""
    if not previous:
        return [], []
    written, problems = parse(previous)
    keys = set()
    for block in document.free_texts():
        keys.add(block.key)
        old = written.get(block.key)
        if old is not None and old.edited:
            block.content = old.content
    orphans = [w for k, w in written.items() if k not in keys and w.edited and w.content]
    return orphans, problems
