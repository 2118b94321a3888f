"""The snapshot file's format: every answer by its query key, and the errors the server gave.

Written by :meth:`PrometheusClient.save_snapshot`, read by :class:`SnapshotClient`; kept apart
from both so neither imports the other.
"""
from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

from reliability.errors import PrometheusError, PrometheusQueryError, PrometheusUnavailable, QueryTooLarge

#: Whether the server answered /-/ready when the run asked (a replay answers the same).
READY_KEY = json.dumps(["ready"])


def write_snapshot(path: Path, url: str, answers: dict[str, Any]) -> Path:
    """Gzip JSON with deterministic bytes, written whole and then renamed: a reader never sees half."""
    tmp = path.with_name(f".{path.name}.tmp")
    body = json.dumps({"format": 1, "prometheus_url": url,
                       "entries": [{"key": json.loads(k), "data": v} for k, v in sorted(answers.items())]},
                      sort_keys=True, separators=(",", ":")).encode()
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as fh:
        fh.write(body)
    os.replace(tmp, path)
    return path


def error_key(key: tuple[str, ...]) -> str:
    """Where a query's failure is recorded, beside its answer's key (older readers ignore it)."""
    return json.dumps(["error", *key])


def recorded_error(exc: PrometheusError) -> dict[str, Any]:
    """What replayed_error needs to raise the same error again: its class, words and fields."""
    return {"class": type(exc).__name__, "message": str(exc),
            "error_type": getattr(exc, "error_type", None), "query": getattr(exc, "query", None)}


def replayed_error(failed: dict[str, Any], url: str) -> PrometheusError:
    """The error the original run met for this query (the server failed or refused it)."""
    if failed.get("class") in ("PrometheusQueryError", "QueryTooLarge"):  # a refused piece is split again
        kind = QueryTooLarge if failed["class"] == "QueryTooLarge" else PrometheusQueryError
        return kind(failed["message"], url=url, error_type=failed.get("error_type") or "",
                                    query=failed.get("query"))
    return PrometheusUnavailable(failed["message"], url=url)
