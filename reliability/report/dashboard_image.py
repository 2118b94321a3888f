"""The dashboard "screenshot": every panel drawn from the queried frames, laid out like Grafana.

Grafana itself cannot be installed where the proof runs, so the report embeds this
figure instead: the same panels, positions (24-column grid), queries and thresholds,
drawn with matplotlib from the frames :func:`reliability.gate.dashboard.run_panels` fetched.
It says it is a redraw, and it is drawn for the page: 10 inches wide with no text under
10 pt, so that scaled to the PDF's 7.2-inch column no text is under 7 pt.
"""
from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd

from reliability.gate.dashboard import Dashboard, Panel
from reliability.source.frames import label_columns

ROW_PX = 40          # one grid row, in units of a 1600-unit-wide dashboard (Grafana: 30 px plus the gap)
HEADER_PX = 110
WIDTH_PX = 1600.0
WIDTH_IN = 10.0      # printed at 7.2 in: 10-pt text prints at 7.2 pt
TEXT_PT = 10         # the smallest text drawn
COLS = 24
REDRAW_NOTE = "redrawn from the dashboard's own queries, not a Grafana screenshot"
_REDUCERS = {"lastNotNull": "last", "last": "last", "mean": "mean", "max": "max", "min": "min", "sum": "sum",
             "firstNotNull": "first", "first": "first"}
_MAX_LEGEND = 6


def render_image(dashboard: Dashboard, results: pd.DataFrame, path_or_ax: Any = None, *,
                 threshold: float = 0.02) -> Any:
    """Draw every panel into one figure laid out by ``gridPos``.

    Parameters
    ----------
    dashboard
        From :func:`reliability.gate.dashboard.load_dashboard`.
    results
        From :func:`reliability.gate.dashboard.run_panels` (its ``attrs["frames"]`` are drawn).
    path_or_ax
        None: just return the figure; a path: also save it there (PNG, SVG, PDF by suffix);
        a matplotlib Axes: draw inside its area (it is switched off).
    threshold
        Drawn on 5xx-ratio panels that configure no thresholds of their own.

    Returns
    -------
    matplotlib.figure.Figure
        One axes per panel (rows are drawn as text), each titled with the panel title.
    """
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    height = max((p.grid[1] + p.grid[3] for p in dashboard.panels), default=1)
    if isinstance(path_or_ax, Axes):
        host = path_or_ax
        fig = host.figure
        host.set_axis_off()
        box = host.get_position()
        width_px = box.width * fig.get_figwidth() * fig.dpi
        height_px = box.height * fig.get_figheight() * fig.dpi

        def place(rect: list[float]) -> Any:
            return host.inset_axes(rect)

        top = 1.0
    else:
        width_px, height_px = WIDTH_PX, height * ROW_PX + HEADER_PX
        fig = Figure(figsize=(WIDTH_IN, WIDTH_IN * height_px / WIDTH_PX), dpi=100)
        place = fig.add_axes
        top = 1 - HEADER_PX / height_px
        start, end = results.attrs.get("start"), results.attrs.get("end")
        span = f"   {start:%Y-%m-%d %H:%M} .. {end:%Y-%m-%d %H:%M} UTC" if start is not None else ""
        fig.suptitle(f"{dashboard.title}{span}\n{REDRAW_NOTE}", x=0.01, y=1 - 6 / height_px, ha="left", va="top",
                     fontsize=12, fontweight="bold", linespacing=1.3)
    frames = results.attrs.get("frames", {})
    unit_h = top / height
    px_w, px_h = 1 / width_px, 1 / height_px    # one pixel in axes fractions
    for panel in dashboard.panels:
        x, y, w, h = panel.grid
        if panel.type == "row":
            fig_y = top - (y + 0.5) * unit_h
            if isinstance(path_or_ax, Axes):
                host.text(0.0, fig_y, panel.title, transform=host.transAxes, fontsize=11, fontweight="bold",
                          va="center")
            else:
                fig.text(0.005, fig_y, panel.title, fontsize=11, fontweight="bold", va="center")
            continue
        # Room inside the grid cell for the title above and the tick labels left and below.
        axes = panel.type in ("timeseries", "graph")  # a stat or text panel has no ticks to make room for
        left, right, below, above = (110 if axes else 14) * px_w, 14 * px_w, 62 * px_h, 38 * px_h
        rect = [x / COLS + left, top - (y + h) * unit_h + below,
                w / COLS - left - right, h * unit_h - below - above]
        ax = place(rect)
        chars = int(rect[2] * WIDTH_IN * 72 / (0.6 * TEXT_PT))  # what fits the panel's width at TEXT_PT
        ax.set_title(textwrap.fill(panel.title, max(chars, 12)), fontsize=TEXT_PT, loc="left")
        rows = results[results["panel_id"] == panel.id] if len(results) else results
        errors = [f"{r.ref_id}: {r.error}" for r in rows.itertuples() if r.status != "PASS"]
        data = [(t, frames.get((panel.id, t.ref_id))) for t in panel.targets]
        data = [(t, f) for t, f in data if f is not None and len(f)]
        if panel.type in ("stat", "gauge", "bargauge"):
            _stat(ax, panel, data)
        elif panel.type == "text":
            _text(ax, panel)
        elif panel.type in ("timeseries", "graph"):
            _timeseries(ax, panel, data, threshold)
        else:
            ax.set_axis_off()
            ax.text(0.5, 0.5, f"{panel.type}: {sum(_n_series(f) for _, f in data)} series", ha="center",
                    va="center", transform=ax.transAxes)
        if errors:
            ax.text(0.5, 0.5, "\n".join(errors)[:300], ha="center", va="center", color="#c4162a", fontsize=TEXT_PT,
                    transform=ax.transAxes, wrap=True)
    if path_or_ax is not None and not isinstance(path_or_ax, Axes):
        fig.savefig(Path(path_or_ax))
    return fig


