"""What every benchmark needs: medians, child-process measurements, Markdown tables.

Peak memory is a child process' high-water RSS (VmHWM) minus its RSS after imports, because a
process' high-water mark never goes down: each measured run gets a fresh interpreter.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SCRATCH = Path(os.environ.get("BENCH_TMP", "/tmp/love-bench"))


def cli(run: Callable[..., list[Table]], doc: str, argv: list[str] | None = None) -> int:
    """``python -m benchmarks.<module> [--quick]``: run one benchmark, print its tables."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (still medians)")
    args = parser.parse_args(argv)
    for table in run(quick=args.quick):
        print(table.markdown(), flush=True)
    return 0


def proof_params(scenario: str = "healthy-canary") -> Any:
    """The proof parameters of one of the demo's scenarios, as ``reliability demo`` runs them."""
    from reliability.cli.gate import scenario_parameters
    from reliability.gate import proof
    from reliability.times import parse_time

    p = scenario_parameters(scenario)
    return proof.ProofParams(start=parse_time(p["start"]), end=parse_time(p["end"]), candidate=p["candidate"],
                             stable=p["stable"], junit=tuple(p["junit"]))


def runs(quick: bool, *, full: int = 5, fast: int = 3) -> int:
    """Repetitions: ``fast`` with --quick (still a median), ``full`` otherwise."""
    return fast if quick else full


def median(values: Sequence[float]) -> float:
    """The median, the statistic least moved by another job stealing the CPU for one run."""
    return float(statistics.median(values))


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall-clock seconds of one call and its result."""
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def rss_mb() -> float:
    """Current resident set size of this process in MB (Linux)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_rss_mb() -> float:
    """High-water RSS of this process in MB: VmHWM, not ru_maxrss.

    Linux carries ru_maxrss across exec, so a child started by a large benchmark process
    would report its parent's peak; VmHWM belongs to the new address space.
    """
    peak = server_peak_mb(os.getpid())
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def server_peak_mb(pid: int) -> float | None:
    """VmHWM of a server process in MB: its peak RSS since it started."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / 1e6
    except OSError:
        return None
    return None


def child(module: str, *args: str, timeout: float = 900.0) -> dict[str, Any]:
    """Run ``python -m module args`` and return the JSON object it prints last."""
    done = subprocess.run([PYTHON, "-m", module, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def emit(result: dict[str, Any]) -> None:
    """The last stdout line of a measuring child: its result as JSON."""
    print(json.dumps(result, default=str), flush=True)


class WireCounter:
    """Counts HTTP responses and their decoded body bytes, from a requests response hook."""

    def __init__(self) -> None:
        self.responses = 0
        self.body_bytes = 0

    def install(self, session: Any) -> WireCounter:
        session.hooks["response"].append(self._hook)
        return self

    def _hook(self, response: Any, *args: Any, **kwargs: Any) -> None:
        self.responses += 1
        self.body_bytes += len(response.content)  # requests reads the body right after anyway


class CountingProxy:
    """A TCP forwarder on 127.0.0.1 that counts the bytes a server sends: the real wire size.

    Prometheus answers gzip-compressed and chunked, so neither Content-Length nor the
    decoded body says what crossed the network; counting at the socket does.
    """

    def __init__(self, target_url: str) -> None:
        import socket
        import threading
        from urllib.parse import urlsplit

        parts = urlsplit(target_url)
        self._target = (parts.hostname, parts.port)
        self._lock = threading.Lock()
        self.down_bytes = 0
        self.up_bytes = 0
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while not self._stop:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self._target)
            threading.Thread(target=self._pipe, args=(conn, upstream, "up"), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, conn, "down"), daemon=True).start()

    def _pipe(self, src: Any, dst: Any, direction: str) -> None:
        try:
            while data := src.recv(1 << 16):
                with self._lock:
                    if direction == "down":
                        self.down_bytes += len(data)
                    else:
                        self.up_bytes += len(data)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(2)

    def close(self) -> None:
        self._stop = True
        self._server.close()


@dataclass
class Table:
    """A Markdown table with a title and notes, printed and written into RESULTS.md."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    notes: str = ""

    def markdown(self) -> str:
        head = f"| {' | '.join(self.columns)} |\n|{'|'.join('---' for _ in self.columns)}|\n"
        body = "".join(f"| {' | '.join(_cell(v) for v in row)} |\n" for row in self.rows)
        notes = f"\n{self.notes.strip()}\n" if self.notes else ""
        return f"### {self.title}\n\n{head}{body}{notes}"


def _cell(v: Any) -> str:
    if isinstance(v, float):
        if v != v:
            return "–"
        return f"{v:,.3f}" if abs(v) < 10 else f"{v:,.1f}" if abs(v) < 1000 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return "–" if v is None else str(v)


def mb(n_bytes: float) -> float:
    return n_bytes / 1e6


def machine() -> str:
    """CPU model, cores and load, for the results header."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{model}, {os.cpu_count()} cores, load average at start {load}"
