"""Exploring the history beyond the verdict: where, when and why the 5xx come, and how alerts would cope.

The proof answers one yes/no question; engineers then ask *where* the errors come from (routes,
status codes, hours of the day), *how fast* the error budget is spent, and *how* the alert and
breaker settings would have behaved. The queries here push every aggregation into PromQL (sums
per hour, per route, per status) and hand small tidy frames to pure functions, so the notebooks
stay fast on two cores and the logic stays testable without a server.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from reliability.analysis import measure
from reliability.analysis.breakers.tuning import BreakerChoice, breaker_tradeoff, choose_breaker  # re-exported
from reliability.analysis.budget import BURN_RATE_ALERTS, BURN_RATE_WINDOWS, BurnRateAlert, ErrorBudget, error_budget
from reliability.errors import ConfigurationError, NoDataError
from reliability.source.frames import utc
from reliability.source.prom import PrometheusClient
from reliability.source.promql import format_duration, parse_duration
from reliability.source.sli import SEED, Sli

__all__ = [
    "BreakerChoice", "BudgetBurndown", "SettingChoice", "breaker_tradeoff", "budget_burndown", "burn_rate_headroom",
    "choose_breaker", "choose_setting", "compare_versions", "drill_down", "duration_text", "hour_of_day",
    "ratio_peaks", "split_comparison", "threshold_sweep", "with_ratio", "worst_windows",
]


# --------------------------------------------------------------------------- per-bucket views
def with_ratio(buckets: pd.DataFrame) -> pd.DataFrame:
    """Add ``ratio`` (5xx share) and ``r`` (1 - ratio) to bucket counts; empty buckets get NaN, not R = 1."""
    out = buckets.copy()
    requests = out["requests"].astype(float)
    out["ratio"] = (out["errors"].astype(float) / requests).where(requests > 0)
    out["r"] = 1.0 - out["ratio"]
    return out


def hour_of_day(buckets: pd.DataFrame, *, by: str, utc_offset_hours: float = 0.0,
                bucket: float = 3600.0) -> pd.DataFrame:
    """The pooled 5xx ratio per hour of the (local) day and group: rows 0-23, one column per group.

    ``buckets`` are hourly counts from :func:`reliability.analysis.measure.bucket_counts`, whose
    ``time`` is the *end* of each bucket; the hour shown is the bucket's start in local time.
    Errors and requests are summed over the days before dividing, so a quiet night with 3
    requests weighs 3 requests, not one day. Hours with no traffic stay NaN.
    """
    if buckets.empty:
        raise NoDataError("no hourly counts to pivot: the window holds no traffic")
    local = buckets["time"] - pd.Timedelta(seconds=bucket) + pd.Timedelta(hours=utc_offset_hours)
    frame = buckets.assign(hour=local.dt.hour)
    sums = frame.groupby(["hour", by])[["requests", "errors"]].sum()
    ratio = (sums["errors"] / sums["requests"]).where(sums["requests"] > 0)
    pivot = ratio.unstack(by).reindex(range(24))
    pivot.index.name = "hour"
    return pivot


def worst_windows(buckets: pd.DataFrame, *, n: int = 5, min_requests: float = 1000.0,
                  bucket: float = 3600.0) -> pd.DataFrame:
    """The ``n`` buckets with the highest 5xx ratio among those with at least ``min_requests``.

    Quiet buckets are left out on purpose: 2 errors in 10 night-time requests is a 20 % ratio
    that says nothing. Columns: ``start``, ``end``, ``requests``, ``errors``, ``ratio``.
    """
    if n < 1:
        raise ConfigurationError(f"n must be at least 1, got {n}")
    frame = with_ratio(buckets)
    frame = frame[frame["requests"] >= min_requests].dropna(subset=["ratio"])
    if frame.empty:
        raise NoDataError(f"no bucket has {min_requests:,.0f} requests or more; lower min_requests")
    top = frame.sort_values(["ratio", "time"], ascending=[False, True], kind="stable").head(n)
    return pd.DataFrame({
        "start": top["time"] - pd.Timedelta(seconds=bucket), "end": top["time"],
        "requests": top["requests"], "errors": top["errors"], "ratio": top["ratio"],
    }).reset_index(drop=True)


@dataclass(frozen=True, eq=False)
class BudgetBurndown:
    """Cumulative spend of the error budget of the observed history.

    The budget is the one of :func:`reliability.analysis.budget.error_budget`: ``(1 - slo)`` of the
    history's requests (``budget`` holds it, with the days of data). ``frame`` holds per bucket
    ``time``, ``consumed`` (cumulative 5xx over the budget), ``remaining`` (1 - consumed) and
    ``sustainable`` (the share of the history's requests served so far: a 5xx ratio of exactly
    ``1 - slo`` would follow this line and end at 100 %).
    """

    frame: pd.DataFrame
    budget: ErrorBudget

    @property
    def consumed(self) -> float:
        """Share of the budget spent by the end of the history."""
        return float(self.budget.consumed)

    @property
    def summary(self) -> pd.DataFrame:
        b = self.budget
        return pd.DataFrame([{"slo": b.slo, "days of data": b.days, "requests": b.requests,
                              "allowed 5xx": b.allowed_errors, "5xx": b.errors, "consumed": b.consumed,
                              "remaining": b.remaining}])


def budget_burndown(buckets: pd.DataFrame, *, slo: float = 0.98, bucket: float = 3600.0) -> BudgetBurndown:
    """The error-budget burn-down from overall bucket counts (``time``, ``requests``, ``errors``)."""
    if not 0 < slo < 1:
        raise ConfigurationError(f"slo must lie in (0, 1), e.g. 0.98, got {slo!r}")
    frame = buckets.sort_values("time").reset_index(drop=True)
    requests, errors = float(frame["requests"].sum()), float(frame["errors"].sum())
    if frame.empty or requests <= 0:
        raise NoDataError("no requests in the history: there is no error budget to burn down")
    first = frame["time"].iloc[0] - pd.Timedelta(seconds=bucket)
    days = (frame["time"].iloc[-1] - first).total_seconds() / 86400
    budget = error_budget(requests, errors, slo=slo, days=days)
    consumed = frame["errors"].cumsum() / budget.allowed_errors
    out = pd.DataFrame({"time": frame["time"], "consumed": consumed, "remaining": 1 - consumed,
                        "sustainable": frame["requests"].cumsum() / requests})
    return BudgetBurndown(out, budget)


# --------------------------------------------------------------------------- queries
def drill_down(client: PrometheusClient, start: datetime, end: datetime, *,
               selector: str | Sequence[str] | None = None, sli: Sli = SEED) -> pd.DataFrame:
    """Which routes and codes the failures of [start, end] came from, largest first.

    Columns: ``route``, ``status``, ``errors``, ``share`` (of the window's failures),
    ``route_requests`` and ``route_ratio`` (this code's share of the route's requests); ``route`` and
    ``status`` hold the SLI's route and code labels (``route`` is empty when the exporter has none).
    """
    route = sli.route_label
    by_route = [route] if route else []
    q_all, _ = measure.totals_queries(start, end, sli=sli, selector=selector, by=by_route)
    _, q_err = measure.totals_queries(start, end, sli=sli, selector=selector, by=[*by_route, sli.code_label])
    at = utc(end)
    errors = client.query(q_err, at).rename(columns={"value": "errors", sli.code_label: "status"})
    routes = client.query(q_all, at).rename(columns={"value": "route_requests"})
    if errors.empty or float(errors["errors"].sum()) <= 0:
        raise NoDataError(f"no 5xx between {start.isoformat()} and {end.isoformat()}: nothing to drill into")
    errors = errors.rename(columns={route: "route"}) if route else errors.assign(route="")
    routes = routes.rename(columns={route: "route"}) if route else routes.assign(route="")
    frame = errors[["route", "status", "errors"]].merge(routes[["route", "route_requests"]], on="route", how="left")
    frame = frame[frame["errors"] > 0]
    frame["share"] = frame["errors"] / frame["errors"].sum()
    frame["route_ratio"] = frame["errors"] / frame["route_requests"]
    frame = frame.sort_values(["errors", "route", "status"], ascending=[False, True, True], kind="stable")
    return frame[["route", "status", "errors", "share", "route_requests", "route_ratio"]].reset_index(drop=True)


def compare_versions(client: PrometheusClient, start: datetime, end: datetime, *, candidate: str, stable: str,
                     sli: Sli = SEED, margin: float = 0.005, confidence: float = 0.95,
                     step: float = 60.0) -> Any:
    """Candidate vs stable over the same window, each side's counts deflated by how its 5xx cluster.

    Returns a :class:`reliability.analysis.compare.Comparison`. Four queries in all: totals and
    per-step counts grouped by the SLI's version label, instead of two per version. phi is each
    side's upper limit from :func:`reliability.analysis.stats.clustering`, as in the proof.
    """
    from reliability.analysis.compare import compare

    label = sli.version_label
    tot = measure.totals(client, start, end, sli=sli, by=[label]).set_index(label)
    missing = [v for v in (candidate, stable) if v not in tot.index]
    if missing:
        raise NoDataError(f"no requests of {', '.join(missing)} ({label}) between {start.isoformat()} and "
                          f"{end.isoformat()}; pick a window where both versions served traffic")
    found = measure.clustering_by(measure.step_counts(client, start, end, step=step, sli=sli, by=[label]),
                                  [label], confidence=confidence)
    phi = {key: c.phi for key, c in found.items()}
    c, s = tot.loc[candidate], tot.loc[stable]
    return compare(c["requests"], c["errors"], s["requests"], s["errors"], margin=margin, confidence=confidence,
                   phi_candidate=phi.get(candidate, 1.0), phi_stable=phi.get(stable, 1.0))


def ratio_peaks(client: PrometheusClient, start: datetime, end: datetime, *,
                windows: Sequence[str] = BURN_RATE_WINDOWS, selector: str | Sequence[str] | None = None,
                points_per_window: int = 12, sli: Sli = SEED) -> pd.DataFrame:
    """The highest 5xx ratio each burn-rate window reached over [start, end], and when.

    Each window's ratio is sampled ``points_per_window`` times per window length (a 3-day
    ratio every 6 h, a 5-minute one every 25 s, at least every 30 s): consecutive samples
    share most of their window, so the peak is not missed by more than that slice, while
    long windows cost as little as short ones. Columns: ``window``, ``step``,
    ``peak_ratio``, ``peak_time``.
    """
    rows = []
    for w in windows:
        seconds = parse_duration(w)
        step = max(30.0, seconds / points_per_window)
        expr = measure.burn_ratio_query(sli=sli, selector=selector, windows=[w])
        series = client.query_range(expr, utc(start), utc(end), step).dropna(subset=["value"])
        if series.empty:
            rows.append({"window": w, "step": format_duration(step), "peak_ratio": np.nan, "peak_time": pd.NaT})
            continue
        top = series.loc[series["value"].idxmax()]
        rows.append({"window": w, "step": format_duration(step), "peak_ratio": float(top["value"]),
                     "peak_time": top["time"]})
    return pd.DataFrame(rows)


def burn_rate_headroom(peaks: pd.DataFrame, *, slo: float = 0.98,
                       alerts: Iterable[BurnRateAlert] = BURN_RATE_ALERTS) -> pd.DataFrame:
    """Why each multi-window alert did or did not fire: its 5xx threshold beside the peaks seen.

    A pair fires only when *both* its windows exceed ``threshold * (1 - slo)``, so a long
    window whose peak stays below it rules the alert out. ``slo_to_fire`` is the strictest
    SLO at which the observed long-window peak would have crossed the threshold.
    """
    peak = dict(zip(peaks["window"], peaks["peak_ratio"], strict=True))
    rows = []
    for a in alerts:
        limit = a.threshold * (1 - slo)
        long_peak, short_peak = peak.get(a.long_window, np.nan), peak.get(a.short_window, np.nan)
        rows.append({
            "severity": a.severity, "windows": f"{a.long_window} and {a.short_window}", "burn_rate": a.threshold,
            "threshold_ratio": limit, "long_peak": long_peak, "short_peak": short_peak,
            "long_peak_burn_rate": long_peak / (1 - slo),
            "could_fire": bool(long_peak > limit and short_peak > limit),
            "slo_to_fire": 1 - long_peak / a.threshold,
        })
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- alert threshold sweep
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_COMPARISON = re.compile(rf"^(?P<lhs>.*\S)\s*(?P<op>>=|<=|==|!=|>|<)\s*(?P<value>{_NUMBER})\s*$", re.DOTALL)


def split_comparison(expr: str) -> tuple[str, str, float]:
    """Split ``(ratio) > 0.02`` into the expression, the operator and the threshold.

    The sweep evaluates the left-hand side once and applies each threshold locally, which
    is exact for a filtering comparison against a constant: Prometheus returns the
    left-hand sample (with its value) wherever the comparison holds.
    """
    m = _COMPARISON.match(expr.strip())
    if m is None:
        raise ConfigurationError(f"alert expression {expr!r} does not end in a comparison with a number "
                                 "such as '> 0.02'; the sweep needs one to vary")
    lhs = m.group("lhs").strip()
    if _top_level_set_operator(lhs):
        raise ConfigurationError(f"in {expr!r} the final comparison binds tighter than and/or/unless, so it "
                                 "applies to the last operand only; put the ratio in parentheses before '>'")
    return lhs, m.group("op"), float(m.group("value"))


def _top_level_set_operator(expr: str) -> bool:
    depth, out = 0, []
    for c in expr:
        depth += c in "([{"
        depth -= c in ")]}"
        out.append(c if depth == 0 else " ")
    return bool(re.search(r"\b(and|or|unless)\b", "".join(out)))


_OPS = {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal,
        "==": np.equal, "!=": np.not_equal}


def threshold_sweep(series: pd.DataFrame, times: Sequence[Any] | pd.DatetimeIndex, *, thresholds: Iterable[float],
                    fors: Iterable[float | str], incidents: Iterable[Mapping[str, Any]], op: str = ">",
                    alert: str = "High5xxErrorRate", slack: timedelta | float = timedelta(minutes=15)) -> pd.DataFrame:
    """Replay the alert for every threshold and ``for`` from ONE evaluated series.

    Parameters
    ----------
    series
        The left-hand side of the alert evaluated at every evaluation time (``time``, ``value``;
        one unlabelled series, as the seed's ``sum(...) / sum(...)``).
    times
        Every evaluation time, as :func:`reliability.analysis.alerts.evaluation_times` gives them.
    thresholds, fors
        The settings to try; ``for`` as seconds or durations such as ``"5m"``.
    incidents
        Ground-truth incidents (``name``, ``start``, ``end``).

    Returns
    -------
    pandas.DataFrame
        One row per setting: ``threshold``, ``for``, ``detected``, ``missed``,
        ``max_detection_delay``, ``false_alarms``, ``firing_episodes``, ``firing_time``.
    """
    from reliability.analysis.alerts import alert_quality, run_alert_states

    if op not in _OPS:
        raise ConfigurationError(f"unknown comparison {op!r}; use one of {', '.join(_OPS)}")
    incidents = list(incidents)
    extra = sorted(set(series.columns) - {"time", "value"})
    if extra and len(series[extra].drop_duplicates()) > 1:
        raise ConfigurationError(f"the sweep needs one series, got several label sets over {extra}; "
                                 "aggregate them in PromQL first")
    s = series.dropna(subset=["value"])
    end = pd.DatetimeIndex(pd.to_datetime(list(times), utc=True))[-1] if len(times) else None
    rows = []
    for threshold in thresholds:
        hits = s[_OPS[op](s["value"].to_numpy(dtype=float), float(threshold))]
        samples = pd.DataFrame({"labels": pd.Series([{"alertname": alert}] * len(hits), dtype=object),
                                "time": hits["time"].to_numpy(), "value": hits["value"].to_numpy(dtype=float)})
        for f in fors:
            hold = parse_duration(f)
            _, episodes = run_alert_states(samples, times, for_=hold)
            quality = alert_quality(episodes, incidents, slack=slack, alert=alert).summary.iloc[0]
            firing = episodes[episodes["firing_since"].notna()]
            rows.append({
                "threshold": float(threshold), "for": pd.Timedelta(seconds=hold),
                "detected": int(quality["detected"]), "missed": int(quality["missed"]),
                "max_detection_delay": quality["max_detection_delay"], "false_alarms": int(quality["false_alarms"]),
                "firing_episodes": len(firing),
                "firing_time": (firing["resolved_at"].fillna(end) - firing["firing_since"]).sum()
                if len(firing) else pd.Timedelta(0),
            })
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class SettingChoice:
    """The recommended alert setting and the reason, as numbers from the sweep."""

    threshold: float
    for_: pd.Timedelta
    row: pd.Series
    candidates: int
    reason: str

    @property
    def summary(self) -> pd.DataFrame:
        return self.row.to_frame().T.reset_index(drop=True)


def choose_setting(sweep: pd.DataFrame) -> SettingChoice:
    """The setting to recommend: catch every incident, no false alarm, one page per incident, then fastest.

    Ranking: fewest missed incidents, then fewest false alarms, then fewest firing episodes (an
    alert that flaps during one incident pages the on-call several times), then the shortest
    worst-case detection delay. Remaining ties go to the higher threshold and the longer
    ``for``: of two settings that behaved alike on this history, the less noise-sensitive one
    is safer on the next.
    """
    if sweep.empty:
        raise NoDataError("the sweep is empty: give at least one threshold and one 'for'")
    delay = pd.to_timedelta(sweep["max_detection_delay"]).dt.total_seconds().fillna(np.inf)  # missed: last
    ranked = sweep.assign(_delay=delay).sort_values(
        ["missed", "false_alarms", "firing_episodes", "_delay", "threshold", "for"],
        ascending=[True, True, True, True, False, False], kind="stable")
    best = ranked.iloc[0].drop("_delay")
    clean = sweep[(sweep["missed"] == 0) & (sweep["false_alarms"] == 0)
                  & (sweep["firing_episodes"] <= sweep["detected"])]
    setting = f"threshold {best['threshold']:.0%} with for {duration_text(best['for'])}"
    if best["missed"]:
        reason = f"no setting catches every incident; {setting} misses the fewest ({best['missed']})"
    elif len(clean):
        reason = (f"{len(clean)} of {len(sweep)} settings caught every incident with no false alarm and one "
                  f"page per incident; of those, {setting} fired the soonest (at most "
                  f"{duration_text(best['max_detection_delay'])} after the incident began)")
    else:
        reason = (f"no setting caught every incident cleanly; {setting} has the fewest false alarms "
                  f"({best['false_alarms']}) and firing episodes ({best['firing_episodes']})")
    return SettingChoice(float(best["threshold"]), best["for"], best, len(clean), reason)


def duration_text(value: Any) -> str:
    """A timedelta as a Prometheus-style duration (``7m30s``), ``-2m`` before, ``—`` when missing."""
    if pd.isna(value):
        return "—"
    seconds = pd.Timedelta(value).total_seconds()
    sign = "-" if seconds < 0 else ""
    return sign + (format_duration(abs(seconds)) if seconds else "0s")
