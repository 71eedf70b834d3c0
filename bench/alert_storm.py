"""An alert storm: 1,000 webhook posts carrying 100 distinct alerts, sent within 10 s.

Starts ``opsnb serve`` on the demo target and posts from several threads, as a busy
Alertmanager would: every post carries one to five alerts drawn from 100 fingerprints (each
one at least once), so most alerts arrive many times. A 503 (queue full) is retried after a
pause, as Alertmanager retries. Then it waits until every run has finished and prints:
alerts lost (accepted but never diagnosed; must be 0), runs started (must be 100: one per
fingerprint, the repeats recorded), duplicate diagnoses, the time until all are done, and
the peak memory of the service process and of the service with its kernels.

    python bench/alert_storm.py [--posts 1000] [--alerts 100] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from serve_harness import AUTH, Serve, alert_body, percentile

SENDERS = 8


def tree_rss(pid: int) -> int:
    """Memory of ``pid`` and all its descendants, in bytes: their proportional set sizes
    (a page shared by n processes counts 1/n in each), so pages a forked process shares
    with its parent are counted once."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            rollup = Path(f"/proc/{current}/smaps_rollup").read_text()
            total += next(int(line.split()[1]) * 1024 for line in rollup.splitlines()
                          if line.startswith("Pss:"))  # fmt: skip
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration):
            continue
    return total


def peak_rss(pid: int) -> int:
    """The process's own high-water mark (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def payloads(posts: int, alerts: int, rng: random.Random) -> list[dict]:
    """``posts`` bodies of 1-5 alerts each; every one of ``alerts`` fingerprints appears."""
    order = list(range(alerts))
    rng.shuffle(order)
    bodies = []
    for p in range(posts):
        picked = {order[p]} if p < alerts else set()
        picked |= {rng.randrange(alerts) for _ in range(rng.randint(1, 5) - len(picked))}
        group = [alert_body(i)["alerts"][0] for i in sorted(picked)]
        for a in group:  # the two demo services, so both snapshot paths run
            a["labels"]["service"] = "payments" if int(a["fingerprint"], 16) % 2 else "catalog"
        body = alert_body(0)
        body["alerts"] = group
        bodies.append(body)
    return bodies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--posts", type=int, default=1000)
    parser.add_argument("--alerts", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=10.0, help="send within this time")
    parser.add_argument("--concurrency", type=int, default=2, help="runs at once")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="opsnb-alert-storm-"))
    env = dict(os.environ, MPLCONFIGDIR=str(work / "mpl"), OPSNB_HOME=str(work / "home"))
    env.pop("OPSNB_CONFIG", None)
    serve = Serve(work, env, pool_size=2, concurrency=args.concurrency, queue_size=args.alerts)
    bodies = payloads(args.posts, args.alerts, random.Random(7))
    statuses: Counter[int] = Counter()
    accepted: set[str] = set()
    lock = threading.Lock()
    peak = {"tree": 0}
    answer_times: list[float] = []
    sampling = threading.Event()

    def sample() -> None:
        while not sampling.wait(0.1):
            peak["tree"] = max(peak["tree"], tree_rss(serve.proc.pid))

    def send(client: httpx.Client, index: int, began: float) -> None:
        # paced: post i leaves at i/posts of the sending time
        time.sleep(max(0.0, began + index * args.seconds / args.posts - time.monotonic()))
        for _attempt in range(60):
            asked = time.perf_counter()
            answer = client.post("/webhook/alertmanager", json=bodies[index], headers=AUTH)
            with lock:
                statuses[answer.status_code] += 1
                answer_times.append(time.perf_counter() - asked)
            if answer.status_code != 503:
                break
            time.sleep(1.0)  # Alertmanager retries a 5xx after a back-off
        if answer.status_code == 200:
            with lock:
                accepted.update(a["fingerprint"] for a in bodies[index]["alerts"])

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        serve.wait_ready()
        sampler.start()
        client = httpx.Client(base_url=serve.url, timeout=30, limits=httpx.Limits(
            max_connections=SENDERS))  # fmt: skip
        began = time.monotonic()
        with ThreadPoolExecutor(SENDERS) as pool:
            for future in [pool.submit(send, client, i, began) for i in range(len(bodies))]:
                future.result()
        sent = time.monotonic() - began
        while True:
            runs = client.get("/api/v1/runs", params={"limit": 1000}).json()["runs"]
            if runs and all(r["status"] not in ("queued", "running") for r in runs):
                break
            if serve.proc.poll() is not None:
                sys.exit(f"opsnb serve exited ({serve.proc.returncode}); see {work}/serve.log")
            time.sleep(0.2)
        done = time.monotonic() - began
        service_peak = peak_rss(serve.proc.pid)
        client.close()
    finally:
        sampling.set()
        serve.stop()

    diagnosed = Counter(r["fingerprint"] for r in runs if r["kind"] == "diagnosis")
    lost = sorted(accepted - set(diagnosed))
    duplicates = {f: n for f, n in diagnosed.items() if n > 1}
    outcomes = Counter(r["status"] for r in runs)
    answers = ", ".join(f"{code}: {n}" for code, n in sorted(statuses.items()))
    print(f"posts sent           {args.posts} in {sent:.1f} s ({answers})")
    print(
        f"answer time          p50 {percentile(answer_times, 0.5) * 1000:.0f} ms, p99 "
        f"{percentile(answer_times, 0.99) * 1000:.0f} ms, max {max(answer_times) * 1000:.0f} ms"
    )
    print(f"distinct alerts      {args.alerts} posted, {len(accepted)} accepted")
    print(f"runs started         {len(runs)} ({dict(outcomes)})")
    print(f"duplicate diagnoses  {len(duplicates)}")
    print(f"all done after       {done:.1f} s")
    print(f"peak memory          service {service_peak / 2**20:.0f} MiB (RSS), service with its "
          f"kernels and chart renderer {peak['tree'] / 2**20:.0f} MiB (PSS)")  # fmt: skip
    print(f"alerts lost          {len(lost)}")
    if lost or duplicates or len(runs) != args.alerts:
        sys.exit(1)


if __name__ == "__main__":
    main()
