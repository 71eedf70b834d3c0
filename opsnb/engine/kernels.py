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

import contextlib
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# What every runbook's first cells import anyway.
PRELOAD = "import pandas, matplotlib.pyplot, opsnb.runtime.session, opsnb.runtime.charts\n"


def _ready_client_class() -> type:
    """The client class papermill's executor gets from a warm kernel's manager.

    jupyter_client's ``wait_for_ready`` ends by draining IOPub until nothing arrives for
    0.2 s: a fixed 0.2 s on every run, a fifth of an alert-driven diagnosis. A warm kernel is
    already known to answer, so this client only checks what matters for the run (the kernel
    replies on shell and IOPub is connected, or outputs would be lost) and leaves the few
    status messages still in flight to nbclient, which ignores messages of other requests.
    """
    from jupyter_client.asynchronous import AsyncKernelClient

    class ReadyKernelClient(AsyncKernelClient):
        async def _async_wait_for_ready(self, timeout: float | None = None) -> None:
            limit = 60.0 if timeout is None else timeout
            end = time.monotonic() + limit
            while True:
                msg_id = self.kernel_info()
                try:
                    reply = await self._async_get_shell_msg(timeout=1)
                except queue.Empty:
                    reply = None
                if reply is not None and reply["parent_header"].get("msg_id") == msg_id:
                    try:  # IOPub carries the reply's busy/idle status once it is subscribed
                        await self._async_get_iopub_msg(timeout=0.2)
                        return
                    except queue.Empty:
                        pass
                if not await self._async_is_alive():
                    raise RuntimeError("Kernel died before replying to kernel_info")
                if time.monotonic() > end:
                    raise RuntimeError(f"Kernel didn't respond in {limit:g} seconds")

        wait_for_ready = _async_wait_for_ready

    return ReadyKernelClient


class WarmKernel:
    """Launch a python3 kernel now; finish warming it in a background thread."""

    def __init__(self, *, env: Mapping[str, str] | None = None, preload: str = PRELOAD) -> None:
        # nbclient drives kernels asynchronously; with a synchronous manager its cell
        # timeouts never fire. So: an async manager, driven to start here with run_sync.
        from jupyter_client.manager import AsyncKernelManager
        from jupyter_core.utils import run_sync

        self._run_sync = run_sync
        self.km = AsyncKernelManager(kernel_name="python3")
        self.km.client_factory = _ready_client_class()
        # papermill's executor gets its client from km.client() and, as the manager is ours,
        # leaves that client's channels open: a zmq context, its thread and 15 file
        # descriptors per run for as long as the process lives. Keep each client to close.
        self._clients: list[Any] = []
        self._stop_lock = threading.Lock()
        self._stopping: threading.Thread | None = None
        make_client = self.km.client

        def client(**kwargs: Any) -> Any:
            made = make_client(**kwargs)
            self._clients.append(made)
            return made

        self.km.client = client  # type: ignore[method-assign]
        # Kernels talk over IPC sockets: no TCP port to race for when many start at once.
        self.km.transport = "ipc"
        # A private folder per kernel for its sockets, short enough for a socket path and
        # removed with the kernel.
        self._sockets = Path(tempfile.mkdtemp(prefix="opsnb-kernel-"))
        self.km.ip = str(self._sockets / "k")
        run_sync(self.km.start_kernel)(env={**os.environ, **(env or {})})
        self._error: BaseException | None = None
        self.preload_error: str | None = None
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
            # No heartbeat: on a loaded machine a starting kernel misses heartbeats and a
            # heartbeat-based wait declares it dead. Ask for kernel_info until it answers,
            # and ask the manager whether the process is still there.
            client.start_channels(hb=False)
            deadline = time.monotonic() + 60
            while True:
                msg_id = client.kernel_info()
                if self._reply_to(client, msg_id, timeout=1.0) is not None:
                    break
                if not self._run_sync(self.km.is_alive)():
                    raise RuntimeError("the kernel process exited while starting")
                if time.monotonic() > deadline:
                    raise TimeoutError("kernel did not answer within 60 s")
            if preload:
                msg_id = client.execute(preload, silent=True, store_history=False)
                reply = self._reply_to(client, msg_id, timeout=60.0)
                if reply is None:
                    raise TimeoutError("preloading modules took over 60 s")
                content = reply.get("content", {})
                if content.get("status") == "error":
                    # still a working kernel, only a slower one: runs import what they need
                    self.preload_error = f"{content.get('ename')}: {content.get('evalue')}"
        except BaseException as exc:  # reported by wait(); the run then fails with it
            self._error = exc
        finally:
            client.stop_channels()

    @staticmethod
    def _reply_to(client: Any, msg_id: str, *, timeout: float) -> dict[str, Any] | None:
        """Wait up to ``timeout`` for the shell reply to ``msg_id``; None on timeout."""
        end = time.monotonic() + timeout
        while (left := end - time.monotonic()) > 0:
            try:
                reply = client.get_shell_msg(timeout=left)
            except queue.Empty:
                return None
            if reply["parent_header"].get("msg_id") == msg_id:
                return dict(reply)
        return None

    def alive(self) -> bool:
        """Whether the kernel process is still running (a warm kernel can die waiting)."""
        return bool(self.km.has_kernel and self._run_sync(self.km.is_alive)())

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

    def shutdown(self, *, wait: bool = True) -> None:
        """Stop the kernel and remove its sockets; safe to call more than once. ``wait=False``
        does it in a thread: jupyter_client polls for the process to exit every 0.1 s, time a
        finished run need not spend. The thread is not a daemon, so a CLI run still reaps its
        kernel at exit; a later ``shutdown()`` waits for it."""
        with self._stop_lock:
            if self._stopping is None:
                self._stopping = threading.Thread(target=self._stop, name="opsnb-kernel-stop")
                self._stopping.start()
            stopping = self._stopping
        if wait:
            stopping.join()

    def _stop(self) -> None:
        for client in self._clients:
            # a client that will not close must not keep its kernel alive
            with contextlib.suppress(Exception):
                client.stop_channels()
                if getattr(client, "_created_context", False):
                    client.context.destroy(linger=0)
        self._clients.clear()
        if self.km.has_kernel:
            self._run_sync(self.km.shutdown_kernel)(now=True)
        self._run_sync(self.km.cleanup_resources)()
        shutil.rmtree(self._sockets, ignore_errors=True)
