"""Service level indicators and recent changes: error rate, latency, throughput, the pool."""

from __future__ import annotations

import contextlib
from typing import Any

import pandas as pd

from ...errors import BackendUnavailable
from .. import charts
from ..session import Runbook, first_breach, held, latest, ratio_to_baseline
from ._common import Marks, _display

# A ReplicaSet created this soon after its deployment is the deployment's first, not a rollout.
INITIAL_REPLICASET = pd.Timedelta(seconds=10)


def rollouts(rb: Runbook) -> list[tuple[Any, str]]:
    """Rollout history; a revision created inside the window becomes the prime suspect.
    Returns (time, label) marks for the charts."""
    marks: list[tuple[Any, str]] = []
    with rb.check("Rollouts in the window") as check:
        history = rb.k8s.rollout_history(rb.service.deployment)
        _display(history.tail(5))
        # Only the revision running now can be the cause, and only if its ReplicaSet is new:
        # the ReplicaSet made with the deployment is no rollout, and a rollback re-uses an old
        # ReplicaSet (a known-good template) whose creation time stays where it was. The first
        # ReplicaSet is the oldest one, if it is as old as the deployment: once
        # revisionHistoryLimit has pruned it, the oldest one left is a rollout like any other.
        oldest = history["created"] == history["created"].min()
        born = rb.k8s.deployment(rb.service.deployment).get("created")
        initial = oldest
        if pd.notna(born):
            initial = oldest & (history["created"] <= born + INITIAL_REPLICASET)
        changes = history[(history["created"] >= rb.start) & ~initial]
        marks = [(row.created, f"rev {row.revision}") for row in changes.itertuples()]
        current = history.sort_values("revision").iloc[-1] if not history.empty else None
        if current is None:
            check.warn("no rollout history")
        elif current.created < rb.start or bool(initial[current.name]):
            check.ok(
                f"current revision {current.revision} ({current.image}) dates from "
                f"{current.created:%Y-%m-%d %H:%M} UTC"
            )
        else:
            rb.facts.rollout_revision, rb.facts.rollout_at = int(current.revision), current.created
            check.warn(
                f"revision {current.revision} ({current.image}) rolled out at "
                f"{current.created:%H:%M} UTC"
            )
    return marks


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


def latency_distribution(rb: Runbook, marks: Marks = ()) -> None:
    """p50, p90 and p99 together against the SLO, and p99 by endpoint: is everything slow,
    or one endpoint?"""
    with rb.check("Latency distribution") as check:
        frames, missing = [], []
        for name, label in (("latency_p50", "p50"), ("latency_p90", "p90"), ("latency_p99", "p99")):
            try:
                frame = rb.prometheus.named_range(name, **rb.range_args())
            except BackendUnavailable:
                if name == "latency_p99":
                    raise  # without p99 there is nothing to compare
                missing.append(label)
                continue
            frames.append(frame.assign(quantile=label))
        both = pd.concat(frames, ignore_index=True)
        charts.series(both, title="Latency quantiles", by="quantile", seconds=True, rollouts=marks)
        with contextlib.suppress(BackendUnavailable):
            by_endpoint = rb.prometheus.named_range("latency_p99_by_endpoint", **rb.range_args())
            if not by_endpoint.empty:
                charts.series(by_endpoint, title="p99 latency by endpoint", by="endpoint",
                              seconds=True, rollouts=marks)  # fmt: skip
                last = by_endpoint.dropna(subset=["value"]).sort_values("timestamp")
                worst = last.groupby("endpoint")["value"].last().sort_values()
                if not worst.empty:
                    rb.facts.notes.append(
                        f"slowest endpoint {worst.index[-1]} ({worst.iloc[-1]:.2f} s)"
                    )
        p99 = latest(frames[-1])
        p50 = latest(frames[0]) if not missing or "p50" not in missing else None
        gaps = f" (not recorded: {', '.join(missing)})" if missing else ""
        if p99 is None:
            check.warn("no latency samples in the window")
        elif p50 is None:
            check.verdict(p99 >= rb.facts.latency_slo, f"p99 {p99 * 1000:.0f} ms{gaps}")
        else:
            tail = p99 / p50 if p50 > 0 else float("inf")
            check.verdict(
                p99 >= rb.facts.latency_slo,
                f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms ({tail:.0f}x p50){gaps}",
                warn=tail > 10,
            )


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
        # Waiting now means waiting through the newest samples: a single scrape that caught
        # a burst queued behind a paused process is not an exhausted pool.
        rb.facts.pool_waiting_now = held(frame[frame["state"] == "waiting"]) if len(
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


def resource_pressure(rb: Runbook, marks: Marks = ()) -> None:
    """CPU and memory per pod (`kubectl top pods`), where the cluster exports them."""
    with rb.check("CPU and memory per pod") as check:
        cpu = rb.prometheus.named_range("pod_cpu", **rb.range_args())
        memory = rb.prometheus.named_range("pod_memory", **rb.range_args())
        if cpu.empty and memory.empty:
            check.warn("no per-pod CPU or memory series (cAdvisor metrics are not scraped)")
            return
        if not cpu.empty:
            charts.series(cpu, title="CPU per pod (cores)", by="pod", rollouts=marks)
        if not memory.empty:
            charts.series(memory, title="Memory per pod (bytes)", by="pod", rollouts=marks)
        peak = cpu.groupby("pod")["value"].max() if not cpu.empty else pd.Series(dtype=float)
        check.ok(
            f"{len(peak)} pods; peak CPU {peak.max():.2f} cores" if len(peak) else "memory only"
        )
