"""Incidents as a point process: the stable version's rate and severity, and anytime-valid evidence on the canary's.

Between two incidents hours apart a canary looks perfect, and a clustering factor estimated from
incident-free minutes cannot know one is coming. So the watch also asks the incidents themselves:

- an *incident minute* is one whose 5xx share is both above :data:`LEVEL` and significantly above
  the objective (binomial tail below :data:`P_MINUTE`), so a quiet minute's noise is not one; an
  *incident* is a run of them, gaps of up to :data:`MERGE_GAP` minutes included (at low traffic
  an incident's milder minutes miss the test, and one incident must not count as several);
- the stable version's own history over a lookback gives its incident rate λ0 (with a Poisson
  upper bound) and their severity: the excess 5xx share they add, summed over their minutes
  (*share-minutes*, so a canary at a tenth of the traffic is judged by the same yardstick);
- the canary's incident rate is tested against a bound with a gamma-Poisson mixture e-process
  (Howard, Ramdas, McAuliffe & Sekhon 2021, the conjugate mixture for a Poisson rate): with no
  incident in T minutes its evidence grows like exp(λ*·T), so proving a rate below λ* takes about
  ln(1/α)/λ* minutes of exposure — the data-driven minimum watch.

Pure functions over ``canaries x minutes`` arrays; :mod:`reliability.analysis.stats.sequential`
combines them with the request evidence.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import special, stats

#: A minute is in an incident when its 5xx share is above this and significantly above the objective.
LEVEL = 0.05
P_MINUTE = 1e-4
#: ... or when a run of this many minutes holding it is, together; so its status is settled this much later.
WINDOW = 5
SETTLE = WINDOW - 1
#: Incident minutes at most this many minutes apart belong to one incident.
MERGE_GAP = 10
#: Where the stable shows no incident at all: the severity assumed for one it might still have
#: (a 5-minute total outage, in share-minutes), and the prior when there is no stable history.
SEVERITY_PRIOR = 5.0
NO_HISTORY_RATE = 1 / 360.0   # one incident every 6 hours, when no stable history can be read
#: Less history than this (minutes with traffic) says too little about incidents: the prior stands in.
MIN_HISTORY_MINUTES = 1440
#: The canary's incident rate is assumed at most this many times the stable's (route A below).
RATE_FACTOR = 2.0


def incident_minutes(requests: np.ndarray, errors: np.ndarray, *, threshold: float = 0.98) -> np.ndarray:
    """Boolean ``canaries x minutes``: the minutes inside an incident (see the module).

    A minute is one when it, or a run of :data:`WINDOW` minutes holding it, has a 5xx share above
    :data:`LEVEL` and significantly above the objective: at low traffic one minute of a mild incident
    is not significant on its own, but a few are, and the first of them belong to it too. So a
    minute's status is *settled* only ``WINDOW - 1`` minutes later: the watch reads incidents with
    that delay (:data:`SETTLE`), and every look then sees the same past a later one does.
    """
    n = np.atleast_2d(np.asarray(requests, dtype=float))
    e = np.atleast_2d(np.asarray(errors, dtype=float))

    def significant(n: np.ndarray, e: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(n > 0, e / np.maximum(n, 1.0), 0.0)
        tail = stats.binom.sf(np.maximum(e - 1, -1), np.maximum(np.round(n), 0).astype(np.int64), 1 - threshold)
        return (share > LEVEL) & (tail < P_MINUTE) & (e >= 3)

    def trailing(x: np.ndarray) -> np.ndarray:
        c = np.concatenate([np.zeros((len(x), 1)), np.cumsum(x, axis=1)], axis=1)
        return c[:, 1:] - c[:, np.maximum(np.arange(x.shape[1]) + 1 - WINDOW, 0)]

    mask = significant(n, e)
    ends = significant(trailing(n), trailing(e)).astype(float)  # windows ending here: all their minutes
    return mask | (trailing(ends[:, ::-1])[:, ::-1] > 0)


def incident_starts(mask: np.ndarray) -> np.ndarray:
    """Boolean ``canaries x minutes``: the minutes an incident starts, an incident minute with none in the
    :data:`MERGE_GAP` minutes before it (so one incident whose quieter minutes miss the test is still one;
    decided from the past only, so every look sees the same starts a later one does)."""
    m = np.atleast_2d(mask).astype(bool)
    t = np.arange(m.shape[1], dtype=float)
    last = np.maximum.accumulate(np.where(m, t, -np.inf), axis=1)
    before = np.concatenate([np.full((len(m), 1), -np.inf), last[:, :-1]], axis=1)
    return m & (t - before > MERGE_GAP + 1)


def count_incidents(mask: np.ndarray) -> np.ndarray:
    """Incidents per row (see :func:`incident_starts`)."""
    return incident_starts(mask).sum(axis=1)


@dataclass(frozen=True)
class StableProfile:
    """What the stable version's history says about incidents (arrays: one value per canary)."""

    minutes: np.ndarray     # minutes of history with traffic
    incidents: np.ndarray   # incidents in it
    rate: np.ndarray        # incidents per minute (upper bound at 1 - alpha when none or few)
    severity: np.ndarray    # mean excess 5xx share-minutes per incident (SEVERITY_PRIOR when none)
    baseline: np.ndarray    # 5xx share outside incidents
    known: np.ndarray       # False: no stable history, or under a day of it; the documented prior stands in
    share: np.ndarray       # the history's 5xx share, incidents included

    @property
    def incident_share(self) -> np.ndarray:
        """The long-run 5xx share the stable's incidents add: rate x severity."""
        return self.rate * self.severity


