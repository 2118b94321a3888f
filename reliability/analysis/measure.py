"""Measuring R = 1 - failures/requests from Prometheus, with the aggregation done in PromQL.

Which counter and labels are read is the SLI's (:mod:`reliability.source.sli`), passed in; the
queries are its. Totals use ``increase()`` over the whole window evaluated at its end, so counter
resets are handled by Prometheus; the R time series uses the seed alert's own expression.
Nothing here turns "no traffic" into R = 1: absent data stays absent.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from reliability.errors import ConfigurationError, NoDataError, QueryTooLarge
from reliability.source.frames import utc
from reliability.source.pieces import over_window, tiled
from reliability.source.prom import PrometheusClient
from reliability.source.promql import format_duration, matcher, parse_selector
from reliability.source.sli import SEED, Sli
from reliability.times import parse_duration

Selector = str | Sequence[str] | None


def _by(by: Sequence[str]) -> list[str]:
    for label in by:
        matcher(label, "")  # validates the label name
    return list(by)


def _matchers(selector: Selector) -> list[str]:
    return parse_selector(selector) if isinstance(selector, str) or selector is None else list(selector)


def window_seconds(start: datetime, end: datetime) -> float:
    """The window length; at least one scrape step so ``increase()`` has two samples."""
    seconds = (utc(end) - utc(start)).total_seconds()
    if seconds <= 0:
        raise ConfigurationError(f"window end {end.isoformat()} is not after its start {start.isoformat()}")
    return seconds


def totals_queries(start: datetime, end: datetime, *, sli: Sli = SEED, selector: Selector = None,
                   version: str | None = None, by: Sequence[str] = ()) -> tuple[str, str]:
    """The two PromQL expressions for requests and failures over [start, end], evaluated at end."""
    seconds, m, grp = window_seconds(start, end), _matchers(selector), _by(by)
    return (sli.total(seconds, matchers=m, version=version, by=grp),
            sli.total(seconds, matchers=m, errors=True, version=version, by=grp))


def totals(client: PrometheusClient, start: datetime, end: datetime, *, sli: Sli = SEED,
           selector: Selector = None, version: str | None = None, by: Sequence[str] = ()) -> pd.DataFrame:
    """Requests and failures per group over the window: columns ``*by, requests, errors``.

    Raises :class:`NoDataError` when the window holds no requests at all. A group with
    requests but no failure series has 0 errors (it served no 5xx), which is not masking.
    """
    keys = list(by)
    window_seconds(start, end)  # a window that ends before it starts is the caller's error, said first
    if sli.joins(version, by):  # each minute joined to the version of its time
        n, e = _joined_totals(client, start, end, sli=sli, selector=selector, version=version, by=keys)
    else:
        # One increase() over the window (it extrapolates once); in pieces if the server refuses it whole.
        m, grp = _matchers(selector), _by(by)
        n, e = (over_window(client, lambda rng, errors=errors: sli.increase(
                    rng, matchers=m, errors=errors, version=version, by=grp), start, end, "sum")
                for errors in (False, True))
    for frame in (n, e):  # an empty answer (no 5xx at all: the best case) has no label columns
        for k in keys:
            if k not in frame:
                frame[k] = ""
    n = n.rename(columns={"value": "requests"})[[*keys, "requests"]]
    e = e.rename(columns={"value": "errors"})[[*keys, "errors"]]
    for name, frame in (("request", n), ("5xx", e)):
        values = frame.iloc[:, -1]
        if len(values) and (~values.apply(math.isfinite) | (values < 0)).any():
            raise NoDataError(f"Prometheus answered {name} counts that are not finite non-negative numbers "
                              f"({', '.join(map(str, values[~values.apply(math.isfinite) | (values < 0)].head(3)))}): "
                              f"the series break the metric contract of {sli.requests}; check the exporter")
    frame = n.merge(e, on=keys, how="left") if keys else n.assign(errors=e["errors"].sum() if len(e) else 0.0)
    frame["errors"] = frame["errors"].fillna(0.0)
    frame = frame[frame["requests"] > 0].reset_index(drop=True)
    if frame.empty:
        who = f" of {sli.version_label}={version!r}" if version is not None and sli.version_info else ""
        raise NoDataError(
            f"no requests in {sli.selector(_matchers(selector), version=version)}{who} between "
            f"{start.isoformat()} and {end.isoformat()}: no traffic, or the selector matches nothing "
            "(`reliability sli` shows what the server has); R cannot be proven from no data"
        )
    return frame


def _joined_totals(client: PrometheusClient, start: datetime, end: datetime, *, sli: Sli, selector: Selector,
                   version: str | None, by: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Requests and failures of a version joined from an info metric: the window cut into steps of
    about a minute that tile it exactly, each step's increase joined to the version of its time,
    the steps added up (two range queries; a version that moved between instances is counted
    where it ran, to the step)."""
    pieces, m = max(1, math.ceil(window_seconds(start, end) / 60.0)), _matchers(selector)
    n, e = (tiled(client, lambda rng, errors=errors: sli.counted("increase", rng, matchers=m, errors=errors,
                                                                 version=version, by=by), start, end, pieces, "sum")
            for errors in (False, True))
    return n, e


