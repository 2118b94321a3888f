"""One call for notebooks: the configured Prometheus, or the bundled history served on 127.0.0.1.

An engineer opening a notebook in JupyterLab should not have to start a server first. With
``PROMETHEUS_URL`` (or ``RELIABILITY_SNAPSHOT``) set, :func:`connect` uses it; otherwise it
starts :class:`reliability.source.embedded.EmbeddedPrometheus` once per kernel. The embedded server
registers its own ``atexit`` stop and a SIGTERM handler, so it goes away with the kernel.
"""
from __future__ import annotations

import os
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
