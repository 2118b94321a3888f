"""The stack a team scales out to, on 127.0.0.1: VictoriaMetrics, vmalert, vmagent and Alertmanager.

Single-node VictoriaMetrics stores and answers PromQL but evaluates no rules and sends no
alerts; that is vmalert's job. The topology, as the Debian ``victoria-metrics`` package ships it::

    history ──import──▶ victoria-metrics ◀──remote write── vmagent (scrapes vmalert, Alertmanager)
                          ▲      │ /api/v1/rules (proxied, -vmalert.proxyURL)
           queries, ALERTS│      ▼
                          └──── vmalert ──notifies──▶ Alertmanager

vmalert evaluates ``monitoring/alerts.yml`` against VictoriaMetrics, writes ``ALERTS`` back to
it and notifies a real Alertmanager; vmagent scrapes vmalert's own counters
(``vmalert_alerts_sent_total{addr=...}``), so "is the alert wired?" is answered from vmalert's
view through the same query API. The gate talks to VictoriaMetrics only.
"""
from __future__ import annotations

import atexit
import shutil
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from reliability import paths
from reliability.errors import PrometheusUnavailable
from reliability.source.embedded.config import ALERTMANAGER_YML
from reliability.source.embedded.process import Child, find_binary, free_port, launch, temporary_dir, terminate
from reliability.source.embedded.victoria import VICTORIA_INSTALL_HINT, EmbeddedVictoriaMetrics

READY_TIMEOUT_S = 30.0
#: vmalert evaluates every 5 s here (production: 30 s), so the first evaluation comes soon after start.
EVALUATION_INTERVAL = "5s"


class EmbeddedVictoriaStack:
    """VictoriaMetrics with the history, vmalert running the rules, vmagent and Alertmanager.

    ``url`` is VictoriaMetrics'; give it to ``PrometheusClient`` (or ``PROMETHEUS_URL``) like a
    Prometheus. Keyword arguments go to :class:`EmbeddedVictoriaMetrics` (``start``, ``end``,
    ``metrics``...). Use as a context manager; every process and its storage go on exit.
    """

    def __init__(self, *, rules: Path = paths.ALERTS_YML, **victoria: Any) -> None:
        self.rules = Path(rules)
        self._victoria_options = victoria
        self.victoria: EmbeddedVictoriaMetrics | None = None
        self._children: dict[str, Child] = {}
        self._tmp: Path | None = None

    @property
    def url(self) -> str:
        assert self.victoria is not None, "start the stack first"
        return self.victoria.url

    @property
    def alertmanager_url(self) -> str:
        return self._children["alertmanager"].url

    @property
    def vmalert_url(self) -> str:
        return self._children["vmalert"].url

    @property
    def pids(self) -> list[int]:
        return [*(self.victoria.pids if self.victoria else []), *(c.pid for c in self._children.values())]

    def __enter__(self) -> EmbeddedVictoriaStack:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> EmbeddedVictoriaStack:
        """Start Alertmanager, VictoriaMetrics (with the history), vmalert and vmagent; wait until wired."""
        binaries = {name: find_binary(name, candidates=(name,), hint=VICTORIA_INSTALL_HINT)  # VMALERT_BIN...
                    for name in ("vmalert", "vmagent")}
        binaries["alertmanager"] = find_binary("alertmanager")
        self._tmp = temporary_dir("love-vmstack-")
        atexit.register(self.stop)
        try:
            am = self._launch_alertmanager(binaries["alertmanager"])
            vmalert_port = free_port()
            self.victoria = EmbeddedVictoriaMetrics(
                **self._victoria_options, extra_args=[f"-vmalert.proxyURL=http://127.0.0.1:{vmalert_port}"]).start()
            vm = self.victoria.url
            self._children["vmalert"] = launch("vmalert", [
                binaries["vmalert"], f"-rule={self.rules}", f"-datasource.url={vm}", f"-remoteWrite.url={vm}",
                f"-remoteRead.url={vm}", f"-notifier.url={am.url}", f"-evaluationInterval={EVALUATION_INTERVAL}",
                f"-httpListenAddr=127.0.0.1:{vmalert_port}",
            ], log=self._tmp / "vmalert.log", url=f"http://127.0.0.1:{vmalert_port}")
            scrape = self._tmp / "scrape.yml"
            targets = [u.split("://", 1)[1] for u in (am.url, self._children["vmalert"].url)]
            scrape.write_text("global:\n  scrape_interval: 5s\nscrape_configs:\n"
                              f"  - job_name: monitoring\n    static_configs:\n      - targets: {targets}\n")
            agent_port = free_port()
            self._children["vmagent"] = launch("vmagent", [
                binaries["vmagent"], f"-promscrape.config={scrape}", f"-remoteWrite.url={vm}/api/v1/write",
                f"-remoteWrite.tmpDataPath={self._tmp / 'vmagent'}", f"-httpListenAddr=127.0.0.1:{agent_port}",
                "-remoteWrite.flushInterval=1s",
            ], log=self._tmp / "vmagent.log", url=f"http://127.0.0.1:{agent_port}")
            self._wait_wired()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for child in reversed(list(self._children.values())):
            terminate(child)
        self._children.clear()
        if self.victoria is not None:
            self.victoria.stop()
            self.victoria = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        atexit.unregister(self.stop)

    def _launch_alertmanager(self, binary: str) -> Child:
        assert self._tmp is not None
        config = self._tmp / "alertmanager.yml"
        config.write_text(ALERTMANAGER_YML)
        port = free_port()
        child = self._children["alertmanager"] = launch("alertmanager", [
            binary, f"--config.file={config}", f"--storage.path={self._tmp / 'am'}",
            f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
        ], log=self._tmp / "alertmanager.log", url=f"http://127.0.0.1:{port}")
        return child

    def _wait_wired(self) -> None:
        """Until the rules answer through VictoriaMetrics and vmalert's counters are stored in it."""
        import requests

        deadline = time.monotonic() + READY_TIMEOUT_S
        session = requests.Session()
        session.trust_env = False
        last = ""
        while time.monotonic() < deadline:
            for name, child in self._children.items():
                if child.popen.poll() is not None:
                    raise PrometheusUnavailable(f"{name} exited; its log says:\n{child.log_tail()}", url=child.url)
            try:
                rules = session.get(self.url + "/api/v1/rules", timeout=5).json()
                groups = rules.get("data", {}).get("groups", [])
                evaluated = [r for g in groups for r in g.get("rules", []) if r.get("health") == "ok"]
                sent = session.get(self.url + "/api/v1/query", params={"query": "vmalert_alerts_sent_total"},
                                   timeout=5).json().get("data", {}).get("result", [])
                if evaluated and sent:
                    return
                last = f"{len(evaluated)} rules evaluated, {len(sent)} vmalert counters stored"
            except (requests.RequestException, ValueError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            time.sleep(0.5)
        raise PrometheusUnavailable(f"the VictoriaMetrics stack did not come up within {READY_TIMEOUT_S:.0f} s "
                                    f"({last})", url=self.url)
