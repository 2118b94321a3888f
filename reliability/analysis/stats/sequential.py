"""The watch's decision: look as often as you like, the 5 % stays 5 %, even when incidents are rare.

A canary watched every minute is decided from three kinds of anytime-valid evidence:

1. **Requests** (:mod:`.martingale`): a mixture test martingale that R < 0.98 (NO-GO side) on all
   the canary's counts divided by the clustering factor φ, with the first watch's Beta(1, 49) prior
   (so NO-GO comes exactly as early as it did), and one that the 5xx share outside incidents is low
   enough (GO side), its prior mixture fitted to the canary's traffic.
2. **Incidents** (:mod:`.incident_rate`): between two incidents hours apart a canary looks perfect,
   so GO also waits for the *incident guard*: the incidents the canary could still have cannot push
   its 5xx share over 2 % — either because even at :data:`RATE_FACTOR` times the rate the stable
   version showed over its history they would not (route A), or because the canary's own
   incident-free exposure already bounds its incident rate low enough (route B; this is the
   data-driven minimum watch, of order ln(2/α)·severity / room minutes).
3. **The stable version beside it** (:mod:`.relative`): over the same minutes, is the canary's
   5xx rate above or below :data:`RATIO_MARGIN` times the stable's?

The rule:

* **GO** when the request evidence for R > 0.98 reaches 1/α, the incident guard holds, and the
  canary is not proven worse than the stable.
* **NO-GO** when the request evidence for R < 0.98 reaches 1/α and the same minutes do not prove the
  canary no worse than the stable (an incident they share is not the release's fault), or when it is
  proven worse than the stable and its own R so far is below 0.98.
* Otherwise keep watching; at the deadline, INCONCLUSIVE.

GO's error is bounded by the smaller of the request test's α and the guard's (two bounds at α/2
each, :func:`incident_guard`); the simulations of ``benchmarks/watch_regimes.py`` measure it on
incident patterns the watch was not tuned on.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from reliability.analysis.stats.incident_rate import (
    RATE_FACTOR,
    SETTLE,
    Guard,
    StableProfile,
    exposure_needed,
    incident_bound,
    incident_minutes,
    incident_starts,
    stable_profile,
)
from reliability.analysis.stats.martingale import effective_phi, fitted_prior, log_evidence, log_evidence_mixed
from reliability.analysis.stats.relative import RATIO_MARGIN, relative_evidence

__all__ = ["RATE_FACTOR", "RATIO_MARGIN", "Look", "decide", "first_decisions", "history_profile", "look", "prepare",
           "requests_needed"]

NAN = float("nan")


@dataclass(frozen=True)
class Look:
    """One look of a watched canary: the counts so far, the evidence each way, and the decision.

    ``log_go`` is the GO side's request evidence (outside incidents, against 2 % less the incidents'
    bound: it decides at 2/α), ``log_nogo`` the NO-GO side's (all requests: it decides at 1/α).
    """

    requests: float
    errors: float
    phi: float
    log_go: float
    log_nogo: float
    alpha: float
    decision: str | None = None
    log_not_worse: float = NAN      # vs the stable over the same minutes (nan: no stable counts)
    log_worse: float = NAN
    log_far: float = NAN            # worse than the ratio that takes the stable's history share to 2 %
    traffic: float = NAN            # the canary's first-minute requests the prior was fitted to
    incidents: int = 0              # the canary's incidents so far
    route: str = ""                 # how the incidents were bounded: "stable" (its history) or "exposure"
    room: float = NAN               # 2 % less the incidents' bound: what the 5xx outside incidents may take
    go_after: float = NAN           # minutes from the start route B needs, if no incident comes (inf: never)
    quiet_requests: float = 0.0     # requests and 5xx outside incident minutes, and their φ
    quiet_errors: float = 0.0
    quiet_phi: float = 1.0
    stable_rate: float = NAN        # the stable's incidents per minute (upper bound); nan: no history
    stable_severity: float = NAN    # share-minutes per incident the guard assumed
    stable_minutes: float = 0.0     # minutes of stable history read

    @property
    def r(self) -> float:
        return 1.0 - self.errors / self.requests if self.requests else float("nan")


def requests_needed(look: Look, *, threshold: float = 0.98, limit: float = 1e9) -> float | None:
    """Requests in all (as counted, before the φ adjustment) at which the GO side's evidence would reach 2/α
    if the 5xx ratio outside incidents, its clustering and the incidents' bound stay as observed; None when
    it never would."""
    if look.quiet_requests <= 0 or not np.isfinite(look.room) or look.room <= 0:
        return None
    rate, bar = look.quiet_errors / look.quiet_requests, np.log(2 / look.alpha)
    if rate >= look.room:
        return None
    weights, scale = fitted_prior(look.traffic), look.requests / look.quiet_requests

    def evidence(n: float) -> float:
        return float(log_evidence_mixed(n / look.quiet_phi, n * rate / look.quiet_phi, weights,
                                        threshold=1 - look.room)[0])

    low = high = look.quiet_requests
    if evidence(high) >= bar:
        return look.requests
    while evidence(high) < bar:
        low, high = high, high * 2
        if high > limit:
            return None
    for _ in range(60):
        mid = (low + high) / 2
        low, high = (mid, high) if evidence(mid) < bar else (low, mid)
    return high * scale


@dataclass(frozen=True)
class Prepared:
    """The per-minute facts every look reads, computed once for ``canaries x minutes``."""

    n: np.ndarray
    e: np.ndarray
    qn: np.ndarray            # requests and 5xx outside the canary's incident minutes (0 inside)
    qe: np.ndarray
    cum: dict[str, np.ndarray]  # cumulative sums: n, e, qn, qe, incidents (started), excess (share-minutes)
    profile: StableProfile
    traffic: np.ndarray       # per canary, the first minute's requests (the prior's fit)
    weights: np.ndarray       # the prior mixture's weights, per canary
    relative: tuple[np.ndarray, ...] | None  # log e-values: not worse, worse (RATIO_MARGIN), failing by ratio


def history_profile(history: tuple[np.ndarray, np.ndarray] | None, rows: int = 1, *,
                    threshold: float = 0.98) -> StableProfile:
    """The stable's incident profile from its per-minute history (one row, or one per canary); none: the prior."""
    if history is None:
        return stable_profile(np.zeros((rows, 0)), np.zeros((rows, 0)), threshold=threshold)
    hn, he = (np.atleast_2d(np.asarray(x, dtype=float)) for x in history)
    return stable_profile(np.broadcast_to(hn, (rows, hn.shape[1])), np.broadcast_to(he, (rows, he.shape[1])),
                          threshold=threshold)


