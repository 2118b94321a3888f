"""The evidence about R for a window: bounds on effective counts, the bar, and whether it is cleared."""
from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from reliability.analysis.stats.bounds import _check_threshold, lower_bound, upper_bound
from reliability.analysis.stats.dispersion import _check_phi
from reliability.analysis.stats.sample_size import required_requests
from reliability.errors import InsufficientDataWarning, NoDataError


@dataclass(frozen=True)
class RBound:
    """Evidence about R for one window (and group): the bounds, the bar, and whether it is cleared.

    ``lower`` assumes independent requests; ``lower_adjusted`` and ``upper_adjusted`` use the
    effective counts ``requests / phi`` and ``errors / phi``. ``upper_adjusted < threshold``
    proves R is below the SLO. ``min_requests`` is :func:`required_requests` at the observed
    5xx ratio (None when that ratio already fails the SLO). ``passes`` requires both
    ``lower_adjusted > threshold`` and ``sufficient``.

    ``units`` is the effective number of independent units behind ``phi`` and ``batch`` the
    batch length (seconds) it was measured at, both None when phi was given
    (:func:`bound_r`). ``dependence`` names how phi was obtained. ``shortfall`` says, in words,
    why the evidence is insufficient ("" when it is sufficient).
    """

    requests: float
    errors: float
    r: float
    lower: float
    lower_adjusted: float
    upper_adjusted: float
    phi: float
    confidence: float
    method: str
    threshold: float
    min_requests: int | None
    sufficient: bool
    passes: bool
    units: float | None = None
    batch: float | None = None
    dependence: str = "phi given"
    shortfall: str = ""

    @property
    def effective_requests(self) -> float:
        """Requests worth of independent evidence: ``requests / phi``."""
        return self.requests / self.phi

    @property
    def summary(self) -> pd.DataFrame:
        """One-row table of every field (min_requests as nullable Int64)."""
        return _summary_frame([asdict(self)])


def _summary_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    if "min_requests" in frame:
        frame["min_requests"] = pd.array(
            [pd.NA if v is None or v != v else int(v) for v in frame["min_requests"]],
            dtype="Int64",
        )
    return frame


def _check_request_counts(requests: float, errors: float) -> tuple[float, float]:
    requests, errors = float(requests), float(errors)
    if math.isnan(requests) or math.isnan(errors):
        raise NoDataError(
            f"requests={requests}, errors={errors} contains NaN: the window has no samples"
        )
    if requests == 0:
        raise NoDataError("requests=0: no traffic in the window, so R cannot be proven")
    if requests < 0 or errors < 0 or math.isinf(requests) or math.isinf(errors):
        raise ValueError(f"requests={requests} and errors={errors} must be finite and >= 0")
    if errors > requests:
        raise ValueError(
            f"errors={errors} exceeds requests={requests}; the 5xx selector must be a subset "
            "of the total (check label matchers and that both use the same window)"
        )
    return requests, errors


def _bound(
    requests: float,
    errors: float,
    *,
    phi: float,
    threshold: float,
    confidence: float,
    method: str,
) -> RBound:
    requests, errors = _check_request_counts(requests, errors)
    phi = _check_phi(phi)
    threshold = _check_threshold(threshold)
    successes = requests - errors
    options = {"confidence": confidence, "method": method}
    lower_adjusted = lower_bound(successes / phi, requests / phi, **options)
    min_requests = required_requests(errors / requests, threshold=threshold, phi=phi, **options)
    sufficient = min_requests is not None and requests >= min_requests
    shortfall = "" if sufficient or min_requests is None else (
        f"{min_requests:,} requests are needed at this 5xx ratio (phi {phi:.3g}); use a longer window")
    return RBound(
        requests=requests,
        errors=errors,
        r=successes / requests,
        lower=lower_bound(successes, requests, **options),
        lower_adjusted=lower_adjusted,
        upper_adjusted=upper_bound(successes / phi, requests / phi, **options),
        phi=phi,
        confidence=confidence,
        method=method,
        threshold=threshold,
        min_requests=min_requests,
        sufficient=sufficient,
        passes=bool(lower_adjusted > threshold and sufficient),
        shortfall=shortfall,
    )


def _short_of_evidence(bound: RBound) -> bool:
    """Too little traffic, as opposed to a ratio that already fails (no traffic would help)."""
    return bound.min_requests is not None and not bound.sufficient


