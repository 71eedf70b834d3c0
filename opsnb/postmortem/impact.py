"""The figures of a postmortem, computed from the metrics and the timeline.

Impact (from the metrics of the incident window):

- **impact start**: the start of the error-rate breach (error rate above the SLO's error
  rate) that the first alert saw: the breach going on at the first alert (else at the
  opening), walked back to its first sample; when there was none then, the last breach
  that began before, else the first one after;
- **window**: from the impact start (the first alert, else the opening, when the metrics
  show no breach) to the resolution (the last event while the incident is open);
- **requests**: a sample at t is the mean rate over [t - rate window, t]. **Total
  requests** sum throughput x step over the samples in (start, end] moved by half a rate
  window (centred on the window: exact for steady traffic); **failed requests** sum error
  rate x throughput x step over the samples in (start, end + rate window] (before the start
  the error rate was within its SLO; a rate keeps counting an error for one window); the
  window's **availability** is 1 - failed / total;
- **peaks** (error rate, p99 latency, throughput, pool waiting) over [start, end];
- **error budget**: the availability SLO's 30-day budget, (1 - target) x 30 days (99.9% ->
  43.2 minutes); the incident consumed (failed / total) x the window's minutes; what remains
  assumes nothing else consumed the budget in those 30 days;
- **recovered**: the first sample after the window's last breach, when the error rate stays
  within its SLO up to the end of the window.

Detection and response (from the timeline): time to detect (impact start to the first
alert), to acknowledge (first alert, else the opening, to the acknowledgement, against the
severity's response target), to mitigate (impact start to the first applied action, else
the status ``mitigating``), to recover (to the recovery in the metrics), to resolve.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from ..backends.prometheus import duration_seconds
from ..incidents.timeline import Entry
from .gather import Gathered, Metrics

BUDGET_DAYS = 30


@dataclass(frozen=True)
class Point:
    value: float
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {"value": self.value, "at": _iso(self.at)}


@dataclass
class Impact:
    slo: dict[str, float]
    window_start: datetime
    window_end: datetime
    impact_start: datetime | None = None
    recovered_at: datetime | None = None
    failed_requests: float | None = None
    total_requests: float | None = None
    error_rate_peak: Point | None = None
    latency_peak: Point | None = None
    throughput_peak: Point | None = None
    throughput_baseline: float | None = None
    pool_waiting_peak: Point | None = None
    pool_active_peak: Point | None = None
    minutes_error_above_slo: float | None = None
    minutes_latency_above_slo: float | None = None
    problem: str | None = None  # why there are no figures from the metrics
    notes: list[str] = field(default_factory=list)  # caveats on the figures

    @property
    def duration(self) -> timedelta:
        return self.window_end - self.window_start

    @property
    def error_rate(self) -> float | None:
        if self.failed_requests is None or not self.total_requests:
            return None
        return self.failed_requests / self.total_requests

    @property
    def availability(self) -> float | None:
        rate = self.error_rate
        return None if rate is None else 1.0 - rate

    @property
    def budget_minutes(self) -> float | None:
        target = self.slo.get("availability")
        return None if target is None else (1.0 - target) * BUDGET_DAYS * 24 * 60

    @property
    def budget_consumed_minutes(self) -> float | None:
        rate = self.error_rate
        return None if rate is None else rate * self.duration.total_seconds() / 60

    @property
    def budget_remaining_minutes(self) -> float | None:
        budget, used = self.budget_minutes, self.budget_consumed_minutes
        return None if budget is None or used is None else budget - used

    @property
    def budget_consumed_share(self) -> float | None:
        budget, used = self.budget_minutes, self.budget_consumed_minutes
        return None if not budget or used is None else used / budget

    def to_dict(self) -> dict[str, Any]:
        points = (
            "error_rate_peak",
            "latency_peak",
            "throughput_peak",
            "pool_waiting_peak",
            "pool_active_peak",
        )
        out: dict[str, Any] = {
            "slo": dict(self.slo),
            "window_start": _iso(self.window_start),
            "window_end": _iso(self.window_end),
            "duration_seconds": self.duration.total_seconds(),
            "impact_start": _iso(self.impact_start),
            "recovered_at": _iso(self.recovered_at),
            "failed_requests": self.failed_requests,
            "total_requests": self.total_requests,
            "error_rate": self.error_rate,
            "availability": self.availability,
            "throughput_baseline": self.throughput_baseline,
            "minutes_error_above_slo": self.minutes_error_above_slo,
            "minutes_latency_above_slo": self.minutes_latency_above_slo,
            "budget_minutes": self.budget_minutes,
            "budget_consumed_minutes": self.budget_consumed_minutes,
            "budget_remaining_minutes": self.budget_remaining_minutes,
            "budget_consumed_share": self.budget_consumed_share,
            "problem": self.problem,
            "notes": list(self.notes),
        }
        for name in points:
            point = getattr(self, name)
            out[name] = point.to_dict() if point else None
        return out


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else pd.Timestamp(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def _peak(series: pd.Series | None, start: datetime, end: datetime) -> Point | None:
    if series is None:
        return None
    part = series[(series.index >= start) & (series.index <= end)].dropna()
    if part.empty:
        return None
    pos = int(np.argmax(part.to_numpy()))
    return Point(float(part.iloc[pos]), pd.Timestamp(part.index[pos]).to_pydatetime())


def breach_runs(series: pd.Series, limit: float) -> list[tuple[int, int]]:
    """(first, last) positions of the runs of samples above ``limit`` (NaN ends a run)."""
    above = np.nan_to_num(series.to_numpy(dtype="float64"), nan=-np.inf) > limit
    runs, start = [], None
    for i, flag in enumerate(above):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            runs.append((start, i - 1))
            start = None
    if start is not None:
        runs.append((start, len(above) - 1))
    return runs


def impact_start(
    series: pd.Series, limit: float, detected: datetime, end: datetime
) -> datetime | None:
    """Where the breach the first alert saw began (see the module doc)."""
    series = series[series.index <= end]
    runs = breach_runs(series, limit)
    if not runs:
        return None
    times = series.index
    before = [r for r in runs if times[r[0]] <= detected]
    if before:
        return pd.Timestamp(times[before[-1][0]]).to_pydatetime()
    return pd.Timestamp(times[runs[0][0]]).to_pydatetime()


def recovered(series: pd.Series, limit: float, start: datetime, end: datetime) -> datetime | None:
    part = series[(series.index >= start) & (series.index <= end)]
    runs = breach_runs(part, limit)
    if not runs or runs[-1][1] + 1 >= len(part):
        return None
    return pd.Timestamp(part.index[runs[-1][1] + 1]).to_pydatetime()


def compute_impact(gathered: Gathered) -> Impact:
    """The impact figures of the incident window (see the module doc)."""
    slo = dict(gathered.slo)
    detected, end = gathered.first_seen, gathered.end
    impact = Impact(slo, window_start=min(detected, end), window_end=end)
    metrics = gathered.metrics
    if metrics is None:
        impact.problem = gathered.metrics_problem or "no metrics"
        return impact
    errors = metrics.get("error_rate")
    if errors is None:
        impact.problem = f"the error rate has no samples in {metrics.source}"
        return impact
    limit = float(slo.get("error_rate", 0.001))
    start = impact_start(errors, limit, detected, end)
    if start is not None and start < end:
        impact.impact_start = impact.window_start = start
        impact.recovered_at = recovered(errors, limit, start, end)
    ws, we = impact.window_start, impact.window_end
    _totals(impact, metrics, ws, we)
    impact.error_rate_peak = _peak(errors, ws, we)
    impact.latency_peak = _peak(metrics.get("latency_p99"), ws, we)
    impact.throughput_peak = _peak(metrics.get("throughput"), ws, we)
    throughput = metrics.get("throughput")
    if throughput is not None:
        before = throughput[throughput.index < ws].dropna()
        impact.throughput_baseline = float(before.median()) if len(before) else None
    if metrics.pool is not None:
        for state, name in (("waiting", "pool_waiting_peak"), ("active", "pool_active_peak")):
            if state in metrics.pool.columns:
                setattr(impact, name, _peak(metrics.pool[state], ws, we))
    impact.minutes_error_above_slo = _minutes_above(errors, limit, ws, we, metrics)
    latency = metrics.get("latency_p99")
    if latency is not None and "latency_p99_seconds" in slo:
        impact.minutes_latency_above_slo = _minutes_above(
            latency, float(slo["latency_p99_seconds"]), ws, we, metrics
        )
    return impact


def _inside(series: pd.Series, start: datetime, end: datetime) -> pd.Series:
    """The samples in (start, end]: each one a rate over the interval before it."""
    return series[(series.index > start) & (series.index <= end)]


def rate_window(metrics: Metrics) -> timedelta:
    """The span each sample's rate is the mean over: a sample at t covers [t - window, t]."""
    try:
        return timedelta(seconds=duration_seconds(metrics.rate_window))
    except ValueError:
        return timedelta(0)


