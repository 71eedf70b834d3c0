"""How long `opsnb run` takes against the plain `papermill` CLI, on the same runbook.

Runs the high-error-rate runbook against the demo target N times with each, interleaved so
machine noise hits both alike, and prints min and median of both and their ratio
(opsnb / papermill; below 1.0 means opsnb is faster) as the last line.

    python bench/run_latency.py [-n 5] [--service payments]
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

ROOT = Path(__file__).resolve().parent.parent
RUNBOOK = ROOT / "runbooks" / "high-error-rate.ipynb"


def timed(cmd: list[str], env: dict[str, str]) -> float:
    began = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - began
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5, help="runs of each (default 5)")
    parser.add_argument("--service", default="payments")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="opsnb-bench-"))
    env = dict(os.environ, MPLCONFIGDIR=str(work / "mpl"), OPSNB_HOME=str(work / "home"))
    bindir = Path(sys.executable).parent
    opsnb_cmd = [str(bindir / "opsnb"), "run", "high-error-rate", "--target", "demo",
                 "-p", "service", args.service, "--out", str(work / "runs")]  # fmt: skip
    papermill_cmd = [str(bindir / "papermill"), str(RUNBOOK), str(work / "papermill.ipynb"),
                     "-p", "target", "demo", "-p", "service", args.service, "--no-progress-bar",
                     "-k", "python3"]  # fmt: skip

    timed(opsnb_cmd, env)  # warm-up: font cache, bytecode, page cache for both
    timed(papermill_cmd, env)
    results: dict[str, list[float]] = {"opsnb run": [], "papermill CLI": []}
    for _ in range(args.n):
        results["opsnb run"].append(timed(opsnb_cmd, env))
        results["papermill CLI"].append(timed(papermill_cmd, env))

    for name, times in results.items():
        print(f"{name:<14} min {min(times):6.2f} s  median {statistics.median(times):6.2f} s  "
              f"(n={len(times)})")  # fmt: skip
    ratio_min = min(results["opsnb run"]) / min(results["papermill CLI"])
    ratio_med = statistics.median(results["opsnb run"]) / statistics.median(
        results["papermill CLI"]
    )
    print(f"ratio opsnb/papermill: min {ratio_min:.2f}  median {ratio_med:.2f}")


if __name__ == "__main__":
    main()
