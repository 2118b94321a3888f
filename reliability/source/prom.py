"""The one adapter to a Prometheus-compatible HTTP API (Prometheus, VictoriaMetrics, Thanos, Mimir).

This is the only module that imports ``prometheus_api_client``. It owns what every
query needs and nothing else does: credentials from the environment (never from
arguments a notebook would record), timeouts, retries with backoff and jitter, a
circuit breaker so a dead server fails fast, range chunking under the 11,000-points
limit, explicit evaluation times, Prometheus' error fields parsed into exceptions,
and results as tidy DataFrames (one row per timestamp and label set).
"""
from __future__ import annotations

import copy
import json
import random
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from reliability.errors import ConfigurationError, PrometheusError, PrometheusUnavailable, QueryTooLarge
from reliability.source import session as transport
from reliability.source.frames import _n_series, label_columns, tidy, utc
from reliability.source.recorded import READY_KEY, error_key, recorded_error, write_snapshot
from reliability.source.session import Final, Retryable, num
from reliability.source.stats import QueryRecord, Stats, calling, count_refusal

MAX_POINTS = 11_000          # Prometheus' hard limit of points per series in a range query
CHUNK_POINTS = 10_000        # stay clearly below it
MAX_SPLITS = 255             # a range query refused for its size is asked in at most 256 pieces
ONCE = frozenset({"status/config", "status/buildinfo", "status/flags"})  # a run's unchanging answers
_RETRYABLE = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


