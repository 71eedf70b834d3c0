"""PostgreSQL and Redis answered from a snapshot's recorded files (read-only twins of
``postgres.PostgresBackend`` and ``redis.RedisBackend``)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..errors import BackendUnavailable
from .postgres import activity_frame, long_running_from_activity, states_from_activity
from .redis import hit_ratio_from_info, info_section
from .snapshot import Snapshot, utc

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

    def long_running_queries(self, min_seconds: float = 300) -> pd.DataFrame:
        """Same columns as ``PostgresBackend.long_running_queries``; durations as of the
        capture time."""
        return long_running_from_activity(self.activity(), self.captured_at, min_seconds)


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
