"""Turn the bundled OpenMetrics history into cached TSDB blocks, once per file content.

Backfilling takes seconds and the result depends only on the file's bytes, so blocks are
cached under ``<cache>/blocks/<sha256>`` and reused. They are built in a temporary directory
next to their final place and renamed in one step, so a crash or Ctrl-C never leaves
half-written blocks where a later run would trust them.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import lzma
import os
import re
import shutil
import subprocess
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import BinaryIO

from reliability import paths
from reliability.errors import DataFileError
from reliability.source.embedded.process import find_binary

# promtool cuts blocks at multiples of the largest compatible range (2h * 3^k) not above
# this value, and re-reads the whole file once per block. 2000h gives one 1458h block for
# two weeks of history: measured 4.4 s instead of 6.4 s (200h) and ~90 s (default 2h).
MAX_BLOCK_DURATION = "2000h"
COMPLETE_MARKER = "backfill-complete.json"
_CHUNK = 1 << 20
# 1e11 s is the year 5138; 1e11 ms is 1973. Real histories sit far from both.
_MAX_SECONDS = 1e11
# Blocks ending after the year 3000 mean millisecond timestamps were read as seconds.
_MAX_BLOCK_MS = 32_503_680_000_000
_STALE_BUILD_S = 3600.0

_LABELS = rb'\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\}'
_SAMPLE = re.compile(
    rb"^[a-zA-Z_:][a-zA-Z0-9_:]*(?:" + _LABELS + rb")?[ \t]+(\S+)(?:[ \t]+([^\s#]+))?"
    rb"(?:[ \t]+#[ \t].*)?$"
)
_COMMENT = re.compile(rb"^# (?:TYPE|HELP|UNIT) [a-zA-Z_:][a-zA-Z0-9_:]*(?: .*)?$")


def backfill(data_file: Path, *, cache_dir: Path | None = None) -> Path:
    """Return a directory of TSDB blocks holding ``data_file``, building them only once.

    Parameters
    ----------
    data_file
        OpenMetrics text with timestamps in seconds, ending with ``# EOF``; compressed
        with gzip (``.gz``), xz (``.xz``) or plain.
    cache_dir
        Replaces :func:`reliability.paths.cache_dir`; blocks land in
        ``<cache_dir>/blocks/<sha256 of data_file>``.

    Returns
    -------
    Path
        The cached block directory. Treat it as read-only: Prometheus compacts blocks in
        place, so copy them before serving.

    Raises
    ------
    DataFileError
        The file is missing, corrupt, truncated or uses millisecond timestamps; no
        blocks are left in the cache for it.
    MissingBinaryError
        ``promtool`` is needed (cache miss) but not installed.
    """
    data_file = Path(data_file)
    if not data_file.is_file():
        raise DataFileError(
            "does not exist; generate the bundled history with `python data/generate.py` "
            "or pass the path of an OpenMetrics file",
            path=str(data_file),
        )
    digest = _sha256(data_file)
    root = Path(cache_dir if cache_dir is not None else paths.cache_dir()) / "blocks"
    final = root / digest
    if _is_complete(final, digest):
        return final
    promtool = find_binary("promtool")
    root.mkdir(parents=True, exist_ok=True)
    _remove_stale_builds(root)
    build = Path(tempfile.mkdtemp(prefix=f".build-{digest[:12]}-", dir=root))
    try:
        text = _plain_text(data_file, build)
        _run_promtool(promtool, text, build / "out", data_file)
        blocks = _check_blocks(build / "out", data_file, text)
        marker = {"sha256": digest, "source": str(data_file), "blocks": blocks,
                  "max_block_duration": MAX_BLOCK_DURATION}
        (build / "out" / COMPLETE_MARKER).write_text(json.dumps(marker, indent=1))
        if final.exists() and not _is_complete(final, digest):
            shutil.rmtree(final, ignore_errors=True)  # leftovers of another format version
        try:
            os.rename(build / "out", final)
        except OSError:
            # Another process finished the same file first; its blocks are as good as ours.
            if not _is_complete(final, digest):
                raise
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return final


def block_dirs(blocks: Path) -> list[Path]:
    """The block subdirectories (ULID names) of a backfill result, oldest first."""
    return sorted(p for p in blocks.iterdir() if p.is_dir() and (p / "meta.json").is_file())


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _is_complete(final: Path, digest: str) -> bool:
    try:
        marker = json.loads((final / COMPLETE_MARKER).read_text())
    except (OSError, ValueError):
        return False
    blocks = marker.get("blocks") or []
    return (marker.get("sha256") == digest
            and marker.get("max_block_duration") == MAX_BLOCK_DURATION
            and bool(blocks) and all((final / b / "meta.json").is_file() for b in blocks))


def _remove_stale_builds(root: Path) -> None:
    # A build directory outlives its process only if that process was killed outright.
    now = time.time()
    for old in root.glob(".build-*"):
        try:
            if now - old.stat().st_mtime > _STALE_BUILD_S:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            pass


def _open_source(data_file: Path) -> BinaryIO:
    if data_file.suffix == ".gz":
        return gzip.open(data_file, "rb")  # type: ignore[return-value]
    if data_file.suffix == ".xz":
        return lzma.open(data_file, "rb")  # type: ignore[return-value]
    return open(data_file, "rb")


def _plain_text(data_file: Path, build: Path) -> Path:
    """Decompress into a real file (promtool memory-maps its input) and pre-check it.

    The checks catch what promtool reports without a line number, or not at all
    (millisecond timestamps are accepted silently and produce blocks in the far future).
    """
    compressed = data_file.suffix in (".gz", ".xz")
    target = build / "input.om" if compressed else data_file
    checker = _TextChecker(data_file)
    try:
        sink = open(target, "wb") if compressed else nullcontext()  # noqa: SIM115 - entered just below
        with _open_source(data_file) as src, sink as dst:
            while chunk := src.read(_CHUNK):
                checker.feed(chunk)
                if dst is not None:
                    dst.write(chunk)
    except (EOFError, gzip.BadGzipFile, zlib.error, lzma.LZMAError) as exc:
        raise DataFileError(
            f"cannot be decompressed ({exc}); the file is truncated or corrupt — "
            "download or regenerate it (`python data/generate.py`)",
            path=str(data_file),
        ) from None
    checker.finish()
    return target


class _TextChecker:
    """Streaming pre-check: CRLF, blank lines, final ``# EOF``, timestamp units."""

    # Timestamps are sampled (the head, every few MiB, the tail) so the check stays far
    # cheaper than promtool's own parse; generators write one unit throughout.
    _SAMPLE_EVERY = 4
    _SAMPLE_LINES = 200

    def __init__(self, data_file: Path) -> None:
        self.path = str(data_file)
        self.lines = 0  # newlines before the current chunk
        self.prev_last = b"\n"  # so a blank first line is caught like any other
        self.tail = b""
        self.chunks = 0

    def feed(self, chunk: bytes) -> None:
        cr = chunk.find(b"\r")
        if cr >= 0:
            self._fail("has Windows (CRLF) line endings; OpenMetrics needs \\n — convert it "
                       "with `dos2unix`", chunk, cr)
        # The blank line starts right after the first newline of the pair; with the
        # previous chunk's last byte prepended, that is chunk offset `blank`.
        blank = (self.prev_last + chunk).find(b"\n\n")
        if blank >= 0:
            self._fail("has a blank line, which OpenMetrics forbids; remove it", chunk, blank)
        if self.chunks % self._SAMPLE_EVERY == 0:
            pieces = chunk.split(b"\n")
            first = 1 if self.chunks and self.prev_last != b"\n" else 0
            self._check_timestamps(pieces[first:-1][: self._SAMPLE_LINES], self.lines + first)
        self.lines += chunk.count(b"\n")
        self.prev_last = chunk[-1:]
        self.tail = (self.tail + chunk)[-_CHUNK:]
        self.chunks += 1

    def finish(self) -> None:
        if self.chunks == 0:
            raise DataFileError("is empty; expected OpenMetrics text ending with '# EOF'",
                                path=self.path)
        complete = self.tail.endswith(b"\n")
        pieces = (self.tail[:-1] if complete else self.tail).split(b"\n")
        if pieces[-1] != b"# EOF":
            last_line = self.lines + (0 if complete else 1)
            raise DataFileError(
                "is truncated: the last line is not '# EOF' — download or regenerate it "
                "(`python data/generate.py`)", path=self.path, line=last_line)
        # pieces[0] may start mid-line; pieces[-1] is '# EOF'.
        first_line = self.lines - len(pieces) + (0 if complete else 1)
        keep = pieces[1:-1][-self._SAMPLE_LINES:]
        self._check_timestamps(keep, first_line + len(pieces) - 1 - len(keep))

    def _check_timestamps(self, lines: list[bytes], before: int) -> None:
        """Reject missing or millisecond timestamps; ``before`` lines precede ``lines[0]``."""
        for i, line in enumerate(lines, start=before + 1):
            if not line or line.startswith(b"#"):
                continue
            m = _SAMPLE.match(line)
            if m is None:
                continue  # a syntax error: promtool rejects it and the fallback finds the line
            if m.group(2) is None:
                raise DataFileError("sample has no timestamp; backfilling needs a timestamp "
                                    "in seconds on every sample", path=self.path, line=i)
            try:
                value = float(m.group(2))
            except ValueError:
                continue
            if abs(value) >= _MAX_SECONDS:
                raise DataFileError(
                    f"timestamp {m.group(2).decode(errors='replace')} looks like milliseconds; "
                    "OpenMetrics timestamps are seconds — divide them by 1000",
                    path=self.path, line=i)

    def _fail(self, message: str, chunk: bytes, offset: int) -> None:
        line = self.lines + chunk.count(b"\n", 0, offset) + 1
        raise DataFileError(message, path=self.path, line=line)


