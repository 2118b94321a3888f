"""A hostile Prometheus on 127.0.0.1: each mode answers one way no honest server would.

Modes: ``big`` (a valid vector of ``size`` bytes), ``trickle`` (one byte every ``delay`` s),
``redirect`` (302 to ``target``), ``string`` (resultType string where a vector was asked),
``nan`` (a vector whose values are NaN, +Inf and negative), ``bare`` (series without labels).
``cert`` wraps it in TLS with a given certificate (``client_ca``: clients must show one it signed).
Requests are counted; every loop is bounded in time.
"""
from __future__ import annotations

import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class Hostile:
    def __init__(self, mode: str, *, size: int = 0, delay: float = 0.5, target: str = "",
                 cert: tuple[Path, Path] | None = None, upstream: str = "", client_ca: Path | None = None) -> None:
        self.mode, self.size, self.delay, self.target, self.upstream = mode, size, delay, target, upstream
        self.requests = 0
        me = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                me.requests += 1
                me._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        if cert is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(cert[0]), str(cert[1]))
            if client_ca is not None:  # mutual TLS: only clients with a certificate this CA signed
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(str(client_ca))
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if cert is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Hostile:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _send(self, h: BaseHTTPRequestHandler, body: bytes, status: int = 200) -> None:
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        if self.mode == "proxy":  # forward (behind TLS): an honest server with a private CA
            import urllib.request

            with urllib.request.urlopen(self.upstream + h.path, timeout=30) as r:
                self._send(h, r.read(), r.status)
        elif self.mode == "big":
            row = b'{"metric":{"i":"%d"},"value":[1,"1"]},'
            n = max(1, self.size // len(row % 0))
            body = b'{"status":"success","data":{"resultType":"vector","result":[' + b"".join(
                row % i for i in range(n)) + b'{"metric":{},"value":[1,"1"]}]}}'
            self._send(h, body)
        elif self.mode == "trickle":
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", "1000")
            h.end_headers()
            until = time.monotonic() + 120  # bounded: the client must give up long before
            try:
                while time.monotonic() < until:
                    h.wfile.write(b" ")
                    h.wfile.flush()
                    time.sleep(self.delay)
            except OSError:
                return
        elif self.mode == "redirect":
            h.send_response(302)
            h.send_header("Location", self.target + h.path)
            h.send_header("Content-Length", "0")
            h.end_headers()
        elif self.mode == "string":
            self._send(h, json.dumps({"status": "success", "data": {"resultType": "string",
                                                                    "result": [1, "152260"]}}).encode())
        elif self.mode == "bare":  # every series without labels: what a broken exporter leaves
            if "query_range" in h.path:
                result = {"resultType": "matrix", "result": [{"metric": {}, "values": [[1761469200, "0"]]}]}
            else:
                result = {"resultType": "vector", "result": [{"metric": {}, "value": [1761469200, "1"]}]}
            self._send(h, json.dumps({"status": "success", "data": result}).encode())
        elif self.mode == "nan":
            result = [{"metric": {"v": v}, "value": [1, v]} for v in ("NaN", "+Inf", "-5")]
            self._send(h, json.dumps({"status": "success", "data": {"resultType": "vector",
                                                                    "result": result}}).encode())
        else:
            self._send(h, b"{}", 500)
