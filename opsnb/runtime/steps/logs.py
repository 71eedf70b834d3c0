"""What the pods wrote: the error breakdown and the previous container's last lines."""

from __future__ import annotations

from typing import Any

from .. import charts
from ..session import Runbook
from ._common import Marks, _display


def error_logs(rb: Runbook, marks: Marks = ()) -> Any:
    """Errors in the pod logs by type and endpoint, first seen, and per minute."""
    from ...backends import logs as logtools

    report = None
    with rb.check("Error log breakdown") as check:
        report = logtools.error_breakdown(rb.service_logs())
        _display(report.by_type)
        charts.bars(report.by_type, x="error", y="count", title="Errors by type")
        _display(report.by_endpoint)
        if not report.per_minute.empty:
            per_minute = report.per_minute.rename(
                columns={"minute": "timestamp", "errors": "value"}
            )
            charts.series(per_minute, title="Error log lines per minute", rollouts=marks)
        rb.facts.error_types = dict(
            zip(report.by_type["error"], report.by_type["count"], strict=False)
        )
        first = (
            f", first at {report.first_error:%H:%M:%S} UTC"
            if report.first_error is not None
            else ""
        )
        breaching = (
            rb.facts.error_rate is not None and rb.facts.error_rate >= rb.facts.error_threshold
        )
        check.verdict(
            report.error_lines > 0 and breaching,
            f"{report.error_lines} error lines of {report.total_lines}{first}",
            warn=report.error_lines > 0,
        )
    return report


def previous_logs(rb: Runbook, *, tail: int = 20) -> None:
    """The previous container's last lines, for pods that restarted (`kubectl logs --previous`)."""
    with rb.check("Logs before the crash") as check:
        frame = rb.k8s.pods(rb.service.selector)
        restarted = frame[frame["restarts"] > 0]["name"].tolist() if not frame.empty else []
        last_errors = []
        for pod in restarted[:5]:
            try:
                lines = rb.k8s.logs(pod, previous=True, tail=tail)
            except LookupError:
                continue
            print(f"--- {pod} (previous container) ---")
            print("\n".join(lines[-tail:]))
            errors = [ln for ln in lines if " ERROR " in ln or " CRITICAL " in ln]
            if errors:
                last_errors.append(errors[-1].rsplit(" ", 1)[-1])
        check.verdict(False, f"{len(restarted)} restarted pods; last errors: "
                      f"{', '.join(sorted(set(last_errors))) or 'none'}",
                      warn=bool(last_errors))  # fmt: skip
