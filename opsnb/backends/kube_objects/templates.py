"""Changes to a deployment's pod template: images, resources, manifests, and
Kubernetes quantities."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any

from .common import CHANGE_CAUSE, HASH_LABEL, Obj, ObjectNotFound, _get

CHANGE_CAUSE_PREFIX = "opsnb"
PINNED_FROM = "opsnb.io/pinned-from"  # on an HPA: the min/max it had before it was pinned
_SERVER_FIELDS = ("resourceVersion", "uid", "creationTimestamp", "generation", "managedFields",
                  "selfLink")  # fmt: skip


def _images(template: Obj) -> dict[str, str]:
    return {
        c.get("name", ""): c.get("image", "")
        for c in _get(template, "spec", "containers", default=[])
    }


def _without_hash(template: Obj) -> Obj:
    template = copy.deepcopy(template)
    labels = _get(template, "metadata", "labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return template


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
