"""Generate the demo target's recorded incidents (``opsnb-snapshot/1``).

Two incidents are written, one folder per service, under ``opsnb/demo/incidents``:

``payments`` (2025-01-15)
    The blameless postmortem template's example: a 3x traffic spike from 14:00 UTC exhausts
    the database connection pool (max 100) at 14:15, errors from 14:18, ``HighErrorRate``
    fires at 14:20, the pool is scaled from 100 to 300 at 14:40, errors recover by 15:05 and
    the incident is resolved at 15:15. Evidence is captured at 14:30 (``now``); metrics run
    on to 15:30 for the postmortem. The error rate and pool series pass exactly through the
    template's "Appendix: Supporting Data" tables. No deployment happened: revision 7 is a
    week old.

``catalog`` (2025-03-04)
    A bad deployment: revision 12 (``catalog:5.0.0``) rolls out at 09:42 UTC and from 09:43
    ``/api/products`` fails with ``NullPointerError`` / ``SerializationError`` (about 10% of
    all requests). Pool, database, cache and dependencies are healthy. Captured at 10:00.

The output is deterministic (seeded RNGs, fixed instants, no wall clock), so regenerating
gives byte-identical files::

    python -m opsnb.demo.build_incidents [--out DIR]
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import random
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from opsnb.config import DEFAULT_SLO, DEMO_SNAPSHOTS
from opsnb.promql import render

FORMAT = "opsnb-snapshot/1"
NAMESPACE = "production"
RATE_WINDOW = "5m"
STEP = 60

# The postmortem template's appendix, minute -> figure (error rate as a fraction).
PAYMENTS_ERROR_RATE: dict[str, float] = {
    "14:00": 0.0001,
    "14:10": 0.0005,
    "14:15": 0.025,
    "14:20": 0.152,
    "14:25": 0.187,
    "14:30": 0.163,
    "14:40": 0.121,
    "14:50": 0.052,
    "15:00": 0.008,
    "15:10": 0.0003,
}
# minute -> (active, idle, waiting)
PAYMENTS_POOL: dict[str, tuple[int, int, int]] = {
    "14:00": (45, 55, 0),
    "14:10": (78, 22, 0),
    "14:15": (98, 2, 15),
    "14:20": (100, 0, 89),
    "14:30": (100, 0, 156),
    "14:40": (145, 155, 0),
    "14:50": (120, 180, 0),
}

PAYMENTS_DAY = "2025-01-15"
CATALOG_DAY = "2025-03-04"


# --- time and number helpers -------------------------------------------------------------


def utc(text: str) -> datetime:
    """Parse ``2025-01-15T14:00:00Z`` (or ``...+00:00``) into an aware UTC datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def at(day: str, hhmm: str) -> datetime:
    """``at("2025-01-15", "14:20")`` or with seconds ``"14:20:05"``."""
    if hhmm.count(":") == 1:
        hhmm += ":00"
    return utc(f"{day}T{hhmm}Z")


