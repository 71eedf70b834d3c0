"""Evidence snapshots: record a live target's view of one service into an ``opsnb-snapshot/1``
folder (the format the ``demo`` target serves), so the evidence outlives pod restarts and
metric retention and runbooks can be re-run against it.

    folder = capture("prod", "payments", start, end, out="snapshots/payments-incident")
    write_target("payments-incident", folder)
    # then: opsnb run high-error-rate --target payments-incident

What is recorded (see ``docs/architecture.md`` for the format):

- ``kubernetes/{pods,deployments,replicasets,events}.json`` as the API server returns the
  lists (pods by the service's selector, the service's deployment, the ReplicaSets its
  selector owns, every event of the namespace), plus ``horizontalpodautoscalers.json`` and
  ``configmaps.json`` (the deployment's HPA and ``<deployment>-config``) when present;
- ``logs/<pod>.log`` and ``logs/<pod>.previous.log``: the window's lines of each pod's
  current and previous container;
- ``metrics.json``: every named query of ``opsnb.promql.QUERIES`` rendered for the service
  with the target's rate window, as a range over the window (a query that returns nothing is
  recorded with no samples, so the snapshot answers it with an empty frame as Prometheus
  would);
- ``postgres/activity.json`` (pg_stat_activity with max_connections), and
  ``postgres/databases.json``/``replication.json``; ``redis/info.json`` (INFO all);
- ``dependencies.json``: each of the service's dependencies probed at capture time;
- ``snapshot.json``: the header, with ``unavailable: {backend: reason}`` for each backend
  that could not be read. An unavailable backend never stops the capture: its files are
  simply missing.

Secrets stay out: every string is passed through the target's ``Redactor`` (the values of
its secret references and passwords in URLs), and container environment variables and
ConfigMap keys whose names look sensitive (``password``, ``token``, ...) are replaced with
``[redacted]``. Kubernetes Secrets are never read.

The folder is written under a temporary name and renamed when complete, so a snapshot
folder is never half-written.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click
import yaml

from . import __version__
from .config import ServiceConfig, Target, config_dir, get_target, load_targets
from .errors import BackendUnavailable, OpsnbError, UsageError
from .promql import QUERIES, render
from .secrets import REDACTED, SENSITIVE_NAME, Redactor

__all__ = [
    "FORMAT",
    "MAX_POINTS",
    "capture",
    "default_folder",
    "scrub_sensitive",
    "snapshot_command",
    "target_spec",
    "write_target",
]

FORMAT = "opsnb-snapshot/1"
MAX_POINTS = 11_000  # Prometheus refuses range queries of more points per series
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
TARGET_HEADER = "# Written by `opsnb snapshot --as-target`: a recorded snapshot, read-only.\n"
_LINE_TIME = re.compile(r"^(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)\s")
_INT_COLUMNS = {"datid", "pid", "leader_pid", "usesysid", "client_port", "query_id"}

Echo = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# --- the API ------------------------------------------------------------------------------------


def capture(
    target: Target | str,
    service: str | None = None,
    start: datetime | str | None = None,
    end: datetime | str | None = None,
    out: str | os.PathLike[str] | None = None,
    step: float = 15,
    *,
    echo: Echo = _quiet,
) -> Path:
    """Record ``service`` of the live ``target`` over [start, end] into the folder ``out``
    (default ``snapshots/<UTC time>-<service>``) and return that folder.

    ``end`` defaults to now and ``start`` to an hour before ``end``; an ``end`` in the future
    is now. The snapshot's ``now`` is ``end`` (the capture time when the window ends now).
    ``step`` is the metrics' resolution in seconds. Raises ``UsageError`` (exit 2) for a
    snapshot target, a bad window or an ``out`` folder that already holds files; backends
    that fail are recorded in ``snapshot.json``'s ``unavailable``, never raised.
    """
    resolved = get_target(target) if isinstance(target, str) else target
    if resolved.kind == "snapshot":
        raise UsageError(
            f"target {resolved.name!r} is a recorded snapshot; capture needs a live target"
        )
    svc = resolved.service(service or None)
    captured_at = _ms(datetime.now(UTC))
    end_t = captured_at if end is None else min(_ms(_utc(end)), captured_at)
    start_t = end_t - timedelta(hours=1) if start is None else _ms(_utc(start))
    if start_t >= end_t:
        raise UsageError(f"the window must start before it ends ({_iso(start_t)} >= {_iso(end_t)})")
    step_s = float(step)
    if not math.isfinite(step_s) or step_s <= 0:
        raise UsageError(f"--step must be a positive number of seconds, not {step!r}")
    points = (end_t - start_t).total_seconds() / step_s
    if points > MAX_POINTS:
        raise UsageError(
            f"{points:.0f} points per series is over Prometheus' limit of {MAX_POINTS}; "
            f"use a step of at least {math.ceil((end_t - start_t).total_seconds() / MAX_POINTS)} s"
        )
    folder = Path(out) if out is not None else default_folder(svc.name, captured_at)
    _check_free(folder)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=_parent(folder)))
    try:
        recorder = _Recorder(resolved, svc, start_t, end_t, captured_at, step_s, work, echo)
        recorder.run()
        _check_free(folder)
        if folder.exists():
            folder.rmdir()  # an empty folder the caller made for us
        work.rename(folder)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return folder


def default_folder(service: str, when: datetime | None = None) -> Path:
    """``snapshots/<UTC time>-<service>`` in the working directory."""
    when = when or datetime.now(UTC)
    return Path("snapshots") / f"{when.strftime('%Y%m%dT%H%M%SZ')}-{service}"


def target_spec(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """A target definition (the config file format) serving the snapshot in ``folder``:
    ``snapshot: <absolute folder>`` plus the recorded service as its default service."""
    path = Path(folder).resolve()
    meta = json.loads((path / "snapshot.json").read_text())
    service = str(meta["service"])
    return {
        "description": str(meta.get("description") or f"snapshot of {service}"),
        "snapshot": str(path),
        "default_service": service,
        "services": {
            service: {
                "selector": meta.get("selector") or f"app={service}",
                "deployment": meta.get("deployment") or service,
                "container": meta.get("container") or service,
                "slo": dict(meta.get("slo") or {}),
                "dependencies": dict(meta.get("dependencies") or {}),
            }
        },
        "policy": {"allow_apply": False},
    }


def write_target(name: str, folder: str | os.PathLike[str], home: Path | None = None) -> Path:
    """Write ``<config dir>/targets.d/<name>.yaml`` defining target ``name`` as the snapshot
    in ``folder``; returns the file. Refuses to replace the built-in ``demo``, a live target
    or a file it did not write."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise UsageError(f"target name {name!r}: use letters, digits, '-', '_' and '.'")
    if name == "demo":
        raise UsageError("the built-in target 'demo' cannot be replaced")
    path = (home or config_dir()) / "targets.d" / f"{name}.yaml"
    existing = load_targets().get(name)
    if existing is not None and existing.kind != "snapshot":
        raise UsageError(f"target {name!r} is a live target ({existing.source}); choose a new name")
    if path.exists() and not path.read_text().startswith(TARGET_HEADER):
        raise UsageError(f"{path} exists and was not written by opsnb snapshot; choose a new name")
    path.parent.mkdir(parents=True, exist_ok=True)
    body = yaml.safe_dump({"targets": {name: target_spec(folder)}}, sort_keys=False)
    path.write_text(TARGET_HEADER + body)
    return path


