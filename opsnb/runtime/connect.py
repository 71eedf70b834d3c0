"""Build a target's backends: live services, or a recorded snapshot.

Each function returns a backend with the same calls whatever the target kind, so a runbook
cell never asks where its data comes from.
"""

from __future__ import annotations

from typing import Any

from ..config import Target
from ..errors import BackendUnavailable


def snapshot_for(target: Target, service: str) -> Any:
    from ..backends.snapshot import Snapshot

    assert target.snapshot is not None
    return Snapshot.open_for_service(target.snapshot, service)


def prometheus(target: Target, snapshot: Any) -> Any:
    if snapshot is not None:
        from ..backends.snapshot import SnapshotPrometheus

        return SnapshotPrometheus(snapshot)
    if target.prometheus is None:
        raise BackendUnavailable("prometheus", f"target {target.name!r} configures no prometheus")
    from ..backends.prometheus import PrometheusBackend

    return PrometheusBackend(target.prometheus.url, timeout=target.prometheus.timeout)


def kubernetes(target: Target, snapshot: Any) -> Any:
    if snapshot is not None:
        from ..backends.snapshot import SnapshotKubernetes

        return SnapshotKubernetes(snapshot)
    if target.kubernetes is None:
        raise BackendUnavailable("kubernetes", f"target {target.name!r} configures no kubernetes")
    from ..backends.kubernetes import KubernetesBackend

    token = target.kubernetes.token.resolve() if target.kubernetes.token else None
    return KubernetesBackend.from_config(target.kubernetes, token=token)


def postgres(target: Target, snapshot: Any) -> Any:
    if snapshot is not None:
        from ..backends.snapshot_stores import SnapshotPostgres

        return SnapshotPostgres(snapshot)
    cfg = target.postgres
    if cfg is None:
        raise BackendUnavailable("postgres", f"target {target.name!r} configures no postgres")
    from ..backends.postgres import PostgresBackend

    conninfo: dict[str, Any]
    if cfg.dsn is not None:
        conninfo = {"conninfo": cfg.dsn.resolve()}
    else:
        conninfo = {"host": cfg.host, "port": cfg.port, "dbname": cfg.dbname, "user": cfg.user}
        if cfg.password is not None:
            conninfo["password"] = cfg.password.resolve()
    return PostgresBackend(conninfo, connect_timeout=cfg.connect_timeout)


def redis(target: Target, snapshot: Any) -> Any:
    if snapshot is not None:
        from ..backends.snapshot_stores import SnapshotRedis

        return SnapshotRedis(snapshot)
    cfg = target.redis
    if cfg is None:
        raise BackendUnavailable("redis", f"target {target.name!r} configures no redis")
    from ..backends.redis import RedisBackend

    password = cfg.password.resolve() if cfg.password else None
    return RedisBackend(cfg.url, password=password, timeout=cfg.timeout)
