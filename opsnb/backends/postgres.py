"""PostgreSQL diagnosis: connections by state, max_connections, long-running queries,
database sizes, replication, read-only queries, and the guarded backend termination.

    pg = PostgresBackend({"host": "127.0.0.1", "port": 5432, "user": "postgres",
                          "password": secret, "dbname": "app"})
    pg.connections_by_state()        # DataFrame[state, count]
    pg.long_running_queries(300)     # the template's "Identify long-running queries"
    pg.database_sizes()              # the template's "Check database size"
    pg.read_only_query("SELECT count(*) FROM users")   # "Run read-only query"
    pg.terminate_backends([4711], dry_run=True)        # "Kill long-running queries", previewed

Each call opens one short-lived, read-only connection (``default_transaction_read_only=on``,
a statement timeout) and closes it. ``psycopg`` is imported on first use. Error messages
name the host and port, never the password or the DSN.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..errors import BackendUnavailable

__all__ = [
    "ACTIVITY_COLUMNS",
    "DATABASE_SIZE_COLUMNS",
    "LONG_RUNNING_COLUMNS",
    "REPLICATION_COLUMNS",
    "TERMINATE_COLUMNS",
    "PostgresBackend",
    "QueryRefused",
    "Termination",
    "activity_frame",
    "check_single_statement",
    "database_sizes_frame",
    "long_running_from_activity",
    "pretty_bytes",
    "replication_frame",
    "states_from_activity",
    "terminate_candidates_from_activity",
    "terminate_sql",
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

_IDLE_IN_TRANSACTION = """
SELECT count(*)
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
  AND state LIKE 'idle in transaction%%' AND now() - state_change >= make_interval(secs => %s)
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


DATABASE_SIZE_COLUMNS = ["datname", "size_bytes", "size"]
# pg_stat_replication, one row per attached standby (lags in seconds, replay lag in bytes)
REPLICATION_COLUMNS = [
    "pid", "usename", "application_name", "client_addr", "state", "sync_state", "sent_lsn",
    "write_lsn", "flush_lsn", "replay_lsn", "write_lag_seconds", "flush_lag_seconds",
    "replay_lag_seconds", "replay_lag_bytes",
]  # fmt: skip
# the sessions a termination would end: age of the transaction (or the query, outside one)
TERMINATE_COLUMNS = [
    "pid", "duration_seconds", "state", "application_name", "usename", "client_addr", "query",
]  # fmt: skip

_DATABASE_SIZES = """
SELECT datname::text, pg_database_size(datname)::bigint AS size_bytes
FROM pg_database
WHERE datallowconn AND has_database_privilege(datname, 'CONNECT')
ORDER BY 2 DESC, 1
"""

_REPLICATION = """
SELECT pid, usename::text, application_name, host(client_addr) AS client_addr, state,
       sync_state, sent_lsn::text, write_lsn::text, flush_lsn::text, replay_lsn::text,
       extract(epoch FROM write_lag)::float8 AS write_lag_seconds,
       extract(epoch FROM flush_lag)::float8 AS flush_lag_seconds,
       extract(epoch FROM replay_lag)::float8 AS replay_lag_seconds,
       pg_wal_lsn_diff(sent_lsn, replay_lsn)::float8 AS replay_lag_bytes
FROM pg_stat_replication
ORDER BY application_name, pid
"""

# What "long" means for a session holding a connection: its transaction's age (an idle in
# transaction session holds its connection and its locks), or its query's outside one.
_TERMINATE_CANDIDATES = """
SELECT pid,
       extract(epoch FROM (now() - coalesce(least(xact_start, query_start), query_start,
                                            xact_start)))::float8 AS duration_seconds,
       state, application_name, usename::text, host(client_addr) AS client_addr, query
FROM pg_stat_activity
WHERE pid <> pg_backend_pid()
  AND backend_type = 'client backend'
  AND state IS DISTINCT FROM 'idle'
  AND coalesce(xact_start, query_start) IS NOT NULL
  AND now() - coalesce(least(xact_start, query_start), query_start, xact_start)
      >= make_interval(secs => %s)
  AND (%s::text IS NULL OR application_name = %s::text)
ORDER BY duration_seconds DESC, pid
"""

