"""Cache consistency: was the cache invalidated after every queue update (the seed's rule)?

Coverage per clinic is invalidations over queue updates in the window; the periods
when updates happened with no invalidation at all are where stale data was served.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from reliability.errors import NoDataError
from reliability.source.frames import utc
from reliability.source.prom import PrometheusClient
from reliability.source.promql import format_duration

UPDATES, INVALIDATIONS, STALE = "queue_updates_total", "cache_invalidations_total", "cache_stale_reads_total"


@dataclass(frozen=True)
class CacheResult:
    """Per-clinic coverage, the periods without invalidations, and the stale reads."""

    by_clinic: pd.DataFrame  # clinic, updates, invalidations, stale_reads, coverage
    gaps: pd.DataFrame       # clinic, start, end, duration, updates
    threshold: float

    @property
    def coverage(self) -> float:
        """Overall coverage (invalidations / updates), capped at 1."""
        u = self.by_clinic["updates"].sum()
        return float(min(self.by_clinic["invalidations"].sum() / u, 1.0)) if u else float("nan")

    @property
    def below(self) -> pd.DataFrame:
        """Clinics whose coverage is below the threshold."""
        return self.by_clinic[self.by_clinic["coverage"] < self.threshold]

    @property
    def summary(self) -> pd.DataFrame:
        return self.by_clinic


def coverage_table(updates: pd.DataFrame, invalidations: pd.DataFrame, stale: pd.DataFrame) -> pd.DataFrame:
    """Join per-clinic increases (columns clinic, value) into the coverage table."""
    def col(frame: pd.DataFrame, name: str) -> pd.DataFrame:
        if frame.empty:
            return pd.DataFrame({"clinic": pd.Series([], dtype=object), name: pd.Series([], dtype=float)})
        return frame.rename(columns={"value": name})[["clinic", name]]

    t = col(updates, "updates").merge(col(invalidations, "invalidations"), on="clinic", how="left")
    t = t.merge(col(stale, "stale_reads"), on="clinic", how="left").fillna(0.0)
    t["coverage"] = (t["invalidations"] / t["updates"]).clip(upper=1.0).where(t["updates"] > 0)
    return t.sort_values("clinic").reset_index(drop=True)


def gap_periods(updates: pd.DataFrame, invalidations: pd.DataFrame, *, step: float) -> pd.DataFrame:
    """Runs of buckets with queue updates but no invalidation, per clinic.

    Both inputs are range-query frames (clinic, time, value) of per-bucket increases.
    """
    cols = ["clinic", "start", "end", "duration", "updates"]
    if updates.empty:
        return pd.DataFrame(columns=cols)
    u = updates.rename(columns={"value": "u"})[["clinic", "time", "u"]]
    i = invalidations.rename(columns={"value": "i"})[["clinic", "time", "i"]] if not invalidations.empty \
        else pd.DataFrame({"clinic": [], "time": [], "i": []})
    m = u.merge(i, on=["clinic", "time"], how="left").fillna({"i": 0.0}).sort_values(["clinic", "time"])
    m["bad"] = (m["u"] >= 0.5) & (m["i"] < 0.5)
    rows = []
    for clinic, g in m.groupby("clinic"):
        run = (g["bad"] != g["bad"].shift()).cumsum()
        for _, r in g[g["bad"]].groupby(run[g["bad"]]):
            start = r["time"].iloc[0] - pd.Timedelta(seconds=step)
            end = r["time"].iloc[-1]
            rows.append({"clinic": clinic, "start": start, "end": end, "duration": end - start,
                         "updates": float(r["u"].sum())})
    return pd.DataFrame(rows, columns=cols)


def cache_consistency(client: PrometheusClient, start: datetime, end: datetime, *,
                      threshold: float = 0.999, step: float = 300.0) -> CacheResult:
    """Query the three cache counters per clinic and summarise coverage and gaps."""
    start, end = utc(start), utc(end)
    rng = format_duration((end - start).total_seconds())
    q = {m: f"sum by (clinic) (increase({m}[{rng}]))" for m in (UPDATES, INVALIDATIONS, STALE)}
    updates = client.query(q[UPDATES], end)
    if updates.empty:
        raise NoDataError(f"no {UPDATES} samples between {start.isoformat()} and {end.isoformat()}: "
                          "the backend does not export the cache metrics, or had no queue updates")
    answers = [updates, client.query(q[INVALIDATIONS], end), client.query(q[STALE], end)]
    for metric, frame in zip((UPDATES, INVALIDATIONS, STALE), answers, strict=True):
        bad = frame[~frame["value"].apply(math.isfinite) | (frame["value"] < 0)] if len(frame) else frame
        if len(bad):
            raise NoDataError(f"{metric} increased by {bad['value'].iloc[0]} over the window: not a count; the "
                              "cache metrics break the metric contract (monitoring/METRICS.md)")
    table = coverage_table(*answers)
    bucket = format_duration(step)
    first = start + pd.Timedelta(seconds=step)
    gaps = pd.DataFrame(columns=["clinic", "start", "end", "duration", "updates"])
    if first <= end:
        u = client.query_range(f"sum by (clinic) (increase({UPDATES}[{bucket}]))", first, end, step)
        i = client.query_range(f"sum by (clinic) (increase({INVALIDATIONS}[{bucket}]))", first, end, step)
        gaps = gap_periods(u, i, step=step)
    return CacheResult(table, gaps, threshold)
