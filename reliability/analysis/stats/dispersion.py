"""How much 5xx responses cluster: the overdispersion factor phi over time buckets."""
from __future__ import annotations

import math
import warnings

import pandas as pd

from reliability.errors import StatisticalWarning


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


def _check_phi(phi: float) -> float:
    """Floor phi at 1: under-dispersion is not credited (see :func:`dispersion`)."""
    phi = float(phi)
    if math.isnan(phi) or math.isinf(phi) or phi <= 0:
        raise ValueError(f"phi must be a finite positive dispersion factor, got {phi!r}")
    return max(phi, 1.0)
