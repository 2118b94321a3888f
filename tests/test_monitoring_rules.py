"""The monitoring files are valid for Prometheus and Grafana, and the seed's alert is intact.

promtool is the oracle for alert semantics: it checks the config and rule files and runs
the unit tests in monitoring/tests/ (each alert fires, stays quiet, and meets its `for`
edge). The Python tests here check what promtool cannot: that the seed's rule kept its
meaning, that every alert and recording rule has a promtool test, that recording rules
can be inlined by the backtester, and that the Grafana dashboard is importable and its
queries parse.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from reliability import paths

RECORDING_YML = paths.MONITORING / "recording.yml"
RULE_FILES = (paths.ALERTS_YML, RECORDING_YML, paths.SLI_RECORDING_YML)
UNIT_TESTS = sorted((paths.MONITORING / "tests").glob("*.yml"))

SEED_EXPR = ('( sum(rate(http_requests_total{status=~"5.."}[5m])) '
             '/ sum(rate(http_requests_total[5m])) ) > 0.02')

# What Grafana substitutes before a query reaches Prometheus; any value of the right kind
# will do for a syntax check.
GRAFANA_MACROS = {
    "$__rate_interval": "5m",
    "$__interval": "1m",
    "$__range": "1d",
    "${version}": ".*",
    "$version": ".*",
}
DATASOURCE_REF = {"type": "prometheus", "uid": "${datasource}"}


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool, failing (never skipping) with the install command when it is missing."""
    binary = os.environ.get("PROMTOOL_BIN") or shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is not on PATH; install it with "
                    "`apt-get install --no-install-recommends prometheus` "
                    "(or set PROMTOOL_BIN to its path)")
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=240, check=False)


def assert_promtool_ok(result: subprocess.CompletedProcess[str]) -> None:
    """Show promtool's own words when it refuses something."""
    assert result.returncode == 0, (
        f"{' '.join(result.args)} exited {result.returncode}\n"
        f"--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}")


