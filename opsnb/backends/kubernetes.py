"""Kubernetes: pods, deployments, rollout history, events, logs, and the guarded changes.

    k8s = KubernetesBackend.from_config(target.kubernetes, token=token)
    k8s.pods("app=payments")                 # DataFrame, one row per pod
    k8s.rollout_history("payments")          # like `kubectl rollout history`
    k8s.rollback("payments", dry_run=True)   # like `kubectl rollout undo`, server-side dry run

Calls go through the official client's ``CoreV1Api``/``AppsV1Api`` but fetch raw JSON
(``_preload_content=False``) and turn it into frames with ``kube_objects`` -- the same code
the snapshot backend uses. The ``kubernetes`` package is imported only when a backend is
built, never at module import.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from ..errors import BackendUnavailable, ConfigError
from .kube_objects import (
    RESTARTED_AT,
    Change,
    LogsNotFound,
    ObjectNotFound,
    container_env,
    container_resources,
    default_container,
    deployment_manifest,
    deployment_summary,
    describe_apply,
    describe_hpa,
    describe_image,
    describe_resources,
    events_frame,
    find_container,
    hpa_patch,
    hpa_summary,
    image_patch,
    merge_resources,
    pods_frame,
    resources_patch,
    rollback_change,
    rollback_plan,
    rollout_history_frame,
    rollout_result,
    since_time,
    template_diff,
)

__all__ = [
    "Change",
    "KubernetesBackend",
    "KubernetesRequestError",
    "LogsNotFound",
    "ObjectNotFound",
]

NAME = "kubernetes"


class KubernetesRequestError(ValueError):
    """The API server rejected the request itself (400, 409, 422): fix the call, not the server."""


class KubernetesBackend:
    """Read and change one namespace through an official-client ``ApiClient``.

    Every call has a total timeout of ``timeout`` seconds. Refused connections, timeouts
    and 5xx answers raise ``BackendUnavailable("kubernetes", reason)``; a missing object
    raises ``ObjectNotFound`` (a LookupError); a rejected request ``KubernetesRequestError``
    (a ValueError).
    """

    def __init__(self, api_client: Any, namespace: str, *, timeout: float = 5.0) -> None:
        from kubernetes import client

        self.api_client = api_client
        self.namespace = namespace
        self.timeout = float(timeout)
        self.core = client.CoreV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.autoscaling = client.AutoscalingV2Api(api_client)

    def __repr__(self) -> str:
        return f"KubernetesBackend(server={self.server!r}, namespace={self.namespace!r})"

    @property
    def server(self) -> str:
        host = str(getattr(getattr(self.api_client, "configuration", None), "host", "") or "")
        parts = urlsplit(host)
        return f"{parts.scheme}://{parts.hostname}:{parts.port}" if parts.port else host

    @classmethod
    def from_config(cls, cfg: Any, token: str | None = None) -> KubernetesBackend:
        """Build from an ``opsnb.config.KubernetesConfig``: ``server`` plus a bearer ``token``,
        or the kubeconfig file (``cfg.kubeconfig`` or the default) and ``cfg.context``.

        Retries are switched off so a down API server fails within ``cfg.timeout``."""
        from kubernetes import client
        from kubernetes import config as kube_config

        configuration = client.Configuration()
        if cfg.server:
            configuration.host = str(cfg.server).rstrip("/")
            if token:
                configuration.api_key = {"BearerToken": token}
                configuration.api_key_prefix = {"BearerToken": "Bearer"}
        else:
            try:
                kube_config.load_kube_config(
                    config_file=cfg.kubeconfig,
                    context=cfg.context,
                    client_configuration=configuration,
                    persist_config=False,
                )
            except (kube_config.ConfigException, OSError) as exc:
                where = cfg.kubeconfig or "the default kubeconfig"
                raise ConfigError(f"cannot load {where} (context {cfg.context!r}): {exc}") from None
            if token:
                configuration.api_key = {"BearerToken": token}
                configuration.api_key_prefix = {"BearerToken": "Bearer"}
        configuration.retries = False
        return cls(client.ApiClient(configuration), cfg.namespace, timeout=cfg.timeout)

    # --- plumbing ---------------------------------------------------------------------------

    def _call(self, what: str, method: Any, *args: Any, raw: bool = False, **kwargs: Any) -> Any:
        """Call an API method for raw JSON (or text with ``raw``), mapping failures."""
        from kubernetes.client.exceptions import ApiException

        try:
            response = method(
                *args, _preload_content=False, _request_timeout=self.timeout, **kwargs
            )
            data = response.data
        except ApiException as exc:
            raise self._api_error(what, exc) from None
        except Exception as exc:  # urllib3 connection, timeout and protocol errors
            reason = _network_reason(exc, self.server, self.timeout)
            if reason is None:
                raise
            raise BackendUnavailable(NAME, reason) from None
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
        if raw:
            return text
        try:
            return json.loads(text)
        except ValueError:
            raise BackendUnavailable(NAME, f"API server answered {what} with non-JSON") from None

    def _api_error(self, what: str, exc: Any) -> Exception:
        status = int(exc.status or 0)
        message = _status_message(exc)
        if status == 0:
            return BackendUnavailable(NAME, f"cannot reach API server at {self.server}: {message}")
        if status >= 500:
            return BackendUnavailable(NAME, f"HTTP {status} from API server ({what}): {message}")
        if status in (401, 403):
            return BackendUnavailable(NAME, f"HTTP {status} from API server ({what}): {message}")
        if status == 429:
            return BackendUnavailable(NAME, f"API server is throttling requests ({what})")
        if status == 404:
            return ObjectNotFound(f"{what}: not found in namespace {self.namespace!r} ({message})")
        return KubernetesRequestError(f"{what}: HTTP {status}: {message}")

    def _now(self) -> pd.Timestamp:
        return pd.Timestamp(datetime.now(UTC))

    # --- reading ----------------------------------------------------------------------------

    def _pod_list(self, selector: str | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"label_selector": selector} if selector else {}
        return dict(
            self._call(
                f"list pods {selector or ''}".strip(),
                self.core.list_namespaced_pod,
                self.namespace,
                **kwargs,
            )
        )

    def pods(self, selector: str | None = None) -> pd.DataFrame:
        """Pods matching a label selector (``app=payments``) as DataFrame[name, phase,
        ready (bool), restarts (int), last_state_reason, last_exit_code (Int64),
        last_finished_at, waiting_reason, node, revision_hash, created], sorted by name."""
        return pods_frame(self._pod_list(selector))

    def _deployment(self, name: str) -> dict[str, Any]:
        return dict(
            self._call(
                f"deployment/{name}", self.apps.read_namespaced_deployment, name, self.namespace
            )
        )

    def _replicasets(self, deployment: dict[str, Any]) -> dict[str, Any]:
        selector = _selector_string(deployment)
        kwargs: dict[str, Any] = {"label_selector": selector} if selector else {}
        return dict(
            self._call(
                "list replicasets", self.apps.list_namespaced_replica_set, self.namespace, **kwargs
            )
        )

    def deployment(self, name: str) -> dict[str, Any]:
        """dict(name, replicas, ready, available, updated, revision, image, images,
        generation, observed_generation, resources, conditions); see
        ``kube_objects.deployment_summary``."""
        return deployment_summary(self._deployment(name))

    def wait_for_rollout(
        self, name: str, timeout: float = 90.0, *, interval: float = 1.0
    ) -> dict[str, Any]:
        """Poll the deployment until its rollout is complete, has failed (progress deadline
        exceeded) or ``timeout`` seconds have passed, like ``kubectl rollout status
        --timeout``; ``timeout=0`` reads the status once. Returns
        ``kube_objects.rollout_result``: state ("complete", "failed", "timeout"), done,
        message, revision, replicas, updated, ready, available, total, replicaset,
        revision_hash (of the new revision's pods), image, waited_seconds, polls."""
        began = time.monotonic()
        polls = 0
        while True:
            deployment = self._deployment(name)
            polls += 1
            status = rollout_result(deployment, None, timed_out=False, waited=0, polls=polls)
            left = float(timeout) - (time.monotonic() - began)
            if status["state"] != "progressing" or left <= 0:
                break
            time.sleep(max(0.05, min(float(interval), left)))
        return rollout_result(
            deployment,
            self._replicasets(deployment),
            timed_out=status["state"] == "progressing",
            waited=time.monotonic() - began,
            polls=polls,
        )

    def _hpa(self, name: str) -> dict[str, Any]:
        return dict(
            self._call(
                f"hpa/{name}",
                self.autoscaling.read_namespaced_horizontal_pod_autoscaler,
                name,
                self.namespace,
            )
        )

    def hpa(self, name: str) -> dict[str, Any]:
        """A HorizontalPodAutoscaler (autoscaling/v2) as ``kube_objects.hpa_summary``:
        name, target, min_replicas, max_replicas, current_replicas, desired_replicas,
        metrics, pinned_from, last_scale_time, conditions. Raises ObjectNotFound."""
        return hpa_summary(self._hpa(name))

    def rollout_history(self, name: str) -> pd.DataFrame:
        """DataFrame[revision (int), replicaset, image, change_cause, created, replicas (int)]
        sorted by revision, from the ReplicaSets the deployment owns."""
        deployment = self._deployment(name)
        return rollout_history_frame(deployment, self._replicasets(deployment))

    def events(
        self,
        since: datetime | pd.Timestamp | timedelta | None = None,
        reason: str | list[str] | None = None,
    ) -> pd.DataFrame:
        """Events in the namespace as DataFrame[time, type, reason, object, message,
        count (int)], newest last. ``since`` is a time or a timedelta back from now;
        ``reason`` keeps only events with that reason (or one of several)."""
        kwargs: dict[str, Any] = {}
        if isinstance(reason, str):
            kwargs["field_selector"] = f"reason={reason}"
        events = self._call(
            "list events", self.core.list_namespaced_event, self.namespace, **kwargs
        )
        return events_frame(events, since=since_time(since, self._now()), reason=reason)

    def configmap(self, name: str) -> dict[str, str]:
        """The ``data`` of a ConfigMap (empty dict when it has none)."""
        cm = self._call(
            f"configmap/{name}", self.core.read_namespaced_config_map, name, self.namespace
        )
        return dict(cm.get("data") or {})

    def logs(
        self,
        pod: str,
        container: str | None = None,
        previous: bool = False,
        tail: int | None = None,
        since_seconds: int | None = None,
    ) -> list[str]:
        """A pod's log lines (``kubectl logs [--previous] [--tail N] [--since Ns]``).

        Raises LogsNotFound when the pod has no such log (e.g. no previous container)."""
        kwargs: dict[str, Any] = {}
        if container:
            kwargs["container"] = container
        if previous:
            kwargs["previous"] = True
        if tail is not None:
            kwargs["tail_lines"] = int(tail)
        if since_seconds is not None:
            kwargs["since_seconds"] = int(since_seconds)
        what = f"logs of pod/{pod}" + (" (previous)" if previous else "")
        try:
            text = self._call(
                what, self.core.read_namespaced_pod_log, pod, self.namespace, raw=True, **kwargs
            )
        except ObjectNotFound as exc:
            raise LogsNotFound(str(exc)) from None
        except KubernetesRequestError as exc:
            if previous or "not found" in str(exc) or "waiting to start" in str(exc):
                raise LogsNotFound(str(exc)) from None
            raise
        return text.splitlines()

    def logs_for(
        self,
        selector: str,
        previous: bool = False,
        tail: int | None = None,
        since_seconds: int | None = None,
        container: str | None = None,
    ) -> dict[str, list[str]]:
        """Log lines of every pod matching ``selector``, by pod name (like
        ``kubectl logs -l``); a pod without such a log (e.g. no previous container) maps to
        an empty list."""
        out: dict[str, list[str]] = {}
        for pod in sorted(self._pod_list(selector).get("items") or [], key=_pod_name):
            name = _pod_name(pod)
            try:
                out[name] = self.logs(
                    name,
                    container=container or default_container(pod),
                    previous=previous,
                    tail=tail,
                    since_seconds=since_seconds,
                )
            except LogsNotFound:
                out[name] = []
        return out

    # --- changing ---------------------------------------------------------------------------

    def _patch_deployment(self, name: str, body: Any, dry_run: bool) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
        return dict(
            self._call(
                f"patch deployment/{name}",
                self.apps.patch_namespaced_deployment,
                name,
                self.namespace,
                body,
                **kwargs,
            )
        )

    @staticmethod
    def _suffix(dry_run: bool) -> str:
        return " (server-side dry run)" if dry_run else ""

    def rollback(
        self, name: str, to_revision: int | None = None, *, dry_run: bool = True
    ) -> Change:
        """Roll a deployment back like ``kubectl rollout undo [--to-revision N]``: its pod
        template becomes the target ReplicaSet's (without ``pod-template-hash``).

        Without ``to_revision`` the target is the newest revision before the current one.
        Raises ObjectNotFound when there is no such revision."""
        deployment = self._deployment(name)
        plan = rollback_plan(deployment, self._replicasets(deployment), to_revision)
        if plan.skip:
            return rollback_change(plan, dry_run)
        self._patch_deployment(name, plan.json_patch(), dry_run)
        return rollback_change(plan, dry_run, self._suffix(dry_run))

    def scale(self, name: str, replicas: int, *, dry_run: bool = True) -> Change:
        """Set a deployment's replicas through its ``scale`` subresource."""
        if int(replicas) < 0:
            raise ValueError(f"replicas must be 0 or more, not {replicas}")
        before = self._call(
            f"deployment/{name}/scale",
            self.apps.read_namespaced_deployment_scale,
            name,
            self.namespace,
        )
        old = int((before.get("spec") or {}).get("replicas") or 0)
        kwargs: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
        after = self._call(
            f"scale deployment/{name}",
            self.apps.patch_namespaced_deployment_scale,
            name,
            self.namespace,
            {"spec": {"replicas": int(replicas)}},
            **kwargs,
        )
        new = int((after.get("spec") or {}).get("replicas") or 0)
        verb = "would scale" if dry_run else "scaled"
        return Change(
            action="scale",
            object=f"deployment/{name}",
            before={"replicas": old},
            after={"replicas": new},
            dry_run=dry_run,
            detail=f"{verb} deployment/{name} from {old} to {new} replicas{self._suffix(dry_run)}",
            changed=old != new,
        )

    def restart(self, name: str, *, dry_run: bool = True) -> Change:
        """Restart a deployment's pods like ``kubectl rollout restart``: stamp the pod
        template with the ``kubectl.kubernetes.io/restartedAt`` annotation."""
        deployment = self._deployment(name)
        annotations = (
            ((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}
        ).get("annotations") or {}
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
        self._patch_deployment(name, patch, dry_run)
        verb = "would restart" if dry_run else "restarted"
        return Change(
            action="restart",
            object=f"deployment/{name}",
            before={"restartedAt": annotations.get(RESTARTED_AT)},
            after={"restartedAt": stamp},
            dry_run=dry_run,
            detail=f"{verb} deployment/{name} (restartedAt={stamp}){self._suffix(dry_run)}",
        )

    def set_image(self, name: str, container: str, image: str, *, dry_run: bool = True) -> Change:
        """Set one container's image (``kubectl set image deployment/x container=image``),
        recording the change cause on the deployment. An unchanged image sends nothing."""
        if not str(image).strip():
            raise ValueError("set_image needs an image")
        image = str(image).strip()
        deployment = self._deployment(name)
        old = str(find_container(deployment, container).get("image", ""))
        template = (deployment.get("spec") or {}).get("template") or {}
        if old == image:
            return Change("set-image", f"deployment/{name}", {"image": old}, {"image": image},
                          dry_run, describe_image(name, container, old, image, dry_run),
                          changed=False)  # fmt: skip
        cause = f"opsnb deploy: set image {container}={image}"
        result = self._patch_deployment(name, image_patch(container, image, cause), dry_run)
        new = str(find_container(result, container).get("image", ""))
        after = (result.get("spec") or {}).get("template") or {}
        return Change(
            action="set-image",
            object=f"deployment/{name}",
            before={"image": old},
            after={"image": new},
            dry_run=dry_run,
            detail=describe_image(name, container, old, new, dry_run) + self._suffix(dry_run),
            changed=old != new,
            diff=template_diff(template, after, name),
        )

    def apply_deployment(self, manifest: dict[str, Any], *, dry_run: bool = True) -> Change:
        """Apply a Deployment manifest like ``kubectl apply --server-side --force-conflicts``
        (field manager ``opsnb``); create it when it does not exist. The manifest's namespace,
        when it names one, must be the backend's."""
        body = deployment_manifest(manifest, self.namespace)
        name = str(body["metadata"]["name"])
        try:
            current: dict[str, Any] | None = self._deployment(name)
        except ObjectNotFound:
            current = None
        kwargs: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
        if current is None:
            result = self._call(
                f"create deployment/{name}", self.apps.create_namespaced_deployment,
                self.namespace, body, **kwargs,
            )  # fmt: skip
        else:
            result = self._call(
                f"apply deployment/{name}", self.apps.patch_namespaced_deployment,
                name, self.namespace, body, field_manager="opsnb", force=True,
                _content_type="application/apply-patch+yaml", **kwargs,
            )  # fmt: skip
        result = dict(result)
        before_template = ((current or {}).get("spec") or {}).get("template") or {}
        after_template = (result.get("spec") or {}).get("template") or {}
        diff = template_diff(before_template, after_template, name)
        summary = deployment_summary(result)
        return Change(
            action="apply",
            object=f"deployment/{name}",
            before={"images": deployment_summary(current)["images"] if current else {},
                    "replicas": deployment_summary(current)["replicas"] if current else None},
            after={"images": summary["images"], "replicas": summary["replicas"]},
            dry_run=dry_run,
            detail=describe_apply(name, current, result, dry_run, diff) + self._suffix(dry_run),
            changed=current is None or bool(diff)
            or deployment_summary(current)["replicas"] != summary["replicas"],
            diff=diff,
        )  # fmt: skip

    def set_resources(
        self,
        name: str,
        container: str,
        requests: dict[str, Any] | None = None,
        limits: dict[str, Any] | None = None,
        *,
        dry_run: bool = True,
    ) -> Change:
        """Set a container's resource requests and limits (the template's vertical scaling
        ``kubectl patch``; the pods are replaced). Empty values are left as they are; a
        request above its limit or a malformed quantity is a ValueError."""
        deployment = self._deployment(name)
        current = container_resources(deployment, container)
        merged = merge_resources(current, requests, limits, container)
        template = (deployment.get("spec") or {}).get("template") or {}
        wanted = {part: {k: v for k, v in merged[part].items() if current[part].get(k) != v}
                  for part in ("requests", "limits")}  # fmt: skip
        if not wanted["requests"] and not wanted["limits"]:
            return Change("set-resources", f"deployment/{name}", current, current, dry_run,
                          describe_resources(name, container, current, current, dry_run),
                          changed=False)  # fmt: skip
        patch = resources_patch(container, wanted["requests"], wanted["limits"])
        result = self._patch_deployment(name, patch, dry_run)
        after = container_resources(result, container)
        return Change(
            action="set-resources",
            object=f"deployment/{name}",
            before=current,
            after=after,
            dry_run=dry_run,
            detail=describe_resources(name, container, current, after, dry_run)
            + self._suffix(dry_run),
            changed=current != after,
            diff=template_diff(template, (result.get("spec") or {}).get("template") or {}, name),
        )

    def patch_hpa(
        self,
        name: str,
        min_replicas: int,
        max_replicas: int,
        *,
        dry_run: bool = True,
        annotations: dict[str, Any] | None = None,
    ) -> Change:
        """Set an HPA's minReplicas and maxReplicas (``kubectl patch hpa``); ``annotations``
        are set too (a None value removes one)."""
        patch = hpa_patch(min_replicas, max_replicas, annotations)
        before = hpa_summary(self._hpa(name))
        kwargs: dict[str, Any] = {"dry_run": "All"} if dry_run else {}
        result = self._call(
            f"patch hpa/{name}",
            self.autoscaling.patch_namespaced_horizontal_pod_autoscaler,
            name, self.namespace, patch,
            _content_type="application/merge-patch+json", **kwargs,
        )  # fmt: skip
        after = hpa_summary(dict(result))
        keys = ("min_replicas", "max_replicas", "pinned_from")
        return Change(
            action="patch-hpa",
            object=f"hpa/{name}",
            before={k: before[k] for k in keys},
            after={k: after[k] for k in keys},
            dry_run=dry_run,
            detail=describe_hpa(name, before, after, dry_run) + self._suffix(dry_run),
            changed=any(before[k] != after[k] for k in keys),
        )

    def set_env(
        self, name: str, container: str, env: dict[str, Any], *, dry_run: bool = True
    ) -> Change:
        """Set environment variables on one container of a deployment (``kubectl set env``),
        by a strategic merge on the container's ``env`` list. Values become strings."""
        if not env:
            raise ValueError("set_env needs at least one variable")
        deployment = self._deployment(name)
        current = container_env(deployment, container)
        wanted = {str(k): _env_value(v) for k, v in env.items()}
        patch = {
            "spec": {
                "template": {
                    "spec": {
                        "containers": [
                            {
                                "name": container,
                                "env": [{"name": k, "value": v} for k, v in wanted.items()],
                            }
                        ]
                    }
                }
            }
        }
        result = self._patch_deployment(name, patch, dry_run)
        after_env = container_env(result, container)
        before = {k: current.get(k) for k in wanted}
        after = {k: after_env.get(k) for k in wanted}
        verb = "would set" if dry_run else "set"
        pairs = " ".join(f"{k}={v}" for k, v in after.items())
        return Change(
            action="set-env",
            object=f"deployment/{name}",
            before=before,
            after=after,
            dry_run=dry_run,
            detail=f"{verb} {pairs} on deployment/{name} container {container}"
            f"{self._suffix(dry_run)}",
            changed=before != after,
        )


# --- helpers ------------------------------------------------------------------------------------


def _pod_name(pod: dict[str, Any]) -> str:
    return str((pod.get("metadata") or {}).get("name", ""))


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _selector_string(deployment: dict[str, Any]) -> str:
    labels = (((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels")) or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def _status_message(exc: Any) -> str:
    """The ``message`` of the Status body the API server sent, else the HTTP reason."""
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if body:
        try:
            message = json.loads(body).get("message")
            if message:
                return str(message)
        except (ValueError, AttributeError):
            pass
    reason = str(getattr(exc, "reason", "") or "").strip()
    return reason.splitlines()[0] if reason else "no detail"


def _network_reason(exc: BaseException, server: str, timeout: float) -> str | None:
    """A short reason for a urllib3/socket failure, or None when it is not one."""
    import urllib3.exceptions as ue

    if not isinstance(exc, ue.HTTPError | OSError):
        return None
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = getattr(current, "reason", None) or current.__cause__ or current.__context__
        if not isinstance(current, BaseException):
            current = None
    for err in seen:
        if isinstance(err, ue.NameResolutionError) or "Name or service not known" in str(err):
            return f"cannot resolve the API server host of {server}"
        if isinstance(err, ConnectionRefusedError) or "Connection refused" in str(err):
            return f"connection refused at {server}"
    for err in seen:
        if isinstance(err, ue.TimeoutError | TimeoutError):
            return f"timed out after {timeout:g}s waiting for {server}"
    for err in seen:
        if isinstance(err, ue.ProtocolError | ConnectionError):
            return f"connection to {server} failed: {type(err).__name__}"
    return f"cannot reach {server}: {type(exc).__name__}"
