"""The request-level evidence: a test martingale for R > 0.98 (and for R < 0.98), and φ.

A watched canary looked at every minute gets many chances to be lucky; a fixed-horizon bound
re-run at each look says GO far more often than its 5 % at R exactly 0.98 (``tests/test_sequential.py``).
The evidence here is a test martingale (Howard, Ramdas, McAuliffe & Sekhon, Ann. Statist. 2021;
Lindon, Sanden & Shirikian, KDD 2022):

    M_n = ∫ (p / q0)^S ((1 - p) / (1 - q0))^(n - S) π(p) dp

for a 5xx rate p below q0 = 1 - threshold, with π a beta prior truncated to [0, q0]. Under any true
rate q ≥ q0 it is a nonnegative supermartingale, so by Ville's inequality it ever reaches 1/α with
probability at most α, however often it is looked at. The mirror (π truncated to [q0, 1]) is the
evidence for R < 0.98. Both have closed forms in scipy's beta functions.

π is a mixture of Beta(r/0.98, r/0.02) over prior weights r (:data:`PRIOR_WEIGHTS`), weighted for
the canary's traffic (:func:`fitted_prior`). Beta(1, 49), the earlier single prior, is r = 0.98 (50
requests' weight); ``tests/test_watch_statistics.py`` checks the closed form against Howard et al.'s
beta-binomial mixture boundary as ``confseq`` writes it, and that the mixture stays a test
supermartingale at R = 0.98.

Requests are not independent: 5xx come in incidents. The counts are divided by the clustering
factor φ (:func:`effective_phi`) before they enter the martingale. That step is an approximation,
not a theorem; the incident guard (:mod:`reliability.analysis.stats.incident_rate`) covers what it
cannot see, and the simulations in ``benchmarks/watch_regimes.py`` measure both.
"""
from __future__ import annotations

import numpy as np
from scipy import special, stats

from reliability.analysis.stats.clustered import MIN_BATCHES, MIN_UNITS  # the fixed bound's rules

#: The single beta prior of the first watch: mean 2 %, the weight of about 50 requests (Beta(1, 49)).
PRIOR = (1.0, 49.0)
#: The prior weights the mixture is over (Howard et al.'s r, as confseq's beta-binomial mixture names it):
#: Beta(r/0.98, r/0.02), r = 0.98 x 2^j, from 50 requests' weight to about 100,000.
PRIOR_WEIGHTS = 0.98 * 2.0 ** np.arange(12)


def _log_tail(a: np.ndarray, b: np.ndarray, x: float, upper: bool) -> np.ndarray:
    """log of the regularized incomplete beta I_x(a, b), or of 1 - I_x(a, b) when ``upper``."""
    with np.errstate(divide="ignore"):
        return np.log(special.betaincc(a, b, x) if upper else special.betainc(a, b, x))


def log_evidence(requests: np.ndarray, errors: np.ndarray, *, threshold: float = 0.98,
                 below: bool = True, prior: tuple[float, float] = PRIOR) -> np.ndarray:
    """log M_n: evidence that the 5xx rate is below ``1 - threshold`` (``below``) or above it.

    ``requests`` and ``errors`` may be effective (non-integer) counts. Vectorized.
    """
    n = np.asarray(requests, dtype=float)
    s = np.asarray(errors, dtype=float)
    q0 = 1.0 - threshold
    a, b = prior
    upper = not below
    mixture = special.betaln(a + s, b + n - s) + _log_tail(a + s, b + n - s, q0, upper)
    norm = special.betaln(a, b) + _log_tail(np.asarray(a), np.asarray(b), q0, upper)
    null = s * np.log(q0) + (n - s) * np.log1p(-q0)
    return mixture - norm - null


def fitted_prior(per_minute: np.ndarray | float) -> np.ndarray:
    """Weights over :data:`PRIOR_WEIGHTS` (``len(per_minute) x 12``) for canaries taking ``per_minute`` requests.

    The best prior weight r depends on how far the true share is from the bound (near it, a decision
    needs many requests and a large r wins), and the requests that arrive by then on the traffic. The
    weights halve with every doubling of r away from one minute of the canary's traffic (from
    Beta(1, 49), r = 50 requests, where the traffic is unknown or lower): measured in
    ``tests/test_watch_statistics.py``, within a minute of Beta(1, 49) far from the bound and up to a
    fifth faster near it, at 100 to 20,000 requests a minute. The traffic is the canary's first minute
    with requests: request counts only, never a 5xx, so given the traffic the weights are fixed
    before the evidence they weigh and the mixture stays a test martingale (the same independence
    of traffic and 5xx every bound here assumes).
    """
    rate = np.atleast_1d(np.asarray(per_minute, dtype=float))
    with np.errstate(divide="ignore", invalid="ignore"):
        centre = np.where(np.isfinite(rate) & (rate > 50.0), np.log2(rate / 50.0), 0.0)
    w = 0.5 ** np.abs(np.arange(len(PRIOR_WEIGHTS))[None, :] - centre[:, None])
    return w / w.sum(axis=1, keepdims=True)


