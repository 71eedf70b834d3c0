"""The object store behind the Kubernetes test API server, and its synchronous controllers.

Objects are plain dicts shaped exactly like the API server's JSON. Stored objects are never
mutated in place: every change deep-copies, edits and writes back, so a dry run can restore the
previous state with a shallow copy. One re-entrant lock guards everything.

The deployment and replica-set "controllers" run synchronously after every persisted change:
a deployment's template selects (or creates) a ReplicaSet ``<deploy>-<hash>``, replicas move to
it, pods are created or deleted to match, statuses and events follow, as the real controllers
would leave them once a rollout has settled.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Obj = dict[str, Any]
Objs = list[Obj]  # (``list`` is a method name inside KubeStore)
Listener = Callable[[str, str, Obj], None]
LogProvider = Callable[[str, str, str, bool], "str | None"]

REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED = "deployment.kubernetes.io/desired-replicas"
MAX_REPLICAS = "deployment.kubernetes.io/max-replicas"
CHANGE_CAUSE = "kubernetes.io/change-cause"
HASH_LABEL = "pod-template-hash"
# deployment annotations the controller does not copy onto its ReplicaSets (as upstream)
_NOT_COPIED = {
    REVISION,
    REVISION_HISTORY,
    DESIRED,
    MAX_REPLICAS,
    "kubectl.kubernetes.io/last-applied-configuration",
    "deprecated.deployment.rollback.to",
}
_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # the alphabet of generated names and template hashes
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


@dataclass(frozen=True)
class Kind:
    kind: str
    group: str
    version: str
    plural: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def resource(self) -> str:
        """The group-qualified resource name the real server uses in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def qualified_kind(self) -> str:
        return f"{self.kind}.{self.group}" if self.group else self.kind


KINDS: dict[str, Kind] = {
    k.kind: k
    for k in (
        Kind(
            "Namespace",
            "",
            "v1",
            "namespaces",
            namespaced=False,
            short_names=("ns",),
            subresources=("status",),
        ),
        Kind("Pod", "", "v1", "pods", short_names=("po",), subresources=("log", "status")),
        Kind("Event", "", "v1", "events", short_names=("ev",)),
        Kind("ConfigMap", "", "v1", "configmaps", short_names=("cm",)),
        Kind("Service", "", "v1", "services", short_names=("svc",), subresources=("status",)),
        Kind(
            "Deployment",
            "apps",
            "v1",
            "deployments",
            short_names=("deploy",),
            subresources=("scale", "status"),
        ),
        Kind(
            "ReplicaSet",
            "apps",
            "v1",
            "replicasets",
            short_names=("rs",),
            subresources=("scale", "status"),
        ),
        Kind(
            "HorizontalPodAutoscaler",
            "autoscaling",
            "v2",
            "horizontalpodautoscalers",
            short_names=("hpa",),
            subresources=("status",),
        ),
    )
}
# status only via the controllers
_STATUS_KINDS = {"Pod", "Deployment", "ReplicaSet", "Service", "HorizontalPodAutoscaler"}
_SCALE = Kind("Scale", "autoscaling", "v1", "scales")


def kind_of(name: str) -> Kind:
    """``Deployment``, ``deployment``, ``deployments`` or ``deploy`` -> the Kind."""
    low = name.lower()
    for k in KINDS.values():
        if low in (k.kind.lower(), k.plural, *k.short_names):
            return k
    raise KeyError(f"unknown kind {name!r}")


class ApiError(Exception):
    """An API failure, carried to the client as a ``Status`` object."""

    def __init__(self, code: int, reason: str, message: str, details: Obj | None = None):
        super().__init__(message)
        self.code, self.reason, self.message, self.details = code, reason, message, details

    def status(self) -> Obj:
        body: Obj = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(k: Kind, name: str, **extra: Any) -> Obj:
    return {"name": name, **({"group": k.group} if k.group else {}), "kind": k.plural, **extra}


