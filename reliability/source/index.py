"""Asking a server's index: which series a selector names, which labels and values they carry.

Prometheus answers ``/api/v1/labels`` and ``/api/v1/label/<name>/values`` with ``match[]`` from its
index, without reading samples, so these questions cost a few small requests on any server (the
SLI's checks, an empty panel's diagnosis). The client's scope is added to every selector.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from reliability.errors import PrometheusQueryError
from reliability.source.frames import utc


def label_values(client: Any, label: str | None, selector: str, start: datetime | None = None,
                 end: datetime | None = None) -> list[str]:
    """The values ``label`` takes on ``selector``'s series (in the client's scope), or their label names
    for ``None``; between start and end, else over the whole history. ``__name__`` tells whether any exist."""
    window = {"start": _seconds(start), "end": _seconds(end)} if start is not None and end is not None else {}
    path = "labels" if label is None else f"label/{label}/values"
    names = client.api(path, {"match[]": client.in_scope(selector), **window})
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise PrometheusQueryError(f"Prometheus at {client.url} answered /api/v1/{path} with something other "
                                   "than a list of names", url=client.url, error_type="bad_result", query=path)
    return names


def _seconds(t: datetime) -> str:
    return f"{utc(t).timestamp():.3f}".rstrip("0").rstrip(".")
