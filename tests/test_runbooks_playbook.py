"""The incident playbook's runbooks: severity-check, investigate and verify-resolution, on the
recorded demo incidents, under plain papermill, and against the lab with a real bad deploy."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest

from opsnb import catalog
from opsnb.promql import render
from opsnb.records import CHECK_MIME, FINDING_MIME, scan
from opsnb.severity import Impact, classify

BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[1]
RUNBOOKS = ("severity-check", "investigate", "verify-resolution")
ERRORS = render("error_rate", service="my-service", window="20s")
VERIFICATIONS = (
    "Error rate below the SLO", "p99 latency below the SLO", "All pods ready",
    "Alerts firing for the service",
)  # fmt: skip


def run(runbook: str, *args: str, timeout: float = 300) -> tuple[subprocess.CompletedProcess, Any]:
    done = subprocess.run(
        [str(BIN / "opsnb"), "run", runbook, *args], capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr[-3000:]
    run_dir = Path(done.stdout.strip().splitlines()[-1])
    result = json.loads((run_dir / "result.json").read_text())
    assert done.returncode == 0 and result["status"] == "ok", (result["error"], result["checks"])
    result["_dir"] = run_dir
    return done, result


def checks(result: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {c["name"]: c for c in result["checks"]}


def status(result: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in result["checks"]}


def causes(result: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f["cause"], f["recommendation"]) for f in result["findings"]]


def percent(detail: str) -> float:
    """The first percentage in a check's detail, as a share."""
    match = re.search(r"(\d+(?:\.\d+)?)%", detail)
    assert match, detail
    return float(match.group(1)) / 100


# --- conventions ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", RUNBOOKS)
def test_runbooks_follow_the_conventions(name):
    path = ROOT / "runbooks" / f"{name}.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata["tags"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert all(len(c.source.splitlines()) <= 8 for c in code[1:]), "cells stay short"
    runbook = catalog.load(path)
    params = runbook.parameters
    assert params["target"].default == "demo" and params["service"].default == ""
    assert "apply" not in params  # these runbooks only read
    assert all(p.help for p in params.values())
    assert runbook.description == nb.metadata["opsnb"]["description"]


def test_verify_resolution_parameters():
    params = catalog.load(ROOT / "runbooks" / "verify-resolution.ipynb").parameters
    assert (params["window_minutes"].type, params["window_minutes"].default) == ("int", 5)
    assert (params["settle_seconds"].type, params["settle_seconds"].default) == ("int", 0)


# --- the demo -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "service, error_rate, cause",
    [("payments", "16.30%", "db-connection-pool-exhausted"),
     ("catalog", "10.68%", "recent-deployment")],
)  # fmt: skip
def test_severity_check_on_the_demo(tmp_path, service, error_rate, cause):
    """payments at 14:30 is a significant degradation: 16.30% of requests fail, more than
    the playbook's 10% -> SEV-2. So is catalog after its bad release (10.68%)."""
    done, result = run("severity-check", "-p", "service", service, "--out", str(tmp_path))
    found = checks(result)
    assert found["Error rate against the alert threshold"]["detail"].startswith(error_rate)
    severity = found["severity"]
    assert severity["detail"].startswith(
        f"SEV-2 (Major): {error_rate} of requests failing (more than 10%)"
    )
    assert severity["status"] == "fail"
    # the level is the model's for the measured error rate
    assert classify(Impact(error_rate=percent(error_rate))).label == "SEV-2"
    assert found["Deployment status"]["status"] == "ok"
    # snapshots record neither alerts nor 30 days of metrics: unavailable, and said so
    assert found["Alerts firing for the service"]["status"] == "unavailable"
    assert found["Availability over the SLO period (30d)"]["status"] == "unavailable"
    assert "not measured: SLO-period availability" in severity["detail"]
    assert causes(result)[0][0] == cause
    html = (result["_dir"] / "severity-check.html").read_text()
    for text in ("Time to Acknowledge", "15 minutes", "Every 30 minutes", "Yes, within 1 week",
                 "Title: [SEV-2] " + service):  # fmt: skip
        assert text in html


def test_investigate_on_the_demo(tmp_path):
    """payments at 14:30: the pool is exhausted; the report has every section."""
    done, result = run("investigate", "--out", str(tmp_path))
    found = status(result)
    sections = [
        "Deployment status", "Rollouts in the window", "Error rate against the alert threshold",
        "p99 latency against the SLO", "Pods ready", "Events", "CPU and memory per pod",
        "Errors in the logs, last 10 min", "Error log breakdown", "PostgreSQL connections",
        "Long-running queries (over 300 s)", "Redis cache",
    ]  # fmt: skip
    assert [s for s in sections if s not in found] == []
    assert any(name.startswith("Dependency ") for name in found)
    # no per-pod container metrics in the recorded snapshot
    assert found["CPU and memory per pod"] == "unavailable"
    recent = checks(result)["Errors in the logs, last 10 min"]
    assert recent["status"] == "fail" and "PoolTimeoutError" in recent["detail"]
    assert causes(result)[0][0] == "db-connection-pool-exhausted"
    assert result["actions"] == []  # investigating changes nothing
    assert "error" not in found.values()


