"""Deployments: summaries, rollout history, rollback plans (as ``kubectl rollout undo``),
rollout status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .common import (
    _ROLLBACK_SKIP,
    CHANGE_CAUSE,
    HASH_LABEL,
    HISTORY_COLUMNS,
    REVISION,
    Change,
    Obj,
    ObjectNotFound,
    _get,
    _items,
    _utc_series,
    timestamp,
)
from .templates import _images, _resources, _without_hash, template_diff

# --- deployments and rollout history --------------------------------------------------------


def _revision(obj: Obj) -> int | None:
    raw = _get(obj, "metadata", "annotations", REVISION)
    try:
        return int(raw)
    except (TypeError, ValueError):
        return None


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
