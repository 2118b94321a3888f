"""How much the 5xx cluster, measured so the bound keeps its promise when failures come in incidents.

A 5xx ratio from one window is an average over incidents, not over requests: ten thousand 5xx
from three incidents are three pieces of evidence, not ten thousand. The dispersion factor phi
says how many requests one independent unit is worth, and it must be measured over spans long
enough to contain whole incidents, with its own uncertainty counted.

:func:`clustering` does that with batch means. The per-step counts are summed into batches of
1, 2, 4, 8 ... steps, as long as at least ``min_batches`` batches remain. For each batch length
it computes Pearson's phi over the batches and a one-sided upper confidence limit on it. The limit
is chi-square, on Satterthwaite's degrees of freedom: ``nu = 2 / (2 / (k - 1) + (kurtosis - 3) / k)``.
When a few batches carry most of the 5xx, the kurtosis is large and nu falls towards twice the
number of those batches, so phi is known only roughly and its limit grows. The bound takes the
largest limit over all batch lengths. A batch longer than the incidents shows their full
clustering, and taking the maximum keeps that batch length's limit whichever it turns out to be.

``nu`` at the chosen batch length is the *effective number of independent units* behind the
bound. Below ``min_units`` the 5xx came in too few bursts for phi to be estimated at all.
:func:`bound_r_buckets` then passes only if the bound would
clear the bar even with all the 5xx counted as one incident, and otherwise reports how long a
window is needed. Simulations of Markov-modulated incidents (``tests/test_clustered.py``,
``benchmarks/clustered.py``) check the promise: false GO stays at or below 5 % whenever the
window holds 20 or more incidents.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
import pandas as pd

from reliability.analysis.stats.rbound import RBound, _bound, _summary_frame
from reliability.errors import InsufficientDataWarning, NoDataError
from reliability.times import format_duration

#: Fewer effective independent units than this and phi is not estimated from the data at all.
MIN_UNITS = 8.0
#: The longest batch length used leaves at least this many batches (24: an hour's batches per day).
MIN_BATCHES = 24


@dataclass(frozen=True)
class Clustering:
    """How clustered the 5xx of one window are, and how well that is known.

    ``phi`` is the upper confidence limit on the dispersion factor, the value the bound divides
    by; ``phi_estimate`` is the point estimate at the same batch length. ``units`` is the
    effective number of independent units (degrees of freedom) behind it; ``enough`` says whether
    it reaches ``min_units``. ``batch`` and ``step`` are in seconds.
    """

    phi: float
    phi_estimate: float
    units: float
    batch: float
    batches: int
    step: float
    confidence: float
    min_units: float
    enough: bool

    @property
    def method(self) -> str:
        """The dependence handling, in words, for tables and the evidence."""
        return (f"batch means: phi's {self.confidence:.0%} upper limit (chi-square, "
                f"{self.units:.1f} df) at {_minutes(self.batch)} batches, the largest over batch lengths")

    @property
    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(self) | {"method": self.method}])


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g}-minute" if seconds >= 60 else f"{seconds:g}-second"


def step_grid(buckets: pd.DataFrame, *, step: float | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """Per-step requests and errors on a regular grid (missing steps count as no traffic).

    ``buckets`` holds one row per query step with columns ``requests`` and ``errors`` and,
    optionally, ``time`` (then rows may be unsorted or have gaps; the step is the most common
    spacing unless given). Several rows at one time (instances, routes) are summed.
    """
    missing = {"requests", "errors"} - set(buckets.columns)
    if missing:
        raise ValueError(f"the step counts lack column(s) {sorted(missing)}; give one row per query step "
                         "with 'time', 'requests' and 'errors' (measure.step_counts returns that)")
    frame = buckets[[c for c in ("time", "requests", "errors") if c in buckets]].copy()
    frame[["requests", "errors"]] = frame[["requests", "errors"]].astype(float).fillna(0.0)
    if "time" not in frame:
        return frame["requests"].to_numpy(), frame["errors"].to_numpy(), float(step or 60.0)
    if frame.empty:
        return np.zeros(0), np.zeros(0), float(step or 60.0)
    times = pd.to_datetime(frame["time"], utc=True)
    if not (times.is_monotonic_increasing and times.is_unique):  # one query's answer already is
        frame = frame.groupby("time", sort=True)[["requests", "errors"]].sum().reset_index()
        times = pd.to_datetime(frame["time"], utc=True)
    if step is None:
        gaps = times.diff().dt.total_seconds().dropna()
        step = float(gaps.mode().iloc[0]) if len(gaps) else 60.0
    if not step > 0:
        raise ValueError(f"the step counts need a positive step, got {step!r}")
    pos = np.rint((times - times.iloc[0]).dt.total_seconds().to_numpy() / step).astype(np.int64)
    n = np.zeros(int(pos[-1]) + 1 if len(pos) else 0)
    e = np.zeros_like(n)
    np.add.at(n, pos, frame["requests"].to_numpy())
    np.add.at(e, pos, frame["errors"].to_numpy())
    return n, e, float(step)


def _chi2_ucl_factor(nu: float, confidence: float) -> float:
    from scipy.special import gammaincinv

    return float(nu / (2.0 * gammaincinv(nu / 2.0, 1 - confidence)))  # chi2.ppf(1 - confidence, nu)


def _at_batch(n: np.ndarray, e: np.ndarray, b: int) -> tuple[float, float, int]:
    """(phi, Satterthwaite df, batches) for batches of ``b`` steps; phi NaN when nothing varies."""
    idx = np.arange(len(n)) // b
    big_n = np.bincount(idx, weights=n)
    big_e = np.bincount(idx, weights=e)
    keep = big_n > 0
    big_n, big_e = big_n[keep], big_e[keep]
    k = len(big_n)
    if k < 2:
        return math.nan, math.nan, k
    p = big_e.sum() / big_n.sum()
    if not 0 < p < 1:
        return math.nan, math.nan, k
    z2 = (big_e - big_n * p) ** 2 / (big_n * p * (1 - p))
    s2 = float(z2.sum())
    if s2 <= 0:
        return math.nan, math.nan, k
    kurtosis = k * float((z2 ** 2).sum()) / s2 ** 2
    nu = 2.0 / (2.0 / (k - 1) + max(kurtosis - 3.0, 0.0) / k)
    return s2 / (k - 1), min(nu, k - 1.0), k


def clustering(
    buckets: pd.DataFrame,
    *,
    confidence: float = 0.95,
    min_batches: int = MIN_BATCHES,
    min_units: float = MIN_UNITS,
    step: float | None = None,
) -> Clustering:
    """Measure how the 5xx cluster, so counts can be turned into independent evidence honestly.

    Parameters
    ----------
    buckets
        Per-step counts: columns ``time``, ``requests``, ``errors`` at the query step (e.g. 60 s).
    confidence
        One-sided confidence of the upper limit on phi.
    min_batches
        The longest batch length still leaves this many batches.
    min_units
        Effective independent units below which the clustering is called unknown.
    step
        Seconds per row; inferred from ``time`` when omitted.

    Returns
    -------
    Clustering
        ``phi = 1`` with every batch as a unit when there are no 5xx (nothing clusters).
        ``units = 0`` when the window has fewer than two non-empty batches.
    """
    n, e, step = step_grid(buckets, step=step)
    return _clustering(n, e, step, confidence=confidence, min_batches=min_batches, min_units=min_units)


def _clustering(n: np.ndarray, e: np.ndarray, step: float, *, confidence: float, min_batches: int,
                min_units: float) -> Clustering:
    if not 0.5 < confidence < 1:
        raise ValueError(f"confidence must lie in (0.5, 1), got {confidence!r}")
    if min_batches < 2:
        raise ValueError(f"min_batches must be at least 2, got {min_batches!r}")
    if (e < 0).any() or (e > n * (1 + 1e-9) + 1e-9).any():
        raise ValueError("some steps have errors outside [0, requests]; the 5xx selector must be a subset "
                         "of the total, over the same range")
    best = None
    b = 1
    while len(n) // b >= min_batches or b == 1:
        phi, nu, k = _at_batch(n, e, b)
        if not math.isnan(phi):
            limit = max(1.0, phi * _chi2_ucl_factor(nu, confidence))
            if best is None or limit > best[0]:
                best = (limit, phi, nu, b, k)
        b *= 2
    if best is None:
        k = int((n > 0).sum())
        units = float(max(k - 1, 0)) if e.sum() == 0 else 0.0
        return Clustering(1.0, 1.0, units, step, k, step, confidence, min_units, units >= min_units)
    limit, phi, nu, b, k = best
    return Clustering(limit, phi, nu, b * step, k, step, confidence, min_units, nu >= min_units)


def bound_r_buckets(
    buckets: pd.DataFrame,
    *,
    threshold: float = 0.98,
    confidence: float = 0.95,
    method: str = "clopper-pearson",
    min_units: float = MIN_UNITS,
    min_batches: int = MIN_BATCHES,
    step: float | None = None,
    totals: tuple[float, float] | None = None,
) -> RBound:
    """Bound R from per-step counts, with the clustering of the 5xx measured and its uncertainty counted.

    This is what the gate decides by. Counts are divided by the upper confidence limit on phi from
    :func:`clustering`, so a window whose 5xx came in incidents is worth the independent units it
    holds. When those units are fewer than ``min_units`` the rate cannot be bounded from this
    window. It passes only if it would pass with every 5xx counted as one incident (one effective
    error). Otherwise ``sufficient`` is False and ``shortfall`` says how long a window is needed.
    :func:`~reliability.analysis.stats.rbound.bound_r` remains for counts known to be independent.

    Parameters
    ----------
    buckets
        One row per query step: ``time``, ``requests``, ``errors`` (e.g. from
        :func:`reliability.analysis.measure.step_counts` at a 60 s step). The totals are their sums.
    threshold, confidence, method
        As in :func:`~reliability.analysis.stats.rbound.bound_r`. ``confidence`` also sets the
        confidence of the upper limit on phi.
    min_units, min_batches, step
        As in :func:`clustering`.
    totals
        ``(requests, errors)`` to bound instead of the steps' sums, e.g. the whole window's
        ``increase()``, which extrapolates once rather than once per step. The steps still
        measure the clustering.

    Returns
    -------
    RBound
        With ``units``, ``batch`` and ``dependence`` filled in.

    Raises
    ------
    NoDataError
        No requests in the window.
    """
    n, e, step = step_grid(buckets, step=step)
    if not n.sum() > 0:
        raise NoDataError("no requests in the step counts: no traffic in the window, or the selector matches "
                          "nothing; R cannot be proven from no data")
    c = _clustering(n, e, step, confidence=confidence, min_batches=min_batches, min_units=min_units)
    requests, errors = (float(n.sum()), float(e.sum())) if totals is None else map(float, totals)
    opts = {"threshold": threshold, "confidence": confidence, "method": method}
    facts = {"units": c.units, "batch": c.batch}
    # All the 5xx as one incident is as clustered as this window's evidence can be: phi = errors
    # leaves one effective failure. A larger limit (a handful of scattered 5xx, few degrees of
    # freedom) would count less than one failure, so phi is capped there.
    one_incident = max(1.0, errors)
    if c.enough:
        return replace(_bound(requests, errors, phi=min(c.phi, one_incident), **opts), dependence=c.method, **facts)
    # Too few units to estimate phi: the robust fallback counts every 5xx as one incident.
    worst = _bound(requests, errors, phi=one_incident, **opts)
    dependence = (f"too few independent units ({c.units:.1f} < {min_units:g}): every 5xx counted as "
                  "one incident")
    if worst.passes:
        return replace(worst, dependence=dependence, **facts)
    if worst.r <= threshold:  # the observed ratio fails: no window length would help
        return replace(worst, dependence=dependence, **facts)
    window = len(n) * step
    needed = math.ceil(window * min_units / max(c.units, 0.5) / 3600) * 3600
    shortfall = (f"the 5xx came in too few independent bursts to bound the rate when failures cluster: "
                 f"{c.units:.1f} effective units at {_minutes(c.batch)} batches, at least {min_units:g} "
                 f"needed; use a window of at least {format_duration(needed)} "
                 f"(this one is {format_duration(window)})")
    warnings.warn(shortfall, InsufficientDataWarning, stacklevel=2)
    return replace(worst, dependence=dependence, sufficient=False, passes=False, shortfall=shortfall, **facts)


def bound_r_buckets_frame(
    buckets: pd.DataFrame,
    *,
    by: str | Sequence[str],
    threshold: float = 0.98,
    confidence: float = 0.95,
    method: str = "clopper-pearson",
    min_units: float = MIN_UNITS,
    min_batches: int = MIN_BATCHES,
    step: float | None = None,
    totals: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """:func:`bound_r_buckets` per group (version, route), so a table agrees with the verdict.

    ``buckets`` are per-step counts with the ``by`` columns; ``totals`` (the ``by`` columns,
    ``requests``, ``errors``) optionally gives each group's counts to bound. A group without
    traffic is kept with NaN bounds and ``passes = False``. Warns once (InsufficientDataWarning)
    for every group whose evidence falls short.
    """
    keys = [by] if isinstance(by, str) else list(by)
    missing = {"time", "requests", "errors", *keys} - set(buckets.columns)
    if missing:
        raise ValueError(f"bound_r_buckets_frame() input lacks column(s) {sorted(missing)}")
    opts = {"threshold": threshold, "confidence": confidence, "method": method, "min_units": min_units,
            "min_batches": min_batches, "step": step}
    rows, short = [], []
    sums = None if totals is None else totals.groupby(keys, sort=True)[["requests", "errors"]].sum()
    for key, group in buckets.groupby(keys, sort=True, dropna=False):
        label = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
        given, look = None, key[0] if isinstance(key, tuple) and len(keys) == 1 else key
        if sums is not None and look in sums.index:
            given = (float(sums.loc[look, "requests"]), float(sums.loc[look, "errors"]))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", InsufficientDataWarning)
                bound = bound_r_buckets(group, totals=given, **opts)
        except NoDataError:
            nan = math.nan
            bound = RBound(0.0, 0.0, nan, nan, nan, nan, 1.0, confidence, method, threshold, None, False, False,
                           shortfall="no traffic")
        if bound.shortfall:
            short.append(", ".join(f"{k}={v}" for k, v in label.items()) + f" ({bound.shortfall})")
        rows.append(label | asdict(bound))
    if short:
        warnings.warn(f"R > {threshold} cannot be proven for {len(short)} group(s): {'; '.join(short)}",
                      InsufficientDataWarning, stacklevel=2)
    return _summary_frame(rows)
