"""Kubernetes workload objects as the API server returns them: Deployment, ReplicaSet, Pod."""

from __future__ import annotations

import copy
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from .common import NAMESPACE, Json, iso
from .snapshot import Snapshot

HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


class Ids:
    """Deterministic uids, names, hashes and resource versions."""

    def __init__(self, rng: random.Random, resource_version: int):
        self.rng = rng
        self.rv = resource_version

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def token(self, n: int) -> str:
        return "".join(HASH_ALPHABET[self.rng.randrange(len(HASH_ALPHABET))] for _ in range(n))

    def hex(self, n: int) -> str:
        return f"{self.rng.getrandbits(4 * n):0{n}x}"

    def resource_version(self) -> str:
        self.rv += self.rng.randrange(50, 5000)
        return str(self.rv)


@dataclass
class App:
    name: str
    image_repo: str
    env: list[Json]
    cpu: str = "500m"
    memory: str = "512Mi"
    memory_limit: str = "1Gi"

    @property
    def labels(self) -> dict[str, str]:
        return {"app": self.name}


def service_app(service: str, *, redis_url: str, upstream: tuple[str, str], cpu: str) -> App:
    """The demo services' shape: PostgreSQL database ``service``, Redis, one upstream URL."""
    upstream_name, upstream_url = upstream
    return App(
        name=service,
        image_repo=f"registry.example.com/{service}",
        env=[
            {"name": "DB_HOST", "value": "postgres.production.svc.cluster.local"},
            {"name": "DB_NAME", "value": service},
            {"name": "DB_USER", "value": f"{service}_app"},
            {
                "name": "DB_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": f"{service}-db", "key": "password"}},
            },
            {"name": "REDIS_URL", "value": redis_url},
            {"name": upstream_name, "value": upstream_url},
            {"name": "LOG_LEVEL", "value": "info"},
        ],
        cpu=cpu,
    )


@dataclass
class Node:
    name: str
    ip: str
    pod_cidr_prefix: str  # e.g. "10.42.1."


@dataclass
class RS:
    name: str
    hash: str
    uid: str
    revision: int
    image: str
    created: datetime
    replicas: int
    change_cause: str


@dataclass
class PodRec:
    name: str
    uid: str
    rs: RS
    node: Node
    ip: str
    created: datetime
    first_start: datetime  # the first container's start
    started: datetime  # current container start
    ready_since: datetime
    digest: str
    container_id: str
    restarts: int = 0
    last_terminated: Json | None = None


def make_rs(
    ids: Ids, app: App, revision: int, version: str, created: datetime, replicas: int
) -> RS:
    h = ids.token(10)
    return RS(
        name=f"{app.name}-{h}",
        hash=h,
        uid=ids.uid(),
        revision=revision,
        image=f"{app.image_repo}:{version}",
        created=created,
        replicas=replicas,
        change_cause=f"deploy {version}",
    )


def make_pod(
    ids: Ids,
    rs: RS,
    node: Node,
    created: datetime,
    started: datetime,
    ready_since: datetime,
    digest: str,
    restarts: int = 0,
    last_terminated: Json | None = None,
    first_start: datetime | None = None,
) -> PodRec:
    """A pod of ``rs`` on ``node``; ``first_start`` defaults to ``started`` (no restart)."""
    return PodRec(
        name=f"{rs.name}-{ids.token(5)}",
        uid=ids.uid(),
        rs=rs,
        node=node,
        ip=f"{node.pod_cidr_prefix}{ids.rng.randrange(2, 250)}",
        created=created,
        first_start=first_start or started,
        started=started,
        ready_since=ready_since,
        restarts=restarts,
        last_terminated=last_terminated,
        container_id=ids.hex(64),
        digest=digest,
    )


