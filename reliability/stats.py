"""Confidence bounds on R, so a redeploy is allowed only when R > 0.98 is proven, not observed.

R is the share of requests that did not end in a 5xx: ``R = successes / n`` with
``successes = requests - errors``. A point estimate of 0.99 from 50 requests proves nothing, so
every decision uses a one-sided lower confidence bound. Failures cluster in incidents, which makes
requests dependent; :func:`dispersion` measures that and :func:`bound_r` shrinks the counts to
*effective* counts ``n / phi`` before bounding, so a bursty history cannot pass on volume alone.

All functions are pure: numbers or tidy frames in, numbers or frozen results out. Counts may be
non-integer (Prometheus ``increase()`` extrapolates, and effective counts are real): the beta
quantiles and the Wilson formula are defined for real arguments.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from reliability.errors import InsufficientDataWarning, NoDataError, StatisticalWarning

__all__ = [
    "METHODS",
    "RBound",
    "bound_r",
    "bound_r_frame",
    "dispersion",
    "interval",
    "lower_bound",
    "minimum_requests",
    "required_requests",
    "upper_bound",
]

METHODS = ("clopper-pearson", "wilson", "jeffreys")

# Beyond this many requests a search is abandoned: no window we could query holds that many,
# so "needs more than 10^15 requests" is reported like "impossible" (None).
_SEARCH_CAP = 10**15


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

    from scipy.stats import beta

    if method == "clopper-pearson":
        lower = 0.0 if x == 0 else float(beta.ppf(alpha / 2, x, n - x + 1))
        upper = 1.0 if x == n else float(beta.ppf(1 - alpha / 2, x + 1, n - x))
    else:
        lower = 0.0 if x == 0 else float(beta.ppf(alpha / 2, x + 0.5, n - x + 0.5))
        upper = 1.0 if x == n else float(beta.ppf(1 - alpha / 2, x + 0.5, n - x + 0.5))
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


def dispersion(buckets: pd.DataFrame) -> float:
    """Overdispersion factor phi, because 5xx responses arrive in incidents, not independently.

    Quasi-binomial model: per bucket ``i`` (e.g. 5 minutes) with ``n_i`` requests and ``e_i``
    errors, ``Var(e_i) = phi * n_i p (1 - p)`` around the pooled rate ``p = sum e / sum n``.
    The moment estimate is Pearson's statistic over its degrees of freedom,
    ``phi = sum (e_i - n_i p)^2 / (n_i p (1 - p)) / (k - 1)`` over the ``k`` non-empty buckets.
    It is floored at 1: apparent under-dispersion is not credited, since that would make the
    adjusted bound tighter than the independent-requests bound. Dividing counts by phi gives
    effective counts with the binomial variance, which :func:`bound_r` bounds.

    Parameters
    ----------
    buckets
        One row per time bucket with columns ``requests`` and ``errors``. Rows with no requests
        or NaN counts are dropped (they carry no information about the rate).

    Returns
    -------
    float
        ``phi >= 1``. 1.0 when every bucket has the same pooled rate 0 or 1 (nothing varies), and
        1.0 with a :class:`~reliability.errors.StatisticalWarning` when fewer than two non-empty
        buckets remain (dispersion cannot be estimated).
    """
    missing = {"requests", "errors"} - set(buckets.columns)
    if missing:
        raise ValueError(
            f"dispersion() needs columns 'requests' and 'errors'; missing {sorted(missing)}"
        )
    frame = buckets[["requests", "errors"]].astype(float).dropna()
    frame = frame[frame["requests"] > 0]
    bad = frame[(frame["errors"] < 0) | (frame["errors"] > frame["requests"])]
    if not bad.empty:
        row = bad.iloc[0]
        raise ValueError(
            f"{len(bad)} bucket(s) have errors outside [0, requests], e.g. "
            f"errors={row['errors']} with requests={row['requests']} at {bad.index[0]!r}"
        )
    k = len(frame)
    if k < 2:
        warnings.warn(
            f"only {k} non-empty bucket(s): dispersion cannot be estimated, assuming phi=1 "
            "(independent requests); use a longer window or shorter buckets",
            StatisticalWarning,
            stacklevel=2,
        )
        return 1.0
    n, e = frame["requests"], frame["errors"]
    p = float(e.sum() / n.sum())
    if p <= 0 or p >= 1:
        return 1.0
    chi2 = float((((e - n * p) ** 2) / (n * p * (1 - p))).sum())
    return max(1.0, chi2 / (k - 1))


def _smallest_n(passes: Callable[[int], bool], start: int) -> int | None:
    """Smallest integer N >= start with passes(N), assuming passes is monotone in N."""
    lo, hi = start - 1, max(start, 1)
    while not passes(hi):
        lo, hi = hi, hi * 2
        if hi > _SEARCH_CAP:
            return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if passes(mid):
            hi = mid
        else:
            lo = mid
    return hi


def minimum_requests(
    errors: float,
    *,
    threshold: float = 0.98,
    confidence: float = 0.95,
    method: str = "clopper-pearson",
) -> int:
    """Requests needed to prove R > threshold despite ``errors`` failures: the traffic bar to clear.

    Returns the smallest N such that the one-sided lower bound on R with ``errors`` failures in
    N requests exceeds ``threshold``. With the default one-sided 95 % Clopper-Pearson bound and
    threshold 0.98 this is 149, 236, 313 and 386 requests for 0, 1, 2 and 3 errors.
    """
    threshold = _check_threshold(threshold)
    _check_confidence(confidence, one_sided=True)
    _check_method(method)
    errors = float(errors)
    if math.isnan(errors) or math.isinf(errors) or errors < 0:
        raise ValueError(f"errors must be a finite count >= 0, got {errors!r}")

    def passes(n: int) -> bool:
        return n > errors and lower_bound(
            n - errors, n, confidence=confidence, method=method
        ) > threshold

    found = _smallest_n(passes, max(1, math.floor(errors) + 1))
    if found is None:  # pragma: no cover - needs about 5e13 errors
        raise ValueError(f"errors={errors} needs more than {_SEARCH_CAP:.0e} requests")
    return found


def required_requests(
    error_rate: float,
    *,
    threshold: float = 0.98,
    confidence: float = 0.95,
    method: str = "clopper-pearson",
    phi: float = 1.0,
) -> int | None:
    """Requests needed to prove R > threshold if the observed 5xx ratio holds: how long to wait.

    The errors in N requests are taken as the real count ``error_rate * N`` (not rounded up),
    which keeps the bound monotone in N; with ``phi > 1`` the counts are effective counts
    ``N / phi`` and ``error_rate * N / phi``, so the answer scales roughly with phi.

    Returns
    -------
    int or None
        The smallest such N, or None when no amount of traffic suffices: the rate is at least
        ``1 - threshold`` (the point estimate itself fails), or more than 10^15 requests would
        be needed.
    """
    threshold = _check_threshold(threshold)
    _check_confidence(confidence, one_sided=True)
    _check_method(method)
    rate = float(error_rate)
    if math.isnan(rate):
        raise NoDataError("error_rate is NaN: no traffic to extrapolate from")
    if not 0 <= rate <= 1:
        raise ValueError(f"error_rate must lie in [0, 1], got {rate!r}")
    phi = _check_phi(phi)
    if rate >= 1 - threshold:
        return None

    def passes(n: int) -> bool:
        eff = n / phi
        return lower_bound(eff * (1 - rate), eff, confidence=confidence, method=method) > threshold

    return _smallest_n(passes, 1)


def _check_phi(phi: float) -> float:
    """Floor phi at 1: under-dispersion is not credited (see :func:`dispersion`)."""
    phi = float(phi)
    if math.isnan(phi) or math.isinf(phi) or phi <= 0:
        raise ValueError(f"phi must be a finite positive dispersion factor, got {phi!r}")
    return max(phi, 1.0)


@dataclass(frozen=True)
class RBound:
    """Evidence about R for one window (and group): the bounds, the bar, and whether it is cleared.

    ``lower`` assumes independent requests; ``lower_adjusted`` and ``upper_adjusted`` use the
    effective counts ``requests / phi`` and ``errors / phi``. ``upper_adjusted < threshold``
    proves R is below the SLO. ``min_requests`` is :func:`required_requests` at the observed
    5xx ratio (None when that ratio already fails the SLO). ``passes`` requires both
    ``lower_adjusted > threshold`` and ``sufficient``.
    """

    requests: float
    errors: float
    r: float
    lower: float
    lower_adjusted: float
    upper_adjusted: float
    phi: float
    confidence: float
    method: str
    threshold: float
    min_requests: int | None
    sufficient: bool
    passes: bool

    @property
    def summary(self) -> pd.DataFrame:
        """One-row table of every field (min_requests as nullable Int64)."""
        return _summary_frame([asdict(self)])


def _summary_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    if "min_requests" in frame:
        frame["min_requests"] = pd.array(
            [pd.NA if v is None or v != v else int(v) for v in frame["min_requests"]],
            dtype="Int64",
        )
    return frame


def _check_request_counts(requests: float, errors: float) -> tuple[float, float]:
    requests, errors = float(requests), float(errors)
    if math.isnan(requests) or math.isnan(errors):
        raise NoDataError(
            f"requests={requests}, errors={errors} contains NaN: the window has no samples"
        )
    if requests == 0:
        raise NoDataError("requests=0: no traffic in the window, so R cannot be proven")
    if requests < 0 or errors < 0 or math.isinf(requests) or math.isinf(errors):
        raise ValueError(f"requests={requests} and errors={errors} must be finite and >= 0")
    if errors > requests:
        raise ValueError(
            f"errors={errors} exceeds requests={requests}; the 5xx selector must be a subset "
            "of the total (check label matchers and that both use the same window)"
        )
    return requests, errors


def _bound(
    requests: float,
    errors: float,
    *,
    phi: float,
    threshold: float,
    confidence: float,
    method: str,
) -> RBound:
    requests, errors = _check_request_counts(requests, errors)
    phi = _check_phi(phi)
    threshold = _check_threshold(threshold)
    successes = requests - errors
    options = {"confidence": confidence, "method": method}
    lower_adjusted = lower_bound(successes / phi, requests / phi, **options)
    min_requests = required_requests(errors / requests, threshold=threshold, phi=phi, **options)
    sufficient = min_requests is not None and requests >= min_requests
    return RBound(
        requests=requests,
        errors=errors,
        r=successes / requests,
        lower=lower_bound(successes, requests, **options),
        lower_adjusted=lower_adjusted,
        upper_adjusted=upper_bound(successes / phi, requests / phi, **options),
        phi=phi,
        confidence=confidence,
        method=method,
        threshold=threshold,
        min_requests=min_requests,
        sufficient=sufficient,
        passes=bool(lower_adjusted > threshold and sufficient),
    )


def _short_of_evidence(bound: RBound) -> bool:
    """Too little traffic, as opposed to a ratio that already fails (no traffic would help)."""
    return bound.min_requests is not None and not bound.sufficient


def bound_r(
    requests: float,
    errors: float,
    *,
    phi: float = 1.0,
    threshold: float = 0.98,
    confidence: float = 0.95,
    method: str = "clopper-pearson",
) -> RBound:
    """Bound R for one window so the verdict rests on evidence, adjusted for clustered failures.

    Parameters
    ----------
    requests, errors
        All requests and the 5xx among them in the window (real counts accepted).
    phi
        Dispersion factor from :func:`dispersion`; values below 1 are floored at 1.
    threshold
        The SLO on R (0.98: at most 2 % of requests end in 5xx).
    confidence
        One-sided confidence of the bounds.
    method
        One of :data:`METHODS`.

    Returns
    -------
    RBound

    Raises
    ------
    NoDataError
        No requests, or NaN counts: missing data never passes.
    ValueError
        ``errors > requests`` or negative counts.

    Warns
    -----
    InsufficientDataWarning
        The observed 5xx ratio is within the SLO but there is too little traffic to prove it
        (``requests < min_requests``). Not emitted when the ratio itself fails the SLO: more
        traffic would not help, and ``passes`` is False either way.
    """
    bound = _bound(
        requests, errors, phi=phi, threshold=threshold, confidence=confidence, method=method
    )
    if _short_of_evidence(bound):
        warnings.warn(
            f"{bound.requests:,.0f} requests with {bound.errors:,.0f} 5xx (phi={bound.phi:.3g}) "
            f"cannot prove R > {threshold} at {confidence:.0%} confidence; "
            f"{bound.min_requests:,} requests are needed at this 5xx ratio: use a longer window",
            InsufficientDataWarning,
            stacklevel=2,
        )
    return bound


def bound_r_frame(
    df: pd.DataFrame,
    *,
    by: str | Sequence[str] | None = None,
    phi: float | Mapping[Hashable, float] = 1.0,
    threshold: float = 0.98,
    confidence: float = 0.95,
    method: str = "clopper-pearson",
) -> pd.DataFrame:
    """Bound R per group (version, route, ...) so one table shows which groups are proven.

    Parameters
    ----------
    df
        Tidy frame with columns ``requests`` and ``errors`` plus the ``by`` columns; rows of the
        same group (e.g. several instances) are summed.
    by
        Group column(s); None bounds the whole frame as one row.
    phi
        One dispersion factor, or a mapping from group key (a tuple for several ``by`` columns)
        to its factor; every group must be present in the mapping.
    threshold, confidence, method
        As in :func:`bound_r`.

    Returns
    -------
    pandas.DataFrame
        The ``by`` columns then the :class:`RBound` fields, one row per group. A group with no
        traffic is kept with NaN bounds and ``passes = False`` rather than dropped.

    Warns
    -----
    InsufficientDataWarning
        Once, listing every group without traffic or with too few requests.
    """
    missing = {"requests", "errors"} - set(df.columns)
    keys = [by] if isinstance(by, str) else list(by or [])
    missing |= set(keys) - set(df.columns)
    if missing:
        raise ValueError(f"bound_r_frame() input lacks column(s) {sorted(missing)}")
    if keys:
        totals = df.groupby(keys, dropna=False, sort=True)[["requests", "errors"]].sum(min_count=1)
    else:
        totals = pd.DataFrame([df[["requests", "errors"]].sum(min_count=1)])
    rows, short = [], []
    for key, row in totals.iterrows():
        values = key if isinstance(key, tuple) else (key,)
        label = dict(zip(keys, values, strict=True)) if keys else {}
        if not isinstance(phi, Mapping):
            group_phi = float(phi)
        else:
            map_key = key if len(keys) > 1 else (key[0] if isinstance(key, tuple) else key)
            if map_key not in phi:
                raise ValueError(f"phi has no entry for group {map_key!r}; give one per group")
            group_phi = float(phi[map_key])
        try:
            bound = _bound(
                row["requests"], row["errors"], phi=group_phi, threshold=threshold,
                confidence=confidence, method=method,
            )
        except NoDataError:
            short.append(f"{_describe(label)} (no traffic)")
            nan = float("nan")
            rows.append(label | {
                "requests": row["requests"], "errors": row["errors"], "r": nan, "lower": nan,
                "lower_adjusted": nan, "upper_adjusted": nan, "phi": _check_phi(group_phi),
                "confidence": confidence, "method": method, "threshold": threshold,
                "min_requests": None, "sufficient": False, "passes": False,
            })
            continue
        if _short_of_evidence(bound):
            short.append(f"{_describe(label)} ({bound.requests:,.0f} < {bound.min_requests:,})")
        rows.append(label | asdict(bound))
    if short:
        warnings.warn(
            f"too little traffic to prove R > {threshold} at {confidence:.0%} confidence for "
            f"{len(short)} group(s): {'; '.join(short)}; use a longer window",
            InsufficientDataWarning,
            stacklevel=2,
        )
    return _summary_frame(rows)


def _describe(label: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in label.items()) or "all"
