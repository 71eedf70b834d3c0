"""Kubernetes API objects (plain JSON dicts) turned into DataFrames and summaries.

Shared by the live backend (``kubernetes.py``, which fetches raw JSON) and the snapshot
backend (``snapshot.py``, which reads the recorded List files), so both answer with the
same columns. Nothing here imports the ``kubernetes`` client.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

__all__ = [
    "CHANGE_CAUSE",
    "DEFAULT_CONTAINER",
    "HASH_LABEL",
    "RESTARTED_AT",
    "REVISION",
    "Change",
    "LogsNotFound",
    "ObjectNotFound",
    "RollbackPlan",
    "deployment_summary",
    "events_frame",
    "match_selector",
    "owned_replicasets",
    "pods_frame",
    "rollback_plan",
    "rollout_history_frame",
    "selector_matcher",
    "timestamp",
]

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

    def __str__(self) -> str:
        return self.detail


# --- small helpers --------------------------------------------------------------------------


def timestamp(value: Any) -> pd.Timestamp:
    """An RFC 3339 string (or datetime) as a tz-aware UTC Timestamp; NaT when missing."""
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


def _utc_series(values: list[pd.Timestamp]) -> pd.Series:
    return pd.to_datetime(pd.Series(values, dtype="object"), utc=True).astype("datetime64[ns, UTC]")


# --- label selectors ------------------------------------------------------------------------

_SET_OP = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s*\(([^)]*)\)\s*$")


def _split_outside_parens(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def selector_matcher(
    selector: str | Mapping[str, str] | None,
) -> Callable[[Mapping[str, str]], bool]:
    """A predicate on a labels dict for a label selector: ``app=x,tier!=db,env in (a,b),
    !canary,track`` (the syntax of ``kubectl -l``), or a dict of required labels."""
    if selector is None or selector == "":
        return lambda labels: True
    if isinstance(selector, Mapping):
        wanted = dict(selector)
        return lambda labels: all(labels.get(k) == v for k, v in wanted.items())
    tests: list[Callable[[Mapping[str, str]], bool]] = []
    for term in _split_outside_parens(selector):
        m = _SET_OP.match(term)
        if m:
            values = frozenset(v.strip() for v in m.group(3).split(",") if v.strip())
            tests.append(_label_test(m.group(1), "in" if m.group(2) == "in" else "notin", values))
        elif "!=" in term:
            key, value = (s.strip() for s in term.split("!=", 1))
            tests.append(_label_test(key, "!=", frozenset([value])))
        elif "=" in term:
            key, value = (s.strip() for s in term.replace("==", "=").split("=", 1))
            tests.append(_label_test(key, "=", frozenset([value])))
        elif term.startswith("!"):
            tests.append(_label_test(term[1:].strip(), "absent", frozenset()))
        elif re.fullmatch(r"[\w./-]+", term):
            tests.append(_label_test(term, "exists", frozenset()))
        else:
            raise ValueError(f"cannot parse label selector term {term!r} in {selector!r}")
    return lambda labels: all(t(labels) for t in tests)


def _label_test(key: str, op: str, values: frozenset[str]) -> Callable[[Mapping[str, str]], bool]:
    def test(labels: Mapping[str, str]) -> bool:
        if op == "exists":
            return key in labels
        if op == "absent":
            return key not in labels
        value = labels.get(key)
        if op in ("=", "in"):
            return value in values
        return value not in values  # "!=" and "notin" also match when the label is absent

    return test


def match_selector(obj: Mapping[str, Any], selector: str | Mapping[str, str] | None) -> bool:
    """Whether an object's ``metadata.labels`` match a label selector."""
    return selector_matcher(selector)(_get(obj, "metadata", "labels", default={}))


# --- pods -----------------------------------------------------------------------------------


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


# --- deployments and rollout history --------------------------------------------------------


def _revision(obj: Obj) -> int | None:
    raw = _get(obj, "metadata", "annotations", REVISION)
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


def _images(template: Obj) -> dict[str, str]:
    return {
        c.get("name", ""): c.get("image", "")
        for c in _get(template, "spec", "containers", default=[])
    }


def deployment_summary(deployment: Obj) -> dict[str, Any]:
    """dict(name, replicas, ready, available, updated, revision, image, images,
    generation, observed_generation, conditions).

    ``replicas`` is the desired count, ``ready``/``available``/``updated`` come from the
    status (0 when absent), ``revision`` is the current rollout revision (int or None),
    ``image`` the first container's image, ``images`` every container's image by name,
    ``conditions`` a list of dict(type, status, reason, message).
    """
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    images = _images(spec.get("template") or {})
    return {
        "name": _get(deployment, "metadata", "name"),
        "replicas": int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1),
        "ready": int(status.get("readyReplicas") or 0),
        "available": int(status.get("availableReplicas") or 0),
        "updated": int(status.get("updatedReplicas") or 0),
        "revision": _revision(deployment),
        "image": next(iter(images.values()), None),
        "images": images,
        "generation": _get(deployment, "metadata", "generation"),
        "observed_generation": status.get("observedGeneration"),
        "conditions": [
            {
                "type": c.get("type"),
                "status": c.get("status"),
                "reason": c.get("reason"),
                "message": c.get("message"),
            }
            for c in status.get("conditions") or []
        ],
    }


