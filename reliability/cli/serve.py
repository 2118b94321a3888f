"""``reliability serve``: the watch's anytime-valid verdict over HTTP, for Argo Rollouts and Flagger.

Two shapes, one answer (the look of :mod:`reliability.gate.watch` at the request's time):

- ``GET /api/v1/verdict?candidate=v1.9.1&start=2025-10-26T09:00:00Z`` returns JSON that Argo
  Rollouts' ``web`` metric provider reads with ``jsonPath: "{$.verdict}"`` (``GO``, ``NO-GO`` or
  ``INCONCLUSIVE`` while the evidence is still short) and the figures beside it.
- ``POST /flagger/confirm``, ``/flagger/check`` and ``/flagger/rollback`` take Flagger's webhook
  payload (``name``, ``namespace``, ``phase``, ``metadata`` with ``candidate`` and ``start``).
  ``confirm`` (a ``confirm-promotion`` hook) answers 200 only on GO, so promotion waits until R is
  proven; ``check`` (a ``rollout`` hook) answers non-2xx only on NO-GO, a failed check; ``rollback``
  (a ``rollback`` hook) answers 200 only on NO-GO, so Flagger rolls back at once. Flagger sends no
  headers, so its calls may carry the token as ``metadata.token`` instead.

It binds 127.0.0.1 unless told otherwise, requires ``Authorization: Bearer <token>`` when
``RELIABILITY_SERVE_TOKEN`` is set, validates every parameter before it reaches PromQL (the
candidate is an escaped label value, the selector names a service), bounds each request's work
(a window of at most :data:`MAX_WINDOW_DAYS`, at most :data:`CONCURRENCY` looks at once, the
client's deadline and answer size), and never returns the Prometheus URL or credentials. It
gates on R only (the watch's evidence, with the stable version's history and, given ``stable``, its
counts beside the canary): the other checks of the proof run in ``proof``/``watch``.
"""
from __future__ import annotations

import dataclasses
import hmac
import json
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from reliability.errors import ConfigurationError, ReliabilityError
from reliability.gate.params import ProofParams
from reliability.gate.watch import Counts, explain, look_at
from reliability.source import from_env
from reliability.source.prom import PrometheusClient
from reliability.source.sli import SEED, Sli
from reliability.times import parse_duration, parse_time

TOKEN_VARIABLE = "RELIABILITY_SERVE_TOKEN"
MAX_WINDOW_DAYS = 7
MAX_LOOKBACK_DAYS = 30
CONCURRENCY = 8
MAX_BODY = 64 * 1024


class Histories:
    """The stable's history before each watched start, kept across calls (it ends at the start, so it never
    changes): a metric provider asking every minute reads the 14 days once, not at every call."""

    def __init__(self, size: int = 256) -> None:
        self.size, self.items, self.lock = size, OrderedDict[Any, Counts](), threading.Lock()

    def get(self, key: Any) -> Counts | None:
        with self.lock:
            return self.items.get(key)

    def put(self, key: Any, counts: Counts) -> None:
        with self.lock:
            self.items[key] = counts
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)


HISTORIES = Histories()


class Looks:
    """Each look computed once. A look is the watch's at a minute of the canary's grid; one in the past
    never changes, one of the last minutes may (late scrapes) and is kept :data:`FRESH_S` seconds, the
    scrape interval of the metric contract. Concurrent requests for the same look wait for the first
    one's computation (its failure is theirs, and is not kept)."""

    def __init__(self, size: int = 1024) -> None:
        self.size, self.lock = size, threading.Lock()
        self.items: OrderedDict[Any, tuple[float, dict[str, Any]]] = OrderedDict()
        self.running: dict[Any, Future[dict[str, Any]]] = {}

    def get(self, key: Any, compute: Callable[[], dict[str, Any]], *, expires: float) -> dict[str, Any]:
        with self.lock:
            kept = self.items.get(key)
            if kept is not None and kept[0] > time.monotonic():
                self.items.move_to_end(key)
                return kept[1]
            waiting, owner = self.running.get(key), False
            if waiting is None:
                waiting = self.running[key] = Future()
                owner = True
        if not owner:
            return waiting.result()
        try:
            value = compute()
        except BaseException as exc:
            waiting.set_exception(exc)
            raise
        else:
            waiting.set_result(value)
            with self.lock:
                self.items[key] = (time.monotonic() + expires, value)
                while len(self.items) > self.size:
                    self.items.popitem(last=False)
            return value
        finally:
            with self.lock:
                self.running.pop(key, None)


