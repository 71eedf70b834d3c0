"""What a runbook records, and how the record travels inside the notebook itself.

Checks, findings and actions are displayed as outputs carrying a JSON payload under an
opsnb MIME type next to an HTML and a text rendering. The executed notebook is therefore
the single source of truth: ``result.json`` is read back from its outputs, so the record is
the same whether the runbook ran under ``opsnb run``, plain papermill or JupyterLab, and a
partial notebook still yields a partial record.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from .vocabulary import CAUSES, CHECK_STATUSES, RECOMMENDATIONS, require

CHECK_MIME = "application/vnd.opsnb.check+json"
FINDING_MIME = "application/vnd.opsnb.finding+json"
ACTION_MIME = "application/vnd.opsnb.action+json"

_BADGE = {
    "ok": "#1a7f37", "warn": "#9a6700", "fail": "#cf222e", "unavailable": "#6e7781",
    "error": "#8250df",
}  # fmt: skip
_ICON = {"ok": "✅", "warn": "⚠️", "fail": "❌", "unavailable": "⛔", "error": "💥"}


def utcnow() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Check:
    name: str
    status: str
    detail: str = ""

    def __post_init__(self) -> None:
        require(self.status, CHECK_STATUSES, "check status")


@dataclass
class Finding:
    cause: str
    evidence: list[str]
    recommendation: str

    def __post_init__(self) -> None:
        require(self.cause, CAUSES, "cause")
        require(self.recommendation, RECOMMENDATIONS, "recommendation")


@dataclass
class Action:
    action: str
    target: str
    service: str
    object: str
    dry_run: bool
    outcome: str  # previewed | applied | refused | declined | unavailable | failed
    detail: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    at: str = field(default_factory=utcnow)
    by: str = ""
    mode: str = "manual"


def bundle(record: Check | Finding | Action) -> dict[str, Any]:
    """A display bundle: the JSON payload plus HTML and text for people."""
    payload = asdict(record)
    if isinstance(record, Check):
        color = _BADGE[record.status]
        text = f"{_ICON[record.status]} {record.name}: {record.status} {record.detail}".rstrip()
        markup = (
            f'<div class="opsnb-check"><span style="background:{color};color:#fff;'
            f'padding:1px 6px;border-radius:3px;font-weight:600">{record.status.upper()}</span> '
            f"<b>{html.escape(record.name)}</b> {html.escape(record.detail)}</div>"
        )
        return {CHECK_MIME: payload, "text/html": markup, "text/plain": text}
    if isinstance(record, Finding):
        items = "".join(f"<li>{html.escape(e)}</li>" for e in record.evidence)
        text = f"FINDING cause={record.cause} recommendation={record.recommendation}\n" + "\n".join(
            f"  - {e}" for e in record.evidence
        )
        markup = (
            '<div class="opsnb-finding" style="border-left:4px solid #0969da;padding:4px 10px">'
            f"<b>Finding:</b> <code>{record.cause}</code> &rarr; recommended "
            f"<code>{record.recommendation}</code><ul>{items}</ul></div>"
        )
        return {FINDING_MIME: payload, "text/html": markup, "text/plain": text}
    verb = "DRY RUN" if record.dry_run else "APPLIED"
    if record.outcome not in ("previewed", "applied"):
        verb = record.outcome.upper()
    text = f"[{verb}] {record.action} {record.object}: {record.detail}"
    markup = (
        '<div class="opsnb-action" style="border-left:4px solid #9a6700;padding:4px 10px">'
        f"<b>[{verb}]</b> <code>{html.escape(record.action)}</code> "
        f"{html.escape(record.object)}<br><small>{html.escape(record.detail)}</small></div>"
    )
    return {ACTION_MIME: payload, "text/html": markup, "text/plain": text}


def show(record: Check | Finding | Action) -> None:
    """Display a record as a cell output (inside a kernel) or print it (elsewhere)."""
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython is a dependency of ipykernel
        print(bundle(record)["text/plain"])
        return
    if get_ipython() is None:
        print(bundle(record)["text/plain"])
        return
    display(bundle(record), raw=True)


def scan(nb: Any) -> Iterator[tuple[int, str, dict[str, Any]]]:
    """Yield (cell index, mime type, payload) for every record in a notebook's outputs."""
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        for output in cell.get("outputs", []):
            data = output.get("data") or {}
            for mime in (CHECK_MIME, FINDING_MIME, ACTION_MIME):
                if mime in data:
                    yield index, mime, data[mime]
