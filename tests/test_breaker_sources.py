"""Breaker trips from each library's metrics, on a history written in its exposition: the same outage.

The db breaker opens at 10:20, fails its half-open trial at 10:22 and closes at 10:24
(:data:`sli_histories.OUTAGE`): two trips, one of them a re-trip. Written as the seed's contract,
as opossum-prometheus writes it (series born at their first event, no half-open event) and as
resilience4j's Micrometer binder writes it (a one-hot state gauge, no transition counter), every
source must give those trips, find its library on the server, and carry a whole proof to GO from
the ``[breakers]`` table ``init`` wrote.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import replace

import pytest
import sli_histories as h

from reliability import config, paths
from reliability.analysis.breakers import breaker_stats
from reliability.cli import scaffold
from reliability.errors import ConfigurationError, StatisticalWarning
from reliability.gate import proof
from reliability.source.breaker_metrics import PRESETS, resolve
from reliability.source.prom import PrometheusClient
from reliability.source.sli import SEED
from reliability.source.sli_check import detect_breakers

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]
CASES = {**PRESETS, "opossum-prefix": resolve({"prefix": "clinic_"}, preset="opossum")}


@pytest.fixture(scope="module", params=list(CASES))
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    from reliability.source.embedded import EmbeddedPrometheus

    metrics = CASES[request.param]
    root = tmp_path_factory.mktemp(request.param)
    h.write(SEED, root / "history.om", breakers=metrics)
    repo = root / "repo"
    scaffold.init(repo, job=h.JOB, breakers=metrics)
    with EmbeddedPrometheus(root / "history.om", config=repo / "monitoring" / "prometheus.yml",
                            cache_dir=root / "cache") as prom:
        yield {"metrics": metrics, "repo": repo, "client": PrometheusClient(prom.url)}


def stats(served: dict):
    with warnings.catch_warnings():  # one outage: too few to time outages, said, not failed
        warnings.simplefilter("ignore", StatisticalWarning)
        return breaker_stats(served["client"], *h.WINDOW, selector=f'job="{h.JOB}"', scrape_interval=h.STEP,
                             source=served["metrics"]).summary.set_index("breaker")


def test_the_outage_s_trips_are_read_from_each_library(served: dict) -> None:
    s = stats(served)
    assert sorted(s.index) == sorted(h.DEFAULT_DEPENDENCIES)
    db = s.loc["db"]
    assert {k: db[k] for k in h.BREAKER_TRUTH["db"]} == h.BREAKER_TRUTH["db"]
    assert (s.drop(index="db")["trips"] == 0).all()
    assert db["state_at_end"] == "closed" and db["rejected"] > 0 and db["successes"] > 0
    kind = served["metrics"].kind
    assert math.isnan(db["time_half_open"]) == (kind == "opossum")  # opossum exports no half-open event
    assert (db["hidden_at_most"] > 0) == (kind == "resilience4j")     # a gauge can hide short state changes


def test_the_library_is_found_on_the_server(served: dict) -> None:
    found = {preset: m for preset, m, names in detect_breakers(served["client"]) if "db" in names}
    m = served["metrics"]
    assert m.preset in found and found[m.preset].exported() == m.exported()


def test_a_proof_reads_the_breakers_the_settings_name_and_is_go(served: dict) -> None:
    repo = served["repo"]
    metrics = config.load(repo).breakers()
    assert metrics == served["metrics"]
    p = proof.ProofParams(start=h.WINDOW[0], end=h.WINDOW[1], candidate=h.CANDIDATE, stable=h.STABLE,
                          selector=f'job="{h.JOB}"', breakers=metrics, junit=(str(paths.JUNIT / "v1.9.1.xml"),),
                          rules=str(repo / "monitoring" / "alerts.yml"),
                          dashboard=str(repo / "monitoring" / "grafana-dashboard.json"))
    result = proof.run(p, served["client"])
    assert result.verdict.decision == "GO", result.verdict.reasons
    coverage = result.sections["breakers"].coverage.set_index("dependency")
    assert (coverage["status"] == "covered").all()
    missing = proof.run(replace(p, dependencies=("db", "payments")), served["client"])
    assert missing.verdict.decision == "NO-GO"
    assert any("no circuit breaker for payments" in r and metrics.describe() in r for r in missing.verdict.reasons)


def test_a_wrong_breakers_table_is_a_usage_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown preset 'hystrix'"):
        resolve({"preset": "hystrix"})
    with pytest.raises(ConfigurationError, match="prefix is opossum-prometheus' metricPrefix"):
        resolve({"preset": "resilience4j", "prefix": "x_"})
    assert resolve({"prefix": "svc_"}, preset="opossum").events == "svc_circuit"


def test_the_what_if_reads_the_same_calls(served: dict) -> None:
    from reliability.analysis.breakers import call_intervals

    s = stats(served).loc["db"]
    iv = call_intervals(served["client"], *h.WINDOW, breaker="db", selector=f'job="{h.JOB}"', interval=h.STEP,
                        source=served["metrics"])
    assert iv["rejected"].sum() == pytest.approx(s["rejected"], abs=5)
    assert iv["calls"].sum() == pytest.approx(s["successes"] + s["failures"], abs=5)  # the calls that got through
