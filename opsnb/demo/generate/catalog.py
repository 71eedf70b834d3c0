"""Incident ``catalog`` (2025-03-04): a bad deployment.

Revision 12 (``catalog:5.0.0``) rolls out at 09:42 UTC and from 09:43 ``/api/products``
fails with ``NullPointerError`` / ``SerializationError`` (about 10% of all requests). Pool,
database, cache and dependencies are healthy. Captured at 10:00.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

from .common import Curve, Json, at, iso, jitter, metric_series, minutes, utc, weighted
from .datastores import (
    pg_activity,
    pg_background,
    pg_row,
    pg_self_row,
    pid_source,
    redis_capture,
    redis_info,
)
from .events import add_events, event_obj, kubelet_event, pod_start_events
from .kube import (
    RS,
    App,
    Ids,
    Node,
    PodRec,
    add_workload,
    container_field,
    deployment_obj,
    make_pod,
    make_rs,
    service_app,
)
from .logs import Endpoint, line, request_line, request_times
from .snapshot import Dependency, Snapshot, dump_metrics

SERVICE = "catalog"
DAY = "2025-03-04"
VERSION = "5.0.0"

DEPENDENCIES = {
    "postgres": Dependency(
        "postgresql://postgres.production.svc.cluster.local:5432/catalog",
        "TCP connect ok; accepting connections",
        1.4,
    ),
    "redis": Dependency("redis://redis.production.svc.cluster.local:6379/1", "PING -> PONG", 0.5),
    "search": Dependency(
        "http://search.production.svc.cluster.local:9200/_cluster/health",
        "HTTP 200; cluster status green",
        12.7,
    ),
}


def t(hhmm: str) -> datetime:
    return at(DAY, hhmm)


START, END, NOW = t("09:00"), t("10:30"), t("10:00")
ROLLOUT = t("09:42:07")
# the rolling update's steps: one new pod up, one old pod down
STEPS = [ROLLOUT, t("09:42:19"), t("09:42:31"), t("09:42:44")]
CRASH_AT = t("09:51:13")  # one new pod's container crashes once


def build_catalog() -> Snapshot:
    # Each step below draws from these two streams in turn: their order is part of the output.
    rng = random.Random(20250304)
    ids = Ids(random.Random(30_304), resource_version=71_902_114)
    snap = Snapshot(SERVICE)
    snap.add("metrics.json", dump_metrics(metrics(rng)))
    pods = kubernetes(snap, rng, ids)
    end_ms = int(NOW.timestamp() * 1000)
    for p in pods:
        first_ms = int(p.first_start.timestamp() * 1000) + rng.randrange(200, 900)
        if p.restarts:
            crash_ms = int(CRASH_AT.timestamp() * 1000) - 150
            snap.add(f"logs/{p.name}.previous.log", run_log(rng, first_ms, crash_ms, True))
            first_ms = int(p.started.timestamp() * 1000) + rng.randrange(200, 900)
        snap.add(f"logs/{p.name}.log", run_log(rng, first_ms, end_ms, False))
    snap.add_json("postgres/activity.json", pg_activity(NOW, 200, postgres_activity(rng, pods)))
    info = redis_info(
        rng,
        captured=NOW,
        uptime_days=33,
        hits=2_904_117_560,
        misses=81_933_905,
        clients=41,
        used_memory=905_221_880,
        ops=2_870,
        keys=1_208_774,
        run_id=ids.hex(40),
    )
    snap.add_json("redis/info.json", redis_capture(NOW, info))
    snap.add_header(
        start=START,
        end=END,
        now=NOW,
        description=(
            "Catalog, 2025-03-04: HighErrorRate fired at 09:45 UTC. Evidence captured at 10:00 "
            "UTC; metrics are recorded until 10:30 UTC."
        ),
        dependencies=DEPENDENCIES,
    )
    return snap


def metrics(rng: random.Random) -> list[Json]:
    """09:00 to 10:30: errors from 09:43 settle near 10%, almost all on /api/products."""
    times = minutes(START, END)
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
    error_rate: list[float] = []
    latency: list[float] = []
    throughput: list[float] = []
    for ts in times:
        base = err_level(ts)
        if ts >= t("09:48").timestamp():
            err = base * jitter(rng, 0.15)  # 8.5% .. 11.5%
        elif base < 0.0005:
            err = base * jitter(rng, 0.25)
        else:
            err = base * jitter(rng, 0.04)
        error_rate.append(err)
        latency.append(lat_curve(ts) * jitter(rng, 0.04))
        throughput.append(452.0 * jitter(rng, 0.02))
    by_endpoint: dict[str, list[float]] = {
        "/api/products": [],
        "/api/categories": [],
        "/api/search": [],
    }
    for err, rps in zip(error_rate, throughput, strict=True):
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
            value = min(baseline, err * rps) * w[path] / total
            by_endpoint[path].append(value)
            others += value
        by_endpoint["/api/products"].append(err * rps - others)
    pool: dict[str, list[str]] = {"active": [], "idle": [], "waiting": []}
    for _ in times:
        active = 20 + rng.randrange(-2, 3)
        pool["active"].append(str(active))
        pool["idle"].append(str(50 - active))
        pool["waiting"].append("0")
    return metric_series(
        SERVICE,
        times,
        error_rate=error_rate,
        latency=latency,
        throughput=throughput,
        by_endpoint=by_endpoint,
        pool=pool,
    )


def kubernetes(snap: Snapshot, rng: random.Random, ids: Ids) -> list[PodRec]:
    """At 10:00: revision 12 rolled out at 09:42 over revision 11's four pods."""
    app = service_app(
        SERVICE,
        redis_url=DEPENDENCIES["redis"].url,
        upstream=("SEARCH_URL", "http://search.production.svc.cluster.local:9200"),
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
    rs12 = make_rs(ids, app, 12, VERSION, ROLLOUT, 4)
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
    created_at = [ROLLOUT, ROLLOUT, t("09:42:19"), t("09:42:31")]
    pods: list[PodRec] = []
    for i, created in enumerate(created_at):
        first_start = created + timedelta(seconds=5)
        if i == 1:  # one container crashed once and was restarted
            last_terminated = {
                "exitCode": 1,
                "reason": "Error",
                "startedAt": iso(first_start),
                "finishedAt": iso(CRASH_AT),
                "containerID": f"containerd://{ids.hex(64)}",
            }
            restarted = CRASH_AT + timedelta(seconds=1)
            ready = restarted + timedelta(seconds=9)
            pod = make_pod(
                ids,
                rs12,
                nodes[i],
                created,
                restarted,
                ready,
                digest,
                restarts=1,
                last_terminated=last_terminated,
                first_start=first_start,
            )
        else:
            ready = created + timedelta(seconds=12)
            pod = make_pod(ids, rs12, nodes[i], created, first_start, ready, digest)
        pods.append(pod)
    old_pods = [f"{rs11.name}-{ids.token(5)}" for _ in range(4)]
    old_uids = [ids.uid() for _ in range(4)]
    add_workload(snap, ids, app, deployment, [rs10, rs11, rs12], pods, max_surge=1)

    events = rollout_events(ids, app, deployment, old=rs11, new=rs12)
    for p in pods:
        events.extend(new_pod_events(rng, ids, app, rs12, p))
    for i, (when, name, uid) in enumerate(zip(STEPS, old_pods, old_uids, strict=True)):
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
                host=nodes[i].name,
                field_path=container_field(app),
            )
        )
    add_events(snap, ids, events)
    return pods


