"""Names shared by the object modules: annotations and labels, errors, ``Change``, and
small helpers for JSON objects and times."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd

Obj = dict[str, Any]

REVISION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
HASH_LABEL = "pod-template-hash"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
DEFAULT_CONTAINER = "kubectl.kubernetes.io/default-container"
# deployment annotations that a rollback keeps from the deployment, not from the ReplicaSet
# (as ``kubectl rollout undo`` does)
_ROLLBACK_SKIP = {
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
}

POD_COLUMNS = [
    "name", "phase", "ready", "restarts", "last_state_reason", "last_exit_code",
    "last_finished_at", "waiting_reason", "node", "revision_hash", "created",
]  # fmt: skip
HISTORY_COLUMNS = ["revision", "replicaset", "image", "change_cause", "created", "replicas"]
EVENT_COLUMNS = ["time", "type", "reason", "object", "message", "count"]


class ObjectNotFound(LookupError):
    """The object (deployment, pod, revision, config map, log) does not exist."""


class LogsNotFound(ObjectNotFound):
    """The pod has no such log (e.g. no previous container to read ``--previous`` from)."""


@dataclass(frozen=True)
class Change:
    """What a mutating call changed, or would change when ``dry_run`` is True.

    ``before`` and ``after`` hold only the fields the action touches (e.g. ``replicas``);
    ``detail`` says it in one sentence for the run record.
    """

    action: str
    object: str
    before: dict[str, Any]
    after: dict[str, Any]
    dry_run: bool
    detail: str
    changed: bool = field(default=True)
    diff: str = field(default="")  # unified diff of the pod template, when it changes

    def __str__(self) -> str:
        return self.detail


# --- small helpers --------------------------------------------------------------------------


def timestamp(value: Any) -> Any:
    """An RFC 3339 string (or datetime) as a tz-aware UTC Timestamp; NaT when missing.
    (Typed ``Any``: pandas types NaT apart from Timestamp.)"""
    if value is None or value == "":
        return pd.NaT
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError):
        return pd.NaT
    if pd.isna(ts):
        return pd.NaT
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def utc(value: datetime | pd.Timestamp | str) -> pd.Timestamp:
    """Any datetime-like as a tz-aware UTC Timestamp (naive values are taken as UTC)."""
    ts = pd.Timestamp(value)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def _get(obj: Mapping[str, Any] | None, *path: str, default: Any = None) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return default
        obj = obj.get(key)
    return default if obj is None else obj


def _items(obj_list: Mapping[str, Any] | list[Obj] | None) -> list[Obj]:
    if obj_list is None:
        return []
    if isinstance(obj_list, list):
        return obj_list
    return list(obj_list.get("items") or [])


def _utc_series(values: list[Any]) -> pd.Series:
    return pd.to_datetime(pd.Series(values, dtype="object"), utc=True).astype("datetime64[ns, UTC]")
