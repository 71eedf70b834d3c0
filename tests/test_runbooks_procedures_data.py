"""The data and logs procedures as runbooks: ``logs``, ``database``, ``cache``, ``maintenance``.

On the demo (recorded snapshots) and under the plain papermill CLI every runbook runs to the
end; on the lab the guarded steps meet real PostgreSQL sessions, real Redis keys and the
Kubernetes test API server: previews change nothing, applied steps change exactly what they
previewed, and blast-radius limits refuse.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pandas as pd
import psycopg
import pytest
import yaml

from opsnb import catalog
from opsnb.backends import logs as logtools
from opsnb.config import DEMO_SNAPSHOTS
from opsnb.records import ACTION_MIME, CHECK_MIME, scan

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
RUNBOOKS = ("logs", "database", "cache", "maintenance")
MUTATING = {"database", "cache", "maintenance"}


def run(runbook: str, *args: str, out: Path) -> tuple[Path, dict[str, Any], str]:
    """``opsnb run RUNBOOK ARGS --out OUT``: the run folder, result.json and stderr."""
    done = subprocess.run(
        [str(BIN / "opsnb"), "run", runbook, *args, "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    run_dir = Path(done.stdout.strip().splitlines()[-1])
    result = json.loads((run_dir / "result.json").read_text())
    assert done.returncode == 0 and result["status"] == "ok", (result["error"], result["errors"])
    assert result["completed"] is True
    return run_dir, result, done.stderr


def checks(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in result["checks"]}


def exported(folder: Path) -> Path:
    """The one export file in ``folder``, named for today's UTC date."""
    (path,) = folder.glob("service-logs-*.log")
    day = datetime.strptime(path.name, "service-logs-%Y%m%d.log").replace(tzinfo=UTC)
    assert abs((datetime.now(UTC) - day).total_seconds()) < 2 * 86400
    return path


def wait_until(what: str, probe: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    value = None
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what} (last: {value!r})")


