"""The lab's service ``my-service``: a small real HTTP service instrumented like the template says.

It serves ``/api/items`` (Redis cache in front of PostgreSQL, through a real
``psycopg_pool.ConnectionPool`` whose sessions say ``application_name=my-service``),
``/api/checkout`` (charges the ``payments-provider`` dependency over HTTP with a short
timeout, then writes an order row), ``/health``, ``/health/db``, ``/health/cache`` and
``/metrics`` (its own ``CollectorRegistry``, the template's key metrics).

How the service behaves follows the Deployment's pod template, read through
``template_provider`` (the Kubernetes test API server's ``spec.template``): an image tag, an
env var (``CIRCUIT_BREAKER_ENABLED``, ``DB_POOL_SIZE``), so a runbook that rolls back or sets
an env var through the Kubernetes API really changes it. Each such rule is one small function
in ``RULES`` turning the template into a :class:`Behaviour`. The rest of the world the service
depends on (its database sessions, its dependency, its pods' readiness) is changed from
outside by the lab's faults (``faults.py``); the service only reacts, as a real one would:
with no ready pod a request gets 503 ``NoReadyPodsError``, a pool that cannot hand out a
connection in time gives 503 ``PoolTimeoutError``, a dependency that does not answer gives
504 ``DependencyTimeoutError`` (or a fallback with the circuit breaker on).

Every request is logged in the log line format of docs/architecture.md and attributed to one
of the currently running pods (``pods_provider``), round-robin, so the test API server can
serve the lines as that pod's log.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg
import redis
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolClosed, PoolTimeout

SERVICE = "my-service"
BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
ITEM_COUNT = 100
CACHE_TTL_SECONDS = 5  # short, so misses (and database reads) keep happening
PAYMENTS = "payments-provider"  # the dependency /api/checkout calls
ITEM_QUERY = "SELECT id, name, price_cents FROM items WHERE id = %s"
# The slow variant (fault "slow-queries") is sent with literal values, so the text that
# pg_stat_activity shows can be EXPLAINed as it stands.
SLOW_ITEM_QUERY = (
    "SELECT i.id, i.name, i.price_cents FROM items i CROSS JOIN LATERAL pg_sleep({})"
    " WHERE i.id = {}"
)


# --- behaviour: what the current pod template makes the service do --------------------------


@dataclass
class Behaviour:
    """How requests behave under the current pod template. Rules fill it in."""

    image: str = ""
    env: dict[str, str] = field(default_factory=dict)
    fail_share: float = 0.0  # share of /api/* requests that fail outright
    fail_error: str = "BadDeployError"
    circuit_breaker: bool = False  # dependency failures fall back instead of failing
    pool_size: int | None = None  # the pool's max size; None: the app's own default


@dataclass(frozen=True)
class AppSettings:
    """Knobs the rules read; the defaults are what the lab uses."""

    bad_deploy_error_share: float = 0.4
    container: str = SERVICE
    max_pool_size: int = 40  # DB_POOL_SIZE is capped below PostgreSQL's max_connections (50)


Rule = Callable[[Mapping[str, Any], AppSettings, Behaviour], None]


def container_of(template: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """The named container of a pod template (else the first one, else empty)."""
    containers = (template.get("spec") or {}).get("containers") or []
    for c in containers:
        if c.get("name") == name:
            return c
    return containers[0] if containers else {}


def rule_basics(template: Mapping[str, Any], settings: AppSettings, b: Behaviour) -> None:
    c = container_of(template, settings.container)
    b.image = str(c.get("image", ""))
    b.env = {str(e.get("name")): str(e.get("value", "")) for e in c.get("env") or [] if "name" in e}
    b.circuit_breaker = b.env.get("CIRCUIT_BREAKER_ENABLED", "").lower() == "true"


def rule_bad_deploy(template: Mapping[str, Any], settings: AppSettings, b: Behaviour) -> None:
    # fault "bad-deploy": a release whose image tag ends in -bad fails part of its requests
    if b.image.endswith("-bad"):
        b.fail_share = max(b.fail_share, settings.bad_deploy_error_share)
        b.fail_error = "BadDeployError"


def rule_pool_size(template: Mapping[str, Any], settings: AppSettings, b: Behaviour) -> None:
    # `kubectl set env DB_POOL_SIZE=N`: the template's "increase connection pool size"
    value = b.env.get("DB_POOL_SIZE", "").strip()
    if value.isdigit() and int(value) > 0:
        b.pool_size = min(int(value), settings.max_pool_size)


RULES: list[Rule] = [rule_basics, rule_bad_deploy, rule_pool_size]


def behaviour_for(template: Mapping[str, Any], settings: AppSettings) -> Behaviour:
    b = Behaviour()
    for rule in RULES:
        rule(template or {}, settings, b)
    return b


@dataclass(frozen=True)
class SlowQuery:
    """A share of the item lookups that reach PostgreSQL run for 0.3 to 0.8 s there."""

    share: float = 0.35
    min_seconds: float = 0.3
    max_seconds: float = 0.8


class CircuitBreaker:
    """Opens after ``threshold`` consecutive failures: while open, calls are skipped (the
    caller falls back) for ``cooldown`` seconds; then calls go through again, and the next
    failure opens it for another ``cooldown``, a success closes it."""

    def __init__(self, threshold: int = 3, cooldown: float = 5.0) -> None:
        self.threshold, self.cooldown = threshold, cooldown
        self.failures = 0
        self._open_until = 0.0
        self._lock = threading.Lock()

    def allow(self) -> bool:
        with self._lock:
            return self.failures < self.threshold or time.monotonic() >= self._open_until

    def record(self, ok: bool) -> bool:
        """Count a call's outcome; True when this failure opened the circuit."""
        with self._lock:
            if ok:
                self.failures = 0
                return False
            self.failures += 1
            if self.failures < self.threshold:
                return False
            now = time.monotonic()
            opening = now >= self._open_until
            self._open_until = now + self.cooldown
            return opening


