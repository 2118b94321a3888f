"""Candidate against the stable version beside it, sequentially, on the counts of the same minutes.

Traffic split between a canary and its stable version shares their incidents: a database outage
hits both. Compared minute by minute, such an incident says nothing against the canary, while a
regression of the canary alone shows at once. Given a minute's 5xx of both versions, each is the
canary's with probability ρπ/(ρπ + 1 - π), π the canary's share of that minute's requests and ρ the
ratio of the two versions' 5xx rates: the conditional binomial, which needs no model of the
incidents or of the traffic split. The likelihood ratio of ρ against ρ = ``margin``, mixed over a
log-uniform grid of ρ below (or above) it, is a test supermartingale under the null whatever the
minutes' traffic and incidents (a mixture of likelihood ratios, each one for every conditional
step), so its evidence can be looked at every minute.
"""
from __future__ import annotations

import numpy as np
from scipy import special

#: "Not worse" means a 5xx rate under this many times the stable's, over the same minutes.
RATIO_MARGIN = 1.5
_RATIOS = np.exp(np.linspace(np.log(0.05), np.log(20.0), 41))


def relative_evidence(cn: np.ndarray, ce: np.ndarray, sn: np.ndarray, se: np.ndarray, *,
                      margin: float | np.ndarray = RATIO_MARGIN) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative log e-values per canary and minute (``canaries x minutes``): that the canary's 5xx rate
    is below ``margin`` times the stable's (not worse), and that it is above it (worse). ``margin`` may
    differ per canary (one value per row), fixed before the canary's first minute."""
    cn, ce, sn, se = (np.atleast_2d(np.asarray(x, dtype=float)) for x in (cn, ce, sn, se))
    m = np.broadcast_to(np.asarray(margin, dtype=float).reshape(-1, 1), (len(cn), 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        pi = np.where(cn + sn > 0, cn / np.maximum(cn + sn, 1e-300), 0.5)

    def share(rho: float | np.ndarray) -> np.ndarray:
        return np.clip(rho * pi / (rho * pi + 1 - pi), 1e-12, 1 - 1e-12)

    null = share(m)
    steps = np.stack([np.cumsum(ce * np.log(share(rho) / null) + se * np.log((1 - share(rho)) / (1 - null)), axis=1)
                      for rho in _RATIOS])
    out = []
    for below in (True, False):
        side = (_RATIOS[:, None, None] < m[None] / 1.001) if below else (_RATIOS[:, None, None] > m[None] * 1.001)
        count = np.maximum(side.sum(axis=0), 1)
        out.append(special.logsumexp(np.where(side, steps, -np.inf), axis=0) - np.log(count))
    return out[0], out[1]
