"""Where `make report` spends its time, against the floor of the same tools doing nothing.

Phases: Prometheus start (cold = empty block cache, so promtool backfills; warm = cached
blocks), the analysis (``proof.run`` in-process: the first run right after start, then a
steady one), and ``report.produce``'s own timings (papermill, HTML, PDF) for the
healthy-canary scenario. The floor is papermill on a notebook with one empty cell plus
the HTML and PDF of that empty notebook through ``reliability.report.render``.
"""
from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import ROOT, SCRATCH, Table, cli, median, proof_params, runs

SCENARIO = "healthy-canary"


def _empty_notebook(path: Path) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("", metadata={"tags": ["parameters"]})]
    nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    nbformat.write(nb, str(path))
    return path


def floor(out: Path) -> dict[str, float]:
    """papermill + HTML + PDF of an empty notebook: the cost of the tools themselves."""
    import papermill as pm

    from reliability.report import render

    src = _empty_notebook(out / "empty.ipynb")
    t = time.perf_counter()
    pm.execute_notebook(str(src), str(out / "empty-out.ipynb"), parameters={}, kernel_name="python3",
                        cwd=str(ROOT), progress_bar=False, log_output=False)
    t1 = time.perf_counter()
    render.to_html(out / "empty-out.ipynb", out / "empty.html")
    t2 = time.perf_counter()
    render.to_pdf(out / "empty.html", out / "empty.pdf", title="empty", verdict="INCONCLUSIVE")
    t3 = time.perf_counter()
    return {"notebook": t1 - t, "html": t2 - t1, "pdf": t3 - t2}


FLOOR_SCRIPT = """
import sys
from pathlib import Path
import papermill as pm
from reliability.report import render
out = Path(sys.argv[1])
pm.execute_notebook(sys.argv[2], str(out / "empty-out.ipynb"), parameters={}, kernel_name="python3",
                    progress_bar=False, log_output=False)
render.to_html(out / "empty-out.ipynb", out / "empty.html")
render.to_pdf(out / "empty.html", out / "empty.pdf", title="empty", verdict="INCONCLUSIVE")
"""


def as_a_user(*, quick: bool = False) -> Table:
    """``reliability proof`` as a user runs it (a new process, warm server) against the floor run the same way.

    The floor is a new process that imports papermill and the renderer, runs an empty notebook and
    makes its HTML and PDF. The two alternate, so another job's load hits both; medians.
    """
    import os
    import subprocess

    from reliability.cli.gate import scenario_parameters
    from reliability.gate import proof
    from reliability.source.embedded import EmbeddedPrometheus
    from reliability.source.prom import PrometheusClient

    n = runs(quick, full=5, fast=3)
    work = SCRATCH / "as-a-user"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    empty = _empty_notebook(work / "empty.ipynb")
    p = scenario_parameters(SCENARIO)
    exe = Path(sys.executable).parent / "reliability"
    times: dict[str, list[float]] = {"proof": [], "floor": []}
    with EmbeddedPrometheus() as prom:
        env = {**os.environ, "PROMETHEUS_URL": prom.url}
        proof.run(proof.params_from(p), PrometheusClient(prom.url))  # warm: rules evaluated, Alertmanager found
        for i in range(n):
            t = time.perf_counter()
            subprocess.run([str(exe), "proof", "--start", p["start"], "--end", p["end"], "--candidate",
                            p["candidate"], "--stable", p["stable"], "--junit", *p["junit"],
                            "--out", str(work / f"proof-{i}")], env=env, cwd=ROOT, check=False,
                           capture_output=True)
            times["proof"].append(time.perf_counter() - t)
            (work / f"floor-{i}").mkdir()
            t = time.perf_counter()
            subprocess.run([sys.executable, "-c", FLOOR_SCRIPT, str(work / f"floor-{i}"), str(empty)], cwd=ROOT,
                           check=True, capture_output=True)
            times["floor"].append(time.perf_counter() - t)
    proof_s, floor_s = median(times["proof"]), median(times["floor"])
    return Table(f"The demo proof as a user runs it, against the floor (median of {n}, alternated)",
                 ["run", "time s", "ratio to floor"],
                 [["`reliability proof` (healthy canary, warm Prometheus, new process)", proof_s, proof_s / floor_s],
                  ["floor: papermill on an empty notebook + HTML + PDF (new process)", floor_s, 1.0]],
                 notes=("Per run, proof s: " + ", ".join(f"{x:.2f}" for x in times["proof"]) +
                        "; floor s: " + ", ".join(f"{x:.2f}" for x in times["floor"]) + "."))


