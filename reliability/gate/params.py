"""What a proof is about: the candidate, the window, the scope and the policy it is judged by."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from reliability import paths
from reliability.source.promql import matcher, parse_selector


@dataclass(frozen=True)
class ProofParams:
    """What the proof is about; everything here is safe to record in the report."""

    start: datetime
    end: datetime
    candidate: str
    stable: str | None = None
    selector: str = ""
    threshold: float = 0.98
    confidence: float = 0.95
    method: str = "clopper-pearson"
    version_label: str = "version"
    margin: float = 0.005
    step: float = 60.0
    bucket: float = 300.0  # seconds per bucket of the dispersion estimate
    junit: tuple[str, ...] = ()
    rules: str = str(paths.ALERTS_YML)
    dashboard: str = str(paths.DASHBOARD_JSON)
    cache_threshold: float = 0.999
    budget_days: float = 30.0

    def scope(self) -> list[str]:
        """The service the proof is about, as label matchers (``job="love-backend"``); [] for all."""
        return parse_selector(self.selector)

    def job(self) -> str | None:
        """The scope's ``job="..."`` value, when it names one job."""
        import re

        for m in self.scope():
            found = re.fullmatch(r'job="((?:[^"\\]|\\.)*)"', m)
            if found:
                return found.group(1).replace('\\"', '"').replace("\\\\", "\\")
        return None

    def candidate_matchers(self) -> list[str]:
        """The user selector plus ``version="<candidate>"`` (escaped)."""
        return [*parse_selector(self.selector), matcher(self.version_label, self.candidate)]
