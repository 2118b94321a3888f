"""Hardening: no bad input, hostile server or signal makes the gate say GO wrongly, hang, or lie about why.

One family per section: arguments, scope, outputs, hostile server, no-data windows, JUnit,
render, the papermill route, signals. Each numbered case of the hardening issue is here.
"""
from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ts
from hostile import Hostile

from reliability import paths
from reliability.analysis import measure
from reliability.analysis.junit import read_junit
from reliability.errors import ConfigurationError, NoDataError, PrometheusQueryError, PrometheusUnavailable
from reliability.gate import proof
from reliability.gate.verdict import Status
from reliability.source.prom import PrometheusClient

REPO = Path(__file__).resolve().parents[1]
DEAD = "http://127.0.0.1:9"  # nothing listens: validation must fail before anything is asked


def gate(*args: str, cwd: Path = REPO, env: dict[str, str] | None = None,
         timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reliability", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env={**os.environ, **(env or {})})


def said(r: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in r.stderr.splitlines() if line.startswith("reliability:")]


# --------------------------------------------------------------------------- arguments (6, 7)
@pytest.mark.parametrize("args, message", [
    (["--start", "now-nan", "--end", "now"], "--start 'now-nan'"),
    (["--start", "now-inf", "--end", "now"], "--start 'now-inf'"),
    (["--start", "now-99999999999y", "--end", "now"], "--start 'now-99999999999y' is out of range"),
    (["--start", "now--5", "--end", "now"], "--start 'now--5': write the sign once"),
    (["--start", "now-1h", "--end", "now", "--out", "/proc/x/y"], "--out /proc/x/y: cannot create"),
    (["--start", "now-1h", "--end", "now", "--selector", 'job="a'], "is not a list of label matchers"),
    (["--start", "now-1h", "--end", "now", "--confidence", "1.5"], "confidence 1.5 must be a number in [0.5, 1)"),
    (["--start", "now-1h", "--end", "now", "--confidence", "nan"], "confidence nan must be a number"),
    (["--start", "now-1h", "--end", "now", "--deadline=-5m"], "invalid --deadline '-5m'"),
    (["--start", "now-1h", "--end", "now", "--selector", 'route="/api/realtime/subscribe"'], "filters on route"),
    (["--start", "now-1h", "--end", "now", "--selector", 'status!~"5.."'], "filters on status"),
])
def test_user_errors_exit_2_in_one_line_before_any_work(args: list[str], message: str) -> None:
    t0 = time.monotonic()
    r = gate("proof", "--prometheus-url", DEAD, "--candidate", "v1", *args, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert len(said(r)) == 1 and message in said(r)[0], r.stderr
    assert "Traceback" not in r.stderr and time.monotonic() - t0 < 20


def test_a_url_with_credentials_exits_2_before_any_work() -> None:
    r = gate("proof", "--prometheus-url", "http://user:secret@127.0.0.1:9", "--candidate", "v1",
             "--start", "now-1h", "--end", "now", timeout=60)
    assert r.returncode == 2 and "contains credentials" in said(r)[0]
    assert "secret" not in r.stdout + r.stderr


# --------------------------------------------------------------------------- scope (1) and outputs (3)
@pytest.fixture(scope="module")
def partial(tmp_path_factory: pytest.TempPathFactory, prometheus_url: str):
    """The failing release judged on one quiet route with --partial-scope, written into a folder
    that holds a symlink to a file elsewhere."""
    base = tmp_path_factory.mktemp("partial")
    victim = base / "victim.txt"
    victim.write_text("not yours\n")
    out = base / "out"
    out.mkdir()
    (out / "report.html").symlink_to(victim)
    r = gate("proof", "--start", "2025-10-24T10:00:00Z", "--end", "2025-10-24T12:00:00Z", "--candidate", "v1.9.0",
             "--selector", 'route="/api/realtime/subscribe"', "--partial-scope",
             "--junit", str(paths.JUNIT / "v1.9.1.xml"), "--out", str(out), env={"PROMETHEUS_URL": prometheus_url})
    return r, out, victim


def test_a_slice_of_the_traffic_is_never_go(partial) -> None:
    r, out, _ = partial
    assert r.returncode == 3, r.stdout + r.stderr
    assert 'PARTIAL SCOPE: route="/api/realtime/subscribe"' in r.stdout
    ev = json.loads((out / "evidence.json").read_text())
    assert ev["verdict"] == "INCONCLUSIVE" and ev["scope"]["partial"] is True
    assert any(c["name"] == "Scope" and c["status"] == "INCONCLUSIVE" and c["required"] for c in ev["checks"])


def test_a_symlink_in_the_output_folder_is_replaced_not_followed(partial) -> None:
    _, out, victim = partial
    assert victim.read_text() == "not yours\n"
    assert not (out / "report.html").is_symlink() and (out / "report.html").stat().st_size > 1000


def test_an_out_that_is_a_symlink_or_a_finished_report_is_refused(partial, tmp_path: Path) -> None:
    _, out, _ = partial
    link = tmp_path / "link"
    link.symlink_to(out)
    for target, message in ((link, "is a symbolic link"), (out, "already holds a finished report")):
        r = gate("proof", "--prometheus-url", DEAD, "--candidate", "v1", "--start", "now-1h", "--end", "now",
                 "--out", str(target), timeout=60)
        assert r.returncode == 2 and message in said(r)[0], r.stderr


# --------------------------------------------------------------------------- render (2, 4)
def test_render_refuses_a_tampered_snapshot(partial, tmp_path: Path) -> None:
    _, out, _ = partial
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    for f in ("report.ipynb", "evidence.json"):
        (bundle / f).write_bytes((out / f).read_bytes())
    body = json.loads(gzip.decompress((out / "queries.json.gz").read_bytes()))
    body["entries"][0]["data"] = "tampered"
    (bundle / "queries.json.gz").write_bytes(gzip.compress(json.dumps(body).encode()))
    r = gate("render", str(bundle), timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "queries.json.gz does not match the sha256 recorded in evidence.json" in said(r)[0]
    assert not (bundle / "rerendered").exists()


def test_a_gzip_bomb_snapshot_stops_at_the_bound(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from reliability.source import snapshot

    monkeypatch.setattr(snapshot, "MAX_SNAPSHOT_BYTES", 1 << 20)
    bomb = tmp_path / "queries.json.gz"
    bomb.write_bytes(gzip.compress(b"0" * (16 << 20), compresslevel=9))
    with pytest.raises(ConfigurationError, match="decompresses to more than 1 MB"):
        snapshot.SnapshotClient(bomb)


# --------------------------------------------------------------------------- hostile server (4, 10, 12, 14)
def test_an_oversized_answer_is_refused_at_the_bound() -> None:
    """The answer is read in pieces and the read stops at the cap (1 MB here), so memory stays bounded."""
    with Hostile("big", size=8 << 20) as h:
        client = PrometheusClient(h.url, max_answer_bytes=1 << 20, retries=0)
        with pytest.raises(PrometheusUnavailable, match="larger than 1 MB"):
            client.query("up", ts("2025-10-26T09:00:00Z"))
        assert h.requests == 1  # not retried: asking again would cost the same


def test_a_snapshot_replays_the_servers_refusals_and_readiness(tmp_path: Path) -> None:
    """The kernel replays what the CLI gathered: a refused answer fails there the same way."""
    from reliability.source.snapshot import SnapshotClient

    with Hostile("big", size=2 << 20) as h:
        client = PrometheusClient(h.url, max_answer_bytes=1 << 20, retries=0)
        with pytest.raises(PrometheusUnavailable) as asked:
            client.query("up", ts("2025-10-26T09:00:00Z"))
        ready = client.ready()
        client.save_snapshot(tmp_path / "queries.json.gz")
    replay = SnapshotClient(tmp_path / "queries.json.gz")
    with pytest.raises(PrometheusUnavailable) as replayed:
        replay.query("up", ts("2025-10-26T09:00:00Z"))
    assert str(replayed.value) == str(asked.value) and "larger than 1 MB" in str(asked.value)
    assert replay.ready() is ready
    dead = PrometheusClient(DEAD, retries=0)
    assert dead.ready() is False
    dead.save_snapshot(tmp_path / "dead.json.gz")
    assert SnapshotClient(tmp_path / "dead.json.gz").ready() is False  # not "ready" because nothing is asked
    with pytest.raises(NoDataError, match="holds no answer"):
        replay.query("up", ts("2025-10-26T09:00:01Z"))


def test_a_trickling_server_is_cut_off_at_the_request_deadline() -> None:
    with Hostile("trickle", delay=0.3) as h:
        t0 = time.monotonic()
        with pytest.raises(PrometheusUnavailable, match="took longer than 3 s"):
            PrometheusClient(h.url, timeout=3.0, retries=0).query("up", ts("2025-10-26T09:00:00Z"))
        assert time.monotonic() - t0 < 10


def test_the_whole_proof_has_a_deadline() -> None:
    with Hostile("trickle", delay=0.3) as h:
        client = PrometheusClient(h.url, timeout=30.0, retries=3, deadline_s=2.0)
        t0 = time.monotonic()
        for _ in range(3):  # every later question fails at once
            with pytest.raises(PrometheusUnavailable):
                client.query("up", ts("2025-10-26T09:00:00Z"))
        assert time.monotonic() - t0 < 8


def test_a_redirect_to_another_port_is_not_followed(prometheus_url: str) -> None:
    with Hostile("big", size=10) as elsewhere, Hostile("redirect", target=elsewhere.url) as h:
        with pytest.raises(PrometheusUnavailable, match="redirected to another host or port"):
            PrometheusClient(h.url, retries=0).query("up", ts("2025-10-26T09:00:00Z"))
        assert elsewhere.requests == 0


def test_a_string_answer_is_not_read_as_a_number() -> None:
    with Hostile("string") as h, pytest.raises(PrometheusQueryError,
                                               match="answered a 'string' where a vector or scalar was asked"):
        PrometheusClient(h.url, retries=0).query("sum(x)", ts("2025-10-26T09:00:00Z"))


def test_nan_inf_and_negative_counts_are_a_contract_breach_not_a_number() -> None:
    with Hostile("nan") as h, pytest.raises(NoDataError, match=r"not finite non-negative numbers.*metric contract"):
        measure.totals(PrometheusClient(h.url, retries=0), ts("2025-10-26T09:00:00Z"), ts("2025-10-26T10:00:00Z"))


def test_series_without_the_contract_labels_say_what_is_missing() -> None:
    from reliability.analysis.dataquality import preflight
    from reliability.gate import sections

    start, end = ts("2025-10-26T09:00:00Z"), ts("2025-10-26T10:00:00Z")
    with Hostile("bare") as h:
        client = PrometheusClient(h.url, retries=0)
        with pytest.raises(NoDataError, match=r"has no breaker label.*metric contract"):
            sections.breakers(proof.ProofParams(start=start, end=end, candidate="v"), client)
        findings = preflight(client, start, end).findings
        assert "no up series" in set(findings["kind"])


def test_a_window_with_no_5xx_is_the_best_case(client: PrometheusClient, truth: dict) -> None:
    w = truth["windows"]["quiet_night"]
    t = measure.totals(client, ts(w["start"]), ts(w["end"]), by=["version"])
    assert list(t["errors"]) == [0.0] and t["requests"].sum() > 0


def test_a_cli_proof_against_a_hostile_server_is_inconclusive_in_bounded_time(tmp_path: Path) -> None:
    with Hostile("big", size=4 << 20) as h:
        t0 = time.monotonic()
        r = gate("proof", "--prometheus-url", h.url, "--candidate", "v1.9.1", "--start", "2025-10-26T09:00:00Z",
                 "--end", "2025-10-27T09:00:00Z", "--max-answer-mb", "1", "--deadline", "60s",
                 "--out", str(tmp_path / "out"), timeout=180)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "larger than 1 MB" in r.stdout and time.monotonic() - t0 < 120


# --------------------------------------------------------------------------- windows without data (8)
@pytest.mark.parametrize("start, end", [
    ("2030-01-01T00:00:00Z", "2030-01-02T00:00:00Z"),
    ("2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z"),
    ("2025-10-26T09:00:00.000Z", "2025-10-26T09:00:00.001Z"),
])
def test_a_window_without_data_is_inconclusive_not_no_go(client: PrometheusClient, start: str, end: str) -> None:
    params = proof.ProofParams(start=ts(start), end=ts(end), candidate="v1.9.1", stable="v1.8.3",
                               junit=(str(paths.JUNIT / "v1.9.1.xml"),))
    result = proof.run(params, client)
    assert result.verdict.decision == "INCONCLUSIVE", [(c.name, c.detail) for c in result.checks
                                                       if c.status is Status.FAIL]


# --------------------------------------------------------------------------- JUnit (9)
def test_a_suite_whose_counts_disagree_with_its_cases_fails(tmp_path: Path) -> None:
    from reliability.gate import sections

    f = tmp_path / "lying.xml"
    f.write_text('<testsuite name="s" tests="3" failures="3" errors="2"><testcase name="a"/></testsuite>')
    res = read_junit([f])
    assert res.total == 1 and res.passed == 1 and not res.ok
    assert "says tests=3 but holds 1" in res.inconsistent[0]
    params = proof.ProofParams(start=ts("2025-10-26T09:00:00Z"), end=ts("2025-10-27T09:00:00Z"), candidate="v",
                               junit=(str(f),))
    _, checks = sections.junit(params)
    assert checks[0].status is Status.FAIL and "contradict themselves" in checks[0].detail
    assert read_junit([paths.JUNIT / "v1.9.1.xml", paths.JUNIT / "v1.9.1-jest.xml"]).inconsistent == ()


# --------------------------------------------------------------------------- the papermill route (13)
def test_papermill_run_directly_fails_unless_go(tmp_path: Path, prometheus_url: str) -> None:
    out, ev = tmp_path / "out.ipynb", tmp_path / "ev.json"
    r = subprocess.run([sys.executable, "-m", "papermill", str(paths.PROOF_NOTEBOOK), str(out),
                        "-p", "start", "2025-10-24T10:00:00Z", "-p", "end", "2025-10-24T10:45:00Z",
                        "-p", "candidate", "v1.9.0", "-p", "stable", "v1.8.3",
                        "-y", json.dumps({"junit": [str(paths.JUNIT / "v1.9.0.xml")]}),
                        "-p", "evidence_path", str(ev), "--cwd", str(tmp_path)],
                       capture_output=True, text=True, timeout=240,
                       env={**os.environ, "PROMETHEUS_URL": prometheus_url})
    assert r.returncode != 0
    assert "GateFailed" in r.stderr and "the verdict is NO-GO, not GO" in r.stderr
    assert json.loads(ev.read_text())["verdict"] == "NO-GO"  # the evidence was written first
    outputs = json.dumps([c.get("outputs", []) for c in json.loads(out.read_text())["cells"]])
    assert "Roll back to v1.8.3" in outputs and "git checkout v1.8.3" in outputs  # page 1 says what to do


# --------------------------------------------------------------------------- signals (5, 11)
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_sigkill_of_the_parent_takes_the_servers_with_it(tmp_path: Path) -> None:
    from reliability.source.embedded.process import temporary_dir

    with subprocess.Popen([sys.executable, "-m", "reliability", "prometheus"], cwd=tmp_path,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "export PROMETHEUS_URL=" in line:
                break
        children = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
                    and _ppid(int(p.name)) == proc.pid]
        left = [d for d in Path("/tmp").glob("love-prometheus-*") if (d / "owner.pid").exists()
                and (d / "owner.pid").read_text() == str(proc.pid)]
        assert len(children) == 2 and len(left) == 1
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    deadline = time.monotonic() + 10
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(c) for c in children)
    fresh = temporary_dir("love-prometheus-")  # the next start cleans what the dead parent left
    try:
        assert not left[0].exists()
    finally:
        import shutil

        shutil.rmtree(fresh, ignore_errors=True)


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def test_ctrl_c_during_a_proof_prints_one_line_and_leaves_nothing_finished(tmp_path: Path, prometheus_url: str) -> None:
    out = tmp_path / "out"
    with subprocess.Popen([sys.executable, "-m", "reliability", "proof", "--start", "2025-10-26T09:00:00Z",
                           "--end", "2025-10-27T09:00:00Z", "--candidate", "v1.9.1", "--out", str(out)],
                          cwd=REPO, env={**os.environ, "PROMETHEUS_URL": prometheus_url},
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          # as a background job of a non-interactive shell (CI): SIGINT inherited ignored
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) as proc:
        assert proc.stderr is not None
        seen = []
        for line in proc.stderr:  # the condition, not the clock: the proof's work has begun
            seen.append(line)
            if "analysis:" in line:
                break
        proc.send_signal(signal.SIGINT)
        try:
            stdout, stderr = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()  # a hang is this test's failure, not the next test's stray process
            raise
        stderr = "".join(seen) + stderr
    assert proc.returncode == 130, stdout + stderr
    assert "Traceback" not in stderr and "ZMQError" not in stderr
    assert [line for line in stderr.splitlines() if line.startswith("reliability:")] == ["reliability: interrupted"]
    assert not out.exists() and (tmp_path / "out.incomplete" / "INCOMPLETE.txt").exists()


SWALLOWED = """
import importlib, sys, weakref
main = importlib.import_module("reliability.cli.main")
from reliability.report import incomplete
sys.unraisablehook = main._swallowed
incomplete.interrupted.set()  # the handler ran once: its KeyboardInterrupt is now raised...

class Lock: pass

def cb(ref):  # ...inside a weakref callback, as an import lock's clean-up can be
    raise KeyboardInterrupt

lock = Lock()
ref = weakref.ref(lock, cb)
del lock
print("went on")
"""


def test_an_interrupt_python_swallows_still_ends_the_run_with_the_one_line() -> None:
    """CI once showed an "Exception ignored ... KeyboardInterrupt" traceback: the interrupt landed in
    importlib's weakref callback, was printed and dropped, and the run ended only by the grace timer."""
    done = subprocess.run([sys.executable, "-c", SWALLOWED], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 130, done.stdout + done.stderr
    assert done.stderr == "reliability: interrupted\n" and "went on" not in done.stdout


def test_the_exit_code_table_in_the_docs_is_what_the_tests_assert() -> None:
    table = (REPO / "docs" / "gate.md").read_text()
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ") and
            line.split("|")[1].strip() in {"0", "1", "2", "3", "4"}}
    assert set(rows) == {"0", "1", "2", "3", "4"}
    assert "GO" in rows["0"] and "NO-GO" in rows["1"] and "INCONCLUSIVE" in rows["3"]
    assert "usage error" in rows["2"] and "before any work" in rows["2"]
    assert "the tool itself failed" in rows["4"] and ".incomplete" in rows["4"]
    assert "partial scope" in rows["3"].lower() and "outside the history" in rows["3"]
    assert "tampered bundle" in rows["2"] and "symlink" in rows["2"]


def test_a_reader_that_leaves_early_does_not_turn_the_exit_code_into_a_crash() -> None:
    """``reliability sli ... | head -1``: the pipe closes before the table is printed; the exit code is still
    the command's own (0), not 4 or Python's 120 for an unflushable stdout."""
    import os as _os

    read, write = _os.pipe()
    _os.close(read)  # the reader is gone before anything is written
    r = subprocess.run([sys.executable, "-m", "reliability", "sli", "--prometheus-url", _os.environ["PROMETHEUS_URL"]],
                       stdout=write, stderr=subprocess.PIPE, text=True, timeout=120, cwd=REPO)
    _os.close(write)
    assert r.returncode == 0, r.stderr
    assert "BrokenPipe" not in r.stderr and "internal error" not in r.stderr, r.stderr
