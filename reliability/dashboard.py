"""The Grafana dashboard as evidence: every panel's query runs against the history and returns data.

A dashboard that imports but shows "No data" (a misspelt metric, a variable that never
matches) hides an incident as well as no dashboard at all. This module parses and
validates the JSON, substitutes Grafana's variables the way Grafana does, runs each
panel target as a range query and reports per target. Rendering the panels into one
figure (the report's "screenshot") lives in :mod:`reliability.dashboard_image`.
"""
from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from . import paths
from .errors import DashboardError, PrometheusError
from .prom import label_columns
from .promql import format_duration
from .verdict import Check, Status

MIN_SCHEMA_VERSION = 39
ALL = "$__all"                 # Grafana's internal value of the "All" option
QUERY_PANEL_TYPES = frozenset({"timeseries", "stat", "gauge", "bargauge", "table", "graph", "heatmap",
                               "barchart", "piechart", "state-timeline", "status-history"})
_VAR_REF = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)(?::(\w+))?\]\]|\$(\w+)")
_REGEX_SPECIAL = re.compile(r"[\\$^*{}\[\]+?.()|]")
_IN_REGEX_MATCHER = re.compile(r'(?:=~|!~)\s*"(?:[^"\\]|\\.)*$')


@dataclass(frozen=True)
class Target:
    """One query of a panel."""

    ref_id: str
    expr: str
    legend: str | None = None
    instant: bool = False
    hide: bool = False


@dataclass(frozen=True)
class Panel:
    """One panel; rows are panels of type ``row`` (``row`` names the row a panel sits in)."""

    id: int | None
    title: str
    type: str
    grid: tuple[int, int, int, int]          # x, y, w, h in Grafana's 24-column grid units
    targets: tuple[Target, ...] = ()
    thresholds: tuple[float, ...] = ()
    unit: str | None = None
    row: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class Variable:
    """A template variable with its saved current value(s)."""

    name: str
    type: str
    current: tuple[str, ...] = ()
    include_all: bool = False
    all_value: str | None = None
    query: str | None = None


@dataclass(frozen=True)
class Dashboard:
    """A validated Grafana dashboard."""

    path: str
    uid: str | None
    title: str
    version: int | None
    schema_version: int
    panels: tuple[Panel, ...]
    variables: tuple[Variable, ...]
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def query_panels(self) -> list[Panel]:
        """Panels that run queries (rows and text panels excluded)."""
        return [p for p in self.panels if p.targets]

    @property
    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([
            {"panel_id": p.id, "panel": p.title, "type": p.type, "row": p.row, "x": p.grid[0], "y": p.grid[1],
             "w": p.grid[2], "h": p.grid[3], "targets": len(p.targets)} for p in self.panels
        ])

    def default_variables(self) -> dict[str, str | tuple[str, ...]]:
        """The saved value of every template variable, as Grafana would open the dashboard."""
        out: dict[str, str | tuple[str, ...]] = {}
        for v in self.variables:
            values = v.current or ((v.query,) if v.query and v.type in ("constant", "textbox", "datasource") else ())
            if v.include_all and (not values or values[0] in (ALL, "All")):
                out[v.name] = ALL
            elif len(values) == 1:
                out[v.name] = values[0]
            elif values:
                out[v.name] = values
        return out


