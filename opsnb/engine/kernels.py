"""Warm kernels: a kernel started ahead of time with the heavy imports already loaded.

A cold ``papermill`` run starts its kernel only after it has parsed and parameterized the
notebook, and the notebook then spends two seconds importing pandas and matplotlib. A warm
kernel is launched first, so its start and those imports overlap with opsnb's own work
(reading config, validating parameters). The preload runs silently and outside the
notebook's history: the executed notebook is exactly what a cold run would produce.

Each warm kernel serves exactly one run and is then shut down, so no state leaks between
runs.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# What every runbook's first cells import anyway.
PRELOAD = "import pandas, matplotlib.pyplot, opsnb.runtime, opsnb.runtime.charts\n"


class WarmKernel:
    """Launch a python3 kernel now; finish warming it in a background thread."""

    def __init__(self, *, env: Mapping[str, str] | None = None, preload: str = PRELOAD) -> None:
        # nbclient drives kernels asynchronously; with a synchronous manager its cell
        # timeouts never fire. So: an async manager, driven to start here with run_sync.
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        self._run_sync = run_sync
        self.km = AsyncKernelManager(kernel_name="python3")
        # Kernels talk over IPC sockets: no TCP port to race for when many start at once.
        self.km.transport = "ipc"
        runtime = Path(os.environ.get("JUPYTER_RUNTIME_DIR") or "/tmp")
        runtime.mkdir(parents=True, exist_ok=True)
        self.km.ip = str(runtime / f"opsnb-kernel-{os.getpid()}-{id(self)}")
        run_sync(self.km.start_kernel)(env={**os.environ, **(env or {})})
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._warm, args=(preload,), daemon=True)
        self._thread.start()

    def _client(self) -> Any:
        from jupyter_client.blocking import BlockingKernelClient

        client = BlockingKernelClient()
        client.load_connection_info(self.km.get_connection_info())
        return client

    def _warm(self, preload: str) -> None:
        client = self._client()
        try:
            client.start_channels()
            client.wait_for_ready(timeout=60)
            if preload:
                msg_id = client.execute(preload, silent=True, store_history=False)
                while True:
                    reply = client.get_shell_msg(timeout=60)
                    if reply["parent_header"].get("msg_id") == msg_id:
                        break
        except BaseException as exc:  # reported by wait(); the run then fails with it
            self._error = exc
        finally:
            client.stop_channels()

    def wait(self, timeout: float = 90.0) -> Any:
        """Block until warm; return the KernelManager to hand to papermill as ``km=``."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError(f"kernel not ready after {timeout:.0f} s")
        if self._error is not None:
            raise RuntimeError(f"kernel failed to start: {self._error}") from self._error
        return self.km

    def run_silently(self, code: str, timeout: float = 30.0) -> None:
        """Execute setup code (such as a chdir) without it appearing in any notebook."""
        client = self._client()
        try:
            client.start_channels()
            client.execute_interactive(code, silent=True, store_history=False, timeout=timeout)
        finally:
            client.stop_channels()

    def shutdown(self) -> None:
        if self.km.has_kernel:
            self._run_sync(self.km.shutdown_kernel)(now=True)
        self._run_sync(self.km.cleanup_resources)()
