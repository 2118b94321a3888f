"""The deploy gate end to end: exit codes, evidence files, promotion, re-rendering, secrets."""
from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from faultproxy import FaultProxy

from reliability import paths

REPO = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]


def gate(*args: str, env: dict[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reliability", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})}, cwd=REPO)


def window(truth: dict, name: str) -> list[str]:
    w = truth["windows"][name]
    return ["--start", w["start"], "--end", w["end"]]


@pytest.fixture(scope="module")
def go_run(truth: dict,
           tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    out = tmp_path_factory.mktemp("go")
    stable = out / "stable"
    stable.write_text("v1.8.3\n")
    r = gate("proof", *window(truth, "canary"), "--candidate", "v1.9.1", "--junit",
             str(paths.DATA / "junit" / "v1.9.1.xml"), "--out", str(out / "bundle"), "--promote",
             "--stable-file", str(stable), env={"LOVE_SCREENSHOTS": "1"})  # as a user's run: with pictures
    return r, out / "bundle", stable


def test_go_exits_0_writes_the_bundle_and_promotes(go_run) -> None:
    r, bundle, stable = go_run
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Verdict: GO" in r.stdout
    for f in ("report.ipynb", "report.html", "report.pdf", "evidence.json", "queries.json.gz"):
        assert (bundle / f).stat().st_size > 0, f
    ev = json.loads((bundle / "evidence.json").read_text())
    assert ev["verdict"] == "GO" and ev["candidate"] == "v1.9.1" and ev["stable"] == "v1.8.3"
    rel = ev["reliability"]
    assert rel["r_lower_bound"] > 0.98 and rel["requests"] > 100_000 and rel["method"] == "clopper-pearson"
    assert ev["inputs"]["snapshot"]["sha256"] and ev["inputs"]["rules"]["sha256"]
    assert all(c["status"] == "PASS" for c in ev["checks"] if c["required"])
    assert stable.read_text().strip() == "v1.9.1"
    assert (bundle / "report.pdf").read_bytes().startswith(b"%PDF")


def test_the_report_shows_the_prometheus_it_queried(go_run) -> None:
    """Pictures of the server's own web UI (the graph of the 5xx ratio, the alerts page), taken by headless
    Chromium, hashed in evidence.json and printed in the PDF's monitoring section."""
    from PIL import Image

    from reliability.report.evidence import sha256

    r, bundle, _ = go_run
    ev = json.loads((bundle / "evidence.json").read_text())
    check = next(c for c in ev["checks"] if c["name"] == "Prometheus screenshots")
    assert check["status"] == "PASS" and not check["required"], check
    shots = ev["screenshots"]
    assert shots["prometheus"] == os.environ["PROMETHEUS_URL"] and not shots["missing"]
    for shot in shots["shots"]:
        picture = bundle / shot["recorded"]
        assert sha256(picture) == shot["sha256"]
        with Image.open(picture) as image:  # a drawn page, not a blank or an error text
            assert image.width == 1200 and image.height >= 700
            assert len(image.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 200, shot
    assert "/graph" in shots["shots"][0]["url"] and "alerts" in shots["shots"][1]["url"]
    assert "screenshots: 2 of the Prometheus UI" in r.stderr
    pdf = bundle / "report.pdf"
    listed = subprocess.run(["pdfimages", "-list", str(pdf)], capture_output=True, text=True, check=True).stdout
    assert sum(" 1200 " in line for line in listed.splitlines()) == 2, listed  # both pictures, at full width
    monitoring = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    monitoring = monitoring[monitoring.index("2. Monitoring works"):monitoring.index("3. Reliability")]
    assert monitoring.count("Screenshot of the Prometheus web UI") == 2


def test_progress_is_one_line_per_phase_with_the_time_and_no_kernel_noise(go_run) -> None:
    r, _, _ = go_run
    lines = [line for line in r.stderr.splitlines() if line.startswith("  [")]
    phases = [line.split("] ", 1)[1].split(":")[0] for line in lines]
    for phase in ("start", "notebook", "analysis", "HTML", "PDF"):
        assert phase in phases, r.stderr
    assert phases.index("start") < phases.index("analysis") < phases.index("HTML") < phases.index("PDF")
    assert sum(p == "analysis" for p in phases) == 11, r.stderr  # every section, as it finishes
    assert any("R > 0.98 for v1.9.1 — PASS" in line for line in lines), r.stderr
    assert "encryption" not in r.stderr and "Traceback" not in r.stderr, r.stderr


@pytest.mark.parametrize("command", ["demo", "proof", "watch", "verify", "render", "prometheus", "init", "sli"])
def test_help_gives_the_defaults_the_exit_codes_and_an_example(command: str) -> None:
    r = gate(command, "--help", timeout=60)
    assert r.returncode == 0, r.stderr
    assert "exit codes:" in r.stdout and "4  the tool itself failed" in r.stdout
    assert ("1  NO-GO" in r.stdout) == (command not in ("prometheus", "sli"))  # no verdict, no verdict codes
    assert "example:\n  " in r.stdout and f"reliability {command}" in r.stdout.split("example:\n")[1]
    if command == "proof":
        assert "(default 15m)" in r.stdout and "$PROMETHEUS_URL" in r.stdout


def page_text(pdf: Path, first: int = 1, last: int | None = None) -> str:
    args = ["pdftotext", "-f", str(first), "-l", str(last or first), str(pdf), "-"]
    return " ".join(subprocess.run(args, capture_output=True, text=True, check=True).stdout.split())


def page_count(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    return int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))


def test_go_page_one_is_the_decision_and_the_report_fits_the_page(go_run) -> None:
    from reliability.report.render import overflows

    _, bundle, _ = go_run
    one = page_text(bundle / "report.pdf")
    ev = json.loads((bundle / "evidence.json").read_text())
    for text in ("GO", "v1.9.1 may be deployed: every required check passed.", "Window",
                 "2025-10-26 09:00 to 2025-10-27 09:00 UTC (1d)", "Scope", "R, 95% lower bound",
                 f"{ev['reliability']['r_lower_bound']:.3%}", "Independent units",
                 "DEMO DATA: recorded history served by the embedded Prometheus", "Generated", "Tool",
                 "Every required check passed"):
        assert text in one, f"{text!r} not on page 1: {one}"
    assert "Checks that failed" not in one
    assert page_count(bundle / "report.pdf") <= 10  # two Prometheus screenshots share one page
    assert overflows(bundle / "report.html") == []
    assert ev["generated_at"] and ev["generated_at"][:16].replace("T", " ") in one


def test_no_go_exits_1_and_does_not_promote(truth: dict, tmp_path: Path) -> None:
    stable = tmp_path / "stable"
    stable.write_text("v1.8.3\n")
    r = gate("proof", *window(truth, "bad_deploy"), "--candidate", "v1.9.0", "--junit",
             str(paths.DATA / "junit" / "v1.9.0.xml"), "--out", str(tmp_path / "b"), "--promote",
             "--stable-file", str(stable))
    assert r.returncode == 1, r.stdout + r.stderr
    ev = json.loads((tmp_path / "b" / "evidence.json").read_text())
    assert ev["verdict"] == "NO-GO"
    assert "git checkout v1.8.3" in ev["rollback"]
    assert stable.read_text().strip() == "v1.8.3"
    assert "Not promoted" in r.stdout
    # Page 1 says what to do, and names each failing check once, neutrally.
    one = page_text(tmp_path / "b" / "report.pdf")
    for text in ("NO-GO", "Do not deploy v1.9.0. Roll back to v1.8.3", "git checkout v1.8.3", "npm run deploy",
                 "Regression tests — FAIL: 40 tests: 36 passed, 3 failed, 1 error",
                 "High5xxErrorRate on the candidate — FAIL", "Circuit breakers at the window end — FAIL",
                 "R > 0.98 for v1.9.0 — FAIL", f"{ev['reliability']['r']:.3%}", "DEMO DATA"):
        assert text in one, f"{text!r} not on page 1: {one}"
    assert one.count("Regression tests") == 1
    assert page_count(tmp_path / "b" / "report.pdf") <= 9  # without screenshots (each adds about a page)


def test_arabic_decision_page_is_in_the_pdf_text_layer_with_the_same_figures(truth: dict, tmp_path: Path) -> None:
    r = gate("proof", *window(truth, "bad_deploy"), "--candidate", "v1.9.0", "--stable", "v1.8.3", "--junit",
             str(paths.DATA / "junit" / "v1.9.0.xml"), "--out", str(tmp_path / "ar"), "--lang", "ar")
    assert r.returncode == 1, r.stdout + r.stderr
    ev = json.loads((tmp_path / "ar" / "evidence.json").read_text())
    marks = dict.fromkeys(map(ord, "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"))

    def arabic_page(pdf: Path, last: int = 1) -> str:  # without the bidi marks pdftotext keeps
        return page_text(pdf, 1, last).translate(marks)

    one = arabic_page(tmp_path / "ar" / "report.pdf")
    for text in ("القرار", "تراجع إلى", "النافذة الزمنية", "الطلبات", "الوحدات المستقلة", "مصدر التقرير",
                 "بيانات تجريبية", "تقرير إثبات المراقبة", "NO-GO", "git checkout v1.8.3",
                 f"{ev['reliability']['r']:.3%}", f"{ev['reliability']['requests']:,.0f}",
                 f"{ev['reliability']['r_lower_bound']:.3%}"):
        assert text in one, f"{text!r} not on the Arabic page 1: {one}"
    assert "Do not deploy" not in one and "Checks that failed" not in one
    assert 'dir="rtl"' in (tmp_path / "ar" / "report.html").read_text()
    assert "المراقبة تعمل" in arabic_page(tmp_path / "ar" / "report.pdf", last=3)  # a section heading
    # The language is a recorded parameter: the auditor's re-render is Arabic too.
    again = gate("render", str(tmp_path / "ar"), "--out", str(tmp_path / "again"))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "تراجع إلى" in arabic_page(tmp_path / "again" / "report.pdf")


def test_unreachable_prometheus_is_inconclusive_and_fast(truth: dict, tmp_path: Path) -> None:
    t0 = time.monotonic()
    r = gate("proof", "--prometheus-url", "http://127.0.0.1:9", *window(truth, "canary"),
             "--candidate", "v1.9.1", "--junit", str(paths.DATA / "junit" / "v1.9.1.xml"),
             "--out", str(tmp_path / "b"))
    assert r.returncode == 3, r.stdout + r.stderr
    assert "Verdict: INCONCLUSIVE" in r.stdout
    assert time.monotonic() - t0 < 120


def test_window_without_traffic_is_inconclusive(truth: dict, tmp_path: Path) -> None:
    # v1.9.1 did not exist yet after the rollback: no data is never GO
    r = gate("proof", *window(truth, "after_rollback"), "--candidate", "v1.9.1", "--junit",
             str(paths.DATA / "junit" / "v1.9.1.xml"), "--out", str(tmp_path / "b"))
    assert r.returncode == 3, r.stdout + r.stderr
    ev = json.loads((tmp_path / "b" / "evidence.json").read_text())
    assert ev["reliability"]["r"] is None and "no requests" in ev["reliability"]["error"]


@pytest.mark.parametrize("args, message", [
    (["--start", "yesterday", "--end", "now", "--candidate", "v1"], "--start 'yesterday' is not a time"),
    (["--start", "now-1h", "--end", "now-2h", "--candidate", "v1"], "is not after --start"),
    (["--start", "now-1h", "--end", "now", "--candidate", "v1", "--junit", "missing.xml"], "--junit missing.xml"),
    (["--start", "now-1h", "--end", "now"], "required: --candidate"),
])
def test_usage_errors_exit_2_with_a_message(args: list[str], message: str) -> None:
    r = gate("proof", *args)
    assert r.returncode == 2
    assert message in r.stderr


def test_render_reproduces_the_report_without_prometheus(go_run, tmp_path: Path) -> None:
    _, bundle, _ = go_run
    r = gate("render", str(bundle), "--out", str(tmp_path / "again"), env={"PROMETHEUS_URL": ""})
    assert r.returncode == 0, r.stdout + r.stderr

    def text(pdf: Path) -> str:
        return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True,
                              check=True).stdout

    assert text(tmp_path / "again" / "report.pdf") == text(bundle / "report.pdf")
    old, new = (json.loads((d / "evidence.json").read_text()) for d in (bundle, tmp_path / "again"))
    assert new["verdict"] == old["verdict"] and new["reliability"] == old["reliability"]
    assert new["screenshots"]["shots"] == old["screenshots"]["shots"] and len(new["screenshots"]["shots"]) == 2
    assert "Screenshot of the Prometheus web UI" in text(tmp_path / "again" / "report.pdf")


def test_credentials_never_reach_the_evidence(truth: dict, tmp_path: Path) -> None:
    token = f"secret-{time.time_ns()}-do-not-leak"
    with FaultProxy(os.environ["PROMETHEUS_URL"], "auth", token=token) as proxy:
        r = gate("proof", "--prometheus-url", proxy.url, *window(truth, "canary"), "--candidate", "v1.9.1",
                 "--junit", str(paths.DATA / "junit" / "v1.9.1.xml"), "--out", str(tmp_path / "b"),
                 env={"PROMETHEUS_BEARER_TOKEN": token, "LOVE_SCREENSHOTS": "1"})
        assert any(f"Bearer {token}" in h for h in proxy.seen)  # it was really used
        browser = [h for h in proxy.seen if "HeadlessChrome" in h]  # the screenshots' requests: with it, in headers
        assert browser and all(f"Bearer {token}" in h for h in browser)
    shots = json.loads((tmp_path / "b" / "evidence.json").read_text())["screenshots"]
    assert [s["file"] for s in shots["shots"]] == ["prometheus-graph.png", "prometheus-alerts.png"], shots
    assert r.returncode == 0, r.stdout + r.stderr
    assert token not in r.stdout + r.stderr
    for f in (f for f in (tmp_path / "b").rglob("*") if f.is_file()):  # the recorded inputs too
        data = f.read_bytes()
        if f.suffix == ".gz":
            data = gzip.decompress(data)
        elif f.suffix == ".pdf":  # streams are compressed: search the text
            data = subprocess.run(["pdftotext", str(f), "-"], capture_output=True, check=True).stdout
        assert token.encode() not in data, f.name


def test_a_window_shorter_than_a_bucket_says_why_r_is_not_proven(tmp_path: Path) -> None:
    r = gate("proof", "--start", "2025-10-24T10:20:00Z", "--end", "2025-10-24T10:23:00Z", "--candidate", "v1.9.0",
             "--junit", str(paths.JUNIT / "v1.9.0.xml"), "--out", str(tmp_path / "b"))
    assert r.returncode == 1, r.stdout + r.stderr  # the replayed alert and the tests fail: NO-GO
    assert "Also not proven:" in r.stdout
    assert "R > 0.98 for v1.9.0: no data: the window is 3m, shorter than one 5m bucket" in r.stdout


def test_the_bundle_is_an_in_toto_statement_that_verify_and_render_hold_it_to(go_run, tmp_path: Path) -> None:
    from reliability.report.evidence import sha256

    _, bundle, _ = go_run
    statement = json.loads((bundle / "evidence.intoto.json").read_text())
    assert statement["_type"] == "https://in-toto.io/Statement/v1" and statement["predicate"]["verdict"] == "GO"
    files = statement["predicate"]["files"]
    assert {"report.pdf", "evidence.json", "queries.json.gz", "report.ipynb"} <= set(files)
    assert files["report.pdf"]["sha256"] == sha256(bundle / "report.pdf")
    assert any(f.startswith("inputs/rules/") for f in files) and any(f.startswith("inputs/notebook/") for f in files)
    for shot in ("screenshots/prometheus-graph.png", "screenshots/prometheus-alerts.png"):
        assert files[shot]["sha256"] == sha256(bundle / shot)
    r = gate("verify", str(bundle))
    assert r.returncode == 0 and "unsigned" in r.stdout, r.stdout + r.stderr
    # A changed rule file in the bundle: verify names it, render refuses it before any work.
    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy, ignore=shutil.ignore_patterns("rerendered"))
    rules = next((copy / "inputs" / "rules").iterdir())
    rules.write_text(rules.read_text() + "\n# changed after the proof\n")
    r = gate("verify", str(copy))
    assert r.returncode == 1 and f"inputs/rules/{rules.name}: sha256" in r.stdout, r.stdout
    r = gate("render", str(copy), "--out", str(tmp_path / "again"), env={"PROMETHEUS_URL": ""})
    assert r.returncode == 2 and rules.name in r.stderr and "refusing to render" in r.stderr, r.stderr
    assert not (tmp_path / "again").exists()


def test_a_signed_statement_verifies_with_its_key_only(truth: dict, tmp_path: Path) -> None:
    keys = {}
    for name in ("key", "other"):
        keys[name] = tmp_path / f"{name}.pem"
        subprocess.run(["openssl", "genpkey", "-algorithm", "ed25519", "-out", str(keys[name])], check=True)
        subprocess.run(["openssl", "pkey", "-in", str(keys[name]), "-pubout", "-out", str(tmp_path / f"{name}.pub")],
                       check=True)
    r = gate("proof", *window(truth, "canary"), "--candidate", "v1.9.1", "--junit",
             str(paths.DATA / "junit" / "v1.9.1.xml"), "--out", str(tmp_path / "b"),
             "--build", "0123456789abcdef0123456789abcdef01234567", env={"RELIABILITY_SIGNING_KEY": str(keys["key"])})
    assert r.returncode == 0, r.stdout + r.stderr
    envelope = json.loads((tmp_path / "b" / "evidence.intoto.json").read_text())
    assert envelope["payloadType"] == "application/vnd.in-toto+json" and len(envelope["signatures"]) == 1
    import base64

    statement = json.loads(base64.b64decode(envelope["payload"]))
    commit = "0123456789abcdef0123456789abcdef01234567"
    assert statement["subject"] == [{"name": "v1.9.1", "digest": {"gitCommit": commit}}]
    ok = gate("verify", str(tmp_path / "b"), "--key", str(tmp_path / "key.pub"))
    assert ok.returncode == 0 and "signature" in ok.stdout, ok.stdout + ok.stderr
    assert gate("verify", str(tmp_path / "b")).returncode == 1
    wrong = gate("verify", str(tmp_path / "b"), "--key", str(tmp_path / "other.pub"))
    assert wrong.returncode == 1 and "does not verify" in wrong.stdout, wrong.stdout


def test_watch_replays_the_looks_and_decides_go_on_the_canary_and_no_go_on_the_bad_deploy(truth, tmp_path) -> None:
    canary, bad = truth["windows"]["canary"], truth["windows"]["bad_deploy"]
    r = gate("watch", "--candidate", "v1.9.1", "--start", canary["start"], "--deadline", canary["end"],
             "--junit", str(paths.DATA / "junit" / "v1.9.1.xml"), "--out", str(tmp_path / "go"))
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout.splitlines()
    lines = [line for line in out if " UTC  requests " in line]
    # One line per look and a sentence under each; GO as soon as the evidence says so: no fixed minimum watch.
    assert lines[-1].endswith("-> GO") and len(lines) < 60, lines[-1]
    assert out[out.index(lines[-1]) + 1].strip().startswith("GO: outside incidents the 5xx share is proven below")
    assert all(out[out.index(line) + 1].startswith("    GO ") for line in lines[:-1])  # what GO waited for
    assert "Decision: GO (watch GO, proof GO)" in r.stdout
    went = f"2025-10-26T{lines[-1][11:16]}"
    assert json.loads((tmp_path / "go" / "evidence.json").read_text())["window"]["end"].startswith(went)
    # A policy minimum still holds GO back to it.
    r = gate("watch", "--candidate", "v1.9.1", "--start", canary["start"], "--deadline", canary["end"],
             "--junit", str(paths.DATA / "junit" / "v1.9.1.xml"), "--out", str(tmp_path / "policy"),
             "--min-watch", "60m")
    assert r.returncode == 0 and "Watch: GO at 2025-10-26 10:00 UTC (60 min after the start)" in r.stdout, r.stdout
    # Its own failing regression tests stop the bad deploy at the first look, the reason on that look's line.
    r = gate("watch", "--candidate", "v1.9.0", "--start", bad["start"], "--deadline", bad["end"],
             "--junit", str(paths.DATA / "junit" / "v1.9.0.xml"), "--out", str(tmp_path / "tests"))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Watch: NO-GO at 2025-10-24 10:01 UTC (1 min after the start)" in r.stdout
    first = r.stdout.splitlines()[0]
    assert first.startswith("2025-10-24 10:01 UTC") and first.endswith("-> NO-GO")
    assert r.stdout.splitlines()[1].strip() == "NO-GO: a required check of the proof failed at this look (below)"
    assert r.stdout.splitlines()[2].strip().startswith("Regression tests: 40 tests: 36 passed, 3 failed")
    # With passing tests, the db breaker OPEN at 10:12 stops it, 9 minutes before R alone would (10:21).
    r = gate("watch", "--candidate", "v1.9.0", "--start", bad["start"], "--deadline", bad["end"],
             "--junit", str(paths.DATA / "junit" / "v1.9.1.xml"), "--out", str(tmp_path / "nogo"))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Watch: NO-GO at 2025-10-24 10:12 UTC (12 min after the start)" in r.stdout
    assert "    Circuit breakers at the window end: OPEN at 2025-10-24T10:12:00Z: db" in r.stdout
    # Run again, the looks come from the state beside the report, not from new queries.
    again = gate("watch", "--candidate", "v1.9.0", "--start", bad["start"], "--deadline", bad["end"],
                 "--junit", str(paths.DATA / "junit" / "v1.9.1.xml"), "--out", str(tmp_path / "nogo"), "--replace")
    assert again.returncode == 1 and "resuming from" in again.stderr and "(12 looks recorded)" in again.stderr
    assert "Watch: NO-GO at 2025-10-24 10:12 UTC" in again.stdout
    assert "    Circuit breakers at the window end: OPEN" in again.stdout  # the reason is kept in the state
