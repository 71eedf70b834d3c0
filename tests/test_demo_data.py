"""The demo target's recorded incidents: reproducible, faithful to the template, loadable."""

from __future__ import annotations

import inspect
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kubernetes import client

from opsnb.config import DEMO_SNAPSHOTS
from opsnb.demo import build_incidents, generate
from opsnb.promql import render

SERVICES = ("payments", "catalog")
LOG_LINE = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z (DEBUG|INFO|WARN|ERROR|CRITICAL)"
    r"( [a-z_]+=[^\s=]+)+$"
)
K8S_TYPES = {
    "pods.json": ("V1PodList", "PodList", "v1"),
    "deployments.json": ("V1DeploymentList", "DeploymentList", "apps/v1"),
    "replicasets.json": ("V1ReplicaSetList", "ReplicaSetList", "apps/v1"),
    "events.json": ("CoreV1EventList", "EventList", "v1"),
}


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for service in SERVICES
        for p in sorted((root / service).rglob("*"))
        if p.is_file()
    }


def _load(service: str, rel: str):
    return json.loads((DEMO_SNAPSHOTS / service / rel).read_text())


def _series(service: str, name: str, **labels: str) -> dict[int, float]:
    query = render(name, service=service, window="5m")
    for s in _load(service, "metrics.json")["series"]:
        if s["query"] == query and s["metric"] == labels:
            return {int(t): float(v) for t, v in s["values"]}
    raise AssertionError(f"no series {name} {labels} for {service}")


def _unix(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).timestamp())


class _Response:
    """What older clients' ``ApiClient.deserialize`` reads: an object with ``.data``."""

    def __init__(self, body: str):
        self.data = body


def _deserialize(text: str, type_name: str):
    """Deserialize like the official client does for an API response.

    Clients up to v31 take a response object with ``.data``; newer ones take the body text
    and a content type.
    """
    api = client.ApiClient()
    if "content_type" in inspect.signature(api.deserialize).parameters:
        return api.deserialize(text, type_name, "application/json")
    return api.deserialize(_Response(text), type_name)


def test_regenerating_gives_identical_files(tmp_path: Path) -> None:
    generate.main(["--out", str(tmp_path)])
    committed = _files(DEMO_SNAPSHOTS)
    regenerated = _files(tmp_path)
    assert committed, "no committed incidents"
    assert sorted(regenerated) == sorted(committed)
    different = [name for name in committed if committed[name] != regenerated[name]]
    assert not different


def test_old_module_name_is_an_alias() -> None:
    assert build_incidents.main is generate.main
    assert build_incidents.build is generate.build


def test_demo_data_is_small() -> None:
    total = sum(len(b) for b in _files(DEMO_SNAPSHOTS).values())
    assert total < 1_500_000


@pytest.mark.parametrize("service", SERVICES)
def test_snapshot_header(service: str) -> None:
    meta = _load(service, "snapshot.json")
    assert meta["format"] == "opsnb-snapshot/1"
    assert meta["service"] == meta["deployment"] == meta["container"] == service
    assert meta["namespace"] == "production"
    assert meta["selector"] == f"app={service}"
    assert meta["step_seconds"] == 60 and meta["rate_window"] == "5m"
    assert _unix(meta["start"]) < _unix(meta["now"]) < _unix(meta["end"])
    assert meta["slo"] == {
        "availability": 0.999,
        "latency_p99_seconds": 0.5,
        "error_rate": 0.001,
        "alert_error_rate": 0.01,
    }
    deps = _load(service, "dependencies.json")
    assert set(deps) == set(meta["dependencies"])
    assert all(d["status"] == "ok" for d in deps.values())


@pytest.mark.parametrize("service", SERVICES)
def test_metric_series_cover_the_window_at_the_step(service: str) -> None:
    meta = _load(service, "snapshot.json")
    expected = list(range(_unix(meta["start"]), _unix(meta["end"]) + 1, 60))
    for s in _load(service, "metrics.json")["series"]:
        assert [t for t, _ in s["values"]] == expected
        assert all(isinstance(v, str) and float(v) >= 0 for _, v in s["values"])
    for name in ("error_rate", "availability", "latency_p99", "throughput"):
        _series(service, name)


PAYMENTS_ERROR_RATE = {
    "14:00": 0.0001, "14:10": 0.0005, "14:15": 0.025, "14:20": 0.152, "14:25": 0.187,
    "14:30": 0.163, "14:40": 0.121, "14:50": 0.052, "15:00": 0.008, "15:10": 0.0003,
}  # fmt: skip
PAYMENTS_POOL = {
    "14:00": (45, 55, 0), "14:10": (78, 22, 0), "14:15": (98, 2, 15), "14:20": (100, 0, 89),
    "14:30": (100, 0, 156), "14:40": (145, 155, 0), "14:50": (120, 180, 0),
}  # fmt: skip


