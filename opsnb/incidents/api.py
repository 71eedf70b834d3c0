"""The Python API the rest of opsnb calls: open incidents, record what happens, attach runs.

    from opsnb import incidents
    inc = incidents.open_incident("Checkout errors", "payments", "SEV-2", target="prod")
    incidents.record(inc.id, "alert", name="HighErrorRate", status="firing", labels={...})
    incidents.attach_run(run_dir)               # to the open incident of the run's service
    incidents.open_for_service("payments")      # the open incident, or None
    incidents.load("INC-0001").status

Every function takes ``root`` (the incidents dir; default ``$OPSNB_INCIDENTS`` or
``<config dir>/incidents``) or a ready :class:`Store` as ``store`` (for an injected clock or
severity policy). ``by`` defaults to ``$OPSNB_USER``, else the login name; ``at`` (when it
happened) defaults to now.
"""

from __future__ import annotations

import getpass
import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from .model import (
    PRIORITY,
    STATEFUL,
    Event,
    Incident,
    IncidentError,
    IncidentUsageError,
    format_time,
    handle,
    parse_event_id,
    parse_role,
    parse_severity,
    parse_status,
    parse_time,
)
from .store import Pending, Store, Verification

Root = str | os.PathLike[str] | None
When = datetime | str | None


def whoami() -> str:
    """``$OPSNB_USER``, else the login name."""
    if os.environ.get("OPSNB_USER"):
        return os.environ["OPSNB_USER"]
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _store(root: Root, store: Store | None) -> Store:
    return store or Store(root)


def _text(value: Any, what: str) -> str:
    text = str(value or "").strip()
    if not text:
        raise IncidentUsageError(f"{what} must not be empty")
    return text


def open_incident(
    title: str,
    service: str,
    severity: int | str,
    *,
    target: str | None = None,
    impact: str | None = None,
    war_room: str | None = None,
    by: str | None = None,
    at: When = None,
    root: Root = None,
    store: Store | None = None,
) -> Incident:
    """Open an incident with the next free id (INC-NNNN); its status is investigating."""
    return _store(root, store).create(
        _opened(title, service, severity, target, impact, war_room, by, at)
    )


def open_or_get(
    title: str,
    service: str,
    severity: int | str,
    *,
    target: str | None = None,
    impact: str | None = None,
    by: str | None = None,
    at: When = None,
    root: Root = None,
    store: Store | None = None,
) -> tuple[Incident, bool]:
    """The open incident of ``service``, or a new one: (incident, created). Two processes
    calling this at once for one service get the same incident (for the alert service)."""
    st = _store(root, store)
    opened = _opened(title, service, severity, target, impact, None, by, at)
    with st.root_lock():
        current = open_for_service(service, store=st)
        if current is not None:
            return current, False
        return st.create_locked(opened), True


def _opened(
    title: str,
    service: str,
    severity: int | str,
    target: str | None,
    impact: str | None,
    war_room: str | None,
    by: str | None,
    at: When,
) -> Pending:
    data = {
        "title": _text(title, "the title"), "service": _text(service, "the service"),
        "severity": parse_severity(severity), "target": target or None,
        "impact": impact or None, "war_room": war_room or None,
    }  # fmt: skip
    return Pending("opened", data, by or whoami(), at)


def load(incident_id: str, *, root: Root = None, store: Store | None = None) -> Incident:
    """The incident's current state (with its events), replayed from its log."""
    return _store(root, store).load(incident_id)


def list_incidents(
    *, open_only: bool = False, root: Root = None, store: Store | None = None
) -> list[Incident]:
    return _store(root, store).incidents(open_only=open_only)


def open_for_service(
    service: str, *, root: Root = None, store: Store | None = None
) -> Incident | None:
    """The open incident of ``service`` (the most recently opened one), or None."""
    found = [i for i in _store(root, store).incidents(open_only=True) if i.service == service]
    return max(found, key=lambda i: (i.opened_at, i.id)) if found else None


