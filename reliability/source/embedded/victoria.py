"""A throw-away VictoriaMetrics serving a slice of the bundled history, to prove the adapter is portable.

Scaling out means a second engine behind the same Prometheus HTTP API; the proof only
counts if ``PrometheusClient`` and ``measure`` run against it unchanged. VictoriaMetrics
needs no block backfill: the history is streamed into ``/api/v1/import/prometheus``,
filtered to the metrics and time range asked for, so it starts in seconds.

MetricsQL is not PromQL. ``increase()``/``rate()`` do not extrapolate and take the last
sample *before* the window as their base; a series born inside a window counts its first
sample from 0 when that value is small. Prometheus instead extrapolates towards the
window edges. On windows whose edges fall on scrape times the two agree for series that
live across the whole window; they differ by about one scrape's worth of traffic per
series born (or ended) inside it. ``tests/test_victoriametrics.py`` measures this.
"""
from __future__ import annotations

import atexit
import math
import shutil
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from reliability import paths
from reliability.errors import (
    ConfigurationError,
    DataFileError,
    NoDataError,
    PrometheusUnavailable,
    ReliabilityError,
)
from reliability.source.embedded.openmetrics import _MALFORMED, _chunks, _sample_ms
from reliability.source.embedded.process import (
    Child,
    PortTaken,
    find_binary,
    free_port,
    launch,
    temporary_dir,
    terminate,
    wait_ready,
)

VICTORIA_INSTALL_HINT = (
    "  Debian/Ubuntu: sudo apt-get install --no-install-recommends victoria-metrics\n"
    "  Homebrew:      brew install victoriametrics\n"
    "  conda:         no conda-forge package that we know of; download the single binary\n"
    "                 (victoria-metrics-prod) from the VictoriaMetrics releases and set\n"
    "                 VICTORIA_METRICS_BIN=/path/to/victoria-metrics-prod"
)
# Debian and Homebrew install `victoria-metrics`; the upstream release tarball ships `-prod`.
_CANDIDATES = ("victoria-metrics", "victoria-metrics-prod")
if TYPE_CHECKING:
    import requests

READY_TIMEOUT_S = 30.0
_PORT_ATTEMPTS = 5
_BATCH_BYTES = 4 << 20      # streamed in pieces: the whole history would be ~400 MB of text


def find_victoria_metrics() -> str:
    """Locate the VictoriaMetrics single-node binary; ``VICTORIA_METRICS_BIN`` overrides PATH.

    Raises
    ------
    MissingBinaryError
        Not installed (or the override points nowhere); the hint gives install commands.
    """
    return find_binary("victoria-metrics", candidates=_CANDIDATES, hint=VICTORIA_INSTALL_HINT)


def _utc(t: datetime | None, name: str) -> datetime | None:
    if t is None:
        return None
    if t.tzinfo is None or t.utcoffset() is None:
        raise ConfigurationError(f"{name} {t.isoformat()} has no time zone; pass a tz-aware UTC datetime")
    return t.astimezone(timezone.utc)


