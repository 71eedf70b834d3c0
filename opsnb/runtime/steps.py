"""Diagnosis steps shared by the runbooks: one check each, facts stored for the decision tree.

A runbook cell calls one step (``steps.error_rate(rb, marks)``) under a markdown cell that
says why it matters. Steps keep the runbooks short and make the same measurement mean the
same thing in every runbook; each records a check and, where it has one, draws a chart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from . import charts
from .session import Runbook, first_breach, latest, ratio_to_baseline

Marks = Sequence[tuple[Any, str]]


def _display(obj: Any) -> None:
    try:
        from IPython.display import display
    except ImportError:  # pragma: no cover
        print(obj)
        return
    display(obj)


# --- recent changes -------------------------------------------------------------------------


def rollouts(rb: Runbook) -> list[tuple[Any, str]]:
    """Rollout history; a revision created inside the window becomes the prime suspect.
    Returns (time, label) marks for the charts."""
    marks: list[tuple[Any, str]] = []
    with rb.check("Rollouts in the window") as check:
        history = rb.k8s.rollout_history(rb.service.deployment)
        _display(history.tail(5))
        recent = history[history["created"] >= rb.start]
        marks = [(row.created, f"rev {row.revision}") for row in recent.itertuples()]
        if recent.empty:
            current = history["revision"].max() if not history.empty else "none"
            check.ok(f"no rollout since {rb.start:%H:%M}; current revision {current}")
        else:
            newest = recent.iloc[-1]
            rb.facts.rollout_revision, rb.facts.rollout_at = int(newest.revision), newest.created
            check.warn(
                f"revision {newest.revision} ({newest.image}) rolled out at "
                f"{newest.created:%H:%M} UTC"
            )
    return marks


# --- service level indicators ---------------------------------------------------------------


def error_rate(rb: Runbook, marks: Marks = ()) -> pd.DataFrame | None:
    """The 5xx share against the alert threshold; when it first crossed it."""
    frame = None
    with rb.check("Error rate against the alert threshold") as check:
        frame = rb.prometheus.named_range("error_rate", **rb.range_args())
        rb.facts.error_rate = latest(frame)
        rb.facts.errors_began_at = first_breach(frame, rb.facts.error_threshold)
        charts.series(frame, title="Error rate (share of 5xx)", threshold=rb.facts.error_threshold,
                      threshold_label="alert threshold", percent=True, rollouts=marks)  # fmt: skip
        if rb.facts.error_rate is None:
            check.warn("no requests in the window")
        else:
            check.verdict(
                rb.facts.error_rate >= rb.facts.error_threshold,
                f"{rb.facts.error_rate:.2%} now (threshold {rb.facts.error_threshold:.2%})",
            )
    return frame


def latency(rb: Runbook, marks: Marks = ()) -> pd.DataFrame | None:
    """p99 latency against the SLO; when it first crossed it."""
    frame = None
    with rb.check("p99 latency against the SLO") as check:
        frame = rb.prometheus.named_range("latency_p99", **rb.range_args())
        rb.facts.latency_p99 = latest(frame)
        rb.facts.slow_since = first_breach(frame, rb.facts.latency_slo)
        charts.series(frame, title="p99 latency", threshold=rb.facts.latency_slo,
                      threshold_label="SLO", seconds=True, rollouts=marks)  # fmt: skip
        if rb.facts.latency_p99 is None:
            check.warn("no latency samples in the window")
        else:
            check.verdict(
                rb.facts.latency_p99 >= rb.facts.latency_slo,
                f"{rb.facts.latency_p99 * 1000:.0f} ms now "
                f"(SLO {rb.facts.latency_slo * 1000:.0f} ms)",
            )
    return frame


def availability(rb: Runbook, marks: Marks = ()) -> None:
    """Share of requests that did not fail, against the availability SLO."""
    with rb.check("Availability against the SLO") as check:
        frame = rb.prometheus.named_range("availability", **rb.range_args())
        target = rb.service.slo.get("availability", 0.999)
        now = latest(frame)
        rb.facts.availability = now
        charts.series(frame, title="Availability", percent=True, rollouts=marks)
        if now is None:
            check.warn("no requests in the window")
        else:
            check.verdict(now < target, f"{now:.3%} now (SLO {target:.1%})")


def throughput(rb: Runbook, marks: Marks = ()) -> None:
    """Requests per second against the start of the window: is this a traffic spike?"""
    with rb.check("Throughput against the start of the window") as check:
        frame = rb.prometheus.named_range("throughput", **rb.range_args())
        rb.facts.traffic_ratio = ratio_to_baseline(frame)
        charts.series(frame, title="Throughput (requests/s)", rollouts=marks)
        ratio = rb.facts.traffic_ratio
        check.verdict(
            False, "not enough samples" if ratio is None else f"{ratio:.1f}x the baseline",
            warn=ratio is not None and ratio >= 2,
        )  # fmt: skip


def pool(rb: Runbook, marks: Marks = ()) -> None:
    """The service's database connection pool by state: does anything wait?"""
    with rb.check("Database connection pool") as check:
        frame = rb.prometheus.named_range("pool", **rb.range_args())
        charts.series(frame, title="Connection pool by state", by="state", rollouts=marks)
        waiting = frame[frame["state"] == "waiting"]["value"] if not frame.empty else frame
        active = frame[frame["state"] == "active"]["value"] if not frame.empty else frame
        rb.facts.pool_waiting = float(waiting.max()) if len(waiting) else 0.0
        rb.facts.pool_active_peak = float(active.max()) if len(active) else None
        rb.facts.pool_waiting_now = latest(frame[frame["state"] == "waiting"]) if len(
            waiting) else 0.0  # fmt: skip
        check.verdict(
            rb.facts.pool_waiting > 0,
            f"peak waiting {rb.facts.pool_waiting:.0f}, "
            f"peak active {rb.facts.pool_active_peak or 0:.0f}",
        )


