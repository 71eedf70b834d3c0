"""The error report of a set of log lines, and how it is assembled from a ``parse`` frame
or from the fast path's pieces.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .parse import _NAT, ERROR_LEVELS, NO_ERROR_FIELD

# --- breakdown ------------------------------------------------------------------------------


@dataclass
class LogReport:
    """What the errors in a set of log lines look like.

    - ``by_type``: DataFrame[error, count, first_seen, last_seen], most frequent first (ties
      by name); error lines without an ``error=`` field are counted as ``"(no error field)"``
    - ``by_endpoint``: DataFrame[endpoint, errors, share] over the error lines that have an
      ``endpoint=`` field: their count and their share of all error lines, most errors first
    - ``per_minute``: DataFrame[minute, errors, lines], error lines and all lines with a time,
      every minute from the first to the last timestamp (zeros included; only the minutes
      that have lines when they span more than about four years), ``minute`` tz-aware UTC
    - ``first_error``: time of the earliest error line, or None
    - ``total_lines``, ``error_lines``: counts

    Requests (lines with an ``endpoint=``) are not counted, neither per endpoint nor per
    minute: that needs the fields of every line, which the fast path over raw text does not
    read (it would cost more than the whole ``grep | awk | sort | uniq`` pipeline).
    ``by_endpoint.share`` is therefore the endpoint's share of the error lines, not an error
    rate, and ``per_minute.lines`` counts all lines with a time.
    """

    by_type: pd.DataFrame
    by_endpoint: pd.DataFrame
    per_minute: pd.DataFrame
    first_error: pd.Timestamp | None
    total_lines: int
    error_lines: int

    @property
    def error_share(self) -> float:
        """Error lines over all lines (0.0 when there are no lines)."""
        return self.error_lines / self.total_lines if self.total_lines else 0.0


def _breakdown_frame(frame: pd.DataFrame) -> LogReport:
    is_error = frame["level"].isin(ERROR_LEVELS).to_numpy(dtype=bool)
    ns = _time_ns(frame["time"])
    type_codes, type_names = pd.factorize(frame["error"].to_numpy(dtype=object)[is_error])
    endpoint_codes, endpoint_names = pd.factorize(
        frame["endpoint"].to_numpy(dtype=object)[is_error]
    )
    timed = ns[ns != _NAT]
    return _assemble(
        total_lines=len(frame),
        error_ns=ns[is_error],
        type_codes=type_codes,
        type_names=list(type_names),
        endpoint_codes=endpoint_codes,
        endpoint_names=list(endpoint_names),
        line_minutes=timed // _MINUTE_NS,
        line_counts=None,
    )


def _time_ns(times: pd.Series) -> np.ndarray:
    """Epoch nanoseconds of a tz-aware time column, ``_NAT`` for missing times."""
    naive = times.dt.tz_convert("UTC").dt.tz_localize(None)
    return naive.to_numpy(dtype="M8[ns]").view(np.int64)


# --- assembling the report (shared by the frame and the fast path) ---------------------------

_MINUTE_NS = 60_000_000_000
_MAX_GAP_FREE_MINUTES = 2_000_000  # about four years of minutes


def _assemble(
    *,
    total_lines: int,
    error_ns: np.ndarray,
    type_codes: np.ndarray,
    type_names: list[str],
    endpoint_codes: np.ndarray,
    endpoint_names: list[str],
    line_minutes: np.ndarray,
    line_counts: np.ndarray | None,
) -> LogReport:
    """The report from the error lines (time, type code, endpoint code; code -1 when the
    field is missing; the names may repeat) and the epoch minutes of all timed lines."""
    error_lines = len(error_ns)
    names, codes = _merge_names(type_names, np.where(type_codes < 0, len(type_names), type_codes),
                                extra=NO_ERROR_FIELD)  # fmt: skip
    count = np.bincount(codes, minlength=len(names))
    big = np.iinfo(np.int64).max
    first = np.full(len(names), big, dtype=np.int64)
    np.minimum.at(first, codes, np.where(error_ns == _NAT, big, error_ns))
    first[first == big] = _NAT
    last = np.full(len(names), _NAT, dtype=np.int64)  # the smallest int64: max skips NaT
    np.maximum.at(last, codes, error_ns)
    order = _ranked(names, count)
    by_type = pd.DataFrame(
        {
            "error": pd.array(names[order], dtype="str"),
            "count": count[order],
            "first_seen": _utc(first[order]),
            "last_seen": _utc(last[order]),
        }
    )

    names, codes = _merge_names(endpoint_names, endpoint_codes[endpoint_codes >= 0])
    count = np.bincount(codes, minlength=len(names))
    order = _ranked(names, count)
    by_endpoint = pd.DataFrame(
        {
            "endpoint": pd.array(names[order], dtype="str"),
            "errors": count[order],
            "share": count[order] / error_lines if error_lines else np.zeros(len(order)),
        }
    )

    timed = error_ns != _NAT
    earliest = int(error_ns[timed].min()) if timed.any() else None
    return LogReport(
        by_type=by_type,
        by_endpoint=by_endpoint,
        per_minute=_per_minute(line_minutes, line_counts, error_ns[timed] // _MINUTE_NS),
        first_error=None if earliest is None else pd.Timestamp(earliest, unit="ns", tz="UTC"),
        total_lines=total_lines,
        error_lines=error_lines,
    )


def _merge_names(
    names: list[str], codes: np.ndarray, extra: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct names (``names`` may repeat; ``extra`` appended) and the codes remapped."""
    listed = [*names, extra] if extra is not None else names
    merged, distinct = pd.factorize(np.array(listed, dtype=object))
    return np.asarray(distinct, dtype=object), merged[codes].astype(np.int64)


def _ranked(names: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Indexes of the names with a count, most counted first, ties by name."""
    present = np.flatnonzero(count)
    by_name = sorted(present.tolist(), key=lambda i: names[i])
    return np.array(sorted(by_name, key=lambda i: -count[i]), dtype=np.int64)


def _utc(ns: np.ndarray) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(ns.astype(np.int64).view("M8[ns]")).tz_localize("UTC")


def _per_minute(
    line_minutes: np.ndarray, line_counts: np.ndarray | None, error_minutes: np.ndarray
) -> pd.DataFrame:
    """Error lines and timed lines per minute, every minute from the first to the last."""
    if not len(line_minutes):
        minutes = np.zeros(0, dtype=np.int64)
        errors = lines = np.zeros(0, dtype=np.int64)
    else:
        first = int(line_minutes.min())
        span = int(line_minutes.max()) - first + 1
        if span <= _MAX_GAP_FREE_MINUTES:
            minutes = np.arange(first, first + span, dtype=np.int64)
            slot = line_minutes - first
            error_slot = error_minutes - first
        else:  # timestamps far apart: only the minutes that have lines
            minutes, slot = np.unique(line_minutes, return_inverse=True)
            error_slot = np.searchsorted(minutes, error_minutes)
        lines = np.bincount(slot, weights=line_counts, minlength=len(minutes)).astype(np.int64)
        errors = np.bincount(error_slot, minlength=len(minutes)).astype(np.int64)
    return pd.DataFrame({"minute": _utc(minutes * _MINUTE_NS), "errors": errors, "lines": lines})
