"""Container log lines: ``<ISO ms> <LEVEL> key=value ...``, and Poisson request arrivals."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .common import iso_ms


@dataclass
class Endpoint:
    path: str
    method: str
    weight: float
    ok_status: int
    median_ms: float


def request_times(
    rng: random.Random, start_ms: int, end_ms: int, per_minute: Callable[[float], float]
) -> Iterator[int]:
    """Poisson arrival instants (integer ms) between start and end."""
    t = float(start_ms)
    while True:
        rate = per_minute(t / 1000) / 60000.0  # per ms
        t += -math.log(1.0 - rng.random()) / rate
        if t >= end_ms:
            return
        yield int(t)


def line(ms: int, level: str, **fields: object) -> str:
    return f"{iso_ms(ms)} {level} " + " ".join(f"{k}={v}" for k, v in fields.items())


def request_line(
    ms: int, ep: Endpoint, status: int, duration_ms: int, error: str | None = None
) -> str:
    """A request's access line: ``INFO``, or ``ERROR`` with ``error=<kind>`` when it failed."""
    fields: dict[str, object] = {
        "method": ep.method,
        "endpoint": ep.path,
        "status": status,
        "duration_ms": duration_ms,
    }
    if error is None:
        return line(ms, "INFO", **fields)
    return line(ms, "ERROR", **fields, error=error)