class PrometheusClient:
    """Tidy-frame access to one Prometheus HTTP API endpoint.

    Credentials and trust come only from the environment (:mod:`reliability.source.session`).

    Parameters
    ----------
    url
        Base URL, e.g. ``http://127.0.0.1:9090`` (no credentials in it).
    timeout
        Seconds to wait for connect and for each read.
    retries
        Extra attempts after a connection error, timeout, malformed answer or 5xx;
        never after a 4xx, which would fail the same way again.
    backoff
        Base of the exponential backoff in seconds (full jitter).
    breaker
        A :class:`reliability.source.breaker.CircuitBreaker`; by default 5 consecutive
        failed attempts open it for 30 s, so a dead server fails fast.
    """

    live = True  # asking again can get a newer answer (a snapshot's never changes: nothing to wait for)

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        backoff: float = 0.5,
        breaker: Any | None = None,
        sleep: Callable[[float], None] = time.sleep,
        deadline_s: float | None = None,
        max_answer_bytes: int = 64 << 20,
    ) -> None:
        parts = urlsplit(url or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(f"Prometheus URL {url!r} is not an http(s) URL such as http://127.0.0.1:9090")
        if parts.username or parts.password:
            raise ConfigurationError(
                "the Prometheus URL contains credentials; remove them and set "
                "PROMETHEUS_USERNAME/PROMETHEUS_PASSWORD or PROMETHEUS_BEARER_TOKEN instead"
            )
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._sleep = sleep
        self._random = random.Random()
        self._stats = Stats()
        self._snapshot: dict[str, Any] = {}
        self._once: tuple[threading.Lock, dict[str, Any]] = (threading.Lock(), {})  # shared by branches
        self.scope: tuple[str, ...] = ()
        self.breaker = breaker if breaker is not None else transport.default_breaker()
        session, headers, auth = transport.credentials_session()
        session.hooks["response"].append(self._remember)
        # Retries are ours (backoff, jitter, breaker); urllib3's own must be off.
        self._api = PrometheusConnect(
            url=self.url, headers=headers or None, auth=auth, session=session,
            retry=Retry(total=0, read=False, raise_on_status=False), timeout=timeout,
        )
        # PrometheusConnect sets verify from its own flag: the private CA is put back after it.
        if parts.scheme == "https":  # an http URL needs no CA, and a stale variable must not stop it
            session.verify, session.cert = transport.verify(), transport.client_cert()
        bounded = transport.BoundedAdapter(max_bytes=max_answer_bytes, per_request=timeout, remaining=self._remaining,
                                 max_retries=Retry(total=0, read=False, raise_on_status=False))
        for prefix in ("http://", "https://", self.url):  # PrometheusConnect mounts its own at the URL
            session.mount(prefix, bounded)
        self._session = session
        self._deadline = None if deadline_s is None else time.monotonic() + deadline_s

    def __repr__(self) -> str:  # never shows credentials
        return f"PrometheusClient({self.url!r})"

    # ------------------------------------------------------------------ queries
    @property
    def log(self) -> list[QueryRecord]:
        """Every query run so far, in order (provenance)."""
        return list(self._stats.records)

    @property
    def http_requests(self) -> int:
        """HTTP requests sent so far, retries included."""
        return self._stats.http_requests

    def scoped(self, matchers: Sequence[str]) -> PrometheusClient:
        """The same client (session, breaker, log, snapshot) whose queries read only the scope.

        Every vector selector of every query gets ``matchers`` (``job="love-backend"``), added by
        the PromQL parser, so no analysis, panel or check can read another service's series.
        """
        other = copy.copy(self)
        other.scope = tuple(matchers)
        return other

    def branch(self) -> PrometheusClient:
        """The same client with its own log and last answer, for one thread of a concurrent proof.

        Session, breaker, deadline and snapshot stay shared; every request and query is also
        counted and logged in this client, so its totals still cover all branches.
        """
        other = copy.copy(self)
        other._stats = Stats(parent=self._stats)
        return other

    def unscoped(self) -> PrometheusClient:
        """The same client without a scope: for Prometheus' own metrics, which no service owns."""
        return self.scoped(())

    def in_scope(self, promql: str) -> str:
        """``promql`` as this client sends it: the scope added to every selector."""
        return self._scope(promql)

    def _scope(self, promql: str) -> str:
        if not self.scope:
            return promql
        from reliability.source.parsed import add_matchers

        return add_matchers(promql, self.scope)

    def query(self, promql: str, at: datetime) -> pd.DataFrame:
        """Evaluate ``promql`` at the explicit time ``at`` (instant queries at "now" miss history)."""
        promql = self._scope(promql)
        at = utc(at)
        t0, n0 = time.perf_counter(), self._stats.http_requests
        frame = tidy(self._fetch(("instant", promql, _ts(at)), lambda: self._call(lambda: self._typed(
            self._api.custom_query(promql, params={"time": _ts(at)}), ("vector", "scalar"), promql), promql)))
        self._record(QueryRecord("instant", promql, time=at, series=_n_series(frame)), t0, n0)
        return frame

    def query_range(self, promql: str, start: datetime, end: datetime, step: float | timedelta) -> pd.DataFrame:
        """Evaluate ``promql`` at start, start+step, ... <= end, chunked under 11,000 points on one step
        grid (no sample twice at chunk edges), a chunk the server refuses for its size asked in halves."""
        promql = self._scope(promql)
        start, end = utc(start), utc(end)
        step_s = step.total_seconds() if isinstance(step, timedelta) else float(step)
        if step_s <= 0:
            raise ConfigurationError(f"step must be positive, got {step!r}")
        if end < start:
            raise ConfigurationError(f"range end {end.isoformat()} is before its start {start.isoformat()}")
        t0, n0 = time.perf_counter(), self._stats.http_requests
        frames: list[pd.DataFrame] = []
        splits = [MAX_SPLITS]
        for chunk in transport.range_chunks(start.timestamp(), end.timestamp(), step_s, CHUNK_POINTS):
            frames += self._pieces(promql, *(round(float(t) * 1000) for t in chunk), splits)
        frame = pd.concat(frames, ignore_index=True) if frames else tidy([])
        frame = frame.drop_duplicates(subset=[*label_columns(frame), "time"], keep="first").reset_index(drop=True)
        self._record(QueryRecord("range", promql, start=start, end=end, step=step_s, series=_n_series(frame),
                                 pieces=len(frames)), t0, n0)
        return frame

    def _pieces(self, promql: str, first_ms: int, last_ms: int, step_ms: int, splits: list[int]) -> list[pd.DataFrame]:
        """The grid ``first_ms, +step_ms, ... last_ms`` in one request, or in two halves when the server refuses
        it for its size (at most :data:`MAX_SPLITS` times a query): steps are evaluated apart, so exactly."""
        params = {"query": promql, "start": num(first_ms / 1000), "end": num(last_ms / 1000),
                  "step": num(step_ms / 1000)}
        key = ("range", promql, params["start"], params["end"], params["step"])
        try:
            return [tidy(self._fetch(key, lambda: self._call(
                lambda: self._typed(self._range(params), ("matrix",), promql), promql)))]
        except QueryTooLarge as exc:
            if (steps := (last_ms - first_ms) // step_ms + 1) < 2 or splits[0] <= 0:
                why = "a single step" if steps < 2 else f"{MAX_SPLITS + 1} pieces"
                raise transport.refused_in_pieces(exc, why) from None
            splits[0] -= 1
            mid = first_ms + (steps // 2 - 1) * step_ms
            return (self._pieces(promql, first_ms, mid, step_ms, splits)
                    + self._pieces(promql, mid + step_ms, last_ms, step_ms, splits))

    def api(self, path: str, params: dict[str, Any] | None = None) -> Any:
        """GET ``/api/v1/<path>`` and return its ``data`` member (rules, alertmanagers, status/buildinfo...).

        The server's status (:data:`ONCE`) does not change during a run: it is asked once, for every branch.
        """
        if path not in ONCE or params:
            return self._api_get(path, params)
        with self._once[0]:
            if path not in self._once[1]:
                self._once[1][path] = self._api_get(path, params)
            return self._once[1][path]

    def _api_get(self, path: str, params: dict[str, Any] | None) -> Any:
        t0, n0 = time.perf_counter(), self._stats.http_requests
        key = ("api", path, json.dumps(params or {}, sort_keys=True))
        data = self._fetch(key, lambda: self._call(lambda: self._get_json(f"/api/v1/{path.lstrip('/')}", params), path))
        self._record(QueryRecord("api", path), t0, n0)
        return data

    def ready(self) -> bool:
        """True when ``/-/ready`` answers 200 (VictoriaMetrics answers on /health instead); recorded."""
        self._snapshot[READY_KEY] = ready = self._ready()
        return ready

    def check_tls(self) -> None:
        """Raise :class:`ConfigurationError` when an https server refuses the trust set in the environment."""
        transport.check_tls(self._session, self.url, timeout=min(self.timeout, 5.0))

    def _ready(self) -> bool:
        for path in ("/-/ready", "/health"):
            try:
                r = self._session.get(self.url + path, headers=self._api.headers, auth=self._api.auth,
                                      timeout=min(self.timeout, 5.0))
            except requests.RequestException:
                return False
            if r.status_code == 200:
                return True
        return False

    def probe(self, url: str) -> int:
        """HTTP status of a plain GET to a related service (e.g. a discovered Alertmanager), 0 if none.

        Sent without this server's credentials; recorded so re-rendering needs no network.
        """
        return int(self._fetch(("probe", url), lambda: transport.status_of(url, min(self.timeout, 5.0),
                                                                           self._session.verify)))

    def text(self, path: str) -> str:
        """The plain-text body of ``GET <server><path>`` (e.g. Prometheus' own ``/metrics``), recorded."""
        def get() -> str:
            r = self._session.get(self.url + path, headers=self._api.headers, auth=self._api.auth,
                                  timeout=self.timeout)
            if r.status_code != 200:
                raise PrometheusApiClientException(f"HTTP Status Code {r.status_code}")
            return r.text

        t0, n0 = time.perf_counter(), self._stats.http_requests
        body = self._fetch(("text", path), lambda: self._call(get, path))
        self._record(QueryRecord("api", path), t0, n0)
        return str(body)

    def now(self) -> datetime:
        """Wall-clock time of the first call (recorded, so a re-rendered report judges the same moment)."""
        key = json.dumps(["clock"])
        if key not in self._snapshot:
            self._snapshot[key] = datetime.now(timezone.utc).isoformat()
        return datetime.fromisoformat(self._snapshot[key])

    # ------------------------------------------------------------------ snapshot
    def _fetch(self, key: tuple[str, ...], get: Callable[[], Any]) -> Any:
        try:
            data = get()
        except PrometheusError as exc:  # recorded too: a replay must fail the way the run did
            self._snapshot[error_key(key)] = recorded_error(exc)
            count_refusal(self._stats, key, exc)
            raise
        self._snapshot[json.dumps(key)] = data
        return data

    def save_snapshot(self, path: str | Path) -> Path:
        """Write every answer received so far (gzip JSON, deterministic bytes) for ``reliability render``."""
        return write_snapshot(Path(path), self.url, self._snapshot)

    # ------------------------------------------------------------------ transport
    def _typed(self, result: Any, kinds: tuple[str, ...], query: str) -> Any:
        transport.check_result_type(self._stats.last_response, kinds, url=self.url, query=query)
        return result

    def _range(self, params: dict[str, Any]) -> Any:
        # custom_query_range rounds start/end to whole seconds; exact values in params win.
        start = datetime.fromtimestamp(float(params["start"]), timezone.utc)
        end = datetime.fromtimestamp(float(params["end"]), timezone.utc)
        return self._api.custom_query_range(
            params["query"], start, end, params["step"],
            params={"start": params["start"], "end": params["end"]},
        )

    def _get_json(self, path: str, params: dict[str, Any] | None) -> Any:
        r = self._session.get(self.url + path, params=params, headers=self._api.headers,
                              auth=self._api.auth, timeout=self.timeout)
        if r.status_code != 200:
            raise PrometheusApiClientException(f"HTTP Status Code {r.status_code}")
        body = r.json()
        if body.get("status") != "success":
            raise PrometheusApiClientException("status is not success")
        return body["data"]

    def _remaining(self) -> float | None:
        return None if self._deadline is None else self._deadline - time.monotonic()

    def _remember(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        # The hook belongs to the shared session: the answer is counted by the client (or
        # branch) whose request is running on this thread.
        (getattr(calling, "stats", None) or self._stats).count(response)

    def _call(self, fn: Callable[[], Any], query: str) -> Any:
        """Run one logical request: breaker, retries with backoff and jitter, error parsing."""
        calling.stats = self._stats
        try:
            return self._call_with_retries(fn, query)
        finally:
            calling.stats = None

    def _call_with_retries(self, fn: Callable[[], Any], query: str) -> Any:
        from reliability.source.breaker import CircuitOpenError

        last: str = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self._sleep(self._random.uniform(0, self.backoff * 2 ** (attempt - 1)))
            self._stats.last_response = None
            try:
                result = self.breaker.call(self._attempt, fn, query)
            except CircuitOpenError as exc:
                why = last or "other queries to it failed; this one was not sent"  # the breaker is shared
                raise PrometheusUnavailable(
                    f"Prometheus at {self.url} failed repeatedly ({why}); the client's "
                    f"circuit breaker is open, so no request is sent until it lets a probe through. "
                    f"Check that the server is up: curl {self.url}/-/ready",
                    url=self.url,
                ) from exc
            except Retryable as exc:
                last = str(exc)
                continue
            if isinstance(result, Final):  # a 4xx: the server is alive, the request is wrong
                raise result.error
            return result
        raise PrometheusUnavailable(
            f"Prometheus at {self.url} did not answer after {self.retries + 1} attempts: {last}. "
            f"Check the URL and that the server is up (curl {self.url}/-/ready).",
            url=self.url,
        )

    def _attempt(self, fn: Callable[[], Any], query: str) -> Any:
        """One HTTP attempt; raises Retryable (counts as a breaker failure) or a final error."""
        try:
            return fn()
        except transport.AnswerRefused as exc:  # a bound was hit: asking again would cost the same
            raise PrometheusUnavailable(f"Prometheus at {self.url}: {exc}", url=self.url) from None
        except requests.exceptions.SSLError as exc:  # trust is configuration: asking again fails the same way
            raise PrometheusUnavailable(transport.tls_failure(self.url, exc), url=self.url) from None
        except _RETRYABLE as exc:
            kind = "timed out" if isinstance(exc, requests.Timeout) else "connection failed"
            raise Retryable(f"{kind} ({type(exc).__name__})") from exc
        except (ValueError, KeyError, TypeError) as exc:  # malformed JSON or missing members
            resp = self._stats.last_response
            if resp is not None and resp.status_code == 200:
                raise Retryable(f"malformed answer ({type(exc).__name__}: {exc})") from exc
            raise
        except PrometheusApiClientException as exc:
            resp = self._stats.last_response
            status = resp.status_code if resp is not None else 0
            error_type, error = transport.error_fields(resp)
            if (status >= 500 or status == 0) and not transport.too_large(status, error_type, error):
                raise Retryable(f"HTTP {status} {error_type}: {error}".strip()) from exc
            return Final(transport.query_error(self.url, status, error_type, error, query))

    def _record(self, record: QueryRecord, t0: float, n0: int) -> None:
        from dataclasses import replace

        self._stats.add(
            replace(record, http_requests=self._stats.http_requests - n0, seconds=time.perf_counter() - t0)
        )


def _ts(t: datetime) -> str:
    return num(t.timestamp())
