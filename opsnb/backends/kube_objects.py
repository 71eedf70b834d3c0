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
    """dict(name, created, replicas, ready, available, updated, revision, image, images,
    generation, observed_generation, resources, conditions).

    ``replicas`` is the desired count, ``ready``/``available``/``updated`` come from the
    status (0 when absent), ``revision`` is the current rollout revision (int or None),
    ``image`` the first container's image, ``images`` every container's image by name,
    ``resources`` the first container's dict(requests, limits), ``conditions`` a list of
    dict(type, status, reason, message).
    """
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    images = _images(spec.get("template") or {})
    containers = _get(spec, "template", "spec", "containers", default=[])
    return {
        "name": _get(deployment, "metadata", "name"),
        "created": timestamp(_get(deployment, "metadata", "creationTimestamp")),
        "replicas": int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1),
        "ready": int(status.get("readyReplicas") or 0),
        "available": int(status.get("availableReplicas") or 0),
        "updated": int(status.get("updatedReplicas") or 0),
        "revision": _revision(deployment),
        "image": next(iter(images.values()), None),
        "images": images,
        "generation": _get(deployment, "metadata", "generation"),
        "observed_generation": status.get("observedGeneration"),
        "resources": _resources(containers[0]) if containers else {"requests": {}, "limits": {}},
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
    current_template: Obj = field(default_factory=dict)

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
        current_template=current_template,
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
        diff=template_diff(plan.current_template, plan.template, plan.name),
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


def _event_time(event: Obj) -> Any:
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


# --- changes to a deployment's pod template: images, resources, manifests ---------------------

CHANGE_CAUSE_PREFIX = "opsnb"
PINNED_FROM = "opsnb.io/pinned-from"  # on an HPA: the min/max it had before it was pinned
_SERVER_FIELDS = ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields",
                  "selfLink")  # fmt: skip


def find_container(deployment: Obj, container: str) -> Obj:
    """The named container of the deployment's pod template. Raises ObjectNotFound naming
    the containers there when it has no such container."""
    containers = _get(deployment, "spec", "template", "spec", "containers", default=[])
    for c in containers:
        if c.get("name") == container:
            return dict(c)
    names = [c.get("name") for c in containers]
    raise ObjectNotFound(
        f"deployment/{_get(deployment, 'metadata', 'name')} has no container {container!r}"
        f" (containers: {', '.join(map(str, names)) or 'none'})"
    )


def _resources(container: Obj) -> dict[str, dict[str, str]]:
    res = container.get("resources") or {}
    return {
        "requests": {str(k): str(v) for k, v in (res.get("requests") or {}).items()},
        "limits": {str(k): str(v) for k, v in (res.get("limits") or {}).items()},
    }


def container_resources(deployment: Obj, container: str) -> dict[str, dict[str, str]]:
    """dict(requests, limits) of one container of the deployment's template."""
    return _resources(find_container(deployment, container))


def template_yaml(template: Obj) -> str:
    """A pod template as sorted YAML, without the controller's ``pod-template-hash``."""
    import yaml

    return str(yaml.safe_dump(_without_hash(template or {}), sort_keys=True, width=100))


def template_diff(before: Obj, after: Obj, name: str = "deployment") -> str:
    """A unified diff of two pod templates (empty when they are the same)."""
    import difflib

    old, new = template_yaml(before), template_yaml(after)
    if old == new:
        return ""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=f"deployment/{name} spec.template (now)",
        tofile=f"deployment/{name} spec.template (after)",
        n=2,
    )
    return "".join(lines)


def image_patch(container: str, image: str, cause: str | None = None) -> Obj:
    """The strategic-merge patch of ``kubectl set image deployment/x container=image``."""
    patch: Obj = {"spec": {"template": {"spec": {"containers": [
        {"name": container, "image": image}]}}}}  # fmt: skip
    if cause:
        patch["metadata"] = {"annotations": {CHANGE_CAUSE: cause}}
    return patch


