"""What the running breakers did over a window, in one call: :func:`breaker_stats`.

The proof, the report and the ``breaker_tuning`` notebook all read breaker history through
this module; nothing else builds these queries. Every aggregation runs in Prometheus: the
counters' increases per breaker and instance, the state gauge at the scrape interval, and the
flap count with the ``CircuitBreakerFlapping`` rule's own expression (opens in 30 minutes,
from the counter), so a flap shorter than a scrape is counted exactly as the alert counts it.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from reliability.analysis.breakers.trips import BreakerStats, trip_stats
from reliability.errors import NoDataError, StatisticalWarning
from reliability.source.breaker_metrics import SEED as SEED_BREAKERS
from reliability.source.breaker_metrics import BreakerMetrics, resolve
from reliability.source.frames import utc
from reliability.source.pieces import over_window
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


def state_at(client: PrometheusClient, start: datetime, at: datetime, *, fresh: float = 300.0,
             metrics: BreakerMetrics | None = None) -> tuple[list[str], list[str]]:
    """``(open, exported)`` at ``at``: breakers whose last state sample (within ``fresh`` seconds) is
    OPEN, and every breaker with a metric in [start, at]. For the seed's gauge two small instant
    queries (what a watch asks at each look, where :func:`breaker_stats` would re-read the window);
    other libraries are read over [start, at] as :func:`breaker_stats` reads them."""
    m = metrics or SEED_BREAKERS
    if m.kind != "seed":
        try:
            s = breaker_stats(client, start, at, source=m).summary
        except NoDataError:
            return [], []
        return sorted(set(s.loc[s["open_at_end"], "breaker"])), sorted(set(s["breaker"]))
    state, n = m.metric(m.state), m.name_label
    window = format_duration(max((utc(at) - utc(start)).total_seconds(), fresh))
    opened = client.query(f"count by ({n}) (last_over_time({state}[{format_duration(fresh)}]) == 1)", at)
    seen = client.query(f"count by ({n}) (last_over_time({state}[{window}]))", at)
    names = [sorted(map(str, f[n])) if n in f else [] for f in (opened, seen)]
    return names[0], names[1]


def breaker_stats(client: PrometheusClient, start: datetime, end: datetime, *,
                  selector: str | Sequence[str] | None = None, scrape_interval: float = 30.0,
                  source: str | Mapping[str, Any] | BreakerMetrics = "seed") -> BreakerStats:
    """Per breaker and instance over [start, end]: trips, re-trips, time open and half-open, calls by outcome.

    ``source`` names the breaker library whose metrics to read: a preset (``"seed"``, ``"opossum"``,
    ``"resilience4j"``), a ``[breakers]`` table, or a :class:`BreakerMetrics` (see
    :mod:`reliability.analysis.breakers.sources` for how each is read, and what each cannot see).
    ``summary`` has one row per (breaker, instance), with :func:`trip_stats`' columns plus
    ``calls``, ``rejected_share`` (of all calls), ``flaps`` (the most opens in any 30 minutes) and
    ``flapping`` (``flaps >= 3``), ``hidden_at_most`` (state changes the scrape interval could have
    hidden; 0 where a counter saw them all) and ``source``. ``state`` holds the (rebuilt) gauge.

    Raises :class:`NoDataError` when no breaker exports anything in the window.
    """
    from reliability.analysis.breakers import sources

    metrics = _metrics(source)
    seen = sources.read(client, start, end, metrics, selector=selector, step=scrape_interval)
    transitions, calls, state = seen.transitions, seen.calls, seen.state
    flaps = pd.DataFrame()
    if metrics.kind == "seed":  # the CircuitBreakerFlapping rule's own expression, on the counter
        opens = metrics.metric(metrics.transitions, *_scope(selector), TRIPPED)
        flaps = over_window(client, lambda rng: f"max_over_time((sum by ({metrics.name_label}, instance) (increase("
                                                f"{opens}[{FLAP_WINDOW}])))[{rng}:{format_duration(scrape_interval)}])",
                            start, end, "max")
        flaps = flaps.rename(columns={metrics.name_label: "breaker"})
        if len(flaps) and "instance" not in flaps:
            flaps["instance"] = ""
    parts = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", StatisticalWarning)
        for instance in sorted(set(state["instance"]) | set(calls["instance"] if len(calls) else [])):
            def only(frame: pd.DataFrame | None, inst: str = instance) -> pd.DataFrame | None:
                return frame[frame["instance"] == inst] if frame is not None and len(frame) else frame
            part = trip_stats(only(transitions), only(state).drop(columns="instance", errors="ignore"), only(calls),
                              start=start, end=end, scrape_interval=scrape_interval, flap_trips=FLAP_TRIPS,
                              flap_window=FLAP_WINDOW_SECONDS).summary
            parts.append(part.assign(instance=instance))
    for w in caught:  # said once for the whole call, not once per instance
        warnings.warn(str(w.message), StatisticalWarning, stacklevel=2)
    summary = pd.concat(parts, ignore_index=True)
    summary["flaps_seen_by_gauge"] = summary.pop("max_trips_in_flap_window")
    if metrics.kind == "seed":
        peak = flaps.set_index(list(KEYS))["value"] if len(flaps) else pd.Series(dtype=float)
        summary["flaps"] = [float(np.rint(peak.get((b, i), 0.0)))
                            for b, i in zip(summary["breaker"], summary["instance"], strict=True)]
    else:
        summary["flaps"] = summary["flaps_seen_by_gauge"].astype(float)
    summary["flapping"] = summary["flaps"] >= FLAP_TRIPS
    summary["calls"] = summary[["successes", "failures", "rejected"]].sum(axis=1)
    summary["rejected_share"] = np.where(summary["calls"] > 0, summary["rejected"] / summary["calls"].where(
        summary["calls"] > 0, 1), np.nan)
    summary["hidden_at_most"] = [float(seen.hidden_at_most.get((b, i), 0.0))
                                 for b, i in zip(summary["breaker"], summary["instance"], strict=True)]
    if not seen.half_open_seen:  # opossum exports no half-open event: that time is inside time_open
        summary["time_half_open"] = np.nan
    summary["source"] = metrics.preset
    first = ["breaker", "instance"]
    summary = summary[first + [c for c in summary.columns if c not in first]]
    return BreakerStats(by_breaker=summary, start=start, end=end, scrape_interval=float(scrape_interval),
                        flap_trips=FLAP_TRIPS, flap_window=FLAP_WINDOW_SECONDS, state=state)


def _scope(selector: str | Sequence[str] | None) -> list[str]:
    return parse_selector(selector) if isinstance(selector, str) or selector is None else list(selector)


def call_intervals(client: PrometheusClient, start: datetime, end: datetime, *, breaker: str,
                   selector: str | Sequence[str] | None = None, interval: float = 30.0,
                   source: str | Mapping[str, Any] | BreakerMetrics = "seed") -> pd.DataFrame:
    """One breaker's calls per scrape interval, the what-if's input (:func:`whatif.intervals_from_calls`).

    Columns ``time`` (interval start), ``calls`` and ``failures`` (calls that reached the
    dependency) and ``rejected`` (calls the real breaker turned away; the what-if imputes
    their outcome). Summed over instances: a what-if replays one dependency. Read from the
    ``source`` library's calls (opossum's events counted exactly, see :mod:`.sources`).
    """
    from reliability.analysis.breakers import sources
    from reliability.analysis.breakers.whatif import intervals_from_calls
    from reliability.source.promql import matcher

    m = _metrics(source)
    if m.kind == "opossum":
        raw = sources.read(client, start, end, m, selector=[*_scope(selector), matcher(m.name_label, breaker)],
                           step=interval)
        frame = raw.calls_per_step
    else:
        rng, first, only = format_duration(interval), utc(start) + pd.Timedelta(seconds=interval), [
            *_scope(selector), matcher(m.name_label, breaker)]
        outcome = "kind" if m.kind == "resilience4j" else "outcome"
        frame = client.query_range(f"sum by ({m.name_label}, {outcome}) (increase({m.metric(m.calls, *only)}[{rng}]))",
                                   first, utc(end), interval)
        if m.kind == "resilience4j":
            rejected = client.query_range(
                f"sum by ({m.name_label}) (increase({m.metric(m.not_permitted, *only)}[{rng}]))", first, utc(end),
                interval)
            frame = pd.concat([frame[frame["kind"].isin(["successful", "failed"])].assign(
                outcome=lambda f: f["kind"].map({"successful": "success", "failed": "failure"})),
                rejected.assign(outcome="rejected")], ignore_index=True)
        frame = frame.rename(columns={m.name_label: "breaker"})
    if frame.empty:
        raise NoDataError(f"no calls through breaker {breaker!r} between {utc(start):%Y-%m-%dT%H:%MZ} and "
                          f"{utc(end):%Y-%m-%dT%H:%MZ}: nothing to replay; check the breaker's name and the window")
    return intervals_from_calls(frame, breaker=breaker, interval=interval)


def _metrics(source: str | Mapping[str, Any] | BreakerMetrics) -> BreakerMetrics:
    if isinstance(source, BreakerMetrics):
        return source
    return resolve(source if not isinstance(source, str) else {}, preset=source if isinstance(source, str) else None)


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
