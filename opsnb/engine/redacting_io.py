"""A papermill I/O handler that scrubs secrets from every notebook it writes.

papermill writes the output notebook several times during a run (after cells, on autosave,
on failure). Registering this handler for the ``opsnb-redact://`` prefix routes every one of
those writes through the run's Redactor, so no intermediate file ever holds a secret.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from papermill.iorw import papermill_io

from ..secrets import Redactor

PREFIX = "opsnb-redact://"

_lock = threading.Lock()
_redactors: dict[str, Redactor] = {}
_last_written: dict[str, dict[str, Any]] = {}


class RedactingHandler:
    """Writes notebooks to local files after redaction; reads are plain local reads."""

    @staticmethod
    def _local(path: str) -> str:
        return path[len(PREFIX) :]

    def read(self, path: str) -> str:
        return Path(self._local(path)).read_text(encoding="utf-8")

    def listdir(self, path: str) -> list[str]:
        return os.listdir(self._local(path))

    def write(self, buf: str, path: str) -> None:
        local = self._local(path)
        with _lock:
            redactor = _redactors.get(local) or Redactor()
        rewrite(Path(local), json.loads(buf), redactor)

    def pretty_path(self, path: str) -> str:
        return self._local(path)


def route(local_path: Path, redactor: Redactor) -> str:
    """Register ``redactor`` for ``local_path``; return the papermill path to write to."""
    with _lock:
        _redactors[str(local_path)] = redactor
    return PREFIX + str(local_path)


def rewrite(local_path: Path, nb: dict[str, Any], redactor: Redactor) -> dict[str, Any]:
    """Write ``nb`` (the on-disk form) redacted, whole or not at all; return what was
    written."""
    data = redactor.data(nb)
    text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    tmp = f"{local_path}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(tmp, local_path)  # a reader never sees half a notebook
    with _lock:
        _last_written[str(local_path)] = data
    return data


def last_written(local_path: Path) -> dict[str, Any] | None:
    with _lock:
        return _last_written.get(str(local_path))


def release(local_path: Path) -> None:
    with _lock:
        _redactors.pop(str(local_path), None)
        _last_written.pop(str(local_path), None)


papermill_io.register(PREFIX, RedactingHandler())
