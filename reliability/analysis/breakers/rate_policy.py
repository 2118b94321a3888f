"""The failure-rate breaker as resilience4j implements it, to compare with the seed's policy.

Semantics follow resilience4j 2.x ``CircuitBreakerStateMachine`` and ``CircuitBreakerMetrics``
(github.com/resilience4j/resilience4j, ``resilience4j-circuitbreaker/.../internal/``),
count-based sliding window:

* CLOSED records each outcome in a window of the last ``sliding_window_size`` calls. The
  rate is evaluated after every call once at least ``min(minimum_number_of_calls,
  sliding_window_size)`` calls are in the window (``CircuitBreakerMetrics``: "minimumNumberOfCalls
  = Math.min(config.getMinimumNumberOfCalls(), slidingWindowSize)"); failure rate
  ``failures * 100 / calls >= failure_rate_threshold`` opens it (``checkIfThresholdsExceeded``).
* OPEN rejects until the wait has passed; ``OpenState.tryAcquirePermission`` tests
  ``clock.instant().isAfter(retryAfterWaitDuration)``, so a call *exactly* at the end of
  the wait is still rejected (unlike the seed's breaker, which lets it through), and the
  first later call moves it to HALF_OPEN and takes a permit.
* HALF_OPEN (``HalfOpenState``) hands out ``permitted_calls_in_half_open`` permits and
  records into a fresh count window of that size, with minimum ``min(minimum_number_of_calls,
  permitted)`` (``CircuitBreakerMetrics.forHalfOpen``). At that minimum it decides: rate
  at or above the threshold -> OPEN, else CLOSED with a fresh window. Calls beyond the
  permits are rejected; called sequentially none are, because the decision comes first.

Not modelled: slow-call rate, time-based windows, ignored exceptions, automatic
OPEN -> HALF_OPEN without a call, ``maxWaitDurationInHalfOpenState``.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from reliability.analysis.breakers.replay import CLOSED, HALF_OPEN, OPEN, _spans, frame, validate_calls
from reliability.errors import ConfigurationError
from reliability.source.breaker import CircuitOpenError, State

T = TypeVar("T")


def _check(sliding_window_size: int, minimum_number_of_calls: int, failure_rate_threshold: float,
           permitted_calls_in_half_open: int, wait_duration_in_open: float) -> None:
    for name, v in (("sliding_window_size", sliding_window_size), ("minimum_number_of_calls", minimum_number_of_calls),
                    ("permitted_calls_in_half_open", permitted_calls_in_half_open)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < 1:
            raise ConfigurationError(f"{name} must be an integer >= 1, got {v!r}")
    if not 0 < failure_rate_threshold <= 100:
        raise ConfigurationError(f"failure_rate_threshold is a percentage in (0, 100] as in resilience4j, "
                                 f"got {failure_rate_threshold!r}")
    if not wait_duration_in_open >= 0:
        raise ConfigurationError(f"wait_duration_in_open must be seconds >= 0, got {wait_duration_in_open!r}")


class RateBasedBreaker:
    """resilience4j's count-window failure-rate breaker (see the module docstring for sources).

    Parameters
    ----------
    sliding_window_size, minimum_number_of_calls, failure_rate_threshold, permitted_calls_in_half_open
        resilience4j's settings and defaults (threshold in percent).
    wait_duration_in_open
        Seconds OPEN before the next call is let through (``waitDurationInOpenState``).
    clock, name
        As for :class:`~reliability.analysis.breakers.CircuitBreaker`.
    """

    def __init__(self, *, sliding_window_size: int = 100, minimum_number_of_calls: int = 100,
                 failure_rate_threshold: float = 50.0, permitted_calls_in_half_open: int = 10,
                 wait_duration_in_open: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 name: str = "") -> None:
        _check(sliding_window_size, minimum_number_of_calls, failure_rate_threshold,
               permitted_calls_in_half_open, wait_duration_in_open)
        self.sliding_window_size = int(sliding_window_size)
        self.minimum_number_of_calls = int(minimum_number_of_calls)
        self.failure_rate_threshold = float(failure_rate_threshold)
        self.permitted_calls_in_half_open = int(permitted_calls_in_half_open)
        self.wait_duration_in_open = float(wait_duration_in_open)
        self.clock = clock
        self.name = name
        self._state = State.CLOSED
        self._window: deque[bool] = deque()
        self._failures = 0
        self._permits = 0
        self._retry_after: float | None = None

    @property
    def state(self) -> State:
        return self._state

    @property
    def retry_after(self) -> float | None:
        """Clock time after which (strictly) the next call is let through; None until the first trip."""
        return self._retry_after

    @property
    def failure_rate(self) -> float:
        """Failure rate in percent of the current window, or -1 below the minimum (as resilience4j)."""
        n = len(self._window)
        return 100.0 * self._failures / n if n and n >= self._minimum() else -1.0

    def _minimum(self) -> int:
        size = self.sliding_window_size if self._state is State.CLOSED else self.permitted_calls_in_half_open
        return min(self.minimum_number_of_calls, size)

    def _reset_window(self) -> None:
        self._window.clear()
        self._failures = 0

    def try_acquire(self, now: float) -> bool:
        """Ask permission for a call at ``now`` (may move OPEN -> HALF_OPEN)."""
        if self._state is State.OPEN:
            assert self._retry_after is not None
            if not now > self._retry_after:
                return False
            self._state = State.HALF_OPEN
            self._reset_window()
            self._permits = self.permitted_calls_in_half_open
        if self._state is State.HALF_OPEN:
            if self._permits == 0:
                return False
            self._permits -= 1
        return True

    def on_result(self, ok: bool, now: float) -> None:
        """Record a permitted call's outcome and apply the threshold check."""
        if self._state is State.OPEN:
            return  # a late result of a call admitted before the trip: no transition
        self._window.append(ok)
        self._failures += not ok
        if self._state is State.CLOSED and len(self._window) > self.sliding_window_size:
            self._failures -= not self._window.popleft()
        n = len(self._window)
        if n < self._minimum():
            return
        if 100.0 * self._failures / n >= self.failure_rate_threshold:
            self._state = State.OPEN
            self._retry_after = now + self.wait_duration_in_open
            self._reset_window()
        elif self._state is State.HALF_OPEN:
            self._state = State.CLOSED
            self._reset_window()

    def record(self, ok: bool, now: float) -> bool:
        """One call at ``now`` with outcome ``ok``; False if it was rejected (then ok is ignored)."""
        if not self.try_acquire(now):
            return False
        self.on_result(ok, now)
        return True

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn`` through the breaker; raise CircuitOpenError when not permitted."""
        now = self.clock()
        if not self.try_acquire(now):
            raise CircuitOpenError(self.name, next_attempt=self._retry_after or now, now=now)
        try:
            result = fn(*args, **kwargs)
        except Exception:
            self.on_result(False, self.clock())
            raise
        self.on_result(True, self.clock())
        return result


def full_window_trips(cum_fail: np.ndarray, *, sliding_window_size: int,
                      failure_rate_threshold: float) -> np.ndarray:
    """Calls at which a full window's failure rate reaches the threshold.

    They do not depend on when the CLOSED stretch began, so they are found once.
    """
    size = sliding_window_size
    if len(cum_fail) - 1 < size:
        return np.zeros(0, dtype=np.int64)
    full = cum_fail[size:] - cum_fail[:-size]
    return np.flatnonzero(100.0 * full / size >= failure_rate_threshold) + (size - 1)


def walk_rate(t: np.ndarray, cum_fail: np.ndarray, *, sliding_window_size: int, minimum_number_of_calls: int,
              failure_rate_threshold: float, permitted_calls_in_half_open: int, wait: float | int,
              full_hits: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Openings, their first admitted calls, and HALF_OPEN spans of a sequential replay.

    ``cum_fail`` has length ``len(t) + 1``: failures among the first i calls. Returns
    ``(opens, probes, half_start, half_stop)``; calls strictly between an opening and its
    probe are rejected; calls in ``[half_start, half_stop)`` end HALF_OPEN. ``full_hits``
    (from :func:`full_window_trips`) may be passed in when several waits share a window.
    """
    n, size, thr = len(t), sliding_window_size, failure_rate_threshold
    m_closed = min(minimum_number_of_calls, size)
    m_half = min(minimum_number_of_calls, permitted_calls_in_half_open)
    if full_hits is None:
        full_hits = full_window_trips(cum_fail, sliding_window_size=size, failure_rate_threshold=thr)
    opens: list[int] = []
    probes: list[int] = []
    half: list[tuple[int, int]] = []
    start = 0
    while start < n:
        trip = -1
        lo, hi = start + m_closed - 1, min(start + size - 1, n)  # calls with a partial window
        if lo < hi and cum_fail[hi] > cum_fail[start]:
            j = np.arange(lo, hi)
            hit = np.flatnonzero(100.0 * (cum_fail[j + 1] - cum_fail[start]) / (j - start + 1) >= thr)
            if len(hit):
                trip = lo + int(hit[0])
        if trip < 0:
            k = int(np.searchsorted(full_hits, start + size - 1))
            if k == len(full_hits):
                break
            trip = int(full_hits[k])
        while True:
            opens.append(trip)
            p = max(int(np.searchsorted(t, t[trip] + wait, side="right")), trip + 1)
            probes.append(p)
            if p >= n:
                start = n
                break
            decide = p + m_half - 1
            if decide >= n:
                half.append((p, n))
                start = n
                break
            half.append((p, decide))
            if 100.0 * int(cum_fail[decide + 1] - cum_fail[p]) / m_half >= thr:
                trip = decide
                continue
            start = decide + 1
            break
    h = np.asarray(half, dtype=np.int64).reshape(-1, 2)
    return (np.asarray(opens, dtype=np.int64), np.asarray(probes, dtype=np.int64), h[:, 0], h[:, 1])


