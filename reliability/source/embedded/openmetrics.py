"""Streaming the bundled OpenMetrics history: decompressed in large pieces, samples cut to a window.

VictoriaMetrics imports Prometheus text with millisecond timestamps; this turns each
OpenMetrics sample line into that form while keeping memory flat on ~400 MB of text.
"""
from __future__ import annotations

import gzip
import lzma
import math
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from reliability.errors import DataFileError

_READ_BYTES = 16 << 20

_MALFORMED = b"\0malformed"
# Seconds since 1970 have had 10 digits since 2001 and keep them until 2286.
_DIGITS = 10


def _sample_ms(line: bytes, lo: int | None, hi: int | None) -> bytes | None:
    """``name{labels} value ts_ms\\n`` when ``lo <= ts <= hi``, else None; _MALFORMED if no ts."""
    if b" # {" in line:  # an OpenMetrics exemplar: not part of the sample
        line = line[:line.index(b" # {")]
    head, _, ts = line.rstrip().rpartition(b" ")
    labels_end = head.rfind(b"}")
    value = head[labels_end + 1:] if labels_end >= 0 else head.partition(b" ")[2]
    if not value.strip():
        return _MALFORMED  # only "name value": no timestamp, which would be imported as "now"
    if len(ts) == _DIGITS and ts.isdigit():
        # Fast path: equal-length digit strings compare like the numbers they spell.
        if (lo is not None and ts < b"%d" % lo) or (hi is not None and ts > b"%d" % hi):
            return None
        return head + b" " + ts + b"000\n"
    try:
        t = float(ts)
    except ValueError:
        return _MALFORMED
    if not math.isfinite(t):
        return _MALFORMED
    if (lo is not None and t < lo) or (hi is not None and t > hi):
        return None
    return head + b" %d\n" % round(t * 1000)


def _chunks(path: Path) -> Iterator[bytes]:
    """The decompressed file in large pieces that end on line boundaries."""
    rest = b""
    with _open(path) as fh:
        while True:
            try:
                block = fh.read(_READ_BYTES)
            except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
                raise DataFileError(f"is corrupt or truncated ({type(exc).__name__}: {exc})",
                                    path=str(path)) from None
            if not block:
                break
            block = rest + block
            cut = block.rfind(b"\n") + 1
            if cut == 0:
                rest = block
                continue
            rest = block[cut:]
            yield block[:cut - 1]
    if rest:
        yield rest


def _open(path: Path) -> BinaryIO:
    try:
        if path.suffix == ".gz":
            return gzip.open(path, "rb")  # type: ignore[return-value]
        if path.suffix == ".xz":
            return lzma.open(path, "rb")  # type: ignore[return-value]
        return open(path, "rb")
    except OSError as exc:
        raise DataFileError(f"cannot be read ({exc})", path=str(path)) from None
