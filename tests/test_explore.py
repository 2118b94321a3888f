"""The exploration views: pure functions on small frames, queries against the ground truth."""
from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from conftest import ts

from reliability.analysis import measure
from reliability.analysis.alerts import backtest, evaluation_times, load_rules
from reliability.analysis.budget import error_budget
from reliability.errors import ConfigurationError, NoDataError
from reliability.lab import explore
from reliability.paths import ALERTS_YML

T0 = pd.Timestamp("2025-10-20T00:00:00Z")
H = pd.Timedelta(hours=1)


def hourly(rows: list[tuple[int, float, float]], **labels: str) -> pd.DataFrame:
    """Bucket counts as measure.bucket_counts returns them: time = bucket end."""
    return pd.DataFrame([{**labels, "time": T0 + (h + 1) * H, "requests": n, "errors": e} for h, n, e in rows])


# --------------------------------------------------------------------------- pure
def test_with_ratio_leaves_empty_buckets_unknown_not_perfect() -> None:
    out = explore.with_ratio(hourly([(0, 200.0, 4.0), (1, 0.0, 0.0)]))
    assert out["ratio"].iloc[0] == pytest.approx(0.02)
    assert out["r"].iloc[0] == pytest.approx(0.98)
    assert np.isnan(out["ratio"].iloc[1]) and np.isnan(out["r"].iloc[1])


def test_hour_of_day_pools_counts_over_days_in_local_time() -> None:
    # Hour 0 UTC on two days: 10/100 and 0/900 -> pooled 1 %, not the 5 % mean of the two ratios.
    frame = pd.concat([
        hourly([(0, 100.0, 10.0), (24, 900.0, 0.0)], route="/a"),
        hourly([(0, 50.0, 0.0)], route="/b"),
    ], ignore_index=True)
    pivot = explore.hour_of_day(frame, by="route", utc_offset_hours=3)
    assert list(pivot.index) == list(range(24))
    assert pivot.loc[3, "/a"] == pytest.approx(0.01)   # 00:00 UTC is 03:00 at UTC+3
    assert pivot.loc[3, "/b"] == 0.0
    assert pivot.loc[0].isna().all()                    # no traffic at 00:00 local: unknown


def test_worst_windows_skip_quiet_buckets_and_give_bucket_bounds() -> None:
    frame = hourly([(0, 10.0, 5.0), (1, 5000.0, 100.0), (2, 4000.0, 200.0), (3, 6000.0, 6.0)])
    worst = explore.worst_windows(frame, n=2, min_requests=1000)
    assert list(worst["ratio"]) == pytest.approx([0.05, 0.02])
    assert worst["start"].iloc[0] == T0 + 2 * H and worst["end"].iloc[0] == T0 + 3 * H
    with pytest.raises(NoDataError, match="min_requests"):
        explore.worst_windows(frame, min_requests=1e6)
    with pytest.raises(ConfigurationError):
        explore.worst_windows(frame, n=0)


def test_budget_burndown_is_the_error_budget_of_the_days_of_data() -> None:
    # 48 hours, 1000 requests and 2 errors an hour: 2 % of 48,000 requests may fail.
    frame = hourly([(h, 1000.0, 2.0) for h in range(48)])
    burn = explore.budget_burndown(frame, slo=0.98)
    assert burn.budget == error_budget(48_000, 96, slo=0.98, days=2.0)  # the one definition
    assert burn.budget.days == pytest.approx(2.0)
    assert burn.consumed == pytest.approx(96 / 960)
    assert burn.frame["consumed"].iloc[-1] == pytest.approx(burn.consumed)
    assert burn.frame["sustainable"].iloc[-1] == pytest.approx(1.0)  # a 2 % ratio spends it exactly
    assert "10.0% of the error budget of 2.0 days of data consumed" in burn.budget.describe()
    with pytest.raises(NoDataError):
        explore.budget_burndown(hourly([(0, 0.0, 0.0)]))


