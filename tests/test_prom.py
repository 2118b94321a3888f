"""The Prometheus adapter against the real local server: escaping, chunking, errors, faults."""
from __future__ import annotations

import itertools
import time
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
from faultproxy import FaultProxy

from reliability.errors import ConfigurationError, PrometheusQueryError, PrometheusUnavailable
from reliability.source.frames import tidy
from reliability.source.parsed import longest_range
from reliability.source.prom import MAX_POINTS, PrometheusClient
from reliability.source.promql import escape_label_value, parse_selector, selector, split_and

END = datetime(2025, 10, 29, tzinfo=timezone.utc)
prometheus = pytest.mark.prometheus


def fast_client(url: str, **kw: object) -> PrometheusClient:
    """No real sleeping between retries, so fault tests stay quick and bounded."""
    return PrometheusClient(url, sleep=lambda s: None, **kw)


# ------------------------------------------------------------------ pure
def test_escape_keeps_hostile_value_inside_the_string() -> None:
    hostile = 'x"} or vector(1) #'
    assert selector("up", job=hostile) == 'up{job="x\\"} or vector(1) #"}'
    assert escape_label_value("a\\b\nc") == "a\\\\b\\nc"


def test_user_selector_rejects_promql_injection() -> None:
    with pytest.raises(ConfigurationError, match="not a list of label matchers"):
        parse_selector('route="/a"} or vector(1) #')
    assert parse_selector('{route="/api/queue/list", status=~"5.."}') == ['route="/api/queue/list"', 'status=~"5.."']


def test_naive_times_are_rejected() -> None:
    c = PrometheusClient("http://127.0.0.1:1")
    with pytest.raises(ConfigurationError, match="no time zone"):
        c.query("up", datetime(2025, 10, 28))


def test_url_with_credentials_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="PROMETHEUS_USERNAME"):
        PrometheusClient("http://user:secret@127.0.0.1:9090")


def test_from_env_without_url_says_what_to_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from reliability.source import from_env

    monkeypatch.delenv("PROMETHEUS_URL", raising=False)
    monkeypatch.delenv("RELIABILITY_SNAPSHOT", raising=False)
    with pytest.raises(ConfigurationError, match="PROMETHEUS_URL"):
        from_env()


def test_tidy_shapes_vector_matrix_and_scalar() -> None:
    vec = tidy([{"metric": {"b": "2", "a": "1"}, "value": [1761696000, "3.5"]}])
    assert list(vec.columns) == ["a", "b", "time", "value"] and vec["value"].iloc[0] == 3.5
    mat = tidy([{"metric": {}, "values": [[1, "1"], [2, "NaN"]]}])
    assert len(mat) == 2 and mat["time"].dt.tz is not None
    assert tidy([1761696000, "2"])["value"].iloc[0] == 2.0
    assert tidy([]).empty


# ------------------------------------------------------------------ real server
@prometheus
def test_escaped_hostile_value_matches_nothing(client: PrometheusClient) -> None:
    hostile = 'x"} or vector(1) #'
    frame = client.query(f"sum({selector('http_requests_total', version=hostile)})", END)
    assert frame.empty  # unescaped, `or vector(1)` would have returned a sample
    # the same query shape with a real version does return data, so the test could fail
    assert not client.query(f"sum({selector('http_requests_total', version='v1.9.1')})", END).empty


