"""The HTTP session for a Prometheus server: credentials and trust from the environment only.

Never from arguments: a notebook records its parameters in the output and the PDF.
``PROMETHEUS_BEARER_TOKEN``, or ``PROMETHEUS_USERNAME`` + ``PROMETHEUS_PASSWORD``;
``PROMETHEUS_CA_BUNDLE`` names a private CA, else requests' own ``REQUESTS_CA_BUNDLE`` /
``CURL_CA_BUNDLE`` and OpenSSL's ``SSL_CERT_FILE`` are honoured, in that order;
``PROMETHEUS_CLIENT_CERT`` (+ ``PROMETHEUS_CLIENT_KEY``) is the client certificate for mTLS.
TLS verification is always on.
"""
from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

from reliability.errors import ConfigurationError, PrometheusQueryError, QueryTooLarge


class Retryable(Exception):
    """An attempt failed in a way worth retrying (and counting against the breaker)."""


@dataclass(frozen=True)
class Final:
    """A final 4xx, returned (not raised) so the breaker counts the answer as a success."""

    error: PrometheusQueryError


def num(x: float) -> str:
    """A time or step on the wire: seconds with at most millisecond digits, as Prometheus reads them."""
    return f"{x:.3f}".rstrip("0").rstrip(".")


def range_chunks(start: float, end: float, step: float, points: int) -> list[tuple[str, str, str]]:
    """``(start, end, step)`` of each range query for the grid start, start+step, ... <= end, at most
    ``points`` points each, in whole milliseconds as sent.

    Each chunk's end is its own last grid point, computed in the milliseconds the server counts in:
    rounding start, step and end separately can put the last point a millisecond past the end,
    and the server then drops it (a window of one step kept only its first point).
    """
    start_ms, step_ms = round(start * 1000), max(1, round(step * 1000))
    last = int((end - start + 5e-4) / step)  # the last grid point within the window, to the wire's millisecond
    out, k = [], 0
    while k <= last:
        n = min(points - 1, last - k)
        first_ms = start_ms + k * step_ms
        out.append((num(first_ms / 1000), num((first_ms + n * step_ms) / 1000), num(step_ms / 1000)))
        k += n + 1
    return out


class AnswerRefused(requests.RequestException):
    """The server's answer broke a bound: too large, too slow, or a redirect elsewhere. Not retried."""


#: Where the CA comes from, first set wins: ours, then requests' own, then OpenSSL's.
CA_VARIABLES = ("PROMETHEUS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")
CERT_VARIABLE, KEY_VARIABLE = "PROMETHEUS_CLIENT_CERT", "PROMETHEUS_CLIENT_KEY"


def ca_source() -> tuple[str | bool, str]:
    """TLS verification and the variable that chose it: ``(path, name)``, or ``(True, "")`` for certifi's CAs."""
    for name in CA_VARIABLES:
        path = os.environ.get(name)
        if path:
            if not os.path.exists(path):
                raise ConfigurationError(f"{name}={path} does not exist; give the PEM file of the CA that signed "
                                         "the Prometheus server's certificate")
            return path, name
    return True, ""


def verify() -> str | bool:
    """TLS verification: the first CA file of :data:`CA_VARIABLES` that is set, else certifi's CAs."""
    return ca_source()[0]


def client_cert() -> str | tuple[str, str] | None:
    """The client certificate for mutual TLS: ``PROMETHEUS_CLIENT_CERT`` (and its ``PROMETHEUS_CLIENT_KEY``)."""
    cert, key = os.environ.get(CERT_VARIABLE), os.environ.get(KEY_VARIABLE)
    if key and not cert:
        raise ConfigurationError(f"{KEY_VARIABLE} is set without {CERT_VARIABLE}; set both (or a {CERT_VARIABLE} "
                                 "PEM file that holds the key too)")
    for name, path in ((CERT_VARIABLE, cert), (KEY_VARIABLE, key)):
        if path and not os.path.isfile(path):
            raise ConfigurationError(f"{name}={path} is not a file; give the PEM file of the client "
                                     f"{'certificate' if name == CERT_VARIABLE else 'key'}")
    return (cert, key) if cert and key else cert or None


