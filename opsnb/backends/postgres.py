"""PostgreSQL diagnosis: connections by state, max_connections, long-running queries.

    pg = PostgresBackend({"host": "127.0.0.1", "port": 5432, "user": "postgres",
                          "password": secret, "dbname": "app"})
    pg.connections_by_state()        # DataFrame[state, count]
    pg.long_running_queries(300)     # the template's "Identify long-running queries"

Each call opens one short-lived, read-only connection (``default_transaction_read_only=on``,
a statement timeout) and closes it. ``psycopg`` is imported on first use. Error messages
name the host and port, never the password or the DSN.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pandas as pd

from ..errors import BackendUnavailable

__all__ = [
    "ACTIVITY_COLUMNS",
    "LONG_RUNNING_COLUMNS",
    "PostgresBackend",
    "activity_frame",
    "long_running_from_activity",
    "states_from_activity",
]

NAME = "postgres"

# pg_stat_activity of PostgreSQL 14+ (also what a snapshot's postgres/activity.json stores)
ACTIVITY_COLUMNS = [
    "datid", "datname", "pid", "leader_pid", "usesysid", "usename", "application_name",
    "client_addr", "client_hostname", "client_port", "backend_start", "xact_start",
    "query_start", "state_change", "wait_event_type", "wait_event", "state", "backend_xid",
    "backend_xmin", "query_id", "query", "backend_type",
]  # fmt: skip
_TIME_COLUMNS = ("backend_start", "xact_start", "query_start", "state_change")
LONG_RUNNING_COLUMNS = [
    "pid", "duration_seconds", "state", "query", "application_name", "usename",
]  # fmt: skip

_SELECT_ACTIVITY = """
SELECT datid::bigint, datname::text, pid, leader_pid, usesysid::bigint, usename::text,
       application_name, host(client_addr) AS client_addr, client_hostname, client_port,
       backend_start, xact_start, query_start, state_change, wait_event_type, wait_event,
       state, backend_xid::text, backend_xmin::text, {query_id}, query, backend_type
FROM pg_stat_activity
WHERE pid <> pg_backend_pid()
ORDER BY pid
"""

_STATES = """
SELECT coalesce(state, 'unknown') AS state, count(*) AS count
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
GROUP BY 1
ORDER BY 2 DESC, 1
"""

_LONG_RUNNING = """
SELECT pid, extract(epoch FROM (now() - query_start))::float8 AS duration_seconds, state,
       query, application_name, usename::text
FROM pg_stat_activity
WHERE pid <> pg_backend_pid()
  AND backend_type = 'client backend'
  AND state IS DISTINCT FROM 'idle'
  AND query_start IS NOT NULL
  AND now() - query_start >= make_interval(secs => %s)
