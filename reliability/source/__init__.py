"""Source layer: everything that talks to Prometheus or writes PromQL.

- ``prom``: the one adapter to a Prometheus-compatible HTTP API (auth, retries, chunking, errors);
- ``snapshot``: the same answers replayed from a recorded ``queries.json.gz``;
- ``frames``: answers as tidy frames (one row per time and label set);
- ``promql``: building, escaping and scanning PromQL text;
- ``breaker``: the seed's circuit breaker, which the adapter puts around every request;
- ``embedded/``: local Prometheus, Alertmanager and VictoriaMetrics servers fed from ``data/``.

It imports only ``errors``, ``paths`` and ``times``; every layer above reads its frames.
"""
from __future__ import annotations

import os
from typing import Any

from reliability.source.prom import PrometheusClient
from reliability.source.snapshot import SnapshotClient

#: A recorded snapshot to answer from instead of a server (``reliability render``, and the
#: answers ``reliability proof`` gathers while the kernel starts).
SNAPSHOT_VARIABLE = "RELIABILITY_SNAPSHOT"
#: Seconds to wait for that snapshot to be written by the process gathering it.
SNAPSHOT_WAIT_VARIABLE = "RELIABILITY_SNAPSHOT_WAIT"


def from_env(url: str | None = None, **options: Any) -> PrometheusClient:
    """The client a notebook should use: a recorded snapshot when ``RELIABILITY_SNAPSHOT`` is set
    (``reliability render`` sets it, so a re-render never reaches a server; ``reliability proof``
    too, for the answers it gathers while the kernel starts), else ``url`` or ``PROMETHEUS_URL``."""
    from reliability.errors import ConfigurationError

    snapshot = os.environ.get(SNAPSHOT_VARIABLE)
    if snapshot and not url:
        return SnapshotClient(snapshot, wait=float(os.environ.get(SNAPSHOT_WAIT_VARIABLE) or 0))
    url = url or os.environ.get("PROMETHEUS_URL")
    if not url:
        raise ConfigurationError(
            "no Prometheus URL: set PROMETHEUS_URL (e.g. export PROMETHEUS_URL=http://127.0.0.1:9090) "
            "or run `reliability prometheus` to start the embedded one"
        )
    return PrometheusClient(url, **options)


def server_config(client: PrometheusClient) -> dict[str, Any] | None:
    """The configuration the server runs (``/api/v1/status/config``), parsed; None when it will not say."""
    import yaml

    from reliability.errors import PrometheusError

    try:
        config = yaml.safe_load(client.api("status/config").get("yaml", ""))
    except (PrometheusError, yaml.YAMLError, AttributeError):
        return None
    return config if isinstance(config, dict) else None
