"""Log parsing and the error breakdown, checked against independent counts."""

from __future__ import annotations

import random
import re
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass
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
    assert list(report.by_endpoint.columns) == ["endpoint", "errors", "requests", "error_share"]
    assert list(report.per_minute.columns) == ["minute", "errors", "requests"]


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

    requests = Counter(r.fields["endpoint"] for r in ref if "endpoint" in r.fields)
    failed = Counter(r.fields["endpoint"] for r in errors if "endpoint" in r.fields)
    got = report.by_endpoint.set_index("endpoint")
    assert set(got.index) == set(requests)
    for endpoint, count in requests.items():
        assert got.loc[endpoint, "requests"] == count
        assert got.loc[endpoint, "errors"] == failed[endpoint]
        assert got.loc[endpoint, "error_share"] == pytest.approx(failed[endpoint] / count)

    per_minute = report.per_minute
    assert per_minute["errors"].sum() == len(errors)
    assert per_minute["requests"].sum() == sum(requests.values())
    minutes = per_minute["minute"]
    assert (minutes.diff().dropna() == pd.Timedelta(minutes=1)).all()  # no gaps
    gap = per_minute[minutes == pd.Timestamp("2025-01-15T14:03:00Z")]
    assert gap[["errors", "requests"]].values.tolist() == [[0, 0]]
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
