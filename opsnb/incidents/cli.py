"""``opsnb incident``: open incidents and keep their timeline from the command line.

    opsnb incident open --title T --service S --severity SEV-N [--target T] [--impact T]
                        [--war-room URL]                 prints the new id (INC-NNNN)
    opsnb incident note INC-ID TEXT [--action-item [--owner @x] [--due YYYY-MM-DD]
                        [--ticket T] [--priority P1]] [--at TIME]
    opsnb incident status INC-ID investigating|identified|mitigating|resolved
    opsnb incident assign INC-ID --role ic|tech-lead|comms-lead|scribe --who @name
    opsnb incident severity INC-ID SEV-N [--reason T]
    opsnb incident resolve INC-ID [--summary T]
    opsnb incident correct INC-ID EVENT-ID [TEXT] [--at TIME]
    opsnb incident show INC-ID [--now TIME] [--json]  timeline table, deadlines, overdue
    opsnb incident list [--open] [--json]
    opsnb incident verify INC-ID                       exit 1 naming the first bad entry
    opsnb incident message INC-ID TEMPLATE [--post | --record] [--progress T]
                        [--next-steps T] [--eta T] [--issue T] [--symptoms T] [--postmortem T]
    opsnb incident attach RUN_DIR [INC-ID] [--service S]

Every command takes ``--dir DIR`` (before or after the command name): the incidents dir,
default ``$OPSNB_INCIDENTS``, else ``<config dir>/incidents``. Who is recorded:
``$OPSNB_USER``, else the login name. Times (``--at``, ``--now``) are ISO 8601 (UTC unless
an offset is given) or ``HH:MM`` (today, UTC; yesterday when that is still to come).

Exit codes: 0 done; 1 the operation failed (a broken hash chain, a failed post, resolving
a resolved incident); 2 bad input (unknown incident, role, status, template...).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click

from ..errors import OpsnbError


class IncidentGroup(click.Group):
    """Maps opsnb's errors to a one-line message and their exit code (also when this group
    runs on its own)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OpsnbError as exc:
            click.echo(f"opsnb: error: {exc}", err=True)
            ctx.exit(exc.exit_code)


def _dir_option(func: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--dir", "root", type=click.Path(path_type=Path), default=None,
        help="Incidents dir (default $OPSNB_INCIDENTS, else <config dir>/incidents).",
    )(func)  # fmt: skip


def _store(root: Path | None) -> Any:
    from .store import Store

    ctx = click.get_current_context()
    return Store(root or (ctx.find_root().meta.get("opsnb.incidents.dir")))


def _when(text: str | None, now: datetime | None = None) -> datetime | None:
    """ISO 8601, or HH:MM[:SS] today (UTC), yesterday when that is still to come."""
    if text is None:
        return None
    from .model import parse_time, utc_now

    now = now or utc_now()
    match = re.fullmatch(r"(\d{1,2}):(\d{2})(?::(\d{2}))?", text.strip())
    if match:
        hour, minute, second = (int(g or 0) for g in match.groups())
        try:
            moment = now.replace(hour=hour, minute=minute, second=second, microsecond=0)
        except ValueError:
            raise click.BadParameter(f"not a time of day: {text!r}") from None
        return moment - timedelta(days=1) if moment > now else moment
    return parse_time(text)


def _done(event: Any) -> None:
    from .timeline import describe

    click.echo(f"{event.incident} {event.id}: {describe(event)}")


@click.group("incident", cls=IncidentGroup)
@_dir_option
@click.pass_context
def incident(ctx: click.Context, root: Path | None) -> None:
    """Incidents and their timelines: open, record, show, verify, message.

    Each incident is a folder under the incidents dir holding events.jsonl (append-only,
    hash-chained) and incident.json (the current state, derived from the events).
    """
    if root is not None:
        ctx.find_root().meta["opsnb.incidents.dir"] = root


