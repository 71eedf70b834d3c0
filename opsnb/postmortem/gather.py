"""Everything a postmortem is made of, read once: the incident and its timeline, the runs
attached to it, and the metrics of the incident window.

    gathered = gather("INC-0001", root="incidents")            # the incident's own target
    gathered = gather("INC-0001", snapshot="evidence/payments")  # an evidence snapshot
    gathered.metrics.series["error_rate"]                        # pandas Series by UTC time

Metrics come from, in this order: an evidence snapshot given with ``snapshot`` (a snapshot
folder or a folder of snapshots, one per service), else the target given with ``target``,
else the incident's own target. A snapshot target is read with its "now" moved to the end
of its recording, so the whole incident is visible; a live target's Prometheus is asked
for the named queries of :mod:`opsnb.promql` over the window. When no metrics can be read,
``metrics`` is None and ``metrics_problem`` says why: the postmortem is still written.

The fetched range starts :data:`LOOKBACK` before the first alert (or the opening) so the
impact start can be found, and ends :data:`TAIL` after the resolution (never past the data).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from ..errors import BackendUnavailable, OpsnbError
from ..incidents import Incident, Store
from ..incidents.timeline import Entry, entries
from ..promql import render
from ..severity import SeverityPolicy

LOOKBACK = timedelta(minutes=30)  # before the first alert: where the impact start is looked for
TAIL = timedelta(minutes=15)  # after the resolution: the charts' and tables' right margin
MAX_POINTS = 2500  # per series: a live range query's step is chosen to stay under it
SERIES = ("error_rate", "throughput", "latency_p99")  # the SLIs, one series each
POOL_STATES = ("active", "idle", "waiting")


class RangeSource(Protocol):
    """What both ``PrometheusBackend`` and ``SnapshotPrometheus`` answer."""

    def named_range(
        self, name: str, service: str, window: str, start: Any, end: Any, step: Any
    ) -> pd.DataFrame: ...


@dataclass
class RunInfo:
    """A run folder attached to the incident (its ``result.json``, if still there)."""

    run_dir: Path
    result: dict[str, Any] | None
    problem: str | None = None  # why result is None

    @property
    def name(self) -> str:
        return self.run_dir.name

    @property
    def runbook(self) -> str:
        return str((self.result or {}).get("runbook") or self.name)

    def file(self, kind: str) -> Path | None:
        """The run's ``notebook`` or ``html`` file, when it exists."""
        name = ((self.result or {}).get("files") or {}).get(kind)
        path = self.run_dir / name if name else None
        return path if path is not None and path.is_file() else None


@dataclass
class Metrics:
    """The incident window's series, each a float Series indexed by UTC timestamps."""

    source: str  # where they came from, in words
    service: str
    rate_window: str
    step_seconds: float
    start: datetime
    end: datetime
    series: dict[str, pd.Series] = field(default_factory=dict)
    pool: pd.DataFrame | None = None  # columns active, idle, waiting (those recorded)
    queries: dict[str, str] = field(default_factory=dict)  # name -> rendered PromQL
    unavailable: dict[str, str] = field(default_factory=dict)  # name -> reason

    def get(self, name: str) -> pd.Series | None:
        found = self.series.get(name)
        return found if found is not None and len(found) else None


@dataclass
class Gathered:
    incident: Incident
    entries: list[Entry]  # the timeline, ordered, corrections applied
    runs: list[RunInfo]
    slo: dict[str, float]
    policy: SeverityPolicy
    root: Path  # the incidents dir
    metrics: Metrics | None = None
    metrics_problem: str | None = None
    similar: list[Incident] = field(default_factory=list)  # other incidents of the service
    generated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def first_seen(self) -> datetime:
        """The first alert, else the opening: where the responders' clock starts."""
        alerts = [e.at for e in self.entries if _is_firing_alert(e)]
        opened = [e.at for e in self.entries if e.kind == "opened"]
        return min([*alerts, *opened], default=self.generated_at)

    @property
    def end(self) -> datetime:
        """The resolution, else the last event (the incident is still open)."""
        inc = self.incident
        if inc.resolved_at:
            return _utc(inc.resolved_at)
        return max((e.at for e in self.entries), default=self.generated_at)


def _is_firing_alert(entry: Entry) -> bool:
    return entry.kind == "alert" and str(entry.event.data.get("status") or "firing") == "firing"


def _utc(value: Any) -> datetime:
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return stamp.to_pydatetime()


def gather(
    incident_id: str,
    *,
    root: str | os.PathLike[str] | None = None,
    snapshot: str | os.PathLike[str] | None = None,
    target: str | None = None,
    store: Store | None = None,
) -> Gathered:
    """Read the incident, its runs and its window's metrics (see the module doc)."""
    st = store or Store(root)
    incident = st.load(incident_id)
    timeline = entries(incident)
    runs = [_run_info(Path(d)) for d in incident.runs]
    similar = [i for i in st.incidents() if i.service == incident.service and i.id != incident.id]
    gathered = Gathered(incident, timeline, runs, {}, st.policy, st.root, similar=similar)
    gathered.slo, source, rate_window, problem = _open_source(incident, snapshot, target)
    if source is None:
        gathered.metrics_problem = problem
        return gathered
    try:
        gathered.metrics = fetch(source, incident.service, rate_window, gathered)
    except (BackendUnavailable, OpsnbError, ValueError, OSError) as exc:
        gathered.metrics_problem = f"{source[1]}: {exc}"
    return gathered


