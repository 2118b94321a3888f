"""Producing the evidence bundle: papermill runs the proof notebook, then HTML and PDF.

The notebook does the analysis (through ``reliability.gate.proof``) and writes
``evidence.json``; this module only runs it and renders the result.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reliability import paths
from reliability.errors import ConfigurationError
from reliability.report import incomplete, screenshots
from reliability.report.incomplete import ReportError

FILES = ("report.ipynb", "report.html", "report.pdf", "evidence.json", "queries.json.gz", "evidence.intoto.json")
INPUTS = "inputs"  # the notebook, rule file, dashboard and JUnit files the proof ran with, as run
SCREENSHOTS = screenshots.FOLDER
RULE_SIBLINGS = ("recording.yml", "prometheus.yml")


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
    out = Path(out).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    incomplete.RUNNING[staging] = out
    try:
        bundle = _produce(parameters, staging, notebook=notebook, progress=progress, snapshot=snapshot,
                          cwd=cwd or paths.repo())
        if incomplete.interrupted.is_set():  # a Ctrl-C a library swallowed: nothing finished may appear
            raise KeyboardInterrupt
    except BaseException as exc:
        incomplete.abandon(staging, out, exc)
        raise
    finally:
        incomplete.RUNNING.pop(staging, None)
    out.mkdir(exist_ok=True)
    for folder in (INPUTS, SCREENSHOTS):
        shutil.rmtree(out / folder, ignore_errors=True)
        if (staging / folder).is_dir():
            os.replace(staging / folder, out / folder)
    for name in [f for f in FILES if f != "evidence.json"] + ["evidence.json"]:  # its presence means done
        if (staging / name).exists():
            os.replace(staging / name, out / name)
    shutil.rmtree(staging, ignore_errors=True)
    return Bundle(out, bundle.evidence, bundle.timings)


@contextlib.contextmanager
def _kernel_stderr(log: Path) -> Iterator[None]:
    """The kernel's stderr (its transport warning, tracebacks when interrupted) goes to ``log``.

    The kernel inherits file descriptor 2 when papermill starts it, so fd 2 points at the log
    for the run, while this process's ``sys.stderr`` (the progress lines) still reaches the terminal.
    """
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    terminal, sys.stderr = sys.stderr, open(os.dup(saved), "w", encoding="utf-8", errors="replace")  # noqa: SIM115 - closed in finally
    with open(log, "ab") as fh:
        os.dup2(fh.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.close()
            sys.stderr = terminal
            os.dup2(saved, 2)
            os.close(saved)


@contextlib.contextmanager
def _relayed(file: Path, say: Callable[[str], None], *, quiet: bool = False) -> Iterator[None]:
    """Pass the kernel's progress lines (written to ``file``, see ``proof.progress_from_env``) to ``say``.

    A thread follows the file while the notebook runs; the kernel inherits the variable naming it.
    ``quiet``: the kernel only replays answers gathered here, which already said their progress.
    """
    from reliability.gate.proof import PROGRESS_VARIABLE

    if quiet:
        yield
        return
    file.touch()
    stop = threading.Event()

    def follow() -> None:
        with open(file, encoding="utf-8") as fh:
            while True:
                line = fh.readline()
                if line.endswith("\n"):
                    say(line.rstrip("\n"))
                elif stop.is_set():
                    return
                else:
                    stop.wait(0.2)

    saved = os.environ.get(PROGRESS_VARIABLE)
    os.environ[PROGRESS_VARIABLE] = str(file)
    thread = threading.Thread(target=follow, name="kernel-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        if saved is None:
            os.environ.pop(PROGRESS_VARIABLE, None)
        else:
            os.environ[PROGRESS_VARIABLE] = saved
        file.unlink(missing_ok=True)


@contextlib.contextmanager
def _gather(parameters: dict[str, Any], notebook: Path, snap_out: Path, cwd: Path,
            say: Callable[[str], None], shots: Path | None) -> Iterator[None]:
    """Ask Prometheus every question of the proof here, while papermill starts the kernel.

    The answers go to the bundle's snapshot (``snap_out``); the kernel, started with
    ``RELIABILITY_SNAPSHOT`` naming it, waits for the file and replays them, so it does no
    network and the report is the same as one re-rendered from the bundle. A failure here is
    written beside the snapshot, and the kernel stops with it (a broken run, never a verdict).
    Meanwhile another thread takes the screenshots into ``shots``; the snapshot is written after
    both, so the kernel finds the pictures' manifest.
    """
    from reliability.gate import proof
    from reliability.source import SNAPSHOT_VARIABLE, SNAPSHOT_WAIT_VARIABLE, from_env
    from reliability.source.snapshot import failed_marker

    values = {**_notebook_defaults(notebook), **parameters}

    # The client is made before RELIABILITY_SNAPSHOT is set: it must ask the server, not the snapshot.
    client = from_env(deadline_s=float(values["deadline_s"]),
                      max_answer_bytes=int(float(values["max_answer_mb"]) * 2**20))

    def gather() -> None:
        try:
            params = proof.params_from(values, root=cwd)
            pictures = screenshots.start(params, client.url, shots, say) if shots else None
            proof.run(params, client, progress=say)
            if pictures is not None:
                pictures.join()
            client.save_snapshot(snap_out)
        except BaseException as exc:  # the kernel must hear of it, or it would wait for nothing
            failed_marker(snap_out).write_text(f"{type(exc).__name__}: {exc}\n")

    saved = {k: os.environ.get(k) for k in (SNAPSHOT_VARIABLE, SNAPSHOT_WAIT_VARIABLE)}
    os.environ[SNAPSHOT_VARIABLE] = str(snap_out)
    os.environ[SNAPSHOT_WAIT_VARIABLE] = str(float(values["deadline_s"]) + 60)
    thread = threading.Thread(target=gather, name="gather-answers", daemon=True)
    thread.start()
    try:
        yield
    finally:
        thread.join(timeout=5)
        failed_marker(snap_out).unlink(missing_ok=True)
        for k, v in saved.items():
            os.environ.pop(k, None)
            if v is not None:
                os.environ[k] = v


def _notebook_defaults(notebook: Path) -> dict[str, Any]:
    """The values of the notebook's ``parameters`` cell, the way papermill finds that cell.

    Read with json and ast, not papermill: importing papermill (nbformat, jsonschema) takes a
    second or more, and the answers are gathered during it.
    """
    import ast

    cells = json.loads(notebook.read_text())["cells"]
    cell = next((c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if cell is None:
        raise ReportError(f"{notebook} has no cell tagged 'parameters'")
    source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    return {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(source).body
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)}


def _execute(notebook: Path, nb_out: Path, parameters: dict[str, Any], cwd: Path) -> None:
    """papermill, imported here: the answers are already being gathered while it loads."""
    import papermill as pm

    try:
        pm.execute_notebook(str(notebook), str(nb_out), parameters=parameters, kernel_name="python3",
                            cwd=str(cwd), progress_bar=False, log_output=False)
    except pm.PapermillExecutionError as exc:
        raise ReportError(f"the proof notebook failed in cell {exc.cell_index} ({exc.ename}: {exc.evalue})") from exc


def _stamped(parameters: dict[str, Any]) -> dict[str, Any]:
    """When and from which build: recorded as parameters, so a re-render shows the original's."""
    from datetime import datetime, timezone

    from reliability.report.decision import build_id

    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {**parameters, "generated_at": parameters.get("generated_at") or stamp,
            "build": parameters.get("build") or build_id()[0]}


