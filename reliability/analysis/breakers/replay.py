"""Replay a call history through the seed's breaker fast enough for 10 million calls.

Only trips cost Python work. Between trips the breaker is CLOSED and its failure count is
the length of the current run of consecutive failures (every success resets it; the
breaker re-closes only on a successful probe). So the calls that trip a CLOSED breaker are
exactly the calls where a run of failures reaches the threshold, found once with array
arithmetic. From a trip at call ``c`` the next call that runs is the first with
``time >= time[c] + timeout`` (``searchsorted``); everything in between is rejected. That
probe either succeeds (CLOSED again, look for the next threshold call after it) or fails
(OPEN again: the count was not reset, so one failure re-opens). The loop runs once per
opening, never per call.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from reliability.errors import ConfigurationError
from reliability.source.breaker import GAUGE_VALUE, State, _check_config

STATES = [State.CLOSED.value, State.OPEN.value, State.HALF_OPEN.value]  # category codes = gauge values
CLOSED, OPEN, HALF_OPEN = (GAUGE_VALUE[s] for s in (State.CLOSED, State.OPEN, State.HALF_OPEN))


def validate_calls(calls: pd.DataFrame, *, name: str = "calls") -> tuple[np.ndarray, np.ndarray, bool]:
    """Check a calls frame and return (times as float seconds or int ns, ok as bool, is_datetime)."""
    if not isinstance(calls, pd.DataFrame):
        raise ConfigurationError(f"{name} must be a pandas DataFrame with columns 'time' and 'ok', "
                                 f"got {type(calls).__name__}")
    for column in ("time", "ok"):
        if column not in calls.columns:
            raise ConfigurationError(f"{name} has no column {column!r}; it needs 'time' (seconds or tz-aware "
                                     f"datetimes) and 'ok' (bool), one row per call. Columns: {list(calls.columns)}")
    ok_col = calls["ok"]
    if ok_col.dtype == bool:
        ok = ok_col.to_numpy()
    elif isinstance(ok_col.dtype, pd.BooleanDtype):
        if ok_col.isna().any():
            raise ConfigurationError(f"{name} column 'ok' has missing values; every call needs an outcome")
        ok = ok_col.to_numpy(dtype=bool)
    else:
        raise ConfigurationError(f"{name} column 'ok' must be bool (True = success), got dtype {ok_col.dtype}; "
                                 f"convert it, e.g. calls['ok'] = calls['status'] < 500")
    t_col = calls["time"]
    if isinstance(t_col.dtype, pd.DatetimeTZDtype):
        if t_col.isna().any():
            raise ConfigurationError(f"{name} column 'time' has missing values")
        t = t_col.dt.as_unit("ns").array.asi8
        is_dt = True
    elif pd.api.types.is_datetime64_dtype(t_col.dtype):
        raise ConfigurationError(f"{name} column 'time' holds naive datetimes; make them tz-aware "
                                 f"(e.g. .dt.tz_localize('UTC')) or pass seconds as float")
    elif pd.api.types.is_numeric_dtype(t_col.dtype) and t_col.dtype != bool:
        t = t_col.to_numpy(dtype=np.float64)
        if np.isnan(t).any():
            raise ConfigurationError(f"{name} column 'time' has missing values")
        is_dt = False
    else:
        raise ConfigurationError(f"{name} column 'time' must be seconds (float) or tz-aware datetimes, "
                                 f"got dtype {t_col.dtype}")
    if len(t) > 1 and not (t[1:] >= t[:-1]).all():
        bad = int(np.flatnonzero(t[1:] < t[:-1])[0]) + 1
        raise ConfigurationError(f"{name} column 'time' is not in time order (row {bad} is earlier than the "
                                 f"row before it); sort it, e.g. calls.sort_values('time', kind='stable')")
    return t, ok, is_dt


def timeout_in_units(timeout: float, is_dt: bool) -> float | int:
    """The timeout in the units of the validated time array (int ns for datetimes)."""
    return round(timeout * 1e9) if is_dt else float(timeout)


def threshold_calls(fail_idx: np.ndarray, threshold: int) -> np.ndarray:
    """Indices of the calls at which a run of consecutive failures reaches ``threshold``.

    ``fail_idx`` are the sorted indices of failed calls; a run is a stretch of consecutive indices.
    """
    if len(fail_idx) < threshold:
        return fail_idx[:0]
    new_run = np.ones(len(fail_idx), dtype=bool)
    new_run[1:] = np.diff(fail_idx) != 1
    run_start = np.maximum.accumulate(np.where(new_run, np.arange(len(fail_idx)), 0))
    position = np.arange(len(fail_idx)) - run_start  # 0 for a run's first failure
    return fail_idx[position == threshold - 1]


def walk(t: np.ndarray, fail_idx: np.ndarray, *, failure_threshold: int,
         timeout: float | int) -> tuple[np.ndarray, np.ndarray]:
    """Every opening of the breaker and the call that probes it, in call order.

    Returns ``(opens, probes)``: ``opens[i]`` is the index of the call whose failure opened
    the breaker (a trip or a failed probe), ``probes[i]`` the first call at or after
    ``time[opens[i]] + timeout`` after it (``len(t)`` if none). Calls strictly between are rejected.
    """
    n = len(t)
    candidates = threshold_calls(fail_idx, failure_threshold)
    opens: list[int] = []
    probes: list[int] = []
    start = 0  # first call of the current CLOSED stretch (failure count 0 there)
    while True:
        i = int(np.searchsorted(candidates, start))
        if i == len(candidates):
            break
        c = int(candidates[i])
        while True:
            # Later calls only: with ties or a zero timeout the search can land on or before c.
            p = max(int(np.searchsorted(t, t[c] + timeout, side="left")), c + 1)
            opens.append(c)
            probes.append(p)
            if p >= n:
                return np.asarray(opens, dtype=np.int64), np.asarray(probes, dtype=np.int64)
            j = int(np.searchsorted(fail_idx, p))
            if j < len(fail_idx) and fail_idx[j] == p:
                c = p  # failed probe: the count was never reset, so it re-opens at once
                continue
            start = p + 1
            break
    return np.asarray(opens, dtype=np.int64), np.asarray(probes, dtype=np.int64)


def _spans(starts: np.ndarray, stops: np.ndarray, n: int) -> np.ndarray:
    """Boolean mask of the union of disjoint half-open index ranges [starts, stops)."""
    delta = np.bincount(starts, minlength=n + 1)[: n + 1].astype(np.int32)
    delta -= np.bincount(np.minimum(stops, n), minlength=n + 1)[: n + 1].astype(np.int32)
    return np.cumsum(delta[:n]) > 0


def frame(calls: pd.DataFrame, ok: np.ndarray, allowed: np.ndarray, codes: np.ndarray) -> pd.DataFrame:
    """The replay result: the input's time and ok, plus allowed and the state after each call."""
    state = pd.Categorical.from_codes(codes, categories=STATES)
    return pd.DataFrame({"time": calls["time"].array, "ok": ok, "allowed": allowed, "state": state},
                        index=calls.index, copy=False)


