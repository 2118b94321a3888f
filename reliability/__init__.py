"""love-reliability: prove R > 0.98 from Prometheus history before a redeploy.

Data flows one way: Prometheus (``prom``) -> tidy frames (``measure``, ``cache``,
``dataquality``, ``alerts``, ``breakers``) -> pure analyses (``stats``, ``compare``,
``budget``) -> checks -> the verdict (``verdict``) -> the report (``proof``, ``report``).
"""
from __future__ import annotations

from .alerts import AlertRule, Backtest, backtest, load_rules
from .breakers import BreakerStats, CircuitBreaker, CircuitOpenError, RateBasedBreaker, trip_stats, whatif
from .budget import ErrorBudget, burn_rate, burn_rates, error_budget
from .cache import CacheResult, cache_consistency
from .compare import Comparison, compare
from .dataquality import DataQuality, preflight
from .embedded import EmbeddedPrometheus
from .errors import (
    ConfigurationError,
    DataFileError,
    DataQualityWarning,
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
from .junit import JUnitResult, read_junit
from .measure import ratio_profile, ratio_series, totals
from .prom import PrometheusClient, SnapshotClient
from .proof import Proof, ProofParams
from .proof import run as run_proof
from .stats import RBound, bound_r, bound_r_frame, dispersion, interval, lower_bound, minimum_requests, upper_bound
from .verdict import Check, Status, Verdict, decide

__version__ = "0.1.0"

__all__ = [
    "AlertRule", "Backtest", "BreakerStats", "CacheResult", "CircuitBreaker", "CircuitOpenError",
    "RateBasedBreaker", "trip_stats", "whatif", "Check", "Comparison", "ConfigurationError", "DataFileError",
    "DataQuality", "DataQualityWarning", "EmbeddedPrometheus", "ErrorBudget", "InsufficientDataWarning",
    "JUnitResult", "MissingBinaryError", "NoDataError", "PrometheusClient", "PrometheusError",
    "PrometheusQueryError", "PrometheusUnavailable", "Proof", "ProofParams", "RBound", "ReliabilityError",
    "RuleFileError", "SnapshotClient", "StatisticalWarning", "Status", "Verdict", "__version__", "backtest",
    "bound_r", "bound_r_frame", "burn_rate", "burn_rates", "cache_consistency", "compare", "decide",
    "dispersion", "error_budget", "interval", "load_rules", "lower_bound", "minimum_requests", "preflight",
    "ratio_profile", "ratio_series", "read_junit", "run_proof", "totals", "upper_bound",
]
