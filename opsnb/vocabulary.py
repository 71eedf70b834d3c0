"""The fixed words that findings and checks use, so tools and tests can read them.

Causes and recommendations follow the incident playbook's mitigation decision tree.
Extend these tuples (and the README table) when a runbook needs a new word.
"""

from __future__ import annotations

CAUSES: tuple[str, ...] = (
    "recent-deployment",
    "resource-exhaustion",
    "oom-killed",
    "db-connection-pool-exhausted",
    "slow-database-queries",
    "dependency-unavailable",
    "traffic-spike",
    "healthy",
    "unknown",
)

RECOMMENDATIONS: tuple[str, ...] = (
    "rollback",
    "scale-up",
    "increase-memory-limit",
    "terminate-long-queries",
    "optimize-query",  # EXPLAIN the slow statement; add the index or cache the result
    "enable-circuit-breaker",
    "failover",
    "escalate",
    "none",
)

# ``error``: the check itself raised unexpectedly (a bug or an unforeseen answer); the
# runbook goes on to its findings and the run is marked as failed.
CHECK_STATUSES: tuple[str, ...] = ("ok", "warn", "fail", "unavailable", "error")


def require(value: str, allowed: tuple[str, ...], what: str) -> str:
    """Return ``value`` if it belongs to the vocabulary, else raise ValueError naming the list."""
    if value not in allowed:
        raise ValueError(f"{what} {value!r} is not one of: {', '.join(allowed)}")
    return value
