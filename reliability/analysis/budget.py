"""Error budget and burn rates, so we see how fast the 2 % allowance is spent, not only whether.

One definition everywhere (the report, the dashboard, the exploration notebook), as Sloth and
Pyrra define it: with an SLO of R >= 0.98 the error budget of a stretch of history is 2 % of
its requests, and the share spent is its 5xx over that allowance. Every figure says which days
of data it covers, since a "30-day" budget over a week of monitoring is a week's budget. A burn rate is the observed 5xx
ratio over a window divided by that allowance: 1 spends the budget exactly over the SLO period,
14.4 spends 2 % of a 30-day budget in one hour. The multi-window alert pairs below follow the
Google SRE Workbook ("Alerting on SLOs"): a pair burns when both its long and its short window
exceed the threshold, the short window making the alert reset quickly once the burn stops.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import pandas as pd

from reliability.errors import NoDataError

__all__ = [
    "BURN_RATE_ALERTS",
    "BURN_RATE_WINDOWS",
    "BurnRateAlert",
    "ErrorBudget",
    "burn_rate",
    "burn_rates",
    "error_budget",
]

BURN_RATE_WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")


@dataclass(frozen=True)
class BurnRateAlert:
    """One multi-window burn-rate alert: it fires when both windows burn faster than threshold."""

    severity: str
    long_window: str
    short_window: str
    threshold: float


BURN_RATE_ALERTS = (
    BurnRateAlert("page", "1h", "5m", 14.4),
    BurnRateAlert("page", "6h", "30m", 6.0),
    BurnRateAlert("ticket", "1d", "2h", 3.0),
    BurnRateAlert("ticket", "3d", "6h", 1.0),
)


def _check_slo(slo: float) -> float:
    if math.isnan(slo) or not 0 < slo < 1:
        raise ValueError(f"slo must lie in (0, 1), e.g. 0.98, got {slo!r}")
    return float(slo)


@dataclass(frozen=True)
class ErrorBudget:
    """How much of a window's error allowance was spent (``remaining < 0`` when overspent)."""

    requests: float
    errors: float
    slo: float
    allowed_errors: float
    consumed: float
    remaining: float
    days: float | None = None  # the days of data the counts cover, when known

    @property
    def overspent(self) -> bool:
        """True when more 5xx occurred than the SLO allows for this traffic."""
        return self.remaining < 0

    @property
    def summary(self) -> pd.DataFrame:
        """One-row table of every field."""
        return pd.DataFrame([asdict(self) | {"overspent": self.overspent}])

    def describe(self) -> str:
        """The figure in words, with what it covers: "14.7% of the error budget of 14.0 days of data"."""
        days = f" of {self.days:.1f} days of data" if self.days is not None else ""
        return (f"{self.consumed:.1%} of the error budget{days} consumed ({self.errors:,.0f} 5xx of "
                f"{self.allowed_errors:,.0f} allowed: {1 - self.slo:.0%} of {self.requests:,.0f} requests)")


def error_budget(requests: float, errors: float, *, slo: float = 0.98, days: float | None = None) -> ErrorBudget:
    """Spend of the error budget in a window: allowed 5xx are ``(1 - slo) * requests``.

    Parameters
    ----------
    requests, errors
        All requests and the 5xx among them in the window.
    slo
        Target for R; the budget is the complement.
    days
        How many days of data the counts cover (carried into :meth:`ErrorBudget.describe`).

    Returns
    -------
    ErrorBudget
        ``consumed = errors / allowed_errors`` (1.0: exactly spent) and
        ``remaining = 1 - consumed``, negative when overspent.

    Raises
    ------
    NoDataError
        No requests or NaN counts: a window without traffic has no budget to report.
    """
    slo = _check_slo(slo)
    requests, errors = float(requests), float(errors)
    if math.isnan(requests) or math.isnan(errors) or requests == 0:
        raise NoDataError(
            f"requests={requests}, errors={errors}: no traffic in the window, "
            "so no error budget can be computed; query a window with traffic"
        )
    if requests < 0 or errors < 0 or errors > requests:
        raise ValueError(f"need 0 <= errors <= requests, got errors={errors}, requests={requests}")
    allowed = (1 - slo) * requests
    consumed = errors / allowed
    return ErrorBudget(requests, errors, slo, allowed, consumed, 1 - consumed, days)


def burn_rate(error_ratio: float, *, slo: float = 0.98) -> float:
    """How many times faster than sustainable the budget burns: ``error_ratio / (1 - slo)``.

    NaN (a window without traffic) stays NaN, never 0.
    """
    slo = _check_slo(slo)
    ratio = float(error_ratio)
    if not math.isnan(ratio) and not 0 <= ratio <= 1:
        raise ValueError(f"error_ratio must lie in [0, 1] or be NaN, got {ratio!r}")
    return ratio / (1 - slo)


def burn_rates(ratios: Mapping[str, float | None], *, slo: float = 0.98) -> pd.DataFrame:
    """Which multi-window burn-rate alerts would be firing, given each window's 5xx ratio.

    Parameters
    ----------
    ratios
        5xx ratio per window, keyed by the names in :data:`BURN_RATE_WINDOWS`
        (``"5m"`` ... ``"3d"``). A missing key, None or NaN means the window had no traffic.
    slo
        Target for R.

    Returns
    -------
    pandas.DataFrame
        One row per :data:`BURN_RATE_ALERTS` pair: ``severity``, ``long_window``,
        ``short_window``, ``threshold``, ``long_ratio``, ``short_ratio``, ``long_burn_rate``,
        ``short_burn_rate``, ``burning`` (nullable boolean: both burn rates above the threshold;
        NA when either window has no data) and ``status`` (``"burning"``, ``"ok"`` or
        ``"no data"``). Missing data is reported as ``"no data"``, never as a zero burn.
    """
    slo = _check_slo(slo)
    unknown = set(ratios) - set(BURN_RATE_WINDOWS)
    if unknown:
        raise ValueError(
            f"unknown window(s) {sorted(unknown)}; use {', '.join(BURN_RATE_WINDOWS)}"
        )

    def ratio(window: str) -> float:
        value = ratios.get(window)
        return math.nan if value is None else float(value)

    rows = []
    for alert in BURN_RATE_ALERTS:
        long_ratio, short_ratio = ratio(alert.long_window), ratio(alert.short_window)
        long_burn, short_burn = burn_rate(long_ratio, slo=slo), burn_rate(short_ratio, slo=slo)
        if math.isnan(long_burn) or math.isnan(short_burn):
            burning, status = pd.NA, "no data"
        else:
            burning = long_burn > alert.threshold and short_burn > alert.threshold
            status = "burning" if burning else "ok"
        rows.append(asdict(alert) | {
            "long_ratio": long_ratio,
            "short_ratio": short_ratio,
            "long_burn_rate": long_burn,
            "short_burn_rate": short_burn,
            "burning": burning,
            "status": status,
        })
    frame = pd.DataFrame(rows)
    frame["burning"] = frame["burning"].astype("boolean")
    return frame
