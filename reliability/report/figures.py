"""Figures for the report and notebooks; analyses never draw, they return frames."""
from __future__ import annotations

from typing import Any

import pandas as pd

from reliability.source.frames import label_columns


def ratio_over_time(ratio: pd.DataFrame, *, threshold: float = 0.02, periods: pd.DataFrame | None = None,
                    title: str = "5xx ratio (5-minute rate, the alert's expression)", ax: Any = None) -> Any:
    """The 5xx ratio over time with the 2 % line and the periods above it shaded."""
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(9, 2.8), dpi=110)
    groups = label_columns(ratio)
    if groups:
        for key, g in ratio.groupby(groups):
            ax.plot(g["time"], g["value"] * 100, lw=1, label=", ".join(map(str, key if isinstance(key, tuple) else [key])))
        ax.legend(fontsize=7, loc="upper left")
    else:
        ax.plot(ratio["time"], ratio["value"] * 100, lw=1, color="#1f6feb", label="5xx ratio")
    ax.axhline(threshold * 100, color="#cf222e", ls="--", lw=1, label=f"{threshold:.0%} threshold")
    if periods is not None:
        for _, row in periods.iterrows():
            ax.axvspan(row["start"], row["end"], color="#cf222e", alpha=0.15, lw=0)
    ax.set_ylabel("5xx ratio (%)")
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