# --------------------------------------------------------------------------- loading
def load_dashboard(path: str | Path = paths.DASHBOARD_JSON) -> Dashboard:
    """Read and validate a Grafana dashboard JSON file.

    Raises
    ------
    DashboardError
        Unreadable file, JSON syntax error (with line and column), or a dashboard that
        breaks the rules below; the message lists every problem with the panel it is in.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise DashboardError(f"{path}: cannot read the dashboard ({exc.strerror or exc}); check the path") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DashboardError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}; fix the file "
                             "(python -m json.tool shows the spot)") from None
    if isinstance(doc, dict) and isinstance(doc.get("dashboard"), dict):  # an API export wraps it
        doc = doc["dashboard"]
    if not isinstance(doc, dict):
        raise DashboardError(f"{path}: expected a JSON object with panels, got {type(doc).__name__}")
    problems: list[str] = []
    schema = doc.get("schemaVersion")
    if not isinstance(schema, int) or schema < MIN_SCHEMA_VERSION:
        problems.append(f"schemaVersion is {schema!r}; export the dashboard from Grafana 10.4+ "
                        f"(schemaVersion >= {MIN_SCHEMA_VERSION})")
    panels = _panels(doc.get("panels"), problems)
    ids = [p.id for p in panels if p.targets]
    if any(not isinstance(i, int) for i in ids) or len(set(ids)) != len(ids):
        problems.append(f"query panels need unique integer ids (Grafana renders and links panels by id), got {ids}")
    variables = _variables(doc, problems)
    problems.extend(_numeric_datasources(doc, "$"))
    if problems:
        raise DashboardError(f"{path}: {len(problems)} problem(s):\n  - " + "\n  - ".join(problems))
    version = doc.get("version")
    return Dashboard(path=str(path), uid=doc.get("uid"), title=str(doc.get("title") or path.stem),
                     version=version if isinstance(version, int) else None, schema_version=schema,
                     panels=tuple(panels), variables=tuple(variables), raw=doc)


def _panels(nodes: Any, problems: list[str], row: str | None = None) -> list[Panel]:
    if not isinstance(nodes, list) or (row is None and not nodes):
        if row is None:
            problems.append("no 'panels' list; the dashboard shows nothing")
        return []
    out: list[Panel] = []
    for i, node in enumerate(nodes):
        if not isinstance(node, dict):
            problems.append(f"panels[{i}] is not an object")
            continue
        title = str(node.get("title") or "")
        kind = str(node.get("type") or "")
        where = f"panel {node.get('id', i)} {title!r}"
        grid = node.get("gridPos")
        if not isinstance(grid, dict) or not all(isinstance(grid.get(k), int) for k in "xywh"):
            problems.append(f"{where}: gridPos with integer x, y, w, h is missing")
            xywh = (0, 0, 24, 8)
        else:
            xywh = (grid["x"], grid["y"], grid["w"], grid["h"])
            if xywh[0] < 0 or xywh[2] < 1 or xywh[0] + xywh[2] > 24 or xywh[3] < 1:
                problems.append(f"{where}: gridPos {grid} does not fit the 24-column grid")
        if kind == "row":
            out.append(Panel(node.get("id"), title, kind, xywh, raw=node))
            # A collapsed row keeps its panels nested; an open row's follow at top level.
            out.extend(_panels(node.get("panels") or [], problems, row=title))
            continue
        targets = _targets(node, where, problems)
        if kind in QUERY_PANEL_TYPES and not targets:
            problems.append(f"{where}: a {kind} panel without targets shows nothing")
        defaults = (node.get("fieldConfig") or {}).get("defaults") or {}
        steps = ((defaults.get("thresholds") or {}).get("steps")) or []
        thresholds = tuple(float(s["value"]) for s in steps
                           if isinstance(s, dict) and isinstance(s.get("value"), (int, float)))
        out.append(Panel(node.get("id"), title, kind, xywh, tuple(targets), thresholds,
                         defaults.get("unit"), row if row is not None else _current_row(out), node))
    return out


def _current_row(panels: list[Panel]) -> str | None:
    """The title of the last open row seen, for panels that follow it at top level."""
    for p in reversed(panels):
        if p.type == "row":
            return p.title
    return None


def _targets(node: Mapping[str, Any], where: str, problems: list[str]) -> list[Target]:
    out = []
    for j, t in enumerate(node.get("targets") or []):
        if not isinstance(t, dict):
            problems.append(f"{where}: targets[{j}] is not an object")
            continue
        expr, ref = t.get("expr"), t.get("refId")
        if not isinstance(expr, str) or not expr.strip():
            problems.append(f"{where}: target {ref or j} has no PromQL 'expr'")
        if not isinstance(ref, str) or not ref:
            problems.append(f"{where}: target {j} has no 'refId'")
        if isinstance(expr, str) and expr.strip():
            out.append(Target(str(ref or j), expr, t.get("legendFormat"), bool(t.get("instant")),
                              bool(t.get("hide"))))
    return out


def _variables(doc: Mapping[str, Any], problems: list[str]) -> list[Variable]:
    nodes = (doc.get("templating") or {}).get("list") or []
    out = []
    for v in nodes:
        if not isinstance(v, dict) or not v.get("name"):
            problems.append("a template variable has no name")
            continue
        current = (v.get("current") or {}).get("value")
        values = tuple(str(x) for x in current) if isinstance(current, list) else (
            (str(current),) if current not in (None, "") else ())
        query = v.get("query")
        out.append(Variable(v["name"], str(v.get("type") or ""), values, bool(v.get("includeAll")),
                            v.get("allValue") or None, query if isinstance(query, str) else None))
    if not any(v.type == "datasource" for v in out):
        problems.append('no template variable of type "datasource"; add one (query "prometheus") so the '
                        "dashboard imports into any Grafana")
    return out


def _numeric_datasources(node: Any, where: str) -> list[str]:
    """Every hard-coded numeric datasource id (they differ between Grafana instances)."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            here = f"{where}.{key}"
            if key == "datasourceId" or (key == "datasource" and (
                    isinstance(value, (int, float)) and not isinstance(value, bool) or
                    isinstance(value, dict) and (isinstance(value.get("id"), int) or
                                                 str(value.get("uid", "x")).isdigit()))):
                found.append(f"{here} = {json.dumps(value)} is a hard-coded numeric datasource id; "
                             'use {"type": "prometheus", "uid": "${datasource}"}')
            else:
                found.extend(_numeric_datasources(value, here))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_numeric_datasources(value, f"{where}[{i}]"))
    return found


