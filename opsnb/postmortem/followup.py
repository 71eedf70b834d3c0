"""The second half of the Blameless Postmortem Template: recovery, lessons learned, action
items, prevention, the appendix (supporting data, the runs' notebooks and charts, the
checklists) and sign-off; then whatever people wrote in sections that no longer exist."""

from __future__ import annotations

from datetime import date, timedelta

from .appendix import incident_checklist, postmortem_checklist
from .document import Bullets, Code, Document, FreeText, Heading, Image, Para, Rule, Table
from .impact import applied_actions
from .merge import Written
from .phases import action_text
from .sections import TODO, Context

BLAMELESS = (
    "_This postmortem follows blameless principles. We focus on improving systems and "
    "processes, not assigning blame to individuals. Everyone involved acted in good faith "
    "with the information available at the time._"
)
# (heading, days after the resolution the due date falls within)
HORIZONS = (
    ("Immediate (This Week)", 7),
    ("Short-term (This Sprint)", 30),
    ("Long-term (This Quarter)", 92),
)


def recovery(doc: Document, ctx: Context) -> None:
    fmt, inc = ctx.fmt, ctx.gathered.incident
    applied = applied_actions(ctx.gathered.entries)
    taken = [f"{fmt.time(e.at)}: {action_text(e.event.data)}" for e in applied]
    if inc.summary:
        taken.append(
            f"{fmt.time(ctx.detection.milestones['resolved'].at)}: resolved: {inc.summary}"
        )
    previews = [e for e in ctx.gathered.entries if e.kind == "action" and e not in applied]
    doc.add(Heading(2, "Recovery"), Heading(3, "Actions Taken to Restore Service"))
    doc.add(Bullets(taken, ordered=True) if taken else Para("_No applied action recorded._"))
    if previews:
        doc.add(
            Para("Staged by the runbooks but not applied (previews, refusals):"),
            Bullets([f"{fmt.time(e.at)}: {action_text(e.event.data)}" for e in previews]),
        )
    doc.add(FreeText("recovery-notes", "_Steps taken outside opsnb, if any._"))
    checks = []
    if ctx.impact.recovered_at is not None:
        checks.append(
            f"{fmt.time(ctx.impact.recovered_at)}: error rate back within its SLO "
            "and staying there (metrics)"
        )
    for copy in ctx.copies:
        result = copy.run.result or {}
        if result.get("runbook") == "verify-resolution":
            counts: dict[str, int] = {}
            for c in result.get("checks") or []:
                counts[str(c.get("status"))] = counts.get(str(c.get("status")), 0) + 1
            words = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
            checks.append(f"`verify-resolution` (appendix {copy.label}): {words}")
    doc.add(Heading(3, "Verification Steps"))
    if checks:
        doc.add(Bullets(checks))
    doc.add(
        FreeText("verification", "```bash\n# Verification commands run during recovery\n```"),
        Rule(),
    )


def lessons(doc: Document, ctx: Context) -> None:
    doc.add(
        Heading(2, "Lessons Learned"),
        Heading(3, "What We Learned"),
        FreeText("what-we-learned", f"1. {TODO}"),
        Heading(3, "Surprising Findings"),
        FreeText("surprising-findings", f"- {TODO}"),
        Rule(),
    )


def _horizon(due: str | None, resolved: date) -> str:
    if not due:
        return "Unscheduled (No Due Date)"
    try:
        when = date.fromisoformat(due)
    except ValueError:
        return "Unscheduled (No Due Date)"
    for name, days in HORIZONS:
        if when <= resolved + timedelta(days=days):
            return name
    return "Later"


def action_items(doc: Document, ctx: Context) -> None:
    inc = ctx.gathered.incident
    items = inc.action_items
    doc.add(
        Heading(2, "Action Items"),
        Para(
            "From the notes marked as action items (`opsnb incident note "
            f"{inc.id} TEXT --action-item --owner @name --due YYYY-MM-DD --ticket T "
            "--priority P1`); each needs an owner, a due date and a ticket."
        ),
    )
    if not items:
        doc.add(Para("_No action items recorded yet._"), Rule())
        return
    resolved = ctx.impact.window_end.date()
    groups: dict[str, list[list[str]]] = {}
    for item in items:
        row = [
            item.id,
            item.text,
            item.owner or "_missing_",
            item.due or "_missing_",
            item.ticket or "_missing_",
            item.priority or "-",
        ]
        groups.setdefault(_horizon(item.due, resolved), []).append(row)
    order = [name for name, _ in HORIZONS] + ["Later", "Unscheduled (No Due Date)"]
    for name in order:
        if name in groups:
            doc.add(
                Heading(3, name),
                Table(["ID", "Action", "Owner", "Due", "Ticket", "Priority"], groups[name]),
            )
    missing = [i.id for i in items if not (i.owner and i.due and i.ticket)]
    if missing:
        doc.add(Para(f"Missing an owner, due date or ticket: {', '.join(missing)}."))
    doc.add(Rule())


def prevention(doc: Document, ctx: Context) -> None:
    doc.add(
        Heading(2, "Prevention"),
        Heading(3, "How Do We Prevent This From Happening Again?"),
        FreeText(
            "prevention",
            f"| Prevention Measure | Implementation | Timeline |\n|---|---|---|\n| {TODO} | | |",
        ),
        Heading(3, "Similar Incidents to Review"),
    )
    similar = ctx.gathered.similar
    if similar:
        doc.add(
            Table(
                ["Incident", "Date", "Title", "Status"],
                [[i.id, i.opened_at[:10], i.title, i.status] for i in similar],
            )
        )
    doc.add(
        FreeText(
            "similar-incidents",
            "| Incident | Date | Similarity | Lessons Applied? |\n"
            f"|---|---|---|---|\n| {TODO} | | | |",
        ),
        Rule(),
    )


