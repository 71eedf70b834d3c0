"""Steps of the data and logs procedures: the template's "Log Access", "Database Operations",
"Cache Operations" and "Maintenance Checklist", one check (or one guarded action) each.

A runbook cell calls one step under a markdown cell that says why it matters, as with
``opsnb.runtime.steps``::

    frame = datastores.pod_logs(rb, since_minutes=60)
    matches = datastores.matching_lines(rb, frame, "ERROR|WARN")
    datastores.export_lines(rb, matches)

Mutating steps (terminating PostgreSQL backends, deleting Redis keys, maintenance mode) go
through ``rb.act``: always previewed first, applied only when ``rb.may_apply`` allows, and
refused with a ``ValueError`` naming the limit when they would touch more than the target's
policy allows (``max_backends_per_action``, ``max_keys_per_action``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import BackendUnavailable, LimitExceeded
from ..records import Action, Check, Finding
from . import charts, steps
from .session import Runbook
from .show import display as _display
from .show import markdown as _markdown

# --- Log Access -------------------------------------------------------------------------------


def pod_logs(
    rb: Runbook, *, since_minutes: int = 60, previous: bool = False, tail: int | None = None
) -> pd.DataFrame | None:
    """The service's pod logs over the last ``since_minutes`` (``kubectl logs -l SELECTOR
    --since=...``; ``previous``: the containers before their last restart; ``tail``: at most
    so many lines per pod), parsed (``opsnb.backends.logs.parse``) with a ``pod`` column, in
    pod order as ``kubectl logs -l`` prints them. Shows lines per pod."""
    from ..backends import logs as logtools

    frame = None
    what = "Previous container logs" if previous else "Pod logs"
    with rb.check(f"{what} over the last {since_minutes} min") as check:
        per_pod = rb.k8s.logs_for(
            rb.service.selector,
            previous=previous,
            tail=tail if tail and tail > 0 else None,
            since_seconds=int(since_minutes) * 60,
        )
        parts = [logtools.parse(lines).assign(pod=pod) for pod, lines in per_pod.items()]
        if parts:
            frame = pd.concat(parts, ignore_index=True)
        else:
            frame = logtools.parse([]).assign(pod=pd.Series(dtype="str"))
        summary = pd.DataFrame(
            {
                "pod": list(per_pod),
                "lines": [len(lines) for lines in per_pod.values()],
            }
        )
        if not frame.empty:
            times = frame.groupby("pod")["time"].agg(["min", "max"])
            summary["first"] = summary["pod"].map(times["min"])
            summary["last"] = summary["pod"].map(times["max"])
        _display(summary)
        detail = f"{len(frame)} lines from {len(per_pod)} pod(s) of {rb.service.selector}"
        check.verdict(False, detail, warn=frame.empty)
    return frame


def matching_lines(rb: Runbook, frame: pd.DataFrame | None, pattern: str) -> pd.DataFrame | None:
    """The lines matching the regular expression ``pattern`` (``grep -E``), counted per pod
    and per level; the last of them shown."""
    if frame is None:
        print("No logs were read (see above): nothing to search.")
        return None
    matches = None
    with rb.check(f"Lines matching /{pattern}/") as check:
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            check.fail(f"not a valid regular expression: {exc}")
            return None
        mask = frame["line"].astype("str").str.contains(regex, na=False)
        matches = frame[mask.to_numpy(dtype=bool)]
        levels = matches["level"].astype("object").where(matches["level"].notna(), "(none)")
        table = pd.crosstab(matches["pod"], levels).reindex(sorted(set(frame["pod"])), fill_value=0)
        table["total"] = table.sum(axis=1)
        _display(table)
        by_level = levels.value_counts().rename_axis("level").reset_index(name="lines")
        charts.bars(by_level, x="level", y="lines", title=f"Lines matching /{pattern}/ by level")
        _display(matches[["time", "pod", "level", "line"]].tail(20))
        counts = ", ".join(f"{k} {v}" for k, v in zip(by_level["level"], by_level["lines"],
                                                      strict=True))  # fmt: skip
        check.verdict(
            False,
            f"{len(matches)} of {len(frame)} lines match" + (f" ({counts})" if counts else ""),
            warn=len(matches) > 0,
        )
    return matches


def export_name(now: datetime | None = None) -> str:
    """``service-logs-<UTC date>.log``, as the template's ``date +%Y%m%d`` names it."""
    return f"service-logs-{(now or datetime.now(UTC)):%Y%m%d}.log"


