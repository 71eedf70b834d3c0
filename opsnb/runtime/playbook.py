"""Steps of the incident playbook's runbooks: ``severity-check`` (the quick severity
assessment), ``investigate`` (the comprehensive investigation) and ``verify-resolution``
(the resolution verification).

Like ``opsnb.runtime.steps``, each step records one check (or a few) and stores what it
measured: plain facts for the decision tree in ``rb.facts``, and what only these runbooks
need (replicas, alerts, the severity) in :func:`measured`.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import pandas as pd

from .. import severity as sev
from ..backends import logs as logtools
from ..records import Finding
from . import charts, steps
from .decide import decide
from .session import Runbook, first_breach, latest
from .show import display as _display
from .show import markdown as _markdown


@dataclass
class Measured:
    """What the playbook's steps measured, beyond ``rb.facts``; None means not measured."""

    desired_pods: int | None = None
    ready_pods: int | None = None
    updated_pods: int | None = None
    firing_alerts: list[str] | None = None
    slo_period_availability: float | None = None
    classification: sev.Classification | None = None
    verification: list[str] = field(default_factory=list)  # names of the verification checks


_MEASURED: weakref.WeakKeyDictionary[Runbook, Measured] = weakref.WeakKeyDictionary()


def measured(rb: Runbook) -> Measured:
    """This session's playbook measurements."""
    if rb not in _MEASURED:
        _MEASURED[rb] = Measured()
    return _MEASURED[rb]


def _slo(rb: Runbook, key: str, default: float) -> float:
    return float(rb.service.slo.get(key, default))


# --- Kubernetes -----------------------------------------------------------------------------


def deployment_status(rb: Runbook) -> dict[str, Any] | None:
    """``kubectl get deployment -o wide``: desired, ready, updated and available replicas,
    revision and image."""
    summary = None
    with rb.check("Deployment status") as check:
        summary = rb.k8s.deployment(rb.service.deployment)
        row = {k: summary.get(k) for k in ("name", "replicas", "ready", "updated", "available",
                                           "revision", "image")}  # fmt: skip
        _display(pd.DataFrame([row]))
        conditions = pd.DataFrame(summary.get("conditions") or [])
        if not conditions.empty:
            _display(conditions)
        m = measured(rb)
        m.desired_pods, m.ready_pods = int(summary["replicas"]), int(summary["ready"])
        m.updated_pods = int(summary["updated"])
        detail = (
            f"{m.ready_pods}/{m.desired_pods} ready, {m.updated_pods} up to date, "
            f"revision {summary.get('revision')} ({summary.get('image')})"
        )
        check.verdict(
            m.ready_pods == 0 and m.desired_pods > 0, detail,
            warn=m.ready_pods < m.desired_pods or m.updated_pods < m.desired_pods,
        )  # fmt: skip
    return summary


def recent_errors(rb: Runbook, minutes: int = 10, lines: int = 20) -> pd.DataFrame | None:
    """``kubectl logs -l app=... --since=10m | grep -i error | tail -20``: the newest error
    lines of every pod of the service."""
    recent = None
    with rb.check(f"Errors in the logs, last {minutes} min") as check:
        frame = rb.service_logs()
        since = rb.now - pd.Timedelta(minutes=minutes)
        errors = frame[frame["level"].isin(logtools.ERROR_LEVELS) & (frame["time"] >= since)]
        columns = [c for c in ("time", "pod", "level", "endpoint", "status", "error")
                   if c in errors.columns]  # fmt: skip
        recent = errors[columns].tail(lines).reset_index(drop=True)
        _display(recent)
        if errors.empty:
            check.ok(f"no error lines since {since:%H:%M} UTC")
            return recent
        kinds = errors["error"].fillna("(no error field)").value_counts()
        top = ", ".join(f"{k} x{v}" for k, v in kinds.head(3).items())
        check.verdict(rb.facts.erroring, f"{len(errors)} error lines since {since:%H:%M} UTC: "
                      f"{top}", warn=True)  # fmt: skip
    return recent


# --- alerts and SLOs ------------------------------------------------------------------------