def owned_replicasets(deployment: Obj, replicasets: Mapping[str, Any] | list[Obj]) -> list[Obj]:
    """The ReplicaSets a deployment owns (by owner reference uid, or name when no uid)."""
    uid = _get(deployment, "metadata", "uid")
    name = _get(deployment, "metadata", "name")
    owned = []
    for rs in _items(replicasets):
        for ref in _get(rs, "metadata", "ownerReferences", default=[]):
            if ref.get("kind") != "Deployment":
                continue
            if (uid and ref.get("uid") == uid) or (not uid and ref.get("name") == name):
                owned.append(rs)
                break
    return owned


def rollout_history_frame(
    deployment: Obj, replicasets: Mapping[str, Any] | list[Obj]
) -> pd.DataFrame:
    """DataFrame[revision (int), replicaset, image, change_cause, created, replicas (int)]
    sorted by revision: the ReplicaSets the deployment owns, like ``kubectl rollout history``.
    ``replicas`` is the ReplicaSet's desired count (0 for old revisions)."""
    rows = []
    for rs in owned_replicasets(deployment, replicasets):
        revision = _revision(rs)
        if revision is None:
            continue
        images = _images(_get(rs, "spec", "template", default={}))
        rows.append(
            {
                "revision": revision,
                "replicaset": _get(rs, "metadata", "name"),
                "image": next(iter(images.values()), None),
                "change_cause": _get(rs, "metadata", "annotations", CHANGE_CAUSE),
                "created": timestamp(_get(rs, "metadata", "creationTimestamp")),
                "replicas": int(_get(rs, "spec", "replicas", default=0)),
            }
        )
    rows.sort(key=lambda r: r["revision"])
    return pd.DataFrame(
        {
            "revision": pd.Series([r["revision"] for r in rows], dtype="int64"),
            "replicaset": pd.Series([r["replicaset"] for r in rows], dtype="str"),
            "image": pd.Series([r["image"] for r in rows], dtype="str"),
            "change_cause": pd.Series([r["change_cause"] for r in rows], dtype="str"),
            "created": _utc_series([r["created"] for r in rows]),
            "replicas": pd.Series([r["replicas"] for r in rows], dtype="int64"),
        }
    )[HISTORY_COLUMNS]