class EmbeddedVictoriaMetrics:
    """VictoriaMetrics on 127.0.0.1 holding a filtered slice of an OpenMetrics history.

    Use as a context manager; ``start()``/``stop()`` are there for fixtures. The
    process and its temporary storage are removed on exit, on exceptions and at
    interpreter exit; on SIGTERM only where it unwinds the stack, as it does while an
    :class:`~reliability.source.embedded.EmbeddedPrometheus` runs (its handler raises SystemExit).

    Parameters
    ----------
    data_file
        OpenMetrics history (timestamps in seconds, ``# EOF`` at the end); default the
        bundled :func:`reliability.paths.history_file`.
    metrics
        Sample names to import (e.g. ``["http_requests_total", "up"]``); None imports all.
    start, end
        Import only samples with ``start <= t <= end`` (tz-aware). MetricsQL's
        ``increase()`` uses the sample just before a window as its base, so start the
        import at least one scrape before the earliest window you will query.
    port
        Listen port; default a free one.
    """

    def __init__(self, data_file: Path | None = None, *, metrics: Sequence[str] | None = None,
                 start: datetime | None = None, end: datetime | None = None,
                 port: int | None = None, extra_args: Sequence[str] = ()) -> None:
        self.extra_args = tuple(extra_args)  # e.g. -vmalert.proxyURL, for the full stack
        self.data_file = Path(data_file) if data_file is not None else paths.history_file()
        if isinstance(metrics, str):
            raise ConfigurationError(f"metrics must be a list of names, not the string {metrics!r}")
        self.metrics = tuple(metrics) if metrics is not None else None
        self.start_time = _utc(start, "start")
        self.end_time = _utc(end, "end")
        if self.start_time and self.end_time and self.end_time < self.start_time:
            raise ConfigurationError(f"end {self.end_time.isoformat()} is before start "
                                     f"{self.start_time.isoformat()}")
        self.port = port
        self.samples = 0
        self.timings: dict[str, float] = {}
        self._tmp: Path | None = None
        self._child: Child | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:40123``; hand it to ``PrometheusClient``."""
        if self._child is None or self._tmp is None:
            raise ReliabilityError("EmbeddedVictoriaMetrics is not started; use `with "
                                   "EmbeddedVictoriaMetrics(...) as vm:` or call start()")
        return self._child.url

    @property
    def pids(self) -> list[int]:
        """Process id of the server (for checks that nothing outlives stop)."""
        return [self._child.pid] if self._child is not None else []

    def __enter__(self) -> EmbeddedVictoriaMetrics:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> EmbeddedVictoriaMetrics:
        """Start the server, import the history slice and flush it so queries see it.

        Raises
        ------
        MissingBinaryError, DataFileError, NoDataError, PrometheusUnavailable
        """
        if self._tmp is not None:
            raise ReliabilityError("EmbeddedVictoriaMetrics is already started; stop() it first")
        binary = find_victoria_metrics()
        if not self.data_file.is_file():
            raise DataFileError("does not exist; generate it with `python data/generate.py` or pass "
                                "the path of an OpenMetrics file", path=str(self.data_file))
        self._tmp = temporary_dir("love-victoria-")
        atexit.register(self.stop)
        try:
            t0 = time.perf_counter()
            self._child = self._launch_ready(binary)
            t1 = time.perf_counter()
            self.samples = self._import()
            t2 = time.perf_counter()
            self._flush_and_check()
            t3 = time.perf_counter()
            self.timings = {"start_s": t1 - t0, "import_s": t2 - t1, "flush_s": t3 - t2, "total_s": t3 - t0}
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and delete its storage."""
        if self._child is not None:
            terminate(self._child)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp = None
        atexit.unregister(self.stop)

    # -- server ----------------------------------------------------------------------------
    def _launch(self, binary: str) -> Child:
        assert self._tmp is not None
        port = self.port or free_port()
        return launch("victoria-metrics", [
            binary,
            f"-storageDataPath={self._tmp / 'data'}",
            f"-httpListenAddr=127.0.0.1:{port}",
            # The default (1 month) would silently drop any history older than a month.
            "-retentionPeriod=100y",
            # Samples newer than now-30s are hidden by default so half-scraped data does not
            # look like a drop; an imported history has no such tail, and an import that
            # reaches "now" must be visible in full.
            "-search.latencyOffset=0s",
            # VictoriaMetrics' docs advise disabling the response cache while backfilling. It
            # resets itself when samples older than -search.cacheTimestampOffset (5m) arrive,
            # which covers a one-shot import, but a throw-away server gains nothing from it
            # and a stale cached answer would be silent evidence. So -cacheTimestampOffset
            # is left alone: it only matters with the cache on.
            "-search.disableCache",
            # Deliberately not set:
            # -dedup.minScrapeInterval: keeps one sample per interval for HA pairs writing
            #   the same series; the history has exactly one sample per 30 s scrape, so it
            #   could only drop data if the interval were mistyped.
            # -search.maxStalenessInterval / -search.maxLookback: the lookback of bare
            #   selectors (Prometheus' 5m lookback-delta) is auto-detected from the 30 s
            #   sample interval; measure.py only uses increase()/rate() over explicit
            #   windows, which no staleness setting changes.
            # -search.maxPointsPerTimeseries (default 30,000 vs Prometheus' 11,000): the
            #   adapter chunks at 10,000 points, below both limits.
            *self.extra_args,
        ], log=self._tmp / "victoria-metrics.log", url=f"http://127.0.0.1:{port}")

    def _launch_ready(self, binary: str) -> Child:
        # VictoriaMetrics answers Prometheus' /-/ready (and its own /health), so the
        # shared readiness poll applies; a snatched free port means relaunching elsewhere.
        deadline = time.monotonic() + READY_TIMEOUT_S
        for _ in range(_PORT_ATTEMPTS):
            child = self._child = self._launch(binary)
            try:
                wait_ready(child, deadline=deadline)
                return child
            except PortTaken:
                if self.port is not None:
                    raise PrometheusUnavailable(
                        f"port {self.port} on 127.0.0.1 is in use; choose another port or leave "
                        "it unset to pick a free one", url=child.url) from None
        raise PrometheusUnavailable(f"victoria-metrics found no free port after {_PORT_ATTEMPTS} "
                                    "attempts", url=child.url)

    def _session(self) -> requests.Session:
        import requests

        session = requests.Session()
        session.trust_env = False  # an http_proxy from the environment must not see 127.0.0.1
        return session

    def _import(self) -> int:
        """Stream the filtered history into VictoriaMetrics; return the samples sent."""
        counter = [0]
        body = self._batches(counter)
        url = self.url + "/api/v1/import/prometheus"
        import requests

        with self._session() as session:
            # A generator body is sent chunked: VictoriaMetrics parses while we read.
            try:
                r = session.post(url, data=body, timeout=300)
            except requests.RequestException as exc:
                tail = self._child.log_tail() if self._child else ""
                raise PrometheusUnavailable(f"VictoriaMetrics at {self.url} broke off the import "
                                            f"({type(exc).__name__}); its log says:\n{tail}",
                                            url=self.url) from exc
        if r.status_code // 100 != 2:
            raise DataFileError(f"VictoriaMetrics rejected the import ({r.status_code}): "
                                f"{r.text.strip()[:300]}", path=str(self.data_file))
        if counter[0] == 0:
            what = ", ".join(self.metrics) if self.metrics is not None else "any metric"
            raise NoDataError(
                f"{self.data_file} holds no samples of {what} between "
                f"{self.start_time.isoformat() if self.start_time else 'its start'} and "
                f"{self.end_time.isoformat() if self.end_time else 'its end'}; check the metric "
                "names and the time range")
        return counter[0]

    def _flush_and_check(self) -> None:
        """Make imported rows searchable now, and fail if the server dropped any of them."""
        with self._session() as session:
            r = session.get(self.url + "/internal/force_flush", timeout=60)
            if r.status_code != 200:
                log = self._child.log if self._child else ""
                raise PrometheusUnavailable(f"VictoriaMetrics at {self.url} refused /internal/force_flush "
                                            f"({r.status_code}); see its log {log}", url=self.url)
            # Rows outside the retention or too far in the future are dropped with only a
            # log line; a silently partial history would bias every count.
            deadline = time.monotonic() + 10.0
            while True:
                stats = _server_metrics(session.get(self.url + "/metrics", timeout=10).text)
                added = stats.get("vm_rows_added_to_storage_total", 0.0)
                ignored = sum(v for k, v in stats.items() if k.startswith("vm_rows_ignored_total"))
                invalid = stats.get('vm_rows_invalid_total{type="prometheus"}', 0.0)
                if added + ignored + invalid >= self.samples or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        if added != self.samples:
            raise DataFileError(
                f"VictoriaMetrics stored {added:.0f} of {self.samples} samples ({ignored:.0f} ignored "
                f"for timestamps outside its retention or in the future, {invalid:.0f} unparsable); "
                f"its log {self._child.log if self._child else ''} says which",
                path=str(self.data_file))

    # -- history filter --------------------------------------------------------------------
    def _batches(self, counter: list[int]) -> Iterator[bytes]:
        """Prometheus text lines (timestamps in ms) of the wanted samples, in ~4 MB pieces."""
        lo = math.ceil(self.start_time.timestamp()) if self.start_time else None
        hi = math.floor(self.end_time.timestamp()) if self.end_time else None
        prefixes = (tuple(n.encode() + sep for n in self.metrics for sep in (b"{", b" "))
                    if self.metrics is not None else None)
        out: list[bytes] = []
        size = 0
        last = b""
        lineno = 0
        for chunk in _chunks(self.data_file):
            lines = chunk.split(b"\n")
            for line in lines:
                lineno += 1
                if not line or line[0] == 35:  # '#': HELP/TYPE/UNIT/EOF are not samples
                    continue
                if prefixes is not None and not line.startswith(prefixes):
                    continue
                sample = _sample_ms(line, lo, hi)
                if sample is None:
                    continue
                if sample is _MALFORMED:
                    raise DataFileError("is not an OpenMetrics sample with a timestamp in seconds",
                                        path=str(self.data_file), line=lineno)
                out.append(sample)
                size += len(sample)
                if size >= _BATCH_BYTES:
                    counter[0] += len(out)
                    yield b"".join(out)
                    out, size = [], 0
            last = lines[-1] if lines[-1] else (lines[-2] if len(lines) > 1 else last)
        if last.strip() != b"# EOF":
            raise DataFileError("is truncated: it does not end with '# EOF'", path=str(self.data_file))
        if out:
            counter[0] += len(out)
            yield b"".join(out)


def _server_metrics(text: str) -> dict[str, float]:
    """The counters of VictoriaMetrics' own /metrics page that tell what it stored."""
    found: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(("vm_rows_added_to_storage_total", "vm_rows_ignored_total",
                            "vm_rows_invalid_total")):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found

