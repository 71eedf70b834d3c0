"""The postmortem's own charts as PNG bytes (matplotlib's Agg canvas: no pyplot state, no
display, whatever backend the process has):

    gantt_png(tasks)                 the timeline's four phases, the image twin of the mermaid
    sli_png(metrics, impact, marks)  error rate and p99 latency against their SLOs
    pool_png(metrics, impact, marks) the database connection pool by state

``marks`` are (time, label) pairs drawn as vertical lines: the first alert, the
mitigation, the resolution. Times are UTC.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from .gather import Metrics
from .impact import Impact
from .phases import SECTIONS, Task

COLOURS = {
    "Detection": "#cf222e",
    "Response": "#9a6700",
    "Mitigation": "#0969da",
    "Recovery": "#1a7f37",
}
Marks = list[tuple[datetime, str]]


def _times(frame: pd.Series | pd.DataFrame) -> Any:
    """Matplotlib's date numbers for the frame's UTC timestamps."""
    return mdates.date2num([pd.Timestamp(t).to_pydatetime() for t in frame.index])


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return buffer.getvalue()


def _time_axis(ax: Axes, span: timedelta) -> None:
    fmt = "%H:%M:%S" if span < timedelta(minutes=10) else "%H:%M"
    ax.xaxis.set_major_formatter(mdates.DateFormatter(fmt, tz=UTC))
    ax.xaxis.set_major_locator(mdates.AutoDateLocator(tz=UTC, maxticks=10))
    ax.set_xlabel("UTC")


def gantt_png(tasks: list[Task], *, title: str = "Incident timeline") -> bytes | None:
    """Bars and milestones per phase, one row per task, phases top to bottom."""
    if not tasks:
        return None
    fig = Figure(figsize=(9.5, 0.9 + 0.34 * len(tasks)))
    ax = fig.add_subplot(1, 1, 1)
    start = min(t.start for t in tasks)
    end = max(t.end for t in tasks)
    span = max(end - start, timedelta(seconds=60))
    for row, task in enumerate(tasks):
        colour = COLOURS.get(task.section, "#57606a")
        y = len(tasks) - 1 - row
        if task.milestone:
            ax.plot([mdates.date2num(task.start)], [y], marker="D", markersize=8, color=colour)
        else:
            left = mdates.date2num(task.start)
            # a bar of a few seconds in an hour's chart stays visible
            width = max(
                mdates.date2num(task.end) - left,
                mdates.date2num(end) - mdates.date2num(end - span * 0.006),
            )
            ax.barh(y, width, left=left, height=0.6, color=colour, alpha=0.85)
    ax.set_yticks(range(len(tasks)))
    ax.set_yticklabels([f"{t.name}" for t in reversed(tasks)], fontsize=8)
    margin = span * 0.03
    ax.set_xlim(mdates.date2num(start - margin), mdates.date2num(end + margin))
    _time_axis(ax, span)
    ax.grid(axis="x", alpha=0.3)
    handles = [
        Patch(color=COLOURS[s], label=s) for s in SECTIONS if any(t.section == s for t in tasks)
    ]
    ax.legend(handles=handles, loc="upper right", fontsize=8, frameon=False)
    ax.set_title(title, fontsize=10, loc="left")
    return _png(fig)


def display_range(metrics: Metrics, impact: Impact) -> tuple[datetime, datetime]:
    """The window with a margin on each side, within the fetched range."""
    lead = max(impact.duration * 0.25, timedelta(seconds=5 * metrics.step_seconds))
    return (
        max(metrics.start, impact.window_start - lead),
        min(metrics.end, impact.window_end + lead),
    )


def _marks(ax: Axes, marks: Marks, start: datetime, end: datetime) -> None:
    for at, label in marks:
        if start <= at <= end:
            ax.axvline(mdates.date2num(at), color="#57606a", linestyle=":", linewidth=1)
            ax.annotate(
                label,
                (mdates.date2num(at), 1.0),
                xycoords=("data", "axes fraction"),
                rotation=90,
                fontsize=7,
                va="top",
                ha="right",
                color="#57606a",
            )


def _window(ax: Axes, impact: Impact) -> None:
    ax.axvspan(
        mdates.date2num(impact.window_start),
        mdates.date2num(impact.window_end),
        color="#cf222e",
        alpha=0.06,
    )


def sli_png(metrics: Metrics, impact: Impact, marks: Marks) -> bytes | None:
    errors = metrics.get("error_rate")
    if errors is None:
        return None
    start, end = display_range(metrics, impact)
    latency = metrics.get("latency_p99")
    panels = 2 if latency is not None else 1
    fig = Figure(figsize=(9.5, 2.4 * panels + 0.4))
    ax = fig.add_subplot(panels, 1, 1)
    part = errors[(errors.index >= start) & (errors.index <= end)]
    ax.plot(_times(part), part.to_numpy() * 100, color="#cf222e", label="error rate")
    slo = impact.slo
    if "error_rate" in slo:
        ax.axhline(
            slo["error_rate"] * 100,
            color="#1a7f37",
            linestyle="--",
            label=f"SLO {slo['error_rate']:.2%}",
        )
    if "alert_error_rate" in slo:
        ax.axhline(
            slo["alert_error_rate"] * 100,
            color="#9a6700",
            linestyle="--",
            label=f"alert {slo['alert_error_rate']:.2%}",
        )
    ax.set_ylabel("error rate (%)")
    ax.set_title(
        f"Error rate of {metrics.service} (5xx share, rate over {metrics.rate_window})",
        fontsize=10,
        loc="left",
    )
    _window(ax, impact)
    _marks(ax, marks, start, end)
    ax.legend(fontsize=7, loc="upper left", frameon=False)
    _time_axis(ax, end - start)
    if latency is not None:
        ax2 = fig.add_subplot(panels, 1, 2, sharex=ax)
        part = latency[(latency.index >= start) & (latency.index <= end)]
        ax2.plot(_times(part), part.to_numpy() * 1000, color="#8250df", label="p99 latency")
        if "latency_p99_seconds" in slo:
            ax2.axhline(
                slo["latency_p99_seconds"] * 1000,
                color="#1a7f37",
                linestyle="--",
                label=f"SLO {slo['latency_p99_seconds'] * 1000:.0f} ms",
            )
        ax2.set_ylabel("p99 (ms)")
        ax2.set_title("p99 latency", fontsize=10, loc="left")
        _window(ax2, impact)
        _marks(ax2, marks, start, end)
        ax2.legend(fontsize=7, loc="upper left", frameon=False)
        _time_axis(ax2, end - start)
    fig.tight_layout()
    return _png(fig)


def pool_png(metrics: Metrics, impact: Impact, marks: Marks) -> bytes | None:
    pool = metrics.pool
    if pool is None or pool.empty:
        return None
    start, end = display_range(metrics, impact)
    part = pool[(pool.index >= start) & (pool.index <= end)]
    if part.empty:
        return None
    fig = Figure(figsize=(9.5, 2.6))
    ax = fig.add_subplot(1, 1, 1)
    colours = {"active": "#0969da", "idle": "#1a7f37", "waiting": "#cf222e"}
    for state in part.columns:
        ax.plot(
            _times(part),
            part[state].to_numpy(),
            label=state,
            color=colours.get(str(state), "#57606a"),
        )
    ax.set_ylabel("connections")
    ax.set_title(f"Database connection pool of {metrics.service}", fontsize=10, loc="left")
    _window(ax, impact)
    _marks(ax, marks, start, end)
    ax.legend(fontsize=7, loc="upper left", frameon=False)
    _time_axis(ax, end - start)
    fig.tight_layout()
    return _png(fig)
