"""The fast path: the error report straight from the bytes of a log (see "Fast path" in
the package docstring).
"""

from __future__ import annotations

import dataclasses
import os
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .parse import (
    _MIX,
    _MIX2,
    _NAT,
    _NUMBER_FIELDS,
    _PAD,
    _TEXT_FIELDS,
    ERROR_LEVELS,
    LEVELS,
    _days_from_civil,
    _empty_frame,
    _slow_lines,
    _u64_view,
    _valid_day,
    parse,
)
from .report import _MINUTE_NS, LogReport, _assemble, _breakdown_frame, _time_ns

# --- fast path: the breakdown straight from the bytes ----------------------------------------
#
# Phase 1 (``_scan``), by the calling thread and the helpers, chunk by chunk: line ends,
# the first 32 bytes of every line, per-line checks of ``:SS.mmmZ`` and the level, runs of
# one 16-byte prefix; the error lines' first bytes go to the thread's ``_Batch``, whose
# ``error=`` and ``endpoint=`` values are found a batch at a time. Phase 2 (``_finish``),
# once: the runs' dates, the error lines' times, the lines for the regular expression and
# the runs for ``parse``, then ``_assemble`` as for a frame.

_CHUNK = 1 << 22  # bytes per work unit
_TAIL = 1 << 16  # the last chunk is about this small (a bytes text's is copied to pad it)
_EXT = 1024 + _PAD  # bytes readable past a chunk's end (rows and words)


def _word(raw: bytes | bytearray) -> np.uint64:
    """Little-endian 8-byte word of ``raw`` (zero-filled)."""
    return np.uint64(int.from_bytes(raw.ljust(8, b"\0"), "little"))


_Layout = tuple[np.uint64, np.uint64, np.uint64, np.uint64, np.uint64]


def _layout(pattern: bytes) -> _Layout:
    """Word masks checking 8 bytes against a pattern: ``D`` a digit, ``5`` a digit 0-5,
    anything else that exact byte (see ``_matches``)."""
    fixed, want, low, add, carry = (bytearray(8) for _ in range(5))
    for k, char in enumerate(pattern):
        if char in b"D5":
            fixed[k], want[k], low[k], carry[k] = 0xF0, 0x30, 0x0F, 0x10
            add[k] = 0x06 if char == ord("D") else 0x0A  # low nibble + add < 16
        else:
            fixed[k], want[k] = 0xFF, char
    return (_word(fixed), _word(want), _word(low), _word(add), _word(carry))


_DATE = _layout(b"DDDD-DD-")
_CLOCK = _layout(b"DDTDD:DD")
_SECONDS = _layout(b":5D.DDDZ")
_BYTES2 = np.uint64((1 << 16) - 1)
_BYTES6 = np.uint64((1 << 48) - 1)
_BYTES7 = np.uint64((1 << 56) - 1)
_INFO = _word(b" INFO ")
_WARN = _word(b" WARN ")
_ERROR = _word(b" ERROR ")
_DEBUG = _word(b" DEBUG ")
_CRITICA = _word(b" CRITICA")
_L_SPACE = _word(b"L ")
_ERROR_CODES = tuple(LEVELS.index(name) for name in ERROR_LEVELS)
_KEYS = ("error", "endpoint")
_LONG_FIELD = re.compile(rb" (error|endpoint)=([^ ]*)")
_HEAD = np.dtype("V32")
_V24 = np.dtype("V24")
# masks keeping the first n bytes (n = 0..24) of three little-endian 8-byte words
_VALUE_MASKS = np.array(
    [[(1 << (8 * min(max(n - k, 0), 8))) - 1 for k in (0, 8, 16)] for n in range(25)],
    dtype=np.uint64,
).view(_V24)[:, 0]  # one 24-byte record a row: gathered by memcpy, unlike rows of a 2-D array

_POOL: ThreadPoolExecutor | None = None
_HELPERS = -1  # not known yet
_LOCAL = threading.local()


