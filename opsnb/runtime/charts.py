"""Charts for the incident view: SLI series with threshold lines, the breach shaded,
rollouts marked.

Figures are small (about 30 KB as PNG) so a whole executed runbook stays well under 1 MB.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.layout_engine import TightLayoutEngine
from matplotlib.ticker import FixedFormatter, FixedLocator, FuncFormatter

SIZE = (8.5, 2.6)
DPI = 72


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
    shown and closed) also gets its ticks fixed first: the layout pass and the draw would
    each recompute them a dozen times, and date ticks (rrules) are a chart's slowest part.
    """
    if final:
        for ax in fig.axes:
            for axis in (ax.xaxis, ax.yaxis):
                low, high = sorted(axis.get_view_interval())
                ticks = [t for t in axis.get_major_locator()() if low <= t <= high]
                formatter = axis.get_major_formatter()
                labels = FixedFormatter(formatter.format_ticks(ticks))
                # ScalarFormatter puts a common factor ("1e8") beside the axis: keep it
                labels.set_offset_string(formatter.get_offset())
                axis.set_major_locator(FixedLocator(ticks))
                axis.set_major_formatter(labels)
    TightLayoutEngine().execute(fig)


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
    vertical lines.
    """
    fig, ax = plt.subplots(figsize=SIZE, dpi=DPI)
    if frame.empty:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    elif by and by in frame.columns:
        for key, part in frame.groupby(by, sort=True):
            ax.plot(part["timestamp"], part["value"], label=str(key), linewidth=1.4)
        ax.legend(loc="upper left", fontsize=8, frameon=False)
    else:
        ax.plot(frame["timestamp"], frame["value"], color="#0969da", linewidth=1.6)
    if threshold is not None:
        ax.axhline(threshold, color="#cf222e", linestyle="--", linewidth=1, label=threshold_label)
        if not frame.empty and not by:
            above = frame["value"] > threshold
            ax.fill_between(
                frame["timestamp"], 0, 1, where=above, color="#cf222e", alpha=0.08,
                transform=ax.get_xaxis_transform(), step="mid",
            )  # fmt: skip
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
    fig.autofmt_xdate()
    _finish(fig, final=show)
    if show:
        plt.show()
        plt.close(fig)
    return fig


def bars(frame: pd.DataFrame, *, x: str, y: str, title: str, show: bool = True) -> Any:
    """A horizontal bar chart, largest first (error types, endpoints)."""
    fig, ax = plt.subplots(figsize=(SIZE[0], max(1.6, 0.3 * len(frame) + 0.8)), dpi=DPI)
    if frame.empty:
        ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
    else:
        ordered = frame.sort_values(y)
        ax.barh(ordered[x].astype(str), ordered[y], color="#cf222e")
    ax.set_title(title, fontsize=10, loc="left")
    ax.tick_params(labelsize=8)
    _finish(fig, final=show)
    if show:
        plt.show()
        plt.close(fig)
    return fig
