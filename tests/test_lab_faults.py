"""The lab's faults, each seen through the real interfaces a runbook uses: the Prometheus HTTP
API, PostgreSQL's pg_stat_activity, the Kubernetes test API server through the official
client, the service's own logs. Each test clears its fault in a ``finally`` so the next one
starts from a healthy lab.

Waits are polls with deadlines. Test queries use 5 s rate windows for quick signals (the
lab's alert rules use 20 s ones).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import psycopg
import pytest
import yaml

from opsnb.lab.app import LabApp
from opsnb.lab.faults import OOM_MEMORY_LIMIT, OOM_MEMORY_NEEDED, memory_bytes
from opsnb.lab.orchestrator import FAULTS, Lab, alert_rules

SERVICE = 'service="my-service"'
P99 = (
    "histogram_quantile(0.99, sum(rate(http_request_duration_seconds_bucket"
    f"{{{SERVICE}}}[5s])) by (le))"
)
ERRORS = (
    f'sum(rate(http_requests_total{{{SERVICE}, status=~"5.."}}[5s])) / '
    f"sum(rate(http_requests_total{{{SERVICE}}}[5s]))"
)
WAITING = f'database_connection_pool_size{{{SERVICE}, state="waiting"}}'
CHECKOUT_5XX = (
    f'sum(rate(http_requests_total{{{SERVICE}, endpoint="/api/checkout", status=~"5.."}}[5s]))'
)
STRATEGIC = "application/strategic-merge-patch+json"


def wait_for(
    what: str,
    probe: Callable[[], Any],
    timeout: float = 30.0,
    every: float = 0.25,
    check: Callable[[Any], Any] = bool,
):
    """Poll ``probe`` until ``check`` holds for its value (by default: it is truthy); fail with
    ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if check(last):
            return last
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last value: {last!r})")


def prom(lab: Lab, expr: str) -> float | None:
    """The first sample's value of an instant query; None when the result is empty."""
    assert lab.prometheus is not None
    result = lab.prometheus.query(expr)
    return float(result[0]["value"][1]) if result else None


