"""``/metrics`` in the Prometheus text format.

opsnb_serve_alerts_received_total{status, disposition}   counter (this process)
opsnb_serve_requests_rejected_total{code}                counter: 401, 4xx, 503 answers
opsnb_serve_runs{status}                                 gauge: runs in the database
opsnb_serve_runs_finished_total{status}                  counter (this process)
opsnb_serve_queue_depth                                  gauge: queued runs
opsnb_serve_runs_running                                 gauge
opsnb_serve_run_duration_seconds                         histogram of finished runs
opsnb_serve_pool_kernels{state}                          gauge: ready / warming
opsnb_serve_pool_size                                    gauge: configured warm kernels
opsnb_serve_notifications{status}                        gauge: pending / sent / failed
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .store import Store

BUCKETS = (0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120, 300, 600)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _StateCollector(Collector):
    def __init__(
        self, store: Store, pool_stats: Callable[[], dict[str, int]], running: Callable[[], int]
    ) -> None:
        self.store, self.pool_stats, self.running = store, pool_stats, running

    def collect(self) -> Iterator[Any]:
        counts = self.store.counts()
        runs = GaugeMetricFamily("opsnb_serve_runs", "Runs recorded, by status", labels=["status"])
        for status in ("queued", "running", "ok", "error", "failed"):
            runs.add_metric([status], counts.get(status, 0))
        yield runs
        yield GaugeMetricFamily(
            "opsnb_serve_queue_depth", "Runs waiting to start", value=counts.get("queued", 0)
        )
        yield GaugeMetricFamily(
            "opsnb_serve_runs_running", "Runs executing now", value=self.running()
        )
        stats = self.pool_stats()
        kernels = GaugeMetricFamily(
            "opsnb_serve_pool_kernels", "Kernels in the warm pool", labels=["state"]
        )
        kernels.add_metric(["ready"], stats.get("ready", 0))
        kernels.add_metric(["warming"], stats.get("warming", 0))
        yield kernels
        yield GaugeMetricFamily(
            "opsnb_serve_pool_size", "Warm kernels the pool keeps", value=stats.get("size", 0)
        )
        notes = GaugeMetricFamily(
            "opsnb_serve_notifications", "Notifications, by status", labels=["status"]
        )
        by_status: dict[str, int] = {}
        for n in self.store.notifications():
            by_status[n["status"]] = by_status.get(n["status"], 0) + 1
        for status in ("pending", "sent", "failed"):
            notes.add_metric([status], by_status.get(status, 0))
        yield notes


class Metrics:
    def __init__(
        self, store: Store, pool_stats: Callable[[], dict[str, int]], running: Callable[[], int]
    ) -> None:
        self.registry = CollectorRegistry()
        self.alerts = Counter(
            "opsnb_serve_alerts_received",
            "Alerts received, by status and what became of them",
            ["status", "disposition"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "opsnb_serve_requests_rejected",
            "Webhook requests refused, by HTTP status",
            ["code"],
            registry=self.registry,
        )
        self.finished = Counter(
            "opsnb_serve_runs_finished",
            "Runs finished by this process",
            ["status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "opsnb_serve_run_duration_seconds",
            "Run duration",
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StateCollector(store, pool_stats, running))

    def run_finished(self, status: str, duration: float | None) -> None:
        self.finished.labels(status).inc()
        if duration is not None:
            self.duration.observe(duration)

    def render(self) -> bytes:
        return generate_latest(self.registry)
