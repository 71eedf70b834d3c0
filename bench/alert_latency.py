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
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from serve_harness import Serve, percentile

ROOT = Path(__file__).resolve().parent.parent
RUNBOOK = ROOT / "runbooks" / "high-error-rate.ipynb"


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
        f"alert time, medians: queue {med(queue):.3f} s, notebook execution with its "
        f"charts {med(execution):.3f} s, HTML + record {med(rest):.3f} s, HTTP and polling "
        f"{other:.3f} s"
    )
    ratio = percentile(pm, 0.5) / percentile(alerts, 0.5)
    print(
        f"p50 alert {percentile(alerts, 0.5):.2f} s vs papermill CLI {percentile(pm, 0.5):.2f}"
        f" s: {ratio:.1f}x faster (goal: p50 <= 1 s and >= 8x)"
    )


if __name__ == "__main__":
    main()
