"""Where a runbook runs: validate, parameterize, execute through papermill, record.

    prepare(request)   everything that can be wrong with the input, before any cell runs
    execute(prepared)  papermill execution with per-cell timeouts and a run deadline;
                       the notebook, its HTML and result.json are written even on failure

The run folder is ``<out>/<UTC timestamp>-<runbook>/`` holding ``<runbook>.ipynb``,
``<runbook>.html`` and ``result.json``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import catalog
from ..catalog import Runbook
from ..config import Target, get_target
from ..errors import ParameterError, PolicyError, UsageError
from ..records import utcnow
from ..secrets import Redactor
from . import record
from .kernels import WarmKernel

if TYPE_CHECKING:
    from .chart_renderer import ChartRenderer, Filled

DEFAULT_CELL_TIMEOUT = 120.0
DEFAULT_DEADLINE = 600.0
# Parameters opsnb sets itself; users choose them with flags, not -p.
RESERVED = {"target": "--target", "apply": "--apply"}


@dataclass
class RunRequest:
    runbook: str
    target: str = "demo"
    parameters: dict[str, Any] = field(default_factory=dict)
    out_dir: Path = Path("runs")
    apply: bool = False
    mode: str = "manual"  # "automated" for runs started by alerts
    cell_timeout: float = DEFAULT_CELL_TIMEOUT
    deadline: float = DEFAULT_DEADLINE
    progress: bool = False
    # The incident to attach the run to; None attaches it to its service's open incident,
    # "" attaches it nowhere.
    incident: str | None = None
    # Write the notebook after every cell (papermill's default), so a long run can be watched
    # and a killed one leaves its progress; off, it is written once at the end (each write
    # costs ~15 ms: validation, redaction, JSON).
    save_every_cell: bool = True


@dataclass
class Prepared:
    request: RunRequest
    runbook: Runbook
    target: Target
    service: str
    parameters: dict[str, Any]
    redactor: Redactor


@dataclass
class RunResult:
    run_dir: Path
    result: dict[str, Any]
    incident: str | None = None  # the incident the run was attached to
    charts: Filled | None = None  # charts put in place after the run (drawn beside it)

    @property
    def ok(self) -> bool:
        return self.result["status"] == "ok"

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1


def prepare(request: RunRequest) -> Prepared:
    """Resolve and validate everything; raise a UsageError (exit 2) before anything runs."""
    for name, flag in RESERVED.items():
        if name in request.parameters:
            raise ParameterError(f"set {name!r} with {flag}, not with -p", parameter=name)
    runbook = catalog.find(request.runbook)
    target = get_target(request.target)
    params = runbook.validate(request.parameters)
    service = target.service(params.get("service") or None).name
    if target.kind == "snapshot":
        _require_snapshot_service(target, service)
    for ref in target.secret_refs():
        ref.resolve()  # a missing secret is a configuration error, found now
    if request.apply:
        if "apply" not in runbook.parameters:
            raise UsageError(f"runbook {runbook.name!r} has no resolution steps to apply")
        if not target.policy.allow_apply:
            raise PolicyError(
                f"target {target.name!r} does not allow --apply (policy.allow_apply is false); "
                "run without --apply to preview the changes"
            )
        if request.mode == "automated" and runbook.name not in target.policy.automatic_actions:
            raise PolicyError(
                f"target {target.name!r} does not allow automated runs of {runbook.name!r} to apply"
            )
    from ..severity import load_policy

    load_policy()  # a malformed severity.yaml is a usage error, found before any cell runs
    if request.incident:
        from .. import incidents

        incidents.load(request.incident)  # an unknown incident id fails now, not after the run
    params.update(target=target.name, service=service)
    if "apply" in runbook.parameters:
        params["apply"] = bool(request.apply)
    return Prepared(request, runbook, target, service, params, target.redactor())


def _require_snapshot_service(target: Target, service: str) -> None:
    from ..backends import snapshot_index

    assert target.snapshot is not None
    try:
        snapshot_index.require(target.snapshot, service)
    except LookupError as exc:
        raise ParameterError(f"target {target.name!r}: {exc}", parameter="service") from None


def make_run_dir(out_dir: Path, runbook: str) -> Path:
    """Create a new, unique run folder; never reuse one."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for attempt in range(1, 1000):
        suffix = "" if attempt == 1 else f"-{attempt}"
        path = out_dir / f"{stamp}-{runbook}{suffix}"
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise UsageError(f"cannot create a run folder in {out_dir}")


def start_kernel(mode: str = "manual") -> WarmKernel:
    """Launch the run's kernel early, so it warms up while the input is validated."""
    return WarmKernel(env={"OPSNB_MODE": mode})