def export_lines(
    rb: Runbook, matches: pd.DataFrame | None, folder: str | Path = "."
) -> Path | None:
    """Write the matching lines, as they were logged, to ``service-logs-<UTC date>.log`` in
    ``folder`` (the run folder under ``opsnb run``, whose working folder it is)."""
    path = None
    with rb.check("Export of the matching lines") as check:
        if matches is None:
            raise BackendUnavailable("logs", "no lines to export: the logs could not be read")
        path = (Path(folder) / export_name()).resolve()
        lines = [str(line) for line in matches["line"]]
        path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        check.ok(f"{len(lines)} lines written to {path}")
    return path


# --- Database Operations ----------------------------------------------------------------------


def database_sizes(rb: Runbook) -> pd.DataFrame | None:
    """Every database's size, largest first (``pg_database_size``)."""
    sizes = None
    with rb.check("Database sizes") as check:
        sizes = rb.postgres.database_sizes()
        _display(sizes)
        charts.bars(sizes.head(15), x="datname", y="size_bytes", title="Database size (bytes)")
        if sizes.empty:
            check.warn("no database this user may connect to")
        else:
            top = sizes.iloc[0]
            check.ok(f"{len(sizes)} database(s); largest {top['datname']} ({top['size']})")
    return sizes


def replication(rb: Runbook, max_lag_seconds: float = 30.0) -> pd.DataFrame | None:
    """Standbys attached to the server (``pg_stat_replication``) and how far behind they
    replay. None attached is a fine answer for a single server."""
    frame = None
    with rb.check("Replication") as check:
        frame = rb.postgres.replication()
        _display(frame)
        if frame.empty:
            check.ok("no standby attached (pg_stat_replication is empty)")
        else:
            lag = frame["replay_lag_seconds"].max()
            lagging = frame[frame["replay_lag_seconds"].fillna(0) > max_lag_seconds]
            not_streaming = frame[frame["state"] != "streaming"]
            check.verdict(
                False,
                f"{len(frame)} standby(s); replay lag up to "
                f"{0.0 if pd.isna(lag) else float(lag):.1f} s; "
                f"{len(not_streaming)} not streaming",
                warn=not lagging.empty or not not_streaming.empty,
            )
    return frame


def read_only_query(
    rb: Runbook, sql: str, *, limit: int = 100, timeout_ms: int = 5000
) -> pd.DataFrame | None:
    """Run one statement in a READ ONLY transaction (always rolled back) with a statement
    timeout and a row limit; a refused statement fails the check, it does not stop the
    runbook."""
    from ..backends.postgres import QueryRefused

    if not str(sql or "").strip():
        print('No query given: pass -p query "SELECT ..." to run one, read-only.')
        return None
    frame = None
    with rb.check("Read-only query") as check:
        try:
            frame = rb.postgres.read_only_query(sql, limit=limit, timeout_ms=timeout_ms)
        except QueryRefused as exc:
            check.fail(f"refused: {exc}")
            return None
        _display(frame)
        more = f" (the first {limit}; there were more)" if frame.attrs.get("truncated") else ""
        detail = f"{len(frame)} row(s){more}"
        if frame.shape == (1, 1):
            detail += f": {frame.columns[0]} = {frame.iloc[0, 0]}"
        check.ok(detail)
    return frame


def termination_candidates(
    rb: Runbook, min_seconds: float = 600, *, include_other_applications: bool = False
) -> pd.DataFrame | None:
    """Sessions not idle whose transaction (or query) is older than ``min_seconds``: the
    service's own (``application_name``) unless other applications are included. Never this
    runbook's own session, never background workers."""
    app = None if include_other_applications else rb.service.name
    who = "any application" if app is None else f"application_name={app}"
    candidates = None
    with rb.check(f"Sessions over {min_seconds:g} s ({who})") as check:
        candidates = rb.postgres.backends_to_terminate(min_seconds, application_name=app)
        _display(candidates)
        limit = rb.target.policy.max_backends_per_action
        if candidates.empty:
            check.ok(f"no session of {who} in a transaction or query over {min_seconds:g} s")
        else:
            longest = float(candidates["duration_seconds"].max())
            check.warn(
                f"{len(candidates)} session(s), the longest for {longest:.0f} s "
                f"(policy.max_backends_per_action: {limit})"
            )
    return candidates


