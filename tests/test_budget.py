"""Error budget and multi-window burn rates; missing windows must never read as zero burn."""
from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reliability.analysis.budget import (
    BURN_RATE_ALERTS,
    BURN_RATE_WINDOWS,
    burn_rate,
    burn_rates,
    error_budget,
)
from reliability.errors import NoDataError


def test_error_budget_half_spent():
    budget = error_budget(10_000, 100, slo=0.98)
    assert budget.allowed_errors == pytest.approx(200)
    assert budget.consumed == pytest.approx(0.5)
    assert budget.remaining == pytest.approx(0.5)
    assert not budget.overspent


def test_error_budget_overspent_is_negative_not_clipped():
    budget = error_budget(10_000, 300)
    assert budget.remaining == pytest.approx(-0.5)
    assert budget.overspent
    assert budget.summary.loc[0, "overspent"]


def test_error_budget_without_traffic_is_no_data():
    with pytest.raises(NoDataError):
        error_budget(0, 0)
    with pytest.raises(NoDataError):
        error_budget(float("nan"), 1)


@pytest.mark.parametrize(
    ("requests", "errors", "slo"), [(10, 11, 0.98), (10, -1, 0.98), (10, 1, 1.0)]
)
def test_error_budget_rejects_impossible_inputs(requests, errors, slo):
    with pytest.raises(ValueError):
        error_budget(requests, errors, slo=slo)


def test_burn_rate_is_ratio_over_allowance_and_keeps_nan():
    assert burn_rate(0.02) == pytest.approx(1.0)
    assert burn_rate(0.288) == pytest.approx(14.4)
    assert burn_rate(0.01, slo=0.999) == pytest.approx(10)
    assert math.isnan(burn_rate(float("nan")))
    with pytest.raises(ValueError):
        burn_rate(1.5)


@given(st.floats(min_value=0, max_value=1), st.floats(min_value=0.5, max_value=0.9999))
def test_burn_rate_times_allowance_gives_back_the_ratio(ratio, slo):
    assert burn_rate(ratio, slo=slo) * (1 - slo) == pytest.approx(ratio)


def test_alert_pairs_are_the_sre_workbook_ones():
    pairs = {(a.long_window, a.short_window): (a.severity, a.threshold) for a in BURN_RATE_ALERTS}
    assert pairs == {
        ("1h", "5m"): ("page", 14.4),
        ("6h", "30m"): ("page", 6.0),
        ("1d", "2h"): ("ticket", 3.0),
        ("3d", "6h"): ("ticket", 1.0),
    }
    assert {w for a in BURN_RATE_ALERTS for w in (a.long_window, a.short_window)} == set(
        BURN_RATE_WINDOWS
    )


def test_burn_rates_flags_pairs_where_both_windows_burn():
    ratios = {"5m": 0.5, "30m": 0.0, "1h": 0.3, "2h": 0.1, "6h": 0.01, "1d": 0.01, "3d": 0.03}
    table = burn_rates(ratios).set_index("long_window")
    assert table.loc["1h", "status"] == "burning"  # 15x and 25x > 14.4
    assert table.loc["1h", "long_burn_rate"] == pytest.approx(15)
    assert table.loc["6h", "status"] == "ok"  # the short window has recovered
    assert table.loc["1d", "status"] == "ok"  # short 5x but long only 0.5x
    assert table.loc["3d", "status"] == "ok"  # long 1.5x but short 0.5x
    assert list(table["burning"]) == [True, False, False, False]


def test_burn_rates_at_exactly_the_threshold_is_not_burning():
    ratios = dict.fromkeys(BURN_RATE_WINDOWS, 0.288)  # 14.4x everywhere
    table = burn_rates(ratios).set_index("long_window")
    assert table.loc["1h", "status"] == "ok"
    assert table.loc["6h", "status"] == "burning"
    ratios["5m"] = ratios["1h"] = 0.29
    assert burn_rates(ratios).set_index("long_window").loc["1h", "status"] == "burning"


def test_burn_rates_reports_missing_windows_as_no_data_never_zero():
    table = burn_rates({"5m": 0.5, "1h": None, "2h": float("nan")}).set_index("long_window")
    assert (table["status"] == "no data").all()
    assert table["burning"].isna().all()
    assert math.isnan(table.loc["1h", "long_burn_rate"])
    assert table.loc["1h", "short_burn_rate"] == pytest.approx(25)


def test_burn_rates_rejects_unknown_window_names():
    with pytest.raises(ValueError, match="1hr"):
        burn_rates({"1hr": 0.1})
