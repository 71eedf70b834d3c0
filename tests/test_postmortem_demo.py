"""`opsnb demo` takes the payments incident of 2025-01-15 from its alert to its postmortem;
the postmortem's figures are checked against the recorded metrics (metrics.json, read
here with plain json), and its HTML is opened in headless Chromium, offline."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from opsnb.config import DEMO_SNAPSHOTS

BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # no network at all: any request that is not file: or data: fails
    "--proxy-server=http://127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND",
]
ERRORS = (
    'sum(rate(http_requests_total{service="payments", status=~"5.."}[5m])) / '
    'sum(rate(http_requests_total{service="payments"}[5m]))'
)
THROUGHPUT = 'sum(rate(http_requests_total{service="payments"}[5m]))'


def opsnb(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "opsnb"), *args], capture_output=True, text=True, timeout=300)


def stamp(clock: str) -> float:
    return datetime.fromisoformat(f"2025-01-15T{clock}:00+00:00").timestamp()


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("demo-flow")
    done = opsnb("demo", "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    folder = out / "postmortems" / "INC-0001"
    return {
        "out": out,
        "stdout": done.stdout,
        "folder": folder,
        "summary": json.loads((folder / "postmortem.json").read_text()),
        "markdown": (folder / "postmortem.md").read_text(),
        "html": (folder / "postmortem.html").read_text(),
    }


@pytest.fixture(scope="module")
def recorded() -> dict[str, dict[float, float]]:
    """The payments metrics as recorded: query -> {unix time: value}."""
    data = json.loads((DEMO_SNAPSHOTS / "payments" / "metrics.json").read_text())
    return {
        s["query"]: {float(t): float(v) for t, v in s["values"]}
        for s in data["series"]
        if not s["metric"]
    }


def test_demo_prints_where_each_piece_is(demo):
    stdout, out = demo["stdout"], demo["out"]
    assert "opened from the HighErrorRate alert at 14:20 UTC" in stdout
    assert f"{out / 'incidents' / 'INC-0001'}" in stdout
    assert "attached to INC-0001" in stdout
    assert "mitigation at 14:40 UTC (taken, from the record)" in stdout
    assert "resolved at 15:15 UTC" in stdout
    assert f"markdown: {demo['folder'] / 'postmortem.md'}" in stdout
    assert f"html:     {demo['folder'] / 'postmortem.html'}" in stdout
    # only the two diagnosis runs are run folders; the postmortem copies are not
    assert len(list(out.rglob("result.json"))) == 2


def test_timeline_has_alert_run_action_and_resolution_in_order(demo):
    rows = demo["summary"]["timeline"]
    kinds = [(r["at"][11:16], r["kind"], r["text"]) for r in rows]

    def where(clock: str, kind: str, text: str) -> int:
        found = [i for i, (c, k, t) in enumerate(kinds) if c == clock and k == kind and text in t]
        assert found, (clock, kind, text, kinds)
        return found[0]

    alert = where("14:20", "alert", "HighErrorRate")
    run = where("14:30", "run", "high-error-rate")
    staged = where("14:30", "action", "scale deployment/payments: previewed")
    taken = where("14:40", "action", "scale-connection-pool")
    resolved = where("15:15", "status", "Incident resolved")
    assert alert < run < staged < taken < resolved
    assert "taken, from the record" in kinds[taken][2]
    assert [r["at"] for r in rows] == sorted(r["at"] for r in rows)
    md = demo["markdown"]
    for clock, text in (
        ("14:20", "Alert `HighErrorRate` firing"),
        ("14:30", "Runbook `high-error-rate` on demo/payments"),
        ("14:40", "Action scale-connection-pool"),
        ("15:15", "Incident resolved"),
    ):
        assert re.search(rf"^\| {clock} \| {re.escape(text)}", md, re.M), text
    assert "```mermaid\ngantt" in md
    for section in ("Detection", "Response", "Mitigation", "Recovery"):
        assert f"section {section}" in md


def test_impact_matches_the_recorded_metrics(demo, recorded):
    errors, rps = recorded[ERRORS], recorded[THROUGHPUT]
    impact = demo["summary"]["impact"]
    # the error rate first above its 0.1% SLO, in the breach the 14:20 alert saw
    start = max(t for t in errors if t <= stamp("14:20") and errors[t] <= 0.001) + 60
    assert start == stamp("14:11")
    end = stamp("15:15")
    peak = max((t for t in errors if start <= t <= end), key=errors.get)
    assert (peak, round(errors[peak], 4)) == (stamp("14:25"), 0.187)
    # failed: samples in (start, end + 5m]; total: in (start, end] moved by 2.5 min
    failed = sum(errors[t] * rps[t] * 60 for t in errors if start < t <= end + 300)
    total = sum(rps[t] * 60 for t in rps if start + 150 < t <= end + 150)
    availability = 1 - failed / total
    assert impact["impact_start"] == "2025-01-15T14:11:00Z"
    assert impact["error_rate_peak"] == {
        "value": pytest.approx(0.187),
        "at": "2025-01-15T14:25:00Z",
    }
    assert impact["failed_requests"] == pytest.approx(failed)
    assert impact["total_requests"] == pytest.approx(total)
    assert impact["availability"] == pytest.approx(availability)
    assert impact["budget_minutes"] == pytest.approx(43.2)
    consumed = (1 - availability) * (end - start) / 60
    assert impact["budget_remaining_minutes"] == pytest.approx(43.2 - consumed)
    md = demo["markdown"]
    assert f"| Failed Requests (5xx, from the metrics) | {round(failed):,} |" in md
    assert (
        f"| Availability | 99.9% | {availability:.2%} | {43.2 - consumed:.1f} min of 43.2 min |"
        in md
    )
    assert "| Error Rate | 0.10% | 18.70% peak at 14:25;" in md
    assert "**Duration**: 1 hour 4 minutes (14:11 to 15:15 UTC" in md
    # detection: the alert at 14:20, 9 minutes after the impact began
    figures = {m["name"]: m for m in demo["summary"]["detection"]}
    assert figures["Time to detect"]["seconds"] == 9 * 60
    assert figures["Time to acknowledge"]["seconds"] == 2 * 60
    assert figures["Time to mitigate"]["seconds"] == 29 * 60
    assert figures["Time to resolve"]["seconds"] == 64 * 60
    # the appendix's table has the template's rows
    assert "| 14:25 | 18.70% |" in md and "| 14:30 | 100 | 0 | 156 |" in md


def test_root_cause_and_action_items_come_from_the_record(demo):
    md = demo["markdown"]
    whys = md[md.index("opsnb:free-text five-whys") :]
    assert "connection pool was exhausted (up to 156 requests waiting" in whys[:600]
    assert "| Primary | the application could not get database connections" in md
    assert (
        "| AI-1 | Add connection pool utilization alert (80% threshold) | @sre-engineer | "
        "2025-01-20 | OPS-1234 | P1 |" in md
    )
    assert "### Immediate (This Week)" in md and "### Long-term (This Quarter)" in md
    assert "| Incident Commander | @engineer |" in md


def test_appendix_holds_the_notebook_and_its_charts(demo):
    folder, summary = demo["folder"], demo["summary"]
    (run,) = summary["runs"]
    assert (folder / run["notebook"]).suffix == ".ipynb" and (folder / run["notebook"]).is_file()
    assert (folder / run["html"]).suffix == ".html" and (folder / run["html"]).is_file()
    assert len(run["figures"]) >= 5
    for figure in run["figures"]:
        assert (folder / figure["path"]).read_bytes()[:4] == b"\x89PNG"
        assert figure["caption"].startswith("A1.")
    assert set(summary["images"]) == {"timeline", "sli", "pool"}
    html = demo["html"]
    assert html.count("data:image/png;base64,") == len(run["figures"]) + 3
    assert not re.search(r"""(src|href)=["']https?://""", html)
    assert "<script" not in html
    assert (folder / "data" / "metrics.csv").read_text().startswith("timestamp,")


