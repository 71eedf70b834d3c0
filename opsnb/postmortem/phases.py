"""The timeline as people read it in a postmortem: a table of rows and a gantt chart of the
four phases (detection, response, mitigation, recovery), as mermaid source.

Rows are the incident's events in the order they happened (corrections applied; the
corrections themselves and action-item notes, which have their own table, are left out),
plus what the metrics show: when the impact began, the peak, when the error rate came back
within its SLO (marked "metrics").

Phases, from the events and the metrics:

- **Detection**: the impact before anyone knew (impact start to the first alert) and the
  first alert (or the opening);
- **Response**: acknowledging, the incident declared, the diagnosis runs, the root cause
  identified (status ``identified``);
- **Mitigation**: from the first applied action (or the status ``mitigating``) to the
  recovery in the metrics, with each applied action, and runs that applied something;
- **Recovery**: verification, from the recovery to the resolution, and the resolution.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..incidents.timeline import Entry, describe
from .gather import Gathered
from .impact import Detection, Impact, applied_actions

SECTIONS = ("Detection", "Response", "Mitigation", "Recovery")


@dataclass(frozen=True)
class Row:
    at: datetime
    text: str
    by: str
    kind: str  # the event kind, or "metrics"
    ref: str = ""  # the event id (and its corrections)


@dataclass(frozen=True)
class Task:
    section: str
    name: str
    start: datetime
    end: datetime
    milestone: bool = False


def run_labels(gathered: Gathered) -> dict[str, str]:
    """run folder -> its appendix label (A1, A2...), in the order the runs were attached."""
    return {str(run.run_dir): f"A{i}" for i, run in enumerate(gathered.runs, 1)}


def timeline_rows(gathered: Gathered, impact: Impact) -> list[Row]:
    labels = run_labels(gathered)
    rows: list[tuple[datetime, int, Row]] = []
    for order, entry in enumerate(gathered.entries):
        data = entry.event.data
        if entry.kind == "correction" or (entry.kind == "note" and data.get("action_item")):
            continue
        ref = entry.id + (
            f" (corrected: {', '.join(entry.corrected_by)})" if entry.corrected_by else ""
        )
        text = event_text(entry, labels)
        rows.append((entry.at, order, Row(entry.at, text, entry.event.by, entry.kind, ref)))
    limit = impact.slo.get("error_rate", 0.001)
    metric_rows = []
    if impact.impact_start is not None:
        metric_rows.append(
            (impact.impact_start, f"Impact begins: error rate above the {limit:.2%} SLO")
        )
    if impact.error_rate_peak is not None and impact.impact_start is not None:
        peak = impact.error_rate_peak
        metric_rows.append((peak.at, f"Peak error rate: {peak.value:.2%}"))
    if impact.recovered_at is not None:
        metric_rows.append((impact.recovered_at, f"Error rate back within the {limit:.2%} SLO"))
    for at, text in metric_rows:
        rows.append((at, -1, Row(at, text, "metrics", "metrics")))
    return [row for _, _, row in sorted(rows, key=lambda r: (r[0], r[1]))]


def event_text(entry: Entry, labels: dict[str, str] | None = None) -> str:
    """One line for an event in the postmortem's words (``describe`` for the rest)."""
    d: dict[str, Any] = entry.event.data
    kind = entry.kind
    if kind == "opened":
        where = str(d.get("service")) + (f" on {d['target']}" if d.get("target") else "")
        return f"Incident opened: SEV-{d.get('severity')} {d.get('title')} ({where})"
    if kind == "alert":
        name = d.get("name") or d.get("alertname") or "alert"
        summary = (d.get("annotations") or {}).get("summary") or d.get("summary")
        status = str(d.get("status") or "firing")
        return f"Alert `{name}` {status}" + (f": {summary}" if summary else "")
    if kind == "run":
        return _run_text(d, (labels or {}).get(str(d.get("run_dir")), ""))
    if kind == "finding":
        evidence = "; ".join(str(e) for e in (d.get("evidence") or [])[:2])
        return f"Finding of `{d.get('runbook')}`: {d.get('cause')} -> {d.get('recommendation')}" + (
            f" ({evidence})" if evidence else ""
        )
    if kind == "action":
        return action_text(d)
    if kind == "status":
        summary = f": {d['summary']}" if d.get("summary") else ""
        if d.get("to") == "resolved":
            return f"Incident resolved{summary}"
        if d.get("from") == d.get("to"):
            return f"Acknowledged (status {d.get('to')}){summary}"
        return f"Status {d.get('from')} -> {d.get('to')}{summary}"
    if kind == "message":
        lines = str(d.get("text") or "").strip().splitlines()
        return describe(entry.event).capitalize() + (f" ({lines[0]})" if lines else "")
    text = entry.text
    return text[:1].upper() + text[1:]


def action_text(d: dict[str, Any]) -> str:
    outcome = str(d.get("outcome") or ("previewed" if d.get("dry_run") else "applied"))
    mode = " (dry run)" if d.get("dry_run") and outcome != "previewed" else ""
    taken = ", taken, from the record" if d.get("from_record") else ""
    detail = f": {d['detail']}" if d.get("detail") else ""
    return f"Action {d.get('action')} {d.get('object')}: {outcome}{mode}{taken}{detail}"


