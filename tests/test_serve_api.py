"""opsnb serve in-process: auth, bad input, routing, repeats, resolution, still firing,
the bounded queue, pages and metrics. Runs execute through a stand-in executor here; the
real engine runs in test_serve_runs.py, test_serve_crash.py and test_serve_lab.py."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_serve_support import AUTH, TOKEN, FakeExecutor, Receiver, alert, payload, wait_for

from opsnb.errors import ConfigError
from opsnb.serve import routing
from opsnb.serve import settings as serve_settings
from opsnb.serve.app import WEBHOOK_PATH, create_app
from opsnb.serve.models import Alert

URL = WEBHOOK_PATH


@pytest.fixture(autouse=True)
def _token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPSNB_SERVE_TOKEN", TOKEN)


class Harness:
    def __init__(self, tmp: Path, gate: threading.Event | None = None, **raw: Any) -> None:
        self.root = tmp
        base = {"data_dir": str(tmp / "data"), "default_target": "demo", "pool_size": 0}
        self.settings = serve_settings.parse({**base, **raw})
        self.executor = FakeExecutor(self.settings.runs_dir, gate=gate)
        self.app = create_app(self.settings, executor=self.executor)
        self.service = self.app.state.service
        self.client = TestClient(self.app, raise_server_exceptions=False)

    def post(self, body: Any, headers: dict[str, str] | None = None) -> Any:
        return self.client.post(URL, json=body, headers=AUTH if headers is None else headers)

    def runs(self) -> list[dict[str, Any]]:
        return self.client.get("/api/v1/runs").json()["runs"]

    def finished(self, n: int) -> list[dict[str, Any]]:
        return wait_for(
            f"{n} finished runs",
            lambda: (
                runs if len(runs := [r for r in self.runs() if r["status"] == "ok"]) >= n else None
            ),
        )

    def alerts(self) -> list[dict[str, Any]]:
        return self.client.get("/api/v1/alerts").json()["alerts"]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    made: list[Harness] = []

    def make(gate: threading.Event | None = None, **raw: Any) -> Harness:
        h = Harness(tmp_path / f"h{len(made)}", gate=gate, **raw)
        h.client.__enter__()
        made.append(h)
        return h

    yield make
    for h in made:
        h.client.__exit__(None, None, None)


# --- authentication --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": "Bearer"},
        {"Authorization": f"Bearer {TOKEN}x"},
    ],
)
def test_no_or_wrong_token_is_401_and_nothing_queued(serve, headers):
    h = serve()
    answer = h.post(payload(alert("a1", runbook="high-error-rate", service="payments")), headers)
    assert answer.status_code == 401
    assert "bearer token" in answer.json()["error"]
    assert answer.headers["www-authenticate"] == "Bearer"
    # Even a malformed body is refused for its missing token first.
    assert h.client.post(URL, content=b"{not json", headers=headers).status_code == 401
    assert h.runs() == [] and h.alerts() == []
    assert h.executor.calls == []


def test_token_comes_from_a_secret_reference(tmp_path, monkeypatch):
    secret = tmp_path / "token"
    secret.write_text("from-a-file\n")
    monkeypatch.setenv("OPSNB_SERVE_TOKEN_REF", f"file:{secret}")
    s = serve_settings.load({"data_dir": str(tmp_path / "d")})
    assert s.token.resolve() == "from-a-file"
    monkeypatch.setenv("OPSNB_SERVE_TOKEN_REF", "env:NOT_SET_ANYWHERE")
    with pytest.raises(Exception, match="NOT_SET_ANYWHERE"):
        create_app(serve_settings.load({"data_dir": str(tmp_path / "d")}))
    with pytest.raises(ConfigError, match="literal secrets"):
        serve_settings.parse({"token": "a-literal-token"})


# --- bad input -------------------------------------------------------------------------------


def test_malformed_and_mistyped_bodies_get_a_clear_4xx(serve):
    h = serve()
    cases: list[tuple[bytes, int, str]] = [
        (b"{not json", 400, "malformed JSON"),
        (b"", 400, "malformed JSON"),
        (b"[]", 422, "webhook"),
        (b'"text"', 422, "webhook"),
        (json.dumps({**payload(alert("a1")), "version": "3"}).encode(), 422, "version"),
        (json.dumps({**payload(alert("a1")), "version": 4}).encode(), 422, "version"),
        (
            json.dumps({k: v for k, v in payload(alert("a1")).items() if k != "alerts"}).encode(),
            422,
            "alerts",
        ),
        (json.dumps(payload()).encode(), 422, "alerts"),
        (json.dumps(payload({**alert("a1"), "labels": {"alertname": 3}})).encode(), 422, "labels"),
        (json.dumps(payload({**alert("a1"), "startsAt": "yesterday"})).encode(), 422, "startsAt"),
        (
            json.dumps(payload({**alert("a1"), "fingerprint": "../../etc"})).encode(),
            422,
            "fingerprint",
        ),
        (json.dumps(payload({**alert("a1"), "status": "pending"})).encode(), 422, "status"),
        (json.dumps(payload({**alert("a1"), "labels": {"bad-name": "x"}})).encode(), 422, "labels"),
    ]
    for body, code, words in cases:
        answer = h.client.post(
            URL, content=body, headers={**AUTH, "Content-Type": "application/json"}
        )
        assert answer.status_code == code, (body[:80], answer.text)
        assert words in answer.json()["error"], (body[:80], answer.json())
    assert h.runs() == [] and h.alerts() == []


def test_oversized_body_is_413(serve):
    h = serve(max_body_bytes=2048)
    big = payload(alert("a1", runbook="high-error-rate", annotations={"d": "x" * 4000}))
    answer = h.post(big)
    assert answer.status_code == 413 and "larger than 2048" in answer.json()["error"]
    # A body without Content-Length (chunked) is cut off too.
    chunks = iter([json.dumps(big).encode()[i : i + 500] for i in range(0, 5000, 500)])
    assert h.client.post(URL, content=chunks, headers=AUTH).status_code == 413
    assert h.alerts() == []


@pytest.mark.parametrize(
    "labels, words",
    [
        (
            {"runbook": "no-such-runbook", "service": "payments"},
            "unknown runbook 'no-such-runbook'",
        ),
        ({"runbook": "../../etc/passwd", "service": "payments"}, "is not a runbook name"),
        ({"runbook": "/tmp/x.ipynb", "service": "payments"}, "is not a runbook name"),
        ({"runbook": "high-error-rate", "service": "../../etc"}, "not a plain name"),
        ({"runbook": "high-error-rate", "service": "a;rm -rf /"}, "not a plain name"),
        ({"runbook": "high-error-rate", "service": "$(touch x)"}, "not a plain name"),
        ({"runbook": "high-error-rate", "service": "ghost"}, "ghost"),
        (
            {"runbook": "high-error-rate", "service": "payments", "window_minutes": "soon"},
            "window_minutes",
        ),
    ],
)
def test_bad_alerts_are_recorded_with_the_reason_and_refused(serve, labels, words, tmp_path):
    h = serve()
    answer = h.post(payload(alert("b1", **labels)))
    assert answer.status_code == 422, answer.text
    assert words in answer.json()["error"]
    (recorded,) = h.alerts()
    assert recorded["disposition"] == "rejected" and words in recorded["reason"]
    assert h.runs() == []
    assert sorted(p.name for p in (tmp_path / "h0").iterdir()) == ["data"]


def test_a_bad_alert_beside_a_good_one_is_recorded_and_the_good_one_runs(serve):
    h = serve()
    answer = h.post(
        payload(
            alert("c1", runbook="high-error-rate", service="payments"),
            alert("c2", runbook="nope", service="payments"),
        )
    )
    assert answer.status_code == 200
    dispositions = {a["fingerprint"]: a["disposition"] for a in answer.json()["alerts"]}
    assert dispositions == {"c1": "queued", "c2": "rejected"}
    assert [r["fingerprint"] for r in h.finished(1)] == ["c1"]


def test_an_alert_without_a_runbook_is_acknowledged_and_recorded(serve):
    h = serve()
    answer = h.post(payload(alert("d1", service="payments")))
    assert answer.status_code == 200
    (outcome,) = answer.json()["alerts"]
    assert outcome["disposition"] == "unrouted" and "names no runbook" in outcome["reason"]
    assert h.alerts()[0]["disposition"] == "unrouted"
    assert h.runs() == []


# --- routing ---------------------------------------------------------------------------------


def test_routing_by_label_by_runbook_url_and_by_alertname(serve):
    h = serve(alertname_runbooks={"PodCrashLooping": "pod-crash-looping"})
    by_url = alert(
        "e2",
        service="payments",
        annotations={"runbook_url": "https://git.example/runbooks/high-latency.ipynb"},
    )
    by_fragment = alert(
        "e3",
        service="catalog",
        annotations={"runbook_url": "https://wiki.example/ops#high-error-rate"},
    )
    by_name = alert("e4", service="payments")
    by_name["labels"]["alertname"] = "PodCrashLooping"
    answer = h.post(
        payload(
            alert("e1", runbook="db-connection-pool-exhausted", service="payments"),
            by_url,
            by_fragment,
            by_name,
        )
    )
    assert answer.status_code == 200
    runs = {r["fingerprint"]: r for r in h.finished(4)}
    assert runs["e1"]["runbook"] == "db-connection-pool-exhausted"
    assert runs["e2"]["runbook"] == "high-latency"
    assert runs["e3"]["runbook"] == "high-error-rate" and runs["e3"]["service"] == "catalog"
    assert runs["e4"]["runbook"] == "pod-crash-looping"
    assert all(r["target"] == "demo" and r["apply"] == 0 for r in runs.values())


def test_target_routes_and_declared_parameters_only(serve):
    h = serve(default_target="", target_routes=[{"match": {"env": "staging"}, "target": "demo"}])
    a = alert(
        "f1",
        runbook="high-error-rate",
        service="payments",
        env="staging",
        window_minutes="15",
        severity="critical",
        target="prod",
        apply="true",
    )
    a["annotations"] = {"summary": "errors", "error_threshold": "0.05"}
    unmatched = alert("f2", runbook="high-error-rate", service="payments", env="prod")
    answer = h.post(payload(a, unmatched))
    outcomes = {o["fingerprint"]: o for o in answer.json()["alerts"]}
    assert (
        outcomes["f2"]["disposition"] == "unrouted"
        and "default_target" in (outcomes["f2"]["reason"])
    )
    (run,) = h.finished(1)
    # Only what high-error-rate declares (severity and env are not), converted to its
    # types; target and apply never come from an alert.
    assert run["parameters"] == {
        "service": "payments",
        "window_minutes": 15,
        "error_threshold": 0.05,
        "alertname": "HighErrorRate",
        "starts_at": "2026-11-30T12:00:00Z",
    }
    assert run["target"] == "demo" and run["apply"] == 0


def test_runbook_url_parsing():
    assert routing.runbook_from_url("https://x/runbooks/high-error-rate.ipynb") == (
        "high-error-rate"
    )
    assert routing.runbook_from_url("https://x/blob/main/runbooks/scale.ipynb?plain=1") == "scale"
    assert routing.runbook_from_url("https://wiki/ops/#db-connection-pool-exhausted") == (
        "db-connection-pool-exhausted"
    )
    assert routing.runbook_from_url("https://x/runbooks/logs/") == "logs"


def test_automated_runs_apply_only_where_the_policy_allows(tmp_path, monkeypatch):
    config = tmp_path / "opsnb.yaml"
    snapshot = str(Path(__file__).resolve().parent.parent / "opsnb/demo/incidents")
    config.write_text(
        json.dumps(
            {
                "targets": {
                    "auto": {
                        "snapshot": snapshot,
                        "default_service": "payments",
                        "policy": {"allow_apply": True, "automatic_actions": ["high-error-rate"]},
                    },
                    "strict": {
                        "snapshot": snapshot,
                        "default_service": "payments",
                        "policy": {"allow_apply": True},
                    },
                }
            }
        )
    )
    monkeypatch.setenv("OPSNB_CONFIG", str(config))
    s = serve_settings.parse(
        {
            "data_dir": str(tmp_path / "d"),
            "target_routes": [
                {"match": {"env": "auto"}, "target": "auto"},
                {"match": {"env": "strict"}, "target": "strict"},
            ],
        }
    )
    for env, runbook, applies in [
        ("auto", "high-error-rate", True),
        ("auto", "high-latency", False),
        ("strict", "high-error-rate", False),
    ]:
        a = Alert.model_validate_json(json.dumps(alert("ab", runbook=runbook, env=env)))
        route = routing.route(a, s)
        assert route.problem == "" and route.apply is applies, (env, runbook, route)


# --- grouping and repeats --------------------------------------------------------------------


def test_repeats_within_the_interval_are_recorded_not_rerun(serve):
    h = serve(repeat_interval=3600)
    body = payload(alert("a71", runbook="high-error-rate", service="payments"))
    first = h.post(body).json()["alerts"][0]
    assert first["disposition"] == "queued"
    h.finished(1)
    for _ in range(3):
        again = h.post(body).json()["alerts"][0]
        assert again["disposition"] == "repeat" and again["run"] == first["run"]
        assert "repeat interval" in again["reason"]
    # The same alert twice in one request: one run.
    two = h.post(
        payload(
            alert("a72", runbook="high-error-rate", service="payments"),
            alert("a72", runbook="high-error-rate", service="payments"),
        )
    )
    assert [a["disposition"] for a in two.json()["alerts"]] == ["queued", "repeat"]
    assert len(h.finished(2)) == 2 and len(h.alerts()) == 6
    assert len(h.executor.calls) == 2


def test_after_the_interval_a_repeat_runs_again(serve):
    h = serve(repeat_interval=0.5)
    body = payload(alert("b81", runbook="high-error-rate", service="payments"))
    assert h.post(body).json()["alerts"][0]["disposition"] == "queued"
    h.finished(1)
    wait_for(
        "the interval to pass",
        lambda: h.post(body).json()["alerts"][0]["disposition"] == "queued",
        timeout=10,
    )
    runs = h.finished(2)
    assert "firing again" in runs[0]["reason"]


def test_resolved_runs_verify_resolution_once(serve):
    h = serve(resolution_settle_seconds=5)
    firing = alert("c91", runbook="high-error-rate", service="payments")
    h.post(payload(firing))
    h.finished(1)
    resolved = payload(
        alert("c91", "resolved", runbook="high-error-rate", service="payments"), status="resolved"
    )
    outcome = h.post(resolved).json()["alerts"][0]
    assert outcome["disposition"] == "queued" and "resolved" in outcome["reason"]
    assert h.post(resolved).json()["alerts"][0]["disposition"] == "repeat"
    runs = h.finished(2)
    verify = runs[0]
    assert verify["kind"] == "verify" and verify["runbook"] == "verify-resolution"
    assert verify["parameters"] == {"service": "payments", "settle_seconds": 5}
    # A resolved alert that never named a runbook is recorded, nothing runs.
    plain = h.post(payload(alert("c92", "resolved", service="payments"), status="resolved"))
    assert plain.json()["alerts"][0]["disposition"] == "unrouted"


def test_still_firing_after_the_configured_time_runs_a_fresh_diagnosis(serve):
    h = serve(still_firing_after=1, max_rediagnoses=1)
    h.post(payload(alert("d01", runbook="high-error-rate", service="payments")))
    runs = h.finished(2)
    fresh = runs[0]
    assert fresh["kind"] == "rediagnosis" and fresh["runbook"] == "high-error-rate"
    assert "still firing" in fresh["reason"] and f"run {runs[1]['id']}" in fresh["reason"]
    # max_rediagnoses bounds it; a resolution stops it.
    h.post(payload(alert("d02", runbook="high-error-rate", service="payments")))
    h.post(
        payload(
            alert("d02", "resolved", runbook="high-error-rate", service="payments"),
            status="resolved",
        )
    )
    import time

    time.sleep(2.5)
    kinds = [(r["fingerprint"], r["kind"]) for r in h.runs()]
    assert kinds.count(("d01", "rediagnosis")) == 1
    assert ("d02", "rediagnosis") not in kinds and ("d02", "verify") in kinds


# --- the bounded queue -----------------------------------------------------------------------


def test_a_full_queue_answers_503_and_records_nothing(serve):
    gate = threading.Event()
    h = serve(gate=gate, queue_size=2, concurrency=1)
    try:
        assert (
            h.post(payload(alert("e11", runbook="high-error-rate", service="payments"))).status_code
            == 200
        )
        wait_for("q1 to start", lambda: h.executor.calls)
        for fp in ("e12", "e13"):
            body = payload(alert(fp, runbook="high-error-rate", service="payments"))
            assert h.post(body).status_code == 200
        full = h.post(payload(alert("e14", runbook="high-error-rate", service="payments")))
        assert full.status_code == 503, full.text
        assert "queue is full" in full.json()["error"] and full.json()["limit"] == 2
        assert "e14" not in {a["fingerprint"] for a in h.alerts()}
        # Repeats and unrouted alerts queue nothing, so they are still accepted.
        repeat = h.post(payload(alert("e11", runbook="high-error-rate", service="payments")))
        assert repeat.status_code == 200
        assert 'opsnb_serve_requests_rejected_total{code="503"} 1.0' in (
            h.client.get("/metrics").text
        )
    finally:
        gate.set()
    assert len(h.finished(3)) == 3


# --- pages, health, metrics, notifications ---------------------------------------------------


def test_pages_health_and_metrics(serve):
    h = serve()
    h.post(payload(alert("f01", runbook="high-error-rate", service="payments")))
    (run,) = h.finished(1)
    page = h.client.get("/runs")
    assert page.status_code == 200 and "recent-deployment" in page.text
    assert f'href="/runs/{run["id"]}"' in page.text
    assert h.client.get(f"/runs/{run['id']}").text == f"<html>run {run['id']}</html>"
    detail = h.client.get(f"/api/v1/runs/{run['id']}").json()
    assert detail["result"] == {"status": "ok"} and detail["links"]["page"].endswith(
        f"/runs/{run['id']}"
    )
    for path in (
        "/runs/999",
        "/runs/0",
        "/runs/-1",
        "/runs/..%2F..%2Fetc%2Fpasswd",
        "/runs/1/../../serve.db",
        f"/runs/{2**70}",
        "/api/v1/runs/abc",
    ):
        answer = h.client.get(path)
        assert 400 <= answer.status_code < 500, (path, answer.status_code)
    health = h.client.get("/healthz").json()
    assert health["status"] == "ok" and health["queued"] == 0
    metrics = h.client.get("/metrics").text
    for line in (
        'opsnb_serve_alerts_received_total{disposition="queued",status="firing"} 1.0',
        'opsnb_serve_runs{status="ok"} 1.0',
        "opsnb_serve_queue_depth 0.0",
        "opsnb_serve_run_duration_seconds_count 1.0",
        "opsnb_serve_pool_size 0.0",
    ):
        assert line in metrics


def test_the_link_for_an_alert_leads_to_its_newest_diagnosis(serve):
    """``/alerts/<fingerprint>`` is what alert notifications link to: a page that waits while
    the diagnosis runs, then the executed notebook; a clear 404 when there is none."""
    gate = threading.Event()
    h = serve(gate=gate)
    try:
        h.post(payload(alert("f0a", runbook="high-error-rate", service="payments")))
        wait_for("the run to start", lambda: h.executor.calls)
        waiting = h.client.get("/alerts/f0a", follow_redirects=False)
        assert waiting.status_code == 200
        assert '<meta http-equiv="refresh"' in waiting.text and "high-error-rate is" in waiting.text
    finally:
        gate.set()
    (run,) = h.finished(1)
    done = h.client.get("/alerts/f0a", follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/runs/{run['id']}"
    assert h.client.get("/alerts/f0a").text == f"<html>run {run['id']}</html>"
    h.post(payload(alert("f0b", runbook="high-error-rate", service="checkout")))
    assert [r["fingerprint"] for r in h.client.get("/api/v1/runs?fingerprint=f0a").json()[
        "runs"]] == ["f0a"]  # fmt: skip
    # an alert that ran nothing says why; one never received says so
    h.post(payload(alert("f0c", service="payments")))
    unrouted = h.client.get("/alerts/f0c")
    assert unrouted.status_code == 404 and unrouted.json()["disposition"] == "unrouted"
    assert "no run" in unrouted.json()["error"]
    unknown = h.client.get("/alerts/ffffffffffffffff")
    assert unknown.status_code == 404 and "was received" in unknown.json()["error"]
    for bad in ("a.b", "..%2F..%2Fserve.db", "x" * 200, "f0a%00", "%24%28id%29"):
        answer = h.client.get(f"/alerts/{bad}")
        assert 400 <= answer.status_code < 500, (bad, answer.status_code)
        assert "<html>" not in answer.text
    assert h.client.get("/api/v1/runs?fingerprint=a.b").status_code == 422


def test_a_run_folder_outside_the_data_folder_is_never_served(serve):
    h = serve()
    h.post(payload(alert("f02", runbook="high-error-rate", service="payments")))
    (run,) = h.finished(1)
    store = h.service.store
    for bad in ("../../../etc", "/etc", "runs/../../outside", "runs"):
        with store._tx() as db:
            db.execute("UPDATE runs SET run_dir=? WHERE id=?", (bad, run["id"]))
        assert h.client.get(f"/runs/{run['id']}").status_code == 404


def test_notifications_are_delivered_and_retried(serve):
    receiver = Receiver(fail_first=2)
    try:
        h = serve(
            notify=[{"url": receiver.url, "name": "chat"}],
            notify_backoff=0.2,
            public_url="https://opsnb.example",
        )
        h.post(payload(alert("f03", runbook="high-error-rate", service="payments")))
        (run,) = h.finished(1)
        (message,) = wait_for("a delivered notification", lambda: receiver.received)
        assert receiver.attempts == 3
        assert "recent-deployment" in message["text"] and message["blocks"]
        assert f"https://opsnb.example/runs/{run['id']}" in message["text"]
        (note,) = wait_for(
            "the notification to be marked sent",
            lambda: [n for n in h.service.store.notifications(run["id"]) if n["status"] == "sent"],
        )
        assert note["attempts"] == 3
    finally:
        receiver.close()


def test_a_notification_that_keeps_failing_never_blocks_or_loses_runs(serve):
    h = serve(
        notify=[{"url": "http://127.0.0.1:9/refused", "name": "down"}],
        notify_backoff=0.05,
        notify_attempts=2,
    )
    for fp in ("f04", "f05"):
        h.post(payload(alert(fp, runbook="high-error-rate", service="payments")))
    assert len(h.finished(2)) == 2
    wait_for(
        "both notifications to fail for good",
        lambda: [n["status"] for n in h.service.store.notifications()] == ["failed", "failed"],
    )
    assert all(n["attempts"] == 2 for n in h.service.store.notifications())


# --- settings --------------------------------------------------------------------------------


def test_settings_from_files_env_and_overrides(tmp_path, monkeypatch):
    config = tmp_path / "serve.yaml"
    config.write_text(
        "serve:\n  port: 9200\n  repeat_interval: 60\n  concurrency: 2\n"
        "  alertname_runbooks: {HighErrorRate: high-error-rate}\n"
    )
    monkeypatch.setenv("OPSNB_CONFIG", str(config))
    monkeypatch.setenv("OPSNB_SERVE_CONCURRENCY", "3")
    s = serve_settings.load({"port": 9300})
    assert (s.port, s.repeat_interval, s.concurrency) == (9300, 60.0, 3)
    assert s.alertname_runbooks == {"HighErrorRate": "high-error-rate"}
    assert s.data_dir == Path(os.environ["OPSNB_HOME"]) / "serve"
    for bad, words in [
        ({"porrt": 1}, "unknown setting"),
        ({"port": "x"}, "number"),
        ({"concurrency": 0}, "at least 1"),
        ({"target_routes": {}}, "list"),
        ({"alertname_runbooks": {"A": "../x"}}, "runbook"),
    ]:
        with pytest.raises(ConfigError, match=words):
            serve_settings.parse(bad)
    table = serve_settings.table()
    assert all(f"`{s.key}`" in table for s in serve_settings.SETTINGS)


# --- generated payloads ----------------------------------------------------------------------

_text = st.text(max_size=40)
_labels = st.dictionaries(
    st.one_of(st.from_regex(r"[a-z_]{1,10}", fullmatch=True), _text),
    st.one_of(
        _text,
        st.sampled_from(
            [
                "../../etc/passwd",
                "a;rm -rf /",
                "$(id)",
                "high-error-rate",
                "payments",
                "`x`",
                "a/b",
                "\x00",
            ]
        ),
    ),
    max_size=5,
)
_alerts = st.fixed_dictionaries(
    {
        "status": st.sampled_from(["firing", "resolved", "x"]),
        "labels": _labels,
        "startsAt": st.sampled_from(["2026-11-30T12:00:00Z", "bad", "2026-11-30T12:00:00+02:00"]),
        "fingerprint": st.one_of(st.from_regex(r"[0-9a-f]{4,16}", fullmatch=True), _text),
    },
    optional={
        "annotations": _labels,
        "endsAt": st.sampled_from(["0001-01-01T00:00:00Z", 3]),
        "generatorURL": _text,
    },
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=10,
)
_payloads = st.fixed_dictionaries(
    {
        "version": st.sampled_from(["4", "4", 4, "5"]),
        "groupKey": _text,
        "status": st.sampled_from(["firing", "resolved"]),
        "receiver": _text,
        "alerts": st.lists(_alerts, max_size=4),
    },
    optional={
        "truncatedAlerts": st.integers(-2, 5),
        "groupLabels": _labels,
        "commonLabels": _labels,
        "externalURL": _json,
        "extra": _json,
    },
)


@settings(max_examples=1000, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.one_of(_payloads, _json))
def test_generated_payloads_never_get_a_5xx(fuzz_harness, body):
    h = fuzz_harness
    # json.dumps writes NaN and Infinity, which are not JSON: those bodies must get a 400.
    answer = h.client.post(URL, content=json.dumps(body).encode(), headers=AUTH)
    assert answer.status_code in (200, 400, 413, 422, 503), answer.text
    assert "error" in answer.json() or "alerts" in answer.json()
    assert sorted(p.name for p in h.root.iterdir()) == ["data"]


@pytest.fixture(scope="module")
def fuzz_harness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OPSNB_SERVE_TOKEN", TOKEN)
        h = Harness(tmp_path_factory.mktemp("fuzz"), queue_size=10_000, repeat_interval=0)
        with h.client:
            yield h


def test_readme_documents_every_setting():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert serve_settings.table() in readme


def test_alerts_go_on_the_timeline_of_the_service_open_incident(serve, tmp_path, monkeypatch):
    from opsnb import incidents

    monkeypatch.setenv("OPSNB_INCIDENTS", str(tmp_path / "incidents"))
    opened = incidents.open_incident("Payment errors", "payments", "SEV-2")
    h = serve()
    answer = h.post(payload(alert("a1", runbook="high-error-rate", service="payments"),
                            alert("a2", runbook="high-error-rate", service="catalog")))  # fmt: skip
    assert answer.status_code == 200, answer.json()
    alerts = [e for e in incidents.load(opened.id).events if e.kind == "alert"]
    assert [(e.data["fingerprint"], e.by) for e in alerts] == [("a1", "alertmanager")]
    assert incidents.verify(opened.id) is not None
