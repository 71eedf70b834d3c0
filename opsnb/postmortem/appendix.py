"""The appendix: copies of the runs' notebooks, their charts as image files with captions,
the supporting data tables, and the playbook's checklists ticked from the record.

    copies = copy_runs(gathered.runs, out_dir)      # appendix/A1-<run>/ per attached run
    rows = data_rows(metrics, impact, moments)      # the template's "Error Rate During Incident"
    write_csv(metrics, out_dir / "data" / "metrics.csv")

Only a run's ``.ipynb`` and ``.html`` are copied (never its ``result.json``: a postmortem
folder is not a run folder). Images are the ``image/png`` outputs of the executed notebook,
captioned with the section they are in, the cell that drew them and the check that follows.
"""

from __future__ import annotations

import base64
import csv
import json
import re
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from ..incidents.timeline import Entry
from .gather import Gathered, Metrics, RunInfo
from .impact import Detection, Impact, applied_actions

NICE_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600)
CHECK_MIME = "application/vnd.opsnb.check+json"


@dataclass
class Figure:
    path: str  # relative to the postmortem folder
    caption: str
    data: bytes


@dataclass
class RunCopy:
    label: str  # A1, A2...
    run: RunInfo
    folder: str  # relative to the postmortem folder
    notebook: str | None = None
    html: str | None = None
    figures: list[Figure] = field(default_factory=list)
    problem: str | None = None


def copy_runs(runs: list[RunInfo], out_dir: Path) -> list[RunCopy]:
    """Copy each run's notebook and HTML into ``appendix/<label>-<run>/`` and extract its
    charts there as ``figure-NN.png``."""
    copies = []
    for i, run in enumerate(runs, 1):
        label = f"A{i}"
        folder = f"appendix/{label}-{run.name}"
        copy = RunCopy(label, run, folder, problem=run.problem)
        target = out_dir / folder
        notebook, html = run.file("notebook"), run.file("html")
        if notebook is None and html is None:
            copy.problem = copy.problem or f"no notebook or HTML left in {run.run_dir}"
            copies.append(copy)
            continue
        target.mkdir(parents=True, exist_ok=True)
        if html is not None:
            shutil.copyfile(html, target / html.name)
            copy.html = f"{folder}/{html.name}"
        if notebook is not None:
            shutil.copyfile(notebook, target / notebook.name)
            copy.notebook = f"{folder}/{notebook.name}"
            try:
                nb = json.loads(notebook.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                copy.problem = f"the notebook cannot be read: {exc}"
                nb = {}
            for n, (png, caption) in enumerate(figures(nb), 1):
                name = f"figure-{n:02d}.png"
                (target / name).write_bytes(png)
                where = f"{label}.{n}, {run.runbook}"
                copy.figures.append(Figure(f"{folder}/{name}", f"{where}: {caption}", png))
        copies.append(copy)
    return copies


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def figures(nb: dict[str, Any]) -> list[tuple[bytes, str]]:
    """(PNG bytes, caption) for each image output of an executed notebook."""
    found: list[tuple[bytes, str]] = []
    heading = ""
    for cell in nb.get("cells") or []:
        source = _text(cell.get("source"))
        if cell.get("cell_type") == "markdown":
            title = next(
                (ln.lstrip("#").strip() for ln in source.splitlines() if ln.startswith("#")), ""
            )
            heading = title or heading
            continue
        if cell.get("cell_type") != "code":
            continue
        first = next((ln.strip() for ln in source.splitlines() if ln.strip()), "")
        pending: list[int] = []
        for output in cell.get("outputs") or []:
            data = output.get("data") or {}
            if "image/png" in data:
                png = base64.b64decode(_text(data["image/png"]))
                words = (f"{heading}, " if heading else "") + f"`{first}`"
                found.append((png, words))
                pending.append(len(found) - 1)
            elif CHECK_MIME in data and pending:
                check = data[CHECK_MIME]
                note = f" ({check.get('name')}: {check.get('status')}, {check.get('detail')})"
                for index in pending:
                    png, words = found[index]
                    found[index] = (png, words + note)
                pending = []
    return found


# --- supporting data -------------------------------------------------------------------------


def sample_times(start: datetime, end: datetime, max_rows: int = 20) -> list[datetime]:
    """A regular grid of round times (every 1 s ... 6 h) with at most ``max_rows`` rows."""
    span = max((end - start).total_seconds(), 1.0)
    step = next((s for s in NICE_STEPS if span / s <= max_rows), NICE_STEPS[-1])
    first = (int(start.timestamp()) + step - 1) // step * step
    return [datetime.fromtimestamp(t, UTC) for t in range(first, int(end.timestamp()) + 1, step)]


def value_at(series: pd.Series | None, at: datetime, tolerance: float) -> float | None:
    """The newest sample at or before ``at`` within ``tolerance`` seconds, as Prometheus
    evaluates an instant query."""
    if series is None or series.empty:
        return None
    before = series[series.index <= at]
    if before.empty:
        return None
    when = before.index[-1]
    if (at - when.to_pydatetime()).total_seconds() > tolerance:
        return None
    value = float(before.iloc[-1])
    return None if value != value else value  # NaN


@dataclass(frozen=True)
class DataRow:
    at: datetime
    values: dict[str, float | None]
    note: str = ""  # what happened then ("first alert", "peak error rate")


def data_rows(
    metrics: Metrics, start: datetime, end: datetime, moments: dict[datetime, str]
) -> list[DataRow]:
    """The grid between ``start`` and ``end`` plus the key ``moments``, with every series'
    value at each time."""
    times = set(sample_times(start, end))
    times |= {t for t in moments if start <= t <= end}
    tolerance = max(2.0 * metrics.step_seconds, 1.0)
    pool = metrics.pool
    rows = []
    for at in sorted(times):
        values = {
            name: value_at(metrics.get(name), at, tolerance)
            for name in ("error_rate", "throughput", "latency_p99")
        }
        for state in ("active", "idle", "waiting"):
            series = pool[state] if pool is not None and state in pool.columns else None
            values[f"pool_{state}"] = value_at(series, at, tolerance)
        rows.append(DataRow(at, values, moments.get(at, "")))
    return rows


def write_csv(metrics: Metrics, path: Path) -> Path:
    """Every fetched sample, one row per time (the series side by side)."""
    columns: dict[str, pd.Series] = dict(metrics.series)
    if metrics.pool is not None:
        for state in metrics.pool.columns:
            columns[f"pool_{state}"] = metrics.pool[state]
    table = pd.concat(columns, axis=1).sort_index() if columns else pd.DataFrame()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["timestamp", *table.columns])
        for at, row in table.iterrows():
            stamp = pd.Timestamp(at).strftime("%Y-%m-%dT%H:%M:%SZ")  # type: ignore[arg-type]
            writer.writerow([stamp, *("" if v != v else repr(float(v)) for v in row)])
    return path


