"""Build ``result.json`` from an executed (or partially executed) notebook."""

from __future__ import annotations

from typing import Any

from ..records import ACTION_MIME, CHECK_MIME, FINDING_MIME, scan


def cell_summaries(nb: dict[str, Any]) -> list[dict[str, Any]]:
    """Per code cell: index, first line, papermill status, duration, and its error if any."""
    cells = []
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata", {})
        pm = meta.get("papermill", {})
        source = cell.get("source", "")
        if isinstance(source, list):
            source = "".join(source)
        summary: dict[str, Any] = {
            "index": index,
            "id": cell.get("id"),
            "tags": meta.get("tags", []),
            "first_line": next((ln for ln in source.splitlines() if ln.strip()), ""),
            "status": pm.get("status", "pending"),
            "duration_seconds": pm.get("duration"),
        }
        error = next((o for o in cell.get("outputs", []) if o.get("output_type") == "error"), None)
        if error is not None:
            summary["status"] = "failed"
            summary["error"] = {"ename": error.get("ename"), "evalue": error.get("evalue")}
        elif pm.get("exception"):
            summary["status"] = "failed"
        cells.append(summary)
    return cells


def build(
    nb: dict[str, Any],
    *,
    runbook: str,
    target: str,
    service: str,
    parameters: dict[str, Any],
    started_at: str,
    finished_at: str,
    duration_seconds: float,
    error: dict[str, Any] | None,
    files: dict[str, str],
) -> dict[str, Any]:
    checks, findings, actions = [], [], []
    for index, mime, payload in scan(nb):
        item = {**payload, "cell_index": index}
        if mime == CHECK_MIME:
            checks.append(item)
        elif mime == FINDING_MIME:
            findings.append(item)
        elif mime == ACTION_MIME:
            actions.append(item)
    cells = cell_summaries(nb)
    # Checks that raised: the cell went on (the error policy), but the record says so.
    errors = [
        {"cell_index": c["cell_index"], "check": c["name"], "detail": c["detail"]}
        for c in checks
        if c["status"] == "error"
    ]
    by_index = {c["index"]: c for c in cells}
    for item in errors:
        cell = by_index.get(item["cell_index"])
        if cell is not None:
            cell.setdefault("failed_checks", []).append(item["check"])
    if error is not None:
        errors.append({"cell_index": error.get("cell_index"), "check": None,
                       "detail": f"{error['ename']}: {error['evalue']}"})  # fmt: skip
    return {
        "format": "opsnb-result/1",
        "runbook": runbook,
        "target": target,
        "service": service,
        "parameters": parameters,
        "status": "error" if errors else "ok",
        "completed": error is None,  # the notebook ran to its last cell
        "error": error,
        "errors": errors,
        "started_at": started_at,
        "finished_at": finished_at,
        "duration_seconds": round(duration_seconds, 3),
        "cells": cells,
        "checks": checks,
        "findings": findings,
        "actions": actions,
        "files": files,
    }