def errors_by_endpoint(rb: Runbook, marks: Marks = ()) -> None:
    """5xx per second by endpoint from the metrics: which endpoints fail."""
    with rb.check("5xx by endpoint (metrics)") as check:
        frame = rb.prometheus.named_range("errors_by_endpoint", **rb.range_args())
        charts.series(frame, title="5xx per second by endpoint", by="endpoint", rollouts=marks)
        if frame.empty:
            check.ok("no 5xx")
            return
        worst = frame.sort_values("timestamp").groupby("endpoint")["value"].last().sort_values()
        check.verdict(
            False, "no 5xx" if worst.iloc[-1] == 0
            else f"most failing: {worst.index[-1]} ({worst.iloc[-1]:.2f}/s)",
            warn=worst.iloc[-1] > 0,
        )  # fmt: skip


# --- logs -----------------------------------------------------------------------------------


def error_logs(rb: Runbook, marks: Marks = ()) -> Any:
    """Errors in the pod logs by type and endpoint, first seen, and per minute."""
    from ..backends import logs as logtools

    report = None
    with rb.check("Error log breakdown") as check:
        report = logtools.error_breakdown(rb.service_logs())
        _display(report.by_type)
        charts.bars(report.by_type, x="error", y="count", title="Errors by type")
        _display(report.by_endpoint)
        if not report.per_minute.empty:
            per_minute = report.per_minute.rename(
                columns={"minute": "timestamp", "errors": "value"}
            )
            charts.series(per_minute, title="Error log lines per minute", rollouts=marks)
        rb.facts.error_types = dict(
            zip(report.by_type["error"], report.by_type["count"], strict=False)
        )
        first = (
            f", first at {report.first_error:%H:%M:%S} UTC"
            if report.first_error is not None
            else ""
        )
        breaching = (
            rb.facts.error_rate is not None and rb.facts.error_rate >= rb.facts.error_threshold
        )
        check.verdict(
            report.error_lines > 0 and breaching,
            f"{report.error_lines} error lines of {report.total_lines}{first}",
            warn=report.error_lines > 0,
        )
    return report


# --- database, cache, dependencies, pods ----------------------------------------------------


def postgres_connections(rb: Runbook) -> None:
    """Connections by state against max_connections."""
    with rb.check("PostgreSQL connections") as check:
        rb.postgres.ping()
        states = rb.postgres.connections_by_state()
        _display(states)
        limit = rb.postgres.max_connections()
        used = int(states["count"].sum())
        rb.facts.db_connections_ratio = used / limit
        idle_tx = states[states["state"] == "idle in transaction"]["count"].sum()
        rb.facts.idle_in_transaction = int(idle_tx)
        check.verdict(
            used >= 0.95 * limit,
            f"{used} of max_connections {limit} in use; {int(idle_tx)} idle in transaction",
            warn=used >= 0.8 * limit or idle_tx > 0,
        )