def set_image_template(deployment: Obj, container: str, image: str) -> Obj:
    """The deployment's template with one container's image changed (for previews)."""
    find_container(deployment, container)
    template = copy.deepcopy(_get(deployment, "spec", "template", default={}))
    for c in _get(template, "spec", "containers", default=[]):
        if c.get("name") == container:
            c["image"] = image
    return template


def describe_image(name: str, container: str, old: str, new: str, dry_run: bool) -> str:
    if old == new:
        return f"deployment/{name} container {container} already runs {new}: nothing to change"
    verb = "would set" if dry_run else "set"
    return f"{verb} image of deployment/{name} container {container} from {old} to {new}"


# Kubernetes quantities: 500m, 2, 0.5, 512Mi, 1Gi, 1e3, 1k, 1M ...
_QUANTITY = re.compile(
    r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$"
)
_QUANTITY_SUFFIX = {
    "": 1.0, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
    "P": 1e15, "E": 1e18, "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40,
    "Pi": 2.0**50, "Ei": 2.0**60,
}  # fmt: skip


def parse_quantity(value: Any) -> float:
    """A Kubernetes quantity (``500m``, ``2``, ``512Mi``, ``1Gi``) as a number of units
    (cores, bytes). Raises ValueError for anything else."""
    text = str(value).strip()
    m = _QUANTITY.match(text)
    if not m:
        raise ValueError(
            f"{value!r} is not a Kubernetes quantity (e.g. 500m or 2 for CPU, 512Mi or 1Gi for "
            "memory)"
        )
    return float(m.group(1)) * _QUANTITY_SUFFIX[m.group(2) or ""]


def merge_resources(
    current: Mapping[str, Mapping[str, str]],
    requests: Mapping[str, Any] | None,
    limits: Mapping[str, Any] | None,
    container: str = "",
) -> dict[str, dict[str, str]]:
    """``current`` resources with the given requests and limits set (empty values are left
    out). Raises ValueError for a malformed quantity, for nothing to set, or when a request
    would be above its limit (the API server refuses that too)."""
    wanted = {
        "requests": {str(k): str(v).strip() for k, v in (requests or {}).items() if str(v).strip()},
        "limits": {str(k): str(v).strip() for k, v in (limits or {}).items() if str(v).strip()},
    }
    if not wanted["requests"] and not wanted["limits"]:
        raise ValueError("set_resources needs at least one request or limit")
    for part in wanted.values():
        for value in part.values():
            parse_quantity(value)
    merged = {
        "requests": {**dict(current.get("requests") or {}), **wanted["requests"]},
        "limits": {**dict(current.get("limits") or {}), **wanted["limits"]},
    }
    for resource, request in merged["requests"].items():
        limit = merged["limits"].get(resource)
        if limit is not None and parse_quantity(request) > parse_quantity(limit):
            where = f"container {container}: " if container else ""
            raise ValueError(
                f"{where}{resource} request {request} would be above its limit {limit}"
                " (the API server refuses a request larger than the limit)"
            )
    return merged


def resources_patch(container: str, requests: Mapping[str, str], limits: Mapping[str, str]) -> Obj:
    """The strategic-merge patch of the template's vertical scaling step."""
    resources: Obj = {}
    if requests:
        resources["requests"] = dict(requests)
    if limits:
        resources["limits"] = dict(limits)
    return {"spec": {"template": {"spec": {"containers": [
        {"name": container, "resources": resources}]}}}}  # fmt: skip


def set_resources_template(deployment: Obj, container: str, resources: Obj) -> Obj:
    find_container(deployment, container)
    template = copy.deepcopy(_get(deployment, "spec", "template", default={}))
    for c in _get(template, "spec", "containers", default=[]):
        if c.get("name") == container:
            c["resources"] = {k: dict(v) for k, v in resources.items() if v}
    return template


