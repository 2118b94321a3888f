"""`reliability init`: a backend repository scaffolded so its gate judges that one service."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from reliability import config
from reliability.cli import scaffold
from reliability.errors import ConfigurationError
from reliability.source.parsed import metric_names, ratio_shape_problems


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    scaffold.init(tmp_path, job="clinic-api")
    return tmp_path


def _rules(path: Path) -> dict[str, dict]:
    return {r.get("alert") or r["record"]: r for g in yaml.safe_load(path.read_text())["groups"] for r in g["rules"]}


def test_the_seed_rule_is_scoped_and_keeps_its_meaning(repo: Path) -> None:
    seed = _rules(repo / "monitoring" / "alerts.yml")["High5xxErrorRate"]
    assert seed["for"] == "5m" and seed["labels"] == {"severity": "critical"}
    assert seed["annotations"]["summary"] == "CRITICAL: 5xx error rate exceeds 2% (R < 0.98)"
    assert seed["annotations"]["description"] == ("Error rate is {{ $value | humanizePercentage }}. "
                                                  "Immediate rollback required!")
    assert seed["expr"].endswith("> 0.02") and seed["expr"].count('job="clinic-api"') == 2
    assert ratio_shape_problems(seed["expr"]) == []


def test_every_raw_selector_of_every_rule_is_scoped(repo: Path) -> None:
    for name in ("alerts.yml", "recording.yml"):
        for rule in _rules(repo / "monitoring" / name).values():
            raw = {m for m in metric_names(rule["expr"]) if ":" not in m}
            for metric in raw:
                assert f'{metric}{{' in rule["expr"] and 'job="clinic-api"' in rule["expr"], rule["expr"]


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed")
def test_the_scaffolded_promtool_tests_pass(repo: Path) -> None:
    tests = sorted(str(p) for p in (repo / "monitoring" / "tests").glob("*.yml"))
    assert any(t.endswith("scope.yml") for t in tests)
    r = subprocess.run(["promtool", "test", "rules", *tests], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    check = subprocess.run(["promtool", "check", "config", str(repo / "monitoring" / "prometheus.yml")],
                           capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_dashboard_has_a_job_variable_on_every_panel(repo: Path) -> None:
    doc = json.loads((repo / "monitoring" / "grafana-dashboard.json").read_text())
    job = next(v for v in doc["templating"]["list"] if v["name"] == "job")
    assert job["current"]["value"] == "clinic-api"
    exprs = [t["expr"] for p in doc["panels"] for t in p.get("targets", []) if t.get("expr")]
    raw = [e for e in exprs if metric_names(e.replace("$__rate_interval", "1m").replace("$__range", "1h")) - {"ALERTS"}]
    assert raw and all('job=~"$job"' in e for e in raw)


def test_settings_are_read_back(repo: Path) -> None:
    s = config.load(repo)
    assert s.job == "clinic-api" and s.scope == 'job="clinic-api"' and s.junit == ("test-results/*.xml",)
    assert s.dependencies == ("db", "auth", "realtime", "storage")


def test_unknown_settings_are_refused(tmp_path: Path) -> None:
    (tmp_path / "reliability.toml").write_text('job = "a"\nselektor = "b"\n')
    with pytest.raises(ConfigurationError, match=r"unknown setting.*selektor"):
        config.load(tmp_path)


def test_init_refuses_to_overwrite_unless_forced(repo: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "reliability", "init", str(repo), "--job", "clinic-api"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "refusing to overwrite" in r.stderr and "--force" in r.stderr
    forced = subprocess.run([sys.executable, "-m", "reliability", "init", str(repo), "--job", "x", "--force"],
                            capture_output=True, text=True, timeout=60)
    assert forced.returncode == 0, forced.stderr
    assert config.load(repo).job == "x"