def long_running_queries(rb: Runbook, min_seconds: float = 300) -> pd.DataFrame | None:
    """Queries and transactions running longer than ``min_seconds``."""
    slow = None
    with rb.check(f"Long-running queries (over {min_seconds:g} s)") as check:
        slow = rb.postgres.long_running_queries(min_seconds=min_seconds)
        _display(slow.head(10))
        rb.facts.long_queries = len(slow)
        check.verdict(False, f"{len(slow)} running longer than {min_seconds:g} s",
                      warn=not slow.empty)  # fmt: skip
    return slow


def redis_cache(rb: Runbook) -> None:
    """Redis answers, and how often the cache hits."""
    with rb.check("Redis cache") as check:
        rb.redis.ping()
        ratio = rb.redis.hit_ratio()
        rb.facts.cache_hit_ratio = ratio
        check.verdict(
            False, "no lookups yet" if ratio is None else f"hit ratio {ratio:.1%}",
            warn=ratio is not None and ratio < 0.8,
        )  # fmt: skip


def dependencies(rb: Runbook) -> None:
    """Each configured dependency's health endpoint."""
    for name in rb.dependencies():
        with rb.check(f"Dependency {name}") as check:
            probe = rb.probe_dependency(name)
            if probe["status"] != "ok":
                rb.facts.dependencies_down.append(name)
            check.verdict(probe["status"] != "ok", f"{probe['status']}: {probe.get('detail', '')}")


def pods(rb: Runbook) -> pd.DataFrame | None:
    """Pods of the service: ready, restarts, and why the last container ended."""
    frame = None
    with rb.check("Pods ready") as check:
        frame = rb.k8s.pods(rb.service.selector)
        _display(frame)
        ready = int(frame["ready"].sum()) if not frame.empty else 0
        restarts = int(frame["restarts"].sum()) if not frame.empty else 0
        rb.facts.restarts = restarts
        oom = frame[frame["last_state_reason"] == "OOMKilled"] if not frame.empty else frame
        rb.facts.oom_killed = [str(n) for n in oom["name"]] if len(oom) else []
        crashing = (
            frame[frame["waiting_reason"] == "CrashLoopBackOff"] if not frame.empty else frame
        )
        rb.facts.crash_looping = [str(n) for n in crashing["name"]] if len(crashing) else []
        detail = f"{ready}/{len(frame)} pods ready, {restarts} restarts"
        if rb.facts.oom_killed:
            detail += f"; OOMKilled: {', '.join(rb.facts.oom_killed)}"
        check.verdict(ready == 0 or bool(rb.facts.crash_looping), detail,
                      warn=ready < len(frame) or restarts > 0)  # fmt: skip
    return frame


def events(rb: Runbook, reason: str | None = None) -> pd.DataFrame | None:
    """Recent events in the namespace (warnings first to read)."""
    frame = None
    with rb.check(f"Events{' ' + reason if reason else ''}") as check:
        frame = rb.k8s.events(since=rb.start, reason=reason)
        _display(frame.tail(20))
        warnings = frame[frame["type"] == "Warning"] if not frame.empty else frame
        check.verdict(False, f"{len(frame)} events, {len(warnings)} warnings",
                      warn=len(warnings) > 0)  # fmt: skip
    return frame


# --- mitigation -----------------------------------------------------------------------------


def mitigate(rb: Runbook, finding: Any) -> None:
    """Stage (or, when applied, run) the recommended mitigation of ``finding``."""
    if finding.recommendation == "rollback":
        rb.rollback()
    elif finding.recommendation == "scale-up":
        with rb.check("Current replicas") as check:
            replicas = int(rb.k8s.deployment(rb.service.deployment)["replicas"])
            check.ok(f"{replicas} replicas")
            rb.scale(min(max(replicas * 2, replicas + 1), rb.target.policy.max_replicas))
    elif finding.recommendation == "enable-circuit-breaker":
        rb.set_env(CIRCUIT_BREAKER_ENABLED="true")
    else:
        print(f"No automated mitigation for {finding.cause!r}: follow the escalation below.")
