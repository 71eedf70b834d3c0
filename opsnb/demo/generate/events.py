"""Kubernetes events (``core/v1``) for the workload objects, and the ``events.json`` list."""

from __future__ import annotations

from datetime import datetime, timedelta

from .common import NAMESPACE, Json, iso
from .kube import App, Ids, PodRec, container_field, k8s_list
from .snapshot import Snapshot


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
) -> Json:
    api_version = "v1" if kind == "Pod" else "apps/v1"
    involved: Json = {
        "kind": kind,
        "namespace": NAMESPACE,
        "name": name,
        "uid": uid,
        "apiVersion": api_version,
        "resourceVersion": ids.resource_version(),
    }
    if field_path:
        involved["fieldPath"] = field_path
    source: Json = {"component": component}
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


def kubelet_event(
    ids: Ids,
    app: App,
    p: PodRec,
    *,
    reason: str,
    message: str,
    first: datetime,
    last: datetime | None = None,
    count: int = 1,
    type_: str = "Normal",
) -> Json:
    """An event the kubelet on the pod's node reports about the app's container."""
    return event_obj(
        ids,
        kind="Pod",
        name=p.name,
        uid=p.uid,
        reason=reason,
        type_=type_,
        message=message,
        first=first,
        last=last,
        count=count,
        component="kubelet",
        host=p.node.name,
        field_path=container_field(app),
    )


def pod_start_events(
    ids: Ids, app: App, p: PodRec, *, pulled: bool, pull_seconds: float
) -> list[Json]:
    """Scheduled, then Pulling / Pulled (or "already present") for a pod's first start."""
    t0 = p.created
    out = [
        event_obj(
            ids,
            kind="Pod",
            name=p.name,
            uid=p.uid,
            reason="Scheduled",
            first=t0,
            component="default-scheduler",
            message=f"Successfully assigned {NAMESPACE}/{p.name} to {p.node.name}",
        ),
    ]
    if pulled:
        out.append(
            kubelet_event(
                ids,
                app,
                p,
                reason="Pulling",
                first=t0 + timedelta(seconds=1),
                message=f'Pulling image "{p.rs.image}"',
            )
        )
        out.append(
            kubelet_event(
                ids,
                app,
                p,
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
            kubelet_event(
                ids,
                app,
                p,
                reason="Pulled",
                first=t0 + timedelta(seconds=1),
                message=f'Container image "{p.rs.image}" already present on machine',
            )
        )
    return out


def add_events(snap: Snapshot, ids: Ids, events: list[Json]) -> None:
    """``kubernetes/events.json``, oldest first."""
    events = sorted(events, key=lambda e: (e["firstTimestamp"], e["metadata"]["name"]))
    snap.add_json("kubernetes/events.json", k8s_list("EventList", "v1", events, ids))