def tls_failure(url: str, exc: BaseException) -> str:
    """What a failed TLS handshake means, naming the variable to change."""
    text = str(exc)
    found = re.search(r"([A-Za-z][^\][(']*?) \(_ssl\.c", text)  # OpenSSL's own words, before "(_ssl.c:N)"
    reason = found.group(1) if found else text[:200]
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate verify failed" in text:
        _, name = ca_source()
        trusted = f"the CA in {name}={os.environ[name]}" if name else "the default CAs (certifi)"
        return (f"TLS: the certificate of {url} is not trusted by {trusted} ({reason}); set "
                "PROMETHEUS_CA_BUNDLE to the PEM file of the CA that signed the server's certificate")
    cert = os.environ.get(CERT_VARIABLE)
    if cert:
        return (f"TLS: {url} ended the handshake ({reason}) with {CERT_VARIABLE}={cert}; the server does not "
                f"accept that client certificate: use one its CA signed (and its {KEY_VARIABLE})")
    return (f"TLS: {url} ended the handshake ({reason}) with no {CERT_VARIABLE}; if the server requires a "
            f"client certificate (mutual TLS), set {CERT_VARIABLE} (and {KEY_VARIABLE}), else check the URL's "
            "scheme and port")


def check_tls(session: requests.Session, url: str, *, timeout: float) -> None:
    """Raise :class:`ConfigurationError` when an https server's certificate or the client's is refused:
    trust is the user's setting, so the CLI says so before any work. Anything else is left to the proof."""
    if url.startswith("https://"):
        try:
            session.get(url + "/-/ready", timeout=timeout)
        except requests.exceptions.SSLError as exc:
            raise ConfigurationError(tls_failure(url, exc)) from None
        except requests.RequestException:
            pass


def status_of(url: str, timeout: float, verify: str | bool) -> int:
    """The HTTP status of a plain GET (no credentials), 0 when nothing answers."""
    try:
        return requests.get(url, timeout=timeout, verify=verify).status_code
    except requests.RequestException:
        return 0


class _Session(requests.Session):
    """Follows a redirect only to the same scheme, host and port; credentials never travel.

    Its own trust (``verify``, ``cert``) wins over the environment's: requests lets
    ``REQUESTS_CA_BUNDLE`` replace a session's CA, which would undo ``PROMETHEUS_CA_BUNDLE``.
    """

    def merge_environment_settings(self, url: str | bytes | None, proxies: Any, stream: Any, verify: Any,
                                   cert: Any) -> dict[str, Any]:
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        settings["verify"] = self.verify
        if self.cert:
            settings["cert"] = self.cert
        return settings

    def get_redirect_target(self, resp: requests.Response) -> str | None:
        target = super().get_redirect_target(resp)
        if target:
            here, there = urlsplit(resp.url), urlsplit(urljoin(resp.url, target))
            if (here.scheme, here.hostname, here.port) != (there.scheme, there.hostname, there.port):
                raise AnswerRefused(f"the server redirected to another host or port ({there.scheme}://"
                                    f"{there.netloc}); set PROMETHEUS_URL to the server that answers")
        return target


