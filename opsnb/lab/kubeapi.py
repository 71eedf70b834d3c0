"""A stateful Kubernetes API server over real HTTP, for tests and the lab.

``KubeAPIServer`` serves discovery, namespaced CRUD with label and field selectors, the three
PATCH formats, server-side dry run, ``deployments/{name}/scale``, ``pods/{name}/log``, a simple
watch and server-side Tables, well enough that both ``kubectl`` and the official ``kubernetes``
Python client take it for a cluster. The objects and the controllers live in
:mod:`opsnb.lab.kubestore`; this module is HTTP, routing and the wire formats.

    server = KubeAPIServer().start()
    server.store.apply({...a Deployment...})          # seed; pods and ReplicaSets follow
    server.write_kubeconfig(tmp / "kubeconfig")       # for kubectl / load_kube_config
    ...
    assert server.mutations() == []                   # nothing but reads and dry runs arrived
    server.stop()

Every API request is recorded in ``server.requests`` as ``Request(method, path, query,
dry_run)`` tuples; ``GET /_test/requests`` and ``GET /_test/mutations`` give the same as JSON
lists of ``{"method", "path", "query", "dry_run"}`` and ``POST /_test/reset-requests`` clears
them, for tests in another process. ``fail_with(500)`` and ``delay(seconds)`` inject faults.

Limits: request bodies must be JSON. kubectl's typed commands (``kubectl create deployment``,
``kubectl create configmap``) send protobuf and get a clear 415; ``kubectl create -f`` and
``kubectl apply -f`` work. ``/openapi/v3`` is only the stub kubectl needs to leave field
validation to the server; ``/openapi/v2`` is 404 (so ``kubectl explain`` does not work).
Server-side apply is treated as a strategic merge of the applied object (no field managers).
"""

from __future__ import annotations

import copy
import json
import queue
import re
import select
import socket
import threading
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

from opsnb.lab.kubestore import (
    KINDS,
    ApiError,
    Kind,
    KubeStore,
    Obj,
    field_matcher,
    not_found,
    selector_matcher,
    selector_string,
)

__all__ = ["KubeAPIServer", "KubeStore", "ApiError", "Request", "apply_patch"]

VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.4",
    "gitCommit": "59526cd4867447956156ae3a602fcbac10a2c335",
    "gitTreeState": "clean",
    "buildDate": "2025-04-22T16:03:13Z",
    "goVersion": "go1.23.6",
    "compiler": "gc",
    "platform": "linux/amd64",
}
_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


# --- patches --------------------------------------------------------------------------------

PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)
# strategic merge: lists merged by these keys (as the Go types declare); others are replaced
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "conditions": "type",
    "ownerReferences": "uid",
    "hostAliases": "ip",
    "ports": "containerPort",
    "resourceClaims": "name",
}


