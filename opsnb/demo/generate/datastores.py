"""Recorded PostgreSQL and Redis state: ``pg_stat_activity`` rows and Redis ``INFO all``."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta

from .common import Json, iso, iso_pg


def pg_row(
    *,
    pid: int,
    datname: str | None,
    usename: str | None,
    app: str,
    client_addr: str | None,
    client_port: int | None,
    backend_start: datetime,
    xact_start: datetime | None,
    query_start: datetime | None,
    state_change: datetime | None,
    state: str | None,
    wait_event_type: str | None,
    wait_event: str | None,
    query: str,
    backend_type: str = "client backend",
    backend_xid: int | None = None,
    backend_xmin: int | None = None,
) -> Json:
    def ts(dt: datetime | None) -> str | None:
        return iso_pg(dt) if dt else None

    client = backend_type == "client backend"
    return {
        "datid": 16384 if datname else None,
        "datname": datname,
        "pid": pid,
        "leader_pid": None,
        "usesysid": (16385 if usename != "postgres" else 10) if usename else None,
        "usename": usename,
        "application_name": app,
        "client_addr": client_addr,
        "client_hostname": None,
        "client_port": client_port if client else None,
        "backend_start": ts(backend_start),
        "xact_start": ts(xact_start),
        "query_start": ts(query_start),
        "state_change": ts(state_change),
        "wait_event_type": wait_event_type,
        "wait_event": wait_event,
        "state": state,
        "backend_xid": backend_xid,
        "backend_xmin": backend_xmin,
        "query_id": None,
        "query": query,
        "backend_type": backend_type,
    }


def pg_background(pids: Callable[[], int], server_start: datetime) -> list[Json]:
    rows = []
    for backend_type, wait_type, wait, user in (
        ("autovacuum launcher", "Activity", "AutoVacuumMain", None),
        ("logical replication launcher", "Activity", "LogicalLauncherMain", "postgres"),
        ("background writer", "Activity", "BgWriterHibernate", None),
        ("checkpointer", "Activity", "CheckpointerMain", None),
        ("walwriter", "Activity", "WalWriterMain", None),
    ):
        rows.append(
            pg_row(
                pid=pids(),
                datname=None,
                usename=user,
                app="",
                client_addr=None,
                client_port=None,
                backend_start=server_start,
                xact_start=None,
                query_start=None,
                state_change=None,
                state=None,
                wait_event_type=wait_type,
                wait_event=wait,
                query="",
                backend_type=backend_type,
            )
        )
    return rows


def pid_source(rng: random.Random, first: int) -> Callable[[], int]:
    """Increasing backend pids with random gaps, as a busy server hands them out."""
    pid = first

    def nxt() -> int:
        nonlocal pid
        pid += rng.randrange(3, 400)
        return pid

    return nxt


def pg_self_row(
    pids: Callable[[], int],
    rng: random.Random,
    *,
    datname: str,
    now: datetime,
    xmin: Callable[[], int] | None = None,
) -> Json:
    """opsnb's own connection, reading ``pg_stat_activity`` at ``now``."""
    pid = pids()
    port = rng.randrange(32768, 60999)
    return pg_row(
        pid=pid,
        datname=datname,
        usename="postgres",
        app="opsnb",
        client_addr="10.0.9.14",
        client_port=port,
        backend_start=now - timedelta(seconds=1),
        xact_start=now,
        query_start=now,
        state_change=now,
        state="active",
        wait_event_type=None,
        wait_event=None,
        query="SELECT * FROM pg_stat_activity",
        backend_xmin=xmin() if xmin else None,
    )


def pg_activity(now: datetime, max_connections: int, rows: list[Json]) -> Json:
    """``postgres/activity.json``."""
    return {"captured_at": iso(now), "max_connections": max_connections, "activity": rows}


def redis_capture(captured: datetime, info: Json) -> Json:
    """``redis/info.json``."""
    return {"captured_at": iso(captured), "info": info}