def appendix(doc: Document, ctx: Context) -> None:
    fmt = ctx.fmt
    doc.add(Heading(2, "Appendix"), Heading(3, "Supporting Data"))
    metrics = ctx.gathered.metrics
    if metrics is None or not ctx.data:
        doc.add(Para(f"_No metrics: {ctx.impact.problem or 'none read'}._"))
    else:
        rows = [
            [
                fmt.time(r.at),
                fmt.pct(r.values.get("error_rate")),
                _num(r.values.get("throughput"), 1),
                fmt.ms(r.values.get("latency_p99")),
                r.note,
            ]
            for r in ctx.data
        ]
        doc.add(
            Heading(4, "Error Rate During Incident"),
            Table(["Time", "Error Rate", "Requests/s", "p99 Latency", "Note"], rows),
        )
        if any(r.values.get("pool_active") is not None for r in ctx.data):
            pool = [
                [
                    fmt.time(r.at),
                    _num(r.values.get("pool_active")),
                    _num(r.values.get("pool_idle")),
                    _num(r.values.get("pool_waiting")),
                    r.note,
                ]
                for r in ctx.data
            ]
            doc.add(
                Heading(4, "Connection Pool Metrics"),
                Table(["Time", "Active", "Idle", "Waiting", "Note"], pool),
            )
        if ctx.csv_path:
            doc.add(
                Para(f"Every sample: [{ctx.csv_path}]({ctx.csv_path}). Queries ({metrics.source}):")
            )
        doc.add(Code("\n".join(f"{k}: {q}" for k, q in metrics.queries.items()), "promql"))
        if metrics.unavailable:
            doc.add(
                Para(
                    "Not available: "
                    + "; ".join(f"{k} ({v})" for k, v in metrics.unavailable.items())
                    + "."
                )
            )
    runs(doc, ctx)
    doc.add(
        Heading(3, "Checklists"),
        Heading(4, "Incident Response Checklist"),
        FreeText("incident-checklist", incident_checklist(ctx.gathered, ctx.impact, ctx.detection)),
        Heading(4, "Postmortem Checklist"),
        FreeText("postmortem-checklist", postmortem_checklist(ctx.gathered, ctx.impact)),
        Heading(3, "Related Documents"),
        FreeText("related-documents", _related(ctx)),
        Heading(3, "Postmortem Meeting Notes"),
        FreeText("meeting-notes", "_Raw notes from the postmortem meeting._"),
        Rule(),
    )


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _related(ctx: Context) -> str:
    names = sorted({c.run.runbook for c in ctx.copies})
    lines = [f"- Runbook `{n}` (`opsnb run {n} --help`)" for n in names]
    folder = ctx.gathered.root / ctx.gathered.incident.id
    lines.append(
        f"- The incident's record: `{folder / 'events.jsonl'}` (`opsnb incident show "
        f"{ctx.gathered.incident.id}`)"
    )
    return "\n".join(lines)


def runs(doc: Document, ctx: Context) -> None:
    fmt = ctx.fmt
    doc.add(Heading(3, "Runbook Runs"))
    if not ctx.copies:
        doc.add(Para("_No runbook run was attached to the incident._"))
    by_dir = {str(e.event.data.get("run_dir")): e for e in ctx.gathered.entries if e.kind == "run"}
    for copy in ctx.copies:
        result = copy.run.result or {}
        entry = by_dir.get(str(copy.run.run_dir))
        where = f"{result.get('target')}/{result.get('service')}" if result else "?"
        doc.add(Heading(4, f"{copy.label}: {copy.run.runbook} on {where}"))
        facts = [
            f"Status: {result.get('status', '?')}; started {result.get('started_at', '?')}, "
            f"{result.get('duration_seconds', '?')} s"
        ]
        if entry is not None and entry.corrected_by:
            facts.append(
                f"On the timeline at {fmt.time(entry.at)} (corrected by "
                f"{', '.join(entry.corrected_by)})"
            )
        if copy.notebook:
            facts.append(f"Executed notebook: [{copy.notebook}]({copy.notebook})")
        if copy.html:
            facts.append(f"HTML: [{copy.html}]({copy.html})")
        facts.append(f"Run folder: `{copy.run.run_dir}`")
        if copy.problem:
            facts.append(f"_{copy.problem}_")
        doc.add(Bullets(facts))
        checks = [c for c in result.get("checks") or [] if c.get("status") != "ok"]
        if checks:
            doc.add(
                Table(
                    ["Check", "Status", "Detail"],
                    [
                        [str(c.get("name")), str(c.get("status")), str(c.get("detail") or "")]
                        for c in checks
                    ],
                )
            )
        doc.add(*(Image(f.path, f.caption, f.data) for f in copy.figures))


def sign_off(doc: Document, ctx: Context) -> None:
    doc.add(
        Heading(2, "Sign-off"),
        FreeText(
            "sign-off",
            "| Role | Name | Date |\n|---|---|---|\n| Postmortem Owner | @name | "
            "YYYY-MM-DD |\n| Engineering Manager | @name | YYYY-MM-DD |\n| Service Owner | @name | "
            "YYYY-MM-DD |",
        ),
        Rule(),
        Para(BLAMELESS),
    )


def orphans(doc: Document, kept: list[Written]) -> None:
    if not kept:
        return
    doc.add(
        Heading(2, "Kept from the Previous Version"),
        Para(
            "_These sections were written by people in an earlier version and have no place in "
            "this one any more; they are kept until someone deletes them._"
        ),
    )
    for written in kept:
        doc.add(Heading(3, written.key), FreeText(written.key, "", content=written.content))
