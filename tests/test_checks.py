"""Monitoring checks against the real local Prometheus: healthy setup passes, each breakage fails clearly."""
from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
from conftest import ts

from reliability import paths
from reliability.analysis.alerts import AlertRule, RuleGroup, load_rules
from reliability.gate.alertmanager import alertmanager_wired
from reliability.gate.checks import (
    prometheus_ready,
    rate_ranges_ok,
    rule_metrics,
    rules_loaded,
    run_all,
    scrape_interval,
    series_present,
)
from reliability.gate.verdict import Status
from reliability.source.parsed import comparison_literals, metric_names, range_selectors
from reliability.source.prom import PrometheusClient

RECORDING_YML = paths.MONITORING / "recording.yml"


def _group(*exprs: str) -> RuleGroup:
    rules = tuple(AlertRule(alert=f"Rule{i}", expr=e) for i, e in enumerate(exprs))
    return RuleGroup(name="g", interval=None, rules=rules, path="<test>")


# --------------------------------------------------------------------------- pure parsing
def test_comparison_literals_finds_the_threshold_not_arithmetic_or_strings() -> None:
    assert comparison_literals('( sum(rate(x{status=~"5.."}[5m])) / sum(rate(x[5m])) ) > 0.02') == [0.02]
    assert comparison_literals("0.05 < x") == [0.05]
    assert comparison_literals("x > bool 1e-2") == [0.01]
    assert comparison_literals('x{a="> 9"} * 0.5 > 3') == [3.0]
    assert comparison_literals("a > (14.4 * 0.02)") == []


def test_range_selectors_and_metric_names_read_promql_tokens() -> None:
    expr = 'sum by (breaker) (increase(cb_total{to="open"}[30m])) / on(job) irate(up[1m]) > 3 and absent(other)'
    assert range_selectors(expr) == [("increase", 1800.0), ("irate", 60.0)]
    assert metric_names(expr) == {"cb_total", "up", "other"}
    assert range_selectors("rate(max_over_time(x[5m:1m])[10m:30s])") == [("rate", 600.0)]


def test_rule_metrics_leaves_out_recorded_series() -> None:
    groups = load_rules(paths.ALERTS_YML) + load_rules(RECORDING_YML)
    names = rule_metrics(groups)
    assert "http_requests_total" in names
    assert not [n for n in names if n.startswith("love:")]


def test_rate_ranges_pass_on_repository_rules() -> None:
    groups = load_rules(paths.ALERTS_YML) + load_rules(RECORDING_YML)
    assert scrape_interval(paths.PROMETHEUS_YML) == 30.0
    check = rate_ranges_ok(groups, scrape_interval(paths.PROMETHEUS_YML))
    assert check.status is Status.PASS, check.detail


def test_rate_range_under_two_scrapes_fails_and_under_four_warns() -> None:
    check = rate_ranges_ok([_group("rate(x[45s]) > 0", "rate(y[5m]) > 0")], "30s")
    assert check.status is Status.FAIL
    assert "Rule0" in check.detail and "[45s]" in check.detail and "Rule1" not in check.detail
    check = rate_ranges_ok([_group("increase(x[1m]) > 0")], 30.0)
    assert check.status is Status.WARN and "Rule0" in check.detail and "2m" in check.detail


# --------------------------------------------------------------------------- healthy setup
@pytest.mark.prometheus
def test_prometheus_ready_reports_the_version(client: PrometheusClient) -> None:
    check = prometheus_ready(client)
    assert check.status is Status.PASS and check.required
    assert "2.42" in check.detail


def test_prometheus_ready_fails_with_url_when_nothing_listens() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"  # bound but not listening: connection refused
    check = prometheus_ready(PrometheusClient(url, retries=0))
    assert check.status is Status.FAIL
    assert url in check.detail and "PROMETHEUS_URL" in check.detail


@pytest.mark.prometheus
def test_rules_loaded_passes_for_the_repository_rules(client: PrometheusClient) -> None:
    check = rules_loaded(client, paths.ALERTS_YML, required=("High5xxErrorRate", "CircuitBreakerStuckOpen"))
    assert check.status is Status.PASS, check.detail
    assert "format_query" in check.detail


@pytest.mark.prometheus
def test_rules_loaded_fails_when_the_last_evaluation_is_stale(client: PrometheusClient) -> None:
    from datetime import datetime, timedelta, timezone

    later = datetime.now(timezone.utc) + timedelta(hours=1)
    check = rules_loaded(client, paths.ALERTS_YML, now=later)
    assert check.status is Status.FAIL
    assert "High5xxErrorRate: last evaluated" in check.detail and "3 evaluation intervals of 5 s" in check.detail


def test_whitespace_fallback_keeps_string_literals() -> None:
    from reliability.source.promql import _squash

    assert _squash('( sum(rate(x{a=" b  c"}[5m])) )\n > 0.02') == '(sum(rate(x{a=" b  c"}[5m])))>0.02'


@pytest.mark.prometheus
def test_rules_loaded_fails_when_a_required_alert_is_not_loaded(client: PrometheusClient) -> None:
    check = rules_loaded(client, paths.ALERTS_YML, required=("High5xxErrorRate", "NoSuchAlert"), wait=0)
    assert check.status is Status.FAIL
    assert "NoSuchAlert: not defined in" in check.detail and "not loaded by Prometheus" in check.detail


@pytest.mark.prometheus
def test_rules_loaded_fails_when_the_repository_file_was_laxened(client: PrometheusClient, tmp_path: Path) -> None:
    edited = tmp_path / "alerts.yml"
    edited.write_text(paths.ALERTS_YML.read_text().replace("> 0.02", "> 0.05", 1))
    check = rules_loaded(client, edited)
    assert check.status is Status.FAIL
    assert "High5xxErrorRate: expression differs" in check.detail
    assert f"threshold 0.05 is above the seed's 0.02 (R > 0.98) in {edited}" in check.detail


