"""love-reliability: prove R > 0.98 from Prometheus history before a redeploy.

Data flows one way, and each folder is one layer that imports only the layers below it::

    source/    Prometheus HTTP API, PromQL, embedded servers  -> tidy frames
      |
    analysis/  R bounds, budget, comparison, alerts, breakers, cache, JUnit, data quality
      |
    gate/      monitoring checks, the proof's sections, the verdict
      |
    report/    figures, tables, evidence.json, notebook -> HTML -> PDF

On top: ``config`` (the repository's ``reliability.toml``), ``lab`` (the notebooks' helpers:
``connect``, ``explore``), ``cli`` (the ``reliability`` command, ``init``'s scaffold, ``serve``)
and this module's public API. Beneath all: ``errors``, ``paths``, ``times``. The layers are a
contract checked by import-linter (``[tool.importlinter]`` in pyproject.toml) in ``make test``.
"""
from __future__ import annotations

from reliability.analysis.alerts import AlertRule, Backtest, backtest, load_rules
from reliability.analysis.breakers import (
    BreakerStats,
    CircuitBreaker,
    CircuitOpenError,
    RateBasedBreaker,
    breaker_stats,
    trip_stats,
    whatif,
)
from reliability.analysis.budget import ErrorBudget, burn_rate, burn_rates, error_budget
from reliability.analysis.cache import CacheResult, cache_consistency
from reliability.analysis.compare import Comparison, compare
from reliability.analysis.dataquality import DataQuality, preflight
from reliability.analysis.junit import JUnitResult, read_junit
from reliability.analysis.measure import ratio_profile, ratio_series, totals
from reliability.analysis.stats import (
    RBound,
    bound_r,
    bound_r_buckets,
    bound_r_buckets_frame,
    bound_r_frame,
    dispersion,
    interval,
    lower_bound,
    minimum_requests,
    upper_bound,
)
from reliability.errors import (
    ConfigurationError,
    DataFileError,
    DataQualityWarning,
    GateFailed,
    InsufficientDataWarning,
    MissingBinaryError,
    NoDataError,
    PrometheusError,
    PrometheusQueryError,
    PrometheusUnavailable,
    ReliabilityError,
    RuleFileError,
    StatisticalWarning,
)
from reliability.gate.proof import Proof, ProofParams
from reliability.gate.proof import run as run_proof
from reliability.gate.verdict import Check, Status, Verdict, decide
from reliability.source.embedded import EmbeddedPrometheus
from reliability.source.prom import PrometheusClient
from reliability.source.snapshot import SnapshotClient

__version__ = "0.1.0"

__all__ = [
    "AlertRule",
    "Backtest",
    "BreakerStats",
    "CacheResult",
    "Check",
    "CircuitBreaker",
    "CircuitOpenError",
    "Comparison",
    "ConfigurationError",
    "DataFileError",
    "DataQuality",
    "DataQualityWarning",
    "EmbeddedPrometheus",
    "ErrorBudget",
    "GateFailed",
    "InsufficientDataWarning",
    "JUnitResult",
    "MissingBinaryError",
    "NoDataError",
    "PrometheusClient",
    "PrometheusError",
    "PrometheusQueryError",
    "PrometheusUnavailable",
    "Proof",
    "ProofParams",
    "RBound",
    "RateBasedBreaker",
    "ReliabilityError",
    "RuleFileError",
    "SnapshotClient",
    "StatisticalWarning",
    "Status",
    "Verdict",
    "__version__",
    "backtest",
    "bound_r",
    "bound_r_buckets",
    "bound_r_buckets_frame",
    "bound_r_frame",
    "breaker_stats",
    "burn_rate",
    "burn_rates",
    "cache_consistency",
    "compare",
    "decide",
    "dispersion",
    "error_budget",
    "interval",
    "load_rules",
    "lower_bound",
    "minimum_requests",
    "preflight",
    "ratio_profile",
    "ratio_series",
    "read_junit",
    "run_proof",
    "totals",
    "trip_stats",
    "upper_bound",
    "whatif",
]
