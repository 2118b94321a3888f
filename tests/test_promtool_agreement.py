"""promtool is the oracle for alert semantics: the backtest's firing alerts must be exactly promtool's.

Random series (fixed seeds) are served by a real Prometheus from backfilled OpenMetrics and
replayed with ``reliability.analysis.alerts.backtest``; the same values become the ``input_series``
of a ``promtool test rules`` file whose expected alerts, at every minute of the window, are
the backtest's firing alerts with their full label sets. promtool runs Prometheus' own rule
manager (``for``, ``keep_firing_for``, recording rules evaluated live rather than inlined),
so a pass means the two agree at every evaluation, including every minute nothing fires.
"""
from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
import yaml

from reliability.analysis.alerts import Backtest, backtest, load_rules, recording_rules

pytestmark = [
    pytest.mark.prometheus,
    pytest.mark.skipif(shutil.which("promtool") is None or shutil.which("prometheus") is None,
                       reason="prometheus and promtool are needed"),
]

SEEDS = (11, 23, 37, 42)
BASE = datetime(2025, 1, 1, tzinfo=timezone.utc)
MINUTES = 120            # one sample per minute, minutes 0..120
SEED_SPACING = timedelta(days=1)  # far beyond the 5m lookback: seeds never see each other

RULES = """\
groups:
  - name: agreement
    rules:
      - record: test:error_ratio:rate5m
        expr: sum(rate(my_requests_total{code="500"}[5m])) / sum(rate(my_requests_total[5m]))
      - alert: GaugeHighNow
        expr: my_gauge > 0.5
        labels:
          severity: info
      - alert: GaugeHigh3m
        expr: my_gauge > 0.5
        for: 3m
        labels:
          team: sre
      - alert: GaugeHighKeep
        expr: my_gauge > 0.5
        for: 2m
        keep_firing_for: 3m
      - alert: ErrorRatioHigh
        expr: sum(rate(my_requests_total{code="500"}[5m])) / sum(rate(my_requests_total[5m])) > 0.1
        for: 2m
        labels:
          severity: page
      - alert: ErrorRatioByInstance
        expr: >-
          sum by (instance) (rate(my_requests_total{code="500"}[5m]))
          / sum by (instance) (rate(my_requests_total[5m])) > 0.1
        keep_firing_for: 4m
      - alert: ErrorRatioRecorded
        expr: test:error_ratio:rate5m > 0.1
        for: 1m
        keep_firing_for: 2m
"""
ALERTS = ("GaugeHighNow", "GaugeHigh3m", "GaugeHighKeep", "ErrorRatioHigh", "ErrorRatioByInstance",
          "ErrorRatioRecorded")


def generate(seed: int) -> dict[str, list[float | None]]:
    """Series name with labels -> one value (or None: no sample) per minute."""
    rng = np.random.default_rng(seed)
    out: dict[str, list[float | None]] = {}
    for instance in ("a", "b"):
        # Regime switching, so runs above 0.5 have every length: some shorter than `for`.
        high, gauge = bool(rng.random() < 0.5), []
        for _ in range(MINUTES + 1):
            high = high != bool(rng.random() < 0.3)
            gauge.append(round(float(rng.uniform(0.55, 1.0) if high else rng.uniform(0.0, 0.45)), 3))
        gap = int(rng.integers(20, 100))
        for k in range(gap, gap + int(rng.integers(2, 9))):  # up to 8 min: beyond the 5m lookback
            gauge[k] = None
        out[f'my_gauge{{instance="{instance}",team="db"}}'] = gauge

        ok, err, burst = [0.0], [0.0], False
        for _ in range(MINUTES):
            burst = burst != bool(rng.random() < 0.12)
            n = int(rng.integers(50, 100))
            bad = int(rng.binomial(n, 0.3 if burst else 0.03))
            ok.append(ok[-1] + n - bad)
            err.append(err[-1] + bad)
        if instance == "b":  # a counter reset (process restart) in the middle
            reset = int(rng.integers(30, 90))
            ok = ok[:reset] + [v - ok[reset] + 3 for v in ok[reset:]]
        out[f'my_requests_total{{instance="{instance}",code="200"}}'] = list(ok)
        out[f'my_requests_total{{instance="{instance}",code="500"}}'] = list(err)
    return out


def openmetrics(all_series: dict[int, dict[str, list[float | None]]]) -> str:
    """One OpenMetrics document: each seed's series shifted to its own day, seconds timestamps."""
    families: dict[str, list[str]] = {"my_gauge": [], "my_requests": []}
    for i, seed in enumerate(SEEDS):
        t0 = (BASE + i * SEED_SPACING).timestamp()
        for name, values in all_series[seed].items():
            family = "my_requests" if name.startswith("my_requests") else "my_gauge"
            families[family] += [f"{name} {v} {int(t0 + 60 * k)}" for k, v in enumerate(values) if v is not None]
    lines = ["# TYPE my_gauge gauge", *families["my_gauge"], "# TYPE my_requests counter",
             *families["my_requests"], "# EOF"]
    return "\n".join(lines) + "\n"