def _totals(impact: Impact, metrics: Metrics, start: datetime, end: datetime) -> None:
    """Total requests from the samples centred on the window (exact for steady traffic);
    failed requests from the window's samples and one rate window more (errors are within
    the SLO before the start, and a rate keeps counting an error for one window)."""
    errors, throughput = metrics.get("error_rate"), metrics.get("throughput")
    if errors is None or throughput is None:
        return
    both = pd.concat({"errors": errors, "rps": throughput}, axis=1).dropna()
    window = rate_window(metrics)
    centred = _inside(both, start + window / 2, end + window / 2)  # type: ignore[arg-type]
    extended = _inside(both, start, end + window)  # type: ignore[arg-type]
    if both.empty or both.index[-1] < end + window - timedelta(seconds=metrics.step_seconds):
        impact.notes.append(
            "the metrics stop before one rate window after the end of the incident window: "
            "failed and total requests count only what they hold"
        )
    step = metrics.step_seconds
    impact.total_requests = float((centred["rps"] * step).sum())
    impact.failed_requests = float((extended["rps"] * extended["errors"] * step).sum())


def _minutes_above(
    series: pd.Series, limit: float, start: datetime, end: datetime, metrics: Metrics
) -> float:
    part = _inside(series, start, end).dropna()
    return float((part > limit).sum() * metrics.step_seconds / 60)