def sessions(lab: Lab, min_xact_seconds: float = 0.0) -> list[dict[str, Any]]:
    """pg_stat_activity rows of the service's sessions whose transaction is that old."""
    assert lab.postgres is not None
    with psycopg.connect(**lab.postgres.conninfo(), application_name="test") as conn:
        cur = conn.execute(
            "SELECT pid, state, query, extract(epoch FROM now() - xact_start)::float8 AS xact_s,"
            " extract(epoch FROM now() - query_start)::float8 AS query_s"
            " FROM pg_stat_activity WHERE application_name = 'my-service'"
            " AND xact_start IS NOT NULL AND now() - xact_start >= make_interval(secs => %s)",
            (min_xact_seconds,),
        )
        names = [d.name for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def held(lab: Lab) -> list[dict[str, Any]]:
    """The sessions the pool-exhaustion fault holds (its statements say who they are)."""
    return [s for s in sessions(lab) if s["query"].startswith(("/* export-orders", "/* order-"))]


def service_log(lab: Lab) -> list[str]:
    assert lab.app is not None
    return [line for pod in lab.current_pods() for line in lab.app.logs_for(pod).splitlines()]


@pytest.fixture(scope="module")
def kube(lab: Lab) -> Iterator[tuple[Any, Any]]:
    """(CoreV1Api, AppsV1Api) of the official client, talking HTTP to the test API server."""
    from kubernetes import client, config

    api_client = config.new_client_from_config(str(lab.kubeconfig), context="lab")
    yield client.CoreV1Api(api_client), client.AppsV1Api(api_client)
    api_client.close()


def patch_container(apps: Any, **fields: Any) -> None:
    """``kubectl patch`` / ``kubectl set env`` on the my-service container."""
    body = {"spec": {"template": {"spec": {"containers": [{"name": "my-service", **fields}]}}}}
    apps.patch_namespaced_deployment(
        "my-service", "production", body, _content_type=STRATEGIC
    )  # fmt: skip


# --- the list, the control endpoint, exclusivity ---------------------------------------------


def test_every_fault_is_known_and_unknown_names_are_refused(lab):
    names = {"none", "bad-deploy", "pool-exhaustion", "slow-queries", "crash-loop",
             "dependency-down", "traffic-spike"}  # fmt: skip
    assert set(lab.faults()) == names == set(FAULTS)
    with pytest.raises(ValueError, match="available: .*crash-loop"):
        lab.inject("disk-full")

    refused = httpx.post(f"{lab.control_url}/fault/disk-full", timeout=5)
    assert refused.status_code == 400
    assert "unknown fault 'disk-full'" in refused.json()["error"]
    assert set(refused.json()["faults"]) == names
    try:
        answer = httpx.post(f"{lab.control_url}/fault/traffic-spike", timeout=5)
        assert answer.status_code == 200 and answer.json()["fault"] == "traffic-spike"
        assert httpx.get(f"{lab.control_url}/status", timeout=5).json()["fault"] == "traffic-spike"
    finally:
        assert httpx.post(f"{lab.control_url}/fault/none", timeout=5).json()["fault"] == "none"
    assert lab.traffic.rps == lab.rps


def test_injecting_a_fault_clears_the_previous_one(lab):
    try:
        lab.inject("pool-exhaustion")
        assert len(held(lab)) == lab.pool_size
        lab.inject("dependency-down")
        assert lab.active_fault() == "dependency-down"
        assert held(lab) == []  # the held transactions were rolled back
        assert lab.app.pool.get_stats()["pool_available"] >= 1
        lab.inject("traffic-spike")
        assert lab.active_fault() == "traffic-spike"
        health = httpx.get(lab.target_spec()["services"]["my-service"]["dependencies"][
            "payments-provider"], timeout=2)  # fmt: skip
        assert health.status_code == 200
        assert lab.traffic.rps == 3 * lab.rps
    finally:
        lab.inject("none")
    assert lab.active_fault() == "none" and lab.traffic.rps == lab.rps


# --- pool exhaustion -------------------------------------------------------------------------


def test_pool_exhaustion_holds_sessions_until_a_runbook_terminates_them(lab):
    lab.inject("pool-exhaustion")
    try:
        held = wait_for("long transactions of my-service", lambda: sessions(lab, 1.0), 10)
        assert len(held) == lab.pool_size
        states = {s["state"] for s in held}
        assert states == {"active", "idle in transaction"}, held
        assert any("pg_sleep" in s["query"] for s in held if s["state"] == "active")
        wait_for("requests waiting for a connection", lambda: (prom(lab, WAITING) or 0) > 0)
        wait_for(
            "503 answers",
            lambda: prom(lab, f'sum(rate(http_requests_total{{{SERVICE}, status="503"}}[5s]))'),
        )
        wait_for(
            "PoolTimeoutError in the service's log",
            lambda: [
                line
                for line in service_log(lab)
                if " status=503 " in line and line.endswith("error=PoolTimeoutError")
            ],
        )
        wait_for(
            "the DatabaseConnectionPoolExhausted alert",
            lambda: prom(lab, 'ALERTS{alertname="DatabaseConnectionPoolExhausted"}'),
        )

        # the template's resolution: terminate the long transactions
        assert lab.postgres is not None
        with psycopg.connect(**lab.postgres.conninfo(), autocommit=True) as conn:
            killed = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'my-service' AND state <> 'idle'"
                " AND now() - xact_start > interval '1 second'"
            ).fetchall()
        assert len(killed) == lab.pool_size
        wait_for("the lab to see the fault resolved", lambda: lab.active_fault() == "none", 10)
        assert sessions(lab, 1.0) == []
    finally:
        lab.clear()
    assert lab.active_fault() == "none"
    wait_for("the pool back to its size", lambda: _pool_max_after_a_request(lab) == 5, 10)
    wait_for("no waiting", lambda: prom(lab, f"max_over_time({WAITING}[2s])") == 0, 15)


def _pool_max_after_a_request(lab: Lab) -> int:
    httpx.get(f"{lab.app.url}/health/db", timeout=5)  # the pool is resized on use
    return lab.app.pool.max_size


def test_pool_exhaustion_ends_with_a_rollout_or_clear(lab, kube):
    _, apps = kube
    lab.inject("pool-exhaustion")
    try:
        wait_for("held sessions", lambda: len(sessions(lab, 0.5)) == lab.pool_size, 10)
        wait_for("requests waiting", lambda: (prom(lab, WAITING) or 0) > 0)
        # kubectl set env DB_POOL_SIZE=10: a bigger pool, and (as any template change) new
        # pods: the pods that held the sessions go, and so do their sessions
        patch_container(apps, env=[{"name": "DB_POOL_SIZE", "value": "10"}])
        wait_for("the fault resolved by the rollout", lambda: lab.active_fault() == "none", 10)
        assert sessions(lab, 0.5) == []
        wait_for("a pool of 10", lambda: lab.app.pool.max_size == 10, 10)
        wait_for("no waiting", lambda: prom(lab, f"max_over_time({WAITING}[2s])") == 0, 15)

        lab.inject("pool-exhaustion")  # clears first: the seed template, a pool of 5 again
        wait_for("held sessions again", lambda: len(sessions(lab, 0.5)) == 5, 10)
        assert lab.app.pool.max_size == 5
        lab.clear()
        assert held(lab) == []
        wait_for("no waiting", lambda: prom(lab, f"max_over_time({WAITING}[2s])") == 0, 15)
    finally:
        lab.clear()


