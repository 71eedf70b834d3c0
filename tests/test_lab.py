"""The lab: the instrumented service, the load generator and the whole wired-up Lab.

Waits are polls with deadlines. The lab's Prometheus scrapes every second; a new scrape
target takes about 5 s to be picked up (Prometheus throttles service discovery updates).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from opsnb.config import load_targets
from opsnb.lab.app import LabApp
from opsnb.lab.orchestrator import FAULTS, PASSWORD_ENV, Lab, alert_rules
from opsnb.lab.traffic import Traffic
from opsnb.promql import render

LOG_LINE = re.compile(
    r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARN|ERROR|CRITICAL)( \S+=\S+)+$"
)
GOOD = {
    "spec": {"containers": [{"name": "my-service", "image": "registry.local/my-service:1.4.2"}]}
}
BAD = {
    "spec": {"containers": [{"name": "my-service", "image": "registry.local/my-service:2.0.0-bad"}]}
}


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 30.0, every: float = 0.25):
    """Poll ``probe`` until it returns something truthy; fail with ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what} (last value: {last!r})")


# --- the service, with stand-ins for the Kubernetes side ------------------------------------


@pytest.fixture
def template() -> dict[str, Any]:
    return {"current": GOOD}


@pytest.fixture
def app(postgres_server, redis_server, template) -> Iterator[LabApp]:
    service = LabApp(
        postgres_server.conninfo(),
        redis_server.url,
        template_provider=lambda: template["current"],
        pods_provider=lambda: ["my-service-aaa-11111", "my-service-aaa-22222"],
        provider_ttl=0.0,
        seed=7,
    )
    service.start()
    yield service
    service.stop()