def rollout_events(ids: Ids, app: App, deployment: Json, *, old: RS, new: RS) -> list[Json]:
    """The deployment controller's ``ScalingReplicaSet`` events, step by step."""
    steps: list[tuple[datetime, RS, int, int | None]] = [
        (STEPS[0], new, 1, None),
        (STEPS[0], old, 3, 4),
        (STEPS[0], new, 2, 1),
        (STEPS[1], old, 2, 3),
        (STEPS[1], new, 3, 2),
        (STEPS[2], old, 1, 2),
        (STEPS[2], new, 4, 3),
        (STEPS[3], old, 0, 1),
    ]
    events = []
    for when, rs, to, frm in steps:
        verb = "up" if rs is new else "down"
        msg = f"Scaled {verb} replica set {rs.name} to {to}" + (f" from {frm}" if frm else "")
        events.append(
            event_obj(
                ids,
                kind="Deployment",
                name=app.name,
                uid=deployment["metadata"]["uid"],
                reason="ScalingReplicaSet",
                message=msg,
                first=when,
                component="deployment-controller",
            )
        )
    return events


def new_pod_events(rng: random.Random, ids: Ids, app: App, rs: RS, p: PodRec) -> list[Json]:
    """Created by the ReplicaSet, scheduled, pulled, started (twice if it restarted)."""
    events = [
        event_obj(
            ids,
            kind="ReplicaSet",
            name=rs.name,
            uid=rs.uid,
            reason="SuccessfulCreate",
            message=f"Created pod: {p.name}",
            first=p.created,
            component="replicaset-controller",
        )
    ]
    events.extend(pod_start_events(ids, app, p, pulled=True, pull_seconds=1.8 + rng.random()))
    for reason, msg in (
        ("Created", f"Created container {app.name}"),
        ("Started", f"Started container {app.name}"),
    ):
        events.append(
            kubelet_event(
                ids,
                app,
                p,
                reason=reason,
                message=msg,
                first=p.first_start - timedelta(seconds=1 if reason == "Created" else 0),
                last=p.started if p.restarts else None,
                count=1 + p.restarts,
            )
        )
    if p.restarts:
        events.append(
            kubelet_event(
                ids,
                app,
                p,
                reason="Pulled",
                message=f'Container image "{p.rs.image}" already present on machine',
                first=p.started,
            )
        )
    return events


