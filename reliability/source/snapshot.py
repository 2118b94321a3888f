"""A Prometheus client that answers from a recorded snapshot: reports re-render with no server."""
from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from reliability.errors import ConfigurationError
from reliability.source.prom import PrometheusClient
from reliability.source.recorded import READY_KEY, error_key, replayed_error
from reliability.source.stats import Stats, count_refusal

MAX_SNAPSHOT_BYTES = 512 << 20  # far above any proof's answers (a 30-day proof records a few MB)


class SnapshotClient(PrometheusClient):
    """Answers the same queries from a saved snapshot, with no server: reports stay reproducible.

    A query the original run's server failed or refused raises the same error again; any query
    that was not in the original run raises :class:`NoDataError` naming it.
    """

    live = False

    def __init__(self, path: str | Path, *, wait: float = 0.0) -> None:  # no HTTP session: nothing leaves
        path = Path(path)
        if wait > 0:
            _wait_for(path, wait)
        try:
            with gzip.open(path, "rb") as fh:
                raw = fh.read(MAX_SNAPSHOT_BYTES + 1)  # bounded: a gzip bomb stops here
            if len(raw) > MAX_SNAPSHOT_BYTES:
                raise ConfigurationError(f"snapshot {path} decompresses to more than {MAX_SNAPSHOT_BYTES >> 20} MB; "
                                         "it is not a snapshot `reliability proof` wrote")
            body = json.loads(raw)
        except (OSError, ValueError, EOFError) as exc:
            raise ConfigurationError(f"snapshot {path} cannot be read ({exc}); it must be the "
                                     "queries.json.gz written by `reliability proof`") from None
        self.url = body["prometheus_url"]
        self.path = path
        self._stats = Stats()
        self._snapshot = {json.dumps(e["key"]): e["data"] for e in body["entries"]}
        self._once = (threading.Lock(), {})
        self.scope: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"SnapshotClient({str(self.path)!r})"

    def _fetch(self, key: tuple[str, ...], get: Callable[[], Any]) -> Any:
        from reliability.errors import NoDataError

        k = json.dumps(list(key))
        if k in self._snapshot:
            return self._snapshot[k]
        failed = self._snapshot.get(error_key(key))
        if failed is not None:
            count_refusal(self._stats, key, exc := replayed_error(failed, self.url))
            raise exc
        raise NoDataError(f"the snapshot {self.path} holds no answer for {key[0]} query {key[1]!r}")

    def ready(self) -> bool:  # as the original run found it (snapshots before it was recorded: ready)
        return bool(self._snapshot.get(READY_KEY, True))

    def now(self) -> datetime:
        if json.dumps(["clock"]) not in self._snapshot:
            from reliability.errors import NoDataError

            raise NoDataError(f"the snapshot {self.path} does not record when the proof ran")
        return super().now()


def failed_marker(path: Path) -> Path:
    """Where the process gathering a snapshot says why it could not (see :func:`_wait_for`)."""
    return path.with_name(path.name + ".failed")


def _wait_for(path: Path, seconds: float) -> None:
    """Wait until another process has written ``path`` (atomically) or said why it failed.

    ``reliability proof`` gathers the answers while the kernel starts; the kernel replays them.
    """
    import time

    from reliability.errors import ReliabilityError

    until = time.monotonic() + seconds
    while not path.exists():
        failed = failed_marker(path)
        if failed.exists():
            raise ReliabilityError(f"gathering the answers failed: {failed.read_text(errors='replace').strip()}")
        if time.monotonic() > until:
            raise ReliabilityError(f"no answers arrived in {path} within {seconds:.0f} s; rerun, or raise --deadline")
        time.sleep(0.02)
