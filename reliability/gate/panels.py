"""Every dashboard panel's query, run against the history the way Grafana would run it.

Grafana's variables (``$job``, ``$__rate_interval``, ``${var:regex}``) are substituted as Grafana
does, each target runs as a range query, and :func:`dashboard_check` fails when one is rejected or
returns nothing because it is broken (a metric the service does not export, a label value that
never matches): such a panel hides an incident as well as no dashboard at all. An empty answer
that is right (no 5xx ever, a 30-day range on a young server) is a note (:mod:`.no_data`).
"""
from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from reliability.errors import ConfigurationError, DashboardError, PrometheusError, QueryTooLarge
from reliability.gate.dashboard import ALL, Dashboard
from reliability.gate.no_data import diagnose
from reliability.gate.verdict import Check, Status
from reliability.source.frames import label_columns
from reliability.source.promql import format_duration

_VAR_REF = re.compile(r"\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)(?::(\w+))?\]\]|\$(\w+)")
_REGEX_SPECIAL = re.compile(r"[\\$^*{}\[\]+?.()|]")
_IN_REGEX_MATCHER = re.compile(r'(?:=~|!~)\s*"(?:[^"\\]|\\.)*$')


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
        "__interval": format_duration(step), "__interval_ms": str(round(step * 1000)),
        "__rate_interval": format_duration(rate_interval(step, scrape_interval)),
        "__range": f"{max(1, round(range_s))}s", "__range_s": str(max(1, round(range_s))),  # Grafana: at least 1s
        "__range_ms": str(round(range_s * 1000)),
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


#: A target whose range selector is longer than this many panel steps is evaluated more coarsely.
RANGE_STEPS = 300


def fitted_step(expr: str, step: float, scrape_interval: float, window: float | None = None) -> float:
    """The panel step, or a coarser one for a long range (``increase(...[30d])``).

    Each evaluation of a 30-day range decodes 30 days of raw samples; a value that moves by at
    most step/range per step needs no more than ``RANGE_STEPS`` points across its range, so the
    step grows to range / RANGE_STEPS (a multiple of the scrape interval). Short ranges keep ``step``.
    The step never exceeds the ``window`` drawn, so a short window (a live canary's minute) still
    gets a point at its start and its end.
    """
    from reliability.source.parsed import longest_range

    try:
        longest = longest_range(expr)
    except Exception:  # an expression the parser cannot read keeps the panel's step
        return step
    fitted = max(step, math.ceil(longest / RANGE_STEPS / scrape_interval) * scrape_interval)
    return fitted if window is None else max(step, min(fitted, window))


