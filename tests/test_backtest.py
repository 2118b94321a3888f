"""Backtests replay Prometheus' alert state machine, and catch the bundled history's bad deploy."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from reliability import paths
from reliability.analysis.alerts import (
    AlertRule,
    alert_quality,
    backtest,
    compare_rules,
    evaluation_times,
    load_rule,
    load_rules,
    run_alert_states,
)
from reliability.analysis.alerts.replay import alert_samples, default_interval
from reliability.errors import ConfigurationError

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
A = {"alertname": "A", "instance": "a"}
B = {"alertname": "A", "instance": "b"}


def minutes(n: int) -> pd.DatetimeIndex:
    return pd.date_range(T0, periods=n, freq="1min")


def samples(*series: tuple[dict[str, str], str]) -> pd.DataFrame:
    """Hand-made expression results: per label set, one character per minute ('x' = returned, '.' = not)."""
    rows = [{"labels": labels, "time": T0 + timedelta(minutes=k), "value": 1.0 + k}
            for labels, pattern in series for k, c in enumerate(pattern) if c == "x"]
    return pd.DataFrame(rows, columns=["labels", "time", "value"])


def states_of(states: pd.DataFrame, labels: dict[str, str], n: int) -> str:
    """The state in each of ``n`` minutes as one letter (i/p/F), '-' where the label set has no row."""
    mine = states[states["labels"].map(lambda lab: lab == labels)]
    by_time = dict(zip(mine["time"], mine["state"], strict=True))
    return "".join({"inactive": "i", "pending": "p", "firing": "F"}[by_time[t]] if t in by_time else "-"
                   for t in minutes(n))


# --------------------------------------------------------------------------- the state machine
def test_an_alert_fires_when_exactly_for_has_elapsed() -> None:
    states, episodes = run_alert_states(samples((A, "..xxxxxx..")), minutes(10), for_=180)
    assert states_of(states, A, 10) == "--pppFFFii"
    (ep,) = episodes.itertuples(index=False)
    assert (ep.active_since, ep.firing_since, ep.resolved_at) == (
        T0 + timedelta(minutes=2), T0 + timedelta(minutes=5), T0 + timedelta(minutes=8))
    assert ep.duration == pd.Timedelta(minutes=6)
    assert ep.peak_value == 8.0


def test_for_zero_fires_at_the_first_evaluation_and_resolves_at_the_first_absence() -> None:
    states, _ = run_alert_states(samples((A, ".x.xx")), minutes(5), for_=0)
    assert states_of(states, A, 5) == "-FiFF"


def test_flapping_resets_the_pending_clock() -> None:
    states, episodes = run_alert_states(samples((A, "xx.xx.xxx")), minutes(9), for_=120)
    assert states_of(states, A, 9) == "ppippippF"
    assert episodes["firing_since"].isna().tolist() == [True, True, False]
    assert episodes["resolved_at"].tolist()[:2] == [T0 + timedelta(minutes=2), T0 + timedelta(minutes=5)]


def test_keep_firing_for_counts_from_the_first_absent_evaluation() -> None:
    # Cleared at minute 3: held at 3, 4 (3 - 3 and 4 - 3 < 2m), resolved at 5.
    states, episodes = run_alert_states(samples((A, "xxx.....")), minutes(8), for_=60, keep_firing_for=120)
    assert states_of(states, A, 8) == "pFFFFiii"
    assert states["value"].isna().tolist()[3:5] == [True, True]  # held, but the expression returned nothing
    assert episodes["resolved_at"].tolist() == [T0 + timedelta(minutes=5)]


def test_a_returning_sample_resets_keep_firing_since() -> None:
    states, episodes = run_alert_states(samples((A, "xx.x..x...")), minutes(10), for_=0, keep_firing_for=120)
    assert states_of(states, A, 10) == "FFFFFFFFFi"
    assert len(episodes) == 1


def test_keep_firing_for_does_not_hold_a_pending_alert() -> None:
    states, _ = run_alert_states(samples((A, "xx..")), minutes(4), for_=300, keep_firing_for=600)
    assert states_of(states, A, 4) == "ppii"


def test_label_sets_are_independent_and_unseen_ones_have_no_rows() -> None:
    states, episodes = run_alert_states(samples((A, "xxxx.."), (B, "..xxxx")), minutes(6), for_=60)
    assert states_of(states, A, 6) == "pFFFii"
    assert states_of(states, B, 6) == "--pFFF"
    assert len(states) == 6 + 4
    assert episodes["resolved_at"].isna().tolist() == [False, True]  # B is still firing at the end
    assert episodes["duration"].tolist() == [pd.Timedelta(minutes=4), pd.Timedelta(minutes=3)]
    empty_states, empty_episodes = run_alert_states(samples(), minutes(6), for_=60)
    assert empty_states.empty and empty_episodes.empty
    assert list(empty_states.columns) == ["time", "labels", "state", "value"]


def test_duplicate_label_sets_fail_like_prometheus() -> None:
    frame = pd.concat([samples((A, "x")), samples((A, "x"))])
    with pytest.raises(ConfigurationError, match="same alert"):
        run_alert_states(frame, minutes(1), for_=0)


def test_alert_labels_drop_name_and_empty_values_and_rule_labels_win() -> None:
    rule = AlertRule(alert="Hot", expr="x", labels={"severity": "page", "team": "sre"})
    frame = pd.DataFrame({"__name__": ["temp"], "instance": ["a"], "team": ["db"], "zone": [""],
                          "time": [pd.Timestamp(T0)], "value": [3.0]})
    (labels,) = alert_samples(frame, rule)["labels"]
    assert labels == {"instance": "a", "team": "sre", "severity": "page", "alertname": "Hot"}


def test_evaluation_times_follow_the_range_query_grid() -> None:
    times = evaluation_times(T0, T0 + timedelta(seconds=95), 30)
    assert [t.second for t in times] == [0, 30, 0, 30]
    assert len(evaluation_times(T0, T0, 30)) == 1


def test_naive_times_and_bad_intervals_are_configuration_errors() -> None:
    rule = {"alert": "A", "expr": "up == 0"}
    with pytest.raises(ConfigurationError, match="no time zone"):
        backtest(rule, "http://127.0.0.1:9", datetime(2025, 1, 1), T0)
    with pytest.raises(ConfigurationError, match="before its start"):
        backtest(rule, "http://127.0.0.1:9", T0, T0 - timedelta(hours=1))
    with pytest.raises(ConfigurationError, match="invalid duration"):
        backtest(rule, "http://127.0.0.1:9", T0, T0 + timedelta(hours=1), interval="often")
    with pytest.raises(ConfigurationError, match="templates"):
        backtest({**rule, "labels": {"who": "{{ $labels.instance }}"}}, "http://127.0.0.1:9", T0, T0)


def test_the_default_interval_is_prometheus_ymls_evaluation_interval() -> None:
    import yaml

    configured = yaml.safe_load(paths.PROMETHEUS_YML.read_text())["global"]["evaluation_interval"]
    from reliability.source.promql import parse_duration

    assert default_interval() == parse_duration(configured)


# --------------------------------------------------------------------------- alert quality
def episodes_frame(*spans: tuple[str, str | None]) -> pd.DataFrame:
    def t(s: str | None) -> pd.Timestamp:
        return pd.Timestamp(f"2025-01-01T{s}Z") if s else pd.NaT

    return pd.DataFrame({"labels": [{}] * len(spans), "active_since": [t(a) for a, _ in spans],
                         "firing_since": pd.Series([t(a) for a, _ in spans], dtype="datetime64[ns, UTC]"),
                         "resolved_at": pd.Series([t(b) for _, b in spans], dtype="datetime64[ns, UTC]")})


INCIDENTS = [{"name": "db", "start": "2025-01-01T10:00:00Z", "end": "2025-01-01T10:40:00Z"},
             {"name": "auth", "start": "2025-01-01T14:00:00Z", "end": "2025-01-01T14:20:00Z"}]


def test_quality_reports_delays_misses_and_false_alarms() -> None:
    episodes = episodes_frame(("03:00:00", "03:10:00"), ("10:07:30", "10:50:00"), ("10:50:00", "10:52:00"),
                              ("20:00:00", None))
    quality = alert_quality(episodes, INCIDENTS, slack=timedelta(minutes=15), alert="X")
    db, auth = quality.incidents.itertuples(index=False)
    assert db.detected and not auth.detected
    assert db.detection_delay == pd.Timedelta(minutes=7, seconds=30)
    assert db.time_to_resolve == pd.Timedelta(minutes=10)
    assert quality.missed == ["auth"]
    # 03:00 and 20:00 are far from both incidents; 10:50 is within the slack after "db".
    assert quality.false_alarms["firing_since"].dt.hour.tolist() == [3, 20]
    row = quality.summary.iloc[0]
    assert (row["detected"], row["missed"], row["false_alarms"]) == (1, 1, 2)


def test_an_alert_already_firing_when_the_incident_starts_detects_it_with_negative_delay() -> None:
    quality = alert_quality(episodes_frame(("09:55:00", None)), INCIDENTS[:1])
    assert quality.incidents["detection_delay"].tolist() == [pd.Timedelta(minutes=-5)]
    assert pd.isna(quality.incidents["time_to_resolve"].iloc[0])
    assert quality.false_alarms.empty


def test_incidents_need_time_zones() -> None:
    with pytest.raises(ConfigurationError, match="no time zone"):
        alert_quality(episodes_frame(), [{"name": "x", "start": "2025-01-01T10:00:00", "end": "2025-01-01T11:00:00"}])


# --------------------------------------------------------------------------- the bundled history
def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def seed_rule() -> AlertRule:
    return load_rule(paths.ALERTS_YML, "High5xxErrorRate")


@pytest.mark.prometheus
def test_the_bad_deploy_fires_the_seed_alert_within_the_incident(client, truth, seed_rule) -> None:
    (incident,) = [i for i in truth["incidents"] if i["version"] == "v1.9.0"]
    start, end = ts(incident["start"]), ts(incident["end"])
    result = backtest(seed_rule, client, start - timedelta(hours=1), end + timedelta(hours=1))
    assert result.interval == default_interval()
    assert result.fired
    (episode,) = result.firing.itertuples(index=False)
    assert start <= episode.active_since
    # `for: 5m` exactly: the first firing evaluation is 5 minutes after the first pending one.
    assert episode.firing_since - episode.active_since == pd.Timedelta(minutes=5)
    assert start + timedelta(minutes=5) <= episode.firing_since <= end
    assert end <= episode.resolved_at <= end + timedelta(minutes=10)  # the 5m rate window drains
    assert episode.labels == {"severity": "critical", "alertname": "High5xxErrorRate"}
    assert episode.peak_value == pytest.approx(incident["peak_5xx_ratio"], rel=1e-3)


@pytest.mark.prometheus
def test_the_seed_alert_stays_quiet_over_the_canary(client, truth, seed_rule) -> None:
    window = truth["windows"]["canary"]
    result = backtest(seed_rule, client, ts(window["start"]), ts(window["end"]))
    assert not result.fired
    assert result.evaluations == int(24 * 3600 / result.interval) + 1
    assert result.summary.loc[0, "firing_evaluations"] == 0


@pytest.mark.prometheus
def test_a_plain_mapping_and_a_url_work_like_the_rule_object(prometheus_url, truth, seed_rule) -> None:
    (incident,) = truth["incidents"][:1]
    start, end = ts(incident["start"]), ts(incident["end"])
    mapping = {"alert": seed_rule.alert, "expr": seed_rule.expr, "for": "5m", "labels": dict(seed_rule.labels)}
    as_mapping = backtest(mapping, prometheus_url, start, end, interval="1m")
    as_rule = backtest(seed_rule, prometheus_url, start, end, interval=60)
    pd.testing.assert_frame_equal(as_mapping.states, as_rule.states)
    assert as_rule.interval == 60.0 and as_rule.fired


@pytest.mark.prometheus
def test_recorded_series_are_inlined_from_the_repositorys_recording_rules(client, truth) -> None:
    (incident,) = truth["incidents"][:1]
    start, end = ts(incident["start"]) - timedelta(minutes=30), ts(incident["end"]) + timedelta(minutes=30)
    rule = {"alert": "Burn", "expr": "love:http_requests_5xx:ratio_rate5m > 0.05", "for": "2m"}
    result = backtest(rule, client, start, end, interval=60)
    assert "love:" not in result.expr
    # The raw ratio, thresholded here instead of in PromQL: the replay must see the same minutes.
    raw = client.query_range('(sum(rate(http_requests_total{status=~"5.."}[5m])) or vector(0)) '
                             '/ sum(rate(http_requests_total[5m]))', start, end, step=60)
    above = set(raw.loc[raw["value"] > 0.05, "time"])
    returned = set(result.states.loc[result.states["value"].notna(), "time"])
    assert above and returned == above
    assert result.fired


@pytest.mark.prometheus
def test_compare_rules_puts_the_seed_rule_beside_the_burn_rate_alerts(client, truth) -> None:
    rules = [r for g in load_rules(paths.ALERTS_YML) for r in g.alerts
             if g.name in ("critical_alerts", "slo_burn_rate")]
    table = compare_rules(rules, client, ts("2025-10-23T10:00:00Z"), ts("2025-10-25T10:00:00Z"),
                          truth["incidents"], interval=300)
    assert list(table.index) == [r.alert for r in rules]
    seed = table.loc["High5xxErrorRate"]
    assert seed["detected"] == 1 and seed["false_alarms"] == 0
    assert pd.Timedelta(0) < seed["median_detection_delay"] <= pd.Timedelta(minutes=15)
    assert (table["incidents"] == len(truth["incidents"])).all()
    assert (table["detected"] + table["missed"] == table["incidents"]).all()


@pytest.mark.prometheus
def test_an_episode_under_way_at_the_window_start_keeps_its_true_start(client, truth: dict) -> None:
    """A window opening 3 minutes before the incident's alert resolves: replayed from a quiet
    moment, the episode starts at its true 10:12:30, not at the window start."""
    from reliability.gate.alert_replay import replay_from_quiet

    rule = next(r for g in load_rules(paths.ALERTS_YML) for r in g.alerts if r.alert == "High5xxErrorRate")
    fired = truth["alerts"]["High5xxErrorRate"]["firing"][0]
    start, end = ts("2025-10-24T10:46:00Z"), ts("2025-10-24T11:30:00Z")
    naive = backtest(rule, client, start - timedelta(seconds=rule.for_), end, interval=30)
    assert naive.firing.iloc[0]["firing_since"] == start  # the old way: dated at the window start
    bt = replay_from_quiet(rule, client, start, end, interval=30.0)
    episode = bt.firing.iloc[0]
    assert episode["firing_since"] == ts(fired["start"])
    assert episode["resolved_at"] > start
