"""Helpers for the ``opsnb serve`` tests (no tests here): payloads, a webhook receiver, a
stand-in executor, a subprocess service."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from opsnb.lab.processes import free_port

TOKEN = "test-serve-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BIN = Path(sys.executable).parent


def alert(
    fingerprint: str,
    status: str = "firing",
    annotations: dict[str, str] | None = None,
    starts_at: str = "2026-11-30T12:00:00Z",
    **labels: str,
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "HighErrorRate", **labels},
        "annotations": annotations or {},
        "startsAt": starts_at,
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-11-30T12:10:00Z",
        "generatorURL": "http://prometheus/graph",
        "fingerprint": fingerprint,
    }


def payload(*alerts: dict[str, Any], status: str = "firing") -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="HighErrorRate"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "opsnb",
        "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }


class FakeExecutor:
    """Stands in for the engine: writes a small run folder, optionally waits on a gate."""

    def __init__(self, runs_dir: Path, *, gate: threading.Event | None = None) -> None:
        self.runs_dir = runs_dir
        self.gate = gate
        self.calls: list[dict[str, Any]] = []

    def __call__(self, run: dict[str, Any]) -> Any:
        self.calls.append(run)
        if self.gate is not None:
            self.gate.wait(30)
        folder = self.runs_dir / f"fake-{run['id']}-{run['runbook']}"
        folder.mkdir(parents=True)
        (folder / f"{run['runbook']}.html").write_text(f"<html>run {run['id']}</html>")
        (folder / "result.json").write_text(json.dumps({"status": "ok"}))
        findings = [{"cause": "recent-deployment", "recommendation": "rollback"}]
        return "ok", folder, findings, 0.01, None


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last: {value!r})")


class Receiver:
    """A local Slack-style incoming-webhook receiver; the first ``fail_first`` posts get 500."""

    def __init__(self, fail_first: int = 0) -> None:
        self.received: list[dict[str, Any]] = []
        self.attempts = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.attempts += 1
                if receiver.attempts <= fail_first:
                    self.send_response(500)
                    self.end_headers()
                    return
                receiver.received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class ServeProcess:
    """``opsnb serve`` as a subprocess in its own process group."""

    def __init__(self, data_dir: Path, config: Path, **options: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_dir, self.config, self.options = data_dir, config, options
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"serve-{self.port}.log"

    def start(self) -> ServeProcess:
        args = [
            str(BIN / "opsnb"),
            "serve",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data_dir),
            "--log-level",
            "warning",
        ]
        for key, value in self.options.items():
            args += [f"--{key.replace('_', '-')}", str(value)]
        env = {**os.environ, "OPSNB_SERVE_TOKEN": TOKEN, "OPSNB_CONFIG": str(self.config)}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                args, env=env, stdout=log, stderr=log, start_new_session=True
            )
        wait_for("opsnb serve to answer", self._healthy, timeout=60)
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"opsnb serve exited: {self.log.read_text()[-3000:]}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def kill9(self) -> None:
        """SIGKILL the service and its kernels (they run in sessions of their own), as a
        crash of the machine or container would."""
        assert self.proc is not None
        kernels = _children(self.proc.pid)
        os.killpg(self.proc.pid, signal.SIGKILL)
        for pid in kernels:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids = [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        for kid in kids:
            found += [kid, *_children(kid)]
    return found