def _produce(parameters: dict[str, Any], out: Path, *, notebook: Path, progress: Callable[[str], None] | None,
             snapshot: bool, cwd: Path) -> Bundle:
    say = progress or (lambda _msg: None)
    nb_out, html_out, pdf_out, ev_out, snap_out = (out / f for f in FILES[:5])
    timings: dict[str, float] = {}
    t = time.perf_counter()
    # A snapshot imposed from outside (RELIABILITY_SNAPSHOT) is what the kernel replays: nothing to gather.
    from reliability.source import SNAPSHOT_VARIABLE

    gather = snapshot and not os.environ.get(SNAPSHOT_VARIABLE)
    shots = screenshots.folder(parameters, out / SCREENSHOTS, gather)
    parameters = {**parameters, "screenshots": shots}
    gathering = (_gather(parameters, notebook, snap_out, cwd, say, Path(shots) if shots not in ("", "off") else None)
                 if gather else contextlib.nullcontext())
    say("notebook: starting the kernel (papermill)")
    with gathering, _kernel_stderr(out / "kernel.log"), _relayed(out / "progress.log", say, quiet=gather):
        # The CLI maps verdicts to its own exit codes: the notebook must not fail on NO-GO here.
        _execute(notebook, nb_out, {**_stamped(parameters), "fail_unless_go": False, "evidence_path": str(ev_out),
                                    "snapshot_path": str(snap_out) if snapshot else ""}, cwd)
    timings["notebook"] = time.perf_counter() - t
    say(f"notebook: done ({timings['notebook']:.1f} s)")
    if not ev_out.exists():
        raise ReportError(f"the proof notebook ran but wrote no {ev_out.name}")
    evidence = _record_inputs(out, json.loads(ev_out.read_text()), notebook)
    ev_out.write_text(json.dumps(evidence, indent=2, default=str) + "\n")
    from reliability.report import attest, i18n, render

    t = time.perf_counter()
    lang = parameters.get("lang", "en")
    render.to_html(nb_out, html_out, lang=lang)
    timings["html"] = time.perf_counter() - t
    say(f"HTML: {html_out.name} ({timings['html']:.1f} s)")
    t = time.perf_counter()
    render.to_pdf(html_out, pdf_out, title=i18n.texts(lang)["title"].format(candidate=evidence["candidate"]),
                  verdict=evidence["verdict"], lang=lang)
    timings["pdf"] = time.perf_counter() - t
    say(f"PDF: {pdf_out.name} ({timings['pdf']:.1f} s)")
    _, signed = attest.write(out, evidence)
    say(f"wrote the in-toto Statement ({'signed' if signed else 'unsigned: set ' + attest.KEY_VARIABLE + ' to sign'})")
    return Bundle(out, evidence, timings)


