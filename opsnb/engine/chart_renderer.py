"""The chart renderer: one process beside ``opsnb serve``'s kernels that draws their charts.

A kernel hands a chart over by writing a job file into its run folder and naming it on the
renderer's Unix socket (``opsnb.runtime.chart_jobs``). The renderer's drawers (two on two
cores or more) take jobs in the order they arrive and write each chart's display output
next to its job.
``fill`` then puts the charts in place of their placeholders once the notebook has run:
it waits for the renderer while the renderer is alive, and draws any chart still missing
itself, so a dead or stuck renderer costs time, never a chart.

The socket (a datagram socket: a kernel never waits for the renderer) lives in a private
folder (mode 0700): only the user that runs opsnb serve, and its kernels, can reach it.

    python -m opsnb.engine.chart_renderer SOCKET DRAWERS
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..runtime import chart_jobs

log = logging.getLogger("opsnb.serve")


class ChartRenderer:
    """Start, watch and stop the renderer process."""

    def __init__(self, drawers: int | None = None) -> None:
        # two drawers on two cores or more (a run's kernel and serve take the rest)
        self.drawers = drawers or min(2, os.cpu_count() or 1)
        self._folder = Path(tempfile.mkdtemp(prefix="opsnb-charts-"))  # short: a socket path
        self.address = str(self._folder / "s")
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self.restarts = 0

    def kernel_env(self) -> dict[str, str]:
        """What a kernel's environment needs to hand its charts to this renderer."""
        return {chart_jobs.ADDRESS: self.address}

    def start(self) -> ChartRenderer:
        with self._lock:
            if self.alive():
                return self
            Path(self.address).unlink(missing_ok=True)
            # its own process group: stop() ends the forked drawers with it
            self._process = subprocess.Popen(
                [sys.executable, "-m", __name__, self.address, str(self.drawers)],
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self

    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def ready(self) -> bool:
        """Alive and bound to its socket: kernels' charts are handed over, not drawn."""
        return self.alive() and Path(self.address).exists()

    def ensure_running(self) -> None:
        """Restart a renderer that died (kernels that lost it draw their own charts)."""
        if self._process is not None and not self.alive():
            log.warning("chart renderer exited (%s); restarting it", self._process.returncode)
            self.restarts += 1
            self.start()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def stop(self) -> None:
        with self._lock:
            process, self._process = self._process, None
        if process is not None:
            _signal_group(process, signal.SIGTERM)
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                _signal_group(process, signal.SIGKILL)
                process.wait()
        shutil.rmtree(self._folder, ignore_errors=True)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    """Signal the renderer and its forked drawers (its process group)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


@dataclass
class Filled:
    """What ``fill`` did: charts the renderer drew, charts drawn here instead."""

    by_renderer: int = 0
    here: int = 0

    @property
    def total(self) -> int:
        return self.by_renderer + self.here


def fill(
    nb: dict[str, Any],
    folder: Path,
    *,
    renderer_alive: Callable[[], bool],
    timeout: float = 30.0,
) -> Filled:
    """Put each chart placeholder's chart in its place in ``nb`` (the notebook as written
    on disk). Waits for the renderer while it is alive, up to ``timeout`` in all, then
    draws what is left here. The job folder is removed."""
    filled = Filled()
    placeholders = [
        output
        for cell in nb.get("cells", [])
        for output in cell.get("outputs", []) or []
        if chart_jobs.PLACEHOLDER in (output.get("metadata") or {})
    ]
    deadline = time.monotonic() + timeout
    for output in placeholders:
        name = str(output["metadata"][chart_jobs.PLACEHOLDER])
        if Path(name).name != name or not name.endswith(chart_jobs.JOB_SUFFIX):
            data, metadata = _not_drawn(f"bad job name {name!r}")
            filled.here += 1
        elif (drawn := _by_renderer(folder / name, renderer_alive, deadline)) is not None:
            data, metadata = drawn
            filled.by_renderer += 1
        else:
            data, metadata = _draw_here(folder / name)
            filled.here += 1
        output["data"], output["metadata"] = _as_written(data), metadata
    shutil.rmtree(folder, ignore_errors=True)
    return filled


def _by_renderer(
    job: Path, renderer_alive: Callable[[], bool], deadline: float
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The renderer's chart for ``job``, waiting for it; None if there is none."""
    result = chart_jobs.result_path(job)
    while not result.exists() and renderer_alive() and time.monotonic() < deadline:
        time.sleep(0.005)
    try:
        with result.open("rb") as fh:
            drawn = pickle.load(fh)
    except (OSError, pickle.UnpicklingError, EOFError):
        return None
    if "error" in drawn:
        log.warning("chart renderer could not draw %s: %s", job.name, drawn["error"])
        return None
    return drawn["data"], drawn["metadata"]


