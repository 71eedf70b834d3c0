"""Plain-file storage for incidents: a folder per incident, an append-only hash-chained event
log, and the current state rewritten atomically.

    <incidents dir>/
      .gitignore            ignores the lock and temporary files (the rest belongs in git)
      .lock                 flock'ed while an id is allocated
      INC-0001/
        events.jsonl        append-only, one event a line, each chained to the one before
        incident.json       the current state, derived from the events

The incidents dir is ``--dir``, else ``$OPSNB_INCIDENTS``, else ``<config dir>/incidents``.

Concurrency: every append holds an exclusive ``fcntl.flock`` on ``events.jsonl`` while it
reads the chain's head, writes its lines, fsyncs them and rewrites ``incident.json``; readers
hold a shared lock. Several processes (the alert service, a person's CLI, a runbook kernel)
can therefore write to one incident at once without losing or interleaving events. An id is
allocated under an exclusive lock on ``.lock`` and claimed with an exclusive ``mkdir``, so two
processes opening incidents at once never get the same id.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from ..config import config_dir
from ..severity import SeverityPolicy, load_policy
from .model import (
    GENESIS,
    INCIDENT_ID,
    KINDS,
    Event,
    Incident,
    IncidentError,
    IncidentUsageError,
    event_hash,
    format_event_id,
    format_incident_id,
    format_time,
    normalize_incident_id,
    parse_event_id,
    parse_time,
    replay,
    utc_now,
)

EVENTS = "events.jsonl"
STATE = "incident.json"
GITIGNORE = ".lock\n*.tmp\n"
# Event logs last replayed as resolved, with the (mtime, size) they had: see Store.incidents.
_closed: dict[Path, tuple[int, int]] = {}


def _version(path: Path) -> tuple[int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


Clock = Callable[[], datetime]


def incidents_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``explicit`` (``--dir``), else ``$OPSNB_INCIDENTS``, else ``<config dir>/incidents``."""
    if explicit:
        return Path(explicit).expanduser()
    if os.environ.get("OPSNB_INCIDENTS"):
        return Path(os.environ["OPSNB_INCIDENTS"]).expanduser()
    return config_dir() / "incidents"


@dataclass
class Pending:
    """An event to append: the store gives it its id, times and hashes."""

    kind: str
    data: dict[str, Any]
    by: str
    at: datetime | str | None = None


Build = Callable[[Incident], list[Pending]]


@dataclass
class Problem:
    line: int
    event: str | None
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}" + (f" ({self.event})" if self.event else "")
        return f"{where}: {self.reason}"


@dataclass
class Verification:
    incident: str
    events: int
    head: str | None
    problems: list[Problem] = field(default_factory=list)
    head_hash: str | None = None  # publish it (a chat message, a commit) to anchor the chain

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None