def run(*, quick: bool = False) -> list[Table]:
    """Measure every phase ``runs`` times; medians; the ratio of the full report to the floor."""
    import os

    from reliability.cli.gate import scenario_parameters
    from reliability.gate import proof
    from reliability.paths import history_file
    from reliability.report.bundle import produce
    from reliability.source.embedded import EmbeddedPrometheus, backfill
    from reliability.source.prom import PrometheusClient

    n = runs(quick, full=3, fast=3)
    work = SCRATCH / "report"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    m: dict[str, list[float]] = {}

    def add(key: str, value: float) -> None:
        m.setdefault(key, []).append(value)

    for _ in range(n):  # cold: a fresh cache directory means promtool backfills
        cold = Path(tempfile.mkdtemp(prefix="cold-", dir=work))
        t = time.perf_counter()
        with EmbeddedPrometheus(cache_dir=cold):
            add("start_cold", time.perf_counter() - t)
        shutil.rmtree(cold, ignore_errors=True)
    warm = work / "warm-cache"
    backfill(history_file(), cache_dir=warm)
    params = proof_params(SCENARIO)
    for _ in range(n):
        t = time.perf_counter()
        with EmbeddedPrometheus(cache_dir=warm) as prom:
            add("start_warm", time.perf_counter() - t)
            t = time.perf_counter()
            proof.run(params, PrometheusClient(prom.url))
            add("analysis_first", time.perf_counter() - t)
            t = time.perf_counter()
            proof.run(params, PrometheusClient(prom.url))
            add("analysis", time.perf_counter() - t)
    with EmbeddedPrometheus(cache_dir=warm) as prom:
        old = os.environ.get("PROMETHEUS_URL")
        os.environ["PROMETHEUS_URL"] = prom.url
        try:
            proof.run(params, PrometheusClient(prom.url))  # Alertmanager discovered: steady state
            for i in range(n):
                b = produce(scenario_parameters(SCENARIO), work / f"bundle-{i}")
                for k, v in b.timings.items():
                    add(f"produce_{k}", v)
        finally:
            if old is None:
                os.environ.pop("PROMETHEUS_URL", None)
            else:
                os.environ["PROMETHEUS_URL"] = old
    for i in range(n):
        out = work / f"floor-{i}"
        out.mkdir()
        for k, v in floor(out).items():
            add(f"floor_{k}", v)
    med = {k: median(v) for k, v in m.items()}
    full = med["produce_notebook"] + med["produce_html"] + med["produce_pdf"]
    base = med["floor_notebook"] + med["floor_html"] + med["floor_pdf"]
    rows = [
        ["Prometheus start, cold (promtool backfill, empty cache)", med["start_cold"], "", ""],
        ["Prometheus start, warm (cached blocks copied)", med["start_warm"], "", ""],
        ["analysis `proof.run`, first run after start", med["analysis_first"], "", ""],
        ["analysis `proof.run`, steady", med["analysis"], "", ""],
        ["papermill (kernel + imports + analysis + figures)", med["produce_notebook"], med["floor_notebook"],
         med["produce_notebook"] / med["floor_notebook"]],
        ["HTML (nbconvert lab template)", med["produce_html"], med["floor_html"],
         med["produce_html"] / med["floor_html"]],
        ["PDF (WeasyPrint)", med["produce_pdf"], med["floor_pdf"], med["produce_pdf"] / med["floor_pdf"]],
        ["**report (papermill + HTML + PDF)**", full, base, full / base],
    ]
    spread = {k: f"{min(v):.2f}–{max(v):.2f}" for k, v in m.items()}
    table = Table(
        f"`make report` phases, scenario {SCENARIO} (median of {n} runs)",
        ["phase", "time s", "floor s (empty notebook)", "ratio to floor"], rows,
        notes=("Ranges (min–max) per phase: " + ", ".join(f"{k} {v}" for k, v in spread.items()) + ". "
               "`make report` (`reliability demo`) = one warm or cold start + two scenarios' papermill, HTML "
               "and PDF; the first notebook after a start also pays the first-run cost in its analysis."))
    (work / "phases.json").write_text(json.dumps(m, indent=1))
    return [as_a_user(quick=quick), table]


if __name__ == "__main__":
    sys.exit(cli(run, __doc__))
