"""Incident storage: ids without collisions across processes, concurrent appends that lose
nothing, a tamper-evident hash chain, corrections that rewrite nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from opsnb import incidents
from opsnb.incidents import IncidentError, IncidentUsageError, Store
from opsnb.incidents.model import GENESIS, event_hash
from opsnb.incidents.timeline import entries

ROOT = Path(__file__).resolve().parent.parent

# A worker process: waits for the start signal, then opens incidents or appends notes.
WORKER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from opsnb import incidents
    root, what, worker, count, go = sys.argv[1:6]
    while not Path(go).exists():
        time.sleep(0.005)
    for i in range(int(count)):
        if what == "open":
            inc = incidents.open_incident(f"w{worker}-{i}", f"svc-{worker}", 3, root=root)
            print(inc.id, flush=True)
        else:
            incidents.note(what, f"w{worker}-{i}", by=f"worker-{worker}", root=root)
    """
)


def run_workers(root: Path, what: str, workers: int, count: int, tmp_path: Path) -> list[str]:
    go = tmp_path / f"go-{what}"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(root), what, str(w), str(count), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )  # fmt: skip
        for w in range(workers)
    ]
    time.sleep(0.5)  # let every worker start and wait at the line
    go.touch()
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        outputs.extend(out.split())
    return outputs


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "incidents")


def test_ids_are_allocated_without_collisions_across_processes(tmp_path: Path) -> None:
    root = tmp_path / "incidents"
    ids = run_workers(root, "open", workers=8, count=5, tmp_path=tmp_path)
    assert len(ids) == 40
    assert sorted(ids) == [f"INC-{n:04d}" for n in range(1, 41)]
    titles = {incidents.load(i, root=root).title for i in ids}
    assert len(titles) == 40  # every incident is its own, none overwritten
    for incident_id in ids:
        assert incidents.verify(incident_id, root=root).ok


def test_concurrent_appends_from_8_processes_all_land_and_the_chain_holds(
    tmp_path: Path,
) -> None:
    root = tmp_path / "incidents"
    inc = incidents.open_incident("Checkout errors", "payments", "SEV-2", root=root)
    started = time.monotonic()
    run_workers(root, inc.id, workers=8, count=50, tmp_path=tmp_path)
    assert time.monotonic() - started < 90
    store = Store(root)
    events = store.events(inc.id)
    assert len(events) == 1 + 8 * 50
    texts = [e.data["text"] for e in events if e.kind == "note"]
    assert sorted(texts) == sorted(f"w{w}-{i}" for w in range(8) for i in range(50))
    assert [e.id for e in events] == [f"E{n:04d}" for n in range(1, 402)]
    # Each worker's notes keep their order: appends are never reordered.
    for w in range(8):
        mine = [t for t in texts if t.startswith(f"w{w}-")]
        assert mine == [f"w{w}-{i}" for i in range(50)]
    report = store.verify(inc.id)
    assert report.ok, report.problems
    assert report.events == 401
    state = json.loads((root / inc.id / "incident.json").read_text())
    assert state["events"] == 401 and state["head"]["id"] == "E0401"


def test_event_format_and_hash_chain(store: Store) -> None:
    inc = incidents.open_incident("Errors", "payments", 2, store=store, by="alice")
    incidents.note(inc.id, "first", store=store, by="bob")
    lines = (store.root / inc.id / "events.jsonl").read_text().splitlines()
    first, second = (json.loads(line) for line in lines)
    assert list(first) == ["id", "incident", "kind", "at", "recorded_at", "by", "data",
                           "prev_hash", "hash"]  # fmt: skip
    assert first["prev_hash"] == GENESIS and second["prev_hash"] == first["hash"]
    assert first["hash"] == event_hash(first) and second["hash"] == event_hash(second)
    assert first["kind"] == "opened" and first["data"]["severity"] == 2
    assert second["by"] == "bob" and second["incident"] == inc.id
    assert first["at"].endswith("Z")
    assert (store.root / ".gitignore").read_text() == ".lock\n*.tmp\n"
    assert not list((store.root / inc.id).glob("*.tmp"))


