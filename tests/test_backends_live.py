"""Live backends against real services on loopback: PostgreSQL, Redis, Prometheus (with a
real scrape target), and the Kubernetes test API server driven by the official client.

Unavailable cases use real sockets too: a closed port, a port that accepts and never
answers, an HTTP server answering 5xx, a wrong password.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import psycopg
import pytest

from opsnb.backends import kube_objects
from opsnb.backends.kubernetes import KubernetesBackend
from opsnb.backends.postgres import ACTIVITY_COLUMNS, PostgresBackend
from opsnb.backends.prometheus import PrometheusBackend, PrometheusQueryError
from opsnb.backends.redis import RedisBackend
from opsnb.backends.snapshot import Snapshot, SnapshotKubernetes
from opsnb.config import KubernetesConfig
from opsnb.errors import BackendUnavailable
from opsnb.lab import processes
from opsnb.lab.kubeapi import KubeAPIServer

SERVICE = "opsnb-test"


# --- unavailable servers made of real sockets ---------------------------------------------------


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    return processes.free_port()


@pytest.fixture(scope="module")
def silent_port() -> Iterator[int]:
    """A port that completes TCP handshakes (the kernel backlog) but never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield int(sock.getsockname()[1])
    sock.close()


class _ErrorHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path.startswith("/plain"):
            body, ctype, code = b"upstream connect error", "text/plain", 502
        else:
            body = json.dumps(
                {"status": "error", "errorType": "unavailable", "error": "overloaded"}
            ).encode()
            ctype, code = "application/json", 503
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def error_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ErrorHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def elapsed(fn: Any) -> tuple[BaseException, float]:
    began = time.monotonic()
    with pytest.raises(BackendUnavailable) as info:
        fn()
    return info.value, time.monotonic() - began


# --- Prometheus ---------------------------------------------------------------------------------

RULES = """
groups:
  - name: opsnb-test
    rules:
      - alert: OpsnbTestAlwaysFiring
        expr: vector(1)
        for: 0s
        labels: {severity: page}
        annotations: {summary: always firing, runbook_url: "http://runbooks.example/x"}
"""


@pytest.fixture(scope="module")
def scraped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[processes.Prometheus]:
    """A real Prometheus scraping a prometheus_client exporter with fixed counter values,
    and evaluating one always-firing alert rule."""
    from prometheus_client import CollectorRegistry, Counter, start_http_server

    registry = CollectorRegistry()
    requests = Counter(
        "http_requests_total", "requests", ["service", "endpoint", "status"], registry=registry
    )
    requests.labels(SERVICE, "/api/checkout", "200").inc(40)
    requests.labels(SERVICE, "/api/checkout", "503").inc(10)
    requests.labels(SERVICE, "/api/items", "200").inc(50)
    port = processes.free_port()
    exporter, exporter_thread = start_http_server(port, addr="127.0.0.1", registry=registry)
    workdir = tmp_path_factory.mktemp("prometheus-live")
    rules = workdir / "rules.yml"
    rules.write_text(RULES)
    prom = processes.start_prometheus(
        workdir, scrape_targets=[f"127.0.0.1:{port}"], rule_files=[rules]
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        result = prom.query(f'count_over_time(http_requests_total{{service="{SERVICE}"}}[1m])')
        alerts = httpx.get(f"{prom.url}/api/v1/alerts").json()["data"]["alerts"]
        if len(result) == 3 and min(float(r["value"][1]) for r in result) >= 6 and alerts:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"Prometheus did not scrape the exporter:\n{prom.log_tail()}")
    yield prom
    prom.stop()
    exporter.shutdown()
    exporter_thread.join(5)


def test_prometheus_instant_query_has_labels_and_values(scraped: processes.Prometheus) -> None:
    prom = PrometheusBackend(scraped.url)
    before = pd.Timestamp.now(tz="UTC")
    frame = prom.query(f'http_requests_total{{service="{SERVICE}"}}')
    assert list(frame.columns[:2]) == ["timestamp", "value"]
    assert {"endpoint", "status", "service", "instance", "job", "__name__"} <= set(frame.columns)
    values = {(r.endpoint, r.status): r.value for r in frame.itertuples()}
    assert values == {("/api/checkout", "200"): 40.0, ("/api/checkout", "503"): 10.0,
                      ("/api/items", "200"): 50.0}  # fmt: skip
    assert str(frame["timestamp"].dt.tz) == "UTC"
    assert abs(frame["timestamp"].iloc[0] - before) < pd.Timedelta(seconds=10)
    at = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(seconds=1)).floor("s")
    pinned = prom.query(f'sum(http_requests_total{{service="{SERVICE}"}})', at=at.to_pydatetime())
    assert pinned["timestamp"].tolist() == [at]
    assert pinned["value"].tolist() == [100.0]
    nan = prom.query("0/0")
    assert len(nan) == 1 and pd.isna(nan["value"].iloc[0])


def test_prometheus_range_and_named_queries(scraped: processes.Prometheus) -> None:
    prom = PrometheusBackend(scraped.url)
    end = pd.Timestamp.now(tz="UTC")
    start = end - pd.Timedelta(seconds=10)
    frame = prom.query_range(
        f'sum by (status) (http_requests_total{{service="{SERVICE}"}})', start, end, 2
    )
    assert list(frame.columns) == ["timestamp", "value", "status"]
    assert set(frame["status"]) == {"200", "503"}
    assert set(frame[frame["status"] == "503"]["value"]) == {10.0}
    assert set(frame[frame["status"] == "200"]["value"]) == {90.0}
    steps = frame[frame["status"] == "200"]["timestamp"].diff().dropna()
    assert (steps == pd.Timedelta(seconds=2)).all() and len(steps) >= 2
    # the counters do not move, so every named rate is zero and the 5xx share is undefined
    rate = prom.named("throughput", SERVICE, "30s")
    assert rate["value"].tolist() == [0.0]
    ranged = prom.named_range(
        "errors_by_endpoint", SERVICE, "30s", start, end, timedelta(seconds=5)
    )
    assert set(ranged["endpoint"]) == {"/api/checkout"} and set(ranged["value"]) == {0.0}
    assert prom.named("error_rate", SERVICE, "30s")["value"].isna().all()
    assert prom.query('http_requests_total{service="nobody"}').empty


def test_prometheus_alerts_and_ready(scraped: processes.Prometheus) -> None:
    prom = PrometheusBackend(scraped.url)
    alerts = prom.alerts()
    assert list(alerts.columns[:5]) == ["alertname", "state", "labels", "active_at", "value"]
    row = alerts[alerts["alertname"] == "OpsnbTestAlwaysFiring"].iloc[0]
    assert row["state"] == "firing" and row["value"] == 1.0
    assert row["labels"] == {"alertname": "OpsnbTestAlwaysFiring", "severity": "page"}
    assert row["annotations"]["runbook_url"] == "http://runbooks.example/x"
    assert (
        row["active_at"] <= pd.Timestamp.now(tz="UTC") and str(alerts["active_at"].dt.tz) == "UTC"
    )
    assert prom.ready() is True
    assert PrometheusBackend(f"http://127.0.0.1:{closed_port()}").ready() is False


