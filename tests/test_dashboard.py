"""The dashboard as evidence: parsing, validation, Grafana's variables, panels over history, the image."""
from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from conftest import ts

from reliability import paths
from reliability.errors import DashboardError
from reliability.gate.dashboard import ALL, load_dashboard
from reliability.gate.panels import dashboard_check, fitted_step, panel_step, rate_interval, run_panels, substitute
from reliability.gate.verdict import Status
from reliability.report.dashboard_image import render_image
from reliability.source.prom import PrometheusClient

T0 = datetime(2025, 10, 24, 0, 0, tzinfo=timezone.utc)
T1 = datetime(2025, 10, 25, 0, 0, tzinfo=timezone.utc)

SMALL = {
    "uid": "love-small", "title": "love small", "version": 3, "schemaVersion": 39,
    "templating": {"list": [
        {"name": "datasource", "type": "datasource", "query": "prometheus"},
        {"name": "version", "type": "query", "includeAll": True, "multi": True,
         "current": {"text": "All", "value": ["$__all"]}},
    ]},
    "panels": [
        {"id": 1, "type": "row", "title": "Availability", "collapsed": False,
         "gridPos": {"x": 0, "y": 0, "w": 24, "h": 1}},
        {"id": 2, "type": "timeseries", "title": "5xx ratio", "gridPos": {"x": 0, "y": 1, "w": 16, "h": 8},
         "datasource": {"type": "prometheus", "uid": "${datasource}"},
         "fieldConfig": {"defaults": {"unit": "percentunit", "thresholds": {"mode": "absolute", "steps": [
             {"color": "green", "value": None}, {"color": "red", "value": 0.02}]}}},
         "targets": [{"refId": "A", "legendFormat": "5xx ratio",
                      "expr": 'sum(rate(http_requests_total{status=~"5..",version=~"$version"}[$__rate_interval]))'
                              ' / sum(rate(http_requests_total{version=~"$version"}[$__rate_interval]))'}]},
        {"id": 3, "type": "stat", "title": "R over the range", "gridPos": {"x": 16, "y": 1, "w": 8, "h": 8},
         "fieldConfig": {"defaults": {"unit": "percentunit"}},
         "targets": [{"refId": "A", "instant": True,
                      "expr": '1 - sum(increase(http_requests_total{status=~"5.."}[$__range]))'
                              ' / sum(increase(http_requests_total[$__range]))'}]},
        {"id": 4, "type": "row", "title": "Breakers", "collapsed": True, "gridPos": {"x": 0, "y": 9, "w": 24, "h": 1},
         "panels": [
             {"id": 5, "type": "timeseries", "title": "Breaker state", "gridPos": {"x": 0, "y": 10, "w": 24, "h": 6},
              "targets": [{"refId": "A", "expr": "max by (breaker) (circuit_breaker_state)",
                           "legendFormat": "{{breaker}}"}]},
         ]},
    ],
}