# pyplot's figure registry is process-wide: one chart at a time when serve draws its own.
_drawing_here = threading.Lock()


def _draw_here(job: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Draw a job's chart in this process (the renderer is gone, late, or failed)."""
    try:
        with _drawing_here:
            return chart_jobs.render(job)
    except Exception as exc:
        log.warning("chart %s not drawn: %s", job.name, exc)
        return _not_drawn(f"{type(exc).__name__}: {exc}")


def _not_drawn(reason: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return {"text/plain": f"<chart not drawn: {reason}>"}, {}


def _as_written(data: dict[str, Any]) -> dict[str, Any]:
    """A mime bundle as nbformat writes it (text split into lines)."""
    import nbformat

    output = nbformat.v4.new_output("display_data", data=data)
    cell = nbformat.v4.new_code_cell(outputs=[output])
    nbformat.v4.rwbase.split_lines(nbformat.v4.new_notebook(cells=[cell]))
    return dict(cell.outputs[0]["data"])


def _serve(address: str, drawers: int) -> None:
    """The renderer process: draw the jobs named on the socket, in arrival order."""
    parent = os.getppid()
    # Bind first: kernels can name jobs while matplotlib is imported; they queue.
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(1.0)
    import matplotlib

    matplotlib.use("agg")
    from ..runtime import charts

    charts.rehearse()
    # Drawers share the socket, each datagram going to one of them: while a run's kernel
    # computes, one core draws; once it is done, both do. Forked once warm (no threads
    # here), so a second drawer costs no start-up and little memory.
    main = True
    for _ in range(drawers - 1):
        if os.fork() == 0:
            main, parent = False, os.getppid()
            break
    while True:
        try:
            job = sock.recv(4096).decode()
        except TimeoutError:
            if os.getppid() == parent:
                continue
            # Gone: opsnb serve (killed, or it would have stopped us) or, for a drawer, the
            # renderer. Only serve's end leaves the socket's folder to remove: a renderer
            # restarted by serve binds the same address.
            if main:
                shutil.rmtree(Path(address).parent, ignore_errors=True)
            return
        _draw(Path(job))


def _draw(job: Path) -> None:
    if not job.name.endswith(chart_jobs.JOB_SUFFIX):
        return
    try:
        data, metadata = chart_jobs.render(job)
        drawn: dict[str, Any] = {"data": data, "metadata": metadata}
    except Exception as exc:  # fill() draws it again in the engine and logs why
        drawn = {"error": f"{type(exc).__name__}: {exc}"}
    result = chart_jobs.result_path(job)
    partial = result.with_suffix(".drawing")
    try:
        with partial.open("wb") as fh:
            pickle.dump(drawn, fh, protocol=pickle.HIGHEST_PROTOCOL)
        partial.replace(result)  # fill() reads whole results only
    except OSError:  # the run folder is gone: nobody waits for this chart any more
        pass


if __name__ == "__main__":
    _serve(sys.argv[1], int(sys.argv[2]))
