"""The lab: real services on loopback wired together into one incident-ready environment.

``Lab(workdir).start()`` starts PostgreSQL, Redis, the Kubernetes test API server (seeded
with Deployment ``my-service`` in ``production``), the ``payments-provider`` dependency, the
instrumented service, Prometheus scraping it every second (with the template's alert rules at
lab speed), Alertmanager, a traffic generator and a small control endpoint.

``inject(fault)`` changes the world the way a real incident would: a bad release is a new
Deployment template, hence a new ReplicaSet revision; held connections are real PostgreSQL
sessions; a hung dependency is a real server that stops answering. Runbooks diagnose and fix
it through the same APIs as in production. ``faults.py`` describes every fault, its symptoms
and what ends it. A background thread keeps the active fault going (a crash loop's restarts)
and notices when a runbook fixed it, after which ``active_fault()`` says ``none``. Injecting a
fault clears the previous one first; ``clear()`` ends every fault's mechanism and restores the
good pod template (image, env and resources as seeded; replicas stay as they are).

A running lab is described by ``<workdir>/lab.json`` (URLs and the control endpoint) and by
the target file ``write_target()`` puts in the opsnb config dir. Secrets stay out of both.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import re
import secrets
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from ..catalog import PACKAGE_ROOT
from ..promql import render
from . import processes
from .app import PAYMENTS, SERVICE, LabApp
from .faults import BAD_VERSION as BAD_VERSION
from .faults import CONTAINER as CONTAINER
from .faults import FAULTS as FAULTS
from .faults import Fault, KubeStateMetrics, PaymentsProvider, make_faults
from .traffic import Traffic

log = logging.getLogger(__name__)

NAMESPACE = "production"
SELECTOR = f"app={SERVICE}"
IMAGE_REPO = "registry.local/my-service"
GOOD_VERSION = "1.4.2"
CHANGE_CAUSE = "kubernetes.io/change-cause"
REVISION = "deployment.kubernetes.io/revision"
PASSWORD_ENV = "OPSNB_LAB_PG_PASSWORD"
TARGET_NAME = "lab"
RATE_WINDOW = "20s"  # the lab's minutes are seconds: 1 s scrapes, 20 s rate windows
TICK_SECONDS = 0.25  # how often the fault thread keeps a fault going and looks for its fix
TRAFFIC_WORKERS = 64  # enough that requests hung for seconds do not lower the offered load
CLIENT_TIMEOUT = 5.0  # the load generator's; over the pool timeout (2 s) and dependency's
RUNBOOKS_URL = (PACKAGE_ROOT / "runbooks").as_uri()
TEMPLATE_FIELDS = ("image", "env", "resources")  # what clear() restores in the container


def deployment_manifest(image: str, change_cause: str, replicas: int = 3) -> dict[str, Any]:
    """The seed Deployment, as a user would `kubectl apply` it."""
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": SERVICE,
            "namespace": NAMESPACE,
            "labels": {"app": SERVICE},
            "annotations": {CHANGE_CAUSE: change_cause},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": SERVICE}},
            "template": {
                "metadata": {"labels": {"app": SERVICE}},
                "spec": {
                    "containers": [
                        {
                            "name": CONTAINER,
                            "image": image,
                            "ports": [{"containerPort": 8080, "name": "http"}],
                            "env": [{"name": "CIRCUIT_BREAKER_ENABLED", "value": "false"}],
                            "resources": {
                                "requests": {"cpu": "250m", "memory": "256Mi"},
                                "limits": {"cpu": "1", "memory": "512Mi"},
                            },
                        }
                    ]
                },
            },
        },
    }


def alert_rules(
    service: str = SERVICE,
    window: str = RATE_WINDOW,
    *,
    namespace: str = NAMESPACE,
    runbooks_url: str = RUNBOOKS_URL,
) -> str:
    """The template's alert rules at lab speed (short windows, short ``for``).

    Each alert names its runbook in the ``runbook`` label and links it in the ``runbook_url``
    annotation. Summaries name the service literally: ``sum(...)`` drops the ``service``
    label, so the template's ``{{ $labels.service }}`` would render empty. The lab's hour is a
    minute: ``PodCrashLooping`` counts restarts over ``1m`` where the template says ``1h``."""

    def rule(alert: str, expr: str, for_: str, severity: str, runbook: str,
             summary: str, description: str) -> dict[str, Any]:  # fmt: skip
        return {
            "alert": alert,
            "expr": expr,
            "for": for_,
            "labels": {"severity": severity, "service": service, "runbook": runbook},
            "annotations": {
                "summary": summary,
                "description": description,
                "runbook_url": f"{runbooks_url}/{runbook}.ipynb",
            },
        }

    restarts = (
        f'increase(kube_pod_container_status_restarts_total{{namespace="{namespace}", '
        f'container="{CONTAINER}"}}[1m])'
    )
    rules = [
        rule(
            "HighErrorRate",
            f"{render('error_rate', service=service, window=window)} > 0.01",
            "5s", "critical", "high-error-rate",
            f"High error rate on {service}", "Error rate is {{ $value | humanizePercentage }}",
        ),
        rule(
            "HighLatency",
            f"{render('latency_p99', service=service, window=window)} > 0.5",
            "10s", "warning", "high-latency",
            f"High latency on {service}", "p99 latency is {{ $value | humanizeDuration }}",
        ),
        rule(
            "DatabaseConnectionPoolExhausted",
            f'database_connection_pool_size{{service="{service}", state="waiting"}} > 0',
            "5s", "critical", "db-connection-pool-exhausted",
            f"Database connection pool exhausted on {service}",
            "{{ $value }} connections waiting",
        ),
        rule(
            "PodCrashLooping",
            f"{restarts} > 3",
            "5s", "critical", "pod-crash-looping",
            f"Pod {{{{ $labels.pod }}}} of {service} crash looping",
            "{{ $value | printf \"%.0f\" }} restarts in the last minute",
        ),
    ]  # fmt: skip
    return yaml.safe_dump({"groups": [{"name": "service-alerts", "rules": rules}]}, sort_keys=False)


def _revision(obj: Mapping[str, Any]) -> int:
    try:
        return int(((obj.get("metadata") or {}).get("annotations") or {}).get(REVISION, 0))
    except (TypeError, ValueError):
        return 0


def _owned_by(pod: Mapping[str, Any], owner: str) -> bool:
    refs = (pod.get("metadata") or {}).get("ownerReferences") or []
    if refs:
        return any(r.get("name") == owner for r in refs)
    return str(pod["metadata"]["name"]).startswith(owner + "-")


def _ready(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    if (pod.get("metadata") or {}).get("deletionTimestamp"):
        return False
    if status.get("phase") not in (None, "Running"):
        return False
    for cond in status.get("conditions") or []:
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    return True


def _container(template: Mapping[str, Any]) -> dict[str, Any]:
    for c in (template.get("spec") or {}).get("containers") or []:
        if c.get("name") == CONTAINER:
            return dict(c)
    return {}


def _seed_container() -> dict[str, Any]:
    """The good release's container as seeded (what ``clear()`` restores)."""
    seed = deployment_manifest(f"{IMAGE_REPO}:{GOOD_VERSION}", f"deploy {GOOD_VERSION}")
    return _container(seed["spec"]["template"])


