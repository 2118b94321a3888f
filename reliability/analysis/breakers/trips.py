"""Trip statistics of the running breakers, from their Prometheus metrics (tidy frames in).

Two sources disagree by construction and both are reported: the transitions *counter*
counts every trip, while the state *gauge* is only seen at scrape times, so a breaker
that opens and closes again between two scrapes never shows up in it (aliasing). Trips
and re-trips come from the counter; durations and timing from runs of gauge samples
(each sample stands for one scrape interval, so durations are within one interval); the
difference between the two trip counts is stated, not hidden.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from reliability.errors import ConfigurationError, StatisticalWarning

# The breakers' metrics are read by analysis/breakers/sources.py, whatever library exports them.


CLOSED, OPEN, HALF_OPEN = 0, 1, 2
STATE_NAMES = {CLOSED: "closed", OPEN: "open", HALF_OPEN: "half_open"}
#: resilience4j's one-hot state label -> our gauge value (forced open counts as open;
#: disabled and metrics-only let every call through, like closed).
R4J_STATE_VALUE = {"closed": CLOSED, "open": OPEN, "half_open": HALF_OPEN, "forced_open": OPEN,
                   "disabled": CLOSED, "metrics_only": CLOSED}
R4J_KIND_OUTCOME = {"successful": "success", "failed": "failure"}  # "ignored" is neither

SUMMARY_COLUMNS = [
    "breaker", "trips", "retrips", "closed_to_open", "trips_seen_by_gauge", "aliasing_gap", "rejected",
    "successes", "failures", "samples", "time_open", "time_half_open", "open_fraction", "open_mean",
    "open_median", "open_max", "between_trips_mean", "state_at_end", "open_at_end",
    "max_trips_in_flap_window", "flapping",
]


@dataclass(frozen=True)
class BreakerStats:
    """Per-breaker trips, rejected calls, time open and timing over a window.

    Durations are seconds. ``trips`` counts every transition to open (counter),
    ``retrips`` those from half_open, ``trips_seen_by_gauge`` the closed -> not-closed runs in
    the sampled gauge, and ``aliasing_gap = closed_to_open - trips_seen_by_gauge`` the trips
    that opened and closed between two scrapes. Timing columns are NaN below two seen trips.
    """

    by_breaker: pd.DataFrame
    start: Any
    end: Any
    scrape_interval: float
    flap_trips: int
    flap_window: float
    state: pd.DataFrame | None = None  # the gauge samples, for timelines (set by breaker_stats)

    @property
    def summary(self) -> pd.DataFrame:
        return self.by_breaker

    @property
    def flapping(self) -> list[str]:
        """Breakers that tripped at least ``flap_trips`` times within ``flap_window`` seconds."""
        return self.by_breaker.loc[self.by_breaker["flapping"], "breaker"].tolist()


def _require(frame: pd.DataFrame, columns: tuple[str, ...], name: str) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise ConfigurationError(f"{name} must be a DataFrame, got {type(frame).__name__}")
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ConfigurationError(f"{name} has no column(s) {missing}; expected {list(columns)}, "
                                 f"got {list(frame.columns)}")


def _to_seconds(values: Any) -> np.ndarray:
    s = pd.Series(values)
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.as_unit("ns").array.asi8 / 1e9
    if pd.api.types.is_datetime64_dtype(s.dtype):
        raise ConfigurationError("times must be tz-aware datetimes or seconds; localize them to UTC")
    return s.to_numpy(dtype=np.float64)


def _counter(frame: pd.DataFrame | None, mask: Any) -> pd.Series:
    if frame is None or frame.empty:
        return pd.Series(dtype=float)
    return frame[mask(frame)].groupby("breaker")["increase"].sum().round()  # increase() extrapolates


def _gauge(times: np.ndarray, values: np.ndarray, step: float, flap_trips: int,
           flap_window: float) -> dict[str, Any]:
    """Statistics of one breaker's gauge samples (sorted by time)."""
    n = len(values)
    if n == 0:
        return {"samples": 0, "trips_seen_by_gauge": 0, "time_open": np.nan, "time_half_open": np.nan,
                "open_fraction": np.nan, "durations": np.zeros(0), "trip_times": np.zeros(0),
                "state_at_end": None, "open_at_end": False, "max_trips_in_flap_window": 0}
    not_closed = values != CLOSED
    prev = np.concatenate([[False], not_closed[:-1]])
    nxt = np.concatenate([not_closed[1:], [False]])
    run_start = np.flatnonzero(not_closed & ~prev)
    run_end = np.flatnonzero(not_closed & ~nxt)  # inclusive
    seen = run_start > 0  # a run already going at the first sample began before the window
    complete = seen & (run_end < n - 1)
    trip_times = times[run_start[seen]]
    in_window = np.searchsorted(trip_times, trip_times + flap_window, side="left") - np.arange(len(trip_times))
    return {
        "samples": n,
        "trips_seen_by_gauge": int(seen.sum()),
        "time_open": float((values == OPEN).sum() * step),
        "time_half_open": float((values == HALF_OPEN).sum() * step),
        "open_fraction": float(not_closed.mean()),
        "durations": (run_end[complete] - run_start[complete] + 1) * step,
        "trip_times": trip_times,
        "state_at_end": STATE_NAMES.get(int(values[-1]), "unknown"),
        "open_at_end": bool(values[-1] == OPEN),
        "max_trips_in_flap_window": int(in_window.max()) if len(in_window) else 0,
    }


