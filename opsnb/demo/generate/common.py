"""Shared helpers: constants, time and number formatting, seeded noise, metric series."""

from __future__ import annotations

import bisect
import random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from opsnb.promql import render

FORMAT = "opsnb-snapshot/1"
NAMESPACE = "production"
RATE_WINDOW = "5m"
STEP = 60

Json = dict[str, Any]
"""A JSON object as written to a snapshot file."""

T = TypeVar("T")


# --- time and numbers --------------------------------------------------------------------


def utc(text: str) -> datetime:
    """Parse ``2025-01-15T14:00:00Z`` (or ``...+00:00``) into an aware UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def at(day: str, hhmm: str) -> datetime:
    """``at("2025-01-15", "14:20")`` or with seconds ``"14:20:05"``."""
    if hhmm.count(":") == 1:
        hhmm += ":00"
    return utc(f"{day}T{hhmm}Z")


def iso(dt: datetime) -> str:
    """Kubernetes style: second precision with ``Z``."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ms(ms: int) -> str:
    """Log style: millisecond precision with ``Z``, from integer Unix milliseconds."""
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def iso_pg(dt: datetime) -> str:
    """PostgreSQL ``timestamptz`` as a driver returns it, rendered with ``isoformat``."""
    return dt.astimezone(UTC).isoformat(timespec="microseconds")


def num(value: float) -> str:
    """A sample value as Prometheus writes it: positional, up to 7 significant digits."""
    if value == 0:
        return "0"
    text = format(Decimal(repr(float(f"{value:.7g}"))), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


# --- shapes and noise --------------------------------------------------------------------


class Curve:
    """Monotone piecewise cubic (Fritsch-Butland PCHIP) through knots (unix seconds, value).

    It passes exactly through every knot and never overshoots between them.
    """

    def __init__(self, knots: Sequence[tuple[datetime, float]]):
        self.xs = [k[0].timestamp() for k in knots]
        self.ys = [float(k[1]) for k in knots]
        n = len(self.xs)
        self.h = [self.xs[i + 1] - self.xs[i] for i in range(n - 1)]
        delta = [(self.ys[i + 1] - self.ys[i]) / self.h[i] for i in range(n - 1)]
        self.d = [0.0] * n
        for i in range(1, n - 1):
            if delta[i - 1] * delta[i] > 0:
                w1 = 2 * self.h[i] + self.h[i - 1]
                w2 = self.h[i] + 2 * self.h[i - 1]
                self.d[i] = (w1 + w2) / (w1 / delta[i - 1] + w2 / delta[i])

    def __call__(self, t: float) -> float:
        xs, ys = self.xs, self.ys
        if t <= xs[0]:
            return ys[0]
        if t >= xs[-1]:
            return ys[-1]
        i = bisect.bisect_right(xs, t) - 1
        h = self.h[i]
        s = (t - xs[i]) / h
        h00 = 2 * s**3 - 3 * s**2 + 1
        h10 = s**3 - 2 * s**2 + s
        h01 = -2 * s**3 + 3 * s**2
        h11 = s**3 - s**2
        return h00 * ys[i] + h10 * h * self.d[i] + h01 * ys[i + 1] + h11 * h * self.d[i + 1]


def ramp(t: float, before: float, after: float, change_at: float, window: float = 300) -> float:
    """What a ``rate(...[window])`` of a step change from ``before`` to ``after`` reads."""
    frac = min(1.0, max(0.0, (t - change_at) / window))
    return before + (after - before) * frac


def jitter(rng: random.Random, spread: float) -> float:
    """A multiplicative noise factor in ``[1 - spread, 1 + spread]``."""
    return 1 + spread * (2 * rng.random() - 1)


def weighted(rng: random.Random, choices: Sequence[tuple[T, float]]) -> T:
    """One item of ``(item, weight)`` pairs, drawn in proportion to its weight."""
    total = sum(w for _, w in choices)
    r = rng.random() * total
    for item, w in choices:
        r -= w
        if r < 0:
            return item
    return choices[-1][0]


# --- metric series -----------------------------------------------------------------------


def minutes(start: datetime, end: datetime) -> list[int]:
    """Unix seconds from ``start`` to ``end`` (inclusive) at the snapshot's step."""
    return list(range(int(start.timestamp()), int(end.timestamp()) + 1, STEP))


def series(
    name: str,
    service: str,
    metric: dict[str, str],
    times: Sequence[int],
    values: Sequence[float | str],
) -> Json:
    """One range-query result; numbers are rendered with :func:`num`, text is kept."""
    return {
        "query": render(name, service=service, window=RATE_WINDOW),
        "metric": metric,
        "values": [
            [t, v if isinstance(v, str) else num(v)] for t, v in zip(times, values, strict=True)
        ],
    }


def metric_series(
    service: str,
    times: Sequence[int],
    *,
    error_rate: Sequence[float],
    latency: Sequence[float],
    throughput: Sequence[float],
    by_endpoint: Mapping[str, Sequence[float]],
    pool: Mapping[str, Sequence[str]],
) -> list[Json]:
    """Every series of a snapshot, in file order; availability is ``1 - error_rate``."""
    availability = [1 - e for e in error_rate]
    out = [
        series("error_rate", service, {}, times, error_rate),
        series("availability", service, {}, times, availability),
        series("latency_p99", service, {}, times, latency),
        series("throughput", service, {}, times, throughput),
    ]
    for path, rates in by_endpoint.items():
        out.append(series("errors_by_endpoint", service, {"endpoint": path}, times, rates))
    for state, counts in pool.items():
        out.append(series("pool", service, {"state": state}, times, counts))
    return out
