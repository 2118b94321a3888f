"""Loading Prometheus rule files into plain objects, with errors that name file and line.

A backtest is only as trustworthy as its reading of the rule: a typo in ``for`` or a
misplaced key must stop the proof, not silently change what is replayed. The checks
follow Prometheus 2.42's ``rulefmt`` (the installed version); when ``promtool`` is on
PATH it has the last word, because only it parses PromQL.
"""
from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from reliability.errors import RuleFileError

# Prometheus' model.ParseDuration: units in this order, each at most once; "0" alone is allowed.
_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_DURATION_UNITS = (31_536_000.0, 604_800.0, 86_400.0, 3_600.0, 60.0, 1.0, 0.001)
_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_GROUP_KEYS = frozenset({"name", "interval", "limit", "rules"})
_RULE_KEYS = frozenset({"record", "alert", "expr", "for", "keep_firing_for", "labels", "annotations"})


@dataclass(frozen=True)
class AlertRule:
    """One alerting rule as Prometheus reads it; durations in seconds.

    ``interval`` is the evaluation interval of the rule's group when the group sets one.
    """

    alert: str
    expr: str
    for_: float = 0.0
    keep_firing_for: float = 0.0
    labels: Mapping[str, str] = field(default_factory=dict)
    annotations: Mapping[str, str] = field(default_factory=dict)
    group: str | None = None
    path: str | None = None
    line: int | None = None
    interval: float | None = None

    @classmethod
    def from_mapping(cls, rule: Mapping[str, Any], *, source: str = "<rule>") -> AlertRule:
        """An :class:`AlertRule` from the YAML fields (``alert``, ``expr``, ``for``, ...)."""
        if isinstance(rule, AlertRule):
            return rule
        if not isinstance(rule, Mapping):
            raise RuleFileError(f"expected a rule mapping with alert and expr, got {type(rule).__name__}",
                                path=source)
        parsed = _rule(rule, group=None, path=source)
        if not isinstance(parsed, AlertRule):
            raise RuleFileError(f"{parsed.record!r} is a recording rule; a backtest needs an alerting rule "
                                "(a mapping with 'alert')", path=source)
        return parsed


@dataclass(frozen=True)
class RecordingRule:
    """One recording rule: the series ``record`` is ``expr`` evaluated at every interval."""

    record: str
    expr: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RuleGroup:
    """A rule group: rules evaluated together, every ``interval`` seconds (None: global)."""

    name: str
    interval: float | None
    rules: tuple[AlertRule | RecordingRule, ...]
    path: str

    @property
    def alerts(self) -> list[AlertRule]:
        """The group's alerting rules, in file order."""
        return [r for r in self.rules if isinstance(r, AlertRule)]


def parse_rule_duration(value: Any, *, what: str, path: str, line: int | None) -> float:
    """Seconds from a Prometheus duration such as ``5m`` or ``1h30m``, as strictly as Prometheus.

    Bare numbers other than 0 are rejected, as Prometheus rejects them: ``for: 300``
    is a mistake (seconds? minutes?) that must not reach a backtest.
    """
    text = "" if value is None or isinstance(value, bool) else str(value)
    if text == "0":
        return 0.0
    m = _DURATION.match(text)
    if m is None or not any(m.groups()):
        raise RuleFileError(f"{what}: {value!r} is not a duration; use Prometheus syntax such as "
                            "30s, 5m or 1h30m (units y w d h m s ms, largest first)", path=path, line=line)
    return sum(int(n) * unit for n, unit in zip(m.groups(), _DURATION_UNITS, strict=True) if n)