def trip_stats(transitions: pd.DataFrame | None, state: pd.DataFrame, calls: pd.DataFrame | None, *,
               start: Any, end: Any, scrape_interval: float = 30.0, flap_trips: int = 3,
               flap_window: float = 600.0) -> BreakerStats:
    """Trips, rejected calls and open time per breaker over ``[start, end]``.

    Parameters
    ----------
    transitions
        Columns ``breaker``, ``from``, ``to``, ``increase`` (:data:`TRANSITIONS_INCREASE`);
        None when the service exports no transitions counter (e.g. resilience4j): the
        counter columns are then NaN.
    state
        The gauge sampled every ``scrape_interval``: ``breaker``, ``time``, ``value``
        (0 closed, 1 open, 2 half-open; :data:`STATE`), one series per breaker.
    calls
        Columns ``breaker``, ``outcome`` (success, failure, rejected), ``increase``
        (:data:`CALLS_INCREASE`), or None.
    start, end
        The window (same kind as ``state['time']``: tz-aware datetimes or seconds).
    flap_trips, flap_window
        A breaker is *flapping* when the gauge saw at least ``flap_trips`` trips within
        ``flap_window`` seconds.
    """
    _require(state, ("breaker", "time", "value"), "state")
    if transitions is not None:
        _require(transitions, ("breaker", "from", "to", "increase"), "transitions")
    if calls is not None:
        _require(calls, ("breaker", "outcome", "increase"), "calls")
    if not scrape_interval > 0:
        raise ConfigurationError(f"scrape_interval must be seconds > 0, got {scrape_interval!r}")
    t0, t1 = _to_seconds([start])[0], _to_seconds([end])[0]
    secs = _to_seconds(state["time"]) if len(state) else np.zeros(0)
    window = state.assign(_t=secs)[(secs >= t0) & (secs <= t1)]
    if window.duplicated(["breaker", "_t"]).any():
        raise ConfigurationError("state has several samples per breaker and time (one per instance?); "
                                 "aggregate to one series per breaker first, e.g. with STATE's max by (breaker)")

    trips = _counter(transitions, lambda f: f["to"] == "open")
    retrips = _counter(transitions, lambda f: (f["from"] == "half_open") & (f["to"] == "open"))
    closed_to_open = _counter(transitions, lambda f: (f["from"] == "closed") & (f["to"] == "open"))
    by_outcome = {o: _counter(calls, lambda f, o=o: f["outcome"] == o) for o in ("rejected", "success", "failure")}
    names = set(window["breaker"]).union(*(set(s.index) for s in (trips, *by_outcome.values())))
    if transitions is not None:
        names |= set(transitions["breaker"])

    rows, few = [], []
    for name in sorted(names):
        g = window[window["breaker"] == name].sort_values("_t")
        gs = _gauge(g["_t"].to_numpy(), np.rint(g["value"].to_numpy(dtype=float)).astype(int), scrape_interval,
                    flap_trips, flap_window)
        seen, durations, trip_times = gs.pop("trips_seen_by_gauge"), gs.pop("durations"), gs.pop("trip_times")
        timing = seen >= 2
        if not timing:
            few.append(f"{name} ({seen})")

        def counter(s: pd.Series, name: str = name) -> float:
            return float(s.get(name, 0.0)) if transitions is not None else np.nan
        c2o = counter(closed_to_open)
        rows.append({
            "breaker": name, "trips": counter(trips), "retrips": counter(retrips), "closed_to_open": c2o,
            "trips_seen_by_gauge": seen, "aliasing_gap": c2o - seen,
            **{k: (float(by_outcome[o].get(name, 0.0)) if calls is not None else np.nan)
               for k, o in (("rejected", "rejected"), ("successes", "success"), ("failures", "failure"))},
            **gs,
            "open_mean": float(durations.mean()) if timing and len(durations) else np.nan,
            "open_median": float(np.median(durations)) if timing and len(durations) else np.nan,
            "open_max": float(durations.max()) if timing and len(durations) else np.nan,
            "between_trips_mean": float(np.diff(trip_times).mean()) if timing else np.nan,
            "flapping": gs["max_trips_in_flap_window"] >= flap_trips,
        })
    if few:
        warnings.warn(f"too few trips seen by the state gauge to estimate open durations and time between "
                      f"trips (need 2): {', '.join(few)}; those statistics are NaN", StatisticalWarning,
                      stacklevel=2)
    by_breaker = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    return BreakerStats(by_breaker=by_breaker, start=start, end=end, scrape_interval=float(scrape_interval),
                        flap_trips=flap_trips, flap_window=float(flap_window))