# --- failures a request can end with --------------------------------------------------------


class RequestFailed(Exception):
    """Ends a request with ``status`` and logs ``error=<error>``."""

    def __init__(self, status: int, error: str, detail: str = "") -> None:
        self.status = status
        self.error = error
        self.detail = detail
        super().__init__(f"{status} {error} {detail}".strip())


# --- logs -----------------------------------------------------------------------------------


def log_timestamp(at: float | None = None) -> str:
    """ISO 8601 UTC with milliseconds and ``Z``: ``2025-01-15T14:18:02.123Z``."""
    moment = datetime.fromtimestamp(time.time() if at is None else at, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def format_log_line(level: str, fields: Mapping[str, Any], at: float | None = None) -> str:
    # values must not contain spaces: the format splits on them
    parts = [f"{k}={str(v).replace(' ', '_')}" for k, v in fields.items()]
    return f"{log_timestamp(at)} {level} {' '.join(parts)}"


class PodLogs:
    """Bounded per-pod log buffers, optionally mirrored to ``<log_dir>/<pod>.log``."""

    def __init__(self, max_lines: int = 5000, log_dir: Path | None = None) -> None:
        self.max_lines = max_lines
        self.log_dir = log_dir
        self._current: dict[str, deque[str]] = {}
        self._previous: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)

    def append(self, pod: str, line: str) -> None:
        with self._lock:
            self._current.setdefault(pod, deque(maxlen=self.max_lines)).append(line)
            if self.log_dir is not None:
                with open(self.log_dir / f"{pod}.log", "a") as f:
                    f.write(line + "\n")

    def restart(self, pod: str) -> None:
        """The pod's container restarted: its current log becomes the previous one."""
        with self._lock:
            self._previous[pod] = list(self._current.pop(pod, ()))

    def text(self, pod: str, previous: bool = False) -> str:
        with self._lock:
            lines = self._previous.get(pod, []) if previous else self._current.get(pod, ())
            return "".join(line + "\n" for line in lines)


