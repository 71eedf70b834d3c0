"""Durable intake: every accepted alert, every run and every notification, in SQLite.

One database file in the data folder, in WAL mode with ``synchronous=FULL``: a commit is on
disk (fsync'd) before it returns, so an alert the service answered 200 for survives a crash.
The deduplication rule (one diagnosis per fingerprint per interval) is decided inside the same
``BEGIN IMMEDIATE`` transaction that records the alert, so two requests racing for the same
fingerprint, or a restart, can never start a second run.

Tables: ``alerts`` (each alert of each request, with its disposition), ``runs`` (the queue and
the record: queued → running → ok | error | failed), ``fingerprints`` (per alert: firing or
resolved, the last diagnosis, the route) and ``notifications`` (the outbox).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY, received_at REAL NOT NULL, fingerprint TEXT NOT NULL,
    status TEXT NOT NULL, alertname TEXT, labels TEXT, annotations TEXT, starts_at TEXT,
    ends_at TEXT, generator_url TEXT, runbook TEXT, target TEXT, disposition TEXT NOT NULL,
    reason TEXT, run_id INTEGER);
CREATE INDEX IF NOT EXISTS alerts_fingerprint ON alerts(fingerprint);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, alert_id INTEGER, fingerprint TEXT NOT NULL, alertname TEXT,
    kind TEXT NOT NULL, reason TEXT, runbook TEXT NOT NULL, target TEXT NOT NULL, service TEXT,
    parameters TEXT NOT NULL, apply INTEGER NOT NULL DEFAULT 0, status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0, created_at REAL NOT NULL, started_at REAL,
    finished_at REAL, run_dir TEXT, findings TEXT, duration REAL, error TEXT);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status);
CREATE INDEX IF NOT EXISTS runs_fingerprint ON runs(fingerprint);
CREATE TABLE IF NOT EXISTS fingerprints (
    fingerprint TEXT PRIMARY KEY, state TEXT NOT NULL, starts_at TEXT, last_seen REAL,
    last_diagnosis_at REAL, last_run_id INTEGER, rediagnoses INTEGER NOT NULL DEFAULT 0,
    resolved_starts_at TEXT, route TEXT, alert_id INTEGER);
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY, run_id INTEGER NOT NULL, webhook TEXT NOT NULL,
    payload TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL, last_error TEXT, created_at REAL NOT NULL, sent_at REAL);
CREATE INDEX IF NOT EXISTS notifications_due ON notifications(status, next_at);
"""
FINISHED = ("ok", "error", "failed")


class QueueFull(Exception):
    def __init__(self, queued: int, limit: int) -> None:
        self.queued, self.limit = queued, limit
        super().__init__(f"the run queue is full ({queued} queued, limit {limit}); retry later")


