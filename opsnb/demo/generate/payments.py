"""Incident ``payments`` (2025-01-15): database connection pool exhaustion.

The blameless postmortem template's example: a 3x traffic spike from 14:00 UTC exhausts the
database connection pool (max 100) at 14:15, errors from 14:18, ``HighErrorRate`` fires at
14:20, the pool is scaled from 100 to 300 at 14:40, errors recover by 15:05 and the incident
is resolved at 15:15. Evidence is captured at 14:30 (``now``); metrics run on to 15:30 for
the postmortem. The error rate and pool series pass exactly through the template's
"Appendix: Supporting Data" tables. No deployment happened: revision 7 is a week old.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

from .common import Curve, Json, at, jitter, metric_series, minutes, ramp, utc, weighted
from .datastores import (
    pg_activity,
    pg_background,
    pg_row,
    pg_self_row,
    pid_source,
    redis_capture,
    redis_info,
)
from .events import add_events, kubelet_event
from .kube import (
    App,
    Ids,
    Node,
    PodRec,
    add_workload,
    deployment_obj,
    make_pod,
    make_rs,
    service_app,
)
from .logs import Endpoint, line, request_line, request_times
from .snapshot import Dependency, Snapshot, dump_metrics

SERVICE = "payments"
DAY = "2025-01-15"

# The postmortem template's appendix, minute -> figure (error rate as a fraction).
ERROR_RATE: dict[str, float] = {
    "14:00": 0.0001, "14:10": 0.0005, "14:15": 0.025, "14:20": 0.152, "14:25": 0.187,
    "14:30": 0.163, "14:40": 0.121, "14:50": 0.052, "15:00": 0.008, "15:10": 0.0003,
}  # fmt: skip
# minute -> (active, idle, waiting)
POOL: dict[str, tuple[int, int, int]] = {
    "14:00": (45, 55, 0), "14:10": (78, 22, 0), "14:15": (98, 2, 15), "14:20": (100, 0, 89),
    "14:30": (100, 0, 156), "14:40": (145, 155, 0), "14:50": (120, 180, 0),
}  # fmt: skip

DEPENDENCIES = {
    "postgres": Dependency(
        "postgresql://postgres.production.svc.cluster.local:5432/payments",
        "TCP connect ok; accepting connections",
        1.9,
    ),
    "redis": Dependency("redis://redis.production.svc.cluster.local:6379/0", "PING -> PONG", 0.6),
    "payments-provider": Dependency(
        "https://api.payments-provider.example.com/health", "HTTP 200", 84.2
    ),
}


def t(hhmm: str) -> datetime:
    return at(DAY, hhmm)


START, END, NOW = t("13:00"), t("15:30"), t("14:30")
SPIKE_AT = t("13:59:30").timestamp()  # traffic triples
SCALED_AT = int(t("14:40").timestamp())  # the pool goes from 100 to 300

ERROR_CURVE = Curve(
    [(t("13:00"), 0.0001), (t("13:59"), 0.0001)]
    + [(t(m), v) for m, v in ERROR_RATE.items()]
    + [(t("15:16"), 0.00011), (t("15:30"), 0.0001)]
)
# requests queued for a connection, until the pool is scaled
WAITING_CURVE = Curve(
    [
        (t("13:00"), 0),
        (t("14:13"), 0),
        (t("14:15"), 15),
        (t("14:20"), 89),
        (t("14:30"), 156),
        (t("14:39"), 162),
    ]
)


def build_payments() -> Snapshot:
    # Each step below draws from these two streams in turn: their order is part of the output.
    rng = random.Random(20250115)
    ids = Ids(random.Random(150_115), resource_version=48_213_377)
    snap = Snapshot(SERVICE)
    snap.add("metrics.json", dump_metrics(metrics(rng)))
    pods = kubernetes(snap, rng, ids)
    for p in pods:
        snap.add(f"logs/{p.name}.log", pod_log(rng))
    snap.add_json("postgres/activity.json", pg_activity(NOW, 100, postgres_activity(rng, pods)))
    info = redis_info(
        rng,
        captured=NOW,
        uptime_days=41,
        hits=1_412_338_201,
        misses=90_149_246,
        clients=64,
        used_memory=1_318_553_112,
        ops=4_120,
        keys=2_318_442,
        run_id=ids.hex(40),
    )
    snap.add_json("redis/info.json", redis_capture(NOW, info))
    snap.add_header(
        start=START,
        end=END,
        now=NOW,
        description=(
            "Payments, 2025-01-15: HighErrorRate fired at 14:20 UTC. Evidence captured at "
            "14:30 UTC, mid-incident; metrics are recorded until 15:30 UTC for the postmortem."
        ),
        dependencies=DEPENDENCIES,
    )
    return snap


def metrics(rng: random.Random) -> list[Json]:
    """13:00 to 15:30: the appendix figures, traffic tripling, latency, the pool."""
    times = minutes(START, END)
    exact_err = {int(t(m).timestamp()): v for m, v in ERROR_RATE.items()}
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
    error_rate: list[float] = []
    latency: list[float] = []
    throughput: list[float] = []
    for ts in times:
        if ts in exact_err:
            err = exact_err[ts]
        else:
            level = ERROR_CURVE(ts)
            err = level * jitter(rng, 0.2 if level < 0.0004 else 0.03)
        error_rate.append(err)
        latency.append(lat_curve(ts) * jitter(rng, 0.03))
        throughput.append(ramp(ts, 330.0, 1000.0, SPIKE_AT) * jitter(rng, 0.015))

    shares = [("/api/checkout", 0.56), ("/api/payments", 0.37), ("/api/refunds", 0.07)]
    by_endpoint: dict[str, list[float]] = {p: [] for p, _ in shares}
    for err, rps in zip(error_rate, throughput, strict=True):
        w = [s * jitter(rng, 0.1) for _, s in shares]
        total = sum(w)
        for (path, _), wi in zip(shares, w, strict=True):
            by_endpoint[path].append(err * rps * wi / total)

    return metric_series(
        SERVICE,
        times,
        error_rate=error_rate,
        latency=latency,
        throughput=throughput,
        by_endpoint=by_endpoint,
        pool=pool_series(rng, times),
    )


def pool_series(rng: random.Random, times: list[int]) -> dict[str, list[str]]:
    """Active + idle is the pool's max: 100 until 14:40, then 300."""
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
    exact_pool = {int(t(m).timestamp()): v for m, v in POOL.items()}
    pool: dict[str, list[str]] = {"active": [], "idle": [], "waiting": []}
    for ts in times:
        pool_max = 100 if ts < SCALED_AT else 300
        if ts in exact_pool:
            active, idle, waiting = exact_pool[ts]
        else:
            curve = before if ts < SCALED_AT else after
            noise = 3 if ts < t("14:00").timestamp() else (1 if ts < SCALED_AT else 2)
            active = round(curve(ts)) + rng.randrange(-noise, noise + 1)
            active = max(0, min(pool_max, active))
            idle = pool_max - active
            queued = WAITING_CURVE(ts) if ts < SCALED_AT else 0.0
            waiting = max(0, round(queued * jitter(rng, 0.04))) if queued >= 0.5 else 0
        pool["active"].append(str(active))
        pool["idle"].append(str(idle))
        pool["waiting"].append(str(waiting))
    return pool