ORDER BY duration_seconds DESC, pid
"""


class PostgresBackend:
    """Read-only diagnosis queries against one PostgreSQL server.

    ``conninfo`` holds ``psycopg.connect`` keywords (host, port, user, password, dbname,
    ...) or a DSN under the key ``conninfo``. Refused connections, timeouts, failed
    authentication and statement timeouts raise ``BackendUnavailable("postgres", reason)``.
    """

    def __init__(
        self,
        conninfo: Mapping[str, Any],
        *,
        connect_timeout: float = 3.0,
        statement_timeout_ms: int = 5000,
    ) -> None:
        self._conninfo = dict(conninfo)
        self.connect_timeout = float(connect_timeout)
        self.statement_timeout_ms = int(statement_timeout_ms)
        self._secrets = [
            str(v) for k, v in self._conninfo.items() if k in ("password", "conninfo", "dsn") and v
        ]

    @property
    def where(self) -> str:
        """``host:port`` (from keywords, or parsed from the DSN), never credentials."""
        host = self._conninfo.get("host")
        port = self._conninfo.get("port")
        dsn = str(self._conninfo.get("conninfo") or "")
        if dsn and host is None:
            try:
                import psycopg.conninfo

                parsed = psycopg.conninfo.conninfo_to_dict(dsn)
                host, port = parsed.get("host"), parsed.get("port") or port
            except Exception:  # an unparsable DSN: say nothing about it
                host = None
        return f"{host or 'localhost'}:{port or 5432}"

    def __repr__(self) -> str:
        user = self._conninfo.get("user")
        dbname = self._conninfo.get("dbname")
        return f"PostgresBackend(host={self.where!r}, user={user!r}, dbname={dbname!r})"

    # --- plumbing ---------------------------------------------------------------------------

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        import psycopg

        kwargs = {k: v for k, v in self._conninfo.items() if k not in ("conninfo", "dsn")}
        dsn = str(self._conninfo.get("conninfo") or self._conninfo.get("dsn") or "")
        # libpq takes whole seconds (and treats 1 as 2)
        kwargs["connect_timeout"] = max(1, math.ceil(self.connect_timeout))
        kwargs["options"] = " ".join(
            part
            for part in (
                str(kwargs.get("options") or ""),
                "-c default_transaction_read_only=on",
                f"-c statement_timeout={self.statement_timeout_ms}",
            )
            if part
        )
        kwargs.setdefault("application_name", "opsnb")
        try:
            conn = psycopg.connect(dsn, autocommit=True, **kwargs)
        except psycopg.Error as exc:
            raise BackendUnavailable(NAME, self._reason(exc)) from None
        try:
            yield conn
        except psycopg.errors.QueryCanceled:
            raise BackendUnavailable(
                NAME, f"query cancelled after the {self.statement_timeout_ms} ms statement timeout"
            ) from None
        except psycopg.OperationalError as exc:
            raise BackendUnavailable(NAME, self._reason(exc)) from None
        finally:
            conn.close()

    def _reason(self, exc: BaseException) -> str:
        text = str(exc)
        lower = text.lower()
        where = self.where
        if "password authentication failed" in lower or "authentication failed" in lower:
            user = self._conninfo.get("user")
            return f"authentication failed at {where}" + (f" for user {user!r}" if user else "")
        if "no password supplied" in lower:
            return f"the server at {where} asks for a password and none was given"
        if "connection refused" in lower:
            return f"connection refused at {where}"
        if "timeout expired" in lower or "timed out" in lower:
            return f"timed out after {self.connect_timeout:g}s connecting to {where}"
        if "could not translate host name" in lower or "name or service not known" in lower:
            return f"cannot resolve host of {where}"
        if "does not exist" in lower:
            first = text.strip().splitlines()[0] if text.strip() else ""
            return self._scrub(re.sub(r"^.*?FATAL:\s*", "", first)) or "database does not exist"
        if ("too many" in lower and "connections" in lower) or "connection slots" in lower:
            return f"the server at {where} has no connection slots left (too many clients)"
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        return self._scrub(f"{where}: {first}")

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return re.sub(r"(password\s*=\s*)\S+", r"\1[redacted]", text, flags=re.I)

    def _rows(
        self, sql: str, params: tuple[Any, ...] = ()
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        with self._connection() as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            names = [d.name for d in cur.description or []]
            return names, list(cur.fetchall())

    # --- calls ------------------------------------------------------------------------------

    def ping(self) -> bool:
        """True when a connection opens and ``SELECT 1`` answers (raises otherwise)."""
        _, rows = self._rows("SELECT 1")
        return bool(rows and rows[0][0] == 1)

    def max_connections(self) -> int:
        """The server's ``max_connections``."""
        _, rows = self._rows("SHOW max_connections")
        return int(rows[0][0])

    def connections_by_state(self) -> pd.DataFrame:
        """Client connections by state as DataFrame[state, count (int)], most first
        (states 'active', 'idle', 'idle in transaction', ...; this call's own connection
        is not counted)."""
        _, rows = self._rows(_STATES)
        return _states_frame([(r[0], int(r[1])) for r in rows])

    def long_running_queries(self, min_seconds: float = 300) -> pd.DataFrame:
        """Client backends not idle whose current query started at least ``min_seconds``
        ago, as DataFrame[pid (int), duration_seconds (float), state, query,
        application_name, usename], longest first."""
        names, rows = self._rows(_LONG_RUNNING, (float(min_seconds),))
        frame = pd.DataFrame(rows, columns=names)
        return _long_running_frame(frame)

    def activity(self) -> pd.DataFrame:
        """pg_stat_activity (without this call's own backend) as DataFrame with
        ``ACTIVITY_COLUMNS``; the time columns are tz-aware UTC."""
        with self._connection() as conn, conn.cursor() as cur:
            cur.execute("SHOW server_version_num")
            row = cur.fetchone()
            version = int(row[0]) if row else 0
            query_id = "query_id" if version >= 140000 else "NULL::bigint AS query_id"
            cur.execute(_SELECT_ACTIVITY.format(query_id=query_id))
            names = [d.name for d in cur.description or []]
            rows = cur.fetchall()
        return activity_frame([dict(zip(names, r, strict=True)) for r in rows])


