"""The engine on small notebooks written by the tests: records, failures, timeouts, secrets."""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import nbformat
import pytest

from opsnb.engine import RunRequest, prepare, run_runbook
from opsnb.errors import ParameterError, PolicyError, SecretError

PARAMS = (
    'target: str = "demo"  # target\nservice: str = ""  # service\napply: bool = False  # apply\n'
)
SECRET = "pg-S3cret-4242"


def notebook(tmp_path: Path, *cells: str, name: str = "sample") -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_markdown_cell(f"# {name}")]
    nb.cells.append(nbformat.v4.new_code_cell(PARAMS, metadata={"tags": ["parameters"]}))
    nb.cells += [nbformat.v4.new_code_cell(src) for src in cells]
    path = tmp_path / f"{name}.ipynb"
    nbformat.write(nb, str(path))
    return path


@pytest.fixture(autouse=True)
def targets(monkeypatch):
    """``plain``: a live target with no backends; ``secretive``: its PostgreSQL password is a
    secret held in the environment."""
    home = Path(os.environ["OPSNB_HOME"])
    monkeypatch.setenv("TEST_PG_PASSWORD", SECRET)
    (home / "config.yaml").write_text(
        "targets:\n"
        "  plain: {default_service: api}\n"
        "  secretive:\n    postgres: {host: 127.0.0.1, port: 1, "
        "password: {env: TEST_PG_PASSWORD}}\n    default_service: api\n"
        "    policy: {allow_apply: false}\n"
    )
    yield
    (home / "config.yaml").unlink()


@pytest.fixture
def secret_target():
    return "secretive"


def read_run(run_dir: Path) -> tuple[dict, str, str]:
    result = json.loads((run_dir / "result.json").read_text())
    nb_text = (run_dir / result["files"]["notebook"]).read_text()
    html = (run_dir / result["files"]["html"]).read_text()
    return result, nb_text, html


def test_records_come_from_the_notebook(tmp_path):
    path = notebook(
        tmp_path,
        "from opsnb.records import Check, Finding, show\n"
        "show(Check('disk space', 'warn', '91% used'))\n"
        "show(Finding('healthy', ['all good'], 'none'))",
        "print('done', service)",
    )
    outcome = run_runbook(RunRequest(runbook=str(path), target="plain", out_dir=tmp_path / "runs"))
    result, nb_text, html = read_run(outcome.run_dir)
    assert outcome.exit_code == 0 and result["status"] == "ok"
    assert outcome.run_dir.name.endswith("-sample")
    assert result["checks"] == [
        {"name": "disk space", "status": "warn", "detail": "91% used", "cell_index": 3}
    ]
    assert [f["cause"] for f in result["findings"]] == ["healthy"]
    assert result["parameters"]["service"] == "api"  # the target's default service
    assert all(c["status"] == "completed" for c in result["cells"])
    assert all(isinstance(c["duration_seconds"], float) for c in result["cells"])
    nb = nbformat.reads(nb_text, as_version=4)
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert ["injected-parameters"] in tags and nb.metadata["papermill"]["parameters"]
    assert "disk space" in html and '<script src="http' not in html