def terminate_long_queries(
    rb: Runbook,
    candidates: pd.DataFrame | None,
    *,
    min_seconds: float = 600,
    include_other_applications: bool = False,
) -> Action | None:
    """Terminate the candidate sessions (``pg_terminate_backend``), previewed first.

    The preview shows the exact statement and pids; more pids than the target's
    ``policy.max_backends_per_action`` are refused with a ValueError naming the limit."""
    if candidates is None:
        print("The sessions could not be listed (see above): nothing to terminate.")
        return None
    if candidates.empty:
        print(f"No session over {min_seconds:g} s: nothing to terminate.")
        return None
    app = None if include_other_applications else rb.service.name
    pids = [int(p) for p in candidates["pid"]]
    limit = rb.target.policy.max_backends_per_action

    def call(dry_run: bool) -> Any:
        if len(pids) > limit:
            raise LimitExceeded(
                f"refused: {len(pids)} backends to terminate, over the target's "
                f"policy.max_backends_per_action ({limit}); raise min_seconds or the limit "
                f"(pids {', '.join(map(str, pids))})"
            )
        return rb.postgres.terminate_backends(pids, dry_run=dry_run, application_name=app)

    obj = f"postgres backends of {app}" if app else "postgres backends of every application"
    return rb.act("terminate-backends", obj, call, pids=pids, min_seconds=min_seconds,
                  application_name=app)  # fmt: skip


def database_findings(
    rb: Runbook, candidates: pd.DataFrame | None, min_seconds: float = 600
) -> list[Finding]:
    """What the database checks add up to: long sessions to terminate, connections near the
    limit, or a healthy database."""
    f = rb.facts
    ratio = f.db_connections_ratio
    usage = [] if ratio is None else [f"connections at {ratio:.0%} of max_connections"]
    if f.idle_in_transaction:
        usage.append(f"{f.idle_in_transaction} connections idle in transaction")
    if candidates is None and ratio is None:
        return [rb.finding("unknown", ["the database could not be examined", *f.notes],
                           "escalate")]  # fmt: skip
    long_sessions = candidates is not None and not candidates.empty
    if long_sessions or f.long_queries:
        evidence = []
        if candidates is not None and not candidates.empty:
            evidence.append(
                f"{len(candidates)} session(s) in transactions or queries over {min_seconds:g} s,"
                f" the longest for {float(candidates['duration_seconds'].max()):.0f} s"
            )
        if f.long_queries:
            evidence.append(f"{f.long_queries} long-running queries or transactions")
        return [rb.finding("slow-database-queries", [*evidence, *usage],
                           "terminate-long-queries")]  # fmt: skip
    if ratio is not None and ratio >= 0.95:
        return [rb.finding("resource-exhaustion", usage, "escalate")]
    return [rb.finding("healthy", ["no long-running session", *usage], "none")]


# --- Cache Operations -------------------------------------------------------------------------

_STATS_FIELDS = (
    "keyspace_hits", "keyspace_misses", "evicted_keys", "expired_keys",
    "instantaneous_ops_per_sec", "total_commands_processed", "connected_clients",
    "rejected_connections",
)  # fmt: skip


def cache_stats(rb: Runbook) -> dict[str, Any] | None:
    """``INFO stats``: lookups, evictions, expirations, operations per second, clients."""
    stats = None
    with rb.check("Redis stats") as check:
        info = rb.redis.info("stats")
        clients = rb.redis.info("clients")
        stats = {k: info.get(k, clients.get(k)) for k in _STATS_FIELDS}
        _display(pd.DataFrame({"field": list(stats), "value": [str(v) for v in stats.values()]}))
        evicted = int(stats.get("evicted_keys") or 0)
        rejected = int(stats.get("rejected_connections") or 0)
        check.verdict(
            False,
            f"{evicted} keys evicted, {int(stats.get('expired_keys') or 0)} expired, "
            f"{rejected} connections rejected",
            warn=evicted > 0 or rejected > 0,
        )
    return stats


