"""Charts for the incident view: SLI series with threshold lines, the breach shaded,
rollouts marked.

Figures are small (about 30 KB as PNG) so a whole executed runbook stays well under 1 MB.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.collections import PolyCollection
from matplotlib.ticker import FixedFormatter, FixedLocator, FuncFormatter

from . import chart_jobs, redaction

SIZE = (8.5, 2.6)
DPI = 72
TIGHT_PAD = 1.08  # tight_layout's padding around the figure, in font sizes


def _fast_inline_png() -> None:
    """Inline PNGs without ``bbox_inches="tight"``: the layout is already tight, and the
    default draws every figure twice (once to measure, once to render)."""
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:  # pragma: no cover - both come with ipykernel
        return
    if get_ipython() is not None:
        set_matplotlib_formats("png", bbox_inches=None)


_fast_inline_png()


def _finish(fig: Any, *, final: bool) -> None:
    """Lay the figure out tightly, once.

    ``fig.tight_layout()`` would leave a placeholder layout engine behind, and any layout
    engine makes every PNG render draw the figure twice. A ``final`` figure (about to be
    shown and closed) first gets its date ticks fixed: the layout pass and the draw would
    recompute them a dozen times, and date ticks (rrules) are a chart's slowest part. Only
    date ticks: they depend on the time span alone, where numeric ticks depend on the axes'
    size, which the layout changes.
    """
    if final:
        for ax in fig.axes:
            for axis in (ax.xaxis, ax.yaxis):
                if isinstance(axis.get_major_locator(), mdates.DateLocator):
                    _fix_ticks(axis)
    _fit(fig)


def _fit(fig: Any) -> None:
    """Margins that just hold what is drawn around the (single) axes: tight_layout's rule,
    measured once. tight_layout measures everything a second time to fit its first answer
    into its rect; for these one-axes charts the first answer is already within a few
    pixels, and each measuring pass costs about a fifth of a chart."""
    (ax,) = fig.axes
    pad = TIGHT_PAD * plt.rcParams["font.size"] * fig.dpi / 72
    inner, outer = ax.bbox, ax.get_tightbbox(fig.canvas.get_renderer())
    width, height = fig.bbox.width, fig.bbox.height
    fig.subplots_adjust(
        left=(inner.x0 - outer.x0 + pad) / width,
        right=1 - (outer.x1 - inner.x1 + pad) / width,
        bottom=(inner.y0 - outer.y0 + pad) / height,
        top=1 - (outer.y1 - inner.y1 + pad) / height,
    )


def _fix_ticks(axis: Any) -> None:
    low, high = sorted(axis.get_view_interval())
    ticks = [t for t in axis.get_major_locator()() if low <= t <= high]
    formatter = axis.get_major_formatter()
    labels = FixedFormatter(formatter.format_ticks(ticks))
    labels.set_offset_string(formatter.get_offset())  # the date once, beside the axis
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(labels)


def _axes(figsize: tuple[float, float]) -> tuple[Any, Any]:
    """A figure with its one axes, the axis labels' places given.

    Runbook charts have no axis labels, but matplotlib places the empty labels anyway,
    clear of the tick labels: it measures every tick label again to do so, in each layout
    pass and each draw, a fifth of a chart's cost. Given coordinates, it does not.
    """
    fig, ax = plt.subplots(figsize=figsize, dpi=DPI)
    ax.xaxis.set_label_coords(0.5, -0.1)
    ax.yaxis.set_label_coords(-0.1, 0.5)
    return fig, ax


def _times(values: Any) -> np.ndarray:
    """Times as UTC ``datetime64`` for plotting: matplotlib converts an array of them at
    once, but a timezone-aware series one timestamp at a time (the axes show UTC either
    way)."""
    times = pd.DatetimeIndex(values)
    return (times.tz_convert(None) if times.tz is not None else times).to_numpy()


def series(
    frame: pd.DataFrame,
    *,
    title: str,
    by: str | None = None,
    threshold: float | None = None,
    threshold_label: str = "threshold",
    percent: bool = False,
    seconds: bool = False,
    rollouts: Iterable[tuple[Any, str]] = (),
    show: bool = True,
) -> Any:
    """Plot a long-format series frame (``timestamp``, ``value``, label columns).

    ``by`` names the label column that splits series; ``threshold`` draws a dashed line and
    shades where the series is above it; ``rollouts`` is (time, label) pairs drawn as
    vertical lines. Shown, it returns None when a chart renderer draws it beside the kernel
    (see ``chart_jobs``), else the (closed) figure.
    """
    if by and by in frame.columns:
        frame = frame.assign(**{by: _scrubbed(frame[by])})  # legend labels
    options: dict[str, Any] = {"title": redaction.text(title), "by": by, "threshold": threshold,
               "threshold_label": redaction.text(threshold_label), "percent": percent,
               "seconds": seconds,
               "rollouts": [(when, redaction.text(label)) for when, label in rollouts]}  # fmt: skip
    if show and chart_jobs.submit("series", frame, options):
        return None
    return _present(_series_figure(frame, **options), show=show)


def _scrubbed(labels: pd.Series) -> pd.Series:
    """Text labels without the target's secrets (numbers cannot hold one, and keep their
    order; missing labels stay missing)."""
    if labels.dtype != object and not isinstance(labels.dtype, pd.StringDtype):
        return labels
    return labels.map(redaction.text, na_action="ignore")


def _series_figure(
    frame: pd.DataFrame,
    *,
    title: str,
    by: str | None,
    threshold: float | None,
    threshold_label: str,
    percent: bool,
    seconds: bool,
    rollouts: list[tuple[Any, str]],
) -> Any:
    fig, ax = _axes(SIZE)
    if frame.empty:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    elif by and by in frame.columns:
        for key, part in frame.groupby(by, sort=True):
            ax.plot(_times(part["timestamp"]), part["value"], label=str(key), linewidth=1.4)
        ax.legend(loc="upper left", fontsize=8, frameon=False)
    else:
        ax.plot(_times(frame["timestamp"]), frame["value"], color="#0969da", linewidth=1.6)
    if threshold is not None:
        ax.axhline(threshold, color="#cf222e", linestyle="--", linewidth=1, label=threshold_label)
        if not frame.empty and not by:
            _shade(ax, frame["timestamp"], frame["value"].to_numpy() > threshold)
    for when, label in rollouts:
        ax.axvline(when, color="#8250df", linewidth=1.2)
        ax.annotate(label, (when, 1), xycoords=("data", "axes fraction"), fontsize=8,
                    color="#8250df", xytext=(3, -10), textcoords="offset points")  # fmt: skip
    if percent:
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.1%}"))
    if seconds:
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v * 1000:.0f} ms"))
    ax.set_title(title, fontsize=10, loc="left")
    ax.grid(alpha=0.3)
    ax.tick_params(labelsize=8)
    if not frame.empty:
        # "12:10 ... 12:50" with the date once, level labels that need no rotation
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    return fig


def _present(fig: Any, *, show: bool) -> Any:
    _finish(fig, final=show)
    if show:
        plt.show()
        plt.close(fig)
    return fig


def final_figure(kind: str, frame: pd.DataFrame, options: dict[str, Any]) -> Any:
    """The figure ``series`` or ``bars`` would show for these arguments, laid out and
    final, still open (for a renderer to draw; the caller closes it)."""
    builders: dict[str, Callable[..., Any]] = {"series": _series_figure, "bars": _bars_figure}
    fig = builders[kind](frame, **options)
    _finish(fig, final=True)
    return fig


def _shade(ax: Any, times: pd.Series, above: np.ndarray) -> None:
    """Shade the spans where ``above`` holds, each from the midpoint before its first sample
    to the midpoint after its last (a step plot's edges), across the whole height."""
    x = mdates.date2num(_times(times))
    if not len(x) or not above.any():
        return
    edges = np.flatnonzero(np.diff(np.r_[False, above, False].astype(np.int8)))
    mids = np.r_[x[0], (x[1:] + x[:-1]) / 2, x[-1]]
    spans = [[(mids[a], 0), (mids[a], 1), (mids[b], 1), (mids[b], 0)]
             for a, b in zip(edges[::2], edges[1::2], strict=True)]  # fmt: skip
    shade = PolyCollection(spans, facecolors="#cf222e", alpha=0.08, linewidths=0,
                           transform=ax.get_xaxis_transform())  # fmt: skip
    ax.add_collection(shade, autolim=False)


def bars(frame: pd.DataFrame, *, x: str, y: str, title: str, show: bool = True) -> Any:
    """A horizontal bar chart, largest first (error types, endpoints). Shown, it returns
    None when a chart renderer draws it beside the kernel, else the (closed) figure."""
    if x in frame.columns:
        frame = frame.assign(**{x: _scrubbed(frame[x])})  # category labels
    options: dict[str, Any] = {"x": x, "y": y, "title": redaction.text(title)}
    if show and chart_jobs.submit("bars", frame, options):
        return None
    return _present(_bars_figure(frame, **options), show=show)


def _bars_figure(frame: pd.DataFrame, *, x: str, y: str, title: str) -> Any:
    fig, ax = _axes((SIZE[0], max(1.6, 0.3 * len(frame) + 0.8)))
    if frame.empty:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    else:
        ordered = frame.sort_values(y)
        ax.barh(ordered[x].astype(str), ordered[y], color="#cf222e")
    ax.set_title(title, fontsize=10, loc="left")
    ax.tick_params(labelsize=8)
    return fig


def rehearse() -> None:
    """Draw one chart to PNG and throw it away.

    A warm kernel calls this before its run: the first chart in a process pays for font
    loading, glyph caches, the date locators and the PNG encoder (tens of milliseconds) that
    every later chart is spared. One chart with every element a runbook's charts use, as
    each warm kernel spends this on every run. Nothing is displayed; no figure is left open.
    """
    import io

    times = pd.date_range("2000-01-01", periods=60, freq="15s", tz="UTC")
    frame = pd.DataFrame({"timestamp": times, "value": [i % 7 / 100 for i in range(60)]})
    fig = series(frame, title="rehearsal", threshold=0.05, percent=True,
                 rollouts=[(times[30], "rev 2")], show=False)  # fmt: skip
    try:
        _finish(fig, final=True)
        # as the inline backend renders a figure for display
        fig.canvas.print_figure(io.BytesIO(), format="png", bbox_inches=None)
    finally:
        plt.close(fig)
    frame.to_html()  # the first table a runbook displays