def test_failing_cell_writes_partial_record_and_names_the_cell(tmp_path):
    path = notebook(tmp_path, "x = 1", "raise RuntimeError('boom in cell')", "print('never')")
    outcome = run_runbook(RunRequest(runbook=str(path), target="plain", out_dir=tmp_path / "runs"))
    result, nb_text, html = read_run(outcome.run_dir)
    assert outcome.exit_code == 1 and result["status"] == "error"
    assert result["error"]["ename"] == "RuntimeError"
    assert "boom in cell" in result["error"]["evalue"]
    failed = [c for c in result["cells"] if c["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["first_line"].startswith("raise RuntimeError")
    assert result["error"]["cell_index"] == failed[0]["index"]
    assert "boom in cell" in html
    never = [c for c in result["cells"] if c["first_line"] == "print('never')"]
    assert never[0]["status"] != "completed"


def test_cell_timeout_stops_a_hung_cell(tmp_path):
    path = notebook(tmp_path, "import time\ntime.sleep(60)")
    began = time.monotonic()
    outcome = run_runbook(
        RunRequest(runbook=str(path), target="plain", out_dir=tmp_path / "runs", cell_timeout=2)
    )
    assert time.monotonic() - began < 30
    assert outcome.exit_code == 1
    assert (outcome.run_dir / "result.json").is_file()


def test_secret_never_reaches_the_run_folder(tmp_path, secret_target):
    # The cell reads the secret the way a backend would, then carelessly prints it.
    path = notebook(
        tmp_path,
        "import os\nprint('password is', os.environ['TEST_PG_PASSWORD'])",
        "raise ValueError('failed with ' + os.environ['TEST_PG_PASSWORD'])",
    )
    outcome = run_runbook(
        RunRequest(runbook=str(path), target=secret_target, out_dir=tmp_path / "runs")
    )
    assert outcome.exit_code == 1
    files = list(outcome.run_dir.iterdir())
    assert {f.suffix for f in files} >= {".ipynb", ".html", ".json"}
    for f in files:
        assert SECRET not in f.read_text(), f"secret leaked into {f.name}"
    assert "[redacted]" in (outcome.run_dir / "sample.ipynb").read_text()


def test_missing_secret_is_a_usage_error_before_anything_runs(tmp_path, secret_target, monkeypatch):
    monkeypatch.delenv("TEST_PG_PASSWORD")
    path = notebook(tmp_path, "print(1)")
    with pytest.raises(SecretError, match="TEST_PG_PASSWORD is not set"):
        prepare(RunRequest(runbook=str(path), target=secret_target, out_dir=tmp_path / "runs"))
    assert not (tmp_path / "runs").exists()


def test_apply_needs_a_policy_that_allows_it(tmp_path, secret_target):
    path = notebook(tmp_path, "print(1)")
    with pytest.raises(PolicyError, match="does not allow --apply"):
        prepare(RunRequest(runbook=str(path), target=secret_target, apply=True))
    with pytest.raises(ParameterError, match="--apply"):
        prepare(RunRequest(runbook=str(path), target="plain", parameters={"apply": "true"}))


def test_a_check_that_raises_is_recorded_and_the_runbook_goes_on(tmp_path):
    path = notebook(
        tmp_path,
        "from opsnb.runtime import open_runbook\nrb = open_runbook(target, service, runbook='x')",
        "with rb.check('parses the answer') as check:\n    {}['missing']",
        "with rb.check('backend without config') as check:\n"
        "    rb.prometheus.named('error_rate', service)",
        "rb.finding('unknown', ['checks failed'], 'escalate')",
    )
    outcome = run_runbook(RunRequest(runbook=str(path), target="plain", out_dir=tmp_path / "runs"))
    result, _, html = read_run(outcome.run_dir)
    assert outcome.exit_code == 1 and result["status"] == "error"
    assert result["completed"] is True and result["error"] is None
    statuses = {c["name"]: (c["status"], c["detail"]) for c in result["checks"]}
    assert statuses["parses the answer"] == ("error", "KeyError: 'missing'")
    assert statuses["backend without config"][0] == "unavailable"
    assert [f["cause"] for f in result["findings"]] == ["unknown"]  # the findings cell ran
    assert [e["check"] for e in result["errors"]] == ["parses the answer"]
    failing_cell = next(c for c in result["cells"] if c.get("failed_checks"))
    assert failing_cell["index"] == result["errors"][0]["cell_index"]
    assert "KeyError" in html  # the traceback is in the cell for people to read


def test_a_run_attaches_to_the_open_incident_of_its_service(tmp_path, monkeypatch):
    from opsnb import incidents
    from opsnb.incidents.model import IncidentUsageError

    monkeypatch.setenv("OPSNB_INCIDENTS", str(tmp_path / "incidents"))
    path = notebook(
        tmp_path,
        "from opsnb.records import Finding, show\nshow(Finding('healthy', ['fine'], 'none'))",
    )
    # No open incident: the run stands alone.
    alone = run_runbook(RunRequest(runbook=str(path), target="plain", out_dir=tmp_path / "runs"))
    assert alone.incident is None
    opened = incidents.open_incident("API errors", "api", "SEV-2")
    attached = run_runbook(RunRequest(runbook=str(path), target="plain", out_dir=tmp_path / "runs"))
    assert attached.incident == opened.id
    kinds = [e.kind for e in incidents.load(opened.id).events]
    assert "run" in kinds and "finding" in kinds
    with pytest.raises(IncidentUsageError):
        prepare(RunRequest(runbook=str(path), target="plain", incident="INC-9999"))


def test_runs_leave_no_open_files_or_threads_behind(tmp_path):
    """opsnb serve runs thousands of runbooks in one process: each run's kernel client, its
    zmq context and thread, must go with its kernel."""
    import gc
    import threading

    from opsnb.engine import execute
    from opsnb.engine.kernels import WarmKernel

    path = notebook(tmp_path, "print('checked')")

    def one_run() -> None:
        kernel = WarmKernel(env={"OPSNB_MODE": "automated"}, preload="")
        request = RunRequest(str(path), "plain", out_dir=tmp_path / "runs", incident="")
        outcome = execute(prepare(request), kernel)
        assert outcome.ok
        kernel.shutdown()  # waits for the background shutdown the run started
        gc.collect()

    def descriptors() -> tuple[int, int]:
        """All open descriptors, and those of them that are epoll or eventfd instances: a
        zmq context and its sockets hold 11 of those (a leaked kernel client 19 in all),
        while the HTTP clients of the session's lab traffic, which open and close TCP
        sockets in the background all along, hold none."""
        links = []
        for fd in os.listdir("/proc/self/fd"):
            with contextlib.suppress(OSError):  # the listing's own descriptor is gone
                links.append(os.readlink(f"/proc/self/fd/{fd}"))
        return len(links), sum(link.startswith("anon_inode:[event") for link in links)

    def new_threads(before: set[int | None]) -> list[str]:
        """Threads started since ``before`` and still running, but for the per-request
        threads of the lab's HTTP servers (the session's traffic comes and goes)."""
        return [
            t.name
            for t in threading.enumerate()
            if t.ident not in before and "process_request_thread" not in t.name
        ]

    one_run()  # the first run may open what stays open (the exporter, caches)
    (files, events), threads = descriptors(), {t.ident for t in threading.enumerate()}
    for _ in range(3):
        one_run()
    (files_after, events_after) = descriptors()
    assert events_after - events <= 2, (events, events_after)
    assert files_after - files <= 12, (files, files_after)  # a leak: 3 runs x 19
    assert len(new_threads(threads)) <= 1, new_threads(threads)
