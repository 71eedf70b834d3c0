"""The Kubernetes test API server, exercised with real clients over real HTTP.

``kubectl`` (run with its own HOME, kubeconfig and discovery cache) and the official
``kubernetes`` Python client must both take the server for a cluster. Tests that change state
use their own deployment, so they do not depend on each other's order.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from opsnb.lab.kubeapi import KubeAPIServer

NS = "production"
REVISION = "deployment.kubernetes.io/revision"
KUBECTL = shutil.which("kubectl")
needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed")


def deployment(name: str, image: str, replicas: int = 3, cause: str | None = None) -> dict:
    annotations = {"kubernetes.io/change-cause": cause} if cause else {}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": {"app": name},
            "annotations": annotations,
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name, "tier": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": name,
                            "image": image,
                            "ports": [{"containerPort": 8080}],
                            "env": [
                                {"name": "POOL_SIZE", "value": "10"},
                                {"name": "LOG_LEVEL", "value": "info"},
                            ],
                        }
                    ]
                },
            },
        },
    }


@pytest.fixture(scope="module")
def server():
    with KubeAPIServer(host="127.0.0.1", port=0) as srv:
        srv.store.apply(
            deployment("my-service", "registry.local/my-service:1.4.2", cause="deploy 1.4.2")
        )
        yield srv


@pytest.fixture(scope="module")
def kubeconfig(server: KubeAPIServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return server.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config", namespace=NS)


@pytest.fixture(scope="module")
def kubectl(kubeconfig: Path):
    home = kubeconfig.parent / "home"
    home.mkdir()
    env = {**os.environ, "HOME": str(home)}
    env.pop("KUBECONFIG", None)

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [
            KUBECTL or "kubectl",
            "--kubeconfig",
            str(kubeconfig),
            "--cache-dir",
            str(home / "cache"),
            *args,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=30)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{done.stderr}")
        return done

    return run


@pytest.fixture(scope="module")
def api(kubeconfig: Path):
    api_client = config.new_client_from_config(config_file=str(kubeconfig))
    yield api_client
    api_client.close()


def pod_names(server: KubeAPIServer, app: str) -> list[str]:
    return sorted(p["metadata"]["name"] for p in server.store.list("Pod", NS, f"app={app}"))


def replica_sets(server: KubeAPIServer, app: str) -> dict[str, dict[str, Any]]:
    return {rs["metadata"]["name"]: rs for rs in server.store.list("ReplicaSet", NS, f"app={app}")}


def image_of(server: KubeAPIServer, name: str) -> str:
    dep = server.store.get("Deployment", NS, name)
    assert dep is not None
    return dep["spec"]["template"]["spec"]["containers"][0]["image"]


# --- discovery and raw HTTP -------------------------------------------------------------------


def test_discovery_lists_the_resources_opsnb_uses(server: KubeAPIServer):
    with httpx.Client(base_url=server.url) as http:
        assert http.get("/version").json()["gitVersion"].startswith("v1.32")
        core = {r["name"]: r for r in http.get("/api/v1").json()["resources"]}
        apps = {r["name"]: r for r in http.get("/apis/apps/v1").json()["resources"]}
        groups = [g["name"] for g in http.get("/apis").json()["groups"]]
        missing = http.get("/api/v1/namespaces/production/pods/nope")
    assert {"pods", "pods/log", "events", "configmaps", "namespaces", "services"} <= set(core)
    assert {"deployments", "deployments/scale", "replicasets"} <= set(apps)
    assert apps["deployments/scale"]["group"] == "autoscaling"
    assert apps["deployments/scale"]["kind"] == "Scale"
    assert core["pods"]["shortNames"] == ["po"] and "watch" in core["pods"]["verbs"]
    assert "apps" in groups
    assert missing.status_code == 404
    assert missing.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'pods "nope" not found',
        "reason": "NotFound",
        "details": {"name": "nope", "kind": "pods"},
        "code": 404,
    }


def test_seeded_deployment_is_reconciled_like_the_controller(server: KubeAPIServer):
    dep = server.store.get("Deployment", NS, "my-service")
    assert dep is not None
    (rs,) = replica_sets(server, "my-service").values()
    pods = server.store.list("Pod", NS, "app=my-service")
    hash_ = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"my-service-{hash_}"
    assert rs["metadata"]["ownerReferences"][0]["uid"] == dep["metadata"]["uid"]
    assert rs["metadata"]["annotations"][REVISION] == "1"
    assert dep["metadata"]["annotations"][REVISION] == "1"
    assert rs["metadata"]["annotations"]["kubernetes.io/change-cause"] == "deploy 1.4.2"
    assert dep["status"]["readyReplicas"] == dep["status"]["availableReplicas"] == 3
    assert dep["status"]["observedGeneration"] == dep["metadata"]["generation"] == 1
    assert {c["type"]: c["status"] for c in dep["status"]["conditions"]} == {
        "Available": "True",
        "Progressing": "True",
    }
    assert len(pods) == 3
    for pod in pods:
        assert pod["metadata"]["name"].startswith(f"{rs['metadata']['name']}-")
        assert len(pod["metadata"]["name"]) == len(rs["metadata"]["name"]) + 6
        assert pod["metadata"]["labels"] == {
            "app": "my-service",
            "tier": "web",
            "pod-template-hash": hash_,
        }
        assert pod["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
        assert pod["status"]["phase"] == "Running" and pod["status"]["podIP"]
        assert pod["spec"]["nodeName"]
        assert pod["status"]["containerStatuses"][0]["ready"] is True


# --- kubectl --------------------------------------------------------------------------------


@needs_kubectl
def test_kubectl_get_pods_by_label(server: KubeAPIServer, kubectl):
    out = kubectl("get", "pods", "-l", "app=my-service").stdout.splitlines()
    assert out[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    rows = [line.split() for line in out[1:]]
    assert sorted(r[0] for r in rows) == pod_names(server, "my-service")
    assert {tuple(r[1:4]) for r in rows} == {("1/1", "Running", "0")}
    assert kubectl("get", "pods", "-l", "app=nothing-here").stdout == ""


@needs_kubectl
def test_kubectl_get_pods_json(server: KubeAPIServer, kubectl):
    listing = json.loads(
        kubectl("get", "pods", "-l", "app in (my-service),tier!=db", "-o", "json").stdout
    )
    assert sorted(i["metadata"]["name"] for i in listing["items"]) == pod_names(
        server, "my-service"
    )
    assert {i["kind"] for i in listing["items"]} == {"Pod"}
    assert (
        listing["items"][0]["spec"]["containers"][0]["image"] == "registry.local/my-service:1.4.2"
    )


@needs_kubectl
def test_kubectl_logs_current_previous_and_tail(server: KubeAPIServer, kubectl):
    pod = pod_names(server, "my-service")[0]
    server.store.set_log(
        NS,
        pod,
        "2025-01-15T14:18:02.123Z INFO a=1\n"
        "2025-01-15T14:18:03.000Z ERROR error=PoolTimeoutError\n",
    )
    server.store.set_log(NS, pod, "2025-01-15T14:00:00.000Z CRITICAL error=OOM\n", previous=True)
    assert kubectl("logs", pod).stdout.splitlines() == [
        "2025-01-15T14:18:02.123Z INFO a=1",
        "2025-01-15T14:18:03.000Z ERROR error=PoolTimeoutError",
    ]
    assert (
        kubectl("logs", pod, "--previous").stdout == "2025-01-15T14:00:00.000Z CRITICAL error=OOM\n"
    )
    assert (
        kubectl("logs", pod, "--tail=1").stdout
        == "2025-01-15T14:18:03.000Z ERROR error=PoolTimeoutError\n"
    )
    stamped = kubectl("logs", pod, "--tail=1", "--timestamps").stdout
    assert stamped.startswith("2025-01-15T14:18:03.000000000Z 2025-01-15T14:18:03.000Z ERROR")
    no_previous = pod_names(server, "my-service")[1]
    failed = kubectl("logs", no_previous, "--previous", check=False)
    assert failed.returncode != 0 and "previous terminated container" in failed.stderr


@needs_kubectl
def test_kubectl_get_events(server: KubeAPIServer, kubectl):
    (rs,) = replica_sets(server, "my-service")
    out = kubectl("get", "events").stdout
    assert out.splitlines()[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert f"Scaled up replica set {rs} from 0 to 3" in out
    assert "deployment/my-service" in out
    created = [
        line
        for line in out.splitlines()
        if "SuccessfulCreate" in line and f"replicaset/{rs}" in line
    ]
    assert len(created) == 3


@needs_kubectl
def test_kubectl_rollout_history_after_template_change(server: KubeAPIServer, kubectl):
    server.store.apply(deployment("history", "registry.local/history:1", cause="deploy 1"))
    server.store.apply(deployment("history", "registry.local/history:2", cause="deploy 2"))
    out = kubectl("rollout", "history", "deployment/history").stdout
    rows = [line.split(None, 1) for line in out.splitlines()[2:] if line.strip()]
    assert rows == [["1", "deploy 1"], ["2", "deploy 2"]]
    assert len(replica_sets(server, "history")) == 2
    dep = server.store.get("Deployment", NS, "history")
    assert dep is not None and dep["metadata"]["generation"] == 2


@needs_kubectl
def test_kubectl_scale_and_server_dry_run(server: KubeAPIServer, kubectl):
    server.store.apply(deployment("scaling", "registry.local/scaling:1", replicas=2))
    assert "scaled" in kubectl("scale", "deployment/scaling", "--replicas=4").stdout
    dep = server.store.get("Deployment", NS, "scaling")
    assert dep is not None and dep["spec"]["replicas"] == 4
    assert dep["status"]["readyReplicas"] == 4
    before = pod_names(server, "scaling")
    assert len(before) == 4
    rv = dep["metadata"]["resourceVersion"]

    server.reset_requests()
    out = kubectl("scale", "deployment/scaling", "--replicas=1", "--dry-run=server").stdout
    assert "server dry run" in out
    after = server.store.get("Deployment", NS, "scaling")
    assert after is not None and after["spec"]["replicas"] == 4
    assert after["metadata"]["resourceVersion"] == rv
    assert pod_names(server, "scaling") == before
    assert server.mutations() == []
    assert [r.path for r in server.requests if r.dry_run] == [
        "/apis/apps/v1/namespaces/production/deployments/scaling/scale"
    ]


@needs_kubectl
def test_kubectl_rollout_undo_reuses_the_old_replica_set(server: KubeAPIServer, kubectl):
    server.store.apply(deployment("undo", "registry.local/undo:1", cause="deploy 1"))
    (first_rs,) = replica_sets(server, "undo")
    kubectl("set", "image", "deployment/undo", "undo=registry.local/undo:2")
    assert image_of(server, "undo") == "registry.local/undo:2"
    assert len(replica_sets(server, "undo")) == 2

    assert "rolled back" in kubectl("rollout", "undo", "deployment/undo").stdout
    assert image_of(server, "undo") == "registry.local/undo:1"
    rss = replica_sets(server, "undo")
    assert len(rss) == 2  # no third ReplicaSet: the old one is re-used
    assert rss[first_rs]["spec"]["replicas"] == 3
    assert rss[first_rs]["metadata"]["annotations"][REVISION] == "3"
    assert (
        rss[first_rs]["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    )
    assert all(rs["spec"]["replicas"] == 0 for name, rs in rss.items() if name != first_rs)
    assert all(p.startswith(first_rs) for p in pod_names(server, "undo"))
    out = kubectl("rollout", "history", "deployment/undo").stdout
    assert [line.split()[0] for line in out.splitlines()[2:] if line.strip()] == ["2", "3"]


@needs_kubectl
def test_kubectl_rollout_restart_creates_a_new_revision(server: KubeAPIServer, kubectl):
    server.store.apply(deployment("restart", "registry.local/restart:1", replicas=2))
    old_pods = pod_names(server, "restart")
    kubectl("rollout", "restart", "deployment/restart")
    dep = server.store.get("Deployment", NS, "restart")
    assert dep is not None
    assert "kubectl.kubernetes.io/restartedAt" in dep["spec"]["template"]["metadata"]["annotations"]
    assert dep["metadata"]["annotations"][REVISION] == "2"
    new_pods = pod_names(server, "restart")
    assert len(new_pods) == 2 and not set(new_pods) & set(old_pods)
    assert (
        "successfully rolled out"
        in kubectl("rollout", "status", "deployment/restart", "--timeout=10s").stdout
    )


@needs_kubectl
def test_kubectl_shows_crashing_pods_and_deleted_pods_come_back(server: KubeAPIServer, kubectl):
    server.store.apply(deployment("crashy", "registry.local/crashy:1", replicas=2))
    crashing, healthy = pod_names(server, "crashy")
    server.store.set_pod_state(
        NS,
        crashing,
        restart_count=4,
        waiting_reason="CrashLoopBackOff",
        last_state={"terminated": {"reason": "OOMKilled", "exitCode": 137}},
    )
    rows = {
        line.split()[0]: line.split()
        for line in kubectl("get", "pods", "-l", "app=crashy").stdout.splitlines()[1:]
    }
    assert rows[crashing][1:4] == ["0/1", "CrashLoopBackOff", "4"]
    dep = server.store.get("Deployment", NS, "crashy")
    assert dep is not None and dep["status"]["readyReplicas"] == 1

    seen: list[tuple[str, str]] = []

    def listener(kind: str, event: str, obj: dict) -> None:
        seen.append((event, kind))

    server.store.add_listener(listener)
    try:
        kubectl("delete", "pod", healthy)
    finally:
        server.store.remove_listener(listener)
    pods = pod_names(server, "crashy")
    assert healthy not in pods and len(pods) == 2  # the ReplicaSet replaced it
    assert ("DELETED", "Pod") in seen and ("ADDED", "Pod") in seen
    killing = server.store.list("Event", NS, field_selector=f"involvedObject.name={healthy}")
    assert [e["reason"] for e in killing] == ["Killing"]


@needs_kubectl
def test_kubectl_apply_from_a_file(server: KubeAPIServer, kubectl, tmp_path: Path):
    manifest = deployment("applied", "registry.local/applied:1", replicas=2)
    path = tmp_path / "deployment.json"
    path.write_text(json.dumps(manifest))
    assert "created" in kubectl("apply", "-f", str(path)).stdout
    assert len(pod_names(server, "applied")) == 2
    manifest["spec"]["template"]["spec"]["containers"][0]["image"] = "registry.local/applied:2"
    path.write_text(json.dumps(manifest))
    assert "configured" in kubectl("apply", "-f", str(path)).stdout
    assert image_of(server, "applied") == "registry.local/applied:2"
    assert len(replica_sets(server, "applied")) == 2
    # kubectl's typed commands send protobuf, which this server refuses clearly
    refused = kubectl("create", "deployment", "typed", "--image=x:1", check=False)
    assert refused.returncode != 0 and "protobuf" in refused.stderr


# --- the official Python client -------------------------------------------------------------


def test_client_lists_pods_with_selectors(server: KubeAPIServer, api):
    core = client.CoreV1Api(api)
    pods = core.list_namespaced_pod(NS, label_selector="app=my-service").items
    assert sorted(p.metadata.name for p in pods) == pod_names(server, "my-service")
    pod = pods[0]
    assert pod.status.container_statuses[0].restart_count == 0
    assert pod.status.container_statuses[0].ready is True
    assert pod.metadata.owner_references[0].kind == "ReplicaSet"
    assert pod.spec.containers[0].env[0].name == "POOL_SIZE"
    assert (
        core.list_namespaced_pod(NS, label_selector="app=my-service,tier notin (web)").items == []
    )
    everywhere = core.list_pod_for_all_namespaces(label_selector="app=my-service").items
    assert len(everywhere) == 3
    one = core.list_namespaced_pod(NS, field_selector=f"metadata.name={pod.metadata.name}")
    assert [p.metadata.name for p in one.items] == [pod.metadata.name]


def test_client_reads_current_and_previous_logs(server: KubeAPIServer, api):
    core = client.CoreV1Api(api)
    pod = pod_names(server, "my-service")[2]
    server.store.set_log(NS, pod, "line one\nline two\n")
    server.store.set_log(NS, pod, "before the crash\n", previous=True)
    assert core.read_namespaced_pod_log(pod, NS) == "line one\nline two\n"
    assert core.read_namespaced_pod_log(pod, NS, previous=True) == "before the crash\n"
    assert core.read_namespaced_pod_log(pod, NS, tail_lines=1) == "line two\n"

    calls: list[tuple[str, str, str, bool]] = []

    def provider(ns: str, name: str, container: str, previous: bool) -> str | None:
        calls.append((ns, name, container, previous))
        return None if previous else f"generated for {name}\n"

    server.store.set_log_provider(provider)
    try:
        assert core.read_namespaced_pod_log(pod, NS) == f"generated for {pod}\n"
        assert core.read_namespaced_pod_log(pod, NS, previous=True) == "before the crash\n"
    finally:
        server.store.set_log_provider(None)
    assert calls == [(NS, pod, "my-service", False), (NS, pod, "my-service", True)]


def test_client_dry_run_patch_returns_the_result_but_changes_nothing(server: KubeAPIServer, api):
    apps = client.AppsV1Api(api)
    before = server.store.get("Deployment", NS, "my-service")
    rs_before = replica_sets(server, "my-service")
    server.reset_requests()
    patched = apps.patch_namespaced_deployment(
        "my-service",
        NS,
        {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": "my-service",
                                "image": "registry.local/my-service:9.9.9",
                                "env": [{"name": "POOL_SIZE", "value": "50"}],
                            }
                        ]
                    }
                }
            }
        },
        dry_run="All",
    )
    container = patched.spec.template.spec.containers[0]
    assert container.image == "registry.local/my-service:9.9.9"
    # strategic merge: env merged by name, the untouched variable kept
    assert {e.name: e.value for e in container.env} == {"POOL_SIZE": "50", "LOG_LEVEL": "info"}
    assert patched.metadata.generation == 2
    assert patched.metadata.annotations[REVISION] == "2"  # the controller's preview
    assert server.store.get("Deployment", NS, "my-service") == before
    assert replica_sets(server, "my-service") == rs_before
    assert server.mutations() == []
    assert [r.dry_run for r in server.requests] == [True]


def test_client_json_patch_and_merge_patch(server: KubeAPIServer, api):
    apps = client.AppsV1Api(api)
    server.store.apply(deployment("patchy", "registry.local/patchy:1", replicas=1))
    apps.patch_namespaced_deployment(
        "patchy",
        NS,
        [
            {
                "op": "add",
                "path": "/spec/template/spec/containers/0/env/-",
                "value": {"name": "FEATURE", "value": "on"},
            },
            {"op": "replace", "path": "/spec/replicas", "value": 2},
        ],
    )
    dep = server.store.get("Deployment", NS, "patchy")
    assert dep is not None
    assert [e["name"] for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]] == [
        "POOL_SIZE",
        "LOG_LEVEL",
        "FEATURE",
    ]
    assert len(pod_names(server, "patchy")) == 2
    # the generated client picks the patch type itself; send a merge patch over raw HTTP
    with httpx.Client(base_url=server.url) as http:
        r = http.patch(
            "/apis/apps/v1/namespaces/production/deployments/patchy",
            content=json.dumps({"metadata": {"labels": {"team": "payments"}}}),
            headers={"Content-Type": "application/merge-patch+json"},
        )
        bad = http.patch(
            "/apis/apps/v1/namespaces/production/deployments/patchy",
            content=json.dumps([{"op": "replace", "path": "/spec/nope/x", "value": 1}]),
            headers={"Content-Type": "application/json-patch+json"},
        )
    assert r.status_code == 200 and r.json()["metadata"]["labels"] == {
        "app": "patchy",
        "team": "payments",
    }
    assert bad.status_code == 422 and bad.json()["kind"] == "Status"


def test_client_scale_subresource(server: KubeAPIServer, api):
    apps = client.AppsV1Api(api)
    server.store.apply(deployment("scaled", "registry.local/scaled:1", replicas=2))
    scale = apps.read_namespaced_deployment_scale("scaled", NS)
    assert (scale.spec.replicas, scale.status.replicas, scale.status.selector) == (
        2,
        2,
        "app=scaled",
    )
    result = apps.patch_namespaced_deployment_scale("scaled", NS, {"spec": {"replicas": 5}})
    assert result.kind == "Scale" and result.spec.replicas == 5 and result.status.replicas == 5
    assert len(pod_names(server, "scaled")) == 5
    events = server.store.list(
        "Event", NS, field_selector="involvedObject.name=scaled,reason=ScalingReplicaSet"
    )
    assert [e["message"].split(" from ")[1] for e in events] == ["0 to 2", "2 to 5"]
    with pytest.raises(ApiException) as invalid:
        apps.patch_namespaced_deployment_scale("scaled", NS, {"spec": {"replicas": -1}})
    assert invalid.value.status == 422


def test_client_lists_replica_sets_and_events(server: KubeAPIServer, api):
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    dep = apps.read_namespaced_deployment("my-service", NS)
    (rs,) = apps.list_namespaced_replica_set(NS, label_selector="app=my-service").items
    assert rs.metadata.owner_references[0].uid == dep.metadata.uid
    assert rs.metadata.owner_references[0].controller is True
    assert rs.metadata.annotations[REVISION] == "1"
    assert rs.spec.template.metadata.labels["pod-template-hash"] in rs.metadata.name
    assert rs.status.ready_replicas == 3
    events = core.list_namespaced_event(
        NS, field_selector="involvedObject.name=my-service,reason=ScalingReplicaSet"
    ).items
    assert len(events) == 1
    event = events[0]
    assert event.involved_object.kind == "Deployment"
    assert event.involved_object.uid == dep.metadata.uid
    assert (event.type, event.count, event.source.component) == (
        "Normal",
        1,
        "deployment-controller",
    )
    assert event.first_timestamp is not None and event.last_timestamp is not None

    pod = server.store.list("Pod", NS, "app=my-service")[0]
    for _ in range(2):
        server.store.record_event(
            NS, pod, "BackOff", "Back-off restarting failed container", type="Warning"
        )
    (backoff,) = core.list_namespaced_event(NS, field_selector="reason=BackOff").items
    assert (backoff.count, backoff.type) == (2, "Warning")
    assert backoff.involved_object.name == pod["metadata"]["name"]
    assert backoff.involved_object.kind == "Pod"


def test_client_error_statuses(server: KubeAPIServer, api):
    apps = client.AppsV1Api(api)
    with pytest.raises(ApiException) as missing:
        apps.read_namespaced_deployment("does-not-exist", NS)
    assert missing.value.status == 404
    assert (
        json.loads(missing.value.body)["message"] == 'deployments.apps "does-not-exist" not found'
    )
    with pytest.raises(ApiException) as exists:
        apps.create_namespaced_deployment(NS, deployment("my-service", "x:1"))
    assert exists.value.status == 409
    assert json.loads(exists.value.body)["reason"] == "AlreadyExists"
    bad = deployment("bad", "x:1")
    bad["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    with pytest.raises(ApiException) as invalid:
        apps.create_namespaced_deployment(NS, bad)
    assert invalid.value.status == 422
    assert (
        json.loads(invalid.value.body)["details"]["causes"][0]["field"]
        == "spec.template.metadata.labels"
    )
    assert server.store.get("Deployment", NS, "bad") is None

    stale = apps.read_namespaced_deployment("my-service", NS)
    server.store.set_pod_state(NS, pod_names(server, "my-service")[0], ready=True)
    server.store.record_event(NS, {"kind": "Deployment", "name": "my-service"}, "Touch", "x")
    current = apps.read_namespaced_deployment("my-service", NS)
    assert current.metadata.resource_version == stale.metadata.resource_version  # no change
    apps.patch_namespaced_deployment("my-service", NS, {"metadata": {"labels": {"v": "2"}}})
    with pytest.raises(ApiException) as conflict:
        apps.replace_namespaced_deployment("my-service", NS, stale)
    assert conflict.value.status == 409
    assert json.loads(conflict.value.body)["reason"] == "Conflict"


def test_client_create_and_delete_cascade(server: KubeAPIServer, api):
    apps = client.AppsV1Api(api)
    created = apps.create_namespaced_deployment(
        NS, deployment("temp", "registry.local/t:1", replicas=2)
    )
    assert created.metadata.uid and created.metadata.resource_version
    assert len(pod_names(server, "temp")) == 2
    status = apps.delete_namespaced_deployment("temp", NS)  # this client returns a plain dict
    assert (status["kind"], status["status"]) == ("Status", "Success")
    assert server.store.get("Deployment", NS, "temp") is None
    assert replica_sets(server, "temp") == {} and pod_names(server, "temp") == []


def test_watch_streams_current_and_new_objects(server: KubeAPIServer, api):
    core = client.CoreV1Api(api)
    w = watch.Watch()
    seen = []
    for event in w.stream(
        core.list_namespaced_pod, NS, label_selector="app=my-service", timeout_seconds=5
    ):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 3:
            w.stop()
    assert sorted(name for _, name in seen) == pod_names(server, "my-service")
    assert {t for t, _ in seen} == {"ADDED"}


# --- recording and fault injection -------------------------------------------------------------


def test_only_reads_and_dry_runs_record_no_mutations(server: KubeAPIServer, api):
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    server.reset_requests()
    core.list_namespaced_pod(NS)
    apps.read_namespaced_deployment("my-service", NS)
    apps.patch_namespaced_deployment_scale(
        "my-service", NS, {"spec": {"replicas": 9}}, dry_run="All"
    )
    core.delete_namespaced_pod(pod_names(server, "my-service")[0], NS, dry_run="All")
    preview = core.create_namespaced_config_map(
        NS, {"metadata": {"name": "preview"}, "data": {"a": "1"}}, dry_run="All"
    )
    assert preview.metadata.uid and preview.data == {"a": "1"}
    assert server.store.get("ConfigMap", NS, "preview") is None
    assert len(pod_names(server, "my-service")) == 3
    assert server.mutations() == []
    with httpx.Client(base_url=server.url) as http:
        recorded = http.get("/_test/requests").json()
        assert [(r["method"], r["dry_run"]) for r in recorded] == [
            ("GET", False),
            ("GET", False),
            ("PATCH", True),
            ("DELETE", True),
            ("POST", True),
        ]
        assert (
            recorded[2]["path"] == "/apis/apps/v1/namespaces/production/deployments/"
            "my-service/scale"
        )
        assert recorded[2]["query"] == "dryRun=All"
        assert http.get("/_test/mutations").json() == []
        core.create_namespaced_config_map(NS, {"metadata": {"name": "flags"}, "data": {"a": "1"}})
        assert [m.path for m in server.mutations()] == ["/api/v1/namespaces/production/configmaps"]
        assert [m["method"] for m in http.get("/_test/mutations").json()] == ["POST"]
        assert http.post("/_test/reset-requests").status_code == 200
    assert server.requests == []


def test_fail_with_and_delay(server: KubeAPIServer, api):
    core = client.CoreV1Api(api)
    server.fail_with(500)
    try:
        with pytest.raises(ApiException) as failed:
            core.list_namespaced_pod(NS)
        assert failed.value.status == 500
        assert json.loads(failed.value.body)["kind"] == "Status"
        with httpx.Client(base_url=server.url) as http:  # the test endpoints still answer
            assert http.get("/_test/requests").status_code == 200
    finally:
        server.fail_with(None)
    assert len(core.list_namespaced_pod(NS, label_selector="app=my-service").items) == 3

    server.delay(0.2)
    try:
        started = time.monotonic()
        core.list_namespaced_pod(NS)
        assert time.monotonic() - started >= 0.2
    finally:
        server.delay(0)
