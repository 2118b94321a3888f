"""Test session setup: one real Prometheus on 127.0.0.1, fed from data/, for every test.

It is started in ``pytest_sessionstart`` (not a fixture) and its URL exported as
``PROMETHEUS_URL``, because nbval's notebook kernels inherit the environment but
cannot see pytest fixtures.
"""
from __future__ import annotations

import json
import os
from datetime import datetime

import pytest

from reliability import paths

_SERVER = None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _SERVER
    # Screenshots of the Prometheus UI cost a browser start per report: only the tests about them take them.
    os.environ.setdefault("LOVE_SCREENSHOTS", "0")
    if os.environ.get("LOVE_TEST_NO_PROMETHEUS"):  # pure tests only, e.g. while editing
        return
    from reliability.source.embedded import EmbeddedPrometheus

    _SERVER = EmbeddedPrometheus().start()
    os.environ["PROMETHEUS_URL"] = _SERVER.url
    os.environ["ALERTMANAGER_URL"] = _SERVER.alertmanager_url or ""


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _SERVER is not None:
        _SERVER.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _SERVER is None:
        skip = pytest.mark.skip(reason="LOVE_TEST_NO_PROMETHEUS is set")
        for item in items:
            if "prometheus" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def prometheus_url() -> str:
    """URL of the session's real local Prometheus serving the bundled history."""
    if _SERVER is None:
        pytest.skip("LOVE_TEST_NO_PROMETHEUS is set")
    return _SERVER.url


@pytest.fixture(scope="session")
def client(prometheus_url: str):
    """The adapter pointed at the session's Prometheus."""
    from reliability.source.prom import PrometheusClient

    return PrometheusClient(prometheus_url)


@pytest.fixture(scope="session")
def truth() -> dict:
    """The generator's ground truth for the bundled history."""
    return json.loads(paths.GROUND_TRUTH.read_text())


def ts(text: str) -> datetime:
    """Parse the ground truth's ISO 8601 UTC times."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def process_exists(pid: int) -> bool:
    """Whether a process with this pid still exists (for "nothing outlives stop()" tests)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
