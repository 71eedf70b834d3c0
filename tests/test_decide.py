"""The mitigation decision tree, table-driven from the playbook."""

from __future__ import annotations

import pandas as pd
import pytest

from opsnb.runtime.decide import Facts, decide
from opsnb.runtime.session import first_breach, held, latest, ratio_to_baseline

T = pd.Timestamp("2025-03-04T09:42:00Z")


@pytest.mark.parametrize(
    "facts, cause, recommendation",
    [
        (Facts(error_rate=0.0002, latency_p99=0.12), "healthy", "none"),
        (
            Facts(error_rate=0.1, latency_p99=0.3, rollout_revision=12, rollout_at=T,
                  errors_began_at=T + pd.Timedelta(minutes=1)),
            "recent-deployment", "rollback",
        ),
        (
            # A rollout long before the errors is not blamed.
            Facts(error_rate=0.1, latency_p99=0.3, rollout_revision=12, rollout_at=T,
                  errors_began_at=T + pd.Timedelta(hours=3)),
            "unknown", "escalate",
        ),
        (Facts(error_rate=0.15, latency_p99=2.5, pool_waiting=156, traffic_ratio=3.0),
         "db-connection-pool-exhausted", "scale-up"),
        (Facts(error_rate=0.05, dependencies_down=["payments-provider"]),
         "dependency-unavailable", "enable-circuit-breaker"),
        (Facts(error_rate=0.02, traffic_ratio=3.5), "traffic-spike", "scale-up"),
        (Facts(error_rate=0.0, oom_killed=["api-1"]), "oom-killed", "increase-memory-limit"),
        (Facts(), "unknown", "escalate"),
        # Long transactions hold the pool while traffic is normal: free the connections.
        (Facts(error_rate=0.05, pool_waiting=8, pool_waiting_now=8, idle_in_transaction=5,
               traffic_ratio=1.0), "db-connection-pool-exhausted", "terminate-long-queries"),
        (Facts(error_rate=0.0, latency_p99=0.9, long_queries=3),
         "slow-database-queries", "optimize-query"),
        # Pods of a new revision crash before any SLI moves.
        (Facts(error_rate=0.0, latency_p99=0.1, crash_looping=["a-1"], rollout_revision=5,
               rollout_at=T), "recent-deployment", "rollback"),
        (Facts(error_rate=0.3, oom_killed=["a-1"], crash_looping=["a-1"], rollout_revision=5,
               rollout_at=T, errors_began_at=T + pd.Timedelta(minutes=2)),
         "oom-killed", "increase-memory-limit"),
    ],
)  # fmt: skip
def test_primary_finding(facts, cause, recommendation):
    primary = decide(facts)[0]
    assert (primary.cause, primary.recommendation) == (cause, recommendation)
    assert primary.evidence


def test_traffic_spike_is_a_contributing_finding_of_pool_exhaustion():
    causes = [f.cause for f in decide(Facts(error_rate=0.15, pool_waiting=10, traffic_ratio=3))]
    assert causes == ["db-connection-pool-exhausted", "traffic-spike"]


def test_oom_on_a_new_revision_also_names_the_rollout():
    facts = Facts(error_rate=0.3, oom_killed=["a-1"], rollout_revision=5, rollout_at=T,
                  errors_began_at=T + pd.Timedelta(minutes=2))  # fmt: skip
    assert [f.cause for f in decide(facts)] == ["oom-killed", "recent-deployment"]


def frame(values, start="2025-01-15T14:00:00Z"):
    times = pd.date_range(start, periods=len(values), freq="1min")
    return pd.DataFrame({"timestamp": times, "value": values})


def test_series_helpers():
    f = frame([0.0, 0.02, 0.0, 0.03, 0.05, float("nan")])
    assert latest(f) == 0.05
    assert first_breach(f, 0.01) == pd.Timestamp("2025-01-15T14:03:00Z")
    assert first_breach(frame([0.0, 0.0]), 0.01) is None
    assert latest(frame([])) is None
    assert ratio_to_baseline(frame([100] * 10 + [300] * 10)) == pytest.approx(3.0)


def test_waiting_now_is_a_level_held_not_one_scrapes_burst():
    """A busy service paused for a moment queues a burst that one scrape can catch: the
    newest sample alone would call the pool exhausted, the level held through the newest
    samples (those of the last 20 s, at least two) does not; a pool that stays exhausted
    holds its queue through all of them."""
    burst = frame([0.0] * 10 + [3.0])
    assert latest(burst) == 3.0
    assert held(burst) == 0.0  # samples a minute apart: the newest two
    assert held(frame([0.0] * 10 + [40.0, 38.0, 40.0, float("nan")])) == 38.0
    every_5s = pd.DataFrame({"timestamp": pd.date_range("2025-01-15T14:00:00Z", periods=8,
                             freq="5s"), "value": [0, 0, 0, 9, 8, 7, 9, 9.0]})  # fmt: skip
    assert held(every_5s) == 7.0  # 14:00:15 to 14:00:35
    assert held(every_5s, seconds=10) == 7.0
    assert held(every_5s.iloc[:-2]) == 0.0
    assert held(frame([2.0])) == 2.0
    assert held(frame([])) is None
    spike = Facts(error_rate=0.0, latency_p99=0.1, pool_waiting=3.0, traffic_ratio=3.0)
    spike.pool_waiting_now = held(burst)
    assert [f.cause for f in decide(spike)] == ["healthy"]
    spike.pool_waiting_now = latest(burst)
    assert [f.cause for f in decide(spike)][0] == "db-connection-pool-exhausted"


def test_a_finished_latency_episode_does_not_hide_the_rollout_behind_todays_errors():
    """p99 crossed the SLO an hour ago and recovered; errors began 3 min after a rollout:
    the onset is the errors' start, and the rollout is the cause."""
    rollout = pd.Timestamp("2025-01-15T14:00:00Z")
    facts = Facts(
        error_rate=0.05,
        latency_p99=0.2,
        errors_began_at=rollout + pd.Timedelta(minutes=3),
        slow_since=rollout - pd.Timedelta(minutes=60),
        rollout_revision=7,
        rollout_at=rollout,
    )
    assert facts.onset == rollout + pd.Timedelta(minutes=3)
    assert [(f.cause, f.recommendation) for f in decide(facts)][0] == (
        "recent-deployment",
        "rollback",
    )