@pytest.mark.parametrize(
    "service, failing, cause",
    [("payments", {"Error rate below the SLO", "p99 latency below the SLO"},
      "db-connection-pool-exhausted"),
     ("catalog", {"Error rate below the SLO"}, "recent-deployment")],
)  # fmt: skip
def test_verify_resolution_on_the_demo_fails_mid_incident(tmp_path, service, failing, cause):
    done, result = run("verify-resolution", "-p", "service", service, "--out", str(tmp_path))
    found = status(result)
    assert {n for n in VERIFICATIONS if found[n] == "fail"} == failing
    assert found["All pods ready"] == "ok"
    assert found["Alerts firing for the service"] == "unavailable"
    smoke = {n: s for n, s in found.items() if n.startswith("Smoke: ")}
    assert len(smoke) == 3 and set(smoke.values()) == {"ok"}
    # not healthy: the decision tree (looking back an hour) names what is still wrong
    assert causes(result)[0][0] == cause
    assert "healthy" not in [c for c, _ in causes(result)]
    html = (result["_dir"] / "verify-resolution.html").read_text()
    assert "FAIL" in html and "PASS" in html  # the final table


@pytest.mark.parametrize("name", RUNBOOKS)
def test_plain_papermill_runs_the_runbook(tmp_path, name):
    out = tmp_path / "out.ipynb"
    done = subprocess.run(
        [str(BIN / "papermill"), str(ROOT / "runbooks" / f"{name}.ipynb"), str(out),
         "-p", "target", "demo", "--no-progress-bar", "-k", "python3"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    records = list(scan(nbformat.read(str(out), as_version=4)))
    findings = [p for _, mime, p in records if mime == FINDING_MIME]
    assert findings and findings[0]["cause"] == "db-connection-pool-exhausted"
    found = {p["name"]: p for _, mime, p in records if mime == CHECK_MIME}
    assert "error" not in {c["status"] for c in found.values()}
    if name == "severity-check":
        assert found["severity"]["detail"].startswith("SEV-2")


# --- the lab --------------------------------------------------------------------------------


def error_rate(lab) -> float | None:
    result = lab.prometheus.query(ERRORS)
    return float(result[0]["value"][1]) if result else None


def firing_for_service(lab) -> list[str]:
    alerts = httpx.get(f"{lab.prometheus.url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    return [a["labels"]["alertname"] for a in alerts
            if a["state"] == "firing" and a["labels"].get("service") == "my-service"]  # fmt: skip


def wait_until(what: str, probe, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what} (last: {value!r})")


def test_severity_check_and_investigation_of_a_bad_deploy(lab, tmp_path):
    """40% of /api/* requests fail after the bad release: more than 10% -> SEV-2."""
    lab.inject("bad-deploy")
    try:
        wait_until("the error rate to pass 20%", lambda: (error_rate(lab) or 0) > 0.2)
        done, result = run("severity-check", "--target", "lab", "--out", str(tmp_path))
        found = checks(result)
        measured = percent(found["Error rate against the alert threshold"]["detail"])
        assert measured > 0.1
        assert classify(Impact(error_rate=measured)).label == "SEV-2"
        assert found["severity"]["detail"].startswith(
            f"SEV-2 (Major): {measured:.2%} of requests failing (more than 10%)"
        )
        assert found["Deployment status"]["status"] == "ok"  # the bad pods are ready
        assert found["Alerts firing for the service"]["status"] in ("ok", "fail")  # measured
        assert found["Availability over the SLO period (30d)"]["status"] in ("ok", "fail")
        assert (causes(result)[0]) == ("recent-deployment", "rollback")

        # and the investigation finds the release, live: its errors in the logs, its rollout
        done, result = run("investigate", "--target", "lab", "--out", str(tmp_path))
        found = checks(result)
        assert "error" not in {c["status"] for c in found.values()}, result["checks"]
        recent = found["Errors in the logs, last 10 min"]
        assert recent["status"] == "fail" and "BadDeployError" in recent["detail"]
        assert found["Rollouts in the window"]["detail"].startswith("revision ")
        assert found["PostgreSQL connections"]["status"] in ("ok", "warn")
        assert causes(result)[0] == ("recent-deployment", "rollback")
    finally:
        lab.clear()


def test_verify_resolution_fails_during_a_bad_deploy_and_passes_after_it(lab, tmp_path):
    lab.inject("bad-deploy")
    try:
        wait_until("the error rate to pass 5%", lambda: (error_rate(lab) or 0) > 0.05)
        done, result = run("verify-resolution", "--target", "lab", "--out", str(tmp_path))
        found = checks(result)
        assert found["Error rate below the SLO"]["status"] == "fail"
        assert percent(found["Error rate below the SLO"]["detail"]) > 0.05
        assert found["All pods ready"]["status"] == "ok"
        assert causes(result)[0] == ("recent-deployment", "rollback")
    finally:
        lab.clear()

    wait_until("the error rate to fall below 0.1%",
               lambda: (rate := error_rate(lab)) is not None and rate < 0.001, 90)  # fmt: skip
    wait_until("no alert firing for my-service", lambda: not firing_for_service(lab), 60)
    done, result = run("verify-resolution", "--target", "lab", "--out", str(tmp_path))
    found = status(result)
    verified = [n for n in found if n in VERIFICATIONS or n.startswith("Smoke: ")]
    assert sorted(verified) == sorted([*VERIFICATIONS, "Smoke: database", "Smoke: cache",
                                       "Smoke: payments-provider"])  # fmt: skip
    assert {found[n] for n in verified} == {"ok"}, result["checks"]
    assert causes(result) == [("healthy", "none")]
    # nothing to diagnose when every verification passed
    assert "Rollouts in the window" not in found

    # The same healthy service assessed: no impact now is SEV-4, even with the 30-day SLO
    # spent by the bad deploy this test made.
    done, result = run("severity-check", "--target", "lab", "--out", str(tmp_path))
    found = checks(result)
    assert found["Availability over the SLO period (30d)"]["status"] == "fail"
    assert found["severity"]["status"] == "ok"
    assert found["severity"]["detail"].startswith("SEV-4 (Low): no impact now: error rate 0.00%")
    assert "error budget spent" in found["severity"]["detail"]
    assert causes(result) == [("healthy", "none")]
