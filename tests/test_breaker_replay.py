"""Fast replays agree with the plain classes call by call; resilience4j's rate policy on hand sequences."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reliability.analysis.breakers import CircuitBreaker, RateBasedBreaker, State, replay, replay_rate_based
from reliability.analysis.breakers.replay import summarize
from reliability.errors import ConfigurationError


def calls(times: list[float], oks: list[bool]) -> pd.DataFrame:
    return pd.DataFrame({"time": np.asarray(times, dtype=float), "ok": np.asarray(oks, dtype=bool)})


def by_class(breaker, frame: pd.DataFrame) -> tuple[list[bool], list[str]]:
    allowed, states = [], []
    for t, ok in zip(frame["time"].tolist(), frame["ok"].tolist(), strict=True):
        allowed.append(breaker.record(ok, t))
        states.append(breaker.state.value)
    return allowed, states


@st.composite
def histories(draw: st.DrawFn) -> pd.DataFrame:
    """Random call histories with ties, gaps, and long failure runs (bursts)."""
    n = draw(st.integers(0, 120))
    gaps = draw(st.lists(st.sampled_from([0.0, 0.0, 0.25, 1.0, 2.5, 10.0, 60.0]), min_size=n, max_size=n))
    blocks = draw(st.lists(st.tuples(st.booleans(), st.integers(1, 15)), max_size=n))
    oks = [ok for ok, length in blocks for _ in range(length)][:n]
    oks += draw(st.lists(st.booleans(), min_size=n - len(oks), max_size=n - len(oks)))
    return calls(list(np.cumsum(gaps) + draw(st.floats(0, 1e6))), oks)


@settings(max_examples=300, deadline=None)
@given(frame=histories(), threshold=st.integers(1, 8), timeout=st.sampled_from([0.0, 0.25, 1.0, 2.5, 10.0, 60.0]))
def test_replay_equals_the_plain_class_step_by_step(frame: pd.DataFrame, threshold: int, timeout: float) -> None:
    out = replay(frame, failure_threshold=threshold, timeout=timeout)
    allowed, states = by_class(CircuitBreaker(failure_threshold=threshold, timeout=timeout), frame)
    assert out["allowed"].tolist() == allowed
    assert out["state"].astype(str).tolist() == states


@settings(max_examples=300, deadline=None)
@given(frame=histories(), window=st.integers(1, 12), minimum=st.integers(1, 12),
       rate=st.sampled_from([10.0, 25.0, 100 / 3, 50.0, 70.0, 100.0]), permitted=st.integers(1, 5),
       wait=st.sampled_from([0.0, 1.0, 2.5, 10.0]))
def test_rate_replay_equals_the_plain_class_step_by_step(frame: pd.DataFrame, window: int, minimum: int,
                                                         rate: float, permitted: int, wait: float) -> None:
    cfg = dict(sliding_window_size=window, minimum_number_of_calls=minimum, failure_rate_threshold=rate,
               permitted_calls_in_half_open=permitted, wait_duration_in_open=wait)
    out = replay_rate_based(frame, **cfg)
    allowed, states = by_class(RateBasedBreaker(**cfg), frame)
    assert out["allowed"].tolist() == allowed
    assert out["state"].astype(str).tolist() == states


def test_replay_hand_sequence_with_probe_exactly_at_next_attempt() -> None:
    frame = calls([0, 1, 2, 3, 12, 13, 14, 15, 25, 30], [False, False, False, True, False, True, False, False,
                                                       True, False])
    out = replay(frame, failure_threshold=3, timeout=10.0)
    # trip at t=2 (until 12); t=3 rejected; t=12 probes exactly at next_attempt and fails (until 22);
    # 13..15 rejected; t=25 probes and closes; t=30 is a first failure again.
    assert out["allowed"].tolist() == [True, True, True, False, True, False, False, False, True, True]
    assert out["state"].astype(str).tolist() == ["CLOSED", "CLOSED", "OPEN", "OPEN", "OPEN", "OPEN", "OPEN",
                                                 "OPEN", "CLOSED", "CLOSED"]
    assert summarize(out) == {"calls": 10, "trips": 1, "retrips": 1, "rejected": 4, "failed_calls_allowed": 5}


def test_replay_keeps_index_and_tz_aware_times() -> None:
    t0 = pd.Timestamp("2025-10-24T10:00:00Z")
    frame = pd.DataFrame({"time": [t0 + pd.Timedelta(seconds=s) for s in (0, 1, 60, 61)],
                          "ok": [False, True, False, True]}, index=[10, 11, 12, 13])
    out = replay(frame, failure_threshold=1, timeout=60.0)
    assert list(out.index) == [10, 11, 12, 13]
    assert out["time"].tolist() == frame["time"].tolist()
    assert out["allowed"].tolist() == [True, False, True, False]  # 60 s exactly later probes, fails again
    assert isinstance(out["state"].dtype, pd.CategoricalDtype)


@pytest.mark.parametrize("frame, column", [
    (pd.DataFrame({"t": [0.0], "ok": [True]}), "time"),
    (pd.DataFrame({"time": [0.0]}), "ok"),
    (pd.DataFrame({"time": [1.0, 0.0], "ok": [True, True]}), "time"),
    (pd.DataFrame({"time": [0.0, 1.0], "ok": [1, 0]}), "ok"),
    (pd.DataFrame({"time": [0.0, np.nan], "ok": [True, True]}), "time"),
    (pd.DataFrame({"time": pd.to_datetime(["2025-10-24", "2025-10-25"]), "ok": [True, True]}), "time"),
])
def test_replay_rejects_bad_input_naming_the_column(frame: pd.DataFrame, column: str) -> None:
    with pytest.raises(ConfigurationError, match=f"'{column}'"):
        replay(frame)
    with pytest.raises(ConfigurationError, match=f"'{column}'"):
        replay_rate_based(frame)


def test_rate_policy_waits_for_the_minimum_then_trips_on_the_rate() -> None:
    cb = RateBasedBreaker(sliding_window_size=4, minimum_number_of_calls=4, failure_rate_threshold=50.0,
                          permitted_calls_in_half_open=2, wait_duration_in_open=10.0)
    for t, ok in enumerate([False, False, False]):
        assert cb.record(ok, float(t))
    assert cb.state is State.CLOSED and cb.failure_rate == -1.0  # 3 calls < minimum 4, even at 100 %
    assert cb.record(True, 3.0)  # 3 of 4 failed: 75 % >= 50 %
    assert cb.state is State.OPEN and cb.retry_after == 13.0


def test_rate_policy_sliding_window_forgets_old_failures() -> None:
    cb = RateBasedBreaker(sliding_window_size=4, minimum_number_of_calls=2, failure_rate_threshold=60.0)
    for t, ok in enumerate([False, True, True, True, False, True, False]):
        cb.record(ok, float(t))
        assert cb.state is State.CLOSED  # never 60 % of the last <= 4 calls
    cb.record(False, 7.0)  # window [True, False, True, False] + False -> [False, True, False, False]: 75 %
    assert cb.state is State.OPEN


def test_rate_policy_open_is_strict_and_half_open_decides_on_its_permits() -> None:
    # minimum 5 is bounded by the window (2) when CLOSED and by the permits (3) when HALF_OPEN.
    cb = RateBasedBreaker(sliding_window_size=2, minimum_number_of_calls=5, failure_rate_threshold=50.0,
                          permitted_calls_in_half_open=3, wait_duration_in_open=10.0)
    cb.record(False, 0.0)
    cb.record(False, 1.0)
    assert cb.state is State.OPEN and cb.retry_after == 11.0
    assert not cb.record(True, 11.0)  # resilience4j: isAfter(retryAfter), so exactly at the end is rejected
    assert cb.record(False, 11.5) and cb.state is State.HALF_OPEN
    assert cb.record(True, 12.0) and cb.state is State.HALF_OPEN
    assert cb.record(True, 13.0)  # 1 of 3 failed: 33 % < 50 % -> CLOSED with a fresh window
    assert cb.state is State.CLOSED and cb.failure_rate == -1.0
    cb.record(False, 14.0)
    cb.record(False, 15.0)
    assert cb.state is State.OPEN
    for t, ok in ((26.0, False), (27.0, True), (28.0, False)):  # 2 of 3 failed -> OPEN again
        assert cb.record(ok, t)
    assert cb.state is State.OPEN and cb.retry_after == 38.0


def test_rate_policy_half_open_rejects_beyond_its_permits() -> None:
    cb = RateBasedBreaker(sliding_window_size=1, minimum_number_of_calls=1, failure_rate_threshold=100.0,
                          permitted_calls_in_half_open=2, wait_duration_in_open=1.0)
    cb.record(False, 0.0)
    assert cb.try_acquire(2.0) and cb.try_acquire(2.0)  # two concurrent probes
    assert not cb.try_acquire(2.0)
    cb.on_result(True, 2.1)
    cb.on_result(True, 2.2)
    assert cb.state is State.CLOSED


def test_rate_policy_half_open_decides_at_the_minimum_when_below_the_permits() -> None:
    cb = RateBasedBreaker(sliding_window_size=2, minimum_number_of_calls=2, failure_rate_threshold=50.0,
                          permitted_calls_in_half_open=10, wait_duration_in_open=10.0)
    cb.record(False, 0.0)
    cb.record(False, 1.0)
    cb.record(True, 12.0)
    assert cb.state is State.HALF_OPEN
    cb.record(False, 13.0)  # 1 of 2 = 50 % >= 50 %: decided after 2 calls, not 10
    assert cb.state is State.OPEN


def test_rate_replay_marks_half_open_calls() -> None:
    frame = calls([0, 1, 2, 12, 13, 14, 15], [False, False, True, True, True, True, True])
    out = replay_rate_based(frame, sliding_window_size=2, minimum_number_of_calls=5, failure_rate_threshold=50.0,
                            permitted_calls_in_half_open=3, wait_duration_in_open=10.0)
    assert out["allowed"].tolist() == [True, True, False, True, True, True, True]
    assert out["state"].astype(str).tolist() == ["CLOSED", "OPEN", "OPEN", "HALF_OPEN", "HALF_OPEN", "CLOSED",
                                                 "CLOSED"]


def test_replays_of_a_large_history_agree_with_the_classes() -> None:
    rng = np.random.default_rng(7)
    n = 50_000
    t = np.cumsum(rng.exponential(0.5, n))
    ok = rng.random(n) > np.where((t % 3000) < 200, 0.8, 0.002)
    frame = calls(list(t), list(ok))
    out = replay(frame, failure_threshold=5, timeout=30.0)
    allowed, _ = by_class(CircuitBreaker(failure_threshold=5, timeout=30.0), frame)
    assert out["allowed"].tolist() == allowed
    assert summarize(out)["trips"] > 5
    rate = replay_rate_based(frame, sliding_window_size=20, minimum_number_of_calls=10,
                             wait_duration_in_open=30.0)
    allowed, _ = by_class(RateBasedBreaker(sliding_window_size=20, minimum_number_of_calls=10,
                                           wait_duration_in_open=30.0), frame)
    assert rate["allowed"].tolist() == allowed
    assert (~rate["allowed"]).sum() > 100
