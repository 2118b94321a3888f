"""``reliability init``: scaffold a backend repository so its gate judges that one service.

The bundled monitoring files are the templates. Every raw-metric selector of every rule and
dashboard panel gets the service's matchers (added by the PromQL parser, so the seed's rule keeps
its meaning: the 5xx share of all requests over 5 m, ``> 0.02``, ``for: 5m``); the promtool
tests follow the new job label and gain a case where another service's 5xx must not fire the
alert. Nothing is overwritten unless asked.
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from reliability import paths
from reliability.config import DEFAULT_DEPENDENCIES
from reliability.errors import ConfigurationError
from reliability.source.breaker_metrics import PRESETS as BREAKER_PRESETS
from reliability.source.breaker_metrics import SEED as SEED_BREAKERS
from reliability.source.breaker_metrics import BreakerMetrics
from reliability.source.parsed import add_matchers
from reliability.source.promql import escape_label_value, matcher, parse_selector
from reliability.source.sli import PRESETS, SEED, Sli

TEMPLATE_JOB = "love-backend"
# Raw series of the metric contract; recorded series (love:...) carry no job label.
CONTRACT = ("http_requests_total", "up", "circuit_breaker_state", "circuit_breaker_transitions_total",
            "circuit_breaker_calls_total", "queue_updates_total", "cache_invalidations_total",
            "cache_stale_reads_total")
_EXPR = re.compile(r"^(?P<indent>\s*)expr: (?P<expr>.+)$", re.M)


def init(directory: Path, *, job: str, selector: str | None = None, force: bool = False,
         dependencies: tuple[str, ...] = DEFAULT_DEPENDENCIES, sli: Sli = SEED,
         breakers: BreakerMetrics = SEED_BREAKERS) -> list[Path]:
    """Write the scaffold into ``directory``; the written paths. Refuses to overwrite unless ``force``.

    With the seed's SLI the bundled rules and tests are scoped; with any other, the SLI's rules come
    from ``reliability rules`` and the dashboard reads the SLI's names (:mod:`.sli_dashboard`).
    """
    if not re.fullmatch(r"[A-Za-z0-9_.:-]+", job or ""):
        raise ConfigurationError(f"--job {job!r}: use the Prometheus job label value (letters, digits, . _ : -)")
    scope = parse_selector(selector) if selector else [matcher("job", job)]
    if not any(m.startswith("job=") for m in scope):
        scope = [matcher("job", job), *scope]
    files = _render(job, scope, tuple(dependencies)) if sli == SEED and breakers == SEED_BREAKERS else \
        _render_sli(job, scope, tuple(dependencies), sli, breakers)
    targets = {directory / rel: text for rel, text in files.items()}
    existing = [p for p in targets if p.exists()]
    if existing and not force:
        raise ConfigurationError("refusing to overwrite " + ", ".join(str(p) for p in existing) +
                                 "; pass --force to replace them")
    for path, text in targets.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return list(targets)


def _render(job: str, scope: list[str], dependencies: tuple[str, ...]) -> dict[str, str]:
    src = paths.MONITORING
    selector = ",".join(scope)
    out = {
        "monitoring/alerts.yml": _header(job) + _rename(_scope_rules((src / "alerts.yml").read_text(), scope), job),
        "monitoring/recording.yml": _header(job) + _scope_rules((src / "recording.yml").read_text(), scope),
        "monitoring/sli_recording.yml": _header(job) + _scope_rules((src / "sli_recording.yml").read_text(), scope),
        "monitoring/prometheus.yml": _prometheus_yml(job),
        "monitoring/grafana-dashboard.json": _dashboard(job),
        "monitoring/METRICS.md": (src / "METRICS.md").read_text(),
        "monitoring/tests/scope.yml": _scope_test(job),
        paths.CONFIG_NAME: _settings(job, selector, dependencies),
        ".github/workflows/deploy-gate.yml": _github(),
        ".gitlab/deploy-gate.yml": _gitlab(),
        paths.LAST_STABLE_NAME: "",
    }
    for test in sorted((src / "tests").glob("*.yml")):
        out[f"monitoring/tests/{test.name}"] = _rename(test.read_text(), job)
    return out


def _render_sli(job: str, scope: list[str], dependencies: tuple[str, ...], sli: Sli,
                breakers: BreakerMetrics = SEED_BREAKERS) -> dict[str, str]:
    """The scaffold for a service in another convention: its rules written by ``reliability rules``,
    the breaker alerts in its breaker library's names beside them, the dashboard in both."""
    import yaml

    from reliability.cli import rules
    from reliability.cli.sli_dashboard import rewrite

    alerts, tests = rules.render(sli, scope)
    group = yaml.safe_dump({"groups": [rules.breaker_group(breakers)]}, sort_keys=False, width=10_000)
    alerts += _scope_rules(group, scope, metrics=breakers.exported()).replace("groups:\n", "", 1)
    out = _render(job, scope, dependencies)
    for name in [n for n in out if n.startswith("monitoring/tests/") or n.endswith("recording.yml")]:
        del out[name]
    out["monitoring/alerts.yml"] = alerts  # self-contained: its recording rules are in it
    out["monitoring/prometheus.yml"] = (out["monitoring/prometheus.yml"].replace("  - recording.yml\n", "")
                                        .replace("  - sli_recording.yml\n", ""))
    sli = replace(sli, recorded=rules.prefix(rules.equalities(scope)))  # the rule alerts.yml records
    out["monitoring/alerts_test.yml"] = tests
    out["monitoring/grafana-dashboard.json"] = rewrite(_dashboard(job, breakers), sli)
    out[paths.CONFIG_NAME] = _settings(job, ",".join(scope), dependencies, sli, breakers)
    return out


