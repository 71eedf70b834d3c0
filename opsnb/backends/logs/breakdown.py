"""``error_breakdown``: the report of a ``parse`` frame, or of raw text by the fast path."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable

import pandas as pd

from .parse import _join_lines
from .report import LogReport, _breakdown_frame
from .scan import _breakdown_source, _FileSource, _Source


def error_breakdown(source: pd.DataFrame | Iterable[str] | str | bytes) -> LogReport:
    """Break the error lines (level ERROR or CRITICAL) down by type, endpoint and minute.

    ``source`` is a ``parse`` frame (extra columns and row filtering are fine), or raw log
    text: one ``str``/``bytes`` text or an iterable of lines. Raw text goes through the fast
    path (``error_breakdown_bytes``), which gives the same report as
    ``error_breakdown(parse(source))`` without parsing every line.
    """
    if isinstance(source, pd.DataFrame):
        return _breakdown_frame(source)
    if isinstance(source, bytes | bytearray | memoryview):
        return error_breakdown_bytes(source)
    if isinstance(source, str):
        text = source
    else:
        text, _ = _join_lines(source)
    return _breakdown_source(_Source(text.encode("utf-8", "surrogateescape")), "surrogateescape")


def error_breakdown_bytes(data: bytes | bytearray | memoryview) -> LogReport:
    """``error_breakdown(parse(data))`` for the raw bytes of a log, computed without parsing
    every line: see "Fast path" in the module docstring."""
    if not isinstance(data, bytes | bytearray):
        data = bytes(data)
    return _breakdown_source(_Source(data), "replace")


def error_breakdown_file(path: str | os.PathLike[str]) -> LogReport:
    """``error_breakdown_bytes`` of a file's contents, read once in chunks (by offset, by a
    few threads), never whole into memory."""
    with open(path, "rb", buffering=0) as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size == 0:  # a pipe, a /proc file
            return error_breakdown_bytes(handle.read())
        return _breakdown_source(_FileSource(handle.fileno(), info.st_size), "replace")
