"""What-if tuning: how would other thresholds and timeouts have behaved on the same history?

Prometheus keeps calls and failures per scrape interval, not the order of the calls. So
each repetition rebuilds one plausible call sequence: an interval's calls evenly spaced
across it, its failures at positions drawn at random within it (seeded), then replays it
under every configuration of the grid. All configurations see the same sequences (common
random numbers), so differences between them are the configurations', not the noise's.

It models the *dependency*, not the breaker's observed outcomes. Calls the real breaker
rejected never reached the dependency, so whether they would have failed is unknown: each
repetition draws it (binomially) at the failure rate of the calls that got through around
them, in the same open episode (:func:`impute_rejected`). Counting them as failures instead, as a pessimist would,
makes every open period look like an outage and the replay trips twice as often as the real
breaker did (21.4 trips against 10 on the bundled history); with the imputation the replay
at the settings in force reproduces the observed trips, rejected calls and open time.

Work is proportional to failures, not calls: only the positions of failed calls are drawn,
and the breakers' walks (:func:`~reliability.analysis.breakers.replay.walk` and
:func:`~reliability.analysis.breakers.rate_policy.walk_rate`) jump from trip to trip; rejected calls
and the failures among them are counted with ``searchsorted``, never call by call.
"""
from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from reliability.analysis.breakers.rate_policy import _check as _check_rate
from reliability.analysis.breakers.rate_policy import full_window_trips, walk_rate
from reliability.analysis.breakers.replay import walk
from reliability.errors import ConfigurationError, NoDataError, StatisticalWarning
from reliability.source.breaker import _check_config

METRICS = ("trips", "rejected", "failed_calls_allowed", "time_open")
#: The what-if's stated uncertainty: the 5th to 95th percentile over repetitions (``*_low``, ``*_high``).
UNCERTAINTY = (5, 95)
RATE_DEFAULTS = {"sliding_window_size": 100, "minimum_number_of_calls": 100, "permitted_calls_in_half_open": 10}


def _seconds(column: pd.Series, name: str) -> np.ndarray:
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return column.dt.as_unit("ns").array.asi8 / 1e9
    if pd.api.types.is_numeric_dtype(column.dtype) and column.dtype != bool:
        return column.to_numpy(dtype=np.float64)
    raise ConfigurationError(f"{name} column 'time' must be seconds (float) or tz-aware datetimes, "
                             f"got dtype {column.dtype}")


def _counts(intervals: pd.DataFrame, column: str) -> np.ndarray:
    values = intervals[column].to_numpy(dtype=np.float64, na_value=np.nan)
    if np.isnan(values).any() or (values < 0).any():
        raise ConfigurationError(f"intervals column {column!r} must be counts >= 0 without gaps; "
                                 f"fill missing intervals with 0 only if the service truly had no calls")
    return np.rint(values).astype(np.int64)  # increase() extrapolates: round to whole calls