def _record_inputs(out: Path, evidence: dict[str, Any], notebook: Path) -> dict[str, Any]:
    """Copy the files the proof read into ``inputs/``, so a re-render uses them and not today's checkout."""
    from reliability.report.evidence import sha256

    inputs = evidence["inputs"]
    inputs["notebook"] = {"path": str(notebook), "sha256": sha256(notebook)}
    entries = [("notebook", inputs["notebook"]), ("rules", inputs["rules"]), ("dashboard", inputs["dashboard"]),
               *((f"junit/{i}", e) for i, e in enumerate(inputs["junit"]))]
    for where, entry in entries:
        source = Path(entry["path"])
        if entry.get("sha256") and source.is_file():
            target = out / INPUTS / where / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            entry["recorded"] = str(target.relative_to(out))
    from reliability.source.screenshots import read

    manifest = read(out / SCREENSHOTS)
    if manifest is not None:  # the pictures, by their place in the bundle
        evidence["screenshots"] = {**manifest, "shots": [{k: v for k, v in s.items() if k != "path"} | {
            "recorded": f"{SCREENSHOTS}/{s['file']}"} for s in manifest["shots"]]}
    # The monitoring checks also read the recording rules and prometheus.yml beside the rule file.
    rules = inputs["rules"]
    if rules.get("recorded"):
        rules["siblings"] = {}
        for name in RULE_SIBLINGS:
            sibling = Path(rules["path"]).parent / name
            if sibling.is_file():
                shutil.copyfile(sibling, out / Path(rules["recorded"]).parent / name)
                rules["siblings"][name] = sha256(sibling)
    return evidence


