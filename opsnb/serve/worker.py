"""Runs queued runbooks: bounded concurrency, a deadline per run, recovery after a crash.

The queue is the ``runs`` table (bounded by ``queue_size`` at intake). ``concurrency``
threads each claim the oldest queued run, take a warm kernel from the pool and execute the
runbook through ``opsnb.engine`` with the run's deadline; the outcome and its notifications
are committed together. On start, runs a crash left ``running`` are queued again (or failed
after ``max_attempts``), so every accepted alert is diagnosed exactly once. A scheduler thread
queues fresh diagnoses for alerts still firing after ``still_firing_after``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..engine.chart_renderer import ChartRenderer
from ..errors import OpsnbError
from .notify import summary_payload
from .pool import KernelPool
from .settings import ServeSettings
from .store import Store

log = logging.getLogger("opsnb.serve")

# (run row) -> (status, run folder, findings, duration, error)
Outcome = tuple[str, Path | None, list[dict[str, Any]], float | None, str | None]
Executor = Callable[[dict[str, Any]], Outcome]


def engine_executor(
    settings: ServeSettings,
    pool: KernelPool,
    renderer: ChartRenderer | None = None,
    backlog: Callable[[], bool] = lambda: False,
) -> Executor:
    """Execute a run row with opsnb's engine on a kernel from the pool.

    With a ``renderer``, a run's charts are drawn beside its kernel when nothing waits
    behind the run. When runs are queued (``backlog``), every core already has work (the
    running kernel, the pool warming the next ones) and the kernel draws its own charts: a
    renderer competing for the cores would slow the storm down (100 alerts: 145 s against
    123 s done).
    """

    def execute_run(run: dict[str, Any]) -> Outcome:
        from ..engine.run import RunRequest, execute, prepare

        request = RunRequest(
            runbook=run["runbook"],
            target=run["target"],
            parameters=dict(run["parameters"]),
            out_dir=settings.runs_dir,
            apply=bool(run["apply"]),
            mode="automated",
            cell_timeout=settings.cell_timeout,
            deadline=settings.run_deadline,
            # nobody watches an automated run's notebook while it runs; a crash re-runs it
            save_every_cell=False,
        )
        try:
            prepared = prepare(request)  # the config may have changed since the alert came in
        except OpsnbError as exc:
            return "failed", None, [], None, f"not started: {exc}"
        kernel = pool.take()
        beside = renderer if renderer is not None and not backlog() else None
        if beside is not None:
            beside.ensure_running()
        result = execute(prepared, kernel, beside)
        if kernel.preload_error:
            log.warning("kernel preload failed (the run imported what it needed): %s",
                        kernel.preload_error)  # fmt: skip
        record = result.result
        error = None
        if record.get("errors"):
            error = "; ".join(str(e.get("detail")) for e in record["errors"])[:2000]
        return (
            record["status"],
            result.run_dir,
            record.get("findings", []),
            record.get("duration_seconds"),
            error,
        )

    return execute_run


class Worker:
    def __init__(
        self,
        store: Store,
        settings: ServeSettings,
        executor: Executor,
        *,
        on_finish: Callable[[dict[str, Any], str, float | None], None] | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.executor = executor
        self.on_finish = on_finish
        self._stop = threading.Event()
        self._wake = threading.Condition()
        self._threads: list[threading.Thread] = []
        self.running: dict[int, float] = {}  # run id -> monotonic start

    def start(self) -> Worker:
        requeued = self.store.recover(self.settings.max_attempts)
        if requeued:
            log.warning("queued again after an interruption: runs %s", requeued)
        for i in range(self.settings.concurrency):
            t = threading.Thread(target=self._loop, name=f"opsnb-run-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        t = threading.Thread(target=self._schedule, name="opsnb-still-firing", daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def wake(self) -> None:
        with self._wake:
            self._wake.notify_all()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.wake()
        for t in self._threads:
            t.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            run = self.store.claim()
            if run is None:
                with self._wake:
                    self._wake.wait(0.5)
                continue
            self.run_one(run)

    def run_one(self, run: dict[str, Any]) -> None:
        began = time.monotonic()
        self.running[run["id"]] = began
        try:
            status, run_dir, findings, duration, error = self.executor(run)
        except Exception as exc:  # a broken run never stops the worker
            log.exception("run %s failed", run["id"])
            status, run_dir, findings, duration, error = "failed", None, [], None, repr(exc)
        finally:
            self.running.pop(run["id"], None)
        if duration is None:
            duration = round(time.monotonic() - began, 3)
        rel = self._relative(run_dir)
        done = {
            **run,
            "status": status,
            "run_dir": rel,
            "findings": findings,
            "duration": duration,
            "error": error,
        }
        notes = [
            (hook.name, summary_payload(done, self.settings.base_url))
            for hook in self.settings.notify
        ]
        self.store.finish(
            run["id"],
            status=status,
            run_dir=rel,
            findings=findings,
            duration=duration,
            error=error,
            notifications=notes,
        )
        if self.on_finish:
            self.on_finish(done, status, duration)

    def _relative(self, run_dir: Path | None) -> str | None:
        if run_dir is None:
            return None
        try:
            return str(Path(run_dir).resolve().relative_to(self.settings.data_dir.resolve()))
        except ValueError:
            return None  # never record a folder outside the data folder

    def _schedule(self) -> None:
        while not self._stop.wait(1.0):
            try:
                made = self.store.still_firing(
                    after=self.settings.still_firing_after,
                    max_rediagnoses=self.settings.max_rediagnoses,
                    queue_size=self.settings.queue_size,
                )
            except Exception:
                log.exception("still-firing check failed")
                continue
            if made:
                log.info("still firing: queued fresh diagnoses %s", made)
                self.wake()