def bound_r(
    requests: float,
    errors: float,
    *,
    phi: float = 1.0,
    threshold: float = 0.98,
    confidence: float = 0.95,
    method: str = "clopper-pearson",
) -> RBound:
    """Bound R for one window so the verdict rests on evidence, adjusted for clustered failures.

    Parameters
    ----------
    requests, errors
        All requests and the 5xx among them in the window (real counts accepted).
    phi
        Dispersion factor from :func:`dispersion`; values below 1 are floored at 1.
    threshold
        The SLO on R (0.98: at most 2 % of requests end in 5xx).
    confidence
        One-sided confidence of the bounds.
    method
        One of :data:`METHODS`.

    Returns
    -------
    RBound

    Raises
    ------
    NoDataError
        No requests, or NaN counts: missing data never passes.
    ValueError
        ``errors > requests`` or negative counts.

    Warns
    -----
    InsufficientDataWarning
        The observed 5xx ratio is within the SLO but there is too little traffic to prove it
        (``requests < min_requests``). Not emitted when the ratio itself fails the SLO: more
        traffic would not help, and ``passes`` is False either way.
    """
    bound = _bound(
        requests, errors, phi=phi, threshold=threshold, confidence=confidence, method=method
    )
    if _short_of_evidence(bound):
        warnings.warn(
            f"{bound.requests:,.0f} requests with {bound.errors:,.0f} 5xx (phi={bound.phi:.3g}) "
            f"cannot prove R > {threshold} at {confidence:.0%} confidence; "
            f"{bound.min_requests:,} requests are needed at this 5xx ratio: use a longer window",
            InsufficientDataWarning,
            stacklevel=2,
        )
    return bound


def bound_r_frame(
    df: pd.DataFrame,
    *,
    by: str | Sequence[str] | None = None,
    phi: float | Mapping[Hashable, float] = 1.0,
    threshold: float = 0.98,
    confidence: float = 0.95,
    method: str = "clopper-pearson",
) -> pd.DataFrame:
    """Bound R per group (version, route, ...) so one table shows which groups are proven.

    Parameters
    ----------
    df
        Tidy frame with columns ``requests`` and ``errors`` plus the ``by`` columns; rows of the
        same group (e.g. several instances) are summed.
    by
        Group column(s); None bounds the whole frame as one row.
    phi
        One dispersion factor, or a mapping from group key (a tuple for several ``by`` columns)
        to its factor; every group must be present in the mapping.
    threshold, confidence, method
        As in :func:`bound_r`.

    Returns
    -------
    pandas.DataFrame
        The ``by`` columns then the :class:`RBound` fields, one row per group. A group with no
        traffic is kept with NaN bounds and ``passes = False`` rather than dropped.

    Warns
    -----
    InsufficientDataWarning
        Once, listing every group without traffic or with too few requests.
    """
    missing = {"requests", "errors"} - set(df.columns)
    keys = [by] if isinstance(by, str) else list(by or [])
    missing |= set(keys) - set(df.columns)
    if missing:
        raise ValueError(f"bound_r_frame() input lacks column(s) {sorted(missing)}")
    if keys:
        totals = df.groupby(keys, dropna=False, sort=True)[["requests", "errors"]].sum(min_count=1)
    else:
        totals = pd.DataFrame([df[["requests", "errors"]].sum(min_count=1)])
    rows, short = [], []
    for key, row in totals.iterrows():
        values = key if isinstance(key, tuple) else (key,)
        label = dict(zip(keys, values, strict=True)) if keys else {}
        if not isinstance(phi, Mapping):
            group_phi = float(phi)
        else:
            map_key = key if len(keys) > 1 else (key[0] if isinstance(key, tuple) else key)
            if map_key not in phi:
                raise ValueError(f"phi has no entry for group {map_key!r}; give one per group")
            group_phi = float(phi[map_key])
        try:
            bound = _bound(
                row["requests"], row["errors"], phi=group_phi, threshold=threshold,
                confidence=confidence, method=method,
            )
        except NoDataError:
            short.append(f"{_describe(label)} (no traffic)")
            nan = float("nan")
            rows.append(label | {
                "requests": row["requests"], "errors": row["errors"], "r": nan, "lower": nan,
                "lower_adjusted": nan, "upper_adjusted": nan, "phi": _check_phi(group_phi),
                "confidence": confidence, "method": method, "threshold": threshold,
                "min_requests": None, "sufficient": False, "passes": False, "units": None, "batch": None,
                "dependence": "phi given", "shortfall": "no traffic",
            })
            continue
        if _short_of_evidence(bound):
            short.append(f"{_describe(label)} ({bound.requests:,.0f} < {bound.min_requests:,})")
        rows.append(label | asdict(bound))
    if short:
        warnings.warn(
            f"too little traffic to prove R > {threshold} at {confidence:.0%} confidence for "
            f"{len(short)} group(s): {'; '.join(short)}; use a longer window",
            InsufficientDataWarning,
            stacklevel=2,
        )
    return _summary_frame(rows)


def _describe(label: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in label.items()) or "all"
