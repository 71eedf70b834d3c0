"""Write an incident's postmortem folder:

    postmortems/INC-0001/
      postmortem.md             the template's structure; people edit its free-text sections
      postmortem.html           the same, one self-contained page (images as data URIs)
      postmortem.json           the computed figures, for tools (format opsnb-postmortem/1)
      .postmortem.previous.md   the Markdown as it was before this generation
      images/                   timeline.png (the gantt chart), sli.png, pool.png
      data/metrics.csv          every sample of the incident window's series
      appendix/A1-<run>/        each attached run's .ipynb and .html, its charts as
                                figure-NN.png

``images/``, ``data/`` and ``appendix/`` are rewritten on every generation;
``postmortem.md`` is merged (see ``merge``).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..incidents import Store
from . import render_html, render_md
from .appendix import RunCopy, copy_runs, data_rows, moments, write_csv
from .charts import display_range, gantt_png, pool_png, sli_png
from .document import Document, Formatter, Image
from .followup import action_items, appendix, lessons, orphans, prevention, recovery, sign_off
from .gather import Gathered, gather
from .impact import Detection, Impact, compute_detection, compute_impact
from .merge import merge
from .phases import gantt_tasks, mermaid, precision, timeline_rows
from .sections import (
    Context,
    detection_section,
    header,
    impact_section,
    response,
    root_cause,
    summary,
    team,
    timeline,
)

FORMAT = "opsnb-postmortem/1"
GENERATED = ("images", "data", "appendix")
PARTS = (
    header,
    team,
    summary,
    impact_section,
    timeline,
    root_cause,
    detection_section,
    response,
    recovery,
    lessons,
    action_items,
    prevention,
    appendix,
    sign_off,
)


@dataclass
class Postmortem:
    folder: Path
    markdown: Path
    html: Path
    json: Path
    gathered: Gathered
    impact: Impact
    detection: Detection
    copies: list[RunCopy] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # free-text sections people had edited
    problems: list[str] = field(default_factory=list)


def default_folder(incident_id: str) -> Path:
    return Path("postmortems") / incident_id


def generate(
    incident_id: str,
    *,
    out: str | os.PathLike[str] | None = None,
    root: str | os.PathLike[str] | None = None,
    snapshot: str | os.PathLike[str] | None = None,
    target: str | None = None,
    store: Store | None = None,
) -> Postmortem:
    """Gather, compute, render and write the postmortem of ``incident_id``."""
    gathered = gather(incident_id, root=root, snapshot=snapshot, target=target, store=store)
    inc = gathered.incident
    impact = compute_impact(gathered)
    detection = compute_detection(gathered, impact)
    rows = timeline_rows(gathered, impact)
    tasks = gantt_tasks(gathered, impact, detection)
    seconds = precision([r.at for r in rows] + [t.start for t in tasks]) == "seconds"
    fmt = Formatter(impact.window_start, seconds=seconds)

    folder = Path(out) if out is not None else default_folder(inc.id)
    folder.mkdir(parents=True, exist_ok=True)
    for name in GENERATED:
        shutil.rmtree(folder / name, ignore_errors=True)
    ctx = Context(gathered, impact, detection, rows, tasks, mermaid(tasks), fmt)
    marks = [
        (at, label)
        for at, label in (
            (detection.milestones["detected"].at, "alert" if detection.alert else "opened"),
            (detection.milestones["mitigated"].at, "mitigation"),
            (detection.milestones["resolved"].at, "resolved"),
        )
        if at is not None
    ]
    images = {
        "timeline": (
            gantt_png(tasks),
            "The incident's phases (UTC): the gantt chart of the timeline",
        )
    }
    metrics = gathered.metrics
    if metrics is not None and impact.problem is None:
        images["sli"] = (
            sli_png(metrics, impact, marks),
            "Error rate and p99 latency against their SLOs; the shaded band is the incident window",
        )
        images["pool"] = (pool_png(metrics, impact, marks), "Database connection pool by state")
        start, end = display_range(metrics, impact)
        ctx.data = data_rows(metrics, start, end, moments(impact, detection))
        write_csv(metrics, folder / "data" / "metrics.csv")
        ctx.csv_path = "data/metrics.csv"
    for key, (png, caption) in images.items():
        if png is None:
            continue
        path = folder / "images" / f"{key}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)
        ctx.charts[key] = Image(f"images/{key}.png", caption, png)
    ctx.copies = copy_runs(gathered.runs, folder)

    doc = Document(f"Incident Postmortem: {inc.title}")
    for part in PARTS:
        part(doc, ctx)
    md_path = folder / "postmortem.md"
    previous = md_path.read_text(encoding="utf-8") if md_path.is_file() else None
    kept, problems = merge(doc, previous)
    orphans(doc, kept)
    if previous is not None:
        _write(folder / ".postmortem.previous.md", previous)
    _write(md_path, render_md.render(doc))
    html_path = _write(folder / "postmortem.html", render_html.render(doc))
    result = Postmortem(
        folder,
        md_path,
        html_path,
        folder / "postmortem.json",
        gathered,
        impact,
        detection,
        ctx.copies,
        problems=problems,
    )
    result.kept = [b.key for b in doc.free_texts() if b.content is not None]
    _write(result.json, json.dumps(summary_json(result, ctx), indent=2) + "\n")
    return result


def _write(path: Path, text: str) -> Path:
    """Write through a temporary file and a rename: never a half-written postmortem."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def summary_json(result: Postmortem, ctx: Context) -> dict[str, Any]:
    inc = result.gathered.incident
    metrics = result.gathered.metrics
    return {
        "format": FORMAT,
        "incident": inc.id,
        "title": inc.title,
        "service": inc.service,
        "severity": inc.label,
        "status": inc.status,
        "generated_at": result.gathered.generated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "events": len(inc.events),
        "head": {"id": inc.head.id, "hash": inc.head.hash} if inc.head else None,
        "metrics": {
            "source": metrics.source if metrics else None,
            "problem": result.gathered.metrics_problem,
            "rate_window": metrics.rate_window if metrics else None,
            "step_seconds": metrics.step_seconds if metrics else None,
            "queries": metrics.queries if metrics else {},
        },
        "impact": result.impact.to_dict(),
        "detection": [m.to_dict() for m in result.detection.measures],
        "timeline": [
            {
                "at": r.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "text": r.text,
                "by": r.by,
                "kind": r.kind,
                "ref": r.ref,
            }
            for r in ctx.rows
        ],
        "gantt": [
            {
                "section": t.section,
                "name": t.name,
                "start": t.start.isoformat(),
                "end": t.end.isoformat(),
                "milestone": t.milestone,
            }
            for t in ctx.tasks
        ],
        "action_items": [i.to_dict() for i in inc.action_items],
        "runs": [
            {
                "label": c.label,
                "run_dir": str(c.run.run_dir),
                "runbook": c.run.runbook,
                "notebook": c.notebook,
                "html": c.html,
                "problem": c.problem,
                "figures": [{"path": f.path, "caption": f.caption} for f in c.figures],
            }
            for c in result.copies
        ],
        "images": {k: v.path for k, v in ctx.charts.items()},
        "free_text_kept": result.kept,
        "problems": result.problems,
        "files": {"markdown": result.markdown.name, "html": result.html.name},
    }
