"""Runbook charts: how they are drawn must not change what they show."""

from __future__ import annotations

import io

import matplotlib
import matplotlib.dates
import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageChops

from opsnb.runtime import charts

matplotlib.use("agg")
TIMES = pd.date_range("2026-11-30T12:00Z", periods=240, freq="15s")
RNG = np.random.default_rng(7)
CASES = {
    "percent with threshold and rollout": (
        pd.DataFrame({"timestamp": TIMES, "value": np.abs(RNG.standard_normal(240)) / 50}),
        {"threshold": 0.01, "percent": True, "rollouts": [(TIMES[100], "rev 3")]},
    ),
    # values in the hundreds of millions: the axis needs its "1e8" factor
    "bytes by pod": (
        pd.DataFrame(
            {
                "timestamp": list(TIMES) * 2,
                "value": np.r_[RNG.uniform(2e8, 3e8, 240), RNG.uniform(1e8, 2e8, 240)],
                "pod": ["a"] * 240 + ["b"] * 240,
            }
        ),
        {"by": "pod"},
    ),  # fmt: skip
    "seconds": (
        pd.DataFrame({"timestamp": TIMES, "value": RNG.uniform(0.1, 1.5, 240)}),
        {"seconds": True, "threshold": 0.5},
    ),
    "no data": (pd.DataFrame({"timestamp": [], "value": []}), {}),
}


def png(fig) -> Image.Image:
    buf = io.BytesIO()
    fig.canvas.print_figure(buf, format="png", bbox_inches=None)
    return Image.open(buf).convert("RGB")