def validate_intervals(intervals: pd.DataFrame, *, interval: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check an intervals frame; return (start seconds, calls, failures) as arrays."""
    if not isinstance(intervals, pd.DataFrame):
        raise ConfigurationError(f"intervals must be a DataFrame, got {type(intervals).__name__}")
    for column in ("time", "calls", "failures"):
        if column not in intervals.columns:
            raise ConfigurationError(f"intervals has no column {column!r}; it needs 'time' (interval start), "
                                     f"'calls' and 'failures' per scrape interval (see intervals_from_calls)")
    start = _seconds(intervals["time"], "intervals")
    calls, failures = _counts(intervals, "calls"), _counts(intervals, "failures")
    # "calls" are the calls that reached the dependency; "rejected" (optional) the real breaker turned away.
    if (failures > calls).any():
        i = int(np.flatnonzero(failures > calls)[0])
        raise ConfigurationError(f"intervals row {i} has more failures ({failures[i]}) than calls ({calls[i]}); "
                                 f"'calls' must count every call, failed or not")
    if len(start) > 1 and (np.diff(start) < interval - 1e-9).any():
        raise ConfigurationError(f"intervals column 'time' must be sorted with steps of at least interval="
                                 f"{interval:g} s, or the expanded calls would overlap; sort it or pass the "
                                 f"right interval")
    return start, calls, failures


def expand_times(start: np.ndarray, calls: np.ndarray, *, interval: float) -> np.ndarray:
    """Each interval's calls evenly spaced from its start, as one sorted time array."""
    total = int(calls.sum())
    owner = np.repeat(np.arange(len(calls)), calls)
    offset = np.concatenate([[0], np.cumsum(calls)[:-1]])
    local = np.arange(total) - offset[owner]
    return start[owner] + local * (interval / calls[owner])


def draw_failures(calls: np.ndarray, failures: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sorted global indices of failed calls: in each interval, a uniform random subset of its slots."""
    q = np.flatnonzero(failures > 0)
    if not len(q):
        return np.zeros(0, dtype=np.int64)
    c, f = calls[q], failures[q]
    owner = np.repeat(np.arange(len(q)), c)
    first = np.concatenate([[0], np.cumsum(c)[:-1]])
    order = np.lexsort((rng.random(len(owner)), owner))  # a random permutation within each interval
    rank = np.arange(len(owner)) - first[owner]
    picked = order[rank < f[owner]]
    offset = np.concatenate([[0], np.cumsum(calls)[:-1]])
    return np.sort(offset[q][owner[picked]] + (picked - first[owner[picked]]))


def outcome(t: np.ndarray, fail_idx: np.ndarray, opens: np.ndarray, probes: np.ndarray, *,
            end: float) -> tuple[int, int, int, float]:
    """Openings, rejected calls, failed calls let through and seconds OPEN, from a walk's openings.

    An open period runs from the call that opened the breaker to its probe (or ``end``).
    """
    n = len(t)
    stop = np.minimum(probes, n)
    rejected = int(np.maximum(stop - opens - 1, 0).sum())
    failed_rejected = int((np.searchsorted(fail_idx, stop, side="left")
                           - np.searchsorted(fail_idx, opens, side="right")).clip(min=0).sum())
    closes = np.where(probes < n, t[np.minimum(probes, n - 1)], end) if len(opens) else np.zeros(0)
    open_time = float((closes - t[opens]).sum()) if len(opens) else 0.0
    return len(opens), rejected, len(fail_idx) - failed_rejected, open_time


def episodes(intervals: pd.DataFrame, *, minimum: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The open episodes of the real breaker and the calls that got through in each.

    An episode is a run of intervals with rejected calls. Within it the dependency's failure
    rate is estimated from the calls that reached it: the probes and the closed stretches between
    trips, pooled (failures over calls: the likelihood's estimate, which a breaker's stopping rule
    does not bias). The episode's first and last intervals also hold calls from before the fault
    began or after it ended, so they are pooled in only when the inner intervals have fewer than
    ``minimum`` such calls. Returns (episode of each interval, -1 outside; failures and calls
    through, per episode).
    """
    rejected = (intervals["rejected"].to_numpy(dtype=float) > 0 if "rejected" in intervals
                else np.zeros(len(intervals), dtype=bool))
    calls = intervals["calls"].to_numpy(dtype=float)
    failures = intervals["failures"].to_numpy(dtype=float)
    ids = np.full(len(calls), -1)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], rejected.astype(np.int8), [0]])))
    failed, reached = [], []
    for k, (first, stop) in enumerate(zip(edges[::2], edges[1::2], strict=False)):
        ids[first:stop] = k
        lo, hi = (first + 1, stop - 1) if calls[first + 1:stop - 1].sum() >= minimum else (first, stop)
        if calls[lo:hi].sum() == 0:  # nothing got through: the intervals just before and after
            lo, hi = max(0, first - 1), min(len(calls), stop + 1)
        failed.append(failures[lo:hi].sum())
        reached.append(calls[lo:hi].sum())
    return ids, np.asarray(failed, dtype=float), np.asarray(reached, dtype=float)


