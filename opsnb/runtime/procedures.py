"""The template's Kubernetes operational procedures as steps: deploy, roll back, scale.

Each runbook cell calls one step. A step records checks (``rb.check``) and guarded changes
(``rb.act``: always previewed first -- a server-side ``dryRun=All`` whose template diff is
shown -- and applied only when ``rb.may_apply`` allows), and keeps what the later steps need
in a :class:`Procedure`::

    p = procedures.current_state(rb)                 # deployment, rollouts, pods
    procedures.slis_before(rb, p)                    # error rate and p99 before the change
    procedures.deploy(rb, p, image="registry/app:1.5.0")
    procedures.watch_rollout(rb, p, timeout_seconds=90)
    procedures.settle(rb, p)                         # let the new revision serve traffic
    procedures.new_pods(rb, p)                       # its pods ready? errors in their logs?
    procedures.smoke_checks(rb, p, "")               # GET each smoke URL, status < 500
    procedures.compare_metrics(rb, p)                # error rate and p99 after vs before
    procedures.conclude_deploy(rb, p)                # healthy/none or recent-deployment/rollback

A step that would touch more than the target's policy allows (``max_replicas``,
``max_pods_per_action``) is refused with a LimitExceeded naming the limit, recorded as a
``refused`` action; nothing is changed.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ..backends.kube_objects import PINNED_FROM, Change, ObjectNotFound
from ..errors import BackendUnavailable, LimitExceeded
from ..records import Action, Finding
from . import charts, steps
from .session import Runbook, latest
from .show import display as _display

MAX_SETTLE_SECONDS = 90  # the default settle time is one rate window, at most this long


@dataclass
class Procedure:
    """What one procedure run has seen and done so far (shared by its steps)."""

    deployment: str
    container: str
    before: dict[str, Any] = field(default_factory=dict)  # state and SLIs before the change
    after: dict[str, Any] = field(default_factory=dict)  # SLIs measured after it
    actions: list[Action] = field(default_factory=list)
    previews: list[Change] = field(default_factory=list)
    applied: bool = False  # an applied action changed something
    applied_at: pd.Timestamp | None = None
    not_applied: str = "no change was requested"  # why nothing was applied
    rollout: dict[str, Any] | None = None  # wait_for_rollout's answer
    rollout_done_at: pd.Timestamp | None = None
    new_pods: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # evidence the change made things worse
    good: list[str] = field(default_factory=list)  # evidence the change is fine
    hpa_name: str = ""
    hpa: dict[str, Any] | None = None
    target_revision: int | None = None

    @property
    def label(self) -> str:
        """The revision the deployment runs now, e.g. ``revision 7 (registry/app:1.5)``."""
        if self.rollout:
            return f"revision {self.rollout.get('revision')} ({self.rollout.get('image')})"
        return f"revision {self.before.get('revision')} ({self.before.get('image')})"


# --- helpers --------------------------------------------------------------------------------


def _show_diff(diff: str) -> None:
    """A template diff as a highlighted block (plain text outside a notebook)."""
    try:
        from IPython import get_ipython
        from IPython.display import Markdown, display
    except ImportError:  # pragma: no cover
        print(diff)
        return
    if get_ipython() is None:
        print(diff)
        return
    display(Markdown(f"```diff\n{diff.rstrip()}\n```"))


def _wall_clock() -> pd.Timestamp:
    return pd.Timestamp(datetime.now(UTC))


def _now(rb: Runbook) -> pd.Timestamp:
    """The present: the wall clock on live targets, the capture time on snapshots
    (``rb.now`` is fixed when the session first reads it)."""
    return rb.now if rb.snapshot is not None else _wall_clock()


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2%}"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 1000:.0f} ms"


def _act(rb: Runbook, p: Procedure, action: str, obj: str, call: Any, **params: Any) -> Action:
    """``rb.act`` that also shows the preview's template diff (before anything is applied,
    or a person asked to confirm) and notes in ``p`` whether something was applied."""
    changes: dict[bool, Change] = {}

    def wrapped(dry_run: bool) -> Any:
        change = call(dry_run)
        if isinstance(change, Change):
            changes[dry_run] = change
            if dry_run and change.diff:  # shown before anything is applied (or confirmed)
                _show_diff(change.diff)
        return change

    record = rb.act(action, obj, wrapped, **params)
    p.actions.append(record)
    preview = changes.get(True)
    if preview is not None:
        p.previews.append(preview)
    applied = changes.get(False)
    if record.outcome == "applied" and applied is not None and applied.changed:
        p.applied = True
        p.applied_at = p.applied_at or _wall_clock()
    elif not p.applied:
        p.not_applied = {
            "previewed": "dry run: apply was not requested",
            "refused": "apply is not allowed on this target",
            "declined": "the change was not confirmed",
            "unavailable": "the Kubernetes API was unavailable",
            "failed": "the change failed",
            "applied": "the change altered nothing",
        }.get(record.outcome, record.outcome)
    return record


# --- state before the change ----------------------------------------------------------------


def current_state(rb: Runbook, container: str = "") -> Procedure:
    """``kubectl get deployment`` and ``kubectl get pods -l``: the revision, image and
    replicas the change starts from, the rollout history and the pods."""
    p = Procedure(deployment=rb.service.deployment, container=container or rb.service.container)
    with rb.check("Deployment now") as check:
        dep = rb.k8s.deployment(p.deployment)
        image = dep["images"].get(p.container) or dep["image"]
        p.before.update(
            replicas=dep["replicas"],
            ready=dep["ready"],
            revision=dep["revision"],
            image=image,
            resources=dep.get("resources"),
        )
        _display(
            pd.DataFrame(
                [
                    {
                        "deployment": dep["name"],
                        "revision": dep["revision"],
                        "image": image,
                        "replicas": dep["replicas"],
                        "ready": dep["ready"],
                        "updated": dep["updated"],
                        "available": dep["available"],
                    }
                ]
            )
        )
        check.verdict(
            dep["replicas"] > 0 and dep["ready"] == 0,
            f"revision {dep['revision']}, {image}, {dep['ready']}/{dep['replicas']} ready",
            warn=dep["ready"] < dep["replicas"],
        )
    steps.pods(rb)
    return p


def slis_before(rb: Runbook, p: Procedure) -> list[tuple[Any, str]]:
    """Rollouts in the window, then error rate and p99 latency: the baseline the change is
    judged against."""
    marks = steps.rollouts(rb)
    steps.error_rate(rb, marks)
    steps.latency(rb, marks)
    p.before["error_rate"] = rb.facts.error_rate
    p.before["latency_p99"] = rb.facts.latency_p99
    return marks


# --- deploy ---------------------------------------------------------------------------------


def load_manifest(path: str, deployment: str) -> dict[str, Any]:
    """The Deployment in a YAML file (one document, or the one named ``deployment`` among
    several). Raises ValueError saying what is wrong."""
    import yaml

    file = Path(path).expanduser()
    if not file.is_absolute() and not file.is_file() and os.environ.get("PWD"):
        # `opsnb run` executes in the run folder; a relative path means the caller's folder
        file = Path(os.environ["PWD"]) / file
    try:
        docs = [d for d in yaml.safe_load_all(file.read_text()) if d is not None]
    except OSError as exc:
        raise ValueError(f"cannot read manifest {file}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"manifest {file} is not valid YAML: {exc}") from None
    found = [d for d in docs if isinstance(d, dict) and d.get("kind") == "Deployment"]
    if len(found) > 1:
        found = [d for d in found if (d.get("metadata") or {}).get("name") == deployment]
    if len(found) != 1:
        raise ValueError(f"manifest {file} holds no single Deployment (deployment/{deployment})")
    name = (found[0].get("metadata") or {}).get("name")
    if name != deployment:
        raise ValueError(
            f"manifest {file} is deployment/{name}, but this service's deployment is "
            f"{deployment} (choose the service with -p service NAME)"
        )
    return found[0]


def deploy(rb: Runbook, p: Procedure, *, image: str = "", manifest: str = "") -> Action | None:
    """Change the deployment to a new image (``kubectl set image``) or to a manifest
    (``kubectl apply``): previewed as a server-side dry run with the template diff, applied
    only when allowed."""
    image, manifest = image.strip(), manifest.strip()
    if image and manifest:
        with rb.check("Change requested") as check:
            check.fail("give an image or a manifest, not both: nothing was deployed")
        p.not_applied = "the parameters were contradictory"
        return None
    if not image and not manifest:
        with rb.check("Change requested") as check:
            check.warn(
                "no image or manifest given: nothing to deploy; the steps below verify "
                "the current revision"
            )
        return None
    obj = f"deployment/{p.deployment}"
    if image:
        return _act(
            rb,
            p,
            "deploy",
            obj,
            lambda dry: rb.k8s.set_image(p.deployment, p.container, image, dry_run=dry),
            image=image,
            container=p.container,
        )
    return _act(
        rb,
        p,
        "deploy",
        obj,
        lambda dry: rb.k8s.apply_deployment(load_manifest(manifest, p.deployment), dry_run=dry),
        manifest=manifest,
    )


# --- rollout and verification ----------------------------------------------------------------


def watch_rollout(rb: Runbook, p: Procedure, timeout_seconds: float = 90) -> dict[str, Any] | None:
    """``kubectl rollout status --timeout``: poll the deployment until its new revision is
    updated and available, or the time is up. Without an applied change the status is read
    once."""
    result = None
    with rb.check("Rollout") as check:
        wait = float(timeout_seconds) if p.applied else 0.0
        result = rb.k8s.wait_for_rollout(p.deployment, wait)
        p.rollout, p.rollout_done_at = result, _now(rb)
        _display(
            pd.DataFrame(
                [
                    {
                        k: result.get(k)
                        for k in (
                            "revision",
                            "image",
                            "state",
                            "replicas",
                            "updated",
                            "ready",
                            "available",
                            "total",
                            "waited_seconds",
                        )
                    }
                ]
            )
        )
        counts = (
            f"{result['updated']}/{result['replicas']} updated, {result['available']} available"
        )
        if not p.applied:
            check.verdict(
                result["state"] == "failed",
                f"nothing rolled out ({p.not_applied}); {p.label}: {result['message']}",
                warn=not result["done"],
            )
        elif result["done"]:
            p.good.append(f"{p.label} rolled out: {counts}")
            check.ok(f"{p.label} rolled out in {result['waited_seconds']:.0f} s: {counts}")
        else:
            verb = (
                "failed"
                if result["state"] == "failed"
                else (f"not complete after {result['waited_seconds']:.0f} s")
            )
            problem = f"rollout of {p.label} {verb}: {result['message']}"
            p.problems.append(problem)
            check.fail(problem)
    return result


def settle(rb: Runbook, p: Procedure, settle_seconds: float = 0) -> None:
    """Let the new revision serve traffic before it is judged: ``settle_seconds``, or one
    Prometheus rate window (at most 90 s) when 0."""
    if not p.applied:
        print(f"Nothing to wait for: {p.not_applied}.")
        return
    if settle_seconds <= 0:
        from ..backends.prometheus import duration_seconds

        settle_seconds = min(duration_seconds(rb.rate_window), MAX_SETTLE_SECONDS)
    print(f"Letting {p.label} serve traffic for {settle_seconds:g} s before measuring it...")
    time.sleep(float(settle_seconds))


def _since_seconds(rb: Runbook, p: Procedure) -> int:
    if p.applied and p.applied_at is not None:
        return max(1, int((_wall_clock() - p.applied_at).total_seconds()) + 1)
    return int(rb.window.total_seconds())


def new_pods(rb: Runbook, p: Procedure) -> pd.DataFrame | None:
    """The pods of the current revision (``kubectl get pods -l``): ready, restarts, crash
    loops; then the errors in their logs since the change (``kubectl logs -l --tail``)."""
    from ..backends import logs as logtools
    from ..backends.kube_objects import LogsNotFound

    frame = None
    with rb.check("Pods of the new revision") as check:
        pods = rb.k8s.pods(rb.service.selector)
        wanted = (p.rollout or {}).get("revision_hash")
        frame = pods[pods["revision_hash"] == wanted] if wanted else pods
        _display(frame)
        p.new_pods = [str(n) for n in frame["name"]]
        ready, restarts = int(frame["ready"].sum()), int(frame["restarts"].sum())
        desired = int((p.rollout or {}).get("replicas") or len(frame))
        crashing = [str(n) for n in frame[frame["waiting_reason"] == "CrashLoopBackOff"]["name"]]
        detail = f"{ready}/{desired} ready, {restarts} restarts"
        if crashing:
            detail += f"; crash-looping: {', '.join(crashing)}"
        bad = ready < desired or bool(crashing)
        if p.applied:
            (p.problems if bad else p.good).append(f"new pods: {detail}")
        check.verdict(bad and (p.applied or ready == 0), detail, warn=bad or restarts > 0)
    with rb.check("Errors in the new pods' logs") as check:
        since = _since_seconds(rb, p)
        lines: list[str] = []
        for pod in p.new_pods:
            try:
                lines.extend(rb.k8s.logs(pod, container=p.container, since_seconds=since))
            except (LogsNotFound, ObjectNotFound):
                continue
        parsed = logtools.parse(lines)
        errors = parsed[parsed["level"].isin(logtools.ERROR_LEVELS)]
        by_type = (
            errors["error"]
            .fillna("(no error field)")
            .value_counts()
            .rename_axis("error")
            .reset_index(name="count")
        )
        if not by_type.empty:
            _display(by_type)
        total, error_lines = len(parsed), len(errors)
        share = error_lines / total if total else 0.0
        p.after["log_error_share"] = share
        kinds = (
            ", ".join(f"{e} {c}" for e, c in zip(by_type["error"], by_type["count"], strict=False))
            or "none"
        )
        detail = (
            f"{error_lines} error lines of {total} in "
            f"{len(p.new_pods)} pods over {since} s ({share:.1%}); types: {kinds}"
        )
        failed = error_lines > 0 and share >= rb.facts.error_threshold
        if p.applied:
            (p.problems if failed else p.good).append(f"new pods' logs: {detail}")
        check.verdict(failed, detail, warn=error_lines > 0)
    return frame


def _smoke_targets(rb: Runbook, smoke_urls: str) -> list[tuple[str, str]]:
    urls = [u.strip() for u in smoke_urls.split(",") if u.strip()]
    if urls:
        return [(u, u) for u in urls]
    return list(rb.dependencies().items())


def smoke_get(rb: Runbook, name: str, url: str, timeout: float = 5.0) -> dict[str, Any]:
    """GET one smoke URL: {name, url, status ("ok" when the answer is < 500, else "down"),
    detail, latency_ms}. Snapshots answer with the probe recorded for that URL."""
    if rb.snapshot is not None:
        for dep_name, entry in rb.snapshot.dependencies.items():
            if url in (entry.get("url"), dep_name) or name == dep_name:
                return {"name": name, **entry}
        raise BackendUnavailable(
            "smoke (snapshot)", f"{url} was not probed when the snapshot was taken"
        )
    import httpx

    if not url.startswith(("http://", "https://")):
        return {
            "name": name,
            "url": url,
            "status": "skipped",
            "latency_ms": None,
            "detail": "not an HTTP URL: nothing to GET",
        }
    began = time.monotonic()
    try:
        response = httpx.get(url, timeout=timeout, follow_redirects=True)
        status = "ok" if response.status_code < 500 else "down"
        detail = f"HTTP {response.status_code}"
    except httpx.HTTPError as exc:
        status, detail = "down", f"{type(exc).__name__}: {exc}"
    latency = round((time.monotonic() - began) * 1000, 1)
    return {"name": name, "url": url, "status": status, "detail": detail, "latency_ms": latency}


def smoke_checks(rb: Runbook, p: Procedure, smoke_urls: str = "") -> None:
    """GET each smoke URL (comma-separated; by default the service's dependency and health
    URLs): an answer below 500 passes."""
    targets = _smoke_targets(rb, smoke_urls)
    if not targets:
        with rb.check("Smoke checks") as check:
            check.warn("no smoke URLs given and the service declares no health URLs")
        return
    passed = 0
    for name, url in targets:
        with rb.check(f"Smoke {name}") as check:
            probe = smoke_get(rb, name, url)
            latency = probe.get("latency_ms")
            detail = f"{probe['status']}: {probe.get('detail', '')}" + (
                f" in {latency:g} ms" if latency is not None else ""
            )
            if probe["status"] == "skipped":
                check.warn(f"{url}: {probe['detail']}")
                continue
            down = probe["status"] != "ok"
            if down and p.applied:
                p.problems.append(f"smoke {name} ({url}) failed: {probe.get('detail', '')}")
            passed += not down
            check.verdict(down, detail)
    if p.applied and passed:
        p.good.append(f"{passed} of {len(targets)} smoke checks passed")


def _instant(rb: Runbook, name: str, window: str) -> float | None:
    return latest(rb.prometheus.named(name, rb.service.name, window))


def _error_share(rb: Runbook, window: str) -> float | None:
    """The 5xx share over ``window``; 0 when requests came but no 5xx series exists."""
    share = _instant(rb, "error_rate", window)
    if share is None:
        throughput = _instant(rb, "throughput", window)
        if throughput:
            return 0.0
    return share


def compare_metrics(rb: Runbook, p: Procedure) -> pd.DataFrame | None:
    """Error rate and p99 latency of the new revision (measured only since the rollout)
    against the values before the change."""
    threshold, slo = rb.facts.error_threshold, rb.facts.latency_slo
    before_err, before_p99 = p.before.get("error_rate"), p.before.get("latency_p99")
    if not p.applied:
        for name in ("Error rate after vs before", "p99 latency after vs before"):
            with rb.check(name) as check:
                check.ok(
                    f"nothing to compare ({p.not_applied}): the SLIs above are those of "
                    f"the current {p.label}"
                )
        return None
    done_at = p.rollout_done_at or p.applied_at or _wall_clock()
    seconds = max(10, int((_wall_clock() - done_at).total_seconds()))
    window = f"{seconds}s"
    table = None
    with rb.check("Error rate after vs before") as check:
        after = _error_share(rb, window)
        p.after["error_rate"] = after
        start = (p.applied_at or done_at) - pd.Timedelta(seconds=max(60, 2 * seconds))
        end = _wall_clock()
        step = max(1, int((end - start).total_seconds() // 120))
        frame = rb.prometheus.named_range(
            "error_rate", rb.service.name, rb.rate_window, start, end, step
        )
        charts.series(
            frame,
            title="Error rate around the change",
            threshold=threshold,
            threshold_label="alert threshold",
            percent=True,
            rollouts=[(p.applied_at or done_at, f"rev {(p.rollout or {}).get('revision')}")],
        )
        detail = f"{_pct(before_err)} before, {_pct(after)} over the {window} since the rollout"
        if after is None:
            check.warn(f"{detail}: no requests measured since the rollout")
        else:
            worse = after >= threshold and (
                before_err is None or after > before_err + threshold / 2
            )
            (p.problems if worse else p.good).append(f"error rate {detail}")
            check.verdict(worse, f"{detail} (threshold {_pct(threshold)})", warn=after >= threshold)
    with rb.check("p99 latency after vs before") as check:
        after_p99 = _instant(rb, "latency_p99", window)
        p.after["latency_p99"] = after_p99
        detail = f"{_ms(before_p99)} before, {_ms(after_p99)} since the rollout"
        if after_p99 is None:
            check.warn(f"{detail}: no latency samples since the rollout")
        else:
            worse = after_p99 >= slo and (before_p99 is None or after_p99 > before_p99 * 1.25)
            (p.problems if worse else p.good).append(f"p99 latency {detail}")
            check.verdict(worse, f"{detail} (SLO {_ms(slo)})", warn=after_p99 >= slo)
    table = pd.DataFrame(
        {
            "metric": ["error rate", "p99 latency"],
            "before": [_pct(before_err), _ms(before_p99)],
            "after": [_pct(p.after.get("error_rate")), _ms(p.after.get("latency_p99"))],
            "threshold": [_pct(threshold), _ms(slo)],
        }
    )
    _display(table)
    return table


# --- findings -------------------------------------------------------------------------------


def conclude_deploy(rb: Runbook, p: Procedure) -> list[Finding]:
    """``healthy``/``none`` when the new revision is verified; ``recent-deployment``/
    ``rollback`` when it made things worse. Without an applied change, the decision tree
    on the current state."""
    if not p.applied:
        return rb.conclude()
    when = f"at {p.applied_at:%H:%M:%S} UTC" if p.applied_at is not None else ""
    if p.problems:
        return [
            rb.finding(
                "recent-deployment",
                [f"{p.label} rolled out {when}".strip(), *p.problems],
                "rollback",
            )
        ]
    return [
        rb.finding(
            "healthy", [f"{p.label} rolled out {when} and verified".strip(), *p.good], "none"
        )
    ]


def conclude_rollback(rb: Runbook, p: Procedure) -> list[Finding]:
    """``healthy``/``none`` when the rolled-back revision is verified; ``unknown``/
    ``escalate`` when the rollback did not bring the service back. Without an applied
    rollback, the decision tree on the current state."""
    if not p.applied:
        return rb.conclude()
    if p.problems:
        return [
            rb.finding(
                "unknown",
                [
                    f"rolled back to {p.label}, and still:",
                    *p.problems,
                    "the previous revision is not the cause: escalate",
                ],
                "escalate",
            )
        ]
    return [rb.finding("healthy", [f"rolled back to {p.label} and verified", *p.good], "none")]


def next_steps(rb: Runbook, p: Procedure, findings: list[Finding]) -> None:
    """What to run next, in one sentence."""
    primary = findings[0] if findings else None
    if primary is not None and primary.recommendation == "rollback":
        previous = p.before.get("revision") if p.applied else None
        where = f"to revision {previous} ({p.before.get('image')}) " if previous else ""
        print(
            f"Roll back {where}now: opsnb run rollback --target {rb.target.name} "
            f"-p service {rb.service.name} --apply"
        )
    elif primary is not None and primary.recommendation == "escalate":
        print("Escalate: page the secondary on-call with this run's HTML page.")
    else:
        print("Nothing more to do.")


def actions_summary(rb: Runbook) -> pd.DataFrame:
    """Every action of this run: what, on what, and what came of it."""
    frame = pd.DataFrame(
        [
            {"action": a.action, "object": a.object, "outcome": a.outcome, "detail": a.detail}
            for a in rb.actions
        ],
        columns=["action", "object", "outcome", "detail"],
    )
    _display(frame)
    return frame


# --- rollback -------------------------------------------------------------------------------


def rollout_history(rb: Runbook, p: Procedure, to_revision: int = 0) -> pd.DataFrame | None:
    """``kubectl rollout history``: every revision the deployment keeps, the current one and
    the one to roll back to (``to_revision``, or the one before the current)."""
    frame = None
    with rb.check("Rollout history") as check:
        frame = rb.k8s.rollout_history(p.deployment)
        current = p.before.get("revision")
        if current is None and not frame.empty:
            current = int(frame["revision"].max())
        earlier = [int(r) for r in frame["revision"] if current is None or int(r) < current]
        target = int(to_revision) if to_revision else (max(earlier) if earlier else None)
        marks = (
            {current: "current", target: "target"} if target != current else {current: "current"}
        )
        _display(frame.assign(mark=[marks.get(int(r), "") for r in frame["revision"]]))
        known = [int(r) for r in frame["revision"]]
        if target is None or target not in known:
            what = f"no revision {to_revision}" if to_revision else f"no revision before {current}"
            check.fail(f"{what} to roll back to (revisions: {known or 'none'})")
            return frame
        p.target_revision = target
        row = frame[frame["revision"] == target].iloc[0]
        cause = (
            f", {row['change_cause']}" if str(row["change_cause"]) not in ("None", "nan") else ""
        )
        detail = (
            f"current revision {current} ({p.before.get('image')}); target revision "
            f"{target} ({row['image']}{cause}, created {row['created']:%Y-%m-%d %H:%M} UTC)"
        )
        if target == current:
            detail += ": the deployment already runs it, nothing to roll back"
        check.verdict(False, detail, warn=target == current)
    return frame


def rollback(rb: Runbook, p: Procedure, to_revision: int = 0) -> Action:
    """``kubectl rollout undo [--to-revision N]``: the target revision's template becomes the
    deployment's again (previewed with the template diff, applied only when allowed)."""
    revision = int(to_revision) or None
    return _act(
        rb,
        p,
        "rollback",
        f"deployment/{p.deployment}",
        lambda dry: rb.k8s.rollback(p.deployment, to_revision=revision, dry_run=dry),
        to_revision=revision,
    )


