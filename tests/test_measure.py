"""R measured in PromQL against the generator's ground truth.

Tolerance: ``increase()`` over a window whose both ends fall on scrape times is exact
for series that exist across the whole window. A series born inside the window (a
deploy, a restart) loses its first sample's value, which ``increase()`` only partly
extrapolates back towards zero; a series ending inside it is extrapolated forward by
up to half a scrape interval. So counts may differ from the truth by about one scrape
interval's worth of traffic per series boundary: 1 % relative, or 5 requests absolute for
tiny counts.
"""
from __future__ import annotations

import pandas as pd
import pytest
from conftest import ts

from reliability.analysis import measure
from reliability.errors import NoDataError
from reliability.source.promql import matcher

pytestmark = pytest.mark.prometheus


def close(got: float, want: float) -> bool:
    return abs(got - want) <= max(0.01 * want, 5)


@pytest.mark.parametrize("window", ["stable_week", "bad_deploy", "canary", "post_promote"])
def test_per_version_counts_match_ground_truth(client, truth, window: str) -> None:
    w = truth["windows"][window]
    frame = measure.totals(client, ts(w["start"]), ts(w["end"]), by=["version"]).set_index("version")
    assert set(frame.index) == set(w["by_version"])
    for version, want in w["by_version"].items():
        got = frame.loc[version]
        assert close(got["requests"], want["requests"]), (version, got["requests"], want["requests"])
        assert close(got["errors"], want["errors_5xx"]), (version, got["errors"], want["errors_5xx"])


def test_total_r_matches_ground_truth_over_full_history(client, truth) -> None:
    w = truth["windows"]["full"]
    frame = measure.totals(client, ts(w["start"]), ts(w["end"]))
    n, e = frame["requests"].sum(), frame["errors"].sum()
    want_r = 1 - w["total"]["errors_5xx"] / w["total"]["requests"]
    assert abs((1 - e / n) - want_r) < 1e-3


def test_bad_deploy_window_is_found(client, truth) -> None:
    inc = next(i for i in truth["incidents"] if i["version"] == "v1.9.0")
    w = truth["windows"]["bad_deploy"]
    series = measure.ratio_series(client, ts(w["start"]), ts(w["end"]),
                                  selector=[matcher("version", "v1.9.0")])
    profile = measure.ratio_profile(series)
    assert profile.worst_ratio > 0.04
    assert len(profile.periods) >= 1
    first = profile.periods.iloc[0]
    # the ratio crosses 2 % within 10 minutes of the incident's start, and not before it
    assert ts(inc["start"]) - pd.Timedelta(minutes=1) <= first["start"] <= ts(inc["start"]) + pd.Timedelta(minutes=10)


def test_healthy_canary_never_sustains_above_two_percent(client, truth) -> None:
    w = truth["windows"]["canary"]
    series = measure.ratio_series(client, ts(w["start"]), ts(w["end"]), selector=[matcher("version", "v1.9.1")])
    profile = measure.ratio_profile(series)
    assert profile.fraction_above < 0.02
    assert profile.worst_r < 1.0  # it did have errors: the series is real, not empty-as-perfect


def test_no_traffic_is_no_data_not_r_equals_one(client, truth) -> None:
    w = truth["windows"]["full"]
    with pytest.raises(NoDataError, match="no requests"):
        measure.totals(client, ts(w["start"]), ts(w["end"]), selector=[matcher("version", "v0.0.0-never")])
    series = measure.ratio_series(client, ts(w["start"]), ts(w["end"]), step=3600,
                                  selector=[matcher("version", "v0.0.0-never")])
    assert series.empty  # absent, not 0 % and not NaN


def test_query_count_does_not_grow_with_series(client, truth) -> None:
    """Aggregation happens in PromQL: one totals call is two HTTP requests, whatever the series count."""
    w = truth["windows"]["full"]
    before = client.http_requests
    measure.totals(client, ts(w["start"]), ts(w["end"]))
    assert client.http_requests - before == 2
    before = client.http_requests
    measure.totals(client, ts(w["start"]), ts(w["end"]), by=["version", "route"])
    assert client.http_requests - before == 2


def test_ratio_profile_periods_from_a_frame() -> None:
    t = pd.date_range("2025-10-24T10:00:00Z", periods=10, freq="60s")
    values = [0.0, 0.01, 0.05, 0.08, 0.03, 0.01, 0.0, 0.03, 0.0, 0.0]
    p = measure.ratio_profile(pd.DataFrame({"time": t, "value": values}), step=60)
    assert list(p.periods["start"]) == [t[2], t[7]]
    assert p.periods["duration"].iloc[0] == pd.Timedelta(minutes=3)
    assert p.worst_ratio == 0.08 and p.fraction_above == pytest.approx(0.4)
