"""The lab's faults: each one changes the real world around ``my-service`` the way an incident
would, so it shows in real metrics, logs, PostgreSQL sessions and Kubernetes objects.

``none``
    Nothing wrong: the good release, every connection free, the dependency answering.
``bad-deploy``
    Release ``2.0.0-bad`` (a new Deployment revision): 40% of ``/api/*`` requests fail with
    500 ``BadDeployError``. Ends with any template that is not a ``-bad`` image: a rollback
    (``kubectl rollout undo``) or a new release.
``pool-exhaustion``
    A batch job inside the service takes every connection of the service's own pool
    (``application_name=my-service``) and leaves them in long transactions: some ``active``
    in ``SELECT pg_sleep(900)``, the others ``idle in transaction`` after a ``SELECT`` on
    ``orders``. Requests then queue for a connection (``database_connection_pool_size
    {state="waiting"} > 0``, ``WARN event=pool_wait`` lines) and those needing the database
    fail after the pool timeout (2 s) with 503 ``PoolTimeoutError``. Ends when no session is
    held any more: a runbook terminating the backends (``pg_terminate_backend``), or new pods
    replacing the ones that held them (a process that dies closes its sessions): ``kubectl
    rollout restart``, a rollback, deleting the pods, or ``kubectl set env DB_POOL_SIZE=N``,
    which also resizes the service's pool to N (at most 40). Scaling keeps the old pods, and
    the sessions.
``slow-queries``
    A third of the item lookups that reach PostgreSQL run a slow query (0.3 to 0.8 s,
    ``SELECT i.id, ... CROSS JOIN LATERAL pg_sleep(0.52) WHERE i.id = 42``, literal values
    so it can be EXPLAINed as ``pg_stat_activity`` shows it): p99 latency goes over the 500 ms
    SLO, errors stay rare. Terminating a slow backend fails that one request (503
    ``DatabaseConnectionError``); the next lookups are slow again. No Kubernetes change ends
    it: only clearing the fault does.
``crash-loop``
    Release ``2.1.0`` with its memory limit lowered to 256Mi, while that release needs 384Mi:
    its pods are OOMKilled over and over. A kubelet stand-in (``tick``) kills each pod of the
    current revision after 1.5 to 3 s of running: ``restartCount`` + 1, ``lastState.terminated``
    ``{reason: OOMKilled, exitCode: 137}``, ``state.waiting.reason: CrashLoopBackOff`` and not
    ready for a back-off of 1, 2, then 4 s; ``OOMKilling`` and ``BackOff`` Warning events; the
    killed container's log (``previous=True``) ends with a ``CRITICAL ... error=
    OutOfMemoryError`` line. The service's ``/metrics`` carries kube-state-metrics' series
    (``kube_pod_container_status_restarts_total`` and friends, :class:`KubeStateMetrics`), so
    ``PodCrashLooping`` fires. Not-ready pods leave the Service: fewer pods serve, and when
    none is ready ``/api/*`` answers 503 ``NoReadyPodsError``.
    **The rule:** a pod crash-loops while the Deployment's template runs the ``2.1.0`` image
    with ``resources.limits.memory`` below 384Mi. So it ends with a rollback to another
    image, or a patch raising the limit to 384Mi or more (e.g. back to 512Mi); a rollout
    restart, a scale or deleting the pods does not end it (the new pods crash too).
``dependency-down``
    The ``payments-provider`` dependency accepts connections and never answers. Every
    ``POST /api/checkout`` waits for the 0.5 s timeout and fails with 504
    ``DependencyTimeoutError``; its ``/health`` does not answer either. With
    ``CIRCUIT_BREAKER_ENABLED=true`` in the template (``kubectl set env``) the service falls
    back (the order is taken, its payment ``deferred``) and, after 3 failures in a row, stops
    calling for 5 s at a time: no 5xx, though the dependency is still down (the fault stays in
    effect until cleared).
``traffic-spike``
    The load generator sends 3x its rate. Throughput is about 3x the minutes before; scaling
    the Deployment does not change the lab's capacity, only clearing ends it.

``inject`` of a fault clears the previous one first; ``clear()`` ends every mechanism here and
the orchestrator restores the good pod template (image, env, resources as seeded).
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import select
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Protocol

import psycopg
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from psycopg_pool import ConnectionPool, PoolTimeout

from .app import SERVICE, LabApp, SlowQuery, format_log_line
from .traffic import Traffic

CONTAINER = SERVICE
BAD_VERSION = "2.0.0-bad"
OOM_VERSION = "2.1.0"
OOM_MEMORY_LIMIT = "256Mi"  # what release 2.1.0 ships with
OOM_MEMORY_NEEDED = "384Mi"  # what it really needs: a lower limit means OOMKilled
SPIKE_FACTOR = 3.0

FAULTS: dict[str, str] = {
    "none": "no fault: the good release, free connections, the dependency up, normal traffic",
    "bad-deploy": f"release {BAD_VERSION}: 40% of /api/* requests fail with BadDeployError",
    "pool-exhaustion": "long transactions hold every pooled connection: requests wait, "
    "then fail with PoolTimeoutError",
    "slow-queries": "a third of the item lookups run a 0.3-0.8 s query: p99 over 500 ms",
    "crash-loop": f"release {OOM_VERSION} with a {OOM_MEMORY_LIMIT} memory limit: pods "
    f"OOMKilled, CrashLoopBackOff (fixed by a limit >= {OOM_MEMORY_NEEDED} or a rollback)",
    "dependency-down": "payments-provider stops answering: /api/checkout fails with "
    "DependencyTimeoutError (falls back with CIRCUIT_BREAKER_ENABLED=true)",
    "traffic-spike": f"the load generator sends {SPIKE_FACTOR:g}x its rate",
}


class LabHandle(Protocol):
    """What a fault may use of the running lab (``orchestrator.Lab``)."""

    rps: float
    app: LabApp | None
    traffic: Traffic | None
    payments: PaymentsProvider | None
    kube: Any

    def release(
        self, version: str, change_cause: str, *, memory_limit: str | None = None
    ) -> None: ...

    def image(self) -> str: ...

    def template(self) -> dict[str, Any]: ...

    def revision_pods(self) -> list[dict[str, Any]]: ...


# --- quantities -----------------------------------------------------------------------------

_QUANTITY = re.compile(r"^\s*([0-9.]+)\s*([KMGTPE]i?|k|m)?\s*$")
_FACTORS = {None: 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15,
            "E": 1e18, "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40,
            "Pi": 2.0**50, "Ei": 2.0**60}  # fmt: skip


def memory_bytes(quantity: Any) -> float | None:
    """A Kubernetes memory quantity (``256Mi``, ``1Gi``, ``512M``, ``536870912``) in bytes."""
    match = _QUANTITY.match(str(quantity)) if quantity is not None else None
    if not match:
        return None
    try:
        return float(match.group(1)) * _FACTORS[match.group(2)]
    except ValueError:
        return None


def container_of(template: Mapping[str, Any]) -> dict[str, Any]:
    for c in (template.get("spec") or {}).get("containers") or []:
        if c.get("name") == CONTAINER:
            return dict(c)
    return {}


def memory_limit(template: Mapping[str, Any]) -> float | None:
    resources = container_of(template).get("resources") or {}
    return memory_bytes((resources.get("limits") or {}).get("memory"))


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the payments-provider dependency -------------------------------------------------------


class PaymentsProvider:
    """A small real HTTP dependency: ``GET /health`` and ``POST /v1/charges``.

    ``hang()`` keeps accepting connections but answers nothing (a hung upstream: callers
    find out only through their timeouts); ``recover()`` answers again."""

    def __init__(self, port: int = 0, *, hang_limit: float = 30.0) -> None:
        self.port = port
        self.hang_limit = hang_limit
        self.answering = threading.Event()
        self.answering.set()
        self.charges = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> PaymentsProvider:
        handler = type("PaymentsHandler", (_PaymentsHandler,), {"provider": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="payments-provider",
            daemon=True,
        ).start()
        return self

    def stop(self) -> None:
        self.answering.set()  # let hung handlers go
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def hang(self) -> None:
        self.answering.clear()

    def recover(self) -> None:
        self.answering.set()

    def charge(self) -> dict[str, Any]:
        with self._lock:
            self.charges += 1
        return {"id": f"ch_{uuid.uuid4().hex[:16]}", "status": "succeeded"}


class _PaymentsHandler(BaseHTTPRequestHandler):
    provider: PaymentsProvider
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "payments-provider/lab"

    def do_GET(self) -> None:
        if self.path.rstrip("/") == "/health":
            self._answer(200, {"status": "ok"})
        else:
            self._answer(404, {"error": "not found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if self.path.rstrip("/") == "/v1/charges":
            self._answer(200, None)
        else:
            self._answer(404, {"error": "not found"})

    def _answer(self, status: int, body: Any) -> None:
        if not self.provider.answering.is_set():
            # hung: hold the request without a word, then drop the connection
            self.provider.answering.wait(self.provider.hang_limit)
            self.close_connection = True
            return
        payload = json.dumps(self.provider.charge() if body is None else body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError):  # callers that timed out hang up
            super().handle()

    def log_message(self, format: str, *args: Any) -> None:
        pass


# --- pool exhaustion: long transactions on the service's own connections --------------------

IDLE_IN_TRANSACTION_QUERY = (
    "/* export-orders */ SELECT id, item_id, quantity FROM orders ORDER BY id DESC LIMIT 100"
)
ACTIVE_QUERY = "/* order-report */ SELECT pg_sleep(900)"


class ConnectionHog:
    """Takes ``holders`` connections from ``pool`` and keeps each in an open transaction until
    :meth:`release`: the first ``active`` ones run a long statement, the others sit ``idle in
    transaction``. A holder whose session ends from outside (``pg_terminate_backend``) gives
    its broken connection back, and the pool replaces it."""

    def __init__(self, pool: ConnectionPool, holders: int, active: int = 2) -> None:
        self.pool = pool
        self.holders = holders
        self.active = min(active, holders)
        self._active: list[psycopg.Connection[Any]] = []
        self._held = 0
        self._pending = 0  # holders still waiting for their connection
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._threads: list[threading.Thread] = []
        self._all_held = threading.Event()

    def start(self, timeout: float = 10.0) -> ConnectionHog:
        self._pending = self.holders
        for i in range(self.holders):
            t = threading.Thread(target=self._hold, args=(i < self.active,), daemon=True,
                                 name=f"pool-hog-{i}")  # fmt: skip
            t.start()
            self._threads.append(t)
        self._all_held.wait(timeout)
        return self

    def holding(self) -> int:
        """How many sessions are still held."""
        with self._lock:
            return self._held

    def engaged(self) -> bool:
        """Still holding a session, or still waiting for one (in-flight requests may keep
        connections a little longer than the start waited)."""
        with self._lock:
            return self._held + self._pending > 0

    def release(self, timeout: float = 5.0) -> None:
        """Commit nothing, roll everything back, give the connections back."""
        self._stop.set()
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")
        deadline = time.monotonic() + timeout
        while any(t.is_alive() for t in self._threads) and time.monotonic() < deadline:
            with self._lock:
                running = list(self._active)
            for conn in running:  # again each round: a statement may have just begun
                with contextlib.suppress(Exception):
                    conn.cancel_safe(timeout=1.0)
            for t in self._threads:
                t.join(0.1)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _hold(self, active: bool) -> None:
        try:
            conn = self.pool.getconn(timeout=30.0)
        except (PoolTimeout, psycopg.Error):
            with self._lock:
                self._pending -= 1
            return
        with self._lock:
            self._pending -= 1
            self._held += 1
            if self._held >= self.holders:
                self._all_held.set()
        ended = False  # the session ended from outside (terminated, or its query cancelled)
        try:
            conn.execute(IDLE_IN_TRANSACTION_QUERY)  # opens the transaction
            if active and not self._stop.is_set():
                with self._lock:
                    self._active.append(conn)
                try:
                    conn.execute(ACTIVE_QUERY)  # until cancelled or terminated
                finally:
                    with self._lock:
                        self._active.remove(conn)
            poller = select.poll()
            poller.register(conn.fileno(), select.POLLIN)
            poller.register(self._wake_r, select.POLLIN)
            while not self._stop.is_set():
                # idle in transaction: the socket turns readable when the server ends the
                # session (pg_terminate_backend sends a FATAL message, then closes)
                if any(fd == conn.fileno() for fd, _ in poller.poll(1000)):
                    ended = True
                    break
        except (psycopg.Error, OSError, ValueError):
            ended = not self._stop.is_set()
        finally:
            if ended:
                conn.close()  # the job gives up; the pool replaces the connection
            else:
                with contextlib.suppress(psycopg.Error):
                    conn.rollback()
            with contextlib.suppress(Exception):
                self.pool.putconn(conn)
            with self._lock:
                self._held -= 1


# --- crash loop: a kubelet stand-in that OOM-kills the pods ---------------------------------


@dataclass
class _Cycle:
    restarts: int = 0
    kill_at: float = 0.0  # monotonic; while running
    waiting_until: float | None = None  # while in CrashLoopBackOff
    started_at: str = ""


class CrashingPods:
    """Drives the pods of a crash-looping revision through OOMKilled / CrashLoopBackOff."""

    def __init__(self, uptime: tuple[float, float] = (1.5, 3.0), max_backoff: float = 4.0):
        self.uptime = uptime
        self.max_backoff = max_backoff
        self.cycles: dict[str, _Cycle] = {}
        self._random = random.Random()

    def reset(self) -> None:
        self.cycles.clear()

    def tick(self, lab: LabHandle) -> None:
        pods = lab.revision_pods()
        names = {p["metadata"]["name"] for p in pods}
        for gone in set(self.cycles) - names:
            del self.cycles[gone]
        now = time.monotonic()
        for i, pod in enumerate(pods):
            name = pod["metadata"]["name"]
            cycle = self.cycles.get(name)
            if cycle is None:  # a new pod: it starts, then runs out of memory
                count = _restart_count(pod)
                self.cycles[name] = _Cycle(count, now + 0.3 + 0.8 * i, None, _now())
                self._log_start(lab, name)
            elif cycle.waiting_until is None and now >= cycle.kill_at:
                self._kill(lab, pod, cycle, now)
            elif cycle.waiting_until is not None and now >= cycle.waiting_until:
                self._start(lab, pod, cycle, now)

    def _kill(self, lab: LabHandle, pod: dict[str, Any], cycle: _Cycle, now: float) -> None:
        name, ns, uid = (pod["metadata"][k] for k in ("name", "namespace", "uid"))
        limit_mib = int((memory_limit(lab.template()) or 0) / 2**20)
        assert lab.app is not None
        logs = lab.app.logs
        logs.append(name, format_log_line("WARN", {"event": "memory_high", "rss_mb": int(
            limit_mib * 0.93), "limit_mb": limit_mib}))  # fmt: skip
        logs.append(name, format_log_line("CRITICAL", {
            "event": "out_of_memory", "rss_mb": limit_mib, "limit_mb": limit_mib,
            "error": "OutOfMemoryError"}))  # fmt: skip
        logs.restart(name)
        cycle.restarts += 1
        backoff = min(2.0 ** (cycle.restarts - 1), self.max_backoff)
        cycle.waiting_until = now + backoff
        store = lab.kube.store
        store.set_pod_state(
            ns,
            name,
            restart_count=cycle.restarts,
            last_state={"terminated": {"reason": "OOMKilled", "exitCode": 137,
                                       "startedAt": cycle.started_at, "finishedAt": _now()}},
            waiting_reason="CrashLoopBackOff",
            ready=False,
            container=CONTAINER,
        )  # fmt: skip
        ref = {"kind": "Pod", "namespace": ns, "name": name, "uid": uid, "apiVersion": "v1",
               "fieldPath": f"spec.containers{{{CONTAINER}}}"}  # fmt: skip
        store.record_event(
            ns, ref, "OOMKilling",
            f"Memory cgroup out of memory: Killed process {_pid(name)} "
            f"(python) total-vm:{limit_mib * 1400}kB, anon-rss:{limit_mib * 1024}kB, "
            "file-rss:0kB, shmem-rss:0kB",
            "Warning", component="kernel-monitor",
        )  # fmt: skip
        store.record_event(
            ns, ref, "BackOff",
            f"Back-off restarting failed container {CONTAINER} in pod {name}_{ns}({uid})",
            "Warning", component="kubelet",
        )  # fmt: skip

    def _start(self, lab: LabHandle, pod: dict[str, Any], cycle: _Cycle, now: float) -> None:
        name, ns, uid = (pod["metadata"][k] for k in ("name", "namespace", "uid"))
        store = lab.kube.store
        store.set_pod_state(ns, name, waiting_reason="", container=CONTAINER)
        ref = {"kind": "Pod", "namespace": ns, "name": name, "uid": uid, "apiVersion": "v1",
               "fieldPath": f"spec.containers{{{CONTAINER}}}"}  # fmt: skip
        image = container_of(lab.template()).get("image", "")
        for reason, message in (
            ("Pulled", f'Container image "{image}" already present on machine'),
            ("Created", f"Created container {CONTAINER}"),
            ("Started", f"Started container {CONTAINER}"),
        ):
            store.record_event(ns, ref, reason, message, "Normal", component="kubelet")
        cycle.waiting_until = None
        cycle.kill_at = now + self._random.uniform(*self.uptime)
        cycle.started_at = _now()
        self._log_start(lab, name)

    @staticmethod
    def _log_start(lab: LabHandle, name: str) -> None:
        assert lab.app is not None
        tmpl = lab.template()
        limit = ((container_of(tmpl).get("resources") or {}).get("limits") or {}).get("memory")
        version = str(container_of(tmpl).get("image", "")).rsplit(":", 1)[-1]
        lab.app.logs.append(name, format_log_line(
            "INFO", {"event": "starting", "version": version, "memory_limit": limit}))  # fmt: skip


def _pid(pod: str) -> int:
    """The container's main process id: the same on every restart, so events repeat (and
    count up) instead of piling up."""
    return 100 + sum(pod.encode()) % 9000


def _restart_count(pod: Mapping[str, Any]) -> int:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == CONTAINER:
            return int(cs.get("restartCount") or 0)
    return 0


class KubeStateMetrics:
    """kube-state-metrics' container series for the pods of one namespace, read from the
    Kubernetes test API server's store at scrape time (the lab has no kube-state-metrics)."""

    def __init__(self, store: Any, namespace: str) -> None:
        self.store, self.namespace = store, namespace

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> Iterator[Any]:
        labels = ["namespace", "pod", "container"]
        restarts = CounterMetricFamily(
            "kube_pod_container_status_restarts", "Container restarts", labels=labels
        )
        ready = GaugeMetricFamily(
            "kube_pod_container_status_ready", "Container ready", labels=labels
        )
        waiting = GaugeMetricFamily(
            "kube_pod_container_status_waiting_reason",
            "Why the container is waiting",
            labels=[*labels, "reason"],
        )
        terminated = GaugeMetricFamily(
            "kube_pod_container_status_last_terminated_reason",
            "Why the container last terminated",
            labels=[*labels, "reason"],
        )
        for pod in self.store.list("Pod", self.namespace):
            name = pod["metadata"]["name"]
            for cs in (pod.get("status") or {}).get("containerStatuses") or []:
                key = [self.namespace, name, cs["name"]]
                restarts.add_metric(key, float(cs.get("restartCount") or 0))
                ready.add_metric(key, 1.0 if cs.get("ready") else 0.0)
                reason = ((cs.get("state") or {}).get("waiting") or {}).get("reason")
                if reason:
                    waiting.add_metric([*key, reason], 1.0)
                last = ((cs.get("lastState") or {}).get("terminated") or {}).get("reason")
                if last:
                    terminated.add_metric([*key, last], 1.0)
        yield from (restarts, ready, waiting, terminated)