# --- scale ----------------------------------------------------------------------------------


def hpa_status(
    rb: Runbook, p: Procedure, hpa: str = "", *, replicas: int = -1, pin: bool = False
) -> dict[str, Any] | None:
    """``kubectl get hpa``: its bounds and replicas, whether opsnb pinned it, and whether the
    requested replicas fit its range (an HPA moves replicas back into it)."""
    p.hpa_name = hpa or f"{p.deployment}-hpa"
    with rb.check(f"HPA {p.hpa_name}") as check:
        try:
            found = rb.k8s.hpa(p.hpa_name)
        except ObjectNotFound:
            p.hpa = None
            check.ok(f"no HPA {p.hpa_name}: replicas are set by hand only")
            return None
        p.hpa = found
        _display(
            pd.DataFrame(
                [
                    {
                        k: found[k]
                        for k in (
                            "name",
                            "target",
                            "min_replicas",
                            "max_replicas",
                            "current_replicas",
                            "desired_replicas",
                        )
                    }
                    | {"metrics": ", ".join(found["metrics"]) or "none"}
                ]
            )
        )
        low, high = found["min_replicas"], found["max_replicas"]
        detail = (
            f"min {low}, max {high}, current {found['current_replicas']}, "
            f"desired {found['desired_replicas']}"
        )
        warn = False
        if found["pinned_from"]:
            was = found["pinned_from"]
            detail += (
                f"; pinned by opsnb (was min {was.get('minReplicas')}, max "
                f"{was.get('maxReplicas')}): release it with -p release_hpa true"
            )
            warn = True
        if replicas >= 0 and not pin and not low <= replicas <= high:
            detail += (
                f"; {replicas} replicas is outside [{low}, {high}]: the HPA will move them "
                "back (pin it with -p pin_hpa true)"
            )
            warn = True
        check.verdict(False, detail, warn=warn)
    return p.hpa


