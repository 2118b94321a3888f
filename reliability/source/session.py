"""The HTTP session for a Prometheus server: credentials and trust from the environment only.

Never from arguments: a notebook records its parameters in the output and the PDF.
``PROMETHEUS_BEARER_TOKEN``, or ``PROMETHEUS_USERNAME`` + ``PROMETHEUS_PASSWORD``;
``PROMETHEUS_CA_BUNDLE`` names a private CA. TLS verification is always on.
"""
from __future__ import annotations

import os

import requests

from reliability.errors import ConfigurationError


def credentials_session() -> tuple[requests.Session, dict[str, str], tuple[str, str] | None]:
    """A session that verifies TLS (with the private CA when given), its headers and basic auth."""
    session = requests.Session()
    session.verify = os.environ.get("PROMETHEUS_CA_BUNDLE") or True
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
