"""Log parsing and the error breakdown, checked against independent counts."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from opsnb.backends import logs

DOC_LINES = [
    "2025-01-15T14:18:02.123Z ERROR method=POST endpoint=/api/checkout status=503"
    " duration_ms=1520 error=PoolTimeoutError",
    "2025-01-15T14:18:02.125Z INFO method=GET endpoint=/api/items status=200 duration_ms=12",
    "2025-01-15T14:18:03.000Z WARN event=pool_wait waiting=15",
]


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text).tz_convert("UTC")


def assert_same_report(got: logs.LogReport, want: logs.LogReport) -> None:
    """Same frames (columns, dtypes, values, order) and same scalars."""
    for name in ("by_type", "by_endpoint", "per_minute"):
        pd.testing.assert_frame_equal(getattr(got, name), getattr(want, name), obj=name)
    assert got.first_error == want.first_error
    assert (got.total_lines, got.error_lines) == (want.total_lines, want.error_lines)


def test_parse_documented_lines() -> None:
    frame = logs.parse(DOC_LINES)
    assert list(frame.columns) == logs.LINE_COLUMNS
    assert len(frame) == 3
    first = frame.iloc[0]
    assert first["time"] == ts("2025-01-15T14:18:02.123Z")
    assert str(frame["time"].dt.tz) == "UTC"
    assert first["level"] == "ERROR"
    assert (first["method"], first["endpoint"]) == ("POST", "/api/checkout")
    assert first["status"] == 503 and first["duration_ms"] == 1520.0
    assert first["error"] == "PoolTimeoutError"
    assert first["line"] == DOC_LINES[0]
    second = frame.iloc[1]
    assert second["status"] == 200 and second["duration_ms"] == 12.0 and pd.isna(second["error"])
    third = frame.iloc[2]
    assert third["level"] == "WARN" and third["time"] == ts("2025-01-15T14:18:03Z")
    assert pd.isna(third["method"]) and pd.isna(third["endpoint"]) and pd.isna(third["status"])
    assert str(frame["status"].dtype) == "Int64"


def test_text_and_lines_with_newlines_parse_the_same() -> None:
    text = "\n".join(DOC_LINES) + "\n"
    from_text = logs.parse(text)
    from_file_lines = logs.parse(line + "\n" for line in DOC_LINES)
    from_crlf = logs.parse(text.replace("\n", "\r\n"))
    pd.testing.assert_frame_equal(from_text, logs.parse(DOC_LINES))
    pd.testing.assert_frame_equal(from_file_lines, from_text)
    pd.testing.assert_frame_equal(from_crlf, from_text)


def test_unparseable_lines_are_kept() -> None:
    lines = [
        "Traceback (most recent call last):",
        "",
        '  File "app.py", line 3, in <module>',
        "2025-01-15T14:18:02.123Z NOTALEVEL method=GET",
        "2025-02-30T14:18:02.123Z ERROR error=BadDate",  # no 30 February
        "2025-01-15T14:18:02.123Z",
        DOC_LINES[0],
    ]
    frame = logs.parse(lines)
    assert len(frame) == len(lines)
    assert frame["time"].isna().tolist() == [True] * 6 + [False]
    assert frame["level"].isna().tolist() == [True] * 6 + [False]
    assert frame["method"].isna().tolist() == [True] * 6 + [False]
    assert frame["line"].tolist() == lines


def test_other_layouts_go_through_the_slow_path() -> None:
    lines = [
        "2025-01-15T14:18:02Z ERROR method=GET endpoint=/a status=500 error=NoMillis",
        "2025-01-15T15:18:02.5+01:00 WARN method=GET endpoint=/b status=200",
        "2025-01-15T14:18:02.123456Z\tINFO\tmethod=PUT endpoint=/c",
        "2025-01-15 14:18:02,250 CRITICAL error=Boom",
        "2025-01-15T14:18:02.123Z ERROR error=Late status=502 endpoint=/d method=DELETE",
    ]
    frame = logs.parse(lines)
    assert frame["time"].tolist() == [
        ts("2025-01-15T14:18:02Z"),
        ts("2025-01-15T14:18:02.5Z"),
        ts("2025-01-15T14:18:02.123456Z"),
        ts("2025-01-15T14:18:02.250Z"),
        ts("2025-01-15T14:18:02.123Z"),
    ]
    assert frame["level"].tolist() == ["ERROR", "WARN", "INFO", "CRITICAL", "ERROR"]
    assert frame["error"].tolist()[0] == "NoMillis"
    assert frame["endpoint"].tolist()[:3] == ["/a", "/b", "/c"]
    # fields in any order on a documented line
    last = frame.iloc[4]
    assert (last["method"], last["endpoint"], last["status"], last["error"]) == (
        "DELETE",
        "/d",
        502,
        "Late",
    )


def test_non_ascii_numbers_and_odd_values() -> None:
    lines = [
        "2025-01-15T14:18:02.123Z ERROR method=GET endpoint=/café status=500 error=Überlast",
        "2025-01-15T14:18:02.124Z INFO method=GET endpoint=/x status=abc duration_ms=12.75",
        "2025-01-15T14:18:02.125Z INFO method=GET endpoint=/y status=204 duration_ms=1e3",
        "2025-01-15T14:18:02.126Z INFO method=GET endpoint=/z status= duration_ms=.",
    ]
    frame = logs.parse(lines)
    assert frame["endpoint"].tolist() == ["/café", "/x", "/y", "/z"]
    assert frame["error"].iloc[0] == "Überlast"
    assert frame["status"].iloc[0] == 500 and pd.isna(frame["status"].iloc[1])
    assert frame["duration_ms"].iloc[1] == 12.75
    assert frame["duration_ms"].iloc[2] == 1000.0
    assert frame["status"].iloc[2] == 204
    assert pd.isna(frame["status"].iloc[3]) and pd.isna(frame["duration_ms"].iloc[3])


def test_empty_input() -> None:
    nothing: list[list[str] | str | bytes] = [[], "", b""]
    for empty in nothing:
        frame = logs.parse(empty)
        assert list(frame.columns) == logs.LINE_COLUMNS and len(frame) == 0
    report = logs.error_breakdown(logs.parse([]))
    assert report.total_lines == 0 and report.error_lines == 0 and report.first_error is None
    assert list(report.by_type.columns) == ["error", "count", "first_seen", "last_seen"]
    assert list(report.by_endpoint.columns) == ["endpoint", "errors", "share"]
    assert list(report.per_minute.columns) == ["minute", "errors", "lines"]
    for empty in nothing:
        assert_same_report(logs.error_breakdown(empty), report)


# --- generated lines against an independent reference ---------------------------------------

ENDPOINTS = ["/api/checkout", "/api/items", "/api/users", "/api/cart/v2"]
ERRORS = ["PoolTimeoutError", "UpstreamTimeout", "ValueError", "KeyError"]


def generate(n: int, seed: int) -> list[str]:
    """Lines in the documented format plus noise; minute 3 of the hour has no lines at all."""
    rng = random.Random(seed)
    lines = []
    base = pd.Timestamp("2025-01-15T14:00:00Z")
    for i in range(n):
        t = base + pd.Timedelta(milliseconds=i * 37)
        if t.minute == 3:
            t += pd.Timedelta(minutes=1)
        stamp = t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"
        r = rng.random()
        endpoint = rng.choice(ENDPOINTS)
        if r < 0.08:
            lines.append(
                f"{stamp} ERROR method=POST endpoint={endpoint} status=503 "
                f"duration_ms={rng.randint(1, 5000)} error={rng.choice(ERRORS)}"
            )
        elif r < 0.09:
            lines.append(f"{stamp} CRITICAL event=pool_exhausted error=PoolExhausted")
        elif r < 0.10:
            lines.append(f"{stamp} WARN event=pool_wait waiting={rng.randint(1, 30)}")
        elif r < 0.105:
            lines.append(f"    at com.example.Handler.run(Handler.java:{rng.randint(1, 99)})")
        else:
            lines.append(
                f"{stamp} INFO method=GET endpoint={endpoint} status=200 "
                f"duration_ms={rng.randint(1, 400)}"
            )
    return lines


REFERENCE = re.compile(r"^(\S+) (DEBUG|INFO|WARN|ERROR|CRITICAL) ?(.*)$")


@dataclass
class Ref:
    time: str | None
    level: str | None
    fields: dict[str, str]


def reference_parse(lines: list[str]) -> list[Ref]:
    """A plain, line-by-line parser written independently of the module."""
    rows = []
    for line in lines:
        m = REFERENCE.match(line)
        if not m:
            rows.append(Ref(None, None, {}))
            continue
        fields = dict(part.split("=", 1) for part in m.group(3).split() if "=" in part)
        rows.append(Ref(m.group(1), m.group(2), fields))
    return rows


def test_generated_lines_match_a_reference_parser() -> None:
    lines = generate(30_000, seed=7)
    frame = logs.parse(lines)
    ref = reference_parse(lines)
    assert len(frame) == len(ref)
    assert frame["level"].fillna("-").tolist() == [r.level or "-" for r in ref]
    expected_times = pd.to_datetime(
        pd.Series([r.time for r in ref], dtype="object"), utc=True, format="ISO8601"
    )
    assert frame["time"].equals(expected_times.astype("datetime64[ns, UTC]"))
    for column in ("method", "endpoint", "error"):
        expected = [r.fields.get(column, "-") for r in ref]
        assert frame[column].fillna("-").tolist() == expected, column
    expected_status = [int(r.fields["status"]) if "status" in r.fields else -1 for r in ref]
    assert frame["status"].fillna(-1).astype(int).tolist() == expected_status
    expected_duration = [
        float(r.fields["duration_ms"]) if "duration_ms" in r.fields else -1.0 for r in ref
    ]
    assert frame["duration_ms"].fillna(-1.0).tolist() == expected_duration


def test_breakdown_matches_independent_counts(tmp_path: Path) -> None:
    lines = generate(20_000, seed=11)
    report = logs.error_breakdown(logs.parse(lines))
    ref = reference_parse(lines)

    errors = [r for r in ref if r.level in ("ERROR", "CRITICAL")]
    by_type = Counter(r.fields.get("error", logs.NO_ERROR_FIELD) for r in errors)
    assert dict(zip(report.by_type["error"], report.by_type["count"], strict=True)) == by_type
    assert report.by_type["count"].is_monotonic_decreasing
    assert report.error_lines == len(errors) and report.total_lines == len(lines)
    assert report.first_error == pd.Timestamp(errors[0].time)
    kinds = report.by_type.set_index("error")
    first_pool = next(r.time for r in errors if r.fields.get("error") == "PoolExhausted")
    last_pool = [r.time for r in errors if r.fields.get("error") == "PoolExhausted"][-1]
    assert kinds.loc["PoolExhausted", "first_seen"] == pd.Timestamp(first_pool)
    assert kinds.loc["PoolExhausted", "last_seen"] == pd.Timestamp(last_pool)

    failed = Counter(r.fields["endpoint"] for r in errors if "endpoint" in r.fields)
    got = report.by_endpoint.set_index("endpoint")
    assert set(got.index) == set(failed)
    for endpoint, count in failed.items():
        assert got.loc[endpoint, "errors"] == count
        assert got.loc[endpoint, "share"] == pytest.approx(count / len(errors))
    assert report.by_endpoint["errors"].is_monotonic_decreasing

    per_minute = report.per_minute
    assert per_minute["errors"].sum() == len(errors)
    assert per_minute["lines"].sum() == sum(1 for r in ref if r.time)
    minutes = per_minute["minute"]
    assert (minutes.diff().dropna() == pd.Timedelta(minutes=1)).all()  # no gaps
    gap = per_minute[minutes == pd.Timestamp("2025-01-15T14:03:00Z")]
    assert gap[["errors", "lines"]].values.tolist() == [[0, 0]]
    in_minute_five = [r for r in errors if r.time and str(r.time).startswith("2025-01-15T14:05")]
    five = per_minute[minutes == pd.Timestamp("2025-01-15T14:05:00Z")]
    assert five["errors"].tolist() == [len(in_minute_five)]

    # the template's shell pipeline counts ERROR lines by their last field
    if shutil.which("awk") and shutil.which("sort"):
        path = tmp_path / "service.log"
        path.write_text("\n".join(lines) + "\n")
        out = subprocess.run(
            f"grep ERROR {path} | awk '{{print $NF}}' | sort | uniq -c",
            shell=True,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        shell = {
            field.split("=", 1)[1]: int(count)
            for count, field in (line.split() for line in out.strip().splitlines())
        }
        ours = dict(zip(report.by_type["error"], report.by_type["count"], strict=True))
        ours.pop("PoolExhausted")  # CRITICAL lines: `grep ERROR` does not see them
        assert ours == shell


# --- the fast path over raw text: the same report as error_breakdown(parse(...)) ------------


def edge_case_lines(n: int, seed: int) -> list[str]:
    """Documented lines mixed with every layout the parser treats specially."""
    rng = random.Random(seed)
    base = datetime(2025, 1, 15, 13, 58, tzinfo=UTC)
    lines = []
    for i in range(n):
        t = base + timedelta(milliseconds=i * 29 + rng.randrange(40))
        ms = t.microsecond // 1000
        stamp = f"{t:%Y-%m-%dT%H:%M:%S}.{ms:03d}Z"
        endpoint, error = rng.choice(ENDPOINTS), rng.choice(ERRORS)
        r = rng.random()
        if r < 0.55:
            lines.append(f"{stamp} INFO method=GET endpoint={endpoint} status=200 duration_ms=9")
        elif r < 0.62:
            lines.append(
                f"{stamp} ERROR method=POST endpoint={endpoint} status=503 "
                f"duration_ms={rng.randint(1, 5000)} error={error}"
            )
        elif r < 0.66:
            lines.append(f"{stamp} WARN event=pool_wait waiting={rng.randint(1, 30)}")
        elif r < 0.68:
            lines.append(f"{stamp} DEBUG event=cache_miss key=k{i}")
        else:
            lines.append(rng.choice(ODD_LINES)(stamp, t, endpoint, error, rng))
    # a few lines out of order (interleaved pods), so runs of one minute break up
    for _ in range(n // 50):
        i, j = rng.randrange(n), rng.randrange(n)
        lines[i], lines[j] = lines[j], lines[i]
    return lines


# (stamp, time, endpoint, error type, rng) -> line
ODD_LINES: list[Callable[[str, datetime, str, str, random.Random], str]] = [
    lambda s, t, e, x, r: f"{s} CRITICAL event=pool_exhausted error=PoolExhausted",
    lambda s, t, e, x, r: f"{s} CRITICAL event=pool_exhausted",  # no error= field
    lambda s, t, e, x, r: f"{s} ERROR method=GET endpoint={e} status=500",  # no error=
    lambda s, t, e, x, r: f"{s} ERROR error={x} status=500 endpoint={e} method=GET",
    lambda s, t, e, x, r: f"{s} ERROR endpoint=/first error=First endpoint={e} error={x}",
    lambda s, t, e, x, r: f"{s} ERROR endpoint={e} error=AVeryLongErrorTypeNameBeyond24Bytes",
    lambda s, t, e, x, r: f"{s} ERROR endpoint=/api/a/rather/long/path/beyond/24 error={x}",
    lambda s, t, e, x, r: f"{s} ERROR error= endpoint=",  # empty values
    lambda s, t, e, x, r: f"{s} ERROR xerror=NotAKey endpoint={e}",
    lambda s, t, e, x, r: f"{s} ERROR",  # level at the end of the line
    lambda s, t, e, x, r: f"{s} INFO",
    lambda s, t, e, x, r: f"{s} CRITICAL",
    lambda s, t, e, x, r: f"{s} ERROR method=GET endpoint=/café status=500 error=Überlast",
    lambda s, t, e, x, r: f"{s} ERROR msg={'x' * r.randint(980, 1200)} endpoint={e} error={x}",
    lambda s, t, e, x, r: f"{s} ERROR m={'y' * r.randint(20, 110)} error={x}",  # row widths
    lambda s, t, e, x, r: f"{s} INFO method=GET endpoint={e} status=200 msg=ERROR",
    lambda s, t, e, x, r: f"{s} ERRORS error=NotALevel",
    lambda s, t, e, x, r: f"{s}\tERROR\terror=Tabbed endpoint={e}",  # the regex path
    lambda s, t, e, x, r: f"{t:%Y-%m-%d %H:%M:%S},{t.microsecond // 1000:03d} ERROR error=Comma",
    lambda s, t, e, x, r: f"{t:%Y-%m-%dT%H:%M:%S}Z ERROR error=NoMillis endpoint={e}",
    lambda s, t, e, x, r: f"{t:%Y-%m-%dT%H:%M:%S}.5+01:00 CRITICAL error=Offset",
    lambda s, t, e, x, r: f"{s} error error=Lowercase",
    lambda s, t, e, x, r: f"{s} WARNING event=slow",
    lambda s, t, e, x, r: f"{s[:17]}61.000Z ERROR error=Second61",  # seconds out of range
    lambda s, t, e, x, r: f"{s[:19]}.12Z ERROR error=ShortMillis",
    lambda s, t, e, x, r: f"2025-02-30T{s[11:]} ERROR error=NoSuchDay",  # parse's own path
    lambda s, t, e, x, r: f"2025-13-01T{s[11:]} ERROR error=NoSuchMonth",
    lambda s, t, e, x, r: f"9999-01-01T{s[11:]} ERROR error=FarFuture",
    lambda s, t, e, x, r: f"1600-01-01T{s[11:]} INFO method=GET",
    lambda s, t, e, x, r: "Traceback (most recent call last):",
    lambda s, t, e, x, r: f"    at com.example.Handler.run(Handler.java:{r.randint(1, 99)})",
    lambda s, t, e, x, r: "",
    lambda s, t, e, x, r: s,  # a timestamp alone
    lambda s, t, e, x, r: f"{s[:10]}",
    lambda s, t, e, x, r: f"{s} ERROR error=Bad\udcffByte endpoint={e}",  # surrogateescape
]


def join_with_line_ends(lines: list[str], rng: random.Random, final: bool) -> str:
    """The lines joined by "\n", some by "\r\n" or a lone "\r"; a final line end or not."""
    ends = rng.choices(["\n", "\r\n", "\r"], weights=[90, 8, 2], k=len(lines))
    if not final:
        ends[-1] = ""
    return "".join(line + end for line, end in zip(lines, ends, strict=True))


@pytest.fixture(params=[1 << 22, 4096], ids=["one-chunk", "small-chunks"])
def chunk_size(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    """The fast path with its usual chunks, and with many small ones (line ends, runs
    and error lines across chunk boundaries)."""
    monkeypatch.setattr(logs.scan, "_CHUNK", request.param)
    monkeypatch.setattr(logs.scan, "_TAIL", min(request.param // 4, 1 << 16))
    return int(request.param)


@pytest.mark.parametrize("seed", [3, 4])
@pytest.mark.parametrize("final", [True, False], ids=["final-newline", "no-final-newline"])
def test_fast_path_gives_the_same_report(
    tmp_path: Path, chunk_size: int, seed: int, final: bool
) -> None:
    rng = random.Random(seed)
    text = join_with_line_ends(edge_case_lines(6_000, seed), rng, final)
    data = text.encode("utf-8", "surrogateescape")
    want = logs.error_breakdown(logs.parse(data))
    assert want.error_lines > 300 and len(want.by_type) > 10  # the cases are there

    assert_same_report(logs.error_breakdown_bytes(data), want)
    path = tmp_path / "service.log"
    path.write_bytes(data)
    assert_same_report(logs.error_breakdown_file(path), want)
    assert_same_report(logs.error_breakdown(data), want)
    # str and lists of lines: as parse has them (lone surrogates kept on the slow path)
    assert_same_report(logs.error_breakdown(text), logs.error_breakdown(logs.parse(text)))
    lines = edge_case_lines(2_000, seed + 10)
    assert_same_report(logs.error_breakdown(lines), logs.error_breakdown(logs.parse(lines)))
    with_ends = [line + "\n" for line in lines]  # as a file object gives them
    assert_same_report(logs.error_breakdown(with_ends), logs.error_breakdown(logs.parse(lines)))


def test_fast_path_on_documented_and_generated_lines(tmp_path: Path, chunk_size: int) -> None:
    for lines in (DOC_LINES, generate(20_000, seed=5), ["no timestamp at all"]):
        want = logs.error_breakdown(logs.parse(lines))
        data = ("\n".join(lines) + "\n").encode()
        assert_same_report(logs.error_breakdown_bytes(data), want)
        path = tmp_path / "service.log"
        path.write_bytes(data)
        assert_same_report(logs.error_breakdown_file(path), want)
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    assert_same_report(logs.error_breakdown_file(empty), logs.error_breakdown(logs.parse([])))
    one = logs.error_breakdown_bytes(DOC_LINES[0].encode())  # one line, no newline
    assert (one.total_lines, one.error_lines) == (1, 1)
    assert one.by_type["error"].tolist() == ["PoolTimeoutError"]
    assert one.by_endpoint[["endpoint", "errors"]].values.tolist() == [["/api/checkout", 1]]


def test_frames_with_more_columns_and_fewer_rows_still_work() -> None:
    """What runbooks pass: service_logs() adds a pod column and keeps a time window."""
    frame = logs.parse(generate(5_000, seed=9)).assign(pod="payments-7d9f")
    window = frame[frame["time"] >= pd.Timestamp("2025-01-15T14:01:00Z")]
    report = logs.error_breakdown(window.reset_index(drop=True))
    assert report.total_lines == len(window)
    assert report.per_minute["minute"].min() == pd.Timestamp("2025-01-15T14:01:00Z")
    assert report.error_lines == int(window["level"].isin(logs.ERROR_LEVELS).sum())