def iso(dt: datetime) -> str:
    """Kubernetes style: second precision with ``Z``."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ms(ms: int) -> str:
    """Log style: millisecond precision with ``Z``, from integer Unix milliseconds."""
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def iso_pg(dt: datetime) -> str:
    """PostgreSQL ``timestamptz`` as a driver returns it, rendered with ``isoformat``."""
    return dt.astimezone(UTC).isoformat(timespec="microseconds")


def num(value: float) -> str:
    """A sample value as Prometheus writes it: positional, up to 7 significant digits."""
    if value == 0:
        return "0"
    text = format(Decimal(repr(float(f"{value:.7g}"))), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


class Curve:
    """Monotone piecewise cubic (Fritsch-Butland PCHIP) through knots (unix seconds, value).

    It passes exactly through every knot and never overshoots between them.
    """

    def __init__(self, knots: Sequence[tuple[datetime, float]]):
        self.xs = [k[0].timestamp() for k in knots]
        self.ys = [float(k[1]) for k in knots]
        n = len(self.xs)
        self.h = [self.xs[i + 1] - self.xs[i] for i in range(n - 1)]
        delta = [(self.ys[i + 1] - self.ys[i]) / self.h[i] for i in range(n - 1)]
        self.d = [0.0] * n
        for i in range(1, n - 1):
            if delta[i - 1] * delta[i] > 0:
                w1 = 2 * self.h[i] + self.h[i - 1]
                w2 = self.h[i] + 2 * self.h[i - 1]
                self.d[i] = (w1 + w2) / (w1 / delta[i - 1] + w2 / delta[i])

    def __call__(self, t: float) -> float:
        xs, ys = self.xs, self.ys
        if t <= xs[0]:
            return ys[0]
        if t >= xs[-1]:
            return ys[-1]
        i = bisect.bisect_right(xs, t) - 1
        h = self.h[i]
        s = (t - xs[i]) / h
        h00 = 2 * s**3 - 3 * s**2 + 1
        h10 = s**3 - 2 * s**2 + s
        h01 = -2 * s**3 + 3 * s**2
        h11 = s**3 - s**2
        return h00 * ys[i] + h10 * h * self.d[i] + h01 * ys[i + 1] + h11 * h * self.d[i + 1]


def ramp(t: float, before: float, after: float, change_at: float, window: float = 300) -> float:
    """What a ``rate(...[window])`` of a step change from ``before`` to ``after`` reads."""
    frac = min(1.0, max(0.0, (t - change_at) / window))
    return before + (after - before) * frac


def jitter(rng: random.Random, spread: float) -> float:
    """A multiplicative noise factor in ``[1 - spread, 1 + spread]``."""
    return 1 + spread * (2 * rng.random() - 1)


def weighted(rng: random.Random, choices: Sequence[tuple[Any, float]]) -> Any:
    total = sum(w for _, w in choices)
    r = rng.random() * total
    for item, w in choices:
        r -= w
        if r < 0:
            return item
    return choices[-1][0]


# --- metrics -----------------------------------------------------------------------------


def minutes(start: datetime, end: datetime) -> list[int]:
    return list(range(int(start.timestamp()), int(end.timestamp()) + 1, STEP))


def series(name: str, service: str, metric: dict[str, str], times: list[int], values) -> dict:
    return {
        "query": render(name, service=service, window=RATE_WINDOW),
        "metric": metric,
        "values": [
            [t, v if isinstance(v, str) else num(v)] for t, v in zip(times, values, strict=True)
        ],
    }


# --- Kubernetes objects --------------------------------------------------------------------

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
    env: list[dict[str, Any]]
    cpu: str = "500m"
    memory: str = "512Mi"
    memory_limit: str = "1Gi"

    @property
    def labels(self) -> dict[str, str]:
        return {"app": self.name}


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
    started: datetime  # current container start
    ready_since: datetime
    restarts: int = 0
    last_terminated: dict[str, Any] | None = None
    container_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def container_spec(app: App, image: str) -> dict[str, Any]:
    probe = {
        "httpGet": {"path": "", "port": "http", "scheme": "HTTP"},
        "timeoutSeconds": 1,
        "periodSeconds": 10,
        "successThreshold": 1,
        "failureThreshold": 3,
    }
    readiness = json.loads(json.dumps(probe))
    readiness["httpGet"]["path"] = "/health/ready"
    liveness = json.loads(json.dumps(probe))
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


def pod_spec(app: App, image: str) -> dict[str, Any]:
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


def deployment_obj(
    ids: Ids,
    app: App,
    current: RS,
    created: datetime,
    replicas: int,
    generation: int,
    progressed: datetime,
) -> dict[str, Any]:
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


def replicaset_obj(ids: Ids, app: App, rs: RS, deployment: dict[str, Any], max_surge: int) -> dict:
    labels = {**app.labels, "pod-template-hash": rs.hash}
    generation = 3 if rs.replicas else 4
    status: dict[str, Any] = {"replicas": rs.replicas, "observedGeneration": generation}
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
            "generation": status["observedGeneration"],
            "creationTimestamp": iso(rs.created),
            "labels": labels,
            "annotations": {
                "deployment.kubernetes.io/desired-replicas": str(desired),
                "deployment.kubernetes.io/max-replicas": str(desired + max_surge),
                "deployment.kubernetes.io/revision": str(rs.revision),
                "kubernetes.io/change-cause": rs.change_cause,
            },
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": app.name,
                    "uid": deployment["metadata"]["uid"],
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "replicas": rs.replicas,
            "selector": {"matchLabels": dict(labels)},
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec(app, rs.image)},
        },
        "status": status,
    }


def pod_obj(ids: Ids, app: App, p: PodRec) -> dict[str, Any]:
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
    image_id = f"{p.rs.image.rsplit(':', 1)[0]}@sha256:{p.extra['digest']}"
    last_state: dict[str, Any] = {}
    if p.last_terminated:
        last_state = {"terminated": p.last_terminated}
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
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": p.rs.name,
                    "uid": p.rs.uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": spec,
        "status": {
            "phase": "Running",
            "conditions": [
                {
                    "type": "PodReadyToStartContainers",
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": iso(p.started),
                },
                {
                    "type": "Initialized",
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": iso(scheduled),
                },
                {
                    "type": "Ready",
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": iso(p.ready_since),
                },
                {
                    "type": "ContainersReady",
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": iso(p.ready_since),
                },
                {
                    "type": "PodScheduled",
                    "status": "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": iso(scheduled),
                },
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


def event_obj(
    ids: Ids,
    *,
    kind: str,
    name: str,
    uid: str,
    reason: str,
    message: str,
    first: datetime,
    last: datetime | None = None,
    count: int = 1,
    type_: str = "Normal",
    component: str,
    host: str | None = None,
    field_path: str | None = None,
) -> dict[str, Any]:
    api_version = "v1" if kind == "Pod" else "apps/v1"
    involved: dict[str, Any] = {
        "kind": kind,
        "namespace": NAMESPACE,
        "name": name,
        "uid": uid,
        "apiVersion": api_version,
        "resourceVersion": ids.resource_version(),
    }
    if field_path:
        involved["fieldPath"] = field_path
    source: dict[str, Any] = {"component": component}
    if host:
        source["host"] = host
    last = last or first
    return {
        "kind": "Event",
        "apiVersion": "v1",
        "metadata": {
            "name": f"{name}.{ids.hex(16)}",
            "namespace": NAMESPACE,
            "uid": ids.uid(),
            "resourceVersion": ids.resource_version(),
            "creationTimestamp": iso(first),
        },
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "source": source,
        "firstTimestamp": iso(first),
        "lastTimestamp": iso(last),
        "count": count,
        "type": type_,
        "eventTime": None,
        "reportingComponent": component,
        "reportingInstance": host or "",
    }


def k8s_list(kind: str, api_version: str, items: list[dict], ids: Ids) -> dict[str, Any]:
    return {
        "kind": kind,
        "apiVersion": api_version,
        "metadata": {"resourceVersion": ids.resource_version()},
        "items": items,
    }


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
    last_terminated: dict[str, Any] | None = None,
) -> PodRec:
    return PodRec(
        name=f"{rs.name}-{ids.token(5)}",
        uid=ids.uid(),
        rs=rs,
        node=node,
        ip=f"{node.pod_cidr_prefix}{ids.rng.randrange(2, 250)}",
        created=created,
        started=started,
        ready_since=ready_since,
        restarts=restarts,
        last_terminated=last_terminated,
        container_id=ids.hex(64),
        extra={"digest": digest},
    )


def pod_start_events(ids: Ids, app: App, p: PodRec, pulled: bool, pull_seconds: float) -> list:
    """Scheduled / Pulling / Pulled / Created / Started for a pod's first start."""
    t0 = p.created
    fp = f"spec.containers{{{app.name}}}"
    common = {"kind": "Pod", "name": p.name, "uid": p.uid}
    kubelet = {"component": "kubelet", "host": p.node.name, "field_path": fp}
    out = [
        event_obj(
            ids,
            **common,
            reason="Scheduled",
            first=t0,
            component="default-scheduler",
            message=f"Successfully assigned {NAMESPACE}/{p.name} to {p.node.name}",
        ),
    ]
    if pulled:
        out.append(
            event_obj(
                ids,
                **common,
                **kubelet,
                reason="Pulling",
                first=t0 + timedelta(seconds=1),
                message=f'Pulling image "{p.rs.image}"',
            )
        )
        out.append(
            event_obj(
                ids,
                **common,
                **kubelet,
                reason="Pulled",
                first=t0 + timedelta(seconds=3),
                message=(
                    f'Successfully pulled image "{p.rs.image}" in {pull_seconds:.3f}s '
                    f"({pull_seconds:.3f}s including waiting). Image size 131873420 bytes."
                ),
            )
        )
    else:
        out.append(
            event_obj(
                ids,
                **common,
                **kubelet,
                reason="Pulled",
                first=t0 + timedelta(seconds=1),
                message=f'Container image "{p.rs.image}" already present on machine',
            )
        )
    return out


