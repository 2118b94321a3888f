"""What a proof is about: the candidate, the window, the scope and the policy it is judged by."""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from reliability import paths
from reliability.errors import ConfigurationError
from reliability.source.breaker_metrics import SEED as SEED_BREAKERS
from reliability.source.breaker_metrics import BreakerMetrics
from reliability.source.parsed import matcher_keys
from reliability.source.promql import parse_selector
from reliability.source.sli import SEED, Sli

#: The external services the seed names (database, authentication, real-time, storage), as the
#: ``breaker`` label values of monitoring/METRICS.md; each must have a breaker that saw calls.
DEFAULT_DEPENDENCIES = ("db", "auth", "realtime", "storage")

# Labels that carry a request's outcome or split one service's traffic: a scope on them could
# leave the failures out (route="/healthy", status!~"5.."), so the scope may not name them.
TRAFFIC_LABELS = ("status", "code", "status_code", "route", "method", "handler", "path", "le", "quantile",
                  "instance", "pod", "__name__")


def scope_labels(selector: str, sli: Sli = SEED) -> list[str]:
    """The labels of ``selector`` that slice a service's traffic instead of naming the service: the usual
    outcome and request labels, and the SLI's own code, route and version labels."""
    names = [name for name, _, _ in matcher_keys(tuple(parse_selector(selector)))]
    own = (sli.code_label, sli.version_label, *((sli.route_label,) if sli.route_label else ()))
    return [n for n in dict.fromkeys(names) if n in (*TRAFFIC_LABELS, *own)]


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
    sli: Sli = SEED  # which counter and labels the requests are read from
    breakers: BreakerMetrics = SEED_BREAKERS  # which library's metrics the breakers are read from
    margin: float = 0.005
    step: float = 60.0
    bucket: float = 300.0  # seconds per bucket of the dispersion estimate
    junit: tuple[str, ...] = ()
    rules: str = str(paths.ALERTS_YML)
    dashboard: str = str(paths.DASHBOARD_JSON)
    cache_threshold: float = 0.999
    budget_days: float = 30.0
    partial_scope: bool = False  # allow a selector that slices the traffic; then never GO
    dependencies: tuple[str, ...] = DEFAULT_DEPENDENCIES
    screenshots: str = ""  # the folder of the Prometheus UI's screenshots ("off" when turned off)

    def __post_init__(self) -> None:
        """Refuse what no proof can mean, before any query runs."""
        if not str(self.candidate).strip():
            raise ConfigurationError("candidate is empty: pass the version label value to prove, e.g. v1.9.1")
        if self.end <= self.start:
            raise ConfigurationError(f"the window ends ({self.end.isoformat()}) before it starts "
                                     f"({self.start.isoformat()})")
        for name, value in (("confidence", self.confidence), ("threshold", self.threshold)):
            if not isinstance(value, (int, float)) or math.isnan(value) or not 0.5 <= value < 1:
                raise ConfigurationError(f"{name} {value!r} must be a number in [0.5, 1), e.g. 0.95")
        sliced = scope_labels(self.selector, self.sli)
        if sliced and not self.partial_scope:
            raise ConfigurationError(
                f"selector {self.selector!r} filters on {', '.join(sliced)}: the scope names a service (job, "
                "namespace, cluster), never a slice of its traffic, which could leave its failures out. "
                "Pass --partial-scope to judge a slice anyway (the verdict is then at best INCONCLUSIVE)")
        if not self.dependencies or not all(isinstance(d, str) and d.strip() for d in self.dependencies):
            raise ConfigurationError(f"dependencies {list(self.dependencies)!r} must name at least one breaker, e.g. "
                                     f"{list(DEFAULT_DEPENDENCIES)}")

    def scope(self) -> list[str]:
        """The service the proof is about, as label matchers (``job="love-backend"``); [] for all."""
        return parse_selector(self.selector)

    def service_scope(self) -> list[str]:
        """The matchers that name the service, for every query; a partial scope's traffic slice
        (route, status...) goes only into the request counts, which have those labels."""
        sliced = set(scope_labels(self.selector, self.sli))
        matchers = self.scope()
        keys = matcher_keys(tuple(matchers))
        return [m for m, (name, _, _) in zip(matchers, keys, strict=True) if name not in sliced]

    def job(self) -> str | None:
        """The scope's ``job="..."`` value, when it names one job."""
        return next((value for name, op, value in matcher_keys(tuple(self.scope()))
                     if name == "job" and op == "="), None)

    def candidate_matchers(self) -> list[str]:
        """The user selector plus ``version="<candidate>"`` (escaped), for an SLI whose version is on the counter."""
        return [*parse_selector(self.selector), self.sli.version_matcher(self.candidate)]
