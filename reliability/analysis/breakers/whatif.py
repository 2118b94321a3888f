"""What-if tuning: how would other thresholds and timeouts have behaved on the same history?

Prometheus keeps calls and failures per scrape interval, not the order of the calls. So
each repetition rebuilds one plausible call sequence: an interval's calls evenly spaced
across it, its failures at positions drawn at random within it (seeded), then replays it
under every configuration of the grid. All configurations see the same sequences (common
random numbers), so differences between them are the configurations', not the noise's.

Work is proportional to failures, not calls: only the positions of failed calls are drawn,
and the breakers' walks (:func:`~reliability.analysis.breakers.replay.walk` and
:func:`~reliability.analysis.breakers.rate_policy.walk_rate`) jump from trip to trip; rejected calls
and the failures among them are counted with ``searchsorted``, never call by call.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
import numpy as np
import pandas as pd

from reliability.errors import ConfigurationError
from reliability.source.breaker import _check_config
from reliability.analysis.breakers.rate_policy import _check as _check_rate
from reliability.analysis.breakers.rate_policy import full_window_trips, walk_rate
from reliability.analysis.breakers.replay import walk

METRICS = ("trips", "rejected", "failed_calls_allowed")
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


def _outcome(n: int, fail_idx: np.ndarray, opens: np.ndarray, probes: np.ndarray) -> tuple[int, int, int]:
    """Openings, rejected calls and failed calls let through, from a walk's openings."""
    stop = np.minimum(probes, n)
    rejected = int(np.maximum(stop - opens - 1, 0).sum())
    failed_rejected = int((np.searchsorted(fail_idx, stop, side="left")
                           - np.searchsorted(fail_idx, opens, side="right")).clip(min=0).sum())
    return len(opens), rejected, len(fail_idx) - failed_rejected


def whatif(intervals: pd.DataFrame, *, thresholds: Sequence[float] = (3, 5, 10, 20, 50),
           timeouts: Sequence[float] = (10, 30, 60, 120, 300), repetitions: int = 20, seed: int = 0,
           policy: str = "consecutive", interval: float = 30.0,
           rate_options: Mapping[str, int] | None = None) -> pd.DataFrame:
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

    Returns
    -------
    pandas.DataFrame
        One row per (failure_threshold, timeout): ``policy``, ``repetitions``, ``calls``,
        ``failures``, and for each of ``trips`` (openings, re-trips from HALF_OPEN included),
        ``rejected`` and ``failed_calls_allowed`` (failures that reached the dependency)
        the mean, 5th and 95th percentile over repetitions (``trips_mean``, ``trips_p5``, ...).
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

    start, calls, failures = validate_intervals(intervals, interval=interval)
    t = expand_times(start, calls, interval=interval)
    n = len(t)
    rng = np.random.default_rng(seed)
    shape = (len(thresholds), len(timeouts), repetitions)
    results = {m: np.zeros(shape, dtype=np.int64) for m in METRICS}
    for r in range(repetitions):
        fail_idx = draw_failures(calls, failures, rng)
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
                for m, v in zip(METRICS, _outcome(n, fail_idx, opens, probes)):
                    results[m][i, j, r] = v

    grid = pd.MultiIndex.from_product([list(thresholds), list(timeouts)], names=["failure_threshold", "timeout"])
    out = pd.DataFrame(index=grid).reset_index()
    out.insert(0, "policy", policy)
    out["repetitions"] = repetitions
    out["calls"] = n
    out["failures"] = int(failures.sum())
    for m in METRICS:
        flat = results[m].reshape(-1, repetitions).astype(np.float64)
        out[f"{m}_mean"] = flat.mean(axis=1)
        out[f"{m}_p5"] = np.percentile(flat, 5, axis=1)
        out[f"{m}_p95"] = np.percentile(flat, 95, axis=1)
    return out


def intervals_from_calls(frame: pd.DataFrame, *, breaker: str | None = None, interval: float = 30.0,
                         rejected: str = "failure") -> pd.DataFrame:
    """Per-interval calls and failures of one breaker, from the calls counter's per-scrape increases.

    Parameters
    ----------
    frame
        Range-query result of :data:`~reliability.analysis.breakers.trips.CALLS_PER_INTERVAL`: columns
        ``breaker``, ``outcome`` (success, failure, rejected), ``time`` (end of the interval)
        and ``value`` (calls in the interval ending at ``time``).
    breaker
        Which breaker to keep; required when the frame holds several.
    rejected
        Calls the real breaker rejected have no observed outcome. ``"failure"`` counts them
        as failed (the dependency was failing when they were rejected: pessimistic for
        breakers that would have let them through); ``"drop"`` leaves them out.
    """
    if rejected not in ("failure", "drop"):
        raise ConfigurationError(f"rejected must be 'failure' or 'drop', got {rejected!r}")
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
    return pd.DataFrame({"time": shifted, "calls": np.asarray(calls, dtype=float),
                         "failures": np.asarray(failures, dtype=float)}).reset_index(drop=True)

