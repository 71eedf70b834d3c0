"""What an incident is: roles, statuses, events, and the state derived from its events.

An incident's events are the record; its state (:class:`Incident`) is computed from them by
:func:`replay`, never edited by hand. Each event is one JSON line of ``events.jsonl``::

    {"id": "E0003", "incident": "INC-0001", "kind": "status", "at": "...Z",
     "recorded_at": "...Z", "by": "alice", "data": {"from": "investigating", "to": "identified"},
     "prev_hash": "<sha256 of the previous event>", "hash": "<sha256 of this event>"}

``at`` is when it happened (a scribe may note something that happened earlier; an alert
carries its own start time), ``recorded_at`` when it was written. ``hash`` is the sha256 of
the canonical JSON (sorted keys, no spaces, UTF-8) of the event without ``hash``; the first
event's ``prev_hash`` is :data:`GENESIS`.

Event kinds and their ``data``:

=============  ============================================================================
``opened``     title, service, severity (1-4), target, impact, war_room
``alert``      name, status (firing|resolved), labels, annotations, starts_at, ... (free)
``run``        run_dir, runbook, target, service, status, started_at, finished_at, checks
               (counts by status), failed_checks, error, html
``finding``    run_dir, runbook, cause, recommendation, evidence
``action``     run_dir, action, object, dry_run, outcome, detail, parameters, mode, target
               (``by`` of the event is who ran it)
``status``     from, to, summary (resolution summary when ``to`` is resolved)
``severity``   from, to, reason
``assign``     role (ic|tech-lead|comms-lead|scribe), who, previous
``note``       text, action_item (bool), owner, due, ticket, priority
``message``    template, text, posted (bool), manual (bool), deliveries
               ([{channel, ok, status, error}]), eta, status_page_id
``correction`` corrects (an event id), text, at (a corrected time, optional)
=============  ============================================================================
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..errors import OpsnbError, UsageError
from ..severity import DEFAULT_POLICY, ResponseTargets, Severity, SeverityPolicy, parse_level

FORMAT = "opsnb-incident/1"
GENESIS = "0" * 64

ROLES: dict[str, str] = {
    "ic": "Incident Commander",
    "tech-lead": "Technical Lead",
    "comms-lead": "Communications Lead",
    "scribe": "Scribe",
}
STATUSES = ("investigating", "identified", "mitigating", "resolved")
OPEN_STATUSES = STATUSES[:-1]
KINDS = (
    "opened", "alert", "run", "finding", "action", "status", "severity", "assign", "note",
    "message", "correction",
)  # fmt: skip
# Kinds a caller of ``record`` must not write directly: their state rules live in the API.
STATEFUL = ("opened", "status", "severity", "assign", "correction")

INCIDENT_ID = re.compile(r"INC-(\d{4,})")
EVENT_ID = re.compile(r"E?-?0*(\d+)", re.IGNORECASE)
PRIORITY = re.compile(r"P[0-4]", re.IGNORECASE)


class IncidentError(OpsnbError):
    """An incident operation that cannot be done (exit 1)."""


class IncidentUsageError(UsageError):
    """Bad input for an incident command: unknown incident, role, status... (exit 2)."""


# --- time -------------------------------------------------------------------------------------


def utc_now() -> datetime:
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    """``2026-11-30T12:25:32.123Z``: UTC, milliseconds."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def parse_time(value: str | datetime) -> datetime:
    """A tz-aware UTC datetime from an ISO 8601 string (``Z`` or an offset) or a datetime;
    a naive value is taken as UTC."""
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise IncidentUsageError(f"not an ISO 8601 time: {value!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def duration_words(delta: timedelta) -> str:
    """``1 hour 5 minutes``, ``45 minutes``, ``30 seconds``."""
    seconds = int(max(delta.total_seconds(), 0))
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    parts = []
    if hours:
        parts.append(f"{hours} hour" + ("" if hours == 1 else "s"))
    if minutes or (hours == 0 and seconds >= 60):
        parts.append(f"{minutes} minute" + ("" if minutes == 1 else "s"))
    if not parts:
        parts.append(f"{seconds} second" + ("" if seconds == 1 else "s"))
    return " ".join(parts)


# --- ids --------------------------------------------------------------------------------------


def incident_number(incident_id: str) -> int:
    match = INCIDENT_ID.fullmatch(incident_id.strip().upper())
    if not match:
        raise IncidentUsageError(f"not an incident id: {incident_id!r} (INC-NNNN)")
    return int(match.group(1))


def format_incident_id(number: int) -> str:
    return f"INC-{number:04d}"


def normalize_incident_id(incident_id: str) -> str:
    return format_incident_id(incident_number(incident_id))


def format_event_id(seq: int) -> str:
    return f"E{seq:04d}"


def parse_event_id(value: str | int) -> int:
    """The sequence number of ``E0007``, ``E7``, ``7``."""
    match = EVENT_ID.fullmatch(str(value).strip())
    if not match or int(match.group(1)) < 1:
        raise IncidentUsageError(f"not an event id: {value!r} (e.g. E0007)")
    return int(match.group(1))


def parse_role(value: str) -> str:
    role = value.strip().lower().replace("_", "-")
    role = {"commander": "ic", "incident-commander": "ic", "tech": "tech-lead",
            "comms": "comms-lead"}.get(role, role)  # fmt: skip
    if role not in ROLES:
        raise IncidentUsageError(f"unknown role {value!r}; roles: {', '.join(ROLES)}")
    return role


def parse_status(value: str) -> str:
    status = value.strip().lower()
    if status not in STATUSES:
        raise IncidentUsageError(f"unknown status {value!r}; statuses: {', '.join(STATUSES)}")
    return status


def parse_severity(value: Any) -> int:
    try:
        return parse_level(value)
    except ValueError as exc:
        raise IncidentUsageError(str(exc)) from None


def handle(who: str) -> str:
    """``@name`` from ``name`` or ``@name``."""
    who = who.strip()
    if not who or who == "@":
        raise IncidentUsageError("a person is needed (e.g. @alice)")
    return who if who.startswith("@") else f"@{who}"


# --- events -----------------------------------------------------------------------------------


def canonical(body: dict[str, Any]) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def event_hash(body: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of an event without its ``hash``."""
    return hashlib.sha256(canonical({k: v for k, v in body.items() if k != "hash"})).hexdigest()


@dataclass(frozen=True)
class Event:
    id: str
    incident: str
    kind: str
    at: str
    recorded_at: str
    by: str
    data: dict[str, Any]
    prev_hash: str
    hash: str

    @property
    def seq(self) -> int:
        return parse_event_id(self.id)

    @property
    def when(self) -> datetime:
        return parse_time(self.at)

    def body(self) -> dict[str, Any]:
        """Everything but ``hash``: what the hash covers."""
        return {
            "id": self.id, "incident": self.incident, "kind": self.kind, "at": self.at,
            "recorded_at": self.recorded_at, "by": self.by, "data": self.data,
            "prev_hash": self.prev_hash,
        }  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {**self.body(), "hash": self.hash}

    def line(self) -> str:
        """The event as one line of ``events.jsonl`` (envelope keys in a fixed order)."""
        return json.dumps(self.to_dict(), ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Event:
        return cls(
            id=str(raw["id"]), incident=str(raw["incident"]), kind=str(raw["kind"]),
            at=str(raw["at"]), recorded_at=str(raw["recorded_at"]), by=str(raw.get("by", "")),
            data=dict(raw.get("data") or {}), prev_hash=str(raw["prev_hash"]),
            hash=str(raw["hash"]),
        )  # fmt: skip

    @classmethod
    def seal(
        cls,
        *,
        seq: int,
        incident: str,
        kind: str,
        at: str,
        recorded_at: str,
        by: str,
        data: dict[str, Any],
        prev_hash: str,
    ) -> Event:
        """A new event with its hash computed."""
        # A JSON round trip keeps exactly what will be read back (tuples become lists...).
        data = json.loads(json.dumps(data, ensure_ascii=False, default=str))
        body = {
            "id": format_event_id(seq), "incident": incident, "kind": kind, "at": at,
            "recorded_at": recorded_at, "by": by, "data": data, "prev_hash": prev_hash,
        }  # fmt: skip
        return cls(
            id=format_event_id(seq), incident=incident, kind=kind, at=at,
            recorded_at=recorded_at, by=by, data=data, prev_hash=prev_hash,
            hash=event_hash(body),
        )  # fmt: skip


# --- state ------------------------------------------------------------------------------------


@dataclass
class ActionItem:
    id: str  # AI-1, AI-2... in the order they were noted
    event: str  # the note's event id
    text: str
    owner: str | None = None
    due: str | None = None
    ticket: str | None = None
    priority: str | None = None
    by: str = ""
    at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Incident:
    id: str
    title: str = ""
    service: str = ""
    target: str | None = None
    severity: int = 3
    status: str = "investigating"
    impact: str | None = None
    war_room: str | None = None
    roles: dict[str, str] = field(default_factory=dict)
    opened_at: str = ""
    opened_by: str = ""
    updated_at: str = ""
    resolved_at: str | None = None
    summary: str | None = None
    acknowledged_at: str | None = None
    last_update_at: str | None = None  # the last status update message delivered
    eta: str | None = None
    status_page_id: str | None = None
    severity_history: list[tuple[str, int]] = field(default_factory=list)  # (at, level)
    action_items: list[ActionItem] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    corrections: dict[str, list[str]] = field(default_factory=dict)  # event id -> corrections
    events: list[Event] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status != "resolved"

    @property
    def label(self) -> str:
        return f"SEV-{self.severity}"

    @property
    def head(self) -> Event | None:
        return self.events[-1] if self.events else None

    def level(self, policy: SeverityPolicy | None = None) -> Severity:
        return (policy or DEFAULT_POLICY).levels[self.severity]

    def response(self, policy: SeverityPolicy | None = None) -> ResponseTargets:
        """The playbook's response targets for the current severity."""
        return self.level(policy).response

    def event(self, event_id: str | int) -> Event:
        seq = parse_event_id(event_id)
        if not 1 <= seq <= len(self.events):
            raise IncidentUsageError(f"{self.id} has no event {format_event_id(seq)}")
        return self.events[seq - 1]

    def to_state(self, policy: SeverityPolicy | None = None) -> dict[str, Any]:
        """What ``incident.json`` holds: the current state, derived from the events."""
        level = self.level(policy)
        response = level.response
        head = self.head
        return {
            "format": FORMAT,
            "id": self.id,
            "title": self.title,
            "service": self.service,
            "target": self.target,
            "status": self.status,
            "severity": {
                "label": level.label,
                "name": level.name,
                "impact": level.impact,
                "acknowledge_minutes": response.acknowledge_minutes,
                "assemble_minutes": response.assemble_minutes,
                "update_every_minutes": response.update_every_minutes,
                "postmortem": response.postmortem,
                "postmortem_within_minutes": response.postmortem_within_minutes,
                "policy": (policy or DEFAULT_POLICY).source,
            },
            "impact": self.impact,
            "war_room": self.war_room,
            "roles": {role: self.roles.get(role) for role in ROLES},
            "opened_at": self.opened_at,
            "opened_by": self.opened_by,
            "acknowledged_at": self.acknowledged_at,
            "last_update_at": self.last_update_at,
            "resolved_at": self.resolved_at,
            "summary": self.summary,
            "eta": self.eta,
            "status_page_id": self.status_page_id,
            "updated_at": self.updated_at,
            "action_items": [item.to_dict() for item in self.action_items],
            "runs": list(self.runs),
            "events": len(self.events),
            "head": {"id": head.id, "hash": head.hash} if head else None,
        }


UPDATE_TEMPLATES = ("declared", "update")  # messages that count as status updates


def apply(incident: Incident, event: Event) -> None:
    """Fold one event into the state."""
    data = event.data
    incident.events.append(event)
    incident.updated_at = event.recorded_at
    kind = event.kind
    if kind == "opened":
        incident.title = str(data.get("title", ""))
        incident.service = str(data.get("service", ""))
        incident.target = data.get("target")
        incident.severity = int(data.get("severity", 3))
        incident.impact = data.get("impact")
        incident.war_room = data.get("war_room")
        incident.opened_at = event.at
        incident.opened_by = event.by
        incident.severity_history.append((event.at, incident.severity))
    elif kind == "status":
        incident.status = str(data["to"])
        _acknowledge(incident, event)
        if incident.status == "resolved":
            incident.resolved_at = event.at
            incident.summary = data.get("summary") or incident.summary
        else:
            incident.resolved_at = None
    elif kind == "severity":
        incident.severity = int(data["to"])
        incident.severity_history.append((event.at, incident.severity))
    elif kind == "assign":
        incident.roles[str(data["role"])] = str(data["who"])
        if data["role"] == "ic":
            _acknowledge(incident, event)
    elif kind == "note" and data.get("action_item"):
        incident.action_items.append(
            ActionItem(
                id=f"AI-{len(incident.action_items) + 1}",
                event=event.id,
                text=str(data.get("text", "")),
                owner=data.get("owner"),
                due=data.get("due"),
                ticket=data.get("ticket"),
                priority=data.get("priority"),
                by=event.by,
                at=event.at,
            )  # fmt: skip
        )
    elif kind == "run":
        run_dir = str(data.get("run_dir", ""))
        if run_dir and run_dir not in incident.runs:
            incident.runs.append(run_dir)
    elif kind == "message":
        delivered = data.get("manual") or any(d.get("ok") for d in data.get("deliveries", []))
        latest = incident.last_update_at
        if (
            delivered
            and data.get("template") in UPDATE_TEMPLATES
            and (latest is None or event.at > latest)
        ):
            incident.last_update_at = event.at
        if data.get("eta"):
            incident.eta = str(data["eta"])
        if data.get("status_page_id"):
            incident.status_page_id = str(data["status_page_id"])
    elif kind == "correction":
        target = str(data["corrects"])
        incident.corrections.setdefault(target, []).append(event.id)
        for item in incident.action_items:
            if item.event == target and data.get("text"):
                item.text = str(data["text"])


def _acknowledge(incident: Incident, event: Event) -> None:
    if incident.acknowledged_at is None or event.at < incident.acknowledged_at:
        incident.acknowledged_at = event.at


def replay(incident_id: str, events: list[Event]) -> Incident:
    """The incident's state from its events, in the order they were recorded."""
    incident = Incident(id=incident_id)
    for event in events:
        apply(incident, event)
    return incident
