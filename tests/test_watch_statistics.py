"""The watch's statistics on what it was not tuned on: closed forms, validity, incidents, the stable beside it.

Regimes come from ``benchmarks/regimes.py``, the benchmark's independent simulator (traffic over the
day, incidents as a renewal process shared by the canary, the stable beside it and the stable's
history, each calibrated to its long-run share); ``benchmarks/watch_regimes.py`` has the full table.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import special
from scipy.stats import binom, binomtest

from benchmarks.regimes import REGIMES, simulate
from reliability.analysis.stats import incident_rate as ir
from reliability.analysis.stats.martingale import PRIOR_WEIGHTS, fitted_prior, log_evidence, log_evidence_mixed
from reliability.analysis.stats.relative import relative_evidence
from reliability.analysis.stats.sequential import first_decisions, look

ALPHA = 0.05
REGIME = {r.name.split(" (")[0].split(",")[0]: r for r in REGIMES}


def upper_ci(k: int, n: int) -> float:
    return float(binomtest(k, n).proportion_ci(0.95).high)


def howard_beta_binomial(s: np.ndarray, v: np.ndarray, r: float, g: float, h: float) -> np.ndarray:
    """Howard et al. (2021), the one-sided beta-binomial mixture, as confseq's ``beta_binomial_log_mixture``
    writes it: s the centred sum, v the variance process, r the prior weight; observations in [-g, h]."""
    a0, b0 = r / (g * (g + h)), r / (h * (g + h))
    a, b = (r + v - g * s) / (g * (g + h)), (r + v + h * s) / (h * (g + h))
    x = h / (g + h)

    def log_incomplete(a: np.ndarray, b: np.ndarray) -> np.ndarray:  # log of the unregularized B(x; a, b)
        return np.log(special.betainc(a, b, x)) + special.betaln(a, b)

    return (v / (g * h) * np.log(g + h) - (v + h * s) / (h * (g + h)) * np.log(g)
            - (v - g * s) / (g * (g + h)) * np.log(h) + log_incomplete(a, b) - log_incomplete(a0, b0))


@pytest.mark.parametrize("r", [PRIOR_WEIGHTS[0], PRIOR_WEIGHTS[5], PRIOR_WEIGHTS[-1]])
def test_the_request_martingale_is_howard_et_al_beta_binomial_mixture(r: float) -> None:
    n = np.array([10.0, 500.0, 4_321.5, 60_000.0, 250_000.0])
    failures = np.array([0.0, 3.0, 40.25, 900.0, 5_400.0])
    s, v = 0.02 * n - failures, 0.0196 * n  # confseq's arguments for R > 0.98, g = 0.98, h = 0.02
    ours = log_evidence(n, failures, prior=(r / 0.98, r / 0.02))
    np.testing.assert_allclose(ours, howard_beta_binomial(s, v, r, 0.98, 0.02), rtol=1e-9, atol=1e-9)
    # ... and the mixture over r is the weighted mixture of those closed forms.
    w = fitted_prior(600.0)[0]
    mixed = special.logsumexp([howard_beta_binomial(s, v, x, 0.98, 0.02) for x in PRIOR_WEIGHTS], axis=0,
                              b=w[:, None])
    np.testing.assert_allclose(log_evidence_mixed(n, failures, w), mixed, rtol=1e-9, atol=1e-9)


def test_the_fitted_mixture_is_a_test_supermartingale_at_r_098() -> None:
    rng = np.random.default_rng(21)
    paths, minutes, per_minute = 4000, 120, 600
    n = rng.poisson(per_minute, (paths, minutes)).astype(float)
    e = rng.binomial(n.astype(int), 0.02).astype(float)
    w = fitted_prior(n[:, 0])
    m = np.exp(log_evidence_mixed(np.cumsum(n, axis=1), np.cumsum(e, axis=1), w[:, None, :]))
    means = m.mean(axis=0)
    crossed = int((m.max(axis=1) >= 1 / ALPHA).sum())
    print(f"E[M] at minutes 10/60/120: {means[9]:.3f} {means[59]:.3f} {means[-1]:.3f}; crossed 1/α: {crossed}/{paths}")
    assert (means < 1 + 4 * m.std(axis=0) / np.sqrt(paths)).all()  # E[M_t] <= 1, within Monte Carlo error
    assert upper_ci(crossed, paths) <= ALPHA  # Ville: sup M_t reaches 1/α at most α of the time
    # Fitted to the traffic, it proves a share near the bound sooner than the first watch's single Beta(1, 49),
    # and one far from it within a minute of it.
    for share, faster in ((0.016, True), (0.005, False)):
        near = rng.binomial(n.astype(int)[:200], share).astype(float)
        cn, ce = np.cumsum(n[:200], axis=1), np.cumsum(near, axis=1)
        fitted = log_evidence_mixed(cn, ce, fitted_prior(n[:200, 0])[:, None, :]) >= np.log(1 / ALPHA)
        single = log_evidence(cn, ce) >= np.log(1 / ALPHA)
        first = [np.median(np.where(x.any(axis=1), np.argmax(x, axis=1), minutes)) + 1 for x in (fitted, single)]
        print(f"share {share}, 600/min: fitted mixture at minute {first[0]:.0f}, Beta(1, 49) at {first[1]:.0f}")
        assert first[0] < first[1] if faster else first[0] <= first[1] + 1


def test_the_incident_rate_e_process_keeps_alpha_both_ways_and_its_bound_covers() -> None:
    rng = np.random.default_rng(4)
    bound, minutes, paths = 1 / 120, 3000, 4000
    k = np.cumsum(rng.poisson(bound, (paths, minutes)), axis=1)  # exactly at the bound
    t = np.arange(1, minutes + 1)
    below = ir.log_rate_evidence(k, t, bound, below=True).max(axis=1) >= np.log(1 / ALPHA)
    above = ir.log_rate_evidence(k, t, bound, below=False).max(axis=1) >= np.log(1 / ALPHA)
    print(f"rate at the bound: 'below' crossed {below.sum()}/{paths}, 'above' {above.sum()}/{paths}")
    assert upper_ci(int(below.sum()), paths) <= ALPHA and upper_ci(int(above.sum()), paths) <= ALPHA
    every = np.arange(99, minutes, 100)  # the upper confidence sequence covers the true rate at every look
    uncovered = (ir.rate_upper(k[:, every], t[every], alpha=ALPHA) < bound).any(axis=1)
    assert upper_ci(int(uncovered.sum()), paths) <= ALPHA
    # Incident-free exposure is what proves a low rate: about ln(1/α)/λ* minutes of it.
    quiet = ir.log_rate_evidence(0, np.array([100.0, 400.0, 1000.0]), 1 / 100)
    assert quiet[0] < np.log(1 / ALPHA) < quiet[2]


def test_incident_minutes_find_a_mild_incident_at_low_traffic_and_not_the_noise() -> None:
    rng = np.random.default_rng(8)
    n = rng.poisson(100, (1, 20_000)).astype(float)
    e = rng.binomial(n.astype(int), 0.02).astype(float)
    assert ir.incident_minutes(n, e).sum() < 20  # two weeks of noise at 2 %: almost no incident minute
    e[0, 500:530] = rng.binomial(n[0, 500:530].astype(int), 0.08)  # 8 % for half an hour at 100 requests a minute
    mask = ir.incident_minutes(n, e)
    assert mask[0, 500:530].mean() > 0.8
    assert ir.count_incidents(mask)[0] == 1 + ir.count_incidents(ir.incident_minutes(n[:, :500], e[:, :500]))[0] \
        + ir.count_incidents(ir.incident_minutes(n[:, 540:], e[:, 540:]))[0]
    # A minute's status never depends on a later minute beyond the settling delay.
    cut = 515
    early = ir.incident_minutes(n[:, :cut], e[:, :cut])
    assert (early[0, :cut - ir.SETTLE] == mask[0, :cut - ir.SETTLE]).all()


def decide(regime: str, canaries: int, minutes: int, seed: int, **kw: object) -> tuple[np.ndarray, np.ndarray]:
    c = simulate(np.random.default_rng(seed), REGIME[regime], canaries=canaries, minutes=minutes, **kw)
    return first_decisions(c.requests, c.errors, alpha=ALPHA, history=c.history, stable=c.stable)


@pytest.mark.parametrize("regime", ["medium", "rare"])
def test_rare_incidents_do_not_make_a_false_go_and_the_guard_is_why(regime: str) -> None:
    # Canary, stable and the stable's 14 days all at a long-run 2 %: every GO is false.
    canaries, minutes = 200, 720
    c = simulate(np.random.default_rng(40), REGIME[regime], canaries=canaries, minutes=minutes, share=0.02)
    go, _ = first_decisions(c.requests, c.errors, alpha=ALPHA, history=c.history, stable=c.stable)
    unguarded, _ = first_decisions(c.requests, c.errors, alpha=ALPHA, history=c.history, stable=c.stable, guard=False)
    k, k0 = int((go >= 0).sum()), int((unguarded >= 0).sum())
    print(f"{regime}: false GO {k}/{canaries} (95% upper {upper_ci(k, canaries):.3f}); request evidence alone {k0}")
    assert upper_ci(k, canaries) <= ALPHA
    assert k0 / canaries > 4 * ALPHA  # without the guard the quiet stretches between incidents look proven


@pytest.mark.parametrize("regime", ["medium", "rare"])
def test_a_good_canary_is_go_within_a_working_day_and_a_bad_one_is_stopped(regime: str) -> None:
    go, nogo = decide(regime, 100, 480, 41, share=0.005)  # R = 0.995 beside a stable as good
    assert np.mean(go >= 0) >= 0.9 and np.mean(nogo >= 0) <= ALPHA
    go, nogo = decide(regime, 100, 480, 42, share=0.03, stable_share=0.005)  # R = 0.97: a regression
    assert np.mean(nogo >= 0) >= 0.9 and (go < 0).all()
    print(f"{regime}: the regression is stopped at a median minute {np.median(nogo[nogo >= 0]) + 1:.0f}")


def test_a_stable_at_the_boundary_leaves_no_room_and_the_look_says_until_when() -> None:
    from datetime import datetime, timezone

    from reliability.gate.watch import explain

    rng = np.random.default_rng(43)
    stable = simulate(rng, REGIME["rare"], canaries=1, minutes=1, share=0.02)  # its 14 days at the boundary
    n = rng.poisson(600, 120).astype(float)
    e = rng.binomial(n.astype(int), 0.005).astype(float)  # two hours of a clean canary at R = 0.995
    lk = look(n, e, history=stable.history, threshold=0.98, alpha=ALPHA)
    assert lk.decision is None and lk.room <= 0 and lk.incidents == 0
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    sentence = explain(lk, None, start)
    assert "no incident-free exposure long enough yet" in sentence and "watch until" in sentence, sentence
    # The time it names is where route B's bound leaves the room the 5xx outside incidents need.
    room = 0.02 - lk.quiet_errors / lk.quiet_requests
    at = lk.go_after - ir.SETTLE
    assert float(ir.rate_upper(lk.incidents, at, alpha=ALPHA / 2)) * lk.stable_severity == pytest.approx(room, rel=1e-3)
    # Without any history the documented prior stands in, and the sentence says so.
    none = look(n[:10], e[:10], threshold=0.98, alpha=ALPHA)
    assert np.isnan(none.stable_rate) and none.decision is None
    assert "no stable history" in explain(none, None, start) or none.room > 0


def test_the_stable_beside_the_canary_excuses_a_shared_incident_and_finds_a_regression() -> None:
    rng = np.random.default_rng(44)
    pairs, minutes = 400, 240
    share = np.zeros((pairs, minutes))
    share[:, 30:50] = 0.3  # a database outage hits both versions for 20 minutes
    cn, sn = rng.poisson(60, (pairs, minutes)), rng.poisson(540, (pairs, minutes))
    ce, se = rng.binomial(cn, 0.002 + share), rng.binomial(sn, 0.002 + share)
    better, worse = relative_evidence(cn, ce, sn, se)
    bar = np.log(1 / ALPHA)
    assert upper_ci(int((worse.max(axis=1) >= bar).sum()), pairs) <= ALPHA  # the shared outage is not the canary's
    assert np.mean(better[:, -1] >= bar) > 0.9                              # it proves the canary no worse
    # A canary-only regression (4x the stable's 5xx rate, a 10 % canary at 0.8 %) is found within half an hour.
    _, worse = relative_evidence(cn, rng.binomial(cn, 0.008), sn, rng.binomial(sn, 0.002))
    found = np.argmax(worse >= bar, axis=1)
    assert (worse.max(axis=1) >= bar).mean() > 0.95 and np.median(found) < 30
    print(f"canary-only regression found at a median minute {np.median(found) + 1:.0f}")
    # At exactly the margin (1.5x), neither side is claimed more than α of the time, looked at every minute
    # (Ville's bound is nearly tight here: the count must not be significantly above α, at 1 %).
    pairs = 2000
    cn, sn = rng.poisson(60, (pairs, minutes)), rng.poisson(540, (pairs, minutes))
    better, worse = relative_evidence(cn, rng.binomial(cn, 0.003), sn, rng.binomial(sn, 0.002))
    for name, side in (("not worse", better), ("worse", worse)):
        k = int((side.max(axis=1) >= bar).sum())
        print(f"at the margin: '{name}' claimed {k}/{pairs}")
        assert k <= binom.ppf(0.99, pairs, ALPHA)