def _run_promtool(promtool: str, text: Path, out: Path, data_file: Path) -> None:
    cmd = [promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet",
           f"--max-block-duration={MAX_BLOCK_DURATION}", str(text), str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if done.returncode == 0:
        return
    reason = (done.stderr.strip() or done.stdout.strip() or f"exit status {done.returncode}")
    reason = reason.splitlines()[-1]
    raise DataFileError(
        f"promtool could not backfill it ({reason}); fix the line or regenerate the file "
        "(`python data/generate.py`)",
        path=str(data_file), line=_first_bad_line(text))


def _first_bad_line(text: Path) -> int | None:
    """Find the first line promtool chokes on or misreads; only runs after a failure."""
    with open(text, "rb") as fh:
        for number, line in enumerate(_lines(fh), start=1):
            if line == b"# EOF":
                return None
            if line.startswith(b"#"):
                if not _COMMENT.match(line):
                    return number
                continue
            m = _SAMPLE.match(line)
            if m is None or m.group(2) is None:
                return number
            try:
                float(m.group(1))
                if abs(float(m.group(2))) >= _MAX_SECONDS:
                    return number
            except ValueError:
                return number
    return None


def _lines(fh: BinaryIO) -> Iterator[bytes]:
    for raw in fh:
        yield raw.rstrip(b"\n")


def _check_blocks(out: Path, data_file: Path, text: Path) -> list[str]:
    blocks = block_dirs(out) if out.is_dir() else []
    if not blocks:
        raise DataFileError("holds no samples; expected OpenMetrics samples before '# EOF'",
                            path=str(data_file))
    for block in blocks:
        meta = json.loads((block / "meta.json").read_text())
        if meta["maxTime"] > _MAX_BLOCK_MS:
            raise DataFileError(
                "has timestamps after the year 3000, i.e. milliseconds where seconds are "
                "expected — divide them by 1000", path=str(data_file),
                line=_first_bad_line(text))
    return [b.name for b in blocks]
