"""An anytime-valid bound on R: look as often as you like, the 5 % stays 5 %.

The proof's bound is a fixed-horizon bound: it promises at most 5 % false GO *once*. A canary
watched every minute and deployed at the first GO gets many chances to be lucky, and at R exactly
0.98 it says GO far more often (measured in ``tests/test_sequential.py``). This module replaces
the single look by a test martingale (Howard, Ramdas, McAuliffe & Sekhon, Ann. Statist. 2021;
Lindon, Sanden & Shirikian, KDD 2022): the evidence

    M_n = ∫ (p / q0)^S ((1 - p) / (1 - q0))^(n - S) π(p) dp

for a 5xx rate p below q0 = 1 - threshold, with π a beta prior truncated to [0, q0]. Under any
true rate q ≥ q0 it is a nonnegative supermartingale, so by Ville's inequality it ever reaches
1/α with probability at most α, however often it is looked at. GO when it does; the mirror
martingale (π truncated to [q0, 1]) gives NO-GO. Both have closed forms in scipy's beta functions.

Requests are not independent: 5xx come in incidents. The counts are divided by the clustering
factor φ before they enter the martingale, φ taken at its upper confidence limit from batch means
of the per-minute counts seen so far (as :mod:`reliability.analysis.stats.clustered` does for the
fixed window) and never below 1. That step is an approximation, not a theorem; the simulations
check it on Markov-modulated incidents whose long-run R is exactly 0.98.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from reliability.analysis.stats.clustered import MIN_BATCHES, MIN_UNITS  # the fixed bound's rules

#: The mixture's beta prior: mean 2 %, the weight of about 50 requests (Beta(1, 49)).
PRIOR = (1.0, 49.0)
#: No GO before this many minutes of watching: an incident-free stretch between incidents would look
#: proven, and no statistic can tell it from a service without incidents (README, "Watching a canary").
MIN_WATCH_MINUTES = 60


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


@dataclass(frozen=True)
class Look:
    """One look of a watched canary: the counts so far, the evidence each way, and the decision."""

    requests: float
    errors: float
    phi: float
    log_go: float
    log_nogo: float
    alpha: float

    @property
    def r(self) -> float:
        return 1.0 - self.errors / self.requests if self.requests else float("nan")

    @property
    def decision(self) -> str | None:
        """GO or NO-GO once the evidence reaches 1/α, else None (keep watching)."""
        if self.log_go >= np.log(1 / self.alpha):
            return "GO"
        if self.log_nogo >= np.log(1 / self.alpha):
            return "NO-GO"
        return None


def requests_needed(look: Look, *, threshold: float = 0.98, limit: float = 1e9) -> float | None:
    """Requests in all (as counted, before the φ adjustment) at which the GO evidence would reach 1/α,
    if the 5xx ratio and the clustering stay as observed; None when it never would (R not above the threshold).
    """
    if look.requests <= 0 or look.r <= threshold or not np.isfinite(look.phi):
        return None
    rate, bar = look.errors / look.requests, np.log(1 / look.alpha)

    def evidence(n: float) -> float:
        return float(log_evidence(n / look.phi, n * rate / look.phi, threshold=threshold, below=True))

    if evidence(look.requests) >= bar:
        return look.requests
    low, high = look.requests, look.requests * 2
    while evidence(high) < bar:
        low, high = high, high * 2
        if high > limit:
            return None
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if evidence(mid) < bar else (low, mid)
    return high


def look(requests: np.ndarray, errors: np.ndarray, *, threshold: float = 0.98, alpha: float = 0.05) -> Look:
    """The look after the per-step counts ``requests``/``errors`` (one canary, from its start)."""
    n, e = np.asarray(requests, dtype=float), np.asarray(errors, dtype=float)
    phi = float(effective_phi(n[None, :], e[None, :])[0])
    total, failed = float(n.sum()), float(e.sum())
    eff_n, eff_e = total / phi, failed / phi
    return Look(total, failed, phi, float(log_evidence(eff_n, eff_e, threshold=threshold, below=True)),
                float(log_evidence(eff_n, eff_e, threshold=threshold, below=False)), alpha)


def first_decisions(requests: np.ndarray, errors: np.ndarray, *, threshold: float = 0.98, alpha: float = 0.05,
                    every: int = 1, adjust: bool = True, min_steps: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """For many canaries (``canaries x steps``), the first look (step index) deciding GO and NO-GO; -1 if never.

    A look every ``every`` steps; ``adjust=False`` treats requests as independent (no φ).
    """
    n = np.asarray(requests, dtype=float)
    e = np.asarray(errors, dtype=float)
    rows, steps = n.shape
    go, nogo = np.full(rows, -1), np.full(rows, -1)
    cum_n, cum_e = np.cumsum(n, axis=1), np.cumsum(e, axis=1)
    bar = np.log(1 / alpha)
    for t in range(every - 1, steps, every):
        phi = effective_phi(n[:, :t + 1], e[:, :t + 1]) if adjust else np.ones(rows)
        eff_n, eff_e = cum_n[:, t] / phi, cum_e[:, t] / phi
        undecided = (go < 0) & (nogo < 0)
        g = undecided & (t + 1 >= min_steps) & (log_evidence(eff_n, eff_e, threshold=threshold, below=True) >= bar)
        b = undecided & ~g & (log_evidence(eff_n, eff_e, threshold=threshold, below=False) >= bar)
        go[g], nogo[b] = t, t
    return go, nogo


def rate_bounds(requests: np.ndarray, errors: np.ndarray, *, alpha: float = 0.05,
                iterations: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """An anytime-valid confidence sequence for the 5xx rate, ``(lower, upper)``, each side at ``alpha``.

    The upper bound is the smallest rate q0 the evidence already rules out from above (the GO
    martingale against q0 reaches 1/α), the lower the largest it rules out from below; both by
    bisection over q0, vectorized. Counts may be effective (divided by φ).
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
    lower = np.where(e > 0, search(False), 0.0)
    return lower, upper


