"""Redis: PING, INFO, the cache hit ratio, memory, and a namespace flush done safely (the
template's "Cache Operations").

    cache = RedisBackend("redis://127.0.0.1:6379/0", password=secret)
    cache.hit_ratio()        # keyspace_hits / (hits + misses), None before any lookup
    cache.memory()           # INFO memory: used, peak, maxmemory, fragmentation
    cache.scan_keys("session:*")                                  # SCAN MATCH, never KEYS
    cache.delete_keys("session:*", dry_run=True, max_keys=10_000)  # count and sample first

``redis`` is imported on first use. Retries are off, so a down server fails within
``timeout`` seconds with ``BackendUnavailable("redis", reason)``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from ..errors import BackendUnavailable, LimitExceeded

__all__ = [
    "KEY_SIZE_COLUMNS",
    "MEMORY_FIELDS",
    "KeyDeletion",
    "RedisBackend",
    "check_flush_pattern",
    "glob_match",
    "hit_ratio_from_info",
    "info_section",
    "key_sizes_frame",
    "memory_from_info",
]

# the INFO memory fields ``memory()`` answers with (plus ``used_ratio``)
MEMORY_FIELDS = (
    "used_memory", "used_memory_human", "used_memory_rss", "used_memory_peak",
    "used_memory_peak_human", "maxmemory", "maxmemory_human", "maxmemory_policy",
    "mem_fragmentation_ratio",
)  # fmt: skip
KEY_SIZE_COLUMNS = ["key", "type", "bytes", "ttl_seconds"]
SAMPLE_KEYS = 10  # keys a deletion preview shows

NAME = "redis"

# the INFO sections whose keys a snapshot can tell apart without the section headers
_KEYSPACE_PREFIX = "db"


class RedisBackend:
    """One Redis server. The password is given separately, never in the URL."""

    def __init__(self, url: str, *, password: str | None = None, timeout: float = 3.0) -> None:
        self.url = url
        self.timeout = float(timeout)
        self._password = password
        self._client: Any = None
        parts = urlsplit(url)
        host = parts.hostname or "127.0.0.1"
        self.where = f"{host}:{parts.port or 6379}"

    def __repr__(self) -> str:
        return f"RedisBackend(server={self.where!r})"

    def _redis(self) -> Any:
        if self._client is None:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            self._client = redis.Redis.from_url(
                self.url,
                password=self._password,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                retry=Retry(NoBackoff(), 0),
                retry_on_timeout=False,
                decode_responses=False,
            )
        return self._client

    def _call(self, what: str, *args: Any, **kwargs: Any) -> Any:
        client = self._redis()
        with self._errors():
            return getattr(client, what)(*args, **kwargs)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn redis-py's connection, timeout and authentication errors into
        BackendUnavailable; other ResponseErrors (the caller's) pass through."""
        import redis

        try:
            yield
        except redis.AuthenticationError:
            raise BackendUnavailable(NAME, f"authentication failed at {self.where}") from None
        except redis.TimeoutError:
            raise BackendUnavailable(
                NAME, f"timed out after {self.timeout:g}s at {self.where}"
            ) from None
        except redis.ConnectionError as exc:
            raise BackendUnavailable(NAME, self._reason(exc)) from None
        except redis.ResponseError as exc:
            text = str(exc)
            if text.startswith(("NOAUTH", "WRONGPASS")):
                raise BackendUnavailable(NAME, f"authentication failed at {self.where}") from None
            if text.startswith(("LOADING", "MASTERDOWN", "BUSY")):
                raise BackendUnavailable(NAME, f"{self.where} is not serving: {text}") from None
            raise

    def _reason(self, exc: BaseException) -> str:
        text = str(exc)
        lower = text.lower()
        if "refused" in lower:
            return f"connection refused at {self.where}"
        if "timeout" in lower or "timed out" in lower:
            return f"timed out after {self.timeout:g}s at {self.where}"
        if "name or service not known" in lower or "nodename nor servname" in lower:
            return f"cannot resolve host of {self.where}"
        if "closed" in lower or "reset" in lower:
            return f"connection to {self.where} was closed"
        return f"cannot talk to {self.where}: {type(exc).__name__}"

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # --- calls ------------------------------------------------------------------------------

    def ping(self) -> bool:
        """True when Redis answers PING (raises BackendUnavailable otherwise)."""
        return bool(self._call("ping"))

    def info(self, section: str | None = None) -> dict[str, Any]:
        """``INFO [section]`` as the dict redis-py returns (numbers already numbers;
        ``db0`` etc. are dicts)."""
        info = self._call("info", section) if section else self._call("info")
        return dict(info)

    def hit_ratio(self) -> float | None:
        """keyspace_hits / (keyspace_hits + keyspace_misses) since the server started (or
        since ``CONFIG RESETSTAT``), or None when there has been no lookup."""
        return hit_ratio_from_info(self.info("stats"))

    def memory(self) -> dict[str, Any]:
        """``INFO memory``'s main fields (``MEMORY_FIELDS``) plus ``used_ratio``:
        used_memory / maxmemory, None when no maxmemory is set."""
        return memory_from_info(self.info("memory"))

    def _scan(self, pattern: str, batch: int, limit: int | None) -> list[bytes]:
        """Keys matching ``pattern`` by ``SCAN cursor MATCH pattern COUNT batch`` (never
        ``KEYS``, which blocks the server), at most ``limit`` of them."""
        found: list[bytes] = []
        seen: set[bytes] = set()
        cursor = 0
        while True:
            cursor, keys = self._call("scan", cursor, match=pattern, count=max(1, int(batch)))
            for key in keys:
                if key not in seen:  # SCAN may return a key more than once
                    seen.add(key)
                    found.append(key)
                    if limit is not None and len(found) >= limit:
                        return found
            if int(cursor) == 0:
                return found

    def scan_keys(self, pattern: str, batch: int = 500, limit: int | None = None) -> list[str]:
        """Names of the keys matching the glob ``pattern`` (SCAN MATCH in batches of
        ``batch``, never KEYS), at most ``limit``; in SCAN order."""
        return [_text(k) for k in self._scan(pattern, batch, limit)]

    def key_sizes(self, pattern: str = "*", sample: int = 200) -> pd.DataFrame:
        """A ``redis-cli --bigkeys``-like sample: up to ``sample`` keys matching ``pattern``
        (by SCAN) with their type, ``MEMORY USAGE`` in bytes and TTL (None: no expiry), as
        DataFrame with ``KEY_SIZE_COLUMNS``, biggest first."""
        keys = self._scan(pattern, 500, max(0, int(sample)))
        rows: list[dict[str, Any]] = []
        if keys:
            pipe = self._redis().pipeline(transaction=False)
            for key in keys:
                pipe.type(key)
                pipe.memory_usage(key)
                pipe.ttl(key)
            with self._errors():
                answers = pipe.execute()
            for i, key in enumerate(keys):
                kind, size, ttl = answers[3 * i : 3 * i + 3]
                if _text(kind) == "none":  # expired or deleted since the scan
                    continue
                rows.append({"key": _text(key), "type": _text(kind), "bytes": size,
                             "ttl_seconds": ttl})  # fmt: skip
        return key_sizes_frame(rows)

    def delete_keys(
        self,
        pattern: str,
        *,
        dry_run: bool,
        batch: int = 500,
        max_keys: int,
    ) -> KeyDeletion:
        """Delete the keys matching ``pattern``: found by SCAN MATCH in batches (never
        KEYS), removed by ``UNLINK`` (``DEL`` where UNLINK is missing) in batches of
        ``batch``.

        A dry run deletes nothing and tells how many keys match, with a sample. More than
        ``max_keys`` matching keys (the target's ``policy.max_keys_per_action``) raise
        ValueError, dry run or not, and nothing is deleted."""
        check_flush_pattern(pattern)
        keys = self._scan(pattern, batch, int(max_keys) + 1)
        _refuse_over(len(keys), pattern, int(max_keys))
        sample = [_text(k) for k in keys[:SAMPLE_KEYS]]
        if dry_run or not keys:
            return _deletion(pattern, len(keys), sample, dry_run, 0)
        deleted = 0
        for start in range(0, len(keys), max(1, int(batch))):
            deleted += self._unlink(keys[start : start + max(1, int(batch))])
        return _deletion(pattern, len(keys), sample, False, deleted)

    def _unlink(self, keys: list[bytes]) -> int:
        import redis

        try:
            return int(self._call("unlink", *keys))
        except redis.ResponseError as exc:
            if "unknown command" not in str(exc).lower():
                raise
            return int(self._call("delete", *keys))


