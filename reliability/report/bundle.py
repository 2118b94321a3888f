"""Producing the evidence bundle: papermill runs the proof notebook, then HTML and PDF.

The notebook does the analysis (through ``reliability.gate.proof``) and writes
``evidence.json``; this module only runs it and renders the result.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reliability import paths
from reliability.errors import ConfigurationError, ReliabilityError

FILES = ("report.ipynb", "report.html", "report.pdf", "evidence.json", "queries.json.gz")


@dataclass(frozen=True)
class Bundle:
    """Where the four evidence files are, and the verdict they carry."""

    out: Path
    evidence: dict[str, Any]
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return str(self.evidence["verdict"])

    @property
    def files(self) -> list[Path]:
        return [self.out / f for f in FILES if (self.out / f).exists()]


class ReportError(ReliabilityError):
    """The proof notebook failed to run (a bug or a broken environment, not a verdict)."""


def produce(parameters: dict[str, Any], out: Path, *, notebook: Path = paths.PROOF_NOTEBOOK,
            progress: Callable[[str], None] | None = None, snapshot: bool = True,
            cwd: Path | None = None) -> Bundle:
    """Run the proof notebook with ``parameters`` and write the evidence files into ``out``.

    The files are made in a hidden staging folder beside ``out`` and moved in only when all
    exist, ``evidence.json`` last; a run that fails leaves ``<out>.incomplete/`` (with the
    executed notebook and ``INCOMPLETE.txt`` saying why), never a folder that looks finished.
    ``cwd`` is the user's repository (the kernel resolves relative paths there). With
    ``snapshot=False`` (re-rendering from a snapshot) no new snapshot is written.
    """
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        bundle = _produce(parameters, staging, notebook=notebook, progress=progress, snapshot=snapshot,
                          cwd=cwd or paths.repo())
    except BaseException as exc:
        _abandon(staging, out, exc)
        raise
    out.mkdir(exist_ok=True)
    for name in [f for f in FILES if f != "evidence.json"] + ["evidence.json"]:  # its presence means done
        if (staging / name).exists():
            os.replace(staging / name, out / name)
    shutil.rmtree(staging, ignore_errors=True)
    return Bundle(out, bundle.evidence, bundle.timings)


def _abandon(staging: Path, out: Path, exc: BaseException) -> None:
    """Keep what a failed run made, under a name that says it is not a report."""
    failed = out.with_name(out.name + ".incomplete")
    shutil.rmtree(failed, ignore_errors=True)
    (staging / "evidence.json").unlink(missing_ok=True)
    why = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}"
    (staging / "INCOMPLETE.txt").write_text(f"This run did not finish, so this is not a report.\n{why}\n")
    os.replace(staging, failed)
    if isinstance(exc, ReportError):
        exc.args = (f"{exc.args[0]}; what it made is in {failed}",)


def _produce(parameters: dict[str, Any], out: Path, *, notebook: Path, progress: Callable[[str], None] | None,
             snapshot: bool, cwd: Path) -> Bundle:
    import papermill as pm

    say = progress or (lambda _msg: None)
    nb_out, html_out, pdf_out, ev_out, snap_out = (out / f for f in FILES)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    say("running the proof notebook (papermill)")
    try:
        pm.execute_notebook(
            str(notebook), str(nb_out), parameters={**parameters, "evidence_path": str(ev_out),
                                                        "snapshot_path": str(snap_out) if snapshot else ""},
            kernel_name="python3", cwd=str(cwd), progress_bar=False, log_output=False,
        )
    except pm.PapermillExecutionError as exc:
        raise ReportError(f"the proof notebook failed in cell {exc.cell_index} ({exc.ename}: {exc.evalue})") from exc
    timings["notebook"] = time.perf_counter() - t
    if not ev_out.exists():
        raise ReportError(f"the proof notebook ran but wrote no {ev_out.name}")
    evidence = json.loads(ev_out.read_text())
    from reliability.report import render

    t = time.perf_counter()
    say("rendering HTML")
    render.to_html(nb_out, html_out)
    timings["html"] = time.perf_counter() - t
    t = time.perf_counter()
    say("rendering PDF")
    render.to_pdf(html_out, pdf_out, title=f"love — monitoring proof for {evidence['candidate']}",
                  verdict=evidence["verdict"])
    timings["pdf"] = time.perf_counter() - t
    return Bundle(out, evidence, timings)


def rerender(bundle_dir: Path, out: Path, *, progress: Callable[[str], None] | None = None) -> Bundle:
    """Re-create a report from its query snapshot, with no Prometheus (for auditors)."""
    import os

    import nbformat

    snap = bundle_dir / "queries.json.gz"
    nb_file = bundle_dir / "report.ipynb"
    for f in (snap, nb_file):
        if not f.exists():
            raise ConfigurationError(f"{f} does not exist: pass a directory written by `reliability proof`")
    params = dict(nbformat.read(str(nb_file), as_version=4).metadata.get("papermill", {}).get("parameters", {}))
    params.pop("evidence_path", None)
    params.pop("snapshot_path", None)
    saved = {k: os.environ.pop(k, None) for k in ("PROMETHEUS_URL", "RELIABILITY_SNAPSHOT")}
    os.environ["RELIABILITY_SNAPSHOT"] = str(snap.resolve())
    try:
        return produce(params, out, progress=progress, snapshot=False, cwd=bundle_dir)
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None)
            if v is not None:
                os.environ[k] = v


def check_out_dir(out: Path) -> Path:
    """Refuse an output path that is an existing file, or whose parent cannot be made."""
    if out.exists() and not out.is_dir():
        raise ConfigurationError(f"--out {out} exists and is not a directory")
    parent = next((p for p in out.parents if p.exists()), None)
    if parent is None or not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ConfigurationError(f"--out {out}: cannot create it under {parent}; choose a writable directory")
    return out
