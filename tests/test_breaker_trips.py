"""Trip statistics on hand-built metric frames, including an open the 30 s gauge never sees."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from reliability.analysis.breakers import BreakerStats, from_resilience4j, trip_stats
from reliability.analysis.breakers.observed import breaker_stats
from reliability.errors import ConfigurationError, NoDataError, StatisticalWarning
from reliability.report.breaker_plots import stats_timeline

T0 = pd.Timestamp("2025-10-24T10:00:00Z")


def gauge(name: str, values: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"breaker": name, "time": [T0 + pd.Timedelta(seconds=30 * i) for i in range(len(values))],
                         "value": np.asarray(values, dtype=float)})


@pytest.fixture
def frames() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    # db: two trips seen (open 3 samples incl. one half-open, then 1 sample) + one open-and-close
    # between two scrapes that only the counter knows; auth: never trips; storage: open at the end;
    # realtime: three trips within 4 minutes (flapping).
    state = pd.concat([
        gauge("db", [0, 0, 1, 1, 2, 0, 0, 0, 1, 0, 0, 0]),
        gauge("auth", [0] * 12),
        gauge("storage", [0] * 10 + [1, 1]),
        gauge("realtime", [0, 1, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]),
    ], ignore_index=True)
    transitions = pd.DataFrame({
        "breaker": ["db", "db", "db", "db", "storage", "realtime", "realtime", "realtime"],
        "from": ["closed", "open", "half_open", "half_open", "closed", "closed", "open", "half_open"],
        "to": ["open", "half_open", "closed", "open", "open", "open", "half_open", "closed"],
        "increase": [3.02, 3.0, 2.0, 1.0, 1.0, 2.97, 3.0, 3.0],  # increase() extrapolates a little
    })
    calls = pd.DataFrame({"breaker": ["db", "db", "db", "auth"],
                          "outcome": ["success", "failure", "rejected", "success"],
                          "increase": [1000.0, 40.0, 25.0, 500.0]})
    return transitions, state, calls


def stats(frames, **kw) -> BreakerStats:
    transitions, state, calls = frames
    with pytest.warns(StatisticalWarning, match="too few trips") as caught:
        out = trip_stats(transitions, state, calls, start=T0, end=T0 + pd.Timedelta(minutes=6), **kw)
    assert "auth (0)" in str(caught[0].message) and "storage (1)" in str(caught[0].message)
    return out


def test_counter_trips_gauge_runs_and_the_aliasing_gap(frames) -> None:
    s = stats(frames).summary.set_index("breaker")
    db = s.loc["db"]
    assert (db["trips"], db["retrips"], db["closed_to_open"]) == (4.0, 1.0, 3.0)
    assert db["trips_seen_by_gauge"] == 2
    assert db["aliasing_gap"] == 1.0  # the sub-scrape open
    assert (db["rejected"], db["successes"], db["failures"]) == (25.0, 1000.0, 40.0)
    assert db["time_open"] == 90.0 and db["time_half_open"] == 30.0
    assert db["open_fraction"] == pytest.approx(4 / 12)
    assert (db["open_mean"], db["open_median"], db["open_max"]) == (60.0, 60.0, 90.0)  # runs of 90 s and 30 s
    assert db["between_trips_mean"] == 180.0  # samples 2 and 8
    assert db["state_at_end"] == "closed" and not db["open_at_end"] and not db["flapping"]


def test_too_few_trips_give_nan_timing_never_invented(frames) -> None:
    s = stats(frames).summary.set_index("breaker")
    for name in ("auth", "storage"):
        assert all(math.isnan(s.loc[name, c]) for c in ("open_mean", "open_median", "open_max", "between_trips_mean"))
    assert s.loc["auth", "trips"] == 0.0 and s.loc["auth", "rejected"] == 0.0
    storage = s.loc["storage"]
    assert storage["open_at_end"] and storage["state_at_end"] == "open"
    assert storage["trips_seen_by_gauge"] == 1 and storage["time_open"] == 60.0


def test_flapping_needs_enough_trips_in_the_window(frames) -> None:
    s = stats(frames)
    assert s.flapping == ["realtime"]
    rt = s.summary.set_index("breaker").loc["realtime"]
    assert rt["max_trips_in_flap_window"] == 3 and rt["between_trips_mean"] == 60.0
    assert rt["aliasing_gap"] == 0.0  # 2.97 rounds to 3, all seen
    assert stats(frames, flap_window=100.0).flapping == []


def test_window_and_missing_counter(frames) -> None:
    _, state, _ = frames
    with pytest.warns(StatisticalWarning):
        s = trip_stats(None, state, None, start=T0 + pd.Timedelta(seconds=60), end=T0 + pd.Timedelta(seconds=150))
    db = s.summary.set_index("breaker").loc["db"]
    assert db["samples"] == 4  # 60, 90, 120, 150 s: [1, 1, 2, 0]
    assert db["trips_seen_by_gauge"] == 0  # already open at the window start: not a trip seen in it
    assert math.isnan(db["trips"]) and math.isnan(db["aliasing_gap"]) and math.isnan(db["rejected"])


def test_bad_frames_are_named(frames) -> None:
    transitions, state, calls = frames
    with pytest.raises(ConfigurationError, match="transitions"):
        trip_stats(transitions.drop(columns="to"), state, calls, start=T0, end=T0)
    doubled = pd.concat([state, state])
    with pytest.raises(ConfigurationError, match="one series per breaker"):
        trip_stats(transitions, doubled, calls, start=T0, end=T0 + pd.Timedelta(hours=1))


def test_timeline_plot_draws_open_samples(frames) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = stats(frames)
    ax = stats_timeline(s, frames[1])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["auth", "db", "realtime", "storage"]
    # one bar collection per lane and colour: db open, db half-open, realtime open, storage open
    assert len(ax.collections) == 4
    from reliability.report.figures import MIN_PRINT_PT, printed_text_pt

    assert printed_text_pt(ax.figure, dpi=90) >= MIN_PRINT_PT and ax.get_xlabel() == "time (UTC)"
    plt.close(ax.figure)


def test_resilience4j_metrics_map_onto_ours() -> None:
    times = [T0, T0 + pd.Timedelta(seconds=30)]
    rows = []
    for i, current in enumerate(["closed", "half_open"]):
        for label in ("closed", "open", "half_open", "forced_open", "disabled", "metrics_only"):
            rows.append({"name": "backendA", "state": label, "time": times[i], "value": float(label == current)})
    state, calls = from_resilience4j(
        pd.DataFrame(rows),
        pd.DataFrame({"name": ["backendA"], "kind": ["not_permitted"], "value": [7.0]}),
        pd.DataFrame({"name": ["backendA"] * 3, "kind": ["successful", "failed", "ignored"],
                      "value": [90.0, 9.0, 1.0]}),
    )
    assert state.to_dict("list") == {"breaker": ["backendA", "backendA"], "time": times, "value": [0.0, 2.0]}
    by_outcome = dict(zip(calls["outcome"], calls["increase"], strict=True))
    assert by_outcome == {"failure": 9.0, "rejected": 7.0, "success": 90.0}
    with pytest.raises(ConfigurationError, match="unknown state"):
        from_resilience4j(pd.DataFrame({"name": ["a"], "state": ["weird"], "time": [T0], "value": [1.0]}))


@pytest.mark.prometheus
def test_the_queries_are_scoped_by_the_selector_and_summed_in_promql(client, truth) -> None:
    from conftest import ts

    fresh = client.branch()
    with pytest.warns(StatisticalWarning):  # breakers that tripped less than twice: their timing is NaN
        breaker_stats(fresh, ts(truth["generator"]["start"]), ts(truth["generator"]["end"]),
                      selector='job="love-backend"')
    asked = [r.query for r in fresh.log]
    assert ('sum by (breaker, instance, from, to) (increase(circuit_breaker_transitions_total{job="love-backend"}'
            '[14d]))') in asked
    assert 'max by (breaker, instance) (circuit_breaker_state{job="love-backend"})' in asked
    assert any("[30m]" in q and 'to="open"' in q for q in asked)


@pytest.mark.prometheus
def test_a_hostile_job_value_matches_nothing(client, truth) -> None:
    from conftest import ts

    from reliability.source.promql import matcher

    hostile = [matcher("job", 'x"} or vector(1) #')]  # escaped: without it, `or vector(1)` would match
    with pytest.raises(NoDataError, match="no breaker metrics"):
        breaker_stats(client, ts(truth["generator"]["start"]), ts(truth["generator"]["end"]), selector=hostile)


@pytest.mark.prometheus
def test_trip_stats_from_the_bundled_history_match_ground_truth(client, truth) -> None:
    import warnings

    from conftest import ts

    start, end = ts(truth["generator"]["start"]), ts(truth["generator"]["end"])
    job = truth["generator"]["job"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", StatisticalWarning)  # auth trips once, storage never
        stats = breaker_stats(client, start, end, selector=f'job="{job}"')
    s, state = stats.summary, stats.state
    s = s.set_index("breaker")
    for name, b in truth["breakers"].items():
        closed_to_open = sum(x["from"] == "closed" and x["to"] == "open" for x in b["transitions"])
        # The oracle for what a 30 s gauge can see: the true state at each sample time.
        changes = pd.DataFrame({"time": pd.to_datetime([x["time"] for x in b["transitions"]], utc=True).as_unit("ns"),
                                "value": [{"closed": 0, "open": 1, "half_open": 2}[x["to"]] for x in b["transitions"]]})
        times = state.loc[state["breaker"] == name, "time"].sort_values().dt.as_unit("ns").reset_index(drop=True)
        sampled = pd.merge_asof(pd.DataFrame({"time": times}), changes, on="time")["value"]
        sampled = sampled.fillna(0).to_numpy(dtype=float)
        seen = int(((sampled[1:] != 0) & (sampled[:-1] == 0)).sum())
        assert s.loc[name, "trips"] == b["trips"], name
        assert s.loc[name, "closed_to_open"] == closed_to_open, name
        assert s.loc[name, "trips_seen_by_gauge"] == seen, name
        assert s.loc[name, "aliasing_gap"] == closed_to_open - seen, name
        assert s.loc[name, "open_at_end"] == b["open_at_end"], name
    # realtime's three opens lasted ~10 s each (sub-scrape); db re-opened 17 s after closing once,
    # between two scrapes, so the gauge shows those two trips as one run.
    assert s.loc["realtime", "aliasing_gap"] == truth["breakers"]["realtime"]["sub_scrape_opens"] == 3
    assert s.loc["db", "aliasing_gap"] == 1
