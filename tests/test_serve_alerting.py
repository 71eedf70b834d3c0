"""The whole alert path with real components and the shipped wiring: a lab fault makes the
shipped Prometheus rule fire in real Prometheus, real Alertmanager (configured from the
shipped alertmanager.yml) posts the webhook to a real ``opsnb serve`` with the bearer token
from a file, and the alert's runbook runs against the lab. When the fault is fixed, the alert
resolves, Alertmanager says so, and verify-resolution runs and passes.

The shipped rules use production windows (5 m rates, 2 m ``for``); the lab's five minutes are
20 s. ``lab_speed`` changes those durations and nothing else, which a test here checks."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest
import yaml
from labtools import error_rate, kube_requests, mutating, wait_healthy, wait_until
from test_serve_support import TOKEN, ServeProcess

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_RULES = ROOT / "deploy" / "prometheus" / "opsnb-alerts.yaml"
SHIPPED_ALERTMANAGER = ROOT / "deploy" / "alertmanager" / "alertmanager.yml"
# Production duration -> lab duration (the lab's rate window is 20 s, its hour a minute).
LAB_WINDOWS = {"[5m]": "[20s]", "[1h]": "[1m]"}
LAB_FOR = "5s"
SETTLE_SECONDS = 25  # verify-resolution waits for one 20 s rate window past the fix


def lab_speed(rules_yaml: str) -> dict[str, Any]:
    """The shipped rules with the lab's windows and ``for`` durations."""
    rules = yaml.safe_load(rules_yaml)
    for group in rules["groups"]:
        for rule in group["rules"]:
            for production, lab in LAB_WINDOWS.items():
                rule["expr"] = rule["expr"].replace(production, lab)
            rule["for"] = LAB_FOR
    return rules


def test_the_lab_rules_are_the_shipped_rules_at_lab_speed() -> None:
    """The lab fires its own copy of the rules (with links to local runbooks): same alerts,
    same expressions at lab windows, same labels and summaries as what users deploy."""
    from opsnb.lab.orchestrator import alert_rules

    def by_name(rules: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {r["alert"]: r for g in rules["groups"] for r in g["rules"]}

    shipped = by_name(lab_speed(SHIPPED_RULES.read_text()))
    lab = by_name(yaml.safe_load(alert_rules()))
    assert set(lab) == set(shipped)
    for name, rule in lab.items():
        expected = shipped[name]
        assert " ".join(rule["expr"].split()) == " ".join(expected["expr"].split()), name
        assert rule["labels"] == expected["labels"], name
        assert rule["annotations"]["summary"] == expected["annotations"]["summary"], name
        assert rule["annotations"]["runbook_url"].endswith(f"/{rule['labels']['runbook']}.ipynb")


def alertmanager_config(serve_url: str, token_file: Path) -> dict[str, Any]:
    """The shipped Alertmanager config pointed at this ``opsnb serve``, with the lab's
    timing (no 30 s group wait) and the token file in place of the mounted secret."""
    config = yaml.safe_load(SHIPPED_ALERTMANAGER.read_text())
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = re.sub(r"^https?://[^/]+", serve_url, hook["url"])
            hook["http_config"]["authorization"]["credentials_file"] = str(token_file)

    def quicken(route: dict[str, Any]) -> None:
        route.update(group_wait="1s", group_interval="1s")
        for child in route.get("routes", []):
            quicken(child)

    quicken(config["route"])
    return config


def test_lab_speed_changes_only_the_durations() -> None:
    shipped = yaml.safe_load(SHIPPED_RULES.read_text())
    fast = lab_speed(SHIPPED_RULES.read_text())
    pairs = [
        (a, b)
        for ga, gb in zip(shipped["groups"], fast["groups"], strict=True)
        for a, b in zip(ga["rules"], gb["rules"], strict=True)
    ]
    assert {a["alert"] for a, _ in pairs} == {
        "HighErrorRate", "HighLatency", "DatabaseConnectionPoolExhausted", "PodCrashLooping"
    }  # fmt: skip
    for original, changed in pairs:
        assert {k: v for k, v in changed.items() if k not in ("expr", "for")} == {
            k: v for k, v in original.items() if k not in ("expr", "for")
        }
        back = changed["expr"]
        for production, lab in LAB_WINDOWS.items():
            back = back.replace(lab, production)
        assert back == original["expr"]
        # every range in the shipped rules has a lab equivalent
        assert not re.search(r"\[\d+[smhd]\]", changed["expr"].replace("[20s]", "").replace(
            "[1m]", "")), changed["expr"]  # fmt: skip


@pytest.fixture
def wired(lab, tmp_path: Path):
    """Prometheus on the shipped rules, Alertmanager on the shipped receiver, and an
    ``opsnb serve`` routing the lab's alerts to target ``lab``; all put back afterwards."""
    config = tmp_path / "opsnb.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "serve": {
                    "target_routes": [{"match": {"service": "my-service"}, "target": "lab"}],
                    "repeat_interval": 3600,
                    "still_firing_after": 0,
                    "resolution_settle_seconds": SETTLE_SECONDS,
                    "pool_size": 1,
                    "concurrency": 1,
                }
            }
        )
    )
    serve = ServeProcess(tmp_path / "serve-data", config).start()
    token_file = tmp_path / "opsnb-token"
    token_file.write_text(TOKEN + "\n")  # a mounted secret ends with a newline more often than not
    rules = tmp_path / "shipped-rules.yml"
    rules.write_text(yaml.safe_dump(lab_speed(SHIPPED_RULES.read_text()), sort_keys=False))
    assert lab.prometheus is not None and lab.alertmanager is not None
    lab_rules = list(lab.prometheus.rule_files)
    lab_am = lab.alertmanager.config_path.read_text()
    try:
        wait_healthy(lab)
        # An alert of an earlier test still active in Alertmanager would be sent to serve as
        # soon as the receiver changes, and its fingerprint is the one this test fires.
        wait_until("no alert active in Alertmanager", lambda: not active_alerts(lab), timeout=90)
        lab.prometheus.reconfigure(rule_files=[rules])
        lab.alertmanager.config_path.write_text(
            yaml.safe_dump(alertmanager_config(serve.url, token_file), sort_keys=False)
        )
        lab.alertmanager.reload()
        yield serve
    finally:
        lab.clear()
        lab.prometheus.reconfigure(rule_files=lab_rules)
        lab.alertmanager.config_path.write_text(lab_am)
        lab.alertmanager.reload()
        serve.stop()


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def active_alerts(lab: Any) -> list[dict[str, Any]]:
    url = f"{lab.alertmanager.url}/api/v2/alerts"
    return list(httpx.get(url, params={"active": "true"}, timeout=5).json())