def _helpers() -> ThreadPoolExecutor | None:
    """Threads that scan chunks besides the calling thread (one fewer than the cores)."""
    global _POOL, _HELPERS
    if _HELPERS < 0:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cores = os.cpu_count() or 1
        _HELPERS = min(cores, 8) - 1
        if _HELPERS:
            _POOL = ThreadPoolExecutor(max_workers=_HELPERS, thread_name_prefix="opsnb-logs")
        # glibc's malloc serves blocks above a threshold (128 KiB at first) with fresh mmaps
        # and gives freed heap memory back, so that the chunks' arrays (a few MB) would be
        # page-faulted in again and again: half the fast path's time on some VMs. Freeing
        # one large block raises both thresholds (its documented dynamic adjustment, which
        # any program freeing a large array gets), so that such arrays come from the heap.
        np.empty(30 << 20, dtype=np.uint8)
    return _POOL


class _Source:
    """Where the text is read from: a bytes-like object in memory."""

    def __init__(self, data: bytes | bytearray) -> None:
        self.data = data
        self.size = len(data)
        self.buf = np.frombuffer(data, dtype=np.uint8)

    def find_newline(self, pos: int) -> int:
        return self.data.find(b"\n", pos)

    def chunk(self, lo: int, hi: int) -> tuple[np.ndarray, bool]:
        """Bytes ``lo`` to ``hi`` and ``_EXT`` more (zeros past the end of the text), and
        whether there is a carriage return in ``lo:hi``."""
        if hi + _EXT <= self.size:
            ext = self.buf[lo : hi + _EXT]
        else:
            ext = np.zeros(hi - lo + _EXT, dtype=np.uint8)
            ext[: self.size - lo] = self.buf[lo:]
        return ext, self.data.find(b"\r", lo, hi) >= 0

    def read(self, start: int, end: int) -> bytes:
        return bytes(self.data[start:end])


