"""A live stack on 127.0.0.1: the instrumented backend as stable and canary, an unrelated service,
a real Prometheus scraping them and evaluating the rules live, a real Alertmanager, and a load
generator that logs every response.

The rules are the ones ``reliability init --job love-backend`` writes, time-compressed by
:func:`compress` so the test fits CI: every range and ``for`` is divided by ``factor``
(15: ``[5m]`` -> ``[20s]``, ``for: 5m`` -> ``for: 20s``), scrapes run every second and rules
every two. ``factor=1`` keeps the production rules (``make live``, about 15 minutes).

Run ``cd tests && python -m live.stack --minutes 15 --factor 1`` for the long run; it prints the
figures the README quotes.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
import yaml

from reliability.cli import scaffold
from reliability.source.embedded.process import Child, find_binary, free_port, launch, terminate, wait_ready
from reliability.source.sli import PRESETS
from reliability.times import format_duration, parse_duration

HERE = Path(__file__).resolve().parent
JOB, OTHER = "love-backend", "other-service"
ROUTES = [("GET", "/api/queue/list", 6), ("POST", "/api/queue/update", 2), ("POST", "/api/auth/login", 1),
          ("GET", "/api/realtime/subscribe", 1), ("GET", "/api/committee", 1)]
_RANGE = re.compile(r"\[(\d+[smhdwy](?:\d+[smhdwy])*)(?=[\]:])")
_FOR = re.compile(r"^(\s*(?:for|keep_firing_for|interval):\s*)(\S+)\s*$", re.M)


def compress(text: str, factor: float) -> str:
    """Rule-file text with every range selector, ``for`` and group ``interval`` divided by ``factor``.

    Ranges and ``for`` keep their ratios, so the alerts fire on the same shapes of traffic,
    ``factor`` times sooner. Durations are rounded to whole seconds, at least 1 s.
    """
    def scaled(value: str) -> str:
        return format_duration(max(1.0, round(parse_duration(value) / factor)))

    text = _RANGE.sub(lambda m: "[" + scaled(m.group(1)), text)
    return _FOR.sub(lambda m: m.group(1) + scaled(m.group(2)), text)


@dataclass
class Log:
    """Every response the load generator saw: (time, version, status)."""

    rows: list[tuple[float, str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, t: float, version: str, status: int) -> None:
        with self.lock:
            self.rows.append((t, version, status))

    def counts(self, version: str, start: float, end: float) -> tuple[int, int]:
        """(requests, 5xx) of ``version`` answered in [start, end]."""
        with self.lock:
            rows = [s for t, v, s in self.rows if v == version and start <= t <= end]
        return len(rows), sum(1 for s in rows if s >= 500)


class LiveStack:
    """Start with ``with LiveStack(tmp, factor=15) as stack:``; everything stops on exit."""

    def __init__(self, workdir: Path, *, factor: float = 15.0, scrape: str = "1s", evaluation: str = "2s",
                 stable: str = "v2.0.0", canary: str = "v2.1.0", exporter: str = "seed") -> None:
        """``exporter``: who counts the requests: ``seed`` (the backend's http_requests_total), ``otel``
        (the backend, with the OpenTelemetry SDK and its Prometheus exporter) or ``haproxy`` (HAProxy 2.6
        in front of both versions, its own /metrics; the versions are its server lines)."""
        if exporter not in ("seed", "otel", "haproxy"):
            raise ValueError(exporter)
        self.exporter = exporter
        self.sli = PRESETS[exporter]
        if exporter == "haproxy":  # HAProxy knows the versions by their server lines
            stable, canary = "stable", "canary"
        self.haproxy: subprocess.Popen[bytes] | None = None
        self.dir = workdir
        self.factor = factor
        self.scrape, self.evaluation = scrape, evaluation
        self.stable, self.canary = stable, canary
        self.children: list[Child] = []
        self.backends: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
        self.log = Log()
        self.prometheus: Child | None = None
        self.alertmanager: Child | None = None

    # ---------------------------------------------------------------- lifecycle
    def __enter__(self) -> LiveStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        repo = self.dir / "repo"
        scaffold.init(repo, job=JOB, sli=self.sli)
        mon = repo / "monitoring"
        rule_files = [mon / n for n in ("alerts.yml", "recording.yml") if (mon / n).exists()]
        for path in rule_files:
            path.write_text(compress(path.read_text(), self.factor))
        self.rules, self.dashboard = mon / "alerts.yml", mon / "grafana-dashboard.json"
        for name, version, fail in (("stable", self.stable, 0.002), ("canary", self.canary, 0.002),
                                    ("other", self.canary, 0.3)):
            port = free_port()
            proc = subprocess.Popen([sys.executable, str(HERE / "backend.py"), "--port", str(port), "--version",
                                     version, "--fail", str(fail), "--seed", str(len(self.backends)),
                                     *(["--otel"] if self.exporter == "otel" else [])],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.backends[name] = (proc, port)
        deadline = time.monotonic() + 30
        am_port = free_port()
        (self.dir / "am.yml").write_text('route: {receiver: "null", group_wait: 1s}\nreceivers: [{name: "null"}]\n')
        self.alertmanager = launch("alertmanager", [
            find_binary("alertmanager"), f"--config.file={self.dir / 'am.yml'}", f"--storage.path={self.dir / 'am'}",
            f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="],
            log=self.dir / "am.log", url=f"http://127.0.0.1:{am_port}")
        self.children.append(self.alertmanager)
        own = [{"job_name": JOB, "static_configs": [{"targets": [f"127.0.0.1:{self.backends[n][1]}"
                                                              for n in ("stable", "canary")]}]}]
        if self.exporter == "haproxy":
            self.front, metrics = self._start_haproxy()
            # HAProxy's series join the service's: one job, as a relabelled ingress target would.
            own.append({"job_name": f"{JOB}-haproxy", "static_configs": [{"targets": [f"127.0.0.1:{metrics}"]}],
                        "relabel_configs": [{"target_label": "job", "replacement": JOB}]})
        config = {
            "global": {"scrape_interval": self.scrape, "evaluation_interval": self.evaluation},
            "rule_files": [str(f) for f in rule_files],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{am_port}"]}]}]},
            "scrape_configs": [
                *own,
                {"job_name": OTHER, "static_configs": [{"targets": [f"127.0.0.1:{self.backends['other'][1]}"]}]},
            ],
        }
        (self.dir / "prometheus.yml").write_text(yaml.safe_dump(config))
        port = free_port()
        self.prometheus = launch("prometheus", [
            find_binary("prometheus"), f"--config.file={self.dir / 'prometheus.yml'}",
            f"--storage.tsdb.path={self.dir / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
            log=self.dir / "prometheus.log", url=f"http://127.0.0.1:{port}")
        self.children.append(self.prometheus)
        wait_ready(self.alertmanager, deadline=deadline)
        wait_ready(self.prometheus, deadline=deadline)
        self._wait_scraped(deadline, targets=len(own) + 2)

    def _start_haproxy(self) -> tuple[int, int]:
        """HAProxy 2.6 in front of the two versions (3:1), its native exporter on another port."""
        front, metrics = free_port(), free_port()
        cfg = self.dir / "haproxy.cfg"
        cfg.write_text(f"""global
    maxconn 256
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:{front}
    default_backend be_app
backend be_app
    balance roundrobin
    http-response set-header X-Served-By %s
    server stable 127.0.0.1:{self.backends["stable"][1]} weight 3
    server canary 127.0.0.1:{self.backends["canary"][1]} weight 1
frontend prometheus
    bind 127.0.0.1:{metrics}
    http-request use-service prometheus-exporter if {{ path /metrics }}
""")
        binary = find_binary("haproxy", candidates=("haproxy", "/usr/sbin/haproxy"))
        self.haproxy = subprocess.Popen([binary, "-db", "-f", str(cfg)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{metrics}/metrics", timeout=2).ok:
                    return front, metrics
            except requests.RequestException:
                time.sleep(0.2)
        raise TimeoutError("HAProxy did not serve /metrics within 15 s")

    def stop(self) -> None:
        if self.haproxy is not None:
            self.haproxy.terminate()
            self.haproxy.wait(timeout=10)
        for child in self.children:
            terminate(child)
        for proc, _ in self.backends.values():
            proc.terminate()
            proc.wait(timeout=10)

    def stop_prometheus(self) -> None:
        assert self.prometheus is not None
        terminate(self.prometheus)

    def _wait_scraped(self, deadline: float, *, targets: int = 3) -> None:
        """Until every target was scraped twice: the zero-valued series exist before any load."""
        assert self.prometheus is not None
        while time.monotonic() < deadline:
            r = requests.get(self.prometheus.url + "/api/v1/query",
                             params={"query": "count(count_over_time(up[1m]) >= 2)"}, timeout=5).json()
            result = r["data"]["result"]
            if result and float(result[0]["value"][1]) == targets:
                return
            time.sleep(0.5)
        raise TimeoutError("Prometheus did not scrape the three backends in time")

    def settle(self, after: float, *, timeout: float = 30.0) -> None:
        """Until every target was scraped, and every rule group evaluated, after ``after`` (a time.time()).

        The proof then reads counts that hold every logged request, and alert states that saw them:
        the condition, not a sleep, so a slow machine waits longer instead of failing.
        """
        assert self.prometheus is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            targets = requests.get(self.prometheus.url + "/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
            groups = requests.get(self.prometheus.url + "/api/v1/rules", timeout=5).json()["data"]["groups"]
            stamps = [t["lastScrape"] for t in targets] + [g["lastEvaluation"] for g in groups]
            if stamps and all(_epoch(s) > after for s in stamps):
                return
            time.sleep(0.2)
        raise TimeoutError(f"Prometheus did not scrape and evaluate everything within {timeout:g} s")

    # ---------------------------------------------------------------- traffic
    def set_failure(self, name: str, fail: float) -> None:
        requests.post(f"http://127.0.0.1:{self.backends[name][1]}/control", json={"fail": fail}, timeout=5)

    def load(self, seconds: float, *, rate: float = 120.0, canary_share: float = 0.25, workers: int = 4) -> None:
        """Send about ``rate`` requests a second for ``seconds`` (bounded in count and time), logging each."""
        total = int(seconds * rate)
        end = time.monotonic() + seconds + 5
        weights = [w for _, _, w in ROUTES]

        def work(worker: int) -> None:
            import random

            rng = random.Random(worker)
            session = requests.Session()
            t0 = time.monotonic()
            for i in range(worker, total, workers):
                due = t0 + i / rate
                if due > end:
                    return
                pause = due - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                name = "canary" if rng.random() < canary_share else "stable"
                method, route, _ = rng.choices(ROUTES, weights)[0]
                if self.haproxy is not None:  # HAProxy picks the version and says which served
                    r = session.request(method, f"http://127.0.0.1:{self.front}{route}", timeout=5)
                    self.log.add(time.time(), r.headers.get("X-Served-By", "?"), r.status_code)
                else:
                    url = f"http://127.0.0.1:{self.backends[name][1]}{route}"
                    status = session.request(method, url, timeout=5).status_code
                    self.log.add(time.time(), self.canary if name == "canary" else self.stable, status)
                if rng.random() < 0.05:  # the unrelated service keeps serving too
                    session.get(f"http://127.0.0.1:{self.backends['other'][1]}{route}", timeout=5)

        threads = [threading.Thread(target=work, args=(w,)) for w in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    # ---------------------------------------------------------------- the live server's view
    def query_range(self, expr: str, start: float, end: float, step: float = 1.0) -> list[dict]:
        assert self.prometheus is not None
        r = requests.get(self.prometheus.url + "/api/v1/query_range",
                         params={"query": expr, "start": start, "end": end, "step": step}, timeout=10).json()
        return r["data"]["result"]

    def alertmanager_alerts(self) -> list[dict]:
        assert self.alertmanager is not None
        return requests.get(self.alertmanager.url + "/api/v2/alerts", timeout=5).json()


def _epoch(rfc3339: str) -> float:
    """Prometheus' RFC 3339 times (nanoseconds, any offset) as seconds since the epoch."""
    import pandas as pd

    return pd.Timestamp(rfc3339).timestamp()


def main() -> None:  # pragma: no cover - the long run behind `make live`
    import argparse
    import tempfile

    from live.scenario import run_scenario

    parser = argparse.ArgumentParser(description="the live stack with the production rules")
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--factor", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        figures = run_scenario(Path(tmp), factor=args.factor, minutes=args.minutes)
    print(json.dumps(figures, indent=2, default=str))


if __name__ == "__main__":  # pragma: no cover
    main()
