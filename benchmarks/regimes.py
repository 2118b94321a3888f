"""Canaries under incident regimes the watch was not tuned on: an independent simulator.

Written apart from :mod:`reliability.analysis.stats.incidents` (the fixed bound's Markov model) so
the watch is judged on processes it has not seen. Per minute, for a canary watched up to a day:

* **traffic** follows the day, 100 to 900 requests a minute (500 - 400 cos(2π·hour/24)), each
  canary starting at a random time of day; the stable version takes ``1/split - 1`` times as
  many requests in the same minutes;
* **incidents** are an alternating renewal process: incident-free gaps are exponential (Poisson
  onsets), incidents last a uniform number of minutes in ``length``; one timeline per canary, shared
  by the canary, the stable version beside it and the stable's history before it (a database
  outage hits both, and the history has the same kind of incidents);
* **calibration**: incidents take a fraction p = E[length] / (E[gap] + E[length]) of the time
  (exactly, in the stationary process, which each timeline starts in), and bring ``weight`` of all
  5xx. With long-run 5xx share S the share inside an incident is weight·S/p, outside it
  (1 - weight)·S/(1 - p), so p·inside + (1 - p)·outside = S. Traffic does not depend on the
  incidents, so the request-weighted long-run share is S as well: every GO of a canary at S = 2 %
  is false. A minute partly inside an incident gets the time-weighted share.
* **the slow ramp** has no incidents: the 5xx share rises linearly over each day from 0.2·S to
  1.8·S (mean S), the canary starting at the day's low.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DAY = 1440


@dataclass(frozen=True)
class Regime:
    """One incident pattern; ``every`` is the mean minutes from one onset to the next (None: no incidents)."""

    name: str
    every: float | None = None
    length: tuple[float, float] = (1.0, 1.0)
    weight: float = 0.0
    ramp: bool = False

    @property
    def p(self) -> float:
        """The share of time spent inside incidents."""
        return 0.0 if self.every is None else float(np.mean(self.length)) / self.every

    def shares(self, s: float) -> tuple[float, float]:
        """``(outside, inside)``: the 5xx share out of and in an incident for a long-run share ``s``."""
        if self.every is None:
            return s, s
        inside = self.weight * s / self.p
        if inside > 1:
            raise ValueError(f"{self.name}: no incident share gives a long-run share of {s}")
        return (1 - self.weight) * s / (1 - self.p), inside


REGIMES = (
    Regime("independent requests"),
    Regime("frequent, short (every ~30 min, 2-4 min)", every=30.0, length=(2.0, 4.0), weight=0.5),
    Regime("medium (every ~3 h, 10-20 min)", every=180.0, length=(10.0, 20.0), weight=0.6),
    Regime("rare, severe (twice a day, 30-60 min)", every=720.0, length=(30.0, 60.0), weight=0.8),
    Regime("slow daily ramp (0.2x to 1.8x over the day)", ramp=True),
)


def incident_time(rng: np.random.Generator, regime: Regime, minutes: int) -> np.ndarray:
    """Per minute, the fraction of it spent inside an incident (one stationary timeline)."""
    if regime.every is None:
        return np.zeros(minutes)
    mean_len = float(np.mean(regime.length))
    gap = regime.every - mean_len
    cycles = int(minutes / regime.every * 1.5) + 20
    lengths = rng.uniform(*regime.length, cycles)
    gaps = rng.exponential(gap, cycles)
    # Start in the stationary process: inside an incident with probability p (its length-biased residual
    # approximated by a uniform share of a fresh one), else in a gap (exponential: memoryless).
    inside = rng.random() < regime.p
    first = lengths[0] * rng.random() if inside else 0.0
    durations = np.column_stack([np.r_[first, lengths[1:]], gaps]).ravel() if inside else \
        np.column_stack([gaps, lengths]).ravel()
    is_on = np.tile([1.0, 0.0] if inside else [0.0, 1.0], cycles)
    bounds = np.concatenate([[0.0], np.cumsum(durations)])
    on_time = np.concatenate([[0.0], np.cumsum(durations * is_on)])
    return np.diff(np.interp(np.arange(minutes + 1.0), bounds, on_time))


@dataclass(frozen=True)
class Canaries:
    """Per-minute counts, ``canaries x minutes``: the canary, the stable beside it, the stable's history."""

    requests: np.ndarray
    errors: np.ndarray
    stable: tuple[np.ndarray, np.ndarray]
    history: tuple[np.ndarray, np.ndarray]


def simulate(rng: np.random.Generator, regime: Regime, *, canaries: int, minutes: int = DAY, share: float = 0.02,
             stable_share: float | None = None, lookback: int = 14 * DAY, split: float = 0.1,
             worse_incidents: bool = False) -> Canaries:
    """``canaries`` canaries at long-run 5xx share ``share``, the stable at ``stable_share`` (default: the same).

    ``worse_incidents``: the canary's 5xx share outside incidents is the stable's, all of its extra 5xx come
    inside the incidents they share (a release that makes every outage worse, and nothing else).
    """
    stable_share = share if stable_share is None else stable_share
    total = lookback + minutes
    phase = rng.uniform(0, DAY, (canaries, 1))
    t = np.arange(-lookback, minutes)[None, :]
    traffic = 500.0 - 400.0 * np.cos(2 * np.pi * (t + phase) / DAY)
    on = np.stack([incident_time(rng, regime, total) for _ in range(canaries)])
    level = 0.2 + 1.6 * (t % DAY) / DAY if regime.ramp else np.ones((1, 1))  # the canary starts at the day's low

    def counts(s: float, scale: float, part: slice, worse: bool = False) -> tuple[np.ndarray, np.ndarray]:
        outside, inside = regime.shares(s)
        if worse:
            outside = regime.shares(stable_share)[0]
            inside = (s - (1 - regime.p) * outside) / regime.p
        lv = np.broadcast_to(level, on.shape)[:, part]
        p = np.clip(lv * (outside + on[:, part] * (inside - outside)), 0.0, 1.0)
        n = rng.poisson(traffic[:, part] * scale)
        return n.astype(float), rng.binomial(n, p).astype(float)

    past, now = slice(0, lookback), slice(lookback, total)
    n, e = counts(share, 1.0, now, worse_incidents)
    stable = counts(stable_share, 1 / split - 1, now)
    history = counts(stable_share, 1 / split - 1, past)
    return Canaries(n, e, stable, history)
