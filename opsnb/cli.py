"""The ``opsnb`` command line: a thin layer over the library.

Exit codes: 0 the runbook ran to the end (an unhealthy service is a result, not a failure);
1 a cell failed unexpectedly (the partial record is still written); 2 bad usage or
configuration, found before anything runs.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from . import __version__
from .capture import snapshot_command
from .errors import OpsnbError
from .incidents.cli import incident
from .postmortem.cli import postmortem_command


class OpsnbGroup(click.Group):
    """Maps opsnb's own errors to a one-line message and their exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OpsnbError as exc:
            click.echo(f"opsnb: error: {exc}", err=True)
            ctx.exit(exc.exit_code)


@click.group(cls=OpsnbGroup)
@click.version_option(__version__, prog_name="opsnb")
def main() -> None:
    """Executable operations runbooks: Jupyter notebooks run against a target service."""


@main.command("list")
def list_runbooks() -> None:
    """List the runbooks with a one-line description."""
    from . import catalog

    found = catalog.available()
    if not found:
        click.echo("no runbooks found (looked in: OPSNB_RUNBOOKS, ./runbooks)", err=True)
        return
    width = max(len(n) for n in found)
    for name, path in found.items():
        runbook = catalog.load(path)
        click.echo(f"{name.ljust(width)}  {runbook.description}")


@main.command("targets")
def list_targets() -> None:
    """List the configured targets and where each is defined."""
    from .config import config_files, load_targets

    for name, target in sorted(load_targets().items()):
        apply = "apply allowed" if target.policy.allow_apply else "read-only"
        click.echo(f"{name:<16} {target.kind:<9} {apply:<14} {target.source}")
    click.echo(f"config files read: {', '.join(map(str, config_files())) or 'none'}", err=True)


def _print_runbook_help(name: str) -> None:
    from . import catalog

    runbook = catalog.find(name)
    click.echo(f"Usage: opsnb run {runbook.name} [--target NAME] [-p NAME VALUE]... [--apply]\n")
    if runbook.description:
        click.echo(f"  {runbook.description}\n")
    click.echo("Parameters:")
    for p in runbook.parameters.values():
        note = " (set with --target)" if p.name == "target" else ""
        note = " (set with --apply)" if p.name == "apply" else note
        click.echo(f"  {p.name:<16} {p.type:<6} default {p.default!r:<10} {p.help}{note}")


@main.command("run", add_help_option=False)
@click.argument("runbook", required=False)
@click.option("--target", "-t", default="demo", show_default=True, help="Target to run against.")
@click.option(
    "-p", "--param", "params", multiple=True, nargs=2, metavar="NAME VALUE",
    help="A runbook parameter (repeatable).",
)  # fmt: skip
@click.option(
    "--out", "out_dir", default="runs", show_default=True, type=click.Path(path_type=Path)
)
@click.option(
    "--apply", is_flag=True, help="Really run resolution steps (target policy permitting)."
)
@click.option("--cell-timeout", default=120.0, show_default=True, help="Seconds per cell.")
@click.option("--deadline", default=600.0, show_default=True, help="Seconds for the whole run.")
@click.option(
    "--incident", default=None, metavar="INC-ID",
    help="Attach the run to this incident (default: the open incident of the service).",
)  # fmt: skip
@click.option("--help", "show_help", is_flag=True, help="Show the runbook's parameters and exit.")
@click.pass_context
def run(
    ctx: click.Context,
    runbook: str | None,
    target: str,
    params: tuple[tuple[str, str], ...],
    out_dir: Path,
    apply: bool,
    cell_timeout: float,
    deadline: float,
    incident: str | None,
    show_help: bool,
) -> None:
    """Run RUNBOOK (a name from runbooks/ or a path) against a target.

    Writes DIR/<UTC timestamp>-<runbook>/ with the executed notebook, its HTML and
    result.json, and prints that folder as the last line.
    """
    if show_help and runbook:
        _print_runbook_help(runbook)
        return
    if show_help or not runbook:
        click.echo(ctx.get_help())
        ctx.exit(0 if show_help else 2)
    parameters: dict[str, Any] = {}
    for name, value in params:
        if name in parameters:
            raise click.UsageError(f"parameter {name!r} given twice")
        parameters[name] = value
    # The kernel starts first and warms up while opsnb imports and validates.
    from .engine.kernels import WarmKernel

    kernel = WarmKernel(env={"OPSNB_MODE": "manual"})
    try:
        from .engine import RunRequest, execute, prepare

        prepared = prepare(
            RunRequest(
                runbook=runbook,
                target=target,
                parameters=parameters,
                out_dir=out_dir,
                apply=apply,
                cell_timeout=cell_timeout,
                deadline=deadline,
                progress=sys.stderr.isatty(),
                incident=incident,
            )
        )
    except BaseException:
        kernel.shutdown()
        raise
    outcome = execute(prepared, kernel)
    summarize(outcome.result)
    if outcome.incident:
        click.echo(f"attached to incident {outcome.incident}", err=True)
    click.echo(str(outcome.run_dir))
    ctx.exit(outcome.exit_code)


