"""A throw-away Prometheus + Alertmanager serving the bundled history on 127.0.0.1.

The proof must be reproducible offline: the same rules and config as production, but the
data come from backfilled blocks instead of live scraping. Everything lives in a temporary
directory that is removed on stop, on exceptions, at interpreter exit and on SIGTERM.
"""
from __future__ import annotations

import atexit
import json
import shutil
import signal
import sys
import threading
import time
import warnings
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType, TracebackType

from reliability import paths
from reliability.errors import PrometheusUnavailable, ReliabilityError
from reliability.source.embedded import recorded
from reliability.source.embedded.backfill import backfill, block_dirs
from reliability.source.embedded.config import ALERTMANAGER_YML, derived_config, raise_config_error
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

READY_TIMEOUT_S = 30.0
# Rules evaluate this often on the history server, so the rule check's wait for a first
# evaluation after start is at most 5 s instead of the production 30 s (see derived_config).
EVALUATION_INTERVAL = "5s"
_sigterm_holders = 0  # running instances relying on our SIGTERM handler
_PORT_ATTEMPTS = 5


def default_data_file() -> Path:
    """The bundled history, ``data/love-history.om.xz`` or ``.om.gz``."""
    return paths.history_file()


class EmbeddedPrometheus:
    """Prometheus (and Alertmanager) on 127.0.0.1 serving a backfilled history.

    Use as a context manager; ``start()``/``stop()`` are there for notebooks and fixtures.

    Parameters
    ----------
    data_file
        OpenMetrics history; default :func:`default_data_file`.
    config
        The production ``prometheus.yml`` whose rules and alerting to reuse.
    alertmanager
        Also start an Alertmanager (with a null receiver) and point Prometheus at it.
    port
        Prometheus' port; default a free one.
    cache_dir
        Replaces :func:`reliability.paths.cache_dir` for the backfilled blocks.
    evaluation_interval
        Replaces the config's ``global.evaluation_interval``; None keeps the production one.
    extra_data
        More OpenMetrics histories served beside ``data_file`` (each backfilled into blocks of
        its own; Prometheus merges overlapping blocks), e.g. another service on the same server.
    extra_args
        More Prometheus flags, e.g. ``--query.max-samples=50000`` for a server with a shared one's limits.
    recorded
        Serve the SLI's recording rules (``sli_recording.yml`` beside ``config``) evaluated over the
        history, as a server that ran them would hold them (:mod:`.recorded`; built once, cached).
        Default: when serving the bundled history.
    """

    def __init__(self, data_file: Path | None = None, *, config: Path = paths.PROMETHEUS_YML,
                 alertmanager: bool = True, port: int | None = None,
                 cache_dir: Path | None = None, evaluation_interval: str | None = EVALUATION_INTERVAL,
                 extra_data: Sequence[Path] = (), extra_args: Sequence[str] = (),
                 recorded: bool | None = None) -> None:
        self.data_file = Path(data_file) if data_file is not None else default_data_file()
        self.extra_data = [Path(f) for f in extra_data]
        self.extra_args = tuple(extra_args)
        self.config = Path(config)
        rules = self.config.parent / paths.SLI_RECORDING_YML.name
        wanted = recorded if recorded is not None else self.data_file == default_data_file()
        self.recording_rules = rules if wanted and rules.is_file() else None
        self.alertmanager = alertmanager
        self.port = port
        self.cache_dir = cache_dir
        self.evaluation_interval = evaluation_interval
        self._tmp: Path | None = None
        self._prometheus: Child | None = None
        self._alertmanager: Child | None = None
        self._blocks: Path | None = None
        self._holds_sigterm = False

    # -- public attributes -------------------------------------------------------------
    @property
    def url(self) -> str:
        """Base URL of the running Prometheus, e.g. ``http://127.0.0.1:40123``."""
        return self._running(self._prometheus).url

    @property
    def alertmanager_url(self) -> str | None:
        """Base URL of the running Alertmanager, or None when started without one."""
        if not self.alertmanager:
            return None
        return self._running(self._alertmanager).url

    @property
    def data_dir(self) -> Path:
        """The temporary TSDB directory Prometheus serves (removed on stop)."""
        self._running(self._prometheus)
        assert self._tmp is not None
        return self._tmp / "data"

    @property
    def pids(self) -> list[int]:
        """Process ids of the started servers (for checks that nothing outlives stop)."""
        return [c.pid for c in (self._prometheus, self._alertmanager) if c is not None]

    @property
    def history_range(self) -> tuple[datetime, datetime]:
        """First and last sample time of the served history (UTC), from the block metadata."""
        if self._blocks is None:
            raise ReliabilityError("EmbeddedPrometheus is not started; call start() first")
        metas = [json.loads((b / "meta.json").read_text()) for b in block_dirs(self._blocks)]
        lo = min(m["minTime"] for m in metas) / 1000
        hi = (max(m["maxTime"] for m in metas) - 1) / 1000  # maxTime is exclusive
        return (datetime.fromtimestamp(lo, timezone.utc), datetime.fromtimestamp(hi, timezone.utc))

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> EmbeddedPrometheus:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> EmbeddedPrometheus:
        """Backfill (cached), then start the servers and wait until both are ready.

        Raises
        ------
        MissingBinaryError, DataFileError, ConfigurationError, PrometheusUnavailable
        """
        if self._tmp is not None:
            raise ReliabilityError("EmbeddedPrometheus is already started; stop() it first")
        # Fail on missing programs before spending seconds on the backfill.
        prometheus = find_binary("prometheus")
        alertmanager = find_binary("alertmanager") if self.alertmanager else None
        self._tmp = temporary_dir("love-prometheus-")
        atexit.register(self.stop)
        self._install_sigterm_handler()
        try:
            if alertmanager is not None:
                # Started first so it boots while promtool backfills.
                self._alertmanager = self._launch_alertmanager(alertmanager)
            self._blocks = backfill(self.data_file, cache_dir=self.cache_dir)
            deadline = time.monotonic() + READY_TIMEOUT_S
            data = self._tmp / "data"
            data.mkdir()
            _copy_blocks(self._blocks, data)
            for extra in self.extra_data:
                _copy_blocks(backfill(extra, cache_dir=self.cache_dir), data)
            if self._alertmanager is not None:
                self._alertmanager = self._ready(self._alertmanager, alertmanager, deadline)
            am = self._alertmanager
            am_target = am.url.removeprefix("http://") if am is not None else None
            config = self._tmp / "prometheus.yml"
            self._write_config(config, am_target)
            rules = self.recording_rules and recorded.cached(self._blocks, self.recording_rules)
            if rules:
                _copy_blocks(rules, data)
            self._prometheus = self._ready(self._launch_prometheus(prometheus, config),
                                           prometheus, deadline, config=config)
            if self.recording_rules and not rules:  # first time: evaluate them over the history, then restart
                try:
                    rules = recorded.build(self._blocks, self.recording_rules, url=self.url,
                                           start=self.history_range[0], end=self.history_range[1])
                except ReliabilityError as exc:  # served without them: the proof reads raw series and says so
                    warnings.warn(str(exc), stacklevel=2)
                    return self
                terminate(self._prometheus)
                _copy_blocks(rules, data)
                self._prometheus = self._ready(self._launch_prometheus(prometheus, config), prometheus,
                                               time.monotonic() + READY_TIMEOUT_S, config=config)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop both servers (SIGTERM, then SIGKILL) and delete the temporary directory."""
        terminate(*(c for c in (self._prometheus, self._alertmanager) if c is not None))
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
        self._tmp = None
        atexit.unregister(self.stop)
        self._restore_sigterm_handler()

    # -- internals -----------------------------------------------------------------------
    def _running(self, child: Child | None) -> Child:
        if child is None or self._tmp is None:
            raise ReliabilityError("EmbeddedPrometheus is not started; use `with "
                                   "EmbeddedPrometheus() as prom:` or call start()")
        return child

    def _write_config(self, path: Path, am_target: str | None) -> None:
        import yaml

        path.write_text(yaml.safe_dump(derived_config(self.config, alertmanager=am_target,
                                                      evaluation_interval=self.evaluation_interval),
                                       sort_keys=False))

    def _launch_prometheus(self, binary: str, config: Path, port: int | None = None) -> Child:
        assert self._tmp is not None
        port = port or self.port or free_port()
        return launch("prometheus", [
            binary, f"--config.file={config}", f"--storage.tsdb.path={self._tmp / 'data'}",
            "--storage.tsdb.retention.time=100y", f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle", "--web.enable-admin-api", *self.extra_args,
        ], log=self._tmp / "prometheus.log", url=f"http://127.0.0.1:{port}")

    def _launch_alertmanager(self, binary: str) -> Child:
        assert self._tmp is not None
        config = self._tmp / "alertmanager.yml"
        config.write_text(ALERTMANAGER_YML)
        port = free_port()
        return launch("alertmanager", [
            binary, f"--config.file={config}", f"--storage.path={self._tmp / 'am'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # empty: no gossip, no second port to collide on
        ], log=self._tmp / "alertmanager.log", url=f"http://127.0.0.1:{port}")

    def _ready(self, child: Child, binary: str, deadline: float, *,
               config: Path | None = None) -> Child:
        """Wait for ``child``; if its free port was snatched meanwhile, relaunch on another."""
        for _ in range(_PORT_ATTEMPTS):
            try:
                wait_ready(child, deadline=deadline)
                return child
            except PortTaken:
                if child.name == "prometheus" and self.port is not None:
                    raise PrometheusUnavailable(
                        f"port {self.port} on 127.0.0.1 is in use; choose another port or "
                        "leave it unset to pick a free one", url=child.url) from None
                child = (self._launch_prometheus(binary, config) if config is not None
                         else self._launch_alertmanager(binary))
                if child.name == "prometheus":
                    self._prometheus = child
                else:
                    self._alertmanager = child
            except PrometheusUnavailable as exc:
                if child.name == "prometheus":
                    raise_config_error(child.log_tail(), self.config, exc)
                raise
        raise PrometheusUnavailable(f"{child.name} found no free port after "
                                    f"{_PORT_ATTEMPTS} attempts", url=child.url)

    def _install_sigterm_handler(self) -> None:
        global _sigterm_holders
        # Only the main thread may set handlers, and we never replace someone else's.
        if threading.current_thread() is not threading.main_thread():
            return
        if _sigterm_holders == 0:
            if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
                return
            signal.signal(signal.SIGTERM, _raise_system_exit)
        _sigterm_holders += 1
        self._holds_sigterm = True

    def _restore_sigterm_handler(self) -> None:
        global _sigterm_holders
        if not self._holds_sigterm:
            return
        self._holds_sigterm = False
        _sigterm_holders -= 1
        # The last running instance gives SIGTERM back its default (terminate) behaviour.
        if (_sigterm_holders == 0 and threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGTERM) is _raise_system_exit):
            signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _copy_blocks(cached: Path, data: Path) -> None:
    """Serve a copy of the cached blocks: Prometheus compacts and deletes blocks in its data directory."""
    for block in block_dirs(cached):
        shutil.copytree(block, data / block.name)


def _raise_system_exit(signum: int, frame: FrameType | None) -> None:
    # Unwinds through `with` blocks and finally clauses, so the servers get stopped.
    raise SystemExit(128 + signum)


def serve(data_file: Path | None = None, *, port: int | None = None) -> int:
    """Serve the history until Ctrl-C, for Grafana or ad-hoc PromQL; returns an exit code.

    Parameters
    ----------
    data_file
        OpenMetrics history; default the bundled one.
    port
        Prometheus' port; default a free one.

    Returns
    -------
    int
        0 after Ctrl-C, 4 if a server died on its own (the tool broke; 1 means NO-GO elsewhere).

    The config is the current repository's ``monitoring/prometheus.yml`` (its rules), else the
    bundled one.
    """
    if threading.current_thread() is threading.main_thread():
        # Ctrl-C must stop it even when started in the background of a shell, where SIGINT arrives
        # ignored and Python keeps it so.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    with EmbeddedPrometheus(data_file, config=paths.find("monitoring/prometheus.yml"), port=port) as prom:
        first, last = prom.history_range
        span = f"{first:%Y-%m-%dT%H:%MZ} .. {last:%Y-%m-%dT%H:%MZ}"
        print(f"Prometheus:   {prom.url}   (history {span})")
        print(f"Alertmanager: {prom.alertmanager_url}")
        print(f"  export PROMETHEUS_URL={prom.url}")
        try:  # entered before the prompt: a Ctrl-C right after it is a clean stop, never exit 130
            print("Press Ctrl-C to stop.", flush=True)
            while True:
                for child in (prom._prometheus, prom._alertmanager):
                    if child is not None and not child.alive():
                        print(f"{child.name} exited with status {child.popen.returncode}; "
                              f"its log ends with:\n{child.log_tail()}", file=sys.stderr)
                        return 4
                time.sleep(0.5)
        except KeyboardInterrupt:
            print("Stopping.", file=sys.stderr)
            return 0
