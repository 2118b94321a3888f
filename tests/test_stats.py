"""Confidence bounds, dispersion, evidence thresholds and the canary comparison, against oracles."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reliability.analysis.compare import compare
from reliability.analysis.stats import (
    METHODS,
    bound_r,
    bound_r_frame,
    dispersion,
    interval,
    lower_bound,
    minimum_requests,
    required_requests,
    upper_bound,
)
from reliability.errors import InsufficientDataWarning, NoDataError, StatisticalWarning

# R's binom::binom.confint(x, n, conf.level = 0.95, methods = c("exact", "wilson")).
PUBLISHED = [
    (190, 200, "clopper-pearson", 0.9099725, 0.9757658),
    (190, 200, "wilson", 0.9104219, 0.9726174),
    (29, 30, "clopper-pearson", 0.8278305, 0.9991564),
    (29, 30, "wilson", 0.8332960, 0.9940914),
]


@pytest.mark.parametrize(("x", "n", "method", "low", "high"), PUBLISHED)
def test_interval_matches_r_binom_confint(x, n, method, low, high):
    lower, upper = interval(x, n, confidence=0.95, method=method)
    assert lower == pytest.approx(low, abs=1e-6)
    assert upper == pytest.approx(high, abs=1e-6)


@pytest.mark.parametrize(("x", "n"), [(190, 200), (29, 30), (3, 7), (12.5, 40.25), (0.4, 3.0)])
def test_jeffreys_is_the_equal_tailed_beta_posterior_interval(x, n):
    from scipy.stats import beta

    lower, upper = interval(x, n, confidence=0.9, method="jeffreys")
    assert lower == pytest.approx(beta.ppf(0.05, x + 0.5, n - x + 0.5), rel=1e-12)
    assert upper == pytest.approx(beta.ppf(0.95, x + 0.5, n - x + 0.5), rel=1e-12)


def test_jeffreys_one_of_one_matches_the_closed_form_beta_cdf():
    # The posterior is Beta(3/2, 1/2), whose CDF is (2/pi)(asin(sqrt p) - sqrt(p(1-p))):
    # solve CDF(L) = 0.025 by bisection, independently of scipy's beta quantiles.
    def cdf(p: float) -> float:
        return 2 / math.pi * (math.asin(math.sqrt(p)) - math.sqrt(p * (1 - p)))

    lo, hi = 0.0, 1.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < 0.025 else (lo, mid)
    lower, upper = interval(1, 1, confidence=0.95, method="jeffreys")
    assert lower == pytest.approx(lo, abs=1e-9)
    assert cdf(lower) == pytest.approx(0.025, abs=1e-9)
    assert upper == 1.0


def test_jeffreys_matches_numerical_integration_of_the_posterior():
    from scipy.integrate import quad
    from scipy.optimize import brentq

    x, n = 190, 200
    # Scaled by the density at the mode so quad's absolute tolerance is meaningful.
    mode = (x - 0.5) / (n - 1)

    def density(p: float) -> float:
        return math.exp(
            (x - 0.5) * math.log(p / mode) + (n - x - 0.5) * math.log((1 - p) / (1 - mode))
        )

    def integral(q: float) -> float:
        return quad(density, 0, q, points=[min(q, mode)], limit=200, epsabs=0, epsrel=1e-13)[0]

    total = integral(1.0)

    def cdf(q: float) -> float:
        return integral(q) / total

    expected = brentq(lambda q: cdf(q) - 0.025, 0.8, 0.99, xtol=1e-12)
    assert interval(x, n, method="jeffreys")[0] == pytest.approx(expected, abs=1e-7)


def test_jeffreys_contains_the_estimate_for_tiny_fractional_counts():
    # An error scaled down by a large phi must not "prove" R below its observed value.
    x = 1 / 128
    lower, _upper = interval(x, 1, confidence=0.75, method="jeffreys")
    assert lower == x
    low, high = interval(1 - x, 1, confidence=0.75, method="jeffreys")
    assert high == 1 - x and low < high


@pytest.mark.parametrize("method", METHODS)
def test_interval_ends_at_zero_and_one_for_extreme_counts(method):
    assert interval(0, 50, method=method)[0] == 0.0
    assert interval(50, 50, method=method)[1] == 1.0
    assert lower_bound(50, 50, method=method) < 1.0


def test_clopper_pearson_lower_bound_without_failures_has_closed_form():
    for n in (1, 10, 149, 10_000):
        assert lower_bound(n, n, confidence=0.95) == pytest.approx(0.05 ** (1 / n), rel=1e-12)


def test_one_sided_bounds_are_the_ends_of_the_two_sided_interval_at_double_alpha():
    for method in METHODS:
        assert lower_bound(97, 100, confidence=0.95, method=method) == interval(
            97, 100, confidence=0.90, method=method
        )[0]
        assert upper_bound(97, 100, confidence=0.975, method=method) == interval(
            97, 100, confidence=0.95, method=method
        )[1]


@pytest.mark.parametrize("method", METHODS)
def test_non_integer_counts_fall_between_their_integer_neighbours(method):
    low, mid, high = (lower_bound(x, 200, method=method) for x in (189, 189.5, 190))
    assert low < mid < high


@pytest.mark.parametrize(("successes", "n"), [(0, 0), (float("nan"), 10), (5, float("nan"))])
def test_no_traffic_or_nan_is_no_data_not_a_perfect_score(successes, n):
    with pytest.raises(NoDataError):
        lower_bound(successes, n)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"successes": 11, "n": 10}, "exceeds n"),
        ({"successes": -1, "n": 10}, "non-negative"),
        ({"successes": 5, "n": 10, "method": "wald"}, "unknown method"),
        ({"successes": 5, "n": 10, "confidence": 1.0}, "confidence"),
        ({"successes": 5, "n": 10, "confidence": 0.4}, "confidence"),
    ],
)
def test_invalid_arguments_are_rejected_with_a_reason(kwargs, match):
    with pytest.raises(ValueError, match=match):
        lower_bound(**kwargs)


@settings(max_examples=300, deadline=None)
@given(
    n=st.floats(min_value=0.5, max_value=1e7),
    share=st.floats(min_value=0, max_value=1),
    confidence=st.floats(min_value=0.8, max_value=0.999),
    method=st.sampled_from(METHODS),
)
def test_bounds_bracket_the_point_estimate(n, share, confidence, method):
    x = share * n
    lower = lower_bound(x, n, confidence=confidence, method=method)
    upper = upper_bound(x, n, confidence=confidence, method=method)
    assert 0 <= lower <= x / n + 1e-12
    assert x / n - 1e-12 <= upper <= 1


@settings(max_examples=100, deadline=None)
@given(
    errors_per_100=st.integers(min_value=0, max_value=10),
    scale=st.integers(min_value=1, max_value=500),
    method=st.sampled_from(METHODS),
)
def test_lower_bound_grows_with_traffic_at_a_fixed_error_ratio(errors_per_100, scale, method):
    n = 100 * scale
    errors = errors_per_100 * scale
    now = lower_bound(n - errors, n, method=method)
    doubled = lower_bound(2 * (n - errors), 2 * n, method=method)
    assert doubled > now


@pytest.mark.parametrize(("errors", "expected"), [(0, 149), (1, 236), (2, 313), (3, 386)])
def test_minimum_requests_matches_the_published_table(errors, expected):
    assert minimum_requests(errors) == expected
    assert lower_bound(expected - errors, expected) > 0.98
    assert lower_bound(expected - 1 - errors, expected - 1) <= 0.98


def test_minimum_requests_other_methods_and_options_are_minimal():
    for method in METHODS:
        for errors in (0, 4, 2.5):
            n = minimum_requests(errors, threshold=0.99, confidence=0.9, method=method)
            assert lower_bound(n - errors, n, confidence=0.9, method=method) > 0.99
            assert lower_bound(n - 1 - errors, n - 1, confidence=0.9, method=method) <= 0.99


def test_required_requests_extrapolates_the_observed_ratio():
    assert required_requests(0.0) == minimum_requests(0)
    n = required_requests(0.01)
    assert lower_bound(0.99 * n, n) > 0.98 >= lower_bound(0.99 * (n - 1), n - 1)
    assert required_requests(0.005) < n < required_requests(0.015)
    # phi = 10 means each request is worth a tenth of one: about ten times as many needed.
    assert required_requests(0.01, phi=10) == pytest.approx(10 * n, rel=0.01)


@pytest.mark.parametrize("rate", [0.02, 0.05, 1.0])
def test_required_requests_is_none_when_the_ratio_itself_fails(rate):
    assert required_requests(rate) is None


def test_dispersion_of_a_hand_computed_example():
    # p = 10/200; chi2 = 2 * 5**2 / (100 * 0.05 * 0.95) over 1 degree of freedom.
    buckets = pd.DataFrame({"requests": [100, 100, 0], "errors": [0, 10, 0]})
    assert dispersion(buckets) == pytest.approx(2 * 25 / 4.75)


def test_dispersion_is_near_one_for_independent_requests_and_large_for_incidents():
    rng = np.random.default_rng(20251029)
    requests = rng.integers(500, 1500, size=288)
    calm = pd.DataFrame({"requests": requests, "errors": rng.binomial(requests, 0.01)})
    assert 1.0 <= dispersion(calm) < 1.3
    rate = np.where(np.arange(288) % 48 < 3, 0.3, 0.005)  # a short incident every 4 hours
    bursty = pd.DataFrame({"requests": requests, "errors": rng.binomial(requests, rate)})
    assert dispersion(bursty) > 50


def test_dispersion_is_floored_at_one_and_one_without_errors():
    even = pd.DataFrame({"requests": [1000] * 4, "errors": [10] * 4})
    assert dispersion(even) == 1.0
    assert dispersion(pd.DataFrame({"requests": [10, 20], "errors": [0, 0]})) == 1.0


def test_dispersion_with_one_bucket_warns_and_assumes_independence():
    with pytest.warns(StatisticalWarning, match="1 non-empty bucket"):
        assert dispersion(pd.DataFrame({"requests": [100, 0], "errors": [3, 0]})) == 1.0


def test_dispersion_rejects_bad_frames():
    with pytest.raises(ValueError, match="errors"):
        dispersion(pd.DataFrame({"requests": [1, 2]}))
    with pytest.raises(ValueError, match=r"errors=5.0 with requests=2.0"):
        dispersion(pd.DataFrame({"requests": [2, 9], "errors": [5, 1]}))


def test_bound_r_published_example_passes_without_dispersion():
    bound = bound_r(10_000, 150)
    assert bound.r == pytest.approx(0.985)
    assert bound.lower == pytest.approx(0.98284, abs=5e-6)
    assert bound.lower_adjusted == bound.lower
    assert bound.sufficient and bound.passes
    assert bound.min_requests <= 10_000


def test_bound_r_with_clustered_failures_fails_and_warns():
    with pytest.warns(InsufficientDataWarning, match="needed"):
        bound = bound_r(10_000, 150, phi=10)
    assert bound.lower == pytest.approx(0.98284, abs=5e-6)
    assert bound.lower_adjusted == pytest.approx(0.97700, abs=5e-6)
    assert not bound.sufficient and not bound.passes
    assert bound.min_requests > 10_000


def test_bound_r_at_the_evidence_bar():
    assert bound_r(149, 0).passes
    with pytest.warns(InsufficientDataWarning, match="149 requests are needed"):
        assert not bound_r(148, 0).passes


def test_bound_r_with_a_failing_ratio_proves_failure_without_an_insufficient_data_warning():
    bound = bound_r(10_000, 500)  # 5 % 5xx: no amount of traffic would help
    assert bound.min_requests is None
    assert not bound.sufficient and not bound.passes
    assert bound.upper_adjusted < bound.threshold


def test_bound_r_floors_phi_below_one():
    assert bound_r(10_000, 150, phi=0.5) == bound_r(10_000, 150, phi=1.0)


@pytest.mark.parametrize(("requests", "errors"), [(0, 0), (float("nan"), 1), (10, float("nan"))])
def test_bound_r_without_data_raises_no_data(requests, errors):
    with pytest.raises(NoDataError):
        bound_r(requests, errors)


def test_bound_r_rejects_more_errors_than_requests_naming_both():
    with pytest.raises(ValueError, match=r"errors=12\.0 exceeds requests=10\.0"):
        bound_r(10, 12)


@settings(max_examples=100, deadline=None)
@given(
    requests=st.floats(min_value=1, max_value=1e8),
    share=st.floats(min_value=0, max_value=0.05),
    phi=st.floats(min_value=0.1, max_value=100),
)
def test_adjusted_bound_never_exceeds_the_plain_bound(requests, share, phi):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsufficientDataWarning)
        bound = bound_r(requests, share * requests, phi=phi)
    assert bound.lower_adjusted <= bound.lower + 1e-12
    assert bound.lower_adjusted <= bound.r <= bound.upper_adjusted
    assert bound.passes == (bound.lower_adjusted > 0.98 and bound.sufficient)


def test_bound_summary_is_one_row_with_nullable_min_requests():
    summary = bound_r(10_000, 500).summary
    assert summary.shape[0] == 1
    assert summary["min_requests"].dtype == "Int64"
    assert summary["min_requests"].isna().all()
    assert summary.loc[0, "passes"] == False  # noqa: E712 - numpy bool


def test_bound_r_frame_sums_instances_and_warns_once_listing_groups():
    df = pd.DataFrame(
        {
            "version": ["v1", "v1", "v2", "v3"],
            "instance": ["a", "b", "a", "a"],
            "requests": [6_000, 4_000, 100, 0],
            "errors": [20, 10, 0, 0],
        }
    )
    with pytest.warns(InsufficientDataWarning) as record:
        table = bound_r_frame(df, by="version")
    assert len(record) == 1
    message = str(record[0].message)
    assert "version=v2 (100 < 149)" in message and "version=v3 (no traffic)" in message
    assert "v1" not in message
    assert list(table["version"]) == ["v1", "v2", "v3"]
    assert table.loc[0, "lower"] == bound_r(10_000, 30).lower
    assert list(table["passes"]) == [True, False, False]
    assert math.isnan(table.loc[2, "r"])


def test_bound_r_frame_per_group_phi_and_whole_frame():
    df = pd.DataFrame({"version": ["v1", "v2"], "requests": [10_000, 10_000], "errors": [150, 150]})
    with pytest.warns(InsufficientDataWarning, match="version=v2"):
        table = bound_r_frame(df, by=["version"], phi={"v1": 1.0, "v2": 10.0})
    assert list(table["passes"]) == [True, False]
    assert table.loc[1, "lower_adjusted"] == pytest.approx(0.97700, abs=5e-6)
    whole = bound_r_frame(df)
    assert whole.shape[0] == 1 and whole.loc[0, "requests"] == 20_000
    with pytest.raises(ValueError, match="no entry for group 'v2'"):
        bound_r_frame(df, by="version", phi={"v1": 1.0})
    with pytest.raises(ValueError, match="route"):
        bound_r_frame(df, by="route")


# Newcombe (1998) Table II, method 10, two-sided 95 % upper limits = one-sided 97.5 % bounds.
NEWCOMBE = [
    (56, 70, 48, 80, 0.3339),
    (9, 10, 3, 10, 0.8090),
    (6, 7, 2, 7, 0.8062),
    (5, 56, 0, 29, 0.1926),
    (0, 10, 0, 20, 0.2775),
    (0, 10, 0, 10, 0.2775),
]


@pytest.mark.parametrize(("x1", "n1", "x2", "n2", "expected"), NEWCOMBE)
def test_compare_upper_bound_matches_newcombe_1998(x1, n1, x2, n2, expected):
    result = compare(n1, x1, n2, x2, confidence=0.975)
    assert result.upper == pytest.approx(expected, abs=5e-5)
    assert result.difference == pytest.approx(x1 / n1 - x2 / n2)


def test_compare_non_inferior_canary_and_a_worse_one():
    good = compare(10_000, 12, 20_000, 20)
    assert good.non_inferior and good.upper < good.margin
    assert "non-inferior" in good.verdict_text
    bad = compare(1_000, 30, 20_000, 20)
    assert not bad.non_inferior
    assert "not shown" in bad.verdict_text
    assert bad.summary.loc[0, "verdict"] == bad.verdict_text


def test_compare_with_zero_errors_still_has_a_positive_upper_bound():
    result = compare(300, 0, 300, 0)
    assert result.difference == 0 and result.upper > 0


def test_compare_dispersion_widens_the_bound():
    plain = compare(10_000, 40, 10_000, 30)
    clustered = compare(10_000, 40, 10_000, 30, phi_candidate=20, phi_stable=20)
    assert clustered.upper > plain.upper
    assert compare(10_000, 40, 10_000, 30, phi_candidate=0.2).upper == plain.upper


def test_compare_without_traffic_raises_no_data():
    with pytest.raises(NoDataError):
        compare(0, 0, 1_000, 3)