# --- logs --------------------------------------------------------------------------------


@dataclass
class Endpoint:
    path: str
    method: str
    weight: float
    ok_status: int
    median_ms: float


def request_times(
    rng: random.Random, start_ms: int, end_ms: int, per_minute: Callable[[float], float]
) -> Iterator[int]:
    """Poisson arrival instants (integer ms) between start and end."""
    t = float(start_ms)
    while True:
        rate = per_minute(t / 1000) / 60000.0  # per ms
        t += -math.log(1.0 - rng.random()) / rate
        if t >= end_ms:
            return
        yield int(t)


def line(ms: int, level: str, **fields: Any) -> str:
    return f"{iso_ms(ms)} {level} " + " ".join(f"{k}={v}" for k, v in fields.items())


# --- PostgreSQL and Redis ----------------------------------------------------------------


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
) -> dict[str, Any]:
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


def pg_background(pids: Callable[[], int], server_start: datetime) -> list[dict[str, Any]]:
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
    state = {"pid": first}

    def nxt() -> int:
        state["pid"] += rng.randrange(3, 400)
        return state["pid"]

    return nxt


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
) -> dict[str, Any]:
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


def dependency(url: str, detail: str, latency_ms: float) -> dict[str, Any]:
    return {"url": url, "status": "ok", "detail": detail, "latency_ms": latency_ms}


# --- writing -----------------------------------------------------------------------------


def dump(obj: Any) -> str:
    return json.dumps(obj, indent=2, ensure_ascii=False) + "\n"


def dump_metrics(all_series: list[dict]) -> str:
    rows = ",\n".join("  " + json.dumps(s, separators=(",", ":")) for s in all_series)
    return '{"series": [\n' + rows + "\n]}\n"


@dataclass
class Snapshot:
    service: str
    files: dict[str, str] = field(default_factory=dict)

    def add(self, rel: str, text: str) -> None:
        self.files[rel] = text

    def write(self, out: Path) -> list[Path]:
        folder = out / self.service
        if folder.exists():
            shutil.rmtree(folder)
        written = []
        for rel in sorted(self.files):
            path = folder / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.files[rel], encoding="utf-8", newline="\n")
            written.append(path)
        return written


def snapshot_header(
    service: str,
    start: datetime,
    end: datetime,
    now: datetime,
    description: str,
    dependencies: dict[str, str],
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "service": service,
        "namespace": NAMESPACE,
        "selector": f"app={service}",
        "deployment": service,
        "container": service,
        "start": iso(start),
        "end": iso(end),
        "now": iso(now),
        "step_seconds": STEP,
        "rate_window": RATE_WINDOW,
        "description": description,
        "slo": dict(DEFAULT_SLO),
        "dependencies": dependencies,
    }


# --- incident 1: payments ----------------------------------------------------------------