def _replicas_or_current(rb: Runbook, p: Procedure, replicas: int) -> int:
    return int(replicas) if replicas >= 0 else int(rb.k8s.deployment(p.deployment)["replicas"])


def _ceiling(rb: Runbook, replicas: int) -> None:
    ceiling = rb.target.policy.max_replicas
    if replicas > ceiling:
        raise LimitExceeded(
            f"{replicas} replicas exceeds the target's max_replicas of {ceiling} "
            f"(policy.max_replicas of target {rb.target.name!r}): nothing was changed"
        )


def pin_hpa(rb: Runbook, p: Procedure, replicas: int = -1) -> Action:
    """``kubectl patch hpa -p '{"spec":{"minReplicas":N,"maxReplicas":N}}'``: hold the HPA at
    ``replicas`` (default: the current replicas), remembering its min/max in an annotation."""
    name = p.hpa_name or f"{p.deployment}-hpa"

    def call(dry: bool) -> Change:
        n = _replicas_or_current(rb, p, replicas)
        _ceiling(rb, n)
        found = rb.k8s.hpa(name)
        was = found["pinned_from"] or {
            "minReplicas": found["min_replicas"],
            "maxReplicas": found["max_replicas"],
        }
        note = {PINNED_FROM: json.dumps(was, sort_keys=True)}
        return rb.k8s.patch_hpa(name, n, n, dry_run=dry, annotations=note)

    return _act(rb, p, "pin-hpa", f"hpa/{name}", call, replicas=replicas)