def _n_series(frame: pd.DataFrame) -> int:
    labels = label_columns(frame)
    return len(frame.drop_duplicates(labels)) if labels else int(len(frame) > 0)


def _legend(fmt: str | None, key: dict[str, Any], fallback: str) -> str:
    if fmt and fmt != "__auto":
        return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: str(key.get(m.group(1), "")), fmt)
    inner = ", ".join(f'{k}="{v}"' for k, v in key.items() if pd.notna(v))
    return f"{{{inner}}}" if inner else fallback


def _series(frame: pd.DataFrame) -> list[tuple[dict[str, Any], pd.DataFrame]]:
    labels = label_columns(frame)
    if not labels:
        return [({}, frame)]
    return [(dict(zip(labels, key if isinstance(key, tuple) else (key,), strict=True)), part)
            for key, part in frame.groupby(labels, dropna=False, sort=True)]


def _is_ratio_5xx(panel: Panel) -> bool:
    return any('status=~"5' in t.expr and "/" in t.expr for t in panel.targets)


def _percent(panel: Panel) -> bool:
    return panel.unit == "percentunit"


def _timeseries(ax: Any, panel: Panel, data: list[tuple[Any, pd.DataFrame]], threshold: float) -> None:
    import matplotlib.dates as mdates
    from matplotlib.ticker import PercentFormatter

    n = 0
    for target, frame in data:
        for key, part in _series(frame):
            part = part.sort_values("time")
            label = _legend(target.legend, key, target.ref_id) if n < _MAX_LEGEND else None
            ax.plot(part["time"].dt.tz_convert(None).to_numpy(), part["value"].to_numpy(), lw=1.0, label=label)
            n += 1
    limits = list(panel.thresholds) or ([threshold] if _is_ratio_5xx(panel) else [])
    percent = _percent(panel) or (not panel.thresholds and _is_ratio_5xx(panel))
    for value in limits:
        ax.axhline(value, color="#c4162a", ls="--", lw=1.0, label=f"threshold {value:.0%}" if percent else
                   f"threshold {value:g}")
    if percent:
        ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=1))
    locator = mdates.AutoDateLocator(maxticks=6)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, show_offset=False))  # the header has the dates
    ax.set_xlabel("UTC", fontsize=TEXT_PT, labelpad=1)
    ax.tick_params(labelsize=TEXT_PT)
    ax.grid(True, alpha=0.3)
    _limits(ax, [f["value"] for _, f in data], limits, ratio=percent)
    if n or limits:
        ax.legend(fontsize=TEXT_PT, loc="best", ncols=2, frameon=True, framealpha=0.8, edgecolor="none",
                  handlelength=1.2, columnspacing=0.8, borderaxespad=0.2, labelspacing=0.2)
    if not n:
        ax.text(0.5, 0.5, "No data", ha="center", va="center", transform=ax.transAxes, color="#888888")