def _header(job: str) -> str:
    return (f"# Scoped to the service job=\"{job}\" by `reliability init`: every raw-metric selector\n"
            "# carries the service's matchers, so another service on the same Prometheus cannot fire\n"
            "# or hide these alerts. Regenerate with `reliability init --force`.\n")


def _scope_rules(text: str, scope: list[str], *, metrics: Sequence[str] = CONTRACT) -> str:
    """Each ``expr:`` line with the scope added to its raw-metric selectors (quoted for YAML)."""
    import yaml

    def scoped(m: re.Match[str]) -> str:
        expr = yaml.safe_load(m["expr"])
        new = add_matchers(str(expr), scope, metrics=metrics)
        return f"{m['indent']}expr: '{new.replace(chr(39), chr(39) * 2)}'"

    result = _EXPR.sub(scoped, text)
    yaml.safe_load(result)  # still valid YAML
    return result


def _rename(text: str, job: str) -> str:
    """The template's job label value replaced by the service's, in series, labels and prose."""
    return (text.replace(f'job="{TEMPLATE_JOB}"', f'job="{escape_label_value(job)}"')
            .replace(f"job: '{TEMPLATE_JOB}'", f"job: '{job}'"))


def _prometheus_yml(job: str) -> str:
    text = (paths.MONITORING / "prometheus.yml").read_text()
    cut = text.index("scrape_configs:")
    return text[:cut] + f"""scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets:
          - localhost:9090

  # The service the gate judges: its series carry job="{job}". List the real instances.
  - job_name: {json.dumps(job)}
    metrics_path: /metrics
    static_configs:
      - targets:
          - localhost:8080
"""


def _dashboard(job: str, breakers: BreakerMetrics = SEED_BREAKERS) -> str:
    from reliability.cli.sli_dashboard import breaker_panels, each_expr

    doc = json.loads(breaker_panels((paths.MONITORING / "grafana-dashboard.json").read_text(), breakers))
    variables = doc.setdefault("templating", {}).setdefault("list", [])
    variables.insert(1, {
        "name": "job", "label": "Job", "type": "query",
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "definition": "label_values(http_requests_total, job)",
        "query": {"qryType": 1, "query": "label_values(http_requests_total, job)",
                  "refId": "PrometheusVariableQueryEditor-VariableQuery"},
        "current": {"selected": True, "text": job, "value": job},
        "includeAll": False, "multi": False, "options": [], "refresh": 1, "regex": "", "hide": 0,
        "skipUrlSync": False, "sort": 1,
    })

    each_expr(doc, lambda expr: _scope_panel(_rename(expr, job), (*CONTRACT, *breakers.exported())))
    doc["title"] = f"{doc.get('title', 'love backend')} ({job})"
    doc["uid"] = re.sub(r"[^a-zA-Z0-9-]", "-", f"rel-{job}")[:40]
    return json.dumps(doc, indent=2) + "\n"