def _write(tmp_path: Path, doc: dict, name: str = "dash.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(doc, indent=2))
    return path


# --------------------------------------------------------------------------- loading and validation
def test_load_includes_panels_nested_in_collapsed_rows(tmp_path: Path) -> None:
    dash = load_dashboard(_write(tmp_path, SMALL))
    assert [p.title for p in dash.panels] == ["Availability", "5xx ratio", "R over the range", "Breakers",
                                              "Breaker state"]
    assert [p.row for p in dash.panels if p.type != "row"] == ["Availability", "Availability", "Breakers"]
    assert dash.panels[1].thresholds == (0.02,) and dash.panels[1].unit == "percentunit"
    assert dash.default_variables() == {"datasource": "prometheus", "version": ALL}
    assert len(dash.query_panels) == 3 and dash.summary.shape[0] == 5


def test_malformed_json_names_file_line_and_column(tmp_path: Path) -> None:
    text = json.dumps(SMALL, indent=2).replace('"title": "5xx ratio",', '"title": "5xx ratio"', 1)
    path = tmp_path / "broken.json"
    path.write_text(text)
    line = next(i for i, s in enumerate(text.splitlines(), 1) if '"title": "5xx ratio"' in s) + 1
    with pytest.raises(DashboardError, match=rf"broken\.json:{line}:\d+: invalid JSON"):
        load_dashboard(path)


def test_validation_lists_every_problem(tmp_path: Path) -> None:
    doc = copy.deepcopy(SMALL)
    doc["schemaVersion"] = 27
    doc["templating"]["list"] = doc["templating"]["list"][1:]
    del doc["panels"][1]["gridPos"]
    doc["panels"][2]["targets"][0].pop("refId")
    doc["panels"][2]["datasource"] = 1
    doc["panels"][3]["panels"][0]["targets"] = []
    with pytest.raises(DashboardError) as err:
        load_dashboard(_write(tmp_path, doc))
    msg = str(err.value)
    assert "6 problem(s)" in msg
    for part in ("schemaVersion is 27", "'5xx ratio': gridPos", "has no 'refId'", 'type "datasource"',
                 "$.panels[2].datasource = 1 is a hard-coded numeric datasource id",
                 "'Breaker state': a timeseries panel without targets"):
        assert part in msg


def test_missing_file_is_a_dashboard_error(tmp_path: Path) -> None:
    with pytest.raises(DashboardError, match="cannot read the dashboard"):
        load_dashboard(tmp_path / "nope.json")


# --------------------------------------------------------------------------- variables
def test_rate_interval_follows_grafana() -> None:
    # max($__interval + scrape interval, 4 x scrape interval)
    assert rate_interval(30, 30) == 120
    assert rate_interval(300, 30) == 330
    assert panel_step(T0, T1) == 300 and panel_step(T0, T0) == 30


def test_a_long_range_runs_coarser_but_never_past_the_window() -> None:
    thirty_days = "sum(increase(x[30d]))"
    assert fitted_step("sum(rate(x[5m]))", 300, 30) == 300          # a short range keeps the panel step
    assert fitted_step(thirty_days, 300, 30) == 30 * 86400 / 300     # 8,640 s: 300 points across the range
    assert fitted_step(thirty_days, 300, 30, window=86400) == 8640
    assert fitted_step(thirty_days, 30, 30, window=60) == 60         # a live minute: its start and its end
    assert fitted_step("not promql (", 30, 30) == 30


def test_substitute_builtins() -> None:
    out = substitute("rate(x[$__rate_interval]) + increase(x[$__range]) + $__range_s + ${__interval} + "
                     "$__interval_ms", start=T0, end=T1, step=300, scrape_interval=30)
    assert out == "rate(x[5m30s]) + increase(x[86400s]) + 86400 + 5m + 300000"


def test_substitute_template_variables_escapes_in_regex_matchers() -> None:
    kw = {"start": T0, "end": T1, "step": 60}
    assert substitute('x{version=~"$version"}', variables={"version": ALL}, **kw) == 'x{version=~".*"}'
    assert substitute('x{version=~"$version"}', variables={"version": "All"}, all_values={"version": "v.+"},
                      **kw) == 'x{version=~"v.+"}'
    assert substitute('x{version=~"${version}"}', variables={"version": ["1.2", "1.3"]}, **kw) == \
        r'x{version=~"(1\\.2|1\\.3)"}'
    assert substitute('x{route="$route"}', variables={"route": 'a"b'}, **kw) == r'x{route="a\"b"}'
    assert substitute('x{route="${route:regex}"}', variables={"route": "/a.b"}, **kw) == r'x{route="/a\\.b"}'
    assert substitute("x{i=~\"[[inst]]\"}", variables={"inst": "h:9"}, **kw) == 'x{i=~"h:9"}'
    regex_group = 'label_replace(x, "a", "$1", "b", "(.*)")'
    assert substitute(regex_group, **kw) == regex_group
    with pytest.raises(DashboardError, match=r"\$nope"):
        substitute("x{a=\"$nope\"}", **kw)


# --------------------------------------------------------------------------- panels over history
@pytest.fixture(scope="module")
def repo_dashboard():
    return load_dashboard(paths.DASHBOARD_JSON)


def test_repository_dashboard_is_valid(repo_dashboard) -> None:
    assert repo_dashboard.schema_version >= 39
    assert repo_dashboard.query_panels
    assert any(v.type == "datasource" for v in repo_dashboard.variables)


@pytest.fixture(scope="module")
def canary(truth: dict) -> tuple[datetime, datetime]:
    w = truth["windows"]["canary"]
    return ts(w["start"]), ts(w["end"])


@pytest.fixture(scope="module")
def repo_results(repo_dashboard, canary, prometheus_url: str):
    return run_panels(repo_dashboard, PrometheusClient(prometheus_url), *canary)


@pytest.mark.prometheus
def test_every_repository_panel_returns_data_over_the_canary_window(repo_dashboard, repo_results) -> None:
    failed = repo_results[repo_results["status"] != "PASS"]
    assert failed.empty, failed[["panel", "ref_id", "expr", "error"]].to_string()
    assert len(repo_results) == sum(len([t for t in p.targets if not t.hide]) for p in repo_dashboard.query_panels)
    assert (repo_results["samples"] > 0).all()
    assert not repo_results["expr"].str.contains(r"\$\{?[A-Za-z_]").any()  # every variable substituted
    check = dashboard_check(repo_results)
    assert check.status is Status.PASS and check.required, check.detail


@pytest.mark.prometheus
def test_small_dashboard_panels_and_values(tmp_path: Path, client: PrometheusClient, truth: dict) -> None:
    w = truth["windows"]["canary"]
    start, end = ts(w["start"]), ts(w["end"])
    dash = load_dashboard(_write(tmp_path, SMALL))
    res = run_panels(dash, client, start, end)
    assert list(res["status"]) == ["PASS", "PASS", "PASS"], res.to_string()
    # The stat panel's R equals the ground truth's for the window (the same counts, within rate edges).
    r = float(res.attrs["frames"][(3, "A")]["value"].iloc[0])
    total = w["total"]
    assert r == pytest.approx(1 - total["errors_5xx"] / total["requests"], abs=2e-3)
    assert res.loc[res["panel"] == "Breaker state", "series"].item() == 4


@pytest.mark.prometheus
def test_typo_in_a_panel_metric_fails_that_panel(tmp_path: Path, client: PrometheusClient, canary) -> None:
    doc = json.loads(paths.DASHBOARD_JSON.read_text())
    target = next(t for p in doc["panels"] if p["type"] == "timeseries" for t in p.get("targets", [])
                  if "http_requests_total" in t["expr"])
    target["expr"] = target["expr"].replace("http_requests_total", "http_request_total")
    dash = load_dashboard(_write(tmp_path, doc))
    res = run_panels(dash, client, *canary)
    failed = res[res["status"] == "FAIL"]
    assert len(failed) == 1 and "http_request_total" in failed["expr"].item()
    assert "no data" in failed["error"].item()
    check = dashboard_check(res)
    assert check.status is Status.FAIL
    assert failed["panel"].item() in check.detail and "1 of" in check.detail


@pytest.mark.prometheus
def test_render_image_has_one_titled_axes_per_panel(repo_dashboard, repo_results, tmp_path: Path) -> None:
    out = tmp_path / "dashboard.png"
    fig = render_image(repo_dashboard, repo_results, out)
    panels = [p for p in repo_dashboard.panels if p.type != "row"]
    assert len(fig.axes) == len(panels)
    # narrow panels wrap their titles to fit
    assert [ax.get_title(loc="left").replace("\n", " ") for ax in fig.axes] == [p.title for p in panels]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ratio = [ax for ax, p in zip(fig.axes, panels, strict=False) if p.type == "timeseries"
             and any('status=~"5' in t.expr and "/" in t.expr for t in p.targets)]
    assert ratio, "the dashboard has no 5xx ratio time series"
    assert any(line.get_label().startswith("threshold 2") for line in ratio[0].get_lines())


@pytest.mark.prometheus
def test_the_redraw_is_legible_in_print_says_what_it_is_and_its_axes_mean_something(repo_dashboard,
                                                                                   repo_results) -> None:
    from reliability.report.figures import MIN_PRINT_PT, printed_text_pt

    fig = render_image(repo_dashboard, repo_results)
    assert printed_text_pt(fig, dpi=80) >= MIN_PRINT_PT  # the report embeds it at 80 dpi
    assert "not a Grafana screenshot" in fig._suptitle.get_text()
    panels = [p for p in repo_dashboard.panels if p.type != "row"]
    frames = repo_results.attrs["frames"]
    for ax, panel in zip(fig.axes, panels, strict=False):
        if panel.type != "timeseries":
            continue
        assert ax.get_xlabel() == "UTC", panel.title
        values = [frames[(panel.id, t.ref_id)]["value"] for t in panel.targets if (panel.id, t.ref_id) in frames]
        low, high = ax.get_ylim()
        if min(v.min() for v in values) >= 0:
            assert low >= 0, f"{panel.title}: axis from {low}"
        if panel.unit == "percentunit" and max(v.max() for v in values) <= 1:
            assert high <= 1.0, f"{panel.title}: axis to {high:.1%}"


def test_render_image_draws_failures_and_thresholds_without_prometheus(tmp_path: Path) -> None:
    import pandas as pd

    dash = load_dashboard(_write(tmp_path, SMALL))
    times = pd.date_range(T0, T1, freq="1h")
    frame = pd.DataFrame({"time": times, "value": 0.01})
    res = pd.DataFrame([
        {"panel_id": 2, "panel": "5xx ratio", "type": "timeseries", "ref_id": "A", "expr": "e", "status": "PASS",
         "series": 1, "samples": len(times), "error": ""},
        {"panel_id": 3, "panel": "R over the range", "type": "stat", "ref_id": "A", "expr": "e", "status": "PASS",
         "series": 1, "samples": 1, "error": ""},
        {"panel_id": 5, "panel": "Breaker state", "type": "timeseries", "ref_id": "A", "expr": "e",
         "status": "FAIL", "series": 0, "samples": 0, "error": "no data"},
    ])
    res.attrs.update(frames={(2, "A"): frame, (3, "A"): frame.assign(value=0.99)}, start=T0, end=T1)
    fig = render_image(dash, res)
    titles = [ax.get_title(loc="left") for ax in fig.axes]
    assert titles == ["5xx ratio", "R over the range", "Breaker state"]
    assert [ln.get_label() for ln in fig.axes[0].get_lines()] == ["5xx ratio", "threshold 2%"]
    assert "99.00 %" in [t.get_text() for t in fig.axes[1].texts]
    assert any("A: no data" in t.get_text() for t in fig.axes[2].texts)


# --------------------------------------------------------------------------- live Grafana
@pytest.fixture
def fake_grafana(monkeypatch: pytest.MonkeyPatch):
    """A tiny fake Grafana HTTP API on 127.0.0.1.

    Grafana is not installable on this machine, so the configured path is exercised
    against this stand-in, which answers the three endpoints the module uses the way
    Grafana documents them (/api/health, /api/dashboards/uid/<uid>, /render/d-solo/...)
    and refuses requests without the bearer token.
    """
    import io
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from urllib.parse import parse_qs, urlsplit

    from matplotlib.figure import Figure

    png = io.BytesIO()
    Figure(figsize=(1, 1)).savefig(png, format="png")
    state = {"version": 3, "renderer": True, "requests": []}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep the test output clean
            pass

        def _send(self, code: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            state["requests"].append((url.path, parse_qs(url.query)))
            if url.path == "/api/health":
                return self._send(200, b'{"database": "ok", "version": "10.4.2"}')
            if self.headers.get("Authorization") != "Bearer s3cret":
                return self._send(401, b'{"message": "Unauthorized"}')
            if url.path == "/api/dashboards/uid/love-small":
                doc = {"dashboard": {"uid": "love-small", "version": state["version"]},
                       "meta": {"url": "/d/love-small/love-small"}}
                return self._send(200, json.dumps(doc).encode())
            if url.path.startswith("/render/d-solo/love-small/"):
                if not state["renderer"]:
                    return self._send(500, b'{"message": "Rendering failed: No image renderer available/installed"}')
                return self._send(200, png.getvalue(), "image/png")
            return self._send(404, b'{"message": "Dashboard not found"}')

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("GRAFANA_URL", f"http://127.0.0.1:{server.server_port}")
    monkeypatch.setenv("GRAFANA_TOKEN", "s3cret")
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


def test_grafana_not_configured_is_never_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reliability.gate.grafana import grafana_checks

    monkeypatch.delenv("GRAFANA_URL", raising=False)
    checks = grafana_checks(load_dashboard(_write(tmp_path, SMALL)), start=T0, end=T1, out_dir=tmp_path / "png")
    assert [c.name for c in checks] == ["Grafana health", "Grafana dashboard", "Grafana panel images"]
    assert all(c.status is Status.NOT_CONFIGURED and c.detail == "GRAFANA_URL not set" for c in checks)
    assert not any(c.required for c in checks)


def test_grafana_configured_checks_version_and_fetches_panel_pngs(tmp_path: Path, fake_grafana: dict) -> None:
    from reliability.gate.grafana import grafana_checks

    dash = load_dashboard(_write(tmp_path, SMALL))
    checks = grafana_checks(dash, start=T0, end=T1, out_dir=tmp_path / "png")
    assert [c.status for c in checks] == [Status.PASS] * 3, [c.detail for c in checks]
    assert [c.required for c in checks] == [True, True, False]  # configured: Grafana must work
    assert "10.4.2" in checks[0].detail
    files = sorted((tmp_path / "png").glob("*.png"))
    assert [f.name for f in files] == ["panel-2.png", "panel-3.png", "panel-5.png"]
    assert all(f.read_bytes().startswith(b"\x89PNG") for f in files)
    path, query = fake_grafana["requests"][-1]
    assert path == "/render/d-solo/love-small/love-small"
    assert query["panelId"] == ["5"] and query["var-version"] == ["$__all"]
    assert query["from"] == [str(int(T0.timestamp() * 1000))]


def test_a_stale_dashboard_in_a_configured_grafana_blocks_go(tmp_path: Path, fake_grafana: dict) -> None:
    from reliability.gate.grafana import grafana_checks
    from reliability.gate.verdict import decide

    fake_grafana["version"] = 7
    checks = grafana_checks(load_dashboard(_write(tmp_path, SMALL)), start=T0, end=T1, out_dir=tmp_path / "png")
    stale = [c for c in checks if c.name == "Grafana dashboard"]
    assert stale[0].status is Status.FAIL and stale[0].required
    assert decide(checks).decision == "NO-GO"


def test_grafana_version_mismatch_missing_token_and_no_renderer(tmp_path: Path, fake_grafana: dict,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from reliability.gate.grafana import grafana_dashboard, grafana_panel_images

    dash = load_dashboard(_write(tmp_path, SMALL))
    fake_grafana["version"] = 7
    check = grafana_dashboard(dash)
    assert check.status is Status.FAIL and "version 7" in check.detail and "version 3" in check.detail
    fake_grafana["renderer"] = False
    check = grafana_panel_images(dash, tmp_path / "png", start=T0, end=T1)
    assert check.status is Status.NOT_CONFIGURED and "image renderer" in check.detail
    other = copy.deepcopy(SMALL)
    other["uid"] = "not-imported"
    assert "no dashboard with uid 'not-imported'" in grafana_dashboard(load_dashboard(_write(tmp_path, other))).detail
    monkeypatch.delenv("GRAFANA_TOKEN")
    check = grafana_dashboard(dash)
    assert check.status is Status.FAIL and "GRAFANA_TOKEN" in check.detail


def test_duplicate_panel_ids_are_rejected(tmp_path: Path) -> None:
    doc = copy.deepcopy(SMALL)
    doc["panels"][2]["id"] = 2
    with pytest.raises(DashboardError, match=r"unique integer ids .*\[2, 2, 5\]"):
        load_dashboard(_write(tmp_path, doc))


def test_render_image_into_an_existing_axes(tmp_path: Path) -> None:
    import pandas as pd
    from matplotlib.figure import Figure

    dash = load_dashboard(_write(tmp_path, SMALL))
    res = pd.DataFrame(columns=["panel_id", "panel", "type", "ref_id", "expr", "status", "series", "samples",
                                "error"])
    host = Figure(figsize=(8, 4)).add_subplot()
    fig = render_image(dash, res, host)
    assert fig is host.figure
    assert [ax.get_title(loc="left") for ax in host.child_axes] == ["5xx ratio", "R over the range", "Breaker state"]
    assert "No data" in [t.get_text() for t in host.child_axes[1].texts]


def test_the_ratio_figure_is_legible_in_print_and_in_utc() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    from reliability.report.figures import MIN_PRINT_PT, printed_text_pt, ratio_over_time

    times = pd.date_range(T0, T1, freq="1min")
    frame = pd.concat([pd.DataFrame({"time": times, "value": 0.01, "version": v}) for v in ("v1", "v2")])
    ax = ratio_over_time(frame)
    assert printed_text_pt(ax.figure, dpi=ax.figure.dpi) >= MIN_PRINT_PT  # inline, at the figure's own dpi
    assert ax.get_xlabel() == "time (UTC)" and ax.get_ylim()[0] == 0
    plt.close(ax.figure)
