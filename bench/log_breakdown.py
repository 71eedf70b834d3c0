"""How long the error breakdown of a 1,000,000-line log takes against the templates' shell
pipeline, on the same file.

Writes a log in the documented format (docs/architecture.md, "Log line format") into a
temporary folder: about three hours of a service's request lines, ~5% of them ERROR lines
spread over several error types and endpoints (more during an incident in the middle),
some WARN and DEBUG lines; no CRITICAL lines, which ``grep ERROR`` would not count. Then
times, in the same run and interleaved so that machine
noise hits both alike, one warm-up and N runs of

    grep ERROR FILE | awk '{print $NF}' | sort | uniq -c | sort -rn     (bash -c, to /dev/null)

and of ``opsnb.backends.logs.error_breakdown_file(FILE)`` (which also gives the breakdown
by endpoint, first and last seen, and per minute), checks that both count the same errors
by type, and prints min and median of both and their ratio (opsnb / shell; at most 1.0
means opsnb is not slower) as the last line.

    python bench/log_breakdown.py [-n 5] [--lines 1000000] [--keep]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from opsnb.backends import logs

ENDPOINTS = ["/api/checkout", "/api/items", "/api/users", "/api/cart", "/api/search",
             "/api/payments/authorize", "/health"]  # fmt: skip
ENDPOINT_WEIGHTS = [8, 30, 12, 10, 20, 6, 14]
ERRORS = ["PoolTimeoutError", "UpstreamTimeout", "ConnectionResetError", "ValueError",
          "KeyError", "IntegrityError"]  # fmt: skip
ERROR_WEIGHTS = [40, 25, 15, 10, 6, 4]
METHODS = {"/api/checkout": "POST", "/api/payments/authorize": "POST", "/api/cart": "PUT"}
STATUS = {"PoolTimeoutError": 503, "UpstreamTimeout": 504, "ConnectionResetError": 502}
SHELL = "grep ERROR {path} | awk '{{print $NF}}' | sort | uniq -c | sort -rn"


def generate(path: Path, lines: int, seed: int = 1) -> None:
    """A time-ordered log: request lines, WARN/DEBUG lines, ~5% ERROR lines."""
    rng = random.Random(seed)
    start = datetime(2025, 1, 15, 12, 0, tzinfo=UTC)
    span_ms = 3 * 3600 * 1000
    stamps = sorted(rng.randrange(span_ms) for _ in range(lines))
    endpoints = rng.choices(ENDPOINTS, ENDPOINT_WEIGHTS, k=lines)
    kinds = rng.choices(ERRORS, ERROR_WEIGHTS, k=lines)
    rolls = [rng.random() for _ in range(lines)]
    with path.open("w", encoding="utf-8", newline="\n") as out:
        batch: list[str] = []
        for i, ms in enumerate(stamps):
            t = start + timedelta(milliseconds=ms)
            stamp = f"{t:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"
            endpoint = endpoints[i]
            method = METHODS.get(endpoint, "GET")
            incident = 0.4 * span_ms < ms < 0.55 * span_ms  # errors triple for a while
            roll = rolls[i]
            duration = 1 + int(roll * 997) % 400
            if roll < (0.11 if incident else 0.04):
                kind = kinds[i]
                batch.append(
                    f"{stamp} ERROR method={method} endpoint={endpoint} "
                    f"status={STATUS.get(kind, 500)} duration_ms={duration * 7} error={kind}"
                )
            elif roll < 0.13:
                batch.append(f"{stamp} WARN event=pool_wait waiting={int(roll * 1000) % 40}")
            elif roll < 0.15:
                batch.append(f"{stamp} DEBUG event=cache_miss key=item:{int(roll * 1e6)}")
            else:
                batch.append(
                    f"{stamp} INFO method={method} endpoint={endpoint} status=200 "
                    f"duration_ms={duration}"
                )
            if len(batch) >= 50_000:
                out.write("\n".join(batch) + "\n")
                batch.clear()
        if batch:
            out.write("\n".join(batch) + "\n")


def shell_counts(path: Path) -> dict[str, int]:
    """The pipeline's output as {type: count} (awk's $NF is "error=Type")."""
    out = subprocess.run(["bash", "-c", SHELL.format(path=path)], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    counts = {}
    for line in out.splitlines():
        count, field = line.split()
        counts[field.removeprefix("error=")] = int(count)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=5, help="timed runs of each (default 5)")
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--keep", action="store_true", help="keep the generated log")
    args = parser.parse_args()
    if not shutil.which("bash") or not shutil.which("awk"):
        sys.exit("needs bash, grep, awk, sort and uniq")

    work = Path(tempfile.mkdtemp(prefix="opsnb-logbench-"))
    try:
        path = work / "service.log"
        began = time.perf_counter()
        generate(path, args.lines)
        size = path.stat().st_size
        print(f"{args.lines:,} lines, {size / 1e6:.1f} MB in {path} "
              f"(generated in {time.perf_counter() - began:.1f} s)")  # fmt: skip

        report = logs.error_breakdown_file(path)
        ours = dict(zip(report.by_type["error"], report.by_type["count"].tolist(), strict=True))
        theirs = shell_counts(path)
        if ours != theirs:
            sys.exit(f"counts by type differ:\n  opsnb {ours}\n  shell {theirs}")
        print(f"counts by type agree: {report.error_lines:,} error lines of "
              f"{report.total_lines:,}, {len(ours)} types, "
              f"{len(report.by_endpoint)} endpoints, {len(report.per_minute)} minutes")  # fmt: skip

        cmd = ["bash", "-c", SHELL.format(path=path) + " > /dev/null"]
        runs: dict[str, Callable[[], object]] = {
            "shell pipeline": lambda: subprocess.run(cmd, check=True),
            "opsnb": lambda: logs.error_breakdown_file(path),
        }
        times: dict[str, list[float]] = {name: [] for name in runs}
        for run in runs.values():  # warm-up: page cache, threads, buffers
            run()
        for _ in range(args.n):
            for name, run in runs.items():
                began = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - began)
        for name, got in times.items():
            print(f"{name:<15} min {min(got) * 1000:7.1f} ms  "
                  f"median {statistics.median(got) * 1000:7.1f} ms  (n={len(got)})")  # fmt: skip
        ratio_min = min(times["opsnb"]) / min(times["shell pipeline"])
        ratio_med = statistics.median(times["opsnb"]) / statistics.median(times["shell pipeline"])
        print(f"ratio opsnb/shell: min {ratio_min:.2f}  median {ratio_med:.2f}")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