def load_yaml(path: Path) -> Any:
    """Parse a monitoring file the way Prometheus sees it (plain YAML, no tags)."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rules(path: Path) -> list[dict[str, Any]]:
    """Every rule of a rule file, each with the name of its group under ``group``."""
    return [{**rule, "group": group["name"]}
            for group in load_yaml(path)["groups"] for rule in group["rules"]]


def alert_rules() -> list[dict[str, Any]]:
    """The alerting rules of alerts.yml, in file order."""
    return [r for r in rules(paths.ALERTS_YML) if "alert" in r]


def recording_rules() -> dict[str, str]:
    """Recorded name -> expression, as the backtester inlines them."""
    return {r["record"]: r["expr"] for r in rules(RECORDING_YML)}


def squash(text: str) -> str:
    """Compare PromQL modulo whitespace (YAML folding may re-wrap an expression)."""
    return re.sub(r"\s+", "", text)


# --- promtool: config, rule files, unit tests ------------------------------------------

def test_prometheus_config_is_valid_with_its_rule_files() -> None:
    # check config also loads rule_files, resolved against the config's directory.
    result = promtool("check", "config", str(paths.PROMETHEUS_YML))
    assert_promtool_ok(result)
    assert "3 rule files found" in result.stdout


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda p: p.name)
def test_rule_file_is_valid(rule_file: Path) -> None:
    assert_promtool_ok(promtool("check", "rules", str(rule_file)))


def test_promtool_unit_tests_pass() -> None:
    assert len(UNIT_TESTS) >= 4, f"expected the promtool tests in {paths.MONITORING / 'tests'}"
    result = promtool("test", "rules", *map(str, UNIT_TESTS))
    assert_promtool_ok(result)
    assert result.stdout.count("SUCCESS") == len(UNIT_TESTS)


# --- prometheus.yml ----------------------------------------------------------------------

def test_prometheus_config_evaluates_rules_at_the_scrape_interval() -> None:
    config = load_yaml(paths.PROMETHEUS_YML)
    assert config["global"]["scrape_interval"] == "30s"
    assert config["global"]["evaluation_interval"] == "30s"
    assert config["rule_files"] == ["alerts.yml", "recording.yml", "sli_recording.yml"]
    targets = [t for am in config["alerting"]["alertmanagers"]
               for sc in am["static_configs"] for t in sc["targets"]]
    assert targets == ["localhost:9093"]
    assert isinstance(config["scrape_configs"], list)


# --- alerts.yml: the seed rule and the conventions ---------------------------------------

def test_seed_rule_is_unchanged_in_meaning() -> None:
    groups = {g["name"]: g for g in load_yaml(paths.ALERTS_YML)["groups"]}
    assert "critical_alerts" in groups
    seed = [r for r in groups["critical_alerts"]["rules"] if r.get("alert") == "High5xxErrorRate"]
    assert len(seed) == 1, "critical_alerts must hold exactly one High5xxErrorRate"
    rule = seed[0]
    assert squash(rule["expr"]) == squash(SEED_EXPR)
    assert rule["for"] == "5m"
    assert rule["labels"]["severity"] == "critical"
    assert rule["annotations"]["summary"] == "CRITICAL: 5xx error rate exceeds 2% (R < 0.98)"
    assert rule["annotations"]["description"] == (
        "Error rate is {{ $value | humanizePercentage }}. Immediate rollback required!")


def test_every_alert_tells_the_on_call_what_to_do() -> None:
    alerts = alert_rules()
    names = [a["alert"] for a in alerts]
    assert len(names) == len(set(names)), f"duplicate alert names: {names}"
    for alert in alerts:
        assert alert["labels"]["severity"] in {"critical", "warning"}, alert["alert"]
        for key in ("summary", "description", "runbook"):
            assert alert["annotations"].get(key, "").strip(), f"{alert['alert']}: no {key}"


def test_burn_rate_alerts_follow_the_sre_workbook_table() -> None:
    expected = {  # name: (long window, short window, threshold as burn rate x budget)
        "ErrorBudgetFastBurn": ("1h", "5m", "14.4 * 0.02"),
        "ErrorBudgetSustainedBurn": ("6h", "30m", "6 * 0.02"),
        "ErrorBudgetSlowBurn": ("1d", "2h", "3 * 0.02"),
        "ErrorBudgetChronicBurn": ("3d", "6h", "1 * 0.02"),
    }
    by_name = {a["alert"]: a for a in alert_rules()}
    for name, (long, short, threshold) in expected.items():
        rule = by_name[name]
        assert squash(rule["expr"]) == squash(
            f"love:http_requests_5xx:ratio_rate{long} > ({threshold}) and "
            f"love:http_requests_5xx:ratio_rate{short} > ({threshold})"), name
        assert (rule["labels"]["long_window"], rule["labels"]["short_window"]) == (long, short)


# --- recording.yml: what the backtester relies on ------------------------------------------

def name_pattern(name: str) -> re.Pattern[str]:
    """A recorded name as a whole token (names contain colons, so \\b is not enough)."""
    return re.compile(rf"(?<![\w:]){re.escape(name)}(?![\w:])")


def test_recording_rules_are_inlinable_by_the_backtester() -> None:
    recorded = recording_rules()
    assert recorded, "recording.yml records nothing"
    for name, expr in recorded.items():
        assert not re.search(r"\boffset\b|@", expr), f"{name}: offset/@ cannot be inlined"
        for other in recorded:
            assert not name_pattern(other).search(expr), f"{name} is built on {other}"
    for alert in alert_rules():
        for name in recorded:
            for match in name_pattern(name).finditer(alert["expr"]):
                rest = alert["expr"][match.end():].lstrip()
                assert not rest.startswith(("{", "[")), (
                    f"{alert['alert']}: {name} must be referenced by bare name")


def test_alerts_with_recording_rules_inlined_are_valid(tmp_path: Path) -> None:
    recorded = recording_rules()
    document = load_yaml(paths.ALERTS_YML)
    inlined = 0
    for group in document["groups"]:
        for rule in group["rules"]:
            for name, expr in recorded.items():
                rule["expr"], n = name_pattern(name).subn(f"({expr})", rule["expr"])
                inlined += n
    assert inlined >= 8  # two windows per burn-rate alert
    path = tmp_path / "alerts-inlined.yml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    assert_promtool_ok(promtool("check", "rules", str(path)))


def test_every_rule_has_a_promtool_unit_test() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    exprs: list[str] = []
    for path in UNIT_TESTS:
        for group in load_yaml(path)["tests"]:
            for case in group.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
            exprs += [case["expr"] for case in group.get("promql_expr_test", [])]
    names = {a["alert"] for a in alert_rules()}
    assert names <= firing, f"no firing case for {sorted(names - firing)}"
    assert names <= quiet, f"no quiet case for {sorted(names - quiet)}"
    untested = [n for n in recording_rules() if not any(name_pattern(n).search(e) for e in exprs)]
    assert not untested, f"no promql_expr_test for {untested}"


# --- grafana-dashboard.json ---------------------------------------------------------------

@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    """The dashboard as Grafana would import it."""
    return json.loads(paths.DASHBOARD_JSON.read_text(encoding="utf-8"))


def test_dashboard_identity_and_variables(dashboard: dict[str, Any]) -> None:
    assert dashboard["uid"] == "love-reliability"
    assert dashboard["title"] == "love — Reliability (R > 0.98)"
    assert dashboard["schemaVersion"] >= 39
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    version = variables["version"]
    assert version["type"] == "query"
    assert version["datasource"] == DATASOURCE_REF
    assert version["definition"] == "label_values(http_requests_total, version)"
    assert version["query"]["query"] == version["definition"]
    assert version["multi"] is True and version["includeAll"] is True


def test_dashboard_panels_use_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    panels = dashboard["panels"]
    assert len(panels) >= 8
    assert len({p["id"] for p in panels}) == len(panels)
    for panel in panels:
        assert panel["type"] in {"timeseries", "stat", "gauge"}, panel["title"]
        assert panel["datasource"] == DATASOURCE_REF, panel["title"]
        assert panel["targets"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE_REF, panel["title"]
            assert target["expr"].strip(), panel["title"]
    # No hard-coded datasource anywhere (an id or a uid other than the variable).
    text = json.dumps(dashboard)
    assert '"datasourceId"' not in text
    uids = set(re.findall(r'"uid": "([^"]*)"', text)) - {"love-reliability"}
    assert uids <= {"${datasource}", "-- Grafana --"}, uids


def test_dashboard_layout_fits_the_24_column_grid(dashboard: dict[str, Any]) -> None:
    occupied: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        g = panel["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24, panel["title"]
        cells = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells


def test_dashboard_draws_the_seed_threshold(dashboard: dict[str, Any]) -> None:
    ratio = next(p for p in dashboard["panels"] if p["title"].startswith("5xx ratio (alert threshold"))
    defaults = ratio["fieldConfig"]["defaults"]
    assert defaults["thresholds"]["mode"] == "absolute"
    assert 0.02 in [s["value"] for s in defaults["thresholds"]["steps"]]
    assert defaults["custom"]["thresholdsStyle"]["mode"] == "line"
    assert defaults["unit"] == "percentunit"


def test_dashboard_queries_filter_by_version_and_use_the_rate_interval(dashboard: dict[str, Any]) -> None:
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert any('version=~"$version"' in e for e in exprs)
    assert any("$__rate_interval" in e for e in exprs)
    assert any('"status_class", "${1}xx", "status", "(.).."' in e for e in exprs)
    assert any('circuit_breaker_transitions_total{to="open"}' in e for e in exprs)
    assert any("cache_invalidations_total" in e for e in exprs)


def test_dashboard_queries_parse(dashboard: dict[str, Any], tmp_path: Path) -> None:
    exprs = [(f"p{p['id']}_{t['refId']}", t["expr"]) for p in dashboard["panels"] for t in p["targets"]]
    exprs += [(f"annotation_{i}", a["expr"])
              for i, a in enumerate(dashboard["annotations"]["list"]) if "expr" in a]
    group = []
    for name, expr in exprs:
        for macro, value in GRAFANA_MACROS.items():
            expr = expr.replace(macro, value)
        assert "$" not in expr.replace("${1}", ""), f"{name}: unsubstituted variable in {expr}"
        group.append({"record": f"dashboard:{name}", "expr": expr})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": group}]}))
    result = promtool("check", "rules", str(path))
    assert_promtool_ok(result)
    assert f"{len(group)} rules found" in result.stdout


# --- the real Prometheus started for the session ------------------------------------------

@pytest.mark.prometheus
def test_prometheus_loaded_every_rule(client: Any) -> None:
    loaded = client.api("rules")["groups"]
    by_file: dict[str, set[str]] = {}
    for group in loaded:
        by_file.setdefault(Path(group["file"]).name, set()).update(
            r["name"] for r in group["rules"])
    assert by_file["alerts.yml"] == {a["alert"] for a in alert_rules()}
    assert by_file["recording.yml"] == set(recording_rules())
    assert all(r["health"] != "err" for g in loaded for r in g["rules"]), loaded


@pytest.mark.prometheus
def test_dashboard_queries_find_the_bundled_history(dashboard: dict[str, Any], client: Any,
                                                    truth: dict[str, Any]) -> None:
    from datetime import datetime, timedelta

    end = datetime.fromisoformat(truth["generator"]["end"].replace("Z", "+00:00"))
    at = end - timedelta(hours=1)
    empty = []
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"]
            for macro, value in GRAFANA_MACROS.items():
                expr = expr.replace(macro, value)
            if client.query(expr, at=at).empty:
                empty.append(f"{panel['title']} [{target['refId']}]: {expr}")
    assert not empty, "panels without data at " + at.isoformat() + ":\n" + "\n".join(empty)
