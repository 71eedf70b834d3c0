"""Pods, events, crash details, limits, config maps and the dependencies the service calls."""

from __future__ import annotations

import pandas as pd

from ..session import Runbook
from ._common import _display


def dependencies(rb: Runbook) -> None:
    """Each configured dependency's health endpoint."""
    for name in rb.dependencies():
        with rb.check(f"Dependency {name}") as check:
            probe = rb.probe_dependency(name)
            if probe["status"] != "ok":
                rb.facts.dependencies_down.append(name)
            check.verdict(probe["status"] != "ok", f"{probe['status']}: {probe.get('detail', '')}")


def pods(rb: Runbook) -> pd.DataFrame | None:
    """Pods of the service: ready, restarts, and why the last container ended."""
    frame = None
    with rb.check("Pods ready") as check:
        frame = rb.k8s.pods(rb.service.selector)
        _display(frame)
        ready = int(frame["ready"].sum()) if not frame.empty else 0
        restarts = int(frame["restarts"].sum()) if not frame.empty else 0
        rb.facts.restarts = restarts
        oom = frame[frame["last_state_reason"] == "OOMKilled"] if not frame.empty else frame
        rb.facts.oom_killed = [str(n) for n in oom["name"]] if len(oom) else []
        crashing = (
            frame[frame["waiting_reason"] == "CrashLoopBackOff"] if not frame.empty else frame
        )
        rb.facts.crash_looping = [str(n) for n in crashing["name"]] if len(crashing) else []
        detail = f"{ready}/{len(frame)} pods ready, {restarts} restarts"
        if rb.facts.oom_killed:
            detail += f"; OOMKilled: {', '.join(rb.facts.oom_killed)}"
        check.verdict(ready == 0 or bool(rb.facts.crash_looping), detail,
                      warn=ready < len(frame) or restarts > 0)  # fmt: skip
    return frame


def events(rb: Runbook, reason: str | None = None) -> pd.DataFrame | None:
    """Recent events in the namespace (warnings first to read)."""
    frame = None
    with rb.check(f"Events{' ' + reason if reason else ''}") as check:
        frame = rb.k8s.events(since=rb.start, reason=reason)
        _display(frame.tail(20))
        warnings = frame[frame["type"] == "Warning"] if not frame.empty else frame
        check.verdict(False, f"{len(frame)} events, {len(warnings)} warnings",
                      warn=len(warnings) > 0)  # fmt: skip
    return frame


def crash_details(rb: Runbook) -> None:
    """Why containers ended last time (OOMKilled, Error, exit code) and who is backing off."""
    with rb.check("Last terminated state") as check:
        frame = rb.k8s.pods(rb.service.selector)
        cols = ["name", "ready", "restarts", "last_state_reason", "last_exit_code",
                "last_finished_at", "waiting_reason"]  # fmt: skip
        ended = frame[frame["restarts"] > 0] if not frame.empty else frame
        _display(ended[[c for c in cols if c in ended.columns]])
        reasons = ended["last_state_reason"].value_counts().to_dict() if len(ended) else {}
        summary = ", ".join(f"{r} x{n}" for r, n in reasons.items()) or "no terminations"
        check.verdict(bool(rb.facts.crash_looping), f"{len(ended)} pods restarted: {summary}",
                      warn=len(ended) > 0)  # fmt: skip


def memory_limits(rb: Runbook) -> None:
    """The container's requests and limits from the deployment's pod template."""
    with rb.check("Resources against limits") as check:
        deployment = rb.k8s.deployment(rb.service.deployment)
        resources = deployment.get("resources") or {}
        rb.facts.memory_limit = (resources.get("limits") or {}).get("memory")
        print(f"requests: {resources.get('requests') or {}}")
        print(f"limits:   {resources.get('limits') or {}}")
        check.verdict(False, f"memory limit {rb.facts.memory_limit or 'not set'}",
                      warn=bool(rb.facts.oom_killed))  # fmt: skip


def config_map(rb: Runbook, name: str = "") -> None:
    """The service's config map (`kubectl get configmap <service>-config -o yaml`)."""
    name = name or f"{rb.service.deployment}-config"
    with rb.check(f"Config map {name}") as check:
        try:
            data = rb.k8s.configmap(name)
        except LookupError:
            check.ok(f"no config map {name}")
            return
        for key in sorted(data):
            print(f"{key}: {data[key][:200]}")
        check.ok(f"{len(data)} keys")