@dataclass(frozen=True)
class KeyDeletion:
    """What ``delete_keys`` deleted, or would delete when ``dry_run`` is True."""

    action: str
    object: str
    pattern: str
    matched: int
    sample: list[str]
    dry_run: bool
    deleted: int
    detail: str
    changed: bool = field(default=True)

    @property
    def before(self) -> dict[str, Any]:
        return {"keys": self.matched}

    @property
    def after(self) -> dict[str, Any]:
        return {"keys": self.matched - self.deleted}

    def __str__(self) -> str:
        return self.detail


def check_flush_pattern(pattern: str) -> str:
    """``pattern`` when it names a namespace (``session:*``); ValueError for an empty one or
    one made of wildcards only (``*`` would be a FLUSHDB)."""
    if not pattern or not str(pattern).strip():
        raise ValueError("a flush needs a key pattern such as 'session:*'")
    if not re.sub(r"[*?\[\]\\^-]", "", str(pattern)):
        raise ValueError(
            f"pattern {pattern!r} matches every key: a namespace flush needs a prefix "
            "such as 'session:*'"
        )
    return str(pattern)


def glob_match(key: str, pattern: str) -> bool:
    """Whether ``key`` matches a Redis glob (``*``, ``?``, ``[abc]``, ``[^a]``, ``\\x``)."""
    translated = re.sub(r"\[\^", "[!", pattern)
    return fnmatch.fnmatchcase(key, translated)


