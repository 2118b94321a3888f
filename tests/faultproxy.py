"""A small HTTP proxy on 127.0.0.1 in front of the real Prometheus that injects faults.

Modes: ``ok`` (forward), ``503`` (always), ``transient`` (first ``n`` requests 503, then
forward), ``hang`` (never answer), ``drop`` (close the connection), ``malformed`` (200 with
broken JSON), ``slow`` (forward after ``delay`` seconds), ``auth`` (forward only with the
expected bearer token, else 401). It counts requests and records every header it saw.
"""
from __future__ import annotations

import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FaultProxy:
    def __init__(self, upstream: str, mode: str = "ok", *, n: int = 1, delay: float = 0.0,
                 token: str | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.mode, self.n, self.delay, self.token = mode, n, delay, token
        self.requests = 0
        self.seen: list[str] = []  # raw request lines and headers, to prove what crossed the wire
        self._stop = threading.Event()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                proxy.requests += 1
                proxy.seen.append(self.requestline + "\n" + str(self.headers))
                proxy._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()

    def _forward(self, h: BaseHTTPRequestHandler) -> None:
        with urllib.request.urlopen(self.upstream + h.path, timeout=30) as r:
            body, status, ctype = r.read(), r.status, r.headers.get("Content-Type", "application/json")
        self._send(h, status, body, ctype)

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, ctype: str = "application/json") -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        mode = self.mode
        if mode == "transient":
            mode = "503" if self.requests <= self.n else "ok"
        if mode == "503":
            self._send(h, 503, b'{"status":"error","errorType":"unavailable","error":"injected 503"}')
        elif mode == "hang":
            self._stop.wait(60)
        elif mode == "drop":
            h.close_connection = True
            h.connection.close()
        elif mode == "malformed":
            self._send(h, 200, b'{"status":"success","data":{"resultType":"vector","res')
        elif mode == "slow":
            time.sleep(self.delay)
            self._forward(h)
        elif mode == "auth":
            if h.headers.get("Authorization") != f"Bearer {self.token}":
                self._send(h, 401, b"Unauthorized", "text/plain")
            else:
                self._forward(h)
        else:
            self._forward(h)