def _limits(ax: Any, values: list[pd.Series], lines: list[float], *, ratio: bool) -> None:
    """Axis limits that mean something: a ratio never above 100 %, a count never below 0.

    Matplotlib pads around the data, which drew R up to 102.5 %, coverage to 108 % and
    stale reads from -0.04; a flat line at 0 gets 0 to 1.
    """
    finite = pd.concat([*values, pd.Series(lines, dtype=float)]).dropna()
    if not len(finite):
        return
    low, high = ax.get_ylim()
    lo, hi = float(finite.min()), float(finite.max())
    if lo >= 0:
        low = 0.0 if lo == hi else max(low, 0.0)
    if lo == hi == 0:
        high = 1.0
    elif ratio and hi <= 1:
        high = min(high, 1.0)
    ax.set_ylim(low, high)


def _reduce(panel: Panel, values: pd.Series) -> float:
    calcs = ((panel.raw.get("options") or {}).get("reduceOptions") or {}).get("calcs") or ["lastNotNull"]
    how = _REDUCERS.get(calcs[0], "last")
    values = values.dropna()
    return float(getattr(values, how)() if how not in ("last", "first") else
                 (values.iloc[-1] if how == "last" else values.iloc[0]))


def _format(panel: Panel, value: float) -> str:
    if panel.unit == "percentunit":
        return f"{value * 100:.2f} %"
    if panel.unit == "percent":
        return f"{value:.2f} %"
    if panel.unit == "reqps":
        return f"{value:.3g} req/s"
    return f"{value:.4g}"


def _stat(ax: Any, panel: Panel, data: list[tuple[Any, pd.DataFrame]]) -> None:
    ax.set_axis_off()
    shown = []
    for target, frame in data:
        for key, part in _series(frame.sort_values("time")):
            if part["value"].notna().any():
                shown.append((_legend(target.legend, key, ""), _reduce(panel, part["value"])))
    if not shown:
        ax.text(0.5, 0.45, "No data", ha="center", va="center", transform=ax.transAxes, color="#888888",
                fontsize=16)
        return
    shown = shown[:4]
    for i, (label, value) in enumerate(shown):
        colour = _step_colour(panel, value)
        yy = 0.45 if len(shown) == 1 else 0.8 - i * 0.6 / max(len(shown) - 1, 1)
        size = 26 if len(shown) == 1 else 14
        text = _format(panel, value) + (f"  {label}" if label and len(shown) > 1 else "")
        ax.text(0.5, yy, text, ha="center", va="center", transform=ax.transAxes, fontsize=size,
                fontweight="bold", color=colour)


_COLOURS = {"green": "#37872d", "red": "#c4162a", "orange": "#ff780a", "yellow": "#e0b400", "blue": "#1f60c4",
            "purple": "#8f3bb8", "text": "#202020"}


def _step_colour(panel: Panel, value: float) -> str:
    """The colour of the last threshold step at or below ``value`` (Grafana's absolute mode)."""
    from matplotlib.colors import is_color_like

    steps = ((((panel.raw.get("fieldConfig") or {}).get("defaults") or {}).get("thresholds") or {})
             .get("steps")) or []
    colour = "#37872d"
    for step in steps:
        limit = step.get("value") if isinstance(step, dict) else None
        if limit is None or value >= limit:
            name = str(step.get("color", "green")) if isinstance(step, dict) else "green"
            colour = _COLOURS.get(name.split("-")[-1], name if is_color_like(name) else "#555555")
    return colour


def _text(ax: Any, panel: Panel) -> None:
    ax.set_axis_off()
    content = str((panel.raw.get("options") or {}).get("content") or panel.raw.get("content") or "")
    ax.text(0.01, 0.95, content[:400], ha="left", va="top", transform=ax.transAxes, fontsize=TEXT_PT, wrap=True)