# --- the faults -----------------------------------------------------------------------------


class Fault:
    """One fault: ``inject`` makes it happen, ``in_effect`` says whether it still holds (a
    runbook may have fixed it), ``tick`` keeps it going, ``clear`` ends what ``inject``
    started (idempotent; the orchestrator restores the pod template itself)."""

    name: ClassVar[str] = "none"

    def inject(self, lab: LabHandle) -> None:
        pass

    def in_effect(self, lab: LabHandle) -> bool:
        return True

    def tick(self, lab: LabHandle) -> None:
        pass

    def clear(self, lab: LabHandle) -> None:
        pass


class BadDeploy(Fault):
    name = "bad-deploy"

    def inject(self, lab: LabHandle) -> None:
        lab.release(BAD_VERSION, f"deploy {BAD_VERSION.removesuffix('-bad')}")

    def in_effect(self, lab: LabHandle) -> bool:
        return lab.image().endswith("-bad")


class PoolExhaustion(Fault):
    name = "pool-exhaustion"

    def __init__(self) -> None:
        self.hog: ConnectionHog | None = None
        self.pods: set[str] = set()

    def inject(self, lab: LabHandle) -> None:
        assert lab.app is not None
        pool = lab.app.sized_pool(fresh=True)  # all of it, at the size the template asks
        self.hog = ConnectionHog(pool, holders=pool.max_size).start()
        self.pods = {p["metadata"]["name"] for p in lab.revision_pods()}

    def in_effect(self, lab: LabHandle) -> bool:
        return self.hog is not None and self.hog.engaged()

    def tick(self, lab: LabHandle) -> None:
        # the pods that held the sessions are gone (restart, rollback): so are their sessions
        if self.hog and self.pods:
            alive = {p["metadata"]["name"] for p in lab.revision_pods()}
            if not self.pods & alive:
                self.clear(lab)

    def clear(self, lab: LabHandle) -> None:
        if self.hog is not None:
            self.hog.release()
            self.hog = None
        self.pods = set()


