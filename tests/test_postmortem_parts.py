"""The postmortem's parts on small inputs: merging people's text, finding the impact in a
series, times and mermaid, the HTML's safety, and incidents without usable metrics."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from opsnb import incidents
from opsnb.postmortem import generate
from opsnb.postmortem.document import Document, Formatter, FreeText, Heading
from opsnb.postmortem.impact import breach_runs, impact_start, recovered
from opsnb.postmortem.merge import fingerprint, merge, parse, wrap
from opsnb.postmortem.phases import Task, mermaid
from opsnb.postmortem.render_html import markdown, render

BIN = Path(sys.executable).parent
T0 = datetime(2025, 1, 15, 14, 0, tzinfo=UTC)


def series(values: list[float], step: int = 60) -> pd.Series:
    index = pd.DatetimeIndex([T0 + timedelta(seconds=step * i) for i in range(len(values))])
    return pd.Series(values, index=index, dtype="float64")


# --- merge ------------------------------------------------------------------------------------


def document(**defaults: str) -> Document:
    doc = Document("t", [Heading(2, "x")])
    for key, text in defaults.items():
        doc.add(FreeText(key.replace("_", "-"), text))
    return doc


def test_unedited_sections_follow_the_record_and_edited_ones_are_kept():
    before = document(five_whys="Why? -> pool", summary="_to be written_")
    previous = "\n".join(wrap(b) for b in before.free_texts())
    previous = previous.replace("_to be written_", "We scaled the pool.\n\nIt worked.")
    after = document(five_whys="Why? -> pool, traffic", summary="_to be written_")
    orphans, problems = merge(after, previous)
    texts = {b.key: b.text for b in after.free_texts()}
    assert texts == {
        "five-whys": "Why? -> pool, traffic",
        "summary": "We scaled the pool.\n\nIt worked.",
    }
    assert orphans == [] and problems == []


def test_sections_the_new_version_lacks_come_back_as_orphans():
    previous = (
        "<!-- opsnb:free-text gone sha=000000000000 -->\nmine\n<!-- /opsnb:free-text -->"
        "\n<!-- opsnb:free-text stale sha="
        + fingerprint("as generated")
        + " -->\nas generated\n<!-- /opsnb:free-text -->"
    )
    orphans, _ = merge(document(other="x"), previous)
    assert [(o.key, o.content) for o in orphans] == [("gone", "mine")]


def test_a_section_without_its_closing_marker_runs_to_the_next_one():
    text = (
        "<!-- opsnb:free-text a -->\nfirst\n"
        "<!-- opsnb:free-text b -->\nsecond\n<!-- /opsnb:free-text -->"
    )
    found, problems = parse(text)
    assert found["a"].content == "first" and found["b"].content == "second"
    assert problems == ["free-text section 'a' has no closing marker"]
    assert found["a"].edited  # no fingerprint: a person's text


def test_inline_sections_round_trip():
    block = FreeText("status", "Draft", inline=True)
    line = f"**Status**: {wrap(block)}  "
    found, _ = parse(line.replace("Draft", "Final"))
    assert found["status"].content == "Final" and found["status"].edited


# --- impact -----------------------------------------------------------------------------------


def test_breach_runs_end_at_gaps():
    s = series([0, 0.5, 0.6, np.nan, 0.7, 0, 0.8])
    assert breach_runs(s, 0.1) == [(1, 2), (4, 4), (6, 6)]


def test_impact_start_is_the_start_of_the_breach_the_alert_saw():
    s = series([0, 0.2, 0, 0, 0.3, 0.4, 0.5, 0.1, 0])  # breaches at 1 and 4..6
    at = T0 + timedelta(minutes=5)
    assert impact_start(s, 0.15, at, T0 + timedelta(minutes=8)) == T0 + timedelta(minutes=4)
    # an alert after the breach ended: the last breach before it
    assert impact_start(s, 0.15, T0 + timedelta(minutes=8), T0 + timedelta(minutes=8)) == (
        T0 + timedelta(minutes=4)
    )
    # an alert before any breach: the first breach after it
    quiet = series([0, 0, 0.3, 0.3, 0])
    assert impact_start(quiet, 0.15, T0, T0 + timedelta(minutes=4)) == T0 + timedelta(minutes=2)
    assert impact_start(series([0, 0, 0]), 0.15, T0, T0 + timedelta(minutes=2)) is None


def test_recovered_is_after_the_last_breach_and_only_if_it_stays_within():
    s = series([0.3, 0.3, 0, 0.3, 0, 0])
    end = T0 + timedelta(minutes=5)
    assert recovered(s, 0.15, T0, end) == T0 + timedelta(minutes=4)
    assert recovered(series([0.3, 0, 0.3]), 0.15, T0, T0 + timedelta(minutes=2)) is None


# --- formatting and the gantt chart ---------------------------------------------------------


def test_times_have_seconds_only_when_needed_and_a_date_on_other_days():
    fmt = Formatter(T0)
    assert fmt.time(T0 + timedelta(minutes=5)) == "14:05"
    assert fmt.time(T0 + timedelta(days=1)) == "2025-01-16 14:00"
    assert Formatter(T0, seconds=True).time(T0 + timedelta(seconds=75)) == "14:01:15"
    assert Formatter(T0, seconds=True).duration(timedelta(seconds=75)) == "1 min 15 s"
    assert fmt.duration(timedelta(minutes=64)) == "1 hour 4 minutes"
    assert fmt.pct(0.187) == "18.70%" and fmt.count(288330.4) == "288,330"


def test_mermaid_gantt_source():
    tasks = [
        Task("Detection", "Impact: before detection", T0, T0 + timedelta(minutes=9)),
        Task(
            "Detection",
            "HighErrorRate fired",
            T0 + timedelta(minutes=9),
            T0 + timedelta(minutes=9),
            milestone=True,
        ),
        Task(
            "Recovery",
            "Incident resolved",
            T0 + timedelta(minutes=64),
            T0 + timedelta(minutes=64),
            milestone=True,
        ),
    ]
    text = mermaid(tasks)
    assert text.splitlines()[:4] == [
        "gantt",
        "    title Incident Timeline (UTC)",
        "    dateFormat HH:mm",
        "    axisFormat %H:%M",
    ]
    assert "    Impact before detection :t1, 14:00, 14:09" in text
    assert "    HighErrorRate fired :milestone, t2, 14:09, 0m" in text
    assert "    section Recovery\n    Incident resolved :milestone, t3, 15:04, 0m" in text
    overnight = [
        Task("Detection", "x", T0 + timedelta(hours=9, seconds=5), T0 + timedelta(hours=10))
    ]
    assert "dateFormat YYYY-MM-DD HH:mm:ss" in mermaid(overnight)
    assert "x :t1, 2025-01-15 23:00:05, 2025-01-16 00:00:00" in mermaid(overnight)


# --- HTML -------------------------------------------------------------------------------------


def test_what_people_write_cannot_make_the_page_load_anything():
    html = markdown("![chart](https://example.com/x.png) <script>alert(1)</script>\n\n- [x] done")
    assert "<img" not in html and 'href="https://example.com/x.png"' in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'type="checkbox"' in html
    page = render(Document("A <b>title</b>", [FreeText("s", "text <iframe src=x>")]))
    assert "<iframe" not in page and "<script" not in page and "A &lt;b&gt;title" in page


# --- incidents without usable metrics -------------------------------------------------------


def test_an_incident_without_a_target_still_gets_its_postmortem(tmp_path):
    root = tmp_path / "incidents"
    inc = incidents.open_incident("Search slow", "search", "SEV-3", root=root, by="@a", at=T0)
    incidents.note(
        inc.id, "Restarted the indexer", by="@a", at=T0 + timedelta(minutes=3), root=root
    )
    incidents.resolve(
        inc.id, summary="indexer restarted", by="@a", at=T0 + timedelta(minutes=20), root=root
    )
    done = subprocess.run(
        [
            str(BIN / "opsnb"),
            "postmortem",
            inc.id,
            "--dir",
            str(root),
            "--out",
            str(tmp_path / "pm"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    md = (tmp_path / "pm" / "postmortem.md").read_text()
    assert "_No figures from the metrics: the incident names no target" in md
    assert "| 14:03 | Restarted the indexer | @a | E0002 |" in md
    assert "**Duration**: 20 minutes (14:00 to 14:20 UTC, first alert to resolution)" in md
    assert (tmp_path / "pm" / "images" / "timeline.png").is_file()


def test_a_target_whose_prometheus_is_down_is_said_so(tmp_path, monkeypatch):
    config = tmp_path / "opsnb.yaml"
    config.write_text("targets:\n  down:\n    prometheus: {url: 'http://127.0.0.1:9'}\n")
    monkeypatch.setenv("OPSNB_CONFIG", str(config))
    root = tmp_path / "incidents"
    inc = incidents.open_incident(
        "Errors", "api", "SEV-2", target="down", root=root, by="@a", at=T0
    )
    done = generate(inc.id, root=root, out=tmp_path / "pm")
    assert done.gathered.metrics is None
    assert "prometheus unavailable" in (done.impact.problem or "")
    assert "No figures from the metrics" in done.markdown.read_text()


def test_unknown_incident_exits_2(tmp_path):
    done = subprocess.run(
        [str(BIN / "opsnb"), "postmortem", "INC-0042", "--dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "INC-0042" in done.stderr


@pytest.mark.parametrize(
    "due, group",
    [
        ("2025-01-20", "Immediate (This Week)"),
        ("2025-02-10", "Short-term (This Sprint)"),
        (None, "Unscheduled (No Due Date)"),
    ],
)
def test_action_items_are_grouped_by_due_date(tmp_path, due, group):
    root = tmp_path / "incidents"
    inc = incidents.open_incident("Errors", "api", "SEV-3", root=root, by="@a", at=T0)
    incidents.note(
        inc.id,
        "Add an alert",
        action_item=True,
        owner="@b",
        due=due,
        ticket="OPS-1",
        by="@a",
        at=T0,
        root=root,
    )
    incidents.resolve(inc.id, by="@a", at=T0 + timedelta(hours=1), root=root)
    md = generate(inc.id, root=root, out=tmp_path / "pm").markdown.read_text()
    assert f"### {group}\n\n| ID | Action | Owner | Due | Ticket | Priority |" in md
    assert ("Missing an owner, due date or ticket: AI-1." in md) == (due is None)
