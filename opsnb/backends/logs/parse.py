"""Parse service log lines into a DataFrame, column-wise with numpy.

The line format, the fields and how lines in other layouts are read: see the package
docstring (``opsnb.backends.logs``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import pandas as pd

LEVELS = ("DEBUG", "INFO", "WARN", "ERROR", "CRITICAL")
ERROR_LEVELS = ("ERROR", "CRITICAL")
LINE_COLUMNS = ["time", "level", "method", "endpoint", "status", "duration_ms", "error", "line"]
NO_ERROR_FIELD = "(no error field)"

_TEXT_FIELDS = ("method", "endpoint", "error")
_NUMBER_FIELDS = ("status", "duration_ms")
_PAD = 64  # zero bytes after the text so fixed-offset reads never leave the buffer
_NAT = np.iinfo(np.int64).min

# per-line fallback for lines that are not in the exact documented layout
_SLOW_LINE = re.compile(
    r"^(?P<time>\d{4}-\d\d-\d\d[T ]\d\d:\d\d(?::\d\d(?:[.,]\d+)?)?(?:Z|[+-]\d\d:?\d\d)?)"
    r"\s+(?P<level>[A-Za-z]+)(?=\s|$)(?P<rest>.*)$"
)
_SLOW_FIELD = re.compile(r"(?:^|\s)(method|endpoint|status|duration_ms|error)=(\S+)")


# --- parse ----------------------------------------------------------------------------------


def parse(lines: Iterable[str] | str | bytes) -> pd.DataFrame:
    """Parse log lines (an iterable of lines, or one text) into one row per line.

    Columns:

    - ``time``: tz-aware UTC ``Timestamp`` (``NaT`` when the line does not parse)
    - ``level``: ``DEBUG INFO WARN ERROR CRITICAL`` (missing when the line does not parse)
    - ``method``, ``endpoint``, ``error``: strings from the ``key=value`` fields, or missing
    - ``status``: ``Int64`` (nullable) HTTP status
    - ``duration_ms``: float, ``NaN`` when absent
    - ``line``: the line itself, without its newline
    """
    text, line_list = _split(lines)
    n = len(line_list)
    if n == 0:
        return _empty_frame()
    data = text.encode("utf-8", "surrogateescape")
    buf = np.frombuffer(data, dtype=np.uint8)
    if len(data) == len(text):  # ASCII: byte offsets are character offsets
        lens = np.fromiter(map(len, line_list), dtype=np.int64, count=n)
        starts = np.zeros(n, dtype=np.int64)
        if n > 1:
            np.cumsum(lens[:-1] + 1, out=starts[1:])
    else:
        body = len(data) - _PAD - 1
        newlines = np.flatnonzero(buf[:body] == 10)
        starts = np.concatenate(([0], newlines + 1)).astype(np.int64)
        ends = np.append(newlines, body).astype(np.int64)
        lens = ends - starts

    time_ns, ok = _fast_times(buf, starts, lens)
    level_codes = _fast_levels(buf, starts, lens, ok)
    ok &= level_codes >= 0
    level_codes[~ok] = -1
    time_ns[~ok] = _NAT

    fields = _fast_fields(data, buf, starts, lens, ok)

    slow = np.flatnonzero(~ok)
    if len(slow):
        _slow_lines(line_list, slow, time_ns, level_codes, fields)

    level_names = np.array([*LEVELS, None], dtype=object)
    level = level_names[level_codes]  # code -1 picks the trailing None
    frame = pd.DataFrame(
        {
            "time": pd.Series(time_ns.view("M8[ns]")).dt.tz_localize("UTC"),
            "level": pd.Series(level, dtype="str"),
            "method": pd.Series(fields["method"], dtype="str"),
            "endpoint": pd.Series(fields["endpoint"], dtype="str"),
            "status": pd.array(_integers(fields["status"]), dtype="Int64"),
            "duration_ms": fields["duration_ms"],
            "error": pd.Series(fields["error"], dtype="str"),
            "line": pd.Series(line_list, dtype="str"),
        }
    )
    return frame


def _empty_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "time": pd.Series([], dtype="datetime64[ns, UTC]"),
            "level": pd.Series([], dtype="str"),
            "method": pd.Series([], dtype="str"),
            "endpoint": pd.Series([], dtype="str"),
            "status": pd.array([], dtype="Int64"),
            "duration_ms": pd.Series([], dtype="float64"),
            "error": pd.Series([], dtype="str"),
            "line": pd.Series([], dtype="str"),
        }
    )


def lines_of(lines: Iterable[str] | str | bytes) -> list[str]:
    """The lines ``parse`` would read from ``lines`` (a text, bytes or an iterable of lines),
    without their line ends."""
    return _split(lines)[1]


def _split(lines: Iterable[str] | str | bytes) -> tuple[str, list[str]]:
    """The list of lines, and one text holding them: the lines joined by ``\n``, one more
    ``\n`` and zero padding (so the body has exactly one ``\n`` between lines)."""
    if isinstance(lines, bytes | bytearray):
        lines = bytes(lines).decode("utf-8", "replace")
    if isinstance(lines, str):
        if not lines:
            return "", []
        text = lines
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        line_list = text.split("\n")
        if text.endswith("\n"):
            line_list.pop()  # the newline that ends the last line starts no new line
        else:
            text += "\n"
    else:
        text, line_list = _join_lines(lines)
    if not line_list:
        return "", []
    return "".join((text, "\0" * _PAD)), line_list


def _join_lines(lines: Iterable[str]) -> tuple[str, list[str]]:
    """An iterable of lines as one text (each line ended by ``\n``) and the list of lines.
    Items may carry their own line ends (a file object) or hold several lines."""
    line_list = list(lines)
    for item in line_list:
        if not isinstance(item, str):
            raise TypeError(f"log lines must be str, not {type(item).__name__}")
    if not line_list:
        return "", []
    text = "\n".join(line_list)
    if text.count("\n") != len(line_list) - 1 or "\r" in text:
        # lines carrying their own newlines (a file object) or several lines per item
        text = "\n".join(x.rstrip("\r\n") for x in line_list)
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        line_list = text.split("\n")
    return text + "\n", line_list


def _u64_view(buf: np.ndarray) -> np.ndarray:
    """Unaligned little-endian 8-byte words starting at every byte offset."""
    return np.ndarray(shape=(len(buf) - 8,), dtype="<u8", buffer=buf, strides=(1,))


def _fast_times(
    buf: np.ndarray, starts: np.ndarray, lens: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Epoch nanoseconds of ``YYYY-MM-DDTHH:MM:SS.mmmZ`` at the start of each line."""
    ok = lens >= 24

    def at(k: int) -> np.ndarray:
        return buf[starts + k].astype(np.int64)

    for offset, char in ((4, "-"), (7, "-"), (10, "T"), (13, ":"), (16, ":"), (19, "."), (23, "Z")):
        ok &= at(offset) == ord(char)

    def number(*offsets: int) -> np.ndarray:
        nonlocal ok
        value = np.zeros(len(starts), dtype=np.int64)
        for k in offsets:
            d = at(k) - 48
            ok &= (d >= 0) & (d <= 9)
            value = value * 10 + d
        return value

    year = number(0, 1, 2, 3)
    month = number(5, 6)
    day = number(8, 9)
    hour = number(11, 12)
    minute = number(14, 15)
    second = number(17, 18)
    milli = number(20, 21, 22)
    ok &= (month >= 1) & (month <= 12)
    month = np.where(ok, month, 1)
    ok &= _valid_day(year, month, day)
    ok &= (hour < 24) & (minute < 60) & (second < 60)
    days = _days_from_civil(year, month, day)
    seconds = ((days * 24 + hour) * 60 + minute) * 60 + second
    ns = seconds * 1_000_000_000 + milli * 1_000_000
    ns[~ok] = _NAT
    return ns, ok