def test_requests_in_flight_move_to_a_replaced_pool(lab):
    """``kubectl set env DB_POOL_SIZE=N`` replaces the service's pool: requests that had
    taken the old one finish on the new one, none fails with PoolClosed."""
    app = LabApp(lab.postgres.conninfo(), lab.redis.url, pods_provider=lambda: [], pool_size=2)
    app.start()
    failures: list[BaseException] = []
    served = 0
    stop = threading.Event()

    def requests() -> None:
        nonlocal served
        while not stop.is_set():
            try:
                app._db_item(1)
                served += 1
            except BaseException as exc:  # noqa: BLE001 - every failure is the finding
                failures.append(exc)

    workers = [threading.Thread(target=requests) for _ in range(8)]
    try:
        for worker in workers:
            worker.start()
        for size in [3, 2] * 15:
            app.replace_pool(size)
            time.sleep(0.03)
    finally:
        stop.set()
        for worker in workers:
            worker.join(10)
        app.stop()
    assert failures == [] and served > 100, (failures[:3], served)


# --- slow queries ----------------------------------------------------------------------------


def test_slow_queries_raise_p99_with_slow_active_queries_to_explain(lab):
    # the errors measured below are this fault's, not what is left of an earlier one
    wait_for("no errors before the fault", lambda: (prom(lab, ERRORS) or 0) < 0.01, 30)
    lab.inject("slow-queries")
    try:
        slow = wait_for(
            "a slow active query of my-service",
            lambda: [
                s
                for s in sessions(lab)
                if s["state"] == "active" and "pg_sleep" in s["query"] and s["query_s"] > 0.2
            ],
            15,
            every=0.1,
        )
        assert lab.postgres is not None
        with psycopg.connect(**lab.postgres.conninfo()) as conn:
            plan = "\n".join(r[0] for r in conn.execute(f"EXPLAIN {slow[0]['query']}"))
        assert "Function Scan on pg_sleep" in plan and "items" in plan, plan
        wait_for("p99 over the 500 ms SLO", lambda: (prom(lab, P99) or 0) > 0.5, 20)
        assert (prom(lab, ERRORS) or 0) < 0.01
        wait_for("the HighLatency alert", lambda: prom(lab, 'ALERTS{alertname="HighLatency"}'))
    finally:
        lab.clear()
    wait_for("p99 back under the SLO", lambda: (prom(lab, P99) or 1) < 0.5, 20)
    assert not [s for s in sessions(lab) if "pg_sleep" in s["query"]]


# --- crash loop ------------------------------------------------------------------------------


def _crashing(core: Any) -> list[Any]:
    pods = core.list_namespaced_pod("production", label_selector="app=my-service").items
    return [p for p in pods if p.spec.containers[0].image.endswith(":2.1.0")]


def _oom_killed(core: Any) -> list[tuple[str, int]]:
    found = []
    for pod in _crashing(core):
        status = core.read_namespaced_pod(pod.metadata.name, "production").status
        cs = status.container_statuses[0]
        last = cs.last_state.terminated if cs.last_state else None
        if last and last.reason == "OOMKilled" and last.exit_code == 137 and cs.restart_count:
            found.append((pod.metadata.name, cs.restart_count))
    return found


def _restarts(core: Any, pod: str) -> int:
    return int(
        core.read_namespaced_pod(pod, "production").status.container_statuses[0].restart_count
    )