def _about_service(labels: dict[str, Any], rb: Runbook) -> bool:
    service, deployment = rb.service.name, rb.service.deployment
    return (
        labels.get("service") == service
        or labels.get("app") == service
        or labels.get("deployment") == deployment
        or str(labels.get("pod", "")).startswith(f"{deployment}-")
    )


def firing_alerts(rb: Runbook) -> pd.DataFrame | None:
    """Alerts for this service from Prometheus (``/api/v1/alerts``): firing ones fail the
    check, pending ones (not firing yet) are only named."""
    mine = None
    with rb.check("Alerts firing for the service") as check:
        alerts = rb.prometheus.alerts()
        keep = pd.Series([_about_service(dict(labels or {}), rb) for labels in alerts["labels"]],
                         index=alerts.index, dtype=bool)  # fmt: skip
        mine = alerts[keep].reset_index(drop=True)
        _display(mine.drop(columns=["labels", "annotations"], errors="ignore"))
        firing = mine[mine["state"] == "firing"]
        names = sorted({str(n) for n in firing["alertname"]})
        measured(rb).firing_alerts = names
        pending = sorted({str(n) for n in mine[mine["state"] == "pending"]["alertname"]})
        more = f"; pending: {', '.join(pending)}" if pending else ""
        firing_text = f"firing: {', '.join(names)}" if names else "none firing"
        check.verdict(bool(names), firing_text + more)
    return mine


def slo_period_availability(rb: Runbook, period: str = "30d") -> float | None:
    """Availability over the SLO's own period (30 days): below the target is an SLO breach."""
    value = None
    target = _slo(rb, "availability", 0.999)
    with rb.check(f"Availability over the SLO period ({period})") as check:
        frame = rb.prometheus.named("availability", service=rb.service.name, window=period)
        value = latest(frame)
        measured(rb).slo_period_availability = value
        if value is None:
            check.warn(f"no requests in the last {period}")
        else:
            check.verdict(value < target, f"{value:.3%} (SLO {target:.1%})")
    return value


# --- severity -------------------------------------------------------------------------------


def impact(rb: Runbook, affected_services: int | None = None) -> sev.Impact:
    """The measured impact, from the facts the checks stored."""
    f, m = rb.facts, measured(rb)
    return sev.Impact(
        error_rate=f.error_rate,
        availability=f.availability,
        latency_p99=f.latency_p99,
        ready_pods=m.ready_pods,
        desired_pods=m.desired_pods,
        slo_availability=_slo(rb, "availability", 0.999),
        slo_error_rate=_slo(rb, "error_rate", 0.001),
        slo_latency_p99=_slo(rb, "latency_p99_seconds", 0.5),
        slo_period_availability=m.slo_period_availability,
        affected_services=affected_services,
        firing_alerts=tuple(m.firing_alerts or ()),
        dependencies_down=tuple(f.dependencies_down),
    )


def assess_severity(rb: Runbook, policy: sev.SeverityPolicy | None = None) -> sev.Classification:
    """Map the measured impact to SEV-1..SEV-4 (``opsnb.severity``); record it as the check
    ``severity`` (its detail starts with the level) and show the response requirements."""
    policy = policy or sev.DEFAULT_POLICY
    # Services affected: this one (when it shows impact of its own) and its unavailable
    # dependencies.
    own = sev.classify(replace(impact(rb), dependencies_down=()), policy)
    affected = int(own.level < 4) + len(rb.facts.dependencies_down)
    result = sev.classify(impact(rb, affected), policy)
    measured(rb).classification = result
    with rb.check("severity") as check:
        check.status = {1: "fail", 2: "fail", 3: "warn"}.get(result.level, "ok")
        check.detail = result.summary()
    level = result.severity
    lines = [f"### {level.label}: {level.name}", "", f"**Impact**: {level.impact}", "",
             "**Why**:", *[f"- {r}" for r in result.reasons]]  # fmt: skip
    lower = [f"- {sev.SEVERITIES[lvl].label}: {r}" for lvl, r in result.signals
             if lvl > result.level]  # fmt: skip
    if lower:
        lines += ["", "**Also seen**:", *lower]
    if result.unmeasured:
        lines += ["", f"**Not measured**: {', '.join(result.unmeasured)}"]
    lines += ["", "| Requirement | Target |", "|---|---|",
              *[f"| {k} | {v} |" for k, v in result.response.rows()]]  # fmt: skip
    _markdown("\n".join(lines))
    return result