@pytest.mark.prometheus
def test_alertmanager_judged_from_prometheus_view(client: PrometheusClient, truth: dict) -> None:
    import os

    w = truth["windows"]["canary"]
    check = alertmanager_wired(client, ts(w["start"]), ts(w["end"]))
    assert check.status is Status.PASS, check.detail
    assert os.environ["ALERTMANAGER_URL"] in check.detail
    # The history server does not scrape itself: the counters come from its own /metrics.
    assert "since Prometheus started" in check.detail and "errors 0" in check.detail
    assert "from here" not in check.detail  # no probe from the runner unless asked
    probed = alertmanager_wired(client, ts(w["start"]), ts(w["end"]), probe=True)
    assert probed.status is Status.PASS and "answers /-/ready from here" in probed.detail


@pytest.mark.prometheus
def test_series_present_over_canary_window(client: PrometheusClient, truth: dict) -> None:
    w = truth["windows"]["canary"]
    check = series_present(client, ts(w["start"]), ts(w["end"]), ["http_requests_total", "up"])
    assert check.status is Status.PASS, check.detail
    assert "http_requests_total" in check.detail


@pytest.mark.prometheus
def test_series_present_fails_on_a_misspelt_metric(client: PrometheusClient, truth: dict) -> None:
    w = truth["windows"]["canary"]
    check = series_present(client, ts(w["start"]), ts(w["end"]), ["http_requests_total", "http_request_total"])
    assert check.status is Status.FAIL
    assert "http_request_total" in check.detail and "never fires" in check.detail


@pytest.mark.prometheus
def test_run_all_passes_on_the_bundled_setup(client: PrometheusClient, truth: dict) -> None:
    w = truth["windows"]["canary"]
    checks = run_all(client, rule_file=paths.ALERTS_YML, start=ts(w["start"]), end=ts(w["end"]))
    assert [c.name for c in checks] == ["Prometheus ready", "Alert rules loaded", "Alertmanager discovered",
                                        "Series present", "Rate ranges"]
    assert all(c.status is Status.PASS for c in checks), [(c.name, c.detail) for c in checks]


# --------------------------------------------------------------------------- broken setup
@pytest.fixture(scope="module")
def broken(tmp_path_factory: pytest.TempPathFactory):
    """A second Prometheus whose rules say 0.05, miss CircuitBreakerStuckOpen, and has no Alertmanager."""
    from reliability.source.embedded import EmbeddedPrometheus

    d = tmp_path_factory.mktemp("broken")
    text = paths.ALERTS_YML.read_text().replace("> 0.02", "> 0.05", 1)
    start = text.index("      - alert: CircuitBreakerStuckOpen")
    end = text.index("      - alert:", start + 10)
    (d / "alerts.yml").write_text(text[:start] + text[end:])
    (d / "recording.yml").write_text(RECORDING_YML.read_text())
    (d / "prometheus.yml").write_text(
        paths.PROMETHEUS_YML.read_text())  # rule_files are relative: they resolve to the copies above
    with EmbeddedPrometheus(config=d / "prometheus.yml", alertmanager=False) as prom:
        yield PrometheusClient(prom.url), d / "alerts.yml"


@pytest.mark.prometheus
def test_rule_at_five_percent_fails_naming_rule_file_and_values(broken) -> None:
    client, alerts = broken
    check = rules_loaded(client, alerts)
    assert check.status is Status.FAIL
    assert check.detail.startswith("High5xxErrorRate:")
    assert f"threshold 0.05 is above the seed's 0.02 (R > 0.98) in {alerts}" in check.detail
    assert "expression differs" not in check.detail  # the file and Prometheus agree; the value is wrong


@pytest.mark.prometheus
def test_rule_missing_from_loaded_rules_fails(broken) -> None:
    client, _ = broken
    check = rules_loaded(client, paths.ALERTS_YML, required=("High5xxErrorRate", "CircuitBreakerStuckOpen"))
    assert check.status is Status.FAIL
    assert "CircuitBreakerStuckOpen: not loaded by Prometheus" in check.detail
    assert "High5xxErrorRate: expression differs" in check.detail


@pytest.mark.prometheus
def test_no_alertmanager_fails_fast(broken) -> None:
    client, _ = broken
    t0 = time.monotonic()
    check = alertmanager_wired(client, ts("2025-10-26T09:00:00Z"), ts("2025-10-27T09:00:00Z"))
    assert check.status is Status.FAIL
    assert "no active Alertmanager" in check.detail and "alerting.alertmanagers" in check.detail
    assert time.monotonic() - t0 < 5


def test_a_replayed_answer_is_not_waited_for(tmp_path) -> None:
    """A snapshot's answers never change: the kernel replaying the CLI's answers must not sleep on them."""
    from reliability.source.recorded import write_snapshot
    from reliability.source.snapshot import SnapshotClient

    config = "alerting:\n  alertmanagers:\n  - static_configs: [{targets: ['127.0.0.1:1']}]\n"
    write_snapshot(tmp_path / "q.json.gz", "http://127.0.0.1:9", {
        '["api", "status/config", "{}"]': {"yaml": config},
        '["api", "alertmanagers", "{}"]': {"activeAlertmanagers": [], "droppedAlertmanagers": []}})
    t0 = time.monotonic()
    check = alertmanager_wired(SnapshotClient(tmp_path / "q.json.gz"), ts("2025-10-26T09:00:00Z"),
                               ts("2025-10-27T09:00:00Z"), wait=30)
    assert check.status is Status.FAIL and "none became active" in check.detail
    assert time.monotonic() - t0 < 5