def impute_rejected(intervals: pd.DataFrame, *, minimum: int = 10) -> np.ndarray:
    """Per interval, the failure rate of its rejected calls: their episode's (see :func:`episodes`); 0 outside."""
    ids, failed, reached = episodes(intervals, minimum=minimum)
    rate = np.where(reached > 0, failed / np.where(reached > 0, reached, 1), 1.0)
    return np.where(ids >= 0, rate[np.maximum(ids, 0)] if len(rate) else 0.0, 0.0)


@dataclass(frozen=True)
class InForce:
    """The settings the real breaker ran with and what it did, which every what-if repetition must reproduce.

    A repetition is one plausible history (call order, rejected calls' outcomes); it is kept only
    when the seed's breaker at these settings, replayed on it, trips and rejects as the real one
    did, within ``tolerance`` (trips at least exactly when few). The what-if is then the
    distribution of the other settings' outcomes over histories consistent with what happened.
    """

    failure_threshold: int
    timeout: float
    trips: float
    rejected: float
    tolerance: float = 0.10

    def fits(self, trips: float, rejected: float) -> bool:
        return (abs(trips - self.trips) <= max(self.tolerance * self.trips, 0.5)
                and abs(rejected - self.rejected) <= max(self.tolerance * self.rejected, 0.5))


