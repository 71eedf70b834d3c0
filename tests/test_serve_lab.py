"""An alert from the lab's bad deploy runs high-error-rate through opsnb serve, read-only,
and the run's summary reaches a chat webhook."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from labtools import error_rate, kube_requests, mutating, wait_until
from test_serve_support import AUTH, TOKEN, Receiver, alert, payload, wait_for

from opsnb.serve import settings as serve_settings
from opsnb.serve.app import WEBHOOK_PATH, create_app


def test_bad_deploy_alert_is_diagnosed_without_changing_anything(lab, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("OPSNB_SERVE_TOKEN", TOKEN)
    receiver = Receiver()
    settings = serve_settings.parse(
        {
            "data_dir": str(tmp_path / "data"),
            "pool_size": 1,
            "target_routes": [{"match": {"namespace": "production"}, "target": "lab"}],
            "notify": [{"url": receiver.url, "name": "chat"}],
        }
    )
    app = create_app(settings)
    httpx.post(f"{lab.kube.url}/_test/reset-requests", timeout=5)
    lab.inject("bad-deploy")
    try:
        wait_until("the error rate to pass 5%", lambda: (error_rate(lab) or 0) > 0.05)
        with TestClient(app) as client:
            body = payload(
                alert(
                    "bad0de910e",
                    runbook="high-error-rate",
                    service="my-service",
                    namespace="production",
                    severity="critical",
                )
            )
            answer = client.post(WEBHOOK_PATH, json=body, headers=AUTH)
            assert answer.status_code == 200, answer.text
            (outcome,) = answer.json()["alerts"]
            assert outcome["disposition"] == "queued"
            run_id = outcome["run"]

            def finished() -> dict | None:
                run = client.get(f"/api/v1/runs/{run_id}").json()
                return run if run["run"]["status"] not in ("queued", "running") else None

            detail = wait_for("the run to finish", finished, timeout=240)
            run, result = detail["run"], detail["result"]
            assert run["status"] == "ok", run["error"]
            assert run["target"] == "lab" and run["apply"] == 0
            assert result["parameters"]["apply"] is False
            assert result["findings"][0]["cause"] == "recent-deployment"
            assert [a["outcome"] for a in result["actions"]] == ["previewed"]
            page = client.get(f"/runs/{run_id}")
            assert page.status_code == 200 and "recent-deployment" in page.text
            (message,) = wait_for("the notification", lambda: receiver.received, timeout=30)
            assert "recent-deployment" in message["text"] and f"/runs/{run_id}" in message["text"]
        seen = kube_requests(lab)
        assert [r for r in seen if r["dry_run"]], "the rollback preview was not a server dry run"
        assert mutating(seen) == []
    finally:
        lab.clear()
        receiver.close()


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch):
    monkeypatch.delenv("OPSNB_CONFIG", raising=False)