def test_prometheus_bad_query_is_the_callers_error(scraped: processes.Prometheus) -> None:
    prom = PrometheusBackend(scraped.url)
    with pytest.raises(PrometheusQueryError, match="parse error") as info:
        prom.query("sum(rate(http_requests_total[5m])")
    assert isinstance(info.value, ValueError) and not isinstance(info.value, BackendUnavailable)
    with pytest.raises(ValueError, match="step"):
        prom.query_range("up", datetime.now(UTC) - timedelta(minutes=1), datetime.now(UTC), 0)


def test_prometheus_unavailable(silent_port: int, error_server: str) -> None:
    exc, took = elapsed(lambda: PrometheusBackend(f"http://127.0.0.1:{closed_port()}").query("up"))
    assert "connection refused at 127.0.0.1:" in str(exc) and took < 2
    assert isinstance(exc, BackendUnavailable) and exc.backend == "prometheus"
    exc, took = elapsed(
        lambda: PrometheusBackend(f"http://127.0.0.1:{silent_port}", timeout=0.5).query("up")
    )
    assert "timed out after 0.5s" in str(exc) and took < 2.5
    exc, _ = elapsed(lambda: PrometheusBackend(error_server).query("up"))
    assert "HTTP 503 (unavailable) from Prometheus: overloaded" in str(exc)
    exc, _ = elapsed(lambda: PrometheusBackend(error_server + "/plain").alerts())
    assert "HTTP 502" in str(exc)
    exc, _ = elapsed(lambda: PrometheusBackend("http://no-such-host.invalid:9090").query("up"))
    assert "cannot resolve" in str(exc) or "cannot connect" in str(exc)


def test_prometheus_with_injected_client(scraped: processes.Prometheus) -> None:
    seen: list[str] = []
    client = httpx.Client(event_hooks={"request": [lambda r: seen.append(str(r.url.path))]})
    prom = PrometheusBackend(scraped.url + "/", client=client)
    assert prom.query("vector(7)")["value"].tolist() == [7.0]
    assert seen == ["/api/v1/query"]


# --- PostgreSQL ---------------------------------------------------------------------------------


def _states(pg: PostgresBackend) -> dict[str, int]:
    frame = pg.connections_by_state()
    assert list(frame.columns) == ["state", "count"]
    return dict(zip(frame["state"], frame["count"], strict=True))


def test_postgres_ping_and_settings(postgres_server: processes.Postgres) -> None:
    pg = PostgresBackend(postgres_server.conninfo())
    assert pg.ping() is True
    with psycopg.connect(**postgres_server.conninfo()) as conn:
        setting = conn.execute("SELECT current_setting('max_connections')::int").fetchone()
    assert setting is not None and pg.max_connections() == setting[0] == 50
    with pg._connection() as conn:  # every session is read-only
        assert conn.execute("SHOW default_transaction_read_only").fetchone()[0] == "on"
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "5s"
    assert postgres_server.password not in repr(pg)


def test_postgres_connections_and_long_running(postgres_server: processes.Postgres) -> None:
    pg = PostgresBackend(postgres_server.conninfo())
    before = _states(pg)
    info = postgres_server.conninfo()
    idle = psycopg.connect(**info, application_name="opsnb-idle")
    in_tx = psycopg.connect(**info, application_name="opsnb-in-tx")
    in_tx.execute("SELECT 1")  # psycopg opens a transaction and leaves it open
    sleeper = psycopg.connect(**info, application_name="opsnb-sleeper", autocommit=True)
    sleeper_pid = sleeper.info.backend_pid
    worker = threading.Thread(
        target=lambda: _swallow(lambda: sleeper.execute("SELECT pg_sleep(60)")), daemon=True
    )
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            after = _states(pg)
            if after.get("active", 0) > before.get("active", 0):
                break
            time.sleep(0.1)
        assert after.get("idle", 0) == before.get("idle", 0) + 1
        assert after.get("idle in transaction", 0) == before.get("idle in transaction", 0) + 1
        assert after.get("active", 0) == before.get("active", 0) + 1
        time.sleep(1.2)
        slow = pg.long_running_queries(min_seconds=1)
        assert list(slow.columns) == [
            "pid", "duration_seconds", "state", "query", "application_name", "usename",
        ]  # fmt: skip
        mine = slow[slow["pid"] == sleeper_pid]
        assert len(mine) == 1
        row = mine.iloc[0]
        assert row["query"] == "SELECT pg_sleep(60)" and row["state"] == "active"
        assert row["application_name"] == "opsnb-sleeper" and row["usename"] == "postgres"
        assert 1.0 <= row["duration_seconds"] < 30
        assert in_tx.info.backend_pid in set(slow["pid"])  # idle in transaction counts too
        # in_tx has been idle in its transaction for over a second, not for an hour
        assert pg.idle_in_transaction(min_seconds=1) >= 1 + pg.idle_in_transaction(3600)
        assert idle.info.backend_pid not in set(slow["pid"])  # idle does not
        assert sleeper_pid not in set(pg.long_running_queries(min_seconds=300)["pid"])
        activity = pg.activity()
        assert list(activity.columns) == ACTIVITY_COLUMNS
        sleeping = activity[activity["pid"] == sleeper_pid].iloc[0]
        assert sleeping["wait_event"] == "PgSleep" and sleeping["backend_type"] == "client backend"
        assert str(activity["query_start"].dt.tz) == "UTC"
        assert sleeping["query_start"] <= pd.Timestamp.now(tz="UTC")
    finally:
        with psycopg.connect(**info, autocommit=True) as admin:
            admin.execute("SELECT pg_cancel_backend(%s)", (sleeper_pid,))
        worker.join(10)
        for conn in (idle, in_tx, sleeper):
            conn.close()
    assert sleeper_pid not in set(pg.long_running_queries(min_seconds=0)["pid"])


def _swallow(fn: Any) -> None:
    with contextlib.suppress(psycopg.Error):
        fn()


def test_postgres_statement_timeout_is_unavailable(postgres_server: processes.Postgres) -> None:
    pg = PostgresBackend(postgres_server.conninfo(), statement_timeout_ms=200)
    exc, took = elapsed(lambda: pg._rows("SELECT pg_sleep(2)"))
    assert "200 ms statement timeout" in str(exc) and took < 1.5


def test_postgres_unavailable_without_secrets(postgres_server: processes.Postgres) -> None:
    wrong = "not-the-password-7f3a"
    info = postgres_server.conninfo(password=wrong)
    exc, took = elapsed(lambda: PostgresBackend(info).connections_by_state())
    assert f"authentication failed at 127.0.0.1:{postgres_server.port}" in str(exc)
    assert wrong not in str(exc) and postgres_server.password not in str(exc)
    assert took < 3
    dsn = f"postgresql://postgres:{wrong}@127.0.0.1:{postgres_server.port}/app"
    by_dsn = PostgresBackend({"conninfo": dsn})
    exc, _ = elapsed(by_dsn.ping)
    assert "authentication failed" in str(exc) and wrong not in str(exc) and dsn not in str(exc)
    assert wrong not in repr(by_dsn) and f"127.0.0.1:{postgres_server.port}" in repr(by_dsn)
    port = closed_port()
    exc, took = elapsed(lambda: PostgresBackend({**info, "port": port}).ping())
    assert str(exc) == f"postgres unavailable: connection refused at 127.0.0.1:{port}"
    assert took < 2
    exc, _ = elapsed(lambda: PostgresBackend(postgres_server.conninfo(dbname="nope")).ping())
    assert 'database "nope" does not exist' in str(exc)