# --- frames shared with the snapshot backend ------------------------------------------------


def activity_frame(rows: list[Mapping[str, Any]]) -> pd.DataFrame:
    """pg_stat_activity rows (dicts) as a DataFrame with ``ACTIVITY_COLUMNS`` (missing
    columns are NaN/None; the time columns tz-aware UTC)."""
    frame = pd.DataFrame([{c: row.get(c) for c in ACTIVITY_COLUMNS} for row in rows])
    if frame.empty:
        frame = pd.DataFrame({c: pd.Series([], dtype="object") for c in ACTIVITY_COLUMNS})
    for column in _TIME_COLUMNS:
        frame[column] = pd.to_datetime(
            frame[column].astype("object"), utc=True, format="ISO8601"
        ).astype("datetime64[ns, UTC]")
    frame["pid"] = pd.array(frame["pid"].astype("object"), dtype="Int64")
    return frame[ACTIVITY_COLUMNS]


def states_from_activity(activity: pd.DataFrame) -> pd.DataFrame:
    """``connections_by_state`` computed from an ``activity_frame``: client backends only."""
    clients = activity
    if "backend_type" in activity and activity["backend_type"].notna().any():
        clients = activity[activity["backend_type"] == "client backend"]
    counts = clients["state"].fillna("unknown").value_counts()
    pairs = sorted(((str(k), int(v)) for k, v in counts.items()), key=lambda kv: (-kv[1], kv[0]))
    return _states_frame(pairs)


def long_running_from_activity(
    activity: pd.DataFrame, now: pd.Timestamp, min_seconds: float = 300
) -> pd.DataFrame:
    """``long_running_queries`` computed from an ``activity_frame`` as seen at ``now``."""
    frame = activity
    if "backend_type" in frame and frame["backend_type"].notna().any():
        frame = frame[frame["backend_type"] == "client backend"]
    frame = frame[frame["state"].fillna("") != "idle"]
    frame = frame[frame["query_start"].notna()]
    duration = (now - frame["query_start"]).dt.total_seconds()
    frame = frame.assign(duration_seconds=duration)
    frame = frame[frame["duration_seconds"] >= float(min_seconds)]
    frame = frame.sort_values(["duration_seconds", "pid"], ascending=[False, True])
    return _long_running_frame(frame[LONG_RUNNING_COLUMNS].reset_index(drop=True))


def _states_frame(pairs: list[tuple[str, int]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "state": pd.Series([p[0] for p in pairs], dtype="str"),
            "count": pd.Series([p[1] for p in pairs], dtype="int64"),
        }
    )


def _long_running_frame(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        frame = pd.DataFrame({c: [] for c in LONG_RUNNING_COLUMNS})
    return pd.DataFrame(
        {
            "pid": pd.Series(frame["pid"].to_numpy(), dtype="int64"),
            "duration_seconds": pd.Series(frame["duration_seconds"].to_numpy(), dtype="float64"),
            "state": pd.Series(frame["state"].to_numpy(), dtype="str"),
            "query": pd.Series(frame["query"].to_numpy(), dtype="str"),
            "application_name": pd.Series(frame["application_name"].to_numpy(), dtype="str"),
            "usename": pd.Series(frame["usename"].to_numpy(), dtype="str"),
        }
    )