LOOKS = Looks()
STEP_S = 60.0   # the watch's looks are a minute apart
FRESH_S = 30.0  # a look of the last minutes is recomputed after this (new samples may change it)


class BadRequest(ConfigurationError):
    """A caller's parameter cannot be used; answered 400 with the reason."""


def verdict(client: PrometheusClient, query: dict[str, str], *, selector: str = "", sli: Sli = SEED) -> dict[str, Any]:
    """The JSON answer for one canary: its verdict at ``at`` (default now) and the figures behind it."""
    known = ("candidate", "start", "at", "stable", "selector", "min_watch", "lookback", "confidence")
    unknown = sorted(set(query) - set(known))
    if unknown:
        raise BadRequest(f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(known)}")
    for key in ("candidate", "start"):
        if not query.get(key):
            raise BadRequest(f"missing parameter {key!r}: pass candidate=<version label> and start=<ISO 8601>")
    start = parse_time(query["start"], name="start")
    at = parse_time(query["at"], name="at") if query.get("at") else datetime.now(timezone.utc)
    if not 0 < (at - start).total_seconds() <= MAX_WINDOW_DAYS * 86400:
        raise BadRequest(f"start {query['start']} must be before at and at most {MAX_WINDOW_DAYS} days earlier")
    lookback = parse_duration(query.get("lookback") or "14d", name="lookback")
    if not 0 < lookback <= MAX_LOOKBACK_DAYS * 86400:
        raise BadRequest(f"lookback {query['lookback']} must be positive and at most {MAX_LOOKBACK_DAYS} days")
    confidence = float(query.get("confidence") or 0.95)
    params = ProofParams(start=start, end=at, candidate=query["candidate"], stable=query.get("stable") or None,
                         selector=query.get("selector", selector), confidence=confidence, sli=sli)
    min_watch = parse_duration(query.get("min_watch") or "0", name="min_watch")
    # The look at the last whole minute of the canary's grid, as the watch looks: computed once per minute.
    steps = math.floor((at - start).total_seconds() / STEP_S)
    at = start + timedelta(seconds=steps * STEP_S) if steps else at
    recent = (datetime.now(timezone.utc) - at).total_seconds() < 5 * STEP_S
    key = (params.candidate, params.stable, start, at, params.selector, lookback, confidence, min_watch, sli)
    return LOOKS.get(key, lambda: _look(client, params, start, at, lookback, confidence, min_watch, sli),
                     expires=FRESH_S if recent else math.inf)


def _look(client: PrometheusClient, params: ProofParams, start: datetime, at: datetime, lookback: float,
          confidence: float, min_watch: float, sli: Sli) -> dict[str, Any]:
    params = dataclasses.replace(params, end=at)
    key = (params.stable, start, lookback, params.selector, sli)
    seen = {"history": HISTORIES.get(key) or Counts(start - timedelta(seconds=lookback))}
    current = look_at(client.scoped(params.service_scope()), params, at, alpha=1 - confidence, min_watch=min_watch,
                      lookback=lookback, seen=seen)
    HISTORIES.put(key, seen["history"])
    lk = current.look
    answer = {"verdict": current.decision or "INCONCLUSIVE", "candidate": params.candidate, "stable": params.stable,
            "start": start.isoformat(), "at": at.isoformat(), "requests": lk.requests, "errors_5xx": lk.errors,
            "r": None if lk.requests == 0 else lk.r, "phi": lk.phi, "why": explain(lk, current.decision, start),
            "log_evidence_go": lk.log_go, "go_decides_at": 2 / lk.alpha, "log_evidence_nogo": lk.log_nogo,
            "decides_at": 1 / lk.alpha, "incidents": lk.incidents, "incident_bound": lk.route or None,
            "room_outside_incidents": lk.room, "go_after_minutes": lk.go_after,
            "log_evidence_not_worse_than_stable": lk.log_not_worse, "log_evidence_worse_than_stable": lk.log_worse,
            "min_watch_s": min_watch, "lookback_s": lookback}
    # JSON has no NaN or Infinity (a figure that does not apply yet, or a bound never reached): null.
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in answer.items()}