def record(
    incident_id: str,
    kind: str,
    *,
    by: str | None = None,
    at: When = None,
    root: Root = None,
    store: Store | None = None,
    **data: Any,
) -> Event:
    """Append one event of ``kind`` (alert, run, finding, action, note, message) with
    ``data``. State changes (status, severity, roles, corrections) have their own calls."""
    if kind in STATEFUL:
        raise IncidentUsageError(
            f"record {kind!r} events with their own call (set_status, set_severity, assign, "
            "correct), which check them against the incident's state"
        )
    (event,) = _store(root, store).append(
        incident_id, lambda _state: [Pending(kind, data, by or whoami(), at)]
    )
    return event


def note(
    incident_id: str,
    text: str,
    *,
    action_item: bool = False,
    owner: str | None = None,
    due: str | None = None,
    ticket: str | None = None,
    priority: str | None = None,
    by: str | None = None,
    at: When = None,
    root: Root = None,
    store: Store | None = None,
) -> Event:
    """A note; with ``action_item`` it is an action item for the postmortem's table."""
    extra = {"owner": owner, "due": due, "ticket": ticket, "priority": priority}
    if not action_item and any(extra.values()):
        raise IncidentUsageError("--owner, --due, --ticket and --priority need --action-item")
    data: dict[str, Any] = {"text": _text(text, "the note")}
    if action_item:
        if due and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", due):
            raise IncidentUsageError(f"due must be a date, YYYY-MM-DD, not {due!r}")
        if priority and not PRIORITY.fullmatch(priority):
            raise IncidentUsageError(f"priority must be P0 to P4, not {priority!r}")
        data.update(action_item=True, owner=handle(owner) if owner else None, due=due,
                    ticket=ticket, priority=priority.upper() if priority else None)  # fmt: skip
    (event,) = _store(root, store).append(
        incident_id, lambda _state: [Pending("note", data, by or whoami(), at)]
    )
    return event


def set_status(
    incident_id: str,
    status: str,
    *,
    summary: str | None = None,
    by: str | None = None,
    at: When = None,
    root: Root = None,
    store: Store | None = None,
) -> Event:
    """Move the incident to ``status``. Setting the status it already has is recorded too
    (it acknowledges the incident); resolving a resolved incident is refused; setting an
    open status on a resolved incident reopens it."""
    to = parse_status(status)

    def build(state: Incident) -> list[Pending]:
        if to == "resolved" and state.status == "resolved":
            raise IncidentError(f"{state.id} is already resolved")
        data: dict[str, Any] = {"from": state.status, "to": to}
        if summary:
            data["summary"] = summary
        return [Pending("status", data, by or whoami(), at)]

    (event,) = _store(root, store).append(incident_id, build)
    return event


def resolve(
    incident_id: str,
    *,
    summary: str | None = None,
    by: str | None = None,
    at: When = None,
    root: Root = None,
    store: Store | None = None,
) -> Event:
    return set_status(
        incident_id, "resolved", summary=summary, by=by, at=at, root=root, store=store
    )


def set_severity(
    incident_id: str,
    severity: int | str,
    *,
    reason: str | None = None,
    by: str | None = None,
    at: When = None,
    root: Root = None,
    store: Store | None = None,
) -> Event:
    level = parse_severity(severity)

    def build(state: Incident) -> list[Pending]:
        if state.severity == level:
            raise IncidentError(f"{state.id} is already SEV-{level}")
        data = {"from": state.severity, "to": level, "reason": reason or None}
        return [Pending("severity", data, by or whoami(), at)]

    (event,) = _store(root, store).append(incident_id, build)
    return event


def assign(
    incident_id: str,
    role: str,
    who: str,
    *,
    by: str | None = None,
    at: When = None,
    root: Root = None,
    store: Store | None = None,
) -> Event:
    """Give ``role`` (ic, tech-lead, comms-lead, scribe) to ``who`` (@name)."""
    role = parse_role(role)
    person = handle(who)

    def build(state: Incident) -> list[Pending]:
        data = {"role": role, "who": person, "previous": state.roles.get(role)}
        return [Pending("assign", data, by or whoami(), at)]

    (event,) = _store(root, store).append(incident_id, build)
    return event


