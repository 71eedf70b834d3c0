"""Incidents with a timeline that keeps itself: plain files (a folder per incident, an
append-only hash-chained ``events.jsonl`` and the derived ``incident.json``), the playbook's
severities, roles and statuses, overdue response targets, and the playbook's messages.

    model      Incident, roles, statuses, events; the state derived from the events
    store      the files, locking, id allocation, the hash chain and its verification
    timeline   ordering, corrections, deadlines and what is overdue
    comms      the playbook's messages, posted to webhooks and a status page
    api        what the rest of opsnb calls (re-exported here)
    cli        ``opsnb incident ...``
"""

from .api import (
    assign,
    attach_run,
    correct,
    list_incidents,
    load,
    note,
    open_for_service,
    open_incident,
    open_or_get,
    record,
    resolve,
    set_severity,
    set_status,
    verify,
    whoami,
)
from .model import ROLES, STATUSES, Event, Incident, IncidentError, IncidentUsageError
from .store import Store, incidents_dir

__all__ = [
    "ROLES", "STATUSES", "Event", "Incident", "IncidentError", "IncidentUsageError", "Store",
    "assign", "attach_run", "correct", "incidents_dir", "list_incidents", "load", "note",
    "open_for_service", "open_incident", "open_or_get", "record", "resolve", "set_severity",
    "set_status", "verify", "whoami",
]  # fmt: skip
