"""The gate as another repository's pipeline meets it: a wheel in a fresh virtualenv, an empty directory.

The wheel is built from this checkout and installed with ``--no-deps`` into a new virtualenv;
the dependencies come from the project's environment through a ``.pth`` line (a path line adds
the directory but runs none of its ``.pth`` hooks, so the checkout's editable install stays
out), and their data files (nbconvert's templates) through ``share/jupyter``. The commands then run
from an empty directory: nothing may come from the checkout.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

pytestmark = [pytest.mark.prometheus, pytest.mark.slow]
CHECKOUT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fresh virtualenv's bin/ with the wheel installed."""
    base = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                    "-w", str(base / "dist"), str(CHECKOUT)], check=True, capture_output=True, timeout=300)
    wheel = next((base / "dist").glob("love_reliability-*.whl"))
    env_dir = base / "venv"
    venv.create(env_dir, with_pip=False)
    bin_dir = env_dir / "bin"
    code = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = subprocess.run([str(bin_dir / "python"), "-c", code], check=True, capture_output=True,
                             text=True).stdout.strip()
    (Path(purelib) / "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    # The dependencies' data files (nbconvert's templates) as their own install would lay them out.
    (env_dir / "share").mkdir()
    (env_dir / "share" / "jupyter").symlink_to(Path(sys.prefix) / "share" / "jupyter")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(bin_dir / "python"), "install", "--no-deps",
                    "-q", str(wheel)], check=True, capture_output=True, timeout=300)
    return bin_dir


def reliability(bin_dir: Path, *args: str, cwd: Path, env: dict[str, str] | None = None,
                timeout: float = 300) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(bin_dir / "reliability"), *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**clean, **(env or {})})