def load_rules(path: str | Path, *, promtool: bool | None = None) -> list[RuleGroup]:
    """Read and validate one Prometheus rule file.

    Parameters
    ----------
    path
        The rule file (``groups: [...]``).
    promtool
        Also run ``promtool check rules`` (it parses PromQL, which this module cannot).
        None: when promtool is on PATH.

    Returns
    -------
    list[RuleGroup]
        The groups in file order.

    Raises
    ------
    RuleFileError
        The file is unreadable, not YAML, or not a valid rule file; the message names
        the file and line.
    """
    path = Path(path)
    where = str(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise RuleFileError(f"cannot read the rule file ({exc.strerror or exc}); check the path", path=where) from None
    doc = _parse_yaml(text, where)
    if doc is None:
        doc = _Map()
    if not isinstance(doc, _Map):
        raise RuleFileError("expected a mapping with a 'groups' list at the top level", path=where, line=1)
    for key in doc:
        if key != "groups":
            raise RuleFileError(f"unknown top-level key {key!r}; a rule file has only 'groups'",
                                path=where, line=doc.lines.get(key))
    groups_node = doc.get("groups") or []
    if not isinstance(groups_node, list):
        raise RuleFileError("'groups' must be a list of groups", path=where, line=doc.lines.get("groups"))
    groups: list[RuleGroup] = []
    seen: set[str] = set()
    for node in groups_node:
        group = _group(node, where)
        if group.name in seen:
            raise RuleFileError(f"group name {group.name!r} is repeated in the same file; "
                                "rename one", path=where, line=getattr(node, "line", None))
        seen.add(group.name)
        groups.append(group)
    if promtool or (promtool is None and shutil.which("promtool")):
        _promtool_check(path)
    return groups


def load_rule(path: str | Path, name: str, *, promtool: bool | None = None) -> AlertRule:
    """The alerting rule called ``name`` in ``path``; an error lists the names there are."""
    groups = load_rules(path, promtool=promtool)
    found = [r for g in groups for r in g.alerts if r.alert == name]
    if not found:
        names = sorted({r.alert for g in groups for r in g.alerts})
        raise RuleFileError(f"no alerting rule named {name!r}; the file has: {', '.join(names) or 'none'}",
                            path=str(path))
    return found[0]


def recording_rules(groups: list[RuleGroup] | tuple[RuleGroup, ...]) -> dict[str, str]:
    """Recorded series name -> expression, for inlining into alerts over backfilled history."""
    out: dict[str, str] = {}
    for group in groups:
        for rule in group.rules:
            if isinstance(rule, RecordingRule):
                if rule.labels:
                    # Inlining "(expr)" cannot add labels, so such a rule would be replayed wrongly.
                    raise RuleFileError(f"recording rule {rule.record!r} sets labels; the backtest can only "
                                        "inline rules without labels", path=group.path)
                if rule.record in out and out[rule.record] != rule.expr:
                    raise RuleFileError(f"{rule.record!r} is recorded by two different expressions",
                                        path=group.path)
                out[rule.record] = rule.expr
    return out


# ---------------------------------------------------------------------------- internals
class _Map(dict):  # type: ignore[type-arg]
    """A YAML mapping that remembers where it and each of its keys start (1-based lines)."""

    line: int | None = None
    lines: dict[Any, int]


def _loader(where: str) -> type:
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> _Map:
        loader.flatten_mapping(node)
        out = _Map()
        out.line = node.start_mark.line + 1
        out.lines = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            if key in out:
                raise RuleFileError(f"key {key!r} appears twice in the same mapping", path=where, line=line)
            out[key] = loader.construct_object(value_node, deep=True)
            out.lines[key] = line
        return out

    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, construct_mapping)
    return Loader


def _parse_yaml(text: str, where: str) -> Any:
    import yaml

    try:
        return yaml.load(text, Loader=_loader(where))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        raise RuleFileError(f"not valid YAML: {exc.problem or exc}", path=where, line=line) from None
    except yaml.YAMLError as exc:
        raise RuleFileError(f"not valid YAML: {exc}", path=where) from None


def _group(node: Any, path: str) -> RuleGroup:
    if not isinstance(node, _Map):
        raise RuleFileError("each entry of 'groups' must be a mapping with name and rules", path=path)
    _unknown(node, _GROUP_KEYS, "group", path)
    name = node.get("name")
    if not isinstance(name, str) or not name.strip():
        raise RuleFileError("group has no name; add 'name:'", path=path, line=node.line)
    interval = None
    if node.get("interval") is not None:
        interval = parse_rule_duration(node["interval"], what=f"group {name!r} interval", path=path,
                                       line=node.lines.get("interval"))
        if interval <= 0:
            raise RuleFileError(f"group {name!r} interval must be positive", path=path,
                                line=node.lines.get("interval"))
    rules_node = node.get("rules") or []
    if not isinstance(rules_node, list):
        raise RuleFileError(f"group {name!r}: 'rules' must be a list", path=path, line=node.lines.get("rules"))
    rules = []
    for rule_node in rules_node:
        rule = _rule(rule_node, group=name, path=path)
        if isinstance(rule, AlertRule) and interval is not None:
            rule = replace(rule, interval=interval)
        rules.append(rule)
    return RuleGroup(name=name, interval=interval, rules=tuple(rules), path=path)