def test_crash_loop_oomkills_pods_until_the_memory_limit_is_raised(lab, kube):
    core, apps = kube
    lab.inject("crash-loop")
    try:
        deployment = apps.read_namespaced_deployment("my-service", "production")
        container = deployment.spec.template.spec.containers[0]
        assert (
            container.image.endswith(":2.1.0") and container.resources.limits["memory"] == "256Mi"
        )

        pod, count = wait_for("an OOMKilled pod", lambda: _oom_killed(core), 10)[0]
        wait_for("its restart count rising", lambda: _restarts(core, pod) > count, 15)
        wait_for(
            "a pod in CrashLoopBackOff, not ready",
            lambda: [
                p
                for p in _crashing(core)
                if (w := p.status.container_statuses[0].state.waiting)
                and w.reason == "CrashLoopBackOff"
                and not p.status.container_statuses[0].ready
            ],
            10,
        )
        wait_for("fewer pods serving", lambda: len(lab.current_pods()) < 3, 10)
        previous = core.read_namespaced_pod_log(pod, "production", container="my-service",
                                                previous=True)  # fmt: skip
        last_line = previous.splitlines()[-1]
        assert " CRITICAL " in last_line and last_line.endswith("error=OutOfMemoryError")
        events = core.list_namespaced_event(
            "production", field_selector=f"involvedObject.name={pod}"
        ).items
        warnings = {e.reason for e in events if e.type == "Warning"}
        assert {"OOMKilling", "BackOff"} <= warnings, warnings
        restarts = (
            'sum(increase(kube_pod_container_status_restarts_total{namespace="production",'
            ' container="my-service"}[10s]))'
        )
        wait_for("restarts in Prometheus", lambda: (prom(lab, restarts) or 0) > 0, 15)
        wait_for(
            "the PodCrashLooping alert",
            lambda: prom(lab, 'ALERTS{alertname="PodCrashLooping"}'),
            30,
        )

        # the template's fix: raise the memory limit to what the release needs
        patch_container(apps, resources={"limits": {"memory": "512Mi"}})
        assert lab.active_fault() == "none"
        fixed = wait_for(
            "three ready pods of 2.1.0 with 512Mi",
            lambda: [
                p
                for p in _crashing(core)
                if p.spec.containers[0].resources.limits["memory"] == "512Mi"
                and p.status.container_statuses[0].ready
            ],
            10,
        )
        assert len(fixed) == 3
        time.sleep(3.0)  # longer than a crash-looping pod runs before its OOM kill
        assert all(_restarts(core, p.metadata.name) == 0 for p in fixed)
        assert len(lab.current_pods()) == 3
    finally:
        lab.clear()
    assert lab.active_fault() == "none" and lab.image().endswith(":1.4.2")


def test_crash_loop_ends_with_a_rollback_or_clear(lab, kube):
    core, apps = kube
    lab.inject("crash-loop")
    try:
        wait_for("an OOMKilled pod", lambda: _oom_killed(core), 10)
        # kubectl rollout undo: the template of the previous revision
        revision = "deployment.kubernetes.io/revision"
        rss = apps.list_namespaced_replica_set("production", label_selector="app=my-service").items
        rss.sort(key=lambda rs: int(rs.metadata.annotations[revision]))
        previous = apps.api_client.sanitize_for_serialization(rss[-2].spec.template)
        previous["metadata"]["labels"].pop("pod-template-hash")
        apps.patch_namespaced_deployment(
            "my-service", "production",
            [{"op": "replace", "path": "/spec/template", "value": previous}],
            _content_type="application/json-patch+json",
        )  # fmt: skip
        assert lab.active_fault() == "none"
        assert wait_for("no crashing pods", lambda: _crashing(core) == [], 10)

        lab.inject("crash-loop")
        wait_for("an OOMKilled pod again", lambda: _oom_killed(core), 10)
        lab.clear()
        assert lab.active_fault() == "none" and _crashing(core) == []
        assert len(lab.current_pods()) == 3
    finally:
        lab.clear()


def test_the_crash_loop_rule_reads_memory_quantities():
    assert memory_bytes("256Mi") == 256 * 2**20
    assert memory_bytes("1Gi") == 2**30 and memory_bytes("0.5Gi") == 2**29
    assert memory_bytes("512M") == 512e6 and memory_bytes("536870912") == 2**29
    assert memory_bytes("lots") is None and memory_bytes(None) is None
    assert memory_bytes(OOM_MEMORY_LIMIT) < memory_bytes(OOM_MEMORY_NEEDED) <= memory_bytes("512Mi")


def test_without_a_ready_pod_the_api_answers_503(lab):
    app = LabApp(lab.postgres.conninfo(), lab.redis.url, pods_provider=lambda: [], pool_size=1)
    app.start()
    try:
        with httpx.Client(base_url=app.url, timeout=5) as client:
            answer = client.get("/api/items")
            assert answer.status_code == 503 and answer.json()["error"] == "NoReadyPodsError"
            assert client.get("/health").status_code == 200
    finally:
        app.stop()


