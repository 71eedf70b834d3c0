"""The command line on the embedded demo: a fresh user's first commands, and bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def opsnb(*args: str, cwd: Path | None = None, env: dict | None = None):
    return subprocess.run(
        [str(BIN / "opsnb"), *args], capture_output=True, text=True, cwd=cwd,
        env={**os.environ, **(env or {})}, timeout=300,
    )  # fmt: skip


def runs_in(folder: Path) -> list[Path]:
    return sorted(p.parent for p in folder.rglob("result.json"))


@pytest.fixture(scope="module")
def demo_out(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    out = tmp_path_factory.mktemp("demo")
    return opsnb("demo", "--out", str(out)), out


def test_demo_runs_both_incidents_with_the_right_findings(demo_out):
    done, out = demo_out
    assert done.returncode == 0, done.stderr
    results = {}
    for run_dir in runs_in(out):
        result = json.loads((run_dir / "result.json").read_text())
        results[result["service"]] = (run_dir, result)
    assert set(results) == {"payments", "catalog"}
    payments, catalog = results["payments"][1], results["catalog"][1]
    assert payments["findings"][0]["cause"] == "db-connection-pool-exhausted"
    assert payments["findings"][0]["recommendation"] == "scale-up"
    assert "traffic-spike" in [f["cause"] for f in payments["findings"]]
    assert catalog["findings"][0]["cause"] == "recent-deployment"
    assert catalog["findings"][0]["recommendation"] == "rollback"
    for run_dir, result in results.values():
        assert result["status"] == "ok"
        assert str(run_dir / result["files"]["html"]) in done.stdout
        assert not [c for c in result["checks"] if c["status"] == "unavailable"], result["checks"]
        # The resolution is staged, not applied: the demo is a read-only snapshot.
        assert result["actions"] and all(a["dry_run"] for a in result["actions"])


def test_demo_notebooks_have_charts_and_no_errors(demo_out):
    _, out = demo_out
    for run_dir in runs_in(out):
        result = json.loads((run_dir / "result.json").read_text())
        nb_path = run_dir / result["files"]["notebook"]
        nb = nbformat.read(str(nb_path), as_version=4)
        nbformat.validate(nb)
        outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
        assert not [o for o in outputs if o.output_type == "error"]
        images = [o for o in outputs if "image/png" in o.get("data", {})]
        assert len(images) >= 5
        assert nb_path.stat().st_size < 1_000_000
        html = (run_dir / result["files"]["html"]).read_text()
        assert html.count("data:image/png;base64,") >= 5
        assert 'src="http' not in html  # opens offline


def test_run_prints_the_run_folder_last(tmp_path):
    done = opsnb("run", "high-error-rate", "-p", "service", "catalog", "--out", str(tmp_path))
    assert done.returncode == 0, done.stderr
    last = Path(done.stdout.strip().splitlines()[-1])
    assert last.parent == tmp_path and last.name.endswith("-high-error-rate")
    assert {p.name for p in last.iterdir()} == {
        "high-error-rate.ipynb", "high-error-rate.html", "result.json",
    }  # fmt: skip
    assert "finding: recent-deployment -> rollback" in done.stderr


def test_plain_papermill_runs_the_runbook(tmp_path):
    out = tmp_path / "out.ipynb"
    done = subprocess.run(
        [str(BIN / "papermill"), str(ROOT / "runbooks" / "high-error-rate.ipynb"), str(out),
         "-p", "target", "demo", "--no-progress-bar", "-k", "python3"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    from opsnb.records import FINDING_MIME, scan

    findings = [
        p for _, mime, p in scan(nbformat.read(str(out), as_version=4)) if mime == FINDING_MIME
    ]
    assert findings[0]["cause"] == "db-connection-pool-exhausted"


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "no-such-runbook"], "unknown runbook 'no-such-runbook'"),
        (["run", "high-error-rate", "--target", "nowhere"], "unknown target 'nowhere'"),
        (["run", "high-error-rate", "-p", "colour", "red"], "has no parameter 'colour'"),
        (["run", "high-error-rate", "-p", "window_minutes", "an hour"], "expects int"),
        (["run", "high-error-rate", "-p", "starts_at", "an hour ago"], "expects an ISO 8601"),
        (["run", "high-error-rate", "-p", "service", "nope"], "no snapshot for service 'nope'"),
        (["run", "high-error-rate", "--apply"], "does not allow --apply"),
        (["run", "high-error-rate", "-p", "target", "demo"], "with --target"),
        (["run", "high-error-rate", "--incident", "INC-0042"], "no incident INC-0042"),
    ],
)
def test_bad_input_exits_2_naming_the_problem_and_writes_nothing(tmp_path, args, message):
    out = tmp_path / "runs"
    done = opsnb(*args, "--out", str(out))
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert message in done.stderr
    assert not out.exists()


def test_malformed_config_file_exits_2(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("targets:\n  lab: {prometheus: {url: [oops}\n")
    done = opsnb("run", "high-error-rate", "--out", str(tmp_path / "runs"),
                 env={"OPSNB_CONFIG": str(bad)})  # fmt: skip
    assert done.returncode == 2
    assert "bad.yaml" in done.stderr and "not valid YAML" in done.stderr
    assert not (tmp_path / "runs").exists()


def test_lab_command_is_the_lab_entry_point():
    helped = opsnb("lab", "--help")
    assert helped.returncode == 0 and "--fault NAME" in helped.stdout


def test_list_and_runbook_help():
    listing = opsnb("list")
    assert listing.returncode == 0 and "high-error-rate" in listing.stdout
    helped = opsnb("run", "high-error-rate", "--help")
    assert helped.returncode == 0
    assert "window_minutes   int" in helped.stdout and "default 60" in helped.stdout
