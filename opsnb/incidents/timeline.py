"""The incident's timeline as people read it, and what is overdue.

    entries(incident)              events in the order they happened, corrections applied
    deadlines(incident, now=...)   the playbook's response targets as deadlines, met or not
    overdue(incident, now=...)     the deadlines missed and still open

Ordering: by when an event happened (``at``), then by the order it was recorded. A
correction is an event of its own that names the event it corrects; the corrected entry
shows the corrected text (and time, when the correction gives one) and says which event
corrected it, and the correction itself is listed too. Nothing in the log is rewritten.

Deadlines follow the playbook's response targets for the incident's severity, from
:mod:`opsnb.severity` (the organisation's policy when one is configured):

- **acknowledgement**: an incident commander assigned or a status set, within the level's
  time to acknowledge;
- **team assembled**: all four roles assigned, within the level's time to assemble (SEV-1,
  SEV-2);
- **status update**: a status update message (``declared`` or ``update``, delivered or
  recorded as sent by hand) within the level's update frequency of the previous one, or of
  the declaration when none was sent yet; only while the incident is open.

Every severity an incident had sets its acknowledgement and assembly deadlines from the
moment it was set, and the earliest counts: raising SEV-3 to SEV-1 half an hour in asks for
an acknowledgement within 5 minutes of the raise; lowering a level never extends a deadline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..severity import DEFAULT_POLICY, ResponseTargets, SeverityPolicy, duration_text
from .model import ROLES, Event, Incident, duration_words, parse_time


@dataclass(frozen=True)
class Entry:
    event: Event
    at: datetime  # when it happened (corrected when a correction gives a time)
    text: str  # what happened, in words (corrected when a correction gives a text)
    corrected_by: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return self.event.id

    @property
    def kind(self) -> str:
        return self.event.kind


def entries(incident: Incident) -> list[Entry]:
    """The timeline: every event once, ordered by when it happened."""
    corrections: dict[str, list[Event]] = {}
    for event in incident.events:
        if event.kind == "correction":
            corrections.setdefault(str(event.data.get("corrects")), []).append(event)
    rows = []
    for event in incident.events:
        at, text = event.when, describe(event)
        fixes = corrections.get(event.id, [])
        for fix in fixes:
            if fix.data.get("text"):
                text = f"{_prefix(event)}{fix.data['text']}"
            if fix.data.get("at"):
                at = parse_time(fix.data["at"])
        rows.append(Entry(event, at, text, tuple(f.id for f in fixes)))
    return sorted(rows, key=lambda row: (row.at, row.event.seq))


def _prefix(event: Event) -> str:
    """What stays of an entry's description when its text is corrected."""
    if event.kind == "note" and event.data.get("action_item"):
        return "action item: "
    return ""


def describe(event: Event) -> str:
    """One line for an event."""
    d = event.data
    kind = event.kind
    if kind == "opened":
        where = str(d.get("service")) + (f" on {d['target']}" if d.get("target") else "")
        return f"incident opened: SEV-{d.get('severity')} {d.get('title')} ({where})"
    if kind == "status":
        if d.get("to") == "resolved":
            return "resolved" + (f": {d['summary']}" if d.get("summary") else "")
        return f"status {d.get('from')} -> {d.get('to')}"
    if kind == "severity":
        reason = f" ({d['reason']})" if d.get("reason") else ""
        return f"severity SEV-{d.get('from')} -> SEV-{d.get('to')}{reason}"
    if kind == "assign":
        role = ROLES.get(str(d.get("role")), str(d.get("role")))
        was = f" (was {d['previous']})" if d.get("previous") else ""
        return f"{role}: {d.get('who')}{was}"
    if kind == "note":
        if d.get("action_item"):
            extra = [f"{k} {d[k]}" for k in ("owner", "due", "ticket", "priority") if d.get(k)]
            more = f" [{', '.join(extra)}]" if extra else ""
            return f"action item: {d.get('text')}{more}"
        return str(d.get("text", ""))
    if kind == "alert":
        name = d.get("name") or d.get("alertname") or "alert"
        summary = (d.get("annotations") or {}).get("summary") or d.get("summary")
        return f"alert {name} {d.get('status', 'firing')}" + (f": {summary}" if summary else "")
    if kind == "run":
        return _describe_run(d)
    if kind == "finding":
        evidence = "; ".join(str(e) for e in (d.get("evidence") or [])[:2])
        return (f"finding {d.get('cause')} -> {d.get('recommendation')}"
                + (f": {evidence}" if evidence else ""))  # fmt: skip
    if kind == "action":
        mode = "applied" if not d.get("dry_run") else "dry run"
        detail = f": {d['detail']}" if d.get("detail") else ""
        return f"action {d.get('action')} {d.get('object')} ({mode}, {d.get('outcome')}){detail}"
    if kind == "message":
        return _describe_message(d)
    if kind == "correction":
        at = f" time {d['at']}" if d.get("at") else ""
        text = f": {d['text']}" if d.get("text") else ""
        return f"correction of {d.get('corrects')}{at}{text}"
    return str(d)