def describe_resources(name: str, container: str, before: Obj, after: Obj, dry_run: bool) -> str:
    changes = []
    for part in ("requests", "limits"):
        for key in sorted(set(before.get(part) or {}) | set(after.get(part) or {})):
            old, new = (before.get(part) or {}).get(key), (after.get(part) or {}).get(key)
            if old != new:
                changes.append(f"{part[:-1]} {key} {old or 'unset'} -> {new or 'unset'}")
    if not changes:
        return f"deployment/{name} container {container} already has these resources"
    verb = "would set" if dry_run else "set"
    return f"{verb} resources of deployment/{name} container {container}: {'; '.join(changes)}"


def strategic_merge(doc: Any, patch: Any) -> Any:
    """A strategic merge of ``patch`` into ``doc`` as the API server does for Deployments:
    dicts merge, ``containers``/``env``/``volumes``/``ports`` lists merge by name (or
    ``containerPort``, ``mountPath``), other lists are replaced, None removes a key."""
    keys = {
        "containers": "name",
        "initContainers": "name",
        "env": "name",
        "volumes": "name",
        "volumeMounts": "mountPath",
        "ports": "containerPort",
        "imagePullSecrets": "name",
    }
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(doc) if isinstance(doc, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, list) and key in keys and isinstance(out.get(key), list):
            merged = [copy.deepcopy(v) for v in out[key]]
            for item in value:
                at = next(
                    (
                        i
                        for i, v in enumerate(merged)
                        if isinstance(v, dict)
                        and isinstance(item, dict)
                        and v.get(keys[key]) == item.get(keys[key])
                    ),
                    None,
                )
                if at is None:
                    merged.append(copy.deepcopy(item))
                else:
                    merged[at] = strategic_merge(merged[at], item)
            out[key] = merged
        else:
            out[key] = strategic_merge(out.get(key), value)
    return out


def deployment_manifest(manifest: Any, namespace: str) -> Obj:
    """A Deployment manifest made ready to send: checked (a mapping, ``kind: Deployment``,
    ``apps/v1``, a name, the backend's namespace when it names one), server-set fields and
    ``status`` dropped. Raises ValueError saying what is wrong."""
    if not isinstance(manifest, Mapping):
        raise ValueError(f"a Deployment manifest must be a mapping, not {type(manifest).__name__}")
    body = copy.deepcopy(dict(manifest))
    if body.get("kind") != "Deployment":
        raise ValueError(f"the manifest is a {body.get('kind')!r}, not a Deployment")
    if body.get("apiVersion", "apps/v1") != "apps/v1":
        raise ValueError(f"the manifest's apiVersion is {body['apiVersion']!r}, not 'apps/v1'")
    body["apiVersion"] = "apps/v1"
    md = dict(body.get("metadata") or {})
    if not md.get("name"):
        raise ValueError("the manifest has no metadata.name")
    if md.get("namespace") and md["namespace"] != namespace:
        raise ValueError(
            f"the manifest is for namespace {md['namespace']!r}, the target uses {namespace!r}"
        )
    md["namespace"] = namespace
    for key in _SERVER_FIELDS:
        md.pop(key, None)
    body["metadata"] = md
    body.pop("status", None)
    if not _get(body, "spec", "template", "spec", "containers"):
        raise ValueError("the manifest has no spec.template.spec.containers")
    return body


def describe_apply(name: str, before: Obj | None, after: Obj, dry_run: bool, diff: str) -> str:
    """One sentence on what applying a manifest changes (images, replicas, the template)."""
    verb = ("would create" if dry_run else "created") if before is None else (
        "would apply" if dry_run else "applied")  # fmt: skip
    parts = []
    new_images = _images(_get(after, "spec", "template", default={}))
    old_images = _images(_get(before, "spec", "template", default={})) if before else {}
    for c, image in new_images.items():
        if old_images.get(c) != image:
            parts.append(f"image {c} {old_images.get(c) or 'none'} -> {image}")
    old_r = _get(before, "spec", "replicas") if before else None
    new_r = _get(after, "spec", "replicas")
    if old_r != new_r:
        parts.append(f"replicas {old_r if old_r is not None else 'none'} -> {new_r}")
    changed = len(
        [ln for ln in diff.splitlines() if ln[:1] in "+-" and ln[:3] not in ("+++", "---")]
    )
    parts.append(f"{changed} template lines changed" if changed else "pod template unchanged")
    return f"{verb} deployment/{name} from the manifest: {'; '.join(parts)}"


