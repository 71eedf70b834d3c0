"""Events: the events frame."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from .common import EVENT_COLUMNS, Obj, _get, _items, _utc_series, timestamp, utc


def _event_time(event: Obj) -> Any:
    for value in (
        event.get("lastTimestamp"),
        _get(event, "series", "lastObservedTime"),
        event.get("eventTime"),
        event.get("firstTimestamp"),
        _get(event, "metadata", "creationTimestamp"),
    ):
        ts = timestamp(value)
        if pd.notna(ts):
            return ts
    return pd.NaT


def events_frame(
    events: Mapping[str, Any] | list[Obj],
    since: datetime | pd.Timestamp | None = None,
    reason: str | Iterable[str] | None = None,
) -> pd.DataFrame:
    """An EventList as DataFrame[time, type, reason, object, message, count (int)], newest
    last. ``object`` is ``kind/name`` in lower case as kubectl prints it (``pod/x-1``).
    ``since`` keeps events at or after that time; ``reason`` one reason or several."""
    reasons = None if reason is None else ({reason} if isinstance(reason, str) else set(reason))
    cutoff = None if since is None else utc(since)
    rows = []
    for ev in _items(events):
        if reasons is not None and ev.get("reason") not in reasons:
            continue
        when = _event_time(ev)
        if cutoff is not None and (pd.isna(when) or when < cutoff):
            continue
        involved = ev.get("involvedObject") or ev.get("regarding") or {}
        count = ev.get("count") or _get(ev, "series", "count") or 1
        rows.append(
            {
                "time": when,
                "type": ev.get("type"),
                "reason": ev.get("reason"),
                "object": f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
                "message": (ev.get("message") or ev.get("note") or "").strip(),
                "count": int(count),
            }
        )
    rows.sort(key=lambda r: (pd.isna(r["time"]), r["time"] if pd.notna(r["time"]) else 0))
    # undated events first, then oldest to newest
    rows = [r for r in rows if pd.isna(r["time"])] + [r for r in rows if pd.notna(r["time"])]
    return pd.DataFrame(
        {
            "time": _utc_series([r["time"] for r in rows]),
            "type": pd.Series([r["type"] for r in rows], dtype="str"),
            "reason": pd.Series([r["reason"] for r in rows], dtype="str"),
            "object": pd.Series([r["object"] for r in rows], dtype="str"),
            "message": pd.Series([r["message"] for r in rows], dtype="str"),
            "count": pd.Series([r["count"] for r in rows], dtype="int64"),
        }
    )[EVENT_COLUMNS]


def since_time(
    since: datetime | pd.Timestamp | timedelta | None, now: pd.Timestamp
) -> pd.Timestamp | None:
    """``since`` as an absolute UTC time; a timedelta counts back from ``now``."""
    if since is None:
        return None
    if isinstance(since, timedelta):
        return now - pd.Timedelta(since)
    return utc(since)