def test_html_renders_offline_in_headless_chromium(demo, tmp_path):
    assert os.path.exists(CHROMIUM), "chromium is missing: run scripts/install-system-deps"
    page = demo["folder"] / "postmortem.html"
    # a test copy with a probe that reports every image's size once the page has loaded
    probe = (
        "<script>addEventListener('load',()=>{const p=document.createElement('pre');"
        "p.id='probe';p.textContent=JSON.stringify([...document.images].map(i=>"
        "[i.naturalWidth,i.naturalHeight,i.complete,i.getBoundingClientRect().height]));"
        "document.body.appendChild(p)})</script>"
    )
    copy = tmp_path / "probe.html"
    copy.write_text(page.read_text().replace("</body>", probe + "</body>"))
    dumped = subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={tmp_path / 'profile-1'}",
            "--virtual-time-budget=5000",
            "--dump-dom",
            copy.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.search(r'<pre id="probe">(.*?)</pre>', dumped.stdout, re.S)
    assert found, dumped.stderr[-2000:]
    images = json.loads(found.group(1))
    assert len(images) == demo["html"].count("<img ")
    assert all(w > 0 and h > 0 and done and shown > 0 for w, h, done, shown in images), images
    shot = tmp_path / "postmortem.png"
    subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={tmp_path / 'profile-2'}",
            "--window-size=1280,3200",
            "--hide-scrollbars",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shot.is_file() and shot.read_bytes()[:4] == b"\x89PNG"
    from PIL import Image

    with Image.open(shot) as picture:
        pixels = picture.convert("RGB").getdata()
        # the error-rate chart's red line (#cf222e) is on screen
        red = sum(1 for r, g, b in pixels if r > 180 and g < 70 and b < 80)
    assert red > 200, red
    shutil.copy(shot, tmp_path / "kept.png")


def test_regenerating_keeps_what_people_wrote(demo, tmp_path):
    folder = tmp_path / "pm"
    shutil.copytree(demo["folder"], folder)
    md = (folder / "postmortem.md").read_text()
    summary = "On January 15, 2025, payments failed for an hour. We scaled the pool."
    md = re.sub(
        r"(opsnb:free-text executive-summary sha=\w+ -->\n).*?(\n<!-- /opsnb)",
        rf"\g<1>{summary}\g<2>",
        md,
        flags=re.S,
    )
    md = re.sub(r"(opsnb:free-text status sha=\w+ -->)Draft", r"\1In Review", md)
    md += (
        "\n<!-- opsnb:free-text old-notes -->\nA note from an older layout.\n"
        "<!-- /opsnb:free-text -->\n"
    )
    (folder / "postmortem.md").write_text(md)
    done = opsnb(
        "postmortem", "INC-0001", "--dir", str(demo["out"] / "incidents"), "--out", str(folder)
    )
    assert done.returncode == 0, done.stderr
    again = (folder / "postmortem.md").read_text()
    assert summary in again and "**Status**: <!-- opsnb:free-text status" in again
    assert "-->In Review<!--" in again
    assert "A note from an older layout." in again  # kept, under "Kept from the Previous Version"
    assert "To be written: 2-3 sentences" not in again
    # untouched sections are regenerated; the previous file is kept
    assert "Why was the connection pool exhausted?" in again
    assert (folder / ".postmortem.previous.md").read_text() == md
    assert summary in (folder / "postmortem.html").read_text()
    assert "kept what people wrote in: status, executive-summary" in done.stderr
