"""One call for notebooks: the configured Prometheus, or the bundled history served on 127.0.0.1.

An engineer opening a notebook in JupyterLab should not have to start a server first. With
``PROMETHEUS_URL`` (or ``RELIABILITY_SNAPSHOT``) set, :func:`connect` uses it; otherwise it
starts :class:`reliability.source.embedded.EmbeddedPrometheus` once per kernel. The embedded server
registers its own ``atexit`` stop and a SIGTERM handler, so it goes away with the kernel.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from reliability.source import from_env
from reliability.source.prom import PrometheusClient

_SERVER: Any = None  # the embedded server this kernel started, if any


def connect(selector: str = "", **options: Any) -> PrometheusClient:
    """A client to ``PROMETHEUS_URL`` if set, else to an embedded Prometheus started for this kernel.

    ``selector`` names the service (``job="love-backend"``): every query the client runs reads
    only its series, as in the proof. Calling it again in the same kernel reuses the running
    server. ``options`` go to :class:`reliability.source.prom.PrometheusClient` (``timeout``...).
    """
    from reliability.source.promql import parse_selector

    return _client(**options).scoped(parse_selector(selector))


def _client(**options: Any) -> PrometheusClient:
    global _SERVER
    if os.environ.get("PROMETHEUS_URL") or os.environ.get("RELIABILITY_SNAPSHOT"):
        return from_env(**options)
    if _SERVER is None:
        from reliability.source.embedded import EmbeddedPrometheus

        # No Alertmanager: exploring history sends no alerts, and it starts faster alone.
        _SERVER = EmbeddedPrometheus(alertmanager=False).start()
    return PrometheusClient(_SERVER.url, **options)


def embedded_url() -> str | None:
    """URL of the embedded server :func:`connect` started, or None when it used PROMETHEUS_URL."""
    return _SERVER.url if _SERVER is not None else None


def stop() -> None:
    """Stop the embedded server now instead of at kernel exit (a no-op when none was started)."""
    global _SERVER
    if _SERVER is not None:
        _SERVER.stop()
        _SERVER = None


#: The incident log ``alert_design`` judges alerts against (docs/alerts.md, "Alert design on your Prometheus").
INCIDENT_FIELDS = ("name", "start", "end")


def load_incidents(path: str | Path) -> list[dict[str, Any]]:
    """The incidents of a log: CSV with a ``name,start,end`` header, or JSON (a list, or ``{"incidents": [...]}``).

    Times are ISO 8601 with a zone (``2025-10-24T10:05:00Z``). Each incident is when users were
    hurt, from your postmortems or status page, not when an alert fired: the backtest measures
    alerts against it. The bundled ``data/ground-truth.json`` is such a log.
    """
    import csv
    import json

    from reliability.errors import ConfigurationError
    from reliability.times import parse_time

    file = Path(path)
    if not file.is_file():
        raise ConfigurationError(f"incident log {file}: no such file; give a CSV (name,start,end) or JSON log")
    text = file.read_text(encoding="utf-8")
    try:
        rows = json.loads(text) if file.suffix.lower() == ".json" else list(csv.DictReader(text.splitlines()))
    except ValueError as exc:
        raise ConfigurationError(f"incident log {file} is not valid JSON ({exc})") from None
    rows = rows.get("incidents") if isinstance(rows, dict) else rows
    if not isinstance(rows, list):
        raise ConfigurationError(f"incident log {file}: expected a list of incidents or {{\"incidents\": [...]}}")
    incidents = []
    for number, row in enumerate(rows, start=1):
        missing = [f for f in INCIDENT_FIELDS if not isinstance(row, dict) or not str(row.get(f) or "").strip()]
        if missing:
            raise ConfigurationError(f"incident log {file}, incident {number}: no {', '.join(missing)}; every "
                                     f"incident needs {', '.join(INCIDENT_FIELDS)}")
        start = parse_time(str(row["start"]), name=f"incident {number} start")
        end = parse_time(str(row["end"]), name=f"incident {number} end")
        if end <= start:
            raise ConfigurationError(f"incident log {file}, incident {number} ({row['name']}): end {row['end']} "
                                     f"is not after start {row['start']}")
        incidents.append({**row, "name": str(row["name"]), "start": start.isoformat(), "end": end.isoformat()})
    return incidents


def sli(preset: str | None = None, *, root: str | Path | None = None) -> Any:
    """The SLI the notebooks read requests with: the repository's ``[sli]`` (``reliability.toml``), or
    ``preset`` (``"otel"``, ``"istio"``... as ``--sli`` takes it). Pass it to the measuring helpers."""
    from reliability import config, paths

    return config.load(paths.repo(root)).sli(preset)


def breakers(preset: str | None = None, *, root: str | Path | None = None) -> Any:
    """The breaker library whose metrics the notebooks read: the repository's ``[breakers]``, or ``preset``
    (``"opossum"``, ``"resilience4j"``); pass it as ``source=`` to the breaker helpers."""
    from reliability import config, paths

    return config.load(paths.repo(root)).breakers(preset)