def summarize(result: dict[str, Any]) -> None:
    """A few lines on stderr for people; stdout's last line stays the run folder."""
    for finding in result["findings"]:
        click.echo(f"finding: {finding['cause']} -> {finding['recommendation']}", err=True)
    unavailable = [c["name"] for c in result["checks"] if c["status"] == "unavailable"]
    if unavailable:
        click.echo(f"unavailable checks: {', '.join(unavailable)}", err=True)
    for action in result["actions"]:
        click.echo(f"action: {action['action']} {action['object']} ({action['outcome']})", err=True)
    if result["error"]:
        err = result["error"]
        click.echo(
            f"error: cell {err.get('cell_index')} ({err.get('cell', '')}) raised "
            f"{err['ename']}: {err['evalue']}",
            err=True,
        )


@main.command("demo")
@click.option(
    "--out", "out_dir", default="runs/demo", show_default=True, type=click.Path(path_type=Path)
)
def demo(out_dir: Path) -> None:
    """Run the diagnosis runbooks against the embedded recorded incidents."""
    from .demo.runner import run_demo

    failures = run_demo(out_dir, echo=lambda line: click.echo(line))
    sys.exit(1 if failures else 0)


@main.command("serve")
@click.option("--host", default=None, help="Address to listen on (serve.host; 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (serve.port; 9095).")
@click.option("--data-dir", type=click.Path(path_type=Path), default=None,
              help="Database and run folders (serve.data_dir; <config dir>/serve).")  # fmt: skip
@click.option("--concurrency", type=int, default=None, help="Runs at once (serve.concurrency).")
@click.option("--pool-size", type=int, default=None, help="Warm kernels (serve.pool_size).")
@click.option("--queue-size", type=int, default=None, help="Queued runs (serve.queue_size).")
@click.option("--log-level", default="info", show_default=True,
              type=click.Choice(["debug", "info", "warning", "error"]))  # fmt: skip
@click.option("--settings", "show_settings", is_flag=True, help="Print every setting and exit.")
def serve(log_level: str, show_settings: bool, **options: Any) -> None:
    """Receive Alertmanager webhooks and run the runbook each alert names.

    Settings come from the `serve:` section of the config files, OPSNB_SERVE_<KEY>
    environment variables and these options (see README, "Alert-driven diagnostics").
    """
    from .serve import settings

    if show_settings:
        click.echo(settings.table())
        return
    from .serve.app import run_server

    run_server(options, log_level=log_level)


@main.command("lab", context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def lab(args: tuple[str, ...]) -> None:
    """Start the lab on loopback (real services, a test Kubernetes API, faults).

    Same as `python -m opsnb.lab`; `opsnb lab --help` lists its options.
    """
    from .lab.__main__ import main as lab_main

    sys.exit(lab_main(list(args)))


main.add_command(snapshot_command)
main.add_command(incident)
main.add_command(postmortem_command)


if __name__ == "__main__":  # pragma: no cover
    main()
