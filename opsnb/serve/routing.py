"""Which runbook, on which target, with which parameters, an alert runs.

Runbook: the ``runbook`` label, else the ``runbook_url`` annotation (its ``#fragment``, else
its last path segment without ``.ipynb``), else ``alertname_runbooks[alertname]``. Only names
of runbooks in the catalogue are accepted: a name is never taken as a path.

Target: the first ``target_routes`` entry whose labels all match, else ``default_target``.

Parameters: the alert's labels, then annotations (labels win), ``starts_at`` (also
``startsAt``), ``fingerprint`` and ``alertname`` are offered; only the names the runbook
declares are passed, each converted by ``Parameter.convert``. ``target`` and ``apply`` are
never taken from an alert: the target comes from routing and ``apply`` from the target's
policy (``policy.allow_apply`` and the runbook in ``policy.automatic_actions``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from .. import catalog
from ..errors import OpsnbError
from .models import Alert
from .settings import SAFE_NAME, ServeSettings

RUNBOOK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
RESERVED = ("target", "apply")
# Labels that name things (Kubernetes objects, Prometheus jobs): no path separators, no
# shell metacharacters.
IDENTIFIER_PARAMS = ("service", "namespace", "pod", "deployment", "container", "job")


@dataclass
class Route:
    """Where an alert goes; ``problem`` set means it is recorded but not run."""

    runbook: str = ""
    target: str = ""
    service: str = ""
    parameters: dict[str, Any] = field(default_factory=dict)
    apply: bool = False
    disposition: str = "queued"  # queued | unrouted (no runbook or target) | rejected (bad input)
    problem: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "runbook": self.runbook,
            "target": self.target,
            "service": self.service,
            "parameters": self.parameters,
            "apply": self.apply,
        }


def runbook_from_url(url: str) -> str:
    """``https://x/runbooks/high-error-rate.ipynb`` or ``.../runbooks#high-error-rate``."""
    parts = urlsplit(url)
    if parts.fragment:
        return unquote(parts.fragment)
    segment = unquote(parts.path.rstrip("/").rsplit("/", 1)[-1])
    return segment[: -len(".ipynb")] if segment.endswith(".ipynb") else segment


def choose_runbook(alert: Alert, settings: ServeSettings) -> tuple[str, str]:
    """(name, how it was chosen); name empty when the alert names none."""
    if alert.labels.get("runbook"):
        return alert.labels["runbook"], "label runbook"
    url = alert.annotations.get("runbook_url", "")
    if url:
        return runbook_from_url(url), "annotation runbook_url"
    mapped = settings.alertname_runbooks.get(alert.alertname)
    if mapped:
        return mapped, f"alertname {alert.alertname!r} in alertname_runbooks"
    return "", ""


def choose_target(labels: dict[str, str], settings: ServeSettings) -> str:
    for rule in settings.target_routes:
        if all(labels.get(k) == v for k, v in rule.match.items()):
            return rule.target
    return settings.default_target


def candidates(alert: Alert) -> dict[str, Any]:
    offered: dict[str, Any] = {**alert.annotations, **alert.labels}
    starts = alert.startsAt.isoformat().replace("+00:00", "Z")
    offered.update(starts_at=starts, startsAt=starts, fingerprint=alert.fingerprint)
    offered.setdefault("alertname", alert.alertname)
    for name in RESERVED:
        offered.pop(name, None)
    return offered


def route(alert: Alert, settings: ServeSettings, *, runbook_override: str = "") -> Route:
    """Route one alert; ``runbook_override`` routes it to that runbook (resolution)."""
    if runbook_override:
        name, how = runbook_override, "resolution_runbook"
    else:
        name, how = choose_runbook(alert, settings)
    if not name:
        return Route(
            disposition="unrouted",
            problem="the alert names no runbook (no "
            "runbook label, runbook_url annotation or alertname_runbooks entry)",
        )
    shown = name[:80]
    if not RUNBOOK_NAME.match(name):
        return Route(
            disposition="rejected",
            problem=f"{how} {shown!r} is not a runbook name (letters, digits, - and _)",
        )
    known = catalog.available()
    if name not in known:
        return Route(
            runbook=name,
            disposition="rejected",
            problem=f"{how} names unknown runbook {shown!r}; known: {', '.join(known)}",
        )
    target_name = choose_target(alert.labels, settings)
    if not target_name:
        return Route(
            runbook=name,
            disposition="unrouted",
            problem="no target_routes entry matches the alert's labels and there is "
            "no default_target",
        )
    try:
        return _validated(alert, name, known[name], target_name)
    except OpsnbError as exc:
        return Route(runbook=name, target=target_name, disposition="rejected", problem=str(exc))


def _validated(alert: Alert, name: str, path: Path, target_name: str) -> Route:
    from ..config import get_target
    from ..engine.run import RunRequest, prepare

    runbook = catalog.load(path)
    offered = candidates(alert)
    params = {k: v for k, v in offered.items() if k in runbook.parameters}
    for key in IDENTIFIER_PARAMS:
        value = params.get(key)
        if isinstance(value, str) and value and not SAFE_NAME.match(value):
            return Route(
                runbook=name,
                target=target_name,
                disposition="rejected",
                problem=f"label {key}={value[:80]!r} is not a plain name (letters, "
                "digits, '.', '-', '_'; no path separators or shell characters)",
            )
    target = get_target(target_name)
    apply = (
        "apply" in runbook.parameters
        and target.policy.allow_apply
        and name in target.policy.automatic_actions
    )
    # prepare() is everything opsnb run checks before a cell runs: types, the service on a
    # snapshot target, secrets, policy.
    prepared = prepare(
        RunRequest(
            runbook=name, target=target_name, parameters=params, apply=apply, mode="automated"
        )
    )
    passed = {k: v for k, v in prepared.parameters.items() if k not in ("target", "apply")}
    return Route(
        runbook=name, target=target_name, service=prepared.service, parameters=passed, apply=apply
    )


def resolution_route(alert: Alert, settings: ServeSettings) -> Route:
    """The resolution runbook for a resolved alert that has a runbook of its own."""
    if not settings.resolution_runbook:
        return Route(disposition="unrouted", problem="resolution_runbook is off")
    first = route(alert, settings)
    if first.problem:
        return first
    resolved = route(alert, settings, runbook_override=settings.resolution_runbook)
    if not resolved.problem and "settle_seconds" in _declared(settings.resolution_runbook):
        resolved.parameters["settle_seconds"] = settings.resolution_settle_seconds
    return resolved


def _declared(name: str) -> dict[str, Any]:
    try:
        return dict(catalog.find(name).parameters)
    except OpsnbError:
        return {}