def run_panels(
    dashboard: Dashboard,
    client: Any,
    start: datetime,
    end: datetime,
    *,
    variables: Mapping[str, str | Sequence[str]] | None = None,
    scrape_interval: float = 30.0,
    step: float | None = None,
    failures: Collection[tuple[str, str, str]] = (),
) -> pd.DataFrame:
    """Run every panel target over ``[start, end]``; one row per target, FAIL when it errors or when
    its empty answer shows a broken query (:func:`reliability.gate.no_data.diagnose`; ``failures``
    are the matchers that select failures, whose absence is good news).

    Returns
    -------
    pandas.DataFrame
        Columns panel_id, panel, type, ref_id, expr (after substitution), status, series,
        samples, error, note (why an empty answer is right). ``attrs["frames"]`` maps
        ``(panel_id, ref_id)`` to the query's tidy frame (for
        :func:`reliability.report.dashboard_image.render_image`); ``attrs`` also holds start, end and step.
    """
    step = step or panel_step(start, end, multiple=scrape_interval)
    window = (end - start).total_seconds()
    values = {**dashboard.default_variables(), **(variables or {})}
    all_values = {v.name: v.all_value for v in dashboard.variables if v.all_value}
    rows, frames = [], {}
    for panel in dashboard.query_panels:
        for target in panel.targets:
            if target.hide:
                continue
            row = {"panel_id": panel.id, "panel": panel.title, "type": panel.type, "ref_id": target.ref_id,
                   "expr": target.expr, "status": "FAIL", "series": 0, "samples": 0, "error": "", "note": ""}
            try:
                expr = substitute(target.expr, start=start, end=end, step=step, variables=values,
                                  scrape_interval=scrape_interval, all_values=all_values)
                row["expr"] = expr
                frame = (client.query(expr, end) if target.instant else
                         client.query_range(expr, start, end, fitted_step(expr, step, scrape_interval, window)))
            except (DashboardError, PrometheusError) as exc:
                row["error"] = str(exc).splitlines()[0]
                if isinstance(exc, QueryTooLarge):  # the server's limit, not the panel's text: unproven
                    row["status"] = "REFUSED"
                rows.append(row)
                continue
            labels = label_columns(frame)
            finite = frame[frame["value"].notna()] if len(frame) else frame
            row["series"] = len(finite.drop_duplicates(labels)) if labels and len(finite) else int(len(finite) > 0)
            row["samples"] = len(finite)
            frames[(panel.id, target.ref_id)] = frame
            rows.append(row)
            if row["samples"]:
                row["status"] = "PASS"
                continue
            try:
                why = diagnose(expr, client, start, end, failures=failures)
            except (ConfigurationError, PrometheusError) as exc:
                row["error"] = f"no data, and the server could not say why ({str(exc).splitlines()[0]})"
                continue
            row["status"] = "FAIL" if why.broken else "PASS"
            row["error" if why.broken else "note"] = f"no data: {why.text}"
    out = pd.DataFrame(rows, columns=["panel_id", "panel", "type", "ref_id", "expr", "status", "series",
                                      "samples", "error", "note"])
    out.attrs.update(frames=frames, start=start, end=end, step=step)
    return out


def dashboard_check(results: pd.DataFrame, *, window_empty: bool = False) -> Check:
    """Required: every panel target returned data over the window.

    ``window_empty`` (no series of any metric in the window, from "Series present"): panels
    without data are then missing evidence, not a broken dashboard, so INCONCLUSIVE.
    """
    name = "Dashboard panels"
    if results.empty:
        return Check(name, Status.INCONCLUSIVE, True, "no panel queries were run")
    span = ""
    if "start" in results.attrs:
        span = f" over {results.attrs['start']:%Y-%m-%dT%H:%MZ} .. {results.attrs['end']:%Y-%m-%dT%H:%MZ}"
    failed = results[results["status"] != "PASS"]
    if len(failed) and window_empty and failed["error"].fillna("").str.startswith("no data").all():
        return Check(name, Status.INCONCLUSIVE, True, f"{len(failed)} of {len(results)} panel queries return no "
                                                      f"data{span}: the window holds no samples; choose a window "
                                                      "inside the history")
    if len(failed) and (failed["status"] == "REFUSED").all():
        lines = [f"{r.panel!r} ({r.ref_id}): [{r.expr}]" for r in failed.itertuples()]
        return Check(name, Status.INCONCLUSIVE, True,
                     f"{len(failed)} of {len(results)} panel queries were refused by the server for their size{span} "
                     "(Grafana meets the same limit): record them with recording rules (`reliability rules`), "
                     "or raise the server's limit (--query.max-samples):\n" + "\n".join(lines))
    if len(failed):
        lines = [f"{r.panel!r} ({r.ref_id}): {r.error} [{r.expr}]" for r in failed.itertuples()]
        return Check(name, Status.FAIL, True,
                     f"{len(failed)} of {len(results)} panel queries fail{span}:\n" + "\n".join(lines) +
                     "\nFix the panel query in the dashboard JSON and re-import it.")
    empty = results[results["samples"] == 0]
    notes = "".join(f"\n{r.panel!r} ({r.ref_id}): {r.note}" for r in empty.itertuples())
    return Check(name, Status.PASS, True,
                 f"all {len(results)} panel queries in {results['panel'].nunique()} panels work{span} "
                 f"({int(results['series'].sum())} series, {int(results['samples'].sum())} samples"
                 + (f"; {len(empty)} return no data, correctly" if len(empty) else "") + ")" + notes)