def _run_info(run_dir: Path) -> RunInfo:
    try:
        result = json.loads((run_dir / "result.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return RunInfo(run_dir, None, "the run folder is gone (no result.json)")
    except (OSError, ValueError) as exc:
        return RunInfo(run_dir, None, f"result.json cannot be read: {exc}")
    return RunInfo(run_dir, result if isinstance(result, dict) else None)


Source = tuple[RangeSource, str, float | None, datetime | None]  # backend, words, step, data end


def _open_source(
    incident: Incident, snapshot: Any, target_name: str | None
) -> tuple[dict[str, float], Source | None, str, str | None]:
    """(slo, source or None, rate window, why there is no source)."""
    from ..config import DEFAULT_SLO, get_target

    service = incident.service
    slo = dict(DEFAULT_SLO)
    if snapshot is not None:
        return _snapshot_source(Path(snapshot), service, slo)
    name = target_name or incident.target
    if not name:
        return slo, None, "5m", "the incident names no target (pass --target or --snapshot)"
    try:
        found = get_target(name)
    except OpsnbError as exc:
        return slo, None, "5m", str(exc)
    slo.update(found.service(service).slo)
    if found.kind == "snapshot" and found.snapshot is not None:
        return _snapshot_source(found.snapshot, service, slo, f"target {name!r}")
    if found.prometheus is None:
        return slo, None, "5m", f"target {name!r} has no Prometheus (pass --snapshot)"
    from ..backends.prometheus import PrometheusBackend

    backend = PrometheusBackend(found.prometheus.url, timeout=found.prometheus.timeout)
    words = f"Prometheus of target {name!r} ({found.prometheus.url}), queried live"
    return slo, (backend, words, None, None), found.prometheus.rate_window, None


def _snapshot_source(
    path: Path, service: str, slo: dict[str, float], via: str = ""
) -> tuple[dict[str, float], Source | None, str, str | None]:
    from ..backends import snapshot_index
    from ..backends.snapshot import Snapshot, SnapshotPrometheus

    try:
        folder = snapshot_index.require(path, service)
        meta = Snapshot(folder)
        snap = Snapshot(folder, now=meta.end)  # the whole recording, as a postmortem needs
    except (LookupError, ValueError) as exc:
        return slo, None, "5m", f"evidence snapshot: {exc}"
    slo.update({k: float(v) for k, v in snap.slo.items()})
    words = f"evidence snapshot {folder}" + (f" ({via})" if via else "")
    source = (SnapshotPrometheus(snap), words, float(snap.step_seconds), snap.end.to_pydatetime())
    return slo, source, snap.rate_window, None


def fetch(source: Source, service: str, rate_window: str, gathered: Gathered) -> Metrics:
    """The named series over the incident's window (see the module doc)."""
    backend, words, fixed_step, data_end = source
    start = gathered.first_seen - LOOKBACK
    end = gathered.end + TAIL
    end = min(end, data_end or datetime.now(UTC))
    if end <= start:
        raise ValueError(f"no metrics between {start:%Y-%m-%d %H:%M} and {end:%H:%M} UTC")
    step = fixed_step or float(max(1, math.ceil((end - start).total_seconds() / MAX_POINTS)))
    # Align to the step, so a snapshot's evaluation points fall on its recorded samples.
    first = math.floor(start.timestamp() / step) * step
    start = datetime.fromtimestamp(first, UTC)
    metrics = Metrics(words, service, rate_window, step, start, end)
    for name in (*SERIES, "pool"):
        metrics.queries[name] = render(name, service=service, window=rate_window)
        try:
            frame = backend.named_range(name, service, rate_window, start, end, step)
        except BackendUnavailable as exc:
            metrics.unavailable[name] = exc.reason
            continue
        except ValueError as exc:  # Prometheus refused the query
            metrics.unavailable[name] = str(exc)
            continue
        if name == "pool":
            metrics.pool = _pool_frame(frame)
        else:
            metrics.series[name] = _one_series(frame)
    if "error_rate" in metrics.unavailable:
        name = str(getattr(backend, "name", "prometheus"))
        raise BackendUnavailable(name, metrics.unavailable["error_rate"])
    return metrics


def _one_series(frame: pd.DataFrame) -> pd.Series:
    """A frame of one series (the SLIs aggregate with sum) as a Series by time."""
    if frame is None or frame.empty:
        return pd.Series(dtype="float64")
    series = frame.groupby("timestamp")["value"].sum(min_count=1)
    return series.sort_index().astype("float64")


def _pool_frame(frame: pd.DataFrame) -> pd.DataFrame | None:
    if frame is None or frame.empty or "state" not in frame.columns:
        return None
    table = frame.pivot_table(index="timestamp", columns="state", values="value", aggfunc="sum")
    columns = [s for s in POOL_STATES if s in table.columns]
    return table[columns].sort_index() if columns else None
