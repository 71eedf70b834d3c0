"""Charts drawn beside the kernel, on another core, while the runbook goes on.

A runbook's charts are half of its run: each costs ~30 ms of matplotlib layout, drawing and
PNG encoding, in a kernel that meanwhile does nothing else, while a second core waits. When
``opsnb serve`` runs a runbook, a chart renderer process (``opsnb.engine.chart_renderer``)
draws them instead: the kernel saves the chart's data and options as a job file in the run
folder, names the file to the renderer in a datagram on its Unix socket, shows a placeholder
and goes on to the next step.
Once the notebook has run, the engine puts each chart in place of its placeholder, drawing
any the renderer did not. The chart is the one the kernel would have shown: the same code
builds the figure, and ``output`` renders it as the inline backend does.

Everywhere else (JupyterLab, the papermill CLI, ``opsnb run``) no renderer is configured and
charts are drawn in the kernel, as they are whenever handing one over fails.
"""

from __future__ import annotations

import itertools
import os
import pickle
import socket
from pathlib import Path
from typing import Any

# Set in the kernel's environment by whoever runs a renderer (opsnb serve): its socket.
ADDRESS = "OPSNB_CHART_RENDERER"
# Set by the engine for each run: where the run's chart jobs go.
FOLDER = "OPSNB_CHART_JOBS"
# Output metadata naming the job whose chart replaces the placeholder.
PLACEHOLDER = "opsnb_chart_job"
JOB_SUFFIX = ".job"
RESULT_SUFFIX = ".chart"  # pickled (data, metadata) of the display output

_numbers = itertools.count(1)
_socket: socket.socket | None = None
disabled: str | None = None  # why this kernel stopped handing charts over, if it did


def submit(kind: str, frame: Any, options: dict[str, Any]) -> bool:
    """Hand a chart to the renderer and show its placeholder; False: draw it here."""
    folder, address = os.environ.get(FOLDER), os.environ.get(ADDRESS)
    if disabled or not (folder and address) or not _in_kernel():
        return False
    job = Path(folder) / f"{next(_numbers):03d}-{kind}{JOB_SUFFIX}"
    try:
        job.parent.mkdir(parents=True, exist_ok=True)
        partial = job.with_suffix(".partial")
        with partial.open("wb") as fh:
            pickle.dump((kind, frame, options), fh, protocol=pickle.HIGHEST_PROTOCOL)
        partial.replace(job)  # the engine reads whole jobs only
        _send(address, str(job))
    except Exception as exc:  # no renderer, or a full queue: this and later charts are drawn here
        _disable(f"{type(exc).__name__}: {exc}")
        return False
    from IPython.display import display

    display(
        {"text/plain": f"<chart {options.get('title')!r}: drawn beside the kernel>"},
        raw=True,
        metadata={PLACEHOLDER: job.name},
    )
    return True


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with ipykernel
        return False
    return get_ipython() is not None


def _send(address: str, job: str) -> None:
    """One datagram naming the job: no connection, no handshake, never blocks. A renderer
    that is gone refuses it; one that has stopped reading fills its queue, and then the
    send fails too, rather than wait."""
    global _socket
    if _socket is None:
        _socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        _socket.setblocking(False)
    _socket.sendto(job.encode(), address)


def _disable(reason: str) -> None:
    global disabled, _socket
    disabled = reason
    if _socket is not None:
        _socket.close()
        _socket = None


def output(fig: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A figure's display output as the inline backend makes it in a runbook's kernel:
    a PNG (no tight bounding box, see ``charts``) with the figure's repr as text, and the
    background hint matplotlib-inline adds for figures with a transparent background."""
    from IPython.core.pylabtools import print_figure
    from matplotlib_inline.backend_inline import _fetch_figure_metadata

    data = {
        "image/png": print_figure(fig, "png", base64=True, bbox_inches=None),
        "text/plain": repr(fig),
    }
    return data, _fetch_figure_metadata(fig) or {}


def render(job: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Draw a job's chart: its display output (data, metadata)."""
    import matplotlib.pyplot as plt

    from . import charts

    with job.open("rb") as fh:
        kind, frame, options = pickle.load(fh)
    fig = charts.final_figure(kind, frame, options)
    try:
        return output(fig)
    finally:
        plt.close(fig)


def result_path(job: Path) -> Path:
    return job.with_suffix(RESULT_SUFFIX)
