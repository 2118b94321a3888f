"""The watch under incident regimes it was not tuned on: false GO, time to GO and to NO-GO, before and after.

Canaries from :mod:`benchmarks.regimes` (an independent simulator: traffic following the day,
incidents as a renewal process shared with the stable version and its 14-day history, every regime
calibrated to its stated long-run 5xx share), watched every minute for up to 24 h through
``reliability.analysis.stats.sequential.first_decisions`` exactly as ``reliability watch`` decides:

* **false GO**: canary and stable at a long-run share of exactly 2 % (R = 0.98), so every GO is
  false; with the two-sided 95 % Wilson interval's upper end of the simulated rate;
* **good canary**: canary and stable at R = 0.995: the share that reaches GO within 24 h, the
  median minutes to it, and the share wrongly stopped (NO-GO);
* **bad canary**: canary at R = 0.97 beside a stable at R = 0.995 (a regression): NO-GO within
  24 h and the median minutes to it.

*Before* is the watch as it was (Beta(1, 49) on all requests, φ from every minute, no GO before
60 minutes, no stable history, no comparison), re-implemented here from its pieces; *after* is today's.
Each pair is measured on the same simulated canaries.
"""
from __future__ import annotations

import sys

import numpy as np

from benchmarks.common import Table, cli
from benchmarks.regimes import DAY, REGIMES, Canaries, Regime, simulate

ALPHA = 0.05
BATCH = 200


def before(n: np.ndarray, e: np.ndarray, *, min_steps: int = 60) -> tuple[np.ndarray, np.ndarray]:
    """The first watch's decisions (commit 7dca3eb): all requests, Beta(1, 49), a 60-minute minimum."""
    from reliability.analysis.stats.martingale import effective_phi, log_evidence

    rows, steps = n.shape
    go, nogo = np.full(rows, -1), np.full(rows, -1)
    cum_n, cum_e, bar = np.cumsum(n, axis=1), np.cumsum(e, axis=1), np.log(1 / ALPHA)
    for t in range(steps):
        open_ = np.flatnonzero((go < 0) & (nogo < 0))
        if not len(open_):
            break
        phi = effective_phi(n[open_, :t + 1], e[open_, :t + 1])
        en, ee = cum_n[open_, t] / phi, cum_e[open_, t] / phi
        g = (t + 1 >= min_steps) & (log_evidence(en, ee, below=True) >= bar)
        b = ~g & (log_evidence(en, ee, below=False) >= bar)
        go[open_[g]], nogo[open_[b]] = t, t
    return go, nogo


def after(c: Canaries) -> tuple[np.ndarray, np.ndarray]:
    from reliability.analysis.stats.sequential import first_decisions

    return first_decisions(c.requests, c.errors, alpha=ALPHA, history=c.history, stable=c.stable)


def decisions(regime: Regime, canaries: int, seed: int, **kw: object) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """First GO and NO-GO minute per canary, before and after, over batches of simulated canaries."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {"before": [], "after": []}
    for size in [BATCH] * (canaries // BATCH) + ([canaries % BATCH] if canaries % BATCH else []):
        c = simulate(rng, regime, canaries=size, minutes=DAY, **kw)  # type: ignore[arg-type]
        out["before"].append(before(c.requests, c.errors))
        out["after"].append(after(c))
    return {k: (np.concatenate([g for g, _ in v]), np.concatenate([b for _, b in v])) for k, v in out.items()}


def share(hits: np.ndarray) -> str:
    return f"{np.mean(hits):.3f}"


def wilson_upper(k: int, n: int) -> float:
    from reliability.analysis.stats.bounds import interval

    return interval(k, n, confidence=0.95, method="wilson")[1]


def minutes(first: np.ndarray) -> str:
    done = first[first >= 0]
    return f"{np.median(done) + 1:.0f}" if len(done) else "-"


def run(quick: bool = False) -> list[Table]:
    canaries = 200 if quick else 600
    rows, stress = [], []
    for i, regime in enumerate(REGIMES):
        bad_go = decisions(regime, canaries, 100 + i, share=0.02)
        good = decisions(regime, canaries, 200 + i, share=0.005)
        bad = decisions(regime, canaries, 300 + i, share=0.03, stable_share=0.005)
        for rule in ("before", "after"):
            k = int((bad_go[rule][0] >= 0).sum())
            rows.append([regime.name, rule, f"{k / canaries:.3f}", f"{wilson_upper(k, canaries):.3f}",
                         share(good[rule][0] >= 0), minutes(good[rule][0]), share(good[rule][1] >= 0),
                         share(bad[rule][1] >= 0), minutes(bad[rule][1]), share(bad[rule][0] >= 0)])
        if regime.every is not None:
            worse = decisions(regime, canaries, 400 + i, share=0.02, stable_share=0.005, worse_incidents=True)
            stress.append([regime.name, *(share(worse[rule][0] >= 0) for rule in ("before", "after"))])
        print(f"  {regime.name}: done", file=sys.stderr, flush=True)
    notes = (f"{canaries} canaries per cell, watched every minute for 24 h; traffic 100-900 requests a minute over the "
             "day, the stable beside it at 9x; the stable's history: the 14 days before, same incident process. "
             "Calibration: incidents take p = E[length]/E[cycle] of the time and bring a fixed part w of all 5xx, so "
             "the share inside is w*S/p and outside (1-w)*S/(1-p): long-run share S exactly (benchmarks/regimes.py).")
    return [
        Table("The watch under incident regimes (before: the first watch; after: with the incident guard and the "
              "stable beside it)",
              ["regime", "watch", "false GO at R = 0.98", "95% upper", "good (0.995): GO in 24 h",
               "median min to GO", "good: NO-GO", "bad (0.97): NO-GO in 24 h", "median min to NO-GO", "bad: GO"],
              rows, notes=notes),
        Table("Outside the guard's assumption: a canary whose every incident is worse than the stable's "
              "(R = 0.98 against the stable's 0.995, its 5xx outside incidents the stable's)",
              ["regime", "false GO before", "false GO after"], stress,
              notes="Before its first incident such a canary cannot be told from its stable by any test on its own "
                    "minutes; route A assumes incidents no more severe than the stable's "
                    "(docs/watch-and-serve.md)."),
    ]


if __name__ == "__main__":
    sys.exit(cli(run, __doc__))
