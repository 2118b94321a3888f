"""The embedded Prometheus serves backfilled history, fails loudly on bad input, and cleans up."""
from __future__ import annotations

import gzip
import json
import lzma
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import process_exists

from reliability import paths
from reliability.errors import DataFileError, MissingBinaryError, PrometheusUnavailable, RuleFileError
from reliability.source.embedded import EmbeddedPrometheus, backfill, derived_config

START = 1760486400  # 2025-10-15T00:00:00Z
STEP = 30
LABELS = 'job="love-backend",instance="a:8080",route="/api/queue"'
needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None,
                                    reason="promtool is not installed")

ALERTS = """\
groups:
  - name: critical_alerts
    rules:
      - alert: High5xxErrorRate
        expr: (sum(rate(http_requests_total{status=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))) > 0.02
        for: 5m
        labels:
          severity: critical
"""
PROMETHEUS_YML = """\
global:
  scrape_interval: 30s
  evaluation_interval: 30s
rule_files:
  - rules/alerts.yml
alerting:
  alertmanagers:
    - static_configs:
        - targets: ["alertmanager.invalid:9093"]
scrape_configs:
  - job_name: love-backend
    static_configs:
      - targets: ["love.invalid:8080"]
"""


def history_lines(*, hours: float = 2, ms: bool = False) -> list[str]:
    """Two counters: status 200 grows by 10 and status 500 by 1 per 30 s scrape."""
    lines = ["# TYPE http_requests counter"]
    for status, per_scrape in (("200", 10), ("500", 1)):
        for k in range(int(hours * 3600 / STEP) + 1):
            ts = (START + k * STEP) * (1000 if ms else 1)
            lines.append(f'http_requests_total{{{LABELS},status="{status}"}} {per_scrape * k} {ts}')
    return [*lines, "# EOF"]


def write_history(path: Path, lines: list[str]) -> Path:
    data = ("\n".join(lines) + "\n").encode()
    if path.suffix == ".gz":
        data = gzip.compress(data)
    elif path.suffix == ".xz":
        data = lzma.compress(data)
    path.write_bytes(data)
    return path


def get(url: str, path: str, **params: Any) -> Any:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(f"{url}{path}{query}", timeout=10) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    return body["data"]


def instant(url: str, promql: str, at: float) -> list[dict[str, Any]]:
    data = get(url, "/api/v1/query", query=promql, time=at)
    return list(data["result"])


def poll(check: Any, *, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.2)


def cached_entries(cache: Path) -> list[str]:
    blocks = cache / "blocks"
    return sorted(p.name for p in blocks.iterdir()) if blocks.exists() else []


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("monitoring")
    (root / "rules").mkdir()
    (root / "rules" / "alerts.yml").write_text(ALERTS)
    (root / "prometheus.yml").write_text(PROMETHEUS_YML)
    return root


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_history(tmp_path_factory.mktemp("data") / "history.om.gz", history_lines())