class SlowQueries(Fault):
    name = "slow-queries"

    def inject(self, lab: LabHandle) -> None:
        assert lab.app is not None
        lab.app.slow_query = SlowQuery()

    def in_effect(self, lab: LabHandle) -> bool:
        return lab.app is not None and lab.app.slow_query is not None

    def clear(self, lab: LabHandle) -> None:
        if lab.app is not None:
            lab.app.slow_query = None


class CrashLoop(Fault):
    name = "crash-loop"

    def __init__(self) -> None:
        self.pods = CrashingPods()

    def inject(self, lab: LabHandle) -> None:
        self.pods.reset()
        lab.release(OOM_VERSION, f"deploy {OOM_VERSION}", memory_limit=OOM_MEMORY_LIMIT)
        self.pods.tick(lab)

    def in_effect(self, lab: LabHandle) -> bool:
        needed = memory_bytes(OOM_MEMORY_NEEDED) or 0.0
        limit = memory_limit(lab.template())
        return lab.image().endswith(f":{OOM_VERSION}") and (limit is None or limit < needed)

    def tick(self, lab: LabHandle) -> None:
        self.pods.tick(lab)

    def clear(self, lab: LabHandle) -> None:
        self.pods.reset()


class DependencyDown(Fault):
    name = "dependency-down"

    def inject(self, lab: LabHandle) -> None:
        assert lab.payments is not None
        lab.payments.hang()

    def in_effect(self, lab: LabHandle) -> bool:
        return lab.payments is not None and not lab.payments.answering.is_set()

    def clear(self, lab: LabHandle) -> None:
        if lab.payments is not None:
            lab.payments.recover()


class TrafficSpike(Fault):
    name = "traffic-spike"

    def inject(self, lab: LabHandle) -> None:
        assert lab.traffic is not None
        lab.traffic.set_rps(lab.rps * SPIKE_FACTOR)

    def in_effect(self, lab: LabHandle) -> bool:
        return lab.traffic is not None and lab.traffic.rps > lab.rps

    def clear(self, lab: LabHandle) -> None:
        if lab.traffic is not None and lab.traffic.rps != lab.rps:
            lab.traffic.set_rps(lab.rps)


FAULT_TYPES: tuple[Callable[[], Fault], ...] = (
    Fault,
    BadDeploy,
    PoolExhaustion,
    SlowQueries,
    CrashLoop,
    DependencyDown,
    TrafficSpike,
)


def make_faults() -> dict[str, Fault]:
    """One fresh instance of every fault, by name (the keys of ``FAULTS``)."""
    faults = {f.name: f for f in (make() for make in FAULT_TYPES)}
    assert list(faults) == list(FAULTS), "FAULTS and FAULT_TYPES must list the same faults"
    return faults
