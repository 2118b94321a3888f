"""Candidate versus stable 5xx ratio, so a canary is promoted only if it is provably not worse.

The question is one-sided non-inferiority: is the candidate's 5xx ratio at most ``margin``
above the stable version's? We bound the difference ``candidate - stable`` from above with
Newcombe's hybrid score method (method 10 of Newcombe 1998, "Interval estimation for the
difference between independent proportions", Statistics in Medicine 17:873-890): each ratio
gets a Wilson score interval and the two half-widths are combined in quadrature. We use it
rather than the Wald normal approximation because 5xx ratios sit near 0 and a canary often
shows zero errors: there the Wald variance ``p (1 - p) / n`` is 0, its interval collapses to a
point and it is anti-conservative, whereas Newcombe's interval keeps near-nominal coverage and
needs only closed-form Wilson limits. Clustered failures are handled as in
:func:`reliability.analysis.stats.bound_r`: counts are divided by each side's dispersion factor phi.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import pandas as pd

from reliability.analysis.stats.bounds import _check_confidence, interval
from reliability.analysis.stats.dispersion import _check_phi
from reliability.analysis.stats.rbound import _check_request_counts

__all__ = ["Comparison", "compare"]


@dataclass(frozen=True)
class Comparison:
    """Candidate-versus-stable 5xx ratios, the upper bound on their difference and the verdict.

    ``difference`` is ``candidate_ratio - stable_ratio`` (positive: the candidate is worse);
    ``upper`` is its one-sided upper confidence bound; ``non_inferior`` is ``upper < margin``.
    """

    candidate_requests: float
    candidate_errors: float
    stable_requests: float
    stable_errors: float
    candidate_ratio: float
    stable_ratio: float
    difference: float
    upper: float
    margin: float
    confidence: float
    phi_candidate: float
    phi_stable: float
    method: str
    non_inferior: bool

    @property
    def verdict_text(self) -> str:
        """One sentence for the report, with figures in percentage points."""
        outcome = (
            "below the {m} margin, so the candidate is non-inferior"
            if self.non_inferior
            else "not below the {m} margin, so non-inferiority is not shown"
        ).format(m=f"{100 * self.margin:.3f} pp")
        return (
            f"Candidate 5xx ratio {self.candidate_ratio:.3%} vs stable {self.stable_ratio:.3%}: "
            f"difference {100 * self.difference:+.3f} pp with {self.confidence:.0%} upper bound "
            f"{100 * self.upper:+.3f} pp, {outcome}."
        )

    @property
    def summary(self) -> pd.DataFrame:
        """One-row table of every field plus the verdict sentence."""
        return pd.DataFrame([asdict(self) | {"verdict": self.verdict_text}])


def compare(
    candidate_requests: float,
    candidate_errors: float,
    stable_requests: float,
    stable_errors: float,
    *,
    margin: float = 0.005,
    confidence: float = 0.95,
    phi_candidate: float = 1.0,
    phi_stable: float = 1.0,
) -> Comparison:
    """Test whether the candidate's 5xx ratio exceeds the stable one's by less than ``margin``.

    Parameters
    ----------
    candidate_requests, candidate_errors, stable_requests, stable_errors
        Requests and 5xx per version over the same window (real counts accepted).
    margin
        Largest tolerated increase of the 5xx ratio (0.005 = half a percentage point).
    confidence
        One-sided confidence of the upper bound; the Wilson limits use ``z = Phi^-1(confidence)``.
    phi_candidate, phi_stable
        Dispersion factors (:func:`reliability.analysis.stats.dispersion`), floored at 1.

    Returns
    -------
    Comparison

    Raises
    ------
    NoDataError
        Either version has no requests or NaN counts.
    """
    cand_n, cand_e = _check_request_counts(candidate_requests, candidate_errors)
    stab_n, stab_e = _check_request_counts(stable_requests, stable_errors)
    confidence = _check_confidence(confidence, one_sided=True)
    if math.isnan(margin) or not -1 < margin < 1:
        raise ValueError(f"margin must be a difference of ratios in (-1, 1), got {margin!r}")
    phi_c, phi_s = _check_phi(phi_candidate), _check_phi(phi_stable)
    p_c, p_s = cand_e / cand_n, stab_e / stab_n
    # Wilson limits at two-sided 2c-1 are the one-sided limits at c for each ratio.
    two_sided = 2 * confidence - 1
    _, upper_c = interval(cand_e / phi_c, cand_n / phi_c, confidence=two_sided, method="wilson")
    lower_s, _ = interval(stab_e / phi_s, stab_n / phi_s, confidence=two_sided, method="wilson")
    difference = p_c - p_s
    upper = difference + math.sqrt((upper_c - p_c) ** 2 + (p_s - lower_s) ** 2)
    return Comparison(
        candidate_requests=cand_n,
        candidate_errors=cand_e,
        stable_requests=stab_n,
        stable_errors=stab_e,
        candidate_ratio=p_c,
        stable_ratio=p_s,
        difference=difference,
        upper=upper,
        margin=float(margin),
        confidence=confidence,
        phi_candidate=phi_c,
        phi_stable=phi_s,
        method="newcombe-wilson",
        non_inferior=bool(upper < margin),
    )
