"""The web app: Alertmanager webhook intake, run pages, health and metrics.

POST /webhook/alertmanager      Alertmanager webhook (payload version 4); bearer token
GET  /healthz                   {"status": "ok", queue, running, pool}
GET  /metrics                   Prometheus text format
GET  /runs                      HTML list of runs
GET  /runs/{id}                 the run's executed notebook as HTML
GET  /runs/{id}/notebook        the executed notebook (.ipynb)
GET  /alerts/{fingerprint}      303 to the alert's newest run page (a page that reloads
                                itself while it is queued or running); the link for
                                alert notifications: .../alerts/{{ .Fingerprint }}
GET  /api/v1/runs[?limit&offset&fingerprint]   runs as JSON (of one alert)
GET  /api/v1/runs/{id}          one run + result.json
GET  /api/v1/alerts[?limit&offset] alerts as received, with what became of each
GET  /openapi.json              this API as OpenAPI 3
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from .. import __version__
from ..engine.chart_renderer import ChartRenderer
from . import models, pages, routing
from .metrics import CONTENT_TYPE, Metrics
from .notify import Notifier
from .pool import KernelPool
from .settings import ServeSettings
from .store import Intake, QueueFull, Store
from .worker import Executor, Worker, engine_executor

log = logging.getLogger("opsnb.serve")
WEBHOOK_PATH = "/webhook/alertmanager"
_ID = PathParam(ge=1, le=2**62, description="run id")
# Alertmanager's fingerprints are 16 hex digits; anything word-like is looked up, nothing
# else (no separators, no dots) gets past validation.
FINGERPRINT_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
_FINGERPRINT = PathParam(
    pattern=FINGERPRINT_PATTERN, description="the alert's fingerprint (Alertmanager's)"
)


@dataclass
class Service:
    settings: ServeSettings
    store: Store
    pool: KernelPool
    worker: Worker
    notifier: Notifier
    metrics: Metrics
    token: bytes
    renderer: ChartRenderer | None = None

    def stats(self) -> dict[str, Any]:
        return {
            "queued": self.store.queue_depth(),
            "running": len(self.worker.running),
            "pool": self.pool.stats(),
        }


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": message, **extra}, status_code=status, headers=headers)


def build_service(settings: ServeSettings, executor: Executor | None = None) -> Service:
    """Everything but the HTTP layer; resolves the token now (a SecretError stops start-up)."""
    token = settings.token.resolve().encode()
    if not token:
        raise ValueError("the serve token is empty")
    settings.runs_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.db_path)
    running: dict[int, float] = {}
    renderer = ChartRenderer() if executor is None and settings.chart_renderer else None
    pool = KernelPool(
        settings.pool_size if executor is None else 0,
        preload=settings.preload_code(),
        env=renderer.kernel_env() if renderer is not None else None,
        idle=lambda: not running,
    )
    executor = executor or engine_executor(
        settings, pool, renderer, backlog=lambda: store.queue_depth() > 0
    )
    worker = Worker(store, settings, executor)
    worker.running = running
    metrics = Metrics(store, pool.stats, lambda: len(worker.running))
    worker.on_finish = lambda run, status, duration: metrics.run_finished(status, duration)
    notifier = Notifier(store, settings)
    return Service(settings, store, pool, worker, notifier, metrics, token, renderer)


def create_app(settings: ServeSettings, executor: Executor | None = None) -> FastAPI:
    service = build_service(settings, executor)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if service.renderer is not None:
            service.renderer.start()
        service.pool.start()
        service.worker.start()
        service.notifier.start()
        try:
            yield
        finally:
            service.worker.stop()
            service.notifier.stop()
            service.pool.close()
            if service.renderer is not None:
                service.renderer.stop()
            service.store.close()

    app = FastAPI(
        title="opsnb serve",
        version=__version__,
        lifespan=lifespan,
        description="Alertmanager webhooks run opsnb runbooks.",
    )
    app.state.service = service

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s", request.url.path)
        return _error(500, f"internal error: {type(exc).__name__}")

    @app.post(
        WEBHOOK_PATH,
        summary="Receive an Alertmanager webhook (payload version 4)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/Webhook"}}
                },
            },
            "security": [{"bearer": []}],
        },
        responses={
            200: {"description": "accepted: each alert's disposition"},
            400: {"description": "malformed JSON"},
            401: {"description": "no or wrong bearer token"},
            413: {"description": "body too large"},
            422: {"description": "not a valid payload, or no alert could be accepted"},
            503: {"description": "the run queue is full; retry later"},
        },
    )
    async def receive(request: Request) -> Response:
        if not _authorized(request, service.token):
            service.metrics.rejected.labels("401").inc()
            return _error(401, "a valid bearer token is required (Authorization: Bearer ...)")
        body = await _read_limited(request, settings.max_body_bytes)
        if body is None:
            service.metrics.rejected.labels("413").inc()
            return _error(413, f"body larger than {settings.max_body_bytes} bytes")
        try:
            payload = models.parse(body)
        except models.BadPayload as exc:
            service.metrics.rejected.labels(str(exc.status)).inc()
            return _error(exc.status, str(exc), details=exc.details)
        try:
            outcomes = await run_in_threadpool(_intake, service, payload)
        except QueueFull as exc:
            service.metrics.rejected.labels("503").inc()
            return _error(503, str(exc), queued=exc.queued, limit=exc.limit)
        for o in outcomes:
            service.metrics.alerts.labels(o["status"], o["disposition"]).inc()
        service.worker.wake()
        code = 422 if all(o["disposition"] == "rejected" for o in outcomes) else 200
        if code == 422:
            service.metrics.rejected.labels("422").inc()
            reasons = "; ".join(sorted({o["reason"] for o in outcomes}))[:1000]
            return _error(422, f"no alert could be accepted: {reasons}", alerts=outcomes)
        return JSONResponse({"received": len(outcomes), "alerts": outcomes})

    @app.get("/healthz", summary="Liveness and a summary of the queue and the pool")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", **service.stats()}

    @app.get("/metrics", summary="Prometheus metrics", response_class=Response)
    def metrics() -> Response:
        return Response(service.metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse("/runs")

    @app.get("/runs", summary="HTML list of runs", response_class=HTMLResponse)
    def runs_page(
        limit: int = Query(200, ge=1, le=1000), offset: int = Query(0, ge=0, le=2**31)
    ) -> HTMLResponse:
        stats = {**service.store.counts(), "pool": pages.html.escape(str(service.pool.stats()))}
        return HTMLResponse(pages.runs_page(service.store.runs(limit, offset), stats))

    def _run_or_404(run_id: int) -> dict[str, Any] | Response:
        run = service.store.run(run_id)
        return run if run is not None else _error(404, f"no run {run_id}")

    @app.get(
        "/runs/{run_id}", summary="A run's executed notebook as HTML", response_class=HTMLResponse
    )
    def run_page(run_id: int = _ID) -> Response:
        run = _run_or_404(run_id)
        if isinstance(run, Response):
            return run
        path = pages.run_file(settings.data_dir, run, "html")
        if path is None:
            return _error(
                404,
                f"run {run_id} has no notebook page (status {run['status']})",
                run_status=run["status"],
            )
        return FileResponse(path, media_type="text/html")

    @app.get("/runs/{run_id}/notebook", summary="A run's executed notebook (.ipynb)")
    def run_notebook(run_id: int = _ID) -> Response:
        run = _run_or_404(run_id)
        if isinstance(run, Response):
            return run
        path = pages.run_file(settings.data_dir, run, "notebook")
        if path is None:
            return _error(404, f"run {run_id} has no notebook (status {run['status']})")
        return FileResponse(path, media_type="application/x-ipynb+json", filename=path.name)

    @app.get(
        "/alerts/{fingerprint}",
        summary="An alert's newest diagnosis: the link to put in alert notifications",
        response_class=HTMLResponse,
        responses={303: {"description": "to the run's page"}, 404: {"description": "no run"}},
    )
    def alert_page(fingerprint: str = _FINGERPRINT) -> Response:
        newest = service.store.runs(1, 0, fingerprint=fingerprint)
        if not newest:
            alert = service.store.last_alert(fingerprint)
            if alert is None:
                return _error(404, f"no alert with fingerprint {fingerprint} was received")
            return _error(
                404,
                f"alert {fingerprint} has no run: {alert['disposition']}"
                + (f" ({alert['reason']})" if alert.get("reason") else ""),
                disposition=alert["disposition"],
            )
        run = newest[0]
        if run["status"] in ("queued", "running"):
            return HTMLResponse(pages.in_progress_page(fingerprint, run))
        if pages.run_file(settings.data_dir, run, "html") is None:
            return _error(
                404,
                f"run {run['id']} of alert {fingerprint} has no notebook page "
                f"(status {run['status']}): {run.get('error') or ''}".rstrip(": "),
                run_status=run["status"],
            )
        return RedirectResponse(f"/runs/{run['id']}", status_code=303)

    @app.get("/api/v1/runs", summary="Runs, newest first")
    def api_runs(
        limit: int = Query(100, ge=1, le=1000),
        offset: int = Query(0, ge=0, le=2**31),
        fingerprint: str | None = Query(
            None, pattern=FINGERPRINT_PATTERN, description="only the runs of this alert"
        ),
    ) -> dict[str, Any]:
        return {"runs": service.store.runs(limit, offset, fingerprint=fingerprint)}

    @app.get("/api/v1/runs/{run_id}", summary="One run, with its result.json when finished")
    def api_run(run_id: int = _ID) -> Response:
        run = _run_or_404(run_id)
        if isinstance(run, Response):
            return run
        path = pages.run_file(settings.data_dir, run, "result")
        result = json.loads(path.read_text(encoding="utf-8")) if path else None
        links = {"page": f"{settings.base_url}/runs/{run_id}"}
        return JSONResponse({"run": run, "result": result, "links": links})

    @app.get("/api/v1/alerts", summary="Alerts as received, newest first")
    def api_alerts(
        limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0, le=2**31)
    ) -> dict[str, Any]:
        return {"alerts": service.store.alerts(limit, offset)}

    _add_openapi(app)
    return app


def _authorized(request: Request, token: bytes) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token)


async def _read_limited(request: Request, limit: int) -> bytes | None:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _intake(service: Service, payload: models.Webhook) -> list[dict[str, Any]]:
    settings = service.settings
    items, resolution = [], {}
    for alert in payload.alerts:
        route = routing.route(alert, settings)
        if alert.status == "resolved" and not route.problem:
            verify = routing.resolution_route(alert, settings)
            resolution[alert.fingerprint] = None if verify.problem else verify.as_dict()
            if verify.problem:
                route.problem = f"resolved; {verify.problem}"
        items.append(
            Intake(
                fingerprint=alert.fingerprint,
                status=alert.status,
                alertname=alert.alertname,
                labels=dict(alert.labels),
                annotations=dict(alert.annotations),
                starts_at=alert.startsAt.isoformat(),
                ends_at=alert.endsAt.isoformat() if alert.endsAt else "",
                generator_url=alert.generatorURL,
                route=None if route.problem else route.as_dict(),
                disposition=route.disposition,
                reason=route.problem,
            )
        )
    outcomes = service.store.record(
        items,
        repeat_interval=settings.repeat_interval,
        queue_size=settings.queue_size,
        resolution=resolution,
    )
    _record_on_incidents(items, outcomes)
    return outcomes


def _record_on_incidents(items: list[Intake], outcomes: list[dict[str, Any]]) -> None:
    """Put each accepted alert on the timeline of its service's open incident.

    The alert is already durable in the service's own store; a timeline that cannot be
    written (no incident, a locked or broken folder) never fails the intake.
    """
    from .. import incidents

    for item, outcome in zip(items, outcomes, strict=False):
        service_name = item.labels.get("service")
        if not service_name or outcome.get("disposition") == "rejected":
            continue
        try:
            current = incidents.open_for_service(service_name)
            if current is None:
                continue
            incidents.record(
                current.id, "alert",
                by="alertmanager",
                at=item.starts_at if item.status == "firing" else (item.ends_at or None),
                alertname=item.alertname, status=item.status,
                fingerprint=item.fingerprint, disposition=outcome.get("disposition"),
                labels=item.labels, summary=item.annotations.get("summary", ""),
            )  # fmt: skip
        except Exception as exc:  # the timeline is best effort here; the alert is stored
            log.warning("alert %s not recorded on an incident: %s", item.fingerprint, exc)


def _add_openapi(app: FastAPI) -> None:
    """Put the webhook schema and the bearer scheme into the generated document."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = original()
        schema = models.openapi_schema()
        components = doc.setdefault("components", {})
        components.setdefault("schemas", {}).update(schema.pop("$defs", {}))
        components["schemas"]["Webhook"] = schema
        components.setdefault("securitySchemes", {})["bearer"] = {
            "type": "http",
            "scheme": "bearer",
        }
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


def run_server(overrides: dict[str, Any], *, log_level: str = "info") -> None:
    """Load the settings, build the app and serve until interrupted (``opsnb serve``)."""
    import threading

    import uvicorn

    from ..engine import export
    from .settings import load

    settings = load(overrides)
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    app = create_app(settings)
    # The HTML exporter compiles its templates once per process: do it before the first alert.
    threading.Thread(target=export.warm_up, daemon=True).start()
    log.info("opsnb serve on http://%s:%s (data in %s)", settings.host, settings.port,
             settings.data_dir)  # fmt: skip
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=log_level,
                access_log=False)  # fmt: skip