def cache_memory(rb: Runbook) -> dict[str, Any] | None:
    """``INFO memory``: used against ``maxmemory``, peak, fragmentation."""
    memory = None
    with rb.check("Redis memory") as check:
        memory = rb.redis.memory()
        _display(pd.DataFrame({"field": list(memory), "value": [str(v) for v in memory.values()]}))
        ratio = memory.get("used_ratio")
        fragmentation = float(memory.get("mem_fragmentation_ratio") or 0)
        used = memory.get("used_memory_human") or memory.get("used_memory")
        if ratio is None:
            detail = f"{used} used, no maxmemory set"
        else:
            detail = f"{used} used, {ratio:.0%} of maxmemory {memory.get('maxmemory_human')}"
        detail += f"; fragmentation {fragmentation:.2f}"
        check.verdict(
            ratio is not None and ratio >= 0.95,
            detail,
            warn=(ratio is not None and ratio >= 0.8) or fragmentation > 1.5,
        )
    return memory


def keyspace(rb: Runbook) -> pd.DataFrame | None:
    """``INFO keyspace``: keys, keys with an expiry, average TTL per database."""
    frame = None
    with rb.check("Redis keyspace") as check:
        info = rb.redis.info("keyspace")
        rows = [
            {"db": name, "keys": int(v.get("keys", 0)), "expires": int(v.get("expires", 0)),
             "avg_ttl_ms": int(v.get("avg_ttl", 0))}
            for name, v in sorted(info.items()) if isinstance(v, dict)
        ]  # fmt: skip
        frame = pd.DataFrame(rows, columns=["db", "keys", "expires", "avg_ttl_ms"])
        _display(frame)
        total = int(frame["keys"].sum()) if not frame.empty else 0
        check.ok(f"{total} keys in {len(frame)} database(s)")
    return frame


def biggest_keys(rb: Runbook, sample: int = 0, pattern: str = "*") -> pd.DataFrame | None:
    """A ``redis-cli --bigkeys``-like look: ``MEMORY USAGE`` of a sample of keys (by SCAN,
    never KEYS), biggest first. Skipped when ``sample`` is 0."""
    if sample <= 0:
        print("Key sample skipped (pass -p bigkeys_sample N to look at N keys).")
        return None
    frame = None
    with rb.check(f"Biggest keys (sample of {sample})") as check:
        frame = rb.redis.key_sizes(pattern, sample=sample)
        _display(frame.head(20))
        if frame.empty:
            check.ok("no key in the sample")
        else:
            top = frame.iloc[0]
            check.ok(f"{len(frame)} keys sampled; biggest {top['key']} ({top['bytes']} bytes)")
    return frame


def flush_namespace(rb: Runbook, pattern: str) -> Action | None:
    """Delete the keys matching ``pattern`` (e.g. ``session:*``), done safely: SCAN MATCH in
    batches (never KEYS); the preview tells how many keys match, with a sample; more than the
    target's ``policy.max_keys_per_action`` are refused; UNLINK in batches only when applied.
    """
    if not str(pattern or "").strip():
        print("No flush_pattern given: nothing is flushed.")
        return None
    limit = rb.target.policy.max_keys_per_action
    action = rb.act(
        "flush-keys", f"redis keys {pattern}",
        lambda dry: rb.redis.delete_keys(pattern, dry_run=dry, max_keys=limit),
        pattern=pattern, max_keys=limit,
    )  # fmt: skip
    if action.outcome == "applied":
        with rb.check(f"Keys matching {pattern} after the flush") as check:
            left = len(rb.redis.scan_keys(pattern, limit=limit + 1))
            check.verdict(False, f"{left} key(s) left" + (" (written since the flush?)"
                          if left else ""), warn=left > 0)  # fmt: skip
    return action