class Store:
    """The incidents under ``root``. ``clock`` gives "now" (injectable for tests);
    ``policy`` is the severity policy written into ``incident.json`` (default: the
    organisation's, :func:`opsnb.severity.load_policy`)."""

    def __init__(
        self,
        root: str | os.PathLike[str] | None = None,
        *,
        clock: Clock = utc_now,
        policy: SeverityPolicy | None = None,
    ) -> None:
        self.root = incidents_dir(root)
        self.clock = clock
        self._policy = policy

    @property
    def policy(self) -> SeverityPolicy:
        if self._policy is None:
            self._policy = load_policy()
        return self._policy

    # --- paths -----------------------------------------------------------------------------

    def folder(self, incident_id: str) -> Path:
        return self.root / normalize_incident_id(incident_id)

    def ids(self) -> list[str]:
        """Every incident with an event log, in id order."""
        if not self.root.is_dir():
            return []
        found = []
        for path in self.root.iterdir():
            match = INCIDENT_ID.fullmatch(path.name)
            if match and (path / EVENTS).is_file() and (path / EVENTS).stat().st_size:
                found.append((int(match.group(1)), path.name))
        return [name for _, name in sorted(found)]

    def _numbers(self) -> list[int]:
        """Every claimed number, including folders whose first event is being written."""
        if not self.root.is_dir():
            return []
        return [
            int(m.group(1))
            for m in (INCIDENT_ID.fullmatch(p.name) for p in self.root.iterdir())
            if m
        ]

    def _prepare_root(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        ignore = self.root / ".gitignore"
        if not ignore.exists():
            with contextlib.suppress(FileExistsError), open(ignore, "x", encoding="utf-8") as fh:
                fh.write(GITIGNORE)

    @contextlib.contextmanager
    def root_lock(self) -> Iterator[None]:
        """An exclusive lock over the whole incidents dir (id allocation, open-or-get)."""
        self._prepare_root()
        with open(self.root / ".lock", "a", encoding="utf-8") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    # --- writing ---------------------------------------------------------------------------

    def create(self, opened: Pending) -> Incident:
        """Allocate the next id and write the incident's first event."""
        with self.root_lock():
            return self.create_locked(opened)

    def create_locked(self, opened: Pending) -> Incident:
        """:meth:`create` for a caller already holding :meth:`root_lock`."""
        self.policy  # noqa: B018 - a bad severity policy fails before anything is written
        number = max(self._numbers(), default=0) + 1
        while True:
            folder = self.root / format_incident_id(number)
            try:
                folder.mkdir()
                break
            except FileExistsError:  # claimed by a writer that does not use this lock
                number += 1
        incident_id = folder.name
        self.append(incident_id, lambda _state: [opened])
        return self.load(incident_id)

    def append(self, incident_id: str, build: Build) -> list[Event]:
        """Append the events ``build(current state)`` returns, under the incident's lock.

        ``build`` runs while the lock is held, so what it decides from the state (a status
        change's previous value, whether a run is already attached) cannot race another
        writer; it may raise to refuse. The new lines are fsynced before ``incident.json`` is
        rewritten; a failed write is cut back so the log never ends with a partial line.
        """
        policy = self.policy
        folder = self.folder(incident_id)
        if not folder.is_dir():
            raise IncidentUsageError(f"no incident {folder.name} in {self.root}")
        with open(folder / EVENTS, "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                fh.seek(0)
                raw = fh.read()
                events = _parse(folder.name, raw)
                state = replay(folder.name, events)
                pending = build(state)
                if not pending:
                    return []
                new = self._seal(folder.name, events, pending)
                self._write(fh, len(raw), "".join(e.line() for e in new).encode())
                for event in new:
                    events.append(event)
                state = replay(folder.name, events)
                self._write_state(folder, state, policy)
                return new
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _seal(self, incident_id: str, events: list[Event], pending: list[Pending]) -> list[Event]:
        prev = events[-1].hash if events else GENESIS
        seq = len(events)
        now = format_time(self.clock())
        new = []
        for item in pending:
            if item.kind not in KINDS:
                raise IncidentUsageError(f"unknown event kind {item.kind!r}; kinds: {KINDS}")
            if (item.kind == "opened") != (seq == 0):
                raise IncidentError(f"{incident_id}: 'opened' must be the first event, only")
            seq += 1
            at = now if item.at is None else format_time(parse_time(item.at))
            event = Event.seal(
                seq=seq, incident=incident_id, kind=item.kind, at=at, recorded_at=now,
                by=item.by, data=item.data, prev_hash=prev,
            )  # fmt: skip
            new.append(event)
            prev = event.hash
        return new

    @staticmethod
    def _write(fh: IO[bytes], size: int, payload: bytes) -> None:
        try:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        except BaseException:
            # Never leave a partial line behind: the next writer would chain onto it.
            with contextlib.suppress(OSError):
                os.ftruncate(fh.fileno(), size)
            raise

    @staticmethod
    def _write_state(folder: Path, state: Incident, policy: SeverityPolicy) -> None:
        tmp = folder / f".{STATE}.{os.getpid()}.tmp"
        text = json.dumps(state.to_state(policy), indent=2, ensure_ascii=False) + "\n"
        with open(tmp, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, folder / STATE)
        with contextlib.suppress(OSError):  # make the rename itself durable
            dirfd = os.open(folder, os.O_RDONLY)
            try:
                os.fsync(dirfd)
            finally:
                os.close(dirfd)

    # --- reading ---------------------------------------------------------------------------

    def _read(self, incident_id: str) -> tuple[str, bytes]:
        folder = self.folder(incident_id)
        path = folder / EVENTS
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed below, after the lock
        except FileNotFoundError:
            raise IncidentUsageError(f"no incident {folder.name} in {self.root}") from None
        with fh:
            fcntl.flock(fh, fcntl.LOCK_SH)
            try:
                return folder.name, fh.read()
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def events(self, incident_id: str) -> list[Event]:
        name, raw = self._read(incident_id)
        return _parse(name, raw)

    def load(self, incident_id: str) -> Incident:
        """The incident's state, replayed from its event log (the log is authoritative)."""
        name, raw = self._read(incident_id)
        events = _parse(name, raw)
        if not events:
            raise IncidentUsageError(f"incident {name} has no events yet")
        return replay(name, events)

    def incidents(self, *, open_only: bool = False) -> list[Incident]:
        """Every incident, or the open ones. ``opsnb serve`` asks for the open ones on every
        alert: a log already replayed as resolved is skipped while it is unchanged (same
        size and mtime), so years of closed incidents are not replayed each time."""
        found = []
        for incident_id in self.ids():
            path = self.folder(incident_id) / EVENTS
            version = _version(path)
            if open_only and version is not None and _closed.get(path) == version:
                continue
            try:
                incident = self.load(incident_id)
            except IncidentUsageError:  # being created right now
                continue
            if not incident.is_open and version is not None:
                # the version read before the log was: if it grew meanwhile, the next call
                # sees another version and replays it again
                _closed[path] = version
            if incident.is_open or not open_only:
                found.append(incident)
        return found

    def state_file(self, incident_id: str) -> dict[str, Any] | None:
        """``incident.json`` as written, or None when missing or unreadable."""
        try:
            data = json.loads((self.folder(incident_id) / STATE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    # --- verification ----------------------------------------------------------------------

    def verify(self, incident_id: str) -> Verification:
        """Check the hash chain line by line; the first problem names the first bad entry."""
        name, raw = self._read(incident_id)
        lines = raw.split(b"\n")
        trailing = lines.pop()  # b"" when the file ends with a newline
        problems: list[Problem] = []
        prev = GENESIS
        last: str | None = None
        count = 0
        for number, line in enumerate(lines, start=1):
            count = number
            problem, stored_hash, event_id = _check_line(name, number, line, prev)
            if problem:
                problems.append(Problem(number, event_id, problem))
            prev = stored_hash or prev
            last = event_id or last
        if trailing:
            count += 1
            problems.append(Problem(count, None, "incomplete last line (no newline)"))
        recorded = self.state_file(name)
        head = (recorded or {}).get("head") or {}
        if head.get("id") and not problems:
            try:
                expected = parse_event_id(head["id"])
            except IncidentUsageError:
                expected = 0
            if expected > len(lines):
                problems.append(
                    Problem(
                        len(lines) + 1,
                        format_event_id(len(lines) + 1),
                        f"missing: {STATE} records {head['id']} as the last event but the "
                        f"log ends at {last or 'the start'} (events were removed from the end)",
                    )  # fmt: skip
                )
            elif expected and head.get("hash") != _hash_of(lines[expected - 1]):
                problems.append(
                    Problem(
                        expected, head["id"], f"hash differs from the one {STATE} records for it"
                    )  # fmt: skip
                )
        return Verification(name, len(lines), last, problems, prev if lines else None)


def _hash_of(line: bytes) -> str | None:
    try:
        value = json.loads(line).get("hash")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _check_line(
    incident_id: str, number: int, line: bytes, prev: str
) -> tuple[str | None, str | None, str | None]:
    """(problem, the line's stored hash, its event id) for one line of the log."""
    expected_id = format_event_id(number)
    try:
        raw = json.loads(line)
    except ValueError:
        return "not valid JSON", None, expected_id
    if not isinstance(raw, dict):
        return "not a JSON object", None, expected_id
    event_id = raw.get("id") if isinstance(raw.get("id"), str) else expected_id
    stored = raw.get("hash") if isinstance(raw.get("hash"), str) else None
    if stored is None:
        return "no hash", None, event_id
    if event_hash(raw) != stored:
        return "hash does not match the content (the entry was changed)", stored, event_id
    if raw.get("prev_hash") != prev:
        what = "the start of the log" if number == 1 else format_event_id(number - 1)
        return (
            f"prev_hash does not match {what} (an entry before it was removed, inserted or "
            "reordered)",
            stored,
            event_id,
        )
    if event_id != expected_id:
        return f"id {event_id} out of sequence (expected {expected_id})", stored, event_id
    if raw.get("incident") != incident_id:
        return f"belongs to {raw.get('incident')!r}, not {incident_id}", stored, event_id
    return None, stored, event_id


def _parse(incident_id: str, raw: bytes) -> list[Event]:
    if raw and not raw.endswith(b"\n"):
        raise IncidentError(
            f"{incident_id}/{EVENTS} ends with an incomplete line; run "
            f"`opsnb incident verify {incident_id}`"
        )
    events = []
    for number, line in enumerate(raw.splitlines(), start=1):
        try:
            events.append(Event.from_dict(json.loads(line)))
        except (ValueError, KeyError, TypeError, AttributeError):
            raise IncidentError(
                f"{incident_id}/{EVENTS} line {number} is not a valid event; run "
                f"`opsnb incident verify {incident_id}`"
            ) from None
    return events
