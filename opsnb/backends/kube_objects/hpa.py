"""Horizontal pod autoscalers: summaries, patches, previews."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .common import Obj, _get, timestamp
from .templates import PINNED_FROM


def _metric_text(metric: Obj) -> str:
    kind = metric.get("type", "")
    body = metric.get(kind[:1].lower() + kind[1:], {}) if kind else {}
    name = body.get("name") or _get(body, "metric", "name") or kind
    target = body.get("target") or {}
    if "averageUtilization" in target:
        return f"{name} {target['averageUtilization']}% (average utilization)"
    value = target.get("averageValue") or target.get("value")
    return f"{name} {value}" if value is not None else str(name)


def hpa_summary(hpa: Obj) -> dict[str, Any]:
    """An autoscaling/v2 HorizontalPodAutoscaler as dict(name, target ("deployment/x"),
    min_replicas, max_replicas, current_replicas, desired_replicas (None when the status does
    not say), metrics (list of str), pinned_from (dict(minReplicas, maxReplicas) while pinned
    by the scale runbook, else None), last_scale_time, conditions)."""
    import json

    spec = hpa.get("spec") or {}
    status = hpa.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    pinned = _get(hpa, "metadata", "annotations", PINNED_FROM)
    try:
        pinned_from = json.loads(pinned) if pinned else None
    except ValueError:
        pinned_from = None
    current = status.get("currentReplicas")
    desired = status.get("desiredReplicas")
    return {
        "name": _get(hpa, "metadata", "name"),
        "target": f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}",
        "min_replicas": int(spec.get("minReplicas") or 1),
        "max_replicas": int(spec.get("maxReplicas") or 0),
        "current_replicas": None if current is None else int(current),
        "desired_replicas": None if desired is None else int(desired),
        "metrics": [_metric_text(m) for m in spec.get("metrics") or []],
        "pinned_from": pinned_from if isinstance(pinned_from, dict) else None,
        "last_scale_time": timestamp(status.get("lastScaleTime")),
        "conditions": [
            {"type": c.get("type"), "status": c.get("status"), "reason": c.get("reason"),
             "message": c.get("message")}
            for c in status.get("conditions") or []
        ],
    }  # fmt: skip


def hpa_patch(min_replicas: int, max_replicas: int, annotations: Mapping[str, Any] | None) -> Obj:
    """The patch setting an HPA's min/max (and annotations; a None value removes one).
    Raises ValueError for bounds the API server would refuse."""
    if int(min_replicas) < 1:
        raise ValueError(f"minReplicas must be 1 or more, not {min_replicas}")
    if int(max_replicas) < int(min_replicas):
        raise ValueError(
            f"maxReplicas ({max_replicas}) must be at least minReplicas ({min_replicas})"
        )
    patch: Obj = {"spec": {"minReplicas": int(min_replicas), "maxReplicas": int(max_replicas)}}
    if annotations:
        patch["metadata"] = {"annotations": dict(annotations)}
    return patch


def describe_hpa(name: str, before: dict[str, Any], after: dict[str, Any], dry_run: bool) -> str:
    old = f"min {before['min_replicas']}, max {before['max_replicas']}"
    new = f"min {after['min_replicas']}, max {after['max_replicas']}"
    if old == new and before.get("pinned_from") == after.get("pinned_from"):
        return f"hpa/{name} already has {new}: nothing to change"
    verb = "would set" if dry_run else "set"
    return f"{verb} hpa/{name} from {old} to {new}"