def correct(
    incident_id: str,
    event_id: str | int,
    text: str | None = None,
    *,
    corrected_at: When = None,
    by: str | None = None,
    root: Root = None,
    store: Store | None = None,
) -> Event:
    """Record a correction of ``event_id``: a new event referencing it, with the corrected
    text and/or time. The corrected event stays in the log as it was."""
    if not (text and text.strip()) and corrected_at is None:
        raise IncidentUsageError("a correction needs a text or a time")
    seq = parse_event_id(event_id)

    def build(state: Incident) -> list[Pending]:
        target = state.event(seq)
        if target.kind == "opened" and text:
            raise IncidentUsageError("the opening event's text cannot be corrected; add a note")
        data: dict[str, Any] = {"corrects": target.id}
        if text and text.strip():
            data["text"] = text.strip()
        if corrected_at is not None:
            data["at"] = format_time(parse_time(corrected_at))
        return [Pending("correction", data, by or whoami(), None)]

    (event,) = _store(root, store).append(incident_id, build)
    return event


def verify(incident_id: str, *, root: Root = None, store: Store | None = None) -> Verification:
    """Check the incident's hash chain; ``.first`` is the first bad entry."""
    return _store(root, store).verify(incident_id)


# --- runs -------------------------------------------------------------------------------------


def attach_run(
    run_dir: str | os.PathLike[str],
    incident_id: str | None = None,
    service: str | None = None,
    *,
    root: Root = None,
    store: Store | None = None,
) -> str | None:
    """Attach a run folder's ``result.json`` (the run, its findings, every action) to
    ``incident_id``, or to the open incident of ``service`` (default: the run's service).

    Returns the incident id, or None when no incident is given and the service has no open
    one. Attaching a run already attached to that incident records nothing again. All the
    run's events are appended together, so they are adjacent in the log.
    """
    folder = Path(run_dir).resolve()
    try:
        result = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IncidentUsageError(f"{folder} has no result.json (not a run folder)") from None
    except ValueError as exc:
        raise IncidentError(f"{folder}/result.json is not valid JSON: {exc}") from None
    st = _store(root, store)
    if incident_id is None:
        current = open_for_service(service or str(result.get("service") or ""), store=st)
        if current is None:
            return None
        incident_id = current.id
    run_events = _run_events(folder, result)

    def build(state: Incident) -> list[Pending]:
        return [] if str(folder) in state.runs else run_events

    st.append(incident_id, build)
    return st.folder(incident_id).name


def _run_events(folder: Path, result: dict[str, Any]) -> list[Pending]:
    """One ``run`` event, then a ``finding`` per finding, then an ``action`` per action."""
    by = whoami()
    started = result.get("started_at") or None
    checks: dict[str, int] = {}
    for check in result.get("checks") or []:
        checks[check.get("status", "?")] = checks.get(check.get("status", "?"), 0) + 1
    common = {"run_dir": str(folder), "runbook": result.get("runbook")}
    files = result.get("files") or {}
    run = {
        **common, "target": result.get("target"), "service": result.get("service"),
        "status": result.get("status"), "started_at": result.get("started_at"),
        "finished_at": result.get("finished_at"), "checks": checks,
        "failed_checks": [c.get("name") for c in result.get("checks") or []
                          if c.get("status") == "fail"],
        "error": result.get("error"),
        "html": str(folder / files["html"]) if files.get("html") else None,
    }  # fmt: skip
    events = [Pending("run", run, by, started)]
    for finding in result.get("findings") or []:
        data = {**common, "cause": finding.get("cause"),
                "recommendation": finding.get("recommendation"),
                "evidence": list(finding.get("evidence") or [])}  # fmt: skip
        events.append(Pending("finding", data, by, started))
    for action in result.get("actions") or []:
        data = {**common, **{k: v for k, v in action.items() if k not in ("at", "by")}}
        events.append(Pending("action", data, action.get("by") or by, action.get("at") or started))
    return events


__all__ = [
    "assign", "attach_run", "correct", "list_incidents", "load", "note",
    "open_for_service", "open_incident", "open_or_get", "record", "resolve", "set_severity",
    "set_status", "verify", "whoami",
]  # fmt: skip
