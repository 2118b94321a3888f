"""What the running breakers did over a window, in one call: :func:`breaker_stats`.

The proof, the report and the ``breaker_tuning`` notebook all read breaker history through
this module; nothing else builds these queries. Every aggregation runs in Prometheus: the
counters' increases per breaker and instance, the state gauge at the scrape interval, and the
flap count with the ``CircuitBreakerFlapping`` rule's own expression (opens in 30 minutes,
from the counter), so a flap shorter than a scrape is counted exactly as the alert counts it.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pandas as pd

from reliability.analysis.breakers.trips import BreakerStats, trip_stats
from reliability.errors import NoDataError, StatisticalWarning
from reliability.source.frames import utc
from reliability.source.prom import PrometheusClient
from reliability.source.promql import format_duration, parse_selector

#: The CircuitBreakerFlapping rule of monitoring/alerts.yml: this many opens within FLAP_WINDOW.
FLAP_TRIPS = 3
FLAP_WINDOW = "30m"
FLAP_WINDOW_SECONDS = 1800.0
#: The labels the metric contract (monitoring/METRICS.md) gives each breaker series.
KEYS = ("breaker", "instance")


#: The matcher that selects a breaker's trips on its transition counter: none is good news.
TRIPPED = 'to="open"'


def _metric(name: str, selector: str | Sequence[str] | None, *extra: str) -> str:
    matchers = [*(parse_selector(selector) if isinstance(selector, str) or selector is None else selector), *extra]
    return f"{name}{{{','.join(matchers)}}}" if matchers else name


def breaker_queries(start: datetime, end: datetime, *, selector: str | Sequence[str] | None = None,
                    step: float = 30.0) -> dict[str, str]:
    """The PromQL :func:`breaker_stats` asks, by name (instant at ``end`` unless ``state``)."""
    window = format_duration((utc(end) - utc(start)).total_seconds())
    opens = _metric("circuit_breaker_transitions_total", selector, TRIPPED)
    return {
        "transitions": (f"sum by (breaker, instance, from, to) "
                        f"(increase({_metric('circuit_breaker_transitions_total', selector)}[{window}]))"),
        "calls": f"sum by (breaker, instance, outcome) "
                 f"(increase({_metric('circuit_breaker_calls_total', selector)}[{window}]))",
        "state": f"max by (breaker, instance) ({_metric('circuit_breaker_state', selector)})",
        # The rule's expression, at its peak over the window: the most opens in any 30 minutes.
        "flaps": (f"max_over_time((sum by (breaker, instance) (increase({opens}[{FLAP_WINDOW}])))"
                  f"[{window}:{format_duration(step)}])"),
    }


def state_at(client: PrometheusClient, start: datetime, at: datetime, *,
             fresh: float = 300.0) -> tuple[list[str], list[str]]:
    """``(open, exported)`` at ``at``: breakers whose last state sample (within ``fresh`` seconds) is
    OPEN, and every breaker with a state sample in [start, at]. Two small instant queries: what a
    watch asks at each look, where :func:`breaker_stats` would re-read the whole window."""
    state = _metric("circuit_breaker_state", None)
    window = format_duration(max((utc(at) - utc(start)).total_seconds(), fresh))
    opened = client.query(f"count by (breaker) (last_over_time({state}[{format_duration(fresh)}]) == 1)", at)
    seen = client.query(f"count by (breaker) (last_over_time({state}[{window}]))", at)
    names = [sorted(map(str, f["breaker"])) if "breaker" in f else [] for f in (opened, seen)]
    return names[0], names[1]


def breaker_stats(client: PrometheusClient, start: datetime, end: datetime, *,
                  selector: str | Sequence[str] | None = None, scrape_interval: float = 30.0) -> BreakerStats:
    """Per breaker and instance over [start, end]: trips, re-trips, time open and half-open, calls by outcome.

    ``summary`` has one row per (breaker, instance), with :func:`trip_stats`' columns plus
    ``calls``, ``rejected_share`` (of all calls), ``flaps`` (the most opens in any 30 minutes,
    from the counter, as ``CircuitBreakerFlapping`` counts them) and ``flapping`` (``flaps >= 3``).
    ``aliasing_gap`` states the trips the gauge missed between scrapes. ``state`` holds the gauge.

    Raises :class:`NoDataError` when no breaker exports its state in the window.
    """
    q = breaker_queries(start, end, selector=selector, step=scrape_interval)
    at = utc(end)
    transitions = client.query(q["transitions"], at).rename(columns={"value": "increase"})
    calls = client.query(q["calls"], at).rename(columns={"value": "increase"})
    state = client.query_range(q["state"], utc(start), at, scrape_interval)
    flaps = client.query(q["flaps"], at)
    if state.empty:
        raise NoDataError(f"no circuit_breaker_state samples in {utc(start):%Y-%m-%dT%H:%MZ} .. {at:%Y-%m-%dT%H:%MZ}"
                          f"{f' for {selector}' if selector else ''}: the backend does not export the breaker "
                          "metrics of monitoring/METRICS.md")
    for frame, metric, labels in ((state, "circuit_breaker_state", ("breaker",)),
                                  (transitions, "circuit_breaker_transitions_total", ("breaker", "from", "to")),
                                  (calls, "circuit_breaker_calls_total", ("breaker", "outcome"))):
        missing = [lab for lab in labels if len(frame) and lab not in frame]
        if missing:
            raise NoDataError(f"{metric} has no {', '.join(missing)} label: the backend's breaker metrics do not "
                              "follow the metric contract (monitoring/METRICS.md)")
    for frame in (transitions, calls, state, flaps):
        if len(frame) and "instance" not in frame:
            frame["instance"] = ""
    parts = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StatisticalWarning)
        for instance in sorted(set(state["instance"])):
            def only(frame: pd.DataFrame, inst: str = instance) -> pd.DataFrame:
                return frame[frame["instance"] == inst] if len(frame) else frame
            part = trip_stats(only(transitions), only(state), only(calls), start=start, end=end,
                              scrape_interval=scrape_interval, flap_trips=FLAP_TRIPS,
                              flap_window=FLAP_WINDOW_SECONDS).summary
            parts.append(part.assign(instance=instance))
    for w in caught:  # said once for the whole call, not once per instance
        warnings.warn(str(w.message), StatisticalWarning, stacklevel=2)
    summary = pd.concat(parts, ignore_index=True)
    peak = (flaps.set_index(list(KEYS))["value"] if len(flaps) else pd.Series(dtype=float))
    summary["flaps_seen_by_gauge"] = summary.pop("max_trips_in_flap_window")
    summary["flaps"] = [float(np.rint(peak.get((b, i), 0.0)))
                        for b, i in zip(summary["breaker"], summary["instance"], strict=True)]
    summary["flapping"] = summary["flaps"] >= FLAP_TRIPS
    summary["calls"] = summary[["successes", "failures", "rejected"]].sum(axis=1)
    summary["rejected_share"] = np.where(summary["calls"] > 0, summary["rejected"] / summary["calls"].where(
        summary["calls"] > 0, 1), np.nan)
    first = ["breaker", "instance"]
    summary = summary[first + [c for c in summary.columns if c not in first]]
    return BreakerStats(by_breaker=summary, start=start, end=end, scrape_interval=float(scrape_interval),
                        flap_trips=FLAP_TRIPS, flap_window=FLAP_WINDOW_SECONDS, state=state)


def call_intervals(client: PrometheusClient, start: datetime, end: datetime, *, breaker: str,
                   selector: str | Sequence[str] | None = None, interval: float = 30.0) -> pd.DataFrame:
    """One breaker's calls per scrape interval, the what-if's input (:func:`whatif.intervals_from_calls`).

    Columns ``time`` (interval start), ``calls`` and ``failures`` (calls that reached the
    dependency) and ``rejected`` (calls the real breaker turned away; the what-if imputes
    their outcome). Summed over instances in Prometheus: a what-if replays one dependency.
    """
    from reliability.analysis.breakers.whatif import intervals_from_calls
    from reliability.source.promql import matcher

    metric = _metric("circuit_breaker_calls_total", selector, matcher("breaker", breaker))
    frame = client.query_range(f"sum by (breaker, outcome) (increase({metric}[{format_duration(interval)}]))",
                               utc(start) + pd.Timedelta(seconds=interval), utc(end), interval)
    if frame.empty:
        raise NoDataError(f"no calls through breaker {breaker!r} between {utc(start):%Y-%m-%dT%H:%MZ} and "
                          f"{utc(end):%Y-%m-%dT%H:%MZ}: nothing to replay; check the breaker's name and the window")
    return intervals_from_calls(frame, breaker=breaker, interval=interval)


def dependency_coverage(stats: BreakerStats, dependencies: Sequence[str]) -> pd.DataFrame:
    """Each configured dependency: does a breaker wrap it, and did that breaker see calls?

    Columns ``dependency``, ``exported`` (a breaker of that name has metrics), ``calls`` (in the
    window) and ``status``: ``covered``, ``no calls`` (the breaker exists but nothing went
    through it, so the window does not show it wraps the calls) or ``missing`` (no breaker: the
    backend talks to that service unprotected, or does not export its breaker).
    """
    s = stats.summary
    rows = []
    for name in dependencies:
        mine = s[s["breaker"] == name]
        calls = float(mine["calls"].sum()) if len(mine) else 0.0
        status = "missing" if mine.empty else ("covered" if calls > 0 else "no calls")
        rows.append({"dependency": name, "exported": not mine.empty, "calls": calls, "status": status})
    return pd.DataFrame(rows, columns=["dependency", "exported", "calls", "status"])


def unexpected(stats: BreakerStats, dependencies: Sequence[str]) -> list[str]:
    """Breakers in the metrics that the configuration does not list (worth adding to it)."""
    return sorted(set(stats.summary["breaker"]) - set(dependencies))