# --- dependency down -------------------------------------------------------------------------


def test_dependency_down_fails_checkout_until_the_circuit_breaker_is_on(lab, kube):
    _, apps = kube
    health = lab.target_spec()["services"]["my-service"]["dependencies"]["payments-provider"]
    assert httpx.get(health, timeout=2).status_code == 200
    lab.inject("dependency-down")
    try:
        with pytest.raises(httpx.TimeoutException):
            httpx.get(health, timeout=1)
        wait_for("checkout 5xx in Prometheus", lambda: (prom(lab, CHECKOUT_5XX) or 0) > 0, 15)
        items_5xx = (
            f'sum(rate(http_requests_total{{{SERVICE}, endpoint="/api/items", status=~"5.."}}[5s]))'
        )
        assert not prom(lab, items_5xx)  # only the endpoint that calls the dependency
        wait_for(
            "DependencyTimeoutError in the service's log",
            lambda: [
                line
                for line in service_log(lab)
                if "endpoint=/api/checkout status=504 " in line
                and line.endswith("error=DependencyTimeoutError")
            ],
        )

        # kubectl set env CIRCUIT_BREAKER_ENABLED=true: the service falls back, no more 5xx
        patch_container(apps, env=[{"name": "CIRCUIT_BREAKER_ENABLED", "value": "true"}])
        wait_for(
            "a checkout that falls back (the order taken, its payment deferred)",
            lambda: httpx.post(f"{lab.app.url}/api/checkout", json={}, timeout=5).json(),
            10,
            check=lambda order: order.get("payment") == "deferred" and order["order_id"] > 0,
        )
        wait_for(
            "checkout 5xx to stop",
            lambda: prom(lab, CHECKOUT_5XX.replace("[5s]", "[3s]")) == 0,
            20,
        )
        assert lab.active_fault() == "dependency-down"  # mitigated, not fixed
    finally:
        lab.clear()
    assert httpx.get(health, timeout=2).status_code == 200
    env = lab.template()["spec"]["containers"][0]["env"]
    assert {"name": "CIRCUIT_BREAKER_ENABLED", "value": "false"} in env
    wait_for(
        "checkouts charged again",
        lambda: httpx.post(f"{lab.app.url}/api/checkout", json={}, timeout=5).json(),
        5,
        check=lambda order: order.get("payment") == "succeeded",
    )


# --- traffic spike ---------------------------------------------------------------------------


def test_traffic_spike_triples_the_throughput(lab):
    throughput = f"sum(rate(http_requests_total{{{SERVICE}}}[5s]))"
    baseline = wait_for("a baseline throughput", lambda: prom(lab, throughput), 15)
    lab.inject("traffic-spike")
    try:
        assert lab.traffic.rps == 3 * lab.rps and lab.active_fault() == "traffic-spike"
        ratio = f"{throughput} / sum(rate(http_requests_total{{{SERVICE}}}[10s] offset 10s))"
        wait_for("throughput 2.5x the minutes before", lambda: (prom(lab, ratio) or 0) >= 2.5, 20)
    finally:
        lab.clear()
    assert lab.traffic.rps == lab.rps
    wait_for("the normal rate", lambda: (prom(lab, throughput) or 0) < 1.5 * baseline, 15)


# --- alert rules -----------------------------------------------------------------------------


def test_alert_rules_name_their_runbooks_and_are_loaded(lab):
    rules = yaml.safe_load(alert_rules())["groups"][0]["rules"]
    runbooks = {r["alert"]: r["labels"]["runbook"] for r in rules}
    assert runbooks == {
        "HighErrorRate": "high-error-rate",
        "HighLatency": "high-latency",
        "DatabaseConnectionPoolExhausted": "db-connection-pool-exhausted",
        "PodCrashLooping": "pod-crash-looping",
    }
    for rule in rules:
        assert {"severity", "service", "runbook"} <= set(rule["labels"])
        assert rule["annotations"]["runbook_url"].endswith(f"/{rule['labels']['runbook']}.ipynb")
    assert lab.prometheus is not None
    loaded = httpx.get(f"{lab.prometheus.url}/api/v1/rules", timeout=5).json()["data"]["groups"]
    assert {r["name"] for g in loaded for r in g["rules"]} == set(runbooks)
