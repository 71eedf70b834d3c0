"""PostgreSQL and Redis answered from a snapshot's recorded files (read-only twins of
``postgres.PostgresBackend`` and ``redis.RedisBackend``).

Besides the files of the snapshot format (``postgres/activity.json``, ``redis/info.json``),
these optional files are read when a snapshot has them:

    postgres/databases.json    {"captured_at", "databases": [{"datname", "size_bytes"}]}
    postgres/replication.json  {"captured_at", "replication": [pg_stat_replication rows]}
    redis/keys.json            {"captured_at", "keys": [{"key", "type", "bytes", "ttl_seconds"}]}

A call whose file is not recorded raises ``BackendUnavailable`` saying which file is missing.
Mutating calls only preview: a snapshot is read-only.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from ..errors import BackendUnavailable
from .postgres import (
    Termination,
    _pids,
    _termination,
    activity_frame,
    check_single_statement,
    database_sizes_frame,
    idle_in_transaction_from_activity,
    long_running_from_activity,
    replication_frame,
    states_from_activity,
    terminate_candidates_from_activity,
    terminate_sql,
)
from .redis import (
    SAMPLE_KEYS,
    KeyDeletion,
    _deletion,
    _refuse_over,
    check_flush_pattern,
    glob_match,
    hit_ratio_from_info,
    info_section,
    key_sizes_frame,
    memory_from_info,
)
from .snapshot import Snapshot, utc

READ_ONLY = "snapshot is read-only, nothing changed"

# --- PostgreSQL and Redis -----------------------------------------------------------------------


class SnapshotPostgres:
    """``PostgresBackend``'s calls answered from postgres/activity.json (as captured)."""

    name = "postgres (snapshot)"

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def __repr__(self) -> str:
        return f"SnapshotPostgres({self.snapshot!r})"

    def _data(self) -> dict[str, Any]:
        data = self.snapshot.read_json("postgres/activity.json")
        if data is None:
            down = self.snapshot.dependency_down("postgres")
            raise BackendUnavailable(
                self.name, down or "postgres/activity.json is not recorded in the snapshot"
            )
        return dict(data)

    @property
    def captured_at(self) -> pd.Timestamp:
        raw = self._data().get("captured_at")
        return utc(raw) if raw else self.snapshot.now

    def ping(self) -> bool:
        down = self.snapshot.dependency_down("postgres")
        if down:
            raise BackendUnavailable(self.name, down)
        self._data()
        return True

    def max_connections(self) -> int:
        value = self._data().get("max_connections")
        if value is None:
            raise BackendUnavailable(self.name, "max_connections is not recorded in the snapshot")
        return int(value)

    def activity(self) -> pd.DataFrame:
        """Same columns as ``PostgresBackend.activity``."""
        return activity_frame(list(self._data().get("activity") or []))

    def connections_by_state(self) -> pd.DataFrame:
        """Same columns as ``PostgresBackend.connections_by_state``."""
        return states_from_activity(self.activity())

    def idle_in_transaction(self, min_seconds: float = 5) -> int:
        """As ``PostgresBackend.idle_in_transaction``, as of the capture time."""
        return idle_in_transaction_from_activity(self.activity(), self.captured_at, min_seconds)

    def long_running_queries(self, min_seconds: float = 300) -> pd.DataFrame:
        """Same columns as ``PostgresBackend.long_running_queries``; durations as of the
        capture time."""
        return long_running_from_activity(self.activity(), self.captured_at, min_seconds)

    def _optional(self, relative: str, key: str, what: str) -> list[Any]:
        data = self.snapshot.read_json(relative)
        if data is None:
            down = self.snapshot.dependency_down("postgres")
            raise BackendUnavailable(
                self.name, down or f"{what} not recorded in the snapshot ({relative})"
            )
        return list(data.get(key) or [])

    def database_sizes(self) -> pd.DataFrame:
        """Same columns as ``PostgresBackend.database_sizes``, from postgres/databases.json."""
        return database_sizes_frame(
            self._optional("postgres/databases.json", "databases", "database sizes are")
        )

    def replication(self) -> pd.DataFrame:
        """Same columns as ``PostgresBackend.replication``, from postgres/replication.json."""
        return replication_frame(
            self._optional("postgres/replication.json", "replication", "replication status is")
        )

    def read_only_query(self, sql: str, limit: int = 100, timeout_ms: int = 5000) -> pd.DataFrame:
        """A recorded snapshot has no database to ask: the statement is checked as the live
        call checks it, then BackendUnavailable."""
        check_single_statement(sql)
        raise BackendUnavailable(
            self.name, "a recorded snapshot cannot run queries; run against a live target"
        )

    def backends_to_terminate(
        self, min_seconds: float, application_name: str | None = None
    ) -> pd.DataFrame:
        """Same columns as ``PostgresBackend.backends_to_terminate``; ages as of the
        capture time."""
        return terminate_candidates_from_activity(
            self.activity(), self.captured_at, min_seconds, application_name or None
        )

    def terminate_backends(
        self, pids: Iterable[int], *, dry_run: bool, application_name: str | None = None
    ) -> Termination:
        """What ``PostgresBackend.terminate_backends`` would do, from the recorded activity;
        never terminates anything (a snapshot is read-only)."""
        wanted = _pids(pids)
        activity = self.activity()
        eligible = activity[
            activity["pid"].isin(wanted) & (activity["backend_type"] == "client backend")
        ]
        if application_name:
            eligible = eligible[eligible["application_name"] == application_name]
        sessions = [
            {"pid": int(str(r.pid)), "application_name": r.application_name, "state": r.state,
             "query": r.query}
            for r in eligible.sort_values("pid").itertuples()
        ]  # fmt: skip
        sql = terminate_sql(wanted, application_name)
        return _termination(wanted, sql, True, sessions, [], prefix=f"{READ_ONLY}: ")