def _p(hhmm: str) -> int:
    return _unix(f"2025-01-15T{hhmm}:00Z")


def test_payments_error_rate_follows_the_postmortem_appendix() -> None:
    err = _series("payments", "error_rate")
    avail = _series("payments", "availability")
    for hhmm, figure in PAYMENTS_ERROR_RATE.items():
        assert err[_p(hhmm)] == pytest.approx(figure, abs=1e-6), hhmm
        assert avail[_p(hhmm)] == pytest.approx(1 - figure, abs=1e-6), hhmm
    assert all(v < 0.0002 for t, v in err.items() if t < _p("14:00") or t > _p("15:16"))
    assert max(err.values()) == pytest.approx(0.187)


def test_payments_pool_follows_the_postmortem_appendix() -> None:
    pool = {s: _series("payments", "pool", state=s) for s in ("active", "idle", "waiting")}
    for hhmm, row in PAYMENTS_POOL.items():
        got = tuple(pool[s][_p(hhmm)] for s in ("active", "idle", "waiting"))
        assert got == row, hhmm
    for t in pool["active"]:
        size = pool["active"][t] + pool["idle"][t]
        assert size == (100 if t < _p("14:40") else 300)


def test_payments_traffic_triples_and_latency_peaks() -> None:
    rps = _series("payments", "throughput")
    assert all(300 < v < 360 for t, v in rps.items() if t < _p("13:59"))
    assert all(950 < v < 1050 for t, v in rps.items() if t >= _p("14:05"))
    p99 = _series("payments", "latency_p99")
    assert p99[_p("13:30")] < 0.2
    assert 2.3 < max(p99.values()) < 2.7
    by_ep = {
        ep: sum(_series("payments", "errors_by_endpoint", endpoint=ep).values())
        for ep in ("/api/checkout", "/api/payments", "/api/refunds")
    }
    assert by_ep["/api/checkout"] > by_ep["/api/payments"] > by_ep["/api/refunds"]


def test_payments_has_no_recent_rollout_and_an_exhausted_database() -> None:
    dep = _load("payments", "kubernetes/deployments.json")["items"][0]
    assert dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "7"
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"].endswith("payments:3.2.1")
    now = _unix(_load("payments", "snapshot.json")["now"])
    for rs in _load("payments", "kubernetes/replicasets.json")["items"]:
        assert now - _unix(rs["metadata"]["creationTimestamp"]) > 5 * 86400
    pods = _load("payments", "kubernetes/pods.json")["items"]
    assert len(pods) == 6
    for pod in pods:
        status = pod["status"]["containerStatuses"][0]
        assert status["ready"] and status["restartCount"] == 0
    pg = _load("payments", "postgres/activity.json")
    assert pg["max_connections"] == 100
    app_rows = [r for r in pg["activity"] if r["application_name"] == "payments"]
    assert len(app_rows) >= 90
    long_running = [
        r for r in app_rows
        if r["state"] != "idle" and now - _unix(r["query_start"][:19] + "Z") > 300
    ]  # fmt: skip
    assert len(long_running) >= 3
    info = _load("payments", "redis/info.json")["info"]
    hits, misses = info["keyspace_hits"], info["keyspace_misses"]
    assert hits / (hits + misses) == pytest.approx(0.94, abs=0.01)


