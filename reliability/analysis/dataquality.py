"""Data-quality preflight: what in the window makes the numbers less trustworthy.

Reported as warnings with times, not errors: scrape gaps (``up`` 0 or absent),
counter resets, impossible values (5xx above total) and targets down at the window end.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd

from reliability.source.frames import utc
from reliability.source.prom import PrometheusClient
from reliability.source.promql import format_duration
from reliability.source.sli import SEED, Sli


@dataclass(frozen=True)
class DataQuality:
    """Every finding as one row: kind, instance, start, end, detail."""

    findings: pd.DataFrame

    @property
    def ok(self) -> bool:
        return self.findings.empty

    @property
    def summary(self) -> pd.DataFrame:
        return self.findings


COLUMNS = ["kind", "instance", "start", "end", "detail"]
RESET_LOOKBACK_S = 300.0


def scrape_gaps(up: pd.DataFrame, *, start: datetime, end: datetime, step: float) -> pd.DataFrame:
    """Runs where ``up`` was 0 or had no sample, per instance, from a range frame (instance, time, value)."""
    rows = []
    grid = pd.date_range(utc(start), utc(end), freq=pd.Timedelta(seconds=step))
    for instance, g in up.groupby("instance"):
        s = g.set_index("time")["value"].reindex(grid)
        # an instance that only exists for part of the window (a canary) is not "down" outside it
        alive = s.notna()
        first, last = alive.idxmax(), alive[::-1].idxmax()
        s = s.loc[first:last]
        bad = s.isna() | (s < 1)
        run = (bad != bad.shift()).cumsum()
        for _, r in s[bad].groupby(run[bad]):
            rows.append({"kind": "scrape gap", "instance": instance, "start": r.index[0],
                         "end": r.index[-1] + pd.Timedelta(seconds=step),
                         "detail": f"up was 0 or absent for {len(r) * step / 60:.0f} min"})
    return pd.DataFrame(rows, columns=COLUMNS)


def counter_resets(frame: pd.DataFrame, *, step: float) -> pd.DataFrame:
    """Findings from ``resets(metric[lookback]) > 0`` evaluated every ``step`` (instance, time, value).

    A reset shows in every step whose lookback holds it, so each run of consecutive steps is
    one restart, and the sample after the reset lies in the run's first step.
    """
    rows = []
    if "instance" not in frame:  # a series without the label still counts, under no instance
        frame = frame.assign(instance="")
    for instance, g in frame.groupby("instance") if not frame.empty else ():
        g = g.sort_values("time")
        run = (g["time"].diff() != pd.Timedelta(seconds=step)).cumsum()
        for _, r in g.groupby(run):
            first = r["time"].iloc[0]
            n = int(r["value"].max())
            rows.append({"kind": "counter reset", "instance": instance,
                         "start": first - pd.Timedelta(seconds=step), "end": first, "count": n,
                         "detail": f"{n} series reset (process restart); increase() compensates"})
    return pd.DataFrame(rows, columns=[*COLUMNS, "count"])


def preflight(client: PrometheusClient, start: datetime, end: datetime, *, step: float = 30.0,
              sli: Sli = SEED) -> DataQuality:
    """Run the data-quality checks over the window with a handful of aggregated queries (on the SLI's counter)."""
    metric = sli.selector()
    start, end = utc(start), utc(end)
    rng = format_duration((end - start).total_seconds())
    up = client.query_range("min by (instance) (up)", start, end, step)
    if up.empty or "instance" not in up:
        rows = [pd.DataFrame([{"kind": "no up series", "instance": "", "start": start, "end": end,
                               "detail": "Prometheus has no up series with an instance label in the window: "
                                         "scrape gaps cannot be seen (is the history backfilled without up?)"}],
                             columns=COLUMNS)]
    else:
        rows = [scrape_gaps(up, start=start, end=end, step=step)]
    # Every reset in the window, then located to the step where the lookback allows it.
    total = client.query(f"sum by (instance) (resets({metric}[{rng}])) > 0", end)
    lookback = max(2 * step, RESET_LOOKBACK_S)  # at least two samples even around a short gap
    located = pd.DataFrame(columns=[*COLUMNS, "count"])
    if not total.empty and (end - start).total_seconds() > lookback:
        located = counter_resets(client.query_range(
            f"sum by (instance) (resets({metric}[{format_duration(lookback)}])) > 0",
            start + pd.Timedelta(seconds=lookback), end, step), step=step)
    rows.append(located)
    for _, r in total.iterrows():
        instance = r.get("instance", "")
        missing = int(r["value"]) - int(located.loc[located["instance"] == instance, "count"].sum())
        if missing > 0:  # a series back lower after a long absence, or a window shorter than the lookback
            rows.append(pd.DataFrame([{"kind": "counter reset", "instance": instance, "start": start, "end": end,
                                       "count": missing, "detail": f"{missing} series reset in the window, not "
                                       f"located to a step (across a gap in their samples longer than "
                                       f"{format_duration(lookback)}, or a shorter window); increase() compensates"}]))
    impossible = client.query(f'{sli.counted("increase", rng, errors=True)} > {sli.counted("increase", rng)}', end)
    if not impossible.empty:
        rows.append(pd.DataFrame([{"kind": "impossible values", "instance": "", "start": start, "end": end,
                                   "detail": f"more failures than requests in {sli.requests}: the exporter "
                                             "is broken"}]))
    down = client.query("up == 0", end)
    if not down.empty:
        rows.append(pd.DataFrame([{"kind": "target down at end", "instance": r.get("instance", ""),
                                   "start": end, "end": end, "detail": "up == 0 at the window end"}
                                  for _, r in down.iterrows()]))
    findings = pd.concat([r for r in rows if not r.empty], ignore_index=True) if any(
        not r.empty for r in rows) else rows[0]
    return DataQuality(findings[COLUMNS].reset_index(drop=True))
