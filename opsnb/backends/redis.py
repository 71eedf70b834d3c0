"""Redis: PING, INFO and the cache hit ratio (the template's "Cache Operations").

    cache = RedisBackend("redis://127.0.0.1:6379/0", password=secret)
    cache.hit_ratio()        # keyspace_hits / (hits + misses), None before any lookup

``redis`` is imported on first use. Retries are off, so a down server fails within
``timeout`` seconds with ``BackendUnavailable("redis", reason)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from ..errors import BackendUnavailable

__all__ = ["RedisBackend", "hit_ratio_from_info", "info_section"]

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

    def _call(self, what: str, *args: Any) -> Any:
        import redis

        client = self._redis()
        try:
            return getattr(client, what)(*args)
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