def cache_findings(rb: Runbook, memory: dict[str, Any] | None, stats: dict[str, Any] | None
                   ) -> list[Finding]:  # fmt: skip
    """Memory pressure (near maxmemory, or evicting) means the cache needs more memory."""
    if memory is None and stats is None:
        return [rb.finding("unknown", ["Redis could not be examined"], "escalate")]
    ratio = (memory or {}).get("used_ratio")
    evicted = int((stats or {}).get("evicted_keys") or 0)
    hit = rb.facts.cache_hit_ratio
    evidence = [
        f"memory at {ratio:.0%} of maxmemory" if ratio is not None else "no maxmemory set",
        f"{evicted} keys evicted",
        "no lookups yet" if hit is None else f"hit ratio {hit:.1%}",
    ]
    if (ratio is not None and ratio >= 0.9) or evicted > 0:
        return [rb.finding("resource-exhaustion", evidence, "increase-memory-limit")]
    return [rb.finding("healthy", evidence, "none")]


# --- Maintenance Windows ----------------------------------------------------------------------


@dataclass(frozen=True)
class WindowKind:
    name: str
    schedule: str
    notice: timedelta
    max_duration: timedelta | None


WINDOW_KINDS = {
    "planned": WindowKind("Planned maintenance", "Saturdays 02:00-06:00 UTC", timedelta(days=7),
                          timedelta(hours=4)),
    "emergency": WindowKind("Emergency maintenance", "as needed", timedelta(hours=1), None),
    "database": WindowKind("Database maintenance", "first Sunday of the month",
                           timedelta(days=14), timedelta(hours=2)),
}  # fmt: skip

# (phase, item) in the template's order; how each item is checked off is in MaintenanceChecklist
CHECKLIST = [
    ("pre", "Announce maintenance in #engineering Slack channel"),
    ("pre", 'Update status page to "Scheduled Maintenance"'),
    ("pre", "Notify stakeholders via email"),
    ("pre", "Verify rollback plan"),
    ("pre", "Confirm on-call coverage"),
    ("during", "Enable maintenance mode"),
    ("during", "Perform maintenance tasks"),
    ("during", "Verify service health"),
    ("during", "Run smoke tests"),
    ("post", "Disable maintenance mode"),
    ("post", 'Update status page to "Operational"'),
    ("post", "Notify stakeholders of completion"),
    ("post", "Document any issues encountered"),
]

_CHECK_TO_ITEM = {"ok": "done", "warn": "warn", "fail": "failed", "unavailable": "unavailable",
                  "error": "error"}  # fmt: skip
_WORST = ["error", "failed", "unavailable", "refused", "declined", "warn", "previewed",
          "rendered", "manual", "done"]  # fmt: skip


def _worst(statuses: Iterable[str]) -> str:
    found = list(statuses)
    return next((s for s in _WORST if s in found), "done")


