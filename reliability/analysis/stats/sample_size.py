"""How much traffic a proof needs: the bar to clear, and how long to wait at the observed rate."""
from __future__ import annotations

import math
from collections.abc import Callable

from reliability.analysis.stats.bounds import _check_confidence, _check_method, _check_threshold, lower_bound
from reliability.analysis.stats.dispersion import _check_phi
from reliability.errors import NoDataError

# Beyond this many requests a search is abandoned: no window we could query holds that many,
# so "needs more than 10^15 requests" is reported like "impossible" (None).
_SEARCH_CAP = 10**15


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