def recorded_coverage(client: PrometheusClient, start: datetime, end: datetime, *, sli: Sli = SEED,
                      selector: Selector = None) -> str:
    """Why the SLI's recording rules cannot count [start, end] (``""`` when they can).

    They can when their requests series is evaluated up to the window's end and from its start (or
    from when the raw series began, for a service born inside the window). Three cheap queries on
    the recorded series and one instant of the raw ones. A gap inside the window (rules stopped for
    minutes while scraping went on) is not seen: those minutes would be missing from the counts.
    """
    if not sli.recorded:
        return "the SLI declares no recording rules ([sli] recorded)"
    name, m = sli.recorded_name, _matchers(selector)
    series = sli.recorded_series(m)
    t_first, resolution = _first_sample(client, series, start, end)
    last = client.query(f"max(timestamp({series}))", utc(end))
    if t_first is None or last.empty:
        return f"{series} has no samples in the window: the rules are not loaded on this server, or not for this scope"
    t_last = pd.Timestamp(float(last["value"].iloc[0]), unit="s", tz="UTC")
    if t_last < pd.Timestamp(utc(end)) - pd.Timedelta(seconds=150):
        return f"{name} was last evaluated at {t_last:%Y-%m-%dT%H:%M:%SZ}, before the window's end"
    per_10m = client.query(f"max(count_over_time({series}[10m]))", utc(end))
    if len(per_10m) and not 9 <= float(per_10m["value"].iloc[0]) <= 11:
        return (f"{name} is evaluated {float(per_10m['value'].iloc[0]):g} times in 10 minutes, not every minute: "
                "set its group's interval to 1m")
    if t_first > pd.Timestamp(utc(start)) + pd.Timedelta(seconds=resolution):
        # Three minutes past the search's last step without it (a rule's first minute needs two samples):
        # raw samples there and none recorded means the rule was not running yet.
        at = (t_first - pd.Timedelta(seconds=resolution - 180)).to_pydatetime()
        if len(client.query(f"count({sli.selector(m)})", at)) and not len(client.query(f"count({series})", at)):
            return (f"{name} begins at {t_first:%Y-%m-%dT%H:%MZ}, after the window's start, while {sli.requests} "
                    "has samples before it (the rules were added later)")
    return ""


def first_seen(client: PrometheusClient, start: datetime, end: datetime, *, sli: Sli = SEED,
               selector: Selector = None) -> datetime | None:
    """When the service's requests first appear in [start, end] (to about 1/720 of it), or None.

    A budget "over the last 30 days" of a service monitored for a week covers a week; this says so.
    One instant query: a subquery of the summed series' timestamps, never the raw series.
    """
    # The recorded series where the proof found it covering (one per version, not one per raw counter).
    series = sli.recorded_series(_matchers(selector)) if sli.recorded and sli.covered else sli.selector(
        _matchers(selector))
    first, _ = _first_sample(client, series, start, end)
    return None if first is None else first.to_pydatetime()


