"""``opsnb demo``: the whole incident flow on the embedded recorded incidents.

For the payments incident of 2025-01-15 (the postmortem template's example): the incident
opened from the ``HighErrorRate`` alert at 14:20, the automated diagnosis (the
``high-error-rate`` runbook against the recorded evidence, attached to the incident), the
mitigation the template records (taken at 14:40, recorded as such: the snapshot is
read-only, so the run only stages its scale-up), the resolution at 15:15, and the
postmortem. The catalog incident (a bad deployment, 2025-03-04) gets its diagnosis run.

Everything goes under ``--out``: run folders in ``<out>/<service>/``, the incidents in
``<out>/incidents/`` (never the user's own incidents), the postmortem in
``<out>/postmortems/<INC-ID>/``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..engine import RunRequest, RunResult, run_runbook
from . import timeline as recorded

# (service in the demo target, what happened) for each recorded incident.
INCIDENTS = (
    ("payments", "traffic spike exhausting the database connection pool (2025-01-15)"),
    ("catalog", "bad deployment of revision 12 (2025-03-04)"),
)
RUNBOOKS = ("high-error-rate",)
FLOW_SERVICE = "payments"  # the incident the demo takes from alert to postmortem

Echo = Callable[[str], None]


def run_demo(out_dir: Path, *, echo: Echo = print) -> int:
    """Run the whole flow (see the module doc); return the number of failed steps."""
    from .. import incidents

    root = out_dir / "incidents"
    store = incidents.Store(root)
    inc_id = open_from_alert(store, echo)
    failures = 0
    for service, story in INCIDENTS:
        for runbook in RUNBOOKS:
            echo(f"== {runbook} on demo/{service}: {story}")
            outcome = diagnose(runbook, service, out_dir, echo)
            if not outcome.ok:
                failures += 1
            if service == FLOW_SERVICE:
                attach(store, inc_id, outcome, echo)
    record_response(store, inc_id, echo)
    failures += write_postmortem(store, inc_id, out_dir, echo)
    echo(f"demo runs written under {out_dir}")
    return failures


def open_from_alert(store: Any, echo: Echo) -> str:
    from .. import incidents

    alert = dict(recorded.ALERT)
    when = recorded.at(alert.pop("at"))
    spec = dict(recorded.INCIDENT)
    by = spec.pop("by")
    inc = incidents.open_incident(
        spec.pop("title"),
        spec.pop("service"),
        spec.pop("severity"),
        by=by,
        at=when,
        store=store,
        **spec,
    )
    incidents.record(inc.id, "alert", by="alertmanager", at=when, store=store, **alert)
    echo(
        f"== incident {inc.id} opened from the {alert['name']} alert at "
        f"{when[11:16]} UTC: {store.folder(inc.id)}"
    )
    return inc.id


def diagnose(runbook: str, service: str, out_dir: Path, echo: Echo) -> RunResult:
    outcome = run_runbook(
        RunRequest(
            runbook=runbook,
            target="demo",
            parameters={"service": service},
            out_dir=out_dir / service,
            incident="",  # attached below, to the demo's own incident, never the user's
        )
    )
    for finding in outcome.result["findings"]:
        echo(f"   finding: {finding['cause']} -> {finding['recommendation']}")
    for action in outcome.result["actions"]:
        echo(f"   staged:  {action['action']} {action['object']} ({action['outcome']})")
    if not outcome.ok:
        echo(f"   FAILED: {outcome.result['error']}")
    echo(f"   notebook: {outcome.run_dir / outcome.result['files']['notebook']}")
    echo(f"   html:     {outcome.run_dir / outcome.result['files']['html']}")
    return outcome


def attach(store: Any, inc_id: str, outcome: RunResult, echo: Echo) -> None:
    """Attach the run; its events happened now, but it diagnosed the evidence recorded at
    :data:`~opsnb.demo.timeline.EVIDENCE_AT`: corrections put them there on the timeline."""
    from .. import incidents

    before = len(store.load(inc_id).events)
    incidents.attach_run(outcome.run_dir, inc_id, store=store)
    added = store.load(inc_id).events[before:]
    evidence = recorded.at(recorded.EVIDENCE_AT)
    for event in added:
        incidents.correct(inc_id, event.id, corrected_at=evidence, store=store)
    echo(
        f"   attached to {inc_id} ({len(added)} events, on the timeline at "
        f"{recorded.EVIDENCE_AT} UTC: the time of the evidence the run diagnosed)"
    )


def record_response(store: Any, inc_id: str, echo: Echo) -> None:
    """The rest of the recorded timeline: acknowledgement to resolution, action items."""
    from .. import incidents

    for clock, call, by, args in recorded.EVENTS:
        when = recorded.at(clock)
        args = dict(args)
        if call == "set_status":
            incidents.set_status(inc_id, args.pop("status"), by=by, at=when, store=store, **args)
        elif call == "assign":
            incidents.assign(inc_id, args["role"], args["who"], by=by, at=when, store=store)
        elif call == "resolve":
            incidents.resolve(inc_id, summary=args["summary"], by=by, at=when, store=store)
        else:
            incidents.record(inc_id, call, by=by, at=when, store=store, **args)
        if call == "action":
            echo(f"== mitigation at {clock} UTC (taken, from the record): {args['detail']}")
        elif call == "resolve":
            echo(f"== resolved at {clock} UTC: {args['summary']}")
    for text, owner, due, ticket, priority in recorded.ACTION_ITEMS:
        incidents.note(
            inc_id,
            text,
            action_item=True,
            owner=owner,
            due=due,
            ticket=ticket,
            priority=priority,
            by="@engineer",
            at=recorded.ACTION_ITEMS_AT,
            store=store,
        )
    echo(f"   timeline: {store.folder(inc_id) / 'events.jsonl'}")


def write_postmortem(store: Any, inc_id: str, out_dir: Path, echo: Echo) -> int:
    from ..postmortem import generate

    echo(f"== postmortem of {inc_id}")
    try:
        done = generate(inc_id, store=store, out=out_dir / "postmortems" / inc_id)
    except Exception as exc:  # the rest of the demo stands; say what broke
        echo(f"   FAILED: {type(exc).__name__}: {exc}")
        return 1
    impact = done.impact
    if impact.failed_requests is not None:
        echo(
            f"   impact: {round(impact.failed_requests):,} failed requests, availability "
            f"{(impact.availability or 0) * 100:.2f}% over the window"
        )
    echo(f"   markdown: {done.markdown}")
    echo(f"   html:     {done.html}")
    return 0