def kubernetes(snap: Snapshot, rng: random.Random, ids: Ids) -> list[PodRec]:
    """As seen at 14:30: revision 7 from a week ago, readiness probes failing since 14:16."""
    app = service_app(
        SERVICE,
        redis_url=DEPENDENCIES["redis"].url,
        upstream=("PAYMENTS_PROVIDER_URL", "https://api.payments-provider.example.com"),
        cpu="500m",
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
    add_workload(snap, ids, app, deployment, [rs5, rs6, rs7], pods, max_surge=2)
    add_events(snap, ids, unhealthy_events(rng, ids, app, pods))
    return pods


def unhealthy_events(rng: random.Random, ids: Ids, app: App, pods: list[PodRec]) -> list[Json]:
    events = []
    for i, p in enumerate(pods):
        first = t("14:16") + timedelta(seconds=4 + 9 * i + rng.randrange(0, 8))
        last = t("14:29") + timedelta(seconds=rng.randrange(0, 55))
        events.append(
            kubelet_event(
                ids,
                app,
                p,
                reason="Unhealthy",
                type_="Warning",
                message="Readiness probe failed: HTTP probe failed with statuscode: 503",
                first=first,
                last=last,
                count=rng.randrange(14, 42),
            )
        )
    return events


ENDPOINTS = [
    Endpoint("/api/checkout", "POST", 0.45, 200, 62),
    Endpoint("/api/payments", "POST", 0.42, 201, 48),
    Endpoint("/api/refunds", "POST", 0.13, 201, 55),
]


def pod_log(rng: random.Random) -> str:
    """13:45 to 14:30 (now): a sampled request log plus pool-wait warnings."""
    by_path = {e.path: e for e in ENDPOINTS}
    log_start = int(t("13:45").timestamp() * 1000)
    log_end = int(NOW.timestamp() * 1000)
    first_error = t("14:15").timestamp()

    def per_minute(sec: float) -> float:
        return 8.0 if sec < SPIKE_AT else 12.0

    lines: list[tuple[int, str]] = []
    for ms in request_times(rng, log_start, log_end, per_minute):
        sec = ms / 1000
        queued = WAITING_CURVE(sec)
        p_err = ERROR_CURVE(sec) if sec >= first_error else 0.0
        if rng.random() < p_err:
            if rng.random() < 0.84:
                kind = "PoolTimeoutError"
                ep = by_path[weighted(rng, [("/api/checkout", 0.6), ("/api/payments", 0.4)])]
                status, dur = 503, 1500 + rng.randrange(0, 90)
            else:
                kind = "DatabaseConnectionError"
                ep = by_path[weighted(rng, [(e.path, e.weight) for e in ENDPOINTS])]
                status, dur = 500, rng.randrange(20, 3000)
            lines.append((ms, request_line(ms, ep, status, dur, error=kind)))
            continue
        ep = weighted(rng, [(e, e.weight) for e in ENDPOINTS])
        elapsed = ep.median_ms * math.exp(0.45 * rng.gauss(0, 1))
        if queued > 0.5:
            elapsed += rng.random() * min(1450.0, queued * 9)
        status = ep.ok_status
        if ep.path == "/api/payments" and rng.random() < 0.02:
            status = 402
        lines.append((ms, request_line(ms, ep, status, int(elapsed))))
    # pool wait warnings while requests queue for a connection
    ms = log_start + rng.randrange(0, 20000)
    while ms < log_end:
        queued = WAITING_CURVE(ms / 1000)
        if queued >= 0.5:
            n = max(1, round(queued * jitter(rng, 0.1)))
            lines.append((ms, line(ms, "WARN", event="pool_wait", waiting=n)))
        ms += 15000 + rng.randrange(0, 10000)
    lines.sort(key=lambda x: x[0])
    return "".join(text + "\n" for _, text in lines)


REPORT_QUERY = (
    "SELECT p.merchant_id, date_trunc('hour', p.created_at) AS hour, count(*), "
    "sum(p.amount_cents) FROM payments p JOIN ledger_entries le ON le.payment_id = p.id "
    "WHERE p.created_at >= $1 GROUP BY 1, 2 ORDER BY 2"
)
# query, wait_event_type, wait_event
ACTIVE_QUERIES: list[tuple[str, str | None, str | None]] = [
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


def postgres_activity(rng: random.Random, pods: list[PodRec]) -> list[Json]:
    """``pg_stat_activity`` at 14:30: the pool's 100 connections are all in use."""
    pids = pid_source(rng, 18_400)
    pod_ips = [p.ip for p in pods]
    rows = pg_background(pids, utc("2024-11-20T03:12:44Z"))
    xid = 48_112_903

    def next_xid() -> int:
        nonlocal xid
        xid += rng.randrange(1, 60)
        return xid

    def client(
        *,
        xact_start: datetime | None,
        query_start: datetime,
        state_change: datetime,
        state: str,
        wait_event_type: str | None,
        wait_event: str | None,
        query: str,
        backend_xid: int | None = None,
        backend_xmin: int | None = None,
    ) -> Json:
        """A pool connection, opened at the pods' start or since the spike."""
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
            xact_start=xact_start,
            query_start=query_start,
            state_change=state_change,
            state=state,
            wait_event_type=wait_event_type,
            wait_event=wait_event,
            query=query,
            backend_xid=backend_xid,
            backend_xmin=backend_xmin,
        )

    def sec_before(hi: float, lo: float = 0.0) -> datetime:
        return NOW - timedelta(microseconds=int((lo + rng.random() * (hi - lo)) * 1e6))

    # slow report queries that hold their connections
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
                query=REPORT_QUERY,
                backend_xmin=next_xid() - 5000,
            )
        )
    # transactions the application left open
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
    for _ in range(38):
        q, wt, we = ACTIVE_QUERIES[rng.randrange(len(ACTIVE_QUERIES))]
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
    rows.append(pg_self_row(pids, rng, datname="payments", now=NOW, xmin=lambda: next_xid() - 10))
    return rows
