"""A whole incident against the lab, then its postmortem: a bad deploy, the HighErrorRate
alert (Prometheus' real rule), the diagnosis run, a person's note, the applied rollback,
the resolution. The postmortem's figures are checked against Prometheus with queries of
this test's own (raw counters, not the rates the postmortem integrates)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from labtools import below, error_rate, wait_healthy, wait_until

from opsnb import incidents
from opsnb.promql import render

BIN = Path(sys.executable).parent
SERVICE = "my-service"


def opsnb(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [str(BIN / "opsnb"), *args], capture_output=True, text=True, env=env, timeout=300
    )
    return done


def firing(lab: Any) -> dict[str, Any] | None:
    alerts = httpx.get(f"{lab.prometheus.url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    return next(
        (
            a
            for a in alerts
            if a["labels"].get("alertname") == "HighErrorRate" and a["state"] == "firing"
        ),
        None,
    )


def instant(lab: Any, expr: str, at: datetime) -> float:
    answer = httpx.get(
        f"{lab.prometheus.url}/api/v1/query",
        params={"query": expr, "time": at.timestamp()},
        timeout=5,
    ).json()
    result = answer["data"]["result"]
    return float(result[0]["value"][1]) if result else 0.0


def first_breach(lab: Any, before: datetime, limit: float) -> datetime:
    """The start of the error-rate breach going on at ``before`` (1 s resolution)."""
    expr = render("error_rate", service=SERVICE, window="20s")
    start = int(before.timestamp()) - 180
    answer = httpx.get(
        f"{lab.prometheus.url}/api/v1/query_range",
        params={"query": expr, "start": start, "end": before.timestamp(), "step": 1},
        timeout=5,
    ).json()
    values = [(float(t), float(v)) for t, v in answer["data"]["result"][0]["values"]]
    breach = None
    for t, v in values:
        if v > limit and breach is None:
            breach = t
        elif not v > limit:
            breach = None
    assert breach is not None, values[-10:]
    return datetime.fromtimestamp(breach, UTC)


def run(env: dict[str, str], out: Path, *extra: str) -> Path:
    done = opsnb("run", "high-error-rate", "--target", "lab", "--out", str(out), *extra, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return Path(done.stdout.strip().splitlines()[-1])


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def incident(lab, tmp_path_factory) -> dict[str, Any]:
    """The incident, end to end; returns what the test observed along the way."""
    base = tmp_path_factory.mktemp("postmortem-lab")
    root, runs = base / "incidents", base / "runs"
    # Runs started from the CLI attach themselves to the open incident of their service
    # in OPSNB_INCIDENTS: this test's own dir, never the session's shared one.
    env = {**os.environ, "OPSNB_INCIDENTS": str(root), "OPSNB_USER": "@oncall"}
    seen: dict[str, Any] = {"root": root, "env": env, "base": base}
    wait_healthy(lab)
    wait_until("no HighErrorRate left from an earlier fault", lambda: firing(lab) is None)
    # no error at all in the last rate window, so the impact begins with this fault
    wait_until(
        "an error rate under the 0.1% SLO", lambda: below(error_rate(lab), 0.001), timeout=90
    )
    seen["injected"] = datetime.now(UTC)
    lab.inject("bad-deploy")
    try:
        alert = wait_until("HighErrorRate to fire", lambda: firing(lab), timeout=90)
        fired = datetime.now(UTC)
        inc = incidents.open_incident(
            "Checkout errors after the 1.4.3 release",
            SERVICE,
            "SEV-2",
            target="lab",
            by="@oncall",
            at=fired,
            root=root,
        )
        incidents.record(
            inc.id,
            "alert",
            name="HighErrorRate",
            status="firing",
            labels=alert["labels"],
            annotations=alert["annotations"],
            starts_at=alert["activeAt"],
            by="prometheus",
            at=fired,
            root=root,
        )
        incidents.assign(inc.id, "ic", "@alice", by="@alice", root=root)
        diagnosis = run(env, runs)
        incidents.attach_run(diagnosis, inc.id, root=root)  # already attached: no-op
        incidents.note(
            inc.id, "Errors began with the 1.4.3 rollout; rolling back", by="@alice", root=root
        )
        incidents.note(
            inc.id,
            "Alert on the error rate of a new revision",
            action_item=True,
            owner="@bob",
            due="2030-01-10",
            ticket="OPS-42",
            priority="P2",
            by="@alice",
            root=root,
        )
        rollback = run(env, runs, "--apply")
        incidents.attach_run(rollback, inc.id, root=root)
        wait_until(
            "the error rate back within its SLO", lambda: below(error_rate(lab), 0.001), timeout=90
        )
        time.sleep(2)
        resolved = incidents.resolve(
            inc.id, summary="Rolled back to 1.4.2", by="@alice", root=root
        ).when
    finally:
        lab.clear()
    # A rate at t covers the 20 s before it: let Prometheus record one rate window past the
    # resolution (a postmortem is written later than that).
    time.sleep(max(0.0, 23 - (datetime.now(UTC) - resolved).total_seconds()))
    seen.update(id=inc.id, fired=fired, resolved=resolved, diagnosis=diagnosis, rollback=rollback)
    started = time.monotonic()
    done = opsnb("postmortem", inc.id, "--dir", str(root), "--out", str(base / "pm"), env=env)
    seen["seconds"] = time.monotonic() - started
    assert done.returncode == 0, done.stderr[-3000:]
    folder = Path(done.stdout.strip().splitlines()[-1])
    seen.update(
        folder=folder,
        summary=json.loads((folder / "postmortem.json").read_text()),
        markdown=(folder / "postmortem.md").read_text(),
        html=(folder / "postmortem.html").read_text(),
    )
    return seen


def test_the_timeline_has_every_step_in_order(incident):
    rows = incident["summary"]["timeline"]

    def first(predicate) -> int:
        found = [i for i, row in enumerate(rows) if predicate(row)]
        assert found, rows
        return found[0]

    alert = first(lambda r: r["kind"] == "alert" and "HighErrorRate" in r["text"])
    diagnosis = first(lambda r: r["kind"] == "run")
    note = first(lambda r: r["kind"] == "note" and "rolling back" in r["text"])
    rollback = first(lambda r: r["kind"] == "run" and rows.index(r) > note)
    applied = first(lambda r: r["kind"] == "action" and ": applied" in r["text"])
    resolved = first(lambda r: r["kind"] == "status" and r["text"].startswith("Incident resolved"))
    assert alert < diagnosis < note < rollback < applied < resolved
    assert "rollback deployment/my-service: applied" in rows[applied]["text"]
    # the Markdown's timeline table has them in the same order
    md = incident["markdown"]
    table = md[md.index("## Timeline") : md.index("### Timeline Visualization")]
    positions = [
        table.index(rows[i]["text"].replace("|", "\\|"))
        for i in (alert, diagnosis, note, rollback, applied, resolved)
    ]
    assert positions == sorted(positions)
    assert "```mermaid\ngantt" in md and "section Mitigation" in md


def test_impact_and_detection_match_prometheus(lab, incident):
    summary = incident["summary"]
    impact = summary["impact"]
    assert summary["metrics"]["source"].startswith("Prometheus of target 'lab'")
    # Impact start: this test's own scan of the error rate before the alert.
    expected_start = first_breach(lab, incident["fired"], 0.001)
    start = parse(impact["impact_start"])
    assert abs((start - expected_start).total_seconds()) <= 2, (start, expected_start)
    end = parse(impact["window_end"])
    assert abs((end - incident["resolved"]).total_seconds()) < 1
    # Time to detect: the impact start to the alert.
    ttd = next(m for m in summary["detection"] if m["name"] == "Time to detect")
    assert abs(ttd["seconds"] - (incident["fired"] - expected_start).total_seconds()) <= 2
    # the impact began with the injected fault, and the alert came after it
    assert expected_start >= incident["injected"] - timedelta(seconds=2), expected_start
    assert 0 < ttd["seconds"] <= (incident["fired"] - incident["injected"]).total_seconds() + 2
    # Failed and total requests: the raw counters' growth over the window, not the rates
    # the postmortem integrates (the app is one process: its counters never reset).
    errors = f'sum(http_requests_total{{service="{SERVICE}", status=~"5.."}})'
    every = f'sum(http_requests_total{{service="{SERVICE}"}})'
    failed = instant(lab, errors, end) - instant(lab, errors, start)
    total = instant(lab, every, end) - instant(lab, every, start)
    assert failed > 50, failed
    assert impact["failed_requests"] == pytest.approx(failed, rel=0.1)
    assert impact["total_requests"] == pytest.approx(total, rel=0.1)
    assert 1 - impact["availability"] == pytest.approx(failed / total, rel=0.1)
    assert impact["budget_minutes"] == pytest.approx(43.2)
    # The Markdown says the same.
    md = incident["markdown"]
    assert (
        f"| Failed Requests (5xx, from the metrics) | {round(impact['failed_requests']):,} |" in md
    )
    assert "| Time to detect |" in md and "| Automated Alert |" in md


def test_the_appendix_holds_both_runs_notebooks_and_charts(incident):
    folder, summary = incident["folder"], incident["summary"]
    runs = summary["runs"]
    assert [Path(r["run_dir"]).name for r in runs] == [
        incident["diagnosis"].name,
        incident["rollback"].name,
    ]
    for entry in runs:
        assert (folder / entry["notebook"]).is_file() and entry["notebook"].endswith(".ipynb")
        assert (folder / entry["html"]).is_file() and entry["html"].endswith(".html")
        assert entry["figures"], entry
        for figure in entry["figures"]:
            assert (folder / figure["path"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert figure["caption"]
    assert not list(folder.rglob("result.json"))  # copies are not run folders
    html = incident["html"]
    figures = sum(len(r["figures"]) for r in runs)
    assert html.count("data:image/png;base64,") == figures + len(summary["images"])
    assert "<script" not in html
    assert incident["seconds"] < 60