class _FileSource(_Source):
    """A file read by offset, each thread into a buffer of its own that it keeps: no copy
    of the whole file, and no page faults on fresh memory."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd = fd
        self.size = size

    def find_newline(self, pos: int) -> int:
        while pos < self.size:
            window = os.pread(self.fd, 1 << 16, pos)
            found = window.find(b"\n")
            if found >= 0:
                return pos + found
            pos += len(window)
        return -1

    def chunk(self, lo: int, hi: int) -> tuple[np.ndarray, bool]:
        want = hi - lo + _EXT
        space: bytearray | None = getattr(_LOCAL, "buffer", None)
        if space is None or len(space) < want:
            space = _LOCAL.buffer = bytearray(max(want, _CHUNK + (1 << 16) + _EXT))
        got = os.preadv(self.fd, [memoryview(space)[:want]], lo)
        if got < want:
            space[got:want] = bytes(want - got)
        return np.frombuffer(space, dtype=np.uint8, count=want), space.find(b"\r", 0, hi - lo) >= 0

    def read(self, start: int, end: int) -> bytes:
        return os.pread(self.fd, end - start, start)


@dataclass
class _Values:
    """Values of one key in some of the error lines: the line's index, the value's length
    and its first 24 bytes as three zero-padded 8-byte words; longer values as bytes."""

    line: np.ndarray
    length: np.ndarray
    words: np.ndarray  # (n, 3) uint64
    long: dict[int, bytes]  # index into ``line`` -> the whole value

    @classmethod
    def cut(
        cls,
        flat: np.ndarray,
        words: np.ndarray,
        line: np.ndarray,
        start: np.ndarray,
        end: np.ndarray,
    ) -> _Values:
        length = end - start
        heads = np.ndarray((len(flat) - 24,), dtype=_V24, buffer=flat, strides=(1,))[start]
        parts = heads.view("<u8").reshape(-1, 3)
        masks = _VALUE_MASKS[np.minimum(length, 24)]  # zero the bytes past the value
        parts &= masks.view("<u8").reshape(-1, 3)
        long = {int(i): flat[start[i] : end[i]].tobytes() for i in np.flatnonzero(length > 24)}
        return cls(line, length, parts, long)

    def factorize(self, count: int) -> tuple[np.ndarray, list[str]]:
        """Codes (-1: missing) of ``count`` lines, and the names the codes stand for."""
        codes = np.full(count, -1, dtype=np.int64)
        names: list[str] = []
        line, length, parts, long = self.line, self.length, self.words, self.long
        if not len(line):
            return codes, names
        # a cheap hash: values that share one are told apart below, byte for byte
        with np.errstate(over="ignore"):
            h = length.astype(np.uint64) * _MIX
            h ^= parts[:, 0]
            h += parts[:, 1] * _MIX2
            h ^= parts[:, 2] * _MIX
        found, uniques = pd.factorize(h)
        first = np.zeros(len(uniques), dtype=np.int64)
        first[found[::-1]] = np.arange(len(found) - 1, -1, -1)
        model = first[found]  # each value's first occurrence: all bytes must agree
        same = length == length[model]
        for k in range(3):
            column = parts[:, k]
            same &= column == column[model]
        if not same.all():  # two values with one hash: sort them out exactly
            key = np.concatenate((length[:, None].astype(np.uint64), parts), axis=1)
            rows, found = np.unique(key, axis=0, return_inverse=True)
            found = found.reshape(-1)
            first = np.zeros(len(rows), dtype=np.int64)
            first[found[::-1]] = np.arange(len(found) - 1, -1, -1)
        for i in first.tolist():
            raw = long.get(i) or parts[i].astype("<u8").tobytes()[: length[i]]
            names.append(raw.decode("utf-8", "replace"))
        codes[line] = found
        if long:  # values longer than 24 bytes: the words held only their start
            where = np.fromiter(long, dtype=np.int64, count=len(long))
            extra, kinds = pd.factorize(np.array([long[i] for i in where.tolist()], dtype=object))
            codes[line[where]] = len(names) + extra
            names.extend(x.decode("utf-8", "replace") for x in kinds)
        return codes, names


_Fields = dict[str, tuple[np.ndarray, list[str]]]  # per key: codes (-1: none), names


@dataclass
class _Scan:
    """Phase 1's result for one chunk (run indexes are the chunk's own)."""

    lines: int
    run_w0: np.ndarray  # words at offsets 0 and 8 of each run's first line
    run_w8: np.ndarray
    run_syntax: np.ndarray  # whether those 16 bytes look like YYYY-MM-DDTHH:MM
    run_fast: np.ndarray  # lines of the run parsed in place
    run_span: np.ndarray  # (start of first line, end of last line), absolute offsets
    error_run: np.ndarray
    error_w16: np.ndarray  # ":SS.mmmZ" of the error lines
    slow_run: np.ndarray
    slow: list[bytes]  # lines for the regular expression
    fields: _Fields = dataclasses.field(default_factory=dict)  # error=, endpoint= (_Batch)


def _breakdown_source(source: _Source, errors: str) -> LogReport:
    """The report for a whole log text; ``errors`` decodes the lines that take the slow path
    (as ``parse`` has them: "replace" for bytes, "surrogateescape" for str)."""
    n = source.size
    if n == 0:
        return _breakdown_frame(_empty_frame())
    bounds = [0]
    for cut in [*range(_CHUNK, n - _TAIL, _CHUNK), n - _TAIL]:
        if cut > bounds[-1]:
            newline = source.find_newline(cut)
            if newline < 0:
                break
            if newline + 1 < n:
                bounds.append(newline + 1)
    bounds.append(n)
    spans = list(zip(bounds[:-1], bounds[1:], strict=True))

    def scan(span: tuple[int, int]) -> _Scan:
        lo, hi = span
        ext, has_cr = source.chunk(lo, hi)
        return _scan(ext, hi - lo, lo, has_cr)

    # the calling thread and the helpers take chunks in turn until none is left: when the
    # machine is busy and a helper gets no core, the calling thread does the work alone
    scans: list[_Scan | None] = [None] * len(spans)
    todo = iter(range(len(spans)))
    lock = threading.Lock()

    def work() -> None:
        batch = _batch()
        batch.clear()
        while True:
            with lock:
                i = next(todo, None)
            if i is None:
                break
            scans[i] = scan(spans[i])
        batch.flush()

    pool = _helpers()
    helping = [pool.submit(work) for _ in range(min(_HELPERS, len(spans) - 1))] if pool else []
    work()
    for future in helping:
        future.result()
    return _finish(source, [s for s in scans if s is not None], errors)


def _positions(mask: np.ndarray, limit: int) -> np.ndarray:
    """Sorted indexes below ``limit`` of the set bytes of a bool array, found 32 at a time:
    packed into bits, most 32-bit words hold no set bit and most others exactly one (lines
    are longer than 32 bytes), whose index the word's float exponent gives."""
    bits = np.packbits(mask, bitorder="little")
    words = bits[: len(bits) & ~3].view(np.uint32)
    hit = np.flatnonzero(np.not_equal(words, 0, out=_scratch("words", len(words), np.bool_)))
    value = words[hit]
    several = np.flatnonzero(value & (value - np.uint32(1)))
    many = hit[several]
    pos = value.astype(np.float64).view(np.int64)
    pos >>= 52
    pos -= 1023
    hit <<= 5
    pos += hit
    if len(several):  # words with more than one set bit (short lines): all their bits
        packed = bits[(many * 4)[:, None] + np.arange(4)]
        row, col = np.nonzero(np.unpackbits(packed, axis=1, bitorder="little"))
        col += many[row] * 32
        first = np.ones(len(row), dtype=bool)
        first[1:] = row[1:] != row[:-1]
        pos[several] = col[first]
        pos = np.insert(pos, several[row[~first]] + 1, col[~first])
    tail = np.flatnonzero(mask[len(words) * 32 :])
    if len(tail):
        pos = np.concatenate((pos, tail + len(words) * 32))
    return pos[: np.searchsorted(pos, limit)]