def _first_sample(client: PrometheusClient, series: str, start: datetime, end: datetime) -> tuple[
        pd.Timestamp | None, float]:
    """When ``series`` (summed) first has a sample in [start, end], to the resolution returned with it
    (about 1/720 of the window, whole minutes): a subquery of its timestamps, in pieces if refused."""
    resolution = max(60.0, math.ceil(window_seconds(start, end) / 720 / 60) * 60)
    frame = over_window(client, lambda rng: f"min_over_time(timestamp(sum({series}))[{rng}:"
                                            f"{format_duration(resolution)}])", start, end, "min")
    if frame.empty or not math.isfinite(float(frame["value"].iloc[0])):
        return None, resolution
    return pd.Timestamp(float(frame["value"].iloc[0]), unit="s", tz="UTC"), resolution


def ratio_query(*, sli: Sli = SEED, selector: Selector = None, version: str | None = None, by: Sequence[str] = (),
                rate_window: str = "5m") -> str:
    """The seed alert's 5xx ratio, optionally per group; a group with traffic but no 5xx is 0."""
    return sli.ratio(rate_window, matchers=_matchers(selector), version=version, by=_by(by))


def ratio_series(client: PrometheusClient, start: datetime, end: datetime, *, step: float = 60.0, sli: Sli = SEED,
                 selector: Selector = None, version: str | None = None, by: Sequence[str] = ()) -> pd.DataFrame:
    """The 5-minute 5xx ratio over time (columns ``*by, time, value``), as the alert sees it."""
    return client.query_range(ratio_query(sli=sli, selector=selector, version=version, by=by), utc(start), utc(end),
                              step)


def bucket_counts(client: PrometheusClient, start: datetime, end: datetime, *, bucket: float = 300.0,
                  sli: Sli = SEED, selector: Selector = None, version: str | None = None,
                  by: Sequence[str] = ()) -> pd.DataFrame:
    """Requests and failures per bucket (columns ``*by, time, requests, errors``) for the dispersion estimate."""
    rng = format_duration(bucket)
    first = utc(start) + pd.Timedelta(seconds=bucket)
    keys = _by(by)
    if first > utc(end):
        return pd.DataFrame({**{k: [] for k in keys}, "time": [], "requests": [], "errors": []})
    m = _matchers(selector)
    n = client.query_range(sli.counted("increase", rng, matchers=m, version=version, by=keys), first, utc(end), bucket)
    e = client.query_range(sli.counted("increase", rng, matchers=m, errors=True, version=version, by=keys),
                           first, utc(end), bucket)
    for frame in (n, e):
        for k in keys:
            if k not in frame:
                frame[k] = ""
    frame = n.rename(columns={"value": "requests"})[[*keys, "time", "requests"]].merge(
        e.rename(columns={"value": "errors"})[[*keys, "time", "errors"]], on=[*keys, "time"], how="left")
    frame["errors"] = frame["errors"].fillna(0.0)
    return frame


def step_counts(client: PrometheusClient, start: datetime, end: datetime, *, step: float = 60.0, sli: Sli = SEED,
                selector: Selector = None, version: str | None = None, by: Sequence[str] = (),
                scrape_interval: float = 0.0) -> pd.DataFrame:
    """Requests and failures per query step, what :func:`~reliability.analysis.stats.bound_r_buckets` takes.

    The step is at least two scrape intervals, so every ``increase()`` sees two samples or more.
    """
    return bucket_counts(client, start, end, bucket=max(step, 2 * scrape_interval), sli=sli, selector=selector,
                         version=version, by=by)


def clustering_by(steps: pd.DataFrame, by: Sequence[str], *, confidence: float = 0.95) -> dict[object, Any]:
    """How the 5xx cluster per group (keys as ``bound_r_frame`` expects them), from :func:`step_counts`."""
    from reliability.analysis.stats import clustering

    if steps.empty:
        return {}
    keys = list(by)
    return {key: clustering(g, confidence=confidence)
            for key, g in steps.groupby(keys[0] if len(keys) == 1 else keys)}


