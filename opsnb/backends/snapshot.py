"""Recorded evidence (the ``opsnb-snapshot/1`` folder format) behind the live backends' calls.

    snap = Snapshot.open_for_service("incidents/", "payments")
    SnapshotPrometheus(snap).named_range("error_rate", "payments", "5m", start, end, 60)
    SnapshotKubernetes(snap).pods("app=payments")

Each ``Snapshot*`` class has the method names and return columns of its live twin, so a
runbook cell runs unchanged against a snapshot. The snapshot's ``now`` is the present: range
queries stop there, instant queries evaluate there, and log lines after it are not shown.
Snapshots are read-only: mutating calls only describe what they would do.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import BackendUnavailable
from . import snapshot_index
from .kube_objects import (
    RESTARTED_AT,
    Change,
    LogsNotFound,
    ObjectNotFound,
    container_env,
    container_resources,
    default_container,
    deployment_manifest,
    deployment_summary,
    describe_apply,
    describe_hpa,
    describe_image,
    describe_resources,
    events_frame,
    find_container,
    hpa_patch,
    hpa_summary,
    merge_resources,
    pods_frame,
    rollback_change,
    rollback_plan,
    rollout_history_frame,
    rollout_result,
    set_image_template,
    set_resources_template,
    since_time,
    strategic_merge,
    template_diff,
    timestamp,
    utc,
)
from .prometheus import NamedQueries, duration_seconds, series_frame, unix_seconds

__all__ = [
    "FORMAT",
    "READ_ONLY",
    "Snapshot",
    "SnapshotKubernetes",
    "SnapshotPrometheus",
    "normalise_query",
]

FORMAT = "opsnb-snapshot/1"
READ_ONLY = "snapshot targets are read-only"
LOOKBACK_SECONDS = 300.0  # Prometheus' default staleness window


class Snapshot:
    """One snapshot folder: ``snapshot.json`` plus the recorded files (read lazily).

    Attributes from snapshot.json: ``meta`` (the whole dict), ``service``, ``namespace``,
    ``selector``, ``deployment``, ``container``, ``start``, ``end``, ``now`` (tz-aware UTC
    Timestamps), ``step_seconds``, ``rate_window``, ``description``, ``slo``.
    ``now`` can be moved (e.g. to ``end`` for a postmortem) with ``Snapshot(path, now=...)``.
    """

    def __init__(self, path: str | Path, *, now: datetime | pd.Timestamp | str | None = None):
        self.path = Path(path)
        meta_file = self.path / "snapshot.json"
        if not meta_file.is_file():
            raise LookupError(f"{self.path} is not a snapshot: it has no snapshot.json")
        try:
            meta = json.loads(meta_file.read_text())
        except ValueError as exc:
            raise ValueError(f"{meta_file} is not valid JSON: {exc}") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else None
            raise ValueError(f"{meta_file}: format {found!r} is not {FORMAT!r}")
        for key in ("service", "now"):
            if not meta.get(key):
                raise ValueError(f"{meta_file}: {key!r} is missing")
        self.meta: dict[str, Any] = meta
        self.service: str = str(meta["service"])
        self.namespace: str = str(meta.get("namespace") or "default")
        self.selector: str = str(meta.get("selector") or f"app={self.service}")
        self.deployment: str = str(meta.get("deployment") or self.service)
        self.container: str = str(meta.get("container") or self.service)
        self.now: pd.Timestamp = utc(now if now is not None else meta["now"])
        self.start: pd.Timestamp = utc(meta.get("start") or self.now)
        self.end: pd.Timestamp = utc(meta.get("end") or self.now)
        self.step_seconds: int = int(meta.get("step_seconds") or 60)
        self.rate_window: str = str(meta.get("rate_window") or "5m")
        self.description: str = str(meta.get("description") or "")
        self.slo: dict[str, float] = dict(meta.get("slo") or {})
        self._cache: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"Snapshot({str(self.path)!r}, service={self.service!r}, now={self.now.isoformat()})"

    # --- finding snapshots ------------------------------------------------------------------

    services = staticmethod(snapshot_index.services)

    @classmethod
    def open_for_service(cls, root: str | Path, service: str | None = None) -> Snapshot:
        """The snapshot of ``service`` in ``root`` (one snapshot, or a folder of snapshots
        with one subfolder per service). Raises LookupError naming the services there."""
        return cls(snapshot_index.require(root, service))

    # --- files ------------------------------------------------------------------------------

    def read_json(self, relative: str) -> Any | None:
        """A recorded JSON file (parsed once), or None when the snapshot does not have it."""
        if relative not in self._cache:
            path = self.path / relative
            if not path.is_file():
                self._cache[relative] = None
            else:
                try:
                    self._cache[relative] = json.loads(path.read_text())
                except ValueError as exc:
                    raise ValueError(f"{path} is not valid JSON: {exc}") from None
        return self._cache[relative]

    @cached_property
    def dependencies(self) -> dict[str, dict[str, Any]]:
        """name -> {url, status ("ok"/"down"/"unknown"), detail, latency_ms}: the probes of
        dependencies.json, with the URLs of snapshot.json for dependencies it lacks."""
        declared = self.meta.get("dependencies") or {}
        probed = self.read_json("dependencies.json") or {}
        out: dict[str, dict[str, Any]] = {}
        for name in [*declared, *[n for n in probed if n not in declared]]:
            url = declared.get(name)
            if isinstance(url, Mapping):
                url = url.get("url")
            entry = {
                "url": url or "",
                "status": "unknown",
                "detail": "not probed",
                "latency_ms": None,
            }
            if isinstance(probed.get(name), Mapping):
                entry.update(probed[name])
            out[str(name)] = entry
        return out

    def dependency_down(self, kind: str) -> str | None:
        """The recorded reason a dependency of this kind (``postgres``, ``redis``) was down."""
        for name, entry in self.dependencies.items():
            url = str(entry.get("url") or "")
            if (kind in name.lower() or url.startswith(kind)) and entry.get("status") == "down":
                return str(entry.get("detail") or "recorded as down")
        return None


# --- Prometheus ---------------------------------------------------------------------------------

_HALF_MS = 0.0005
_TOKEN_CHAR = re.compile(r"[A-Za-z0-9_:.]")


def normalise_query(expr: str) -> str:
    """PromQL text with insignificant whitespace removed (quoted strings kept as written),
    so ``sum by (x) (rate(a[5m]))`` and ``sum by(x)(rate(a[5m]))`` are the same query."""
    out: list[str] = []
    pending_space = False
    quote: str | None = None
    i = 0
    while i < len(expr):
        ch = expr[i]
        if quote:
            out.append(ch)
            if ch == "\\" and i + 1 < len(expr):
                out.append(expr[i + 1])
                i += 1
            elif ch == quote:
                quote = None
        elif ch.isspace():
            pending_space = True
        else:
            if pending_space and out and _TOKEN_CHAR.match(out[-1]) and _TOKEN_CHAR.match(ch):
                out.append(" ")
            pending_space = False
            out.append(ch)
            if ch in "\"'`":
                quote = ch
        i += 1
    return "".join(out)


class SnapshotPrometheus(NamedQueries):
    """``PrometheusBackend``'s calls answered from metrics.json.

    Series are looked up by their rendered query text (whitespace-normalised). A query
    that was not recorded raises ``BackendUnavailable("prometheus (snapshot)", ...)``.
    Evaluation follows Prometheus: a point at time t takes the newest sample at or before t
    (within the 5-minute lookback); nothing is evaluated after the snapshot's ``now``.
    """

    name = "prometheus (snapshot)"

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def __repr__(self) -> str:
        return f"SnapshotPrometheus({self.snapshot!r})"

    @cached_property
    def _index(self) -> dict[str, list[tuple[dict[str, str], np.ndarray, np.ndarray]]]:
        data = self.snapshot.read_json("metrics.json")
        if data is None:
            return {}
        index: dict[str, list[tuple[dict[str, str], np.ndarray, np.ndarray]]] = {}
        for series in data.get("series") or []:
            samples = sorted((float(t), v) for t, v in series.get("values") or [])
            times = np.array([t for t, _ in samples], dtype="float64")
            values = np.array([_float(v) for _, v in samples], dtype="float64")
            key = normalise_query(str(series.get("query", "")))
            index.setdefault(key, []).append((dict(series.get("metric") or {}), times, values))
        return index

    @property
    def queries(self) -> list[str]:
        """The recorded query texts (normalised)."""
        return sorted(self._index)

    def _series(self, expr: str) -> list[tuple[dict[str, str], np.ndarray, np.ndarray]]:
        if self.snapshot.read_json("metrics.json") is None:
            raise BackendUnavailable(self.name, "the snapshot has no metrics.json")
        try:
            return self._index[normalise_query(expr)]
        except KeyError:
            raise BackendUnavailable(self.name, f"query not recorded in snapshot: {expr}") from None

    @property
    def _lookback(self) -> float:
        return max(LOOKBACK_SECONDS, 2.0 * self.snapshot.step_seconds)

    def _evaluate(self, expr: str, points: np.ndarray) -> pd.DataFrame:
        pieces = []
        for labels, times, values in self._series(expr):
            if not len(times) or not len(points):
                continue
            # Sample times are whole milliseconds, written as decimal seconds by Prometheus,
            # while ``now`` comes from an ISO time: the same instant can land on neighbouring
            # floats, so "at or before t" allows for half a millisecond.
            idx = np.searchsorted(times, points + _HALF_MS, side="right") - 1
            found = idx >= 0
            safe = np.where(found, idx, 0)
            found &= points - times[safe] <= self._lookback
            samples = [(t, v) for t, v in zip(points[found], values[safe[found]], strict=True)]
            if samples:
                pieces.append((labels, [(t, repr(float(v))) for t, v in samples]))
        return series_frame(pieces)

    def query(self, expr: str, at: datetime | pd.Timestamp | float | None = None) -> pd.DataFrame:
        """Instant query at ``at`` (default and latest: the snapshot's ``now``) as
        DataFrame[timestamp, value, <labels>]; ``timestamp`` is the evaluation time."""
        now = unix_seconds(self.snapshot.now)
        t = now if at is None else min(unix_seconds(at), now)
        return self._evaluate(expr, np.array([t], dtype="float64"))

    def query_range(
        self,
        expr: str,
        start: datetime | pd.Timestamp | float,
        end: datetime | pd.Timestamp | float,
        step: float | int | timedelta | str,
    ) -> pd.DataFrame:
        """Range query evaluated at start, start+step, ... up to ``end`` (never past the
        snapshot's ``now``) as long-format DataFrame[timestamp, value, <labels>]."""
        first = unix_seconds(start)
        last = min(unix_seconds(end), unix_seconds(self.snapshot.now))
        step_s = duration_seconds(step)
        if last < first:
            points = np.array([], dtype="float64")
        else:
            count = int(math.floor((last - first) / step_s + 1e-9)) + 1
            points = first + step_s * np.arange(count, dtype="float64")
        return self._evaluate(expr, points)

    def alerts(self) -> pd.DataFrame:
        """Snapshots do not record alerts: always raises BackendUnavailable."""
        raise BackendUnavailable(self.name, "alerts are not recorded in snapshots")

    def ready(self) -> bool:
        return self.snapshot.read_json("metrics.json") is not None


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


# --- Kubernetes ---------------------------------------------------------------------------------

_LINE_TIME = re.compile(r"^(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)\s")


class SnapshotKubernetes:
    """``KubernetesBackend``'s calls answered from kubernetes/*.json and logs/*.log.

    Mutating calls change nothing: they return the Change they would make with
    ``dry_run=True`` and a detail starting with "snapshot targets are read-only".
    """

    name = "kubernetes (snapshot)"

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.namespace = snapshot.namespace

    def __repr__(self) -> str:
        return f"SnapshotKubernetes({self.snapshot!r})"

    def _list(self, file: str) -> dict[str, Any]:
        data = self.snapshot.read_json(f"kubernetes/{file}")
        if data is None:
            raise BackendUnavailable(
                self.name, f"kubernetes/{file} is not recorded in the snapshot"
            )
        return dict(data)

    def _deployment(self, name: str | None) -> dict[str, Any]:
        name = name or self.snapshot.deployment
        for item in self._list("deployments.json").get("items") or []:
            if (item.get("metadata") or {}).get("name") == name:
                return dict(item)
        raise ObjectNotFound(f"deployment/{name}: not found in the snapshot of {self.namespace!r}")

    # --- reading ----------------------------------------------------------------------------

    def pods(self, selector: str | None = None) -> pd.DataFrame:
        """Same columns as ``KubernetesBackend.pods``."""
        return pods_frame(self._list("pods.json"), selector)

    def deployment(self, name: str | None = None) -> dict[str, Any]:
        """Same keys as ``KubernetesBackend.deployment`` (default: the snapshot's deployment)."""
        return deployment_summary(self._deployment(name))

    def rollout_history(self, name: str | None = None) -> pd.DataFrame:
        """Same columns as ``KubernetesBackend.rollout_history``."""
        return rollout_history_frame(self._deployment(name), self._list("replicasets.json"))

    def wait_for_rollout(
        self, name: str, timeout: float = 90.0, *, interval: float = 1.0
    ) -> dict[str, Any]:
        """The recorded rollout status, read once (a snapshot does not move on): same keys as
        ``KubernetesBackend.wait_for_rollout``; a rollout recorded mid-way stays
        "progressing"."""
        deployment = self._deployment(name)
        return rollout_result(
            deployment, self._list("replicasets.json"), timed_out=False, waited=0.0, polls=1
        )

    def _hpa(self, name: str) -> dict[str, Any]:
        for item in self._list("horizontalpodautoscalers.json").get("items") or []:
            if (item.get("metadata") or {}).get("name") == name:
                return dict(item)
        raise ObjectNotFound(f"hpa/{name}: not found in the snapshot of {self.namespace!r}")

    def hpa(self, name: str) -> dict[str, Any]:
        """Same keys as ``KubernetesBackend.hpa``, from
        kubernetes/horizontalpodautoscalers.json (an autoscaling/v2 list)."""
        return hpa_summary(self._hpa(name))

    def events(
        self,
        since: datetime | pd.Timestamp | timedelta | None = None,
        reason: str | list[str] | None = None,
    ) -> pd.DataFrame:
        """Same columns as ``KubernetesBackend.events``; a timedelta ``since`` counts back
        from the snapshot's ``now``; events after ``now`` are not shown."""
        frame = events_frame(
            self._list("events.json"), since=since_time(since, self.snapshot.now), reason=reason
        )
        return frame[frame["time"].isna() | (frame["time"] <= self.snapshot.now)].reset_index(
            drop=True
        )

    def configmap(self, name: str) -> dict[str, str]:
        """The ``data`` of a ConfigMap, when the snapshot has kubernetes/configmaps.json."""
        for item in self._list("configmaps.json").get("items") or []:
            if (item.get("metadata") or {}).get("name") == name:
                return dict(item.get("data") or {})
        raise ObjectNotFound(f"configmap/{name}: not found in the snapshot")

    def _known_pods(self) -> set[str]:
        data = self.snapshot.read_json("kubernetes/pods.json") or {}
        return {str((p.get("metadata") or {}).get("name")) for p in data.get("items") or []}

    def logs(
        self,
        pod: str,
        container: str | None = None,
        previous: bool = False,
        tail: int | None = None,
        since_seconds: int | None = None,
    ) -> list[str]:
        """A pod's recorded log lines (logs/<pod>.log, or <pod>.previous.log), up to the
        snapshot's ``now``. Raises LogsNotFound like the live call."""
        path = self.snapshot.path / "logs" / (f"{pod}.previous.log" if previous else f"{pod}.log")
        if not path.is_file():
            if pod not in self._known_pods():
                raise ObjectNotFound(f"pod/{pod}: not found in the snapshot")
            if previous:
                raise LogsNotFound(f"pod/{pod} has no previous container log in the snapshot")
            return []
        lines = path.read_text(errors="replace").splitlines()
        cutoff = (
            None
            if since_seconds is None
            else self.snapshot.now - pd.Timedelta(seconds=since_seconds)
        )
        lines = _lines_between(lines, cutoff, self.snapshot.now)
        if tail is not None:
            lines = lines[-int(tail) :] if int(tail) > 0 else []
        return lines

    def logs_for(
        self,
        selector: str | None = None,
        previous: bool = False,
        tail: int | None = None,
        since_seconds: int | None = None,
        container: str | None = None,
    ) -> dict[str, list[str]]:
        """Same as ``KubernetesBackend.logs_for`` (default selector: the snapshot's)."""
        selector = selector or self.snapshot.selector
        out: dict[str, list[str]] = {}
        pods = self._list("pods.json").get("items") or []
        names = set(pods_frame(pods, selector)["name"])
        for pod in sorted(pods, key=lambda p: str((p.get("metadata") or {}).get("name"))):
            name = str((pod.get("metadata") or {}).get("name"))
            if name not in names:
                continue
            try:
                out[name] = self.logs(
                    name,
                    container=container or default_container(pod),
                    previous=previous,
                    tail=tail,
                    since_seconds=since_seconds,
                )
            except LogsNotFound:
                out[name] = []
        return out

    # --- "changing": previews only ----------------------------------------------------------

    def _preview(self, action: str, name: str, before: dict[str, Any], after: dict[str, Any],
                 what: str) -> Change:  # fmt: skip
        return Change(
            action=action,
            object=f"deployment/{name}",
            before=before,
            after=after,
            dry_run=True,
            detail=f"{READ_ONLY}: {what}",
            changed=before != after,
        )

    def rollback(
        self, name: str | None = None, to_revision: int | None = None, *, dry_run: bool = True
    ) -> Change:
        """What ``KubernetesBackend.rollback`` would do, from the recorded ReplicaSets."""
        deployment = self._deployment(name)
        plan = rollback_plan(deployment, self._list("replicasets.json"), to_revision)
        change = rollback_change(plan, dry_run=True)
        return Change(
            action=change.action,
            object=change.object,
            before=change.before,
            after=change.after,
            dry_run=True,
            detail=f"{READ_ONLY}: {change.detail}",
            changed=change.changed,
            diff=change.diff,
        )

    def scale(self, name: str | None, replicas: int, *, dry_run: bool = True) -> Change:
        deployment = self._deployment(name)
        if int(replicas) < 0:
            raise ValueError(f"replicas must be 0 or more, not {replicas}")
        old = deployment_summary(deployment)["replicas"]
        name = deployment["metadata"]["name"]
        return self._preview(
            "scale", name, {"replicas": old}, {"replicas": int(replicas)},
            f"would scale deployment/{name} from {old} to {int(replicas)} replicas",
        )  # fmt: skip

    def restart(self, name: str | None = None, *, dry_run: bool = True) -> Change:
        deployment = self._deployment(name)
        name = deployment["metadata"]["name"]
        template = (deployment.get("spec") or {}).get("template") or {}
        old = ((template.get("metadata") or {}).get("annotations") or {}).get(RESTARTED_AT)
        stamp = self.snapshot.now.strftime("%Y-%m-%dT%H:%M:%SZ")
        return self._preview(
            "restart", name, {"restartedAt": old}, {"restartedAt": stamp},
            f"would restart deployment/{name} (restartedAt={stamp})",
        )  # fmt: skip

    def set_image(self, name: str, container: str, image: str, *, dry_run: bool = True) -> Change:
        """What ``KubernetesBackend.set_image`` would do, with the template diff."""
        if not str(image).strip():
            raise ValueError("set_image needs an image")
        image = str(image).strip()
        deployment = self._deployment(name)
        name = deployment["metadata"]["name"]
        old = str(find_container(deployment, container).get("image", ""))
        after = set_image_template(deployment, container, image)
        change = self._preview(
            "set-image", name, {"image": old}, {"image": image},
            describe_image(name, container, old, image, True),
        )  # fmt: skip
        return _with_diff(change, template_diff(_template(deployment), after, name))

    def apply_deployment(self, manifest: dict[str, Any], *, dry_run: bool = True) -> Change:
        """What ``KubernetesBackend.apply_deployment`` would do: the manifest merged into the
        recorded deployment (a strategic merge, as the server would)."""
        body = deployment_manifest(manifest, self.namespace)
        name = str(body["metadata"]["name"])
        try:
            current: dict[str, Any] | None = self._deployment(name)
        except ObjectNotFound:
            current = None
        result = strategic_merge(current or {}, body)
        diff = template_diff(_template(current or {}), _template(result), name)
        before = deployment_summary(current) if current else None
        after = deployment_summary(result)
        change = Change(
            action="apply",
            object=f"deployment/{name}",
            before={"images": before["images"] if before else {},
                    "replicas": before["replicas"] if before else None},
            after={"images": after["images"], "replicas": after["replicas"]},
            dry_run=True,
            detail=f"{READ_ONLY}: {describe_apply(name, current, result, True, diff)}",
            changed=current is None or bool(diff)
            or (before is not None and before["replicas"] != after["replicas"]),
        )  # fmt: skip
        return _with_diff(change, diff)

    def set_resources(
        self,
        name: str,
        container: str,
        requests: dict[str, Any] | None = None,
        limits: dict[str, Any] | None = None,
        *,
        dry_run: bool = True,
    ) -> Change:
        """What ``KubernetesBackend.set_resources`` would do, with the template diff."""
        deployment = self._deployment(name)
        name = deployment["metadata"]["name"]
        current = container_resources(deployment, container)
        merged = merge_resources(current, requests, limits, container)
        after = set_resources_template(deployment, container, merged)
        change = self._preview(
            "set-resources", name, current, merged,
            describe_resources(name, container, current, merged, True),
        )  # fmt: skip
        return _with_diff(change, template_diff(_template(deployment), after, name))

    def patch_hpa(
        self,
        name: str,
        min_replicas: int,
        max_replicas: int,
        *,
        dry_run: bool = True,
        annotations: dict[str, Any] | None = None,
    ) -> Change:
        """What ``KubernetesBackend.patch_hpa`` would do to the recorded HPA."""
        patch = hpa_patch(min_replicas, max_replicas, annotations)
        hpa = self._hpa(name)
        before = hpa_summary(hpa)
        after = hpa_summary(_merge_patch(hpa, patch))
        keys = ("min_replicas", "max_replicas", "pinned_from")
        return Change(
            action="patch-hpa",
            object=f"hpa/{name}",
            before={k: before[k] for k in keys},
            after={k: after[k] for k in keys},
            dry_run=True,
            detail=f"{READ_ONLY}: {describe_hpa(name, before, after, True)}",
            changed=any(before[k] != after[k] for k in keys),
        )

    def set_env(
        self, name: str | None, container: str, env: dict[str, Any], *, dry_run: bool = True
    ) -> Change:
        if not env:
            raise ValueError("set_env needs at least one variable")
        deployment = self._deployment(name)
        name = deployment["metadata"]["name"]
        current = container_env(deployment, container)
        wanted = {str(k): ("true" if v is True else "false" if v is False else str(v))
                  for k, v in env.items()}  # fmt: skip
        pairs = " ".join(f"{k}={v}" for k, v in wanted.items())
        return self._preview(
            "set-env", name, {k: current.get(k) for k in wanted}, wanted,
            f"would set {pairs} on deployment/{name} container {container}",
        )  # fmt: skip


def _template(deployment: Mapping[str, Any]) -> dict[str, Any]:
    return dict((deployment.get("spec") or {}).get("template") or {})


def _with_diff(change: Change, diff: str) -> Change:
    from dataclasses import replace

    return replace(change, diff=diff)


def _merge_patch(doc: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (None removes a key)."""
    if not isinstance(patch, Mapping):
        return patch
    out = dict(doc) if isinstance(doc, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = _merge_patch(out.get(key), value)
    return out


def _lines_between(lines: list[str], since: pd.Timestamp | None, until: pd.Timestamp) -> list[str]:
    """Lines whose timestamp is in [since, until]; an untimed line (a stack trace) goes
    with the timed line before it."""
    keep: list[str] = []
    include = since is None
    for line in lines:
        m = _LINE_TIME.match(line)
        if m:
            when = timestamp(m.group(1).replace(",", "."))
            if pd.notna(when):
                include = when <= until and (since is None or when >= since)
        if include:
            keep.append(line)
    return keep