@prometheus
def test_range_query_is_chunked_without_duplicates(client: PrometheusClient) -> None:
    start = END - timedelta(days=5)
    step = 30.0
    expected_points = int((END - start).total_seconds() // step) + 1
    assert expected_points > MAX_POINTS  # one request could not return this
    before = client.http_requests
    frame = client.query_range("sum(up)", start, END, step)
    assert client.http_requests - before >= 2
    assert frame["time"].is_unique
    assert len(frame) <= expected_points
    gaps = frame["time"].diff().dropna()
    assert (gaps >= pd.Timedelta(seconds=step)).all()
    # every step that has a sample is on the grid anchored at start
    offsets = (frame["time"] - start).dt.total_seconds() % step
    assert (offsets == 0).all()


@prometheus
def test_unchunked_request_really_exceeds_the_limit(prometheus_url: str) -> None:
    """The server itself refuses >11,000 points; the adapter turns that into a clear error."""
    c = fast_client(prometheus_url)
    with pytest.raises(PrometheusQueryError) as err:
        c._call(lambda: c._range({"query": "up", "start": str(END.timestamp() - 12_000 * 30),
                                  "end": str(END.timestamp()), "step": "30"}), "up")
    assert err.value.error_type == "bad_data"
    assert "11,000" in str(err.value) and "larger step" in str(err.value)


@prometheus
def test_bad_query_is_a_query_error_with_a_hint(client: PrometheusClient) -> None:
    with pytest.raises(PrometheusQueryError) as err:
        client.query("sum(", END)
    assert err.value.error_type == "bad_data"
    assert "query: sum(" in str(err.value) and "what to do" in str(err.value)


@prometheus
def test_a_4xx_is_not_retried(prometheus_url: str) -> None:
    c = PrometheusClient(prometheus_url)
    with pytest.raises(PrometheusQueryError):
        c.query("sum(", END)
    assert c.http_requests == 1  # retrying a bad query cannot help; a 5xx or timeout is retried


@prometheus
def test_queries_are_logged_for_provenance(prometheus_url: str) -> None:
    c = PrometheusClient(prometheus_url)
    c.query("sum(up)", END)
    c.query_range("sum(up)", END - timedelta(hours=1), END, 60)
    log = c.log
    assert [r.kind for r in log] == ["instant", "range"]
    assert log[0].time == END and log[1].step == 60.0 and log[1].http_requests == 1


# ------------------------------------------------------------------ faults
@prometheus
def test_persistent_503_retries_then_fails_clearly(prometheus_url: str) -> None:
    with FaultProxy(prometheus_url, "503") as proxy:
        c = fast_client(proxy.url, retries=3)
        with pytest.raises(PrometheusUnavailable, match=r"did not answer after 4 attempts.*503"):
            c.query("up", END)
        assert proxy.requests == 4


@prometheus
def test_transient_503_succeeds_after_retry(prometheus_url: str) -> None:
    with FaultProxy(prometheus_url, "transient", n=2) as proxy:
        frame = fast_client(proxy.url, retries=3).query("sum(up)", END)
        assert proxy.requests == 3 and not frame.empty


@prometheus
def test_hang_times_out_within_bound(prometheus_url: str) -> None:
    with FaultProxy(prometheus_url, "hang") as proxy:
        c = fast_client(proxy.url, timeout=0.5, retries=1)
        t0 = time.monotonic()
        with pytest.raises(PrometheusUnavailable, match="timed out"):
            c.query("up", END)
        assert time.monotonic() - t0 < 5


@prometheus
def test_dropped_connection_and_malformed_json_are_retried(prometheus_url: str) -> None:
    for mode, text in (("drop", "connection failed"), ("malformed", "malformed answer")):
        with FaultProxy(prometheus_url, mode) as proxy:
            with pytest.raises(PrometheusUnavailable, match=text):
                fast_client(proxy.url, retries=2).query("up", END)
            assert proxy.requests == 3


@prometheus
def test_slow_answer_within_timeout_succeeds(prometheus_url: str) -> None:
    with FaultProxy(prometheus_url, "slow", delay=0.3) as proxy:
        assert not fast_client(proxy.url, timeout=5).query("sum(up)", END).empty


@prometheus
def test_breaker_opens_after_repeated_failures_and_fails_fast(prometheus_url: str) -> None:
    with FaultProxy(prometheus_url, "503") as proxy:
        c = fast_client(proxy.url, retries=2)  # 3 attempts per call; the breaker opens at 5
        for _ in range(2):
            with pytest.raises(PrometheusUnavailable):
                c.query("up", END)
        sent = proxy.requests
        t0 = time.monotonic()
        with pytest.raises(PrometheusUnavailable, match="circuit breaker is open"):
            c.query("up", END)
        assert proxy.requests == sent  # nothing was sent
        assert time.monotonic() - t0 < 0.5


@prometheus
def test_open_breaker_lets_one_probe_through_after_its_timeout(prometheus_url: str) -> None:
    from reliability.analysis.breakers import CircuitBreaker, State

    now = [1000.0]
    breaker = CircuitBreaker(failure_threshold=5, timeout=30.0, clock=lambda: now[0])
    with FaultProxy(prometheus_url, "503") as proxy:
        c = fast_client(proxy.url, retries=4, breaker=breaker)  # 5 failed attempts open it
        with pytest.raises(PrometheusUnavailable):
            c.query("up", END)
        assert breaker.state is State.OPEN
        now[0] += 29.0
        with pytest.raises(PrometheusUnavailable, match="circuit breaker is open"):
            c.query("up", END)
        proxy.mode = "ok"  # the server recovers
        sent = proxy.requests
        now[0] += 1.0  # at next_attempt: the next call is the probe
        assert not c.query("sum(up)", END).empty
        assert proxy.requests == sent + 1 and breaker.state is State.CLOSED


@prometheus
def test_bearer_token_comes_from_the_environment(prometheus_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    token = "tok-" + str(time.time_ns())
    with FaultProxy(prometheus_url, "auth", token=token) as proxy:
        monkeypatch.delenv("PROMETHEUS_BEARER_TOKEN", raising=False)
        with pytest.raises(PrometheusQueryError, match="PROMETHEUS_BEARER_TOKEN"):
            fast_client(proxy.url).query("up", END)
        monkeypatch.setenv("PROMETHEUS_BEARER_TOKEN", token)
        c = fast_client(proxy.url)
        assert not c.query("sum(up)", END).empty
        assert token not in repr(c)


# --------------------------------------------------------------------------- PromQL text
@pytest.mark.parametrize("expr, parts", [
    ("a > 1 and b > 2", ("a > 1", "b > 2")),
    ('x{l="p and q"} AND y', ('x{l="p and q"}', "y")),     # strings and case
    ("brand_total and sandy", ("brand_total", "sandy")),    # not inside identifiers
    ("(a and b)", None),                                     # not at the top level
    ("a and b or c", None),                                  # `or` binds looser: (a and b) or c
    ("a and b unless c", None),
    ("a and on(x) b", None),                                 # custom matching
    ("a and b and c", None),
])
def test_split_and_only_splits_a_single_top_level_and(expr: str, parts: tuple[str, str] | None) -> None:
    assert split_and(expr) == parts


def test_longest_range_reads_ranges_and_subqueries_but_not_strings() -> None:
    assert longest_range("rate(x[5m]) and rate(y[3d])") == 3 * 86400
    assert longest_range("max_over_time(rate(x[5m])[1d:1m])") == 86400
    assert longest_range('x{a="[9d]"}') == 0


BURN = ('(sum{by}(rate(http_requests_total{{status=~"5.."}}[{w}])) or vector(0)) / '
        "sum{by}(rate(http_requests_total[{w}])) > {t}")


@pytest.mark.prometheus
@pytest.mark.parametrize("long_left", [True, False])
@pytest.mark.parametrize("by, thresholds", [("", (0.004, 0.002)), (" by (version)", (0.004, 0.003)),
                                             ("", (0.03, 0.002))])  # sparse: the incident only
def test_query_alert_returns_exactly_what_the_full_and_query_returns(
        client: PrometheusClient, long_left: bool, by: str, thresholds: tuple[float, float]) -> None:
    from reliability.analysis.alerts.replay import query_alert

    short = BURN.format(by=by, w="30m", t=thresholds[0])
    long = BURN.format(by=by, w="3d", t=thresholds[1])
    expr = f"({long}) and ({short})" if long_left else f"({short}) and ({long})"
    start = datetime(2025, 10, 23, tzinfo=timezone.utc)
    end = datetime(2025, 10, 25, 12, tzinfo=timezone.utc)
    full = client.query_range(expr, start, end, step=30)
    n = len(client.log)
    got = query_alert(client, expr, start, end, 30)
    assert len(full), "the thresholds must let the expression return samples"
    keys = [c for c in full.columns if c != "value"]
    pd.testing.assert_frame_equal(got[full.columns].sort_values(keys).reset_index(drop=True),
                                  full.sort_values(keys).reset_index(drop=True))
    split_queries = [r.query for r in client.log[n:]]
    assert expr not in split_queries, "the split path must have been taken, not the fallback"


def test_tidy_times_are_whole_milliseconds_on_the_evaluation_grid() -> None:
    """A float second (…945.705) must not land nanoseconds off the grid the backtest evaluates on."""
    import pandas as pd

    from reliability.analysis.alerts import evaluation_times

    start = pd.Timestamp("2026-12-02T07:52:25.705Z")
    grid = evaluation_times(start.to_pydatetime(), (start + pd.Timedelta(seconds=8)).to_pydatetime(), 2.0)
    answer = [[t.value / 1e9, "1"] for t in grid]
    assert list(tidy([{"metric": {}, "values": answer}])["time"]) == list(grid)


def test_the_last_point_of_a_grid_survives_millisecond_rounding() -> None:
    """start, step and end rounded apart put start + step 1 ms past the end: the server dropped the
    window's last point (a live 30-day panel kept only its first point, before the series had two)."""
    from reliability.source.session import num, range_chunks

    start, step = 1761469200.0006, 47.0006   # each rounds up by 0.4 ms
    end = start + step                          # rounds down by 0.2 ms...
    old_last = float(num(start)) + float(num(step))
    assert old_last > float(num(end))           # ...so the old parameters lost the point at the end
    [(first, last, sent_step)] = range_chunks(start, end, step, 10_000)
    assert float(last) == pytest.approx(float(first) + float(sent_step), abs=1e-6) and abs(float(last) - end) < 1e-3
    many = range_chunks(start, start + 25_000 * step, step, 10_000)
    assert [round((float(b) - float(a)) / float(s)) + 1 for a, b, s in many] == [10_000, 10_000, 5_001]
    assert all(abs(float(b1) + float(s) - float(a2)) < 1e-6 for (_, b1, s), (a2, _, _) in itertools.pairwise(many))


@pytest.mark.prometheus
def test_a_window_of_one_step_gets_both_points(client: PrometheusClient) -> None:
    start = datetime(2025, 10, 26, 9, 0, 0, 600, tzinfo=timezone.utc)
    step = 47.0006
    frame = client.query_range("sum(up)", start, start + timedelta(seconds=step), step)
    assert len(frame) == 2
