"""Named PromQL queries: the template's SLIs and key metrics for one service.

A query is rendered from a name, a service and a rate window. Live targets send the
rendered text to Prometheus; snapshots store series under the same rendered text, so
one name means the same thing everywhere.
"""

from __future__ import annotations

QUERIES: dict[str, str] = {
    # Availability SLI: share of requests that did not fail with a 5xx.
    "availability": (
        'sum(rate(http_requests_total{{service="{service}", status!~"5.."}}[{window}])) / '
        'sum(rate(http_requests_total{{service="{service}"}}[{window}]))'
    ),
    # Latency SLI (p99), seconds.
    "latency_p99": (
        "histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket"
        '{{service="{service}"}}[{window}])) by (le))'
    ),
    # Error rate SLI: share of requests that failed with a 5xx.
    "error_rate": (
        'sum(rate(http_requests_total{{service="{service}", status=~"5.."}}[{window}])) / '
        'sum(rate(http_requests_total{{service="{service}"}}[{window}]))'
    ),
    # Latency quantiles (seconds) for the distribution next to p99.
    "latency_p50": (
        "histogram_quantile(0.5, sum(rate(http_request_duration_seconds_bucket"
        '{{service="{service}"}}[{window}])) by (le))'
    ),
    "latency_p90": (
        "histogram_quantile(0.9, sum(rate(http_request_duration_seconds_bucket"
        '{{service="{service}"}}[{window}])) by (le))'
    ),
    # p99 latency by endpoint: which endpoints are slow.
    "latency_p99_by_endpoint": (
        "histogram_quantile(0.99, sum by (le, endpoint) (rate(http_request_duration_seconds_bucket"
        '{{service="{service}"}}[{window}])))'
    ),
    # Throughput, requests per second.
    "throughput": 'sum(rate(http_requests_total{{service="{service}"}}[{window}]))',
    # 5xx responses per second by endpoint: which endpoints fail.
    "errors_by_endpoint": (
        'sum by (endpoint) (rate(http_requests_total{{service="{service}", status=~"5.."}}'
        "[{window}]))"
    ),
    # CPU and memory per pod (cAdvisor metrics, where the cluster exports them).
    "pod_cpu": (
        'sum by (pod) (rate(container_cpu_usage_seconds_total{{pod=~"{service}-.*", '
        'container!=""}}[{window}]))'
    ),
    "pod_memory": (
        'sum by (pod) (container_memory_working_set_bytes{{pod=~"{service}-.*", container!=""}})'
    ),
    # Container restarts per pod (kube-state-metrics).
    "restarts": ('sum by (pod) (kube_pod_container_status_restarts_total{{pod=~"{service}-.*"}})'),
    # Connection pool by state (active, idle, waiting).
    "pool": 'sum by (state) (database_connection_pool_size{{service="{service}"}})',
}


def render(name: str, *, service: str, window: str = "5m") -> str:
    """Return the PromQL text of a named query for ``service`` over a ``window`` rate."""
    try:
        template = QUERIES[name]
    except KeyError:
        raise KeyError(f"no named query {name!r}; known: {', '.join(sorted(QUERIES))}") from None
    return template.format(service=service, window=window)
