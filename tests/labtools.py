"""Helpers for tests that run runbooks against the lab: run the CLI, poll Prometheus."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from opsnb.promql import render

BIN = Path(sys.executable).parent


def run(runbook: str, *args: str, timeout: float = 300) -> tuple[subprocess.CompletedProcess, dict]:
    """``opsnb run RUNBOOK ARGS``; returns the process and the run's result.json."""
    done = subprocess.run(
        [str(BIN / "opsnb"), "run", runbook, *args], capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    run_dir = Path(done.stdout.strip().splitlines()[-1])
    return done, json.loads((run_dir / "result.json").read_text())


def query(lab: Any, expr: str) -> float | None:
    result = lab.prometheus.query(expr)
    return float(result[0]["value"][1]) if result else None


def error_rate(lab: Any, window: str = "20s") -> float | None:
    return query(lab, render("error_rate", service="my-service", window=window))


def p99(lab: Any, window: str = "20s") -> float | None:
    return query(lab, render("latency_p99", service="my-service", window=window))


def pool_waiting(lab: Any) -> float | None:
    # The gauge moves between scrapes as requests time out: take the peak of the last 10 s.
    return query(
        lab,
        'max(max_over_time(database_connection_pool_size{service="my-service",state="waiting"}[10s]))',
    )


def pool_waiting_held(lab: Any, seconds: int = 20) -> float | None:
    """Requests waited in every scrape of the last ``seconds``: what the pool alert's ``for``
    and the runbooks call an exhausted pool (one scrape's burst is not)."""
    return query(
        lab,
        "min(min_over_time(database_connection_pool_size"
        f'{{service="my-service",state="waiting"}}[{seconds}s]))',
    )


def below(value: float | None, limit: float) -> bool:
    return value is not None and value < limit


def above(value: float | None, limit: float) -> bool:
    return value is not None and value > limit


def wait_until(what: str, probe: Any, timeout: float = 60.0, lab: Any = None) -> Any:
    """Polls ``probe`` until it returns something true; on timeout fails the test with the
    last value and, given the ``lab``, the fault in effect, the service's pool and whether
    Prometheus still scrapes it."""
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    state = ""
    if lab is not None:
        pool = lab.app.pool_stats() if lab.app is not None else {}
        up = query(lab, "min(up)") if lab.prometheus is not None else None
        state = f"; lab fault in effect: {lab.active_fault()}; service pool: {pool}; up: {up}"
    pytest.fail(f"timed out waiting for {what} (last: {value!r}{state})")


def wait_healthy(lab: Any) -> None:
    """Until the lab's 20 s windows show no errors, a fast p99 and nothing waiting."""
    wait_until("a healthy lab", lambda: below(error_rate(lab), 0.01) and below(p99(lab), 0.5)
               and not pool_waiting(lab), timeout=90)  # fmt: skip


def kube_requests(lab: Any) -> list[dict[str, Any]]:
    return httpx.get(f"{lab.kube.url}/_test/requests", timeout=5).json()


def mutating(requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in requests if r["method"] != "GET" and not r["dry_run"]]


def checks(result: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["status"] for c in result["checks"]}


def primary(result: dict[str, Any]) -> tuple[str, str]:
    finding = result["findings"][0]
    return finding["cause"], finding["recommendation"]