class _Cached:
    """Calls ``fn`` at most every ``ttl`` seconds: providers may be HTTP calls."""

    def __init__(self, fn: Callable[[], Any], ttl: float) -> None:
        self.fn, self.ttl = fn, ttl
        self._value: Any = None
        self._at = float("-inf")
        self._lock = threading.Lock()

    def invalidate(self) -> None:
        with self._lock:
            self._at = float("-inf")

    def __call__(self) -> Any:
        with self._lock:
            if time.monotonic() - self._at > self.ttl:
                self._value = self.fn()
                self._at = time.monotonic()
            return self._value


# --- the service ----------------------------------------------------------------------------


class LabApp:
    """A real instrumented HTTP service backed by PostgreSQL and Redis."""

    def __init__(
        self,
        conninfo: str | Mapping[str, Any],
        redis_url: str,
        redis_password: str | None = None,
        port: int = 0,
        template_provider: Callable[[], Mapping[str, Any] | None] = lambda: {},
        pods_provider: Callable[[], Iterable[str]] = lambda: ["my-service-abc-xyz"],
        *,
        service: str = SERVICE,
        settings: AppSettings | None = None,
        pool_size: int = 5,
        pool_timeout: float = 2.0,
        log_dir: str | Path | None = None,
        provider_ttl: float = 0.2,
        seed: int | None = None,
        payments_url: str | None = None,
        dependency_timeout: float = 0.5,
    ) -> None:
        if isinstance(conninfo, Mapping):
            conninfo = psycopg.conninfo.make_conninfo(**{k: v for k, v in conninfo.items()})
        if "application_name" not in psycopg.conninfo.conninfo_to_dict(conninfo):
            # pg_stat_activity then tells the service's sessions from everyone else's
            conninfo = psycopg.conninfo.make_conninfo(conninfo, application_name=service)
        self.conninfo = conninfo
        self.redis_url = redis_url
        self.redis_password = redis_password
        self.port = port
        self.service = service
        self.settings = settings or AppSettings()
        self.pool_size = pool_size
        self.pool_timeout = pool_timeout
        self._template = _Cached(lambda: template_provider() or {}, provider_ttl)
        self._pods = _Cached(lambda: list(pods_provider()), provider_ttl)
        self._pod_counter = itertools.count()
        self.logs = PodLogs(log_dir=Path(log_dir) if log_dir else None)
        self._random = random.Random(seed)
        self._random_lock = threading.Lock()
        self._cache_results: deque[bool] = deque(maxlen=200)  # recent hits/misses
        self.pool: ConnectionPool | None = None
        self._pool_lock = threading.Lock()
        self._pool_wait_logged = 0.0
        self._waiting = 0  # requests waiting for a pooled connection right now
        self.slow_query: SlowQuery | None = None  # set by the lab's fault "slow-queries"
        self.payments_url = payments_url
        self.dependency_timeout = dependency_timeout
        self.payments: httpx.Client | None = None
        self.breaker = CircuitBreaker()
        self.redis: redis.Redis | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._build_metrics()

    # metrics ------------------------------------------------------------------------------

    def _build_metrics(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["service", "method", "endpoint", "status"]
        self.requests_total = Counter(
            "http_requests_total", "Total HTTP requests", labels, registry=self.registry
        )
        self.request_duration = Histogram(
            "http_request_duration_seconds",
            "HTTP request latency",
            labels,
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.business_transactions = Counter(
            "business_transactions_total",
            "Business transaction count",
            ["service", "type", "status"],
            registry=self.registry,
        )
        # A 5xx series that exists at 0 keeps the error-rate ratio defined (0, not "no data")
        # before the first failure, as instrumentation guides recommend.
        for method, path in ROUTES:
            if path.startswith("/api/"):
                self.requests_total.labels(self.service, method, path, "500")
        # Gauges read live state at scrape time, so they are never stale.
        self.registry.register(_LiveGauges(self))

    def pool_stats(self) -> dict[str, int]:
        """active / idle connections of the real pool, and the requests waiting for one.

        Waiting requests are counted here rather than taken from the pool's
        ``requests_waiting``, which also counts waiters that already timed out until a
        connection comes back."""
        if self.pool is None:
            return {"active": 0, "idle": 0, "waiting": 0, "size": 0, "max": self.pool_size}
        s = self.pool.get_stats()
        size, idle = s.get("pool_size", 0), s.get("pool_available", 0)
        return {
            "active": max(size - idle, 0),
            "idle": idle,
            "waiting": self._waiting,
            "size": size,
            "max": s.get("pool_max", self.pool_size),
        }

    def cache_hit_ratio(self) -> float:
        results = list(self._cache_results)
        return sum(results) / len(results) if results else 0.0

    # lifecycle ----------------------------------------------------------------------------

    def _new_pool(self, size: int, *, wait: float | None = None) -> ConnectionPool:
        pool = ConnectionPool(
            self.conninfo,
            min_size=min(2, size),
            max_size=size,
            timeout=self.pool_timeout,
            # a session ended from outside (pg_terminate_backend by a runbook) is replaced
            # when next taken, as production pools are configured to do
            check=ConnectionPool.check_connection,
            open=False,
            name=f"{self.service}-pool",
        )
        pool.open(wait=wait is not None, timeout=wait or 30.0)
        return pool

    def start(self, timeout: float = 15.0) -> LabApp:
        self.pool = self._new_pool(self.pool_size, wait=timeout)
        self.redis = redis.Redis.from_url(
            self.redis_url,
            password=self.redis_password,
            socket_timeout=0.5,
            socket_connect_timeout=0.5,
        )
        self._prepare_database()
        if self.payments_url:
            self.payments = httpx.Client(
                base_url=self.payments_url,
                timeout=httpx.Timeout(self.dependency_timeout),
                limits=httpx.Limits(max_connections=200, max_keepalive_connections=20),
            )
        handler = type("Handler", (_Handler,), {"app": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"{self.service}-http",
            daemon=True,
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self.pool is not None:
            self.pool.close(timeout=2.0)
            self.pool = None
        if self.payments is not None:
            self.payments.close()
            self.payments = None
        if self.redis is not None:
            self.redis.close()
            self.redis = None

    def _prepare_database(self) -> None:
        assert self.pool is not None
        with self.pool.connection() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS items ("
                " id integer PRIMARY KEY, name text NOT NULL, price_cents integer NOT NULL)"
            )
            conn.execute(
                "CREATE TABLE IF NOT EXISTS orders ("
                " id bigserial PRIMARY KEY, item_id integer NOT NULL REFERENCES items(id),"
                " quantity integer NOT NULL, created_at timestamptz NOT NULL DEFAULT now())"
            )
            # ON CONFLICT: a restarted lab or a second app instance reuses the same rows
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO items (id, name, price_cents) VALUES (%s, %s, %s)"
                    " ON CONFLICT (id) DO NOTHING",
                    [(i, f"item-{i}", 100 + 7 * i) for i in range(1, ITEM_COUNT + 1)],
                )

    # per-request state --------------------------------------------------------------------

    def behaviour(self) -> Behaviour:
        return behaviour_for(self._template(), self.settings)

    def pods(self) -> list[str]:
        return list(self._pods())

    def next_pod(self) -> str | None:
        pods = self.pods()
        return pods[next(self._pod_counter) % len(pods)] if pods else None

    def chance(self, share: float) -> bool:
        with self._random_lock:
            return self._random.random() < share

    def random_item(self) -> int:
        with self._random_lock:
            return self._random.randint(1, ITEM_COUNT)

    def uniform(self, low: float, high: float) -> float:
        with self._random_lock:
            return self._random.uniform(low, high)

    def log(self, level: str, fields: Mapping[str, Any], pod: str | None = None) -> None:
        pod = pod or self.next_pod()
        if pod is not None:
            self.logs.append(pod, format_log_line(level, fields))

    def logs_for(self, pod: str, previous: bool = False) -> str:
        """The pod's log text as ``kubectl logs`` would print it (empty if none)."""
        return self.logs.text(pod, previous)

    # request handling ---------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, str, bytes, str]:
        """Serve one request; returns (status, content type, body, endpoint label)."""
        route = ROUTES.get((method, path))
        if route is None:
            known = any(p == path for _, p in ROUTES)
            status = 405 if known else 404
            return status, "application/json", _json({"error": "not found"}), "other"
        return (*route(self, query, body), path)

    def items(self, query: dict[str, list[str]], body: bytes) -> tuple[int, str, bytes]:
        self._before_api()
        item_id = int(query.get("id", [self.random_item()])[0])
        item = self._cache_get(item_id)
        if item is None:
            item = self._db_item(item_id)
            self._cache_set(item_id, item)
        return 200, "application/json", _json(item)

    def checkout(self, query: dict[str, list[str]], body: bytes) -> tuple[int, str, bytes]:
        self._before_api()
        try:
            order = json.loads(body or b"{}")
            item_id = int(order.get("item_id") or self.random_item())
            quantity = int(order.get("quantity") or 1)
        except (ValueError, TypeError, AttributeError):
            self.business_transactions.labels(self.service, "checkout", "rejected").inc()
            raise RequestFailed(400, "ValidationError") from None
        try:
            payment = self._charge(item_id, quantity)
            with self._connection() as conn:
                row = conn.execute(
                    "INSERT INTO orders (item_id, quantity) VALUES (%s, %s) RETURNING id",
                    (item_id, quantity),
                ).fetchone()
        except RequestFailed:
            self.business_transactions.labels(self.service, "checkout", "failed").inc()
            raise
        outcome = "deferred" if payment == "deferred" else "success"
        self.business_transactions.labels(self.service, "checkout", outcome).inc()
        answer = {"order_id": row[0] if row else None, "payment": payment}
        return 200, "application/json", _json(answer)

    def health(self, query: dict[str, list[str]], body: bytes) -> tuple[int, str, bytes]:
        return 200, "application/json", _json({"status": "ok", "service": self.service})

    def health_db(self, query: dict[str, list[str]], body: bytes) -> tuple[int, str, bytes]:
        stats = self.pool_stats()
        try:
            with self._connection() as conn:
                conn.execute("SELECT 1")
        except RequestFailed as exc:
            return 503, "application/json", _json({"status": "down", "error": exc.error, **stats})
        return 200, "application/json", _json({"status": "ok", **stats})

    def health_cache(self, query: dict[str, list[str]], body: bytes) -> tuple[int, str, bytes]:
        try:
            ok = bool(self.redis and self.redis.ping())
        except redis.RedisError as exc:
            return 503, "application/json", _json({"status": "down", "error": type(exc).__name__})
        status = 200 if ok else 503
        return status, "application/json", _json({"status": "ok" if ok else "down"})

    def metrics(self, query: dict[str, list[str]], body: bytes) -> tuple[int, str, bytes]:
        return 200, CONTENT_TYPE_LATEST, generate_latest(self.registry)

    def _before_api(self) -> None:
        if not self.pods():
            # no ready pod: the Service has no endpoints, so nothing can serve the request
            raise RequestFailed(503, "NoReadyPodsError")
        b = self.behaviour()
        if b.fail_share and self.chance(b.fail_share):
            raise RequestFailed(500, b.fail_error)

    def sized_pool(self, fresh: bool = False) -> ConnectionPool:
        """The pool, resized first if the template's DB_POOL_SIZE asks for another size
        (``fresh``: read the template now rather than within the provider's cache time)."""
        assert self.pool is not None
        if fresh:
            self._template.invalidate()
        wanted = self.behaviour().pool_size or self.pool_size
        if wanted != self.pool.max_size:
            self.replace_pool(wanted)
        return self.pool

    def replace_pool(self, size: int) -> None:
        """A new pool of ``size``, as the restarted pods of a rollout would have (resizing in
        place keeps every connection of a bigger pool until max_idle, 10 min). Requests that
        took the old one move to the new one (see ``_connection``)."""
        with self._pool_lock:
            if self.pool is None or size == self.pool.max_size:
                return
            old, self.pool = self.pool, self._new_pool(size)
        # lent-out connections close as they come back to the closed pool
        threading.Thread(target=old.close, kwargs={"timeout": 30.0},
                         name="old-pool-close", daemon=True).start()  # fmt: skip

    def _take(self) -> tuple[ConnectionPool, psycopg.Connection[Any]]:
        """A connection from the current pool. A request that took a pool just replaced
        (and so closed) moves to its successor, as one retried on a new pod would, rather
        than failing with PoolClosed."""
        pool = self.sized_pool()
        while True:
            try:
                return pool, pool.getconn()
            except PoolClosed:
                current = self.pool
                if current is None or current is pool:
                    raise  # the service is stopping
                pool = current

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self._pool_lock:
            self._waiting += 1
        try:
            pool, conn = self._take()
        except PoolTimeout:
            waiting, now = self._waiting, time.monotonic()
            if now - self._pool_wait_logged >= 1.0:  # one line a second is enough to see it
                self._pool_wait_logged = now
                self.log("WARN", {"event": "pool_wait", "waiting": waiting})
            raise RequestFailed(503, "PoolTimeoutError") from None
        finally:
            with self._pool_lock:
                self._waiting -= 1
        try:
            with conn:  # commit or roll back; a pooled connection is not closed by this
                yield conn
        except psycopg.OperationalError:
            raise RequestFailed(503, "DatabaseConnectionError") from None
        except psycopg.Error as exc:
            raise RequestFailed(500, "DatabaseError", type(exc).__name__) from None
        finally:
            pool.putconn(conn)

    def _db_item(self, item_id: int) -> dict[str, Any]:
        slow = self.slow_query
        with self._connection() as conn:
            if slow is not None and self.chance(slow.share):
                seconds = round(self.uniform(slow.min_seconds, slow.max_seconds), 2)
                query = sql.SQL(SLOW_ITEM_QUERY).format(sql.Literal(seconds), sql.Literal(item_id))
                row = conn.execute(query).fetchone()
            else:
                row = conn.execute(ITEM_QUERY, (item_id,)).fetchone()
        if row is None:
            raise RequestFailed(404, "NotFoundError")
        return {"id": row[0], "name": row[1], "price_cents": row[2]}

    def _cache_get(self, item_id: int) -> dict[str, Any] | None:
        try:
            raw = self.redis.get(f"item:{item_id}") if self.redis else None
        except redis.RedisError:
            raw = None  # a cache outage is a miss, not a failure
        self._cache_results.append(raw is not None)
        return json.loads(raw) if raw else None

    def _cache_set(self, item_id: int, item: Mapping[str, Any]) -> None:
        with contextlib.suppress(redis.RedisError, AttributeError):
            self.redis.set(f"item:{item_id}", json.dumps(item), ex=CACHE_TTL_SECONDS)  # type: ignore[union-attr]

    def _charge(self, item_id: int, quantity: int) -> str:
        """Charge the order at the payments provider: ``succeeded``, or ``deferred`` when it
        failed and the circuit breaker (CIRCUIT_BREAKER_ENABLED=true) lets the order through
        to be charged later. Without the breaker a failure fails the request."""
        if self.payments is None:
            return "skipped"
        breaker_on = self.behaviour().circuit_breaker
        if breaker_on and not self.breaker.allow():
            return "deferred"  # circuit open: no call at all, the fallback answers at once
        try:
            answer = self.payments.post("/v1/charges", json={"item_id": item_id, "qty": quantity})
            answer.raise_for_status()
        except httpx.TimeoutException:
            status, error = 504, "DependencyTimeoutError"
        except httpx.HTTPError:
            status, error = 502, "DependencyError"
        else:
            self.breaker.record(True)
            return "succeeded"
        opened = self.breaker.record(False)
        if not breaker_on:
            raise RequestFailed(status, error, PAYMENTS)
        if opened:
            self.log("WARN", {"event": "circuit_open", "dependency": PAYMENTS, "error": error})
        return "deferred"


Route = Callable[[LabApp, dict[str, list[str]], bytes], tuple[int, str, bytes]]
ROUTES: dict[tuple[str, str], Route] = {
    ("GET", "/api/items"): LabApp.items,
    ("POST", "/api/checkout"): LabApp.checkout,
    ("GET", "/health"): LabApp.health,
    ("GET", "/health/db"): LabApp.health_db,
    ("GET", "/health/cache"): LabApp.health_cache,
    ("GET", "/metrics"): LabApp.metrics,
}
UNLOGGED = {"/metrics"}  # scrapes every second would drown the service's own log lines


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


class _LiveGauges:
    """``database_connection_pool_size`` and ``cache_hit_ratio``, read at scrape time."""

    def __init__(self, app: LabApp) -> None:
        self.app = app

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # unchecked collector: families are known only when collected

    def collect(self) -> Iterator[GaugeMetricFamily]:
        pool = GaugeMetricFamily(
            "database_connection_pool_size",
            "Current DB connection pool size",
            labels=["service", "state"],
        )
        stats = self.app.pool_stats()
        for state in ("active", "idle", "waiting"):
            pool.add_metric([self.app.service, state], stats[state])
        yield pool
        cache = GaugeMetricFamily(
            "cache_hit_ratio", "Cache hit ratio (recent lookups)", labels=["service", "cache_name"]
        )
        cache.add_metric([self.app.service, "items"], self.app.cache_hit_ratio())
        yield cache


class _Handler(BaseHTTPRequestHandler):
    app: LabApp
    protocol_version = "HTTP/1.1"  # keep-alive: the load generator reuses connections
    server_version = "my-service/lab"
    # headers and body go out in two writes; with Nagle on, keep-alive clients wait ~40 ms
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:
        started = time.perf_counter()
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        error: str | None = None
        endpoint = parts.path if any(p == parts.path for _, p in ROUTES) else "other"
        try:
            status, ctype, payload, endpoint = self.app.handle(
                method, parts.path, parse_qs(parts.query), body
            )
        except RequestFailed as exc:
            status, ctype, error = exc.status, "application/json", exc.error
            payload = _json({"error": exc.error, "detail": exc.detail})
        except Exception as exc:  # a bug in the lab must still answer and be counted
            status, ctype, error = 500, "application/json", type(exc).__name__
            payload = _json({"error": error})
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            pass  # the client went away; the request still counts
        elapsed = time.perf_counter() - started
        labels = (self.app.service, method, endpoint, str(status))
        self.app.requests_total.labels(*labels).inc()
        self.app.request_duration.labels(*labels).observe(elapsed)
        if endpoint not in UNLOGGED:
            fields: dict[str, Any] = {
                "method": method,
                "endpoint": endpoint,
                "status": status,
                "duration_ms": int(round(elapsed * 1000)),
            }
            if error:
                fields["error"] = error
            level = "ERROR" if status >= 500 else "WARN" if status >= 400 else "INFO"
            self.app.log(level, fields)

    def handle(self) -> None:
        with contextlib.suppress(ConnectionError):  # a client that went away is no error here
            super().handle()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the service writes its own log lines; no stderr chatter