def test_tampering_with_one_line_fails_verify_naming_it(store: Store) -> None:
    inc = incidents.open_incident("Errors", "payments", 2, store=store)
    for i in range(5):
        incidents.note(inc.id, f"note {i}", store=store)
    log = store.root / inc.id / "events.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    lines[3] = lines[3].replace("note 2", "note two")
    log.write_text("".join(lines))
    report = store.verify(inc.id)
    assert not report.ok
    assert report.first is not None and report.first.event == "E0004" and report.first.line == 4
    assert "changed" in str(report.first)

    # Re-hashing the changed line does not help: the next entry's prev_hash gives it away.
    raw = json.loads(lines[3])
    raw["hash"] = event_hash(raw)
    lines[3] = json.dumps(raw) + "\n"
    log.write_text("".join(lines))
    first = store.verify(inc.id).first
    assert first is not None and first.event == "E0005" and "prev_hash" in first.reason


def test_removed_lines_are_detected(store: Store) -> None:
    inc = incidents.open_incident("Errors", "payments", 2, store=store)
    for i in range(4):
        incidents.note(inc.id, f"note {i}", store=store)
    log = store.root / inc.id / "events.jsonl"
    original = log.read_text()
    lines = original.splitlines(keepends=True)
    log.write_text("".join(lines[:2] + lines[3:]))  # drop E0003
    first = store.verify(inc.id).first
    assert first is not None and first.line == 3 and first.event == "E0004"
    log.write_text("".join(lines[:-1]))  # drop the last event: incident.json knows it
    first = store.verify(inc.id).first
    assert first is not None and first.event == "E0005" and "missing" in first.reason
    log.write_text(original[:-10])  # a torn last line
    assert "incomplete" in str(store.verify(inc.id).first)
    with pytest.raises(IncidentError, match="incomplete line"):
        incidents.note(inc.id, "refused: the log must be repaired first", store=store)


def test_corrections_do_not_rewrite(store: Store) -> None:
    inc = incidents.open_incident("Errors", "payments", 2, store=store)
    wrong = incidents.note(inc.id, "restarted pod payments-7x", store=store, at="2026-01-01T10:05Z")
    log = store.root / inc.id / "events.jsonl"
    before = log.read_bytes()
    fix = incidents.correct(
        inc.id, wrong.id, "restarted pod payments-9z", corrected_at="2026-01-01T10:02Z", store=store
    )
    after = log.read_bytes()
    assert after.startswith(before)  # every earlier byte is as it was
    assert fix.kind == "correction" and fix.data["corrects"] == wrong.id
    state = store.load(inc.id)
    assert state.event(wrong.id).data["text"] == "restarted pod payments-7x"
    rows = {row.id: row for row in entries(state)}
    assert rows[wrong.id].text == "restarted pod payments-9z"
    assert rows[wrong.id].corrected_by == (fix.id,)
    assert rows[wrong.id].at.isoformat().startswith("2026-01-01T10:02")
    assert rows[fix.id].text.startswith(f"correction of {wrong.id}")
    assert store.verify(inc.id).ok
    with pytest.raises(IncidentUsageError, match="no event E0099"):
        incidents.correct(inc.id, "E99", "nothing there", store=store)


def test_action_item_corrections_reach_the_action_items(store: Store) -> None:
    inc = incidents.open_incident("Errors", "payments", 2, store=store)
    item = incidents.note(inc.id, "Add pool alrt", action_item=True, owner="sre",
                          due="2026-12-10", ticket="OPS-1", priority="p1", store=store)  # fmt: skip
    incidents.correct(inc.id, item.id, "Add pool alert (80%)", store=store)
    (ai,) = store.load(inc.id).action_items
    assert (ai.id, ai.text, ai.owner, ai.due, ai.ticket, ai.priority) == (
        "AI-1", "Add pool alert (80%)", "@sre", "2026-12-10", "OPS-1", "P1")  # fmt: skip
    with pytest.raises(IncidentUsageError, match="--action-item"):
        incidents.note(inc.id, "owner without an item", owner="sre", store=store)
    with pytest.raises(IncidentUsageError, match="YYYY-MM-DD"):
        incidents.note(inc.id, "x", action_item=True, due="next week", store=store)


