"""Secret references and the redactor that keeps their values out of every record.

A secret is never written in a config file or passed as a runbook parameter. The config
holds a reference, ``{env: NAME}`` or ``{file: /path}``, resolved only where the value is
used (the backend connection inside the kernel). The engine resolves the same references
to scrub their values from the executed notebook, its HTML, result.json and logs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError, SecretError

REDACTED = "[redacted]"


@dataclass(frozen=True)
class SecretRef:
    """Where a secret's value lives: an environment variable or a file."""

    env: str | None = None
    file: str | None = None

    @classmethod
    def parse(cls, raw: Any, *, where: str) -> SecretRef:
        """Build a reference from config: ``{env: NAME}``, ``{file: PATH}`` or ``"env:NAME"``."""
        if isinstance(raw, str) and raw.startswith(("env:", "file:")):
            kind, _, value = raw.partition(":")
            raw = {kind: value}
        if isinstance(raw, Mapping) and len(raw) == 1:
            ((kind, value),) = raw.items()
            if kind in ("env", "file") and isinstance(value, str) and value:
                return cls(**{kind: value})
        raise ConfigError(
            f"{where} must be a secret reference such as {{env: VARIABLE_NAME}} or "
            "{file: /path/to/secret}; literal secrets are not accepted in config files"
        )

    def describe(self) -> str:
        return f"env:{self.env}" if self.env else f"file:{self.file}"

    def resolve(self) -> str:
        """Return the secret's value, or raise SecretError saying which reference failed."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise SecretError(
                    f"environment variable {self.env} is not set (needed for a secret)",
                    reference=self.describe(),
                )
            return value
        assert self.file is not None
        try:
            return Path(self.file).expanduser().read_text().strip()
        except OSError as exc:
            raise SecretError(
                f"cannot read secret file {self.file}: {exc.strerror}", reference=self.describe()
            ) from None

    def try_resolve(self) -> str | None:
        try:
            return self.resolve()
        except SecretError:
            return None


# Parameters whose names look like this are redacted from result.json even if not secrets.
SENSITIVE_NAME = re.compile(r"(pass(word)?|secret|token|api[_-]?key|dsn|credential)", re.I)


class Redactor:
    """Replaces known secret values (and the password part of URLs) with ``[redacted]``."""

    # user:password@host in URLs and DSNs, whatever the scheme.
    _URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://[^:/@\s]*:)(?P<pw>[^@\s]+)(?=@)")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first so a secret that contains another is removed whole.
        self._values = sorted({s for s in secrets if s and len(s) >= 3}, key=len, reverse=True)

    def __bool__(self) -> bool:
        return True

    def text(self, value: str) -> str:
        for secret in self._values:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return self._URL_PASSWORD.sub(lambda m: m.group("scheme") + REDACTED, value)

    def data(self, value: Any) -> Any:
        """Redact every string inside nested dicts and lists."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value

    def parameters(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Redact parameter values, hiding any whose name says it is sensitive."""
        return {
            k: (REDACTED if SENSITIVE_NAME.search(k) and v not in (None, "") else self.data(v))
            for k, v in params.items()
        }