@dataclass
class Intake:
    """One alert of a request, already routed (routing needs no database)."""

    fingerprint: str
    status: str  # firing | resolved
    alertname: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: str
    ends_at: str
    generator_url: str
    route: dict[str, Any] | None  # runbook, target, service, parameters, apply; None: not run
    disposition: str  # what routing decided when route is None: unrouted | rejected
    reason: str


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=30
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _rows(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._db.execute(sql, args).fetchall()]

    # --- intake ------------------------------------------------------------------------------

    def record(
        self,
        items: list[Intake],
        *,
        repeat_interval: float,
        queue_size: int,
        resolution: dict[str, dict[str, Any] | None] | None = None,
        now: float | None = None,
    ) -> list[dict[str, Any]]:
        """Record a request's alerts and queue their runs, all or nothing.

        Raises QueueFull (and records nothing) when the new runs would overflow the queue."""
        now = time.time() if now is None else now
        resolution = resolution or {}
        outcomes: list[dict[str, Any]] = []
        with self._tx() as db:
            new_runs = 0
            for item in items:
                verify = resolution.get(item.fingerprint)
                outcome = self._one(db, item, now, repeat_interval, verify)
                new_runs += outcome.pop("_new", 0)
                outcomes.append(outcome)
            queued = db.execute("SELECT count(*) FROM runs WHERE status='queued'").fetchone()[0]
            if new_runs and queued > queue_size:
                raise QueueFull(queued - new_runs, queue_size)
        return outcomes

    def _one(
        self,
        db: sqlite3.Connection,
        item: Intake,
        now: float,
        interval: float,
        resolution: dict[str, Any] | None,
    ) -> dict[str, Any]:
        fp = db.execute(
            "SELECT * FROM fingerprints WHERE fingerprint=?", (item.fingerprint,)
        ).fetchone()
        disposition, reason, run_id, new = item.disposition, item.reason, None, 0
        route = item.route
        if item.status == "firing" and route is not None:
            last = fp["last_diagnosis_at"] if fp else None
            if last is not None and now - last < interval:
                disposition, run_id = "repeat", fp["last_run_id"]
                reason = (
                    f"repeat within the repeat interval ({interval:.0f} s) of the "
                    f"diagnosis {now - last:.0f} s ago (run {run_id})"
                )
            else:
                disposition = "queued"
                reason = (
                    "new firing alert"
                    if last is None
                    else f"firing again {now - last:.0f}"
                    f" s after the last diagnosis (repeat interval {interval:.0f} s)"
                )
        elif (
            item.status == "resolved"
            and fp is not None
            and fp["state"] == "resolved"
            and (fp["resolved_starts_at"] == item.starts_at)
        ):
            disposition, reason = "repeat", "resolution already recorded"
            route = None
        elif item.status == "resolved":
            route = resolution
            if route is None:
                disposition = "recorded" if item.disposition == "queued" else item.disposition
                reason = reason or "resolved"
            else:
                disposition, reason = "queued", "the alert resolved: verifying the resolution"
        cur = db.execute(
            "INSERT INTO alerts (received_at, fingerprint, status, alertname, labels, "
            "annotations, starts_at, ends_at, generator_url, runbook, target, disposition, "
            "reason) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                now,
                item.fingerprint,
                item.status,
                item.alertname,
                json.dumps(item.labels),
                json.dumps(item.annotations),
                item.starts_at,
                item.ends_at,
                item.generator_url,
                (route or item.route or {}).get("runbook"),
                (route or item.route or {}).get("target"),
                disposition,
                reason,
            ),
        )
        alert_id = cur.lastrowid
        if disposition == "queued" and route is not None:
            kind = "diagnosis" if item.status == "firing" else "verify"
            run_id = self._queue(db, alert_id, item, kind, reason, route, now)
            new = 1
            db.execute("UPDATE alerts SET run_id=? WHERE id=?", (run_id, alert_id))
        elif run_id is not None:
            db.execute("UPDATE alerts SET run_id=? WHERE id=?", (run_id, alert_id))
        self._track(
            db, fp, item, now, run_id if new and item.status == "firing" else None, alert_id
        )
        return {
            "fingerprint": item.fingerprint,
            "status": item.status,
            "disposition": disposition,
            "run": run_id,
            "reason": reason,
            "_new": new,
        }

    def _queue(
        self,
        db: sqlite3.Connection,
        alert_id: int | None,
        item: Intake,
        kind: str,
        reason: str,
        route: dict[str, Any],
        now: float,
    ) -> int:
        cur = db.execute(
            "INSERT INTO runs (alert_id, fingerprint, alertname, kind, reason, runbook, target, "
            "service, parameters, apply, status, created_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                alert_id,
                item.fingerprint,
                item.alertname,
                kind,
                reason,
                route["runbook"],
                route["target"],
                route.get("service", ""),
                json.dumps(route["parameters"]),
                int(bool(route.get("apply"))),
                "queued",
                now,
            ),
        )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def _track(
        self,
        db: sqlite3.Connection,
        fp: sqlite3.Row | None,
        item: Intake,
        now: float,
        diagnosis_run: int | None,
        alert_id: int | None,
    ) -> None:
        if item.status == "firing" and item.route is None:
            return  # an alert that is not run has nothing to track
        if fp is None:
            db.execute(
                "INSERT INTO fingerprints (fingerprint, state, starts_at, last_seen) "
                "VALUES (?,?,?,?)",
                (item.fingerprint, item.status, item.starts_at, now),
            )
        db.execute(
            "UPDATE fingerprints SET state=?, starts_at=?, last_seen=? WHERE fingerprint=?",
            (item.status, item.starts_at, now, item.fingerprint),
        )
        if item.status == "resolved":
            db.execute(
                "UPDATE fingerprints SET resolved_starts_at=? WHERE fingerprint=?",
                (item.starts_at, item.fingerprint),
            )
        if diagnosis_run is not None:
            db.execute(
                "UPDATE fingerprints SET last_diagnosis_at=?, last_run_id=?, rediagnoses=0, "
                "route=?, alert_id=? WHERE fingerprint=?",
                (now, diagnosis_run, json.dumps(item.route), alert_id, item.fingerprint),
            )

    def still_firing(
        self, *, after: float, max_rediagnoses: int, queue_size: int, now: float | None = None
    ) -> list[int]:
        """Queue a fresh diagnosis for each alert still firing ``after`` seconds after its
        last diagnosis; returns the new run ids."""
        now = time.time() if now is None else now
        made: list[int] = []
        if after <= 0:
            return made
        with self._tx() as db:
            rows = db.execute(
                "SELECT * FROM fingerprints WHERE state='firing' AND route IS NOT NULL AND "
                "last_diagnosis_at <= ? AND rediagnoses < ?",
                (now - after, max_rediagnoses),
            ).fetchall()
            for fp in rows:
                queued = db.execute("SELECT count(*) FROM runs WHERE status='queued'").fetchone()
                if queued[0] >= queue_size:
                    break
                last = db.execute("SELECT * FROM runs WHERE id=?", (fp["last_run_id"],)).fetchone()
                when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(fp["last_diagnosis_at"]))
                reason = (
                    f"still firing {now - fp['last_diagnosis_at']:.0f} s after the "
                    f"diagnosis at {when} (run {fp['last_run_id']}; still_firing_after "
                    f"{after:.0f} s)"
                )
                item = Intake(
                    fp["fingerprint"],
                    "firing",
                    last["alertname"] if last else "",
                    {},
                    {},
                    fp["starts_at"],
                    "",
                    "",
                    None,
                    "queued",
                    reason,
                )
                run_id = self._queue(
                    db, fp["alert_id"], item, "rediagnosis", reason, json.loads(fp["route"]), now
                )
                db.execute(
                    "UPDATE fingerprints SET last_diagnosis_at=?, last_run_id=?, "
                    "rediagnoses=rediagnoses+1 WHERE fingerprint=?",
                    (now, run_id, fp["fingerprint"]),
                )
                made.append(run_id)
        return made

    # --- the run queue -----------------------------------------------------------------------

    def recover(self, max_attempts: int) -> list[int]:
        """After a crash: runs left ``running`` go back to the queue, or fail after
        ``max_attempts``. Returns the requeued ids."""
        with self._tx() as db:
            rows = db.execute("SELECT id, attempts FROM runs WHERE status='running'").fetchall()
            requeued = []
            for row in rows:
                if row["attempts"] >= max_attempts:
                    db.execute(
                        "UPDATE runs SET status='failed', finished_at=?, error=? WHERE id=?",
                        (
                            time.time(),
                            f"interrupted {row['attempts']} times (service stopped "
                            "while it ran); not started again",
                            row["id"],
                        ),
                    )
                else:
                    db.execute(
                        "UPDATE runs SET status='queued', error=? WHERE id=?",
                        ("interrupted: the service stopped while it ran; queued again", row["id"]),
                    )
                    requeued.append(row["id"])
        return requeued

    def claim(self) -> dict[str, Any] | None:
        """Take the oldest queued run and mark it running (attempts + 1)."""
        with self._tx() as db:
            row = db.execute(
                "SELECT * FROM runs WHERE status='queued' ORDER BY id LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE runs SET status='running', started_at=?, attempts=attempts+1 WHERE id=?",
                (time.time(), row["id"]),
            )
        run = dict(row)
        run["attempts"] += 1
        run["parameters"] = json.loads(run["parameters"])
        return run

    def finish(
        self,
        run_id: int,
        *,
        status: str,
        run_dir: str | None,
        findings: list[dict[str, Any]],
        duration: float | None,
        error: str | None,
        notifications: list[tuple[str, dict[str, Any]]] = (),  # type: ignore[assignment]
    ) -> None:
        """Record a run's outcome and queue its notifications in one commit."""
        now = time.time()
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET status=?, finished_at=?, run_dir=?, findings=?, duration=?, "
                "error=? WHERE id=?",
                (status, now, run_dir, json.dumps(findings), duration, error, run_id),
            )
            for webhook, payload in notifications:
                db.execute(
                    "INSERT INTO notifications (run_id, webhook, payload, status, next_at, "
                    "created_at) VALUES (?,?,?,?,?,?)",
                    (run_id, webhook, json.dumps(payload), "pending", now, now),
                )

    # --- notifications -----------------------------------------------------------------------

    def due_notifications(self, now: float | None = None) -> list[dict[str, Any]]:
        now = time.time() if now is None else now
        return self._rows(
            "SELECT * FROM notifications WHERE status='pending' AND next_at <= ? ORDER BY id",
            now,
        )

    def notified(self, nid: int, *, ok: bool, error: str = "", retry_at: float | None = None):
        with self._tx() as db:
            if ok:
                db.execute(
                    "UPDATE notifications SET status='sent', attempts=attempts+1, sent_at=?, "
                    "last_error=NULL WHERE id=?",
                    (time.time(), nid),
                )
            else:
                status = "pending" if retry_at is not None else "failed"
                db.execute(
                    "UPDATE notifications SET status=?, attempts=attempts+1, next_at=?, "
                    "last_error=? WHERE id=?",
                    (status, retry_at or time.time(), error[:500], nid),
                )

    # --- reading -----------------------------------------------------------------------------

    def run(self, run_id: int) -> dict[str, Any] | None:
        rows = self._rows("SELECT * FROM runs WHERE id=?", run_id)
        return _decode(rows[0]) if rows else None

    def runs(
        self, limit: int = 200, offset: int = 0, fingerprint: str | None = None
    ) -> list[dict[str, Any]]:
        """Runs newest first; of one alert (its fingerprint) when given."""
        if fingerprint is None:
            rows = self._rows("SELECT * FROM runs ORDER BY id DESC LIMIT ? OFFSET ?", limit, offset)
        else:
            rows = self._rows(
                "SELECT * FROM runs WHERE fingerprint=? ORDER BY id DESC LIMIT ? OFFSET ?",
                fingerprint, limit, offset,
            )  # fmt: skip
        return [_decode(r) for r in rows]

    def last_alert(self, fingerprint: str) -> dict[str, Any] | None:
        """The newest alert received with this fingerprint."""
        rows = self._rows(
            "SELECT * FROM alerts WHERE fingerprint=? ORDER BY id DESC LIMIT 1", fingerprint
        )
        return rows[0] if rows else None

    def alerts(self, limit: int = 200, offset: int = 0) -> list[dict[str, Any]]:
        rows = self._rows("SELECT * FROM alerts ORDER BY id DESC LIMIT ? OFFSET ?", limit, offset)
        for row in rows:
            row["labels"] = json.loads(row["labels"] or "{}")
            row["annotations"] = json.loads(row["annotations"] or "{}")
        return rows

    def notifications(self, run_id: int | None = None) -> list[dict[str, Any]]:
        if run_id is None:
            return self._rows("SELECT * FROM notifications ORDER BY id")
        return self._rows("SELECT * FROM notifications WHERE run_id=? ORDER BY id", run_id)

    def counts(self) -> dict[str, int]:
        rows = self._rows("SELECT status, count(*) AS n FROM runs GROUP BY status")
        return {r["status"]: r["n"] for r in rows}

    def queue_depth(self) -> int:
        return self.counts().get("queued", 0)


def _decode(row: dict[str, Any]) -> dict[str, Any]:
    row["parameters"] = json.loads(row["parameters"] or "{}")
    row["findings"] = json.loads(row["findings"]) if row.get("findings") else []
    return row
