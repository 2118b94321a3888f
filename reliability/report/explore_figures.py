"""Figures for the exploration notebooks; they draw frames computed by :mod:`reliability.lab.explore`."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd


def _axes(ax: Any, size: tuple[float, float]) -> Any:
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=size, dpi=100)
    return ax


def _dates(ax: Any) -> None:
    import matplotlib.dates as mdates

    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
    ax.set_xlabel("time (UTC)")


def r_over_time(frame: pd.DataFrame, *, by: str, slo: float = 0.98, title: str = "", ax: Any = None) -> Any:
    """R per bucket and group (``time``, ``by``, ``r`` from :func:`explore.with_ratio`) with the SLO line."""
    ax = _axes(ax, (10, 3.2))
    for key, g in frame.groupby(by):
        ax.plot(g["time"], g["r"], lw=1, label=str(key), marker="." if len(g) < 50 else None)
    ax.axhline(slo, color="#cf222e", ls="--", lw=1, label=f"SLO {slo}")
    ax.set_ylabel("R = 1 - 5xx share")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower left", ncol=4)
    ax.grid(alpha=0.3)
    ax.set_ylim(top=1.0)  # R is a share: never above 100 %
    _dates(ax)
    ax.figure.tight_layout()
    return ax


def hour_heatmap(pivot: pd.DataFrame, *, title: str = "", ax: Any = None) -> Any:
    """Hour of day (rows) by group (columns), colour = 5xx ratio in %; empty hours left blank.

    The colour scale is logarithmic: on a linear one an incident hour (a few %) turns every normal
    hour (a few tenths of a %) the same pale colour, hiding the daily pattern beside it.
    """
    import numpy as np
    from matplotlib.colors import LogNorm
    from matplotlib.ticker import FuncFormatter

    ax = _axes(ax, (9, 6))
    values = pivot.to_numpy(dtype=float) * 100
    positive = values[np.isfinite(values) & (values > 0)]
    low = max(float(np.nanpercentile(positive, 1)), 1e-3) if positive.size else 1e-3
    high = max(float(positive.max()) if positive.size else 1.0, low * 10)
    shown = np.where(np.isfinite(values), np.clip(values, low, None), np.nan)  # 0 % at the scale's floor
    image = ax.imshow(shown, aspect="auto", cmap="Reds", interpolation="nearest", norm=LogNorm(low, high))
    ax.set_xticks(range(len(pivot.columns)), [str(c) for c in pivot.columns], rotation=30, ha="right", fontsize=9)
    ax.set_yticks(range(len(pivot.index)), [f"{h:02d}:00" for h in pivot.index], fontsize=8)
    ax.set_ylabel("hour of day (local)")
    ax.set_title(title, fontsize=10)
    bar = ax.figure.colorbar(image, ax=ax, label="5xx ratio (%, log scale)")
    bar.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g} %"))
    ax.figure.tight_layout()
    return ax


def burndown(result: Any, *, ax: Any = None) -> Any:
    """Budget consumed over time (:class:`explore.BudgetBurndown`) against the pace that spends it exactly."""
    ax = _axes(ax, (10, 3.2))
    f, b = result.frame, result.budget
    ax.plot(f["time"], f["consumed"] * 100, color="#1f6feb", lw=1.5, label="budget consumed")
    ax.plot(f["time"], f["sustainable"] * 100, color="#57606a", ls="--", lw=1,
            label=f"a 5xx ratio of exactly {1 - b.slo:.0%}")
    ax.set_ylabel("% of the error budget")
    ax.set_title(f"Error budget burn-down: {1 - b.slo:.0%} of the requests of {b.days:.1f} days of data", fontsize=10)
    ax.legend(fontsize=9, loc="upper left")
    ax.grid(alpha=0.3)
    ax.set_ylim(bottom=0)
    _dates(ax)
    ax.figure.tight_layout()
    return ax


def ratio_with_thresholds(series: pd.DataFrame, thresholds: Mapping[str, float], *, title: str = "",
                          spans: pd.DataFrame | None = None, ax: Any = None) -> Any:
    """One ratio series (``time``, ``value``) with labelled horizontal thresholds and shaded spans."""
    ax = _axes(ax, (10, 3.4))
    ax.plot(series["time"], series["value"] * 100, color="#1f6feb", lw=1, label="5xx ratio, 5-minute rate")
    colors = ["#cf222e", "#9a6700", "#8250df", "#1a7f37", "#57606a"]
    names: dict[float, list[str]] = {}
    for name, value in thresholds.items():  # equal thresholds share one line, or one hides the other
        names.setdefault(float(value), []).append(name)
    for (value, labels), color in zip(names.items(), colors * 3, strict=False):
        ax.axhline(value * 100, color=color, ls="--", lw=1, label=f"{' / '.join(labels)}: {value:.1%}")
    if spans is not None:
        for row in spans.itertuples(index=False):
            ax.axvspan(row.start, row.end, color="#cf222e", alpha=0.12, lw=0)
    ax.set_ylabel("5xx ratio (%)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="upper right")
    ax.grid(alpha=0.3)
    ax.set_ylim(bottom=0)
    _dates(ax)
    ax.figure.tight_layout()
    return ax


def tradeoff_scatter(tradeoff: pd.DataFrame, *, current: tuple[str, float, float] | None = None,
                     best: pd.Series | None = None, ax: Any = None) -> Any:
    """Each breaker configuration as a point: failed calls let through vs good calls rejected.

    ``tradeoff`` comes from :func:`explore.breaker_tradeoff`; the Pareto-optimal
    configurations are joined per policy, the one in force and the recommended one ringed.
    """
    ax = _axes(ax, (8, 4.5))
    markers = {"consecutive": "o", "rate": "s"}
    for policy, g in tradeoff.groupby("policy"):
        ax.scatter(g["good_rejected"], g["failed_calls_allowed_mean"], marker=markers.get(str(policy), "^"),
                   s=22, alpha=0.6, label=f"{policy} policy")
        front = g[g["pareto"]].sort_values("good_rejected")
        ax.plot(front["good_rejected"], front["failed_calls_allowed_mean"], lw=1, alpha=0.7)
    for row, color, label in ((_row(tradeoff, current), "#cf222e", "in force"), (best, "#1a7f37", "recommended")):
        if row is not None:
            ax.scatter([row["good_rejected"]], [row["failed_calls_allowed_mean"]], s=160, facecolors="none",
                       edgecolors=color, linewidths=2,
                       label=f"{label}: {row['policy']} {row['failure_threshold']:g} / {row['timeout']:g} s")
    ax.set_xlabel("good calls rejected by the breaker (mean over repetitions)")
    ax.set_ylabel("failed calls reaching the dependency")
    ax.set_title("Breaker configurations: lower left is better; lines join the Pareto-optimal ones", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ax.figure.tight_layout()
    return ax


def _row(frame: pd.DataFrame, key: tuple[str, float, float] | None) -> pd.Series | None:
    if key is None:
        return None
    hit = frame[(frame["policy"] == key[0]) & (frame["failure_threshold"] == key[1]) & (frame["timeout"] == key[2])]
    return hit.iloc[0] if len(hit) else None
