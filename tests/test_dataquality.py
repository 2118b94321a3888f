"""Data-quality preflight and cache consistency against the bundled history's ground truth."""
from __future__ import annotations

import pandas as pd
import pytest
from conftest import ts

from reliability.analysis.cache import cache_consistency, coverage_table, gap_periods
from reliability.analysis.dataquality import preflight, scrape_gaps
from reliability.errors import NoDataError


@pytest.mark.prometheus
def test_scrape_gap_is_found_with_its_times(client, truth) -> None:
    gap = truth["data_quality"]["scrape_gaps"][0]
    w = truth["windows"]["scrape_gap_hour"]
    dq = preflight(client, ts(w["start"]), ts(w["end"]))
    found = dq.findings[dq.findings["kind"] == "scrape gap"]
    assert len(found) == 1
    row = found.iloc[0]
    assert row["instance"] == gap["instance"]
    assert abs(row["start"] - ts(gap["start"])) <= pd.Timedelta(seconds=30)
    assert abs(row["end"] - ts(gap["end"])) <= pd.Timedelta(seconds=30)


@pytest.mark.prometheus
def test_counter_reset_is_found(client, truth) -> None:
    reset = truth["data_quality"]["counter_resets"][0]
    w = truth["windows"]["restart_hour"]
    dq = preflight(client, ts(w["start"]), ts(w["end"]))
    resets = dq.findings[dq.findings["kind"] == "counter reset"]
    assert list(resets["instance"]) == [reset["instance"]]
    (row,) = resets.itertuples()  # located to the step, not just "somewhere in the window"
    assert abs(row.end - ts(reset["time"])) <= pd.Timedelta(seconds=60)
    assert row.end - row.start == pd.Timedelta(seconds=30)


def test_each_run_of_reset_steps_is_one_restart() -> None:
    from reliability.analysis.dataquality import counter_resets

    t = pd.Timestamp("2025-10-21T02:00:00Z")
    steps = [t + pd.Timedelta(seconds=30 * i) for i in (0, 1, 2, 10, 11)]
    frame = pd.DataFrame({"instance": ["a"] * 5, "time": steps, "value": [1.0, 1.0, 1.0, 2.0, 2.0]})
    found = counter_resets(frame, step=30)
    assert list(found["end"]) == [steps[0], steps[3]]
    assert list(found["start"]) == [steps[0] - pd.Timedelta(seconds=30), steps[3] - pd.Timedelta(seconds=30)]
    assert found["detail"].iloc[1].startswith("2 series")
    assert counter_resets(frame.iloc[0:0], step=30).empty


@pytest.mark.prometheus
def test_clean_window_has_no_findings(client, truth) -> None:
    w = truth["windows"]["canary"]
    assert preflight(client, ts(w["start"]), ts(w["end"])).ok


@pytest.mark.prometheus
def test_cache_gap_matches_ground_truth(client, truth) -> None:
    g = truth["cache"]["gaps"][0]
    res = cache_consistency(client, ts(g["start"]) - pd.Timedelta(hours=1), ts(g["end"]) + pd.Timedelta(hours=1))
    assert list(res.below["clinic"]) == [g["clinic"]]
    gap = res.gaps.iloc[0]
    assert gap["clinic"] == g["clinic"]
    assert abs(gap["start"] - ts(g["start"])) <= pd.Timedelta(minutes=5)
    assert abs(gap["end"] - ts(g["end"])) <= pd.Timedelta(minutes=5)
    assert gap["updates"] == pytest.approx(g["updates_without_invalidation"], rel=0.02)


@pytest.mark.prometheus
def test_cache_metrics_absent_is_no_data(client) -> None:
    start = pd.Timestamp("2025-10-01T00:00:00Z").to_pydatetime()
    with pytest.raises(NoDataError, match="queue_updates_total"):
        cache_consistency(client, start, start + pd.Timedelta(hours=1))


def test_coverage_and_gaps_from_frames() -> None:
    t = pd.date_range("2025-10-23T06:00:00Z", periods=4, freq="5min")
    upd = pd.DataFrame({"clinic": ["a"] * 4, "time": t, "value": [10.0, 10.0, 10.0, 10.0]})
    inv = pd.DataFrame({"clinic": ["a"] * 4, "time": t, "value": [10.0, 0.0, 0.0, 10.0]})
    gaps = gap_periods(upd, inv, step=300)
    assert len(gaps) == 1 and gaps.iloc[0]["updates"] == 20.0
    assert gaps.iloc[0]["start"] == t[0] and gaps.iloc[0]["end"] == t[2]
    table = coverage_table(pd.DataFrame({"clinic": ["a"], "value": [40.0]}),
                           pd.DataFrame({"clinic": ["a"], "value": [20.0]}), pd.DataFrame())
    assert table.iloc[0]["coverage"] == 0.5 and table.iloc[0]["stale_reads"] == 0.0


def test_scrape_gaps_ignore_instances_outside_their_lifetime() -> None:
    t = pd.date_range("2025-10-26T09:00:00Z", periods=6, freq="30s")
    up = pd.DataFrame({"instance": ["canary"] * 3, "time": t[3:], "value": [1.0, 0.0, 1.0]})
    gaps = scrape_gaps(up, start=t[0], end=t[-1], step=30)
    assert len(gaps) == 1 and gaps.iloc[0]["start"] == t[4]


@pytest.mark.prometheus
def test_a_reset_across_a_long_gap_is_counted_not_dropped(client, truth) -> None:
    # The rollback brings v1.8.3's series back, lower, after 45 minutes without samples.
    (rollback,) = [r for r in truth["data_quality"]["counter_resets"] if "rollback" in r["reason"]]
    start, end = ts(rollback["time"]) - pd.Timedelta(hours=1), ts(rollback["time"]) + pd.Timedelta(hours=1)
    resets = preflight(client, start, end).findings.query("kind == 'counter reset'")
    unlocated = resets[(resets["start"] == start) & (resets["end"] == end)]
    assert list(unlocated["instance"]) == [rollback["instance"]]
    assert "not located to a step" in unlocated["detail"].iloc[0]