def replay_rate_based(calls: pd.DataFrame, *, sliding_window_size: int = 100, minimum_number_of_calls: int = 100,
                      failure_rate_threshold: float = 50.0, permitted_calls_in_half_open: int = 10,
                      wait_duration_in_open: float = 60.0) -> pd.DataFrame:
    """Replay calls through :class:`RateBasedBreaker`, exactly, with work per trip only.

    Same input and output as :func:`~reliability.analysis.breakers.replay`; here ``state`` can be
    "HALF_OPEN" for the permitted calls before the half-open decision.
    """
    _check(sliding_window_size, minimum_number_of_calls, failure_rate_threshold,
           permitted_calls_in_half_open, wait_duration_in_open)
    t, ok, is_dt = validate_calls(calls)
    n = len(t)
    cum_fail = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(~ok, out=cum_fail[1:])
    wait = round(wait_duration_in_open * 1e9) if is_dt else float(wait_duration_in_open)
    opens, probes, hs, he = walk_rate(
        t, cum_fail, sliding_window_size=int(sliding_window_size), minimum_number_of_calls=int(minimum_number_of_calls),
        failure_rate_threshold=float(failure_rate_threshold),
        permitted_calls_in_half_open=int(permitted_calls_in_half_open), wait=wait)
    codes = np.full(n, CLOSED, dtype=np.int8)
    allowed = np.ones(n, dtype=bool)
    if len(opens):
        codes[_spans(opens, probes, n)] = OPEN
        codes[_spans(hs, he, n)] = HALF_OPEN
        allowed[_spans(opens + 1, np.maximum(probes, opens + 1), n)] = False
    return frame(calls, ok, allowed, codes)