def execute(
    prepared: Prepared, kernel: WarmKernel | None = None, renderer: ChartRenderer | None = None
) -> RunResult:
    """Run a prepared runbook on ``kernel`` (a fresh warm kernel when not given). With a
    ``renderer`` (whose address the kernel's environment holds), charts are drawn beside
    the kernel and put in place once the notebook has run."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from ..runtime import chart_jobs
    from . import chart_renderer, export, redacting_io

    request, runbook = prepared.request, prepared.runbook
    kernel = kernel or start_kernel(request.mode)
    # The HTML exporter takes a second to import and compile its templates: do that while
    # the kernel runs the notebook.
    exporter = threading.Thread(target=export.warm_up, daemon=True)
    exporter.start()
    run_dir = make_run_dir(Path(request.out_dir), runbook.name)
    nb_path = run_dir / f"{runbook.name}.ipynb"
    chart_folder = run_dir / ".charts"
    output = redacting_io.route(nb_path, prepared.redactor)
    deadline = time.monotonic() + request.deadline

    def cell_timeout(_cell: Any) -> int:
        # Each cell gets its own timeout, but never more than what is left of the run.
        remaining = deadline - time.monotonic()
        return max(1, int(min(request.cell_timeout, remaining)))

    started_at, began = utcnow(), time.monotonic()
    error: dict[str, Any] | None = None
    try:
        km = kernel.wait()
        setup = f"import os; os.chdir({str(run_dir)!r})"
        if renderer is not None:  # the kernel hands its charts over only given a job folder
            setup += f"; os.environ[{chart_jobs.FOLDER!r}] = {str(chart_folder)!r}"
        kernel.run_silently(setup)
        papermill.execute_notebook(
            str(runbook.path),
            output,
            parameters=prepared.parameters,
            kernel_name="python3",
            progress_bar=request.progress,
            log_output=False,
            start_timeout=60,
            timeout_func=cell_timeout,
            km=km,
            request_save_on_cell_execute=request.save_every_cell,
        )
    except PapermillExecutionError as exc:
        error = {"ename": exc.ename, "evalue": prepared.redactor.text(str(exc.evalue))}
    except Exception as exc:  # the kernel died, would not start, or the deadline passed
        error = {"ename": type(exc).__name__, "evalue": prepared.redactor.text(str(exc))}
    finally:
        kernel.shutdown(wait=False)  # each kernel serves one run; nothing waits for its exit

    nb = redacting_io.last_written(nb_path)
    filled = chart_renderer.Filled()
    if nb is not None and renderer is not None:  # only then can a kernel hand charts over
        # what is left of the run's deadline, but a few seconds to draw late charts here
        wait = min(30.0, max(5.0, deadline - time.monotonic()))
        filled = chart_renderer.fill(nb, chart_folder, renderer_alive=renderer.alive, timeout=wait)
        if filled.here:
            print(f"opsnb: {filled.here} chart(s) drawn after the run, not by the renderer",
                  file=sys.stderr)  # fmt: skip
        if filled.total:
            nb = redacting_io.rewrite(nb_path, nb, prepared.redactor)
    finished_at, duration = utcnow(), time.monotonic() - began  # charts in place: done
    redacting_io.release(nb_path)
    if nb is None:  # nothing was written: the kernel never started
        nb = json.loads(runbook.path.read_text(encoding="utf-8"))
        nb_path.write_text(json.dumps(prepared.redactor.data(nb), indent=1) + "\n")
    html_path = run_dir / f"{runbook.name}.html"
    exporter.join()
    try:
        export.to_html(nb, html_path, title=f"{runbook.name} on {prepared.target.name}")
    except Exception as exc:  # a broken export must not lose the run's record
        print(f"opsnb: could not render HTML: {exc}", file=sys.stderr)
    result = record.build(
        nb,
        runbook=runbook.name,
        target=prepared.target.name,
        service=prepared.service,
        parameters=prepared.redactor.parameters(prepared.parameters),
        started_at=started_at,
        finished_at=finished_at,
        duration_seconds=duration,
        error=error,
        files={"notebook": nb_path.name, "html": html_path.name},
    )
    if error is not None:
        failed = next((c for c in result["cells"] if c["status"] == "failed"), None)
        if failed is not None:
            error.update(cell_index=failed["index"], cell=failed["first_line"])
    (run_dir / "result.json").write_text(
        json.dumps(prepared.redactor.data(result), indent=2) + "\n", encoding="utf-8"
    )
    outcome = RunResult(run_dir, result, charts=filled)
    outcome.incident = attach_to_incident(outcome, prepared)
    return outcome


def attach_to_incident(outcome: RunResult, prepared: Prepared) -> str | None:
    """Put the run on the incident's timeline; a failure here never loses the run."""
    wanted = prepared.request.incident
    if wanted == "":
        return None
    from .. import incidents

    try:
        return incidents.attach_run(outcome.run_dir, incident_id=wanted, service=prepared.service)
    except Exception as exc:  # the run is written; the timeline can be fixed by hand
        print(f"opsnb: run not attached to an incident: {exc}", file=sys.stderr)
        return None


def run_runbook(request: RunRequest) -> RunResult:
    kernel = start_kernel(request.mode)
    try:
        prepared = prepare(request)
    except BaseException:
        kernel.shutdown()
        raise
    return execute(prepared, kernel)
