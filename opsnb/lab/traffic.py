"""A load generator: steady weighted requests against the lab service from background threads.

It never raises out of its threads (a failed request is counted, not thrown) and uses short
timeouts so a hung service slows it down instead of stopping it. Several workers share the
rate so one slow request does not stall the whole stream: the idle workers take turns waiting
for the next send instant, so up to ``workers`` requests can be in flight at the offered rate
(the lab uses enough workers that requests hung for seconds do not lower it). ``set_rps``
changes the rate at once: a traffic spike is one call.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

DEFAULT_ENDPOINTS: tuple[tuple[str, str, float], ...] = (
    ("GET", "/api/items", 8.0),
    ("POST", "/api/checkout", 2.0),
)


@dataclass(frozen=True)
class TrafficStats:
    sent: int
    failed: int  # transport errors and 5xx answers
    by_status: dict[str, int]  # "200", "500", ... and "error" for transport errors


class Traffic:
    """``Traffic(url, rps=20).start()`` ... ``.stop()``; endpoints are (method, path, weight)."""

    def __init__(
        self,
        url: str,
        rps: float = 20.0,
        endpoints: Sequence[tuple[str, str, float]] = DEFAULT_ENDPOINTS,
        *,
        workers: int = 4,
        timeout: float = 2.0,
        seed: int | None = None,
    ) -> None:
        if not endpoints:
            raise ValueError("Traffic needs at least one endpoint")
        self.url = url.rstrip("/")
        self.endpoints = list(endpoints)
        self.workers = max(1, workers)
        self.timeout = httpx.Timeout(timeout, connect=min(timeout, 1.0))
        self._rps = float(rps)
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._failed = 0
        self._stop = threading.Event()
        self._turn = threading.Lock()  # held by the one idle worker waiting for the next slot
        self._threads: list[threading.Thread] = []
        self._next_at = 0.0  # shared schedule: the instant the next request is due

    # control ------------------------------------------------------------------------------

    @property
    def rps(self) -> float:
        return self._rps

    def set_rps(self, rps: float) -> None:
        """Change the rate while running (a traffic spike is one call)."""
        with self._lock:
            self._rps = max(0.0, float(rps))
            self._next_at = time.monotonic()

    def start(self) -> Traffic:
        if self._threads:
            return self
        self._stop.clear()
        self._next_at = time.monotonic()
        for i in range(self.workers):
            t = threading.Thread(target=self._run, name=f"traffic-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        self._threads = []

    def __enter__(self) -> Traffic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # counters -----------------------------------------------------------------------------

    @property
    def sent(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    @property
    def failed(self) -> int:
        with self._lock:
            return self._failed

    def stats(self) -> TrafficStats:
        with self._lock:
            return TrafficStats(sum(self._counts.values()), self._failed, dict(self._counts))

    # workers ------------------------------------------------------------------------------

    def _claim_slot(self) -> float | None:
        """Reserve the next send instant of the shared schedule; None when rate is 0."""
        with self._lock:
            if self._rps <= 0:
                return None
            now = time.monotonic()
            # never build up a backlog: after a stall, resume at the current rate
            at = max(self._next_at, now - 1.0 / self._rps)
            self._next_at = at + 1.0 / self._rps
            return at

    def _pick(self) -> tuple[str, str]:
        with self._lock:
            method, path, _ = self._random.choices(
                self.endpoints, weights=[w for *_, w in self.endpoints]
            )[0]
        return method, path

    def _run(self) -> None:
        try:
            with httpx.Client(base_url=self.url, timeout=self.timeout) as client:
                while not self._stop.is_set():
                    with self._turn:  # one slot pending at a time: a rate change acts at once
                        at = self._claim_slot()
                        if at is None:
                            self._stop.wait(0.1)
                            continue
                        delay = at - time.monotonic()
                        if delay > 0 and self._stop.wait(delay):
                            return
                    self._send(client)
        except Exception:  # pragma: no cover - a load generator must never crash its host
            pass

    def _send(self, client: httpx.Client) -> None:
        method, path = self._pick()
        try:
            if method == "POST":
                response = client.post(path, json={"quantity": 1})
            else:
                response = client.request(method, path)
            key, failed = str(response.status_code), response.status_code >= 500
        except Exception:  # httpx errors, and anything else: count it, keep going
            key, failed = "error", True
        with self._lock:
            self._counts[key] += 1
            self._failed += failed