def _run_text(d: dict[str, Any], label: str) -> str:
    checks = d.get("checks") or {}
    counts = ", ".join(f"{n} {s}" for s, n in sorted(checks.items()) if n)
    where = f"{d.get('target')}/{d.get('service')}"
    see = f" (appendix {label})" if label else ""
    return (
        f"Runbook `{d.get('runbook')}` on {where}: {d.get('status')}"
        + (f" ({counts})" if counts else "")
        + see
    )


# --- phases -----------------------------------------------------------------------------------


def gantt_tasks(gathered: Gathered, impact: Impact, detection: Detection) -> list[Task]:
    timeline = gathered.entries
    m = detection.milestones
    tasks: list[Task] = []

    def add(section: str, name: str, start: datetime | None, end: datetime | None) -> None:
        if start is None:
            return
        end = start if end is None or end < start else end
        tasks.append(Task(section, name, start, end, milestone=end == start))

    detected = m["detected"].at
    if impact.impact_start is not None and detected is not None:
        add("Detection", "Impact before detection", impact.impact_start, detected)
    add("Detection", m["detected"].what if detection.alert else "Incident opened", detected, None)

    opened = next((e for e in timeline if e.kind == "opened"), None)
    if m["acknowledged"].at is not None and detected is not None:
        add("Response", "Acknowledge", min(detected, m["acknowledged"].at), m["acknowledged"].at)
    declared = [
        e for e in timeline if e.kind == "message" and e.event.data.get("template") == "declared"
    ]
    if declared:
        add("Response", "Incident declared", declared[0].at, None)
    elif opened is not None and detection.alert is not None and opened.at != detected:
        add("Response", "Incident declared", opened.at, None)
    applied_runs = {str(e.event.data.get("run_dir")) for e in applied_actions(timeline)}
    for entry in timeline:
        d = entry.event.data
        if entry.kind == "run":
            seconds = _run_seconds(gathered, str(d.get("run_dir")))
            section = "Mitigation" if str(d.get("run_dir")) in applied_runs else "Response"
            name = f"Runbook {d.get('runbook')}" + (" (apply)" if section == "Mitigation" else "")
            add(section, name, entry.at, entry.at + timedelta(seconds=seconds))
        elif entry.kind == "status" and d.get("to") == "identified":
            add("Response", "Root cause identified", entry.at, None)

    mitigated, recovered, resolved = m["mitigated"].at, m["recovered"].at, m["resolved"].at
    if mitigated is not None:
        add("Mitigation", "Mitigating", mitigated, recovered or resolved)
    for entry in applied_actions(timeline):
        d = entry.event.data
        add("Mitigation", f"{d.get('action')} {d.get('object')}", entry.at, None)
    verify_from = recovered or (applied_actions(timeline)[-1].at if mitigated else None)
    if verify_from is not None and resolved is not None:
        add("Recovery", "Verification", verify_from, resolved)
    add("Recovery", "Incident resolved", resolved, None)
    order = {s: i for i, s in enumerate(SECTIONS)}
    return sorted(tasks, key=lambda t: (order[t.section], t.start, t.end))


def _run_seconds(gathered: Gathered, run_dir: str) -> float:
    for run in gathered.runs:
        if str(run.run_dir) == run_dir and run.result:
            return float(run.result.get("duration_seconds") or 0)
    return 0.0


def _name(text: str) -> str:
    """A task name mermaid can parse: no colons, semicolons or hashes."""
    return re.sub(r"\s+", " ", re.sub(r"[:;#]", " ", text)).strip() or "event"


def precision(moments: list[datetime]) -> str:
    """``seconds`` when any moment has seconds, else ``minutes``."""
    return "seconds" if any(m.second or m.microsecond for m in moments) else "minutes"


def mermaid(tasks: list[Task], *, title: str = "Incident Timeline (UTC)") -> str:
    """The gantt chart's mermaid source (times in UTC)."""
    if not tasks:
        return ""
    days = {t.start.date() for t in tasks} | {t.end.date() for t in tasks}
    with_seconds = precision([t.start for t in tasks] + [t.end for t in tasks]) == "seconds"
    span = max(t.end for t in tasks) - min(t.start for t in tasks)
    fmt = ("%Y-%m-%d " if len(days) > 1 else "") + "%H:%M" + (":%S" if with_seconds else "")
    date_format = (
        ("YYYY-MM-DD " if len(days) > 1 else "") + "HH:mm" + (":ss" if with_seconds else "")
    )
    axis = "%H:%M:%S" if span < timedelta(minutes=10) else "%H:%M"
    lines = [
        "gantt",
        f"    title {title}",
        f"    dateFormat {date_format}",
        f"    axisFormat {axis}",
    ]
    section = None
    for i, task in enumerate(tasks, 1):
        if task.section != section:
            section = task.section
            lines += ["", f"    section {section}"]
        start, name = task.start.strftime(fmt), _name(task.name)
        if task.milestone:
            lines.append(f"    {name} :milestone, t{i}, {start}, 0m")
        else:
            lines.append(f"    {name} :t{i}, {start}, {task.end.strftime(fmt)}")
    return "\n".join(lines) + "\n"
