"""Diagnosis steps shared by the runbooks: one check each, facts stored for the decision tree.

A runbook cell calls one step (``steps.error_rate(rb, marks)``) under a markdown cell that
says why it matters. Steps keep the runbooks short and make the same measurement mean the
same thing in every runbook; each records a check and, where it has one, draws a chart.

    sli.py          rollouts, error rate, latency, throughput, the pool, resources
    logs.py         the error breakdown, the previous container's logs
    database.py     PostgreSQL connections and queries, Redis
    kubernetes.py   pods, events, crash details, limits, config maps, dependencies
    mitigation.py   the recommended mitigation, guarded
"""

from ._common import Marks
from .database import (
    active_queries,
    explain_slow_query,
    long_running_queries,
    postgres_connections,
    redis_cache,
    repeated_queries,
)
from .kubernetes import config_map, crash_details, dependencies, events, memory_limits, pods
from .logs import error_logs, previous_logs
from .mitigation import mitigate, raise_memory_limit, terminate_long_queries
from .sli import (
    availability,
    error_rate,
    errors_by_endpoint,
    latency,
    latency_distribution,
    pool,
    resource_pressure,
    rollouts,
    throughput,
)

__all__ = [
    "Marks",
    "active_queries",
    "availability",
    "config_map",
    "crash_details",
    "dependencies",
    "error_logs",
    "error_rate",
    "errors_by_endpoint",
    "events",
    "explain_slow_query",
    "latency",
    "latency_distribution",
    "long_running_queries",
    "memory_limits",
    "mitigate",
    "pods",
    "pool",
    "postgres_connections",
    "previous_logs",
    "raise_memory_limit",
    "redis_cache",
    "repeated_queries",
    "resource_pressure",
    "rollouts",
    "terminate_long_queries",
    "throughput",
]