def test_the_installed_package_is_the_wheel_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    code = "import reliability, reliability.paths as p; print(reliability.__file__); print(p.PROOF_NOTEBOOK.is_file())"
    out = subprocess.run([str(installed / "python"), "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         check=True).stdout.split()
    assert str(installed.parent) in out[0] and str(CHECKOUT) not in out[0]
    assert out[1] == "True"


def test_demo_runs_from_an_empty_directory(installed: Path, tmp_path: Path) -> None:
    r = reliability(installed, "demo", "--scenario", "healthy-canary", "--out", "reports", cwd=tmp_path,  # relative
                    env={"LOVE_SCREENSHOTS": "1"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Verdict: GO" in r.stdout
    bundle = tmp_path / "reports" / "healthy-canary"
    for f in ("report.ipynb", "report.html", "report.pdf", "evidence.json", "queries.json.gz",
              "screenshots/prometheus-graph.png", "screenshots/prometheus-alerts.png"):
        assert (bundle / f).stat().st_size > 0, f
    ev = json.loads((bundle / "evidence.json").read_text())
    assert str(CHECKOUT) not in json.dumps(ev["inputs"])  # rules, dashboard, notebook: the wheel's
    assert next(c for c in ev["checks"] if c["name"] == "Prometheus screenshots")["status"] == "PASS"


def test_proof_and_render_from_an_empty_directory(installed: Path, tmp_path: Path, prometheus_url: str,
                                                  truth: dict) -> None:
    w = truth["windows"]["canary"]
    junit = tmp_path / "results.xml"
    junit.write_text((CHECKOUT / "data" / "junit" / "v1.9.1.xml").read_text())
    (tmp_path / ".last-stable-version").write_text("v1.8.3\n")
    r = reliability(installed, "proof", "--start", w["start"], "--end", w["end"], "--candidate", "v1.9.1",
                    "--junit", "results.xml", "--out", "evidence", cwd=tmp_path,
                    env={"PROMETHEUS_URL": prometheus_url})
    assert r.returncode == 0, r.stdout + r.stderr
    ev = json.loads((tmp_path / "evidence" / "evidence.json").read_text())
    assert ev["verdict"] == "GO" and ev["stable"] == "v1.8.3"
    again = reliability(installed, "render", "evidence", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert (tmp_path / "evidence" / "rerendered" / "report.pdf").stat().st_size > 0


def test_prometheus_serves_the_bundled_history_from_an_empty_directory(installed: Path, tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    with subprocess.Popen([str(installed / "reliability"), "prometheus"], cwd=tmp_path, env=clean,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:  # Ctrl-C is handled once the server says so
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    assert "export PROMETHEUS_URL=http://127.0.0.1:" in "".join(lines)


def test_a_broken_environment_is_exit_4_and_leaves_no_report(installed: Path, tmp_path: Path, truth: dict) -> None:
    """A crash is the tool's failure (4), never NO-GO (1); what it made is named incomplete."""
    w = truth["windows"]["canary"]
    r = reliability(installed, "proof", "--start", w["start"], "--end", w["end"], "--candidate", "v1.9.1",
                    "--prometheus-url", "http://127.0.0.1:9", "--out", "evidence", cwd=tmp_path,
                    env={"RELIABILITY_SNAPSHOT": str(tmp_path / "missing.json.gz")})
    assert r.returncode == 4, r.stdout + r.stderr
    said = [line for line in r.stderr.splitlines() if line.startswith("reliability:")]
    assert len(said) == 1 and said[0].startswith("reliability: internal error:") and "missing.json.gz" in said[0]
    assert not (tmp_path / "evidence").exists()
    assert (tmp_path / "evidence.incomplete" / "INCOMPLETE.txt").exists()
    assert not (tmp_path / "evidence.incomplete" / "evidence.json").exists()


def test_a_backend_in_another_convention_adopts_the_gate_from_its_own_directory(installed: Path,
                                                                             tmp_path: Path) -> None:
    """As a team with an OpenTelemetry backend would: init in its names, the settings' [sli], no flags."""
    import sli_histories as h

    from reliability.source.sli import PRESETS

    r = reliability(installed, "init", "--job", h.JOB, "--sli", "otel", cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'preset = "otel"' in (tmp_path / "reliability.toml").read_text()
    truth = h.write(PRESETS["otel"], tmp_path / "history.om")
    assert truth["requests"] > 0
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    with subprocess.Popen([str(installed / "reliability"), "prometheus", "--data", "history.om"], cwd=tmp_path,
                          env=clean, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as server:
        assert server.stdout is not None
        url = next(line.split("=", 1)[1].strip() for line in server.stdout if "export PROMETHEUS_URL=" in line)
        try:
            found = reliability(installed, "sli", "--prometheus-url", url, cwd=tmp_path)
            assert found.returncode == 0 and "== otel: http_server_request_duration_seconds_count" in found.stdout
            env = {"PROMETHEUS_URL": url}
            window = ["--start", h.WINDOW[0].isoformat(), "--end", h.WINDOW[1].isoformat()]
            junit = str(CHECKOUT / "data" / "junit" / "v1.9.1.xml")
            go = reliability(installed, "proof", *window, "--candidate", h.CANDIDATE, "--stable", h.STABLE,
                             "--junit", junit, "--out", "ev", cwd=tmp_path, env=env)
            assert go.returncode == 0, go.stdout + go.stderr
            ev = json.loads((tmp_path / "ev" / "evidence.json").read_text())
            assert ev["reliability"]["sli"]["preset"] == "otel"
            assert ev["reliability"]["requests"] == pytest.approx(truth["requests"], rel=0.02)
            nogo = reliability(installed, "watch", "--candidate", h.FAILING, "--stable", h.STABLE, "--start",
                               h.WINDOW[0].isoformat(), "--deadline", h.WINDOW[1].isoformat(), "--junit", junit,
                               "--out", "watched", cwd=tmp_path, env=env)
            assert nogo.returncode == 1 and "Watch: NO-GO" in nogo.stdout, nogo.stdout + nogo.stderr
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(timeout=30)
    rules = subprocess.run(["promtool", "test", "rules", "alerts_test.yml"], cwd=tmp_path / "monitoring",
                           capture_output=True, text=True, timeout=120)
    assert rules.returncode == 0, rules.stdout + rules.stderr