def runs(serve: ServeProcess) -> list[dict[str, Any]]:
    return list(httpx.get(f"{serve.url}/api/v1/runs", timeout=10).json()["runs"])


def finished_run(serve: ServeProcess, alertname: str, kind: str) -> dict[str, Any] | None:
    for run in runs(serve):
        if run["alertname"] == alertname and run["kind"] == kind:
            return run if run["status"] not in ("queued", "running") else None
    return None


def test_a_fault_fires_the_shipped_rule_and_serve_diagnoses_then_verifies(lab, wired) -> None:
    serve = wired
    injected = datetime.now(UTC)
    lab.inject("bad-deploy")
    httpx.post(f"{lab.kube.url}/_test/reset-requests", timeout=5)  # after the bad release
    wait_until("the error rate to pass 1%", lambda: (error_rate(lab) or 0) > 0.01, lab=lab)

    diagnosis = wait_until(
        "Alertmanager's webhook to be diagnosed",
        lambda: finished_run(serve, "HighErrorRate", "diagnosis"),
        timeout=150,
        lab=lab,
    )
    assert diagnosis["status"] == "ok", diagnosis["error"]
    assert (diagnosis["runbook"], diagnosis["target"], diagnosis["apply"]) == (
        "high-error-rate", "lab", 0
    )  # fmt: skip
    alerts = httpx.get(f"{serve.url}/api/v1/alerts", timeout=10).json()["alerts"]
    received = next(a for a in alerts if a["run_id"] == diagnosis["id"])
    assert received["labels"]["runbook"] == "high-error-rate"  # the shipped rule's label
    assert received["generator_url"].startswith(lab.prometheus.url)  # from real Prometheus
    assert when(received["starts_at"]) >= injected - timedelta(seconds=1)  # this fault's alert
    detail = httpx.get(f"{serve.url}/api/v1/runs/{diagnosis['id']}", timeout=10).json()
    result = detail["result"]
    assert result["findings"][0]["cause"] == "recent-deployment", result["findings"]
    # the alert's labels and start are the runbook's parameters
    assert result["parameters"]["service"] == "my-service"
    assert result["parameters"]["alertname"] == "HighErrorRate"
    assert when(result["parameters"]["starts_at"]) == when(received["starts_at"])
    assert [a["outcome"] for a in result["actions"]] == ["previewed"]
    assert mutating(kube_requests(lab)) == []  # automated: nothing changed in the cluster
    page = httpx.get(f"{serve.url}/runs/{diagnosis['id']}", timeout=10)
    assert page.status_code == 200 and "recent-deployment" in page.text
    notebook = httpx.get(f"{serve.url}/runs/{diagnosis['id']}/notebook", timeout=10)
    nbformat.validate(nbformat.reads(notebook.text, as_version=4))
    assert "image/png" in notebook.text  # the charts are in the executed notebook

    lab.clear()  # the fix: the good release rolled forward
    verified = wait_until(
        "the resolved alert to be verified",
        lambda: finished_run(serve, "HighErrorRate", "verify"),
        timeout=150,
        lab=lab,
    )
    assert verified["status"] == "ok", verified["error"]
    assert verified["fingerprint"] == diagnosis["fingerprint"]
    assert verified["runbook"] == "verify-resolution"
    result = httpx.get(f"{serve.url}/api/v1/runs/{verified['id']}", timeout=10).json()["result"]
    assert result["parameters"]["settle_seconds"] == SETTLE_SECONDS
    assert [f["cause"] for f in result["findings"]] == ["healthy"], result["checks"]
    assert {c["status"] for c in result["checks"]} == {"ok"}, result["checks"]
    # one diagnosis for the firing alert, however often Alertmanager repeated it
    assert [r["kind"] for r in runs(serve) if r["alertname"] == "HighErrorRate"] == [
        "verify", "diagnosis"
    ]  # fmt: skip
