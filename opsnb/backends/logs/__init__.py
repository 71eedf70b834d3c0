"""Parse service log lines into a DataFrame and break errors down by type, endpoint and minute.

The log line format (docs/architecture.md; one line, wrapped here)::

    2025-01-15T14:18:02.123Z ERROR method=POST endpoint=/api/checkout status=503
        duration_ms=1520 error=PoolTimeoutError

is parsed column-wise with numpy over the bytes of the whole text, not line by line in
Python: the timestamp is read at fixed offsets, the level by its first letter, and every
``key=value`` field by locating the ``=`` signs of the known keys (in any order). Lines that
do not have the documented layout (another timestamp precision, a time zone offset, tabs) go
through a per-line regular expression; lines that still do not parse are kept with ``NaT``
time and a missing level. ``parse`` of 1,000,000 lines takes about a second here.

An *error line* is a line whose level is ``ERROR`` or ``CRITICAL``; its type is its
``error=`` field, as in the template's ``grep ERROR | awk '{print $NF}' | sort | uniq -c``.

Fast path
---------
``error_breakdown`` of a ``parse`` frame aggregates the frame. Given raw text instead
(``error_breakdown_file``, ``error_breakdown_bytes``, or ``error_breakdown`` of a str, bytes
or lines), it computes the same report (equal frames, tested) without materialising every
line: the text is read once as bytes, in chunks of whole lines scanned by the calling thread
and one helper per further core. Per chunk, numpy finds the newlines (8 bytes per
comparison, then 32 per packed word) and gathers the first 32 bytes of every line; the
fixed-width timestamp and the level at offset 25 are checked on whole 8-byte words. Lines
with the same 16-byte prefix ``YYYY-MM-DDTHH:MM`` (a minute of a time-ordered log) form runs
whose date is validated once: the lines per minute are run lengths. Only the error lines
(typically a few %) are copied out, into the rows of a 2-D array, to find their ``error=``
and ``endpoint=`` values (hashed, decoded once per distinct value); their time is their
run's minute plus their ``SS.mmm``. Lines in other layouts go through ``parse``'s regular
expression, runs with an impossible date (30 February) or a year nanoseconds cannot hold
through ``parse`` itself, so that both paths agree line for line. Each thread keeps its
read buffer and large temporaries (about 15 MB) from one call to the next.
"""

from .breakdown import error_breakdown, error_breakdown_bytes, error_breakdown_file
from .parse import ERROR_LEVELS, LEVELS, LINE_COLUMNS, NO_ERROR_FIELD, lines_of, parse
from .report import LogReport

__all__ = [
    "ERROR_LEVELS",
    "LEVELS",
    "LINE_COLUMNS",
    "NO_ERROR_FIELD",
    "LogReport",
    "error_breakdown",
    "error_breakdown_bytes",
    "error_breakdown_file",
    "lines_of",
    "parse",
]
