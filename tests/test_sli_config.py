"""A wrong [sli] is a usage error before any work, naming the field and what the server has."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from reliability import config
from reliability.errors import ConfigurationError
from reliability.source.prom import PrometheusClient
from reliability.source.sli import PRESETS, SEED, resolve
from reliability.source.sli_check import errors_match, settle

CANARY = ["--start", "2025-10-26T09:00:00Z", "--end", "2025-10-27T09:00:00Z", "--candidate", "v1.9.1"]


def gate(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reliability", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=240, env=dict(os.environ))


def test_presets_and_overrides_resolve() -> None:
    assert resolve({}) == SEED
    otel = resolve({"preset": "otel", "version_label": "deployment_environment"})
    assert otel.requests == PRESETS["otel"].requests and otel.version_label == "deployment_environment"
    assert resolve({"errors": "5xx"}).class_only and not resolve({"errors": "5[0-9][0-9]"}).class_only
    assert resolve(otel.as_table()) == otel  # what the evidence records gives the same SLI back
    with pytest.raises(ConfigurationError, match="unknown preset 'otle'; use one of seed, otel"):
        resolve({"preset": "otle"})
    with pytest.raises(ConfigurationError, match=r"unknown key\(s\) code; known:"):
        resolve({"code": "status"})
    with pytest.raises(ConfigurationError, match="filters may not slice the traffic by outcome"):
        resolve({"filters": 'status!~"5.."'})


def test_errors_regex_fits_the_servers_spelling() -> None:
    assert errors_match("5..", ["200", "404"]) == ["500", "504"]  # never failed: a failure in the same form
    assert errors_match("5xx", ["2xx", "4xx"]) == ["5xx"]
    assert errors_match("5..", ["2", "4"]) == []                  # Envoy's classes: "5.." can never match


def test_the_old_version_label_still_works_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "reliability.toml").write_text('job = "love-backend"\nversion_label = "release"\n')
    s = config.load(tmp_path)
    assert s.sli().version_label == "release" and "belongs in [sli]" in s.notes[0]
    (tmp_path / "reliability.toml").write_text('version_label = "a"\n[sli]\npreset = "seed"\nversion_label = "b"\n')
    s = config.load(tmp_path)
    assert s.sli().version_label == "b" and "is ignored" in s.notes[0]
    assert s.sli("istio") == PRESETS["istio"]  # --sli names another preset: the seed's overrides do not apply


@pytest.mark.prometheus
def test_the_server_is_asked_what_it_has(client: PrometheusClient) -> None:
    scoped = client.scoped(['job="love-backend"'])
    assert settle(SEED, scoped) == SEED
    with pytest.raises(ConfigurationError, match=r"code_label = 'code': http_requests_total has no such label; "
                                                 r"its labels: .*status"):
        settle(resolve({"code_label": "code"}), scoped)
    with pytest.raises(ConfigurationError, match=r"errors = '5xx' matches none of the status values the server has "
                                                 r"seen on http_requests_total \(200, 400.*write errors = \"5..\""):
        settle(resolve({"errors": "5xx"}), scoped)
    with pytest.raises(ConfigurationError, match="requests = istio_requests_total: the server has no such series for "
                                                 "this service; it has data for: seed"):
        settle(PRESETS["istio"], scoped)


@pytest.mark.prometheus
@pytest.mark.slow
def test_a_wrong_sli_is_exit_2_before_any_work(tmp_path: Path, prometheus_url: str) -> None:
    (tmp_path / "reliability.toml").write_text('job = "love-backend"\n[sli]\npreset = "seed"\nversion_label = "rel"\n')
    r = gate("proof", *CANARY, "--prometheus-url", prometheus_url, "--out", "out", cwd=tmp_path)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "version_label = 'rel': http_requests_total has no such label" in r.stderr
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob("out*"))
    r = gate("proof", *CANARY, "--prometheus-url", prometheus_url, "--sli", "istio", "--out", "out", cwd=tmp_path)
    assert r.returncode == 2 and "it has data for: seed" in r.stderr, r.stderr
    r = gate("proof", *CANARY, "--sli", "otle", cwd=tmp_path)
    assert r.returncode == 2 and "invalid choice: 'otle'" in r.stderr
