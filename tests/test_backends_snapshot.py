"""Snapshot backends against a small snapshot folder built here (not the demo data)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from opsnb.backends import kube_objects
from opsnb.backends.kube_objects import Change, LogsNotFound, ObjectNotFound
from opsnb.backends.snapshot import (
    READ_ONLY,
    Snapshot,
    SnapshotKubernetes,
    SnapshotPrometheus,
    normalise_query,
)
from opsnb.backends.snapshot_stores import SnapshotPostgres, SnapshotRedis
from opsnb.errors import BackendUnavailable
from opsnb.promql import render

START = pd.Timestamp("2025-01-15T14:00:00Z")
NOW = pd.Timestamp("2025-01-15T14:30:00Z")
END = pd.Timestamp("2025-01-15T15:00:00Z")
DEP_UID = "d-uid-1"


def iso(ts: pd.Timestamp) -> str:
    return ts.strftime("%Y-%m-%dT%H:%M:%SZ")


def write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data, indent=1))


def pod(name: str, app: str, hash_: str, **status: Any) -> dict[str, Any]:
    container_status: dict[str, Any] = {
        "name": "payments",
        "ready": status.get("ready", True),
        "restartCount": status.get("restarts", 0),
        "state": status.get("state", {"running": {"startedAt": "2025-01-15T10:00:00Z"}}),
        "lastState": status.get("last_state", {}),
    }
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": "production",
            "labels": {"app": app, "pod-template-hash": hash_},
            "creationTimestamp": "2025-01-15T10:00:00Z",
        },
        "spec": {"nodeName": "worker-1", "containers": [{"name": "payments", "image": "x"}]},
        "status": {
            "phase": "Running",
            "conditions": [
                {"type": "Ready", "status": "True" if status.get("ready", True) else "False"}
            ],
            "containerStatuses": [container_status],
        },
    }


def template(
    image: str, env: dict[str, str] | None = None, hash_: str | None = None
) -> dict[str, Any]:
    labels = {"app": "payments"}
    if hash_:
        labels["pod-template-hash"] = hash_
    container: dict[str, Any] = {"name": "payments", "image": image}
    if env:
        container["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return {"metadata": {"labels": labels}, "spec": {"containers": [container]}}


def replicaset(
    revision: int, image: str, replicas: int, owner_uid: str = DEP_UID
) -> dict[str, Any]:
    hash_ = f"h{revision}"
    return {
        "kind": "ReplicaSet",
        "apiVersion": "apps/v1",
        "metadata": {
            "name": f"payments-{hash_}",
            "namespace": "production",
            "creationTimestamp": f"2025-01-1{revision}T09:00:00Z",
            "annotations": {
                "deployment.kubernetes.io/revision": str(revision),
                "kubernetes.io/change-cause": f"deploy {image}",
            },
            "ownerReferences": [{"kind": "Deployment", "name": "payments", "uid": owner_uid}],
        },
        "spec": {"replicas": replicas, "template": template(image, hash_=hash_)},
    }


def event(
    name: str, reason: str, when: str, obj: str, count: int = 1, type_: str = "Warning"
) -> dict[str, Any]:
    return {
        "kind": "Event",
        "metadata": {"name": name, "namespace": "production"},
        "involvedObject": {"kind": "Pod", "name": obj},
        "reason": reason,
        "message": f"{reason} happened ",
        "firstTimestamp": when,
        "lastTimestamp": when,
        "count": count,
        "type": type_,
    }


def activity_row(
    pid: int,
    state: str | None,
    query_start: str | None,
    backend_type: str = "client backend",
    query: str = "SELECT 1",
) -> dict[str, Any]:
    return {
        "pid": pid,
        "datname": "payments",
        "usename": "app",
        "application_name": "payments",
        "state": state,
        "query_start": query_start,
        "backend_start": "2025-01-15T08:00:00.000000+00:00",
        "query": query,
        "backend_type": backend_type,
    }


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    """A folder of two snapshots: payments (full) and catalog (minimal)."""
    base = tmp_path / "incidents"
    snap = base / "payments"
    write(
        snap / "snapshot.json",
        {
            "format": "opsnb-snapshot/1",
            "service": "payments",
            "namespace": "production",
            "selector": "app=payments",
            "deployment": "payments",
            "container": "payments",
            "start": iso(START),
            "end": iso(END),
            "now": iso(NOW),
            "step_seconds": 60,
            "rate_window": "5m",
            "description": "test incident",
            "slo": {"availability": 0.999},
            "dependencies": {
                "postgres": "postgresql://db:5432/payments",
                "redis": "redis://cache:6379/0",
                "provider": "https://provider/health",
            },
        },
    )
    minutes = [START + pd.Timedelta(minutes=i) for i in range(61)]
    error_rate = render("error_rate", service="payments", window="5m")
    by_endpoint = render("errors_by_endpoint", service="payments", window="5m")
    write(
        snap / "metrics.json",
        {
            "series": [
                {
                    # recorded with other whitespace than promql.render produces
                    "query": error_rate.replace(", ", ",").replace(" / ", "/\n  "),
                    "metric": {},
                    "values": [[int(t.timestamp()), f"{i / 100:g}"] for i, t in enumerate(minutes)],
                },
                *[
                    {
                        "query": by_endpoint,
                        "metric": {"endpoint": endpoint},
                        "values": [
                            [int(t.timestamp()), "NaN" if (i == 5 and k == 0) else str(k + i)]
                            for i, t in enumerate(minutes)
                        ],
                    }
                    for k, endpoint in enumerate(["/api/checkout", "/api/refunds"])
                ],
            ]
        },
    )
    crash = {
        "ready": False,
        "restarts": 4,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "last_state": {
            "terminated": {
                "reason": "OOMKilled",
                "exitCode": 137,
                "finishedAt": "2025-01-15T14:25:00Z",
            }
        },
    }
    write(
        snap / "kubernetes" / "pods.json",
        {
            "kind": "PodList",
            "apiVersion": "v1",
            "items": [
                pod("payments-h3-aaaaa", "payments", "h3"),
                pod("payments-h3-bbbbb", "payments", "h3", **crash),
                pod("other-xyz-ccccc", "other", "xyz"),
            ],
        },
    )
    write(
        snap / "kubernetes" / "deployments.json",
        {
            "kind": "DeploymentList",
            "items": [
                {
                    "kind": "Deployment",
                    "metadata": {
                        "name": "payments",
                        "uid": DEP_UID,
                        "generation": 9,
                        "annotations": {"deployment.kubernetes.io/revision": "3"},
                    },
                    "spec": {
                        "replicas": 2,
                        "selector": {"matchLabels": {"app": "payments"}},
                        "template": template("payments:1.2", env={"LOG_LEVEL": "info"}),
                    },
                    "status": {
                        "replicas": 2,
                        "readyReplicas": 1,
                        "availableReplicas": 1,
                        "updatedReplicas": 2,
                        "observedGeneration": 9,
                        "conditions": [
                            {
                                "type": "Available",
                                "status": "False",
                                "reason": "MinimumReplicasUnavailable",
                            }
                        ],
                    },
                }
            ],
        },
    )
    write(
        snap / "kubernetes" / "replicasets.json",
        {
            "kind": "ReplicaSetList",
            "items": [
                replicaset(3, "payments:1.2", 2),
                replicaset(1, "payments:1.0", 0),
                replicaset(2, "payments:1.1", 0),
                replicaset(9, "elsewhere:9", 1, owner_uid="another-deployment"),
            ],
        },
    )
    write(
        snap / "kubernetes" / "events.json",
        {
            "kind": "EventList",
            "items": [
                event("e2", "OOMKilled", "2025-01-15T14:25:00Z", "payments-h3-bbbbb", count=4),
                event("e1", "Unhealthy", "2025-01-15T14:10:00Z", "payments-h3-bbbbb", count=7),
                event("e3", "BackOff", "2025-01-15T14:45:00Z", "payments-h3-bbbbb"),  # after now
                event(
                    "e0", "Scheduled", "2025-01-15T13:00:00Z", "payments-h3-aaaaa", type_="Normal"
                ),
            ],
        },
    )
    write(
        snap / "logs" / "payments-h3-aaaaa.log",
        "2025-01-15T14:00:00.000Z INFO method=GET endpoint=/api/items status=200 duration_ms=3\n"
        "2025-01-15T14:20:00.000Z ERROR method=POST endpoint=/api/checkout status=503"
        " duration_ms=900 error=PoolTimeoutError\n"
        "Traceback (most recent call last):\n"
        "2025-01-15T14:29:59.999Z ERROR method=POST endpoint=/api/checkout status=503"
        " duration_ms=901 error=PoolTimeoutError\n"
        "2025-01-15T14:30:00.001Z INFO method=GET endpoint=/api/items status=200 duration_ms=4\n"
        "  after now, untimed\n",
    )
    write(
        snap / "logs" / "payments-h3-bbbbb.previous.log",
        "2025-01-15T14:24:59.000Z CRITICAL event=oom error=OutOfMemory\n",
    )
    write(
        snap / "postgres" / "activity.json",
        {
            "captured_at": iso(NOW),
            "max_connections": 20,
            "activity": [
                activity_row(1, None, None, backend_type="checkpointer", query=""),
                activity_row(
                    10, "active", "2025-01-15T14:10:00.000000+00:00", query="SELECT pg_sleep(3600)"
                ),
                activity_row(11, "active", "2025-01-15T14:29:30.000000+00:00"),
                activity_row(
                    12, "idle in transaction", "2025-01-15T14:24:00.000000+00:00", query="UPDATE t"
                ),
                activity_row(13, "idle", "2025-01-15T09:00:00.000000+00:00"),
                activity_row(14, "idle", "2025-01-15T14:29:00.000000+00:00"),
                activity_row(15, "idle", "2025-01-15T14:29:10.000000+00:00"),
            ],
        },
    )
    write(
        snap / "redis" / "info.json",
        {
            "captured_at": iso(NOW),
            "info": {
                "redis_version": "7.0.15",
                "keyspace_hits": 900,
                "keyspace_misses": 100,
                "used_memory": 1024,
                "db0": {"keys": 5, "expires": 1, "avg_ttl": 0},
            },
        },
    )
    write(
        snap / "dependencies.json",
        {
            "postgres": {
                "url": "postgresql://db:5432/payments",
                "status": "ok",
                "detail": "ok",
                "latency_ms": 1.5,
            },
            "redis": {
                "url": "redis://cache:6379/0",
                "status": "ok",
                "detail": "PONG",
                "latency_ms": 0.4,
            },
        },
    )
    write(
        base / "catalog" / "snapshot.json",
        {
            "format": "opsnb-snapshot/1",
            "service": "catalog",
            "namespace": "production",
            "now": iso(NOW),
        },
    )
    write(
        base / "catalog" / "dependencies.json",
        {
            "postgres": {
                "url": "postgresql://db/catalog",
                "status": "down",
                "detail": "connection refused at db:5432",
            }
        },
    )
    (base / "not-a-snapshot").mkdir()
    return base


@pytest.fixture()
def snap(root: Path) -> Snapshot:
    return Snapshot.open_for_service(root, "payments")


def folder_digest(path: Path) -> str:
    h = hashlib.sha256()
    for file in sorted(path.rglob("*")):
        h.update(str(file.relative_to(path)).encode())
        if file.is_file():
            h.update(file.read_bytes())
            h.update(str(file.stat().st_mtime_ns).encode())
    return h.hexdigest()


# --- Snapshot ---------------------------------------------------------------------------------


def test_open_for_service(root: Path, snap: Snapshot) -> None:
    assert snap.path == root / "payments"
    assert (snap.service, snap.namespace, snap.selector, snap.deployment) == (
        "payments",
        "production",
        "app=payments",
        "payments",
    )
    assert (snap.start, snap.now, snap.end) == (START, NOW, END)
    assert snap.step_seconds == 60 and snap.rate_window == "5m"
    assert Snapshot.open_for_service(root / "payments", "payments").path == root / "payments"
    assert Snapshot.open_for_service(root, "catalog").service == "catalog"
    with pytest.raises(LookupError, match=r"'billing'.*available: catalog, payments"):
        Snapshot.open_for_service(root, "billing")
    with pytest.raises(LookupError, match="catalog, payments"):
        Snapshot.open_for_service(root)
    with pytest.raises(LookupError, match="available: payments"):
        Snapshot.open_for_service(root / "payments", "catalog")
    with pytest.raises(LookupError, match="does not exist"):
        Snapshot.open_for_service(root / "missing", "payments")
    with pytest.raises(LookupError, match="no snapshot.json"):
        Snapshot(root / "not-a-snapshot")
    write(
        root / "bad" / "snapshot.json", {"format": "opsnb-snapshot/0", "service": "x", "now": "x"}
    )
    with pytest.raises(ValueError, match="opsnb-snapshot/1"):
        Snapshot(root / "bad")


def test_dependencies_merge_declared_and_probed(snap: Snapshot) -> None:
    deps = snap.dependencies
    assert set(deps) == {"postgres", "redis", "provider"}
    assert deps["postgres"] == {
        "url": "postgresql://db:5432/payments",
        "status": "ok",
        "detail": "ok",
        "latency_ms": 1.5,
    }
    assert (
        deps["provider"]["status"] == "unknown"
        and deps["provider"]["url"] == "https://provider/health"
    )


# --- Prometheus -------------------------------------------------------------------------------


def test_named_range_is_clipped_to_now(snap: Snapshot) -> None:
    prom = SnapshotPrometheus(snap)
    frame = prom.named_range("error_rate", "payments", "5m", START, END, 60)
    assert list(frame.columns) == ["timestamp", "value"]
    assert len(frame) == 31
    assert frame["timestamp"].iloc[0] == START and frame["timestamp"].max() == NOW
    assert str(frame["timestamp"].dt.tz) == "UTC"
    assert frame["value"].tolist() == pytest.approx([i / 100 for i in range(31)])
    coarse = prom.named_range("error_rate", "payments", "5m", START, NOW, pd.Timedelta(minutes=2))
    assert coarse["value"].tolist() == pytest.approx([i / 100 for i in range(0, 31, 2)])
    # a grid between the recorded samples takes the newest sample before each point
    shifted = prom.named_range(
        "error_rate", "payments", "5m", START + pd.Timedelta(seconds=30), NOW, "5m"
    )
    assert shifted["value"].tolist() == pytest.approx([0.0, 0.05, 0.10, 0.15, 0.20, 0.25])
    assert prom.named_range(
        "error_rate", "payments", "5m", NOW + pd.Timedelta(minutes=1), END, 60
    ).empty


def test_query_by_text_with_other_whitespace_and_labels(snap: Snapshot) -> None:
    prom = SnapshotPrometheus(snap)
    text = render("errors_by_endpoint", service="payments", window="5m")
    spaced = text.replace("(", " ( ").replace(",", " ,\n ")
    assert normalise_query(spaced) == normalise_query(text)
    frame = prom.query_range(spaced, START, START + pd.Timedelta(minutes=6), 60)
    assert list(frame.columns) == ["timestamp", "value", "endpoint"]
    checkout = frame[frame["endpoint"] == "/api/checkout"]["value"].tolist()
    assert checkout[:5] == [0.0, 1.0, 2.0, 3.0, 4.0] and pd.isna(checkout[5]) and checkout[6] == 6.0
    refunds = frame[frame["endpoint"] == "/api/refunds"]["value"].tolist()
    assert refunds == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]


def test_instant_queries_evaluate_at_now(snap: Snapshot) -> None:
    prom = SnapshotPrometheus(snap)
    now = prom.named("error_rate", "payments")
    assert now["timestamp"].tolist() == [NOW] and now["value"].tolist() == [pytest.approx(0.30)]
    earlier = prom.named(
        "error_rate", "payments", "5m", at=START + pd.Timedelta(minutes=10, seconds=59)
    )
    assert earlier["value"].tolist() == [pytest.approx(0.10)]
    later = prom.named("error_rate", "payments", at=END)  # the future is not visible
    assert later["value"].tolist() == [pytest.approx(0.30)]
    by_endpoint = prom.named("errors_by_endpoint", "payments")
    assert dict(zip(by_endpoint["endpoint"], by_endpoint["value"], strict=True)) == {
        "/api/checkout": 30.0,
        "/api/refunds": 31.0,
    }
    before_data = prom.named("error_rate", "payments", at=START - pd.Timedelta(seconds=1))
    assert before_data.empty and list(before_data.columns) == ["timestamp", "value"]


def test_unrecorded_queries_and_alerts_are_unavailable(snap: Snapshot) -> None:
    prom = SnapshotPrometheus(snap)
    with pytest.raises(BackendUnavailable, match="query not recorded in snapshot: up") as info:
        prom.query("up")
    assert info.value.backend == "prometheus (snapshot)"
    with pytest.raises(BackendUnavailable, match="query not recorded"):
        prom.named_range("latency_p99", "payments", "5m", START, NOW, 60)
    with pytest.raises(BackendUnavailable):
        prom.alerts()
    assert prom.ready()


# --- Kubernetes -------------------------------------------------------------------------------


def test_pods(snap: Snapshot) -> None:
    k8s = SnapshotKubernetes(snap)
    frame = k8s.pods("app=payments")
    assert list(frame.columns) == kube_objects.POD_COLUMNS
    assert frame["name"].tolist() == ["payments-h3-aaaaa", "payments-h3-bbbbb"]
    assert frame["ready"].tolist() == [True, False]
    assert frame["restarts"].tolist() == [0, 4]
    crashed = frame.iloc[1]
    assert crashed["last_state_reason"] == "OOMKilled" and crashed["last_exit_code"] == 137
    assert crashed["last_finished_at"] == pd.Timestamp("2025-01-15T14:25:00Z")
    assert crashed["waiting_reason"] == "CrashLoopBackOff"
    assert frame["revision_hash"].tolist() == ["h3", "h3"]
    assert pd.isna(frame.iloc[0]["last_exit_code"]) and pd.isna(frame.iloc[0]["waiting_reason"])
    assert len(k8s.pods()) == 3
    assert k8s.pods("app in (payments, other),!missing")["name"].tolist()[0] == "other-xyz-ccccc"
    assert k8s.pods("app!=payments")["name"].tolist() == ["other-xyz-ccccc"]


def test_deployment_and_history(snap: Snapshot) -> None:
    k8s = SnapshotKubernetes(snap)
    dep = k8s.deployment("payments")
    assert {
        k: dep[k]
        for k in ("name", "replicas", "ready", "available", "updated", "revision", "image")
    } == {
        "name": "payments",
        "replicas": 2,
        "ready": 1,
        "available": 1,
        "updated": 2,
        "revision": 3,
        "image": "payments:1.2",
    }
    assert dep["images"] == {"payments": "payments:1.2"} and dep["generation"] == 9
    assert dep["conditions"][0]["reason"] == "MinimumReplicasUnavailable"
    history = k8s.rollout_history("payments")
    assert list(history.columns) == [
        "revision",
        "replicaset",
        "image",
        "change_cause",
        "created",
        "replicas",
    ]
    assert history["revision"].tolist() == [1, 2, 3]
    assert history["image"].tolist() == ["payments:1.0", "payments:1.1", "payments:1.2"]
    assert history["change_cause"].tolist()[0] == "deploy payments:1.0"
    assert history["replicas"].tolist() == [0, 0, 2]
    assert history["created"].iloc[0] == pd.Timestamp("2025-01-11T09:00:00Z")
    with pytest.raises(ObjectNotFound, match="deployment/nope"):
        k8s.deployment("nope")


def test_events(snap: Snapshot) -> None:
    k8s = SnapshotKubernetes(snap)
    events = k8s.events()
    assert list(events.columns) == ["time", "type", "reason", "object", "message", "count"]
    assert events["reason"].tolist() == [
        "Scheduled",
        "Unhealthy",
        "OOMKilled",
    ]  # newest last; 14:45 hidden
    assert events["object"].tolist()[-1] == "pod/payments-h3-bbbbb"
    assert events["count"].tolist() == [1, 7, 4]
    assert events["message"].tolist()[-1] == "OOMKilled happened"
    assert k8s.events(since=pd.Timedelta(minutes=25))["reason"].tolist() == [
        "Unhealthy",
        "OOMKilled",
    ]
    assert k8s.events(since=pd.Timestamp("2025-01-15T14:20:00Z"))["reason"].tolist() == [
        "OOMKilled"
    ]
    assert k8s.events(reason="OOMKilled")["count"].tolist() == [4]


def test_logs(snap: Snapshot) -> None:
    k8s = SnapshotKubernetes(snap)
    lines = k8s.logs("payments-h3-aaaaa")
    assert len(lines) == 4  # the line after now and the untimed line that follows it are cut
    assert lines[2] == "Traceback (most recent call last):"
    assert k8s.logs("payments-h3-aaaaa", tail=2) == lines[-2:]
    assert k8s.logs("payments-h3-aaaaa", since_seconds=600) == lines[1:]
    assert k8s.logs("payments-h3-bbbbb", previous=True) == [
        "2025-01-15T14:24:59.000Z CRITICAL event=oom error=OutOfMemory"
    ]
    assert k8s.logs("payments-h3-bbbbb") == []  # known pod, no current log recorded
    with pytest.raises(LogsNotFound):
        k8s.logs("payments-h3-aaaaa", previous=True)
    with pytest.raises(LookupError, match="not found"):
        k8s.logs("ghost")
    assert {p: len(v) for p, v in k8s.logs_for("app=payments").items()} == {
        "payments-h3-aaaaa": 4,
        "payments-h3-bbbbb": 0,
    }
    assert {p: len(v) for p, v in k8s.logs_for("app=payments", previous=True).items()} == {
        "payments-h3-aaaaa": 0,
        "payments-h3-bbbbb": 1,
    }
    with pytest.raises(BackendUnavailable, match="configmaps"):
        k8s.configmap("payments-config")


def test_mutating_calls_only_preview(root: Path, snap: Snapshot) -> None:
    k8s = SnapshotKubernetes(snap)
    before = folder_digest(root)
    changes = [
        k8s.rollback("payments", dry_run=False),
        k8s.scale("payments", 10, dry_run=False),
        k8s.restart("payments", dry_run=False),
        k8s.set_env("payments", "payments", {"CIRCUIT_BREAKER_ENABLED": True}, dry_run=False),
    ]
    assert folder_digest(root) == before
    for change in changes:
        assert isinstance(change, Change)
        assert change.dry_run is True and change.detail.startswith(READ_ONLY)
        assert change.object == "deployment/payments"
    rollback, scale, restart, set_env = changes
    assert rollback.action == "rollback"
    assert rollback.before == {"revision": 3, "images": {"payments": "payments:1.2"}}
    assert rollback.after == {"revision": 2, "images": {"payments": "payments:1.1"}}
    assert "revision 3" in rollback.detail and "revision 2" in rollback.detail
    assert k8s.rollback("payments", to_revision=1).after["revision"] == 1
    with pytest.raises(LookupError, match=r"no revision 7 .*\[1, 2, 3\]"):
        k8s.rollback("payments", to_revision=7)
    assert (scale.before, scale.after) == ({"replicas": 2}, {"replicas": 10})
    assert restart.after == {"restartedAt": "2025-01-15T14:30:00Z"} and restart.before == {
        "restartedAt": None
    }
    assert set_env.before == {"CIRCUIT_BREAKER_ENABLED": None}
    assert set_env.after == {"CIRCUIT_BREAKER_ENABLED": "true"}
    with pytest.raises(LookupError, match="no container 'sidecar'"):
        k8s.set_env("payments", "sidecar", {"A": "1"})


def test_rollback_plan_matches_kubectl_undo(snap: Snapshot) -> None:
    deployment = json.loads((snap.path / "kubernetes" / "deployments.json").read_text())["items"][0]
    replicasets = json.loads((snap.path / "kubernetes" / "replicasets.json").read_text())
    plan = kube_objects.rollback_plan(deployment, replicasets)
    assert plan.target_revision == 2 and plan.replicaset == "payments-h2"
    assert "pod-template-hash" not in plan.template["metadata"]["labels"]
    assert plan.template["spec"]["containers"][0]["image"] == "payments:1.1"
    # the deployment keeps its revision annotation, takes the ReplicaSet's change-cause
    assert plan.annotations == {
        "deployment.kubernetes.io/revision": "3",
        "kubernetes.io/change-cause": "deploy payments:1.1",
    }
    ops = plan.json_patch()
    assert [op["path"] for op in ops] == ["/spec/template", "/metadata/annotations"]
    deployment["spec"]["template"] = template("payments:1.1")
    skipped = kube_objects.rollback_plan(deployment, replicasets, 2)
    assert skipped.skip and "already matches revision 2" in skipped.skip


# --- PostgreSQL and Redis ---------------------------------------------------------------------


def test_postgres(snap: Snapshot) -> None:
    pg = SnapshotPostgres(snap)
    assert pg.ping() is True
    assert pg.max_connections() == 20
    states = pg.connections_by_state()
    assert list(states.columns) == ["state", "count"]
    assert dict(zip(states["state"], states["count"], strict=True)) == {
        "idle": 3,
        "active": 2,
        "idle in transaction": 1,
    }
    assert states["state"].iloc[0] == "idle"
    slow = pg.long_running_queries(300)
    assert list(slow.columns) == [
        "pid",
        "duration_seconds",
        "state",
        "query",
        "application_name",
        "usename",
    ]
    assert slow["pid"].tolist() == [10, 12]
    assert slow["duration_seconds"].tolist() == [1200.0, 360.0]
    assert slow["query"].iloc[0] == "SELECT pg_sleep(3600)"
    assert pg.long_running_queries(1000)["pid"].tolist() == [10]
    activity = pg.activity()
    assert len(activity) == 7 and "wait_event" in activity.columns
    assert str(activity["query_start"].dt.tz) == "UTC"


def test_redis(snap: Snapshot) -> None:
    cache = SnapshotRedis(snap)
    assert cache.ping() is True
    assert cache.hit_ratio() == pytest.approx(0.9)
    assert cache.info("keyspace") == {"db0": {"keys": 5, "expires": 1, "avg_ttl": 0}}
    assert cache.info()["used_memory"] == 1024 and cache.info("stats")["keyspace_hits"] == 900


def test_missing_evidence_is_unavailable(root: Path) -> None:
    catalog = Snapshot.open_for_service(root, "catalog")
    with pytest.raises(BackendUnavailable, match="connection refused at db:5432") as info:
        SnapshotPostgres(catalog).connections_by_state()
    assert info.value.backend == "postgres (snapshot)"
    with pytest.raises(BackendUnavailable, match="connection refused"):
        SnapshotPostgres(catalog).ping()
    with pytest.raises(BackendUnavailable, match="redis/info.json"):
        SnapshotRedis(catalog).hit_ratio()
    with pytest.raises(BackendUnavailable, match="pods.json"):
        SnapshotKubernetes(catalog).pods("app=catalog")
    with pytest.raises(BackendUnavailable, match="metrics.json"):
        SnapshotPrometheus(catalog).named("error_rate", "catalog")


def test_snapshot_import_does_not_load_client_libraries() -> None:
    code = (
        "import sys, opsnb.backends.snapshot, opsnb.backends.prometheus, opsnb.backends.logs;"
        "print(sorted(m for m in ('kubernetes', 'httpx', 'psycopg', 'redis') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_a_sample_at_now_is_found_whatever_its_milliseconds(tmp_path: Path) -> None:
    """A capture's newest sample is at exactly ``now``. Prometheus writes its time as decimal
    seconds and snapshot.json as an ISO time; the two must meet at every millisecond, even
    where nanoseconds / 1e9 and the decimal text round to neighbouring floats."""
    expr = render("error_rate", service="payments", window="20s")
    first = pd.Timestamp("2026-11-30T16:00:00Z")
    for ms in range(0, 1000, 7):
        now = first + pd.Timedelta(milliseconds=ms)
        seconds = f"{now.value // 10**9}.{ms:03d}"
        folder = tmp_path / f"at-{ms}"
        write(
            folder / "snapshot.json",
            {
                "format": "opsnb-snapshot/1",
                "service": "payments",
                "now": now.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
                "step_seconds": 15,
            },
        )
        # a series that began with this very sample (a new error counter has one point)
        write(
            folder / "metrics.json",
            {"series": [{"query": expr, "metric": {}, "values": [[float(seconds), "0.4"]]}]},
        )
        prom = SnapshotPrometheus(Snapshot(folder))
        assert prom.named("error_rate", "payments", "20s")["value"].tolist() == [0.4], ms


def test_idle_in_transaction_counts_only_sessions_that_stay_idle() -> None:
    from opsnb.backends.postgres import activity_frame, idle_in_transaction_from_activity

    def row(pid: int, state: str, idle_for: float, kind: str = "client backend") -> dict:
        at = (NOW - pd.Timedelta(seconds=idle_for)).isoformat()
        return {"pid": pid, "state": state, "state_change": at, "backend_type": kind}

    activity = activity_frame([
        row(1, "idle in transaction", 1),  # a request between two statements
        row(2, "idle in transaction", 10),
        row(3, "idle in transaction (aborted)", 60),
        row(4, "idle", 600),
        row(5, "active", 600),
        row(6, "idle in transaction", 600, kind="background worker"),
    ])  # fmt: skip
    assert idle_in_transaction_from_activity(activity, NOW, 5) == 2
    assert idle_in_transaction_from_activity(activity, NOW, 0) == 3
    assert idle_in_transaction_from_activity(activity, NOW, 3600) == 0