# --- checklists ------------------------------------------------------------------------------


def _item(done: bool, text: str, why: str = "") -> str:
    return f"- [{'x' if done else ' '}] {text}" + (f" ({why})" if done and why else "")


def _run_checks(gathered: Gathered, pattern: str) -> str:
    """The label of the first run with a check whose name matches ``pattern``."""
    for i, run in enumerate(gathered.runs, 1):
        names = [str(c.get("name", "")) for c in (run.result or {}).get("checks") or []]
        if any(re.search(pattern, n, re.I) for n in names):
            return f"run A{i}"
    return ""


def incident_checklist(gathered: Gathered, impact: Impact, detection: Detection) -> str:
    """The playbook's incident response checklist, ticked where the record shows it."""
    inc, timeline = gathered.incident, gathered.entries
    messages = [e for e in timeline if e.kind == "message"]
    status_page = any(
        e.event.data.get("status_page_id")
        or any(
            "status" in str(d.get("channel", "")) and d.get("ok")
            for d in e.event.data.get("deliveries") or []
        )
        for e in messages
    )
    found = [e for e in timeline if e.kind == "finding"]
    verified = impact.recovered_at is not None
    smoke = _verified_run(gathered)
    lines = [
        "**Detection (0-5 min)**",
        "",
        _item(inc.acknowledged_at is not None, "Alert acknowledged", _at(inc.acknowledged_at)),
        _item(True, "Severity assessed", f"opened as SEV-{_opening_severity(timeline)}"),
        _item(True, "Incident record created", inc.id),
        _item("ic" in inc.roles, "IC assigned", inc.roles.get("ic", "")),
        "",
        "**Investigation (5-30 min)**",
        "",
        _item(
            bool(c := _run_checks(gathered, r"error rate|latency|throughput")),
            "Dashboards checked",
            c,
        ),
        _item(bool(c := _run_checks(gathered, r"rollout|deploy")), "Recent changes reviewed", c),
        _item(bool(c := _run_checks(gathered, r"log")), "Logs analyzed", c),
        _item(bool(c := _run_checks(gathered, r"dependenc")), "Dependencies verified", c),
        "",
        "**Communication (Ongoing)**",
        "",
        _item(bool(messages), "#incidents updated", f"{len(messages)} messages recorded"),
        _item(status_page, "Status page updated", "a status page delivery"),
        _item(
            any(e.event.data.get("template") == "declared" for e in messages),
            "Stakeholders notified",
            "the declared message",
        ),
        "",
        "**Mitigation (15-60 min)**",
        "",
        _item(
            bool(found),
            "Mitigation strategy selected",
            f"{found[0].event.data.get('recommendation')}" if found else "",
        ),
        _item(
            bool(applied_actions(timeline)),
            "Changes implemented",
            detection.milestones["mitigated"].what,
        ),
        _item(
            verified or bool(smoke),
            "Fix verified",
            "error rate back within its SLO" if verified else smoke,
        ),
        "",
        "**Resolution**",
        "",
        _item(verified, "Service confirmed healthy", "metrics"),
        _item(bool(smoke), "Smoke tests passing", smoke),
        _item(inc.resolved_at is not None, "Incident closed", _at(inc.resolved_at)),
        _item(False, "Postmortem scheduled"),
    ]
    return "\n".join(lines)