def _amount(frame: pd.DataFrame, name: str) -> pd.Series:
    if "increase" in frame.columns:
        return frame["increase"]
    if "value" in frame.columns:
        return frame["value"]
    raise ConfigurationError(f"{name} needs a 'value' (or 'increase') column; got {list(frame.columns)}")


def from_resilience4j(state: pd.DataFrame, not_permitted: pd.DataFrame | None = None,
                      calls: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Convert resilience4j's Micrometer metrics into trip_stats' ``state`` and ``calls`` frames.

    ``state`` is ``resilience4j_circuitbreaker_state{name, state}`` (one-hot: 1 for the
    current state) with ``time`` and ``value``; ``not_permitted`` is the increase of
    ``resilience4j_circuitbreaker_not_permitted_calls_total{name}``; ``calls`` of
    ``resilience4j_circuitbreaker_calls_seconds_count{name, kind}`` (successful -> success,
    failed -> failure; ignored calls are neither and are dropped). resilience4j exports no
    transitions counter: pass ``transitions=None`` to :func:`trip_stats`.
    """
    _require(state, ("name", "state", "time", "value"), "resilience4j state")
    active = state[state["value"] >= 0.5]
    unknown = sorted(set(active["state"]) - set(R4J_STATE_VALUE))
    if unknown:
        raise ConfigurationError(f"resilience4j state has unknown state labels {unknown}; "
                                 f"known: {sorted(R4J_STATE_VALUE)}")
    gauge = (active.assign(value=active["state"].map(R4J_STATE_VALUE).astype(float))
             .groupby(["name", "time"], as_index=False)["value"].max()
             .rename(columns={"name": "breaker"})[["breaker", "time", "value"]])
    parts = []
    if not_permitted is not None and not not_permitted.empty:
        _require(not_permitted, ("name",), "resilience4j not_permitted")
        parts.append(pd.DataFrame({"breaker": not_permitted["name"], "outcome": "rejected",
                                   "increase": _amount(not_permitted, "resilience4j not_permitted")}))
    if calls is not None and not calls.empty:
        _require(calls, ("name", "kind"), "resilience4j calls")
        kept = calls[calls["kind"].isin(R4J_KIND_OUTCOME)]
        parts.append(pd.DataFrame({"breaker": kept["name"], "outcome": kept["kind"].map(R4J_KIND_OUTCOME),
                                   "increase": _amount(kept, "resilience4j calls")}))
    out = (pd.concat(parts, ignore_index=True).groupby(["breaker", "outcome"], as_index=False)["increase"].sum()
           if parts else pd.DataFrame({"breaker": [], "outcome": [], "increase": []}))
    return gauge.reset_index(drop=True), out