class Lab:
    """Everything a runbook needs, for real, on 127.0.0.1. See the module docstring."""

    def __init__(
        self,
        workdir: str | os.PathLike[str],
        *,
        with_alertmanager: bool = True,
        rps: float = 20.0,
        control_port: int = 0,
        pool_size: int = 5,
        pg_password: str | None = None,
    ) -> None:
        self.workdir = Path(workdir).resolve()
        self.with_alertmanager = with_alertmanager
        self.rps = rps
        self.control_port = control_port
        self.pool_size = pool_size
        # reuse an exported password so a CLI in another shell keeps working across restarts
        self.pg_password = pg_password or os.environ.get(PASSWORD_ENV) or secrets.token_urlsafe(16)
        self.fault = "none"
        self.postgres: processes.Postgres | None = None
        self.redis: processes.Redis | None = None
        self.kube: Any = None
        self.payments: PaymentsProvider | None = None
        self.app: LabApp | None = None
        self.alertmanager: processes.Alertmanager | None = None
        self.prometheus: processes.Prometheus | None = None
        self.traffic: Traffic | None = None
        self.kubeconfig: Path | None = None
        self._control: ThreadingHTTPServer | None = None
        self._stops: list[Callable[[], None]] = []
        self._lock = threading.RLock()
        self._faults: dict[str, Fault] = make_faults()

    # lifecycle ----------------------------------------------------------------------------

    def start(self) -> Lab:
        """Start every component; on any failure, stop what was started and re-raise."""
        from .kubeapi import KubeAPIServer  # written alongside; imported late on purpose

        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self.postgres = processes.start_postgres(self.workdir, password=self.pg_password)
            self._stops.append(self.postgres.stop)
            os.environ[PASSWORD_ENV] = self.pg_password  # the target file refers to it

            self.redis = processes.start_redis(self.workdir)
            self._stops.append(self.redis.stop)

            self.kube = KubeAPIServer(host="127.0.0.1", port=0).start()
            self._stops.append(self.kube.stop)
            self.kube.store.apply(
                deployment_manifest(f"{IMAGE_REPO}:{GOOD_VERSION}", f"deploy {GOOD_VERSION}")
            )
            self.kubeconfig = Path(
                self.kube.write_kubeconfig(
                    self.workdir / "kubeconfig", context=TARGET_NAME, namespace=NAMESPACE
                )
            )

            self.payments = PaymentsProvider().start()
            self._stops.append(self.payments.stop)

            self.app = LabApp(
                self.postgres.conninfo(),
                self.redis.url,
                template_provider=self.template,
                pods_provider=self.current_pods,
                pool_size=self.pool_size,
                log_dir=self.workdir / "pod-logs",
                payments_url=self.payments.url,
            )
            self.app.start()
            self._stops.append(self.app.stop)
            self.app.registry.register(KubeStateMetrics(self.kube.store, NAMESPACE))
            self.kube.store.set_log_provider(self._pod_log)

            am_url = None
            if self.with_alertmanager:
                self.alertmanager = processes.start_alertmanager(self.workdir)
                self._stops.append(self.alertmanager.stop)
                am_url = self.alertmanager.url
            rules = self.workdir / "alert-rules.yml"
            rules.write_text(alert_rules())
            self.prometheus = processes.start_prometheus(
                self.workdir,
                scrape_targets=[f"127.0.0.1:{self.app.port}"],
                rule_files=[rules],
                alertmanager_url=am_url,
            )
            self._stops.append(self.prometheus.stop)

            # the clients wait longer than the service's own timeouts, so they see its 5xx
            self.traffic = Traffic(
                self.app.url, rps=self.rps, workers=TRAFFIC_WORKERS, timeout=CLIENT_TIMEOUT
            ).start()
            self._stops.append(self.traffic.stop)

            self._start_fault_thread()
            self._start_control()
            self._write_lab_json()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop everything that was started, newest first; never raises."""
        while self._stops:
            stop = self._stops.pop()
            with contextlib.suppress(Exception):
                stop()
        with contextlib.suppress(OSError):
            (self.workdir / "lab.json").unlink()

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # wiring between the service and the Kubernetes test API server ---------------------------

    def deployment(self) -> dict[str, Any] | None:
        return self.kube.store.get("Deployment", NAMESPACE, SERVICE) if self.kube else None

    def template(self) -> dict[str, Any]:
        """The Deployment's pod template (``spec.template``) as the API server has it."""
        dep = self.deployment()
        return (dep or {}).get("spec", {}).get("template", {})

    def replica_sets(self) -> list[dict[str, Any]]:
        rss = self.kube.store.list("ReplicaSet", NAMESPACE, SELECTOR)
        return sorted(rss, key=_revision)

    def revision_pods(self) -> list[dict[str, Any]]:
        """The pods of the Deployment's current ReplicaSet, ready or not, by name."""
        pods = self.kube.store.list("Pod", NAMESPACE, SELECTOR)
        rss = self.replica_sets()
        dep = self.deployment() or {}
        current = [rs for rs in rss if _revision(rs) == _revision(dep)] or rss[-1:]
        if current:
            owner = current[0]["metadata"]["name"]
            mine = [p for p in pods if _owned_by(p, owner)]
            if mine:
                pods = mine
        return sorted(pods, key=lambda p: str(p["metadata"]["name"]))

    def current_pods(self) -> list[str]:
        """Ready pods of the Deployment's current ReplicaSet (the ones serving traffic)."""
        return [str(p["metadata"]["name"]) for p in self.revision_pods() if _ready(p)]

    def _pod_log(
        self, namespace: str, pod: str, container: str | None, previous: bool
    ) -> str | None:
        if self.app is None or namespace != NAMESPACE:
            return None
        text = self.app.logs_for(pod, previous=previous)
        # no previous container: let the API server answer as Kubernetes does (an error)
        return None if previous and not text else text

    # faults -------------------------------------------------------------------------------

    def faults(self) -> list[str]:
        return list(FAULTS)

    def inject(self, fault: str) -> None:
        """Make the fault happen, after clearing any other; ``none`` clears. Raises
        ValueError for an unknown fault."""
        if fault not in self._faults:
            raise ValueError(f"unknown fault {fault!r}; available: {', '.join(FAULTS)}")
        with self._lock:
            if fault != "none" and self.active_fault() == fault:
                return  # already in effect: do not stack another revision
            self.clear()
            if fault == "none":
                return
            try:
                self._faults[fault].inject(self)
            except BaseException:
                self.clear()
                raise
            self.fault = fault

    def clear(self) -> None:
        """End every fault and restore the good pod template (a bad release is rolled forward
        to the good image; env and resources go back to the seed's)."""
        with self._lock:
            for fault in self._faults.values():
                fault.clear(self)
            if self.kube is not None:
                self.restore_good_template()
            self.fault = "none"

    def active_fault(self) -> str:
        """The injected fault still in effect: a runbook may have fixed it (a rollback of the
        bad release, terminated sessions, a raised memory limit), and then the lab reports
        ``none``."""
        with self._lock:
            self._check_fault(tick=False)
            return self.fault

    def _check_fault(self, tick: bool) -> None:
        fault = self._faults[self.fault]
        if self.fault == "none" or self.kube is None:
            return
        if not fault.in_effect(self):
            fault.clear(self)  # fixed from outside: end what is left of it, keep the template
            self.fault = "none"
        elif tick:
            fault.tick(self)

    def _start_fault_thread(self) -> None:
        stopping = threading.Event()

        def run() -> None:
            while not stopping.wait(TICK_SECONDS):
                try:
                    with self._lock:
                        self._check_fault(tick=True)
                except Exception:  # a broken tick must not end the thread (nor the lab)
                    log.exception("lab fault tick failed")

        thread = threading.Thread(target=run, name="lab-faults", daemon=True)
        thread.start()

        def stop_faults() -> None:
            stopping.set()
            thread.join(5.0)
            with self._lock:  # give connections back and let hung callers go before the rest
                for fault in self._faults.values():
                    with contextlib.suppress(Exception):
                        fault.clear(self)
                self.fault = "none"

        self._stops.append(stop_faults)

    def image(self) -> str:
        for c in self.template().get("spec", {}).get("containers", []):
            if c.get("name") == CONTAINER:
                return str(c.get("image", ""))
        return ""

    def release(self, version: str, change_cause: str, *, memory_limit: str | None = None) -> None:
        """Apply the current Deployment with the image of ``version`` (and a memory limit), as
        `kubectl set image` would: the rest of the spec (replicas, env a runbook set) is
        kept."""

        def change(c: dict[str, Any]) -> None:
            c["image"] = f"{IMAGE_REPO}:{version}"
            if memory_limit is not None:
                c.setdefault("resources", {}).setdefault("limits", {})["memory"] = memory_limit

        self._apply_container(change_cause, change)

    def restore_good_template(self) -> None:
        """Put back the seed's image, env and resources if anything differs (a new revision
        then, as a rollback would make); a template already good is left alone."""
        good = _seed_container()
        current = _container(self.template())
        if all(current.get(k) == good.get(k) for k in TEMPLATE_FIELDS):
            return

        def change(c: dict[str, Any]) -> None:
            for key in TEMPLATE_FIELDS:
                c[key] = copy.deepcopy(good[key])

        self._apply_container(f"rollback to {GOOD_VERSION}", change)

    def _apply_container(self, change_cause: str, change: Callable[[dict[str, Any]], None]) -> None:
        dep = copy.deepcopy(self.deployment()) or deployment_manifest(
            f"{IMAGE_REPO}:{GOOD_VERSION}", change_cause
        )
        dep.pop("status", None)
        meta = dep.setdefault("metadata", {})
        for key in ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"):
            meta.pop(key, None)
        meta.setdefault("annotations", {})[CHANGE_CAUSE] = change_cause
        for c in dep["spec"]["template"]["spec"]["containers"]:
            if c.get("name") == CONTAINER:
                change(c)
        self.kube.store.apply(dep)

    # description for other processes ------------------------------------------------------

    def status(self) -> dict[str, Any]:
        stats = self.traffic.stats() if self.traffic else None
        return {
            "target": TARGET_NAME,
            "fault": self.active_fault(),
            "faults": FAULTS,
            "image": self.image() if self.kube else None,
            "pods": self.current_pods() if self.kube else [],
            "traffic": stats.__dict__ if stats else None,
            "urls": self.urls(),
        }

    def urls(self) -> dict[str, str | None]:
        return {
            "app": self.app.url if self.app else None,
            "prometheus": self.prometheus.url if self.prometheus else None,
            "alertmanager": self.alertmanager.url if self.alertmanager else None,
            "kubernetes": self.kube.url if self.kube else None,
            "postgres": self.postgres.url if self.postgres else None,
            "redis": self.redis.url if self.redis else None,
            PAYMENTS: self.payments.url if self.payments else None,
            "control": self.control_url,
        }

    @property
    def control_url(self) -> str | None:
        return f"http://127.0.0.1:{self._control.server_address[1]}" if self._control else None

    def target_spec(self) -> dict[str, Any]:
        """The ``lab`` target in the format of opsnb/config.py; the password is a reference."""
        assert self.postgres and self.redis and self.prometheus and self.app and self.kubeconfig
        assert self.payments
        spec: dict[str, Any] = {
            "description": f"opsnb lab in {self.workdir} (python -m opsnb.lab)",
            "kubernetes": {
                "kubeconfig": str(self.kubeconfig),
                "context": TARGET_NAME,
                "namespace": NAMESPACE,
            },
            "prometheus": {"url": self.prometheus.url, "rate_window": RATE_WINDOW},
            "postgres": {
                "host": self.postgres.host,
                "port": self.postgres.port,
                "dbname": self.postgres.dbname,
                "user": self.postgres.user,
                "password": {"env": PASSWORD_ENV},
            },
            "redis": {"url": self.redis.url},
            "services": {
                SERVICE: {
                    "selector": SELECTOR,
                    "deployment": SERVICE,
                    "container": CONTAINER,
                    "dependencies": {
                        "database": f"{self.app.url}/health/db",
                        "cache": f"{self.app.url}/health/cache",
                        PAYMENTS: f"{self.payments.url}/health",
                    },
                }
            },
            "default_service": SERVICE,
            "policy": {"allow_apply": True},
        }
        if self.alertmanager:
            spec["alertmanager"] = {"url": self.alertmanager.url}
        return spec

    def write_target(self, config_dir: str | os.PathLike[str]) -> Path:
        """Write ``<config_dir>/targets.d/lab.yaml``; returns its path."""
        path = Path(config_dir) / "targets.d" / f"{TARGET_NAME}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        header = (
            f"# Written by the opsnb lab running in {self.workdir}; rewritten on each start.\n"
            f"# Faults: POST {self.control_url}/fault/<name> (names: {', '.join(FAULTS)}),\n"
            f"#         GET {self.control_url}/status. Details: {self.workdir / 'lab.json'}\n"
            f"# The PostgreSQL password is not stored here: export {PASSWORD_ENV}=... as the\n"
            "# lab printed when it started.\n"
        )
        body = yaml.safe_dump({"targets": {TARGET_NAME: self.target_spec()}}, sort_keys=False)
        path.write_text(header + body)
        return path

    def _write_lab_json(self) -> None:
        info = {
            "target": TARGET_NAME,
            "pid": os.getpid(),
            "workdir": str(self.workdir),
            "kubeconfig": str(self.kubeconfig),
            "password_env": PASSWORD_ENV,
            "faults": FAULTS,
            "urls": self.urls(),
        }
        (self.workdir / "lab.json").write_text(json.dumps(info, indent=2) + "\n")

    # control endpoint ---------------------------------------------------------------------

    def _start_control(self) -> None:
        handler = type("ControlHandler", (_ControlHandler,), {"lab": self})
        self._control = ThreadingHTTPServer(("127.0.0.1", self.control_port), handler)
        self._control.daemon_threads = True
        thread = threading.Thread(
            target=self._control.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="lab-control",
            daemon=True,
        )
        thread.start()

        def stop_control() -> None:
            assert self._control is not None
            self._control.shutdown()
            self._control.server_close()
            self._control = None

        self._stops.append(stop_control)


def read_lab_json(workdir: str | os.PathLike[str]) -> dict[str, Any]:
    """What a running lab wrote about itself (for a CLI in another process)."""
    return dict(json.loads((Path(workdir) / "lab.json").read_text()))


class _ControlHandler(BaseHTTPRequestHandler):
    lab: Lab
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes; with Nagle on, keep-alive clients wait ~40 ms
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        if self.path.rstrip("/") in ("/status", ""):
            self._reply(200, self.lab.status())
        else:
            self._reply(404, {"error": "not found; try GET /status or POST /fault/<name>"})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        match = re.fullmatch(r"/fault/([A-Za-z0-9_-]+)/?", self.path)
        if not match:
            self._reply(404, {"error": "not found; POST /fault/<name>"})
            return
        try:
            self.lab.inject(match.group(1))
        except ValueError as exc:
            self._reply(400, {"error": str(exc), "faults": FAULTS})
            return
        except Exception as exc:
            self._reply(500, {"error": f"{type(exc).__name__}: {exc}"})
            return
        self._reply(200, self.lab.status())

    def _reply(self, status: int, body: Any) -> None:
        payload = json.dumps(body, indent=2).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass
