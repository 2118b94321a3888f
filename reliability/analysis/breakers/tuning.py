"""Choosing a breaker configuration from a what-if grid: what each costs in failed and rejected calls."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from reliability.errors import ConfigurationError, NoDataError


def breaker_tradeoff(whatif: pd.DataFrame) -> pd.DataFrame:
    """What each breaker configuration costs and saves, from :func:`reliability.analysis.breakers.whatif` means.

    Adds ``failures_blocked`` (failed calls kept off the dependency), ``good_rejected``
    (calls turned away that would have succeeded: the breaker's own user-visible errors),
    ``failed_share`` (share of the failures that still reached the dependency) and ``pareto``
    (no other configuration is at least as good on both ``failed_calls_allowed_mean`` and
    ``good_rejected`` and better on one).
    """
    out = whatif.copy()
    out["failures_blocked"] = out["failures"] - out["failed_calls_allowed_mean"]
    out["good_rejected"] = (out["rejected_mean"] - out["failures_blocked"]).clip(lower=0)
    out["failed_share"] = (out["failed_calls_allowed_mean"] / out["failures"]).where(out["failures"] > 0)
    failed, good = out["failed_calls_allowed_mean"].to_numpy(), out["good_rejected"].to_numpy()
    dominated = [bool(np.any((failed <= f) & (good <= g) & ((failed < f) | (good < g))))
                 for f, g in zip(failed, good, strict=True)]
    out["pareto"] = ~np.asarray(dominated, dtype=bool)
    return out


@dataclass(frozen=True)
class BreakerChoice:
    """The recommended breaker configuration beside the one in force, with the trade-off in calls."""

    best: pd.Series
    current: pd.Series | None
    failed_call_weight: float
    reason: str

    @property
    def summary(self) -> pd.DataFrame:
        rows = [self.best.rename("recommended")]
        if self.current is not None:
            rows.append(self.current.rename("in force"))
        return pd.DataFrame(rows)


def choose_breaker(tradeoff: pd.DataFrame, *, failed_call_weight: float = 2.0,
                   current: tuple[str, float, float] | None = ("consecutive", 5, 60.0)) -> BreakerChoice:
    """Pick the configuration with the lowest cost ``good_rejected + weight * failed_calls_allowed``.

    A rejected good call is one user-visible error; a failed call that reaches a failing
    dependency is one too, plus its wait and the load that slows the dependency's recovery:
    ``failed_call_weight`` says how many rejected calls one such failure is worth.
    ``current`` is ``(policy, failure_threshold, timeout)`` of the configuration in force.
    """
    if tradeoff.empty:
        raise NoDataError("no breaker configurations to choose from")
    if not failed_call_weight >= 0:
        raise ConfigurationError(f"failed_call_weight must be >= 0, got {failed_call_weight!r}")
    cost = tradeoff["good_rejected"] + failed_call_weight * tradeoff["failed_calls_allowed_mean"]
    ranked = tradeoff.assign(cost=cost).sort_values(["cost", "policy", "failure_threshold", "timeout"], kind="stable")
    best = ranked.iloc[0]
    now = None
    if current is not None:
        mask = ((ranked["policy"] == current[0]) & (ranked["failure_threshold"] == current[1])
                & (ranked["timeout"] == current[2]))
        now = ranked[mask].iloc[0] if mask.any() else None

    def name(row: pd.Series) -> str:
        unit = "% failure rate" if row["policy"] == "rate" else " consecutive failures"
        return f"{row['policy']} breaker, {row['failure_threshold']:g}{unit}, {row['timeout']:g} s open"

    reason = (f"{name(best)}: {best['failed_calls_allowed_mean']:,.0f} failed calls reach the dependency "
              f"({best['failed_share']:.0%} of its failures) and {best['good_rejected']:,.0f} good calls are rejected")
    if now is not None and now.name != best.name:
        d_failed = now["failed_calls_allowed_mean"] - best["failed_calls_allowed_mean"]
        d_good = best["good_rejected"] - now["good_rejected"]
        reason += (f"; against the configuration in force ({name(now)}: {now['failed_calls_allowed_mean']:,.0f} "
                   f"failed, {now['good_rejected']:,.0f} good rejected) that is {abs(d_failed):,.0f} "
                   f"{'fewer' if d_failed >= 0 else 'more'} failed calls for {abs(d_good):,.0f} "
                   f"{'more' if d_good >= 0 else 'fewer'} rejected good calls")
    elif now is not None:
        reason += "; that is the configuration in force"
    return BreakerChoice(best, now, float(failed_call_weight), reason)