def recorded_inputs(bundle_dir: Path, evidence: dict[str, Any]) -> dict[str, Any]:
    """The recorded notebook, rules, dashboard and JUnit files, each checked against its sha256."""
    from reliability.report.evidence import sha256

    inputs = evidence.get("inputs") or {}
    entries = [inputs.get("notebook"), inputs.get("rules"), inputs.get("dashboard"), *(inputs.get("junit") or [])]
    if not all(e and e.get("recorded") for e in entries):
        raise ConfigurationError(f"{bundle_dir} does not record its inputs (notebook, rules, dashboard, JUnit); it was "
                                 "written by an older version: re-run the proof to make a bundle that can be "
                                 "re-rendered")
    siblings = [{"recorded": str(Path(inputs["rules"]["recorded"]).parent / name), "sha256": digest}
                for name, digest in (inputs["rules"].get("siblings") or {}).items()]
    for e in [*entries, *siblings]:
        f = bundle_dir / e["recorded"]
        if sha256(f) != e["sha256"]:
            raise ConfigurationError(f"{f} does not match the sha256 recorded in evidence.json ({e['sha256']}): the "
                                     "bundle was changed after it was written; refusing to render it")
    return {"notebook": bundle_dir / inputs["notebook"]["recorded"],
            "rules": str(bundle_dir / inputs["rules"]["recorded"]),
            "dashboard": str(bundle_dir / inputs["dashboard"]["recorded"]),
            "junit": [str(bundle_dir / e["recorded"]) for e in inputs["junit"]]}


def rerender(bundle_dir: Path, out: Path, *, progress: Callable[[str], None] | None = None) -> Bundle:
    """Re-create a report from its query snapshot, with no Prometheus (for auditors)."""
    import os

    import nbformat

    snap = bundle_dir / "queries.json.gz"
    nb_file = bundle_dir / "report.ipynb"
    ev_file = bundle_dir / "evidence.json"
    for f in (snap, nb_file, ev_file):
        if not f.exists():
            raise ConfigurationError(f"{f} does not exist: pass a directory written by `reliability proof`")
    from reliability.report.evidence import sha256

    try:
        evidence = json.loads(ev_file.read_text())
        recorded = evidence["inputs"]["snapshot"]["sha256"]
    except (ValueError, KeyError, TypeError):
        raise ConfigurationError(f"{ev_file} does not record the snapshot's sha256; it is not a bundle "
                                 "written by `reliability proof`") from None
    if sha256(snap) != recorded:
        raise ConfigurationError(f"{snap} does not match the sha256 recorded in {ev_file.name} "
                                 f"({recorded}): the bundle was changed after it was written; refusing to render it")
    files = recorded_inputs(bundle_dir, evidence)
    params = dict(nbformat.read(str(nb_file), as_version=4).metadata.get("papermill", {}).get("parameters", {}))
    params.pop("evidence_path", None)
    params.pop("snapshot_path", None)
    if params.get("screenshots") not in (None, "", "off"):
        params["screenshots"] = str(bundle_dir / SCREENSHOTS)
    notebook = files.pop("notebook")
    params.update(files)
    saved = {k: os.environ.pop(k, None) for k in ("PROMETHEUS_URL", "RELIABILITY_SNAPSHOT")}
    os.environ["RELIABILITY_SNAPSHOT"] = str(snap.resolve())
    try:
        return produce(params, out, notebook=notebook, progress=progress, snapshot=False, cwd=bundle_dir)
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None)
            if v is not None:
                os.environ[k] = v


def check_out_dir(out: Path, *, replace: bool = False) -> Path:
    """Refuse, before any work, an output path a report cannot safely go to.

    A symlink (the files would land wherever it points), an existing file, a folder holding a
    finished report (unless ``replace``), or a parent that cannot be made. Files are later
    renamed into place, so a symlink inside the folder is replaced, never followed.
    """
    if out.is_symlink():
        raise ConfigurationError(f"--out {out} is a symbolic link; give the real directory")
    if out.exists() and not out.is_dir():
        raise ConfigurationError(f"--out {out} exists and is not a directory")
    if (out / "evidence.json").exists() and not replace:
        raise ConfigurationError(f"--out {out} already holds a finished report; choose another directory "
                                 "or pass --replace")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"--out {out}: cannot create its parent ({exc.strerror}); choose a writable "
                                 "directory") from None
    if not os.access(out.parent, os.W_OK):
        raise ConfigurationError(f"--out {out}: {out.parent} is not writable; choose a writable directory")
    return out
