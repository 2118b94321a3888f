"""A small instrumented backend for the live end-to-end test: real HTTP, the metric contract.

It serves the love backend's routes on 127.0.0.1, exports ``monitoring/METRICS.md``'s metrics
with ``prometheus_client`` on ``/metrics``, and puts the project's own circuit breaker (the
seed's semantics) around a dependency that fails on demand (``POST /control`` with
``{"fail": 0.3}``). Run one process per version: ``python backend.py --port P --version V``.
Every label set is created at 0 before the first scrape, so ``increase()`` misses nothing.
"""
from __future__ import annotations

import argparse
import json
import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from reliability.source.breaker import CircuitBreaker, CircuitOpenError

ROUTES = {"/api/queue/list": "db", "/api/queue/update": "db", "/api/auth/login": "auth",
          "/api/realtime/subscribe": "realtime", "/api/committee": "storage"}
CLINICS = ("cardiology", "pediatrics", "orthopedics", "dermatology")
GAUGE = {"closed": 0, "open": 1, "half_open": 2}


class Otel:
    """Request counts the way an OpenTelemetry-instrumented service exports them: the real SDK and its
    Prometheus exporter, the stable HTTP semantic conventions (``http.server.request.duration`` in
    seconds with ``http.response.status_code``, ``http.route``), the version as the resource's
    ``service.version`` (exported on ``target_info``)."""

    def __init__(self, version: str) -> None:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.resources import Resource

        self.registry = CollectorRegistry()  # the reader registers itself with the global one; both are read
        provider = MeterProvider(resource=Resource.create({"service.name": "love-backend",
                                                           "service.version": version}),
                                 metric_readers=[PrometheusMetricReader()])
        self.duration = provider.get_meter("love.backend").create_histogram(
            "http.server.request.duration", unit="s", description="Duration of HTTP server requests.")

    def record(self, method: str, route: str, status: int, seconds: float) -> None:
        self.duration.record(seconds, {"http.request.method": method, "http.route": route,
                                       "http.response.status_code": status, "url.scheme": "http"})

    @staticmethod
    def exposition() -> bytes:
        from prometheus_client import REGISTRY

        return generate_latest(REGISTRY)


class Backend:
    """The service's state: its breakers, its dependency's failure rate, its metrics."""

    def __init__(self, version: str, *, seed: int = 0, fail: float = 0.0, otel: bool = False) -> None:
        self.otel = Otel(version) if otel else None
        self.version = version
        self.fail = fail
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("http_requests", "HTTP requests served", ["method", "route", "status", "version"],
                                registry=r)
        self.state = Gauge("circuit_breaker_state", "0 closed, 1 open, 2 half-open", ["breaker"], registry=r)
        self.transitions = Counter("circuit_breaker_transitions", "Breaker state changes", ["breaker", "from", "to"],
                                   registry=r)
        self.calls = Counter("circuit_breaker_calls", "Calls through a breaker", ["breaker", "outcome"], registry=r)
        self.updates = Counter("queue_updates", "Queue updates committed", ["clinic"], registry=r)
        self.invalidations = Counter("cache_invalidations", "Cache invalidations after an update", ["clinic"],
                                     registry=r)
        self.stale = Counter("cache_stale_reads", "Reads of a stale cache entry", ["clinic"], registry=r)
        settings = {"db": (5, 60.0), "auth": (5, 30.0), "realtime": (3, 10.0), "storage": (5, 60.0)}
        self.breakers = {name: CircuitBreaker(failure_threshold=n, timeout=t, name=name, listeners=[self._changed])
                         for name, (n, t) in settings.items()}
        for route, _dep in ROUTES.items():
            method = "POST" if route.endswith("update") or route.endswith("login") else "GET"
            for status in ("200", "503"):  # OpenTelemetry makes a series at its first measurement instead
                if self.otel is None:
                    self.requests.labels(method, route, status, version)
        for name in self.breakers:
            self.state.labels(name).set(0)
            for outcome in ("success", "failure", "rejected"):
                self.calls.labels(name, outcome)
            for a, b in (("closed", "open"), ("open", "half_open"), ("half_open", "closed"), ("half_open", "open")):
                self.transitions.labels(name, a, b)
        for clinic in CLINICS:
            self.updates.labels(clinic)
            self.invalidations.labels(clinic)
            self.stale.labels(clinic)

    def _changed(self, breaker: CircuitBreaker, old: object, new: object) -> None:
        a, b = str(getattr(old, "value", old)).lower(), str(getattr(new, "value", new)).lower()
        self.transitions.labels(breaker.name, a, b).inc()
        self.state.labels(breaker.name).set(GAUGE[b])

    def _dependency(self) -> None:
        with self.lock:
            failed = self.random.random() < self.fail
        if failed:
            raise ConnectionError("dependency failed")

    def handle(self, method: str, route: str) -> int:
        """Serve one request; its HTTP status (counted by OpenTelemetry, or by the seed's counter)."""
        import time

        t0 = time.perf_counter()
        status = self._handle(method, route)
        if self.otel is not None:
            if status != 404:
                self.otel.record(method, route, status, time.perf_counter() - t0)
        elif status != 404:
            self.requests.labels(method, route, str(status), self.version).inc()
        return status

    def _handle(self, method: str, route: str) -> int:
        dep = ROUTES.get(route)
        if dep is None:
            return 404
        breaker = self.breakers[dep]
        try:
            breaker.call(self._dependency)
            self.calls.labels(dep, "success").inc()
            status = 200
        except CircuitOpenError:
            self.calls.labels(dep, "rejected").inc()
            status = 503
        except ConnectionError:
            self.calls.labels(dep, "failure").inc()
            status = 503
        if status == 200 and route == "/api/queue/update":
            clinic = CLINICS[hash(route + str(self.random.random())) % len(CLINICS)]
            self.updates.labels(clinic).inc()
            self.invalidations.labels(clinic).inc()
        return status


def serve(port: int, backend: Backend) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # quiet: the load generator logs
            pass

        def _reply(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/metrics":
                body = generate_latest(backend.registry) + (backend.otel.exposition() if backend.otel else b"")
                self._reply(200, body, "text/plain; version=0.0.4")
                return
            status = backend.handle("GET", self.path)
            self._reply(status, b"{}")

        def do_POST(self) -> None:
            if self.path == "/control":
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                with backend.lock:
                    backend.fail = float(body.get("fail", backend.fail))
                self._reply(200, b"{}")
                return
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self._reply(backend.handle("POST", self.path), b"{}")

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--fail", type=float, default=0.0, help="the dependency's failure probability")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--otel", action="store_true", help="count requests with OpenTelemetry, not the seed's counter")
    args = parser.parse_args()
    serve(args.port, Backend(args.version, seed=args.seed, fail=args.fail, otel=args.otel)).serve_forever()


if __name__ == "__main__":
    main()
