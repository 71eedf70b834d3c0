"""Pods: rows, the pods frame, a pod's default container."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from .common import (
    DEFAULT_CONTAINER,
    HASH_LABEL,
    POD_COLUMNS,
    Obj,
    _get,
    _items,
    _utc_series,
    timestamp,
)
from .selectors import selector_matcher


def _pod_ready(pod: Obj) -> bool:
    for cond in _get(pod, "status", "conditions", default=[]):
        if cond.get("type") == "Ready":
            return cond.get("status") == "True"
    statuses = _get(pod, "status", "containerStatuses", default=[])
    return bool(statuses) and all(s.get("ready") for s in statuses)


def pod_row(pod: Obj) -> dict[str, Any]:
    """One pod as a row of ``pods_frame``."""
    statuses = _get(pod, "status", "containerStatuses", default=[])
    last: Obj = {}
    last_finished = pd.NaT
    for status in statuses:
        terminated = _get(status, "lastState", "terminated")
        if terminated:
            finished = timestamp(terminated.get("finishedAt"))
            newer = pd.notna(finished) and (pd.isna(last_finished) or finished > last_finished)
            if not last or newer:
                last, last_finished = terminated, finished
    waiting = None
    for status in statuses:
        reason = _get(status, "state", "waiting", "reason")
        if reason:
            waiting = reason
            break
    exit_code = last.get("exitCode")
    return {
        "name": _get(pod, "metadata", "name"),
        "phase": _get(pod, "status", "phase"),
        "ready": _pod_ready(pod),
        "restarts": int(sum(int(s.get("restartCount") or 0) for s in statuses)),
        "last_state_reason": last.get("reason"),
        "last_exit_code": None if exit_code is None else int(exit_code),
        "last_finished_at": last_finished,
        "waiting_reason": waiting,
        "node": _get(pod, "spec", "nodeName"),
        "revision_hash": _get(pod, "metadata", "labels", HASH_LABEL),
        "created": timestamp(_get(pod, "metadata", "creationTimestamp")),
    }


def pods_frame(pods: Mapping[str, Any] | list[Obj], selector: str | None = None) -> pd.DataFrame:
    """A PodList (or list of pods) as DataFrame[name, phase, ready (bool), restarts (int),
    last_state_reason, last_exit_code (Int64), last_finished_at, waiting_reason, node,
    revision_hash, created], sorted by name; only pods matching ``selector`` when given."""
    match = selector_matcher(selector)
    rows = [pod_row(p) for p in _items(pods) if match(_get(p, "metadata", "labels", default={}))]
    rows.sort(key=lambda r: r["name"] or "")
    frame = pd.DataFrame(
        {
            "name": pd.Series([r["name"] for r in rows], dtype="str"),
            "phase": pd.Series([r["phase"] for r in rows], dtype="str"),
            "ready": pd.Series([r["ready"] for r in rows], dtype="bool"),
            "restarts": pd.Series([r["restarts"] for r in rows], dtype="int64"),
            "last_state_reason": pd.Series([r["last_state_reason"] for r in rows], dtype="str"),
            "last_exit_code": pd.array([r["last_exit_code"] for r in rows], dtype="Int64"),
            "last_finished_at": _utc_series([r["last_finished_at"] for r in rows]),
            "waiting_reason": pd.Series([r["waiting_reason"] for r in rows], dtype="str"),
            "node": pd.Series([r["node"] for r in rows], dtype="str"),
            "revision_hash": pd.Series([r["revision_hash"] for r in rows], dtype="str"),
            "created": _utc_series([r["created"] for r in rows]),
        }
    )
    return frame[POD_COLUMNS]


def default_container(pod: Obj) -> str | None:
    """The container ``kubectl logs`` would pick: the default-container annotation, else the
    first container."""
    annotated = _get(pod, "metadata", "annotations", DEFAULT_CONTAINER)
    if annotated:
        return str(annotated)
    containers = _get(pod, "spec", "containers", default=[])
    return containers[0].get("name") if containers else None
