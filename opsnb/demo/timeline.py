"""The recorded timeline of the demo's payments incident (2025-01-15): the Blameless
Postmortem Template's example, as the events a team would have recorded.

The template's timeline rows become the incident's events: the alert and the opening at
14:20, the acknowledgement, the war room, the incident commander, the root cause
identified, the mitigation (scaling the connection pool at 14:40, adding read replicas at
14:55: actions *taken*, recorded from the template's record, since the demo's snapshot is
read-only), the recovery notes, the resolution at 15:15 and the status page at 15:30. The
template's action items are notes marked as action items. Times are UTC.

The automated diagnosis is not here: ``opsnb demo`` runs it against the recorded evidence
(the snapshot's "now" is :data:`EVIDENCE_AT`) and attaches it.
"""

from __future__ import annotations

from typing import Any

DAY = "2025-01-15"
EVIDENCE_AT = "14:30"  # the demo snapshot's "now": what the diagnosis run sees

INCIDENT: dict[str, Any] = {
    "title": "Payment processing errors: database connection pool exhausted",
    "service": "payments",
    "severity": "SEV-2",
    "target": "demo",
    "impact": "Checkouts and payments failing with 5xx errors",
    "war_room": "https://meet.example.com/inc-payments",
    "by": "@oncall-engineer",
}

ALERT: dict[str, Any] = {
    "at": "14:20",
    "name": "HighErrorRate",
    "status": "firing",
    "labels": {
        "alertname": "HighErrorRate",
        "service": "payments",
        "severity": "critical",
        "runbook": "high-error-rate",
    },
    "annotations": {"summary": "High error rate on payments", "description": "Error rate is 15.2%"},
    "starts_at": f"{DAY}T14:20:00Z",
}

# (time, call, by, arguments): ``call`` is an opsnb.incidents function (record kinds go
# through ``record``); ``resolve`` ends the incident.
EVENTS: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("14:00", "note", "@scribe", {"text": "Traffic spike begins (3x normal)"}),
    ("14:15", "note", "@scribe", {"text": "Database connection pool reaches capacity"}),
    ("14:18", "note", "@scribe", {"text": "First customer-facing errors appear"}),
    ("14:22", "set_status", "@oncall-engineer", {"status": "investigating"}),
    (
        "14:25",
        "message",
        "@oncall-engineer",
        {
            "template": "declared",
            "manual": True,
            "posted": False,
            "deliveries": [],
            "text": "Incident declared, war room opened",
        },
    ),
    ("14:30", "assign", "@oncall-engineer", {"role": "ic", "who": "@engineer"}),
    (
        "14:35",
        "set_status",
        "@engineer",
        {"status": "identified", "summary": "Root cause identified: connection pool exhaustion"},
    ),
    (
        "14:40",
        "set_status",
        "@engineer",
        {"status": "mitigating", "summary": "Mitigation started: scaling connection pool"},
    ),
    (
        "14:40",
        "action",
        "@engineer",
        {
            "action": "scale-connection-pool",
            "object": "payments database connection pool",
            "dry_run": False,
            "outcome": "applied",
            "from_record": True,
            "detail": "Increased database connection pool from 100 to 300 connections",
            "parameters": {"max_connections": 300},
            "target": "production",
        },
    ),
    ("14:50", "note", "@engineer", {"text": "Connection pool scaled, errors decreasing"}),
    (
        "14:55",
        "action",
        "@engineer",
        {
            "action": "add-read-replicas",
            "object": "payments database",
            "dry_run": False,
            "outcome": "applied",
            "from_record": True,
            "detail": "Added 2 read replicas to distribute load",
            "parameters": {"replicas": 2},
            "target": "production",
        },
    ),
    ("15:05", "note", "@engineer", {"text": "Error rate returns to normal"}),
    ("15:10", "note", "@engineer", {"text": "Smoke tests passing"}),
    (
        "15:15",
        "resolve",
        "@engineer",
        {
            "summary": "Connection pool scaled from 100 to 300 connections and 2 read replicas "
            "added; error rate back to normal"
        },
    ),
    (
        "15:30",
        "message",
        "@comms-lead",
        {
            "template": "resolved",
            "manual": True,
            "posted": False,
            "deliveries": [],
            "text": "Status page updated to Operational",
        },
    ),
)

# The template's action items: (text, owner, due, ticket, priority), noted the next day.
ACTION_ITEMS_AT = "2025-01-16T10:00:00Z"
ACTION_ITEMS: tuple[tuple[str, str, str, str, str], ...] = (
    (
        "Add connection pool utilization alert (80% threshold)",
        "@sre-engineer",
        "2025-01-20",
        "OPS-1234",
        "P1",
    ),
    (
        "Document connection pool troubleshooting in runbook",
        "@oncall-engineer",
        "2025-01-22",
        "OPS-1235",
        "P1",
    ),
    ("Increase production connection pool to 500", "@dba", "2025-01-19", "OPS-1236", "P1"),
    ("Implement connection pool autoscaling", "@platform-engineer", "2025-01-31", "ENG-5678", "P2"),
    ("Add read replica autoscaling", "@dba", "2025-02-07", "OPS-1237", "P2"),
    (
        "Create marketing -> engineering notification process",
        "@engineering-manager",
        "2025-01-25",
        "PROC-123",
        "P2",
    ),
    ("Implement automatic status page updates", "@sre-team", "2025-03-31", "OPS-1238", "P3"),
    (
        "Add synthetic monitors for error rate thresholds",
        "@sre-team",
        "2025-02-28",
        "OPS-1239",
        "P3",
    ),
    (
        "Conduct capacity planning review for all services",
        "@platform-team",
        "2025-03-15",
        "ENG-5679",
        "P3",
    ),
)


def at(clock: str) -> str:
    """``14:20`` -> ``2025-01-15T14:20:00Z``."""
    return f"{DAY}T{clock}:00Z"