def test_postgres_connect_timeout(silent_port: int) -> None:
    pg = PostgresBackend(
        {"host": "127.0.0.1", "port": silent_port, "user": "x", "password": "secret-pw"},
        connect_timeout=1,
    )
    exc, took = elapsed(pg.ping)
    assert "timed out" in str(exc) and "secret-pw" not in str(exc)
    assert took < 4.5  # libpq's smallest connect_timeout is 2 s


# --- Redis --------------------------------------------------------------------------------------


def test_redis_ping_info_and_hit_ratio(redis_server: processes.Redis) -> None:
    cache = RedisBackend(redis_server.url, password=redis_server.password)
    assert cache.ping() is True
    assert cache.info()["redis_version"].startswith("7.")
    assert set(cache.info("memory")) >= {"used_memory"} and "used_memory" not in cache.info("stats")
    direct = redis_server.client()
    try:
        direct.config_resetstat()
        assert cache.hit_ratio() is None
        direct.set("opsnb:test:key", "v")
        for _ in range(3):
            direct.get("opsnb:test:key")
        direct.get("opsnb:test:missing")
        assert cache.hit_ratio() == pytest.approx(0.75)
        assert cache.info("stats")["keyspace_hits"] == 3
        direct.delete("opsnb:test:key")
    finally:
        direct.close()


def test_redis_unavailable(silent_port: int) -> None:
    port = closed_port()
    exc, took = elapsed(lambda: RedisBackend(f"redis://127.0.0.1:{port}/0").ping())
    assert str(exc) == f"redis unavailable: connection refused at 127.0.0.1:{port}" and took < 2
    exc, took = elapsed(
        lambda: RedisBackend(f"redis://127.0.0.1:{silent_port}/0", timeout=0.5).info()
    )
    assert "timed out after 0.5s" in str(exc) and took < 2.5


@pytest.fixture(scope="module")
def redis_with_password(tmp_path_factory: pytest.TempPathFactory) -> Iterator[processes.Redis]:
    server = processes.start_redis(tmp_path_factory.mktemp("redis-auth"), password="right-pw-91")
    yield server
    server.stop()


def test_redis_wrong_password(redis_with_password: processes.Redis) -> None:
    assert RedisBackend(redis_with_password.url, password="right-pw-91").ping() is True
    for password in ("wrong-pw-42", None):
        cache = RedisBackend(redis_with_password.url, password=password)
        exc, _ = elapsed(cache.ping)
        assert "authentication failed at 127.0.0.1:" in str(exc)
        assert "wrong-pw-42" not in str(exc) and "right-pw-91" not in str(exc)
        assert "wrong-pw-42" not in repr(cache)


# --- Kubernetes ---------------------------------------------------------------------------------

NS = "production"


def deployment(image: str, cause: str, replicas: int = 3) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "payments",
            "namespace": NS,
            "annotations": {"kubernetes.io/change-cause": cause},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "payments"}},
            "template": {
                "metadata": {"labels": {"app": "payments"}},
                "spec": {
                    "containers": [
                        {
                            "name": "payments",
                            "image": image,
                            "env": [{"name": "LOG_LEVEL", "value": "info"}],
                        }
                    ]
                },
            },
        },
    }


@pytest.fixture()
def kube(tmp_path: Path) -> Iterator[KubeAPIServer]:
    server = KubeAPIServer(host="127.0.0.1", port=0).start()
    server.write_kubeconfig(tmp_path / "kubeconfig", context="lab", namespace=NS)
    server.store.apply(deployment("payments:1.0", "deploy 1.0"))
    server.store.apply(deployment("payments:1.1", "deploy 1.1"))
    server.store.apply(
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": "payments-config", "namespace": NS},
         "data": {"DB_POOL_SIZE": "20"}}
    )  # fmt: skip
    yield server
    server.stop()


@pytest.fixture()
def k8s(kube: KubeAPIServer, tmp_path: Path) -> KubernetesBackend:
    cfg = KubernetesConfig(namespace=NS, context="lab", kubeconfig=str(tmp_path / "kubeconfig"))
    return KubernetesBackend.from_config(cfg)


def current_pods(kube: KubeAPIServer) -> list[str]:
    return sorted(p["metadata"]["name"] for p in kube.store.list("Pod", NS, "app=payments"))


def test_kubernetes_pods(kube: KubeAPIServer, k8s: KubernetesBackend) -> None:
    names = current_pods(kube)
    kube.store.set_pod_state(
        NS, names[0], ready=False, restart_count=3, waiting_reason="CrashLoopBackOff",
        last_state={"terminated": {"reason": "OOMKilled", "exitCode": 137,
                                   "finishedAt": "2025-01-15T14:25:00Z"}},
    )  # fmt: skip
    frame = k8s.pods("app=payments")
    assert list(frame.columns) == kube_objects.POD_COLUMNS
    assert frame["name"].tolist() == names
    crashed = frame.iloc[0]
    assert crashed["ready"] is False or crashed["ready"] == False  # noqa: E712 (numpy bool)
    assert crashed["restarts"] == 3 and crashed["last_exit_code"] == 137
    assert crashed["last_state_reason"] == "OOMKilled"
    assert crashed["last_finished_at"] == pd.Timestamp("2025-01-15T14:25:00Z")
    assert crashed["waiting_reason"] == "CrashLoopBackOff"
    assert frame["ready"].tolist()[1:] == [True, True] and frame["restarts"].tolist()[1:] == [0, 0]
    hashes = {p["metadata"]["labels"]["pod-template-hash"] for p in kube.store.list("Pod", NS)}
    assert set(frame["revision_hash"]) == hashes and frame["node"].notna().all()
    assert str(frame["created"].dt.tz) == "UTC"
    assert k8s.pods("app=nothing").empty


def test_kubernetes_matches_snapshot_of_the_same_objects(
    kube: KubeAPIServer, k8s: KubernetesBackend, tmp_path: Path
) -> None:
    """The live backend and the snapshot backend read the same objects the same way."""
    snap = tmp_path / "snap"
    (snap / "kubernetes").mkdir(parents=True)
    now = datetime.now(UTC) + timedelta(minutes=1)
    (snap / "snapshot.json").write_text(json.dumps({
        "format": "opsnb-snapshot/1", "service": "payments", "namespace": NS,
        "selector": "app=payments", "now": now.strftime("%Y-%m-%dT%H:%M:%SZ")}))  # fmt: skip
    for kind, file, list_kind in (
        ("Pod", "pods.json", "PodList"),
        ("Deployment", "deployments.json", "DeploymentList"),
        ("ReplicaSet", "replicasets.json", "ReplicaSetList"),
        ("Event", "events.json", "EventList"),
    ):
        items = kube.store.list(kind, NS)
        (snap / "kubernetes" / file).write_text(json.dumps({"kind": list_kind, "items": items}))
    recorded = SnapshotKubernetes(Snapshot(snap))
    pd.testing.assert_frame_equal(k8s.pods("app=payments"), recorded.pods("app=payments"))
    pd.testing.assert_frame_equal(
        k8s.rollout_history("payments"), recorded.rollout_history("payments")
    )
    assert k8s.deployment("payments") == recorded.deployment("payments")
    pd.testing.assert_frame_equal(k8s.events(), recorded.events())