def test_state_is_derived_from_events(store: Store) -> None:
    inc = incidents.open_incident("Errors", "payments", "sev3", target="prod", store=store)
    assert (inc.id, inc.status, inc.severity, inc.target) == (
        "INC-0001",
        "investigating",
        3,
        "prod",
    )
    incidents.assign(inc.id, "ic", "alice", store=store)
    incidents.assign(inc.id, "ic", "@bob", store=store)
    incidents.set_severity(inc.id, "SEV-1", reason="all users", store=store)
    incidents.set_status(inc.id, "mitigating", store=store)
    incidents.resolve(inc.id, summary="rolled back", store=store)
    state = store.load(inc.id)
    assert state.roles == {"ic": "@bob"}
    assert state.event("E0003").data["previous"] == "@alice"
    assert (state.severity, state.status, state.summary) == (1, "resolved", "rolled back")
    written = json.loads((store.root / inc.id / "incident.json").read_text())
    assert written == json.loads(json.dumps(state.to_state(store.policy)))
    assert written["severity"]["acknowledge_minutes"] == 5
    assert written["severity"]["update_every_minutes"] == 15
    with pytest.raises(IncidentError, match="already resolved"):
        incidents.resolve(inc.id, store=store)
    with pytest.raises(IncidentError, match="already SEV-1"):
        incidents.set_severity(inc.id, 1, store=store)
    reopened = incidents.set_status(inc.id, "investigating", store=store)
    assert reopened.data == {"from": "resolved", "to": "investigating"}
    assert store.load(inc.id).resolved_at is None


def test_bad_input_is_refused_before_anything_is_written(store: Store) -> None:
    inc = incidents.open_incident("Errors", "payments", 2, store=store)
    size = (store.root / inc.id / "events.jsonl").stat().st_size
    for call in (
        lambda: incidents.open_incident("x", "payments", "SEV-5", store=store),
        lambda: incidents.open_incident("", "payments", 2, store=store),
        lambda: incidents.assign(inc.id, "chef", "@x", store=store),
        lambda: incidents.set_status(inc.id, "done", store=store),
        lambda: incidents.record(inc.id, "status", to="resolved", store=store),
        lambda: incidents.record(inc.id, "gossip", text="x", store=store),
        lambda: incidents.load("INC-0042", store=store),
        lambda: incidents.load("42", store=store),
    ):
        with pytest.raises(IncidentUsageError):
            call()
    assert (store.root / inc.id / "events.jsonl").stat().st_size == size
    assert [i.id for i in store.incidents()] == [inc.id]


def test_open_or_get_and_open_for_service(store: Store) -> None:
    assert incidents.open_for_service("payments", store=store) is None
    first, created = incidents.open_or_get("Errors", "payments", 2, store=store)
    again, created_again = incidents.open_or_get("Errors again", "payments", 2, store=store)
    assert created and not created_again and again.id == first.id
    other = incidents.open_incident("Catalog down", "catalog", 1, store=store)
    found = incidents.open_for_service("payments", store=store)
    assert found is not None and found.id == first.id
    incidents.resolve(first.id, store=store)
    assert incidents.open_for_service("payments", store=store) is None
    assert [i.id for i in incidents.list_incidents(open_only=True, store=store)] == [other.id]
    record = incidents.record(other.id, "alert", name="HighErrorRate", status="firing",
                              labels={"service": "catalog"}, store=store)  # fmt: skip
    assert record.kind == "alert" and record.data["labels"] == {"service": "catalog"}


def test_incidents_dir_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPSNB_INCIDENTS", str(tmp_path / "team-incidents"))
    assert incidents.incidents_dir() == tmp_path / "team-incidents"
    assert incidents.incidents_dir(tmp_path / "x") == tmp_path / "x"
    monkeypatch.delenv("OPSNB_INCIDENTS")
    assert incidents.incidents_dir() == Path(os.environ["OPSNB_HOME"]) / "incidents"
    monkeypatch.setenv("OPSNB_USER", "carol")
    assert incidents.whoami() == "carol"


def test_the_open_incident_of_a_service_follows_resolution_and_reopening(store: Store) -> None:
    """Resolved logs are skipped while unchanged; an append (here: reopening) is seen."""
    older = incidents.open_incident("Old outage", "payments", "SEV-3", store=store)
    incidents.resolve(older.id, summary="fixed", store=store)
    current = incidents.open_incident("Errors", "payments", "SEV-2", store=store)
    for _ in range(2):  # the second time from what the first remembered
        assert incidents.open_for_service("payments", store=store).id == current.id
    incidents.resolve(current.id, summary="rolled back", store=store)
    assert incidents.open_for_service("payments", store=store) is None
    assert incidents.open_for_service("payments", store=store) is None
    incidents.set_status(older.id, "investigating", store=store)  # it came back
    assert incidents.open_for_service("payments", store=store).id == older.id
    assert [i.id for i in store.incidents()] == [older.id, current.id]