def _rule(node: Any, *, group: str | None, path: str) -> AlertRule | RecordingRule:
    line = getattr(node, "line", None)
    lines: Mapping[Any, int] = getattr(node, "lines", {})
    where = f"group {group!r}: " if group else ""
    if not isinstance(node, Mapping):
        raise RuleFileError(f"{where}each rule must be a mapping with alert or record, and expr", path=path)
    _unknown(node, _RULE_KEYS, "rule", path)
    alert, record = node.get("alert"), node.get("record")
    if (alert is None) == (record is None):
        raise RuleFileError(f"{where}a rule needs exactly one of 'alert' or 'record'", path=path, line=line)
    name = str(alert if alert is not None else record)
    what = f"{where}rule {name!r}"
    expr = node.get("expr")
    if expr is None or not str(expr).strip():
        raise RuleFileError(f"{what} has no expr; add 'expr:' with a PromQL expression", path=path, line=line)
    labels = _strings(node.get("labels"), f"{what} labels", path, lines.get("labels"))
    if record is not None:
        if not _METRIC_NAME.match(name):
            raise RuleFileError(f"{what}: {name!r} is not a valid metric name", path=path, line=lines.get("record"))
        for key in ("for", "keep_firing_for", "annotations"):
            if key in node:
                raise RuleFileError(f"{what}: a recording rule cannot have {key!r}", path=path,
                                    line=lines.get(key))
        return RecordingRule(record=name, expr=str(expr), labels=labels)
    if not name.strip():
        raise RuleFileError(f"{where}alert name is empty", path=path, line=lines.get("alert"))
    for_ = keep = 0.0
    if node.get("for") is not None:
        for_ = parse_rule_duration(node["for"], what=f"{what} 'for'", path=path, line=lines.get("for"))
    if node.get("keep_firing_for") is not None:
        keep = parse_rule_duration(node["keep_firing_for"], what=f"{what} 'keep_firing_for'", path=path,
                                   line=lines.get("keep_firing_for"))
    annotations = _strings(node.get("annotations"), f"{what} annotations", path, lines.get("annotations"))
    return AlertRule(alert=name, expr=str(expr), for_=for_, keep_firing_for=keep, labels=labels,
                     annotations=annotations, group=group, path=path if group else None, line=line)


def _unknown(node: Mapping[Any, Any], allowed: frozenset[str], kind: str, path: str) -> None:
    for key in node:
        if key not in allowed:
            lines = getattr(node, "lines", {})
            raise RuleFileError(f"unknown {kind} key {key!r}; allowed: {', '.join(sorted(allowed))}",
                                path=path, line=lines.get(key, getattr(node, "line", None)))


def _strings(node: Any, what: str, path: str, line: int | None) -> dict[str, str]:
    if node is None:
        return {}
    if not isinstance(node, Mapping):
        raise RuleFileError(f"{what} must be a mapping of name: value", path=path, line=line)
    out = {}
    for key, value in node.items():
        line = getattr(node, "lines", {}).get(key, line)
        if not _LABEL_NAME.match(str(key)):
            raise RuleFileError(f"{what}: {key!r} is not a valid label name", path=path, line=line)
        if isinstance(value, (Mapping, list)):
            raise RuleFileError(f"{what}: value of {key!r} must be a string", path=path, line=line)
        out[str(key)] = "" if value is None else (str(value).lower() if isinstance(value, bool) else str(value))
    return out


_PROMTOOL_LINE = re.compile(r":(\d+):\d+:")


def _promtool_check(path: Path) -> None:
    """Let promtool parse the expressions; its complaint becomes a RuleFileError."""
    binary = shutil.which("promtool")
    if binary is None:
        from reliability.errors import MissingBinaryError

        raise MissingBinaryError("promtool", "apt-get install prometheus  (or use the prometheus release tarball)")
    proc = subprocess.run([binary, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).strip()
        lines = [ln.strip() for ln in output.splitlines()
                 if ln.strip() and not ln.startswith("Checking") and ln.strip() != "FAILED:"]
        message = "; ".join(lines) or f"promtool exited with status {proc.returncode}"
        m = _PROMTOOL_LINE.search(message)
        raise RuleFileError(f"promtool check rules failed: {message}", path=str(path),
                            line=int(m.group(1)) if m else None)
