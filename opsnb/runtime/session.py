"""The Runbook session: what a notebook cell talks to.

    rb = open_runbook(target, service, window_minutes=60, apply=apply, runbook="high-error-rate")
    with rb.check("Error rate against the SLO") as check:
        frame = rb.prometheus.named_range("error_rate", **rb.range_args())
        check.fail("4.1% > 1%") if ... else check.ok("0.02%")
    rb.conclude()          # findings from the decision tree
    rb.rollback()          # a dry run unless applied, recorded either way

A check whose backend is down is recorded as ``unavailable`` with the reason and the cell
goes on; any other exception is a real failure of the runbook and propagates.
"""

from __future__ import annotations

import getpass
import math
import os
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any

import pandas as pd

from .. import records
from ..config import ServiceConfig, Target, get_target
from ..errors import BackendUnavailable, LimitExceeded
from ..records import Action, Check, Finding
from . import audit, connect, redaction
from .decide import Facts, decide


class CheckContext:
    """Collects the verdict of one check inside a ``with rb.check(...)`` block."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.status: str | None = None
        self.detail = ""

    def ok(self, detail: str = "") -> None:
        self.status, self.detail = "ok", detail

    def warn(self, detail: str = "") -> None:
        self.status, self.detail = "warn", detail

    def fail(self, detail: str = "") -> None:
        self.status, self.detail = "fail", detail

    def verdict(self, failed: bool, detail: str, *, warn: bool = False) -> None:
        """``fail`` when failed, else ``warn`` when warn, else ``ok``; same detail."""
        self.status = "fail" if failed else ("warn" if warn else "ok")
        self.detail = detail


class Runbook:
    def __init__(
        self,
        target: Target,
        service: ServiceConfig,
        *,
        runbook: str,
        window_minutes: int = 60,
        apply: bool = False,
        mode: str | None = None,
        alert: str = "",
        alert_started: str = "",
    ) -> None:
        self.target = target
        self.service = service
        self.runbook = runbook
        self.window = timedelta(minutes=window_minutes)
        self.alert = alert
        self.alert_started = _alert_start(alert_started)
        self.apply_requested = bool(apply)
        self.mode = mode or os.environ.get("OPSNB_MODE", "manual")
        self.checks: list[Check] = []
        self.findings: list[Finding] = []
        self.actions: list[Action] = []
        self.facts = Facts(
            error_threshold=service.slo.get("alert_error_rate", 0.01),
            latency_slo=service.slo.get("latency_p99_seconds", 0.5),
        )
        redaction.use(target.redactor())  # what charts draw carries none of its secrets

    # --- time ------------------------------------------------------------------------------

    @cached_property
    def snapshot(self) -> Any:
        if self.target.kind != "snapshot":
            return None
        return connect.snapshot_for(self.target, self.service.name)

    @cached_property
    def now(self) -> pd.Timestamp:
        """The present as this target sees it: the wall clock, or the snapshot's capture time."""
        if self.snapshot is not None:
            return pd.Timestamp(self.snapshot.now)
        return pd.Timestamp(datetime.now(UTC))

    @property
    def start(self) -> pd.Timestamp:
        """The window's start; it reaches back to ``ALERT_LEAD`` before the alert began (at
        most ``MAX_ALERT_LOOKBACK``), so the onset that fired the alert is always in view."""
        start = self.now - self.window
        if self.alert_started is not None and self._alert_in_data():
            start = min(start, self.alert_started - ALERT_LEAD)
        return start

    def _alert_in_data(self) -> bool:
        """The alert began within ``MAX_ALERT_LOOKBACK`` before this target's now."""
        began = self.alert_started
        return began is not None and self.now - MAX_ALERT_LOOKBACK <= began <= self.now

    def alert_context(self) -> str:
        """One line on the alert that started this run; empty for a run started by hand."""
        if not self.alert and self.alert_started is None:
            return ""
        began = self.alert_started
        since = f" firing since {began:%Y-%m-%d %H:%M:%S} UTC" if began is not None else ""
        if began is not None and not self._alert_in_data():
            since += f" (outside the data, which ends {self.now:%Y-%m-%d %H:%M} UTC)"
        return f"Started by alert {self.alert or '(unnamed)'}{since}"

    @property
    def rate_window(self) -> str:
        if self.snapshot is not None:
            return str(self.snapshot.meta.get("rate_window", "5m"))
        return self.target.prometheus.rate_window if self.target.prometheus else "5m"

    def range_args(self, step_seconds: int | None = None) -> dict[str, Any]:
        """Keyword arguments for ``named_range``: this service over the runbook's window."""
        if step_seconds is None:
            step_seconds = max(5, int((self.now - self.start).total_seconds() // 240))
            if self.snapshot is not None:
                step_seconds = int(self.snapshot.meta.get("step_seconds", 60))
        start = self.start
        if self.snapshot is None:
            # Prometheus evaluates at start + k * step up to the end: a start a whole number
            # of steps before now puts the last point at now, not up to a step earlier.
            steps = math.ceil((self.now - start).total_seconds() / step_seconds)
            start = self.now - pd.Timedelta(seconds=steps * step_seconds)
        return {
            "service": self.service.name,
            "window": self.rate_window,
            "start": start,
            "end": self.now,
            "step": step_seconds,
        }

    # --- backends (built on first use; a missing one raises BackendUnavailable) ------------

    @cached_property
    def prometheus(self) -> Any:
        return connect.prometheus(self.target, self.snapshot)

    @cached_property
    def k8s(self) -> Any:
        return connect.kubernetes(self.target, self.snapshot)

    @cached_property
    def postgres(self) -> Any:
        return connect.postgres(self.target, self.snapshot)

    @cached_property
    def redis(self) -> Any:
        return connect.redis(self.target, self.snapshot)

    def dependencies(self) -> dict[str, str]:
        if self.snapshot is not None:
            return {k: v.get("url", "") for k, v in self.snapshot.dependencies.items()}
        return dict(self.service.dependencies)

    def probe_dependency(self, name: str, timeout: float = 3.0) -> dict[str, Any]:
        """GET a dependency's health URL: {name, url, status: ok|down, detail, latency_ms}."""
        if self.snapshot is not None:
            return {"name": name, **self.snapshot.dependencies[name]}
        import time

        import httpx

        url = self.service.dependencies[name]
        began = time.monotonic()
        try:
            response = httpx.get(url, timeout=timeout)
            ok = response.status_code < 500
            detail = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            ok, detail = False, f"{type(exc).__name__}: {exc}"
        latency = round((time.monotonic() - began) * 1000, 1)
        return {"name": name, "url": url, "status": "ok" if ok else "down", "detail": detail,
                "latency_ms": latency}  # fmt: skip

    def service_logs(self, *, previous: bool = False, tail: int | None = None) -> pd.DataFrame:
        """The service's pod logs over the window, parsed (see ``opsnb.backends.logs.parse``)."""
        from ..backends import logs

        per_pod = self.k8s.logs_for(self.service.selector, previous=previous, tail=tail)
        # one parse of every pod's lines: building a frame has a fixed cost that six small
        # frames pay six times
        pods, lines = [], []
        for pod, text in per_pod.items():
            own = logs.lines_of(text)
            pods.append((pod, len(own)))
            lines.extend(own)
        frame = logs.parse(lines)
        frame["pod"] = pd.Series([pod for pod, count in pods for _ in range(count)], dtype="object")
        in_window = frame["time"].isna() | (
            (frame["time"] >= self.start) & (frame["time"] <= self.now)
        )
        return frame[in_window].sort_values("time", kind="stable").reset_index(drop=True)

    # --- recording -------------------------------------------------------------------------

    @contextmanager
    def check(self, name: str) -> Iterator[CheckContext]:
        """Run one check and record its verdict.

        A backend that is down makes the check ``unavailable``. Any other exception makes it
        ``error``: the traceback is printed in the cell, the runbook goes on to its findings
        (a runbook is most needed when things are broken), and the run is marked failed.
        """
        ctx = CheckContext(name)
        try:
            yield ctx
        except BackendUnavailable as exc:
            ctx.status, ctx.detail = "unavailable", str(exc)
        except Exception as exc:
            traceback.print_exc()
            ctx.status, ctx.detail = "error", f"{type(exc).__name__}: {exc}"
            self.facts.notes.append(f"check {name!r} raised {type(exc).__name__}")
        if ctx.status is None:
            ctx.status, ctx.detail = "warn", ctx.detail or "the check recorded no verdict"
        record = Check(name, ctx.status, ctx.detail)
        self.checks.append(record)
        records.show(record)

    def finding(self, cause: str, evidence: list[str], recommendation: str) -> Finding:
        record = Finding(cause, list(evidence), recommendation)
        self.findings.append(record)
        records.show(record)
        return record

    def conclude(self) -> list[Finding]:
        """Record the decision tree's findings from the facts the checks gathered."""
        return [self.finding(f.cause, f.evidence, f.recommendation) for f in decide(self.facts)]

    def escalation_advice(self, *, minutes: float, who: str) -> str:
        """Whether the symptom has lasted long enough to escalate, in one sentence."""
        f = self.facts
        began = (
            f.errors_began_at
            if f.error_rate is not None and f.error_rate >= f.error_threshold
            else None
        )
        if began is None and f.latency_p99 is not None and f.latency_p99 >= f.latency_slo:
            began = f.slow_since
        if began is None:
            return "The service is within its thresholds: no escalation needed."
        lasted = (self.now - began).total_seconds() / 60
        if lasted > minutes:
            return f"Symptoms for {lasted:.0f} min (over {minutes:g}): page {who} now."
        return (
            f"Symptoms for {lasted:.0f} min: re-check; "
            f"page {who} if still present at {minutes:g} min."
        )

    # --- guarded actions -------------------------------------------------------------------

    @property
    def may_apply(self) -> tuple[bool, str]:
        """Whether mutating steps really run, and why (or why not)."""
        policy = self.target.policy
        if not self.apply_requested:
            return False, "dry run: apply was not requested"
        if self.target.kind == "snapshot":
            return False, f"target {self.target.name!r} is a recorded snapshot and read-only"
        if not policy.allow_apply:
            return False, f"target {self.target.name!r} policy does not allow apply"
        if self.mode == "automated" and self.runbook not in policy.automatic_actions:
            return False, f"automated runs may not apply {self.runbook!r} on {self.target.name!r}"
        return True, "applied"

    def act(self, action: str, obj: str, call: Callable[[bool], Any], **parameters: Any) -> Action:
        """Run a mutating call as a dry run or for real, and record it either way.

        ``call(dry_run)`` performs the change (or its preview) and returns something with a
        ``detail``. Every action is previewed first; it is applied only when apply was asked
        for, the target's policy allows it, and (in an interactive notebook) a person
        confirms after reading the preview.
        """
        applied, reason = self.may_apply
        outcome = "applied" if applied else ("refused" if self.apply_requested else "previewed")
        try:
            preview = call(True)
            detail = getattr(preview, "detail", "") or str(preview)
            if outcome == "refused":
                detail = f"{reason}; preview: {detail}"
            if applied and not _confirmed(action, obj, detail):
                applied, outcome = False, "declined"
                detail = f"not confirmed; preview: {detail}"
            if applied:
                change = call(False)
                detail = getattr(change, "detail", "") or str(change)
        except BackendUnavailable as exc:
            applied, outcome, detail = False, "unavailable", str(exc)
        except LimitExceeded as exc:  # a blast-radius limit: refused, nothing touched
            applied, outcome, detail = False, "refused", str(exc)
        except (ValueError, LookupError) as exc:
            applied, outcome, detail = False, "failed", str(exc)
        record = Action(
            action=action,
            target=self.target.name,
            service=self.service.name,
            object=obj,
            dry_run=not applied,
            outcome=outcome,
            detail=detail,
            parameters=parameters,
            by=os.environ.get("OPSNB_USER") or _whoami(),
            mode=self.mode,
        )
        self.actions.append(record)
        audit.append(record)
        records.show(record)
        return record

    def rollback(self, to_revision: int | None = None) -> Action:
        name = self.service.deployment
        return self.act(
            "rollback", f"deployment/{name}",
            lambda dry: self.k8s.rollback(name, to_revision=to_revision, dry_run=dry),
            to_revision=to_revision,
        )  # fmt: skip

    def scale(self, replicas: int) -> Action:
        name = self.service.deployment
        ceiling = self.target.policy.max_replicas
        if replicas > ceiling:
            raise ValueError(f"{replicas} replicas exceeds the target's ceiling of {ceiling}")
        return self.act(
            "scale", f"deployment/{name}",
            lambda dry: self.k8s.scale(name, replicas, dry_run=dry), replicas=replicas,
        )  # fmt: skip

    def restart(self) -> Action:
        name = self.service.deployment
        return self.act(
            "restart", f"deployment/{name}", lambda dry: self.k8s.restart(name, dry_run=dry)
        )

    def set_env(self, **env: str) -> Action:
        name, container = self.service.deployment, self.service.container
        return self.act(
            "set-env", f"deployment/{name}",
            lambda dry: self.k8s.set_env(name, container, env, dry_run=dry), **env,
        )  # fmt: skip


def _confirmed(action: str, obj: str, preview: str) -> bool:
    """Ask a person to confirm, when a person is there to ask.

    In JupyterLab the kernel may read from the user: the preview is shown and the action
    runs only after the user types ``yes``. Headless runs (papermill, ``opsnb run``, the
    alert service) cannot be asked; there the explicit ``--apply`` and the target's policy
    are the confirmation.
    """
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return True
    shell = get_ipython()
    kernel = getattr(shell, "kernel", None)
    if kernel is None or not getattr(kernel, "_allow_stdin", False):
        return True
    print(f"About to APPLY {action} on {obj}.\nPreview: {preview}")
    answer = input("Type 'yes' to apply, anything else to cancel: ")
    return answer.strip().lower() == "yes"


def _whoami() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def open_runbook(
    target: str = "demo",
    service: str = "",
    *,
    runbook: str = "runbook",
    window_minutes: int = 60,
    apply: bool = False,
    alert: str = "",
    alert_started: str = "",
) -> Runbook:
    """Open a session for ``service`` on ``target`` (config is read as ``opsnb run`` reads it).

    ``alert`` and ``alert_started`` (ISO 8601) name the alert that started the run, as
    ``opsnb serve`` passes them: the window then reaches back to before the alert began."""
    resolved = get_target(target)
    return Runbook(
        resolved,
        resolved.service(service or None),
        runbook=runbook,
        window_minutes=window_minutes,
        apply=apply,
        alert=alert,
        alert_started=alert_started,
    )


ALERT_LEAD = timedelta(minutes=10)  # what the window shows before the alert began
MAX_ALERT_LOOKBACK = timedelta(hours=24)  # an alert older than this does not widen it


def _alert_start(text: str) -> pd.Timestamp | None:
    """An alert's ``startsAt``; None when empty. A malformed one is a parameter error."""
    if not text:
        return None
    try:
        moment = pd.Timestamp(text)
    except ValueError:
        raise ValueError(
            f"starts_at {text!r} is not an ISO 8601 time (e.g. 2025-01-15T14:20:00Z)"
        ) from None
    return moment.tz_localize(UTC) if moment.tzinfo is None else moment.tz_convert(UTC)


# --- small helpers runbook cells use on series frames -------------------------------------


def _in_time_order(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of a series frame that have a value, oldest first."""
    return frame.dropna(subset=["value"]).sort_values("timestamp")


def latest(frame: pd.DataFrame) -> float | None:
    """The newest non-NaN value of a series frame, or None when there is none."""
    if frame.empty:
        return None
    values = _in_time_order(frame)["value"]
    return None if values.empty else float(values.iloc[-1])


def held(frame: pd.DataFrame, seconds: float = 20) -> float | None:
    """The level a gauge has held through its newest samples (their minimum): those of the
    last ``seconds``, and never fewer than two. One scrape taken while a paused process
    caught up can show a queue that lasted milliseconds; a level held is real. None when
    the frame has no value."""
    if frame.empty:
        return None
    ordered = _in_time_order(frame)
    if ordered.empty:
        return None
    recent = ordered["timestamp"] >= ordered["timestamp"].iloc[-1] - pd.Timedelta(seconds=seconds)
    values = ordered["value"][recent] if recent.sum() >= 2 else ordered["value"].iloc[-2:]
    return float(values.min())


def first_breach(frame: pd.DataFrame, threshold: float) -> pd.Timestamp | None:
    """When the series first reached ``threshold`` in its latest run above it."""
    if frame.empty:
        return None
    ordered = _in_time_order(frame)
    if ordered.empty:
        return None
    above = (ordered["value"] >= threshold).to_numpy()
    if not above[-1]:
        above_idx = [i for i, a in enumerate(above) if a]
        return ordered["timestamp"].iloc[above_idx[0]] if above_idx else None
    start = len(above) - 1
    while start > 0 and above[start - 1]:
        start -= 1
    return ordered["timestamp"].iloc[start]


def ratio_to_baseline(frame: pd.DataFrame, recent: int = 5) -> float | None:
    """Mean of the last ``recent`` samples over the median of the window's first half."""
    values = frame.sort_values("timestamp")["value"].dropna()
    if len(values) < recent * 2:
        return None
    baseline = float(values.iloc[: len(values) // 2].median())
    if baseline <= 0:
        return None
    return float(values.iloc[-recent:].mean()) / baseline