def whatif(intervals: pd.DataFrame, *, thresholds: Sequence[float] = (3, 5, 10, 20, 50),
           timeouts: Sequence[float] = (10, 30, 60, 120, 300), repetitions: int = 20, seed: int = 0,
           policy: str = "consecutive", interval: float = 30.0,
           rate_options: Mapping[str, int] | None = None, in_force: InForce | None = None,
           max_draws: int | None = None) -> pd.DataFrame:
    """Monte Carlo replay of one dependency's history under a grid of breaker configurations.

    Parameters
    ----------
    intervals
        One row per scrape interval of one dependency: ``time`` (interval start, seconds or
        tz-aware), ``calls`` and ``failures`` (counts; rounded to whole calls).
    thresholds
        ``failure_threshold`` (consecutive failures) for ``policy="consecutive"``; the
        failure-rate threshold in percent for ``policy="rate"``.
    timeouts
        Seconds OPEN before a probe (``timeout`` / ``wait_duration_in_open``).
    repetitions, seed
        Random call orders per configuration, and the seed that makes them reproducible.
    policy
        ``"consecutive"`` (the seed's :class:`CircuitBreaker`) or ``"rate"``
        (:class:`RateBasedBreaker`; its other settings from ``rate_options``).
    interval
        Length of an interval in seconds (the scrape interval).
    in_force, max_draws
        The real breaker's settings and what it did (:class:`InForce`): only histories on which
        it behaves so are kept, drawing at most ``max_draws`` (default 100 per repetition).
        Without it every drawn history counts (uncalibrated).

    Returns
    -------
    pandas.DataFrame
        One row per (failure_threshold, timeout): ``policy``, ``repetitions``, ``calls``,
        ``failures``, and for each of ``trips`` (openings, re-trips from HALF_OPEN included),
        ``rejected``, ``failed_calls_allowed`` (failures that reached the dependency) and
        ``time_open`` (seconds) the mean, 5th and 95th percentile over repetitions
        (``trips_mean``, ``trips_p5``, ...; ``*_low``/``*_high`` are the stated 90 % uncertainty),
        and ``draws`` (histories drawn to keep ``repetitions``).
    """
    if policy not in ("consecutive", "rate"):
        raise ConfigurationError(f"policy must be 'consecutive' or 'rate', got {policy!r}")
    if isinstance(repetitions, bool) or not isinstance(repetitions, int) or repetitions < 1:
        raise ConfigurationError(f"repetitions must be an integer >= 1, got {repetitions!r}")
    if not interval > 0:
        raise ConfigurationError(f"interval must be seconds > 0, got {interval!r}")
    options = {**RATE_DEFAULTS, **(rate_options or {})}
    unknown = set(options) - set(RATE_DEFAULTS)
    if unknown:
        raise ConfigurationError(f"rate_options has unknown keys {sorted(unknown)}; allowed: {sorted(RATE_DEFAULTS)}")
    for thr in thresholds:
        for timeout in timeouts:
            if policy == "consecutive":
                _check_config(thr, timeout)  # type: ignore[arg-type]
            else:
                _check_rate(options["sliding_window_size"], options["minimum_number_of_calls"], thr,
                            options["permitted_calls_in_half_open"], timeout)

    start, reached, observed_failures = validate_intervals(intervals, interval=interval)
    rejected = _counts(intervals, "rejected") if "rejected" in intervals.columns else np.zeros_like(reached)
    ids, ep_failed, ep_reached = episodes(intervals)
    calls = reached + rejected  # every call the backend made, whether or not the real breaker let it through
    t = expand_times(start, calls, interval=interval)
    n, end = len(t), float(start[-1] + interval) if len(start) else 0.0
    rng = np.random.default_rng(seed)
    shape = (len(thresholds), len(timeouts), repetitions)
    results = {m: np.zeros(shape, dtype=np.float64) for m in METRICS}
    drawn_failures = np.zeros(repetitions)
    limit = max_draws or 100 * repetitions
    r = draws = 0
    while r < repetitions and draws < limit:
        draws += 1
        # Each episode's failure rate from its posterior given the calls that got through (Jeffreys),
        # then the rejected calls' outcomes at that rate.
        rate = rng.beta(ep_failed + 0.5, ep_reached - ep_failed + 0.5) if len(ep_failed) else np.zeros(0)
        failures = observed_failures + rng.binomial(rejected, np.where(ids >= 0, rate[np.maximum(ids, 0)]
                                                                       if len(rate) else 0.0, 0.0))
        fail_idx = draw_failures(calls, failures, rng)
        if in_force is not None:
            opens, probes = walk(t, fail_idx, failure_threshold=int(in_force.failure_threshold),
                                 timeout=float(in_force.timeout))
            trips, rejected_calls, _, _ = outcome(t, fail_idx, opens, probes, end=end)
            if not in_force.fits(trips, rejected_calls):
                continue
        drawn_failures[r] = failures.sum()
        cum_fail = None
        if policy == "rate":
            cum_fail = np.zeros(n + 1, dtype=np.int64)
            cum_fail[1 + fail_idx] = 1
            np.cumsum(cum_fail, out=cum_fail)
        for i, thr in enumerate(thresholds):
            hits = None
            if cum_fail is not None:
                hits = full_window_trips(cum_fail, sliding_window_size=options["sliding_window_size"],
                                         failure_rate_threshold=float(thr))
            for j, timeout in enumerate(timeouts):
                if cum_fail is None:
                    opens, probes = walk(t, fail_idx, failure_threshold=int(thr), timeout=float(timeout))
                else:
                    opens, probes, _, _ = walk_rate(t, cum_fail, failure_rate_threshold=float(thr),
                                                    wait=float(timeout), full_hits=hits, **options)
                for m, v in zip(METRICS, outcome(t, fail_idx, opens, probes, end=end), strict=True):
                    results[m][i, j, r] = v
        r += 1
    if r == 0:
        raise NoDataError(f"none of {draws} replayed histories reproduced what the real breaker did "
                          f"({in_force.trips:g} trips, {in_force.rejected:,.0f} rejected calls at "
                          f"{in_force.failure_threshold} / {in_force.timeout:g} s): the dependency's failures "
                          "do not fit the model (independent per call at a rate constant in each open episode); "
                          "check in_force against breaker_stats, or raise max_draws")
    if r < repetitions:
        warnings.warn(f"only {r} of {repetitions} repetitions reproduced the real breaker in {draws} draws; the "
                      "what-if's uncertainty is estimated from those", StatisticalWarning, stacklevel=2)
        results = {m: v[:, :, :r] for m, v in results.items()}
        drawn_failures, repetitions = drawn_failures[:r], r

    grid = pd.MultiIndex.from_product([list(thresholds), list(timeouts)], names=["failure_threshold", "timeout"])
    out = pd.DataFrame(index=grid).reset_index()
    out.insert(0, "policy", policy)
    out["repetitions"] = repetitions
    out["draws"] = draws
    out["calls"] = n
    out["failures"] = float(drawn_failures.mean())  # observed, plus the rejected calls' imputed failures
    out["imputed_failures"] = float(drawn_failures.mean() - observed_failures.sum())
    low, high = UNCERTAINTY
    for m in METRICS:
        flat = results[m].reshape(-1, repetitions)
        out[f"{m}_mean"] = flat.mean(axis=1)
        out[f"{m}_p5"] = np.percentile(flat, 5, axis=1)
        out[f"{m}_p95"] = np.percentile(flat, 95, axis=1)
        out[f"{m}_low"], out[f"{m}_high"] = np.percentile(flat, low, axis=1), np.percentile(flat, high, axis=1)
    return out


