"""The HTTP session for a Prometheus server: credentials and trust from the environment only.

Never from arguments: a notebook records its parameters in the output and the PDF.
``PROMETHEUS_BEARER_TOKEN``, or ``PROMETHEUS_USERNAME`` + ``PROMETHEUS_PASSWORD``;
``PROMETHEUS_CA_BUNDLE`` names a private CA. TLS verification is always on.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter

from reliability.errors import ConfigurationError, PrometheusQueryError


class AnswerRefused(requests.RequestException):
    """The server's answer broke a bound: too large, too slow, or a redirect elsewhere. Not retried."""


def verify() -> str | bool:
    """TLS verification: the private CA when ``PROMETHEUS_CA_BUNDLE`` names one, else the system's."""
    ca = os.environ.get("PROMETHEUS_CA_BUNDLE")
    if ca and not os.path.isfile(ca):
        raise ConfigurationError(f"PROMETHEUS_CA_BUNDLE={ca} is not a file; give the PEM file of the private CA")
    return ca or True


class _Session(requests.Session):
    """Follows a redirect only to the same scheme, host and port; credentials never travel."""

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
