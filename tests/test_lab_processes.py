"""The lab's real services start, answer on loopback and stop cleanly."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
import psycopg
import pytest
import redis

from opsnb.errors import OpsnbError
from opsnb.lab import processes


def test_postgres_accepts_the_password_and_refuses_without_it(postgres_server):
    info = postgres_server.conninfo()
    with psycopg.connect(**info) as conn:
        db, user = conn.execute("SELECT current_database(), current_user").fetchone()
        assert (db, user) == ("app", "postgres")
        assert conn.execute("SHOW max_connections").fetchone() == ("50",)
        assert conn.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)

    without = {k: v for k, v in info.items() if k != "password"}
    with pytest.raises(psycopg.OperationalError, match="password"):
        psycopg.connect(**without, password="wrong")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(**without)
    assert "opsnb-lab-password" not in repr(postgres_server)


def test_redis_ping(redis_server):
    client = redis.Redis.from_url(redis_server.url, socket_timeout=2)
    assert client.ping() is True
    assert client.config_get("save") == {"save": ""}


def test_redis_requirepass(tmp_path):
    server = processes.start_redis(tmp_path, password="s3cret")
    try:
        with pytest.raises(redis.AuthenticationError):
            redis.Redis.from_url(server.url, socket_timeout=2).ping()
        assert server.client(socket_timeout=2).ping() is True
    finally:
        server.stop()
    assert not server.running()


def test_prometheus_ready_and_query(prometheus_server):
    assert httpx.get(f"{prometheus_server.url}/-/ready", timeout=3).status_code == 200
    response = httpx.get(f"{prometheus_server.url}/api/v1/query", params={"query": "up"}, timeout=3)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "success"
    assert body["data"]["resultType"] == "vector"


def test_prometheus_reload(prometheus_server):
    prometheus_server.reconfigure(scrape_targets=[])
    status = httpx.get(f"{prometheus_server.url}/api/v1/status/config", timeout=3).json()
    assert "scrape_interval: 1s" in status["data"]["yaml"]


def test_alertmanager_status(alertmanager_server):
    response = httpx.get(f"{alertmanager_server.url}/api/v2/status", timeout=3)
    assert response.status_code == 200
    body = response.json()
    assert body["cluster"]["status"] in ("disabled", "ready")
    assert "route" in body["config"]["original"]


def test_missing_binary_names_the_debian_package(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing to find here
    with pytest.raises(processes.ServiceStartError, match="prometheus-alertmanager") as info:
        processes.start_alertmanager(tmp_path)
    assert isinstance(info.value, OpsnbError)
    monkeypatch.setattr(processes, "PG_BIN", Path(tmp_path))
    with pytest.raises(processes.ServiceStartError, match="postgresql-15"):
        processes.start_postgres(tmp_path)


def test_failed_start_reports_the_log_tail(tmp_path):
    with pytest.raises(processes.ServiceStartError, match="last lines of the alertmanager log"):
        processes.start_alertmanager(tmp_path, config_yaml="route: [this is not a route\n")


def test_stop_kills_the_process_group(tmp_path):
    server = processes.start_redis(tmp_path)
    pid = server.pid
    server.stop()
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)  # signal 0 only checks that the group still exists


def test_free_port_is_bindable():
    import socket

    port = processes.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
