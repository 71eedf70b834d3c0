"""The timeline: ordering, and what is overdue against the severity's response targets
(opsnb.severity), judged with an injectable clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from opsnb import incidents
from opsnb.incidents import Store
from opsnb.incidents.timeline import deadlines, entries, overdue
from opsnb.severity import SEVERITIES, load_policy

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)


class Clock:
    """An injectable clock: the store stamps events with it; tests move it."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, minutes: float) -> datetime:
        self.now += timedelta(minutes=minutes)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> Store:
    return Store(tmp_path / "incidents", clock=clock)


def states(incident, now):
    return {d.name: d.state for d in deadlines(incident, now=now)}


def test_acknowledgement_follows_the_severity_targets(store: Store, clock: Clock) -> None:
    inc = incidents.open_incident("Checkout errors", "payments", "SEV-2", store=store)
    ack = SEVERITIES[2].response.acknowledge_minutes  # 15 minutes
    state = store.load(inc.id)
    assert states(state, T0 + timedelta(minutes=ack - 1))["acknowledgement"] == "pending"
    late = overdue(state, now=T0 + timedelta(minutes=ack + 1))
    assert "acknowledgement" in [d.name for d in late]
    (ack_due,) = [d for d in late if d.name == "acknowledgement"]
    assert ack_due.due == T0 + timedelta(minutes=15)
    assert "OVERDUE by 1 minute" in ack_due.describe()
    assert "Time to Acknowledge: 15 minutes" in ack_due.describe()

    clock.advance(20)  # the IC comes in late
    incidents.assign(inc.id, "ic", "alice", store=store)
    state = store.load(inc.id)
    assert states(state, clock.now)["acknowledgement"] == "late"
    assert "acknowledgement" not in [d.name for d in overdue(state, now=clock.now)]


def test_a_status_change_acknowledges(store: Store, clock: Clock) -> None:
    inc = incidents.open_incident("Outage", "auth", 1, store=store)
    clock.advance(3)
    incidents.set_status(inc.id, "investigating", store=store)  # same status: still an ack
    state = store.load(inc.id)
    assert states(state, T0 + timedelta(hours=1))["acknowledgement"] == "met"


def test_status_update_cadence(store: Store, clock: Clock) -> None:
    inc = incidents.open_incident("Outage", "auth", 1, store=store)  # every 15 minutes
    incidents.assign(inc.id, "ic", "alice", store=store)
    state = store.load(inc.id)
    assert states(state, T0 + timedelta(minutes=14))["status update"] == "pending"
    # The acknowledgement was met; the team (15 minutes) and the update (15 minutes) were not.
    assert [d.name for d in overdue(state, now=T0 + timedelta(minutes=16))] == [
        "team assembled", "status update"]  # fmt: skip

    clock.advance(10)
    incidents.record(inc.id, "message", template="declared", text="...", manual=True,
                     store=store)  # fmt: skip
    state = store.load(inc.id)
    (update,) = [d for d in deadlines(state, now=clock.now) if d.name == "status update"]
    assert update.due == T0 + timedelta(minutes=25)
    assert update.requirement == "Status Update Frequency: Every 15 minutes"

    # A post that failed everywhere is no update.
    clock.advance(20)
    incidents.record(inc.id, "message", template="update", text="...", posted=True,
                     deliveries=[{"channel": "x", "ok": False}], store=store)  # fmt: skip
    assert "status update" in [d.name for d in overdue(store.load(inc.id), now=clock.now)]
    incidents.record(inc.id, "message", template="update", text="...", posted=True,
                     deliveries=[{"channel": "x", "ok": True}], store=store)  # fmt: skip
    assert states(store.load(inc.id), clock.now + timedelta(minutes=14))["status update"] == (
        "pending")  # fmt: skip

    clock.advance(1)
    incidents.resolve(inc.id, summary="fixed", store=store)
    assert "status update" not in states(store.load(inc.id), T0 + timedelta(days=1))


