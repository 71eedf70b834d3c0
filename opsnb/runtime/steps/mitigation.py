"""The recommended mitigation, staged as a dry run unless the run is applied."""

from __future__ import annotations

import re
from typing import Any

from ...errors import LimitExceeded
from ..session import Runbook
from ._common import _display


def mitigate(rb: Runbook, finding: Any, *, long_query_seconds: float = 300) -> None:
    """Stage (or, when applied, run) the recommended mitigation of ``finding``."""
    recommendation = finding.recommendation
    if recommendation == "rollback":
        rb.rollback()
    elif recommendation == "scale-up":
        with rb.check("Current replicas") as check:
            replicas = int(rb.k8s.deployment(rb.service.deployment)["replicas"])
            check.ok(f"{replicas} replicas")
            rb.scale(min(max(replicas * 2, replicas + 1), rb.target.policy.max_replicas))
    elif recommendation == "enable-circuit-breaker":
        rb.set_env(CIRCUIT_BREAKER_ENABLED="true")
    elif recommendation == "increase-memory-limit":
        raise_memory_limit(rb)
    elif recommendation == "terminate-long-queries":
        terminate_long_queries(rb, min_seconds=long_query_seconds)
    elif recommendation == "optimize-query":
        print("No automatic fix for a slow statement: read its plan above, add the missing index "
              "or cache the result, then re-run this runbook.")  # fmt: skip
    else:
        print(f"No automated mitigation for {finding.cause!r}: follow the escalation below.")


def _double_memory(limit: str | None) -> str:
    """Twice a Kubernetes memory quantity (``256Mi`` -> ``512Mi``); 512Mi when unknown."""

    match = re.fullmatch(r"(\d+)(Ki|Mi|Gi|K|M|G)?", (limit or "").strip())
    if not match:
        return "512Mi"
    return f"{int(match.group(1)) * 2}{match.group(2) or ''}"


def raise_memory_limit(rb: Runbook, new_limit: str = "") -> None:
    """Raise the container's memory limit (double it unless given): `kubectl patch` of the
    template's resources, previewed unless applied."""
    name, container = rb.service.deployment, rb.service.container
    limit = new_limit
    if not limit:
        with rb.check("Memory limit now") as check:
            current = (rb.k8s.deployment(name).get("resources") or {}).get("limits", {})
            limit = _double_memory(current.get("memory") or rb.facts.memory_limit)
            check.ok(f"{current.get('memory') or 'unknown'} -> {limit}")
    if not limit:
        return
    rb.act(
        "set-resources", f"deployment/{name}",
        lambda dry: rb.k8s.set_resources(name, container, requests={}, limits={"memory": limit},
                                         dry_run=dry),
        memory_limit=limit,
    )  # fmt: skip


def terminate_long_queries(rb: Runbook, *, min_seconds: float = 300) -> None:
    """Terminate the service's own backends running past ``min_seconds``, no more than the
    target's ``max_backends_per_action``; the preview lists the exact pids and SQL."""
    candidates = None
    with rb.check("Backends to terminate") as check:
        candidates = rb.postgres.backends_to_terminate(
            min_seconds, application_name=rb.service.name
        )
        _display(candidates)
        check.verdict(False, f"{len(candidates)} sessions of {rb.service.name} past "
                      f"{min_seconds:g} s", warn=len(candidates) > 0)  # fmt: skip
    if candidates is None or candidates.empty:
        return
    pids = [int(p) for p in candidates["pid"]]
    limit = rb.target.policy.max_backends_per_action
    if len(pids) > limit:
        rb.act("terminate-backends", f"postgres/{rb.service.name}",
               lambda dry: _refuse(f"{len(pids)} backends exceed the target's "
                                   f"max_backends_per_action of {limit}"),
               pids=pids)  # fmt: skip
        return
    rb.act("terminate-backends", f"postgres/{rb.service.name}",
           lambda dry: rb.postgres.terminate_backends(pids, dry_run=dry), pids=pids)  # fmt: skip


def _refuse(reason: str) -> Any:
    raise LimitExceeded(reason)
