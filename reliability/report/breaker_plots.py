"""Figures for breaker analyses: the what-if heatmap and the state timeline (matplotlib, imported lazily)."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from reliability.errors import ConfigurationError

_COLORS = {1: "tab:red", 2: "tab:orange"}


def heatmap(frame: pd.DataFrame, *, metric: str = "trips", current: tuple[float, float] | None = (5, 60.0),
            ax: Any = None) -> Any:
    """Heatmap of a what-if metric over (failure_threshold, timeout), the configuration in force outlined.

    ``metric`` is ``trips``, ``rejected`` or ``failed_calls_allowed`` (its mean is shown)
    or any numeric column of :func:`~reliability.analysis.breakers.whatif` output.
    """
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    column = metric if metric in frame.columns else f"{metric}_mean"
    if column not in frame.columns:
        raise ConfigurationError(f"whatif frame has no column {metric!r} or {column!r}")
    grid = frame.pivot_table(index="failure_threshold", columns="timeout", values=column, aggfunc="mean")
    if ax is None:
        _, ax = plt.subplots(figsize=(1.2 * grid.shape[1] + 2.5, 0.8 * grid.shape[0] + 1.5))
    image = ax.imshow(grid.to_numpy(), cmap="viridis", aspect="auto", origin="lower")
    ax.figure.colorbar(image, ax=ax, label=column)
    ax.set_xticks(range(grid.shape[1]), [f"{c:g}" for c in grid.columns])
    ax.set_yticks(range(grid.shape[0]), [f"{r:g}" for r in grid.index])
    ax.set_xlabel("timeout (s)")
    ax.set_ylabel("failure threshold")
    values = grid.to_numpy()
    finite = values[np.isfinite(values)]
    middle = (finite.min() + finite.max()) / 2 if len(finite) else 0.0
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            v = values[i, j]
            ax.text(j, i, "–" if not np.isfinite(v) else f"{v:,.3g}", ha="center", va="center", fontsize=8,
                    color="black" if np.isfinite(v) and v > middle else "white")
    if current is not None and current[0] in grid.index and current[1] in grid.columns:
        i, j = list(grid.index).index(current[0]), list(grid.columns).index(current[1])
        ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2.5))
        ax.set_title(f"{column} (red: configuration in force, {current[0]:g} / {current[1]:g} s)")
    else:
        ax.set_title(column)
    return ax


def timeline(state: pd.DataFrame, *, ax: Any = None, start: Any = None, end: Any = None,
             step: float = 30.0) -> Any:
    """One lane per breaker; each OPEN (red) or HALF_OPEN (orange) gauge sample drawn as one step."""
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    for column in ("breaker", "time", "value"):
        if column not in state.columns:
            raise ConfigurationError(f"state frame has no column {column!r}; expected breaker, time, value")
    names = sorted(state["breaker"].unique())
    if ax is None:
        _, ax = plt.subplots(figsize=(8, 0.4 * len(names) + 1.3))
    dated = isinstance(state["time"].dtype, pd.DatetimeTZDtype)
    width = step / 86400.0 if dated else step
    for lane, name in enumerate(names):
        g = state[state["breaker"] == name]
        x = mdates.date2num(g["time"].dt.tz_convert("UTC").dt.tz_localize(None)) if dated \
            else g["time"].to_numpy(dtype=float)
        v = np.rint(g["value"].to_numpy(dtype=float))
        for code, color in _COLORS.items():
            xs = np.asarray(x)[v == code]
            if len(xs):
                ax.broken_barh([(xi, width) for xi in xs], (lane - 0.4, 0.8), facecolors=color, linewidth=0)
    ax.set_yticks(range(len(names)), names)
    ax.set_ylim(-0.6, len(names) - 0.4)
    if dated:
        ax.xaxis_date()
        locator = mdates.AutoDateLocator(maxticks=8)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        if start is not None and end is not None:
            ax.set_xlim(mdates.date2num(pd.Timestamp(start).tz_convert("UTC").tz_localize(None)),
                        mdates.date2num(pd.Timestamp(end).tz_convert("UTC").tz_localize(None)))
    elif start is not None and end is not None:
        ax.set_xlim(float(start), float(end))
    ax.legend(handles=[Patch(color=_COLORS[1], label="open"), Patch(color=_COLORS[2], label="half-open")],
              loc="upper right", fontsize=9)
    ax.set_title("Circuit breaker state (gauge samples)")
    ax.set_xlabel("time (UTC)" if dated else "time (s)")
    ax.figure.tight_layout()
    return ax


def stats_timeline(stats: Any, state_frame: pd.DataFrame, ax: Any = None) -> Any:
    """:func:`timeline` over a :class:`~reliability.analysis.breakers.BreakerStats` window and step."""
    return timeline(state_frame, ax=ax, start=stats.start, end=stats.end, step=stats.scrape_interval)