def test_kubernetes_deployment_history_events_configmap(
    kube: KubeAPIServer, k8s: KubernetesBackend
) -> None:
    dep = k8s.deployment("payments")
    assert (dep["name"], dep["replicas"], dep["ready"], dep["revision"]) == ("payments", 3, 3, 2)
    assert dep["image"] == "payments:1.1" and dep["images"] == {"payments": "payments:1.1"}
    assert {c["type"] for c in dep["conditions"]} >= {"Available", "Progressing"}
    history = k8s.rollout_history("payments")
    assert history["revision"].tolist() == [1, 2]
    assert history["image"].tolist() == ["payments:1.0", "payments:1.1"]
    assert history["change_cause"].tolist() == ["deploy 1.0", "deploy 1.1"]
    assert history["replicas"].tolist() == [0, 3]
    events = k8s.events()
    assert list(events.columns) == ["time", "type", "reason", "object", "message", "count"]
    assert events["time"].is_monotonic_increasing and len(events) >= 3
    scaling = k8s.events(reason="ScalingReplicaSet")
    assert set(scaling["reason"]) == {"ScalingReplicaSet"} and len(scaling) >= 2
    assert set(scaling["object"]) == {"deployment/payments"}
    assert k8s.events(since=timedelta(minutes=5)).shape[0] == len(events)
    assert k8s.events(since=datetime.now(UTC) + timedelta(minutes=1)).empty
    assert k8s.configmap("payments-config") == {"DB_POOL_SIZE": "20"}
    with pytest.raises(LookupError, match="not found"):
        k8s.configmap("missing")
    with pytest.raises(kube_objects.ObjectNotFound, match="deployment/nope"):
        k8s.deployment("nope")


def test_kubernetes_logs(kube: KubeAPIServer, k8s: KubernetesBackend) -> None:
    first, second, _ = current_pods(kube)
    lines = [f"2025-01-15T14:18:0{i}.000Z INFO method=GET endpoint=/a status=200" for i in range(5)]
    kube.store.set_log(NS, first, "\n".join(lines) + "\n")
    kube.store.set_log(NS, first, "2025-01-15T14:10:00.000Z CRITICAL error=OOM\n", previous=True)
    assert k8s.logs(first) == lines
    assert k8s.logs(first, tail=2) == lines[-2:]
    assert k8s.logs(first, container="payments", previous=True) == [
        "2025-01-15T14:10:00.000Z CRITICAL error=OOM"
    ]
    with pytest.raises(kube_objects.LogsNotFound):
        k8s.logs(second, previous=True)
    with pytest.raises(LookupError):
        k8s.logs("ghost-pod")
    by_pod = k8s.logs_for("app=payments", previous=True)
    assert by_pod == {first: ["2025-01-15T14:10:00.000Z CRITICAL error=OOM"], second: [],
                      current_pods(kube)[2]: []}  # fmt: skip
    assert k8s.logs_for("app=payments", tail=1)[first] == lines[-1:]


def test_kubernetes_dry_runs_change_nothing(kube: KubeAPIServer, k8s: KubernetesBackend) -> None:
    before = kube.store.get("Deployment", NS, "payments")
    kube.reset_requests()
    rollback = k8s.rollback("payments", dry_run=True)
    scale = k8s.scale("payments", 7, dry_run=True)
    restart = k8s.restart("payments", dry_run=True)
    set_env = k8s.set_env("payments", "payments", {"CIRCUIT_BREAKER_ENABLED": True}, dry_run=True)
    assert kube.mutations() == []
    patches = [r for r in kube.requests if r.method == "PATCH"]
    assert len(patches) == 4 and all(r.dry_run for r in patches)
    assert kube.store.get("Deployment", NS, "payments") == before
    assert all(c.dry_run for c in (rollback, scale, restart, set_env))
    assert rollback.before["revision"] == 2 and rollback.after["revision"] == 1
    assert rollback.after["images"] == {"payments": "payments:1.0"}
    assert "would roll back deployment/payments from revision 2" in rollback.detail
    assert (scale.before, scale.after) == ({"replicas": 3}, {"replicas": 7})
    assert set_env.before == {"CIRCUIT_BREAKER_ENABLED": None}
    assert set_env.after == {"CIRCUIT_BREAKER_ENABLED": "true"}  # as the server would store it


def test_kubernetes_rollback_like_rollout_undo(kube: KubeAPIServer, k8s: KubernetesBackend) -> None:
    change = k8s.rollback("payments", dry_run=False)
    assert change.dry_run is False and change.detail.startswith("rolled back deployment/payments")
    stored = kube.store.get("Deployment", NS, "payments")
    assert stored is not None
    assert stored["spec"]["template"]["spec"]["containers"][0]["image"] == "payments:1.0"
    assert "pod-template-hash" not in stored["spec"]["template"]["metadata"]["labels"]
    assert stored["metadata"]["annotations"]["kubernetes.io/change-cause"] == "deploy 1.0"
    history = k8s.rollout_history("payments")
    assert history["revision"].tolist() == [2, 3]  # revision 1 became revision 3
    assert history.set_index("revision").loc[3, "image"] == "payments:1.0"
    assert k8s.deployment("payments")["revision"] == 3
    assert set(k8s.pods("app=payments")["revision_hash"]) == {
        history["replicaset"].iloc[-1].split("-")[-1]
    }
    again = k8s.rollback("payments", to_revision=3, dry_run=False)
    assert again.changed is False and "skipped rollback" in again.detail
    with pytest.raises(LookupError, match="no revision 9"):
        k8s.rollback("payments", to_revision=9, dry_run=False)


def test_kubernetes_scale_restart_set_env(kube: KubeAPIServer, k8s: KubernetesBackend) -> None:
    scale = k8s.scale("payments", 5, dry_run=False)
    assert (scale.before, scale.after, scale.dry_run) == ({"replicas": 3}, {"replicas": 5}, False)
    assert len(current_pods(kube)) == 5
    assert [r.path for r in kube.mutations()] == [
        f"/apis/apps/v1/namespaces/{NS}/deployments/payments/scale"
    ]
    restart = k8s.restart("payments", dry_run=False)
    stored = kube.store.get("Deployment", NS, "payments")
    assert stored is not None
    annotations = stored["spec"]["template"]["metadata"]["annotations"]
    assert annotations[kube_objects.RESTARTED_AT] == restart.after["restartedAt"]
    assert k8s.deployment("payments")["revision"] == 3
    change = k8s.set_env("payments", "payments", {"CIRCUIT_BREAKER_ENABLED": "true", "N": 5},
                         dry_run=False)  # fmt: skip
    assert change.after == {"CIRCUIT_BREAKER_ENABLED": "true", "N": "5"}
    stored = kube.store.get("Deployment", NS, "payments")
    assert stored is not None
    env = stored["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {e["name"]: e["value"] for e in env} == {
        "LOG_LEVEL": "info", "CIRCUIT_BREAKER_ENABLED": "true", "N": "5",
    }  # fmt: skip
    with pytest.raises(LookupError, match="no container 'sidecar'"):
        k8s.set_env("payments", "sidecar", {"A": "1"}, dry_run=False)
    with pytest.raises(ValueError):
        k8s.scale("payments", -1, dry_run=False)