# Statements that would end, or change, the read-only transaction a query runs in.
_TRANSACTION_WORDS = {
    "BEGIN", "START", "COMMIT", "END", "ROLLBACK", "ABORT", "SAVEPOINT", "RELEASE",
    "PREPARE", "SET", "RESET", "DISCARD", "LISTEN", "NOTIFY", "COPY", "VACUUM", "CHECKPOINT",
}  # fmt: skip

# Functions with effects a read-only transaction does not undo (signals, configuration,
# files, session-level locks, other connections).
_ACTING_FUNCTIONS = re.compile(
    r"pg_(terminate|cancel)_backend|pg_reload_conf|pg_rotate_logfile|pg_promote|pg_switch_wal"
    r"|pg_create_restore_point|pg_advisory_lock\w*|pg_file_\w+|set_config|dblink\w*|lo_\w+",
    re.I,
)


class QueryRefused(ValueError):
    """A query that ``read_only_query`` will not run, or that the server refused to run
    (a write in the read-only transaction, a syntax error, the statement timeout)."""


@dataclass(frozen=True)
class Termination:
    """What ``terminate_backends`` ended, or would end when ``dry_run`` is True.

    ``sql`` is the exact statement (run as written when applied); ``detail`` says it in
    one sentence for the run record."""

    action: str
    object: str
    pids: list[int]
    sql: str
    dry_run: bool
    detail: str
    sessions: list[dict[str, Any]] = field(default_factory=list)
    terminated: list[int] = field(default_factory=list)
    changed: bool = True

    @property
    def before(self) -> dict[str, Any]:
        return {"backends": list(self.pids)}

    @property
    def after(self) -> dict[str, Any]:
        return {"terminated": list(self.terminated)}

    def __str__(self) -> str:
        return self.detail


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

    def idle_in_transaction(self, min_seconds: float = 5) -> int:
        """Client sessions idle inside an open (or aborted) transaction for at least
        ``min_seconds``, by the server's clock. A request between two statements is idle in
        transaction for milliseconds; one that stays so holds its connection and its locks."""
        _, rows = self._rows(_IDLE_IN_TRANSACTION, (float(min_seconds),))
        return int(rows[0][0]) if rows else 0

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

    def database_sizes(self) -> pd.DataFrame:
        """Every database this user may connect to, largest first, as
        DataFrame[datname, size_bytes (int), size (like pg_size_pretty)]."""
        _, rows = self._rows(_DATABASE_SIZES)
        return database_sizes_frame([{"datname": r[0], "size_bytes": r[1]} for r in rows])

    def replication(self) -> pd.DataFrame:
        """``pg_stat_replication`` as DataFrame with ``REPLICATION_COLUMNS``: one row per
        attached standby; empty when none is attached (a single server)."""
        names, rows = self._rows(_REPLICATION)
        return replication_frame([dict(zip(names, r, strict=True)) for r in rows])

    def read_only_query(self, sql: str, limit: int = 100, timeout_ms: int = 5000) -> pd.DataFrame:
        """Run one SQL statement inside a ``READ ONLY`` transaction that is always rolled
        back, with ``statement_timeout`` = ``timeout_ms``, and return at most ``limit`` rows.

        Anything but a single statement, and statements that control transactions or
        settings, are refused before they are sent (``QueryRefused``); a write is refused by
        the server itself, which is the real guard. ``frame.attrs["truncated"]`` says whether
        more rows were there; ``frame.attrs["status"]`` is the server's command tag."""
        import psycopg

        statement = check_single_statement(sql)
        limit, timeout_ms = max(0, int(limit)), max(1, int(timeout_ms))
        with self._connection() as conn:
            try:
                with conn.cursor() as cur:
                    cur.execute("BEGIN READ ONLY")
                    cur.execute(f"SET LOCAL statement_timeout = {timeout_ms}")
                    # a snapshot is taken: from here on the transaction cannot turn read-write
                    cur.execute("SELECT 1")
                    cur.execute(statement)
                    names = [d.name for d in cur.description or []]
                    rows = cur.fetchmany(limit + 1) if cur.description else []
                    status = cur.statusmessage or ""
            except psycopg.errors.QueryCanceled:
                raise QueryRefused(
                    f"cancelled after the {timeout_ms} ms statement timeout"
                ) from None
            except psycopg.errors.ReadOnlySqlTransaction as exc:
                raise QueryRefused(
                    f"refused by the read-only transaction: {_first_line(exc)}"
                ) from None
            except psycopg.OperationalError:
                raise
            except psycopg.Error as exc:
                raise QueryRefused(f"the server refused the query: {_first_line(exc)}") from None
            finally:
                if not conn.closed:
                    conn.execute("ROLLBACK")
        frame = pd.DataFrame([tuple(r) for r in rows[:limit]], columns=_unique(names))
        frame.attrs["truncated"] = len(rows) > limit
        frame.attrs["status"] = status
        frame.attrs["limit"] = limit
        return frame

    def backends_to_terminate(
        self, min_seconds: float, application_name: str | None = None
    ) -> pd.DataFrame:
        """Client backends (never this call's own, never background workers) that are not
        idle and whose transaction (or, outside one, query) began at least ``min_seconds``
        ago, of ``application_name`` only when given, as DataFrame with
        ``TERMINATE_COLUMNS``, longest first."""
        app = application_name or None
        names, rows = self._rows(_TERMINATE_CANDIDATES, (float(min_seconds), app, app))
        return _terminate_frame(pd.DataFrame(rows, columns=names))

    def terminate_backends(
        self, pids: Iterable[int], *, dry_run: bool, application_name: str | None = None
    ) -> Termination:
        """End the sessions ``pids`` with ``pg_terminate_backend`` (only client backends,
        never this call's own; of ``application_name`` only, when given).

        A dry run terminates nothing: it shows the exact statement and which of the pids it
        would end now. Applied, it runs that statement and reports the pids it ended."""
        wanted = _pids(pids)
        sql = terminate_sql(wanted, application_name)
        if not wanted:
            return _termination(wanted, sql, dry_run, [], [])
        if dry_run:
            _, rows = self._rows(_preview_sql(wanted, application_name))
            sessions = [
                {"pid": int(r[0]), "application_name": r[1], "state": r[2], "query": r[3]}
                for r in rows
            ]
            return _termination(wanted, sql, True, sessions, [])
        _, rows = self._rows(sql)
        ended = sorted(int(r[0]) for r in rows if r[1])
        return _termination(wanted, sql, False, [], ended)


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
    frame["pid"] = pd.to_numeric(frame["pid"], errors="coerce").astype("Int64")
    return frame[ACTIVITY_COLUMNS]


