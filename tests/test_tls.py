"""TLS as real servers do it: a private CA, requests' own variables, and mutual TLS.

A TLS server on 127.0.0.1 (Python's ``ssl``) forwards to the session's Prometheus; every
certificate is made here with openssl. The machines CI runs on set ``REQUESTS_CA_BUNDLE`` to
the system's CAs, which requests lets replace a session's own CA: each test runs with it set.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import certifi
import pytest
from conftest import ts
from hostile import Hostile

from reliability.errors import ConfigurationError, PrometheusUnavailable
from reliability.source.prom import PrometheusClient

pytestmark = pytest.mark.prometheus
REPO = Path(__file__).resolve().parents[1]
TRUST = ("PROMETHEUS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE",
         "PROMETHEUS_CLIENT_CERT", "PROMETHEUS_CLIENT_KEY")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two CAs made here (``ca``, ``other``), a server certificate for 127.0.0.1 that ``ca`` signed,
    and a client certificate that ``ca`` signed (``client.pem``, ``client.key``)."""
    d = tmp_path_factory.mktemp("pki")

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=d, check=True, capture_output=True, timeout=60)

    for name in ("ca", "other"):
        run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem",
            "-days", "2", "-subj", f"/CN=love test {name}")
    (d / "server.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
    (d / "client.cnf").write_text("extendedKeyUsage=clientAuth\n")
    for name in ("server", "client"):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
            "-subj", f"/CN={name}")
        run("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.cnf")
    return d


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No trust variable set but the one CI machines set: REQUESTS_CA_BUNDLE = the public CAs."""
    for name in TRUST:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    return monkeypatch


@pytest.fixture
def tls(pki: Path, prometheus_url: str):
    with Hostile("proxy", cert=(pki / "server.pem", pki / "server.key"), upstream=prometheus_url) as h:
        yield h


@pytest.fixture
def mtls(pki: Path, prometheus_url: str):
    with Hostile("proxy", cert=(pki / "server.pem", pki / "server.key"), upstream=prometheus_url,
                 client_ca=pki / "ca.pem") as h:
        yield h


def test_the_private_ca_wins_over_requests_ca_bundle(tls: Hostile, pki: Path, env: pytest.MonkeyPatch) -> None:
    with pytest.raises(PrometheusUnavailable, match="not trusted by the CA in REQUESTS_CA_BUNDLE"):
        PrometheusClient(tls.url, retries=0).query("up", ts("2025-10-26T09:00:00Z"))
    env.setenv("PROMETHEUS_CA_BUNDLE", str(pki / "ca.pem"))
    client = PrometheusClient(tls.url, retries=0)
    assert client.ready()  # a plain GET of the session: this one lost the CA to REQUESTS_CA_BUNDLE
    assert len(client.query("up", ts("2025-10-26T09:00:00Z"))) > 0
    assert client.api("status/buildinfo")["version"]


@pytest.mark.parametrize("variable", ["REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"])
def test_requests_and_openssl_variables_are_honoured(variable: str, tls: Hostile, pki: Path,
                                                     env: pytest.MonkeyPatch) -> None:
    env.delenv("REQUESTS_CA_BUNDLE")
    env.setenv(variable, str(pki / "ca.pem"))
    client = PrometheusClient(tls.url, retries=0)
    assert client.ready() and len(client.query("up", ts("2025-10-26T09:00:00Z"))) > 0


def test_a_wrong_ca_is_a_usage_error_naming_the_variable(tls: Hostile, pki: Path, env: pytest.MonkeyPatch,
                                                         tmp_path: Path) -> None:
    env.setenv("PROMETHEUS_CA_BUNDLE", str(pki / "other.pem"))
    r = cli("proof", "--prometheus-url", tls.url, "--candidate", "v1.9.1", "--start", "2025-10-26T09:00:00Z",
            "--end", "2025-10-26T10:00:00Z", "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"PROMETHEUS_CA_BUNDLE={pki / 'other.pem'}" in r.stderr and "certificate verify failed" in r.stderr
    assert not (tmp_path / "out").exists()  # before any work


def test_a_trust_file_that_is_not_there_is_named(tls: Hostile, env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("PROMETHEUS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigurationError, match=r"PROMETHEUS_CA_BUNDLE=.*missing.pem does not exist"):
        PrometheusClient(tls.url)
    PrometheusClient("http://127.0.0.1:9")  # an http URL needs no CA: a stale variable does not stop it
    env.setenv("PROMETHEUS_CLIENT_KEY", str(tmp_path / "k.pem"))
    env.setenv("PROMETHEUS_CA_BUNDLE", certifi.where())
    with pytest.raises(ConfigurationError, match="PROMETHEUS_CLIENT_KEY is set without PROMETHEUS_CLIENT_CERT"):
        PrometheusClient(tls.url)


def test_mutual_tls_with_a_client_certificate(mtls: Hostile, pki: Path, env: pytest.MonkeyPatch,
                                              tmp_path: Path) -> None:
    env.setenv("PROMETHEUS_CA_BUNDLE", str(pki / "ca.pem"))
    with pytest.raises(ConfigurationError, match="no PROMETHEUS_CLIENT_CERT"):
        PrometheusClient(mtls.url, retries=0).check_tls()
    env.setenv("PROMETHEUS_CLIENT_CERT", str(pki / "client.pem"))
    env.setenv("PROMETHEUS_CLIENT_KEY", str(pki / "client.key"))
    client = PrometheusClient(mtls.url, retries=0)
    client.check_tls()
    assert client.ready() and len(client.query("up", ts("2025-10-26T09:00:00Z"))) > 0
    combined = tmp_path / "both.pem"  # one file with the certificate and its key, as curl --cert takes
    combined.write_text((pki / "client.pem").read_text() + (pki / "client.key").read_text())
    env.delenv("PROMETHEUS_CLIENT_KEY")
    env.setenv("PROMETHEUS_CLIENT_CERT", str(combined))
    assert PrometheusClient(mtls.url, retries=0).ready()


@pytest.mark.slow
def test_a_cli_proof_through_tls_with_a_private_ca(tls: Hostile, pki: Path, env: pytest.MonkeyPatch,
                                                   tmp_path: Path, truth: dict) -> None:
    """The documented route, end to end: the canary is GO through the TLS proxy."""
    env.setenv("PROMETHEUS_CA_BUNDLE", str(pki / "ca.pem"))
    w = truth["windows"]["canary"]
    r = cli("proof", "--prometheus-url", tls.url, "--candidate", "v1.9.1", "--start", w["start"], "--end", w["end"],
            "--junit", str(REPO / "data" / "junit" / "v1.9.1.xml"), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Verdict: GO" in r.stdout


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert shutil.which("openssl")
    return subprocess.run([sys.executable, "-m", "reliability", *args], capture_output=True, text=True,
                          timeout=240, cwd=cwd, env=dict(os.environ))
