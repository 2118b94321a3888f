"""Confidence bounds on a proportion (Clopper-Pearson, Wilson, Jeffreys), for real-valued counts.

Counts may be non-integer (Prometheus ``increase()`` extrapolates, and effective counts are
real): the beta quantiles and the Wilson formula are defined for real arguments.
"""
from __future__ import annotations

import math

from reliability.errors import NoDataError

METHODS = ("clopper-pearson", "wilson", "jeffreys")

def _check_counts(successes: float, n: float) -> tuple[float, float]:
    """Validate a (successes, n) pair; missing data is NoDataError so it can never pass."""
    successes, n = float(successes), float(n)
    if math.isnan(successes) or math.isnan(n):
        raise NoDataError(
            f"successes={successes} of n={n} contains NaN: the window has no samples; "
            "query a window with traffic"
        )
    if math.isinf(successes) or math.isinf(n) or successes < 0 or n < 0:
        raise ValueError(
            f"counts must be finite and non-negative, got successes={successes}, n={n}"
        )
    if n == 0:
        raise NoDataError(
            "n=0 requests: no traffic in the window, so R cannot be bounded (it is never 1.0)"
        )
    if successes > n * (1 + 1e-12):
        raise ValueError(f"successes={successes} exceeds n={n}; check the query's label matchers")
    # Below a billionth of a request a count is floating-point noise from rate arithmetic;
    # snapping it keeps the beta quantiles away from subnormal shape parameters.
    if successes < 1e-9:
        successes = 0.0
    if n - successes < 1e-9:
        successes = n
    return successes, n


def _check_confidence(confidence: float, *, one_sided: bool) -> float:
    low = 0.5 if one_sided else 0.0
    if not low < confidence < 1:
        raise ValueError(f"confidence must lie in ({low}, 1), got {confidence!r}")
    return float(confidence)


def _check_method(method: str) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    return method


def _check_threshold(threshold: float) -> float:
    if not 0 < threshold < 1:
        raise ValueError(f"threshold must lie in (0, 1), got {threshold!r}")
    return float(threshold)


def interval(
    successes: float, n: float, *, confidence: float = 0.95, method: str = "clopper-pearson"
) -> tuple[float, float]:
    """Two-sided confidence interval for a proportion, so R is reported with its uncertainty.

    Parameters
    ----------
    successes, n
        Successes and trials; real (effective) counts are accepted.
    confidence
        Two-sided coverage, e.g. 0.95 for a 95 % interval.
    method
        ``"clopper-pearson"`` (exact, conservative: beta quantiles ``Beta(x, n-x+1)`` and
        ``Beta(x+1, n-x)``), ``"wilson"`` (score interval, closer to nominal coverage) or
        ``"jeffreys"`` (equal-tailed ``Beta(x+1/2, n-x+1/2)`` quantiles, with the lower end set
        to 0 when x = 0 and the upper end to 1 when x = n, as Brown, Cai and DasGupta 2001
        recommend, and widened to contain x/n for tiny fractional counts).

    Returns
    -------
    tuple of float
        ``(lower, upper)`` with ``0 <= lower <= upper <= 1``.

    Raises
    ------
    NoDataError
        ``n == 0`` or a count is NaN.
    """
    x, n = _check_counts(successes, n)
    alpha = 1 - _check_confidence(confidence, one_sided=False)
    method = _check_method(method)
    if method == "wilson":
        from scipy.stats import norm

        z = float(norm.ppf(1 - alpha / 2))
        centre = (x + z * z / 2) / (n + z * z)
        half = z / (n + z * z) * math.sqrt(x * (n - x) / n + z * z / 4)
        return max(0.0, centre - half), min(1.0, centre + half)

    # The beta quantile straight from scipy.special: the same numbers as scipy.stats.beta.ppf
    # without its argument checking, which dominated the sample-size searches.
    from scipy.special import betaincinv

    if method == "clopper-pearson":
        lower = 0.0 if x == 0 else float(betaincinv(x, n - x + 1, alpha / 2))
        upper = 1.0 if x == n else float(betaincinv(x + 1, n - x, 1 - alpha / 2))
    else:
        lower = 0.0 if x == 0 else float(betaincinv(x + 0.5, n - x + 0.5, alpha / 2))
        upper = 1.0 if x == n else float(betaincinv(x + 0.5, n - x + 0.5, 1 - alpha / 2))
        # With a fractional (effective) count below about 0.03 the half-unit prior pulls the
        # posterior quantile past x/n; an interval excluding the estimate would let a single
        # scaled-down error "prove" a failure, so the interval is widened to contain it.
        lower, upper = min(lower, x / n), max(upper, x / n)
    return lower, upper


def lower_bound(
    successes: float, n: float, *, confidence: float = 0.95, method: str = "clopper-pearson"
) -> float:
    """One-sided lower confidence bound on a proportion: the figure that must beat the SLO.

    It is the lower end of the two-sided interval at confidence ``2 * confidence - 1``.
    ``n == 0`` raises :class:`~reliability.errors.NoDataError`; no traffic is never R = 1.
    """
    confidence = _check_confidence(confidence, one_sided=True)
    return interval(successes, n, confidence=2 * confidence - 1, method=method)[0]


def upper_bound(
    successes: float, n: float, *, confidence: float = 0.95, method: str = "clopper-pearson"
) -> float:
    """One-sided upper confidence bound on a proportion: below the SLO it proves a failure."""
    confidence = _check_confidence(confidence, one_sided=True)
    return interval(successes, n, confidence=2 * confidence - 1, method=method)[1]