def states_from_activity(activity: pd.DataFrame) -> pd.DataFrame:
    """``connections_by_state`` computed from an ``activity_frame``: client backends only."""
    clients = activity
    if "backend_type" in activity and activity["backend_type"].notna().any():
        clients = activity[activity["backend_type"] == "client backend"]
    counts = clients["state"].fillna("unknown").value_counts()
    pairs = sorted(((str(k), int(v)) for k, v in counts.items()), key=lambda kv: (-kv[1], kv[0]))
    return _states_frame(pairs)


def _client_backends(activity: pd.DataFrame) -> pd.DataFrame:
    """The sessions of clients (not autovacuum, walwriter, ...); all rows when the
    activity does not say (older captures)."""
    if "backend_type" in activity and activity["backend_type"].notna().any():
        return activity[activity["backend_type"] == "client backend"]
    return activity


def idle_in_transaction_from_activity(
    activity: pd.DataFrame, now: pd.Timestamp, min_seconds: float = 5
) -> int:
    """``idle_in_transaction`` computed from an ``activity_frame`` as seen at ``now``."""
    frame = _client_backends(activity)
    idle = frame["state"].fillna("").str.startswith("idle in transaction")
    since = (now - frame["state_change"]).dt.total_seconds()
    return int((idle & (since >= float(min_seconds))).sum())


def long_running_from_activity(
    activity: pd.DataFrame, now: pd.Timestamp, min_seconds: float = 300
) -> pd.DataFrame:
    """``long_running_queries`` computed from an ``activity_frame`` as seen at ``now``."""
    frame = _client_backends(activity)
    frame = frame[frame["state"].fillna("") != "idle"]
    frame = frame[frame["query_start"].notna()]
    duration = (now - frame["query_start"]).dt.total_seconds()
    frame = frame.assign(duration_seconds=duration)
    frame = frame[frame["duration_seconds"] >= float(min_seconds)]
    frame = frame.sort_values(["duration_seconds", "pid"], ascending=[False, True])
    return _long_running_frame(frame[LONG_RUNNING_COLUMNS].reset_index(drop=True))