ENDPOINTS = [
    Endpoint("/api/products", "GET", 0.6, 200, 38),
    Endpoint("/api/categories", "GET", 0.15, 200, 12),
    Endpoint("/api/search", "GET", 0.25, 200, 55),
]


def run_log(rng: random.Random, start_ms: int, stop_ms: int, crash: bool) -> str:
    """One container's log: startup, then requests; /api/products fails from 09:43."""
    errors_from = int(t("09:43").timestamp() * 1000)
    lines = [
        line(start_ms, "INFO", event="startup", version=VERSION),
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
        ep = weighted(rng, [(e, e.weight) for e in ENDPOINTS])
        if ms >= errors_from and ep.path == "/api/products" and rng.random() < 0.17:
            kind = "NullPointerError" if rng.random() < 0.65 else "SerializationError"
            dur = int(ep.median_ms * math.exp(0.5 * rng.gauss(0, 1)))
            lines.append(request_line(ms, ep, 500, dur, error=kind))
            continue
        dur = int(ep.median_ms * 1.2 * math.exp(0.45 * rng.gauss(0, 1)))
        lines.append(request_line(ms, ep, ep.ok_status, dur))
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


def postgres_activity(rng: random.Random, pods: list[PodRec]) -> list[Json]:
    """``pg_stat_activity`` at 10:00: a healthy pool of 50 connections, mostly idle."""
    pids = pid_source(rng, 7_100)
    rows = pg_background(pids, utc("2025-01-29T04:02:11Z"))
    pod_ips = [p.ip for p in pods]
    queries = [
        "SELECT id, sku, name, price_cents, currency FROM products WHERE id = ANY($1)",
        "SELECT id, name, parent_id FROM categories WHERE parent_id = $1",
        "SELECT product_id, quantity FROM inventory WHERE product_id = ANY($1)",
    ]
    for i in range(50):
        qs = NOW - timedelta(microseconds=rng.randrange(1_000, 20_000_000))
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
                query_start=qs if state == "idle" else NOW - timedelta(milliseconds=ms),
                state_change=qs,
                state=state,
                wait_event_type=wt,
                wait_event=we,
                query=queries[rng.randrange(len(queries))] if state != "idle" else "COMMIT",
            )
        )
    rows.append(pg_self_row(pids, rng, datname="catalog", now=NOW))
    return rows