def merge_patch(doc: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(doc) if isinstance(doc, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def strategic_merge(doc: Any, patch: Any) -> Any:
    """Kubernetes strategic merge patch: like a merge patch, but keyed lists merge by key."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return strategic_merge({}, {k: v for k, v in patch.items() if k != "$patch"})
    out = copy.deepcopy(doc) if isinstance(doc, dict) else {}
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            out[field] = [v for v in out.get(field, []) if v not in value]
        elif key.startswith("$"):
            continue  # $patch, $retainKeys, $setElementOrder/...: order and retention ignored
        elif value is None or (isinstance(value, dict) and value.get("$patch") == "delete"):
            out.pop(key, None)
        elif isinstance(value, list) and key in _MERGE_KEYS and isinstance(out.get(key), list):
            merge_key = _MERGE_KEYS[key]
            if key == "ports" and not any("containerPort" in p for p in value):
                merge_key = "port"
            out[key] = _merge_list(out[key], value, merge_key)
        elif isinstance(value, list) and key == "finalizers" and isinstance(out.get(key), list):
            out[key] = out[key] + [v for v in value if v not in out[key]]
        elif isinstance(value, list):
            out[key] = [strategic_merge({}, v) if isinstance(v, dict) else v for v in value]
        else:
            out[key] = strategic_merge(out.get(key), value)
    return out


def _merge_list(base: list[Any], patch: list[Any], key: str) -> list[Any]:
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [strategic_merge({}, i) for i in patch if i.get("$patch") != "replace"]
    out = copy.deepcopy(base)
    for item in patch:
        if not isinstance(item, dict):
            continue
        at = next(
            (n for n, o in enumerate(out) if isinstance(o, dict) and o.get(key) == item.get(key)),
            None,
        )
        if item.get("$patch") == "delete":
            out = [o for o in out if not (isinstance(o, dict) and o.get(key) == item.get(key))]
        elif at is None:
            out.append(strategic_merge({}, item))
        else:
            out[at] = strategic_merge(out[at], item)
    return out


def _patch_error(message: str) -> ApiError:
    return ApiError(422, "Invalid", message)


def _pointer(path: Any) -> list[str]:
    if path == "":
        return []
    if not isinstance(path, str) or not path.startswith("/"):
        raise _patch_error(f"invalid JSON pointer: {path!r}")
    return [t.replace("~1", "/").replace("~0", "~") for t in path[1:].split("/")]


def _walk(doc: Any, tokens: list[str], path: str) -> Any:
    for t in tokens:
        if isinstance(doc, dict) and t in doc:
            doc = doc[t]
        elif isinstance(doc, list) and t.isdigit() and int(t) < len(doc):
            doc = doc[int(t)]
        else:
            raise _patch_error(f"jsonpatch: doc is missing path: {path}")
    return doc


def _json_patch_op(doc: Any, op: str, path: str, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return None if op == "remove" else copy.deepcopy(value)
    parent, last = _walk(doc, tokens[:-1], path), tokens[-1]
    if isinstance(parent, dict):
        if op != "add" and last not in parent:
            raise _patch_error(
                f"jsonpatch {op} operation does not apply: doc is missing key: {path}"
            )
        if op == "remove":
            del parent[last]
        else:
            parent[last] = copy.deepcopy(value)
    elif isinstance(parent, list):
        if last == "-" and op == "add":
            parent.append(copy.deepcopy(value))
            return doc
        if (
            not last.isdigit()
            or int(last) > len(parent)
            or (op != "add" and int(last) == len(parent))
        ):
            raise _patch_error(
                f"jsonpatch {op} operation does not apply: index out of range: {path}"
            )
        i = int(last)
        if op == "add":
            parent.insert(i, copy.deepcopy(value))
        elif op == "remove":
            del parent[i]
        else:
            parent[i] = copy.deepcopy(value)
    else:
        raise _patch_error(f"jsonpatch: doc is missing path: {path}")
    return doc


def json_patch(doc: Any, ops: list[Any]) -> Any:
    """RFC 6902 JSON patch."""
    doc = copy.deepcopy(doc)
    for op in ops:
        if (
            not isinstance(op, dict)
            or op.get("op") not in ("add", "remove", "replace", "move", "copy", "test")
            or "path" not in op
        ):
            raise ApiError(400, "BadRequest", f"invalid JSON patch operation: {op!r}")
        name, path = op["op"], op["path"]
        if name == "test":
            if _walk(doc, _pointer(path), path) != op.get("value"):
                raise _patch_error(f"jsonpatch test operation does not apply: {path}")
        elif name in ("move", "copy"):
            value = copy.deepcopy(_walk(doc, _pointer(op.get("from")), str(op.get("from"))))
            if name == "move":
                doc = _json_patch_op(doc, "remove", op["from"], None)
            doc = _json_patch_op(doc, "add", path, value)
        else:
            doc = _json_patch_op(doc, name, path, op.get("value"))
    return doc


def apply_patch(doc: Obj, content_type: str | None, patch: Any) -> Obj:
    """Apply a PATCH body of the given media type to ``doc`` (returns a new dict)."""
    ct = (content_type or "").split(";")[0].strip().lower()
    if ct not in PATCH_TYPES:
        raise ApiError(
            415,
            "UnsupportedMediaType",
            "the body of the request was in an unknown "
            f"format - accepted media types include: {', '.join(PATCH_TYPES)}",
        )
    if ct == "application/json-patch+json":
        if not isinstance(patch, list):
            raise ApiError(400, "BadRequest", "json patch must be a list of operations")
        result = json_patch(doc, patch)
    elif not isinstance(patch, dict):
        raise ApiError(400, "BadRequest", "a merge patch must be a JSON object")
    elif ct == "application/merge-patch+json":
        result = merge_patch(doc, patch)
    else:
        result = strategic_merge(doc, patch)
    if not isinstance(result, dict):
        raise _patch_error("the patch did not produce an object")
    return result


# --- discovery ------------------------------------------------------------------------------

_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
_IN_ALL = {"Pod", "Service", "Deployment", "ReplicaSet"}


def _groups() -> list[Obj]:
    versions: dict[str, list[str]] = {}
    for k in KINDS.values():
        if k.group and k.version not in versions.setdefault(k.group, []):
            versions[k.group].append(k.version)
    return [
        {
            "name": g,
            "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
            "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]},
        }
        for g, vs in versions.items()
    ]


def _resource_list(group: str, version: str) -> Obj | None:
    resources: list[Obj] = []
    for k in KINDS.values():
        if (k.group, k.version) != (group, version):
            continue
        verbs = [v for v in _VERBS if k.namespaced or v != "deletecollection"]
        entry: Obj = {
            "name": k.plural,
            "singularName": k.kind.lower(),
            "namespaced": k.namespaced,
            "kind": k.kind,
            "verbs": verbs,
        }
        if k.short_names:
            entry["shortNames"] = list(k.short_names)
        if k.kind in _IN_ALL:
            entry["categories"] = ["all"]
        resources.append(entry)
        for sub in k.subresources:
            s: Obj = {
                "name": f"{k.plural}/{sub}",
                "singularName": "",
                "namespaced": k.namespaced,
                "kind": k.kind,
                "verbs": ["get"] if sub == "log" else ["get", "patch", "update"],
            }
            if sub == "scale":
                s.update(group="autoscaling", version="v1", kind="Scale")
            resources.append(s)
    if not resources:
        return None
    gv = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": gv,
        "resources": resources,
    }


def _openapi_v3(group_version: str) -> Obj:
    """Just enough OpenAPI v3 for kubectl to see that the server validates fields itself.

    kubectl (``create -f``, ``apply -f``) looks for a PATCH operation tagged with the kind and
    declaring the ``fieldValidation`` query parameter; finding it, it leaves validation to the
    server (which here accepts what it understands) instead of demanding schemas.
    """
    gvs = {
        k.api_version: ("api/" if not k.group else "apis/") + k.api_version for k in KINDS.values()
    }
    if not group_version:
        return {
            "paths": {
                path: {"serverRelativeURL": f"/openapi/v3/{path}?hash=lab"} for path in gvs.values()
            }
        }
    paths: Obj = {}
    for k in KINDS.values():
        if gvs[k.api_version] != group_version:
            continue
        scope = "/namespaces/{namespace}" if k.namespaced else ""
        paths[f"/{group_version}{scope}/{k.plural}/{{name}}"] = {
            "patch": {
                "operationId": f"patch{k.kind}",
                "parameters": [
                    {
                        "name": "fieldValidation",
                        "in": "query",
                        "schema": {"type": "string", "uniqueItems": True},
                    }
                ],
                "x-kubernetes-group-version-kind": {
                    "group": k.group,
                    "version": k.version,
                    "kind": k.kind,
                },
            }
        }
    if not paths:
        raise _not_found_path()
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": VERSION["gitVersion"]},
        "paths": paths,
        "components": {"schemas": {}},
    }


# --- server-side printing (Table) -----------------------------------------------------------


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    m = re.match(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?", text)
    if not m:
        return None
    frac = (m[2] or "")[:7]
    dt = datetime.fromisoformat(m[1] + frac + ("+00:00" if m[3] in (None, "Z") else m[3]))
    return dt.astimezone(UTC)


def human_duration(seconds: float) -> str:
    """Ages as kubectl prints them (``45s``, ``3m20s``, ``5h``, ``2d3h``)."""
    s = max(0, int(seconds))
    m, h = s // 60, s // 3600
    d = h // 24
    if s < 120:
        return f"{s}s"
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    if h < 192:
        return f"{d}d{h % 24}h" if h % 24 else f"{d}d"
    if d < 730:
        return f"{d}d"
    return f"{d // 365}y{d % 365}d" if d < 365 * 8 else f"{d // 365}y"


def _age(text: str | None, now: datetime) -> str:
    t = _parse_time(text)
    return human_duration((now - t).total_seconds()) if t else "<unknown>"


def _pod_cells(p: Obj, now: datetime) -> list[Any]:
    st = p.get("status", {})
    statuses = st.get("containerStatuses", [])
    reason = st.get("reason") or st.get("phase", "Unknown")
    for c in statuses:
        state = c.get("state", {})
        if state.get("waiting", {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated", {}).get("reason"):
            reason = state["terminated"]["reason"]
    if p["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    restarts = sum(c.get("restartCount", 0) for c in statuses)
    finished = [
        t
        for c in statuses
        if (t := _parse_time(c.get("lastState", {}).get("terminated", {}).get("finishedAt")))
    ]
    restart_text = str(restarts)
    if restarts and finished:
        restart_text += f" ({human_duration((now - max(finished)).total_seconds())} ago)"
    ready = sum(1 for c in statuses if c.get("ready"))
    return [
        p["metadata"]["name"],
        f"{ready}/{len(p['spec']['containers'])}",
        reason,
        restart_text,
        _age(p["metadata"].get("creationTimestamp"), now),
        st.get("podIP", "<none>"),
        p["spec"].get("nodeName", "<none>"),
        "<none>",
        "<none>",
    ]


def _workload_cells(o: Obj, now: datetime) -> list[Any]:
    spec, st = o["spec"], o.get("status", {})
    containers = spec["template"]["spec"]["containers"]
    tail = [
        ",".join(c["name"] for c in containers),
        ",".join(c["image"] for c in containers),
        selector_string(spec.get("selector")),
    ]
    age = _age(o["metadata"].get("creationTimestamp"), now)
    if o["kind"] == "Deployment":
        return [
            o["metadata"]["name"],
            f"{st.get('readyReplicas', 0)}/{spec['replicas']}",
            st.get("updatedReplicas", 0),
            st.get("availableReplicas", 0),
            age,
            *tail,
        ]
    return [
        o["metadata"]["name"],
        spec["replicas"],
        st.get("replicas", 0),
        st.get("readyReplicas", 0),
        age,
        *tail,
    ]


def _event_cells(e: Obj, now: datetime) -> list[Any]:
    ref, src = e.get("involvedObject", {}), e.get("source", {})
    return [
        _age(e.get("lastTimestamp") or e.get("eventTime"), now),
        e.get("type", ""),
        e.get("reason", ""),
        f"{str(ref.get('kind', '')).lower()}/{ref.get('name', '')}",
        ref.get("fieldPath", ""),
        ", ".join(v for v in (src.get("component"), src.get("host")) if v),
        e.get("message", ""),
        _age(e.get("firstTimestamp"), now),
        e.get("count", 1),
        e["metadata"]["name"],
    ]


def _service_cells(s: Obj, now: datetime) -> list[Any]:
    spec = s["spec"]
    ports = ",".join(f"{p['port']}/{p.get('protocol', 'TCP')}" for p in spec.get("ports", []))
    return [
        s["metadata"]["name"],
        spec.get("type", "ClusterIP"),
        spec.get("clusterIP", ""),
        "<none>",
        ports or "<none>",
        _age(s["metadata"].get("creationTimestamp"), now),
        selector_string({"matchLabels": spec.get("selector") or {}}) or "<none>",
    ]


def _simple_cells(o: Obj, now: datetime) -> list[Any]:
    extra = (
        [o.get("status", {}).get("phase", "")]
        if o["kind"] == "Namespace"
        else [len(o.get("data") or {}) + len(o.get("binaryData") or {})]
    )
    return [o["metadata"]["name"], *extra, _age(o["metadata"].get("creationTimestamp"), now)]


def _hpa_cells(o: Obj, now: datetime) -> list[Any]:
    spec, status = o.get("spec") or {}, o.get("status") or {}
    ref = spec.get("scaleTargetRef") or {}
    targets = []
    for m in spec.get("metrics") or []:
        target = (m.get("resource") or {}).get("target") or {}
        if "averageUtilization" in target:
            targets.append(
                f"{m['resource'].get('name', '')}: <unknown>/{target['averageUtilization']}%"
            )
    return [
        o["metadata"]["name"],
        f"{ref.get('kind', '')}/{ref.get('name', '')}",
        ", ".join(targets) or "<none>",
        spec.get("minReplicas", 1),
        spec.get("maxReplicas", 0),
        status.get("currentReplicas", 0),
        _age(o["metadata"].get("creationTimestamp"), now),
    ]


_WORKLOAD_TAIL = [("Containers", "string", 1), ("Images", "string", 1), ("Selector", "string", 1)]
_TABLES: dict[str, tuple[list[tuple[str, str, int]], Callable[[Obj, datetime], list[Any]]]] = {
    "Pod": (
        [
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "string", 0),
            ("Age", "string", 0),
            ("IP", "string", 1),
            ("Node", "string", 1),
            ("Nominated Node", "string", 1),
            ("Readiness Gates", "string", 1),
        ],
        _pod_cells,
    ),
    "Deployment": (
        [
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Up-to-date", "integer", 0),
            ("Available", "integer", 0),
            ("Age", "string", 0),
            *_WORKLOAD_TAIL,
        ],
        _workload_cells,
    ),
    "ReplicaSet": (
        [
            ("Name", "string", 0),
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
            ("Age", "string", 0),
            *_WORKLOAD_TAIL,
        ],
        _workload_cells,
    ),
    "Event": (
        [
            ("Last Seen", "string", 0),
            ("Type", "string", 0),
            ("Reason", "string", 0),
            ("Object", "string", 0),
            ("Subobject", "string", 1),
            ("Source", "string", 1),
            ("Message", "string", 0),
            ("First Seen", "string", 1),
            ("Count", "string", 1),
            ("Name", "string", 1),
        ],
        _event_cells,
    ),
    "Service": (
        [
            ("Name", "string", 0),
            ("Type", "string", 0),
            ("Cluster-IP", "string", 0),
            ("External-IP", "string", 0),
            ("Port(s)", "string", 0),
            ("Age", "string", 0),
            ("Selector", "string", 1),
        ],
        _service_cells,
    ),
    "Namespace": (
        [("Name", "string", 0), ("Status", "string", 0), ("Age", "string", 0)],
        _simple_cells,
    ),
    "ConfigMap": (
        [("Name", "string", 0), ("Data", "integer", 0), ("Age", "string", 0)],
        _simple_cells,
    ),
    "HorizontalPodAutoscaler": (
        [
            ("Name", "string", 0),
            ("Reference", "string", 0),
            ("Targets", "string", 0),
            ("MinPods", "string", 0),
            ("MaxPods", "integer", 0),
            ("Replicas", "integer", 0),
            ("Age", "string", 0),
        ],
        _hpa_cells,
    ),
}
_DEFAULT_TABLE: tuple[list[tuple[str, str, int]], Callable[[Obj, datetime], list[Any]]] = (
    [("Name", "string", 0), ("Age", "string", 0)],
    lambda o, now: [o["metadata"]["name"], _age(o["metadata"].get("creationTimestamp"), now)],
)


def to_table(k: Kind, objs: list[Obj], resource_version: str, include: str = "Metadata") -> Obj:
    columns, cells = _TABLES.get(k.kind, _DEFAULT_TABLE)
    now = datetime.now(UTC)
    rows = []
    for o in objs:
        row: Obj = {"cells": cells(o, now)}
        if include == "Object":
            row["object"] = o
        elif include != "None":
            row["object"] = {
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": o["metadata"],
            }
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [
            {
                "name": n,
                "type": t,
                "format": "name" if n == "Name" else "",
                "description": "",
                "priority": p,
            }
            for n, t, p in columns
        ],
        "rows": rows,
    }


# --- logs -----------------------------------------------------------------------------------


def filter_log(
    text: str,
    *,
    tail: int | None = None,
    since: datetime | None = None,
    timestamps: bool = False,
    limit_bytes: int | None = None,
) -> str:
    """Apply ``sinceSeconds``/``sinceTime``, ``tailLines``, ``timestamps`` and ``limitBytes``.

    A line's time is its leading ISO 8601 timestamp (the lab's log format); lines without one
    (stack traces) go with the line before them.
    """
    now = datetime.now(UTC)
    lines, keep, stamped = [], since is None, now
    for line in text.splitlines(keepends=True):
        t = _parse_time(line)
        if t is not None:
            stamped = t
            keep = since is None or t >= since
        if keep:
            lines.append((stamped, line))
    if tail is not None:
        lines = lines[-tail:] if tail > 0 else []
    out = "".join(
        (f"{t.strftime('%Y-%m-%dT%H:%M:%S.%f')}000Z " if timestamps else "") + line
        for t, line in lines
    )
    if limit_bytes is not None and limit_bytes >= 0:
        out = out.encode()[:limit_bytes].decode(errors="ignore")
    return out


# --- the server -----------------------------------------------------------------------------


def _peer_closed(h: BaseHTTPRequestHandler) -> bool:
    """Did the client hang up (readable socket with nothing to read)?"""
    readable, _, _ = select.select([h.connection], [], [], 0)
    try:
        return bool(readable) and h.connection.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class Request(NamedTuple):
    method: str
    path: str
    query: str
    dry_run: bool


class _Response(NamedTuple):
    code: int
    body: Any  # dict (JSON), str (text/plain) or a callable that streams
    stream: Callable[[BaseHTTPRequestHandler], None] | None = None


def _not_found_path() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def _int(query: dict[str, str], name: str) -> int | None:
    value = query.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, "BadRequest", f"invalid {name}: {value!r}") from None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _HTTPServer

    def _dispatch(self) -> None:
        self.server.app._handle(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _dispatch

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                data += self.rfile.read(size)
                self.rfile.readline()
            self.rfile.readline()
            return data
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    app: KubeAPIServer


class KubeAPIServer:
    """The HTTP server; ``store`` holds the state, ``requests`` what arrived."""

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, store: KubeStore | None = None
    ) -> None:
        self.store = store or KubeStore()
        self.requests: list[Request] = []
        self._requests_lock = threading.Lock()
        self._fail: int | None = None
        self._delay = 0.0
        self._stopping = threading.Event()
        self._httpd = _HTTPServer((host, port), _Handler)
        self._httpd.app = self
        self._thread: threading.Thread | None = None

    # --- lifecycle and test hooks ---------------------------------------------------------

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> KubeAPIServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="kubeapi",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(5)
        self._httpd.server_close()

    def __enter__(self) -> KubeAPIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def mutations(self) -> list[Request]:
        """Requests that could have changed state: not GET/HEAD and not dry runs."""
        with self._requests_lock:
            return [r for r in self.requests if r.method not in ("GET", "HEAD") and not r.dry_run]

    def reset_requests(self) -> None:
        with self._requests_lock:
            self.requests.clear()

    def fail_with(self, status: int | None) -> None:
        """Answer every API request (not ``/_test/*``) with this status until ``None``."""
        self._fail = status

    def delay(self, seconds: float) -> None:
        """Sleep this long before answering each API request (0 to stop)."""
        self._delay = seconds

    def write_kubeconfig(
        self, path: str | Path, context: str = "lab", namespace: str = "production"
    ) -> Path:
        """A kubeconfig for this server (token ``test``); creates ``namespace`` if missing."""
        if self.store.get("Namespace", None, namespace) is None:
            self.store.apply(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
            )
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": context,
            "preferences": {},
            "clusters": [
                {"name": context, "cluster": {"server": self.url, "insecure-skip-tls-verify": True}}
            ],
            "users": [{"name": context, "user": {"token": "test"}}],
            "contexts": [
                {
                    "name": context,
                    "context": {"cluster": context, "user": context, "namespace": namespace},
                }
            ],
        }
        path = Path(path)
        path.write_text(json.dumps(config, indent=2))
        return path

    # --- request handling -----------------------------------------------------------------

    def _handle(self, h: _Handler) -> None:
        url = urlsplit(h.path)
        query = parse_qs(url.query, keep_blank_values=True)
        try:
            raw = h.read_body()
        except (OSError, ValueError):
            h.close_connection = True
            return
        if url.path.startswith("/_test/"):
            return self._send(h, self._test_endpoint(h.command, url.path))
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            body = ...  # reported below, once the request is recorded
        dry_run = "All" in query.get("dryRun", []) or (
            h.command == "DELETE" and isinstance(body, dict) and "All" in (body.get("dryRun") or [])
        )
        with self._requests_lock:
            self.requests.append(Request(h.command, url.path, url.query, dry_run))
        if self._delay:
            time.sleep(self._delay)
        try:
            if self._fail is not None:
                code = self._fail
                raise ApiError(
                    code, _REASONS.get(code, "InternalError"), f"injected failure: HTTP {code}", {}
                )
            if "protobuf" in h.headers.get("Content-Type", "") and raw:
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    "this test API server reads JSON "
                    "request bodies only, not protobuf (kubectl's typed commands "
                    "such as `kubectl create deployment`); use `kubectl create -f`",
                )
            if body is ...:
                raise ApiError(400, "BadRequest", "the request body is not valid JSON")
            response = self._route(h, url.path, query, body, dry_run)
        except ApiError as e:
            response = _Response(e.code, e.status())
        except Exception as e:  # a bug here must still reach the client as a Status
            traceback.print_exc()
            response = _Response(500, ApiError(500, "InternalError", repr(e)).status())
        self._send(h, response)

    def _send(self, h: _Handler, response: _Response) -> None:
        h.send_response(response.code)
        h.send_header("Cache-Control", "no-cache, private")
        if response.stream is not None:
            h.send_header("Content-Type", "application/json")
            h.send_header("Transfer-Encoding", "chunked")
            h.end_headers()
            response.stream(h)
            return
        if isinstance(response.body, str):
            data, ctype = response.body.encode(), "text/plain"
        else:
            data, ctype = json.dumps(response.body).encode(), "application/json"
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)

    def _test_endpoint(self, method: str, path: str) -> _Response:
        """``GET /_test/requests`` and ``/_test/mutations``: JSON lists of
        ``{"method", "path", "query", "dry_run"}``; ``POST /_test/reset-requests``."""
        if method == "GET" and path in ("/_test/requests", "/_test/mutations"):
            if path == "/_test/requests":
                with self._requests_lock:
                    recorded = list(self.requests)
            else:
                recorded = self.mutations()
            return _Response(200, [r._asdict() for r in recorded])
        if method == "POST" and path == "/_test/reset-requests":
            self.reset_requests()
            return _Response(
                200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}
            )
        return _Response(404, _not_found_path().status())

    def _route(
        self, h: _Handler, path: str, query: dict[str, list[str]], body: Any, dry_run: bool
    ) -> _Response:
        parts = [p for p in path.split("/") if p]
        method = h.command if h.command != "HEAD" else "GET"
        if (
            parts
            and parts[0] in ("api", "apis", "version")
            and len(parts) <= (2 if parts[0] == "api" else 3)
            and method != "GET"
        ):
            raise ApiError(405, "MethodNotAllowed", "the server does not allow this method")
        if parts in (["version"], ["version", ""]):
            return _Response(200, VERSION)
        if parts[:2] == ["openapi", "v3"]:
            return _Response(200, _openapi_v3("/".join(parts[2:])))
        if parts and parts[0] in ("healthz", "livez", "readyz"):
            return _Response(200, "ok")
        if parts == ["api"]:
            host = self.url.split("://", 1)[1]
            return _Response(
                200,
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": host}
                    ],
                },
            )
        if parts == ["apis"]:
            return _Response(200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": _groups()})
        if len(parts) == 2 and parts[0] == "apis":
            found = next((g for g in _groups() if g["name"] == parts[1]), None)
            if found is None:
                raise _not_found_path()
            return _Response(200, {"kind": "APIGroup", "apiVersion": "v1", **found})
        if len(parts) == 2 and parts[0] == "api" or len(parts) == 3 and parts[0] == "apis":
            resources = _resource_list(*(("", parts[1]) if parts[0] == "api" else parts[1:]))
            if resources is None:
                raise _not_found_path()
            return _Response(200, resources)
        if len(parts) < 3 or parts[0] not in ("api", "apis"):
            raise _not_found_path()
        group, version, rest = (
            ("", parts[1], parts[2:]) if parts[0] == "api" else (parts[1], parts[2], parts[3:])
        )
        plurals = {(k.group, k.version, k.plural): k for k in KINDS.values()}
        ns: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3 and (group, version, rest[2]) in plurals:
            ns, rest = rest[1], rest[2:]
        k = plurals.get((group, version, rest[0]))
        if k is None or len(rest) > 3 or (ns is None and k.namespaced and len(rest) > 1):
            raise _not_found_path()
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and sub not in k.subresources:
            raise _not_found_path()
        return self._serve(h, method, k, ns, name, sub, query, body, dry_run)

    def _serve(
        self,
        h: _Handler,
        method: str,
        k: Kind,
        ns: str | None,
        name: str | None,
        sub: str | None,
        query: dict[str, list[str]],
        body: Any,
        dry_run: bool,
    ) -> _Response:
        store = self.store
        q = {key: values[0] for key, values in query.items()}
        table = "as=Table" in h.headers.get("Accept", "")
        scope = ns or ""
        if name is None:
            if method == "GET" and q.get("watch") in ("true", "1"):
                return self._watch(k, ns, q)
            if method == "GET":
                objs = store.list(k.kind, ns, q.get("labelSelector"), q.get("fieldSelector"))
                rv = store.resource_version
                if table:
                    return _Response(200, to_table(k, objs, rv, q.get("includeObject", "Metadata")))
                for o in objs:
                    o.pop("kind", None)
                    o.pop("apiVersion", None)
                return _Response(
                    200,
                    {
                        "kind": f"{k.kind}List",
                        "apiVersion": k.api_version,
                        "metadata": {"resourceVersion": rv},
                        "items": objs,
                    },
                )
            if method == "POST":
                obj = self._body(k, body, scope)
                return _Response(201, store.create(k.kind, scope, obj, dry_run=dry_run))
            if method == "DELETE" and k.namespaced:
                items = [
                    store.delete(k.kind, scope, o["metadata"]["name"], dry_run=dry_run)
                    for o in store.list(k.kind, ns, q.get("labelSelector"), q.get("fieldSelector"))
                ]
                return _Response(
                    200,
                    {
                        "kind": f"{k.kind}List",
                        "apiVersion": k.api_version,
                        "metadata": {},
                        "items": items,
                    },
                )
        elif sub == "log" and method == "GET":
            return self._log(scope, name, q)
        elif sub == "scale":
            if method == "GET":
                return _Response(200, store.scale(k.kind, scope, name))
            if method in ("PUT", "PATCH"):
                ctype = h.headers.get("Content-Type")
                change = self._changer(method, ctype, body, "Scale")
                return _Response(
                    200, store.update_scale(k.kind, scope, name, change, dry_run=dry_run)
                )
        elif method == "GET":
            found = store.get(k.kind, scope, name)
            if found is None:
                raise not_found(k, name)
            if table and sub is None:
                return _Response(
                    200,
                    to_table(
                        k,
                        [found],
                        found["metadata"]["resourceVersion"],
                        q.get("includeObject", "Metadata"),
                    ),
                )
            return _Response(200, found)
        elif sub is None and method in ("PUT", "PATCH"):
            ctype = h.headers.get("Content-Type")
            if method == "PUT":
                body = self._body(k, body, scope)
            change = self._changer(method, ctype, body, k.kind)
            return _Response(200, store.update(k.kind, scope, name, change, dry_run=dry_run))
        elif sub is None and method == "DELETE":
            options = body if isinstance(body, dict) else {}
            policy = q.get("propagationPolicy") or options.get("propagationPolicy")
            if q.get("orphanDependents") == "true" or options.get("orphanDependents"):
                policy = "Orphan"
            obj = store.delete(k.kind, scope, name, dry_run=dry_run, propagation=policy)
            if k.kind in ("Pod", "Namespace"):
                return _Response(200, obj)
            return _Response(
                200,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": {
                        "name": name,
                        **({"group": k.group} if k.group else {}),
                        "kind": k.plural,
                        "uid": obj["metadata"]["uid"],
                    },
                },
            )
        raise ApiError(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )

    @staticmethod
    def _body(k: Kind, body: Any, ns: str) -> Obj:
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the request body must be a JSON object")
        if body.get("kind") not in (None, k.kind):
            raise ApiError(
                400,
                "BadRequest",
                f"the kind in the body ({body['kind']}) does not match the resource ({k.plural})",
            )
        body_ns = (body.get("metadata") or {}).get("namespace")
        if k.namespaced and body_ns and body_ns != ns:
            raise ApiError(
                400,
                "BadRequest",
                "the namespace of the provided object does not "
                "match the namespace sent on the request",
            )
        return body

    @staticmethod
    def _changer(
        method: str, content_type: str | None, body: Any, kind: str
    ) -> Callable[[Obj], Obj]:
        if method == "PATCH":
            return lambda old: apply_patch(old, content_type, body)
        if not isinstance(body, dict) or body.get("kind") not in (None, kind):
            raise ApiError(400, "BadRequest", f"the request body must be a {kind} object")
        return lambda old: copy.deepcopy(body)

    def _log(self, ns: str, pod: str, q: dict[str, str]) -> _Response:
        text = self.store.read_log(
            ns,
            pod,
            container=q.get("container") or None,
            previous=q.get("previous") in ("true", "1"),
        )
        since = None
        if (seconds := _int(q, "sinceSeconds")) is not None:
            since = datetime.now(UTC) - timedelta(seconds=seconds)
        elif q.get("sinceTime"):
            since = _parse_time(q["sinceTime"])
        return _Response(
            200,
            filter_log(
                text,
                tail=_int(q, "tailLines"),
                since=since,
                timestamps=q.get("timestamps") in ("true", "1"),
                limit_bytes=_int(q, "limitBytes"),
            ),
        )

    def _watch(self, k: Kind, ns: str | None, q: dict[str, str]) -> _Response:
        """A watch: current objects as ADDED (unless resuming), then changes until timeout."""
        labels = selector_matcher(q.get("labelSelector"))
        fields = field_matcher(q.get("fieldSelector"))
        events: queue.Queue[tuple[str, Obj]] = queue.Queue()

        def wanted(obj: Obj) -> bool:
            md = obj["metadata"]
            return (
                (ns is None or md.get("namespace") == ns)
                and labels(md.get("labels") or {})
                and fields(obj)
            )

        def listener(kind: str, event: str, obj: Obj) -> None:
            if kind == k.kind and wanted(obj):
                events.put((event, obj))

        self.store.add_listener(listener)
        if q.get("resourceVersion", "") in ("", "0") or q.get("sendInitialEvents") == "true":
            for obj in self.store.list(k.kind, ns):
                if wanted(obj):
                    events.put(("ADDED", obj))
        timeout = min(float(q.get("timeoutSeconds") or 60), 300.0)

        def stream(h: BaseHTTPRequestHandler) -> None:
            deadline = time.monotonic() + timeout
            try:
                while not self._stopping.is_set() and time.monotonic() < deadline:
                    try:
                        event, obj = events.get(timeout=0.05)
                    except queue.Empty:
                        if _peer_closed(h):
                            break
                        continue
                    line = json.dumps({"type": event, "object": obj}).encode() + b"\n"
                    h.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                    h.wfile.flush()
                h.wfile.write(b"0\r\n\r\n")
            except OSError:
                h.close_connection = True
            finally:
                self.store.remove_listener(listener)

        return _Response(200, None, stream)