def log_evidence_mixed(requests: np.ndarray, errors: np.ndarray, weights: np.ndarray, *, threshold: float = 0.98,
                       below: bool = True) -> np.ndarray:
    """log of the weighted mixture over :data:`PRIOR_WEIGHTS` of :func:`log_evidence`, per canary (``weights``:
    one row of :func:`fitted_prior` per canary). A mixture of test martingales with fixed weights is one."""
    n, e = np.atleast_1d(np.asarray(requests, dtype=float)), np.atleast_1d(np.asarray(errors, dtype=float))
    q0 = 1.0 - threshold
    logs = np.stack([log_evidence(n, e, threshold=threshold, below=below, prior=(r / (1 - q0), r / q0))
                     for r in PRIOR_WEIGHTS], axis=-1)
    return special.logsumexp(logs, axis=-1, b=np.broadcast_to(weights, logs.shape))


def effective_phi(requests: np.ndarray, errors: np.ndarray, *, confidence: float = 0.95) -> np.ndarray:
    """The factor the counts so far are divided by, per canary (rows of ``canaries x steps``).

    The fixed-window bound's method (:mod:`reliability.analysis.stats.clustered`), vectorized over
    canaries: batch means over batches of 1, 2, 4 ... steps while :data:`MIN_BATCHES` remain,
    Pearson's φ at its chi-square upper limit on Satterthwaite's (kurtosis-adjusted) degrees of
    freedom, the largest over lengths, never below 1. Below :data:`MIN_UNITS` degrees of freedom
    the clustering cannot be estimated and every 5xx counts as one incident (φ = the 5xx so far).
    """
    n = np.atleast_2d(np.asarray(requests, dtype=float))
    e = np.atleast_2d(np.asarray(errors, dtype=float))
    rows, steps = n.shape
    total_e = e.sum(axis=1)
    rate = total_e / np.maximum(n.sum(axis=1), 1.0)
    best, units = np.ones(rows), np.zeros(rows)
    length = 1
    while steps // length >= MIN_BATCHES or length == 1:
        k = steps // length
        if k < 2:
            break
        nb = n[:, :k * length].reshape(rows, k, length).sum(axis=2)
        eb = e[:, :k * length].reshape(rows, k, length).sum(axis=2)
        var = nb * rate[:, None] * (1 - rate[:, None])
        z2 = np.where(var > 0, (eb - nb * rate[:, None]) ** 2 / np.where(var > 0, var, 1), 0.0)
        s2 = z2.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            kurtosis = np.where(s2 > 0, k * (z2 ** 2).sum(axis=1) / s2 ** 2, 3.0)
            nu = np.minimum(2.0 / (2.0 / (k - 1) + np.maximum(kurtosis - 3.0, 0.0) / k), k - 1.0)
            limit = np.maximum(1.0, s2 / (k - 1) * nu / stats.chi2.ppf(1 - confidence, nu))
        limit = np.where(s2 > 0, limit, 1.0)
        better = limit > best
        best, units = np.where(better, limit, best), np.where(better | (length == 1), nu, units)
        length *= 2
    return np.where(units >= MIN_UNITS, np.minimum(best, np.maximum(total_e, 1.0)), np.maximum(total_e, 1.0))


def rate_bounds(requests: np.ndarray, errors: np.ndarray, *, alpha: float = 0.05, iterations: int = 30,
                lower: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """An anytime-valid confidence sequence for the 5xx rate, ``(lower, upper)``, each side at ``alpha``.

    The upper bound is the smallest rate q0 the evidence already rules out from above (the GO
    martingale against q0 reaches 1/α), the lower the largest it rules out from below (0 with
    ``lower=False``, which skips it); both by bisection over q0, vectorized. Counts may be effective (divided by φ).
    """
    n, e = np.broadcast_arrays(np.asarray(requests, dtype=float), np.asarray(errors, dtype=float))
    bar = np.log(1 / alpha)

    def search(below: bool) -> np.ndarray:
        lo, hi = np.full(n.shape, 1e-9), np.full(n.shape, 1 - 1e-9)
        for _ in range(iterations):
            mid = (lo + hi) / 2
            strong = log_evidence(n, e, threshold=1 - mid, below=below) >= bar
            if below:  # evidence that the rate is below mid: mid is above the upper bound
                hi, lo = np.where(strong, mid, hi), np.where(strong, lo, mid)
            else:      # evidence that the rate is above mid: mid is below the lower bound
                lo, hi = np.where(strong, mid, lo), np.where(strong, hi, mid)
        return hi if below else lo

    upper = search(True)
    return (np.where(e > 0, search(False), 0.0) if lower else np.zeros(n.shape)), upper
