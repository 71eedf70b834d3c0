"""From an Alertmanager webhook to its executed notebook and HTML, against the papermill CLI.

Starts ``opsnb serve`` (demo target, warm kernel pool) and posts N alerts routed to
high-error-rate for service payments, one at a time, each after the pool is warm again; the
latency is from the POST until the run's notebook and HTML are on disk (polled every 10 ms).
In the same run, interleaved, the plain ``papermill`` CLI runs the same runbook with
``-p target demo -p service payments``. Prints p50/p95 of both, where the alert time goes
(queue, notebook execution, HTML and record), and as the last line the papermill/alert ratio.

    python bench/alert_latency.py [-n 20] [--papermill-runs 5] [--pool-size 2]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
RUNBOOK = ROOT / "runbooks" / "high-error-rate.ipynb"
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


def alert_body(i: int) -> dict:
    alert = {
        "status": "firing",
        "labels": {
            "alertname": "HighErrorRate",
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
    def __init__(self, work: Path, env: dict[str, str], pool_size: int) -> None:
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


def papermill(work: Path, env: dict[str, str], service: str) -> float:
    cmd = [
        str(Path(sys.executable).parent / "papermill"),
        str(RUNBOOK),
        str(work / "papermill.ipynb"),
        "-p",
        "target",
        "demo",
        "-p",
        "service",
        service,
        "--no-progress-bar",
        "-k",
        "python3",
    ]
    began = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        sys.exit(f"papermill failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20, help="alerts (default 20)")
    parser.add_argument("--papermill-runs", type=int, default=5, help="papermill CLI runs")
    parser.add_argument("--pool-size", type=int, default=2)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="opsnb-alert-bench-"))
    env = dict(os.environ, MPLCONFIGDIR=str(work / "mpl"), OPSNB_HOME=str(work / "home"))
    env.pop("OPSNB_CONFIG", None)
    serve = Serve(work, env, args.pool_size)
    alerts: list[float] = []
    runs: list[dict] = []
    pm: list[float] = []
    try:
        serve.wait_ready()
        serve.alert(10_000)  # warm-up: bytecode, font cache, page cache
        papermill(work, env, "payments")
        for i in range(args.n):
            serve.wait_ready()
            elapsed, run = serve.alert(i)
            alerts.append(elapsed)
            runs.append(run)
            if i < args.papermill_runs:
                serve.wait_ready()  # the pool refills before papermill runs, not during
                pm.append(papermill(work, env, "payments"))
    finally:
        serve.stop()

    queue = [r["started_at"] - r["created_at"] for r in runs]
    execution = [r["duration"] for r in runs]
    rest = [r["finished_at"] - r["started_at"] - r["duration"] for r in runs]
    print(
        f"alert -> notebook+HTML  p50 {percentile(alerts, 0.5):6.2f} s  "
        f"p95 {percentile(alerts, 0.95):6.2f} s  min {min(alerts):5.2f} s  (n={len(alerts)})"
    )
    print(
        f"papermill CLI           p50 {percentile(pm, 0.5):6.2f} s  "
        f"p95 {percentile(pm, 0.95):6.2f} s  min {min(pm):5.2f} s  (n={len(pm)})"
    )
    med = statistics.median
    other = med(alerts) - med(queue) - med(execution) - med(rest)
    print(
        f"alert time, medians: queue {med(queue):.3f} s, notebook execution "
        f"{med(execution):.3f} s, HTML + record {med(rest):.3f} s, HTTP and polling "
        f"{other:.3f} s"
    )
    ratio = percentile(pm, 0.5) / percentile(alerts, 0.5)
    print(
        f"p50 alert {percentile(alerts, 0.5):.2f} s vs papermill CLI {percentile(pm, 0.5):.2f}"
        f" s: {ratio:.1f}x faster (goal: p50 <= 1 s and >= 8x)"
    )


if __name__ == "__main__":
    main()
