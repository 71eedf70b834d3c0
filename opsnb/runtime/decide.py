"""The playbook's mitigation decision tree as code.

    Recent deployment?      yes -> rollback
    Resource issue?         yes -> scale up (memory: raise the limit)
    External dependency?    yes -> enable the circuit breaker
    Data issue?             yes -> failover to secondary
    otherwise               engage a subject-matter expert -> escalate

Runbook checks store plain facts (numbers, times, names); this module turns them into
findings, so the same facts always lead to the same words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..records import Finding

# Errors that begin within this many minutes after a rollout are blamed on it.
ROLLOUT_ONSET_MINUTES = 30
# Throughput this many times the baseline counts as a traffic spike.
SPIKE_RATIO = 2.0


@dataclass
class Facts:
    """What the checks measured; None means not measured (backend unavailable)."""

    error_rate: float | None = None
    error_threshold: float = 0.01
    latency_p99: float | None = None
    latency_slo: float = 0.5
    errors_began_at: Any = None  # pandas Timestamp of the first error-rate breach
    slow_since: Any = None  # when p99 latency first crossed the SLO
    availability: float | None = None
    rollout_revision: int | None = None
    rollout_at: Any = None  # when the newest revision was created
    pool_waiting: float | None = None  # peak waiting connections in the window
    pool_active_peak: float | None = None
    pool_waiting_now: float | None = None  # waiting through the newest samples (held)
    idle_in_transaction: int | None = None
    long_queries: int | None = None  # queries or transactions past the threshold
    slow_query: str | None = None  # the slowest statement seen active
    memory_limit: str | None = None
    cache_hit_ratio: float | None = None
    error_types: dict[str, int] = field(default_factory=dict)
    db_connections_ratio: float | None = None  # used / max_connections
    traffic_ratio: float | None = None  # recent throughput / baseline
    oom_killed: list[str] = field(default_factory=list)
    crash_looping: list[str] = field(default_factory=list)
    restarts: int | None = None
    dependencies_down: list[str] = field(default_factory=list)
    data_issue: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def erroring(self) -> bool:
        return self.error_rate is not None and self.error_rate >= self.error_threshold

    @property
    def slow(self) -> bool:
        return self.latency_p99 is not None and self.latency_p99 >= self.latency_slo

    @property
    def crashing(self) -> bool:
        return bool(self.oom_killed or self.crash_looping)

    @property
    def symptomatic(self) -> bool:
        return self.erroring or self.slow or self.crashing or bool(self.pool_waiting_now)

    @property
    def onset(self) -> Any:
        """When the symptoms began: the earliest start of a breach still going on. A breach
        that is over (slow queries an hour ago, with errors now) is another episode and
        would put the onset before a rollout that caused the current one."""
        breaches = ((self.errors_began_at, self.erroring), (self.slow_since, self.slow))
        current = [t for t, ongoing in breaches if t is not None and ongoing]
        if current:
            return min(current)
        times = [t for t in (self.errors_began_at, self.slow_since) if t is not None]
        return min(times) if times else None


def decide(facts: Facts) -> list[Finding]:
    """Walk the decision tree; the first finding is the primary cause."""
    if facts.error_rate is None and facts.latency_p99 is None and not facts.crashing:
        return [
            Finding(
                "unknown",
                ["the service's SLIs could not be measured (metrics unavailable)", *facts.notes],
                "escalate",
            )
        ]
    if not facts.symptomatic:
        return [
            Finding(
                "healthy",
                [
                    f"error rate {_pct(facts.error_rate)} below the alert threshold "
                    f"{_pct(facts.error_threshold)}",
                    f"p99 latency {_secs(facts.latency_p99)} within the SLO "
                    f"{_secs(facts.latency_slo)}",
                    *(
                        [f"throughput {facts.traffic_ratio:.1f}x the baseline, absorbed so far"]
                        if facts.traffic_ratio is not None and facts.traffic_ratio >= SPIKE_RATIO
                        else []
                    ),
                ],
                "none",
            )
        ]
    findings: list[Finding] = []
    # OOM kills are the most specific signal: raising the limit is the direct fix, even when
    # a new revision brought them (the rollback is then the next finding).
    if facts.oom_killed:
        findings.append(
            Finding(
                "oom-killed",
                [f"containers OOMKilled: {', '.join(facts.oom_killed)}"],
                "increase-memory-limit",
            )
        )
    if _rollout_preceded_errors(facts):
        findings.append(
            Finding(
                "recent-deployment",
                [
                    f"revision {facts.rollout_revision} rolled out at {_time(facts.rollout_at)}",
                    f"symptoms began at {_time(facts.onset)}, "
                    f"{_minutes_between(facts.rollout_at, facts.onset)} min later",
                    f"error rate now {_pct(facts.error_rate)}, p99 {_secs(facts.latency_p99)}",
                    *(
                        [f"pods crash-looping: {', '.join(facts.crash_looping)}"]
                        if facts.crash_looping
                        else []
                    ),
                ],
                "rollback",
            )
        )
    spike = facts.traffic_ratio is not None and facts.traffic_ratio >= SPIKE_RATIO
    holders = (facts.long_queries or 0) + (facts.idle_in_transaction or 0)
    # What waits now decides; the window's peak may belong to an earlier, finished episode.
    waiting = facts.pool_waiting_now if facts.pool_waiting_now is not None else facts.pool_waiting
    if (waiting or 0) > 0 or (facts.db_connections_ratio or 0) >= 0.95:
        evidence = []
        if facts.pool_waiting:
            evidence.append(f"up to {facts.pool_waiting:.0f} requests waiting for a connection")
        if facts.pool_active_peak is not None:
            evidence.append(f"pool active connections peaked at {facts.pool_active_peak:.0f}")
        if facts.db_connections_ratio is not None:
            evidence.append(
                f"database connections at {facts.db_connections_ratio:.0%} of max_connections"
            )
        if facts.long_queries:
            evidence.append(f"{facts.long_queries} long-running queries or transactions")
        if facts.idle_in_transaction:
            evidence.append(f"{facts.idle_in_transaction} connections idle in transaction")
        # A spike needs capacity; without one, long transactions are holding the pool.
        fix = "scale-up" if spike or not holders else "terminate-long-queries"
        findings.append(Finding("db-connection-pool-exhausted", evidence, fix))
    elif facts.slow and facts.long_queries:
        findings.append(
            Finding(
                "slow-database-queries",
                [
                    f"p99 latency {_secs(facts.latency_p99)} over the SLO "
                    f"{_secs(facts.latency_slo)}",
                    f"{facts.long_queries} slow statements active in the database",
                    *([f"slowest: {facts.slow_query[:160]}"] if facts.slow_query else []),
                ],
                "optimize-query",
            )
        )
    if facts.dependencies_down:
        findings.append(
            Finding(
                "dependency-unavailable",
                [f"dependencies not answering: {', '.join(facts.dependencies_down)}"],
                "enable-circuit-breaker",
            )
        )
    if spike:
        findings.append(
            Finding(
                "traffic-spike",
                [f"throughput {facts.traffic_ratio:.1f}x the baseline before the window"],
                "scale-up",
            )
        )
    if facts.data_issue and not findings:
        findings.append(Finding("unknown", ["data inconsistency reported"], "failover"))
    if not findings:
        findings.append(
            Finding(
                "unknown",
                [
                    f"error rate {_pct(facts.error_rate)}, p99 {_secs(facts.latency_p99)}",
                    "no recent deployment, resource exhaustion or dependency failure found",
                    *facts.notes,
                ],
                "escalate",
            )
        )
    return findings


def _rollout_preceded_errors(facts: Facts) -> bool:
    if facts.rollout_at is None:
        return False
    if facts.onset is None:
        # Pods of a new revision crash before any SLI moves.
        return facts.crashing
    minutes = _minutes_between(facts.rollout_at, facts.onset)
    return minutes is not None and -2 <= minutes <= ROLLOUT_ONSET_MINUTES


def _minutes_between(a: Any, b: Any) -> float | None:
    if a is None or b is None:
        return None
    return round((b - a).total_seconds() / 60.0, 1)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _secs(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 1000:.0f} ms"


def _time(value: Any) -> str:
    if value is None:
        return "n/a"
    return value.strftime("%Y-%m-%d %H:%M UTC")
