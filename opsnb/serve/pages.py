"""HTML pages: the list of runs, and each run's executed notebook.

Run files are addressed by run id, never by a path from the request: the folder comes from
the database and is resolved and checked to lie inside the data folder before anything is
read, so no request can read outside it.
"""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any

FILES = {"html": ".html", "notebook": ".ipynb", "result": "result.json"}


def run_file(data_dir: Path, run: dict[str, Any], which: str) -> Path | None:
    """The run's notebook HTML, notebook or result.json; None when missing or outside."""
    if not run.get("run_dir") or which not in FILES:
        return None
    root = (data_dir / "runs").resolve()
    folder = (data_dir / run["run_dir"]).resolve()
    if not folder.is_relative_to(root) or folder == root:
        return None
    name = "result.json" if which == "result" else f"{run['runbook']}{FILES[which]}"
    path = (folder / name).resolve()
    if not path.is_relative_to(folder) or not path.is_file():
        return None
    return path


def _when(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) + "Z" if ts else ""


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.1f} s"


def _findings(run: dict[str, Any]) -> str:
    return ", ".join(f"{f.get('cause')} → {f.get('recommendation')}" for f in run["findings"])


STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1f2328}
table{border-collapse:collapse;width:100%}th,td{padding:.3rem .5rem;border-bottom:1px solid #d0d7de;
text-align:left;font-size:.9rem;vertical-align:top}th{background:#f6f8fa}
.ok{color:#1a7f37}.error,.failed{color:#cf222e}.queued,.running{color:#9a6700}
"""


def runs_page(runs: list[dict[str, Any]], stats: dict[str, Any]) -> str:
    rows = []
    for r in runs:
        e = html.escape
        link = f'<a href="/runs/{r["id"]}">{r["id"]}</a>' if r.get("run_dir") else str(r["id"])
        rows.append(
            "<tr>"
            f"<td>{link}</td><td>{e(r.get('alertname') or '')}<br><small>{e(r['fingerprint'])}"
            f"</small></td><td>{e(r['kind'])}<br><small>{e(r.get('reason') or '')}</small></td>"
            f"<td>{e(r['runbook'])}</td><td>{e(r['target'])}</td><td>{e(r.get('service') or '')}"
            f'</td><td class="{e(r["status"])}">{e(r["status"])}'
            f"{'<br><small>' + e(str(r['error'])[:200]) + '</small>' if r.get('error') else ''}"
            f"</td><td>{e(_findings(r))}</td>"
            f"<td>{_seconds(r.get('duration'))}</td>"
            f"<td>{_when(r['created_at'])}</td></tr>"
        )
    summary = ", ".join(f"{html.escape(str(k))}: {v}" for k, v in stats.items())
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>opsnb runs</title>'
        f"<style>{STYLE}</style></head><body><h1>opsnb: alert-driven runs</h1>"
        f"<p>{summary}</p><table><tr><th>run</th><th>alert</th><th>why</th><th>runbook</th>"
        "<th>target</th><th>service</th><th>status</th><th>findings</th><th>duration</th>"
        f"<th>queued at</th></tr>{''.join(rows)}</table></body></html>"
    )


def in_progress_page(fingerprint: str, run: dict[str, Any], refresh_seconds: int = 2) -> str:
    """What the link from an alert shows while its diagnosis is queued or running: the page
    reloads itself and lands on the executed notebook once it is there."""
    e = html.escape
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8">'
        f'<meta http-equiv="refresh" content="{refresh_seconds}">'
        f"<title>opsnb: diagnosing {e(run.get('alertname') or fingerprint)}</title>"
        f"<style>{STYLE}</style></head><body>"
        f"<h1>{e(run['runbook'])} is {e(run['status'])} for alert "
        f"{e(run.get('alertname') or '')} <small>{e(fingerprint)}</small></h1>"
        f"<p>Run {run['id']} on target {e(run['target'])}, queued at "
        f"{_when(run['created_at'])}. This page reloads every {refresh_seconds} s and shows "
        "the executed notebook when it is ready.</p></body></html>"
    )
