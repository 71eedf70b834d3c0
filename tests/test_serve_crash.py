"""kill -9 of a real ``opsnb serve`` while alerts are queued and running, then a restart:
every accepted alert is diagnosed exactly once."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from test_serve_support import AUTH, ServeProcess, alert, payload, wait_for

FINGERPRINTS = [f"c0ffee{i:02d}" for i in range(6)]


def runs(service: ServeProcess) -> list[dict]:
    return httpx.get(f"{service.url}/api/v1/runs", timeout=10).json()["runs"]


def all_finished(service: ServeProcess) -> list[dict] | None:
    rows = runs(service)
    return rows if all(r["status"] in ("ok", "error", "failed") for r in rows) else None


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "opsnb.yaml"
    path.write_text(
        json.dumps(
            {
                "serve": {
                    "default_target": "demo",
                    "repeat_interval": 3600,
                    "still_firing_after": 0,
                    "concurrency": 1,
                    "pool_size": 1,
                    "queue_size": 50,
                    "max_attempts": 3,
                }
            }
        )
    )
    return path


def test_kill_9_while_queued_and_running_then_restart_diagnoses_each_alert_once(
    tmp_path: Path, config: Path
) -> None:
    data = tmp_path / "data"
    service = ServeProcess(data, config).start()
    try:
        accepted = []
        for i in range(0, len(FINGERPRINTS), 2):  # three requests of two alerts
            body = payload(
                *(
                    alert(fp, runbook="high-error-rate", service="payments")
                    for fp in FINGERPRINTS[i : i + 2]
                )
            )
            answer = httpx.post(
                f"{service.url}/webhook/alertmanager", json=body, headers=AUTH, timeout=10
            )
            assert answer.status_code == 200, answer.text
            accepted += [
                a["fingerprint"] for a in answer.json()["alerts"] if a["disposition"] == "queued"
            ]
        assert accepted == FINGERPRINTS
        # Crash while one run is running and others wait in the queue.
        wait_for(
            "a run to be running",
            lambda: any(r["status"] == "running" for r in runs(service)),
            timeout=60,
        )
        before = {r["fingerprint"]: r["status"] for r in runs(service)}
        assert "queued" in before.values()
        service.kill9()

        service = ServeProcess(data, config).start()
        done = wait_for(
            "every run to finish after the restart", lambda: all_finished(service), timeout=240
        )
        # Repeats after the restart are recorded, not run again.
        again = httpx.post(
            f"{service.url}/webhook/alertmanager",
            timeout=10,
            headers=AUTH,
            json=payload(alert(FINGERPRINTS[0], runbook="high-error-rate", service="payments")),
        )
        assert again.json()["alerts"][0]["disposition"] == "repeat"
        final = runs(service)
    finally:
        service.stop()

    assert len(done) == len(final) == len(FINGERPRINTS), final
    assert sorted(r["fingerprint"] for r in final) == sorted(FINGERPRINTS)
    assert all(r["status"] == "ok" for r in final), [(r["id"], r["error"]) for r in final]
    interrupted = [r for r in final if before.get(r["fingerprint"]) == "running"]
    assert [r["attempts"] for r in interrupted] == [2]
    # One complete record per alert: the interrupted attempt left no result.json.
    results = sorted((data / "runs").glob("*/result.json"))
    assert len(results) == len(FINGERPRINTS)
    for r in final:
        record = json.loads((data / r["run_dir"] / "result.json").read_text())
        assert record["runbook"] == "high-error-rate" and record["target"] == "demo"
    # Nothing was written outside the data folder.
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("serve-")) == [
        "data",
        "opsnb.yaml",
    ]