def same_picture(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and ImageChops.difference(a, b).getbbox() is None


@pytest.fixture()
def no_display(monkeypatch):
    """show=True without a notebook: plt.show does nothing, the figure is kept for us."""
    monkeypatch.setattr(charts.plt, "show", lambda *a, **k: None)
    monkeypatch.setattr(charts.plt, "close", lambda *a, **k: None)


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_shown_chart_looks_like_the_live_one(case, no_display) -> None:
    frame, options = CASES[case]
    live = charts.series(frame, title=case, show=False, **options)
    shown = charts.series(frame, title=case, show=True, **options)
    assert same_picture(png(live), png(shown))
    # no layout engine to redo on every render; the shown figure's time ticks are fixed
    assert shown.get_layout_engine() is None
    fixed = type(shown.axes[0].xaxis.get_major_locator()).__name__ == "FixedLocator"
    assert fixed == (not frame.empty)
    assert type(live.axes[0].xaxis.get_major_locator()).__name__ != "FixedLocator"


def test_the_common_factor_of_large_values_is_kept(no_display) -> None:
    frame, options = CASES["bytes by pod"]
    shown = charts.series(frame, title="memory", show=True, **options)
    shown.canvas.draw()
    assert shown.axes[0].yaxis.get_offset_text().get_text() == "1e8"
    # the date is written once, beside the time axis
    assert shown.axes[0].xaxis.get_offset_text().get_text() == "2026-Nov-30"


def test_breaches_are_shaded_from_midpoint_to_midpoint(no_display) -> None:
    times = pd.date_range("2026-11-30T12:00Z", periods=6, freq="60s")
    frame = pd.DataFrame({"timestamp": times, "value": [0.0, 0.2, 0.3, 0.0, 0.0, 0.5]})
    fig = charts.series(frame, title="breach", threshold=0.1, show=True)
    (shade,) = [c for c in fig.axes[0].collections if len(c.get_paths())]
    spans = sorted(
        (round(p.vertices[:, 0].min(), 6), round(p.vertices[:, 0].max(), 6))
        for p in shade.get_paths()
    )
    x = matplotlib.dates.date2num(times)
    assert spans == [
        (round((x[0] + x[1]) / 2, 6), round((x[2] + x[3]) / 2, 6)),
        (round((x[4] + x[5]) / 2, 6), round(x[5], 6)),
    ]


def test_bars_look_the_same(no_display) -> None:
    frame = pd.DataFrame({"error": ["Timeout", "ConnectionError", "KeyError"],
                          "count": [120, 30000, 4]})  # fmt: skip
    live = charts.bars(frame, x="error", y="count", title="Errors", show=False)
    shown = charts.bars(frame, x="error", y="count", title="Errors", show=True)
    assert same_picture(png(live), png(shown))


def test_the_rehearsal_leaves_no_figure_behind() -> None:
    charts.plt.close("all")
    charts.rehearse()
    assert charts.plt.get_fignums() == []


def bars_case() -> pd.DataFrame:
    return pd.DataFrame({"error": ["DependencyTimeoutError: payments-provider", "KeyError"],
                         "count": [120, 4]})  # fmt: skip


@pytest.mark.parametrize("case", [*sorted(CASES), "bars with a long label"])
def test_one_layout_pass_fits_the_chart(case) -> None:
    """Charts are laid out in one measuring pass (matplotlib's ``tight_layout`` measures
    twice): everything drawn stays inside the figure, and the plot loses at most a few
    pixels to the margins against ``tight_layout``."""
    if case in CASES:
        frame, options = CASES[case]
        fig = charts.series(frame, title=case, show=False, **options)
    else:
        fig = charts.bars(bars_case(), x="error", y="count", title=case, show=False)
    fig.canvas.draw()
    drawn = fig.axes[0].get_tightbbox(fig.canvas.get_renderer())
    assert fig.bbox.x0 <= drawn.x0 and drawn.x1 <= fig.bbox.x1, (drawn, fig.bbox)
    assert fig.bbox.y0 <= drawn.y0 and drawn.y1 <= fig.bbox.y1, (drawn, fig.bbox)
    ours = fig.axes[0].bbox.frozen()
    fig.tight_layout()
    fig.canvas.draw()
    theirs = fig.axes[0].bbox
    assert ours.width == pytest.approx(theirs.width, abs=8)
    assert ours.height == pytest.approx(theirs.height, abs=8)
    charts.plt.close(fig)


@pytest.mark.parametrize("case", [*sorted(CASES), "bars with a long label"])
def test_shortcuts_change_no_pixel(case, monkeypatch) -> None:
    """Axis labels placed by hand and times plotted as UTC datetime64 are shortcuts: the
    chart is the one matplotlib draws with its own label placement and aware timestamps."""

    def draw() -> Image.Image:
        if case in CASES:
            frame, options = CASES[case]
            return png(charts.series(frame, title=case, show=False, **options))
        return png(charts.bars(bars_case(), x="error", y="count", title=case, show=False))

    fast = draw()
    monkeypatch.setattr(
        charts, "_axes", lambda size: charts.plt.subplots(figsize=size, dpi=charts.DPI)
    )
    monkeypatch.setattr(charts, "_times", lambda values: values)
    assert same_picture(fast, draw())
    charts.plt.close("all")


@pytest.fixture()
def secret_redactor(monkeypatch):
    """A session's redactor, as ``Runbook`` installs it, knowing one secret."""
    from opsnb.runtime import redaction
    from opsnb.secrets import Redactor

    monkeypatch.setattr(redaction, "_redactor", None)
    redaction.use(Redactor(["s3cr3t"]))
    return redaction


def drawn_text(fig) -> str:
    """Every text a figure draws (titles, tick labels, legend, annotations)."""
    fig.canvas.draw()
    return "\n".join(t.get_text() for t in fig.findobj(matplotlib.text.Text))


def test_labels_drawn_from_data_carry_no_secret(secret_redactor) -> None:
    """A chart's labels become pixels, out of reach of the notebook's redaction: they are
    scrubbed before they are drawn."""
    errors = pd.DataFrame(
        {"error": ["AuthError: s3cr3t rejected", "OperationalError: postgresql://u:pw@db/x"],
         "count": [3, 1]}
    )  # fmt: skip
    bars = drawn_text(charts.bars(errors, x="error", y="count", title="for s3cr3t", show=False))
    frame, _ = CASES["bytes by pod"]
    by_pod = frame.assign(pod=frame["pod"].map({"a": "a-s3cr3t", "b": "b"}))
    labels = {"threshold_label": "s3cr3t line", "rollouts": [(TIMES[10], "rev s3cr3t")]}
    figure = charts.series(by_pod, title="s3cr3t", by="pod", threshold=2e8, show=False, **labels)
    series = drawn_text(figure)
    for text in (bars, series):
        assert "s3cr3t" not in text and ":pw@" not in text, text
        assert "[redacted]" in text
    assert "AuthError: [redacted] rejected" in bars and "a-[redacted]" in series
    charts.plt.close("all")


def test_a_session_scrubs_what_its_charts_draw_of_its_targets_secrets(monkeypatch) -> None:
    from opsnb.config import PostgresConfig, Target
    from opsnb.runtime import redaction
    from opsnb.runtime.session import Runbook
    from opsnb.secrets import SecretRef

    monkeypatch.setattr(redaction, "_redactor", None)
    monkeypatch.setenv("OPSNB_TEST_PG_PASSWORD", "hunter2-pw")
    password = SecretRef(env="OPSNB_TEST_PG_PASSWORD")
    target = Target(name="t", kind="live", services={}, postgres=PostgresConfig(password=password))
    assert redaction.text("login hunter2-pw") == "login hunter2-pw"  # no session yet
    Runbook(target, target.service("payments"), runbook="high-error-rate")
    assert redaction.text("login hunter2-pw") == "login [redacted]"
