"""``opsnb postmortem INC-ID [--out DIR]``: the incident's postmortem, in the Blameless
Postmortem Template's structure, as Markdown and one self-contained HTML page.

    opsnb postmortem INC-0001                        postmortems/INC-0001/
    opsnb postmortem INC-0001 --out pm/ --dir incidents/
    opsnb postmortem INC-0001 --snapshot evidence/   metrics from an evidence snapshot

Prints the Markdown and HTML paths (stderr) and the postmortem folder as the last line of
stdout. Exit codes: 0 written (also when no metrics could be read: the postmortem says
why); 2 bad input (unknown incident, unknown target).
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command("postmortem")
@click.argument("incident_id")
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    default=None,
    help="The postmortem folder (default postmortems/INC-ID).",
)
@click.option(
    "--dir",
    "root",
    type=click.Path(path_type=Path),
    default=None,
    help="Incidents dir (default $OPSNB_INCIDENTS, else <config dir>/incidents).",
)
@click.option(
    "--snapshot",
    type=click.Path(path_type=Path, exists=True),
    default=None,
    help="Read the metrics from this evidence snapshot (opsnb snapshot).",
)
@click.option(
    "--target", default=None, help="Read the metrics from this target (default: the incident's)."
)
def postmortem_command(
    incident_id: str,
    out: Path | None,
    root: Path | None,
    snapshot: Path | None,
    target: str | None,
) -> None:
    """Write INC-ID's postmortem: header, team, impact from the metrics, timeline and gantt
    chart, root cause seeded with the runs' findings, detection and response figures,
    action items, and an appendix with the runs' notebooks and charts.

    Generating it again keeps what people wrote in the free-text sections.
    """
    from .build import generate

    done = generate(incident_id, out=out, root=root, snapshot=snapshot, target=target)
    impact = done.impact
    if done.gathered.metrics is not None:
        click.echo(f"metrics: {done.gathered.metrics.source}", err=True)
    if impact.problem:
        click.echo(f"no impact figures: {impact.problem}", err=True)
    elif impact.failed_requests is not None:
        click.echo(
            f"impact: {round(impact.failed_requests):,} failed requests, availability "
            f"{(impact.availability or 0) * 100:.2f}% over the window",
            err=True,
        )
    for problem in done.problems:
        click.echo(f"warning: {problem}", err=True)
    if done.kept:
        click.echo(f"kept what people wrote in: {', '.join(done.kept)}", err=True)
    click.echo(f"markdown: {done.markdown}", err=True)
    click.echo(f"html:     {done.html}", err=True)
    click.echo(str(done.folder))
