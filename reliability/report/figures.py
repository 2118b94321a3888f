"""Figures for the report and notebooks; analyses never draw, they return frames."""
from __future__ import annotations

from typing import Any

import pandas as pd

from reliability.source.frames import label_columns

#: The PDF's content box: A4 less 14 mm margins each side. A wider image is scaled down to it.
PRINT_WIDTH_IN = (210 - 28) / 25.4
#: No text of a figure in the report may print smaller than this.
MIN_PRINT_PT = 7.0


def printed_text_pt(figure: Any, *, dpi: float) -> float:
    """The smallest text of ``figure`` as printed in the PDF, in points.

    The PNG (``dpi`` pixels per inch) is shown at 96 CSS pixels per inch, but never wider than
    the content box; every font size is scaled by the same factor.
    """
    from matplotlib.text import Text

    figure = getattr(figure, "figure", figure)
    figure.draw_without_rendering()  # tick labels exist only once drawn
    width = figure.get_figwidth()
    scale = min(width * dpi / 96, PRINT_WIDTH_IN) / width
    sizes = [t.get_fontsize() for t in figure.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return min(sizes) * scale


def ratio_over_time(ratio: pd.DataFrame, *, threshold: float = 0.02, periods: pd.DataFrame | None = None,
                    title: str = "5xx ratio (5-minute rate, the alert's expression)", ax: Any = None) -> Any:
    """The 5xx ratio over time with the 2 % line and the periods above it shaded."""
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(8, 2.8), dpi=110)
    groups = label_columns(ratio)
    if groups:
        for key, g in ratio.groupby(groups):
            name = ", ".join(map(str, key if isinstance(key, tuple) else [key]))
            ax.plot(g["time"], g["value"] * 100, lw=1, label=name)
        ax.legend(fontsize=9, loc="upper left")
    else:
        ax.plot(ratio["time"], ratio["value"] * 100, lw=1, color="#1f6feb", label="5xx ratio")
    ax.axhline(threshold * 100, color="#cf222e", ls="--", lw=1, label=f"{threshold:.0%} threshold")
    if periods is not None:
        for _, row in periods.iterrows():
            ax.axvspan(row["start"], row["end"], color="#cf222e", alpha=0.15, lw=0)
    ax.set_ylabel("5xx ratio (%)")
    ax.set_xlabel("time (UTC)")
    ax.set_title(title, fontsize=10)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
    ax.grid(alpha=0.3)
    ax.set_ylim(bottom=0)
    ax.figure.tight_layout()
    return ax


def png(figure_or_ax: Any, *, dpi: int = 90) -> bytes:
    """The figure as PNG bytes, then closed: the report shows each figure once, as an image."""
    import io

    import matplotlib.pyplot as plt

    figure = getattr(figure_or_ax, "figure", figure_or_ax)
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=dpi)
    plt.close(figure)
    return out.getvalue()