_RANGE_VARIABLE = re.compile(r"\[(\$\{?\w+\}?)\]")


def _scope_panel(expr: str, metrics: Sequence[str] = CONTRACT) -> str:
    """A panel query with ``job=~"$job"`` on its raw-metric selectors.

    Grafana variables in ranges (``[$__rate_interval]``) are not PromQL: each becomes a unique
    duration for the parser and is put back afterwards.
    """
    import promql_parser

    found = list(dict.fromkeys(_RANGE_VARIABLE.findall(expr)))
    stand_in = {var: 1_000_003 + i for i, var in enumerate(found)}
    for var, seconds in stand_in.items():
        expr = expr.replace(f"[{var}]", f"[{seconds}s]")
    out = add_matchers(expr, ['job=~"$job"'], metrics=metrics)
    for var, seconds in stand_in.items():
        printed = str(promql_parser.parse(f"x[{seconds}s]"))[len("x{}["):-1]
        out = out.replace(f"[{printed}]", f"[{var}]")
    return out


def _scope_test(job: str) -> str:
    name = escape_label_value(job)
    return f"""# promtool unit test written by `reliability init`: the scoped High5xxErrorRate judges only
# job="{job}". Another service with 30 % 5xx on the same Prometheus, under the same version
# label, must not fire it; the service's own 3 % must.
rule_files:
  - ../alerts.yml
  - ../recording.yml

evaluation_interval: 30s

tests:
  - interval: 30s
    input_series:
      - series: 'http_requests_total{{job="{name}",instance="a:8080",route="/",method="GET",status="200",version="v2"}}'
        values: '0+990x40'
      - series: 'http_requests_total{{job="{name}",instance="a:8080",route="/",method="GET",status="500",version="v2"}}'
        values: '0+10x40'
      - series: 'http_requests_total{{job="other-service",instance="o:80",route="/",method="GET",status="200",version="v2"}}'
        values: '0+700x40'
      - series: 'http_requests_total{{job="other-service",instance="o:80",route="/",method="GET",status="503",version="v2"}}'
        values: '0+300x40'
    alert_rule_test:
      - eval_time: 15m
        alertname: High5xxErrorRate
        exp_alerts: []
  - interval: 30s
    input_series:
      - series: 'http_requests_total{{job="{name}",instance="a:8080",route="/",method="GET",status="200",version="v2"}}'
        values: '0+970x40'
      - series: 'http_requests_total{{job="{name}",instance="a:8080",route="/",method="GET",status="500",version="v2"}}'
        values: '0+30x40'
      - series: 'http_requests_total{{job="other-service",instance="o:80",route="/",method="GET",status="200",version="v2"}}'
        values: '0+100000x40'
    alert_rule_test:
      - eval_time: 15m
        alertname: High5xxErrorRate
        exp_alerts:
          - exp_labels:
              severity: critical
            exp_annotations:
              summary: "CRITICAL: 5xx error rate exceeds 2% (R < 0.98)"
              description: "Error rate is 3%. Immediate rollback required!"
              runbook: 'Roll back, do not fix in production: read .last-stable-version, git checkout that version, npm run deploy. Then find the cause with sum by (version, status) (rate(http_requests_total{{status=~"5.."}}[5m])).'
"""


def _settings(job: str, selector: str, dependencies: tuple[str, ...] = DEFAULT_DEPENDENCIES,
              sli: Sli = SEED, breakers: BreakerMetrics = SEED_BREAKERS) -> str:
    deps = ", ".join(json.dumps(d) for d in dependencies)
    return f"""# love-reliability: this repository's deploy gate (`reliability proof` reads this file;
# command-line options win). Credentials never go here: PROMETHEUS_URL and the token come
# from the environment.
job = {json.dumps(job)}
selector = {json.dumps(selector)}
rules = "monitoring/alerts.yml"
dashboard = "monitoring/grafana-dashboard.json"
junit = ["test-results/*.xml"]
confidence = 0.95
# The external services the backend calls, by their breaker label; each must have a circuit
# breaker: none at all is NO-GO naming the service; one that saw no calls in the window is
# INCONCLUSIVE (it cannot show it would open).
dependencies = [{deps}]

# Where the requests are counted: a named convention (`reliability sli` lists them), and any
# field overridden (requests, code_label, errors, version_label, version_info, filters), and
# recorded: the prefix of the recording rule of requests per minute the proof reads for long windows.
[sli]
{_sli_table(sli)}

# Which breaker library's metrics show the breakers: seed (monitoring/METRICS.md), opossum
# (opossum-prometheus; prefix = its metricPrefix) or resilience4j (Micrometer).
[breakers]
preset = {json.dumps(breakers.preset)}{_prefix(breakers)}
"""