def test_app_serves_logs_and_exposes_metrics(app):
    with httpx.Client(base_url=app.url, timeout=3) as client:
        for _ in range(10):
            assert client.get("/api/items").status_code == 200
        assert client.get("/api/items", params={"id": 3}).json()["name"] == "item-3"
        order = client.post("/api/checkout", json={"item_id": 5, "quantity": 2})
        assert order.status_code == 200 and order.json()["order_id"] > 0
        assert client.get("/health").json()["status"] == "ok"
        db = client.get("/health/db").json()
        assert db["status"] == "ok" and db["max"] == 5 and {"active", "idle", "waiting"} <= set(db)
        assert client.get("/nope").status_code == 404
        metrics = client.get("/metrics").text

    samples = {
        (sample.name, tuple(sorted(sample.labels.items())))
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
    }
    names = {name for name, _ in samples}
    assert {
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "database_connection_pool_size",
        "cache_hit_ratio",
    } <= names
    assert (
        "http_requests_total",
        (
            ("endpoint", "/api/items"),
            ("method", "GET"),
            ("service", "my-service"),
            ("status", "200"),
        ),
    ) in samples
    buckets = {dict(labels)["le"] for name, labels in samples if name.endswith("_bucket")}
    assert buckets == {"0.01", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf"}
    states = {dict(labels)["state"] for name, labels in samples if "pool_size" in name}
    assert states == {"active", "idle", "waiting"}

    first, second = (app.logs_for(p).splitlines() for p in app.pods())
    assert abs(len(first) - len(second)) <= 1  # round-robin over the running pods
    for line in first + second:
        assert LOG_LINE.match(line), line
    assert any("method=POST endpoint=/api/checkout status=200" in line for line in first + second)
    assert not any("/metrics" in line for line in first + second)
    assert app.logs_for("my-service-aaa-11111", previous=True) == ""


def test_bad_deploy_template_fails_a_share_of_api_requests(app, template):
    template["current"] = BAD
    with httpx.Client(base_url=app.url, timeout=3) as client:
        statuses = [client.get("/api/items").status_code for _ in range(200)]
        assert client.get("/health").status_code == 200  # only /api/* is affected
    share = statuses.count(500) / len(statuses)
    assert 0.25 < share < 0.55, share
    errors = [
        line for p in app.pods() for line in app.logs_for(p).splitlines() if " ERROR " in line
    ]
    assert len(errors) == statuses.count(500)
    assert all(
        " status=500 " in line and line.split()[-1] == "error=BadDeployError" for line in errors
    )

    template["current"] = GOOD
    with httpx.Client(base_url=app.url, timeout=3) as client:
        assert all(client.get("/api/items").status_code == 200 for _ in range(50))


def test_traffic_sends_at_the_rate_and_counts_failures(app):
    with Traffic(app.url, rps=100, seed=1) as traffic:
        wait_for("40 requests", lambda: traffic.sent >= 40, timeout=5)
    stats = traffic.stats()
    assert stats.failed == 0 and set(stats.by_status) == {"200"}

    dead = Traffic("http://127.0.0.1:9", rps=50, timeout=0.3).start()  # nothing listens there
    wait_for("failed requests", lambda: dead.failed >= 5, timeout=5)
    dead.stop()
    assert dead.failed == dead.sent


def test_alert_rules_are_valid_for_promtool(tmp_path):
    promtool = shutil.which("promtool")
    assert promtool, "promtool comes with the Debian package 'prometheus'"
    rules = tmp_path / "rules.yml"
    rules.write_text(alert_rules())
    result = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- the whole lab ---------------------------------------------------------------------------


def prom_value(lab: Lab, expr: str) -> float:
    assert lab.prometheus is not None
    result = lab.prometheus.query(expr)
    return float(result[0]["value"][1]) if result else 0.0


def test_lab_metrics_reach_prometheus(lab):
    expr = 'sum(rate(http_requests_total{service="my-service"}[20s]))'
    wait_for("a request rate in Prometheus", lambda: prom_value(lab, expr) > 0, timeout=30)
    pool = lab.prometheus.query(render("pool", service="my-service"))
    assert {r["metric"]["state"] for r in pool} == {"active", "idle", "waiting"}


def test_bad_deploy_raises_5xx_and_adds_a_revision_then_rollback_or_clear_ends_it(lab):
    fast_errors = render("error_rate", service="my-service", window="3s")
    wait_for("traffic in Prometheus", lambda: lab.prometheus.query(fast_errors), timeout=30)
    revision = "deployment.kubernetes.io/revision"
    latest_before = max(int(rs["metadata"]["annotations"][revision]) for rs in lab.replica_sets())
    count_before = len(lab.replica_sets())

    # The session's lab may have run the bad release before: its ReplicaSet is then re-used
    # (as the real controller does for a template it has seen) and gets the next revision.
    def image(rs):
        return rs["spec"]["template"]["spec"]["containers"][0]["image"]

    expected = count_before + (
        0 if any(image(rs).endswith("-bad") for rs in lab.replica_sets()) else 1
    )
    pods_before = set(lab.current_pods())
    pods_template = lab.deployment()["spec"]["template"]

    lab.inject("bad-deploy")
    try:
        assert lab.status()["fault"] == "bad-deploy"
        rss = lab.replica_sets()
        assert len(rss) == expected
        newest = max(rss, key=lambda rs: int(rs["metadata"]["annotations"][revision]))
        assert newest["metadata"]["annotations"][revision] == str(latest_before + 1)
        assert newest["metadata"]["annotations"]["kubernetes.io/change-cause"] == "deploy 2.0.0"
        assert newest["spec"]["template"]["spec"]["containers"][0]["image"].endswith("-bad")
        assert set(lab.current_pods()).isdisjoint(pods_before)  # the new release's pods serve
        wait_for("the 5xx share to rise", lambda: prom_value(lab, fast_errors) > 0.15, timeout=20)
        lab.inject("bad-deploy")  # already in effect: no extra revision
        assert len(lab.replica_sets()) == expected
        # a runbook's rollback through the Kubernetes API resolves the fault as the lab sees it
        lab.kube.store.apply(
            {**lab.deployment(), "spec": {**lab.deployment()["spec"], "template": pods_template}}
        )
        assert lab.status()["fault"] == "none"
        lab.inject("bad-deploy")  # again, for clear() to undo
        assert lab.status()["image"].endswith("-bad")
    finally:
        lab.clear()
    assert lab.status()["fault"] == "none"
    assert not lab.status()["image"].endswith("-bad")
    wait_for("the 5xx share to fall", lambda: prom_value(lab, fast_errors) == 0.0, timeout=20)


def test_pod_logs_served_by_the_kube_server_are_the_app_lines(lab):
    from kubernetes import client, config

    api = client.CoreV1Api(config.new_client_from_config(str(lab.kubeconfig), context="lab"))
    pods = api.list_namespaced_pod("production", label_selector="app=my-service").items
    serving = [p.metadata.name for p in pods if p.metadata.name in lab.current_pods()]
    assert serving
    text = wait_for(
        "log lines for a serving pod",
        lambda: api.read_namespaced_pod_log(serving[0], "production", container="my-service"),
        timeout=10,
    )
    lines = text.splitlines()
    assert all(LOG_LINE.match(line) for line in lines), lines[:3]
    assert any("endpoint=/api/" in line for line in lines)
    assert lab.app.logs_for(serving[0]).startswith(text[:200])


def test_control_endpoint_injects_and_reports(lab):
    url = lab.control_url
    status = httpx.get(f"{url}/status", timeout=3).json()
    assert status["fault"] == "none" and set(status["faults"]) == set(FAULTS)
    assert status["traffic"]["sent"] > 0
    bad = httpx.post(f"{url}/fault/no-such-fault", timeout=3)
    assert bad.status_code == 400 and "bad-deploy" in bad.text
    assert httpx.post(f"{url}/fault/none", timeout=3).json()["fault"] == "none"
    info = (lab.workdir / "lab.json").read_text()
    assert url in info and lab.pg_password not in info


def test_write_target_is_a_valid_lab_target_without_the_password(lab, tmp_path, monkeypatch):
    path = lab.write_target(tmp_path)
    assert path == tmp_path / "targets.d" / "lab.yaml"
    text = path.read_text()
    assert lab.pg_password not in text
    assert yaml.safe_load(text)["targets"]["lab"]["postgres"]["password"] == {"env": PASSWORD_ENV}

    monkeypatch.setenv("OPSNB_HOME", str(tmp_path))
    target = load_targets()["lab"]
    assert target.kind == "live" and target.policy.allow_apply
    assert target.prometheus.url == lab.prometheus.url and target.prometheus.rate_window == "20s"
    assert target.kubernetes.namespace == "production" and target.kubernetes.context == "lab"
    assert target.postgres.password.resolve() == lab.pg_password  # exported by the lab
    service = target.service(None)
    assert (service.name, service.selector, service.container) == (
        "my-service",
        "app=my-service",
        "my-service",
    )
    for url in service.dependencies.values():
        assert httpx.get(url, timeout=3).status_code == 200
    assert Path(target.kubernetes.kubeconfig).is_file()