def promtool_test(rule_file: Path, series: dict[str, list[float | None]], results: dict[str, Backtest],
                  start: datetime) -> dict:
    """A promtool rule-test document expecting exactly the backtest's firing alerts each minute."""
    input_series = [{"series": name, "values": " ".join("_" if v is None else repr(v) for v in values)}
                    for name, values in series.items()]
    tests = []
    for alert in ALERTS:
        states = results[alert].states
        firing = states[states["state"] == "firing"]
        for k in range(MINUTES + 1):
            at = firing[firing["time"] == start + timedelta(minutes=k)]
            expected = [{"exp_labels": {n: v for n, v in labels.items() if n != "alertname"}}
                        for labels in at["labels"]]
            tests.append({"eval_time": f"{k}m", "alertname": alert, "exp_alerts": expected})
    return {"rule_files": [str(rule_file)], "evaluation_interval": "1m",
            "tests": [{"interval": "1m", "input_series": input_series, "alert_rule_test": tests}]}


def run_promtool(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["promtool", "test", "rules", str(path)], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def agreement(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Backtests of every rule on every seed, against a real Prometheus serving the random series."""
    from reliability.source.embedded import EmbeddedPrometheus

    root = tmp_path_factory.mktemp("agreement")
    rule_file = root / "rules.yml"
    rule_file.write_text(RULES)
    config = root / "prometheus.yml"
    config.write_text("global:\n  evaluation_interval: 1m\nrule_files:\n  - rules.yml\n")
    all_series = {seed: generate(seed) for seed in SEEDS}
    data = root / "history.om"
    data.write_text(openmetrics(all_series))
    groups = load_rules(rule_file)
    rules = {r.alert: r for g in groups for r in g.alerts}
    recorded = recording_rules(groups)
    results: dict[int, dict[str, Backtest]] = {}
    with EmbeddedPrometheus(data, alertmanager=False, config=config, cache_dir=root / "cache") as prom:
        for i, seed in enumerate(SEEDS):
            start = BASE + i * SEED_SPACING
            end = start + timedelta(minutes=MINUTES)
            results[seed] = {name: backtest(rules[name], prom.url, start, end, interval=60,
                                            recording_rules=recorded) for name in ALERTS}
    yield {"root": root, "rule_file": rule_file, "series": all_series, "results": results}


@pytest.mark.parametrize("seed", SEEDS)
def test_backtest_firing_alerts_equal_promtools_at_every_minute(agreement: dict, seed: int) -> None:
    i = SEEDS.index(seed)
    doc = promtool_test(agreement["rule_file"], agreement["series"][seed], agreement["results"][seed],
                        BASE + i * SEED_SPACING)
    path = agreement["root"] / f"test-seed-{seed}.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    proc = run_promtool(path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "SUCCESS" in proc.stdout


def test_the_random_series_exercise_every_edge(agreement: dict) -> None:
    """Without fires, resets and keep_firing_for holds, agreement would prove little."""
    results = agreement["results"]
    for alert in ALERTS:
        fired = sum(results[s][alert].fired for s in SEEDS)
        assert fired >= 2, f"{alert} fired on only {fired} seeds"
        states = [results[s][alert].states for s in SEEDS]
        assert all((st["state"] != "firing").any() for st in states), f"{alert} fired throughout"
    episodes = [results[s]["GaugeHigh3m"].episodes for s in SEEDS]
    assert sum(int(ep["firing_since"].isna().sum()) for ep in episodes) >= 3  # pending, then reset
    for alert in ("GaugeHighKeep", "ErrorRatioByInstance", "ErrorRatioRecorded"):
        # Firing while the expression returned nothing: keep_firing_for at work.
        held = sum(int(((st["state"] == "firing") & st["value"].isna()).sum())
                   for st in (results[s][alert].states for s in SEEDS))
        assert held >= 2, f"{alert}: keep_firing_for never held a cleared alert"
    label_sets = {tuple(sorted(lab.items())) for s in SEEDS for lab in results[s]["GaugeHigh3m"].states["labels"]}
    assert {dict(k)["team"] for k in label_sets} == {"sre"}  # the rule's label overrides the series'
    assert {dict(k)["instance"] for k in label_sets} == {"a", "b"}


def test_promtool_rejects_a_backtest_that_ignores_for(agreement: dict) -> None:
    """The oracle has teeth: expecting GaugeHigh3m's alerts as if `for` were 0 must fail."""
    seed = SEEDS[0]
    results = dict(agreement["results"][seed])
    now = results["GaugeHighNow"]
    relabelled = now.states.assign(labels=[{**lab, "alertname": "GaugeHigh3m", "team": "sre"}
                                           for lab in now.states["labels"]])
    relabelled["labels"] = [{k: v for k, v in lab.items() if k != "severity"} for lab in relabelled["labels"]]
    results["GaugeHigh3m"] = Backtest(rule=now.rule, expr=now.expr, start=now.start, end=now.end,
                                      interval=now.interval, evaluations=now.evaluations, states=relabelled,
                                      episodes=now.episodes)
    doc = promtool_test(agreement["rule_file"], agreement["series"][seed], results, BASE)
    path = agreement["root"] / "test-broken.yml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    proc = run_promtool(path)
    assert proc.returncode != 0
    assert "GaugeHigh3m" in proc.stdout + proc.stderr
