"""The diagnosis runbooks against the faults they are for: each names the cause and the fix."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from labtools import (
    BIN,
    above,
    checks,
    error_rate,
    p99,
    pool_waiting,
    pool_waiting_held,
    primary,
    query,
    run,
    wait_healthy,
    wait_until,
)  # fmt: skip

ROOT = Path(__file__).resolve().parent.parent
DIAGNOSIS = ("high-error-rate", "high-latency", "db-connection-pool-exhausted", "pod-crash-looping")


@pytest.mark.parametrize(
    "runbook, service, expected",
    [
        ("high-latency", "payments", ("db-connection-pool-exhausted", "scale-up")),
        ("high-latency", "catalog", ("recent-deployment", "rollback")),
        ("db-connection-pool-exhausted", "payments", ("db-connection-pool-exhausted", "scale-up")),
        ("db-connection-pool-exhausted", "catalog", ("recent-deployment", "rollback")),
        ("pod-crash-looping", "catalog", ("recent-deployment", "rollback")),
    ],
)
def test_on_the_recorded_incidents(tmp_path, runbook, service, expected):
    done, result = run(runbook, "-p", "service", service, "--out", str(tmp_path))
    assert done.returncode == 0, result["errors"]
    assert primary(result) == expected
    assert all(a["dry_run"] for a in result["actions"])


@pytest.mark.parametrize("runbook", DIAGNOSIS[1:])
def test_under_plain_papermill(tmp_path, runbook):
    done = subprocess.run(
        [str(BIN / "papermill"), str(ROOT / "runbooks" / f"{runbook}.ipynb"),
         str(tmp_path / "out.ipynb"), "-p", "target", "demo", "-p", "service", "catalog",
         "--no-progress-bar", "-k", "python3"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


def test_a_healthy_lab_is_healthy_in_every_diagnosis_runbook(lab, tmp_path):
    lab.clear()
    wait_healthy(lab)
    for runbook in DIAGNOSIS:
        done, result = run(runbook, "--target", "lab", "--out", str(tmp_path))
        assert done.returncode == 0, (runbook, result["errors"])
        assert [f["cause"] for f in result["findings"]] == ["healthy"], (runbook, result["checks"])
        assert result["actions"] == []
        statuses = checks(result)
        assert "unavailable" not in statuses.values(), (runbook, result["checks"])
        assert statuses.get("Error rate against the alert threshold") == "ok"


def test_slow_queries_are_named_by_high_latency(lab, tmp_path):
    lab.inject("slow-queries")
    try:
        wait_until("p99 over the SLO", lambda: above(p99(lab), 0.5))
        done, result = run("high-latency", "--target", "lab", "--out", str(tmp_path))
        assert done.returncode == 0, result["errors"]
        assert primary(result) == ("slow-database-queries", "optimize-query")
        evidence = " ".join(result["findings"][0]["evidence"])
        assert "pg_sleep" in evidence  # the slow statement itself is named
        assert checks(result)["Plan of the slowest query"] in ("ok", "warn")
    finally:
        lab.clear()


def test_pool_exhaustion_is_found_and_terminating_the_holders_frees_the_pool(lab, tmp_path):
    wait_healthy(lab)  # the slow queries of an earlier test are over
    lab.inject("pool-exhaustion")
    try:
        wait_until("requests waiting for a connection for 20 s", lambda: pool_waiting_held(lab),
                   timeout=90, lab=lab)  # fmt: skip
        args = ("--target", "lab", "-p", "long_query_seconds", "3", "--out", str(tmp_path))
        done, result = run("db-connection-pool-exhausted", *args)
        assert done.returncode == 0, result["errors"]
        assert primary(result) == ("db-connection-pool-exhausted", "terminate-long-queries"), (
            result["findings"],
            result["checks"],
        )
        assert [a["outcome"] for a in result["actions"]] == ["previewed"]
        assert lab.active_fault() == "pool-exhaustion"  # the preview terminated nothing
        done, result = run("db-connection-pool-exhausted", *args, "--apply")
        assert [(a["action"], a["outcome"]) for a in result["actions"]] == [
            ("terminate-backends", "applied")
        ]
        wait_until("the pool to recover", lambda: lab.active_fault() == "none", timeout=30)
        wait_until("nothing waiting", lambda: pool_waiting(lab) == 0, timeout=60)
    finally:
        lab.clear()


def test_crash_loop_is_oom_and_raising_the_limit_ends_it(lab, tmp_path):
    lab.inject("crash-loop")
    try:
        wait_until("OOM kills", lambda: any(
            (p.get("status", {}).get("containerStatuses") or [{}])[0].get("restartCount", 0) > 0
            for p in lab.kube.store.list("Pod", "production", "app=my-service")))  # fmt: skip
        done, result = run("pod-crash-looping", "--target", "lab", "--out", str(tmp_path))
        assert done.returncode == 0, result["errors"]
        assert primary(result) == ("oom-killed", "increase-memory-limit")
        assert "recent-deployment" in [f["cause"] for f in result["findings"]]
        done, result = run(
            "pod-crash-looping", "--target", "lab", "--apply", "--out", str(tmp_path)
        )
        assert [(a["action"], a["outcome"]) for a in result["actions"]] == [
            ("set-resources", "applied")
        ]
        limits = lab.deployment()["spec"]["template"]["spec"]["containers"][0]["resources"]
        assert limits["limits"]["memory"] == "512Mi"
        wait_until("the crash loop to end", lambda: lab.active_fault() == "none", timeout=30)
    finally:
        lab.clear()


def test_dependency_down_recommends_the_circuit_breaker_which_stops_the_errors(lab, tmp_path):
    lab.inject("dependency-down")
    try:
        wait_until("checkout failing", lambda: above(error_rate(lab), 0.05))
        done, result = run("high-error-rate", "--target", "lab", "--apply", "--out", str(tmp_path))
        assert done.returncode == 0, result["errors"]
        assert primary(result) == ("dependency-unavailable", "enable-circuit-breaker")
        assert checks(result)["Dependency payments-provider"] == "fail"
        assert [(a["action"], a["outcome"]) for a in result["actions"]] == [("set-env", "applied")]
        env = lab.deployment()["spec"]["template"]["spec"]["containers"][0]["env"]
        assert {"name": "CIRCUIT_BREAKER_ENABLED", "value": "true"} in env
        wait_until("errors to stop", lambda: (e := error_rate(lab, "5s")) is not None and e < 0.01)
    finally:
        lab.clear()


def test_a_traffic_spike_the_service_absorbs_is_healthy_but_noted(lab, tmp_path):
    rate = 'sum(rate(http_requests_total{service="my-service"}[20s]))'
    baseline = wait_until("traffic", lambda: query(lab, rate))
    lab.inject("traffic-spike")
    try:
        # What the runbook sees: the 20 s rate above 2.5x for the last 25 s.
        sustained = f"min_over_time(({rate})[25s:5s])"
        wait_until("3x traffic", lambda: above(query(lab, sustained), 2.5 * baseline), 120)
        done, result = run("high-error-rate", "--target", "lab", "-p", "window_minutes", "2",
                           "--out", str(tmp_path))  # fmt: skip
        assert done.returncode == 0, result["errors"]
        statuses = checks(result)
        assert statuses["Throughput against the start of the window"] == "warn", result["checks"]
        assert primary(result)[0] in ("healthy", "traffic-spike"), result["findings"]
        assert "x the baseline" in " ".join(result["findings"][0]["evidence"])
    finally:
        lab.clear()


def test_an_alerts_start_widens_the_window_to_before_it(tmp_path):
    """opsnb serve passes the alert's name and startsAt: the run says which alert started it,
    and its window reaches back to 10 minutes before the alert began (the demo's now is
    14:30 UTC; a 5-minute window alone would start at 14:25)."""
    done, result = run(
        "high-error-rate", "-p", "window_minutes", "5", "-p", "alertname", "HighErrorRate",
        "-p", "starts_at", "2025-01-15T14:05:00Z", "--out", str(tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, result["errors"]
    notebook = (Path(done.stdout.strip().splitlines()[-1]) / "high-error-rate.ipynb").read_text()
    assert "window 2025-01-15 13:55 to 14:30 UTC" in notebook
    assert "Started by alert HighErrorRate firing since 2025-01-15 14:05:00 UTC" in notebook
    done, result = run("high-error-rate", "-p", "window_minutes", "5", "--out", str(tmp_path))
    notebook = (Path(done.stdout.strip().splitlines()[-1]) / "high-error-rate.ipynb").read_text()
    assert "window 2025-01-15 14:25 to 14:30 UTC" in notebook
    assert "Started by alert" not in notebook