class SnapshotRedis:
    """``RedisBackend``'s calls answered from redis/info.json (``INFO all`` as captured)."""

    name = "redis (snapshot)"

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def __repr__(self) -> str:
        return f"SnapshotRedis({self.snapshot!r})"

    def _info(self) -> dict[str, Any]:
        data = self.snapshot.read_json("redis/info.json")
        if data is None:
            down = self.snapshot.dependency_down("redis")
            raise BackendUnavailable(
                self.name, down or "redis/info.json is not recorded in the snapshot"
            )
        return dict(data.get("info") or {})

    def ping(self) -> bool:
        down = self.snapshot.dependency_down("redis")
        if down:
            raise BackendUnavailable(self.name, down)
        self._info()
        return True

    def info(self, section: str | None = None) -> dict[str, Any]:
        """The recorded INFO: ``keyspace`` gives the db entries, any other section every
        recorded field (a snapshot keeps INFO all without section headers)."""
        return info_section(self._info(), section)

    def hit_ratio(self) -> float | None:
        return hit_ratio_from_info(self._info())

    def memory(self) -> dict[str, Any]:
        """Same keys as ``RedisBackend.memory``, from the recorded INFO."""
        return memory_from_info(self._info())

    def _keys(self) -> list[dict[str, Any]]:
        data = self.snapshot.read_json("redis/keys.json")
        if data is None:
            down = self.snapshot.dependency_down("redis")
            raise BackendUnavailable(
                self.name,
                down
                or "keys are not recorded in the snapshot (redis/keys.json); it keeps INFO only",
            )
        return [dict(k) for k in data.get("keys") or []]

    def scan_keys(self, pattern: str, batch: int = 500, limit: int | None = None) -> list[str]:
        """Recorded key names matching the glob ``pattern``, at most ``limit``."""
        names = [str(k["key"]) for k in self._keys() if glob_match(str(k["key"]), pattern)]
        return names if limit is None else names[: max(0, int(limit))]

    def key_sizes(self, pattern: str = "*", sample: int = 200) -> pd.DataFrame:
        """Same columns as ``RedisBackend.key_sizes``, from redis/keys.json."""
        rows = [k for k in self._keys() if glob_match(str(k["key"]), pattern)]
        return key_sizes_frame(rows[: max(0, int(sample))])

    def delete_keys(
        self, pattern: str, *, dry_run: bool, batch: int = 500, max_keys: int
    ) -> KeyDeletion:
        """What ``RedisBackend.delete_keys`` would delete, from redis/keys.json; deletes
        nothing (a snapshot is read-only). Refuses over ``max_keys`` like the live call."""
        check_flush_pattern(pattern)
        keys = self.scan_keys(pattern, batch, int(max_keys) + 1)
        _refuse_over(len(keys), pattern, int(max_keys))
        return _deletion(pattern, len(keys), keys[:SAMPLE_KEYS], True, 0, prefix=f"{READ_ONLY}: ")