def test_team_assembly_for_sev1_and_sev2(store: Store, clock: Clock) -> None:
    inc = incidents.open_incident("Outage", "auth", 1, store=store)
    for minutes, (role, who) in zip(
        (2, 4, 6, 20),
        (("ic", "a"), ("tech-lead", "b"), ("comms-lead", "c"), ("scribe", "d")),
        strict=True,
    ):
        clock.now = T0 + timedelta(minutes=minutes)
        incidents.assign(inc.id, role, who, store=store)
        if role == "comms-lead":
            state = store.load(inc.id)
            assert states(state, T0 + timedelta(minutes=16))["team assembled"] == "overdue"
    (team,) = [d for d in deadlines(store.load(inc.id), now=clock.now)
               if d.name == "team assembled"]  # fmt: skip
    assert team.state == "late" and team.met == T0 + timedelta(minutes=20)
    minor = incidents.open_incident("Slow search", "search", 3, store=store)
    assert "team assembled" not in states(store.load(minor.id), clock.now)


def test_raising_the_severity_shortens_the_deadline_lowering_never_extends(
    store: Store, clock: Clock
) -> None:
    inc = incidents.open_incident("Slow", "search", 3, store=store)  # ack within 1 hour
    clock.advance(30)
    incidents.set_severity(inc.id, 1, reason="full outage", store=store)  # 5 minutes now
    state = store.load(inc.id)
    (ack,) = [d for d in deadlines(state, now=clock.now) if d.name == "acknowledgement"]
    assert ack.due == T0 + timedelta(minutes=35)
    assert ack.requirement == "Time to Acknowledge: 5 minutes"

    other = incidents.open_incident("Outage", "auth", 1, store=store)  # opened at T0+30
    clock.advance(1)
    incidents.set_severity(other.id, 4, store=store)
    (ack,) = [d for d in deadlines(store.load(other.id), now=clock.now)
              if d.name == "acknowledgement"]  # fmt: skip
    assert ack.due == T0 + timedelta(minutes=35)
    # SEV-4 has no update frequency: nothing to send.
    assert "status update" not in states(store.load(other.id), clock.now)


def test_targets_come_from_the_organisations_severity_policy(tmp_path: Path, clock: Clock) -> None:
    policy_file = tmp_path / "severity.yaml"
    policy_file.write_text(
        "severity:\n  levels:\n    SEV-2: {acknowledge: 5m, update_every: 10m}\n"
    )
    store = Store(tmp_path / "incidents", clock=clock, policy=load_policy(policy_file))
    inc = incidents.open_incident("Errors", "payments", 2, store=store)
    state = store.load(inc.id)
    late = overdue(state, now=T0 + timedelta(minutes=11), policy=store.policy)
    assert [d.name for d in late] == ["acknowledgement", "status update"]
    assert late[0].requirement == "Time to Acknowledge: 5 minutes"


def test_resolved_incidents_report_missed_deadlines_not_overdue(store: Store, clock: Clock) -> None:
    inc = incidents.open_incident("Errors", "payments", 2, store=store)
    clock.advance(40)
    incidents.note(inc.id, "nobody looked", store=store)
    clock.advance(1)
    # Resolving is a status change: it acknowledges, late.
    incidents.resolve(inc.id, store=store)
    state = store.load(inc.id)
    assert states(state, clock.now + timedelta(days=3)) == {
        "acknowledgement": "late", "team assembled": "missed"}  # fmt: skip
    assert overdue(state, now=clock.now + timedelta(days=3)) == []


def test_timeline_orders_by_when_it_happened(store: Store, clock: Clock) -> None:
    inc = incidents.open_incident("Errors", "payments", 2, store=store)
    clock.advance(10)
    incidents.note(inc.id, "now", store=store)
    incidents.record(inc.id, "alert", name="HighErrorRate", status="firing",
                     annotations={"summary": "5xx above 1%"},
                     at=T0 - timedelta(minutes=5), store=store)  # fmt: skip
    incidents.note(inc.id, "same moment as the alert, recorded later",
                   at=T0 - timedelta(minutes=5), store=store)  # fmt: skip
    rows = entries(store.load(inc.id))
    assert [r.id for r in rows] == ["E0003", "E0004", "E0001", "E0002"]
    assert rows[0].text == "alert HighErrorRate firing: 5xx above 1%"
    assert rows[0].event.recorded_at > rows[2].event.recorded_at