def test_kubernetes_server_and_token_config(kube: KubeAPIServer) -> None:
    token = "tok-secret-5521"
    k8s = KubernetesBackend.from_config(
        KubernetesConfig(namespace=NS, server=kube.url), token=token
    )
    assert len(k8s.pods("app=payments")) == 3
    assert token not in repr(k8s) and kube.url in repr(k8s)
    kube.fail_with(403)
    try:
        exc, _ = elapsed(lambda: k8s.pods("app=payments"))
    finally:
        kube.fail_with(None)
    assert "HTTP 403" in str(exc) and token not in str(exc)


def test_kubernetes_unavailable(kube: KubeAPIServer, k8s: KubernetesBackend) -> None:
    kube.fail_with(500)
    try:
        exc, took = elapsed(lambda: k8s.pods("app=payments"))
        assert "HTTP 500 from API server" in str(exc) and took < 2
        assert isinstance(exc, BackendUnavailable) and exc.backend == "kubernetes"
        exc, _ = elapsed(lambda: k8s.scale("payments", 4, dry_run=False))
        assert "HTTP 500" in str(exc)
        kube.fail_with(503)
        exc, _ = elapsed(lambda: k8s.logs_for("app=payments"))
        assert "HTTP 503" in str(exc)
    finally:
        kube.fail_with(None)
    k8s.timeout = 0.5
    kube.delay(2)
    try:
        exc, took = elapsed(lambda: k8s.deployment("payments"))
        assert "timed out after 0.5s" in str(exc) and took < 1.5
    finally:
        kube.delay(0)
    assert k8s.deployment("payments")["name"] == "payments"
    port = closed_port()
    gone = KubernetesBackend.from_config(
        KubernetesConfig(namespace=NS, server=f"http://127.0.0.1:{port}", timeout=1)
    )
    exc, took = elapsed(lambda: gone.pods("app=payments"))
    assert str(exc) == f"kubernetes unavailable: connection refused at http://127.0.0.1:{port}"
    assert took < 2