class MaintenanceChecklist:
    """The template's maintenance checklist, item by item, for one run.

    Items the runbook does are checked off by its checks and actions (``done``, ``warn``,
    ``failed``, ``previewed``, ...); messages are ``rendered`` for a person to post; items
    only a person can do stay ``manual``. ``close()`` shows the list and records one check.
    """

    def __init__(self, rb: Runbook) -> None:
        self.rb = rb
        self.items: dict[str, tuple[str, str]] = {
            item: ("manual", "for a person to do") for _, item in CHECKLIST
        }
        self.kind = WINDOW_KINDS["planned"]
        self.start: pd.Timestamp = rb.now
        self.end: pd.Timestamp = rb.now
        self.reason = ""

    def _mark(self, item: str, status: str, detail: str) -> None:
        self.items[item] = (status, detail)

    def _checks_since(self, count: int) -> list[Check]:
        return self.rb.checks[count:]

    # pre-maintenance ------------------------------------------------------------------------

    def announce(
        self, *, kind: str = "planned", start: str = "", duration_minutes: int = 60,
        reason: str = "planned maintenance",
    ) -> str:  # fmt: skip
        """Check the window against the maintenance windows table (notice, longest
        duration) and render the announcement for Slack, the status page and email."""
        rb = self.rb
        text = ""
        with rb.check("Maintenance window and notice") as check:
            if kind not in WINDOW_KINDS:
                check.fail(f"unknown kind {kind!r}; one of: {', '.join(WINDOW_KINDS)}")
                return text
            self.kind, self.reason = WINDOW_KINDS[kind], reason
            try:
                self.start = _utc(start) if str(start or "").strip() else rb.now
            except ValueError:
                check.fail(f"start {start!r} is not a time (e.g. 2025-01-18T02:00, UTC)")
                return text
            self.end = self.start + pd.Timedelta(minutes=int(duration_minutes))
            notice = (self.start - rb.now).to_pytimedelta()
            longest = self.kind.max_duration
            too_long = longest is not None and self.end - self.start > longest
            late = notice < self.kind.notice
            problems = []
            if too_long and longest is not None:
                problems.append(f"{duration_minutes} min is over the {self.kind.name.lower()} "
                                f"maximum of {_span(longest)}")  # fmt: skip
            if late:
                problems.append(f"{_span(max(notice, timedelta(0)))} notice, "
                                f"{_span(self.kind.notice)} required")  # fmt: skip
            text = _announcement(rb.service.name, self.kind, self.start, self.end, reason)
            _markdown(text)
            check.verdict(
                too_long,
                f"{self.kind.name} {self.start:%Y-%m-%d %H:%M}-{self.end:%H:%M} UTC "
                f"({self.kind.schedule})" + (f"; {'; '.join(problems)}" if problems else ""),
                warn=late,
            )
        for item in CHECKLIST[:3]:
            self._mark(item[1], "rendered", "the text above, to post")
        return text

    def rollback_plan(self) -> pd.DataFrame | None:
        """A rollback needs an earlier revision to go back to (``kubectl rollout undo``)."""
        history = None
        with self.rb.check("Rollback plan") as check:
            history = self.rb.k8s.rollout_history(self.rb.service.deployment)
            _display(history.tail(5))
            ordered = history.sort_values("revision")
            recent = ordered[ordered["created"] >= self.rb.start]
            if not recent.empty:  # a rollout inside the window: the decision tree weighs it
                newest = recent.iloc[-1]
                self.rb.facts.rollout_revision = int(newest["revision"])
                self.rb.facts.rollout_at = newest["created"]
            if len(ordered) < 2:
                check.warn("no earlier revision to roll back to")
            else:
                current, previous = ordered.iloc[-1], ordered.iloc[-2]
                check.ok(
                    f"revision {current['revision']} ({current['image']}) can roll back to "
                    f"{previous['revision']} ({previous['image']}): kubectl rollout undo"
                )
        last = self.rb.checks[-1]
        self._mark("Verify rollback plan", _CHECK_TO_ITEM[last.status], last.detail)
        return history

    # during ---------------------------------------------------------------------------------

    def _mode(self, item: str, value: str) -> Action:
        action = self.rb.set_env(MAINTENANCE_MODE=value)
        self._mark(item, "done" if action.outcome == "applied" else action.outcome, action.detail)
        return action

    def enable(self) -> Action:
        """``MAINTENANCE_MODE=true`` on the deployment (``kubectl set env``): previewed unless
        the run is applied."""
        return self._mode("Enable maintenance mode", "true")

    def verify_health(self) -> None:
        """Error rate and p99 latency against their thresholds, and the pods."""
        before = len(self.rb.checks)
        steps.error_rate(self.rb)
        steps.latency(self.rb)
        steps.pods(self.rb)
        checks = self._checks_since(before)
        self._mark(
            "Verify service health",
            _worst(_CHECK_TO_ITEM[c.status] for c in checks),
            "; ".join(f"{c.name}: {c.status}" for c in checks),
        )

    def smoke_tests(self, timeout: float = 3.0) -> pd.DataFrame:
        """GET each health URL the target lists for the service (its dependencies); a status
        under 500 passes."""
        return smoke_checks(self.rb, timeout=timeout, checklist=self)

    def disable(self) -> Action:
        """``MAINTENANCE_MODE=false``: previewed unless the run is applied."""
        return self._mode("Disable maintenance mode", "false")

    # post -----------------------------------------------------------------------------------

    def close(self) -> pd.DataFrame:
        """The checklist with each item's status; the completion notice; one check."""
        rb = self.rb
        issues = [c for c in rb.checks if c.status != "ok"]
        self._mark(
            "Document any issues encountered",
            "done",
            f"{len(issues)} issue(s) recorded in this run"
            + (": " + "; ".join(f"{c.name} ({c.status})" for c in issues) if issues else ""),
        )
        for item in ('Update status page to "Operational"', "Notify stakeholders of completion"):
            self._mark(item, "rendered", "the completion notice below, to post")
        table = pd.DataFrame(
            [{"phase": phase, "item": item, "status": self.items[item][0],
              "detail": self.items[item][1]} for phase, item in CHECKLIST]
        )  # fmt: skip
        _display(table)
        _markdown(_completion(rb.service.name, self.kind, self.end, issues))
        with rb.check("Maintenance checklist") as check:
            counts = table["status"].value_counts()
            worst = _worst(table["status"])
            summary = ", ".join(f"{n} {s}" for s, n in counts.items())
            check.verdict(worst in ("error", "failed"), summary,
                          warn=worst not in ("done", "rendered", "manual"))  # fmt: skip
        return table