def not_found(k: Kind, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{k.resource} "{name}" not found', _details(k, name))


def invalid(k: Kind, name: str, causes: list[tuple[str, str]]) -> ApiError:
    msgs = [f"{field}: {msg}" for field, msg in causes]
    text = msgs[0] if len(msgs) == 1 else "[" + ", ".join(msgs) + "]"
    return ApiError(
        422,
        "Invalid",
        f'{k.qualified_kind} "{name}" is invalid: {text}',
        _details(
            k,
            name,
            kind=k.kind,
            causes=[{"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes],
        ),
    )


# --- label and field selectors ------------------------------------------------------------

_REQUIREMENT = re.compile(
    r"^\s*(?P<neg>!)?\s*(?P<key>[A-Za-z0-9_./-]+)\s*(?:(?P<op>==|!=|=)\s*"
    r"(?P<val>[A-Za-z0-9_.-]*)|(?P<set>in|notin)\s*\((?P<vals>[^)]*)\))?\s*$"
)


def _split_outside_parens(text: str) -> list[str]:
    parts, depth, cur = [], 0, ""
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [*parts, cur]


def selector_matcher(text: str | None) -> Callable[[Mapping[str, str]], bool]:
    """A label selector (``a=b,c!=d,e in (x,y),f notin (z),g,!h``) as a predicate on labels."""
    reqs: list[tuple[str, str, set[str]]] = []  # (operator, key, values)
    for part in _split_outside_parens(text or "") if (text or "").strip() else []:
        m = _REQUIREMENT.match(part)
        if not m or (m["neg"] and (m["op"] or m["set"])):
            raise ApiError(400, "BadRequest", f"unable to parse requirement: {part.strip()!r}")
        op = (
            "!"
            if m["neg"]
            else {None: "exists", "==": "="}.get(m["op"] or m["set"], m["op"] or m["set"])
        )
        values = (
            {m["val"]}
            if m["op"]
            else {v.strip() for v in (m["vals"] or "").split(",") if v.strip()}
        )
        reqs.append((op, m["key"], values))

    def matches(labels: Mapping[str, str]) -> bool:
        for op, key, values in reqs:
            present, value = key in labels, labels.get(key)
            ok = {
                "!": not present,
                "exists": present,
                "=": present and value in values,
                "in": present and value in values,
                "!=": value not in values,
                "notin": value not in values,
            }[op]
            if not ok:
                return False
        return True

    return matches


def selector_string(selector: Obj | None) -> str:
    """A LabelSelector object in the string form kubectl and the API use."""
    selector = selector or {}
    terms = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for e in selector.get("matchExpressions") or []:
        values = ",".join(sorted(e.get("values") or []))
        op = e["operator"]
        terms.append(
            {
                "In": f"{e['key']} in ({values})",
                "NotIn": f"{e['key']} notin ({values})",
                "Exists": e["key"],
                "DoesNotExist": f"!{e['key']}",
            }[op]
        )
    return ",".join(terms)


def field_matcher(text: str | None) -> Callable[[Obj], bool]:
    """A field selector (``metadata.name=x,involvedObject.name=y,reason!=z``) as a predicate."""
    reqs: list[tuple[list[str], bool, str]] = []
    for term in (text or "").split(",") if (text or "").strip() else []:
        m = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|!=|=)\s*(.*?)\s*$", term)
        if not m:
            raise ApiError(400, "BadRequest", f"invalid field selector: {term!r}")
        reqs.append((m[1].split("."), m[2] == "!=", m[3]))

    def value(obj: Any, path: list[str]) -> str:
        for part in path:
            obj = obj.get(part) if isinstance(obj, dict) else None
        if isinstance(obj, bool):
            return str(obj).lower()
        return "" if obj is None else str(obj)

    return lambda obj: all((value(obj, path) == val) != neg for path, neg, val in reqs)


# --- helpers -------------------------------------------------------------------------------


def ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _rand(n: int) -> str:
    return "".join(random.choice(_SAFE) for _ in range(n))


def _canonical(value: Any) -> Any:
    """Drop nulls and empty maps/lists: Go's semantic equality treats them as absent."""
    if isinstance(value, dict):
        out = {k: _canonical(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v not in (None, {}, [])}
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    return value


def _without_hash(template: Obj) -> Obj:
    t = copy.deepcopy(template)
    t.get("metadata", {}).get("labels", {}).pop(HASH_LABEL, None)
    return t


def template_hash(template: Obj) -> str:
    digest = hashlib.sha256(json.dumps(_canonical(template), sort_keys=True).encode()).digest()
    return "".join(_SAFE[b % len(_SAFE)] for b in digest[:10])


def _revision(obj: Obj) -> int:
    try:
        return int(obj["metadata"].get("annotations", {}).get(REVISION, "0"))
    except ValueError:
        return 0


def _controller_uid(obj: Obj) -> str | None:
    for ref in obj["metadata"].get("ownerReferences", []):
        if ref.get("controller"):
            return ref.get("uid")
    return None


def _owner_ref(owner: Obj) -> Obj:
    return {
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _ref(obj: Obj) -> Obj:
    """An ObjectReference to ``obj`` (a full object or already a reference)."""
    if "metadata" not in obj:
        return dict(obj)
    md = obj["metadata"]
    ref = {
        "kind": obj.get("kind"),
        "namespace": md.get("namespace"),
        "name": md.get("name"),
        "uid": md.get("uid"),
        "apiVersion": obj.get("apiVersion"),
        "resourceVersion": md.get("resourceVersion"),
    }
    return {k: v for k, v in ref.items() if v is not None}


def _pod_ready(pod: Obj) -> bool:
    st = pod.get("status", {})
    cs = st.get("containerStatuses", [])
    return (
        st.get("phase") == "Running"
        and bool(cs)
        and all(c.get("ready") for c in cs)
        and not pod["metadata"].get("deletionTimestamp")
    )


def _percent(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        exact = int(value[:-1]) * total / 100
        return int(-(-exact // 1)) if round_up else int(exact)
    return int(value)


def _default_pod_spec(spec: Obj) -> None:
    for key, value in (
        ("restartPolicy", "Always"),
        ("terminationGracePeriodSeconds", 30),
        ("dnsPolicy", "ClusterFirst"),
        ("securityContext", {}),
        ("schedulerName", "default-scheduler"),
    ):
        spec.setdefault(key, value)
    for c in spec.get("containers", []) + spec.get("initContainers", []):
        image = str(c.get("image", ""))
        tagged = ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest")
        c.setdefault("imagePullPolicy", "IfNotPresent" if tagged or "@" in image else "Always")
        c.setdefault("resources", {})
        c.setdefault("terminationMessagePath", "/dev/termination-log")
        c.setdefault("terminationMessagePolicy", "File")
        for p in c.get("ports", []):
            p.setdefault("protocol", "TCP")


def _default(obj: Obj) -> None:
    """The defaulting the real API server applies (the fields clients see come back)."""
    spec = obj.get("spec")
    kind = obj["kind"]
    if kind == "Pod" and isinstance(spec, dict):
        _default_pod_spec(spec)
    if kind in ("Deployment", "ReplicaSet") and isinstance(spec, dict):
        spec.setdefault("replicas", 1)
        tmpl = spec.setdefault("template", {})
        tmpl.setdefault("metadata", {})
        _default_pod_spec(tmpl.setdefault("spec", {}))
    if kind == "Deployment" and isinstance(spec, dict):
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        strategy = spec.setdefault("strategy", {"type": "RollingUpdate"})
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            strategy["type"] = "RollingUpdate"
            ru = strategy.setdefault("rollingUpdate", {})
            ru.setdefault("maxUnavailable", "25%")
            ru.setdefault("maxSurge", "25%")
    if kind == "HorizontalPodAutoscaler" and isinstance(spec, dict):
        spec.setdefault("minReplicas", 1)
    if kind == "Service" and isinstance(spec, dict):
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        for p in spec.get("ports", []):
            p.setdefault("protocol", "TCP")
            p.setdefault("targetPort", p.get("port"))


def _validate(k: Kind, obj: Obj, old: Obj | None) -> None:
    name = obj["metadata"].get("name", "")
    causes: list[tuple[str, str]] = []
    if not name:
        causes.append(("metadata.name", "Required value: name or generateName is required"))
    elif len(name) > 253 or not _NAME.match(name):
        causes.append(
            (
                "metadata.name",
                f'Invalid value: "{name}": a lowercase RFC 1123 '
                "subdomain must consist of lower case alphanumeric characters, '-' or '.'",
            )
        )
    spec = obj.get("spec")
    if k.kind in ("Pod", "Deployment", "ReplicaSet"):
        pod_spec, prefix = spec, "spec"
        if k.kind != "Pod":
            pod_spec, prefix = (spec or {}).get("template", {}).get("spec"), "spec.template.spec"
        containers = (pod_spec or {}).get("containers") or []
        if not containers:
            causes.append((f"{prefix}.containers", "Required value"))
        for i, c in enumerate(containers):
            for field in ("name", "image"):
                if not c.get(field):
                    causes.append((f"{prefix}.containers[{i}].{field}", "Required value"))
    if k.kind in ("Deployment", "ReplicaSet"):
        spec = spec or {}
        replicas = spec.get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            causes.append(
                ("spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0")
            )
        selector = spec.get("selector")
        if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
            causes.append(("spec.selector", "Required value"))
        else:
            labels = spec.get("template", {}).get("metadata", {}).get("labels") or {}
            if not selector_matcher(selector_string(selector))(labels):
                causes.append(
                    (
                        "spec.template.metadata.labels",
                        f"Invalid value: {labels}: `selector` does not match template `labels`",
                    )
                )
            if (
                old is not None
                and k.kind == "Deployment"
                and _canonical(old["spec"].get("selector")) != _canonical(selector)
            ):
                causes.append(("spec.selector", f"Invalid value: {selector}: field is immutable"))
    if k.kind == "HorizontalPodAutoscaler":
        causes.extend(_hpa_causes(spec or {}))
    if causes:
        raise invalid(k, name, causes)


def _hpa_causes(spec: Obj) -> list[tuple[str, str]]:
    """What the API server refuses in an autoscaling/v2 HPA spec."""
    causes: list[tuple[str, str]] = []
    ref = spec.get("scaleTargetRef") or {}
    for field in ("kind", "name"):
        if not ref.get(field):
            causes.append((f"spec.scaleTargetRef.{field}", "Required value"))
    low, high = spec.get("minReplicas", 1), spec.get("maxReplicas")
    if not isinstance(low, int) or low < 1:
        causes.append(("spec.minReplicas", f"Invalid value: {low}: must be greater than 0"))
    if not isinstance(high, int) or high < 1:
        causes.append(("spec.maxReplicas", f"Invalid value: {high}: must be greater than 0"))
    elif isinstance(low, int) and high < low:
        causes.append(
            ("spec.maxReplicas", f"Invalid value: {high}: must be greater than or equal to "
             "`minReplicas`")
        )  # fmt: skip
    return causes


class KubeStore:
    """Objects by kind, namespace and name; the controllers; logs; listeners."""

    def __init__(self, node_name: str = "lab-node-1") -> None:
        self.node_name = node_name
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._lock = threading.RLock()
        self._objects: dict[str, dict[tuple[str, str], Obj]] = {k: {} for k in KINDS}
        self._rv = 1000
        self._ips = itertools.count(2)
        self._logs: dict[tuple[str, str, str | None, bool], str] = {}
        self._log_provider: LogProvider | None = None
        self._listeners: list[Listener] = []
        self._pending: list[tuple[str, str, Obj]] = []
        self._depth = 0
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    # --- public API --------------------------------------------------------------------

    def apply(self, obj: Obj) -> Obj:
        """Create or replace an object (seeding; no resourceVersion check), then reconcile."""
        k = kind_of(obj["kind"])
        ns = (obj.get("metadata", {}).get("namespace") or "default") if k.namespaced else ""
        with self._tx():
            if k.namespaced and ("", ns) not in self._objects["Namespace"]:
                self._write(self._prepare(KINDS["Namespace"], "", {"metadata": {"name": ns}}))
            old = self._objects[k.kind].get((ns, obj["metadata"].get("name", "")))
            body = copy.deepcopy(obj)
            if k.kind in _STATUS_KINDS and old is not None and "status" not in body:
                body["status"] = copy.deepcopy(old.get("status"))
            written = self._write(self._prepare(k, ns, body, old, keep_status=True))
            name = written["metadata"]["name"]
            self._reconcile(ns)
            return self._must(k, ns, name)

    def get(self, kind: str, namespace: str | None, name: str) -> Obj | None:
        k = kind_of(kind)
        with self._lock:
            obj = self._objects[k.kind].get(((namespace or "") if k.namespaced else "", name))
            return copy.deepcopy(obj)

    def list(
        self,
        kind: str,
        namespace: str | None = None,
        selector: str | None = None,
        field_selector: str | None = None,
    ) -> Objs:
        k = kind_of(kind)
        labels = selector_matcher(selector)
        fields = field_matcher(field_selector)
        with self._lock:
            return [
                copy.deepcopy(o)
                for key, o in sorted(self._objects[k.kind].items())
                if (namespace is None or key[0] == namespace)
                and labels(o["metadata"].get("labels") or {})
                and fields(o)
            ]

    def set_log(
        self,
        namespace: str,
        pod: str,
        text: str,
        *,
        container: str | None = None,
        previous: bool = False,
    ) -> None:
        with self._lock:
            self._logs[(namespace, pod, container, previous)] = text

    def set_log_provider(self, fn: LogProvider | None) -> None:
        self._log_provider = fn

    def add_listener(self, fn: Listener) -> None:
        with self._lock:
            self._listeners.append(fn)

    def remove_listener(self, fn: Listener) -> None:
        with self._lock:
            if fn in self._listeners:
                self._listeners.remove(fn)

    @property
    def resource_version(self) -> str:
        return str(self._rv)

    def record_event(
        self,
        namespace: str,
        involved: Obj,
        reason: str,
        message: str,
        type: str = "Normal",
        *,
        component: str = "opsnb-lab",
    ) -> Obj:
        with self._tx():
            return copy.deepcopy(self._event(namespace, involved, reason, message, type, component))

    def set_pod_state(
        self,
        namespace: str,
        pod: str,
        *,
        ready: bool | None = None,
        restart_count: int | None = None,
        last_state: Obj | None = None,
        phase: str | None = None,
        waiting_reason: str | None = None,
        container: str | None = None,
    ) -> Obj:
        """Change what the kubelet would report; ``container`` limits it to one container."""
        k = KINDS["Pod"]
        now = ts(self.clock())
        with self._tx():
            p = self._must(k, namespace, pod)
            st = p.setdefault("status", {})
            if phase is not None:
                st["phase"] = phase
            for cs in st.get("containerStatuses", []):
                if container is not None and cs["name"] != container:
                    continue
                if restart_count is not None:
                    cs["restartCount"] = restart_count
                if last_state is not None:
                    cs["lastState"] = copy.deepcopy(last_state)
                    term = cs["lastState"].get("terminated")
                    if term is not None:
                        term.setdefault("exitCode", 1)
                        term.setdefault("startedAt", st.get("startTime", now))
                        term.setdefault("finishedAt", now)
                        term.setdefault("containerID", cs.get("containerID"))
                if waiting_reason is not None:
                    cs["state"] = (
                        {"waiting": {"reason": waiting_reason}}
                        if waiting_reason
                        else {"running": {"startedAt": now}}
                    )
                    cs["ready"] = cs["started"] = not waiting_reason
                if phase is not None and phase != "Running":
                    cs["ready"] = False
                if ready is not None:
                    cs["ready"] = ready
            self._set_conditions(p, now)
            self._write(p)
            self._reconcile(namespace)
            return self._must(k, namespace, pod)

    # --- the REST operations the HTTP layer calls --------------------------------------

    def create(self, kind: str, namespace: str, body: Obj, *, dry_run: bool = False) -> Obj:
        k = kind_of(kind)
        ns = namespace if k.namespaced else ""
        with self._tx(dry_run):
            if k.namespaced and ("", ns) not in self._objects["Namespace"]:
                raise ApiError(
                    404,
                    "NotFound",
                    f'namespaces "{ns}" not found',
                    {"name": ns, "kind": "namespaces"},
                )
            obj = self._prepare(k, ns, copy.deepcopy(body))
            if (ns, obj["metadata"]["name"]) in self._objects[k.kind]:
                name = obj["metadata"]["name"]
                raise ApiError(
                    409, "AlreadyExists", f'{k.resource} "{name}" already exists', _details(k, name)
                )
            self._write(obj)
            self._reconcile(ns)
            return self._must(k, ns, obj["metadata"]["name"])

    def replace(
        self, kind: str, namespace: str, name: str, body: Obj, *, dry_run: bool = False
    ) -> Obj:
        k = kind_of(kind)
        with self._tx(dry_run):
            return self._update(k, namespace, name, copy.deepcopy(body))

    def update(
        self,
        kind: str,
        namespace: str,
        name: str,
        mutate: Callable[[Obj], Obj],
        *,
        dry_run: bool = False,
    ) -> Obj:
        """Read-modify-write under the lock (PATCH): ``mutate`` gets a copy, returns the new."""
        k = kind_of(kind)
        with self._tx(dry_run):
            old = self._must(k, namespace, name)
            return self._update(k, namespace, name, mutate(old))

    def delete(
        self,
        kind: str,
        namespace: str,
        name: str,
        *,
        dry_run: bool = False,
        propagation: str | None = None,
    ) -> Obj:
        k = kind_of(kind)
        ns = namespace if k.namespaced else ""
        with self._tx(dry_run):
            obj = self._must(k, ns, name)
            self._remove(obj, cascade=propagation != "Orphan")
            self._reconcile(ns)
            obj["metadata"]["deletionTimestamp"] = ts(self.clock())
            obj["metadata"]["deletionGracePeriodSeconds"] = 0
            return obj

    def scale(self, kind: str, namespace: str, name: str) -> Obj:
        k = kind_of(kind)
        with self._lock:
            obj = self._must(k, namespace, name)
        md = obj["metadata"]
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                key: md[key]
                for key in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            },
            "spec": {"replicas": obj["spec"]["replicas"]},
            "status": {
                "replicas": obj.get("status", {}).get("replicas", 0),
                "selector": selector_string(obj["spec"]["selector"]),
            },
        }

    def update_scale(
        self,
        kind: str,
        namespace: str,
        name: str,
        mutate: Callable[[Obj], Obj],
        *,
        dry_run: bool = False,
    ) -> Obj:
        """PUT or PATCH the ``scale`` subresource: ``mutate`` turns the Scale into the new one."""
        k = kind_of(kind)
        with self._tx(dry_run):
            new = mutate(self.scale(kind, namespace, name))
            replicas = (new.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                raise invalid(
                    _SCALE,
                    name,
                    [
                        (
                            "spec.replicas",
                            f"Invalid value: {replicas}: must be greater than or equal to 0",
                        )
                    ],
                )
            obj = self._must(k, namespace, name)
            rv = new.get("metadata", {}).get("resourceVersion")
            if rv and rv != obj["metadata"]["resourceVersion"]:
                raise self._conflict(k, name)
            obj["spec"]["replicas"] = replicas
            self._update(k, namespace, name, obj)
            return self.scale(kind, namespace, name)

    def read_log(
        self, namespace: str, pod: str, *, container: str | None = None, previous: bool = False
    ) -> str:
        """The raw log text (the HTTP layer applies tail/since/timestamps)."""
        with self._lock:
            p = self._must(KINDS["Pod"], namespace, pod)
        names = [c["name"] for c in p["spec"]["containers"]]
        names += [c["name"] for c in p["spec"].get("initContainers", [])]
        if container is None:
            if len(p["spec"]["containers"]) != 1:
                raise ApiError(
                    400,
                    "BadRequest",
                    f"a container name must be specified for pod "
                    f"{pod}, choose one of: [{' '.join(names)}]",
                )
            container = names[0]
        elif container not in names:
            raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {pod}")
        text = (
            self._log_provider(namespace, pod, container, previous) if self._log_provider else None
        )
        if text is None:
            with self._lock:
                text = self._logs.get(
                    (namespace, pod, container, previous),
                    self._logs.get((namespace, pod, None, previous)),
                )
        if text is None and previous:
            raise ApiError(
                400,
                "BadRequest",
                f'previous terminated container "{container}" in pod "{pod}" not found',
            )
        return text or ""

    # --- transactions and raw writes ---------------------------------------------------

    @contextmanager
    def _tx(self, dry_run: bool = False) -> Iterator[None]:
        """Group writes; a dry run (or an error) restores the previous state."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            saved = {kind: dict(objs) for kind, objs in self._objects.items()}
            self._pending, self._depth, ok = [], 1, False
            try:
                yield
                ok = True
            finally:
                pending, self._pending, self._depth = self._pending, [], 0
                if dry_run or not ok:
                    self._objects = saved
            for kind, event, obj in pending if not dry_run else ():
                for fn in list(self._listeners):
                    fn(kind, event, copy.deepcopy(obj))

    def _write(self, obj: Obj) -> Obj:
        md = obj["metadata"]
        key = (md.get("namespace", ""), md["name"])
        old = self._objects[obj["kind"]].get(key)
        if old is not None:
            md["resourceVersion"] = old["metadata"]["resourceVersion"]
            if old == obj:
                return old
        self._rv += 1
        md["resourceVersion"] = str(self._rv)
        self._objects[obj["kind"]][key] = obj
        self._pending.append((obj["kind"], "MODIFIED" if old else "ADDED", obj))
        return obj

    def _remove(self, obj: Obj, cascade: bool = True) -> None:
        md = obj["metadata"]
        if self._objects[obj["kind"]].pop((md.get("namespace", ""), md["name"]), None) is None:
            return
        self._rv += 1
        self._pending.append((obj["kind"], "DELETED", obj))
        if obj["kind"] == "Pod" and ("", md["namespace"]) in self._objects["Namespace"]:
            for c in obj["spec"]["containers"]:
                self._event(
                    md["namespace"],
                    dict(_ref(obj), fieldPath=f"spec.containers{{{c['name']}}}"),
                    "Killing",
                    f"Stopping container {c['name']}",
                    "Normal",
                    "kubelet",
                )
        if obj["kind"] == "Namespace":
            for objs in self._objects.values():
                for (ns, _), child in list(objs.items()):
                    if ns == md["name"]:
                        self._remove(child)
            return
        for kind in ("ReplicaSet", "Pod"):
            for child in list(self._objects[kind].values()):
                refs = child["metadata"].get("ownerReferences", [])
                if any(r.get("uid") == md["uid"] for r in refs):
                    if cascade:
                        self._remove(child)
                    else:
                        child = copy.deepcopy(child)
                        child["metadata"]["ownerReferences"] = [
                            r for r in refs if r.get("uid") != md["uid"]
                        ]
                        self._write(child)

    def _must(self, k: Kind, namespace: str, name: str) -> Obj:
        """A copy of the stored object, or NotFound."""
        obj = self._objects[k.kind].get((namespace if k.namespaced else "", name))
        if obj is None:
            raise not_found(k, name)
        return copy.deepcopy(obj)

    def _conflict(self, k: Kind, name: str) -> ApiError:
        return ApiError(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {k.resource} "{name}"'
            ": the object has been modified; please apply your changes to the "
            "latest version and try again",
            _details(k, name),
        )

    def _prepare(
        self, k: Kind, ns: str, obj: Obj, old: Obj | None = None, keep_status: bool = False
    ) -> Obj:
        """Server-set fields, defaults and validation for a new version of an object."""
        obj["apiVersion"], obj["kind"] = k.api_version, k.kind
        md = obj.setdefault("metadata", {})
        if not md.get("name") and md.get("generateName") and old is None:
            md["name"] = md["generateName"] + _rand(5)
        if k.namespaced:
            md["namespace"] = ns
        else:
            md.pop("namespace", None)
        now = ts(self.clock())
        if old is None:
            md["uid"] = str(uuid.uuid4())
            md["creationTimestamp"] = now
            md.pop("resourceVersion", None)
            if k.kind in ("Deployment", "ReplicaSet"):
                md["generation"] = 1
        else:
            for key in ("uid", "creationTimestamp", "generation", "resourceVersion"):
                if key in old["metadata"]:
                    md[key] = old["metadata"][key]
        if k.kind in _STATUS_KINDS and not keep_status:
            obj["status"] = copy.deepcopy(old.get("status")) if old else None
        _default(obj)
        _validate(k, obj, old)
        if (
            old is not None
            and "generation" in md
            and _canonical(old.get("spec")) != _canonical(obj.get("spec"))
        ):
            md["generation"] += 1
        if k.kind == "Pod" and not (obj.get("status") or {}).get("containerStatuses"):
            self._schedule(obj)
        if k.kind == "Service":
            n = next(self._ips)
            obj["spec"].setdefault("clusterIP", f"10.96.{n // 250}.{n % 250 + 2}")
            obj["spec"].setdefault("clusterIPs", [obj["spec"]["clusterIP"]])
            obj.setdefault("status", {"loadBalancer": {}})
        if k.kind == "Namespace":
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["status"] = {"phase": "Active"}
            md.setdefault("labels", {})["kubernetes.io/metadata.name"] = md["name"]
        if obj.get("status") is None:
            obj.pop("status", None)
        return obj

    def _update(self, k: Kind, namespace: str, name: str, body: Obj) -> Obj:
        old = self._must(k, namespace, name)
        md = body.setdefault("metadata", {})
        if md.get("name", name) != name:
            raise ApiError(
                400,
                "BadRequest",
                f"the name of the object ({md['name']}) does not "
                f"match the name on the URL ({name})",
            )
        md["name"] = name
        rv = md.get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise self._conflict(k, name)
        self._write(self._prepare(k, namespace, body, old))
        self._reconcile(namespace)
        return self._must(k, namespace, name)

    # --- events -------------------------------------------------------------------------

    def _event(
        self, namespace: str, involved: Obj, reason: str, message: str, type: str, component: str
    ) -> Obj:
        ref = _ref(involved)
        ref.setdefault("namespace", namespace)
        now = ts(self.clock())
        source = {"component": component}
        if component == "kubelet":
            source["host"] = self.node_name
        for ev in self._objects["Event"].values():
            same_ref = all(
                ev["involvedObject"].get(f) == ref.get(f)
                for f in ("kind", "name", "uid", "fieldPath")
            )
            if (
                ev["metadata"]["namespace"] == namespace
                and same_ref
                and ev["reason"] == reason
                and ev["message"] == message
                and ev["type"] == type
            ):
                ev = copy.deepcopy(ev)
                ev["count"] += 1
                ev["lastTimestamp"] = now
                return self._write(ev)
        name = f"{ref.get('name', 'event')}.{time.time_ns():x}"
        while (namespace, name) in self._objects["Event"]:
            name = f"{ref.get('name', 'event')}.{time.time_ns() + random.randint(1, 999):x}"
        ev = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": name, "namespace": namespace},
            "involvedObject": ref,
            "reason": reason,
            "message": message,
            "source": source,
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
            "type": type,
            "eventTime": None,
            "reportingComponent": component,
            "reportingInstance": source.get("host", ""),
        }
        return self._write(self._prepare(KINDS["Event"], namespace, ev))

    # --- controllers ----------------------------------------------------------------------

    def _items(self, kind: str, ns: str) -> Objs:
        return [o for (n, _), o in sorted(self._objects[kind].items()) if n == ns]

    def _owned(self, kind: str, ns: str, uid: str) -> Objs:
        return [o for o in self._items(kind, ns) if _controller_uid(o) == uid]

    def _reconcile(self, ns: str) -> None:
        for hpa in self._items("HorizontalPodAutoscaler", ns):
            self._sync_hpa(hpa)
        for d in self._items("Deployment", ns):
            self._sync_deployment(d)
        for rs in self._items("ReplicaSet", ns):
            self._sync_replicaset(rs)
        for rs in self._items("ReplicaSet", ns):
            self._replicaset_status(rs)
        for d in self._items("Deployment", ns):
            self._deployment_status(d)
        for hpa in self._items("HorizontalPodAutoscaler", ns):
            self._hpa_status(hpa)

    def _hpa_target(self, hpa: Obj) -> Obj | None:
        ref = hpa["spec"].get("scaleTargetRef") or {}
        if ref.get("kind") != "Deployment":
            return None
        key = (str(hpa["metadata"]["namespace"]), str(ref.get("name", "")))
        return self._objects["Deployment"].get(key)

    def _sync_hpa(self, hpa: Obj) -> None:
        """What the HPA controller settles to, with no metrics to act on: the target's
        replicas kept within [minReplicas, maxReplicas]."""
        d = self._hpa_target(hpa)
        if d is None:
            return
        low, high = hpa["spec"].get("minReplicas", 1), hpa["spec"]["maxReplicas"]
        replicas = d["spec"]["replicas"]
        wanted = min(max(replicas, low), high)
        if wanted == replicas:
            return
        d = copy.deepcopy(d)
        d["spec"]["replicas"] = wanted
        d["metadata"]["generation"] += 1
        self._write(d)
        hpa = copy.deepcopy(hpa)
        hpa.setdefault("status", {})["lastScaleTime"] = ts(self.clock())
        self._write(hpa)
        bound = "below minReplicas" if replicas < low else "above maxReplicas"
        self._event(
            hpa["metadata"]["namespace"],
            hpa,
            "SuccessfulRescale",
            f"New size: {wanted}; reason: the desired replica count is {bound}",
            "Normal",
            "horizontal-pod-autoscaler",
        )

    def _hpa_status(self, hpa: Obj) -> None:
        hpa = copy.deepcopy(hpa)
        d = self._hpa_target(hpa)
        status = hpa.get("status") or {}
        low, high = hpa["spec"].get("minReplicas", 1), hpa["spec"]["maxReplicas"]
        result: Obj = {}
        if status.get("lastScaleTime"):
            result["lastScaleTime"] = status["lastScaleTime"]
        if d is None:
            ref = hpa["spec"].get("scaleTargetRef") or {}
            result.update(currentReplicas=0, desiredReplicas=0)
            conditions = [
                (
                    "AbleToScale",
                    "False",
                    "FailedGetScale",
                    f"the HPA controller was unable to get the target's current scale: "
                    f'{str(ref.get("kind", "")).lower()}s "{ref.get("name")}" not found',
                )
            ]
        else:
            current = int((d.get("status") or {}).get("replicas") or 0)
            desired = d["spec"]["replicas"]
            limited = desired in (low, high) and low != high
            result.update(currentReplicas=current, desiredReplicas=desired)
            conditions = [
                ("AbleToScale", "True", "ReadyForNewScale",
                 "recommended size matches current size"),
                ("ScalingActive", "False", "FailedGetResourceMetric",
                 "the HPA was unable to compute the replica count: no metrics in the lab"),
                ("ScalingLimited", "True" if limited or low == high else "False",
                 "TooFewReplicas" if desired == low else (
                     "TooManyReplicas" if desired == high else "DesiredWithinRange"),
                 f"the desired replica count is within [{low}, {high}]"),
            ]  # fmt: skip
        old = {c["type"]: c for c in status.get("conditions") or []}
        now = ts(self.clock())
        result["conditions"] = [
            {"type": t, "status": st, "reason": reason, "message": message,
             "lastTransitionTime": old[t]["lastTransitionTime"]
             if t in old and old[t]["status"] == st else now}
            for t, st, reason, message in conditions
        ]  # fmt: skip
        hpa["status"] = result
        self._write(hpa)

    def _sync_deployment(self, d: Obj) -> None:
        ns, uid, spec = d["metadata"]["namespace"], d["metadata"]["uid"], d["spec"]
        if spec.get("paused"):
            return
        owned = self._owned("ReplicaSet", ns, uid)
        wanted = _canonical(spec["template"])
        new = next(
            (rs for rs in owned if _canonical(_without_hash(rs["spec"]["template"])) == wanted),
            None,
        )
        max_old = max((_revision(rs) for rs in owned if rs is not new), default=0)
        new = self._new_replicaset(d, max_old + 1) if new is None else copy.deepcopy(new)
        ann = new["metadata"].setdefault("annotations", {})
        if _revision(new) <= max_old:
            history = [h for h in ann.get(REVISION_HISTORY, "").split(",") if h]
            ann[REVISION_HISTORY] = ",".join([*history, ann[REVISION]])
            ann[REVISION] = str(max_old + 1)
        for key, value in (d["metadata"].get("annotations") or {}).items():
            if key not in _NOT_COPIED:
                ann[key] = value
        replicas = spec["replicas"]
        surge = _percent(
            spec["strategy"].get("rollingUpdate", {}).get("maxSurge", 0), replicas, True
        )
        ann[DESIRED], ann[MAX_REPLICAS] = str(replicas), str(replicas + surge)
        new = self._write(new)
        d = copy.deepcopy(d)
        d["metadata"].setdefault("annotations", {})[REVISION] = ann[REVISION]
        d = self._write(d)
        self._scale_replicaset(d, new, replicas)
        olds = [
            rs
            for rs in self._owned("ReplicaSet", ns, uid)
            if rs["metadata"]["name"] != new["metadata"]["name"]
        ]
        for rs in olds:
            self._scale_replicaset(d, rs, 0)
        limit = spec.get("revisionHistoryLimit", 10)
        idle = sorted((rs for rs in olds if rs["spec"]["replicas"] == 0), key=_revision)
        for rs in idle[: max(0, len(idle) - limit)]:
            self._remove(self._objects["ReplicaSet"][(ns, rs["metadata"]["name"])])

    def _new_replicaset(self, d: Obj, revision: int) -> Obj:
        h = template_hash(d["spec"]["template"])
        template = copy.deepcopy(d["spec"]["template"])
        template["metadata"].setdefault("labels", {})[HASH_LABEL] = h
        selector = copy.deepcopy(d["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = h
        rs = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{d['metadata']['name']}-{h}",
                "labels": dict(template["metadata"]["labels"]),
                "annotations": {REVISION: str(revision)},
                "ownerReferences": [_owner_ref(d)],
            },
            "spec": {
                "replicas": 0,
                "minReadySeconds": d["spec"].get("minReadySeconds", 0),
                "selector": selector,
                "template": template,
            },
        }
        return self._prepare(KINDS["ReplicaSet"], d["metadata"]["namespace"], rs)

    def _scale_replicaset(self, d: Obj, rs: Obj, replicas: int) -> None:
        before = rs["spec"]["replicas"]
        if before == replicas:
            return
        rs = self._must(KINDS["ReplicaSet"], rs["metadata"]["namespace"], rs["metadata"]["name"])
        rs["spec"]["replicas"] = replicas
        rs["metadata"]["generation"] += 1
        self._write(rs)
        direction = "up" if replicas > before else "down"
        self._event(
            d["metadata"]["namespace"],
            d,
            "ScalingReplicaSet",
            f"Scaled {direction} replica set {rs['metadata']['name']} from {before} to {replicas}",
            "Normal",
            "deployment-controller",
        )

    def _sync_replicaset(self, rs: Obj) -> None:
        ns = rs["metadata"]["namespace"]
        pods = self._owned("Pod", ns, rs["metadata"]["uid"])
        diff = rs["spec"]["replicas"] - len(pods)
        for _ in range(diff):
            pod = self._new_pod(rs)
            self._write(pod)
            self._event(
                ns,
                rs,
                "SuccessfulCreate",
                f"Created pod: {pod['metadata']['name']}",
                "Normal",
                "replicaset-controller",
            )
        # as upstream: not-ready pods go first, then the newest
        victims: Objs = sorted(
            pods,
            key=lambda p: (p["metadata"]["creationTimestamp"], p["metadata"]["name"]),
            reverse=True,
        )
        victims.sort(key=_pod_ready)
        for pod in victims[: max(0, -diff)]:
            self._remove(pod)
            self._event(
                ns,
                rs,
                "SuccessfulDelete",
                f"Deleted pod: {pod['metadata']['name']}",
                "Normal",
                "replicaset-controller",
            )

    def _new_pod(self, rs: Obj) -> Obj:
        template = copy.deepcopy(rs["spec"]["template"])
        name = f"{rs['metadata']['name']}-{_rand(5)}"
        md = template.get("metadata", {})
        md.pop("creationTimestamp", None)
        md.update(
            name=name, generateName=f"{rs['metadata']['name']}-", ownerReferences=[_owner_ref(rs)]
        )
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": md, "spec": template["spec"]}
        return self._prepare(KINDS["Pod"], rs["metadata"]["namespace"], pod)

    def _schedule(self, pod: Obj) -> None:
        """What the scheduler and the kubelet do for a new pod: bind it and start it."""
        now = ts(self.clock())
        n = next(self._ips)
        pod["spec"].setdefault("nodeName", self.node_name)
        pod["spec"].setdefault("serviceAccountName", "default")
        pod["spec"].setdefault("serviceAccount", pod["spec"]["serviceAccountName"])
        statuses = []
        for c in pod["spec"]["containers"]:
            image = c["image"]
            digest = hashlib.sha256(image.encode()).hexdigest()
            statuses.append(
                {
                    "name": c["name"],
                    "image": image,
                    "imageID": f"{image.split(':')[0]}@sha256:{digest}",
                    "containerID": f"containerd://{uuid.uuid4().hex}{uuid.uuid4().hex}",
                    "ready": True,
                    "started": True,
                    "restartCount": 0,
                    "state": {"running": {"startedAt": now}},
                    "lastState": {},
                }
            )
        ip = f"10.244.{n // 250}.{n % 250 + 2}"
        pod["status"] = {
            "phase": "Running",
            "hostIP": "10.0.0.10",
            "hostIPs": [{"ip": "10.0.0.10"}],
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": now,
            "qosClass": "BestEffort",
            "containerStatuses": statuses,
        }
        self._set_conditions(pod, now)

    @staticmethod
    def _set_conditions(pod: Obj, now: str) -> None:
        ready = "True" if _pod_ready(pod) else "False"
        old = {c["type"]: c for c in pod["status"].get("conditions", [])}
        conds = []
        for ctype, status in (
            ("PodReadyToStartContainers", "True"),
            ("Initialized", "True"),
            ("Ready", ready),
            ("ContainersReady", ready),
            ("PodScheduled", "True"),
        ):
            prev = old.get(ctype)
            if prev and prev["status"] == status:
                conds.append(prev)
            else:
                conds.append(
                    {
                        "type": ctype,
                        "status": status,
                        "lastProbeTime": None,
                        "lastTransitionTime": now,
                    }
                )
        pod["status"]["conditions"] = conds

    def _replicaset_status(self, rs: Obj) -> None:
        rs = copy.deepcopy(rs)
        md = rs["metadata"]
        pods = self._owned("Pod", md["namespace"], md["uid"])
        labels = selector_matcher(selector_string(rs["spec"]["selector"]))
        ready = sum(_pod_ready(p) for p in pods)
        rs["status"] = {
            "replicas": len(pods),
            "fullyLabeledReplicas": sum(labels(p["metadata"].get("labels") or {}) for p in pods),
            "readyReplicas": ready,
            "availableReplicas": ready,
            "observedGeneration": md["generation"],
        }
        self._write(rs)

    def _deployment_status(self, d: Obj) -> None:
        d = copy.deepcopy(d)
        md, spec = d["metadata"], d["spec"]
        owned = self._owned("ReplicaSet", md["namespace"], md["uid"])
        revision = md.get("annotations", {}).get(REVISION)
        new = next(
            (rs for rs in owned if rs["metadata"]["annotations"].get(REVISION) == revision), None
        )
        total = sum(rs["status"]["replicas"] for rs in owned)
        updated = new["status"]["replicas"] if new else 0
        ready = sum(rs["status"]["readyReplicas"] for rs in owned)
        desired = spec["replicas"]
        max_unavailable = _percent(
            spec["strategy"].get("rollingUpdate", {}).get("maxUnavailable", 0), desired, False
        )
        available = ready >= desired - max_unavailable
        new_name = new["metadata"]["name"] if new else md["name"]
        done = updated == desired == total == ready
        conds = [
            (
                "Available",
                available,
                "MinimumReplicasAvailable" if available else "MinimumReplicasUnavailable",
                "Deployment has minimum availability."
                if available
                else "Deployment does not have minimum availability.",
            ),
            (
                "Progressing",
                True,
                "NewReplicaSetAvailable" if done else "ReplicaSetUpdated",
                f'ReplicaSet "{new_name}" has successfully progressed.'
                if done
                else f'ReplicaSet "{new_name}" is progressing.',
            ),
        ]
        old = {c["type"]: c for c in (d.get("status") or {}).get("conditions", [])}
        now = ts(self.clock())
        conditions = []
        for ctype, ok, reason, message in conds:
            status = "True" if ok else "False"
            prev = old.get(ctype, {})
            cond = {
                "type": ctype,
                "status": status,
                "lastUpdateTime": prev.get("lastUpdateTime"),
                "lastTransitionTime": prev.get("lastTransitionTime"),
                "reason": reason,
                "message": message,
            }
            if prev.get("status") != status:
                cond["lastTransitionTime"] = now
            if (prev.get("reason"), prev.get("message"), prev.get("status")) != (
                reason,
                message,
                status,
            ):
                cond["lastUpdateTime"] = now
            conditions.append(cond)
        result: Obj = {
            "observedGeneration": md["generation"],
            "replicas": total,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": ready,
        }
        if total - ready > 0:
            result["unavailableReplicas"] = total - ready
        result["conditions"] = conditions
        d["status"] = result
        self._write(d)
