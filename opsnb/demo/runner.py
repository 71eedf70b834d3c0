"""``opsnb demo``: the diagnosis runbooks against the embedded recorded incidents."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..engine import RunRequest, run_runbook

# (service in the demo target, what happened) for each recorded incident.
INCIDENTS = (
    ("payments", "traffic spike exhausting the database connection pool (2025-01-15)"),
    ("catalog", "bad deployment of revision 12 (2025-03-04)"),
)
RUNBOOKS = ("high-error-rate",)


def run_demo(out_dir: Path, *, echo: Callable[[str], None] = print) -> int:
    """Run every diagnosis runbook on every demo incident; return the number of failed runs."""
    failures = 0
    for service, story in INCIDENTS:
        for runbook in RUNBOOKS:
            echo(f"== {runbook} on demo/{service}: {story}")
            outcome = run_runbook(
                RunRequest(
                    runbook=runbook,
                    target="demo",
                    parameters={"service": service},
                    out_dir=out_dir / service,
                )
            )
            for finding in outcome.result["findings"]:
                echo(f"   finding: {finding['cause']} -> {finding['recommendation']}")
            if not outcome.ok:
                failures += 1
                echo(f"   FAILED: {outcome.result['error']}")
            echo(f"   notebook: {outcome.run_dir / outcome.result['files']['notebook']}")
            echo(f"   html:     {outcome.run_dir / outcome.result['files']['html']}")
    echo(f"demo runs written under {out_dir}")
    return failures