def intervals_from_calls(frame: pd.DataFrame, *, breaker: str | None = None, interval: float = 30.0,
                         rejected: str = "impute") -> pd.DataFrame:
    """Per-interval calls and failures of one breaker, from the calls counter's per-scrape increases.

    Parameters
    ----------
    frame
        Range-query result of the calls counter's increase per interval (as
        :func:`~reliability.analysis.breakers.observed.call_intervals` asks it): columns
        ``breaker``, ``outcome`` (success, failure, rejected), ``time`` (end of the interval)
        and ``value`` (calls in the interval ending at ``time``).
    breaker
        Which breaker to keep; required when the frame holds several.
    rejected
        Calls the real breaker rejected have no observed outcome. ``"impute"`` (the default)
        keeps them in a ``rejected`` column, and :func:`whatif` draws their outcome at the
        failure rate of the calls around them; ``"failure"`` counts them as failed
        (pessimistic: it cannot reproduce the real trips); ``"drop"`` leaves them out.
    """
    if rejected not in ("impute", "failure", "drop"):
        raise ConfigurationError(f"rejected must be 'impute', 'failure' or 'drop', got {rejected!r}")
    for column in ("outcome", "time", "value"):
        if column not in frame.columns:
            raise ConfigurationError(f"calls frame has no column {column!r}; expected breaker, outcome, time, value")
    if "breaker" in frame.columns:
        names = sorted(frame["breaker"].unique())
        if breaker is None and len(names) > 1:
            raise ConfigurationError(f"calls frame holds several breakers {names}; pass breaker=")
        if breaker is not None:
            frame = frame[frame["breaker"] == breaker]
    wide = frame.pivot_table(index="time", columns="outcome", values="value", aggfunc="sum", fill_value=0.0)
    get = lambda name: wide[name] if name in wide.columns else 0.0  # noqa: E731
    calls = get("success") + get("failure")
    failures = get("failure")
    if rejected == "failure":
        calls, failures = calls + get("rejected"), failures + get("rejected")
    time = wide.index
    shifted = time - pd.Timedelta(seconds=interval) if isinstance(time, pd.DatetimeIndex) else time - interval
    out = pd.DataFrame({"time": shifted, "calls": np.asarray(calls, dtype=float),
                        "failures": np.asarray(failures, dtype=float)})
    if rejected == "impute":
        out["rejected"] = np.broadcast_to(np.asarray(get("rejected"), dtype=float), len(out))
    return out.reset_index(drop=True)