def _scratch(name: str, size: int, dtype: type[np.generic]) -> np.ndarray:
    """A temporary array of this thread's, kept from one call to the next."""
    space: np.ndarray | None = getattr(_LOCAL, name, None)
    if space is None or len(space) < size:
        space = np.empty(size + size // 4 + 1024, dtype=dtype)
        setattr(_LOCAL, name, space)
    return space[:size]


def _scan(ext: np.ndarray, size: int, lo: int, has_cr: bool) -> _Scan:
    """Phase 1 for ``size`` bytes of whole lines at offset ``lo`` of the text (they end after
    a newline or at the end of the text), with ``_EXT`` more readable bytes in ``ext``."""
    head = ext[: (size + 7) & ~7]
    mask = _scratch("mask", len(head), np.bool_)  # large temporaries: reused, no page faults
    np.equal(head, 10, out=mask)
    if has_cr:
        np.logical_or(mask, head == 13, out=mask)
    seps = _positions(mask, size)
    if has_cr:  # "\r\n" ends one line, a lone "\r" ends one too (as in ``parse``)
        crlf = (ext[seps] == 13) & (ext[seps + 1] == 10)
        lf_of_pair = np.zeros(len(seps), dtype=bool)
        lf_of_pair[1:] = crlf[:-1]
        ends = seps[~lf_of_pair]
        nexts = ends + 1 + crlf[~lf_of_pair]
    else:
        ends = seps
        nexts = seps + 1
    if len(ends) and nexts[-1] == size:
        starts = np.concatenate(([0], nexts[:-1]))
    else:  # the last line of the text has no newline
        starts = np.concatenate(([0], nexts))
        ends = np.append(ends, size)
    lines = len(starts)

    # the first 32 bytes of every line, as four contiguous arrays of 8-byte words
    heads32 = np.ndarray((len(ext) - 32,), dtype=_HEAD, buffer=ext, strides=(1,))[starts]
    columns = _scratch("columns", 4 * lines, np.uint64).reshape(4, lines)
    np.copyto(columns, heads32.view("<u8").reshape(-1, 4).T)
    del heads32
    w0, w8, w16, w24 = columns
    level6 = np.bitwise_and(w24, _BYTES6, out=_scratch("level6", lines, np.uint64))
    level7 = np.bitwise_and(w24, _BYTES7, out=_scratch("level7", lines, np.uint64))
    is_error = level7 == _ERROR
    fast = level6 == _INFO
    fast |= level6 == _WARN
    fast |= level7 == _DEBUG
    fast |= is_error
    critical = np.flatnonzero(w24 == _CRITICA)
    if len(critical):
        w32 = _u64_view(ext)[starts[critical] + 32]
        critical = critical[(w32 & _BYTES2) == _L_SPACE]
        fast[critical] = is_error[critical] = True
    ok16 = _matches(w16, _SECONDS)
    fast &= ok16
    is_error &= ok16
    if fast.all():
        slow = np.zeros(0, dtype=np.int64)
    else:  # a level at the end of the line, or not the documented layout
        rest = np.flatnonzero(~fast)
        codes = _levels_at(ext, starts[rest], ends[rest] - starts[rest], w24[rest])
        rest_ok = ok16[rest] & (codes >= 0)
        fast[rest] = rest_ok
        is_error[rest] = rest_ok & np.isin(codes, _ERROR_CODES)
        slow = rest[~rest_ok]

    change = w0[1:] != w0[:-1]
    change |= w8[1:] != w8[:-1]
    heads = np.concatenate(([0], np.flatnonzero(change) + 1))
    run_w0, run_w8 = w0[heads], w8[heads]
    run_syntax = _matches(run_w0, _DATE) & _matches(run_w8, _CLOCK)
    run_len = np.diff(np.append(heads, lines))
    if not run_syntax.all():  # lines that do not start with a timestamp
        inside = np.repeat(run_syntax, run_len)
        fast &= inside
        is_error &= inside
        slow = np.flatnonzero(~fast)
    slow_run = np.searchsorted(heads, slow, side="right") - 1
    run_fast = run_len - np.bincount(slow_run, minlength=len(heads))
    last = np.append(heads[1:], lines) - 1

    err = np.flatnonzero(is_error)
    # the error lines' bytes from offset 24 (the space before the level) into rows of a
    # power-of-two width that holds nearly all of them; the few longer ones go whole
    err_starts = starts[err] + 24
    row_lens = ends[err] - err_starts
    width = _batch().width_for(row_lens)
    long = np.flatnonzero(row_lens >= width)
    error_long = [
        (int(i), ext[err_starts[i] - 24 : err_starts[i] + row_lens[i]].tobytes()) for i in long
    ]
    row_lens[long] = 0
    records = np.ndarray((len(ext) - width,), np.dtype(f"V{width}"), buffer=ext, strides=(1,))
    rows = records[err_starts].view(np.uint8).reshape(-1, width)

    # the regular expression wants a digit first (a non-ASCII byte may decode to one)
    first = ext[starts[slow]]
    wanted = ((first >= 48) & (first <= 57)) | (first >= 128)
    slow, slow_run = slow[wanted], slow_run[wanted]
    scanned = _Scan(
        lines=lines,
        run_w0=run_w0,
        run_w8=run_w8,
        run_syntax=run_syntax,
        run_fast=run_fast,
        run_span=np.stack((starts[heads] + lo, ends[last] + lo), axis=1),
        error_run=np.searchsorted(heads, err, side="right") - 1,
        error_w16=w16[err],
        slow_run=slow_run,
        slow=[ext[a:b].tobytes() for a, b in zip(starts[slow], ends[slow], strict=True)],
    )
    _batch().add(scanned, rows, row_lens, error_long)
    return scanned


def _matches(w: np.ndarray, layout: _Layout) -> np.ndarray:
    """Whether each word has the layout: fixed bytes equal, digits in range."""
    fixed, want, low, add, carry = layout
    bad = np.bitwise_and(w, fixed, out=_scratch("bad", len(w), np.uint64))
    bad ^= want
    digits = np.bitwise_and(w, low, out=_scratch("digits", len(w), np.uint64))
    digits += add
    digits &= carry
    bad |= digits
    return bad == 0


def _levels_at(
    ext: np.ndarray, starts: np.ndarray, lens: np.ndarray, w24: np.ndarray
) -> np.ndarray:
    """Index into LEVELS of the word at offset 25 (as ``_fast_levels``), -1 for none."""
    codes = np.full(len(starts), -1, dtype=np.int64)
    for code, name in enumerate(LEVELS):
        raw = b" " + name.encode()
        head = raw[:8]
        match = (w24 & _word(b"\xff" * len(head))) == _word(head)
        for k in range(8, len(raw)):
            match &= ext[starts + 24 + k] == raw[k]
        end = 24 + len(raw)
        match &= (lens == end) | ((lens > end) & (ext[starts + end] == 32))
        codes[match] = code
    return codes


class _Batch:
    """The first bytes of the error lines of the chunks one thread scans, kept to find their
    fields in one go: fewer, larger numpy calls than chunk by chunk."""

    ROWS = 16_384  # error lines per batch

    def __init__(self) -> None:
        self.rows = np.zeros((0, 64), dtype=np.uint8)
        self.clear()

    def width_for(self, lens: np.ndarray) -> int:
        """Row width for lines of these lengths: a power of two, at least the width of the
        rows kept, that leaves out at most 1% of the lines (and never more than 1024)."""
        width = self.rows.shape[1] if self.owners else 64
        allowed = max(2, len(lens) // 100)
        while width < 1024 and np.count_nonzero(lens >= width) > allowed:
            width *= 2
        return width

    def clear(self) -> None:
        self.count = 0
        self.lens: list[np.ndarray] = []
        self.owners: list[tuple[_Scan, list[tuple[int, bytes]]]] = []

    def add(
        self, scan: _Scan, rows: np.ndarray, lens: np.ndarray, long: list[tuple[int, bytes]]
    ) -> None:
        width = rows.shape[1]
        if self.owners and width != self.rows.shape[1]:
            self.flush()
        if width != self.rows.shape[1]:
            self.rows = np.zeros((0, width), dtype=np.uint8)
        need = self.count + len(rows) + 1  # and a last row of zeros
        if width != self.rows.shape[1] or need > len(self.rows):
            grown = np.empty((max(need, self.ROWS + 4096), width), dtype=np.uint8)
            grown[: self.count] = self.rows[: self.count]  # same width when count > 0
            self.rows = grown
        self.rows[self.count : self.count + len(rows)] = rows
        self.count += len(rows)
        self.lens.append(lens)
        self.owners.append((scan, long))
        if self.count >= self.ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.owners:
            return
        self.rows[self.count] = 0
        found = _row_fields(self.rows[: self.count + 1], np.concatenate(self.lens))
        at = 0
        for scan, long in self.owners:
            count = len(scan.error_run)
            scan.fields = {
                key: (codes[at : at + count], names) for key, (codes, names) in found.items()
            }
            for i, line in long:  # the same search on the lines too long for a row
                values = {m[1].decode(): m[2] for m in _LONG_FIELD.finditer(line, 25)}
                for key, value in values.items():
                    codes, names = scan.fields[key]
                    codes[i] = len(names)
                    names.append(value.decode("utf-8", "replace"))
            at += count
        self.clear()


def _batch() -> _Batch:
    batch: _Batch | None = getattr(_LOCAL, "batch", None)
    if batch is None:
        batch = _LOCAL.batch = _Batch()
    return batch


def _row_fields(rows: np.ndarray, lens: np.ndarray) -> _Fields:
    """The ``error=`` and ``endpoint=`` values of lines held from their offset 24 in the rows
    of a 2-D array (``lens`` bytes of each; a power of two bytes wide; a last row of zeros),
    found as ``_fast_fields`` finds them: a key right after a space past the level (offset
    25 and on), its value up to the next space, the last one when a key repeats."""
    count, width = len(lens), rows.shape[1]
    shift = width.bit_length() - 1
    flat = rows.reshape(-1)
    body = flat[: count * width]
    words = _u64_view(flat)
    spaces = np.flatnonzero(np.equal(body, 32, out=_scratch("found", len(body), np.bool_)))
    spaces = np.append(spaces, len(body))
    keyed = np.flatnonzero(flat[spaces[:-1] + 1] == ord("e"))  # both keys start with "e"
    token = words[spaces[keyed] + 1]
    out: _Fields = {}
    for key in _KEYS:
        raw = key.encode() + b"="
        if len(raw) <= 8:
            which = keyed[(token & _word(b"\xff" * len(raw))) == _word(raw)]
        else:
            which = keyed[token == _word(raw[:8])]
            which = which[flat[spaces[which] + 9] == raw[8]]
        at = spaces[which]
        row = at >> shift
        col = at & (width - 1)
        inside = (col >= 1) & (col < lens[row])  # past the level, before the line's end
        which, at, row = which[inside], at[inside], row[inside]
        last = np.ones(len(at), dtype=bool)  # the last one in its line
        last[:-1] = row[1:] != row[:-1]
        which, at, row = which[last], at[last], row[last]
        # the value: up to the next space, or to the end of its line
        end = np.minimum(spaces[which + 1], (row << shift) + lens[row])
        out[key] = _Values.cut(flat, words, row, at + 1 + len(raw), end).factorize(count)
    return out


def _byte(words: np.ndarray, k: int) -> np.ndarray:
    return ((words >> np.uint64(8 * k)) & np.uint64(0xFF)).astype(np.int64)


def _number(words: np.ndarray, *ks: int) -> np.ndarray:
    """The decimal number in bytes ``ks`` (digits, already checked) of each word."""
    value = np.zeros(len(words), dtype=np.int64)
    for k in ks:
        value = value * 10 + (_byte(words, k) - 48)
    return value


def _finish(source: _Source, scans: list[_Scan], errors: str) -> LogReport:
    """Phase 2: the report from the chunks' scans."""
    offsets = np.cumsum([0] + [len(s.run_w0) for s in scans])

    def joined(name: str, shift: bool = False) -> np.ndarray:
        parts = [getattr(s, name) for s in scans]
        if shift:
            parts = [part + offset for part, offset in zip(parts, offsets, strict=False)]
        return np.concatenate(parts)

    # the runs' dates, checked and computed as ``_fast_times`` does
    w0, w8 = joined("run_w0"), joined("run_w8")
    year, month, day = _number(w0, 0, 1, 2, 3), _number(w0, 5, 6), _number(w8, 0, 1)
    hour, minute = _number(w8, 3, 4), _number(w8, 6, 7)
    syntax = joined("run_syntax")
    ok = syntax & (month >= 1) & (month <= 12)
    month = np.where(ok, month, 1)
    ok &= _valid_day(year, month, day) & (hour < 24) & (minute < 60)
    with np.errstate(over="ignore"):
        run_ns = ((_days_from_civil(year, month, day) * 24 + hour) * 60 + minute) * 60_000_000_000
    ok &= (year >= 1678) & (year <= 2261)  # then a run's lines are all in its minute
    odd = syntax & ~ok  # runs left to ``parse`` (30 February, year 9999)

    parts = _Parts()
    run_fast = joined("run_fast")
    keep = ok & (run_fast > 0)
    parts.minutes.append(run_ns[keep] // _MINUTE_NS)
    parts.counts.append(run_fast[keep])

    # error lines parsed in place: the time from their run and their ":SS.mmmZ"
    error_run = joined("error_run", shift=True)
    mine = ok[error_run]
    w16 = joined("error_w16")[mine]
    seconds = _number(w16, 1, 2) * 1_000_000_000 + _number(w16, 4, 5, 6) * 1_000_000
    parts.error_ns.append(run_ns[error_run[mine]] + seconds)
    for key in _KEYS:  # each batch's names once, each chunk's codes
        seen: dict[int, int] = {}
        names: list[str] = []
        codes = []
        for s in scans:
            chunk_codes, chunk_names = s.fields[key]
            if id(chunk_names) not in seen:
                seen[id(chunk_names)] = len(names)
                names.extend(chunk_names)
            codes.append(np.where(chunk_codes < 0, -1, chunk_codes + seen[id(chunk_names)]))
        parts.add_codes(key, np.concatenate(codes)[mine], names)

    # lines in other layouts: parse's regular expression; odd runs: parse itself
    keep_slow = ~odd[joined("slow_run", shift=True)]
    slow = [line for s in scans for line in s.slow]
    if keep_slow.any():
        lines = [line.decode("utf-8", errors) for line, k in zip(slow, keep_slow, strict=True) if k]
        count = len(lines)
        time_ns = np.full(count, _NAT, dtype=np.int64)
        level_codes = np.full(count, -1, dtype=np.int64)
        found = {key: np.full(count, None, dtype=object) for key in _TEXT_FIELDS}
        found.update({key: np.full(count, np.nan) for key in _NUMBER_FIELDS})
        _slow_lines(lines, np.arange(count), time_ns, level_codes, found)
        parts.add_lines(time_ns, np.isin(level_codes, _ERROR_CODES), found)
    if odd.any():
        spans = joined("run_span")[odd].tolist()
        frame = parse("\n".join(source.read(a, b).decode("utf-8", errors) for a, b in spans))
        found = {key: frame[key].to_numpy(dtype=object) for key in _KEYS}
        is_error = frame["level"].isin(ERROR_LEVELS).to_numpy(dtype=bool)
        parts.add_lines(_time_ns(frame["time"]), is_error, found)
    return parts.report(sum(s.lines for s in scans))


class _Parts:
    """Error lines and line minutes gathered from the fast path's pieces."""

    def __init__(self) -> None:
        self.minutes: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []
        self.error_ns: list[np.ndarray] = []
        self.codes: dict[str, list[np.ndarray]] = {key: [] for key in _KEYS}
        self.names: dict[str, list[str]] = {key: [] for key in _KEYS}

    def add_codes(self, key: str, codes: np.ndarray, names: list[str]) -> None:
        self.codes[key].append(np.where(codes < 0, -1, codes + len(self.names[key])))
        self.names[key].extend(names)

    def add_lines(
        self, time_ns: np.ndarray, is_error: np.ndarray, found: dict[str, np.ndarray]
    ) -> None:
        """Lines parsed one by one: their times, and those of them that are errors."""
        is_error = np.asarray(is_error, dtype=bool)
        timed = time_ns != _NAT
        self.minutes.append(time_ns[timed] // _MINUTE_NS)
        self.counts.append(np.ones(int(timed.sum()), dtype=np.int64))
        self.error_ns.append(time_ns[is_error])
        for key in _KEYS:
            codes, names = pd.factorize(found[key][is_error])
            self.add_codes(key, codes.astype(np.int64), [str(x) for x in names])

    def report(self, total_lines: int) -> LogReport:
        return _assemble(
            total_lines=total_lines,
            error_ns=np.concatenate(self.error_ns),
            type_codes=np.concatenate(self.codes["error"]),
            type_names=self.names["error"],
            endpoint_codes=np.concatenate(self.codes["endpoint"]),
            endpoint_names=self.names["endpoint"],
            line_minutes=np.concatenate(self.minutes),
            line_counts=np.concatenate(self.counts),
        )