def release_hpa(rb: Runbook, p: Procedure) -> Action:
    """Give the HPA back the min/max it had before it was pinned (from the annotation)."""
    name = p.hpa_name or f"{p.deployment}-hpa"

    def call(dry: bool) -> Change:
        found = rb.k8s.hpa(name)
        was = found["pinned_from"]
        if not was:
            raise ValueError(
                f"hpa/{name} is not pinned by opsnb (no {PINNED_FROM} annotation): "
                "no previous min/max to restore"
            )
        return rb.k8s.patch_hpa(
            name,
            int(was["minReplicas"]),
            int(was["maxReplicas"]),
            dry_run=dry,
            annotations={PINNED_FROM: None},
        )

    return _act(rb, p, "release-hpa", f"hpa/{name}", call)


def scale_replicas(rb: Runbook, p: Procedure, replicas: int) -> Action | None:
    """``kubectl scale --replicas``: refused beyond the target's ``max_replicas``, and when
    scaling down would delete more pods than its ``max_pods_per_action``."""
    if replicas < 0:
        print("Replicas unchanged (replicas = -1).")
        return None
    limit = rb.target.policy.max_pods_per_action

    def call(dry: bool) -> Change:
        _ceiling(rb, replicas)
        current = int(rb.k8s.deployment(p.deployment)["replicas"])
        if current - replicas > limit:
            raise LimitExceeded(
                f"scaling from {current} to {replicas} replicas would delete {current - replicas}"
                f" pods, more than the target's max_pods_per_action of {limit}: nothing was "
                "changed"
            )
        return rb.k8s.scale(p.deployment, replicas, dry_run=dry)

    return _act(rb, p, "scale", f"deployment/{p.deployment}", call, replicas=replicas)