def prepare(n: np.ndarray, e: np.ndarray, *, history: tuple[np.ndarray, np.ndarray] | None = None,
            stable: tuple[np.ndarray, np.ndarray] | None = None, threshold: float = 0.98,
            profile: StableProfile | None = None) -> Prepared:
    """What the looks need, from the canaries' per-minute counts (``canaries x minutes``), the stable's
    history over its lookback (its incident rate and severity; or its ``profile``, computed once by
    :func:`history_profile`) and its counts over the same minutes."""
    n, e = np.atleast_2d(np.asarray(n, dtype=float)), np.atleast_2d(np.asarray(e, dtype=float))
    rows = len(n)
    profile = profile if profile is not None else history_profile(history, rows, threshold=threshold)
    mask = incident_minutes(n, e, threshold=threshold)
    live = (n > 0).any(axis=1)
    traffic = np.where(live, n[np.arange(rows), np.argmax(n > 0, axis=1)] if n.shape[1] else 0.0, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(n > 0, e / np.maximum(n, 1.0), 0.0)
    qn, qe = np.where(mask, 0.0, n), np.where(mask, 0.0, e)
    excess = np.where(mask, np.maximum(share - profile.baseline[:, None], 0.0), 0.0)
    relative = None
    if stable is not None:
        sn, se = (np.atleast_2d(np.asarray(x, dtype=float))[:, :n.shape[1]] for x in stable)
        cn, ce = n[:, :sn.shape[1]], e[:, :sn.shape[1]]
        with np.errstate(divide="ignore"):  # the ratio at which the stable's history share would become 2 %
            far = np.where(profile.share > 0, (1.0 - threshold) / profile.share, np.inf)
        relative = (*relative_evidence(cn, ce, sn, se),
                    relative_evidence(cn, ce, sn, se, margin=np.maximum(np.nan_to_num(far, nan=np.inf),
                                                                        RATIO_MARGIN))[1])
    cum = {name: np.cumsum(x, axis=1) for name, x in
           {"n": n, "e": e, "qn": qn, "qe": qe, "incidents": incident_starts(mask), "excess": excess}.items()}
    return Prepared(n, e, qn, qe, cum, profile, traffic, fitted_prior(traffic), relative)


def decide(s: Prepared, t: int, *, rows: np.ndarray | None = None, threshold: float = 0.98, alpha: float = 0.05,
           adjust: bool = True, factor: float = RATE_FACTOR, guard: bool = True,
           explain: bool = False) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """GO and NO-GO for the canaries ``rows`` (default all) at the look after minute ``t`` (the module's rule),
    and the evidence behind them. ``explain`` computes every figure, also those that cannot decide.
    ``guard=False`` is the watch before the incident guard: GO on the request evidence over all requests."""
    idx = np.arange(len(s.n)) if rows is None else np.asarray(rows)
    q0, bar = 1.0 - threshold, np.log(1 / alpha)
    w = s.weights[idx]
    cn, ce = s.cum["n"][idx, t], s.cum["e"][idx, t]
    failing = ce > q0 * cn

    def phi_of(n: np.ndarray, e: np.ndarray, where: np.ndarray, until: int) -> np.ndarray:
        out = np.ones(len(idx))
        if adjust and where.any():
            out[where] = effective_phi(n[idx[where], :until + 1], e[idx[where], :until + 1])
        return out

    # All requests: the NO-GO side (and GO without the guard), φ from every minute.
    phi = phi_of(s.n, s.e, failing | explain | (not guard), t)
    log_nogo = np.full(len(idx), -np.inf)
    if (need := failing | explain).any():
        log_nogo[need] = log_evidence(cn[need] / phi[need], ce[need] / phi[need], threshold=threshold, below=False)
    nogo = log_nogo >= bar
    facts: dict[str, Any] = {"phi": phi, "log_nogo": log_nogo, "guard": None}
    worse = np.zeros(len(idx), dtype=bool)
    if s.relative is not None and t < s.relative[0].shape[1]:
        log_better, log_worse, log_far = (x[idx, t] for x in s.relative)
        worse = log_worse >= bar
        nogo = (nogo & ~(log_better >= bar)) | (worse & failing) | (log_far >= bar)
        facts.update(log_not_worse=log_better, log_worse=log_worse, log_far=log_far)
    if not guard:
        log_go = log_evidence(cn / phi, ce / phi, threshold=threshold, below=True)
        facts["log_go"] = log_go
        return (log_go >= bar) & ~worse & ~nogo, nogo, facts
    # GO: the minutes outside incidents, against 2 % less what the incidents can add; incidents are read
    # SETTLE minutes late (their status is settled then), and nothing before that.
    u = t - SETTLE
    if u < 0:
        facts.update(log_go=np.full(len(idx), -np.inf))
        return np.zeros(len(idx), dtype=bool), nogo, facts
    k = s.cum["incidents"][idx, u].astype(float)
    own = np.where(k > 0, s.cum["excess"][idx, u] / np.maximum(k, 1.0), 0.0)
    profile = StableProfile(*(np.asarray(getattr(s.profile, f))[idx] for f in StableProfile.__dataclass_fields__))
    bound, by_stable, lam, sev = incident_bound(k, own, u + 1, profile, alpha=alpha, factor=factor)
    room = q0 - bound
    qphi = phi_of(s.qn, s.qe, room > 0, u)
    log_quiet = np.full(len(idx), -np.inf)
    if (open_ := room > 0).any():
        log_quiet[open_] = log_evidence_mixed(s.cum["qn"][idx[open_], u] / qphi[open_],
                                              s.cum["qe"][idx[open_], u] / qphi[open_], w[open_],
                                              threshold=1 - room[open_], below=True)
    g = Guard(log_quiet, room, by_stable, lam, sev, float(np.log(2 / alpha)))
    facts.update(guard=g, log_go=log_quiet, quiet_phi=qphi, incidents=k, settled=u)
    go = g.ok & ~worse & ~nogo
    return go, nogo, facts


def look(requests: np.ndarray, errors: np.ndarray, *, history: tuple[np.ndarray, np.ndarray] | None = None,
         stable: tuple[np.ndarray, np.ndarray] | None = None, threshold: float = 0.98, alpha: float = 0.05,
         factor: float = RATE_FACTOR, profile: StableProfile | None = None) -> Look:
    """The look after the per-minute counts ``requests``/``errors`` of one canary, from its start; ``history``
    and ``stable`` as for :func:`first_decisions` (one row each), or the history's ``profile``."""
    n, e = np.asarray(requests, dtype=float), np.asarray(errors, dtype=float)
    if not len(n):
        return Look(0.0, 0.0, 1.0, 0.0, 0.0, alpha)
    s = prepare(n[None, :], e[None, :], history=history, stable=stable, threshold=threshold, profile=profile)
    t = len(n) - 1
    go, nogo, f = decide(s, t, threshold=threshold, alpha=alpha, factor=factor, explain=True)
    g, p = f["guard"], s.profile
    relative = [float(f.get(key, [NAN])[0]) for key in ("log_not_worse", "log_worse", "log_far")]
    if g is None:  # the first minutes: no incident status is settled yet
        return Look(float(n.sum()), float(e.sum()), float(f["phi"][0]), -np.inf, float(f["log_nogo"][0]), alpha,
                    "NO-GO" if nogo[0] else None, *relative, float(s.traffic[0]))
    k, room, u = float(f["incidents"][0]), float(g.room[0]), f["settled"]
    qn, qe = float(s.cum["qn"][0, u]), float(s.cum["qe"][0, u])
    after = NAN if room > 0 else exposure_needed(k, float(g.severity[0]), (1.0 - threshold) - (qe / qn if qn else 0.0),
                                                 alpha=alpha) + SETTLE
    return Look(float(n.sum()), float(e.sum()), float(f["phi"][0]), float(f["log_go"][0]), float(f["log_nogo"][0]),
                alpha, "GO" if go[0] else "NO-GO" if nogo[0] else None, *relative, float(s.traffic[0]),
                int(k), "stable" if g.by_stable[0] else "exposure", room, after, qn, qe, float(f["quiet_phi"][0]),
                float(p.rate[0]) if p.known[0] else NAN, float(g.severity[0]), float(p.minutes[0]))


def first_decisions(requests: np.ndarray, errors: np.ndarray, *, threshold: float = 0.98, alpha: float = 0.05,
                    every: int = 1, adjust: bool = True, min_steps: int = 0,
                    history: tuple[np.ndarray, np.ndarray] | None = None,
                    stable: tuple[np.ndarray, np.ndarray] | None = None,
                    factor: float = RATE_FACTOR, guard: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """For many canaries (per-minute counts, ``canaries x minutes``), the first minute index deciding GO and
    NO-GO; -1 if never. Exactly the watch's decision at each look (:func:`decide`).

    ``history`` is the stable version's per-minute counts over its lookback (``canaries x lookback
    minutes``, or one row for all): its incident rate and severity; without it the documented prior
    stands in. ``stable`` is the stable's per-minute counts over the same minutes as the canary (the
    relative evidence). A look every ``every`` minutes; ``min_steps`` a minimum watch (a policy; the
    watch's default is none); ``adjust=False`` treats requests as independent (no φ); ``guard=False``
    leaves the incident guard out.
    """
    s = prepare(requests, errors, history=history, stable=stable, threshold=threshold)
    rows, steps = s.n.shape
    go, nogo = np.full(rows, -1), np.full(rows, -1)
    for t in range(every - 1, steps, every):
        open_ = np.flatnonzero((go < 0) & (nogo < 0))
        if not len(open_):
            break
        g, b, _ = decide(s, t, rows=open_, threshold=threshold, alpha=alpha, adjust=adjust, factor=factor,
                         guard=guard)
        go[open_[g & (t + 1 >= min_steps)]] = t
        nogo[open_[b]] = t
    return go, nogo