def compare_step(cn: np.ndarray, ce: np.ndarray, sn: np.ndarray, se: np.ndarray, *, margin: float = 0.005,
                 alpha: float = 0.05, adjust: bool = True, iterations: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """At the latest look (per-step counts ``canaries x steps so far``): (non-inferior, inferior) per canary.

    Each group's rate gets an anytime-valid confidence sequence at α/2 (both hold together with
    1 - α) on its φ-adjusted counts; non-inferior once the candidate's upper bound is less than
    ``margin`` above the stable's lower bound, inferior once its lower bound is more than
    ``margin`` above the stable's upper bound.
    """
    cn, ce, sn, se = (np.atleast_2d(np.asarray(a, dtype=float)) for a in (cn, ce, sn, se))
    phi_c = effective_phi(cn, ce) if adjust else np.ones(len(cn))
    phi_s = effective_phi(sn, se) if adjust else np.ones(len(sn))
    c_lo, c_hi = rate_bounds(cn.sum(axis=1) / phi_c, ce.sum(axis=1) / phi_c, alpha=alpha / 2, iterations=iterations)
    s_lo, s_hi = rate_bounds(sn.sum(axis=1) / phi_s, se.sum(axis=1) / phi_s, alpha=alpha / 2, iterations=iterations)
    good = c_hi - s_lo < margin
    return good, ~good & (c_lo - s_hi > margin)


def compare_looks(candidate: tuple[np.ndarray, np.ndarray], stable: tuple[np.ndarray, np.ndarray], *,
                  margin: float = 0.005, alpha: float = 0.05, adjust: bool = True, min_steps: int = 0,
                  iterations: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Candidate vs stable, looked at every step (:func:`compare_step`): the first look proving
    non-inferiority, and inferiority, per canary (``canaries x steps`` counts); -1: never."""
    (cn, ce), (sn, se) = ([np.asarray(a, dtype=float) for a in g] for g in (candidate, stable))
    rows, steps = cn.shape
    ok, bad = np.full(rows, -1), np.full(rows, -1)
    for t in range(steps):
        good, worse = compare_step(cn[:, :t + 1], ce[:, :t + 1], sn[:, :t + 1], se[:, :t + 1], margin=margin,
                                   alpha=alpha, adjust=adjust, iterations=iterations)
        open_ = (ok < 0) & (bad < 0)
        good, worse = open_ & good & (t + 1 >= min_steps), open_ & worse
        ok[good], bad[worse] = t, t
    return ok, bad