def set_resources(
    rb: Runbook,
    p: Procedure,
    *,
    cpu_request: str = "",
    memory_request: str = "",
    cpu_limit: str = "",
    memory_limit: str = "",
) -> Action | None:
    """Vertical scaling: a patch of the container's requests and limits (empty values stay
    as they are). The pods are replaced, so it is refused when the deployment has more pods
    than the target's ``max_pods_per_action``."""
    requests = {
        k: v.strip() for k, v in (("cpu", cpu_request), ("memory", memory_request)) if v.strip()
    }
    limits = {k: v.strip() for k, v in (("cpu", cpu_limit), ("memory", memory_limit)) if v.strip()}
    if not requests and not limits:
        print("Resources unchanged (no request or limit given).")
        return None
    limit = rb.target.policy.max_pods_per_action

    def call(dry: bool) -> Change:
        replicas = int(rb.k8s.deployment(p.deployment)["replicas"])
        if replicas > limit:
            raise LimitExceeded(
                f"new resources replace all {replicas} pods, more than the target's "
                f"max_pods_per_action of {limit}: nothing was changed"
            )
        return rb.k8s.set_resources(p.deployment, p.container, requests, limits, dry_run=dry)

    return _act(
        rb, p, "set-resources", f"deployment/{p.deployment}", call, requests=requests, limits=limits
    )


def replicas_ready(rb: Runbook, p: Procedure) -> None:
    """After scaling: as many ready pods as the deployment wants."""
    with rb.check("Replicas ready") as check:
        dep = rb.k8s.deployment(p.deployment)
        pods = rb.k8s.pods(rb.service.selector)
        wanted = (p.rollout or {}).get("revision_hash")
        current = pods[pods["revision_hash"] == wanted] if wanted else pods
        ready = int(current["ready"].sum())
        detail = f"{ready} of {dep['replicas']} replicas ready ({p.label})"
        if p.hpa is not None:
            try:
                found = rb.k8s.hpa(p.hpa_name)
                detail += (
                    f"; hpa/{p.hpa_name} min {found['min_replicas']}, max {found['max_replicas']}"
                )
            except ObjectNotFound:
                pass
        short = ready < dep["replicas"]
        check.verdict(short and (p.applied or ready == 0), detail, warn=short)
