"""Where the repository's bundled files live.

The package is installed editable from the repository (``make`` does this), so the
repository root is the parent of the package directory. ``LOVE_RELIABILITY_ROOT``
overrides it for unusual layouts.
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(os.environ.get("LOVE_RELIABILITY_ROOT", Path(__file__).resolve().parent.parent))
DATA = ROOT / "data"
MONITORING = ROOT / "monitoring"
NOTEBOOKS = ROOT / "notebooks"
REPORTS = ROOT / "reports"

GROUND_TRUTH = DATA / "ground-truth.json"
PROMETHEUS_YML = MONITORING / "prometheus.yml"
ALERTS_YML = MONITORING / "alerts.yml"
DASHBOARD_JSON = MONITORING / "grafana-dashboard.json"
PROOF_NOTEBOOK = NOTEBOOKS / "monitoring_proof.ipynb"
LAST_STABLE = ROOT / ".last-stable-version"


def history_file() -> Path:
    """The bundled OpenMetrics history (compressed), whatever its compression suffix."""
    for name in ("love-history.om.xz", "love-history.om.gz"):
        if (DATA / name).exists():
            return DATA / name
    return DATA / "love-history.om.xz"


def cache_dir() -> Path:
    """Backfilled TSDB blocks are cached here, keyed by the data file's hash."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "love-reliability"