def test_split_comparison_takes_the_last_comparison_with_a_number() -> None:
    seed = next(r for g in load_rules(ALERTS_YML, promtool=False) for r in g.alerts if r.alert == "High5xxErrorRate")
    lhs, op, value = explore.split_comparison(seed.expr)
    assert (op, value) == (">", 0.02)
    assert lhs.startswith("(") and lhs.endswith(")") and "0.02" not in lhs
    assert explore.split_comparison("(a > 0) / b >= 1e-3") == ("(a > 0) / b", ">=", 0.001)
    with pytest.raises(ConfigurationError, match="comparison"):
        explore.split_comparison("sum(rate(x[5m]))")
    with pytest.raises(ConfigurationError, match="and/or/unless"):
        explore.split_comparison("a > 0.1 and b > 0.02")
    assert explore.split_comparison("(a and on() b) > 2")[0] == "(a and on() b)"


def _series(values: list[float], step: float = 60.0) -> tuple[pd.DataFrame, pd.DatetimeIndex]:
    times = evaluation_times(T0, T0 + pd.Timedelta(seconds=step * (len(values) - 1)), step)
    return pd.DataFrame({"time": times, "value": values}), times


def test_threshold_sweep_applies_for_and_threshold_like_the_rule() -> None:
    # Minute 10-19: 8 % (the incident); minute 40-41: a 3 % blip.
    values = [0.001] * 60
    values[10:20] = [0.08] * 10
    values[40:42] = [0.03] * 2
    series, times = _series(values)
    incident = [{"name": "db", "start": T0 + pd.Timedelta(minutes=10), "end": T0 + pd.Timedelta(minutes=20)}]
    sweep = explore.threshold_sweep(series, times, thresholds=[0.02, 0.05], fors=["0m", "2m", "5m"],
                                    incidents=incident, slack=timedelta(minutes=5)).set_index(["threshold", "for"])
    m = pd.Timedelta(minutes=1)
    assert sweep.loc[(0.02, 0 * m), "false_alarms"] == 1          # the blip pages at for: 0
    assert sweep.loc[(0.02, 2 * m), "false_alarms"] == 0          # 2 samples span 1 minute < 2m
    assert sweep.loc[(0.02, 5 * m), "max_detection_delay"] == 5 * m
    assert sweep.loc[(0.05, 0 * m), "max_detection_delay"] == 0 * m
    assert (sweep["missed"] == 0).all()
    assert sweep.loc[(0.02, 5 * m), "firing_time"] == 5 * m       # firing 15..19, resolved at 20


def test_threshold_sweep_refuses_several_series() -> None:
    series, times = _series([0.1, 0.1])
    two = pd.concat([series.assign(route="/a"), series.assign(route="/b")])
    with pytest.raises(ConfigurationError, match="one series"):
        explore.threshold_sweep(two, times, thresholds=[0.02], fors=[0], incidents=[])


def test_choose_setting_prefers_complete_quiet_single_page_then_fast() -> None:
    d = pd.Timedelta
    sweep = pd.DataFrame([
        {"threshold": 0.01, "for": d(0), "detected": 1, "missed": 0, "max_detection_delay": d(minutes=1),
         "false_alarms": 3, "firing_episodes": 4, "firing_time": d(minutes=50)},
        {"threshold": 0.05, "for": d(0), "detected": 1, "missed": 0, "max_detection_delay": d(minutes=2),
         "false_alarms": 0, "firing_episodes": 3, "firing_time": d(minutes=20)},
        {"threshold": 0.02, "for": d(minutes=5), "detected": 1, "missed": 0, "max_detection_delay": d(minutes=7),
         "false_alarms": 0, "firing_episodes": 1, "firing_time": d(minutes=30)},
        {"threshold": 0.02, "for": d(minutes=10), "detected": 1, "missed": 0, "max_detection_delay": d(minutes=12),
         "false_alarms": 0, "firing_episodes": 1, "firing_time": d(minutes=25)},
        {"threshold": 0.10, "for": d(0), "detected": 0, "missed": 1, "max_detection_delay": pd.NaT,
         "false_alarms": 0, "firing_episodes": 0, "firing_time": d(0)},
    ])
    choice = explore.choose_setting(sweep)
    assert (choice.threshold, choice.for_) == (0.02, d(minutes=5))
    assert choice.candidates == 2
    assert "7m" in choice.reason and "2 of 5" in choice.reason