# --- detection and response ------------------------------------------------------------------


@dataclass(frozen=True)
class Milestone:
    name: str  # "impact start", "first alert", ...
    at: datetime | None
    what: str  # in words: "HighErrorRate fired", "error rate above the 0.10% SLO"


@dataclass(frozen=True)
class Measure:
    name: str  # "Time to detect"
    start: Milestone
    end: Milestone
    target_minutes: int | None = None  # the severity's response target, when it has one

    @property
    def duration(self) -> timedelta | None:
        if self.start.at is None or self.end.at is None:
            return None
        return self.end.at - self.start.at

    @property
    def met(self) -> bool | None:
        if self.target_minutes is None or self.duration is None:
            return None
        return self.duration <= timedelta(minutes=self.target_minutes)

    def to_dict(self) -> dict[str, Any]:
        duration = self.duration
        return {
            "name": self.name,
            "from": {"name": self.start.name, "at": _iso(self.start.at), "what": self.start.what},
            "to": {"name": self.end.name, "at": _iso(self.end.at), "what": self.end.what},
            "seconds": None if duration is None else duration.total_seconds(),
            "target_minutes": self.target_minutes,
            "met": self.met,
        }


@dataclass
class Detection:
    milestones: dict[str, Milestone] = field(default_factory=dict)
    measures: list[Measure] = field(default_factory=list)
    alert: Entry | None = None  # the first alert, when there was one

    def measure(self, name: str) -> Measure | None:
        return next((m for m in self.measures if m.name == name), None)


def applied_actions(timeline: list[Entry]) -> list[Entry]:
    """Actions that changed something (not previews), in the order they happened."""
    return [
        e
        for e in timeline
        if e.kind == "action"
        and not e.event.data.get("dry_run")
        and str(e.event.data.get("outcome") or "applied") == "applied"
    ]


def compute_detection(gathered: Gathered, impact: Impact) -> Detection:
    inc, timeline = gathered.incident, gathered.entries
    found = Detection()
    alerts = [
        e
        for e in timeline
        if e.kind == "alert" and str(e.event.data.get("status") or "firing") == "firing"
    ]
    opened = next((e for e in timeline if e.kind == "opened"), None)
    limit = impact.slo.get("error_rate", 0.001)
    m = found.milestones
    m["impact"] = Milestone(
        "impact start", impact.impact_start, f"error rate first above the {limit:.2%} SLO"
    )
    if alerts:
        found.alert = alerts[0]
        name = alerts[0].event.data.get("name") or alerts[0].event.data.get("alertname")
        m["detected"] = Milestone("first alert", alerts[0].at, f"{name or 'alert'} fired")
    else:
        by = opened.event.by if opened else "?"
        m["detected"] = Milestone("incident opened", opened.at if opened else None, f"by {by}")
    ack = _time(inc.acknowledged_at)
    m["acknowledged"] = Milestone("acknowledged", ack, _ack_words(timeline, ack))
    applied = applied_actions(timeline)
    mitigating = [
        e for e in timeline if e.kind == "status" and e.event.data.get("to") == "mitigating"
    ]
    if applied:
        d = applied[0].event.data
        m["mitigated"] = Milestone(
            "mitigation applied", applied[0].at, f"{d.get('action')} {d.get('object')}"
        )
    elif mitigating:
        m["mitigated"] = Milestone("mitigating", mitigating[0].at, "status mitigating")
    else:
        m["mitigated"] = Milestone("mitigation", None, "no applied action recorded")
    m["recovered"] = Milestone(
        "recovered", impact.recovered_at, f"error rate back within the {limit:.2%} SLO"
    )
    m["resolved"] = Milestone("resolved", _time(inc.resolved_at), "incident resolved")
    start = m["impact"] if impact.impact_start else m["detected"]
    ack_target = inc.response(gathered.policy).acknowledge_minutes
    found.measures = [
        Measure("Time to detect", m["impact"], m["detected"]),
        Measure("Time to acknowledge", m["detected"], m["acknowledged"], ack_target),
        Measure("Time to mitigate", start, m["mitigated"]),
        Measure("Time to recover", start, m["recovered"]),
        Measure("Time to resolve", start, m["resolved"]),
    ]
    return found


def _time(value: str | None) -> datetime | None:
    return None if not value else pd.Timestamp(value).tz_convert("UTC").to_pydatetime()


def _ack_words(timeline: list[Entry], ack: datetime | None) -> str:
    for e in timeline:
        if e.event.at and ack is not None and abs((e.event.when - ack).total_seconds()) < 0.001:
            if e.kind == "assign":
                return f"incident commander {e.event.data.get('who')} assigned"
            if e.kind == "status":
                return f"status set by {e.event.by}"
    return "not acknowledged" if ack is None else "acknowledged"