# --- conventions ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def listing() -> str:
    """``opsnb list``: each runbook with its one-line description."""
    done = subprocess.run([str(BIN / "opsnb"), "list"], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("name", RUNBOOKS)
def test_runbook_follows_the_conventions(name: str, listing: str) -> None:
    path = ROOT / "runbooks" / f"{name}.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    description = nb.metadata["opsnb"]["description"]
    assert description and "\n" not in description
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].metadata.get("tags") == ["parameters"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    runbook = catalog.load(path)
    params = runbook.parameters
    assert list(params)[:2] == ["target", "service"] and params["target"].default == "demo"
    assert all(p.help for p in params.values()), params
    assert len(code[0].source.splitlines()) == len(params)  # one per line
    assert ("apply" in params) == (name in MUTATING)
    assert "apply" not in params or params["apply"].default is False
    # short cells: each calls a step; the logic lives in opsnb.runtime.datastores
    assert all(len(c.source.splitlines()) <= 6 for c in code[1:]), name
    # a markdown cell says why, then one or two code cells call steps
    run_of_code = 0
    for cell in nb.cells:
        run_of_code = run_of_code + 1 if cell.cell_type == "code" else 0
        assert run_of_code <= 2, name
    assert any(ln.split()[:1] == [name] and description[:40] in ln for ln in listing.splitlines())


# --- the demo: recorded snapshots -------------------------------------------------------------


def demo_file(service: str, relative: str) -> Any:
    return json.loads((DEMO_SNAPSHOTS / service / relative).read_text())


def test_logs_on_demo_counts_and_exports_the_matching_lines(tmp_path: Path) -> None:
    run_dir, result, _ = run("logs", "-p", "service", "catalog", "-p", "export", "true",
                             "-p", "pattern", "ERROR|WARN", out=tmp_path)  # fmt: skip
    meta = demo_file("catalog", "snapshot.json")
    now = pd.Timestamp(meta["now"])
    expected: list[str] = []
    total = 0
    for log in sorted((DEMO_SNAPSHOTS / "catalog" / "logs").glob("*.log")):
        if log.name.endswith(".previous.log"):
            continue
        frame = logtools.parse(log.read_text().splitlines())
        recent = frame[(frame["time"] >= now - pd.Timedelta(minutes=60)) & (frame["time"] <= now)]
        total += len(recent)
        expected += [line for line in recent["line"] if re.search("ERROR|WARN", line)]
    assert expected, "the catalog incident has error lines"
    found = checks(result)
    assert found["Pod logs over the last 60 min"]["detail"].startswith(f"{total} lines from 4 pod")
    assert found["Lines matching /ERROR|WARN/"]["status"] == "warn"
    assert found["Lines matching /ERROR|WARN/"]["detail"].startswith(
        f"{len(expected)} of {total} lines match"
    )
    assert found["Error log breakdown"]["status"] == "warn"
    export = exported(run_dir)
    assert export.read_text().splitlines() == expected
    assert found["Export of the matching lines"]["detail"] == (
        f"{len(expected)} lines written to {export}"
    )
    assert result["actions"] == []


def test_logs_previous_containers_on_demo(tmp_path: Path) -> None:
    _, result, _ = run("logs", "-p", "service", "catalog", "-p", "previous", "true",
                       "-p", "pattern", "CRITICAL|ERROR", out=tmp_path)  # fmt: skip
    previous = (DEMO_SNAPSHOTS / "catalog" / "logs").glob("*.previous.log")
    lines = [ln for p in previous for ln in p.read_text().splitlines()]
    found = checks(result)
    assert found["Previous container logs over the last 60 min"]["status"] == "ok"
    matching = found["Lines matching /CRITICAL|ERROR/"]["detail"]
    assert int(matching.split()[0]) == sum(bool(re.search("CRITICAL|ERROR", ln)) for ln in lines
                                           if ln[:4].isdigit())  # fmt: skip
    assert "Export of the matching lines" not in found


def test_database_on_demo_finds_the_long_sessions_and_previews(tmp_path: Path) -> None:
    _, result, _ = run("database", "-p", "terminate_long_queries", "true", out=tmp_path)
    data = demo_file("payments", "postgres/activity.json")
    captured = pd.Timestamp(data["captured_at"])
    expected = []
    for row in data["activity"]:
        if row["backend_type"] != "client backend" or row["state"] in (None, "idle"):
            continue
        began = min(pd.Timestamp(t) for t in (row["xact_start"], row["query_start"]) if t)
        if row["application_name"] == "payments" and (captured - began).total_seconds() >= 600:
            expected.append(row["pid"])
    assert 0 < len(expected) <= 5
    found = checks(result)
    assert found["Database sizes"]["status"] == "unavailable"
    assert "postgres/databases.json" in found["Database sizes"]["detail"]
    assert found["Replication"]["status"] == "unavailable"
    assert found["PostgreSQL connections"]["status"] == "fail"
    assert "Read-only query" not in found  # no query given
    assert found["Sessions over 600 s (application_name=payments)"]["status"] == "warn"
    (finding,) = result["findings"]
    assert (finding["cause"], finding["recommendation"]) == (
        "slow-database-queries", "terminate-long-queries",
    )  # fmt: skip
    (action,) = result["actions"]
    assert (action["action"], action["outcome"], action["dry_run"]) == (
        "terminate-backends", "previewed", True,
    )  # fmt: skip
    assert sorted(action["parameters"]["pids"]) == sorted(expected)
    assert "pg_terminate_backend(pid)" in action["detail"]
    assert f"would terminate {len(expected)} backend(s)" in action["detail"]
    assert "snapshot is read-only" in action["detail"]


def test_database_query_on_demo_is_unavailable_not_a_failure(tmp_path: Path) -> None:
    _, result, _ = run("database", "-p", "service", "catalog", "-p", "query",
                       "SELECT count(*) FROM products", out=tmp_path)  # fmt: skip
    query = checks(result)["Read-only query"]
    assert query["status"] == "unavailable" and "cannot run queries" in query["detail"]
    _, result, _ = run("database", "-p", "query", "SELECT 1; DROP TABLE users", out=tmp_path)
    query = checks(result)["Read-only query"]
    assert query["status"] == "fail" and "single SQL statement" in query["detail"]


def test_cache_on_demo(tmp_path: Path) -> None:
    _, result, _ = run("cache", "-p", "flush_pattern", "session:*", out=tmp_path)
    info = demo_file("payments", "redis/info.json")["info"]
    ratio = info["keyspace_hits"] / (info["keyspace_hits"] + info["keyspace_misses"])
    found = checks(result)
    assert found["Redis cache"]["detail"] == f"hit ratio {ratio:.1%}"
    assert found["Redis memory"]["detail"].startswith(
        f"{info['used_memory_human']} used, {info['used_memory'] / info['maxmemory']:.0%}"
    )
    assert found["Redis keyspace"]["detail"] == f"{info['db0']['keys']} keys in 1 database(s)"
    assert result["findings"][0]["cause"] == "healthy"
    (action,) = result["actions"]
    assert action["action"] == "flush-keys" and action["outcome"] == "unavailable"
    assert "redis/keys.json" in action["detail"] and action["dry_run"] is True


def test_maintenance_on_demo_previews_and_closes_the_checklist(tmp_path: Path) -> None:
    run_dir, result, _ = run("maintenance", "-p", "service", "catalog", "-p", "window_minutes",
                             "60", "-p", "kind", "emergency", out=tmp_path)  # fmt: skip
    found = checks(result)
    assert found["Maintenance window and notice"]["status"] == "warn"  # starts now: no notice
    assert "Emergency maintenance" in found["Maintenance window and notice"]["detail"]
    assert found["Rollback plan"]["status"] == "ok"
    assert [(a["action"], a["outcome"], a["parameters"]) for a in result["actions"]] == [
        ("set-env", "previewed", {"MAINTENANCE_MODE": "true"}),
        ("set-env", "previewed", {"MAINTENANCE_MODE": "false"}),
    ]
    assert result["findings"][0]["cause"] == "recent-deployment"
    assert found["Maintenance checklist"]["status"] == "fail"  # the error rate is still high
    nb = nbformat.read(str(run_dir / "maintenance.ipynb"), as_version=4)
    html = "".join(
        o.get("data", {}).get("text/html", "") for c in nb.cells if c.cell_type == "code"
        for o in c.outputs
    )  # fmt: skip
    for item in ("Enable maintenance mode", "Run smoke tests", "Confirm on-call coverage"):
        assert item in html
    text = (run_dir / "maintenance.html").read_text()
    assert "Emergency maintenance of **catalog**" not in text  # rendered, not raw markdown
    assert "Emergency maintenance of <strong>catalog</strong>" in text


def test_maintenance_refuses_an_overlong_window(tmp_path: Path) -> None:
    _, result, _ = run("maintenance", "-p", "kind", "database", "-p", "duration_minutes", "180",
                       "-p", "start", "2025-02-02T02:00", out=tmp_path)  # fmt: skip
    window = checks(result)["Maintenance window and notice"]
    assert window["status"] == "fail"
    assert "180 min is over the database maintenance maximum of 2 h" in window["detail"]
    assert "notice" not in window["detail"]  # 18 days ahead of the snapshot's now
    _, result, _ = run("maintenance", "-p", "start", "next saturday", out=tmp_path)
    window = checks(result)["Maintenance window and notice"]
    assert window["status"] == "fail" and "is not a time" in window["detail"]
    assert checks(result)["Maintenance checklist"]["status"] == "fail"


@pytest.mark.parametrize("name", RUNBOOKS)
def test_plain_papermill_runs_the_runbook(name: str, tmp_path: Path) -> None:
    out = tmp_path / "out.ipynb"
    extra = ["-p", "export", "True"] if name == "logs" else []
    done = subprocess.run(
        [str(BIN / "papermill"), str(ROOT / "runbooks" / f"{name}.ipynb"), str(out),
         "-p", "target", "demo", *extra, "--no-progress-bar", "-k", "python3"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    nb = nbformat.read(str(out), as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    records = list(scan(nb))
    statuses = [p["status"] for _, mime, p in records if mime == CHECK_MIME]
    assert statuses and "error" not in statuses
    actions = [p for _, mime, p in records if mime == ACTION_MIME]
    assert all(a["dry_run"] for a in actions)
    if name == "logs":
        assert exported(tmp_path).read_text().count("\n") > 0


# --- the lab: real PostgreSQL, Redis and the Kubernetes test API server -----------------------


def pg_connect(lab: Any, **kwargs: Any) -> psycopg.Connection[Any]:
    return psycopg.connect(**lab.postgres.conninfo(), **kwargs)


def items_count(lab: Any) -> int:
    with pg_connect(lab) as conn:
        row = conn.execute("SELECT count(*) FROM items").fetchone()
    assert row is not None
    return int(row[0])


def sessions(lab: Any, application_name: str) -> dict[int, dict[str, Any]]:
    with pg_connect(lab, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid, state, extract(epoch FROM now() - coalesce(xact_start, query_start))"
            " FROM pg_stat_activity WHERE application_name = %s AND pid <> pg_backend_pid()",
            (application_name,),
        ).fetchall()
    return {int(r[0]): {"state": r[1], "age": float(r[2] or 0)} for r in rows}


def held(lab: Any, min_age: float) -> set[int]:
    """my-service's sessions held (not idle) for at least ``min_age`` seconds."""
    return {
        pid for pid, s in sessions(lab, "my-service").items()
        if s["state"] not in (None, "idle") and s["age"] >= min_age
    }  # fmt: skip


@pytest.fixture
def strict_target(lab: Any) -> Any:
    """Target ``lab-strict``: the lab, with a policy allowing 2 backends and 10 keys per step."""
    home = Path(os.environ["OPSNB_HOME"]) / "targets.d"
    spec = yaml.safe_load((home / "lab.yaml").read_text())["targets"]["lab"]
    spec["policy"] = {"allow_apply": True, "max_backends_per_action": 2,
                      "max_keys_per_action": 10}  # fmt: skip
    path = home / "lab-strict.yaml"
    path.write_text(yaml.safe_dump({"targets": {"lab-strict": spec}}))
    yield "lab-strict"
    path.unlink()


def test_read_only_query_on_the_lab(lab: Any, tmp_path: Path) -> None:
    count = items_count(lab)
    _, result, _ = run("database", "--target", "lab", "-p", "query", "SELECT count(*) FROM items",
                       out=tmp_path)  # fmt: skip
    found = checks(result)
    assert found["Read-only query"]["status"] == "ok"
    assert found["Read-only query"]["detail"] == f"1 row(s): count = {count}"
    assert found["Database sizes"]["status"] == "ok" and "app" in found["Database sizes"]["detail"]
    assert found["Replication"]["detail"] == "no standby attached (pg_stat_replication is empty)"
    assert found["PostgreSQL connections"]["status"] in ("ok", "warn")
    assert result["actions"] == []


def test_a_writing_query_is_refused_and_no_row_is_lost(lab: Any, tmp_path: Path) -> None:
    before = items_count(lab)
    assert before > 0
    _, result, _ = run("database", "--target", "lab", "-p", "query", "DELETE FROM items",
                       out=tmp_path)  # fmt: skip
    query = checks(result)["Read-only query"]
    assert query["status"] == "fail"
    assert "refused by the read-only transaction" in query["detail"]
    assert "cannot execute DELETE in a read-only transaction" in query["detail"]
    assert items_count(lab) == before


def test_terminate_long_queries_on_pool_exhaustion(
    lab: Any, strict_target: str, tmp_path: Path
) -> None:
    bystander = pg_connect(lab, application_name="reporting-job")
    bystander.execute("SELECT count(*) FROM items")  # left idle in transaction
    lab.inject("pool-exhaustion")
    try:
        hogs = wait_until("my-service's sessions held for 4 s", lambda: held(lab, 4.0))
        assert len(hogs) == lab.pool_size
        args = ["--target", "lab", "-p", "terminate_long_queries", "true", "-p", "min_seconds",
                "3"]  # fmt: skip

        # without --apply: the exact pids and statement previewed, nothing terminated
        _, result, _ = run("database", *args, out=tmp_path)
        (action,) = result["actions"]
        assert (action["outcome"], action["dry_run"]) == ("previewed", True)
        assert sorted(action["parameters"]["pids"]) == sorted(hogs)
        assert (
            "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid IN ("
            in (action["detail"])
        )
        assert "application_name = 'my-service'" in action["detail"]
        assert result["findings"][0]["cause"] == "slow-database-queries"
        assert held(lab, 0) >= hogs

        # more candidates than the policy's max_backends_per_action: refused, even applied
        _, result, _ = run("database", *args[2:], "--target", strict_target, "--apply",
                           out=tmp_path)  # fmt: skip
        (action,) = result["actions"]
        assert action["outcome"] == "refused" and action["dry_run"] is True
        assert f"refused: {len(hogs)} backends to terminate" in action["detail"]
        assert "policy.max_backends_per_action (2)" in action["detail"]
        assert held(lab, 0) >= hogs

        # applied: only my-service's long sessions end
        bystander_pid = bystander.info.backend_pid
        _, result, _ = run("database", *args, "--apply", out=tmp_path)
        (action,) = result["actions"]
        assert (action["outcome"], action["dry_run"]) == ("applied", False)
        assert sorted(action["parameters"]["pids"]) == sorted(hogs)
        assert f"terminated {len(hogs)} of {len(hogs)} backend(s)" in action["detail"]
        wait_until("the held sessions to end", lambda: not (set(sessions(lab, "my-service"))
                                                            & hogs))  # fmt: skip
        assert not held(lab, 3.0)
        others = sessions(lab, "reporting-job")
        assert bystander_pid in others and others[bystander_pid]["state"] == "idle in transaction"
        assert bystander.execute("SELECT 1").fetchone() == (1,)
        wait_until("the fault to end", lambda: lab.active_fault() == "none")
    finally:
        lab.clear()
        bystander.close()


@pytest.fixture
def cache_keys(lab: Any) -> Any:
    client = lab.redis.client(decode_responses=True)
    inside = [f"test:{i}" for i in range(40)] + ["test:nested:a"]
    outside = ["test", "testing:1", "other:test:1", "tests:2"]
    client.mset({k: "v" for k in inside + outside})
    yield client, inside, outside
    client.delete(*inside, *outside)
    client.close()


def test_cache_flush_previews_then_deletes_exactly_the_namespace(
    lab: Any, cache_keys: Any, strict_target: str, tmp_path: Path
) -> None:
    client, inside, outside = cache_keys
    _, result, _ = run("cache", "--target", "lab", "-p", "flush_pattern", "test:*",
                       "-p", "bigkeys_sample", "100", out=tmp_path)  # fmt: skip
    (action,) = result["actions"]
    assert (action["action"], action["outcome"]) == ("flush-keys", "previewed")
    assert f"would delete {len(inside)} key(s) matching 'test:*'" in action["detail"]
    assert client.exists(*inside, *outside) == len(inside) + len(outside)
    found = checks(result)
    assert found["Redis memory"]["status"] in ("ok", "warn")
    assert found["Biggest keys (sample of 100)"]["status"] == "ok"

    _, result, _ = run("cache", "--target", strict_target, "--apply", "-p", "flush_pattern",
                       "test:*", out=tmp_path)  # fmt: skip
    (action,) = result["actions"]
    assert action["outcome"] == "refused" and "policy.max_keys_per_action (10)" in action["detail"]
    assert client.exists(*inside) == len(inside)

    _, result, _ = run("cache", "--target", "lab", "--apply", "-p", "flush_pattern", "test:*",
                       out=tmp_path)  # fmt: skip
    (action,) = result["actions"]
    assert (action["outcome"], action["dry_run"]) == ("applied", False)
    assert f"deleted {len(inside)} of {len(inside)} key(s)" in action["detail"]
    assert checks(result)["Keys matching test:* after the flush"]["detail"] == "0 key(s) left"
    assert client.exists(*inside) == 0
    assert client.exists(*outside) == len(outside)
    assert client.exists("item:1") or client.dbsize() >= len(outside)  # the app's cache stays


def test_logs_export_on_the_lab(lab: Any, tmp_path: Path) -> None:
    began = pd.Timestamp.now(tz="UTC")
    run_dir, result, _ = run("logs", "--target", "lab", "-p", "export", "true", "-p",
                             "since_minutes", "2", "-p", "pattern", "status=200",
                             out=tmp_path)  # fmt: skip
    export = exported(run_dir)
    lines = export.read_text().splitlines()
    assert lines
    found = checks(result)
    assert found["Export of the matching lines"]["detail"] == (
        f"{len(lines)} lines written to {export}"
    )
    assert found["Lines matching /status=200/"]["detail"].startswith(f"{len(lines)} of ")
    parsed = logtools.parse(lines)
    assert set(parsed["level"]) == {"INFO"} and set(parsed["status"]) == {200}
    assert parsed["time"].min() >= began - pd.Timedelta(minutes=2, seconds=5)
    pods = httpx.get(f"{lab.kube.url}/api/v1/namespaces/production/pods",
                     params={"labelSelector": "app=my-service"}, timeout=5).json()  # fmt: skip
    names = {p["metadata"]["name"] for p in pods["items"]}
    assert found["Pod logs over the last 2 min"]["detail"].endswith(
        f"from {len(names)} pod(s) of app=my-service"
    )


def kube_requests(lab: Any) -> list[dict[str, Any]]:
    return list(httpx.get(f"{lab.kube.url}/_test/requests", timeout=5).json())


def env_of(lab: Any) -> dict[str, str]:
    container = lab.deployment()["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container.get("env") or []}


def revision(lab: Any) -> int:
    return int(lab.deployment()["metadata"]["annotations"]["deployment.kubernetes.io/revision"])


def test_maintenance_without_apply_changes_nothing(lab: Any, tmp_path: Path) -> None:
    lab.clear()
    httpx.post(f"{lab.kube.url}/_test/reset-requests", timeout=5)
    before, env = revision(lab), env_of(lab)
    _, result, _ = run("maintenance", "--target", "lab", "-p", "kind", "emergency",
                       out=tmp_path)  # fmt: skip
    assert [(a["outcome"], a["dry_run"]) for a in result["actions"]] == [("previewed", True)] * 2
    seen = kube_requests(lab)
    patches = [r for r in seen if r["method"] == "PATCH"]
    assert len(patches) == 2 and all(r["dry_run"] for r in patches)
    assert [r for r in seen if r["method"] != "GET" and not r["dry_run"]] == []
    assert revision(lab) == before and env_of(lab) == env and "MAINTENANCE_MODE" not in env
    found = checks(result)
    smoke = {n: c for n, c in found.items() if n.startswith("Smoke test GET ")}
    assert set(smoke) == {"Smoke test GET database", "Smoke test GET cache",
                          "Smoke test GET payments-provider"}  # fmt: skip
    assert {c["status"] for c in smoke.values()} == {"ok"}
    assert all("HTTP 200" in c["detail"] for c in smoke.values())
    assert "2 previewed" in found["Maintenance checklist"]["detail"]


def test_maintenance_applied_switches_the_mode_on_and_off(lab: Any, tmp_path: Path) -> None:
    lab.clear()
    before = revision(lab)
    try:
        _, result, _ = run("maintenance", "--target", "lab", "--apply", "-p", "kind",
                           "emergency", out=tmp_path)  # fmt: skip
        assert [(a["outcome"], a["parameters"]) for a in result["actions"]] == [
            ("applied", {"MAINTENANCE_MODE": "true"}),
            ("applied", {"MAINTENANCE_MODE": "false"}),
        ]
        assert revision(lab) == before + 2
        assert env_of(lab)["MAINTENANCE_MODE"] == "false"
        table = checks(result)["Maintenance checklist"]["detail"]
        assert "previewed" not in table
    finally:
        lab.clear()