def test_burn_rate_headroom_needs_both_windows_above_the_threshold() -> None:
    peaks = pd.DataFrame({"window": ["5m", "1h", "30m", "6h"], "peak_ratio": [0.30, 0.29, 0.20, 0.05]})
    table = explore.burn_rate_headroom(peaks, slo=0.98).set_index("windows")
    assert table.loc["1h and 5m", "could_fire"]                     # 29 % and 30 % > 28.8 %
    assert not table.loc["6h and 30m", "could_fire"]                # 6h at 5 % < 12 %
    assert table.loc["1h and 5m", "threshold_ratio"] == pytest.approx(0.288)
    assert table.loc["6h and 30m", "slo_to_fire"] == pytest.approx(1 - 0.05 / 6)
    assert np.isnan(table.loc["1d and 2h", "long_peak"]) and not table.loc["1d and 2h", "could_fire"]


def _whatif_rows() -> pd.DataFrame:
    base = {"repetitions": 1, "calls": 1000, "failures": 100}
    rows = [("consecutive", 5, 60.0, 1600, 50), ("consecutive", 5, 10.0, 500, 70), ("consecutive", 3, 300.0, 2500, 5),
            ("rate", 50, 60.0, 1000, 80)]
    return pd.DataFrame([{"policy": p, "failure_threshold": t, "timeout": w, **base, "trips_mean": 1.0,
                          "rejected_mean": float(r), "failed_calls_allowed_mean": float(a)} for p, t, w, r, a in rows])


def test_breaker_tradeoff_splits_rejections_into_failures_blocked_and_good_calls_lost() -> None:
    t = explore.breaker_tradeoff(_whatif_rows())
    first = t.iloc[0]
    assert first["failures_blocked"] == 50 and first["good_rejected"] == 1550
    assert first["failed_share"] == pytest.approx(0.5)
    # rate 50/60 (980 good calls lost, 80 failed) is beaten by 5/10 (470 lost, 70 failed).
    assert list(t["pareto"]) == [True, True, True, False]


def test_choose_breaker_weighs_failed_calls_against_rejected_good_calls() -> None:
    t = explore.breaker_tradeoff(_whatif_rows())
    cheap = explore.choose_breaker(t, failed_call_weight=1.0)          # 470 + 70 beats 1550 + 50
    assert (cheap.best["failure_threshold"], cheap.best["timeout"]) == (5, 10.0)
    assert "fewer rejected good calls" in cheap.reason and "20 more failed calls" in cheap.reason
    strict = explore.choose_breaker(t, failed_call_weight=100.0)      # 2405 + 500 beats 470 + 7000
    assert (strict.best["failure_threshold"], strict.best["timeout"]) == (3, 300.0)
    assert list(strict.summary.index) == ["recommended", "in force"]
    same = explore.choose_breaker(t.iloc[[0]], current=("consecutive", 5, 60.0))
    assert same.reason.endswith("the configuration in force")
    with pytest.raises(ConfigurationError):
        explore.choose_breaker(t, failed_call_weight=-1)


def test_duration_text() -> None:
    assert explore.duration_text(pd.Timedelta(minutes=7, seconds=30)) == "7m30s"
    assert explore.duration_text(pd.Timedelta(0)) == "0s"
    assert explore.duration_text(pd.Timedelta(minutes=-2)) == "-2m"
    assert explore.duration_text(pd.NaT) == "—"


