"""Prometheus answers as tidy frames: one row per timestamp and label set, times in UTC.

Every layer above reads these frames, never raw JSON, so the shape is defined once here.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pandas as pd

from reliability.errors import ConfigurationError


def utc(t: datetime) -> datetime:
    """Require a tz-aware time and return it in UTC; naive times are ambiguous evidence."""
    if not isinstance(t, datetime):
        raise ConfigurationError(f"expected a datetime, got {t!r}")
    if t.tzinfo is None or t.utcoffset() is None:
        raise ConfigurationError(f"time {t.isoformat()} has no time zone; pass a tz-aware UTC datetime")
    return t.astimezone(timezone.utc)


def label_columns(frame: pd.DataFrame, *, name: bool = True) -> list[str]:
    """The label columns of a :func:`tidy` frame: all but ``time`` and ``value`` (and ``__name__``
    with ``name=False``, as PromQL's vector matching and alert labels ignore it)."""
    skip = ("time", "value") if name else ("time", "value", "__name__")
    return [c for c in frame.columns if c not in skip]


def _n_series(frame: pd.DataFrame) -> int:
    labels = label_columns(frame)
    return len(frame[labels].drop_duplicates()) if labels else int(len(frame) > 0)


def tidy(result: Any) -> pd.DataFrame:
    """Prometheus ``data.result`` (vector, matrix or scalar) to one row per time and label set.

    Columns: one per label (sorted), then ``time`` (tz-aware UTC) and ``value`` (float).
    """
    rows: list[dict[str, Any]] = []
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        result = [{"metric": {}, "value": result}]  # scalar
    for series in result or []:
        metric = series.get("metric", {})
        samples = series.get("values") or ([series["value"]] if "value" in series else [])
        for ts, val in samples:
            rows.append({**metric, "time": float(ts), "value": float(val)})
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame({"time": pd.Series([], dtype="datetime64[ns, UTC]"), "value": pd.Series([], dtype=float)})
    labels = sorted(label_columns(frame))
    # Prometheus times are whole milliseconds; seconds as floats (1796197945.705) would land a few
    # nanoseconds off the evaluation grid, so they are rounded back to the millisecond.
    frame["time"] = pd.to_datetime((frame["time"] * 1000).round().astype("int64"), unit="ms", utc=True)
    for c in labels:
        frame[c] = frame[c].astype(object).where(frame[c].notna(), "")
    return frame[[*labels, "time", "value"]].sort_values([*labels, "time"], kind="stable").reset_index(drop=True)