@dataclass(frozen=True)
class RatioProfile:
    """What the R time series says: the worst 5 minutes and how long the ratio was above 2 %."""

    worst_ratio: float
    worst_time: pd.Timestamp | None
    fraction_above: float
    periods: pd.DataFrame  # start, end, duration, peak

    @property
    def worst_r(self) -> float:
        return 1.0 - self.worst_ratio

    @property
    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([{
            "worst 5m R": self.worst_r, "worst at": self.worst_time,
            "time above 2 %": self.fraction_above, "periods above 2 %": len(self.periods),
        }])


def ratio_profile(series: pd.DataFrame, *, threshold: float = 0.02, step: float = 60.0) -> RatioProfile:
    """Summarise a single ratio series (``time, value``); periods are runs of steps above threshold.

    A period ends at the first step back at or below the threshold, or at a gap
    (missing steps mean no traffic, which is not evidence either way).
    """
    s = series.dropna(subset=["value"]).sort_values("time")
    if s.empty:
        raise NoDataError("the 5xx ratio series is empty: no traffic in the window")
    above = s["value"] > threshold
    idx = s["value"].idxmax()
    t = s["time"]
    gap = t.diff().dt.total_seconds().fillna(step) > step * 1.5
    run_id = (above.ne(above.shift()) | gap).cumsum()
    rows = []
    for _, run in s[above].groupby(run_id[above]):
        rows.append({
            "start": run["time"].iloc[0],
            "end": run["time"].iloc[-1] + pd.Timedelta(seconds=step),
            "peak": run["value"].max(),
        })
    periods = pd.DataFrame(rows, columns=["start", "end", "peak"])
    periods["duration"] = periods["end"] - periods["start"]
    return RatioProfile(
        worst_ratio=float(s.loc[idx, "value"]),
        worst_time=s.loc[idx, "time"],
        fraction_above=float(above.mean()),
        periods=periods[["start", "end", "duration", "peak"]],
    )


BURN_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


def burn_ratio_query(*, sli: Sli = SEED, selector: Selector = None, windows: Sequence[str] = BURN_WINDOWS) -> str:
    """One query for the 5xx ratio over every burn-rate window, labelled ``window``."""
    m = _matchers(selector)
    parts = []
    for w in windows:  # no failure series at all is a ratio of 0 where there is traffic, not a missing one
        err, all_ = sli.increase(w, matchers=m, errors=True), sli.increase(w, matchers=m)
        parts.append(f'label_replace((({err} or ({all_} * 0)) / {all_}), "window", "{w}", "", "")')
    return " or ".join(parts)


def burn_ratios(client: PrometheusClient, at: datetime, *, sli: Sli = SEED, selector: Selector = None,
                windows: Sequence[str] = BURN_WINDOWS) -> dict[str, float | None]:
    """5xx ratio per window ending at ``at``; a window without traffic maps to None, not 0.

    One query; if the server refuses it for its size, each window's failures and requests are
    counted on their own (in pieces where needed) and divided, which is the same ratio."""
    try:
        frame = client.query(burn_ratio_query(sli=sli, selector=selector, windows=windows), utc(at))
    except QueryTooLarge:
        return {w: _ratio_in_pieces(client, at, w, sli=sli, selector=selector) for w in windows}
    got = dict(zip(frame.get("window", []), frame.get("value", []), strict=True)) if len(frame) else {}
    return {w: (float(got[w]) if w in got else None) for w in windows}


def _ratio_in_pieces(client: PrometheusClient, at: datetime, window: str, *, sli: Sli,
                     selector: Selector) -> float | None:
    start = utc(at) - pd.Timedelta(seconds=parse_duration(window)).to_pytimedelta()
    try:
        counts = totals(client, start, utc(at), sli=sli, selector=selector)
    except NoDataError:
        return None
    return float(counts["errors"].iloc[0] / counts["requests"].iloc[0])