@pytest.fixture(scope="module")
def served(history: Path, config_dir: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Any:
    with EmbeddedPrometheus(history, config=config_dir / "prometheus.yml",
                            cache_dir=tmp_path_factory.mktemp("cache")) as prom:
        yield prom


@pytest.mark.prometheus
def test_backfilled_history_answers_historic_instant_query(served: EmbeddedPrometheus) -> None:
    at = START + 3600  # scrape 120
    result = instant(served.url, 'http_requests_total{status="500"}', at)
    assert [float(r["value"][1]) for r in result] == [120.0]
    ratio = instant(served.url, 'sum(rate(http_requests_total{status=~"5.."}[5m]))'
                                " / sum(rate(http_requests_total[5m]))", at)
    assert float(ratio[0]["value"][1]) == pytest.approx(1 / 11)


@pytest.mark.prometheus
def test_history_range_comes_from_the_blocks(served: EmbeddedPrometheus) -> None:
    first, last = served.history_range
    assert (first.timestamp(), last.timestamp()) == (START, START + 7200)


@pytest.mark.prometheus
def test_started_alertmanager_is_discovered(served: EmbeddedPrometheus) -> None:
    def active() -> list[str]:
        data = get(served.url, "/api/v1/alertmanagers")
        return [am["url"] for am in data["activeAlertmanagers"]]

    urls = poll(active)
    assert served.alertmanager_url is not None
    assert [u.split("/api/")[0] for u in urls] == [served.alertmanager_url]


@pytest.mark.prometheus
def test_rule_groups_come_from_the_config(served: EmbeddedPrometheus, config_dir: Path) -> None:
    groups = get(served.url, "/api/v1/rules")["groups"]
    assert [(g["name"], g["file"]) for g in groups] == [
        ("critical_alerts", str(config_dir / "rules" / "alerts.yml"))]
    assert [r["name"] for r in groups[0]["rules"]] == ["High5xxErrorRate"]


@pytest.mark.prometheus
def test_rules_are_evaluated_within_seconds_of_start(served: EmbeddedPrometheus) -> None:
    # The production 30 s interval would make the rule check wait up to 30 s after start.
    def evaluated() -> list[dict[str, Any]]:
        groups = get(served.url, "/api/v1/rules")["groups"]
        return [g for g in groups if g["lastEvaluation"] > "2000"]

    groups = poll(evaluated)
    assert [g["interval"] for g in groups] == [5]


@pytest.mark.prometheus
def test_history_is_served_without_scraping(served: EmbeddedPrometheus) -> None:
    assert get(served.url, "/api/v1/targets")["activeTargets"] == []


@pytest.mark.prometheus
def test_second_start_reuses_cache_without_promtool(
        history: Path, config_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    with EmbeddedPrometheus(history, config=config_dir / "prometheus.yml", alertmanager=False,
                            cache_dir=cache) as prom:
        assert cache not in prom.data_dir.parents
    entries = cached_entries(cache)
    assert len(entries) == 1 and len(entries[0]) == 64  # one sha256-named block set
    monkeypatch.setenv("PROMTOOL_BIN", "/nonexistent/promtool")  # any promtool run now fails
    with EmbeddedPrometheus(history, config=config_dir / "prometheus.yml", alertmanager=False,
                            cache_dir=cache) as prom:
        result = instant(prom.url, 'http_requests_total{status="200"}', START + 600)
        assert float(result[0]["value"][1]) == 200.0
    assert cached_entries(cache) == entries


@pytest.mark.prometheus
def test_stop_leaves_no_process_or_directory_behind(
        history: Path, config_dir: Path, tmp_path: Path) -> None:
    prom = EmbeddedPrometheus(history, config=config_dir / "prometheus.yml", cache_dir=tmp_path)
    prom.start()
    pids, data_dir = prom.pids, prom.data_dir
    assert len(pids) == 2 and all(process_exists(p) for p in pids)
    prom.stop()
    assert not any(process_exists(p) for p in pids)
    assert not data_dir.parent.exists()
    prom.stop()  # idempotent


@pytest.mark.prometheus
def test_exception_inside_with_block_stops_servers(
        history: Path, config_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ZeroDivisionError), EmbeddedPrometheus(history, config=config_dir / "prometheus.yml",
                            cache_dir=tmp_path) as prom:
        pids = prom.pids
        raise ZeroDivisionError("inside the with block")
    assert not any(process_exists(p) for p in pids)


@pytest.mark.prometheus
def test_broken_rule_file_is_reported_with_its_line(
        history: Path, config_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "alerts.yml").write_text(ALERTS.replace("expr: (", "expr: (("))
    (tmp_path / "prometheus.yml").write_text(PROMETHEUS_YML)
    with pytest.raises(RuleFileError) as info:
        EmbeddedPrometheus(history, config=tmp_path / "prometheus.yml", alertmanager=False,
                           cache_dir=tmp_path / "cache").start()
    assert (info.value.path, info.value.line) == (str(tmp_path / "rules" / "alerts.yml"), 5)


@pytest.mark.prometheus
def test_taken_port_is_reported(history: Path, config_dir: Path, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(PrometheusUnavailable, match=f"port {port} .* in use"):
            EmbeddedPrometheus(history, config=config_dir / "prometheus.yml", port=port,
                               alertmanager=False, cache_dir=tmp_path).start()


@needs_promtool
@pytest.mark.parametrize("suffix", [".om", ".om.gz", ".om.xz"])
def test_backfill_reads_every_compression(suffix: str, tmp_path: Path) -> None:
    data = write_history(tmp_path / f"h{suffix}", history_lines(hours=1))
    blocks = backfill(data, cache_dir=tmp_path / "cache")
    metas = [json.loads(p.read_text()) for p in blocks.glob("*/meta.json")]
    assert [(m["minTime"], m["maxTime"], m["stats"]["numSamples"]) for m in metas] == [
        (START * 1000, (START + 3600) * 1000 + 1, 2 * 121)]
    assert backfill(data, cache_dir=tmp_path / "cache") == blocks


@needs_promtool
def test_truncated_file_names_the_file_and_caches_nothing(tmp_path: Path) -> None:
    lines = history_lines()[:-1]  # cut before '# EOF'
    data = write_history(tmp_path / "cut.om.gz", lines)
    with pytest.raises(DataFileError, match="truncated") as info:
        backfill(data, cache_dir=tmp_path / "cache")
    assert (info.value.path, info.value.line) == (str(data), len(lines))
    assert cached_entries(tmp_path / "cache") == []


@needs_promtool
def test_cut_compressed_stream_is_a_data_file_error(tmp_path: Path) -> None:
    whole = write_history(tmp_path / "whole.om.xz", history_lines())
    cut = tmp_path / "cut.om.xz"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(DataFileError, match="decompressed") as info:
        backfill(cut, cache_dir=tmp_path / "cache")
    assert info.value.path == str(cut)
    assert cached_entries(tmp_path / "cache") == []


@needs_promtool
def test_millisecond_timestamps_are_rejected(tmp_path: Path) -> None:
    data = write_history(tmp_path / "ms.om", history_lines(ms=True))
    with pytest.raises(DataFileError, match="milliseconds") as info:
        backfill(data, cache_dir=tmp_path / "cache")
    assert info.value.line == 2
    assert cached_entries(tmp_path / "cache") == []


@needs_promtool
@pytest.mark.parametrize(("damage", "line", "message"), [
    (lambda ls: [*ls[:3], "", *ls[3:]], 4, "blank line"),
    (lambda ls: [ls[0] + "\r", *ls[1:]], 1, "CRLF"),
    (lambda ls: [*ls[:5], ls[5].replace("}", "", 1), *ls[6:]], 6, "promtool"),
])
def test_malformed_lines_are_located(damage: Any, line: int, message: str, tmp_path: Path) -> None:
    data = write_history(tmp_path / "bad.om.gz", damage(history_lines()))
    with pytest.raises(DataFileError, match=message) as info:
        backfill(data, cache_dir=tmp_path / "cache")
    assert (info.value.path, info.value.line) == (str(data), line)
    assert cached_entries(tmp_path / "cache") == []


def test_missing_file_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match=r"generate.py"):
        backfill(tmp_path / "absent.om.xz", cache_dir=tmp_path)


def test_missing_binary_gives_install_commands(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMETHEUS_BIN", "/nonexistent")
    with pytest.raises(MissingBinaryError) as info:
        EmbeddedPrometheus(tmp_path / "h.om", cache_dir=tmp_path).start()
    text = str(info.value)
    for command in ("sudo apt-get install --no-install-recommends prometheus prometheus-alertmanager",
                    "conda install -c conda-forge prometheus alertmanager",
                    "brew install prometheus alertmanager"):
        assert command in text
    assert list(tmp_path.iterdir()) == []


def test_derived_config_serves_history_with_local_alertmanager(config_dir: Path) -> None:
    derived = derived_config(config_dir / "prometheus.yml", alertmanager="127.0.0.1:9999")
    assert "scrape_configs" not in derived
    assert derived["rule_files"] == [str(config_dir / "rules" / "alerts.yml")]
    assert derived["alerting"] == {
        "alertmanagers": [{"static_configs": [{"targets": ["127.0.0.1:9999"]}]}]}
    assert derived["global"]["evaluation_interval"] == "30s"
    # A history server says so, so alert replays take the rule file's interval, not its live one.
    assert derived["global"]["external_labels"] == {"reliability_served_history": "true"}


def test_derived_config_can_shorten_only_the_evaluation_interval(config_dir: Path) -> None:
    plain = derived_config(config_dir / "prometheus.yml", alertmanager=None)
    fast = derived_config(config_dir / "prometheus.yml", alertmanager=None, evaluation_interval="5s")
    assert fast["global"] == {**plain["global"], "evaluation_interval": "5s"}
    assert {k: v for k, v in fast.items() if k != "global"} == {k: v for k, v in plain.items() if k != "global"}


@pytest.mark.skipif(not paths.PROMETHEUS_YML.exists(), reason="monitoring/prometheus.yml not written yet")
def test_repository_config_rule_files_resolve() -> None:
    derived = derived_config(paths.PROMETHEUS_YML, alertmanager=None)
    assert derived["rule_files"]
    assert all(Path(f).is_absolute() and list(Path(f).parent.glob(Path(f).name))
               for f in derived["rule_files"])


def children_of(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.prometheus
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find children")
@pytest.mark.parametrize(("sig", "exit_code"), [(signal.SIGINT, 0), (signal.SIGTERM, 128 + 15)])
def test_serve_stops_everything_on_ctrl_c_or_sigterm(
        sig: int, exit_code: int, history: Path, tmp_path: Path) -> None:
    # A whole repository layout, so serve() runs exactly as `reliability prometheus` does.
    root = tmp_path / "repo"
    (root / "monitoring" / "rules").mkdir(parents=True)
    (root / "monitoring" / "rules" / "alerts.yml").write_text(ALERTS)
    (root / "monitoring" / "prometheus.yml").write_text(PROMETHEUS_YML)
    (root / "data").mkdir()
    shutil.copy(history, root / "data" / "love-history.om.gz")
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "c"))
    code = ("import sys; from pathlib import Path; from reliability.source.embedded import serve; "
            "sys.exit(serve(Path('data/love-history.om.gz')))")
    # Started as a background job of a non-interactive shell (CI) is: with SIGINT inherited ignored.
    with subprocess.Popen([sys.executable, "-c", code], env=env, cwd=root, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, preexec_fn=_ignore_sigint) as proc:
        try:
            assert proc.stdout is not None
            lines = []
            for line in proc.stdout:
                lines.append(line)
                if "export PROMETHEUS_URL=" in line:
                    break
            url = lines[-1].split("=", 1)[1].strip()
            result = instant(url, 'http_requests_total{status="500"}', START + 60)
            assert float(result[0]["value"][1]) == 2.0
            servers = children_of(proc.pid)
            assert len(servers) == 2
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=20)
            assert proc.returncode == exit_code, err
        finally:
            if proc.poll() is None:
                proc.kill()
    assert not any(process_exists(p) for p in servers)


@pytest.mark.prometheus
def test_interpreter_exit_stops_a_forgotten_server(
        history: Path, config_dir: Path, tmp_path: Path) -> None:
    code = (
        "import sys; from pathlib import Path; from reliability.source.embedded import EmbeddedPrometheus\n"
        "p = EmbeddedPrometheus(Path(sys.argv[1]), config=Path(sys.argv[2]),"
        " cache_dir=Path(sys.argv[3])).start()\n"
        "print(*p.pids, p.data_dir)\n"  # and exit without stop(): atexit must clean up
    )
    done = subprocess.run([sys.executable, "-c", code, str(history),
                           str(config_dir / "prometheus.yml"), str(tmp_path)],
                          capture_output=True, text=True, timeout=60, check=True)
    *pids, data_dir = done.stdout.split()
    assert len(pids) == 2
    assert not any(process_exists(int(p)) for p in pids)
    assert not Path(data_dir).exists()


def _ignore_sigint() -> None:  # runs in the child before exec
    signal.signal(signal.SIGINT, signal.SIG_IGN)