# --------------------------------------------------------------------------- against the history
FULL = ("2025-10-15T00:00:00Z", "2025-10-29T00:00:00Z")


def close(got: float, want: float) -> bool:
    return abs(got - want) <= max(0.01 * want, 5)


@pytest.fixture(scope="module")
def hours(client) -> pd.DataFrame:
    return measure.bucket_counts(client, ts(FULL[0]), ts(FULL[1]), bucket=3600)


@pytest.mark.prometheus
def test_the_worst_hour_holds_the_incident(hours, truth) -> None:
    inc = truth["incidents"][0]
    worst = explore.worst_windows(hours, n=5).iloc[0]
    assert worst["start"] <= pd.Timestamp(inc["start"]) and worst["end"] >= pd.Timestamp(inc["end"])
    # That hour holds all of v1.9.0's 5xx plus a quarter hour of v1.8.3.
    assert worst["errors"] >= 0.99 * truth["windows"]["bad_deploy"]["total"]["errors_5xx"]
    assert worst["ratio"] > 0.02


@pytest.mark.prometheus
def test_budget_burndown_spends_the_histories_5xx(hours, truth) -> None:
    full = truth["windows"]["full"]["total"]
    burn = explore.budget_burndown(hours, slo=0.98)
    assert close(burn.budget.errors, full["errors_5xx"])
    assert burn.budget.days == pytest.approx(14.0)
    assert burn.consumed == pytest.approx(full["errors_5xx"] / (0.02 * full["requests"]), rel=0.02)


@pytest.mark.prometheus
def test_hour_of_day_hottest_cell_is_the_incidents_local_hour(client, truth) -> None:
    routes = measure.bucket_counts(client, ts(FULL[0]), ts(FULL[1]), bucket=3600, by=["route"])
    pivot = explore.hour_of_day(routes, by="route", utc_offset_hours=3)
    hour, _ = pivot.stack().idxmax()
    assert hour == (pd.Timestamp(truth["incidents"][0]["start"]).hour + 3) % 24


@pytest.mark.prometheus
def test_drill_down_accounts_for_every_5xx_of_the_incident(client, truth) -> None:
    w = truth["windows"]["incident"]
    frame = explore.drill_down(client, ts(w["start"]), ts(w["end"]))
    assert close(frame["errors"].sum(), w["total"]["errors_5xx"])
    assert frame["share"].sum() == pytest.approx(1.0)
    assert set(frame["status"]) <= {"500", "503"}
    assert frame["errors"].is_monotonic_decreasing


@pytest.mark.prometheus
def test_compare_versions_counts_each_version_of_the_canary_day(client, truth) -> None:
    w = truth["windows"]["canary"]
    c = explore.compare_versions(client, ts(w["start"]), ts(w["end"]), candidate="v1.9.1", stable="v1.8.3")
    assert close(c.candidate_requests, w["by_version"]["v1.9.1"]["requests"])
    assert close(c.stable_errors, w["by_version"]["v1.8.3"]["errors_5xx"])
    assert c.phi_candidate >= 1 and c.phi_stable >= 1
    with pytest.raises(NoDataError, match=r"v9.9.9"):
        explore.compare_versions(client, ts(w["start"]), ts(w["end"]), candidate="v9.9.9", stable="v1.8.3")


@pytest.mark.prometheus
def test_ratio_peaks_find_the_incident_peak(client, truth) -> None:
    inc = truth["incidents"][0]
    peaks = explore.ratio_peaks(client, ts(FULL[0]), ts(FULL[1]), windows=["5m", "1h"]).set_index("window")
    assert peaks.loc["5m", "peak_ratio"] == pytest.approx(inc["peak_5xx_ratio"], rel=0.01)
    assert ts(inc["start"]) <= peaks.loc["5m", "peak_time"] <= ts(inc["end"]) + timedelta(minutes=5)
    assert peaks.loc["1h", "peak_ratio"] < peaks.loc["5m", "peak_ratio"]


