"""Embedded Prometheus: backfill the bundled history and serve it on 127.0.0.1.

``backfill`` turns OpenMetrics text into cached TSDB blocks; ``EmbeddedPrometheus`` serves a
copy of them with the production rules and a local Alertmanager; ``serve`` runs it from the
command line (``reliability prometheus``).
"""
from __future__ import annotations

from reliability.source.embedded.backfill import backfill
from reliability.source.embedded.config import derived_config
from reliability.source.embedded.process import INSTALL_HINT, find_binary
from reliability.source.embedded.server import EmbeddedPrometheus, default_data_file, serve

__all__ = [
           "INSTALL_HINT",
           "EmbeddedPrometheus",
           "EmbeddedVictoriaMetrics",
           "backfill",
           "default_data_file",
           "derived_config",
           "find_binary",
           "find_victoria_metrics",
           "serve",
]