_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _valid_day(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Whether ``day`` exists in ``month`` (1-12) of ``year``."""
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    return (day >= 1) & (day <= _MONTH_DAYS[month] + ((month == 2) & leap))


def _days_from_civil(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y = year - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def _fast_levels(
    buf: np.ndarray, starts: np.ndarray, lens: np.ndarray, ok: np.ndarray
) -> np.ndarray:
    """Index into LEVELS of the word after the timestamp, -1 when it is not a level."""
    codes = np.full(len(starts), -1, dtype=np.int64)
    candidates = np.flatnonzero(ok & (lens >= 28))
    candidates = candidates[buf[starts[candidates] + 24] == 32]
    first = buf[starts[candidates] + 25]
    for code, word in enumerate(LEVELS):
        raw = word.encode()
        idx = candidates[first == raw[0]]
        for i in range(1, len(raw)):
            idx = idx[buf[starts[idx] + 25 + i] == raw[i]]
        end = 25 + len(raw)
        terminated = (lens[idx] == end) | (buf[starts[idx] + end] == 32)
        codes[idx[terminated]] = code
    return codes


def _fast_fields(
    data: bytes, buf: np.ndarray, starts: np.ndarray, lens: np.ndarray, ok: np.ndarray
) -> dict[str, np.ndarray]:
    """The known ``key=value`` fields of the lines that parsed (others stay missing)."""
    n = len(starts)
    out: dict[str, np.ndarray] = {}
    equals = np.flatnonzero(buf == 61)
    equals = equals[equals > 30]  # a key needs 25 + level + space + 5 bytes before its "="
    before = buf[equals - 1]
    spaces = np.flatnonzero(buf == 32)
    spaces = np.append(spaces, len(buf))
    words = _u64_view(buf)
    for key in (*_TEXT_FIELDS, *_NUMBER_FIELDS):
        raw = key.encode()
        k = len(raw)
        pos = equals[before == raw[-1]]
        for i in range(k - 2, -1, -1):
            pos = pos[buf[pos - k + i] == raw[i]]
        pos = pos[buf[pos - k - 1] == 32]
        line = np.searchsorted(starts, pos, side="right") - 1
        keep = ok[line] & (pos - starts[line] > 25 + k)
        pos, line = pos[keep], line[keep]
        vstart = pos + 1
        vend = np.minimum(spaces[np.searchsorted(spaces, vstart)], starts[line] + lens[line])
        if key in _TEXT_FIELDS:
            column = np.full(n, None, dtype=object)
            values, codes = _factorize_slices(data, words, vstart, vend)
            column[line] = values[codes]
        else:
            column = np.full(n, np.nan, dtype=np.float64)
            column[line] = _numbers(data, buf, vstart, vend)
        out[key] = column
    return out


_MIX = np.uint64(0x9E3779B97F4A7C15)
_MIX2 = np.uint64(0xC2B2AE3D27D4EB4F)
_LOW_BYTES = np.array([(1 << (8 * r)) - 1 for r in range(8)] + [2**64 - 1], dtype=np.uint64)


def _factorize_slices(
    data: bytes | np.ndarray, words: np.ndarray, vstart: np.ndarray, vend: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values among byte slices (as str) and each slice's code, via a 64-bit hash
    computed 8 bytes at a time; the few distinct values are decoded once."""
    length = vend - vstart
    h = length.astype(np.uint64) * _MIX
    longest = int(length.max()) if len(length) else 0
    with np.errstate(over="ignore"):
        for offset in range(0, longest, 8):
            live = np.flatnonzero(length > offset)
            remaining = np.minimum(length[live] - offset, 8)
            word = words[vstart[live] + offset] & _LOW_BYTES[remaining]
            x = h[live] ^ word
            x = (x ^ (x >> np.uint64(29))) * _MIX
            h[live] = x ^ (x >> np.uint64(32))
    codes, uniques = pd.factorize(h)
    first = np.zeros(len(uniques), dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
    values = np.array(
        [bytes(data[vstart[i] : vend[i]]).decode("utf-8", "replace") for i in first],
        dtype=object,
    )
    return values, codes


def _numbers(data: bytes, buf: np.ndarray, vstart: np.ndarray, vend: np.ndarray) -> np.ndarray:
    """Decimal numbers (digits with at most one point) read column-wise; anything else is
    converted one by one with ``float`` (NaN when it is not a number)."""
    length = vend - vstart
    mantissa = np.zeros(len(vstart), dtype=np.int64)
    decimals = np.zeros(len(vstart), dtype=np.int64)
    seen_point = np.zeros(len(vstart), dtype=bool)
    good = (length > 0) & (length <= 15)
    longest = int(min(length.max(), 15)) if len(length) else 0
    for j in range(longest):
        live = length > j
        c = buf[np.minimum(vstart + j, len(buf) - 1)].astype(np.int64)
        digit = live & (c >= 48) & (c <= 57)
        point = live & (c == 46)
        good &= ~live | digit | (point & ~seen_point)
        mantissa = np.where(digit, mantissa * 10 + (c - 48), mantissa)
        decimals += digit & seen_point
        seen_point |= point
    good &= ~(seen_point & (length == 1))
    result = mantissa / np.power(10.0, decimals)
    for i in np.flatnonzero(~good):
        try:
            result[i] = float(data[vstart[i] : vend[i]])
        except ValueError:
            result[i] = np.nan
    return result


def _integers(values: np.ndarray) -> np.ndarray:
    """Floats that are whole numbers, NaN for the rest (so they convert to ``Int64``)."""
    whole = np.isfinite(values) & (np.abs(values) < 2**53)
    whole &= np.floor(np.where(whole, values, 0)) == np.where(whole, values, 0)
    return np.where(whole, values, np.nan)


def _slow_lines(
    line_list: list[str],
    rows: np.ndarray,
    time_ns: np.ndarray,
    level_codes: np.ndarray,
    fields: dict[str, np.ndarray],
) -> None:
    """Parse lines the fast path rejected with a regular expression, in place."""
    level_index = {name: i for i, name in enumerate(LEVELS)}
    level_index["WARNING"] = level_index["WARN"]
    matched: list[tuple[int, str, int, str]] = []
    for i in rows:
        m = _SLOW_LINE.match(line_list[i])
        if m is None:
            continue
        code = level_index.get(m["level"].upper(), -1)
        if code >= 0:
            matched.append((int(i), m["time"], code, m["rest"]))
    if not matched:
        return
    stamps = pd.to_datetime(
        pd.Series([t.replace(",", ".") for _, t, _, _ in matched]),
        format="ISO8601",
        utc=True,
        errors="coerce",
    )
    nanos = stamps.dt.as_unit("ns").to_numpy(dtype="M8[ns]").view(np.int64)
    for (i, _, code, rest), ns in zip(matched, nanos, strict=True):
        if ns == _NAT:
            continue
        time_ns[i] = ns
        level_codes[i] = code
        for key, value in _SLOW_FIELD.findall(rest):
            if key in _TEXT_FIELDS:
                fields[key][i] = value
            else:
                try:
                    fields[key][i] = float(value)
                except ValueError:
                    fields[key][i] = np.nan