def incident_record(rb: Runbook) -> str:
    """The playbook's incident record template, filled in from the assessment."""
    result = measured(rb).classification
    if result is None:
        return "No severity assessed yet."
    text = "\n".join([
        f"Title: [{result.label}] {rb.service.name}: {result.reasons[0]}",
        f"Impact: {result.severity.impact.lower()}; " + "; ".join(result.reasons),
        f"Detection: opsnb severity-check on {rb.target.name} at {rb.now:%Y-%m-%d %H:%M} UTC",
        "Status: Investigating",
    ])  # fmt: skip
    print(text)
    return text


def severity_findings(rb: Runbook) -> list[Finding]:
    """``healthy`` at SEV-4; otherwise the decision tree's findings (``unknown`` /
    ``escalate`` when the symptoms stay below the alert thresholds it decides on)."""
    result = measured(rb).classification
    if result is None:
        return rb.conclude()
    if result.level == 4:
        return [rb.finding("healthy", [result.summary()], "none")]
    findings = decide(rb.facts)
    if findings[0].cause == "healthy":
        return [rb.finding("unknown", [result.summary(),
                           "below the alert thresholds the decision tree names causes from"],
                           "escalate")]  # fmt: skip
    return [rb.finding(f.cause, f.evidence, f.recommendation) for f in findings]


# --- resolution verification ----------------------------------------------------------------


def settle(rb: Runbook, seconds: int) -> None:
    """Wait before measuring, so the rate windows hold only traffic after the fix."""
    if seconds <= 0:
        return
    if rb.snapshot is not None:
        print("A recorded snapshot does not change: nothing to wait for.")
        return
    print(f"Waiting {seconds} s before measuring ...")
    time.sleep(seconds)
    # The session's present was fixed when it was first read: measure up to the new now.
    rb.__dict__.pop("now", None)


def _verification(rb: Runbook, name: str) -> str:
    measured(rb).verification.append(name)
    return name


def verify_error_rate(rb: Runbook) -> None:
    """Error rate below the SLO's error rate (0.1% by default)."""
    limit = _slo(rb, "error_rate", 0.001)
    with rb.check(_verification(rb, "Error rate below the SLO")) as check:
        frame = rb.prometheus.named_range("error_rate", **rb.range_args())
        rb.facts.error_rate = latest(frame)
        rb.facts.errors_began_at = first_breach(frame, rb.facts.error_threshold)
        charts.series(frame, title="Error rate (share of 5xx)", threshold=limit,
                      threshold_label="SLO", percent=True)  # fmt: skip
        if rb.facts.error_rate is None:
            check.fail("no requests measured: the error rate cannot be verified")
        else:
            check.verdict(rb.facts.error_rate >= limit,
                          f"{rb.facts.error_rate:.3%} (SLO < {limit:.1%})")  # fmt: skip


def verify_latency(rb: Runbook) -> None:
    """p99 latency below the SLO (500 ms by default)."""
    limit = rb.facts.latency_slo
    with rb.check(_verification(rb, "p99 latency below the SLO")) as check:
        frame = rb.prometheus.named_range("latency_p99", **rb.range_args())
        rb.facts.latency_p99 = latest(frame)
        rb.facts.slow_since = first_breach(frame, limit)
        charts.series(frame, title="p99 latency", threshold=limit, threshold_label="SLO",
                      seconds=True)  # fmt: skip
        if rb.facts.latency_p99 is None:
            check.fail("no latency samples: p99 cannot be verified")
        else:
            check.verdict(
                rb.facts.latency_p99 >= limit,
                f"{rb.facts.latency_p99 * 1000:.0f} ms (SLO < {limit * 1000:.0f} ms)",
            )


