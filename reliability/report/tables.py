"""Tables as an approver reads them: few columns, formatted numbers, plain words.

Presentation only: each function takes an analysis result (a frame or a dataclass)
and returns a pandas Styler for notebooks and the PDF. No numbers are computed here.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

_STATUS_COLORS = {"PASS": "#1a7f37", "FAIL": "#cf222e", "WARN": "#9a6700",
                  "INCONCLUSIVE": "#9a6700", "NOT CONFIGURED": "#57606a"}


def _style(frame: pd.DataFrame, caption: str | None = None, fmt: dict[str, Any] | None = None) -> Any:
    styler = frame.style.hide(axis="index")
    if fmt:
        styler = styler.format({k: v for k, v in fmt.items() if k in frame.columns}, na_rep="—")
    if caption:
        styler = styler.set_caption(caption)
    text_cols = [c for c in frame.columns if frame[c].dtype == object or str(frame[c].dtype).startswith("str")]
    if text_cols:
        styler = styler.set_properties(subset=text_cols, **{"text-align": "left"})
    return styler.set_table_styles([
        {"selector": "caption", "props": "caption-side: top; text-align: left; font-weight: bold;"},
        {"selector": "th", "props": "text-align: left;"},
    ])


def status_cell(value: str) -> str:
    color = _STATUS_COLORS.get(str(value), "#24292f")
    return f"color: {color}; font-weight: bold;"


def checks_frame(items: Any) -> Any:
    """A list of checks (not yet a verdict) as a table."""
    rows = [{"Check": c.name, "Status": str(c.status), "Required": "yes" if c.required else "no",
             "Detail": c.detail} for c in items]
    return _style(pd.DataFrame(rows)).map(status_cell, subset=["Status"])


def r_bounds(frame: pd.DataFrame, *, caption: str) -> Any:
    """Per-group R with the plain and clustering-adjusted lower bounds, the independent units and the evidence
    needed."""
    keys = [c for c in frame.columns if c not in {
        "requests", "errors", "r", "lower", "lower_adjusted", "upper_adjusted", "phi", "confidence",
        "method", "threshold", "min_requests", "sufficient", "passes", "units", "batch", "dependence", "shortfall"}]
    cols = ["requests", "errors", "r", "lower", "lower_adjusted", "phi", "units", "min_requests", "passes"]
    out = frame[[*keys, *[c for c in cols if c in frame]]].copy()
    out["passes"] = out["passes"].map({True: "yes", False: "no"})
    out = out.rename(columns={"requests": "requests", "errors": "5xx", "r": "R", "lower": "lower bound",
                              "lower_adjusted": "adjusted lower bound", "phi": "φ", "units": "indep. units",
                              "min_requests": "requests needed", "passes": "proven"})
    return _style(out, caption, {
        "requests": "{:,.0f}", "5xx": "{:,.0f}", "R": "{:.5f}", "lower bound": "{:.5f}",
        "adjusted lower bound": "{:.5f}", "φ": "{:.2f}", "indep. units": "{:,.0f}",
        "requests needed": "{:,.0f}"})


def frame(frame: pd.DataFrame, *, caption: str | None = None, fmt: dict[str, Any] | None = None) -> Any:
    """Any tidy frame, with times shown to the second in UTC."""
    out = frame.copy()
    for col in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[col]):
            out[col] = out[col].dt.strftime("%Y-%m-%d %H:%M:%S").fillna("—")
        elif out[col].dtype == object and out[col].map(lambda v: v is pd.NaT or isinstance(v, pd.Timestamp)).any():
            # a time column with missing times (nothing fired) can be object-typed
            out[col] = out[col].map(lambda v: "—" if v is pd.NaT or v is None
                                    else v.strftime("%Y-%m-%d %H:%M:%S") if hasattr(v, "strftime") else v)
        elif pd.api.types.is_timedelta64_dtype(out[col]):
            out[col] = out[col].map(lambda d: "—" if pd.isna(d) else str(d).replace("0 days ", ""))
        elif pd.api.types.is_bool_dtype(out[col]):
            out[col] = out[col].map({True: "yes", False: "no"})
    out.columns = [str(c).replace("_", " ") for c in out.columns]
    fmt = {str(k).replace("_", " "): v for k, v in (fmt or {}).items()}
    return _style(out, caption, fmt)


def burn_rates(frame: pd.DataFrame, *, caption: str) -> Any:
    """The multi-window burn-rate table with ratios as percentages and burns to two decimals."""
    out = frame.rename(columns={"long_window": "long window", "short_window": "short window",
                                "long_ratio": "long 5xx ratio", "short_ratio": "short 5xx ratio",
                                "long_burn_rate": "long burn", "short_burn_rate": "short burn"})
    return _style(out, caption, {"threshold": "{:.1f}", "long 5xx ratio": "{:.3%}", "short 5xx ratio": "{:.3%}",
                                 "long burn": "{:.2f}", "short burn": "{:.2f}"})


def comparison(c: Any, *, candidate: str, stable: str) -> Any:
    """Candidate and stable side by side: requests, 5xx, 5xx ratio and the clustering factor used."""
    out = pd.DataFrame([
        {"version": f"{candidate} (candidate)", "requests": c.candidate_requests, "5xx": c.candidate_errors,
         "5xx ratio": c.candidate_ratio, "φ": c.phi_candidate},
        {"version": f"{stable} (stable)", "requests": c.stable_requests, "5xx": c.stable_errors,
         "5xx ratio": c.stable_ratio, "φ": c.phi_stable}])
    return _style(out, None, {"requests": "{:,.0f}", "5xx": "{:,.0f}", "5xx ratio": "{:.3%}", "φ": "{:.2f}"})


def screenshots(folder: str) -> list[str]:
    """The Prometheus UI's pictures (each checked against its sha256), each an HTML figure with its caption,
    kept on one page of the PDF."""
    import base64
    import html

    from reliability.source import screenshots as taken

    manifest = taken.read(folder) if folder not in ("", "off") else None
    if manifest is None:
        return []
    figures = []
    for s in manifest["shots"]:
        data = base64.b64encode(Path(s["path"]).read_bytes()).decode()
        caption = (f"Screenshot of the Prometheus web UI at {manifest['prometheus']}, taken {manifest['taken_at']} "
                   f"with headless Chromium: {s['shows']} ({s['file']}).")
        figures.append(f'<figure style="break-inside: avoid; margin: 0.5em 0;"><img alt="{html.escape(s["file"])}" '
                       f'src="data:image/png;base64,{data}" style="width: 86%; border: 1px solid #d0d7de;"/>'
                       f"<figcaption>{html.escape(caption)}</figcaption></figure>")
    return figures