# --- rollout status -------------------------------------------------------------------------


def rollout_status(deployment: Obj) -> dict[str, Any]:
    """Where a rollout stands, decided like ``kubectl rollout status``: dict(state
    ("complete", "progressing" or "failed"), done (bool), message, revision, replicas (desired),
    updated, ready, available, total (pods of every revision), generation,
    observed_generation)."""
    name = _get(deployment, "metadata", "name")
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    replicas = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    generation = _get(deployment, "metadata", "generation")
    observed = status.get("observedGeneration")
    progressing: dict[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Progressing"), {}
    )
    waiting = f'Waiting for deployment "{name}" rollout to finish: '
    state = "progressing"
    if observed is None or (generation is not None and int(observed) < int(generation)):
        message = "Waiting for deployment spec update to be observed..."
    elif progressing.get("reason") == "ProgressDeadlineExceeded":
        state, message = "failed", f'deployment "{name}" exceeded its progress deadline'
    elif updated < replicas:
        message = waiting + f"{updated} out of {replicas} new replicas have been updated..."
    elif total > updated:
        message = waiting + f"{total - updated} old replicas are pending termination..."
    elif available < updated:
        message = waiting + f"{available} of {updated} updated replicas are available..."
    else:
        state, message = "complete", f'deployment "{name}" successfully rolled out'
    return {
        "state": state,
        "done": state == "complete",
        "message": message,
        "revision": _revision(deployment),
        "replicas": replicas,
        "updated": updated,
        "ready": int(status.get("readyReplicas") or 0),
        "available": available,
        "total": total,
        "generation": generation,
        "observed_generation": observed,
    }


def current_replicaset(deployment: Obj, replicasets: Mapping[str, Any] | list[Obj]) -> Obj | None:
    """The ReplicaSet of the deployment's current revision (None when there is none yet)."""
    revision = _revision(deployment)
    owned = owned_replicasets(deployment, replicasets)
    for rs in owned:
        if revision is not None and _revision(rs) == revision:
            return rs
    template = _without_hash(_get(deployment, "spec", "template", default={}))
    for rs in owned:
        if _without_hash(_get(rs, "spec", "template", default={})) == template:
            return rs
    return None


def rollout_result(
    deployment: Obj, replicasets: Mapping[str, Any] | list[Obj] | None, *, timed_out: bool,
    waited: float, polls: int,
) -> dict[str, Any]:  # fmt: skip
    """``rollout_status`` plus the current ReplicaSet, its ``pod-template-hash`` (the pods
    of the new revision carry it), how long was waited and how often the status was read;
    ``state`` becomes "timeout" when the wait ran out first."""
    result = rollout_status(deployment)
    if timed_out and result["state"] == "progressing":
        result["state"] = "timeout"
    rs = current_replicaset(deployment, replicasets or [])
    result["name"] = _get(deployment, "metadata", "name")
    result["image"] = next(iter(_images(_get(deployment, "spec", "template", default={})).values()),
                           None)  # fmt: skip
    result["replicaset"] = _get(rs, "metadata", "name") if rs else None
    result["revision_hash"] = _get(rs, "metadata", "labels", HASH_LABEL) if rs else None
    result["waited_seconds"] = round(float(waited), 2)
    result["polls"] = int(polls)
    return result


# --- horizontal pod autoscalers -------------------------------------------------------------


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