def terminate_candidates_from_activity(
    activity: pd.DataFrame,
    now: pd.Timestamp,
    min_seconds: float,
    application_name: str | None = None,
) -> pd.DataFrame:
    """``backends_to_terminate`` computed from an ``activity_frame`` as seen at ``now``."""
    frame = _client_backends(activity)
    frame = frame[frame["state"].fillna("idle") != "idle"]
    began = frame[["xact_start", "query_start"]].min(axis=1)
    frame = frame.assign(duration_seconds=(now - began).dt.total_seconds())
    frame = frame[frame["duration_seconds"].notna()]
    frame = frame[frame["duration_seconds"] >= float(min_seconds)]
    if application_name:
        frame = frame[frame["application_name"] == application_name]
    frame = frame.sort_values(["duration_seconds", "pid"], ascending=[False, True])
    return _terminate_frame(frame[TERMINATE_COLUMNS].reset_index(drop=True))


def database_sizes_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Rows of {datname, size_bytes} as DataFrame with ``DATABASE_SIZE_COLUMNS``, largest
    first."""
    pairs = sorted(
        ((str(r["datname"]), int(r["size_bytes"])) for r in rows), key=lambda p: (-p[1], p[0])
    )
    return pd.DataFrame(
        {
            "datname": pd.Series([p[0] for p in pairs], dtype="str"),
            "size_bytes": pd.Series([p[1] for p in pairs], dtype="int64"),
            "size": pd.Series([pretty_bytes(p[1]) for p in pairs], dtype="str"),
        }
    )


def replication_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """pg_stat_replication rows (dicts) as DataFrame with ``REPLICATION_COLUMNS``."""
    frame = pd.DataFrame([{c: row.get(c) for c in REPLICATION_COLUMNS} for row in rows])
    if frame.empty:
        frame = pd.DataFrame({c: pd.Series([], dtype="object") for c in REPLICATION_COLUMNS})
    frame["pid"] = pd.to_numeric(frame["pid"], errors="coerce").astype("Int64")
    for column in REPLICATION_COLUMNS[-4:]:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    return frame[REPLICATION_COLUMNS]


def pretty_bytes(size: float) -> str:
    """A size the way ``pg_size_pretty`` writes it (``8 kB``, ``7901 kB``, ``12 MB``)."""
    value = float(size)
    sign = "-" if value < 0 else ""
    value = abs(value)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if value < 10 * 1024 or unit == "TB":
            return f"{sign}{int(round(value))} {unit}"
        value /= 1024
    return f"{sign}{int(round(value))} PB"  # pragma: no cover


def check_single_statement(sql: str) -> str:
    """The statement without trailing semicolons, or ``QueryRefused`` when ``sql`` is empty,
    holds more than one statement, or controls transactions or settings (``BEGIN``,
    ``COMMIT``, ``SET``, ...). Quotes, dollar quotes and comments are understood."""
    text = str(sql or "").strip()
    ends = _statement_ends(text)
    while ends and not _without_comments(text[ends[-1] + 1 :]).strip():  # trailing ";"
        text = text[: ends[-1]].rstrip()
        ends = _statement_ends(text)
    if ends:
        raise QueryRefused("only a single SQL statement is allowed; this has more than one")
    words = re.findall(r"[A-Za-z_]+", _without_comments(text))
    if not words:
        raise QueryRefused("no SQL statement was given")
    first = words[0].upper()
    if first in _TRANSACTION_WORDS:
        raise QueryRefused(
            f"{first} statements are not allowed: the query runs inside a read-only "
            "transaction that opsnb opens and rolls back"
        )
    acting = sorted({w.lower() for w in words if _ACTING_FUNCTIONS.fullmatch(w)})
    if acting:
        raise QueryRefused(
            f"{', '.join(acting)} act(s) outside the transaction, which a read-only "
            "transaction does not stop; use the runbook's guarded steps instead"
        )
    return text


def terminate_sql(pids: Iterable[int], application_name: str | None = None) -> str:
    """The exact statement ``terminate_backends`` runs for ``pids``."""
    listed = ", ".join(str(p) for p in _pids(pids)) or "NULL"
    app = f" AND application_name = {_literal(application_name)}" if application_name else ""
    return (
        "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE pid IN ({listed}) AND backend_type = 'client backend' "
        f"AND pid <> pg_backend_pid(){app}"
    )


def _preview_sql(pids: list[int], application_name: str | None) -> str:
    listed = ", ".join(str(p) for p in pids) or "NULL"
    app = f" AND application_name = {_literal(application_name)}" if application_name else ""
    return (
        "SELECT pid, application_name, state, query FROM pg_stat_activity "
        f"WHERE pid IN ({listed}) AND backend_type = 'client backend' "
        f"AND pid <> pg_backend_pid(){app} ORDER BY pid"
    )


def _termination(
    pids: list[int],
    sql: str,
    dry_run: bool,
    sessions: list[dict[str, Any]],
    terminated: list[int],
    *,
    prefix: str = "",
) -> Termination:
    listed = ", ".join(str(p) for p in pids) or "none"
    if not pids:
        detail = "no backend to terminate"
    elif dry_run:
        found = {int(s["pid"]) for s in sessions}
        gone = [p for p in pids if p not in found]
        shown = "; ".join(
            f"{s['pid']} ({s.get('state')}: {_short(s.get('query'))})" for s in sessions
        )
        detail = f"would terminate {len(found)} backend(s) (pids {listed})"
        if shown:
            detail += f" [{shown}]"
        if gone:
            detail += f"; already gone or not eligible: {', '.join(map(str, gone))}"
        detail += f" with: {sql}"
    else:
        done = ", ".join(str(p) for p in terminated) or "none"
        detail = f"terminated {len(terminated)} of {len(pids)} backend(s) (pids {done}) with: {sql}"
    return Termination(
        action="terminate-backends",
        object="postgres backends",
        pids=pids,
        sql=sql,
        dry_run=dry_run,
        detail=prefix + detail,
        sessions=sessions,
        terminated=terminated,
        changed=bool(pids),
    )


def _short(query: Any, width: int = 60) -> str:
    text = " ".join(str(query or "").split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _pids(pids: Iterable[int]) -> list[int]:
    out: list[int] = []
    for pid in pids:
        if isinstance(pid, bool) or int(pid) != pid or int(pid) <= 0:
            raise ValueError(f"not a backend pid: {pid!r}")
        if int(pid) not in out:
            out.append(int(pid))
    return out


def _literal(value: str) -> str:
    if "\x00" in value:
        raise ValueError("a NUL character cannot be in an application_name")
    return "'" + value.replace("'", "''") + "'"


def _statement_ends(text: str) -> list[int]:
    """Offsets of the semicolons that end statements (not those in quotes or comments)."""
    ends: list[int] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "-" and text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
        elif ch == "/" and text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif ch in "'\"":
            j = i + 1
            while j < n:
                if text[j] == ch:
                    if j + 1 < n and text[j + 1] == ch:  # a doubled quote
                        j += 2
                        continue
                    break
                j += 1
            i = j + 1
        elif ch == "$":
            m = re.match(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$", text[i:])
            if m:
                tag = m.group(0)
                j = text.find(tag, i + len(tag))
                i = n if j < 0 else j + len(tag)
            else:
                i += 1
        elif ch == ";":
            ends.append(i)
            i += 1
        else:
            i += 1
    return ends


def _without_comments(text: str) -> str:
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"--[^\n]*", " ", text)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _unique(names: list[str]) -> list[str]:
    """Column names made unique (``count``, ``count_2``), as a DataFrame needs them."""
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


def _terminate_frame(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        frame = pd.DataFrame({c: [] for c in TERMINATE_COLUMNS})
    return pd.DataFrame(
        {
            "pid": pd.Series(frame["pid"].to_numpy(), dtype="int64"),
            "duration_seconds": pd.Series(frame["duration_seconds"].to_numpy(), dtype="float64"),
            "state": pd.Series(frame["state"].to_numpy(), dtype="str"),
            "application_name": pd.Series(frame["application_name"].to_numpy(), dtype="str"),
            "usename": pd.Series(frame["usename"].to_numpy(), dtype="str"),
            "client_addr": pd.Series(frame["client_addr"].to_numpy(), dtype="object"),
            "query": pd.Series(frame["query"].to_numpy(), dtype="str"),
        }
    )


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