def _without_hash(template: Obj) -> Obj:
    template = copy.deepcopy(template)
    labels = _get(template, "metadata", "labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return template


@dataclass(frozen=True)
class RollbackPlan:
    """What ``kubectl rollout undo`` would do: the target revision's template and the
    annotations to write, or ``skip`` with the reason when it would change nothing."""

    name: str
    current_revision: int | None
    target_revision: int
    replicaset: str
    template: Obj
    annotations: dict[str, str]
    before: dict[str, Any]
    after: dict[str, Any]
    skip: str | None

    def json_patch(self) -> list[Obj]:
        return [
            {"op": "replace", "path": "/spec/template", "value": self.template},
            {"op": "replace", "path": "/metadata/annotations", "value": self.annotations},
        ]


def rollback_plan(
    deployment: Obj, replicasets: Mapping[str, Any] | list[Obj], to_revision: int | None = None
) -> RollbackPlan:
    """Plan a rollback to ``to_revision``, or to the newest revision before the current one.

    Raises ObjectNotFound when there is no such revision (or no earlier one).
    """
    name = _get(deployment, "metadata", "name")
    by_revision: dict[int, Obj] = {}
    for rs in owned_replicasets(deployment, replicasets):
        revision = _revision(rs)
        if revision is not None:
            by_revision[revision] = rs
    current = _revision(deployment)
    if current is None and by_revision:
        current = max(by_revision)
    if to_revision in (None, 0):
        earlier = sorted(r for r in by_revision if current is None or r < current)
        if not earlier:
            raise ObjectNotFound(
                f"deployment/{name} has no revision before {current} to roll back to"
                f" (revisions: {sorted(by_revision) or 'none'})"
            )
        target = earlier[-1]
    else:
        target = int(to_revision)
        if target not in by_revision:
            raise ObjectNotFound(
                f"deployment/{name} has no revision {target}"
                f" (revisions: {sorted(by_revision) or 'none'})"
            )
    rs = by_revision[target]
    template = _without_hash(_get(rs, "spec", "template", default={}))
    current_template = _without_hash(_get(deployment, "spec", "template", default={}))
    annotations = {
        k: v
        for k, v in (_get(deployment, "metadata", "annotations", default={}) or {}).items()
        if k in _ROLLBACK_SKIP
    }
    for k, v in (_get(rs, "metadata", "annotations", default={}) or {}).items():
        if k not in _ROLLBACK_SKIP:
            annotations[k] = v
    current_images = _images(current_template)
    target_images = _images(template)
    skip = None
    if template == current_template:
        skip = f"skipped rollback (current template already matches revision {target})"
    return RollbackPlan(
        name=name,
        current_revision=current,
        target_revision=target,
        replicaset=_get(rs, "metadata", "name"),
        template=template,
        annotations=annotations,
        before={"revision": current, "images": current_images},
        after={"revision": target, "images": target_images},
        skip=skip,
    )


def describe_rollback(plan: RollbackPlan, dry_run: bool, suffix: str = "") -> str:
    if plan.skip:
        return f"deployment/{plan.name}: {plan.skip}{suffix}"

    def images(d: dict[str, str]) -> str:
        return ", ".join(sorted(set(d.values()))) or "no image"

    text = (
        f"{'would roll back' if dry_run else 'rolled back'} deployment/{plan.name} from revision "
        f"{plan.current_revision} ({images(plan.before['images'])}) to revision "
        f"{plan.target_revision} ({images(plan.after['images'])})"
    )
    return text + suffix


def rollback_change(plan: RollbackPlan, dry_run: bool, suffix: str = "") -> Change:
    return Change(
        action="rollback",
        object=f"deployment/{plan.name}",
        before=dict(plan.before),
        after=dict(plan.before) if plan.skip else dict(plan.after),
        dry_run=dry_run,
        detail=describe_rollback(plan, dry_run, suffix),
        changed=plan.skip is None,
    )


def container_env(deployment: Obj, container: str) -> dict[str, str | None]:
    """The literal env of one container in the deployment's template (``valueFrom``
    entries appear as None). Raises ObjectNotFound when there is no such container."""
    containers = _get(deployment, "spec", "template", "spec", "containers", default=[])
    for c in containers:
        if c.get("name") == container:
            return {e.get("name"): e.get("value") for e in c.get("env") or []}
    names = [c.get("name") for c in containers]
    raise ObjectNotFound(
        f"deployment/{_get(deployment, 'metadata', 'name')} has no container {container!r}"
        f" (containers: {', '.join(map(str, names)) or 'none'})"
    )


# --- events ---------------------------------------------------------------------------------


def _event_time(event: Obj) -> pd.Timestamp:
    for value in (
        event.get("lastTimestamp"),
        _get(event, "series", "lastObservedTime"),
        event.get("eventTime"),
        event.get("firstTimestamp"),
        _get(event, "metadata", "creationTimestamp"),
    ):
        ts = timestamp(value)
        if pd.notna(ts):
            return ts
    return pd.NaT


def events_frame(
    events: Mapping[str, Any] | list[Obj],
    since: datetime | pd.Timestamp | None = None,
    reason: str | Iterable[str] | None = None,
) -> pd.DataFrame:
    """An EventList as DataFrame[time, type, reason, object, message, count (int)], newest
    last. ``object`` is ``kind/name`` in lower case as kubectl prints it (``pod/x-1``).
    ``since`` keeps events at or after that time; ``reason`` one reason or several."""
    reasons = None if reason is None else ({reason} if isinstance(reason, str) else set(reason))
    cutoff = None if since is None else utc(since)
    rows = []
    for ev in _items(events):
        if reasons is not None and ev.get("reason") not in reasons:
            continue
        when = _event_time(ev)
        if cutoff is not None and (pd.isna(when) or when < cutoff):
            continue
        involved = ev.get("involvedObject") or ev.get("regarding") or {}
        count = ev.get("count") or _get(ev, "series", "count") or 1
        rows.append(
            {
                "time": when,
                "type": ev.get("type"),
                "reason": ev.get("reason"),
                "object": f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
                "message": (ev.get("message") or ev.get("note") or "").strip(),
                "count": int(count),
            }
        )
    rows.sort(key=lambda r: (pd.isna(r["time"]), r["time"] if pd.notna(r["time"]) else 0))
    # undated events first, then oldest to newest
    rows = [r for r in rows if pd.isna(r["time"])] + [r for r in rows if pd.notna(r["time"])]
    return pd.DataFrame(
        {
            "time": _utc_series([r["time"] for r in rows]),
            "type": pd.Series([r["type"] for r in rows], dtype="str"),
            "reason": pd.Series([r["reason"] for r in rows], dtype="str"),
            "object": pd.Series([r["object"] for r in rows], dtype="str"),
            "message": pd.Series([r["message"] for r in rows], dtype="str"),
            "count": pd.Series([r["count"] for r in rows], dtype="int64"),
        }
    )[EVENT_COLUMNS]


def since_time(
    since: datetime | pd.Timestamp | timedelta | None, now: pd.Timestamp
) -> pd.Timestamp | None:
    """``since`` as an absolute UTC time; a timedelta counts back from ``now``."""
    if since is None:
        return None
    if isinstance(since, timedelta):
        return now - pd.Timedelta(since)
    return utc(since)