def make_handler(client: PrometheusClient, *, token: str | None, selector: str = "",
                 sli: Sli = SEED) -> type[BaseHTTPRequestHandler]:
    """The request handler bound to one client; at most :data:`CONCURRENCY` looks run at once."""
    slots = threading.BoundedSemaphore(CONCURRENCY)

    class Handler(BaseHTTPRequestHandler):
        server_version = "love-reliability"

        def log_message(self, format: str, *args: Any) -> None:
            return  # no access log on stderr; the callers keep theirs

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body, default=str).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorized(self, carried: str | None = None) -> bool:
            if not token:
                return True
            given = self.headers.get("Authorization", "")
            return (hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
                    or (carried is not None and hmac.compare_digest(carried.encode(), token.encode())))

        def _answer(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
            if not slots.acquire(timeout=30):
                return 503, {"error": "too many looks at once; retry"}
            try:
                return 200, verdict(client, query, selector=selector, sli=sli)
            except ConfigurationError as exc:
                return 400, {"error": str(exc)}
            except ReliabilityError as exc:  # Prometheus unreachable, too slow, too big: not a verdict
                return 503, {"verdict": "INCONCLUSIVE", "error": str(exc).splitlines()[0]}
            finally:
                slots.release()

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/healthz":
                return self._send(200, {"status": "ok"})
            if not self._authorized():
                return self._send(401, {"error": "missing or wrong bearer token"})
            if url.path != "/api/v1/verdict":
                return self._send(404, {"error": f"no such endpoint {url.path}; use /api/v1/verdict"})
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            self._send(*self._answer(query))

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            hooks = ("/flagger/confirm", "/flagger/check", "/flagger/rollback")
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY:
                return self._send(400, {"error": f"the body must be Flagger's JSON payload, at most {MAX_BODY} bytes"})
            try:
                payload = json.loads(self.rfile.read(length))
                meta = {str(k): str(v) for k, v in (payload.get("metadata") or {}).items()}
            except (ValueError, AttributeError):
                return self._send(400, {"error": "the body is not Flagger's JSON payload (name, namespace, phase, "
                                                 "metadata)"})
            if not self._authorized(meta.pop("token", None)):
                return self._send(401, {"error": "missing or wrong bearer token (header, or metadata.token)"})
            if url.path not in hooks:
                return self._send(404, {"error": f"no such endpoint {url.path}; use {', '.join(hooks)}"})
            status, body = self._answer(meta)
            body = {**body, "name": payload.get("name"), "namespace": payload.get("namespace")}
            if status == 200:
                decided = body["verdict"]
                if url.path == "/flagger/confirm" and decided != "GO":
                    status = 412  # not proven yet (or NO-GO): promotion waits
                elif url.path == "/flagger/check" and decided == "NO-GO":
                    status = 500  # a failed check: Flagger counts it and rolls back
                elif url.path == "/flagger/rollback" and decided != "NO-GO":
                    status = 412  # nothing to roll back for
            self._send(status, body)

    return Handler


def serve(*, host: str = "127.0.0.1", port: int = 8080, selector: str = "", sli: Sli = SEED,
          ready: threading.Event | None = None) -> int:
    """Answer until interrupted; the Prometheus URL and credentials come from the environment."""
    client = from_env()
    token = os.environ.get(TOKEN_VARIABLE) or None
    httpd = ThreadingHTTPServer((host, port), make_handler(client, token=token, selector=selector, sli=sli))
    httpd.daemon_threads = True
    print(f"serving the watch verdict on http://{host}:{httpd.server_address[1]} "
          f"({'bearer token required' if token else 'no token: set ' + TOKEN_VARIABLE + ' to require one'})",
          flush=True)
    if ready is not None:
        ready.set()
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
    return 0