def key_sizes_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Rows of {key, type, bytes, ttl_seconds} as DataFrame with ``KEY_SIZE_COLUMNS``,
    biggest first; a TTL of -1 (no expiry) becomes None."""
    frame = pd.DataFrame([{c: r.get(c) for c in KEY_SIZE_COLUMNS} for r in rows])
    if frame.empty:
        frame = pd.DataFrame({c: pd.Series([], dtype="object") for c in KEY_SIZE_COLUMNS})
    ttl = pd.to_numeric(frame["ttl_seconds"], errors="coerce")
    out = pd.DataFrame(
        {
            "key": frame["key"].astype("str"),
            "type": frame["type"].astype("str"),
            "bytes": pd.to_numeric(frame["bytes"], errors="coerce").astype("Int64"),
            "ttl_seconds": ttl.where(ttl >= 0).astype("Int64"),
        }
    )
    return out.sort_values(["bytes", "key"], ascending=[False, True], na_position="last",
                           kind="stable").reset_index(drop=True)  # fmt: skip


def memory_from_info(info: Mapping[str, Any]) -> dict[str, Any]:
    """``memory()`` from an INFO dict (the memory section, or a flat INFO all)."""
    out = {name: info.get(name) for name in MEMORY_FIELDS}
    used, limit = info.get("used_memory"), info.get("maxmemory")
    out["used_ratio"] = float(used) / float(limit) if used is not None and limit else None
    return out


def _refuse_over(count: int, pattern: str, max_keys: int) -> None:
    if count > max_keys:
        raise LimitExceeded(
            f"refused: more than {max_keys} keys match {pattern!r}, over the target's "
            f"policy.max_keys_per_action ({max_keys}); narrow the pattern or raise the limit"
        )


def _deletion(
    pattern: str, matched: int, sample: list[str], dry_run: bool, deleted: int, prefix: str = ""
) -> KeyDeletion:
    shown = ", ".join(sample) + (", ..." if matched > len(sample) else "")
    if matched == 0:
        detail = f"no key matches {pattern!r}: nothing to delete"
    elif dry_run:
        detail = f"would delete {matched} key(s) matching {pattern!r} with UNLINK: {shown}"
    else:
        detail = f"deleted {deleted} of {matched} key(s) matching {pattern!r} (UNLINK): {shown}"
    return KeyDeletion(
        action="flush-keys",
        object=f"redis keys {pattern}",
        pattern=pattern,
        matched=matched,
        sample=sample,
        dry_run=dry_run,
        deleted=deleted,
        detail=prefix + detail,
        changed=matched > 0,
    )


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="backslashreplace")
    return str(value)


def hit_ratio_from_info(info: Mapping[str, Any]) -> float | None:
    """The keyspace hit ratio from an INFO dict, None when there were no lookups."""
    hits = int(info.get("keyspace_hits") or 0)
    misses = int(info.get("keyspace_misses") or 0)
    if hits + misses == 0:
        return None
    return hits / (hits + misses)


def info_section(info: Mapping[str, Any], section: str | None) -> dict[str, Any]:
    """A section of a flat ``INFO all`` dict, as far as it can be told apart: ``keyspace``
    keeps the ``db<N>`` entries; other sections get every field (a superset)."""
    if section and section.lower() == "keyspace":
        return {k: v for k, v in info.items() if k.startswith(_KEYSPACE_PREFIX) and k[2:].isdigit()}
    return dict(info)
