"""One small exception hierarchy; every message says what failed and what to do.

Statistical caveats are warnings, not exceptions (see the warning classes at the end).
"""
from __future__ import annotations


class ReliabilityError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigurationError(ReliabilityError):
    """A user-supplied input (file, parameter, option) is wrong; the message names it."""


class FileLocatedError(ConfigurationError):
    """A user-supplied file is wrong at a known place; the message starts with ``path:line``."""

    def __init__(self, message: str, *, path: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line


class DataFileError(FileLocatedError):
    """A metric history file is corrupt or truncated."""


class RuleFileError(FileLocatedError):
    """An alerting/recording rule file cannot be loaded or is invalid."""


class DashboardError(ConfigurationError):
    """A Grafana dashboard file is malformed."""


class MissingBinaryError(ReliabilityError):
    """A required program (prometheus, promtool, alertmanager) is not installed."""

    def __init__(self, binary: str, install_hint: str) -> None:
        super().__init__(f"'{binary}' was not found on PATH. Install it:\n{install_hint}")
        self.binary = binary
        self.install_hint = install_hint


class PrometheusError(ReliabilityError):
    """Base class of errors talking to a Prometheus-compatible server."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class PrometheusUnavailable(PrometheusError):
    """The server could not be reached or kept failing (after retries, or the breaker is open)."""


class PrometheusQueryError(PrometheusError):
    """The server rejected a query (Prometheus' errorType/error), e.g. bad_data."""

    def __init__(self, message: str, *, url: str, error_type: str, query: str | None = None) -> None:
        super().__init__(message, url=url)
        self.error_type = error_type
        self.query = query


class QueryTooLarge(PrometheusQueryError):
    """The server refused a query for its size (``--query.max-samples``, a query timeout,
    VictoriaMetrics' ``-search.maxSamplesPerQuery``): asked in smaller pieces, it may be answered."""


class GateFailed(ReliabilityError):
    """The proof notebook, run by papermill as the gate itself, decided anything but GO.

    Raised in its last cell, after the evidence is written, so papermill exits non-zero and the
    output notebook still holds the whole report.
    """

    def __init__(self, verdict: str, reasons: list[str]) -> None:
        self.verdict = verdict
        self.reasons = list(reasons)
        listed = "".join(f"\n  - {r}" for r in self.reasons)
        super().__init__(f"the verdict is {verdict}, not GO: do not deploy.{listed}")


class NoDataError(ReliabilityError):
    """The window holds no samples (no traffic or absent series); never treated as success."""


class InsufficientDataWarning(UserWarning):
    """Too little traffic to prove anything at the chosen confidence."""


class DataQualityWarning(UserWarning):
    """Scrape gaps, counter resets or impossible values were found in the window."""


class StatisticalWarning(UserWarning):
    """A statistical caveat (e.g. too few trips to estimate a rate)."""