def postmortem_checklist(gathered: Gathered, impact: Impact) -> str:
    items = gathered.incident.action_items
    ticketed = bool(items) and all(i.ticket for i in items)
    lines = [
        "**Before Meeting**",
        "",
        _item(True, "Timeline drafted", "generated from the incident's events"),
        _item(impact.problem is None, "Impact data collected", "from the metrics"),
        _item(False, "Participants invited"),
        _item(False, "Document shared for async input"),
        "",
        "**During Meeting**",
        "",
        *(
            _item(False, t)
            for t in (
                "Review timeline together",
                "Discuss root causes (5 whys)",
                "Identify what went well",
                "Identify improvements",
                "Assign action items",
            )
        ),
        "",
        "**After Meeting**",
        "",
        _item(False, "Document finalized"),
        _item(ticketed, "Action items ticketed", "every action item has a ticket"),
        _item(False, "Summary shared with org"),
        _item(False, "Follow-up meeting scheduled (if needed)"),
    ]
    return "\n".join(lines)


def _verified_run(gathered: Gathered) -> str:
    for i, run in enumerate(gathered.runs, 1):
        result = run.result or {}
        if result.get("runbook") == "verify-resolution" and result.get("status") == "ok":
            failed = [c for c in result.get("checks") or [] if c.get("status") == "fail"]
            if not failed:
                return f"run A{i}"
    return ""


def _opening_severity(timeline: list[Entry]) -> Any:
    opened = next((e for e in timeline if e.kind == "opened"), None)
    return opened.event.data.get("severity") if opened else "?"


def _at(value: str | None) -> str:
    if not value:
        return ""
    return pd.Timestamp(value).strftime("%H:%M:%S UTC")


def moments(impact: Impact, detection: Detection) -> dict[datetime, str]:
    """Key times for the data tables: impact start, peaks, alert, mitigation, recovery."""
    found: dict[datetime, list[str]] = {}

    def add(at: datetime | None, what: str) -> None:
        if at is not None:
            found.setdefault(pd.Timestamp(at).floor("s").to_pydatetime(), []).append(what)

    add(impact.impact_start, "impact starts")
    add(detection.milestones["detected"].at, detection.milestones["detected"].name)
    add(impact.error_rate_peak.at if impact.error_rate_peak else None, "peak error rate")
    add(detection.milestones["mitigated"].at, detection.milestones["mitigated"].name)
    add(impact.recovered_at, "error rate within SLO")
    add(detection.milestones["resolved"].at, "resolved")
    return {at: ", ".join(what) for at, what in found.items()}


def lead(impact: Impact, metrics: Metrics) -> timedelta:
    return max(impact.duration * 0.25, timedelta(seconds=5 * metrics.step_seconds))