@pytest.mark.prometheus
def test_sweep_of_the_seed_setting_equals_the_seed_backtest(client, truth) -> None:
    seed = next(r for g in load_rules(ALERTS_YML, promtool=False) for r in g.alerts if r.alert == "High5xxErrorRate")
    start, end = ts("2025-10-24T06:00:00Z"), ts("2025-10-24T14:00:00Z")
    lhs, op, threshold = explore.split_comparison(seed.expr)
    series = client.query_range(lhs, start, end, 30)
    sweep = explore.threshold_sweep(series, evaluation_times(start, end, 30), thresholds=[threshold],
                                    fors=[seed.for_], incidents=truth["incidents"], op=op)
    bt = backtest(seed, client, start, end, interval=30)
    first = bt.firing["firing_since"].iloc[0]
    assert sweep["max_detection_delay"].iloc[0] == first - pd.Timestamp(truth["incidents"][0]["start"])
    assert sweep["firing_episodes"].iloc[0] == len(bt.firing)


@pytest.mark.prometheus
def test_lab_connect_uses_prometheus_url_else_starts_and_stops_its_own(monkeypatch, prometheus_url) -> None:
    import os

    from reliability import lab

    monkeypatch.setenv("PROMETHEUS_URL", prometheus_url)
    assert lab.connect().url == prometheus_url and lab.embedded_url() is None
    monkeypatch.delenv("PROMETHEUS_URL")
    client = lab.connect()
    try:
        assert client.url == lab.embedded_url() != prometheus_url
        assert lab.connect().url == client.url                      # one server per kernel
        pids = list(lab._SERVER.pids)
        assert client.ready()
    finally:
        lab.stop()
    assert lab.embedded_url() is None
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_hour_heatmap_shows_the_normal_pattern_beside_the_incident() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from reliability.report.explore_figures import hour_heatmap

    # Normal hours at 0.05-0.4 %, one incident hour at 5 %: on a linear scale all normal hours look alike.
    pivot = pd.DataFrame({"/a": [0.0005, 0.002, 0.004, 0.05], "/b": [0.0, 0.001, 0.003, 0.002]}, index=[0, 6, 12, 13])
    ax = hour_heatmap(pivot)
    image = ax.get_images()[0]
    shade = image.norm(np.array([0.05, 0.4, 5.0]))  # in %
    assert shade[1] - shade[0] > 0.3 and shade[2] - shade[1] > 0.2, shade  # three clearly different shades
    plt.close(ax.figure)


def test_an_incident_log_is_read_from_csv_or_json_and_bad_rows_are_named(tmp_path) -> None:
    from reliability import lab
    from reliability.paths import GROUND_TRUTH

    bundled = lab.load_incidents(GROUND_TRUTH)
    assert bundled and all({"name", "start", "end"} <= set(i) for i in bundled)
    log = tmp_path / "postmortems.csv"
    log.write_text("name,start,end\ndb outage,2025-10-24T10:05:00Z,2025-10-24T10:45:00Z\n")
    (one,) = lab.load_incidents(log)
    assert one == {"name": "db outage", "start": "2025-10-24T10:05:00+00:00", "end": "2025-10-24T10:45:00+00:00"}
    log.write_text("name,start,end\ndb outage,2025-10-24T10:05:00Z,\n")
    with pytest.raises(ConfigurationError, match=r"postmortems.csv, incident 1: no end"):
        lab.load_incidents(log)
    log.write_text("name,start,end\nbackwards,2025-10-24T11:00:00Z,2025-10-24T10:00:00Z\n")
    with pytest.raises(ConfigurationError, match="is not after start"):
        lab.load_incidents(log)
    with pytest.raises(ConfigurationError, match="no such file"):
        lab.load_incidents(tmp_path / "missing.csv")
