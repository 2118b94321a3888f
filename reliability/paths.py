"""Where files are: the package's bundled resources, and the user's repository.

Bundled (read-only, in the wheel, found with :mod:`importlib.resources` the way nbconvert finds
its templates): the proof notebook, the monitoring templates and the metric contract, the demo
history with its ground truth and JUnit files. The user's repository is the current directory,
or ``--repo DIR``: ``.last-stable-version``, ``reports/``, their ``monitoring/`` files and
``reliability.toml`` are looked for there, never beside the installed package.
"""
from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

# pip installs wheels unzipped, so the resources are a real directory.
RESOURCES = Path(str(files("reliability.resources")))
DATA = RESOURCES / "data"
MONITORING = RESOURCES / "monitoring"          # the templates (and the bundled demo's config)
NOTEBOOKS = RESOURCES / "notebooks"

GROUND_TRUTH = DATA / "ground-truth.json"
JUNIT = DATA / "junit"
PROMETHEUS_YML = MONITORING / "prometheus.yml"
ALERTS_YML = MONITORING / "alerts.yml"
RECORDING_YML = MONITORING / "recording.yml"
SLI_RECORDING_YML = MONITORING / "sli_recording.yml"
DASHBOARD_JSON = MONITORING / "grafana-dashboard.json"
METRICS_MD = MONITORING / "METRICS.md"
PROOF_NOTEBOOK = NOTEBOOKS / "monitoring_proof.ipynb"

LAST_STABLE_NAME = ".last-stable-version"
CONFIG_NAME = "reliability.toml"


MARKERS = (CONFIG_NAME, LAST_STABLE_NAME, ".git")


def repo(directory: str | Path | None = None) -> Path:
    """The user's repository: ``directory`` (``--repo``), else the nearest of the current directory
    and its parents that holds ``reliability.toml``, ``.last-stable-version`` or ``.git`` (so a
    notebook run from ``notebooks/`` finds its repository), else the current directory."""
    if directory:
        return Path(directory).resolve()
    here = Path.cwd()
    for candidate in (here, *here.parents):
        if any((candidate / marker).exists() for marker in MARKERS):
            return candidate
    return here


def find(relative: str | Path, *, root: str | Path | None = None) -> Path:
    """``relative`` in the user's repository when it is there, else the bundled file of that name.

    ``monitoring/alerts.yml`` is the repository's own rule file after ``reliability init``; a
    demo run from an empty directory gets the bundled one. Absolute paths are returned as given.
    """
    path = Path(relative)
    if path.is_absolute():
        return path
    mine = repo(root) / path
    return mine if mine.exists() else RESOURCES / path


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