def test_importing_kubernetes_backend_module_is_lazy() -> None:
    import subprocess
    import sys

    code = (
        "import sys, opsnb.backends.kubernetes, opsnb.backends.postgres, opsnb.backends.redis;"
        "print(sorted(m for m in ('kubernetes', 'psycopg', 'redis') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- data procedures: database sizes, replication, read-only queries, terminations, keys ------


def _table(info: dict[str, Any], name: str, rows: int) -> None:
    with psycopg.connect(**info, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {name}")
        conn.execute(f"CREATE TABLE {name} (id integer PRIMARY KEY, note text)")
        conn.execute(
            f"INSERT INTO {name} SELECT g, 'row ' || g FROM generate_series(1, %s) g", (rows,)
        )


def _count(info: dict[str, Any], name: str) -> int:
    with psycopg.connect(**info) as conn:
        row = conn.execute(f"SELECT count(*) FROM {name}").fetchone()
    assert row is not None
    return int(row[0])


def test_postgres_database_sizes_and_replication(postgres_server: processes.Postgres) -> None:
    from opsnb.backends.postgres import DATABASE_SIZE_COLUMNS, REPLICATION_COLUMNS

    pg = PostgresBackend(postgres_server.conninfo())
    sizes = pg.database_sizes()
    assert list(sizes.columns) == DATABASE_SIZE_COLUMNS
    with psycopg.connect(**postgres_server.conninfo()) as conn:
        row = conn.execute("SELECT pg_database_size('app'), pg_size_pretty(pg_database_size("
                           "'app'))").fetchone()  # fmt: skip
    assert row is not None
    app = sizes[sizes["datname"] == "app"].iloc[0]
    assert abs(int(app["size_bytes"]) - int(row[0])) < 1024 * 1024  # autovacuum may write
    assert app["size"].split()[1] == row[1].split()[1]  # the same unit as pg_size_pretty
    assert "template0" not in set(sizes["datname"])  # no connections allowed there
    assert list(sizes["size_bytes"]) == sorted(sizes["size_bytes"], reverse=True)
    replication = pg.replication()
    assert list(replication.columns) == REPLICATION_COLUMNS and replication.empty


def test_postgres_read_only_query(postgres_server: processes.Postgres) -> None:
    from opsnb.backends.postgres import QueryRefused

    info = postgres_server.conninfo()
    _table(info, "ro_probe", 250)
    pg = PostgresBackend(info)
    counted = pg.read_only_query("SELECT count(*) AS n FROM ro_probe;")
    assert counted["n"].tolist() == [250] and counted.attrs["truncated"] is False
    limited = pg.read_only_query("SELECT id, note FROM ro_probe ORDER BY id", limit=10)
    assert limited["id"].tolist() == list(range(1, 11)) and limited.attrs["truncated"] is True
    assert list(limited.columns) == ["id", "note"]
    for sql, words in [
        ("DELETE FROM ro_probe", "refused by the read-only transaction"),
        ("UPDATE ro_probe SET note = 'x'", "read-only transaction"),
        ("WITH gone AS (DELETE FROM ro_probe RETURNING id) SELECT count(*) FROM gone",
         "read-only transaction"),
        ("CREATE TABLE ro_new (id int)", "read-only transaction"),
        ("SELECT 1; DELETE FROM ro_probe", "only a single SQL statement"),
        ("COMMIT", "not allowed"),
        ("SET default_transaction_read_only = off", "not allowed"),
        ("SELECT pg_terminate_backend(1)", "pg_terminate_backend"),
        ("SELECT * FROM no_such_table", "does not exist"),
        ("   ", "no SQL statement"),
    ]:  # fmt: skip
        with pytest.raises(QueryRefused, match=words):
            pg.read_only_query(sql)
    assert _count(info, "ro_probe") == 250
    with pytest.raises(QueryRefused, match="200 ms statement timeout"):
        pg.read_only_query("SELECT pg_sleep(2)", timeout_ms=200)
    # the semicolon inside a literal is not a second statement
    assert pg.read_only_query("SELECT ';' AS s")["s"].tolist() == [";"]


def test_postgres_terminate_backends(postgres_server: processes.Postgres) -> None:
    from opsnb.backends.postgres import TERMINATE_COLUMNS

    info = postgres_server.conninfo()
    pg = PostgresBackend(info)
    mine = [psycopg.connect(**info, application_name="opsnb-hog") for _ in range(2)]
    other = psycopg.connect(**info, application_name="opsnb-bystander")
    idle = psycopg.connect(**info, application_name="opsnb-hog", autocommit=True)
    try:
        for conn in [*mine, other]:
            conn.execute("SELECT 1")  # a transaction left open: idle in transaction
        time.sleep(1.2)
        candidates = pg.backends_to_terminate(1, application_name="opsnb-hog")
        assert list(candidates.columns) == TERMINATE_COLUMNS
        hog_pids = sorted(c.info.backend_pid for c in mine)
        assert sorted(candidates["pid"]) == hog_pids
        assert set(candidates["state"]) == {"idle in transaction"}
        assert (candidates["duration_seconds"] >= 1).all()
        every = set(pg.backends_to_terminate(1)["pid"])
        assert every >= {*hog_pids, other.info.backend_pid}
        assert idle.info.backend_pid not in every  # idle sessions hold nothing
        assert pg.backends_to_terminate(300, application_name="opsnb-hog").empty

        preview = pg.terminate_backends(hog_pids, dry_run=True)
        assert preview.dry_run and preview.terminated == []
        assert f"pid IN ({hog_pids[0]}, {hog_pids[1]})" in preview.detail
        assert "pg_terminate_backend(pid)" in preview.detail and preview.sql in preview.detail
        assert sorted(s["pid"] for s in preview.sessions) == hog_pids
        assert all(not c.closed and c.execute("SELECT 1").fetchone() for c in mine)

        # the application guard: a pid of another application is not ended
        done = pg.terminate_backends(
            [*hog_pids, other.info.backend_pid], dry_run=False, application_name="opsnb-hog"
        )
        assert done.terminated == hog_pids and not done.dry_run
        assert "terminated 2 of 3" in done.detail
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            live = set(pg.activity()["pid"])
            if not live & set(hog_pids):
                break
            time.sleep(0.1)
        assert not live & set(hog_pids) and other.info.backend_pid in live
        with pytest.raises(psycopg.OperationalError):
            mine[0].execute("SELECT 1")
        assert other.execute("SELECT 2").fetchone() == (2,)
        with pytest.raises(ValueError, match="not a backend pid"):
            pg.terminate_backends([0], dry_run=True)
        assert pg.terminate_backends([], dry_run=False).detail == "no backend to terminate"
    finally:
        for conn in [*mine, other, idle]:
            conn.close()


def test_redis_memory_scan_and_delete(redis_server: processes.Redis) -> None:
    from opsnb.backends.redis import KEY_SIZE_COLUMNS, MEMORY_FIELDS

    cache = RedisBackend(redis_server.url, password=redis_server.password)
    direct = redis_server.client()
    try:
        direct.delete(*(direct.keys("bk:*") or [b"bk:none"]))
        memory = cache.memory()
        assert set(memory) == {*MEMORY_FIELDS, "used_ratio"}
        assert memory["used_memory"] > 0 and memory["maxmemory"] == 0
        assert memory["used_ratio"] is None
        direct.mset({f"bk:session:{i}": "x" * 10 for i in range(1200)})
        direct.set("bk:session:big", "y" * 50_000, ex=600)
        direct.mset({"bk:sessions": "1", "bk:other:1": "2", "bk:session": "3"})
        found = cache.scan_keys("bk:session:*", batch=100)
        assert len(found) == 1201 and len(set(found)) == 1201
        assert "bk:sessions" not in found and "bk:session" not in found
        assert len(cache.scan_keys("bk:session:*", limit=7)) == 7
        sizes = cache.key_sizes("bk:session:*", sample=2000)
        assert list(sizes.columns) == KEY_SIZE_COLUMNS and len(sizes) == 1201
        top = sizes.iloc[0]
        assert top["key"] == "bk:session:big" and top["bytes"] > 50_000
        assert 0 < top["ttl_seconds"] <= 600 and pd.isna(sizes.iloc[1]["ttl_seconds"])

        with pytest.raises(ValueError, match="policy.max_keys_per_action"):
            cache.delete_keys("bk:session:*", dry_run=False, max_keys=1000)
        assert len(cache.scan_keys("bk:session:*")) == 1201  # refused: nothing deleted
        preview = cache.delete_keys("bk:session:*", dry_run=True, max_keys=5000)
        assert preview.matched == 1201 and preview.deleted == 0 and len(preview.sample) == 10
        assert "would delete 1201 key(s)" in preview.detail
        assert len(cache.scan_keys("bk:session:*")) == 1201
        done = cache.delete_keys("bk:session:*", dry_run=False, batch=250, max_keys=5000)
        assert done.deleted == 1201 and "deleted 1201 of 1201" in done.detail
        assert cache.scan_keys("bk:session:*") == []
        assert sorted(cache.scan_keys("bk:*")) == ["bk:other:1", "bk:session", "bk:sessions"]
        for pattern in ("*", "", "?*"):
            with pytest.raises(ValueError, match="pattern"):
                cache.delete_keys(pattern, dry_run=True, max_keys=10)
        assert cache.delete_keys("bk:nothing:*", dry_run=False, max_keys=10).deleted == 0
    finally:
        direct.delete(*(direct.keys("bk:*") or [b"bk:none"]))
        direct.close()


def test_snapshot_twins_of_the_data_calls_answer_like_the_live_ones(
    postgres_server: processes.Postgres, redis_server: processes.Redis, tmp_path: Path
) -> None:
    from opsnb.backends.postgres import QueryRefused
    from opsnb.backends.snapshot_stores import SnapshotPostgres, SnapshotRedis

    info = postgres_server.conninfo()
    pg = PostgresBackend(info)
    cache = RedisBackend(redis_server.url, password=redis_server.password)
    direct = redis_server.client()
    held = psycopg.connect(**info, application_name="opsnb-twin")
    try:
        held.execute("SELECT 1")  # idle in transaction
        direct.mset({f"twin:{i}": "x" * (i + 1) for i in range(12)})
        time.sleep(1.1)
        now = pd.Timestamp.now(tz="UTC")
        folder = tmp_path / "snap"
        for sub in ("postgres", "redis"):
            (folder / sub).mkdir(parents=True)
        (folder / "snapshot.json").write_text(json.dumps(
            {"format": "opsnb-snapshot/1", "service": "twin", "now": now.isoformat()}
        ))  # fmt: skip
        sizes = pg.database_sizes()
        activity = json.loads(pg.activity().to_json(orient="records", date_format="iso"))
        records = {
            "postgres/databases.json": {
                "databases": sizes[["datname", "size_bytes"]].to_dict("records")
            },  # fmt: skip
            "postgres/replication.json": {"replication": []},
            "postgres/activity.json": {
                "captured_at": now.isoformat(),
                "max_connections": 50,
                "activity": activity,
            },  # fmt: skip
            "redis/info.json": {"info": cache.info()},
            "redis/keys.json": {"keys": cache.key_sizes("twin:*").to_dict("records")},
        }
        for relative, data in records.items():
            (folder / relative).write_text(json.dumps(data, default=str))
        snapshot = Snapshot(folder)
        spg, sredis = SnapshotPostgres(snapshot), SnapshotRedis(snapshot)

        pd.testing.assert_frame_equal(spg.database_sizes(), sizes)
        pd.testing.assert_frame_equal(spg.replication(), pg.replication())
        live = pg.backends_to_terminate(1, application_name="opsnb-twin")
        recorded = spg.backends_to_terminate(1, application_name="opsnb-twin")
        assert list(recorded.columns) == list(live.columns)
        assert recorded["pid"].tolist() == live["pid"].tolist() == [held.info.backend_pid]
        assert recorded.dtypes.to_dict() == live.dtypes.to_dict()
        preview = spg.terminate_backends(live["pid"], dry_run=False)
        assert preview.dry_run and preview.terminated == []
        assert preview.detail.startswith(
            "snapshot is read-only, nothing changed: would terminate 1"
        )
        assert preview.sql == pg.terminate_backends(live["pid"], dry_run=True).sql
        with pytest.raises(BackendUnavailable, match="cannot run queries"):
            spg.read_only_query("SELECT 1")
        with pytest.raises(QueryRefused):
            spg.read_only_query("SELECT 1; SELECT 2")

        assert sredis.memory().keys() == cache.memory().keys()
        assert sredis.memory()["used_memory"] == records["redis/info.json"]["info"]["used_memory"]
        assert sorted(sredis.scan_keys("twin:1*")) == sorted(cache.scan_keys("twin:1*"))
        pd.testing.assert_frame_equal(sredis.key_sizes("twin:*"), cache.key_sizes("twin:*"))
        deletion = sredis.delete_keys("twin:*", dry_run=False, max_keys=100)
        assert deletion.dry_run and deletion.deleted == 0 and deletion.matched == 12
        assert direct.exists(*[f"twin:{i}" for i in range(12)]) == 12
        with pytest.raises(ValueError, match="max_keys_per_action"):
            sredis.delete_keys("twin:*", dry_run=True, max_keys=5)
        (folder / "redis" / "keys.json").unlink()
        with pytest.raises(BackendUnavailable, match="redis/keys.json"):
            SnapshotRedis(Snapshot(folder)).scan_keys("twin:*")
    finally:
        held.close()
        direct.delete(*[f"twin:{i}" for i in range(12)])
        direct.close()


# --- Kubernetes operational procedures: images, manifests, resources, rollouts, HPAs ----------


def _hpa(low: int = 2, high: int = 6) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "payments-hpa", "namespace": NS},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                    "name": "payments"},
                 "minReplicas": low, "maxReplicas": high,
                 "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                     "type": "Utilization", "averageUtilization": 70}}}]},
    }  # fmt: skip