def _prefix(breakers: BreakerMetrics) -> str:
    default = BREAKER_PRESETS[breakers.preset].events
    if breakers.kind == "opossum" and breakers.events != default and breakers.events.endswith(default):
        return f"\nprefix = {json.dumps(breakers.events[:-len(default)])}"
    return ""


def _sli_table(sli: Sli) -> str:
    preset = PRESETS[sli.preset]
    lines = [f"preset = {json.dumps(sli.preset)}"]
    for key in ("requests", "code_label", "errors", "version_label", "version_info", "filters", "recorded"):
        value = getattr(sli, key)
        if value != getattr(preset, key) or (sli.preset == "seed" and key == "version_label"):
            lines.append(f"{key} = {json.dumps(value)}")
    return "\n".join(lines)


def _github() -> str:
    return """# The deploy gate: prove R > 0.98 (at most 2 % 5xx) from Prometheus before the full deploy.
# The candidate must already serve traffic (a canary of this commit) and carry its commit SHA in the
# version label, as --candidate names it; the tests' JUnit XML is the junit glob of reliability.toml.
# NO-GO (exit 1), INCONCLUSIVE (3), a usage error (2) or a tool failure (4) stop the deploy.
name: deploy
on:
  workflow_dispatch:   # once the canary of this commit has served traffic
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: npm ci && npm test   # your tests, writing JUnit XML into test-results/
      - uses: actions/upload-artifact@v4
        with: { name: test-results, path: test-results/ }
  deploy-gate:
    needs: test
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/download-artifact@v4
        with: { name: test-results, path: test-results/ }
      - run: sudo apt-get update && sudo apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0
      # The wheel you built from love-reliability (pip wheel --no-deps -w dist .) where CI can fetch it:
      # it is not on public PyPI. [screenshots]: pictures of Prometheus, with the runner's Google Chrome.
      - run: python3 -m venv .venv && .venv/bin/pip install "love-reliability[screenshots] @ ${{ vars.LOVE_RELIABILITY_WHEEL_URL }}"
      - name: Prove R > 0.98 before deploying
        env:
          PROMETHEUS_URL: ${{ vars.PROMETHEUS_URL }}
          PROMETHEUS_BEARER_TOKEN: ${{ secrets.PROMETHEUS_TOKEN }}
        run: .venv/bin/reliability proof --start now-24h --end now --candidate "${{ github.sha }}" --out evidence
      - uses: actions/upload-artifact@v4
        if: always()
        with: { name: deploy-evidence, path: evidence/ }
  deploy:
    needs: deploy-gate
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: npm ci && npm run deploy
"""


def _gitlab() -> str:
    return """# The deploy gate: include it from .gitlab-ci.yml (include: .gitlab/deploy-gate.yml).
# The candidate must already serve traffic (a canary of this commit) and carry $CI_COMMIT_SHA in the
# version label; a job of the test stage leaves its JUnit XML in test-results/ (artifacts).
# NO-GO (exit 1), INCONCLUSIVE (3), a usage error (2) or a tool failure (4) stop the deploy.
deploy-gate:
  stage: deploy        # after the test stage, whose JUnit artifacts it receives
  image: python:3.11-slim-bookworm
  script:
    - apt-get update && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 chromium
    # the wheel you built from love-reliability (not on public PyPI); [screenshots]: pictures of Prometheus
    - pip install "love-reliability[screenshots] @ $LOVE_RELIABILITY_WHEEL_URL"
    - reliability proof --start now-24h --end now --candidate "$CI_COMMIT_SHA" --out evidence
  artifacts:
    when: always
    paths: [evidence/]
deploy:
  stage: deploy
  needs: [deploy-gate]
  script: [npm ci, npm run deploy]
"""
