"""Simulated traffic whose 5xx come in incidents, to check that a bound keeps its promise.

A bound's promise is a statement about repeated windows: if the true long-run 5xx rate is exactly
2 %, the gate says GO at most 5 % of the time. Real histories are one window each, so the promise
can only be checked on simulated ones. The model is the simplest with incidents: a two-state
Markov process alternates between *quiet* and *incident*. Each state lasts an exponential time, the
incident with mean ``incident_minutes`` and the quiet state long enough that incidents take
``incident_share`` of the time. Requests are Poisson at ``rps``. A request fails with probability
``p_quiet`` in the quiet state and ``p_incident`` during an incident. The two are chosen so that
the long-run 5xx rate is exactly ``1 - r``, with ``baseline`` of that rate arriving while quiet.

:func:`expected_incidents` and :func:`window_for` turn the same parameters into what a window can
show: a window expecting fewer than about 20 incidents cannot bound the rate (docs/statistics.md).
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd


def rates(*, r: float, incident_share: float, baseline: float = 0.2) -> tuple[float, float]:
    """``(p_quiet, p_incident)``: 5xx probabilities giving long-run rate ``1 - r``."""
    if not 0 < incident_share < 1:
        raise ValueError(f"incident_share must lie in (0, 1), got {incident_share!r}")
    if not 0 <= baseline < 1:
        raise ValueError(f"baseline must lie in [0, 1), got {baseline!r}")
    p = 1.0 - r
    quiet = p * baseline
    incident = (p - (1 - incident_share) * quiet) / incident_share
    if not 0 <= incident <= 1:
        raise ValueError(f"no incident 5xx rate gives R = {r} with incidents {incident_share:.1%} of the time; "
                         "raise incident_share or r")
    return quiet, incident


def expected_incidents(*, hours: float, incident_minutes: float, incident_share: float) -> float:
    """Incidents a window of ``hours`` holds on average: one per cycle of incident plus quiet time."""
    return hours * 60.0 * incident_share / incident_minutes


def window_for(*, incident_minutes: float, incident_share: float, incidents: float = 20.0) -> float:
    """Hours of history that hold ``incidents`` incidents on average (20: enough to bound R)."""
    return incidents * incident_minutes / (60.0 * incident_share)


def simulate(
    rng: np.random.Generator,
    *,
    hours: float,
    rps: float,
    incident_minutes: float,
    incident_share: float,
    r: float = 0.98,
    baseline: float = 0.2,
    step: float = 60.0,
    windows: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``windows`` independent windows of per-step counts.

    Returns
    -------
    tuple of numpy arrays
        ``(requests, errors, incidents)``: two ``windows x steps`` arrays of counts per step, and
        the number of incidents each window overlapped.
    """
    steps = int(hours * 3600 // step)
    on = incident_minutes * 60.0
    off = on * (1 - incident_share) / incident_share
    quiet, incident = rates(r=r, incident_share=incident_share, baseline=baseline)
    cycles = int(steps * step / (on + off) * 2 + 30)
    edges = np.arange(steps + 1) * step
    share = np.empty((windows, steps))
    overlapped = np.empty(windows, dtype=np.int64)
    for w in range(windows):
        first_on = rng.random() < incident_share  # start in the stationary distribution
        d_on, d_off = rng.exponential(on, cycles), rng.exponential(off, cycles)
        pairs = (d_on, d_off) if first_on else (d_off, d_on)
        durations = np.column_stack(pairs).ravel()
        is_on = np.tile([1.0, 0.0] if first_on else [0.0, 1.0], cycles)
        bounds = np.concatenate([[0.0], np.cumsum(durations)])
        on_time = np.concatenate([[0.0], np.cumsum(durations * is_on)])
        share[w] = np.diff(np.interp(edges, bounds, on_time)) / step
        starts = bounds[:-1][is_on == 1]
        overlapped[w] = int(np.sum(starts < edges[-1]))  # the one running at t = 0 included
    requests = rng.poisson(rps * step, size=(windows, steps))
    errors = rng.binomial(requests, quiet + share * (incident - quiet))
    return requests.astype(float), errors.astype(float), overlapped


def frame(requests: np.ndarray, errors: np.ndarray, *, step: float = 60.0,
          start: str = "2026-01-01T00:00:00Z") -> pd.DataFrame:
    """One simulated window as the per-step frame the bounds take (``time, requests, errors``)."""
    times = pd.Timestamp(start) + pd.to_timedelta(np.arange(1, len(requests) + 1) * step, unit="s")
    return pd.DataFrame({"time": times, "requests": requests, "errors": errors})



@dataclass(frozen=True)
class Regime:
    """One incident process and window: what a simulated gate run is about."""

    incident_minutes: float
    incident_share: float
    rps: float
    hours: float

    @property
    def incidents(self) -> float:
        """Incidents the window holds on average."""
        return expected_incidents(hours=self.hours, incident_minutes=self.incident_minutes,
                                  incident_share=self.incident_share)

    def __str__(self) -> str:
        return (f"{self.incident_minutes:g} min incidents, {self.incident_share:.0%} of the time, "
                f"{self.rps:g} req/s, {self.hours:g} h")


@dataclass(frozen=True)
class Trial:
    """What a gate said on ``windows`` simulated windows of one regime at long-run R ``r``.

    ``go`` counts GO windows; ``few_units`` those the gate refused because the 5xx came in too few
    bursts; ``failing`` those whose observed R was not above the bar (NO-GO evidence); ``quiet``
    the windows without any incident, and ``quiet_go`` how many of those were GO (a window without
    an incident cannot show that incidents happen).
    """

    regime: Regime
    r: float
    windows: int
    go: int
    few_units: int
    failing: int
    quiet: int
    quiet_go: int

    @property
    def go_rate(self) -> float:
        return self.go / self.windows

    @property
    def go_upper(self) -> float:
        """Upper end of the 95 % (two-sided Wilson) Monte Carlo interval of the GO rate."""
        from reliability.analysis.stats.bounds import interval

        return interval(self.go, self.windows, confidence=0.95, method="wilson")[1]


def trial(regime: Regime, decide: Callable[[pd.DataFrame], Any], *, windows: int, seed: int,
          r: float = 0.98) -> Trial:
    """Run ``decide`` (step counts -> RBound) on ``windows`` simulated windows of ``regime``."""
    rng = np.random.default_rng(seed)
    requests, errors, overlapped = simulate(rng, hours=regime.hours, rps=regime.rps, r=r, windows=windows,
                                            incident_minutes=regime.incident_minutes,
                                            incident_share=regime.incident_share)
    go = few = failing = quiet_go = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # each refused window warns; the trial counts them instead
        for i in range(windows):
            bound = decide(frame(requests[i], errors[i]))
            go += bool(bound.passes)
            few += "too few independent bursts" in bound.shortfall
            failing += bound.r <= bound.threshold
            quiet_go += bool(bound.passes) and overlapped[i] == 0
    return Trial(regime, r, windows, go, few, failing, int((overlapped == 0).sum()), quiet_go)


def fixed_buckets(steps: pd.DataFrame, *, bucket_steps: int = 5) -> Any:
    """The gate's bound before the clustered-failures work, kept to compare against.

    phi is Pearson's statistic over fixed 5-step buckets, taken as known, as in
    ``bound_r(requests, errors, phi=dispersion(buckets))``.
    """
    from reliability.analysis.stats.dispersion import dispersion
    from reliability.analysis.stats.rbound import bound_r

    idx = np.arange(len(steps)) // bucket_steps
    n, e = steps["requests"].to_numpy(), steps["errors"].to_numpy()
    buckets = pd.DataFrame({"requests": np.bincount(idx, weights=n), "errors": np.bincount(idx, weights=e)})
    return bound_r(n.sum(), e.sum(), phi=dispersion(buckets))