def redis_info(
    rng: random.Random,
    *,
    captured: datetime,
    uptime_days: int,
    hits: int,
    misses: int,
    clients: int,
    used_memory: int,
    ops: int,
    keys: int,
    run_id: str,
) -> Json:
    """``INFO all`` as redis-py's ``Redis.info("all")`` returns it (typed values)."""
    uptime = uptime_days * 86400 + rng.randrange(0, 86400)
    commands = hits + misses + rng.randrange(200_000_000, 400_000_000)
    gets = hits + misses
    sets = commands - gets - rng.randrange(10_000_000, 20_000_000)
    return {
        "redis_version": "7.2.4",
        "redis_git_sha1": 0,
        "redis_git_dirty": 0,
        "redis_build_id": "5f5c85d8ef2a2ab0",
        "redis_mode": "standalone",
        "os": "Linux 6.1.0-18-cloud-amd64 x86_64",
        "arch_bits": 64,
        "multiplexing_api": "epoll",
        "gcc_version": "12.2.0",
        "process_id": 1,
        "run_id": run_id,
        "tcp_port": 6379,
        "server_time_usec": int(captured.timestamp()) * 1_000_000 + rng.randrange(0, 999_999),
        "uptime_in_seconds": uptime,
        "uptime_in_days": uptime // 86400,
        "hz": 10,
        "configured_hz": 10,
        "lru_clock": rng.randrange(1, 16_777_215),
        "executable": "/data/redis-server",
        "config_file": "/etc/redis/redis.conf",
        "io_threads_active": 0,
        "connected_clients": clients,
        "cluster_connections": 0,
        "maxclients": 10000,
        "client_recent_max_input_buffer": 20480,
        "client_recent_max_output_buffer": 0,
        "blocked_clients": 0,
        "tracking_clients": 0,
        "clients_in_timeout_table": 0,
        "used_memory": used_memory,
        "used_memory_human": f"{used_memory / 2**20:.2f}M",
        "used_memory_rss": int(used_memory * 1.08),
        "used_memory_rss_human": f"{used_memory * 1.08 / 2**20:.2f}M",
        "used_memory_peak": int(used_memory * 1.12),
        "used_memory_peak_human": f"{used_memory * 1.12 / 2**20:.2f}M",
        "used_memory_peak_perc": "89.29%",
        "maxmemory": 4 * 2**30,
        "maxmemory_human": "4.00G",
        "maxmemory_policy": "allkeys-lru",
        "mem_fragmentation_ratio": 1.08,
        "mem_allocator": "jemalloc-5.3.0",
        "loading": 0,
        "rdb_changes_since_last_save": rng.randrange(1000, 90000),
        "rdb_bgsave_in_progress": 0,
        "rdb_last_save_time": int(captured.timestamp()) - rng.randrange(60, 900),
        "rdb_last_bgsave_status": "ok",
        "aof_enabled": 0,
        "aof_last_bgrewrite_status": "ok",
        "aof_last_write_status": "ok",
        "total_connections_received": rng.randrange(20_000, 90_000),
        "total_commands_processed": commands,
        "instantaneous_ops_per_sec": ops,
        "total_net_input_bytes": commands * 61,
        "total_net_output_bytes": commands * 412,
        "instantaneous_input_kbps": round(ops * 0.061, 2),
        "instantaneous_output_kbps": round(ops * 0.412, 2),
        "rejected_connections": 0,
        "expired_keys": rng.randrange(5_000_000, 9_000_000),
        "evicted_keys": 0,
        "keyspace_hits": hits,
        "keyspace_misses": misses,
        "pubsub_channels": 0,
        "pubsub_patterns": 0,
        "latest_fork_usec": rng.randrange(3000, 12000),
        "total_forks": rng.randrange(800, 4000),
        "migrate_cached_sockets": 0,
        "total_error_replies": rng.randrange(0, 40),
        "role": "master",
        "connected_slaves": 1,
        "slave0": {
            "ip": "10.0.3.41",
            "port": 6379,
            "state": "online",
            "offset": commands * 37,
            "lag": 0,
        },
        "master_failover_state": "no-failover",
        "master_repl_offset": commands * 37,
        "repl_backlog_active": 1,
        "used_cpu_sys": round(uptime * 0.021, 6),
        "used_cpu_user": round(uptime * 0.034, 6),
        "cmdstat_get": {
            "calls": gets,
            "usec": gets * 2,
            "usec_per_call": 2.0,
            "rejected_calls": 0,
            "failed_calls": 0,
        },
        "cmdstat_set": {
            "calls": sets,
            "usec": sets * 3,
            "usec_per_call": 3.0,
            "rejected_calls": 0,
            "failed_calls": 0,
        },
        "errorstat_ERR": {"count": 3},
        "cluster_enabled": 0,
        "db0": {"keys": keys, "expires": int(keys * 0.97), "avg_ttl": 583_112, "subexpiry": 0},
    }
