"""``opsnb incident ...`` end to end, and attaching a real run folder to an incident."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from opsnb import incidents
from opsnb.cli import main
from opsnb.incidents import Store
from opsnb.incidents.model import parse_time

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run folder: the high-error-rate runbook on the demo's payments incident."""
    out = tmp_path_factory.mktemp("runs")
    done = subprocess.run(
        [str(BIN / "opsnb"), "run", "high-error-rate", "--target", "demo", "-p", "service",
         "payments", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return Path(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("OPSNB_USER", "alice")
    monkeypatch.setenv("OPSNB_INCIDENTS", str(tmp_path / "incidents"))
    return tmp_path / "incidents"


def cli(*args: str) -> Result:
    return CliRunner().invoke(main, ["incident", *args])


def test_attach_run_records_findings_and_actions(run_dir: Path, root: Path) -> None:
    result = json.loads((run_dir / "result.json").read_text())
    assert incidents.attach_run(run_dir) is None  # no open incident for payments yet
    inc = incidents.open_incident("Checkout errors", "payments", "SEV-2")
    other = incidents.open_incident("Catalog slow", "catalog", "SEV-3")
    assert incidents.attach_run(run_dir) == inc.id  # the open incident of the run's service
    assert incidents.attach_run(run_dir, inc.id) == inc.id  # attached once only
    state = incidents.load(inc.id)
    assert state.runs == [str(run_dir.resolve())]
    (run,) = [e for e in state.events if e.kind == "run"]
    assert run.data["run_dir"] == str(run_dir.resolve())
    assert run.data["runbook"] == "high-error-rate" and run.data["status"] == "ok"
    assert run.data["html"] == str(run_dir.resolve() / "high-error-rate.html")
    assert run.at.startswith(result["started_at"][:-1])
    findings = [e for e in state.events if e.kind == "finding"]
    assert [(f.data["cause"], f.data["recommendation"]) for f in findings] == [
        (f["cause"], f["recommendation"]) for f in result["findings"]]  # fmt: skip
    assert findings[0].data["cause"] == "db-connection-pool-exhausted"
    assert findings[0].data["evidence"] == result["findings"][0]["evidence"]
    actions = [e for e in state.events if e.kind == "action"]
    assert len(actions) == len(result["actions"]) >= 1
    for event, action in zip(actions, result["actions"], strict=True):
        assert event.by == action["by"]  # who ran it
        assert event.data["dry_run"] is action["dry_run"] is True
        assert event.data["outcome"] == action["outcome"] == "previewed"
        assert (event.data["action"], event.data["object"]) == ("scale", "deployment/payments")
        assert event.data["run_dir"] == str(run_dir.resolve())
    # Attached elsewhere on request, by id or by service.
    assert incidents.attach_run(run_dir, service="catalog") == other.id
    assert incidents.verify(inc.id).ok and incidents.verify(other.id).ok

    shown = cli("show", inc.id)
    assert shown.exit_code == 0, shown.output
    assert "runbook high-error-rate on demo/payments: ok" in shown.output
    assert "finding db-connection-pool-exhausted -> scale-up" in shown.output
    assert "action scale deployment/payments (dry run, previewed)" in shown.output

    update = cli("message", inc.id, "update")
    assert "identified db-connection-pool-exhausted (recommended: scale-up)" in update.output
    assert "scale deployment/payments previewed" in update.output
    assert "**Next Steps**: Scale up the service (recommended by the diagnosis)" in update.output


def test_the_incident_command_end_to_end(root: Path) -> None:
    opened = cli("open", "--title", "Checkout errors", "--service", "payments",
                 "--severity", "SEV-2", "--target", "prod")  # fmt: skip
    assert opened.exit_code == 0, opened.output
    inc_id = opened.stdout.strip().splitlines()[-1]
    assert inc_id == "INC-0001"
    assert "Time to Acknowledge 15 minutes" in opened.stderr

    opened_at = parse_time(incidents.load(inc_id).opened_at)
    soon = cli("show", inc_id, "--now", (opened_at + timedelta(minutes=14)).isoformat())
    assert soon.exit_code == 0 and "overdue: nothing" in soon.output
    late = cli("show", inc_id, "--now", (opened_at + timedelta(minutes=16)).isoformat())
    assert "overdue: acknowledgement" in late.output
    assert "acknowledgement: OVERDUE by 1 minute" in late.output

    steps = [
        ("assign", inc_id, "--role", "ic", "--who", "@bob"),
        ("assign", inc_id, "--role", "scribe", "--who", "carol"),
        ("status", inc_id, "identified"),
        ("note", inc_id, "Pool exhausted; scaling to 12"),
        ("note", inc_id, "Add pool alert", "--action-item", "--owner", "@sre", "--due",
         "2026-12-10", "--ticket", "OPS-1234", "--priority", "P1"),
        ("severity", inc_id, "SEV-1", "--reason", "all checkouts failing"),
        ("correct", inc_id, "E0005", "Pool exhausted; scaled to 12 replicas"),
    ]  # fmt: skip
    for step in steps:
        done = cli(*step)
        assert done.exit_code == 0, (step, done.output)
    assert "E0008: correction of E0005" in done.output

    listed = cli("list", "--open")
    assert listed.exit_code == 0
    assert "INC-0001  SEV-1  identified  payments" in listed.output and "@bob" in listed.output

    shown = cli("show", inc_id)
    assert "INC-0001  SEV-1 (Critical)  identified  Checkout errors" in shown.output
    assert "Incident Commander @bob" in shown.output and "Scribe @carol" in shown.output
    assert "Pool exhausted; scaled to 12 replicas [corrected by E0008]" in shown.output
    assert "AI-1  Add pool alert  @sre   2026-12-10  OPS-1234  P1" in shown.output
    assert "acknowledgement: met at" in shown.output

    # Judged an hour later: the update is overdue and the team was never assembled.
    later = cli("show", inc_id, "--json", "--now", "2099-01-01T00:00:00Z")
    data = json.loads(later.output)
    assert data["overdue"] == ["team assembled", "status update"]
    assert data["incident"]["severity"]["acknowledge_minutes"] == 5
    assert [row["id"] for row in data["timeline"]][:2] == ["E0001", "E0002"]

    resolved = cli("resolve", inc_id, "--summary", "Scaled to 12 replicas")
    assert resolved.exit_code == 0 and "resolved: Scaled to 12 replicas" in resolved.output
    again = cli("resolve", inc_id)
    assert again.exit_code == 1 and "already resolved" in again.stderr
    assert cli("list", "--open").exit_code == 0
    assert "INC-0001" not in cli("list", "--open").output
    message = cli("message", inc_id, "resolved")
    assert "**Action Items**: 1 item identified" in message.output

    verified = cli("verify", inc_id)
    assert verified.exit_code == 0 and "hash chain valid, 9 events" in verified.output


def test_verify_names_the_first_bad_entry(root: Path) -> None:
    inc_id = cli("open", "--title", "t", "--service", "s", "--severity", "4").stdout.split()[-1]
    for n in range(3):
        cli("note", inc_id, f"note {n}")
    log = root / inc_id / "events.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace('"note 1"', '"note one"')
    log.write_text("".join(lines))
    done = cli("verify", inc_id)
    assert done.exit_code == 1
    assert "first bad entry: line 3 (E0003): hash does not match" in done.stderr


def test_bad_input_exits_2(root: Path, tmp_path: Path) -> None:
    assert cli("show", "INC-0404").exit_code == 2
    assert cli("show", "nonsense").exit_code == 2
    assert cli("open", "--title", "t", "--service", "s", "--severity", "SEV-9").exit_code == 2
    inc_id = cli("open", "--title", "t", "--service", "s", "--severity", "3").stdout.split()[-1]
    assert cli("status", inc_id, "done").exit_code == 2
    assert cli("assign", inc_id, "--role", "chef", "--who", "x").exit_code == 2
    assert cli("correct", inc_id, "E0042", "x").exit_code == 2
    assert cli("note", inc_id, "x", "--owner", "@a").exit_code == 2
    assert cli("message", inc_id, "update", "--post", "--record").exit_code == 2
    assert cli("message", inc_id, "update", "--post").exit_code == 2  # nothing configured
    # --dir overrides $OPSNB_INCIDENTS, before or after the command name.
    other = tmp_path / "elsewhere"
    made = cli("--dir", str(other), "open", "--title", "t", "--service", "s", "--severity", "3")
    assert made.exit_code == 0 and (other / "INC-0001" / "events.jsonl").is_file()
    assert cli("show", "INC-0001", "--dir", str(other)).exit_code == 0


def test_registered_on_the_opsnb_command(tmp_path: Path) -> None:
    env = {**os.environ, "OPSNB_INCIDENTS": str(tmp_path / "inc"), "OPSNB_USER": "dave"}
    helped = subprocess.run([str(BIN / "opsnb"), "incident", "--help"], capture_output=True,
                            text=True, env=env, timeout=60)  # fmt: skip
    assert helped.returncode == 0
    for command in ("open", "note", "status", "assign", "severity", "resolve", "show", "list",
                    "verify", "correct", "message", "attach"):  # fmt: skip
        assert f"  {command} " in helped.stdout
    opened = subprocess.run(
        [str(BIN / "opsnb"), "incident", "open", "--title", "t", "--service", "s",
         "--severity", "SEV-3"], capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert opened.returncode == 0, opened.stderr
    assert opened.stdout.strip() == "INC-0001"
    assert Store(tmp_path / "inc").load("INC-0001").opened_by == "dave"
