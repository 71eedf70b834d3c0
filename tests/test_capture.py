"""`opsnb snapshot`: evidence recorded from a live target, re-run later as a snapshot target."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import httpx
import labtools
import psycopg
import pytest
import yaml
from labtools import BIN, error_rate, kube_requests, primary, wait_healthy, wait_until

from opsnb.backends.snapshot import Snapshot, SnapshotKubernetes, SnapshotPrometheus
from opsnb.capture import capture, scrub_sensitive, target_spec, write_target
from opsnb.config import get_target, parse_target
from opsnb.errors import UsageError
from opsnb.lab.processes import free_port
from opsnb.promql import QUERIES, render
from opsnb.secrets import REDACTED

K8S_FILES = ("pods", "deployments", "replicasets", "events")


def snapshot_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "opsnb"), "snapshot", *args], capture_output=True, text=True, timeout=120
    )


def files_of(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def assert_nowhere(secret: str, folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), f"the secret is in {path}"


def deserialize(path: Path, kind: str) -> Any:
    """The file as the official client deserializes an API answer of ``kind``."""
    import inspect

    from kubernetes.client import ApiClient

    client, text = ApiClient(), path.read_text()
    if "response_text" in inspect.signature(client.deserialize).parameters:  # kubernetes >= 35
        return client.deserialize(text, kind, "application/json")

    class Response:
        data = text

    return client.deserialize(Response(), kind)


@pytest.fixture
def leaky_session(lab):
    """A PostgreSQL session whose name and last query carry the lab's password, as a
    careless `ALTER USER ... PASSWORD` would leave it in pg_stat_activity."""
    password = lab.pg_password
    conn = psycopg.connect(
        **lab.postgres.conninfo(), autocommit=True, application_name=f"leak-{password}"
    )
    conn.execute(f"SELECT '{password}' AS leaked")
    yield password
    conn.close()


@pytest.fixture
def evidence_target():
    """The name ``--as-target`` gives the captured snapshot; its file is removed after."""
    yield "lab-evidence"
    (Path(os.environ["OPSNB_HOME"]) / "targets.d" / "lab-evidence.yaml").unlink(missing_ok=True)


# --- against the lab ----------------------------------------------------------------------------


def test_bad_deploy_captured_then_diagnosed_from_the_snapshot(
    lab, leaky_session, evidence_target, tmp_path
):
    password = leaky_session
    folder = tmp_path / "evidence"
    lab.inject("bad-deploy")
    try:
        wait_until("the error rate to pass 5%", lambda: (error_rate(lab) or 0) > 0.05)
        done = snapshot_cli("--target", "lab", "--minutes", "5", "--out", str(folder),
                            "--as-target", evidence_target)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip().splitlines()[-1] == str(folder)
    finally:
        lab.clear()

    files = files_of(folder)
    for name in K8S_FILES:
        assert f"kubernetes/{name}.json" in files
    for name in ("snapshot.json", "metrics.json", "dependencies.json", "postgres/activity.json",
                 "redis/info.json"):  # fmt: skip
        assert name in files
    meta = json.loads((folder / "snapshot.json").read_text())
    assert meta["format"] == "opsnb-snapshot/1"
    assert (meta["service"], meta["namespace"], meta["rate_window"]) == (
        "my-service", "production", "20s",
    )  # fmt: skip
    assert meta["unavailable"] == {} and meta["step_seconds"] == 15
    assert set(meta["dependencies"]) == {"database", "cache", "payments-provider"}

    # metrics: every named query, stored under its rendered text; the error rate shows the fault
    metrics = json.loads((folder / "metrics.json").read_text())["series"]
    recorded = {s["query"] for s in metrics}
    assert recorded == {render(n, service="my-service", window="20s") for n in QUERIES}
    errors = [s for s in metrics if s["query"] == render("error_rate", service="my-service",
                                                         window="20s")]  # fmt: skip
    assert max(float(v) for _, v in errors[0]["values"]) > 0.05
    snap = Snapshot(folder)
    assert SnapshotPrometheus(snap).named("error_rate", "my-service", "20s")["value"][0] > 0.05

    # Kubernetes: the API's own lists, which the official client reads back
    pods = deserialize(folder / "kubernetes/pods.json", "V1PodList")
    assert len(pods.items) >= 3
    assert all(p.metadata.name.startswith("my-service-") for p in pods.items)
    replicasets = deserialize(folder / "kubernetes/replicasets.json", "V1ReplicaSetList")
    images = {rs.spec.template.spec.containers[0].image for rs in replicasets.items}
    assert any(i.endswith("-bad") for i in images) and len(images) >= 2
    deployments = deserialize(folder / "kubernetes/deployments.json", "V1DeploymentList")
    assert [d.metadata.name for d in deployments.items] == ["my-service"]
    assert deserialize(folder / "kubernetes/events.json", "CoreV1EventList").items
    history = SnapshotKubernetes(snap).rollout_history("my-service")
    assert history.sort_values("revision")["image"].iloc[-1].endswith("-bad")

    # logs of every pod, with the bad release's errors
    logs = [f for f in files if f.startswith("logs/")]
    assert sorted(logs) == sorted(f"logs/{p.metadata.name}.log" for p in pods.items)
    text = "".join((folder / f).read_text() for f in logs)
    assert "error=BadDeployError" in text

    # the databases: pg_stat_activity with max_connections (the leak redacted), Redis INFO
    activity = json.loads((folder / "postgres/activity.json").read_text())
    assert activity["max_connections"] > 0
    leak = [r for r in activity["activity"] if str(r["application_name"]).startswith("leak-")]
    assert leak and leak[0]["application_name"] == f"leak-{REDACTED}"
    assert leak[0]["query"] == f"SELECT '{REDACTED}' AS leaked"
    info = json.loads((folder / "redis/info.json").read_text())["info"]
    assert "redis_version" in info and "keyspace_hits" in info
    deps = json.loads((folder / "dependencies.json").read_text())
    assert {d["status"] for d in deps.values()} == {"ok"}
    assert_nowhere(password, folder)

    # The lab recovers; the snapshot still tells what happened.
    wait_healthy(lab)
    assert get_target(evidence_target).kind == "snapshot"
    httpx.post(f"{lab.kube.url}/_test/reset-requests", timeout=5)
    done, result = labtools.run("high-error-rate", "--target", evidence_target,
                                "--out", str(tmp_path / "runs"))  # fmt: skip
    assert done.returncode == 0, result["error"]
    assert result["service"] == "my-service"
    assert primary(result) == ("recent-deployment", "rollback")
    assert labtools.checks(result)["Error rate against the alert threshold"] == "fail"
    assert labtools.checks(result)["Error log breakdown"] == "fail"
    assert [(a["action"], a["outcome"]) for a in result["actions"]] == [("rollback", "previewed")]
    assert "read-only" in result["actions"][0]["detail"]
    assert kube_requests(lab) == []  # the run read the snapshot, not the lab
    assert not lab.image().endswith("-bad")


@pytest.fixture
def lab_without_prometheus(lab):
    """Target ``lab-no-prom``: the lab with Prometheus at a port where nothing listens, and a
    dependency whose URL carries the PostgreSQL password."""
    home = Path(os.environ["OPSNB_HOME"])
    spec = yaml.safe_load((home / "targets.d" / "lab.yaml").read_text())["targets"]["lab"]
    spec["prometheus"] = {"url": f"http://127.0.0.1:{free_port()}", "rate_window": "20s"}
    service = spec["services"]["my-service"]
    service["dependencies"]["ledger"] = f"http://ops:{lab.pg_password}@127.0.0.1:{free_port()}/"
    path = home / "targets.d" / "lab-no-prom.yaml"
    path.write_text(yaml.safe_dump({"targets": {"lab-no-prom": spec}}))
    yield "lab-no-prom"
    path.unlink()


def test_prometheus_down_is_recorded_and_the_capture_completes(lab_without_prometheus, lab,
                                                               tmp_path):  # fmt: skip
    folder = capture(lab_without_prometheus, None, None, None, tmp_path / "snap", 15)
    files = files_of(folder)
    meta = json.loads((folder / "snapshot.json").read_text())
    assert set(meta["unavailable"]) == {"prometheus"}
    assert "refused" in meta["unavailable"]["prometheus"]
    assert "metrics.json" not in files
    for name in K8S_FILES:
        assert f"kubernetes/{name}.json" in files
    assert "postgres/activity.json" in files and "redis/info.json" in files
    deps = json.loads((folder / "dependencies.json").read_text())
    assert deps["ledger"]["status"] == "down"
    assert REDACTED in deps["ledger"]["url"]
    assert_nowhere(lab.pg_password, folder)
    # the snapshot answers like the live target did: metrics unavailable, the rest there
    snap = Snapshot(folder)
    with pytest.raises(Exception, match="no metrics.json"):
        SnapshotPrometheus(snap).named("error_rate", "my-service", "20s")
    assert len(SnapshotKubernetes(snap).pods("app=my-service")) == 3


# --- without services ---------------------------------------------------------------------------


def offline_target(tmp_path: Path) -> Any:
    """A live target whose Prometheus does not answer and that configures nothing else."""
    spec = {"prometheus": {"url": f"http://127.0.0.1:{free_port()}"}, "default_service": "svc"}
    return parse_target("offline", spec, source=str(tmp_path / "offline.yaml"))


def test_every_backend_missing_still_writes_a_valid_snapshot(tmp_path):
    folder = capture(offline_target(tmp_path), None, None, None, tmp_path / "snap", 60)
    meta = json.loads((folder / "snapshot.json").read_text())
    assert set(meta["unavailable"]) == {"kubernetes", "postgres", "redis", "prometheus"}
    assert "configures no kubernetes" in meta["unavailable"]["kubernetes"]
    assert files_of(folder) == ["dependencies.json", "snapshot.json"]
    snap = Snapshot(folder)
    assert snap.service == "svc" and snap.now == snap.end
    assert (snap.end - snap.start).total_seconds() == 3600
    assert not list(tmp_path.glob(".snap.partial-*"))


def test_bad_requests_are_usage_errors(tmp_path):
    target = offline_target(tmp_path)
    with pytest.raises(UsageError, match="recorded snapshot"):
        capture("demo", "payments", out=tmp_path / "x")
    with pytest.raises(UsageError, match="start before"):
        capture(target, None, "2025-01-02T00:00:00Z", "2025-01-01T00:00:00Z", tmp_path / "x")
    with pytest.raises(UsageError, match="points per series"):
        capture(target, None, "2025-01-01T00:00:00Z", "2025-01-03T00:00:00Z", tmp_path / "x", 1)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("evidence")
    with pytest.raises(UsageError, match="not empty"):
        capture(target, None, None, None, tmp_path / "full")
    assert (tmp_path / "full" / "keep.txt").read_text() == "evidence"
    done = snapshot_cli("--target", "demo")
    assert done.returncode == 2 and "live target" in done.stderr
    done = snapshot_cli("--target", "nope", "--minutes", "5", "--start", "2025-01-01T00:00:00")
    assert done.returncode == 2


def test_window_in_the_past_sets_now_to_its_end(tmp_path):
    folder = capture(offline_target(tmp_path), None, "2025-01-01T10:00:00Z",
                     "2025-01-01T11:00:00", tmp_path / "past")  # fmt: skip
    meta = json.loads((folder / "snapshot.json").read_text())
    assert (meta["start"], meta["end"], meta["now"]) == (
        "2025-01-01T10:00:00.000Z", "2025-01-01T11:00:00.000Z", "2025-01-01T11:00:00.000Z",
    )  # fmt: skip
    assert meta["captured_at"] > meta["now"]


def test_as_target_defines_a_read_only_snapshot_target(tmp_path):
    folder = capture(offline_target(tmp_path), None, None, None, tmp_path / "snap")
    home = tmp_path / "home"
    path = write_target("offline-evidence", folder, home=home)
    spec = yaml.safe_load(path.read_text())["targets"]["offline-evidence"]
    assert spec == target_spec(folder)
    target = parse_target("offline-evidence", spec, source=str(path))
    assert target.kind == "snapshot" and target.snapshot == folder.resolve()
    assert target.default_service == "svc" and not target.policy.allow_apply
    write_target("offline-evidence", folder, home=home)  # its own file may be replaced
    path.write_text("targets: {}\n")
    with pytest.raises(UsageError, match="not written by opsnb"):
        write_target("offline-evidence", folder, home=home)
    with pytest.raises(UsageError, match="demo"):
        write_target("demo", folder, home=home)


def test_sensitive_env_values_are_scrubbed_from_kubernetes_objects():
    container = {"name": "app", "env": [
        {"name": "DB_PASSWORD", "value": "hunter2"},
        {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
        {"name": "LOG_LEVEL", "value": "debug"},
    ]}  # fmt: skip
    applied = json.dumps({"spec": {"template": {"spec": {"containers": [container]}}}})
    deployment = {
        "metadata": {"annotations": {"kubectl.kubernetes.io/last-applied-configuration": applied}},
        "spec": {"template": {"spec": {"containers": [container]}}},
    }
    clean = scrub_sensitive({"kind": "DeploymentList", "items": [deployment]})
    text = json.dumps(clean)
    assert "hunter2" not in text
    env = clean["items"][0]["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[0]["value"] == REDACTED and env[2]["value"] == "debug"
    assert env[1] == container["env"][1]  # a reference, not a value: kept
    configmaps = {"items": [{"metadata": {"name": "c"}, "data": {"password": "x", "mode": "y"}}]}
    assert scrub_sensitive(configmaps, configmaps=True)["items"][0]["data"] == {
        "password": REDACTED, "mode": "y",
    }  # fmt: skip
