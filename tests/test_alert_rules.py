"""Rule files load into plain objects, and every mistake is reported with its file and line."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reliability import paths
from reliability.analysis.alerts import (
    AlertRule,
    RecordingRule,
    inline_recording_rules,
    load_rule,
    load_rules,
    recording_rules,
)
from reliability.errors import ConfigurationError, RuleFileError

needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")

SEED_EXPR = '( sum(rate(http_requests_total{status=~"5.."}[5m])) / sum(rate(http_requests_total[5m])) ) > 0.02'

VALID = """\
groups:
  - name: fast
    interval: 15s
    rules:
      - record: job:errors:ratio
        expr: sum(rate(errors_total[5m])) / sum(rate(requests_total[5m]))
      - alert: Errors
        expr: job:errors:ratio > 0.1
        for: 1h30m
        keep_firing_for: 10m
        labels:
          severity: page
          priority: 1
          muted: false
        annotations:
          summary: "errors above 10%"
  - name: slow
    rules:
      - alert: Down
        expr: up == 0
"""


def write(tmp_path: Path, text: str, name: str = "rules.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def error_of(path: Path) -> RuleFileError:
    with pytest.raises(RuleFileError) as info:
        load_rules(path, promtool=False)
    return info.value


def test_the_seed_rule_loads_verbatim_from_the_repository() -> None:
    rule = load_rule(paths.ALERTS_YML, "High5xxErrorRate")
    assert rule.expr == SEED_EXPR
    assert rule.for_ == 300.0
    assert rule.keep_firing_for == 0.0
    assert dict(rule.labels) == {"severity": "critical"}
    assert rule.group == "critical_alerts"
    assert rule.path == str(paths.ALERTS_YML)
    assert paths.ALERTS_YML.read_text().splitlines()[rule.line - 1].strip() == "- alert: High5xxErrorRate"


def test_the_repository_rule_files_pass_our_checks_and_promtools() -> None:
    alerts = load_rules(paths.ALERTS_YML)
    recorded = recording_rules(load_rules(paths.MONITORING / "recording.yml"))
    assert "High5xxErrorRate" in {r.alert for g in alerts for r in g.alerts}
    assert all(name.startswith("love:") for name in recorded)
    assert recorded["love:http_requests_5xx:ratio_rate5m"].count("[5m]") == 2


def test_groups_rules_and_durations_are_parsed(tmp_path: Path) -> None:
    fast, slow = load_rules(write(tmp_path, VALID), promtool=False)
    assert (fast.name, fast.interval, slow.interval) == ("fast", 15.0, None)
    record, errors = fast.rules
    assert record == RecordingRule(record="job:errors:ratio",
                                   expr="sum(rate(errors_total[5m])) / sum(rate(requests_total[5m]))")
    assert isinstance(errors, AlertRule)
    assert (errors.for_, errors.keep_firing_for, errors.interval) == (5400.0, 600.0, 15.0)
    # Go's YAML reads these scalars into label strings as written.
    assert dict(errors.labels) == {"severity": "page", "priority": "1", "muted": "false"}
    assert dict(errors.annotations) == {"summary": "errors above 10%"}
    assert (errors.line, slow.alerts[0].line) == (7, 19)
    assert recording_rules([fast, slow]) == {"job:errors:ratio": record.expr}


def test_malformed_yaml_names_file_and_line(tmp_path: Path) -> None:
    path = write(tmp_path, "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: [up\n")
    err = error_of(path)
    assert err.path == str(path)
    assert err.line is not None and err.line >= 5
    assert str(err).startswith(f"{path}:{err.line}: not valid YAML")


def test_missing_expr_names_the_rules_line(tmp_path: Path) -> None:
    err = error_of(write(tmp_path, "groups:\n  - name: g\n    rules:\n      - alert: Up\n        for: 5m\n"))
    assert err.line == 4
    assert "rule 'Up' has no expr" in str(err)


def test_bad_duration_names_the_line_of_for(tmp_path: Path) -> None:
    text = "groups:\n  - name: g\n    rules:\n      - alert: Up\n        expr: up == 0\n        for: 5 minutes\n"
    err = error_of(write(tmp_path, text))
    assert err.line == 6
    assert "'for'" in str(err) and "'5 minutes' is not a duration" in str(err)


@pytest.mark.parametrize("value", ["300", "5M", "1m5h", "-5m", "5m "])
def test_durations_are_as_strict_as_prometheus(tmp_path: Path, value: str) -> None:
    text = f"groups:\n  - name: g\n    rules:\n      - alert: Up\n        expr: up == 0\n        for: '{value}'\n"
    assert error_of(write(tmp_path, text)).line == 6


def test_zero_and_compound_durations_are_accepted(tmp_path: Path) -> None:
    text = ("groups:\n  - name: g\n    interval: 1m30s\n    rules:\n      - alert: Up\n        expr: up == 0\n"
            "        for: 0\n        keep_firing_for: 1d2h\n")
    (group,) = load_rules(write(tmp_path, text), promtool=False)
    assert (group.interval, group.alerts[0].for_, group.alerts[0].keep_firing_for) == (90.0, 0.0, 93600.0)


@pytest.mark.parametrize(("text", "line", "message"), [
    ("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        severity: page\n",
     6, "unknown rule key 'severity'"),
    ("groups:\n  - name: g\n    evaluation_interval: 1m\n    rules: []\n", 3, "unknown group key"),
    ("rules:\n  - alert: A\n", 1, "unknown top-level key 'rules'"),
    ("groups:\n  - name: g\n    rules:\n      - alert: A\n        record: b\n        expr: up\n", 4,
     "exactly one of 'alert' or 'record'"),
    ("groups:\n  - name: g\n    rules:\n      - record: a\n        expr: up\n        for: 5m\n", 6,
     "recording rule cannot have 'for'"),
    ("groups:\n  - name: g\n    rules:\n      - record: not-a-name\n        expr: up\n", 4, "not a valid metric name"),
    ("groups:\n  - name: g\n    rules: []\n  - name: g\n    rules: []\n", 4, "repeated in the same file"),
    ("groups:\n  - rules: []\n", 2, "group has no name"),
    ("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        labels:\n          bad-name: x\n",
     7, "'bad-name' is not a valid label name"),
    ("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        expr: down\n", 6, "appears twice"),
])
def test_structural_mistakes_are_located(tmp_path: Path, text: str, line: int, message: str) -> None:
    err = error_of(write(tmp_path, text))
    assert err.line == line, str(err)
    assert message in str(err)


def test_missing_file_is_a_rule_file_error(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError, match="cannot read the rule file"):
        load_rules(tmp_path / "nope.yml")


@needs_promtool
def test_promtool_rejects_invalid_promql_that_yaml_checks_cannot_see(tmp_path: Path) -> None:
    path = write(tmp_path, "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: sum(rate(x[5m])\n")
    load_rules(path, promtool=False)  # structurally fine
    with pytest.raises(RuleFileError, match="promtool check rules failed") as info:
        load_rules(path)
    assert info.value.path == str(path)


def test_load_rule_lists_the_names_there_are(tmp_path: Path) -> None:
    with pytest.raises(RuleFileError, match="no alerting rule named 'Nope'; the file has: Down, Errors"):
        load_rule(write(tmp_path, VALID), "Nope", promtool=False)


def test_a_plain_mapping_becomes_an_alert_rule() -> None:
    rule = AlertRule.from_mapping({"alert": "A", "expr": "up == 0", "for": "2m", "keep_firing_for": "1m",
                                   "labels": {"severity": "page"}})
    assert (rule.alert, rule.for_, rule.keep_firing_for, dict(rule.labels)) == ("A", 120.0, 60.0,
                                                                                 {"severity": "page"})
    with pytest.raises(RuleFileError, match="'for'"):
        AlertRule.from_mapping({"alert": "A", "expr": "up", "for": "soon"})
    with pytest.raises(RuleFileError, match="recording rule"):
        AlertRule.from_mapping({"record": "a:b", "expr": "up"})


def test_recording_rules_with_labels_cannot_be_inlined(tmp_path: Path) -> None:
    groups = load_rules(write(tmp_path, "groups:\n  - name: g\n    rules:\n      - record: a:b\n        expr: up\n"
                                        "        labels:\n          x: y\n"), promtool=False)
    with pytest.raises(RuleFileError, match="sets labels"):
        recording_rules(groups)


# --------------------------------------------------------------------------- inlining
RECORDED = {"job:ratio:5m": "sum(rate(e[5m])) / sum(rate(r[5m]))", "job:double": "2 * job:ratio:5m"}


def test_bare_references_are_replaced_by_the_parenthesised_expression() -> None:
    assert inline_recording_rules("job:ratio:5m > 0.1 and job:ratio:5m < 1", RECORDED) == (
        "(sum(rate(e[5m])) / sum(rate(r[5m]))) > 0.1 and (sum(rate(e[5m])) / sum(rate(r[5m]))) < 1")


def test_names_in_strings_matchers_label_lists_and_comments_stay() -> None:
    expr = ('sum by (job:ratio:5m) (x{a="job:ratio:5m", b=~\'job:ratio:5m\'}) '
            '+ label_replace(y, "d", "job:ratio:5m", "", "") # job:ratio:5m')
    assert inline_recording_rules(expr, RECORDED) == expr


def test_recording_rules_on_recording_rules_are_inlined_recursively() -> None:
    assert inline_recording_rules("job:double > 1", RECORDED) == "(2 * (sum(rate(e[5m])) / sum(rate(r[5m])))) > 1"


def test_a_similar_longer_name_is_not_a_reference() -> None:
    assert inline_recording_rules("job:ratio:5m_total > 1", RECORDED) == "job:ratio:5m_total > 1"


@pytest.mark.parametrize("expr", ['job:ratio:5m{job="a"} > 0.1', "max_over_time(job:ratio:5m[1h]) > 0.1",
                                  "job:ratio:5m offset 5m > 0.1", "job:ratio:5m @ 100 > 0.1"])
def test_references_with_selectors_or_modifiers_are_refused(expr: str) -> None:
    with pytest.raises(ConfigurationError, match="only inline bare references"):
        inline_recording_rules(expr, RECORDED)


def test_cyclic_recording_rules_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="cycle"):
        inline_recording_rules("a:x > 1", {"a:x": "b:x + 1", "b:x": "a:x + 1"})
