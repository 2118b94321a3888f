"""Live end to end: an instrumented backend scraped by a real Prometheus that evaluates the rules live.

A stable and a canary process and an unrelated service (30 % 5xx, the canary's version label) on
127.0.0.1, a real Alertmanager, and a load generator that logs every response. The rules are
init's, time-compressed 15x (``live.stack.compress``): the scenario takes about two minutes.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from live.stack import compress

from reliability import paths

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]


def test_compress_divides_every_range_and_for() -> None:
    text = paths.ALERTS_YML.read_text()
    out = compress(text, 15)
    assert 'http_requests_total{status=~"5.."}[20s]' in out and "for: 20s" in out
    assert "love:http_requests_5xx:ratio_rate1h" in out  # names are not durations
    assert "[5m]" not in out and "for: 5m" not in out
    assert compress("max_over_time(x[1h:1m])", 15) == "max_over_time(x[4m:1m])"  # the subquery step stays
    assert compress(text, 1) == text


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from live.scenario import run_scenario

    return run_scenario(tmp_path_factory.mktemp("live"), factor=15.0)


def test_healthy_canary_is_go_and_counts_match_the_log(figures: dict) -> None:
    h = figures["healthy"]
    assert h["verdict"] == "GO", h["reasons"]
    (logged, logged_5xx), (requests, errors) = h["logged"], h["proof"]
    assert logged > 500
    assert abs(requests - logged) <= h["allowed"], (requests, logged, h["allowed"])
    assert abs(errors - logged_5xx) <= max(1.0, h["allowed"] * logged_5xx / logged)


def test_failing_canary_is_no_go_and_the_replay_matches_the_live_alert(figures: dict) -> None:
    f = figures["failing"]
    assert f["verdict"] == "NO-GO", f["reasons"]
    assert any(r.startswith("R > 0.98") for r in f["reasons"])
    replayed, live, interval = f["replayed"], f["live"], f["interval"]
    assert live["active_since"] is not None and live["firing_since"] is not None, live
    assert replayed["active_since"] is not None, (f["rules"][0], live, interval, f["window"])
    assert abs(replayed["active_since"] - live["active_since"]) <= interval + 1.0, (replayed, live)
    assert abs(replayed["firing_since"] - live["firing_since"]) <= interval + 1.0, (replayed, live)
    assert "High5xxErrorRate" in f["alertmanager"]


def test_prometheus_stopped_is_inconclusive(figures: dict) -> None:
    g = figures["gone"]
    assert g["verdict"] == "INCONCLUSIVE"
    assert any("unreachable" in r or "does not answer" in r for r in g["reasons"]), g["reasons"]


def test_the_stack_leaves_nothing_running(figures: dict, tmp_path: Path) -> None:
    import subprocess

    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "live/backend.py" not in out


@pytest.fixture(scope="module", params=["otel", "haproxy"])
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The healthy and failing phases again, the requests counted by a real exporter: the backend
    with the OpenTelemetry SDK and its Prometheus exporter, or HAProxy 2.6 in front of it."""
    from live.scenario import run_scenario

    return run_scenario(tmp_path_factory.mktemp(request.param), factor=15.0, exporter=request.param, gone=False)


def test_a_real_exporter_s_counts_match_the_log_and_the_verdicts_are_right(exported: dict) -> None:
    h, f = exported["healthy"], exported["failing"]
    assert h["verdict"] == "GO", (exported["exporter"], h["reasons"])
    (logged, logged_5xx), (requests, errors) = h["logged"], h["proof"]
    assert logged > 100
    assert abs(requests - logged) <= h["allowed"], (exported["exporter"], requests, logged, h["allowed"])
    assert abs(errors - logged_5xx) <= max(1.0, h["allowed"] * logged_5xx / logged)
    assert f["verdict"] == "NO-GO", f["reasons"]
    assert any(r.startswith("R > 0.98") for r in f["reasons"]), f["reasons"]