def container_spec(app: App, image: str) -> Json:
    probe: Json = {
        "httpGet": {"path": "", "port": "http", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    readiness = copy.deepcopy(probe)
    readiness["httpGet"]["path"] = "/health/ready"
    liveness = copy.deepcopy(probe)
    liveness["httpGet"]["path"] = "/health/live"
    liveness["initialDelaySeconds"] = 10
    return {
        "name": app.name,
        "image": image,
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "env": app.env,
        "resources": {
            "limits": {"memory": app.memory_limit},
            "requests": {"cpu": app.cpu, "memory": app.memory},
        },
        "livenessProbe": liveness,
        "readinessProbe": readiness,
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent",
    }


def pod_spec(app: App, image: str) -> Json:
    return {
        "containers": [container_spec(app, image)],
        "restartPolicy": "Always",
        "terminationGracePeriodSeconds": 30,
        "dnsPolicy": "ClusterFirst",
        "serviceAccountName": app.name,
        "serviceAccount": app.name,
        "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
        "schedulerName": "default-scheduler",
    }


def owner_ref(kind: str, name: str, uid: str) -> Json:
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def deployment_obj(
    ids: Ids,
    app: App,
    current: RS,
    created: datetime,
    replicas: int,
    generation: int,
    progressed: datetime,
) -> Json:
    return {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {
            "name": app.name,
            "namespace": NAMESPACE,
            "uid": ids.uid(),
            "resourceVersion": ids.resource_version(),
            "generation": generation,
            "creationTimestamp": iso(created),
            "labels": dict(app.labels),
            "annotations": {
                "deployment.kubernetes.io/revision": str(current.revision),
                "kubernetes.io/change-cause": current.change_cause,
            },
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": dict(app.labels)},
            "template": {
                "metadata": {"labels": dict(app.labels)},
                "spec": pod_spec(app, current.image),
            },
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"},
            },
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
        },
        "status": {
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
            "conditions": [
                {
                    "type": "Available",
                    "status": "True",
                    "lastUpdateTime": iso(progressed),
                    "lastTransitionTime": iso(progressed),
                    "reason": "MinimumReplicasAvailable",
                    "message": "Deployment has minimum availability.",
                },
                {
                    "type": "Progressing",
                    "status": "True",
                    "lastUpdateTime": iso(progressed),
                    "lastTransitionTime": iso(created + timedelta(seconds=1)),
                    "reason": "NewReplicaSetAvailable",
                    "message": f'ReplicaSet "{current.name}" has successfully progressed.',
                },
            ],
        },
    }


def replicaset_obj(ids: Ids, app: App, rs: RS, deployment: Json, max_surge: int) -> Json:
    labels = {**app.labels, "pod-template-hash": rs.hash}
    generation = 3 if rs.replicas else 4
    status: Json = {"replicas": rs.replicas, "observedGeneration": generation}
    if rs.replicas:
        status.update(
            fullyLabeledReplicas=rs.replicas,
            readyReplicas=rs.replicas,
            availableReplicas=rs.replicas,
        )
    desired = deployment["spec"]["replicas"]
    return {
        "kind": "ReplicaSet",
        "apiVersion": "apps/v1",
        "metadata": {
            "name": rs.name,
            "namespace": NAMESPACE,
            "uid": rs.uid,
            "resourceVersion": ids.resource_version(),
            "generation": generation,
            "creationTimestamp": iso(rs.created),
            "labels": labels,
            "annotations": {
                "deployment.kubernetes.io/desired-replicas": str(desired),
                "deployment.kubernetes.io/max-replicas": str(desired + max_surge),
                "deployment.kubernetes.io/revision": str(rs.revision),
                "kubernetes.io/change-cause": rs.change_cause,
            },
            "ownerReferences": [owner_ref("Deployment", app.name, deployment["metadata"]["uid"])],
        },
        "spec": {
            "replicas": rs.replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec(app, rs.image)},
        },
        "status": status,
    }


def pod_obj(ids: Ids, app: App, p: PodRec) -> Json:
    labels = {**app.labels, "pod-template-hash": p.rs.hash}
    spec = pod_spec(app, p.rs.image)
    spec["nodeName"] = p.node.name
    spec["tolerations"] = [
        {
            "key": f"node.kubernetes.io/{k}",
            "operator": "Exists",
            "effect": "NoExecute",
            "tolerationSeconds": 300,
        }
        for k in ("not-ready", "unreachable")
    ]
    scheduled = p.created + timedelta(seconds=1)
    image_id = f"{p.rs.image.rsplit(':', 1)[0]}@sha256:{p.digest}"
    last_state: Json = {}
    if p.last_terminated:
        last_state = {"terminated": p.last_terminated}
    conditions = [
        ("PodReadyToStartContainers", p.started),
        ("Initialized", scheduled),
        ("Ready", p.ready_since),
        ("ContainersReady", p.ready_since),
        ("PodScheduled", scheduled),
    ]
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": p.name,
            "generateName": f"{p.rs.name}-",
            "namespace": NAMESPACE,
            "uid": p.uid,
            "resourceVersion": ids.resource_version(),
            "creationTimestamp": iso(p.created),
            "labels": labels,
            "ownerReferences": [owner_ref("ReplicaSet", p.rs.name, p.rs.uid)],
        },
        "spec": spec,
        "status": {
            "phase": "Running",
            "conditions": [
                {
                    "type": type_,
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": iso(when),
                }
                for type_, when in conditions
            ],
            "hostIP": p.node.ip,
            "hostIPs": [{"ip": p.node.ip}],
            "podIP": p.ip,
            "podIPs": [{"ip": p.ip}],
            "startTime": iso(scheduled),
            "containerStatuses": [
                {
                    "name": app.name,
                    "state": {"running": {"startedAt": iso(p.started)}},
                    "lastState": last_state,
                    "ready": True,
                    "restartCount": p.restarts,
                    "image": p.rs.image,
                    "imageID": image_id,
                    "containerID": f"containerd://{p.container_id}",
                    "started": True,
                }
            ],
            "qosClass": "Burstable",
        },
    }


def k8s_list(kind: str, api_version: str, items: list[Json], ids: Ids) -> Json:
    return {
        "kind": kind,
        "apiVersion": api_version,
        "metadata": {"resourceVersion": ids.resource_version()},
        "items": items,
    }


def add_workload(
    snap: Snapshot,
    ids: Ids,
    app: App,
    deployment: Json,
    replicasets: Sequence[RS],
    pods: Sequence[PodRec],
    *,
    max_surge: int,
) -> None:
    """``kubernetes/{deployments,replicasets,pods}.json``."""
    snap.add_json(
        "kubernetes/deployments.json", k8s_list("DeploymentList", "apps/v1", [deployment], ids)
    )
    rs_items = [replicaset_obj(ids, app, rs, deployment, max_surge) for rs in replicasets]
    snap.add_json(
        "kubernetes/replicasets.json", k8s_list("ReplicaSetList", "apps/v1", rs_items, ids)
    )
    pod_items = [pod_obj(ids, app, p) for p in pods]
    snap.add_json("kubernetes/pods.json", k8s_list("PodList", "v1", pod_items, ids))


def container_field(app: App) -> str:
    """An event's ``fieldPath`` for the app's container."""
    return f"spec.containers{{{app.name}}}"