def test_catalog_rollout_history_has_revision_12_at_0942() -> None:
    rss = _load("catalog", "kubernetes/replicasets.json")["items"]
    by_rev = {
        int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]): rs for rs in rss
    }
    assert sorted(by_rev) == [10, 11, 12]
    new = by_rev[12]
    assert new["metadata"]["creationTimestamp"].startswith("2025-03-04T09:42")
    assert new["metadata"]["annotations"]["kubernetes.io/change-cause"] == "deploy 5.0.0"
    assert new["spec"]["template"]["spec"]["containers"][0]["image"].endswith("catalog:5.0.0")
    assert by_rev[11]["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":4.9.3")
    assert by_rev[11]["spec"]["replicas"] == by_rev[10]["spec"]["replicas"] == 0
    dep = _load("catalog", "kubernetes/deployments.json")["items"][0]
    assert dep["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "12"
    pods = _load("catalog", "kubernetes/pods.json")["items"]
    assert len(pods) == 4
    assert {p["metadata"]["labels"]["pod-template-hash"] for p in pods} == {
        new["metadata"]["labels"]["pod-template-hash"]
    }
    events = _load("catalog", "kubernetes/events.json")["items"]
    scaling = [e for e in events if e["reason"] == "ScalingReplicaSet"]
    assert any(e["message"].endswith(f"{new['metadata']['name']} to 4 from 3") for e in scaling)
    assert all(e["firstTimestamp"].startswith("2025-03-04T09:42") for e in scaling)


def test_catalog_errors_start_after_the_rollout() -> None:
    err = _series("catalog", "error_rate")
    t0942 = _unix("2025-03-04T09:42:00Z")
    assert all(v < 0.0005 for t, v in err.items() if t <= t0942)
    assert all(0.08 <= v <= 0.12 for t, v in err.items() if t >= t0942 + 6 * 60)
    first_errors = []
    for log in sorted((DEMO_SNAPSHOTS / "catalog" / "logs").glob("*.log")):
        errors = [ln for ln in log.read_text().splitlines() if " ERROR " in ln]
        assert errors
        assert all("endpoint=/api/products" in ln for ln in errors)
        assert {ln.rsplit(" ", 1)[1] for ln in errors} <= {
            "error=NullPointerError",
            "error=SerializationError",
        }
        first_errors.append(errors[0][:23])
    assert min(first_errors) >= "2025-03-04T09:43:00.000"


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("name", sorted(K8S_TYPES))
def test_kubernetes_json_deserializes_with_the_official_client(service: str, name: str) -> None:
    type_name, kind, api_version = K8S_TYPES[name]
    text = (DEMO_SNAPSHOTS / service / "kubernetes" / name).read_text()
    data = json.loads(text)
    assert data["kind"] == kind and data["apiVersion"] == api_version
    assert all(item["kind"] == kind.removesuffix("List") for item in data["items"])
    assert all(item["apiVersion"] == api_version for item in data["items"])

    result = _deserialize(text, type_name)
    assert type(result).__name__ == type_name
    assert len(result.items) == len(data["items"]) > 0


@pytest.mark.parametrize("service", SERVICES)
def test_ownership_chain(service: str) -> None:
    dep = _load(service, "kubernetes/deployments.json")["items"][0]
    rss = {
        rs["metadata"]["uid"]: rs for rs in _load(service, "kubernetes/replicasets.json")["items"]
    }
    for rs in rss.values():
        (owner,) = rs["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["uid"]) == ("Deployment", dep["metadata"]["uid"])
        assert "deployment.kubernetes.io/revision" in rs["metadata"]["annotations"]
    for pod in _load(service, "kubernetes/pods.json")["items"]:
        (owner,) = pod["metadata"]["ownerReferences"]
        rs = rss[owner["uid"]]
        assert owner["kind"] == "ReplicaSet" and owner["name"] == rs["metadata"]["name"]
        assert (
            pod["metadata"]["labels"]["pod-template-hash"]
            == (rs["metadata"]["labels"]["pod-template-hash"])
        )
        assert (DEMO_SNAPSHOTS / service / "logs" / f"{pod['metadata']['name']}.log").is_file()


@pytest.mark.parametrize("service", SERVICES)
def test_every_log_line_matches_the_format(service: str) -> None:
    logs = sorted((DEMO_SNAPSHOTS / service / "logs").glob("*.log"))
    assert logs
    now = _load(service, "snapshot.json")["now"].replace("Z", "")
    for log in logs:
        lines = log.read_text().splitlines()
        assert lines
        stamps = [ln[:23] for ln in lines]
        assert stamps == sorted(stamps)
        assert stamps[-1] < now
        for ln in lines:
            assert LOG_LINE.match(ln), f"{log.name}: {ln!r}"
            level = ln.split(" ", 2)[1]
            if level in ("ERROR", "CRITICAL"):
                assert re.search(r" error=[A-Za-z]+$", ln), ln


def test_payments_logs_show_pool_timeouts_from_1415() -> None:
    errors, warns = [], []
    for log in (DEMO_SNAPSHOTS / "payments" / "logs").glob("*.log"):
        for ln in log.read_text().splitlines():
            if " ERROR " in ln:
                errors.append(ln)
            elif " WARN " in ln:
                warns.append(ln)
    assert min(ln[:16] for ln in errors) >= "2025-01-15T14:15"
    kinds = [ln.rsplit("=", 1)[1] for ln in errors]
    assert kinds.count("PoolTimeoutError") > 3 * kinds.count("DatabaseConnectionError") > 0
    pool_timeouts = [ln for ln in errors if ln.endswith("PoolTimeoutError")]
    assert all(
        "endpoint=/api/checkout" in ln or "endpoint=/api/payments" in ln for ln in pool_timeouts
    )
    assert warns and all(re.search(r"WARN event=pool_wait waiting=\d+$", ln) for ln in warns)
