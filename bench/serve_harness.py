"""What the alert benchmarks share: an ``opsnb serve`` subprocess on the demo target, and
Alertmanager-style payloads."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

TOKEN = "bench-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def alert_body(i: int, alertname: str = "HighErrorRate") -> dict:
    alert = {
        "status": "firing",
        "labels": {
            "alertname": alertname,
            "runbook": "high-error-rate",
            "service": "payments",
            "severity": "critical",
        },
        "annotations": {"summary": "High error rate on payments"},
        "startsAt": "2026-11-30T12:00:00Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "",
        "fingerprint": f"{0xBE0000 + i:x}",
    }
    return {
        "version": "4",
        "groupKey": "bench",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "opsnb",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "",
        "alerts": [alert],
    }


class Serve:
    def __init__(self, work: Path, env: dict[str, str], pool_size: int, **settings: Any) -> None:
        self.url = f"http://127.0.0.1:{(port := free_port())}"
        self.data = work / "serve"
        config = work / "serve.yaml"
        config.write_text(
            json.dumps(
                {
                    "serve": {
                        "default_target": "demo",
                        "still_firing_after": 0,
                        "repeat_interval": 3600,
                        "pool_size": pool_size,
                        "concurrency": 1,
                        "resolution_runbook": "",
                        **settings,
                    }
                }
            )
        )
        self.pool_size = pool_size
        cmd = [
            str(Path(sys.executable).parent / "opsnb"),
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(self.data),
            "--log-level",
            "warning",
        ]
        self.log = open(work / "serve.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            cmd,
            env={**env, "OPSNB_SERVE_TOKEN": TOKEN, "OPSNB_CONFIG": str(config)},
            stdout=self.log,
            stderr=self.log,
            start_new_session=True,
        )
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def wait_ready(self, timeout: float = 120) -> None:
        """Until the service answers and its whole pool is warm."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"opsnb serve exited: {self.proc.returncode}")
            try:
                health = self.client.get("/healthz").json()
                if health["pool"]["ready"] >= self.pool_size and not health["running"]:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        sys.exit("opsnb serve: the pool did not get warm in time")

    def alert(self, i: int) -> tuple[float, dict]:
        began = time.perf_counter()
        answer = self.client.post("/webhook/alertmanager", json=alert_body(i), headers=AUTH)
        if answer.status_code != 200:
            sys.exit(f"webhook answered {answer.status_code}: {answer.text}")
        run_id = answer.json()["alerts"][0]["run"]
        while True:
            run = self.client.get(f"/api/v1/runs/{run_id}").json()["run"]
            if run["status"] not in ("queued", "running"):
                break
            time.sleep(0.01)
        elapsed = time.perf_counter() - began
        folder = self.data / (run["run_dir"] or "missing")
        if run["status"] == "failed" or not (folder / "high-error-rate.html").is_file():
            sys.exit(f"run {run_id} did not produce its notebook and HTML: {run}")
        return elapsed, run

    def stop(self) -> None:
        self.client.close()
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()