def replay(calls: pd.DataFrame, *, failure_threshold: int = 5, timeout: float = 60.0) -> pd.DataFrame:
    """Replay calls through the seed's breaker, call by call, exactly as the plain class would.

    Parameters
    ----------
    calls
        Columns ``time`` (seconds as float, or tz-aware datetimes) and ``ok`` (bool), in
        time order (ties allowed; they are taken in row order).
    failure_threshold, timeout
        The breaker's configuration (timeout in seconds).

    Returns
    -------
    pandas.DataFrame
        One row per call, same index: ``time`` (as given), ``ok``, ``allowed`` (False when
        rejected) and ``state`` after the call (Categorical of "CLOSED", "OPEN",
        "HALF_OPEN"; a call-by-call replay never ends a call HALF_OPEN, since the probe's
        outcome decides at once).
    """
    _check_config(failure_threshold, timeout)
    t, ok, is_dt = validate_calls(calls)
    n = len(t)
    fail_idx = np.flatnonzero(~ok)
    opens, probes = walk(t, fail_idx, failure_threshold=int(failure_threshold),
                         timeout=timeout_in_units(timeout, is_dt))
    codes = np.zeros(n, dtype=np.int8)
    allowed = np.ones(n, dtype=bool)
    if len(opens):
        # OPEN from the opening call up to (not including) its probe; rejected strictly between.
        codes[_spans(opens, probes, n)] = OPEN
        allowed[_spans(opens + 1, np.maximum(probes, opens + 1), n)] = False
    return frame(calls, ok, allowed, codes)


def summarize(result: pd.DataFrame) -> dict[str, int]:
    """Openings (trips from CLOSED and re-trips by failed probes), rejected and failed-allowed calls."""
    state = result["state"].cat.codes.to_numpy()
    allowed = result["allowed"].to_numpy()
    prev = np.concatenate([[CLOSED], state[:-1]])
    opened = allowed & (state == OPEN)  # an admitted call that ends OPEN opened the breaker
    return {
        "calls": len(result),
        "trips": int((opened & (prev != OPEN)).sum()),
        "retrips": int((opened & (prev == OPEN)).sum()),
        "rejected": int((~allowed).sum()),
        "failed_calls_allowed": int((allowed & ~result["ok"].to_numpy()).sum()),
    }