@incident.command("open", short_help="Open an incident; prints its id.")
@click.option("--title", required=True, help="What is wrong, in a few words.")
@click.option("--service", required=True, help="The affected service.")
@click.option("--severity", required=True, help="SEV-1 to SEV-4 (see the playbook).")
@click.option("--target", default=None, help="The target the service runs on.")
@click.option("--impact", default=None, help="The user impact, for the messages.")
@click.option("--war-room", default=None, help="The war room (Zoom/Slack huddle link).")
@_dir_option
def open_cmd(
    title: str,
    service: str,
    severity: str,
    target: str | None,
    impact: str | None,
    war_room: str | None,
    root: Path | None,
) -> None:
    """Open an incident (status investigating); prints its id, INC-NNNN."""
    from .api import open_incident

    store = _store(root)
    opened = open_incident(title, service, severity, target=target, impact=impact,
                           war_room=war_room, store=store)  # fmt: skip
    level = opened.level(store.policy)
    targets = "; ".join(f"{k} {v}" for k, v in level.response.rows())
    click.echo(f"opened {opened.id}: {level} {opened.title} ({opened.service})", err=True)
    click.echo(f"response targets: {targets}", err=True)
    click.echo(opened.id)


@incident.command("note", short_help="Add a note or an action item.")
@click.argument("incident_id")
@click.argument("text")
@click.option("--action-item", is_flag=True, help="An action item for the postmortem.")
@click.option("--owner", default=None, help="The action item's owner (@name).")
@click.option("--due", default=None, help="The action item's due date, YYYY-MM-DD.")
@click.option("--ticket", default=None, help="The action item's ticket (e.g. OPS-1234).")
@click.option("--priority", default=None, help="The action item's priority, P0 to P4.")
@click.option("--at", "at", default=None, help="When it happened (default now).")
@_dir_option
def note_cmd(
    incident_id: str,
    text: str,
    action_item: bool,
    owner: str | None,
    due: str | None,
    ticket: str | None,
    priority: str | None,
    at: str | None,
    root: Path | None,
) -> None:
    """Add a note to the timeline; --action-item makes it a postmortem action item."""
    from .api import note

    event = note(incident_id, text, action_item=action_item, owner=owner, due=due,
                 ticket=ticket, priority=priority, at=_when(at), store=_store(root))  # fmt: skip
    _done(event)


@incident.command("status", short_help="Set the status.")
@click.argument("incident_id")
@click.argument("status", type=click.Choice(["investigating", "identified", "mitigating",
                                             "resolved"]))  # fmt: skip
@click.option("--summary", default=None, help="With resolved: how it was fixed.")
@click.option("--at", "at", default=None, help="When it happened (default now).")
@_dir_option
def status_cmd(
    incident_id: str, status: str, summary: str | None, at: str | None, root: Path | None
) -> None:
    """Set the status: investigating, identified, mitigating or resolved."""
    from .api import set_status

    _done(set_status(incident_id, status, summary=summary, at=_when(at), store=_store(root)))


@incident.command("assign", short_help="Give a role (ic, tech-lead, comms-lead, scribe).")
@click.argument("incident_id")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["ic", "tech-lead", "comms-lead", "scribe"]),
    help="Incident commander, technical lead, communications lead or scribe.",
)
@click.option("--who", required=True, help="Who takes the role (@name).")
@click.option("--at", "at", default=None, help="When it happened (default now).")
@_dir_option
def assign_cmd(incident_id: str, role: str, who: str, at: str | None, root: Path | None) -> None:
    """Give a role to someone; assigning the IC acknowledges the incident."""
    from .api import assign

    _done(assign(incident_id, role, who, at=_when(at), store=_store(root)))


@incident.command("severity", short_help="Change the severity (SEV-1..SEV-4).")
@click.argument("incident_id")
@click.argument("level")
@click.option("--reason", default=None, help="Why the severity changed.")
@_dir_option
def severity_cmd(incident_id: str, level: str, reason: str | None, root: Path | None) -> None:
    """Change the severity (SEV-1 to SEV-4); the response targets follow."""
    from .api import set_severity

    _done(set_severity(incident_id, level, reason=reason, store=_store(root)))


@incident.command("resolve", short_help="Resolve, with a summary of the fix.")
@click.argument("incident_id")
@click.option("--summary", default=None, help="How it was fixed (the resolution).")
@click.option("--at", "at", default=None, help="When it was resolved (default now).")
@_dir_option
def resolve_cmd(incident_id: str, summary: str | None, at: str | None, root: Path | None) -> None:
    """Resolve the incident (status resolved) with a summary of the fix."""
    from .api import resolve

    _done(resolve(incident_id, summary=summary, at=_when(at), store=_store(root)))