def build_payments() -> Snapshot:
    rng = random.Random(20250115)
    ids = Ids(random.Random(150_115), resource_version=48_213_377)
    service = "payments"
    day = PAYMENTS_DAY
    start, end, now = at(day, "13:00"), at(day, "15:30"), at(day, "14:30")
    times = minutes(start, end)
    snap = Snapshot(service)

    def t(hhmm: str) -> datetime:
        return at(day, hhmm)

    # --- metrics
    err_curve = Curve(
        [(t("13:00"), 0.0001), (t("13:59"), 0.0001)]
        + [(t(m), v) for m, v in PAYMENTS_ERROR_RATE.items()]
        + [(t("15:16"), 0.00011), (t("15:30"), 0.0001)]
    )
    exact_err = {int(t(m).timestamp()): v for m, v in PAYMENTS_ERROR_RATE.items()}
    lat_curve = Curve(
        [
            (t("13:00"), 0.18),
            (t("14:00"), 0.185),
            (t("14:05"), 0.21),
            (t("14:10"), 0.26),
            (t("14:15"), 0.62),
            (t("14:20"), 1.85),
            (t("14:25"), 2.5),
            (t("14:30"), 2.38),
            (t("14:39"), 2.21),
            (t("14:45"), 0.95),
            (t("14:50"), 0.46),
            (t("15:00"), 0.24),
            (t("15:10"), 0.19),
            (t("15:30"), 0.18),
        ]
    )
    spike_at = t("13:59:30").timestamp()
    scaled_at = int(t("14:40").timestamp())

    error_rate, latency, throughput = [], [], []
    for ts_ in times:
        if ts_ in exact_err:
            e = exact_err[ts_]
        else:
            e = err_curve(ts_) * jitter(rng, 0.2 if err_curve(ts_) < 0.0004 else 0.03)
        error_rate.append(e)
        latency.append(lat_curve(ts_) * jitter(rng, 0.03))
        throughput.append(ramp(ts_, 330.0, 1000.0, spike_at) * jitter(rng, 0.015))
    availability = [1 - e for e in error_rate]

    shares = [("/api/checkout", 0.56), ("/api/payments", 0.37), ("/api/refunds", 0.07)]
    by_endpoint: dict[str, list[float]] = {p: [] for p, _ in shares}
    for e, rps in zip(error_rate, throughput, strict=True):
        w = [s * jitter(rng, 0.1) for _, s in shares]
        total = sum(w)
        for (path, _), wi in zip(shares, w, strict=True):
            by_endpoint[path].append(e * rps * wi / total)

    # The pool: active + idle is the pool's max (100 until 14:40, then 300).
    before = Curve(
        [
            (t("13:00"), 42),
            (t("13:30"), 41),
            (t("14:00"), 45),
            (t("14:10"), 78),
            (t("14:15"), 98),
            (t("14:20"), 100),
            (t("14:39"), 100),
        ]
    )
    after = Curve([(t("14:40"), 145), (t("14:50"), 120), (t("15:00"), 112), (t("15:30"), 110)])
    waiting_curve = Curve(
        [
            (t("13:00"), 0),
            (t("14:13"), 0),
            (t("14:15"), 15),
            (t("14:20"), 89),
            (t("14:30"), 156),
            (t("14:39"), 162),
        ]
    )
    exact_pool = {int(t(m).timestamp()): v for m, v in PAYMENTS_POOL.items()}
    pool: dict[str, list[str]] = {"active": [], "idle": [], "waiting": []}
    for ts_ in times:
        pool_max = 100 if ts_ < scaled_at else 300
        if ts_ in exact_pool:
            active, idle, waiting = exact_pool[ts_]
        else:
            curve = before if ts_ < scaled_at else after
            noise = 3 if ts_ < t("14:00").timestamp() else (1 if ts_ < scaled_at else 2)
            active = round(curve(ts_)) + rng.randrange(-noise, noise + 1)
            active = max(0, min(pool_max, active))
            idle = pool_max - active
            w = waiting_curve(ts_) if ts_ < scaled_at else 0.0
            waiting = max(0, round(w * jitter(rng, 0.04))) if w >= 0.5 else 0
        pool["active"].append(str(active))
        pool["idle"].append(str(idle))
        pool["waiting"].append(str(waiting))

    all_series = [
        series("error_rate", service, {}, times, error_rate),
        series("availability", service, {}, times, availability),
        series("latency_p99", service, {}, times, latency),
        series("throughput", service, {}, times, throughput),
    ]
    for path, values in by_endpoint.items():
        all_series.append(series("errors_by_endpoint", service, {"endpoint": path}, times, values))
    for state, values in pool.items():
        all_series.append(series("pool", service, {"state": state}, times, values))
    snap.add("metrics.json", dump_metrics(all_series))

    # --- Kubernetes, as seen at 14:30
    app = App(
        name=service,
        image_repo="registry.example.com/payments",
        env=[
            {"name": "DB_HOST", "value": "postgres.production.svc.cluster.local"},
            {"name": "DB_NAME", "value": "payments"},
            {"name": "DB_USER", "value": "payments_app"},
            {
                "name": "DB_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": "payments-db", "key": "password"}},
            },
            {"name": "REDIS_URL", "value": "redis://redis.production.svc.cluster.local:6379/0"},
            {"name": "PAYMENTS_PROVIDER_URL", "value": "https://api.payments-provider.example.com"},
            {"name": "LOG_LEVEL", "value": "info"},
        ],
    )
    nodes = [
        Node("prod-worker-03", "10.0.1.23", "10.42.3."),
        Node("prod-worker-05", "10.0.1.25", "10.42.5."),
        Node("prod-worker-07", "10.0.2.17", "10.42.7."),
    ]
    rs5 = make_rs(ids, app, 5, "3.1.4", utc("2024-12-02T15:20:41Z"), 0)
    rs6 = make_rs(ids, app, 6, "3.2.0", utc("2024-12-19T10:05:12Z"), 0)
    rs7 = make_rs(ids, app, 7, "3.2.1", utc("2025-01-08T10:12:33Z"), 6)
    deployment = deployment_obj(
        ids,
        app,
        rs7,
        created=utc("2024-03-11T09:31:07Z"),
        replicas=6,
        generation=14,
        progressed=utc("2025-01-08T10:14:02Z"),
    )
    digest = ids.hex(64)
    pods: list[PodRec] = []
    for i in range(6):
        created = rs7.created + timedelta(seconds=1 + 14 * i)
        started = created + timedelta(seconds=3)
        ready_since = t("14:2" + str(i + 2)) + timedelta(seconds=rng.randrange(0, 50))
        pods.append(make_pod(ids, rs7, nodes[i % 3], created, started, ready_since, digest))
    snap.add(
        "kubernetes/deployments.json",
        dump(k8s_list("DeploymentList", "apps/v1", [deployment], ids)),
    )
    snap.add(
        "kubernetes/replicasets.json",
        dump(
            k8s_list(
                "ReplicaSetList",
                "apps/v1",
                [replicaset_obj(ids, app, rs, deployment, max_surge=2) for rs in (rs5, rs6, rs7)],
                ids,
            )
        ),
    )
    snap.add(
        "kubernetes/pods.json",
        dump(k8s_list("PodList", "v1", [pod_obj(ids, app, p) for p in pods], ids)),
    )

    events = []
    for i, p in enumerate(pods):
        first = t("14:16") + timedelta(seconds=4 + 9 * i + rng.randrange(0, 8))
        last = t("14:29") + timedelta(seconds=rng.randrange(0, 55))
        events.append(
            event_obj(
                ids,
                kind="Pod",
                name=p.name,
                uid=p.uid,
                reason="Unhealthy",
                type_="Warning",
                message="Readiness probe failed: HTTP probe failed with statuscode: 503",
                first=first,
                last=last,
                count=rng.randrange(14, 42),
                component="kubelet",
                host=p.node.name,
                field_path=f"spec.containers{{{app.name}}}",
            )
        )
    events.sort(key=lambda e: (e["firstTimestamp"], e["metadata"]["name"]))
    snap.add("kubernetes/events.json", dump(k8s_list("EventList", "v1", events, ids)))

    # --- logs: 13:45 to 14:30 (now), sampled request log plus pool warnings
    endpoints = [
        Endpoint("/api/checkout", "POST", 0.45, 200, 62),
        Endpoint("/api/payments", "POST", 0.42, 201, 48),
        Endpoint("/api/refunds", "POST", 0.13, 201, 55),
    ]
    by_path = {e.path: e for e in endpoints}
    log_start = int(t("13:45").timestamp() * 1000)
    log_end = int(now.timestamp() * 1000)
    first_error = t("14:15").timestamp()

    def per_minute(sec: float) -> float:
        return 8.0 if sec < spike_at else 12.0

    for p in pods:
        lines: list[tuple[int, str]] = []
        for ms in request_times(rng, log_start, log_end, per_minute):
            sec = ms / 1000
            waiting = waiting_curve(sec)
            p_err = err_curve(sec) if sec >= first_error else 0.0
            if rng.random() < p_err:
                if rng.random() < 0.84:
                    kind = "PoolTimeoutError"
                    ep = by_path[weighted(rng, [("/api/checkout", 0.6), ("/api/payments", 0.4)])]
                    status, dur = 503, 1500 + rng.randrange(0, 90)
                else:
                    kind = "DatabaseConnectionError"
                    ep = by_path[weighted(rng, [(e.path, e.weight) for e in endpoints])]
                    status, dur = 500, rng.randrange(20, 3000)
                lines.append(
                    (
                        ms,
                        line(
                            ms,
                            "ERROR",
                            method=ep.method,
                            endpoint=ep.path,
                            status=status,
                            duration_ms=dur,
                            error=kind,
                        ),
                    )
                )
                continue
            ep = weighted(rng, [(e, e.weight) for e in endpoints])
            dur = ep.median_ms * math.exp(0.45 * rng.gauss(0, 1))
            if waiting > 0.5:
                dur += rng.random() * min(1450.0, waiting * 9)
            status = ep.ok_status
            if ep.path == "/api/payments" and rng.random() < 0.02:
                status = 402
            lines.append(
                (
                    ms,
                    line(
                        ms,
                        "INFO",
                        method=ep.method,
                        endpoint=ep.path,
                        status=status,
                        duration_ms=int(dur),
                    ),
                )
            )
        # pool wait warnings while requests queue for a connection
        ms = log_start + rng.randrange(0, 20000)
        while ms < log_end:
            w = waiting_curve(ms / 1000)
            if w >= 0.5:
                n = max(1, round(w * jitter(rng, 0.1)))
                lines.append((ms, line(ms, "WARN", event="pool_wait", waiting=n)))
            ms += 15000 + rng.randrange(0, 10000)
        lines.sort(key=lambda x: x[0])
        snap.add(f"logs/{p.name}.log", "".join(text + "\n" for _, text in lines))

    # --- PostgreSQL at 14:30: the pool's 100 connections are all in use
    pids = pid_source(rng, 18_400)
    pod_ips = [p.ip for p in pods]
    pg_start = utc("2024-11-20T03:12:44Z")
    rows = pg_background(pids, pg_start)

    def client(**kw: Any) -> dict[str, Any]:
        opened = kw.pop("opened", None)
        if opened is None:
            opened = (
                pods[0].started + timedelta(seconds=rng.randrange(5, 600))
                if rng.random() < 0.45
                else t("14:01") + timedelta(seconds=rng.randrange(0, 840))
            )
        return pg_row(
            pid=pids(),
            datname="payments",
            usename="payments_app",
            app="payments",
            client_addr=pod_ips[rng.randrange(len(pod_ips))],
            client_port=rng.randrange(32768, 60999),
            backend_start=opened,
            **kw,
        )

    def sec_before(hi: float, lo: float = 0.0) -> datetime:
        return now - timedelta(microseconds=int((lo + rng.random() * (hi - lo)) * 1e6))

    xid = {"n": 48_112_903}

    def next_xid() -> int:
        xid["n"] += rng.randrange(1, 60)
        return xid["n"]

    report = (
        "SELECT p.merchant_id, date_trunc('hour', p.created_at) AS hour, count(*), "
        "sum(p.amount_cents) FROM payments p JOIN ledger_entries le ON le.payment_id = p.id "
        "WHERE p.created_at >= $1 GROUP BY 1, 2 ORDER BY 2"
    )
    for started_at in ("14:12:41", "14:15:03", "14:18:27", "14:21:50"):
        qs = t(started_at) + timedelta(microseconds=rng.randrange(0, 999_999))
        rows.append(
            client(
                xact_start=qs,
                query_start=qs,
                state_change=qs,
                state="active",
                wait_event_type="IO",
                wait_event="DataFileRead",
                query=report,
                backend_xmin=next_xid() - 5000,
            )
        )
    for started_at in ("14:16:52", "14:19:38", "14:23:05"):
        xs = t(started_at) + timedelta(microseconds=rng.randrange(0, 999_999))
        qs = xs + timedelta(milliseconds=rng.randrange(5, 40))
        rows.append(
            client(
                xact_start=xs,
                query_start=qs,
                state_change=qs + timedelta(milliseconds=2),
                state="idle in transaction",
                wait_event_type="Client",
                wait_event="ClientRead",
                query="UPDATE payment_intents SET status = $1, updated_at = now() WHERE id = $2",
                backend_xid=next_xid(),
            )
        )
    for _ in range(12):
        qs = sec_before(45, 2)
        rows.append(
            client(
                xact_start=qs - timedelta(milliseconds=rng.randrange(5, 300)),
                query_start=qs,
                state_change=qs,
                state="active",
                wait_event_type="Lock",
                wait_event="transactionid",
                query="UPDATE accounts SET balance_cents = balance_cents - $1 WHERE id = $2",
                backend_xid=next_xid(),
                backend_xmin=next_xid() - 30,
            )
        )
    active_queries = [
        (
            "INSERT INTO payments (id, merchant_id, customer_id, amount_cents, currency, status, "
            "created_at) VALUES ($1, $2, $3, $4, $5, $6, now())",
            None,
            None,
        ),
        (
            "SELECT id, brand, last4, exp_month, exp_year FROM payment_methods "
            "WHERE customer_id = $1 AND deleted_at IS NULL",
            "IO",
            "DataFileRead",
        ),
        (
            "INSERT INTO ledger_entries (payment_id, account_id, amount_cents, kind) "
            "VALUES ($1, $2, $3, $4)",
            "LWLock",
            "WALWrite",
        ),
        ("SELECT * FROM payment_intents WHERE id = $1 FOR UPDATE", None, None),
    ]
    for _ in range(38):
        q, wt, we = active_queries[rng.randrange(len(active_queries))]
        qs = sec_before(1.5)
        rows.append(
            client(
                xact_start=qs - timedelta(milliseconds=rng.randrange(1, 400)),
                query_start=qs,
                state_change=qs,
                state="active",
                wait_event_type=wt,
                wait_event=we,
                query=q,
                backend_xid=next_xid(),
                backend_xmin=next_xid() - 40,
            )
        )
    for _ in range(35):
        qs = sec_before(3)
        rows.append(
            client(
                xact_start=qs - timedelta(milliseconds=rng.randrange(20, 900)),
                query_start=qs,
                state_change=qs + timedelta(microseconds=rng.randrange(200, 3000)),
                state="idle in transaction",
                wait_event_type="Client",
                wait_event="ClientRead",
                query="SELECT * FROM payment_intents WHERE id = $1 FOR UPDATE",
                backend_xid=next_xid(),
            )
        )
    for _ in range(4):
        qs = sec_before(0.5)
        rows.append(
            client(
                xact_start=None,
                query_start=qs,
                state_change=qs + timedelta(microseconds=400),
                state="idle",
                wait_event_type="Client",
                wait_event="ClientRead",
                query="COMMIT",
            )
        )
    rows.append(
        pg_row(
            pid=pids(),
            datname="payments",
            usename="postgres",
            app="opsnb",
            client_addr="10.0.9.14",
            client_port=rng.randrange(32768, 60999),
            backend_start=now - timedelta(seconds=1),
            xact_start=now,
            query_start=now,
            state_change=now,
            state="active",
            wait_event_type=None,
            wait_event=None,
            query="SELECT * FROM pg_stat_activity",
            backend_xmin=next_xid() - 10,
        )
    )
    snap.add(
        "postgres/activity.json",
        dump({"captured_at": iso(now), "max_connections": 100, "activity": rows}),
    )

    # --- Redis: normal
    snap.add(
        "redis/info.json",
        dump(
            {
                "captured_at": iso(now),
                "info": redis_info(
                    rng,
                    captured=now,
                    uptime_days=41,
                    hits=1_412_338_201,
                    misses=90_149_246,
                    clients=64,
                    used_memory=1_318_553_112,
                    ops=4_120,
                    keys=2_318_442,
                    run_id=ids.hex(40),
                ),
            }
        ),
    )

    deps = {
        "postgres": "postgresql://postgres.production.svc.cluster.local:5432/payments",
        "redis": "redis://redis.production.svc.cluster.local:6379/0",
        "payments-provider": "https://api.payments-provider.example.com/health",
    }
    snap.add(
        "dependencies.json",
        dump(
            {
                "postgres": dependency(
                    deps["postgres"], "TCP connect ok; accepting connections", 1.9
                ),
                "redis": dependency(deps["redis"], "PING -> PONG", 0.6),
                "payments-provider": dependency(deps["payments-provider"], "HTTP 200", 84.2),
            }
        ),
    )
    snap.add(
        "snapshot.json",
        dump(
            snapshot_header(
                service,
                start,
                end,
                now,
                "Payments, 2025-01-15: HighErrorRate fired at 14:20 UTC. Evidence captured at "
                "14:30 UTC, mid-incident; metrics are recorded until 15:30 UTC for the postmortem.",
                deps,
            )
        ),
    )
    return snap