# --- helpers ------------------------------------------------------------------------------------


def _utc(value: datetime | str) -> datetime:
    if isinstance(value, str):
        text = value.strip()
        try:
            value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        except ValueError:
            raise UsageError(f"not an ISO 8601 time: {text!r}") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ms(value: datetime) -> datetime:
    """Cut to milliseconds, the precision of snapshot.json and of Prometheus' timestamps."""
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _parent(folder: Path) -> Path:
    parent = folder.absolute().parent
    parent.mkdir(parents=True, exist_ok=True)
    return parent


def _check_free(folder: Path) -> None:
    if folder.is_file() or (folder.is_dir() and any(folder.iterdir())):
        raise UsageError(f"{folder} already exists and is not empty; a snapshot is never replaced")


def _plain(value: Any) -> Any:
    """JSON-ready: bytes decoded, datetimes ISO, numpy scalars as Python, NaN as null."""
    if isinstance(value, Mapping):
        return {str(_plain(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "backslashreplace")
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "isoformat"):  # datetime, pandas Timestamp (NaT is caught below)
        try:
            return None if value != value else value.isoformat()
        except (TypeError, ValueError):
            return None
    if hasattr(value, "item"):  # numpy scalar
        return _plain(value.item())
    return str(value)


def _records(frame: Any) -> list[dict[str, Any]]:
    """A DataFrame's rows as plain dicts; missing values null, integral columns ints."""
    rows = []
    for record in frame.to_dict(orient="records"):
        row = {}
        for key, value in record.items():
            plain = None if _missing(value) else _plain(value)
            if key in _INT_COLUMNS and isinstance(plain, float) and plain.is_integer():
                plain = int(plain)
            row[str(key)] = plain
        rows.append(row)
    return rows


def _missing(value: Any) -> bool:
    import pandas as pd

    try:
        return bool(pd.isna(value))  # NaN, NaT, pd.NA
    except (TypeError, ValueError):  # a list or a dict: not a missing scalar
        return False


def scrub_sensitive(value: Any, *, configmaps: bool = False) -> Any:
    """Kubernetes objects with the values of sensitive-looking container env variables
    (also inside the last-applied-configuration annotation) redacted; with ``configmaps``,
    the ConfigMap ``data`` keys that look sensitive too."""
    if isinstance(value, list):
        return [scrub_sensitive(v, configmaps=configmaps) for v in value]
    if not isinstance(value, Mapping):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        if key == "env" and isinstance(item, list):
            out[key] = [_scrub_env(e) for e in item]
        elif key == LAST_APPLIED and isinstance(item, str):
            try:
                out[key] = json.dumps(scrub_sensitive(json.loads(item)), separators=(",", ":"))
            except ValueError:
                out[key] = item
        elif configmaps and key in ("data", "binaryData") and isinstance(item, Mapping):
            out[key] = {k: (REDACTED if SENSITIVE_NAME.search(str(k)) else v)
                        for k, v in item.items()}  # fmt: skip
        else:
            out[key] = scrub_sensitive(item, configmaps=configmaps)
    return out


def _scrub_env(entry: Any) -> Any:
    name = str(entry.get("name", "")) if isinstance(entry, Mapping) else ""
    if isinstance(entry, Mapping) and "value" in entry and SENSITIVE_NAME.search(name):
        return {**entry, "value": REDACTED}
    return scrub_sensitive(entry)


def _lines_between(text: str, since: datetime, until: datetime) -> list[str]:
    """Lines stamped in [since, until]; an unstamped line (a stack trace) goes with the line
    before it."""
    import pandas as pd

    keep: list[str] = []
    include = True
    for line in text.splitlines():
        m = _LINE_TIME.match(line)
        if m:
            when = pd.Timestamp(m.group(1).replace(",", "."))
            when = when.tz_localize("UTC") if when.tzinfo is None else when.tz_convert("UTC")
            include = since <= when <= until
        if include:
            keep.append(line)
    return keep


# --- the recording ------------------------------------------------------------------------------


@dataclass
class _Recorder:
    target: Target
    service: ServiceConfig
    start: datetime
    end: datetime
    captured_at: datetime
    step: float
    folder: Path
    echo: Echo
    unavailable: dict[str, str] = field(default_factory=dict)
    redactor: Redactor = field(init=False)

    def __post_init__(self) -> None:
        self.redactor = self.target.redactor()

    @property
    def namespace(self) -> str:
        return self.target.kubernetes.namespace if self.target.kubernetes else "default"

    @property
    def rate_window(self) -> str:
        return self.target.prometheus.rate_window if self.target.prometheus else "5m"

    # writing (everything goes through the redactor) ---------------------------------------------

    def write_json(self, relative: str, data: Any, *, compact_series: bool = False) -> None:
        clean = self.redact(_plain(data))
        if compact_series:
            rows = ",\n".join("  " + json.dumps(s, separators=(",", ":")) for s in clean["series"])
            text = '{"series": [\n' + rows + ("\n" if rows else "") + "]}\n"
        else:
            text = json.dumps(clean, indent=2, ensure_ascii=False) + "\n"
        self._write(relative, text)

    def redact(self, value: Any) -> Any:
        """Every string redacted, mapping keys included."""
        if isinstance(value, str):
            return self.redactor.text(value)
        if isinstance(value, Mapping):
            return {self.redactor.text(str(k)): self.redact(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.redact(v) for v in value]
        return value

    def write_text(self, relative: str, text: str) -> None:
        self._write(relative, self.redactor.text(text))

    def _write(self, relative: str, text: str) -> None:
        path = self.folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")

    def down(self, backend: str, reason: str) -> None:
        reason = self.redactor.text(str(reason))
        self.unavailable[backend] = reason
        self.echo(f"unavailable: {backend}: {reason}")

    def attempt(self, backend: str, step: Callable[[], None]) -> None:
        """Run one backend's recording; a failure is noted, never raised."""
        began = time.monotonic()
        try:
            step()
        except BackendUnavailable as exc:
            self.down(backend, exc.reason)
        except OpsnbError as exc:  # a missing secret, a kubeconfig that cannot load
            self.down(backend, str(exc))
        except Exception as exc:  # a client library error: still not a reason to stop
            self.down(backend, f"{type(exc).__name__}: {exc}")
        else:
            self.echo(f"captured {backend} in {time.monotonic() - began:.1f}s")

    def run(self) -> None:
        # The most perishable evidence first: pods, their logs, the databases' state now.
        self.attempt("kubernetes", self.kubernetes)
        self.attempt("postgres", self.postgres)
        self.attempt("redis", self.redis)
        self.attempt("dependencies", self.dependencies)
        self.attempt("prometheus", self.prometheus)
        self.header()

    # snapshot.json ------------------------------------------------------------------------------

    def header(self) -> None:
        svc = self.service
        now = self.end
        self.write_json(
            "snapshot.json",
            {
                "format": FORMAT,
                "service": svc.name,
                "namespace": self.namespace,
                "selector": svc.selector,
                "deployment": svc.deployment,
                "container": svc.container,
                "start": _iso(self.start),
                "end": _iso(self.end),
                "now": _iso(now),
                "step_seconds": int(self.step) if float(self.step).is_integer() else self.step,
                "rate_window": self.rate_window,
                "description": (
                    f"{svc.name} on target {self.target.name}: evidence captured by opsnb "
                    f"snapshot at {_iso(self.captured_at)} for {_iso(self.start)} to "
                    f"{_iso(self.end)}."
                ),
                "slo": dict(svc.slo),
                "dependencies": dict(svc.dependencies),
                "target": self.target.name,
                "captured_at": _iso(self.captured_at),
                "captured_by": f"opsnb {__version__}",
                "unavailable": dict(self.unavailable),
            },
        )

    # Kubernetes ---------------------------------------------------------------------------------

    def kubernetes(self) -> None:
        from .runtime import connect

        k8s = connect.kubernetes(self.target, None)
        svc = self.service

        def listing(what: str, method: Any, **kwargs: Any) -> dict[str, Any]:
            return dict(k8s._call(what, method, k8s.namespace, **kwargs))

        pods = listing("list pods", k8s.core.list_namespaced_pod, label_selector=svc.selector)
        self.write_json("kubernetes/pods.json", scrub_sensitive(pods))
        deployments = listing(
            f"deployment/{svc.deployment}",
            k8s.apps.list_namespaced_deployment,
            field_selector=f"metadata.name={svc.deployment}",
        )
        self.write_json("kubernetes/deployments.json", scrub_sensitive(deployments))
        owner = (deployments.get("items") or [{}])[0]
        labels = ((owner.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items())) or svc.selector
        replicasets = listing(
            "list replicasets", k8s.apps.list_namespaced_replica_set, label_selector=selector
        )
        self.write_json("kubernetes/replicasets.json", scrub_sensitive(replicasets))
        events = listing("list events", k8s.core.list_namespaced_event)
        self.write_json("kubernetes/events.json", events)
        self.optional_kubernetes(k8s, listing)
        self.logs(k8s, pods)

    def optional_kubernetes(self, k8s: Any, listing: Callable[..., dict[str, Any]]) -> None:
        """The deployment's HPA and ``<deployment>-config``, when the cluster has them."""
        name = self.service.deployment
        wanted = (
            (
                "horizontalpodautoscalers.json",
                f"hpa/{name}",
                k8s.autoscaling.list_namespaced_horizontal_pod_autoscaler,
                name,
            ),
            (
                "configmaps.json",
                f"configmap/{name}-config",
                k8s.core.list_namespaced_config_map,
                f"{name}-config",
            ),
        )
        for file, what, method, object_name in wanted:
            try:
                found = listing(what, method, field_selector=f"metadata.name={object_name}")
            except BackendUnavailable:
                raise
            except Exception:  # not served by this cluster (404), not allowed: optional
                continue
            if found.get("items"):
                configmaps = file == "configmaps.json"
                self.write_json(f"kubernetes/{file}", scrub_sensitive(found, configmaps=configmaps))

    def logs(self, k8s: Any, pods: Mapping[str, Any]) -> None:
        from .backends.kube_objects import LogsNotFound, default_container

        since = max(1, math.ceil((self.captured_at - self.start).total_seconds()) + 1)
        for pod in sorted(pods.get("items") or [], key=lambda p: str(p["metadata"]["name"])):
            name = str(pod["metadata"]["name"])
            names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
            container = self.service.container if self.service.container in names else None
            container = container or default_container(pod)
            for previous in (False, True):
                try:
                    lines = k8s.logs(
                        name, container=container, previous=previous, since_seconds=since
                    )
                except LogsNotFound:
                    continue
                except BackendUnavailable as exc:
                    self.down("logs", f"pod/{name}: {exc}")
                    return
                kept = _lines_between("\n".join(lines), self.start, self.end)
                if previous and not kept:
                    continue
                suffix = ".previous.log" if previous else ".log"
                self.write_text(f"logs/{name}{suffix}", "".join(line + "\n" for line in kept))

    # PostgreSQL and Redis -----------------------------------------------------------------------

    def postgres(self) -> None:
        from .runtime import connect

        pg = connect.postgres(self.target, None)
        activity = pg.activity()
        at = datetime.now(UTC)
        self.write_json(
            "postgres/activity.json",
            {
                "captured_at": _iso(at),
                "max_connections": pg.max_connections(),
                "activity": _records(activity),
            },
        )
        for relative, key, call in (
            ("postgres/databases.json", "databases", pg.database_sizes),
            ("postgres/replication.json", "replication", pg.replication),
        ):
            try:
                frame = call()
            except Exception as exc:  # a permission this user lacks: keep the rest
                self.down(f"postgres {key}", f"{type(exc).__name__}: {exc}")
                continue
            if key == "databases":
                frame = frame[["datname", "size_bytes"]]
            self.write_json(relative, {"captured_at": _iso(at), key: _records(frame)})

    def redis(self) -> None:
        from .runtime import connect

        cache = connect.redis(self.target, None)
        try:
            info = cache.info("all")
        finally:
            cache.close()
        self.write_json("redis/info.json", {"captured_at": _iso(datetime.now(UTC)), "info": info})

    # dependencies -------------------------------------------------------------------------------

    def dependencies(self) -> None:
        import httpx

        results: dict[str, Any] = {}
        for name, url in self.service.dependencies.items():
            began = time.monotonic()
            try:
                response = httpx.get(url, timeout=3.0)
                ok, detail = response.status_code < 500, f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                ok, detail = False, f"{type(exc).__name__}: {exc}"
            results[name] = {
                "url": url,
                "status": "ok" if ok else "down",
                "detail": detail,
                "latency_ms": round((time.monotonic() - began) * 1000, 1),
            }
        self.write_json("dependencies.json", results)

    # Prometheus ---------------------------------------------------------------------------------

    def prometheus(self) -> None:
        from .backends.prometheus import PrometheusQueryError
        from .runtime import connect

        prom = connect.prometheus(self.target, None)
        series: list[dict[str, Any]] = []
        # evaluated at now, now - step, ...: the newest point is the snapshot's present
        span = (self.end - self.start).total_seconds()
        first = self.end.timestamp() - math.floor(span / self.step + 1e-9) * self.step
        try:
            for name in QUERIES:
                expr = render(name, service=self.service.name, window=self.rate_window)
                params = {
                    "query": expr,
                    "start": f"{first:.3f}",
                    "end": f"{self.end.timestamp():.3f}",
                    "step": f"{self.step:g}",
                }
                try:
                    data = prom._get("/api/v1/query_range", params) or {}
                except PrometheusQueryError as exc:
                    self.down(f"prometheus {name}", str(exc))
                    continue
                found = [
                    {
                        "query": expr,
                        "metric": dict(s.get("metric") or {}),
                        "values": list(s.get("values") or []),
                    }
                    for s in data.get("result") or []
                ]
                # "recorded, no data" answers like Prometheus: an empty result, not an error
                series.extend(found or [{"query": expr, "metric": {}, "values": []}])
        finally:
            prom.close()
        self.write_json("metrics.json", {"series": series}, compact_series=True)


# --- the command line ---------------------------------------------------------------------------


@click.command("snapshot")
@click.option("--target", "-t", "target", required=True, help="The live target to record.")
@click.option("--service", "-s", default="", help="Service (default: the target's default).")
@click.option(
    "--minutes",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Record the last N minutes (default 60).",
)
@click.option("--start", default=None, metavar="ISO", help="Window start (ISO 8601, UTC if naive).")
@click.option("--end", default=None, metavar="ISO", help="Window end (default: now).")
@click.option(
    "--step",
    type=click.FloatRange(min=0, min_open=True),
    default=15.0,
    show_default=True,
    help="Metrics resolution, seconds.",
)
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    default=None,
    help="The snapshot folder to write (default snapshots/<UTC time>-<service>).",
)
@click.option(
    "--as-target",
    "as_target",
    default=None,
    metavar="NAME",
    help="Also define target NAME serving the snapshot (in <config dir>/targets.d).",
)
def snapshot_command(
    target: str,
    service: str,
    minutes: float | None,
    start: str | None,
    end: str | None,
    step: float,
    out: Path | None,
    as_target: str | None,
) -> None:
    """Record a live target's evidence for a service into a snapshot folder.

    Kubernetes objects and pod logs, the SLI and key metric series, PostgreSQL activity,
    Redis INFO and dependency probes, in the opsnb-snapshot/1 format; runbooks run against
    it through a target with `snapshot: DIR` (see --as-target). A backend that cannot be
    read is noted in snapshot.json's `unavailable` and the capture goes on. Prints the
    folder as the last line.
    """
    if minutes is not None and start is not None:
        raise click.UsageError("give --minutes or --start, not both")
    if minutes is not None:
        end_t = _utc(end) if end else datetime.now(UTC)
        start_value: datetime | str | None = end_t - timedelta(minutes=minutes)
        end_value: datetime | str | None = end_t
    else:
        start_value, end_value = start, end
    echo: Echo = lambda line: click.echo(line, err=True)  # noqa: E731
    folder = capture(target, service or None, start_value, end_value, out, step, echo=echo)
    meta = json.loads((folder / "snapshot.json").read_text())
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    logs = sum(1 for f in files if f.startswith("logs/"))
    echo(
        f"snapshot of {meta['service']} from {meta['start']} to {meta['end']}: "
        f"{len(files)} files ({logs} logs)"
    )
    for backend, reason in (meta.get("unavailable") or {}).items():
        echo(f"not recorded: {backend}: {reason}")
    if as_target:
        path = write_target(as_target, folder)
        echo(f"target {as_target!r} serves this snapshot ({path})")
    click.echo(str(folder))