def _stored_container(kube: KubeAPIServer, name: str = "payments") -> dict[str, Any]:
    stored = kube.store.get("Deployment", NS, name)
    assert stored is not None
    return dict(stored["spec"]["template"]["spec"]["containers"][0])


def test_kubernetes_set_image_previews_then_changes(
    kube: KubeAPIServer, k8s: KubernetesBackend
) -> None:
    kube.reset_requests()
    preview = k8s.set_image("payments", "payments", "payments:1.2", dry_run=True)
    assert kube.mutations() == [] and preview.dry_run and preview.changed
    assert preview.detail == (
        "would set image of deployment/payments container payments from payments:1.1 to "
        "payments:1.2 (server-side dry run)"
    )
    assert "-    image: payments:1.1\n+    image: payments:1.2\n" in preview.diff
    assert _stored_container(kube)["image"] == "payments:1.1"
    change = k8s.set_image("payments", "payments", "payments:1.2", dry_run=False)
    assert change.detail.startswith("set image of deployment/payments") and not change.dry_run
    assert _stored_container(kube)["image"] == "payments:1.2"
    history = k8s.rollout_history("payments")
    assert history["revision"].tolist() == [1, 2, 3]
    assert history["change_cause"].iloc[-1] == "opsnb deploy: set image payments=payments:1.2"
    assert k8s.wait_for_rollout("payments", 5)["image"] == "payments:1.2"
    kube.reset_requests()
    same = k8s.set_image("payments", "payments", "payments:1.2", dry_run=False)
    assert same.changed is False and "already runs payments:1.2" in same.detail
    assert kube.mutations() == []  # nothing to change: nothing sent
    with pytest.raises(LookupError, match="no container 'sidecar'"):
        k8s.set_image("payments", "sidecar", "x:1", dry_run=True)
    with pytest.raises(ValueError, match="needs an image"):
        k8s.set_image("payments", "payments", " ", dry_run=True)


def test_kubernetes_apply_deployment_like_server_side_apply(
    kube: KubeAPIServer, k8s: KubernetesBackend
) -> None:
    manifest = deployment("payments:1.3", "deploy 1.3", replicas=4)
    kube.reset_requests()
    preview = k8s.apply_deployment(manifest, dry_run=True)
    assert kube.mutations() == []
    assert preview.detail == (
        "would apply deployment/payments from the manifest: image payments payments:1.1 -> "
        "payments:1.3; replicas 3 -> 4; 2 template lines changed (server-side dry run)"
    )
    assert (preview.before, preview.after) == (
        {"images": {"payments": "payments:1.1"}, "replicas": 3},
        {"images": {"payments": "payments:1.3"}, "replicas": 4},
    )
    patches = [r for r in kube.requests if r.method == "PATCH"]
    assert len(patches) == 1 and "fieldManager=opsnb" in patches[0].query
    assert "force=true" in patches[0].query.lower()
    applied = k8s.apply_deployment(manifest, dry_run=False)
    assert applied.changed and not applied.dry_run
    dep = k8s.deployment("payments")
    assert (dep["image"], dep["replicas"], dep["ready"], dep["revision"]) == (
        "payments:1.3",
        4,
        4,
        3,
    )
    created = k8s.apply_deployment({**deployment("orders:1.0", "deploy orders"),
                                    "metadata": {"name": "orders"}}, dry_run=False)  # fmt: skip
    assert created.detail.startswith("created deployment/orders from the manifest")
    assert k8s.deployment("orders")["image"] == "orders:1.0"
    with pytest.raises(ValueError, match="not a Deployment"):
        k8s.apply_deployment({"kind": "ConfigMap", "metadata": {"name": "x"}}, dry_run=True)
    other_ns = {**manifest, "metadata": {"name": "payments", "namespace": "staging"}}
    with pytest.raises(ValueError, match="namespace 'staging'"):
        k8s.apply_deployment(other_ns, dry_run=True)


def test_kubernetes_set_resources(kube: KubeAPIServer, k8s: KubernetesBackend) -> None:
    kube.reset_requests()
    preview = k8s.set_resources("payments", "payments", {"cpu": "500m", "memory": ""},
                                {"memory": "1Gi"}, dry_run=True)  # fmt: skip
    assert kube.mutations() == [] and _stored_container(kube)["resources"] == {}
    assert preview.detail == (
        "would set resources of deployment/payments container payments: request cpu unset -> "
        "500m; limit memory unset -> 1Gi (server-side dry run)"
    )
    assert "+        cpu: 500m\n" in preview.diff
    change = k8s.set_resources("payments", "payments", {"cpu": "500m"}, {"memory": "1Gi"},
                               dry_run=False)  # fmt: skip
    assert change.after == {"requests": {"cpu": "500m"}, "limits": {"memory": "1Gi"}}
    assert _stored_container(kube)["resources"] == change.after
    assert k8s.deployment("payments")["resources"] == change.after
    assert k8s.rollout_history("payments")["revision"].max() == 3  # new pods
    with pytest.raises(ValueError, match="cpu request 2 would be above its limit 1"):
        k8s.set_resources("payments", "payments", {"cpu": "2"}, {"cpu": "1"}, dry_run=True)
    with pytest.raises(ValueError, match="not a Kubernetes quantity"):
        k8s.set_resources("payments", "payments", {"memory": "lots"}, {}, dry_run=True)
    with pytest.raises(ValueError, match="at least one request or limit"):
        k8s.set_resources("payments", "payments", {}, {"cpu": ""}, dry_run=True)
    assert kube_objects.parse_quantity("1.5Gi") == 1.5 * 2**30
    assert kube_objects.parse_quantity("250m") == 0.25


