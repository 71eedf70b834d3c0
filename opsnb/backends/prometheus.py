"""Prometheus over its HTTP API: instant and range queries, the named SLI queries, alerts.

    prom = PrometheusBackend("http://127.0.0.1:9090")
    prom.named_range("error_rate", "payments", "5m", start, end, 30)   # long format

Results are long-format DataFrames: one row per sample with ``timestamp`` (tz-aware UTC),
``value`` (float; NaN for "NaN") and one column per label. ``httpx`` is imported when a
backend is built, so the helpers here are cheap to import (the snapshot backend uses them).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from ..errors import BackendUnavailable
from ..promql import render

if TYPE_CHECKING:
    import httpx

__all__ = [
    "ALERT_COLUMNS",
    "PrometheusBackend",
    "PrometheusQueryError",
    "alerts_frame",
    "duration_seconds",
    "series_frame",
    "unix_seconds",
]

NAME = "prometheus"
ALERT_COLUMNS = ["alertname", "state", "labels", "active_at", "value"]
_RESERVED = ("timestamp", "value")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w|y)")
_UNIT = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


class PrometheusQueryError(ValueError):
    """Prometheus rejected the query itself (bad PromQL, too many points): fix the query."""


# --- helpers shared with the snapshot backend -----------------------------------------------


def unix_seconds(value: datetime | pd.Timestamp | float | int | str) -> float:
    """A time as Unix seconds; naive datetimes are taken as UTC."""
    if isinstance(value, int | float):
        return float(value)
    ts = pd.Timestamp(value)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return ts.value / 1e9


def duration_seconds(step: float | int | timedelta | pd.Timedelta | str) -> float:
    """A step or window as seconds: a number, a timedelta, or a PromQL duration ("1m30s")."""
    if isinstance(step, timedelta):  # pd.Timedelta is a timedelta
        seconds = step.total_seconds()
    elif isinstance(step, str):
        text = step.strip()
        parts = _DURATION.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            try:
                seconds = float(text)
            except ValueError:
                raise ValueError(
                    f"not a duration: {step!r} (use seconds or e.g. '30s', '5m')"
                ) from None
        else:
            seconds = sum(float(n) * _UNIT[u] for n, u in parts)
    else:
        seconds = float(step)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ValueError(f"a step must be a positive duration, not {step!r}")
    return seconds


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def series_frame(series: Iterable[tuple[Mapping[str, str], Iterable[Any]]]) -> pd.DataFrame:
    """Long-format DataFrame[timestamp, value, <label columns>] from (labels, samples)
    pairs, samples being ``[unix_seconds, "value"]``. Label columns are sorted by name; a
    label called ``timestamp`` or ``value`` becomes ``label_timestamp``/``label_value``."""
    times: list[float] = []
    values: list[float] = []
    label_rows: list[Mapping[str, str]] = []
    for labels, samples in series:
        for t, v in samples:
            times.append(float(t))
            values.append(_float(v))
            label_rows.append(labels)
    names = sorted({k for labels in label_rows for k in labels})
    data: dict[str, Any] = {
        # Prometheus timestamps have millisecond precision
        "timestamp": pd.to_datetime(
            np.round(np.asarray(times, dtype="float64") * 1000).astype("int64"), unit="ms", utc=True
        ).astype("datetime64[ns, UTC]"),
        "value": pd.Series(values, dtype="float64"),
    }
    for name in names:
        column = f"label_{name}" if name in _RESERVED else name
        data[column] = pd.Series([labels.get(name) for labels in label_rows], dtype="str")
    return pd.DataFrame(data)


def alerts_frame(alerts: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """DataFrame[alertname, state, labels (dict), active_at, value (float)] from the
    ``/api/v1/alerts`` list; the ``annotations`` dict rides along as a last column."""
    rows = list(alerts)
    return pd.DataFrame(
        {
            "alertname": pd.Series(
                [(a.get("labels") or {}).get("alertname") for a in rows], dtype="str"
            ),
            "state": pd.Series([a.get("state") for a in rows], dtype="str"),
            "labels": pd.Series([dict(a.get("labels") or {}) for a in rows], dtype="object"),
            "active_at": pd.to_datetime(
                pd.Series([a.get("activeAt") for a in rows], dtype="object"),
                utc=True,
                format="ISO8601",
            ).astype("datetime64[ns, UTC]"),
            "value": pd.Series([_float(a.get("value")) for a in rows], dtype="float64"),
            "annotations": pd.Series(
                [dict(a.get("annotations") or {}) for a in rows], dtype="object"
            ),
        }
    )


def _result_frame(data: Mapping[str, Any]) -> pd.DataFrame:
    kind = data.get("resultType")
    result = data.get("result")
    if kind == "matrix":
        return series_frame((s.get("metric") or {}, s.get("values") or []) for s in result or [])
    if kind == "vector":
        return series_frame((s.get("metric") or {}, [s["value"]]) for s in result or [])
    if kind in ("scalar", "string"):
        return series_frame([({}, [result])] if result else [])
    raise BackendUnavailable(NAME, f"unexpected result type {kind!r}")


# --- the live backend -----------------------------------------------------------------------


class NamedQueries:
    """``named``/``named_range`` over a class's ``query``/``query_range``: shared by the
    live backend and its snapshot twin, so a named query means the same in both."""

    query: Any
    query_range: Any

    def named(
        self,
        name: str,
        service: str,
        window: str = "5m",
        at: datetime | pd.Timestamp | float | None = None,
    ) -> pd.DataFrame:
        """A named query of ``opsnb.promql`` (e.g. "error_rate") for ``service``, instant."""
        return self.query(render(name, service=service, window=window), at=at)

    def named_range(
        self,
        name: str,
        service: str,
        window: str,
        start: datetime | pd.Timestamp | float,
        end: datetime | pd.Timestamp | float,
        step: float | int | timedelta | str,
    ) -> pd.DataFrame:
        """A named query of ``opsnb.promql`` for ``service`` over [start, end]."""
        return self.query_range(render(name, service=service, window=window), start, end, step)


class PrometheusBackend(NamedQueries):
    """A Prometheus server's HTTP API (``/api/v1``).

    Refused connections, timeouts, 5xx answers and query timeouts raise
    ``BackendUnavailable("prometheus", reason)``; a query Prometheus cannot run (bad PromQL,
    too many points) raises ``PrometheusQueryError`` (a ValueError).
    """

    def __init__(
        self, url: str, *, timeout: float = 5.0, client: httpx.Client | None = None
    ) -> None:
        import httpx

        self.url = url.rstrip("/")
        self.timeout = float(timeout)
        self._client = client or httpx.Client(timeout=httpx.Timeout(self.timeout))
        parts = urlsplit(self.url)
        self._where = parts.netloc.rpartition("@")[2] or self.url

    def __repr__(self) -> str:
        return f"PrometheusBackend(url={_without_userinfo(self.url)!r})"

    def close(self) -> None:
        self._client.close()

    def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        import httpx

        try:
            response = self._client.get(f"{self.url}{path}", params=params, timeout=self.timeout)
        except httpx.TimeoutException:
            raise BackendUnavailable(NAME, f"timed out after {self.timeout:g}s") from None
        except httpx.ConnectError as exc:
            raise BackendUnavailable(NAME, _connect_reason(exc, self._where)) from None
        except httpx.HTTPError as exc:
            raise BackendUnavailable(
                NAME, f"request to {self._where} failed: {type(exc).__name__}"
            ) from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            if response.status_code >= 400:
                raise self._status_error(response.status_code, response.text[:200])
            raise BackendUnavailable(NAME, f"HTTP {response.status_code} without a JSON body")
        if body.get("status") == "success" and response.status_code < 400:
            return body.get("data")
        message = str(body.get("error") or response.text[:200]).strip()
        error_type = str(body.get("errorType") or "")
        if error_type in ("bad_data",) or response.status_code in (400, 422):
            raise PrometheusQueryError(f"Prometheus rejected the query: {message}")
        raise self._status_error(response.status_code, message, error_type)

    @staticmethod
    def _status_error(status: int, message: str, error_type: str = "") -> Exception:
        if status in (400, 422):
            return PrometheusQueryError(f"Prometheus rejected the request: {message}")
        label = f"HTTP {status}" + (f" ({error_type})" if error_type else "")
        return BackendUnavailable(NAME, f"{label} from Prometheus: {message}".strip())

    # --- queries ----------------------------------------------------------------------------

    def query(self, expr: str, at: datetime | pd.Timestamp | float | None = None) -> pd.DataFrame:
        """Instant query at ``at`` (default: now) as DataFrame[timestamp, value, <labels>],
        one row per series; ``timestamp`` is the evaluation time."""
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = f"{unix_seconds(at):.3f}"
        return _result_frame(self._get("/api/v1/query", params))

    def query_range(
        self,
        expr: str,
        start: datetime | pd.Timestamp | float,
        end: datetime | pd.Timestamp | float,
        step: float | int | timedelta | str,
    ) -> pd.DataFrame:
        """Range query as long-format DataFrame[timestamp, value, <labels>], one row per
        sample, series after series. ``step`` is seconds, a timedelta or "30s"."""
        params = {
            "query": expr,
            "start": f"{unix_seconds(start):.3f}",
            "end": f"{unix_seconds(end):.3f}",
            "step": f"{duration_seconds(step):g}",
        }
        return _result_frame(self._get("/api/v1/query_range", params))

    def alerts(self) -> pd.DataFrame:
        """Active alerts as DataFrame[alertname, state ("pending"/"firing"), labels (dict),
        active_at, value (float), annotations (dict)]."""
        data = self._get("/api/v1/alerts")
        return alerts_frame((data or {}).get("alerts") or [])

    def ready(self) -> bool:
        """Whether Prometheus answers ``/-/ready`` with 200 (never raises)."""
        import httpx

        try:
            response = self._client.get(f"{self.url}/-/ready", timeout=self.timeout)
        except httpx.HTTPError:
            return False
        return response.status_code == 200


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _connect_reason(exc: Exception, where: str) -> str:
    text = str(exc)
    if (
        "Name or service not known" in text
        or "nodename nor servname" in text
        or ("Temporary failure in name resolution" in text)
    ):
        return f"cannot resolve host of {where}"
    if "refused" in text.lower():
        return f"connection refused at {where}"
    return f"cannot connect to {where}: {text or type(exc).__name__}"
