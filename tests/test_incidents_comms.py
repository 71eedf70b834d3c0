"""The playbook's messages: rendered from the incident's state, posted to a local HTTP
receiver (a Slack-compatible webhook and a status page API), recorded on the timeline."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from opsnb import incidents
from opsnb.cli import main
from opsnb.errors import ConfigError
from opsnb.incidents import Store
from opsnb.incidents.comms import Details, load_notifications, parse_notifications, render, send

T0 = datetime(2026, 3, 2, 14, 0, tzinfo=UTC)
HOOK_TOKEN = "hook-token-s3cret"
PAGE_TOKEN = "page-token-s3cret"


class Receiver(ThreadingHTTPServer):
    requests: list[dict[str, Any]]


class Handler(BaseHTTPRequestHandler):
    server: Receiver

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests.append({
            "method": self.command, "path": self.path, "body": json.loads(body or b"null"),
            "authorization": self.headers.get("Authorization"),
        })  # fmt: skip
        if self.path.startswith("/broken"):
            self.send_response(500)
            self.end_headers()
            return
        answer = b"ok"
        if self.path.startswith("/pages/") and self.command == "POST":
            answer = json.dumps({"id": "sp-42", "status": "investigating"}).encode()
        self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    do_POST = do_PATCH = _handle

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(("127.0.0.1", 0), Handler)
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def configured(tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Path:
    port = receiver.server_address[1]
    config = tmp_path / "opsnb.yaml"
    config.write_text(
        "notifications:\n"
        "  webhooks:\n"
        f"    - {{url: 'http://127.0.0.1:{port}/hooks/incidents', token: {{env: HOOK_TOKEN}},"
        " name: incidents}\n"
        f"  status_page: {{url: 'http://127.0.0.1:{port}/pages/p1/incidents',"
        " token: {env: PAGE_TOKEN}, component_ids: [c1]}\n"
    )
    monkeypatch.setenv("OPSNB_CONFIG", str(config))
    monkeypatch.setenv("HOOK_TOKEN", HOOK_TOKEN)
    monkeypatch.setenv("PAGE_TOKEN", PAGE_TOKEN)
    return config


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "incidents", clock=lambda: T0)


def an_incident(store: Store) -> str:
    inc = incidents.open_incident(
        "Checkout errors", "payments", "SEV-2", target="prod",
        impact="Card payments failing for about 15% of users", war_room="https://meet/inc",
        store=store, at=T0,
    )  # fmt: skip
    incidents.assign(inc.id, "ic", "alice", store=store, at=T0 + timedelta(minutes=2))
    return inc.id


def test_declared_and_update_carry_the_playbooks_fields(store: Store) -> None:
    inc_id = an_incident(store)
    declared = render(store.load(inc_id), "declared").text.splitlines()
    assert declared == [
        ":rotating_light: **INCIDENT DECLARED**",
        f"**Incident**: {inc_id} Checkout errors (payments)",
        "**Severity**: SEV-2 (Major)",
        "**Impact**: Card payments failing for about 15% of users",
        "**Status**: Investigating",
        "**IC**: @alice",
        "**War Room**: https://meet/inc",
    ]
    incidents.record(inc_id, "finding", cause="db-connection-pool-exhausted",
                     recommendation="scale-up", evidence=["156 waiting"], store=store)  # fmt: skip
    incidents.set_status(inc_id, "identified", store=store)
    update = render(store.load(inc_id), "update", now=T0 + timedelta(minutes=31),
                    details=Details(eta="15:30 UTC")).text  # fmt: skip
    assert update.startswith(":information_source: **STATUS UPDATE** - 14:31 UTC\n")
    assert "**Current Status**: Identified" in update
    assert ("**Progress**: identified db-connection-pool-exhausted (recommended: scale-up); "
            "status identified") in update  # fmt: skip
    assert "**Next Steps**: Scale up the service" in update
    assert "**ETA**: 15:30 UTC" in update
    custom = render(store.load(inc_id), "update", details=Details(progress="p", next_steps="n"))
    assert "**Progress**: p\n**Next Steps**: n\n**ETA**: Unknown" in custom.text


def test_resolution_and_customer_texts(store: Store) -> None:
    inc_id = an_incident(store)
    with pytest.raises(incidents.IncidentUsageError, match="not resolved"):
        render(store.load(inc_id), "resolved")
    investigating = render(store.load(inc_id), "customer-investigating").text
    assert investigating == (
        "We are currently investigating reports of checkout errors.\n"
        "Some users may experience card payments failing for about 15% of users. "
        "We will provide updates as we learn more."
    )
    identified = render(store.load(inc_id), "customer-identified",
                        details=Details(eta="15:30 UTC", issue="failed payments")).text  # fmt: skip
    assert identified == (
        "We have identified the cause of failed payments.\n"
        "Our team is working on a fix. We expect to have this resolved by 15:30 UTC."
    )
    for text in ("Add pool alert", "Autoscale the pool"):
        incidents.note(inc_id, text, action_item=True, owner="sre", store=store)
    incidents.resolve(inc_id, summary="Scaled payments to 12 replicas", store=store,
                      at=T0 + timedelta(minutes=65))  # fmt: skip
    resolved = render(store.load(inc_id), "resolved").text.splitlines()
    assert resolved[0] == ":white_check_mark: **INCIDENT RESOLVED**"
    assert resolved[2:] == [
        "**Duration**: 1 hour 5 minutes",
        "**Resolution**: Scaled payments to 12 replicas",
        "**Postmortem**: To be scheduled, due by 2026-03-09 15:05 UTC (required within 1 week)",
        "**Action Items**: 2 items identified",
    ]
    scheduled = render(store.load(inc_id), "resolved", details=Details(postmortem="Mar 4 10:00"))
    assert "**Postmortem**: Scheduled for Mar 4 10:00" in scheduled.text
    assert render(store.load(inc_id), "customer-resolved").text == (
        "The issue affecting payments has been resolved.\n"
        "All systems are now operating normally.\n"
        "We apologize for any inconvenience caused."
    )


def test_messages_are_posted_and_recorded(
    store: Store, configured: Path, receiver: Receiver
) -> None:
    inc_id = an_incident(store)
    sent = send(inc_id, "declared", store=store, post_it=True, by="carol")
    assert not sent.failed and sent.event is not None
    (hook,) = receiver.requests
    assert hook["path"] == "/hooks/incidents" and hook["method"] == "POST"
    assert hook["authorization"] == f"Bearer {HOOK_TOKEN}"
    assert hook["body"] == {"text": sent.message.text}
    assert "**Severity**: SEV-2 (Major)" in hook["body"]["text"]

    first = send(inc_id, "customer-investigating", store=store, post_it=True, by="carol")
    incidents.set_status(inc_id, "identified", store=store)
    second = send(inc_id, "customer-identified", store=store, post_it=True, by="carol",
                  details=Details(eta="15:30 UTC"))  # fmt: skip
    assert not first.failed and not second.failed
    created, updated = receiver.requests[1:]
    assert (created["method"], created["path"]) == ("POST", "/pages/p1/incidents")
    assert created["authorization"] == f"OAuth {PAGE_TOKEN}"
    assert created["body"]["incident"]["status"] == "investigating"
    assert created["body"]["incident"]["component_ids"] == ["c1"]
    assert created["body"]["incident"]["name"] == "Checkout errors (payments)"
    assert (updated["method"], updated["path"]) == ("PATCH", "/pages/p1/incidents/sp-42")
    assert updated["body"]["incident"] == {"status": "identified", "body": second.message.text}

    state = store.load(inc_id)
    messages = [e for e in state.events if e.kind == "message"]
    assert [m.data["template"] for m in messages] == [
        "declared", "customer-investigating", "customer-identified"]  # fmt: skip
    assert messages[0].by == "carol" and messages[0].data["text"] == sent.message.text
    assert messages[0].data["deliveries"] == [
        {"channel": "incidents", "ok": True, "status": 201, "error": None}]  # fmt: skip
    assert state.status_page_id == "sp-42" and state.eta == "15:30 UTC"
    assert state.last_update_at == messages[0].at  # the declaration counts as an update
    log = (store.root / inc_id / "events.jsonl").read_text()
    assert HOOK_TOKEN not in log and PAGE_TOKEN not in log
    assert "/hooks/incidents" not in log and "/pages/p1" not in log  # URLs may hold secrets
    assert store.verify(inc_id).ok


def test_a_failed_post_is_reported_and_recorded_and_loses_nothing(
    tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = receiver.server_address[1]
    config = tmp_path / "broken.yaml"
    config.write_text(
        "notifications:\n  webhooks:\n"
        f"    - url: http://127.0.0.1:{port}/broken\n"
        f"    - url: http://127.0.0.1:{closed_port()}/hook\n"
        f"    - url: http://127.0.0.1:{port}/hooks/ok\n"
    )
    monkeypatch.setenv("OPSNB_CONFIG", str(config))
    root = tmp_path / "incidents"
    store = Store(root)
    inc_id = an_incident(store)
    incidents.set_status(inc_id, "mitigating", store=store)
    before = store.load(inc_id)

    result = CliRunner().invoke(main, ["incident", "--dir", str(root), "message", inc_id,
                                       "update", "--post"])  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "**Current Status**: Mitigating" in result.stdout
    assert "FAILED: HTTP 500" in result.stderr and "ConnectError" in result.stderr
    assert "delivered" in result.stderr

    after = store.load(inc_id)
    (message,) = [e for e in after.events if e.kind == "message"]
    deliveries = message.data["deliveries"]
    assert [d["ok"] for d in deliveries] == [False, False, True]
    assert deliveries[0]["status"] == 500 and "ConnectError" in deliveries[1]["error"]
    assert (after.status, after.roles, after.severity) == (
        before.status, before.roles, before.severity)  # fmt: skip
    assert after.events[: len(before.events)] == before.events
    assert store.verify(inc_id).ok


def test_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPSNB_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert load_notifications().webhooks == ()
    with pytest.raises(ConfigError, match="literal secrets"):
        parse_notifications({"webhooks": [{"url": "https://x", "token": "plain"}]})
    with pytest.raises(ConfigError, match="http"):
        parse_notifications({"webhooks": [{"url": "ftp://x"}]})
    with pytest.raises(ConfigError, match="unknown keys"):
        parse_notifications({"pager": {}})
    parsed = parse_notifications({"webhooks": [{"url": {"env": "SLACK_URL"}, "style": "slack"}]})
    assert parsed.webhooks[0].name == "webhook env:SLACK_URL"


def test_slack_style_and_manual_records(
    store: Store, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLACK_URL", f"http://127.0.0.1:{receiver.server_address[1]}/slack")
    config = parse_notifications({"webhooks": [{"url": {"env": "SLACK_URL"}, "style": "slack"}]})
    inc_id = an_incident(store)
    send(inc_id, "declared", store=store, post_it=True, by="x", notifications=config)
    assert receiver.requests[0]["body"]["text"].startswith(":rotating_light: *INCIDENT DECLARED*")
    assert "*Severity*: SEV-2" in receiver.requests[0]["body"]["text"]
    draft = send(inc_id, "update", store=store, by="x")
    assert draft.event is None  # only printed: not sent, not recorded
    by_hand = send(inc_id, "update", store=store, manual=True, by="x")
    assert by_hand.event is not None and by_hand.event.data["manual"] is True
    with pytest.raises(incidents.IncidentUsageError, match="status_page"):
        send(inc_id, "customer-investigating", store=store, post_it=True, by="x",
             notifications=config)  # fmt: skip