def test_kubernetes_wait_for_rollout(kube: KubeAPIServer, k8s: KubernetesBackend) -> None:
    done = k8s.wait_for_rollout("payments", 5)
    pods = k8s.pods("app=payments")
    assert (done["state"], done["done"], done["revision"], done["polls"]) == (
        "complete", True, 2, 1,
    )  # fmt: skip
    assert done["message"] == 'deployment "payments" successfully rolled out'
    assert set(pods["revision_hash"]) == {done["revision_hash"]}
    assert done["replicaset"].endswith(done["revision_hash"]) and done["image"] == "payments:1.1"
    kube.store.set_pod_state(NS, current_pods(kube)[0], ready=False)
    began = time.monotonic()
    stuck = k8s.wait_for_rollout("payments", 1.0, interval=0.2)
    assert time.monotonic() - began >= 1.0
    assert (stuck["state"], stuck["done"], stuck["available"]) == ("timeout", False, 2)
    assert stuck["message"].endswith("2 of 3 updated replicas are available...")
    assert stuck["polls"] >= 3
    once = k8s.wait_for_rollout("payments", 0)
    assert (once["state"], once["polls"]) == ("timeout", 1)


def test_kubernetes_hpa_pin_and_release(
    kube: KubeAPIServer, k8s: KubernetesBackend, tmp_path: Path
) -> None:
    import subprocess

    with pytest.raises(kube_objects.ObjectNotFound):
        k8s.hpa("payments-hpa")
    kube.store.apply(_hpa())
    hpa = k8s.hpa("payments-hpa")
    assert {k: hpa[k] for k in ("target", "min_replicas", "max_replicas", "current_replicas",
                                "desired_replicas", "metrics", "pinned_from")} == {
        "target": "deployment/payments", "min_replicas": 2, "max_replicas": 6,
        "current_replicas": 3, "desired_replicas": 3,
        "metrics": ["cpu 70% (average utilization)"], "pinned_from": None,
    }  # fmt: skip
    note = {kube_objects.PINNED_FROM: json.dumps({"maxReplicas": 6, "minReplicas": 2})}
    kube.reset_requests()
    preview = k8s.patch_hpa("payments-hpa", 5, 5, dry_run=True, annotations=note)
    assert kube.mutations() == [] and k8s.hpa("payments-hpa")["min_replicas"] == 2
    assert preview.detail == (
        "would set hpa/payments-hpa from min 2, max 6 to min 5, max 5 (server-side dry run)"
    )
    pinned = k8s.patch_hpa("payments-hpa", 5, 5, dry_run=False, annotations=note)
    assert pinned.after == {"min_replicas": 5, "max_replicas": 5,
                            "pinned_from": {"maxReplicas": 6, "minReplicas": 2}}  # fmt: skip
    # the HPA holds the deployment within its bounds, as the controller would
    assert k8s.deployment("payments")["replicas"] == 5 and len(current_pods(kube)) == 5
    assert k8s.events(reason="SuccessfulRescale")["object"].tolist() == [
        "horizontalpodautoscaler/payments-hpa"
    ]
    table = subprocess.run(
        ["kubectl", "--kubeconfig", str(tmp_path / "kubeconfig"), "get", "hpa"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout  # fmt: skip
    assert table.split("\n")[0].split() == [
        "NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE",
    ]  # fmt: skip
    assert table.split("\n")[1].split()[:7] == [
        "payments-hpa", "Deployment/payments", "cpu:", "<unknown>/70%", "5", "5", "5",
    ]  # fmt: skip
    released = k8s.patch_hpa("payments-hpa", 2, 6, dry_run=False,
                             annotations={kube_objects.PINNED_FROM: None})  # fmt: skip
    assert released.after == {"min_replicas": 2, "max_replicas": 6, "pinned_from": None}
    stored = kube.store.get("HorizontalPodAutoscaler", NS, "payments-hpa")
    assert stored is not None and kube_objects.PINNED_FROM not in stored["metadata"].get(
        "annotations", {})  # fmt: skip
    assert k8s.deployment("payments")["replicas"] == 5  # within [2, 6]: left alone
    with pytest.raises(ValueError, match="maxReplicas \\(3\\) must be at least minReplicas"):
        k8s.patch_hpa("payments-hpa", 5, 3, dry_run=True)
    with pytest.raises(ValueError, match="minReplicas must be 1 or more"):
        k8s.patch_hpa("payments-hpa", 0, 3, dry_run=True)


def test_kubernetes_snapshot_twin_previews_the_same_changes(
    kube: KubeAPIServer, k8s: KubernetesBackend, tmp_path: Path
) -> None:
    import inspect

    from opsnb.backends.snapshot import READ_ONLY
    from opsnb.config import DEMO_SNAPSHOTS

    kube.store.apply(_hpa())
    snap = tmp_path / "snap"
    (snap / "kubernetes").mkdir(parents=True)
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    (snap / "snapshot.json").write_text(json.dumps({
        "format": "opsnb-snapshot/1", "service": "payments", "namespace": NS,
        "selector": "app=payments", "now": now}))  # fmt: skip
    for kind, file in (("Deployment", "deployments.json"), ("ReplicaSet", "replicasets.json"),
                       ("HorizontalPodAutoscaler", "horizontalpodautoscalers.json")):  # fmt: skip
        items = kube.store.list(kind, NS)
        (snap / "kubernetes" / file).write_text(json.dumps({"items": items}))
    recorded = SnapshotKubernetes(Snapshot(snap))
    for method in ("set_image", "apply_deployment", "set_resources", "wait_for_rollout", "hpa",
                   "patch_hpa"):  # fmt: skip
        assert inspect.signature(getattr(recorded, method)) == inspect.signature(
            getattr(k8s, method)
        ), method
    kube.reset_requests()
    pairs = [
        (k8s.set_image("payments", "payments", "payments:1.2", dry_run=True),
         recorded.set_image("payments", "payments", "payments:1.2", dry_run=False)),
        (k8s.apply_deployment(deployment("payments:1.3", "deploy 1.3", 4), dry_run=True),
         recorded.apply_deployment(deployment("payments:1.3", "deploy 1.3", 4), dry_run=False)),
        (k8s.set_resources("payments", "payments", {"cpu": "1"}, {"cpu": "2"}, dry_run=True),
         recorded.set_resources("payments", "payments", {"cpu": "1"}, {"cpu": "2"},
                                dry_run=False)),
        (k8s.patch_hpa("payments-hpa", 4, 4, dry_run=True),
         recorded.patch_hpa("payments-hpa", 4, 4, dry_run=False)),
    ]  # fmt: skip
    assert kube.mutations() == []
    for live, snapshot in pairs:
        assert (snapshot.action, snapshot.object) == (live.action, live.object)
        assert (snapshot.before, snapshot.after) == (live.before, live.after), live.action
        assert snapshot.dry_run and snapshot.detail.startswith(f"{READ_ONLY}: would ")
        assert snapshot.detail.removeprefix(f"{READ_ONLY}: ") == live.detail.removesuffix(
            " (server-side dry run)"
        )
    assert pairs[0][1].diff == pairs[0][0].diff and pairs[2][1].diff == pairs[2][0].diff
    assert recorded.hpa("payments-hpa") == k8s.hpa("payments-hpa")
    live_status, recorded_status = k8s.wait_for_rollout("payments", 0), recorded.wait_for_rollout(
        "payments", 0)  # fmt: skip
    for key in ("waited_seconds", "polls"):
        live_status.pop(key), recorded_status.pop(key)
    assert recorded_status == live_status
    # the demo records no HPA: that is unknown, not absent
    demo = SnapshotKubernetes(Snapshot.open_for_service(DEMO_SNAPSHOTS, "payments"))
    with pytest.raises(BackendUnavailable, match="horizontalpodautoscalers.json is not recorded"):
        demo.hpa("payments-hpa")