def _describe_run(d: dict[str, Any]) -> str:
    checks = d.get("checks") or {}
    counts = ", ".join(f"{n} {s}" for s, n in checks.items() if n)
    failed = d.get("failed_checks") or []
    failing = f"; failing: {', '.join(failed[:3])}" if failed else ""
    return (f"runbook {d.get('runbook')} on {d.get('target')}/{d.get('service')}: "
            f"{d.get('status')}" + (f" ({counts})" if counts else "") + failing
            + f" [{d.get('run_dir')}]")  # fmt: skip


def _describe_message(d: dict[str, Any]) -> str:
    if d.get("manual"):
        how = "sent by hand"
    else:
        parts = []
        for item in d.get("deliveries") or []:
            state = "ok" if item.get("ok") else f"FAILED ({item.get('error')})"
            parts.append(f"{item.get('channel')} {state}")
        how = ", ".join(parts) or "not delivered"
    return f"message {d.get('template')}: {how}"


# --- deadlines --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Deadline:
    name: str  # acknowledgement | team assembled | status update
    requirement: str  # the playbook's words: "Time to Acknowledge: 15 minutes"
    due: datetime
    met: datetime | None
    now: datetime
    closed: datetime | None = None  # when the incident was resolved

    @property
    def state(self) -> str:
        """met | late | pending | overdue | missed (never met, incident resolved)."""
        if self.met is not None:
            return "met" if self.met <= self.due else "late"
        if self.closed is not None:
            return "missed" if self.closed > self.due else "not needed"
        return "overdue" if self.now > self.due else "pending"

    @property
    def overdue(self) -> bool:
        return self.state == "overdue"

    def describe(self) -> str:
        due = _clock(self.due)
        state = self.state
        if state == "met":
            return f"{self.name}: met at {_clock(self.met)} (due {due}; {self.requirement})"
        if state == "late":
            late = duration_words(self.met - self.due) if self.met else ""
            return (f"{self.name}: met late at {_clock(self.met)}, {late} after {due} "
                    f"({self.requirement})")  # fmt: skip
        if state == "overdue":
            return (f"{self.name}: OVERDUE by {duration_words(self.now - self.due)} "
                    f"(due {due}; {self.requirement})")  # fmt: skip
        if state == "missed":
            return f"{self.name}: missed (due {due}; {self.requirement})"
        if state == "not needed":
            return f"{self.name}: not met, resolved before it was due ({self.requirement})"
        return (f"{self.name}: due {due}, in {duration_words(self.due - self.now)} "
                f"({self.requirement})")  # fmt: skip


def _clock(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "-"


def deadlines(
    incident: Incident, *, now: datetime, policy: SeverityPolicy | None = None
) -> list[Deadline]:
    """The incident's response deadlines at ``now`` (an injectable clock)."""
    levels = (policy or DEFAULT_POLICY).levels
    response = levels[incident.severity].response
    opened = parse_time(incident.opened_at)
    closed = parse_time(incident.resolved_at) if incident.resolved_at else None
    history = [(parse_time(at), level) for at, level in incident.severity_history]
    result = []

    def earliest(minutes: Callable[[ResponseTargets], int | None]) -> datetime | None:
        dues = [at + timedelta(minutes=m) for at, level in history
                if (m := minutes(levels[level].response)) is not None]  # fmt: skip
        return min(dues) if dues else None

    ack_due = earliest(lambda r: r.acknowledge_minutes)
    if ack_due is not None:
        met = parse_time(incident.acknowledged_at) if incident.acknowledged_at else None
        requirement = f"Time to Acknowledge: {duration_text(response.acknowledge_minutes)}"
        result.append(Deadline("acknowledgement", requirement, ack_due, met, now, closed))

    assemble_due = earliest(lambda r: r.assemble_minutes)
    if assemble_due is not None and response.assemble_minutes is not None:
        requirement = f"Time to Assemble Team: {duration_text(response.assemble_minutes)}"
        result.append(
            Deadline(
                "team assembled", requirement, assemble_due, _assembled(incident), now, closed
            )  # fmt: skip
        )

    every = response.update_every_minutes
    if every is not None and closed is None:
        since = parse_time(incident.last_update_at) if incident.last_update_at else opened
        text = "Daily" if every == 1440 else f"Every {duration_text(every)}"
        requirement = f"Status Update Frequency: {text}"
        result.append(
            Deadline("status update", requirement, since + timedelta(minutes=every), None, now)
        )
    return result


def _assembled(incident: Incident) -> datetime | None:
    """When the last of the four roles was first filled, or None."""
    first: dict[str, datetime] = {}
    for event in incident.events:
        role = event.data.get("role")
        if event.kind == "assign" and role in ROLES and role not in first:
            first[str(role)] = event.when
    return max(first.values()) if len(first) == len(ROLES) else None


def overdue(
    incident: Incident, *, now: datetime, policy: SeverityPolicy | None = None
) -> list[Deadline]:
    """The deadlines missed and still not met at ``now``."""
    return [d for d in deadlines(incident, now=now, policy=policy) if d.overdue]