def stable_profile(requests: np.ndarray, errors: np.ndarray, *, threshold: float = 0.98,
                   alpha: float = 0.05) -> StableProfile:
    """The stable version's incident rate and severity from its per-minute history (``canaries x minutes``)."""
    n = np.atleast_2d(np.asarray(requests, dtype=float))
    e = np.atleast_2d(np.asarray(errors, dtype=float))
    live = n > 0
    minutes = live.sum(axis=1).astype(float)
    mask = incident_minutes(n, e, threshold=threshold)
    k = count_incidents(mask).astype(float)
    quiet_n, quiet_e = np.where(mask, 0.0, n).sum(axis=1), np.where(mask, 0.0, e).sum(axis=1)
    baseline = np.where(quiet_n > 0, quiet_e / np.maximum(quiet_n, 1.0), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(n > 0, e / np.maximum(n, 1.0), 0.0)
    excess = np.where(mask, np.maximum(share - baseline[:, None], 0.0), 0.0).sum(axis=1)
    severity = np.where(k > 0, excess / np.maximum(k, 1.0), SEVERITY_PRIOR)
    # The rate's upper confidence limit (Poisson, exact): with few incidents the point estimate is noise.
    upper = stats.chi2.ppf(1 - alpha, 2 * (k + 1)) / 2 / np.maximum(minutes, 1.0)
    known = minutes >= MIN_HISTORY_MINUTES
    rate = np.where(known, upper, NO_HISTORY_RATE)
    total = np.where(n.sum(axis=1) > 0, e.sum(axis=1) / np.maximum(n.sum(axis=1), 1.0), np.nan)
    return StableProfile(minutes, k, rate, np.where(known, severity, SEVERITY_PRIOR), baseline, known, total)


#: The gamma prior of the rate mixture, in units of the bound: shape and rate of Gamma on λ/λ*.
RATE_PRIOR = (1.0, 1.0)


def log_rate_evidence(incidents: np.ndarray, exposure: np.ndarray, bound: np.ndarray, *, below: bool = True,
                      prior: tuple[float, float] = RATE_PRIOR) -> np.ndarray:
    """log of the gamma-Poisson mixture e-value that the incident rate is below ``bound`` (per minute),
    or above it (``below=False``: the prior on [λ*, ∞), the upper incomplete gamma).

    With K incidents in T minutes, the likelihood ratio of a rate λ against λ* = ``bound`` is
    (λ/λ*)^K exp(-(λ - λ*) T); mixed over λ in [0, λ*] with a gamma prior it is a nonnegative
    supermartingale under any rate at or above λ* (Ville: it reaches 1/α with probability at most α).
    Closed form with the regularized lower incomplete gamma. Vectorized.
    """
    k = np.asarray(incidents, dtype=float)
    t = np.asarray(exposure, dtype=float)
    lam = np.asarray(bound, dtype=float)
    a, b0 = prior
    b = b0 / np.maximum(lam, 1e-300)  # the prior's rate scales with the bound: Gamma(a, b0) on λ/λ*
    part = special.gammainc if below else special.gammaincc
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        mixed = special.gammaln(a + k) - (a + k) * np.log(b + t) + np.log(part(a + k, (b + t) * lam))
        norm = special.gammaln(a) - a * np.log(b) + np.log(part(a, b * lam))
        null = k * np.log(lam) - lam * t
    return np.where(lam > 0, mixed - norm - null, -np.inf)


def rate_upper(incidents: np.ndarray, exposure: np.ndarray, *, alpha: float = 0.05,
               iterations: int = 40) -> np.ndarray:
    """An anytime-valid upper confidence sequence for the incident rate: the smallest bound the evidence
    already rules out from above (bisection on the bound, vectorized)."""
    k = np.asarray(incidents, dtype=float)
    t = np.asarray(exposure, dtype=float)
    k, t = np.broadcast_arrays(k, t)
    lo = np.full(k.shape, 1e-9)
    hi = np.maximum((k + 10.0) / np.maximum(t, 1.0) * 10.0, 1.0)
    bar = np.log(1 / alpha)
    for _ in range(iterations):
        mid = np.sqrt(lo * hi)
        ruled_out = log_rate_evidence(k, t, mid) >= bar
        hi, lo = np.where(ruled_out, mid, hi), np.where(ruled_out, lo, mid)
    return hi


@dataclass(frozen=True)
class Guard:
    """The incident guard at one look, per canary: GO once the 5xx outside incidents and the incidents the
    canary could still have stay under 2 % together.

    The incidents' share is bounded two ways, and the smaller counts:

    * route A, from the stable's history: :data:`RATE_FACTOR` times the stable's incident rate (its
      upper bound), each incident as severe as the stable's or the canary's own if worse. Closed when
      the canary's incidents so far prove its rate above that (then the assumption is false).
      Without a stable history: the documented prior, an incident every :data:`NO_HISTORY_RATE`
      minutes of :data:`SEVERITY_PRIOR` share-minutes.
    * route B, from the canary's own exposure: its incident rate's anytime-valid upper bound (α/2),
      which only incident-free minutes bring down.

    GO needs the request evidence on the minutes outside incidents (φ from those minutes alone) that
    their 5xx share is below 2 % less the bound (``room``), at α/2.
    """

    log_quiet: np.ndarray     # the request evidence outside incidents that their share is below `room`
    room: np.ndarray          # 2 % less the incidents' bound
    by_stable: np.ndarray     # the bound is route A's (else route B's)
    rate_upper: np.ndarray    # route B: the canary's incident rate, upper bound per minute
    severity: np.ndarray      # share-minutes per incident
    bar: float

    @property
    def ok(self) -> np.ndarray:
        return (self.room > 0) & (self.log_quiet >= self.bar)


def incident_bound(incidents: np.ndarray, own_severity: np.ndarray, minutes: float, profile: StableProfile, *,
                   alpha: float = 0.05, factor: float = RATE_FACTOR) -> tuple[np.ndarray, ...]:
    """``(bound, by_stable, rate_upper, severity)``: the most the canary's incidents can add to its 5xx share
    (share-minutes per minute), per canary, and how it was bounded (see :class:`Guard`)."""
    k = np.asarray(incidents, dtype=float)
    sev = np.maximum(np.where(profile.known, profile.severity, SEVERITY_PRIOR), own_severity)
    lam = rate_upper(k, np.full(k.shape, float(minutes)), alpha=alpha / 2)
    assumed = np.where(profile.known, factor * profile.rate, NO_HISTORY_RATE)
    broken = log_rate_evidence(k, np.full(k.shape, float(minutes)), assumed, below=False) >= np.log(2 / alpha)
    by_a = np.where(broken, np.inf, assumed * sev)
    by_b = lam * sev
    return np.minimum(by_a, by_b), by_a <= by_b, lam, sev


def exposure_needed(incidents: float, severity: float, room: float, *, alpha: float = 0.05) -> float:
    """Minutes of exposure (from the canary's start) at which route B's bound leaves ``room`` (2 % less the
    quiet share), if no further incident comes; inf when no exposure would do.

    Route B's bound is below ``room / severity`` exactly when the evidence against that rate reaches
    2/α, so this is the first exposure at which it does (bisection; the evidence grows with exposure).
    """
    if room <= 0 or severity <= 0:
        return float("inf") if room <= 0 else 0.0
    rate, bar = room / severity, np.log(2 / alpha)

    def short(t: float) -> bool:
        return float(log_rate_evidence(incidents, t, rate)) < bar

    low, high = 1.0, 1.0
    while short(high):
        low, high = high, high * 2
        if high > 1e8:
            return float("inf")
    for _ in range(40):
        mid = (low + high) / 2
        low, high = (mid, high) if short(mid) else (low, mid)
    return high