class BoundedAdapter(HTTPAdapter):
    """Every answer read in pieces with a size cap and a deadline for the whole answer.

    A read timeout alone does not end a server that trickles one byte every few seconds, and an
    unbounded body can take the memory: each piece is checked against both bounds.
    """

    def __init__(self, *, max_bytes: int, per_request: float, remaining: Callable[[], float | None],
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_bytes, self.per_request, self.remaining = max_bytes, per_request, remaining

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        left = self.remaining()
        budget = self.per_request if left is None else min(self.per_request, left)
        if budget <= 0:
            raise AnswerRefused("the proof's deadline has passed (--deadline); nothing more is asked")
        kwargs["timeout"] = budget
        kwargs["stream"] = True
        # Uncompressed, so each piece read is what arrived (a decoder may hand back nothing
        # mid-stream) and the size bound counts what is kept.
        request.headers["Accept-Encoding"] = "identity"
        resp = super().send(request, **kwargs)
        until, size, pieces = time.monotonic() + budget, 0, []
        try:
            while chunk := resp.raw.read1(1 << 16):
                size += len(chunk)
                if size > self.max_bytes:
                    raise AnswerRefused(f"the answer is larger than {self.max_bytes >> 20} MB (--max-answer-mb); "
                                        "narrow the query or raise the bound")
                if time.monotonic() > until:
                    raise AnswerRefused(f"the answer took longer than {budget:.0f} s to arrive; the server is "
                                        "too slow or trickling")
                pieces.append(chunk)
        finally:
            resp.raw.close()
        resp._content = b"".join(pieces)  # what requests would have read, now bounded
        resp._content_consumed = True
        return resp


def credentials_session() -> tuple[requests.Session, dict[str, str], tuple[str, str] | None]:
    """A session that follows no redirect elsewhere, its headers and basic auth (``verify()`` is the trust)."""
    session = _Session()  # verify is set by the client, after PrometheusConnect has set its own
    headers: dict[str, str] = {}
    auth = None
    token = os.environ.get("PROMETHEUS_BEARER_TOKEN")
    user, password = os.environ.get("PROMETHEUS_USERNAME"), os.environ.get("PROMETHEUS_PASSWORD")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif user or password:
        if not (user and password):
            raise ConfigurationError("set both PROMETHEUS_USERNAME and PROMETHEUS_PASSWORD, or neither")
        auth = (user, password)
    return session, headers, auth


HINTS = {  # what to do about each Prometheus errorType
    "bad_data": "the query or its parameters are invalid; check the PromQL syntax and label names",
    "execution": "the query failed while running; narrow the selector or the range",
    "timeout": "the query took too long; use a larger step or a shorter range",
    "canceled": "the server cancelled the query; retry later",
    "not_found": "this endpoint does not exist on the server (is it Prometheus-compatible?)",
}


def error_fields(resp: requests.Response | None) -> tuple[str, str]:
    if resp is None:
        return "", ""
    try:
        body = resp.json()
        return str(body.get("errorType", "")), str(body.get("error", ""))
    except ValueError:
        return "", resp.text[:200].strip()


def check_result_type(resp: requests.Response | None, kinds: tuple[str, ...], *, url: str, query: str) -> None:
    """The answer's ``resultType`` is one asked for: a string is never read as a number."""
    body = resp.json() if resp is not None else {}
    kind = (body.get("data") or {}).get("resultType") if isinstance(body, dict) else None
    if kind not in kinds:
        raise PrometheusQueryError(f"Prometheus at {url} answered a {kind!r} where a {' or '.join(kinds)} was "
                                   f"asked\n  query: {query}\n  what to do: check PROMETHEUS_URL points at a "
                                   "Prometheus-compatible server", url=url, error_type="bad_result", query=query)


#: How servers say a query is too large for their limits: Prometheus (``--query.max-samples``,
#: promql/engine.go ErrTooManySamples; ``--query.timeout``, errorType "timeout"), VictoriaMetrics
#: (``-search.maxSamplesPerQuery``, ``-search.maxSeries``...), Thanos and Mimir (sample and series limits).
TOO_LARGE = re.compile(r"too many samples|maxSamplesPerQuery|maxSeries|maxPointsPerTimeseries|maximum number of "
                       r"(samples|series)|max number of (samples|series)|query timed out|exceeded the limit",
                       re.IGNORECASE)


def too_large(status: int, error_type: str, error: str) -> bool:
    """Whether an answer refuses a query for its size (smaller pieces may pass), not for its text."""
    return error_type == "timeout" or (status in (400, 422, 503) and bool(TOO_LARGE.search(error)))


def refused_in_pieces(exc: QueryTooLarge, pieces: str) -> QueryTooLarge:
    """The refusal that splitting could not get past: the answer is INCONCLUSIVE, and this says what to do."""
    return QueryTooLarge(f"{exc} -- refused even in {pieces}; the server's limits are below what one evaluation "
                         "needs: raise them (--query.max-samples, --query.timeout, -search.maxSamplesPerQuery) or "
                         "narrow the scope", url=exc.url, error_type=exc.error_type, query=exc.query)


def default_breaker() -> Any:
    """5 consecutive failed attempts open the breaker for 30 s: a dead server fails fast."""
    from reliability.source.breaker import CircuitBreaker

    return CircuitBreaker(failure_threshold=5, timeout=30.0, name="prometheus")


def query_error(url: str, status: int, error_type: str, error: str, query: str) -> PrometheusQueryError:
    """A 4xx answer as an exception that says what to do, from Prometheus' ``errorType`` and ``error``."""
    if too_large(status, error_type, error):
        return QueryTooLarge(f"Prometheus at {url} refused a query for its size ({status} {error_type}: {error})"
                             f"\n  query: {query}", url=url, error_type=error_type or f"http_{status}", query=query)
    hint = HINTS.get(error_type, "")
    if status in (401, 403):
        hint = "set PROMETHEUS_BEARER_TOKEN or PROMETHEUS_USERNAME/PROMETHEUS_PASSWORD for this server"
    elif "11,000" in error or "11000" in error:
        hint = "use a larger step or a shorter range"
    msg = f"Prometheus at {url} answered {status} ({error_type or 'error'}): {error or 'no detail'}"
    msg += f"\n  query: {query}" + (f"\n  what to do: {hint}" if hint else "")
    return PrometheusQueryError(msg, url=url, error_type=error_type or f"http_{status}", query=query)