def smoke_checks(
    rb: Runbook, timeout: float = 3.0, checklist: MaintenanceChecklist | None = None
) -> pd.DataFrame:
    """GET each dependency/health URL of the service from where the runbook runs; a status
    under 500 passes. Services that do not answer are recorded for the findings."""
    rows = []
    before = len(rb.checks)
    for name in rb.dependencies():
        with rb.check(f"Smoke test GET {name}") as check:
            probe = rb.probe_dependency(name, timeout=timeout)
            rows.append(probe)
            ok = probe.get("status") == "ok"
            if not ok and name not in rb.facts.dependencies_down:
                rb.facts.dependencies_down.append(name)
            check.verdict(not ok, f"{probe.get('url', '')}: {probe.get('detail', '')}")
    frame = pd.DataFrame(rows, columns=["name", "url", "status", "detail", "latency_ms"])
    _display(frame)
    if checklist is not None:
        checks = rb.checks[before:]
        checklist._mark(
            "Run smoke tests",
            _worst(_CHECK_TO_ITEM[c.status] for c in checks) if checks else "manual",
            f"{sum(c.status == 'ok' for c in checks)} of {len(checks)} passed"
            if checks else "no health URL configured for the service",
        )  # fmt: skip
    return frame


def _utc(value: str) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _span(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes >= 2 * 24 * 60 and minutes % (24 * 60) == 0:
        return f"{minutes // (24 * 60)} days"
    if minutes >= 60 and minutes % 60 == 0:
        return f"{minutes // 60} h"
    if minutes >= 60:
        return f"{minutes / 60:.1f} h"
    return f"{minutes} min"


def _announcement(
    service: str, kind: WindowKind, start: pd.Timestamp, end: pd.Timestamp, reason: str
) -> str:
    when = f"{start:%A %Y-%m-%d %H:%M} to {end:%H:%M} UTC"
    return (
        f"**Slack #engineering**\n\n> :construction: {kind.name} of **{service}**: {when}. "
        f"Reason: {reason}. The service may be unavailable or read-only meanwhile.\n\n"
        f'**Status page** ("Scheduled Maintenance")\n\n> {kind.name}: {service}, {when}. '
        f"{reason.capitalize()}.\n\n"
        f"**Email to stakeholders**\n\n> Subject: [{kind.name}] {service}, {start:%Y-%m-%d} "
        f"{start:%H:%M} UTC\n>\n> {service} will be in maintenance from {when} ({reason}). "
        f"We will confirm when it is complete."
    )


def _completion(service: str, kind: WindowKind, end: pd.Timestamp, issues: list[Check]) -> str:
    noted = (
        "No issue was recorded."
        if not issues
        else f"{len(issues)} check(s) need a look: "
        + "; ".join(f"{c.name} ({c.status})" for c in issues)
    )
    return (
        f'**Status page** ("Operational")\n\n> {service} is operational again.\n\n'
        f"**Email to stakeholders**\n\n> Subject: [Completed] {kind.name} of {service}\n>\n"
        f"> The maintenance of {service} is complete. {noted}"
    )
