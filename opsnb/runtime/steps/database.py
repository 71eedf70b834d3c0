"""PostgreSQL and Redis: connections, long-running, slow and repeated queries, plans, the cache."""

from __future__ import annotations

import re
import time

import pandas as pd

from ..session import Runbook
from ._common import _display

IDLE_IN_TRANSACTION_SECONDS = 5.0


def postgres_connections(rb: Runbook) -> None:
    """Connections by state against max_connections."""
    with rb.check("PostgreSQL connections") as check:
        rb.postgres.ping()
        states = rb.postgres.connections_by_state()
        _display(states)
        limit = rb.postgres.max_connections()
        used = int(states["count"].sum())
        rb.facts.db_connections_ratio = used / limit
        # Only sessions that stay idle in a transaction hold the pool; a live request is so
        # for milliseconds between statements, and counting those would flap the verdict.
        idle_tx = rb.postgres.idle_in_transaction(min_seconds=IDLE_IN_TRANSACTION_SECONDS)
        rb.facts.idle_in_transaction = idle_tx
        check.verdict(
            used >= 0.95 * limit,
            f"{used} of max_connections {limit} in use; {idle_tx} idle in transaction for "
            f"{IDLE_IN_TRANSACTION_SECONDS:g} s or more",
            warn=used >= 0.8 * limit or idle_tx > 0,
        )


def long_running_queries(rb: Runbook, min_seconds: float = 300) -> pd.DataFrame | None:
    """Queries and transactions running longer than ``min_seconds``."""
    slow = None
    with rb.check(f"Long-running queries (over {min_seconds:g} s)") as check:
        slow = rb.postgres.long_running_queries(min_seconds=min_seconds)
        _display(slow.head(10))
        rb.facts.long_queries = len(slow)
        check.verdict(False, f"{len(slow)} running longer than {min_seconds:g} s",
                      warn=not slow.empty)  # fmt: skip
    return slow


def _normalise_sql(query: str) -> str:

    text = re.sub(r"'(?:[^']|'')*'", "?", query)
    text = re.sub(r"\b\d+(\.\d+)?\b", "?", text)
    return re.sub(r"\s+", " ", text).strip()[:200]


def active_queries(
    rb: Runbook, *, min_seconds: float = 0.25, samples: int = 5, every: float = 0.4
) -> pd.DataFrame | None:
    """Queries active in PostgreSQL longer than ``min_seconds`` (pg_stat_activity, sampled a
    few times on live targets: a single look misses short slow queries)."""

    slow = None
    with rb.check(f"Active queries slower than {min_seconds:g} s") as check:
        seen: list[pd.DataFrame] = []
        rounds = 1 if rb.snapshot is not None else samples
        for index in range(rounds):
            activity = rb.postgres.activity()
            if not activity.empty:
                # A snapshot's activity was captured at its "now"; live activity is current.
                now = rb.now if rb.snapshot is not None else pd.Timestamp.now(tz="UTC")
                active = activity[(activity["state"] == "active") & activity["query"].notna()]
                if "backend_type" in active:
                    active = active[active["backend_type"] == "client backend"]
                running = (now - active["query_start"]).dt.total_seconds()
                seen.append(active.assign(running_seconds=running)[running >= min_seconds])
            if index < rounds - 1:
                time.sleep(every)
        found = pd.concat(seen, ignore_index=True) if seen else pd.DataFrame()
        if found.empty:
            rb.facts.long_queries = rb.facts.long_queries or 0
            check.ok(f"no query active longer than {min_seconds:g} s")
            return pd.DataFrame(columns=["query", "pattern", "seen", "max_seconds"])
        found["pattern"] = found["query"].map(_normalise_sql)
        slow = (
            found.groupby("pattern")
            .agg(
                query=("query", "first"),
                seen=("pid", "count"),
                max_seconds=("running_seconds", "max"),
            )  # fmt: skip
            .sort_values("max_seconds", ascending=False)
            .reset_index()
        )
        _display(slow.head(10))
        rb.facts.long_queries = max(rb.facts.long_queries or 0, len(slow))
        rb.facts.slow_query = str(slow["query"].iloc[0])
        check.warn(f"{len(slow)} slow query patterns; slowest {slow['max_seconds'].iloc[0]:.2f} s")
    return slow


def repeated_queries(rb: Runbook, *, threshold: int = 5) -> None:
    """The same statement from many sessions at once: an N+1 pattern or a thundering herd."""
    with rb.check("Repeated queries (N+1 pattern)") as check:
        activity = rb.postgres.activity()
        queries = activity[activity["query"].notna() & (activity["query"] != "")]
        if "backend_type" in queries:
            queries = queries[queries["backend_type"] == "client backend"]
        counts = queries["query"].map(_normalise_sql).value_counts()
        top = counts.head(10).rename_axis("pattern").reset_index(name="sessions")
        _display(top)
        worst = int(counts.iloc[0]) if len(counts) else 0
        check.verdict(False, f"most repeated statement in {worst} sessions",
                      warn=worst >= threshold)  # fmt: skip


def explain_slow_query(rb: Runbook, *, analyze: bool = False) -> None:
    """EXPLAIN the slowest query seen (read-only: a READ ONLY transaction with a timeout).
    ANALYZE runs the query; it is only used for SELECT statements and when asked for."""
    with rb.check("Plan of the slowest query") as check:
        query = getattr(rb.facts, "slow_query", None)
        if not query:
            check.ok("no slow query to explain")
            return
        statement = query.strip().rstrip(";")
        use_analyze = analyze and statement.lower().startswith("select")
        prefix = "EXPLAIN (ANALYZE, BUFFERS) " if use_analyze else "EXPLAIN "
        plan = rb.postgres.read_only_query(prefix + statement, limit=200)
        lines = [str(v) for v in plan.iloc[:, 0]] if not plan.empty else []
        print("\n".join(lines))
        seq_scans = [ln for ln in lines if "Seq Scan" in ln]
        check.verdict(False, f"{len(lines)} plan lines; {len(seq_scans)} sequential scans",
                      warn=bool(seq_scans))  # fmt: skip


def redis_cache(rb: Runbook) -> None:
    """Redis answers, and how often the cache hits."""
    with rb.check("Redis cache") as check:
        rb.redis.ping()
        ratio = rb.redis.hit_ratio()
        rb.facts.cache_hit_ratio = ratio
        check.verdict(
            False, "no lookups yet" if ratio is None else f"hit ratio {ratio:.1%}",
            warn=ratio is not None and ratio < 0.8,
        )  # fmt: skip
