"""The Grafana dashboard as evidence: every panel's query runs against the history and returns data.

A dashboard that imports but shows "No data" (a misspelt metric, a variable that never
matches) hides an incident as well as no dashboard at all. This module parses and
validates the JSON into a small model; :mod:`reliability.gate.panels` substitutes Grafana's
variables and runs every target, and :mod:`reliability.report.dashboard_image` draws the results.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from reliability import paths
from reliability.errors import DashboardError

MIN_SCHEMA_VERSION = 39
ALL = "$__all"                 # Grafana's internal value of the "All" option
QUERY_PANEL_TYPES = frozenset({"timeseries", "stat", "gauge", "bargauge", "table", "graph", "heatmap",
                               "barchart", "piechart", "state-timeline", "status-history"})


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
                    (isinstance(value, (int, float)) and not isinstance(value, bool)) or
                    (isinstance(value, dict) and (isinstance(value.get("id"), int) or
                                                 str(value.get("uid", "x")).isdigit())))):
                found.append(f"{here} = {json.dumps(value)} is a hard-coded numeric datasource id; "
                             'use {"type": "prometheus", "uid": "${datasource}"}')
            else:
                found.extend(_numeric_datasources(value, here))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_numeric_datasources(value, f"{where}[{i}]"))
    return found