# --------------------------------------------------------------------------- variables
def rate_interval(step: float, scrape_interval: float) -> float:
    """Grafana's ``$__rate_interval``: max($__interval + scrape interval, 4 x scrape interval)."""
    return max(step + scrape_interval, 4 * scrape_interval)


def _regex_escape(value: str) -> str:
    # Two backslashes: one for the PromQL string literal, one for the RE2 regex.
    return _REGEX_SPECIAL.sub(lambda m: "\\\\" + m.group(0), value)


def _string_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def substitute(
    expr: str,
    *,
    start: datetime,
    end: datetime,
    step: float,
    variables: Mapping[str, str | Sequence[str]] | None = None,
    scrape_interval: float = 30.0,
    all_values: Mapping[str, str] | None = None,
) -> str:
    """``expr`` with Grafana's built-in and template variables replaced, as Grafana would.

    Built-ins: ``$__interval`` (= ``step``), ``$__interval_ms``, ``$__rate_interval``,
    ``$__range``, ``$__range_s``, ``$__range_ms``. Template variables: ``$var``,
    ``${var}``, ``${var:format}`` (regex, pipe, csv, raw) and ``[[var]]``. The value
    ``$__all`` ("All") becomes the variable's ``all_values`` entry or ``.*``; values
    inside a ``=~``/``!~`` matcher are regex-escaped, several values become ``(a|b)``.

    Raises
    ------
    DashboardError
        A variable is referenced that has no value.
    """
    variables = dict(variables or {})
    range_s = max((end - start).total_seconds(), 0.0)
    builtins = {
        "__interval": format_duration(step), "__interval_ms": str(int(round(step * 1000))),
        "__rate_interval": format_duration(rate_interval(step, scrape_interval)),
        "__range": f"{int(round(range_s))}s", "__range_s": str(int(round(range_s))),
        "__range_ms": str(int(round(range_s * 1000))),
    }

    def replace(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(3) or m.group(5)
        fmt = m.group(2) or m.group(4)
        if name in builtins:
            return builtins[name]
        if name.isdigit():  # $1 in label_replace is a regex group, not a variable
            return m.group(0)
        if name not in variables:
            raise DashboardError(f"query {expr!r} uses ${name}, which has no value; define the template "
                                 f"variable or pass variables={{'{name}': ...}}")
        value = variables[name]
        in_regex = fmt == "regex" or (fmt is None and _IN_REGEX_MATCHER.search(expr[:m.start()]) is not None)
        if value in (ALL, "All") or (isinstance(value, (list, tuple)) and list(value) in ([ALL], ["All"])):
            return (all_values or {}).get(name) or ".*"
        values = [value] if isinstance(value, str) else [str(v) for v in value]
        if fmt == "raw" or fmt == "csv":
            return ",".join(values)
        if fmt == "pipe":
            return "|".join(values)
        if in_regex:
            escaped = [_regex_escape(v) for v in values]
            return escaped[0] if len(escaped) == 1 else "(" + "|".join(escaped) + ")"
        return _string_escape(values[0]) if len(values) == 1 else "(" + "|".join(values) + ")"

    return _VAR_REF.sub(replace, expr)


# --------------------------------------------------------------------------- running
def panel_step(start: datetime, end: datetime, *, points: int = 300, multiple: float = 30.0) -> float:
    """A step giving about ``points`` points, a multiple of the scrape interval (well under 11,000)."""
    raw = max((end - start).total_seconds(), 0.0) / points
    return max(multiple, math.ceil(raw / multiple) * multiple)


def run_panels(
    dashboard: Dashboard,
    client: Any,
    start: datetime,
    end: datetime,
    *,
    variables: Mapping[str, str | Sequence[str]] | None = None,
    scrape_interval: float = 30.0,
    step: float | None = None,
) -> pd.DataFrame:
    """Run every panel target over ``[start, end]``; one row per target, FAIL when it errors or has no data.

    Returns
    -------
    pandas.DataFrame
        Columns panel_id, panel, type, ref_id, expr (after substitution), status, series,
        samples, error. ``attrs["frames"]`` maps ``(panel_id, ref_id)`` to the query's tidy
        frame (for :func:`reliability.dashboard_image.render_image`); ``attrs`` also holds
        start, end and step.
    """
    step = step or panel_step(start, end, multiple=scrape_interval)
    values = {**dashboard.default_variables(), **(variables or {})}
    all_values = {v.name: v.all_value for v in dashboard.variables if v.all_value}
    rows, frames = [], {}
    for panel in dashboard.query_panels:
        for target in panel.targets:
            if target.hide:
                continue
            row = {"panel_id": panel.id, "panel": panel.title, "type": panel.type, "ref_id": target.ref_id,
                   "expr": target.expr, "status": "FAIL", "series": 0, "samples": 0, "error": ""}
            try:
                expr = substitute(target.expr, start=start, end=end, step=step, variables=values,
                                  scrape_interval=scrape_interval, all_values=all_values)
                row["expr"] = expr
                frame = client.query(expr, end) if target.instant else client.query_range(expr, start, end, step)
            except (DashboardError, PrometheusError) as exc:
                row["error"] = str(exc).splitlines()[0]
                rows.append(row)
                continue
            labels = label_columns(frame)
            finite = frame[frame["value"].notna()] if len(frame) else frame
            row["series"] = int(len(finite.drop_duplicates(labels))) if labels and len(finite) else int(len(finite) > 0)
            row["samples"] = int(len(finite))
            if row["samples"]:
                row["status"] = "PASS"
            else:
                row["error"] = "no data: the query returns nothing over the window (misspelt metric or label?)"
            frames[(panel.id, target.ref_id)] = frame
            rows.append(row)
    out = pd.DataFrame(rows, columns=["panel_id", "panel", "type", "ref_id", "expr", "status", "series",
                                      "samples", "error"])
    out.attrs.update(frames=frames, start=start, end=end, step=step)
    return out


def dashboard_check(results: pd.DataFrame) -> Check:
    """Required: every panel target returned data over the window."""
    name = "Dashboard panels"
    if results.empty:
        return Check(name, Status.INCONCLUSIVE, True, "no panel queries were run")
    span = ""
    if "start" in results.attrs:
        span = f" over {results.attrs['start']:%Y-%m-%dT%H:%MZ} .. {results.attrs['end']:%Y-%m-%dT%H:%MZ}"
    failed = results[results["status"] != "PASS"]
    if len(failed):
        lines = [f"{r.panel!r} ({r.ref_id}): {r.error} [{r.expr}]" for r in failed.itertuples()]
        return Check(name, Status.FAIL, True,
                     f"{len(failed)} of {len(results)} panel queries fail{span}:\n" + "\n".join(lines) +
                     "\nFix the panel query in the dashboard JSON and re-import it.")
    return Check(name, Status.PASS, True,
                 f"all {len(results)} panel queries in {results['panel'].nunique()} panels return data{span} "
                 f"({int(results['series'].sum())} series, {int(results['samples'].sum())} samples)")


def render_image(dashboard: Dashboard, results: pd.DataFrame, path_or_ax: Any = None, *,
                 threshold: float = 0.02) -> Any:
    """Draw every panel in one figure; see :func:`reliability.dashboard_image.render_image`."""
    from .dashboard_image import render_image as _render

    return _render(dashboard, results, path_or_ax, threshold=threshold)