def verify_pods(rb: Runbook) -> None:
    """``kubectl rollout status`` and every desired pod ready (ready == desired replicas)."""
    with rb.check(_verification(rb, "All pods ready")) as check:
        summary = rb.k8s.deployment(rb.service.deployment)
        pods = rb.k8s.pods(rb.service.selector)
        _display(pods)
        desired, ready, updated = (int(summary[k]) for k in ("replicas", "ready", "updated"))
        m = measured(rb)
        m.desired_pods, m.ready_pods, m.updated_pods = desired, ready, updated
        if not pods.empty:
            not_ready = pods[~pods["ready"]]
            rb.facts.crash_looping = [
                str(n) for n in not_ready[not_ready["waiting_reason"] == "CrashLoopBackOff"]["name"]
            ]
            rb.facts.oom_killed = [
                str(n) for n in not_ready[not_ready["last_state_reason"] == "OOMKilled"]["name"]
            ]
        rollout = "rollout complete" if updated >= desired else f"rollout at {updated}/{desired}"
        check.verdict(ready != desired or updated < desired,
                      f"{ready}/{desired} ready; {rollout}")  # fmt: skip


def verify_alerts(rb: Runbook) -> None:
    """No alerts firing for the service."""
    _verification(rb, "Alerts firing for the service")
    firing_alerts(rb)


def smoke_checks(rb: Runbook) -> None:
    """GET each health URL the target configures for the service (its dependencies and its
    own health endpoints): an answer below 500 passes."""
    names = list(rb.dependencies())
    if not names:
        print("No dependency or health URLs configured for this service: no smoke checks.")
    for name in names:
        with rb.check(_verification(rb, f"Smoke: {name}")) as check:
            probe = rb.probe_dependency(name)
            if probe["status"] != "ok":
                rb.facts.dependencies_down.append(name)
            check.verdict(probe["status"] != "ok",
                          f"{probe.get('url', '')}: {probe.get('detail', '')}")  # fmt: skip


def failed_verifications(rb: Runbook) -> list[Any]:
    names = set(measured(rb).verification)
    return [c for c in rb.checks if c.name in names and c.status != "ok"]


def diagnose_if_failed(rb: Runbook, lookback_minutes: int = 60) -> None:
    """When a verification failed, gather what the decision tree needs to say why, over at
    least ``lookback_minutes``: rollouts, when errors and latency began, throughput, the
    connection pool and database connections."""
    if not failed_verifications(rb):
        print("Every verification passed: nothing to diagnose.")
        return
    rb.window = max(rb.window, timedelta(minutes=lookback_minutes))
    marks = steps.rollouts(rb)
    steps.error_rate(rb, marks)
    steps.latency(rb, marks)
    steps.throughput(rb, marks)
    steps.pool(rb, marks)
    steps.postgres_connections(rb)


def resolution_verdict(rb: Runbook) -> list[Finding]:
    """``healthy`` only when every verification passed; otherwise the decision tree's
    findings, or ``unknown``/``escalate`` when it names no cause."""
    names = measured(rb).verification
    checks = [c for c in rb.checks if c.name in set(names)]
    failed = failed_verifications(rb)
    if checks and not failed:
        return [rb.finding("healthy", [f"{c.name}: {c.detail}" for c in checks], "none")]
    evidence = [f"{c.name}: {c.status} ({c.detail})" for c in failed] or ["nothing verified"]
    findings = decide(rb.facts)
    if findings[0].cause in ("healthy", "unknown"):
        return [rb.finding("unknown", [*evidence, *findings[0].evidence[:1]], "escalate")]
    return [rb.finding(f.cause, f.evidence, f.recommendation) for f in findings]


# --- reports --------------------------------------------------------------------------------


def check_table(rb: Runbook) -> pd.DataFrame:
    """Every check of the run as a table; verification checks read PASS or FAIL."""
    names = set(measured(rb).verification)
    rows = []
    for c in rb.checks:
        verdict = ("PASS" if c.status == "ok" else "FAIL") if c.name in names else c.status
        rows.append({"check": c.name, "result": verdict, "detail": c.detail})
    table = pd.DataFrame(rows, columns=["check", "result", "detail"])
    _display(table)
    return table