@incident.command("correct", short_help="Correct an event (a new event; nothing rewritten).")
@click.argument("incident_id")
@click.argument("event_id")
@click.argument("text", required=False)
@click.option("--at", "at", default=None, help="The corrected time of the event.")
@_dir_option
def correct_cmd(
    incident_id: str, event_id: str, text: str | None, at: str | None, root: Path | None
) -> None:
    """Correct an event's text and/or time: a new event that references it. Nothing is
    rewritten; `show` displays the corrected entry and the correction."""
    from .api import correct

    _done(correct(incident_id, event_id, text, corrected_at=_when(at), store=_store(root)))


@incident.command("show", short_help="Timeline table, deadlines and what is overdue.")
@click.argument("incident_id")
@click.option("--now", "now", default=None, help="Judge deadlines at this time (default now).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_dir_option
def show_cmd(incident_id: str, now: str | None, as_json: bool, root: Path | None) -> None:
    """The incident: state, roles, timeline table, action items, deadlines, overdue."""
    from .model import utc_now
    from .timeline import deadlines, entries

    store = _store(root)
    inc = store.load(incident_id)
    moment = _when(now) or utc_now()
    policy = store.policy
    dues = deadlines(inc, now=moment, policy=policy)
    rows = entries(inc)
    if as_json:
        click.echo(json.dumps({
            "incident": inc.to_state(policy),
            "timeline": [{"id": r.id, "at": _iso(r.at), "kind": r.kind, "by": r.event.by,
                          "text": r.text, "corrected_by": list(r.corrected_by)} for r in rows],
            "deadlines": [{"name": d.name, "requirement": d.requirement, "due": _iso(d.due),
                           "met": _iso(d.met) if d.met else None, "state": d.state}
                          for d in dues],
            "overdue": [d.name for d in dues if d.overdue],
        }, indent=2))  # fmt: skip
        return
    level = inc.level(policy)
    click.echo(f"{inc.id}  {level}  {inc.status}  {inc.title}")
    target = f" on {inc.target}" if inc.target else ""
    click.echo(f"service:   {inc.service}{target}")
    opened = f"opened:    {_clock(inc.opened_at)} by {inc.opened_by}"
    if inc.resolved_at:
        opened += f"; resolved {_clock(inc.resolved_at)}"
    click.echo(opened)
    if inc.summary:
        click.echo(f"summary:   {inc.summary}")
    from .model import ROLES

    click.echo("roles:     " + "; ".join(f"{name} {inc.roles.get(role) or '-'}"
                                          for role, name in ROLES.items()))  # fmt: skip
    click.echo("targets:   " + "; ".join(f"{k} {v}" for k, v in level.response.rows()))
    click.echo("")
    _table(["ID", "Time (UTC)", "By", "Event"],
           [[r.id, r.at.strftime("%Y-%m-%d %H:%M:%S"), r.event.by,
             r.text + (f" [corrected by {', '.join(r.corrected_by)}]" if r.corrected_by else "")]
            for r in rows])  # fmt: skip
    if inc.action_items:
        click.echo("\naction items:")
        _table(["ID", "Action", "Owner", "Due", "Ticket", "Priority"],
               [[a.id, a.text, a.owner or "-", a.due or "-", a.ticket or "-", a.priority or "-"]
                for a in inc.action_items])  # fmt: skip
    click.echo("\ndeadlines:")
    for d in dues:
        click.echo(f"  {d.describe()}")
    late = [d.name for d in dues if d.overdue]
    click.echo(f"\noverdue: {', '.join(late) if late else 'nothing'}")


def _iso(moment: datetime) -> str:
    from .model import format_time

    return format_time(moment)


def _clock(text: str) -> str:
    from .model import parse_time

    return parse_time(text).strftime("%Y-%m-%d %H:%M:%S UTC")


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    widths[-1] = 0  # the last column is not padded
    for row in [header, *rows]:
        click.echo("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


@incident.command("list", short_help="List incidents (--open: not resolved).")
@click.option("--open", "open_only", is_flag=True, help="Only incidents not resolved.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@_dir_option
def list_cmd(open_only: bool, as_json: bool, root: Path | None) -> None:
    """List incidents: id, severity, status, service, opened, IC, overdue, title."""
    from .model import utc_now
    from .timeline import overdue

    store = _store(root)
    found = store.incidents(open_only=open_only)
    now = utc_now()
    if as_json:
        click.echo(json.dumps([{**i.to_state(store.policy), "overdue": [
            d.name for d in overdue(i, now=now, policy=store.policy)]} for i in found],
            indent=2))  # fmt: skip
        return
    if not found:
        click.echo(f"no {'open ' if open_only else ''}incidents in {store.root}", err=True)
        return
    rows = [[i.id, i.label, i.status, i.service, _clock(i.opened_at)[:16],
             i.roles.get("ic") or "-",
             ", ".join(d.name for d in overdue(i, now=now, policy=store.policy)) or "-",
             i.title] for i in found]  # fmt: skip
    _table(["ID", "SEV", "STATUS", "SERVICE", "OPENED (UTC)", "IC", "OVERDUE", "TITLE"], rows)


@incident.command("verify", short_help="Verify the hash chain; exit 1 naming the first bad entry.")
@click.argument("incident_id")
@_dir_option
@click.pass_context
def verify_cmd(ctx: click.Context, incident_id: str, root: Path | None) -> None:
    """Verify the hash chain of events.jsonl; exit 1 naming the first bad entry."""
    report = _store(root).verify(incident_id)
    if report.ok:
        click.echo(f"{report.incident}: hash chain valid, {report.events} events, "
                   f"last {report.head} {report.head_hash}")  # fmt: skip
        return
    for problem in report.problems:
        click.echo(f"{report.incident}: {problem}")
    click.echo(f"opsnb: error: {report.incident}: first bad entry: {report.first}", err=True)
    ctx.exit(1)


@incident.command("message", short_help="Render (and --post) a playbook message.")
@click.argument("incident_id")
@click.argument("template", type=click.Choice(["declared", "update", "resolved",
                "customer-investigating", "customer-identified", "customer-resolved"]))  # fmt: skip
@click.option(
    "--post",
    "post_it",
    is_flag=True,
    help="Post to the configured webhooks (internal) or status page (customer).",
)
@click.option(
    "--record",
    "manual",
    is_flag=True,
    help="Record it on the timeline as sent by hand (no posting).",
)
@click.option("--progress", default=None, help="Update: what we've learned/done.")
@click.option("--next-steps", default=None, help="Update: what we're doing next.")
@click.option("--eta", default=None, help="Estimated time to resolution.")
@click.option("--issue", default=None, help="Customer: the issue description.")
@click.option("--symptoms", default=None, help="Customer: what users may experience.")
@click.option("--postmortem", default=None, help="Resolved: when the postmortem is scheduled.")
@_dir_option
@click.pass_context
def message_cmd(
    ctx: click.Context,
    incident_id: str,
    template: str,
    post_it: bool,
    manual: bool,
    progress: str | None,
    next_steps: str | None,
    eta: str | None,
    issue: str | None,
    symptoms: str | None,
    postmortem: str | None,
    root: Path | None,
) -> None:
    """Render one of the playbook's messages from the incident's state and print it;
    --post sends it and records it on the timeline (a failed post exits 1, recorded)."""
    from .api import whoami
    from .comms import Details, send

    if post_it and manual:
        raise click.UsageError("--post and --record exclude each other")
    details = Details(progress=progress, next_steps=next_steps, eta=eta, issue=issue,
                      symptoms=symptoms, postmortem=postmortem)  # fmt: skip
    sent = send(incident_id, template, store=_store(root), details=details, post_it=post_it,
                manual=manual, by=whoami())  # fmt: skip
    click.echo(sent.message.text)
    for delivery in sent.deliveries:
        state = "delivered" if delivery.ok else f"FAILED: {delivery.error}"
        click.echo(f"{delivery.channel}: {state}", err=True)
    if sent.event is not None:
        click.echo(f"recorded {sent.event.incident} {sent.event.id}", err=True)
    if sent.failed:
        ctx.exit(1)


@incident.command("attach", short_help="Attach a run folder's findings and actions.")
@click.argument("run_dir", type=click.Path(path_type=Path, exists=True, file_okay=False))
@click.argument("incident_id", required=False)
@click.option("--service", default=None, help="Attach to this service's open incident.")
@_dir_option
@click.pass_context
def attach_cmd(
    ctx: click.Context,
    run_dir: Path,
    incident_id: str | None,
    service: str | None,
    root: Path | None,
) -> None:
    """Attach a run folder (its result.json: run, findings, actions) to an incident, or to
    the open incident of its service; exit 1 when there is none."""
    from .api import attach_run

    attached = attach_run(run_dir, incident_id, service, store=_store(root))
    if attached is None:
        click.echo("opsnb: error: no open incident for the run's service", err=True)
        ctx.exit(1)
    click.echo(attached)
