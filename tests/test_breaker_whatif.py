"""What-if tuning: reproducible, exact against the dense replays, and fast on 14 days of intervals."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reliability.analysis.breakers import intervals_from_calls, replay, replay_rate_based, whatif
from reliability.analysis.breakers.replay import summarize, walk
from reliability.analysis.breakers.whatif import draw_failures, expand_times
from reliability.errors import ConfigurationError
from reliability.report.breaker_plots import heatmap


def fourteen_days(seed: int = 5) -> pd.DataFrame:
    """40,320 intervals of 30 s, ~20 calls each, rare failures and 15 short outages."""
    rng = np.random.default_rng(seed)
    n = 14 * 86400 // 30
    calls = rng.poisson(20, n)
    p = np.full(n, 0.002)
    for s in rng.integers(0, n - 20, 15):
        p[s:s + rng.integers(2, 20)] = 0.8
    return pd.DataFrame({"time": pd.Timestamp("2025-10-15T00:00:00Z") + pd.to_timedelta(np.arange(n) * 30, unit="s"),
                         "calls": calls, "failures": rng.binomial(calls, p)})


@pytest.fixture(scope="module")
def history() -> pd.DataFrame:
    return fourteen_days()


def small(seed: int = 3, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    calls = rng.poisson(6, n)
    p = np.where(rng.random(n) < 0.08, 0.7, 0.01)
    return pd.DataFrame({"time": np.arange(n) * 30.0, "calls": calls, "failures": rng.binomial(calls, p)})


def test_whatif_is_reproducible_with_a_seed() -> None:
    iv = small()
    a = whatif(iv, thresholds=(2, 5), timeouts=(10, 60), repetitions=5, seed=11)
    b = whatif(iv, thresholds=(2, 5), timeouts=(10, 60), repetitions=5, seed=11)
    c = whatif(iv, thresholds=(2, 5), timeouts=(10, 60), repetitions=5, seed=12)
    pd.testing.assert_frame_equal(a, b)
    assert not a["trips_mean"].equals(c["trips_mean"]) or not a["rejected_mean"].equals(c["rejected_mean"])
    assert list(a.columns[:3]) == ["policy", "failure_threshold", "timeout"]
    assert (a["failures"] == iv["failures"].sum()).all() and (a["calls"] == iv["calls"].sum()).all()
    assert (a["failed_calls_allowed_p95"] <= a["failures"]).all()


@pytest.mark.parametrize("policy", ["consecutive", "rate"])
def test_whatif_counts_equal_a_dense_replay_of_the_same_sequence(policy: str) -> None:
    iv = small(seed=4)
    calls, failures = iv["calls"].to_numpy(), iv["failures"].to_numpy()
    t = expand_times(iv["time"].to_numpy(dtype=float), calls, interval=30.0)
    fail_idx = draw_failures(calls, failures, np.random.default_rng(21))  # repetition 0 of seed 21
    ok = np.ones(len(t), dtype=bool)
    ok[fail_idx] = False
    assert (np.diff(t) > 0).all() and ok.sum() == calls.sum() - failures.sum()
    frame = pd.DataFrame({"time": t, "ok": ok})
    options = {"sliding_window_size": 20, "minimum_number_of_calls": 10, "permitted_calls_in_half_open": 4}
    got = whatif(iv, thresholds=(3, 30) if policy == "consecutive" else (20.0, 50.0), timeouts=(15, 90),
                 repetitions=1, seed=21, policy=policy, rate_options=options if policy == "rate" else None)
    for row in got.itertuples():
        if policy == "consecutive":
            out = replay(frame, failure_threshold=int(row.failure_threshold), timeout=float(row.timeout))
        else:
            out = replay_rate_based(frame, failure_rate_threshold=row.failure_threshold,
                                    wait_duration_in_open=float(row.timeout), **options)
        s = summarize(out)
        assert row.trips_mean == s["trips"] + s["retrips"]
        assert row.rejected_mean == s["rejected"]
        assert row.failed_calls_allowed_mean == s["failed_calls_allowed"]
    assert got["trips_mean"].max() > 0


def test_failures_are_shuffled_only_within_their_interval() -> None:
    calls, failures = np.array([5, 0, 3, 4]), np.array([2, 0, 3, 0])
    offsets = np.array([0, 5, 5, 8])
    for seed in range(20):
        idx = draw_failures(calls, failures, np.random.default_rng(seed))
        owner = np.searchsorted(offsets, idx, side="right") - 1
        assert np.bincount(owner, minlength=4).tolist() == failures.tolist()
        assert len(set(idx)) == len(idx)


@settings(max_examples=200, deadline=None)
@given(oks=st.lists(st.booleans(), max_size=60), timeout=st.sampled_from([0.0, 1.0, 2.0, 5.0]),
       threshold=st.integers(1, 6))
def test_a_higher_threshold_never_trips_earlier(oks: list[bool], timeout: float, threshold: int) -> None:
    t = np.arange(len(oks), dtype=float)
    fail_idx = np.flatnonzero(~np.asarray(oks, dtype=bool))
    low, _ = walk(t, fail_idx, failure_threshold=threshold, timeout=timeout)
    high, _ = walk(t, fail_idx, failure_threshold=threshold + 1, timeout=timeout)
    assert (high[0] if len(high) else len(oks)) >= (low[0] if len(low) else len(oks))
    assert len(high) <= len(fail_idx) and (len(low) > 0 or len(high) == 0)


def test_a_higher_threshold_can_open_more_often() -> None:
    # Not monotone: F F F S F, timeout 2 s. Threshold 2 trips at t=1, its probe at t=3 succeeds.
    # Threshold 3 trips at t=2, the success at t=3 is rejected and its probe at t=4 fails: 2 openings.
    frame = pd.DataFrame({"time": [0.0, 1.0, 2.0, 3.0, 4.0], "ok": [False, False, False, True, False]})
    two = summarize(replay(frame, failure_threshold=2, timeout=2.0))
    three = summarize(replay(frame, failure_threshold=3, timeout=2.0))
    assert (two["trips"], two["retrips"]) == (1, 0)
    assert (three["trips"], three["retrips"]) == (1, 1)


def test_whatif_on_fourteen_days_takes_seconds(history: pd.DataFrame) -> None:
    assert len(history) == 40_320 and 19 < history["calls"].mean() < 21
    for policy in ("consecutive", "rate"):
        t0 = time.perf_counter()
        out = whatif(history, repetitions=20, seed=0, policy=policy)
        elapsed = time.perf_counter() - t0
        assert len(out) == 25
        assert elapsed < 20.0, f"{policy}: {elapsed:.1f} s"
    consecutive = whatif(history, repetitions=20, seed=0).set_index(["failure_threshold", "timeout"])
    assert consecutive.loc[(3, 60), "trips_mean"] > consecutive.loc[(50, 60), "trips_mean"]
    assert (consecutive["trips_p5"] <= consecutive["trips_mean"]).all()
    assert (consecutive["trips_mean"] <= consecutive["trips_p95"]).all()


def test_no_failures_no_trips() -> None:
    iv = pd.DataFrame({"time": np.arange(100) * 30.0, "calls": 10, "failures": 0})
    out = whatif(iv, repetitions=3)
    assert (out[["trips_mean", "rejected_mean", "failed_calls_allowed_mean"]] == 0).all().all()


@pytest.mark.parametrize("frame, message", [
    (pd.DataFrame({"time": [0.0], "calls": [1]}), "failures"),
    (pd.DataFrame({"time": [0.0], "calls": [1], "failures": [2]}), "more failures"),
    (pd.DataFrame({"time": [0.0, 10.0], "calls": [1, 1], "failures": [0, 0]}), "steps of at least"),
    (pd.DataFrame({"time": [0.0], "calls": [-1], "failures": [0]}), "'calls'"),
])
def test_whatif_rejects_bad_intervals(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        whatif(frame, repetitions=1)


def test_intervals_from_calls_shifts_to_interval_start_and_counts_rejected() -> None:
    t = pd.to_datetime(["2025-10-15T00:00:30Z", "2025-10-15T00:01:00Z"])
    frame = pd.DataFrame({"breaker": "db", "outcome": ["success", "failure", "rejected", "success"],
                          "time": [t[0], t[0], t[1], t[1]], "value": [18.0, 2.0, 5.0, 15.0]})
    iv = intervals_from_calls(frame, breaker="db")  # rejected calls kept apart: the what-if imputes them
    assert iv["time"].tolist() == [pd.Timestamp("2025-10-15T00:00:00Z"), pd.Timestamp("2025-10-15T00:00:30Z")]
    assert iv["calls"].tolist() == [20.0, 15.0] and iv["failures"].tolist() == [2.0, 0.0]
    assert iv["rejected"].tolist() == [0.0, 5.0]
    failed = intervals_from_calls(frame, breaker="db", rejected="failure")
    assert failed["calls"].tolist() == [20.0, 20.0] and failed["failures"].tolist() == [2.0, 5.0]
    dropped = intervals_from_calls(frame, rejected="drop")
    assert dropped["calls"].tolist() == [20.0, 15.0] and dropped["failures"].tolist() == [2.0, 0.0]


def test_heatmap_marks_the_configuration_in_force() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    out = whatif(small(), thresholds=(3, 5), timeouts=(30, 60), repetitions=2)
    ax = heatmap(out, metric="rejected", current=(5, 60.0))
    boxes = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(boxes) == 1 and boxes[0].get_xy() == (0.5, 0.5)
    assert "rejected_mean" in ax.get_title()
    plt.close(ax.figure)


@pytest.mark.prometheus
def test_whatif_on_the_bundled_history_of_the_db_breaker(client, truth) -> None:
    import warnings

    from conftest import ts

    from reliability.analysis.breakers import breaker_stats, call_intervals
    from reliability.errors import StatisticalWarning

    start, end = ts(truth["generator"]["start"]), ts(truth["generator"]["end"])
    selector = f'job="{truth["generator"]["job"]}"'
    iv = call_intervals(client, start, end, breaker="db", selector=selector)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)
        db = breaker_stats(client, start, end, selector=selector).summary.set_index("breaker").loc["db"]
    # per-interval increases add up to the window's
    assert iv["calls"].sum() + iv["rejected"].sum() == pytest.approx(db["calls"], rel=0.01)
    t0 = time.perf_counter()
    out = whatif(iv, repetitions=20, seed=0)
    assert time.perf_counter() - t0 < 30.0
    in_force = out.set_index(["failure_threshold", "timeout"]).loc[(5, 60)]
    assert in_force["trips_mean"] > 0 and in_force["rejected_mean"] > 0