# --- incident 2: catalog -----------------------------------------------------------------


def build_catalog() -> Snapshot:
    rng = random.Random(20250304)
    ids = Ids(random.Random(30_304), resource_version=71_902_114)
    service = "catalog"
    day = CATALOG_DAY
    start, end, now = at(day, "09:00"), at(day, "10:30"), at(day, "10:00")
    times = minutes(start, end)
    snap = Snapshot(service)

    def t(hhmm: str) -> datetime:
        return at(day, hhmm)

    rollout = t("09:42:07")

    # --- metrics
    err_level = Curve(
        [
            (t("09:00"), 0.0002),
            (t("09:42"), 0.0002),
            (t("09:43"), 0.012),
            (t("09:44"), 0.035),
            (t("09:45"), 0.056),
            (t("09:46"), 0.076),
            (t("09:47"), 0.094),
            (t("09:48"), 0.101),
            (t("10:30"), 0.1),
        ]
    )
    lat_curve = Curve(
        [
            (t("09:00"), 0.12),
            (t("09:42"), 0.122),
            (t("09:44"), 0.15),
            (t("09:47"), 0.19),
            (t("10:30"), 0.19),
        ]
    )
    error_rate, latency, throughput = [], [], []
    for ts_ in times:
        base = err_level(ts_)
        if ts_ >= t("09:48").timestamp():
            e = base * jitter(rng, 0.15)  # 8.5% .. 11.5%
        elif base < 0.0005:
            e = base * jitter(rng, 0.25)
        else:
            e = base * jitter(rng, 0.04)
        error_rate.append(e)
        latency.append(lat_curve(ts_) * jitter(rng, 0.04))
        throughput.append(452.0 * jitter(rng, 0.02))
    availability = [1 - e for e in error_rate]
    by_endpoint: dict[str, list[float]] = {
        "/api/products": [],
        "/api/categories": [],
        "/api/search": [],
    }
    for e, rps in zip(error_rate, throughput, strict=True):
        # the baseline trickle of 5xx is spread over all endpoints; the rest is /api/products
        baseline = 0.0002 * rps * jitter(rng, 0.25)
        w = {
            "/api/products": 0.5 * jitter(rng, 0.2),
            "/api/categories": 0.15 * jitter(rng, 0.2),
            "/api/search": 0.35 * jitter(rng, 0.2),
        }
        total = sum(w.values())
        others = 0.0
        for path in ("/api/categories", "/api/search"):
            value = min(baseline, e * rps) * w[path] / total
            by_endpoint[path].append(value)
            others += value
        by_endpoint["/api/products"].append(e * rps - others)
    pool: dict[str, list[str]] = {"active": [], "idle": [], "waiting": []}
    for _ in times:
        active = 20 + rng.randrange(-2, 3)
        pool["active"].append(str(active))
        pool["idle"].append(str(50 - active))
        pool["waiting"].append("0")
    all_series = [
        series("error_rate", service, {}, times, error_rate),
        series("availability", service, {}, times, availability),
        series("latency_p99", service, {}, times, latency),
        series("throughput", service, {}, times, throughput),
    ]
    for path, values in by_endpoint.items():
        all_series.append(series("errors_by_endpoint", service, {"endpoint": path}, times, values))
    for state, values in pool.items():
        all_series.append(series("pool", service, {"state": state}, times, values))
    snap.add("metrics.json", dump_metrics(all_series))

    # --- Kubernetes at 10:00
    app = App(
        name=service,
        image_repo="registry.example.com/catalog",
        env=[
            {"name": "DB_HOST", "value": "postgres.production.svc.cluster.local"},
            {"name": "DB_NAME", "value": "catalog"},
            {"name": "DB_USER", "value": "catalog_app"},
            {
                "name": "DB_PASSWORD",
                "valueFrom": {"secretKeyRef": {"name": "catalog-db", "key": "password"}},
            },
            {"name": "REDIS_URL", "value": "redis://redis.production.svc.cluster.local:6379/1"},
            {"name": "SEARCH_URL", "value": "http://search.production.svc.cluster.local:9200"},
            {"name": "LOG_LEVEL", "value": "info"},
        ],
        cpu="250m",
    )
    nodes = [
        Node("prod-worker-02", "10.0.1.22", "10.42.2."),
        Node("prod-worker-04", "10.0.1.24", "10.42.4."),
        Node("prod-worker-06", "10.0.2.16", "10.42.6."),
        Node("prod-worker-07", "10.0.2.17", "10.42.7."),
    ]
    rs10 = make_rs(ids, app, 10, "4.9.2", utc("2025-02-18T13:30:05Z"), 0)
    rs11 = make_rs(ids, app, 11, "4.9.3", utc("2025-02-26T11:02:47Z"), 0)
    rs12 = make_rs(ids, app, 12, "5.0.0", rollout, 4)
    deployment = deployment_obj(
        ids,
        app,
        rs12,
        created=utc("2023-10-02T08:15:39Z"),
        replicas=4,
        generation=23,
        progressed=t("09:42:55"),
    )
    digest = ids.hex(64)
    created_at = [rollout, rollout, t("09:42:19"), t("09:42:31")]
    crash_at = t("09:51:13")
    pods: list[PodRec] = []
    for i, created in enumerate(created_at):
        first_start = created + timedelta(seconds=5)
        ready = created + timedelta(seconds=12)
        if i == 1:  # one container crashed once and was restarted
            last_terminated = {
                "exitCode": 1,
                "reason": "Error",
                "startedAt": iso(first_start),
                "finishedAt": iso(crash_at),
                "containerID": f"containerd://{ids.hex(64)}",
            }
            restarted = crash_at + timedelta(seconds=1)
            pods.append(
                make_pod(
                    ids,
                    rs12,
                    nodes[i],
                    created,
                    restarted,
                    restarted + timedelta(seconds=9),
                    digest,
                    1,
                    last_terminated,
                )
            )
            pods[-1].extra["first_start"] = first_start
        else:
            pods.append(make_pod(ids, rs12, nodes[i], created, first_start, ready, digest))
            pods[-1].extra["first_start"] = first_start
    old_pods = [f"{rs11.name}-{ids.token(5)}" for _ in range(4)]
    old_uids = [ids.uid() for _ in range(4)]

    snap.add(
        "kubernetes/deployments.json",
        dump(k8s_list("DeploymentList", "apps/v1", [deployment], ids)),
    )
    snap.add(
        "kubernetes/replicasets.json",
        dump(
            k8s_list(
                "ReplicaSetList",
                "apps/v1",
                [
                    replicaset_obj(ids, app, rs, deployment, max_surge=1)
                    for rs in (rs10, rs11, rs12)
                ],
                ids,
            )
        ),
    )
    snap.add(
        "kubernetes/pods.json",
        dump(k8s_list("PodList", "v1", [pod_obj(ids, app, p) for p in pods], ids)),
    )

    dep_uid = deployment["metadata"]["uid"]
    events: list[dict[str, Any]] = []

    def scaled(when: datetime, rs: RS, up: bool, to: int, frm: int | None) -> None:
        verb = "up" if up else "down"
        msg = f"Scaled {verb} replica set {rs.name} to {to}" + (f" from {frm}" if frm else "")
        events.append(
            event_obj(
                ids,
                kind="Deployment",
                name=service,
                uid=dep_uid,
                reason="ScalingReplicaSet",
                message=msg,
                first=when,
                component="deployment-controller",
            )
        )

    scaled(rollout, rs12, True, 1, None)
    scaled(rollout, rs11, False, 3, 4)
    scaled(rollout, rs12, True, 2, 1)
    scaled(t("09:42:19"), rs11, False, 2, 3)
    scaled(t("09:42:19"), rs12, True, 3, 2)
    scaled(t("09:42:31"), rs11, False, 1, 2)
    scaled(t("09:42:31"), rs12, True, 4, 3)
    scaled(t("09:42:44"), rs11, False, 0, 1)
    for p in pods:
        events.append(
            event_obj(
                ids,
                kind="ReplicaSet",
                name=rs12.name,
                uid=rs12.uid,
                reason="SuccessfulCreate",
                message=f"Created pod: {p.name}",
                first=p.created,
                component="replicaset-controller",
            )
        )
        events.extend(pod_start_events(ids, app, p, pulled=True, pull_seconds=1.8 + rng.random()))
        fp = f"spec.containers{{{app.name}}}"
        first_start = p.extra["first_start"]
        for reason, msg in (
            ("Created", f"Created container {app.name}"),
            ("Started", f"Started container {app.name}"),
        ):
            events.append(
                event_obj(
                    ids,
                    kind="Pod",
                    name=p.name,
                    uid=p.uid,
                    reason=reason,
                    message=msg,
                    first=first_start - timedelta(seconds=1 if reason == "Created" else 0),
                    last=p.started if p.restarts else None,
                    count=1 + p.restarts,
                    component="kubelet",
                    host=p.node.name,
                    field_path=fp,
                )
            )
        if p.restarts:
            events.append(
                event_obj(
                    ids,
                    kind="Pod",
                    name=p.name,
                    uid=p.uid,
                    reason="Pulled",
                    message=f'Container image "{p.rs.image}" already present on machine',
                    first=p.started,
                    component="kubelet",
                    host=p.node.name,
                    field_path=fp,
                )
            )
    for when, name, uid in zip(
        [t("09:42:07"), t("09:42:19"), t("09:42:31"), t("09:42:44")],
        old_pods,
        old_uids,
        strict=True,
    ):
        events.append(
            event_obj(
                ids,
                kind="ReplicaSet",
                name=rs11.name,
                uid=rs11.uid,
                reason="SuccessfulDelete",
                message=f"Deleted pod: {name}",
                first=when,
                component="replicaset-controller",
            )
        )
        events.append(
            event_obj(
                ids,
                kind="Pod",
                name=name,
                uid=uid,
                reason="Killing",
                message=f"Stopping container {app.name}",
                first=when,
                component="kubelet",
                host=nodes[old_pods.index(name)].name,
                field_path=f"spec.containers{{{app.name}}}",
            )
        )
    events.sort(key=lambda e: (e["firstTimestamp"], e["metadata"]["name"]))
    snap.add("kubernetes/events.json", dump(k8s_list("EventList", "v1", events, ids)))

    # --- logs: the new pods' containers from their start to 10:00
    endpoints = [
        Endpoint("/api/products", "GET", 0.6, 200, 38),
        Endpoint("/api/categories", "GET", 0.15, 200, 12),
        Endpoint("/api/search", "GET", 0.25, 200, 55),
    ]
    errors_from = int(t("09:43").timestamp() * 1000)
    end_ms = int(now.timestamp() * 1000)

    def run_log(start_ms: int, stop_ms: int, crash: bool) -> str:
        lines = [
            line(start_ms, "INFO", event="startup", version="5.0.0"),
            line(
                start_ms + 850 + rng.randrange(0, 300),
                "INFO",
                event="cache_warm",
                entries=18000 + rng.randrange(0, 900),
            ),
            line(start_ms + 2400 + rng.randrange(0, 400), "INFO", event="listening", port=8080),
        ]
        first_req = start_ms + 7000
        for ms in request_times(rng, first_req, stop_ms, lambda _s: 25.0):
            ep = weighted(rng, [(e, e.weight) for e in endpoints])
            if ms >= errors_from and ep.path == "/api/products" and rng.random() < 0.17:
                kind = "NullPointerError" if rng.random() < 0.65 else "SerializationError"
                dur = int(ep.median_ms * math.exp(0.5 * rng.gauss(0, 1)))
                lines.append(
                    line(
                        ms,
                        "ERROR",
                        method=ep.method,
                        endpoint=ep.path,
                        status=500,
                        duration_ms=dur,
                        error=kind,
                    )
                )
                continue
            dur = int(ep.median_ms * 1.2 * math.exp(0.45 * rng.gauss(0, 1)))
            lines.append(
                line(
                    ms,
                    "INFO",
                    method=ep.method,
                    endpoint=ep.path,
                    status=ep.ok_status,
                    duration_ms=dur,
                )
            )
        if crash:
            lines.append(
                line(
                    stop_ms,
                    "CRITICAL",
                    event="worker_crashed",
                    worker="price_refresher",
                    error="NullPointerError",
                )
            )
        return "".join(text + "\n" for text in lines)

    for p in pods:
        first_ms = int(p.extra["first_start"].timestamp() * 1000) + rng.randrange(200, 900)
        if p.restarts:
            snap.add(
                f"logs/{p.name}.previous.log",
                run_log(first_ms, int(crash_at.timestamp() * 1000) - 150, True),
            )
            first_ms = int(p.started.timestamp() * 1000) + rng.randrange(200, 900)
        snap.add(f"logs/{p.name}.log", run_log(first_ms, end_ms, False))

    # --- PostgreSQL and Redis: healthy
    pids = pid_source(rng, 7_100)
    rows = pg_background(pids, utc("2025-01-29T04:02:11Z"))
    pod_ips = [p.ip for p in pods]
    queries = [
        "SELECT id, sku, name, price_cents, currency FROM products WHERE id = ANY($1)",
        "SELECT id, name, parent_id FROM categories WHERE parent_id = $1",
        "SELECT product_id, quantity FROM inventory WHERE product_id = ANY($1)",
    ]
    for i in range(50):
        qs = now - timedelta(microseconds=rng.randrange(1_000, 20_000_000))
        state = "active" if i < 8 else ("idle in transaction" if i < 11 else "idle")
        ms = rng.randrange(1, 80)
        wt, we = (None, None) if state == "active" else ("Client", "ClientRead")
        rows.append(
            pg_row(
                pid=pids(),
                datname="catalog",
                usename="catalog_app",
                app="catalog",
                client_addr=pod_ips[i % 4],
                client_port=rng.randrange(32768, 60999),
                backend_start=pods[i % 4].started + timedelta(seconds=rng.randrange(2, 30)),
                xact_start=qs if state != "idle" else None,
                query_start=qs if state == "idle" else now - timedelta(milliseconds=ms),
                state_change=qs,
                state=state,
                wait_event_type=wt,
                wait_event=we,
                query=queries[rng.randrange(len(queries))] if state != "idle" else "COMMIT",
            )
        )
    rows.append(
        pg_row(
            pid=pids(),
            datname="catalog",
            usename="postgres",
            app="opsnb",
            client_addr="10.0.9.14",
            client_port=rng.randrange(32768, 60999),
            backend_start=now - timedelta(seconds=1),
            xact_start=now,
            query_start=now,
            state_change=now,
            state="active",
            wait_event_type=None,
            wait_event=None,
            query="SELECT * FROM pg_stat_activity",
        )
    )
    snap.add(
        "postgres/activity.json",
        dump({"captured_at": iso(now), "max_connections": 200, "activity": rows}),
    )
    snap.add(
        "redis/info.json",
        dump(
            {
                "captured_at": iso(now),
                "info": redis_info(
                    rng,
                    captured=now,
                    uptime_days=33,
                    hits=2_904_117_560,
                    misses=81_933_905,
                    clients=41,
                    used_memory=905_221_880,
                    ops=2_870,
                    keys=1_208_774,
                    run_id=ids.hex(40),
                ),
            }
        ),
    )

    deps = {
        "postgres": "postgresql://postgres.production.svc.cluster.local:5432/catalog",
        "redis": "redis://redis.production.svc.cluster.local:6379/1",
        "search": "http://search.production.svc.cluster.local:9200/_cluster/health",
    }
    snap.add(
        "dependencies.json",
        dump(
            {
                "postgres": dependency(
                    deps["postgres"], "TCP connect ok; accepting connections", 1.4
                ),
                "redis": dependency(deps["redis"], "PING -> PONG", 0.5),
                "search": dependency(deps["search"], "HTTP 200; cluster status green", 12.7),
            }
        ),
    )
    snap.add(
        "snapshot.json",
        dump(
            snapshot_header(
                service,
                start,
                end,
                now,
                "Catalog, 2025-03-04: HighErrorRate fired at 09:45 UTC. Evidence captured at 10:00 "
                "UTC; metrics are recorded until 10:30 UTC.",
                deps,
            )
        ),
    )
    return snap


BUILDERS: dict[str, Callable[[], Snapshot]] = {"payments": build_payments, "catalog": build_catalog}


def build(out: Path = DEMO_SNAPSHOTS) -> list[Path]:
    """Write every incident under ``out/<service>/`` (replacing those folders)."""
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for builder in BUILDERS.values():
        written.extend(builder().write(out))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m opsnb.demo.build_incidents",
        description="Regenerate the demo target's recorded incidents (deterministic).",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=DEMO_SNAPSHOTS,
        help=f"folder of snapshots (default: {DEMO_SNAPSHOTS})",
    )
    args = parser.parse_args(argv)
    written = build(args.out)
    total = sum(p.stat().st_size for p in written)
    print(f"wrote {len(written)} files ({total / 1024:.0f} KiB) under {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
