"""Charts drawn beside the kernel: the notebook is the one the kernel alone would have made,
and no chart is lost when the renderer is gone, stuck or dies during a run."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from opsnb.engine import chart_renderer
from opsnb.engine.chart_renderer import ChartRenderer
from opsnb.engine.kernels import WarmKernel
from opsnb.engine.run import RunRequest, RunResult, execute, prepare
from opsnb.runtime import chart_jobs

CHARTS = 7  # high-error-rate on the demo's payments incident


@pytest.fixture()
def renderer():
    running = ChartRenderer().start()
    deadline = time.monotonic() + 60
    while not running.ready():
        assert running.alive() and time.monotonic() < deadline, "renderer did not start"
        time.sleep(0.01)
    yield running
    running.stop()


def run(tmp_path: Path, renderer: ChartRenderer | None) -> RunResult:
    env = {"OPSNB_MODE": "automated", **(renderer.kernel_env() if renderer else {})}
    request = RunRequest(
        runbook="high-error-rate",
        target="demo",
        parameters={"service": "payments"},
        out_dir=tmp_path / "runs",
        mode="automated",
        incident="",
    )
    return execute(prepare(request), WarmKernel(env=env), renderer)


def outputs(result: RunResult) -> list[dict]:
    nb = json.loads(next(result.run_dir.glob("*.ipynb")).read_text())
    return [output for cell in nb["cells"] for output in cell.get("outputs", [])]


def charts(result: RunResult) -> list[dict]:
    """The notebook's chart outputs as written, and nothing left of the hand-over."""
    found = [o for o in outputs(result) if "image/png" in o.get("data", {})]
    assert not any(chart_jobs.PLACEHOLDER in (o.get("metadata") or {}) for o in outputs(result))
    assert not (result.run_dir / ".charts").exists()
    html = next(result.run_dir.glob("*.html")).read_text()
    assert html.count('<img src="data:image/png;base64,') == len(found)
    return [{"data": o["data"], "metadata": o["metadata"]} for o in found]


@pytest.fixture(scope="module")
def drawn_in_the_kernel(tmp_path_factory) -> list[dict]:
    result = run(tmp_path_factory.mktemp("inline"), None)
    assert result.ok and result.charts is not None and result.charts.total == 0
    return charts(result)


def test_charts_drawn_beside_the_kernel_are_the_kernels_own(
    tmp_path, renderer, drawn_in_the_kernel
) -> None:
    assert len(drawn_in_the_kernel) == CHARTS
    result = run(tmp_path, renderer)
    assert result.ok, result.result.get("errors")
    assert result.charts is not None
    assert (result.charts.by_renderer, result.charts.here) == (CHARTS, 0)
    assert charts(result) == drawn_in_the_kernel  # same PNG bytes, repr and metadata
    assert renderer.alive()


def test_a_renderer_that_is_gone_costs_no_chart(tmp_path, renderer, drawn_in_the_kernel) -> None:
    """The kernel's hand-over is refused at once: it draws every chart itself."""
    assert renderer.pid is not None
    os.killpg(renderer.pid, signal.SIGKILL)  # the renderer and its drawers
    result = run(tmp_path, renderer)
    assert result.ok and result.charts is not None and result.charts.total == 0
    assert charts(result) == drawn_in_the_kernel


def test_charts_a_dying_renderer_left_are_drawn_after_the_run(
    tmp_path, renderer, drawn_in_the_kernel
) -> None:
    """A stopped renderer takes the jobs and draws nothing; it dies while the engine waits
    for it, and the engine draws them."""
    assert renderer.pid is not None
    os.killpg(renderer.pid, signal.SIGSTOP)
    killer = threading.Timer(6.0, os.killpg, (renderer.pid, signal.SIGKILL))
    killer.start()
    try:
        result = run(tmp_path, renderer)
    finally:
        killer.cancel()
        with contextlib.suppress(ProcessLookupError):  # killed, and reaped by alive()
            os.killpg(renderer.pid, signal.SIGKILL)
    assert result.ok and result.charts is not None
    assert (result.charts.by_renderer, result.charts.here) == (0, CHARTS)
    assert charts(result) == drawn_in_the_kernel


def test_a_restarted_renderer_serves_the_same_kernels(renderer) -> None:
    env = renderer.kernel_env()
    assert renderer.pid is not None
    os.kill(renderer.pid, signal.SIGKILL)
    os.waitpid(renderer.pid, 0)
    renderer.ensure_running()
    assert renderer.alive() and renderer.restarts == 1
    assert renderer.kernel_env() == env  # kernels already warm need no new address


def test_placeholders_naming_files_outside_the_job_folder_are_not_followed(tmp_path) -> None:
    outside = tmp_path / "secret.job"
    outside.write_bytes(b"not a job")
    folder = tmp_path / "run" / ".charts"
    folder.mkdir(parents=True)
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "outputs": [
                    {
                        "output_type": "display_data",
                        "data": {"text/plain": "<chart>"},
                        "metadata": {chart_jobs.PLACEHOLDER: "../../secret.job"},
                    }
                ],
            }
        ]
    }
    filled = chart_renderer.fill(nb, folder, renderer_alive=lambda: False)
    (output,) = nb["cells"][0]["outputs"]
    assert filled.here == 1 and output["metadata"] == {}
    assert output["data"] == {"text/plain": ["<chart not drawn: bad job name '../../secret.job'>"]}
    assert outside.read_bytes() == b"not a job" and not folder.exists()


def living_in_group(pgid: int) -> list[int]:
    """Processes of process group ``pgid`` that are not zombies."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, _ppid, group = stat.rsplit(")", 1)[1].split()[:3]
        if int(group) == pgid and state != "Z":
            found.append(int(entry.name))
    return found


def test_a_renderer_outlives_no_killed_serve(tmp_path) -> None:
    """kill -9 of the process that started it: the renderer and its drawer exit, and its
    socket folder goes with them."""
    script = (
        "import time; from opsnb.engine.chart_renderer import ChartRenderer\n"
        "r = ChartRenderer().start()\n"
        "while not r.ready(): time.sleep(0.01)\n"
        "print(r.address, r.pid, flush=True); time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    address, pid = parent.stdout.readline().split()
    deadline = time.monotonic() + 60
    while len(living_in_group(int(pid))) < 2:  # the renderer forks its drawer once warm
        assert time.monotonic() < deadline, living_in_group(int(pid))
        time.sleep(0.05)
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while living_in_group(int(pid)) or Path(address).parent.exists():
        assert time.monotonic() < deadline, (living_in_group(int(pid)), address)
        time.sleep(0.1)
