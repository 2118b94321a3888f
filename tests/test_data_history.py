"""The bundled history is the oracle of every other test, so it must be exactly what it claims."""
from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import lzma
import re
import sys
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path
from types import ModuleType
from typing import IO

import numpy as np
import pytest

from reliability.paths import DATA, GROUND_TRUTH, history_file

SAMPLE = re.compile(r'^([a-z_]+)\{(job="love-backend",instance="[^"]+"(?:,[a-z_]+="[^"]*")*)\} (\d+) (\d+)$')
MAX_BYTES = 20_000_000


def _epoch(text: str) -> int:
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp())


def _open(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix == ".gz" else lzma.open(path, "rb")


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("love_history_generator", DATA / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve string annotations through sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def truth() -> dict:
    return json.loads(GROUND_TRUTH.read_text())


@pytest.fixture(scope="module")
def history(truth: dict) -> dict:
    """One pass over the decompressed file: format problems and every http_requests_total series."""
    start, end = _epoch(truth["generator"]["start"]), _epoch(truth["generator"]["end"])
    problems: list[str] = []
    families: list[str] = []
    series_order: list[str] = []
    http: dict[str, tuple[list[int], list[int]]] = {}
    last_line = ""
    with _open(history_file()) as f:
        for n, raw in enumerate(f, 1):
            if len(problems) > 20:
                break
            line = raw.decode()
            last_line = line
            if not line.endswith("\n") or line.endswith("\r\n") or line == "\n":
                problems.append(f"line {n}: blank, CRLF or unterminated")
                continue
            line = line[:-1]
            if line.startswith("# TYPE "):
                families.append(line.split()[2])
                continue
            if line.startswith("#"):
                continue
            key, _, rest = line.rpartition(" ")
            key, _, value_text = key.rpartition(" ")
            if not series_order or series_order[-1] != key:
                # Full check once per series; its other lines differ only in value and timestamp.
                m = SAMPLE.match(line)
                if m is None or not m.group(1).startswith(families[-1]):
                    problems.append(f"line {n}: not a sample with job, instance, integer seconds: {line[:120]}")
                    continue
                series_order.append(key)
                name = m.group(1)
            if not (value_text.isdigit() and rest.isdigit() and start <= int(rest) <= end):
                problems.append(f"line {n}: value or timestamp not an integer in the history: {line[:120]}")
                continue
            value, ts = int(value_text), int(rest)
            if name == "http_requests_total":
                times, values = http.setdefault(key, ([], []))
                if times and ts <= times[-1]:
                    problems.append(f"line {n}: timestamps of {key} not increasing")
                times.append(ts)
                values.append(value)
    return {"problems": problems, "families": families, "series_order": series_order, "http": http,
            "last_line": last_line}


@pytest.mark.slow
def test_committed_history_is_what_the_generator_writes(tmp_path: Path, truth: dict) -> None:
    _generator().main(["--out", str(tmp_path)])
    committed = history_file()
    regenerated = tmp_path / committed.name
    assert regenerated.exists(), f"the generator writes {sorted(p.name for p in tmp_path.iterdir())}"
    assert hashlib.sha256(regenerated.read_bytes()).hexdigest() == hashlib.sha256(committed.read_bytes()).hexdigest()
    assert json.loads((tmp_path / "ground-truth.json").read_text()) == truth


def test_history_is_small_enough_to_commit() -> None:
    assert history_file().stat().st_size < MAX_BYTES


@pytest.mark.slow
def test_history_follows_the_openmetrics_rules(history: dict) -> None:
    assert history["problems"] == []
    assert history["last_line"] == "# EOF\n"
    assert len(history["families"]) == len(set(history["families"])), "a family's samples are split"
    assert len(history["series_order"]) == len(set(history["series_order"])), "a series' samples are split"


@pytest.mark.slow
def test_history_counts_match_the_ground_truth_in_every_window(history: dict, truth: dict) -> None:
    """Counter deltas in the file, read the way the generator documents them, give the exact truth."""
    start = _epoch(truth["generator"]["start"])
    for name, window in truth["windows"].items():
        a, b = _epoch(window["start"]), _epoch(window["end"])
        got: dict[str, dict[str, int]] = defaultdict(lambda: {"requests": 0, "errors_5xx": 0})
        for key, (times, values) in history["http"].items():
            t, v = np.array(times), np.array(values)
            # A series first seen after the start is a new process counting from zero; a drop is a reset.
            delta = np.diff(v, prepend=0 if t[0] > start else v[0])
            delta = np.where(delta < 0, v, delta)
            n = int(delta[(t > a) & (t <= b)].sum())
            version = re.search(r'version="([^"]+)"', key).group(1)
            got[version]["requests"] += n
            got[version]["errors_5xx"] += n if re.search(r'status="5', key) else 0
        expected = window["by_version"]
        assert {v: c for v, c in got.items() if c["requests"]} == expected, name


def test_windows_lie_on_scrapes_inside_the_history(truth: dict) -> None:
    gen = truth["generator"]
    start, end, step = _epoch(gen["start"]), _epoch(gen["end"]), gen["scrape_interval_s"]
    assert (end - start, step) == (14 * 86400, 30)
    required = {"full", "stable_week", "bad_deploy", "incident", "canary", "post_promote", "quiet_night"}
    assert required <= set(truth["windows"])
    for name, w in truth["windows"].items():
        a, b = _epoch(w["start"]), _epoch(w["end"])
        assert start <= a < b <= end, name
        assert (a - start) % step == 0 and (b - start) % step == 0, name


def test_window_totals_add_up(truth: dict) -> None:
    for name, w in truth["windows"].items():
        for key in ("requests", "errors_5xx"):
            assert sum(v[key] for v in w["by_version"].values()) == w["total"][key], (name, key)
        assert 0 <= w["total"]["errors_5xx"] <= w["total"]["requests"], name


def test_the_story_holds(truth: dict) -> None:
    w = truth["windows"]
    assert w["quiet_night"]["total"]["requests"] < 140
    bad = w["bad_deploy"]["total"]
    assert 0.04 <= bad["errors_5xx"] / bad["requests"] <= 0.12
    assert set(w["bad_deploy"]["by_version"]) == {"v1.9.0"}
    candidate = w["canary"]["by_version"]["v1.9.1"]
    assert 1 - candidate["errors_5xx"] / candidate["requests"] > 0.99
    assert set(w["canary"]["by_version"]) == {"v1.8.3", "v1.9.1"}
    assert set(w["post_promote"]["by_version"]) == {"v1.9.1"}
    stable = w["stable_week"]["total"]
    assert 1 - stable["errors_5xx"] / stable["requests"] > 0.995
    assert 0.04 <= truth["incidents"][0]["peak_5xx_ratio"] <= 0.2


def test_breakers_tell_the_designed_story(truth: dict) -> None:
    b = truth["breakers"]
    assert {name: (x["failure_threshold"], x["timeout_s"]) for name, x in b.items()} == {
        "db": (5, 60.0), "auth": (5, 30.0), "realtime": (3, 10.0), "storage": (5, 60.0)}
    for name, x in b.items():
        assert x["trips"] == sum(t["to"] == "open" for t in x["transitions"]), name
        assert x["open_at_end"] is False, name
        times = [t["time"] for t in x["transitions"]]
        assert times == sorted(times), name
    assert b["db"]["trips"] >= 3
    assert any(t["from"] == "half_open" and t["to"] == "open" for t in b["db"]["transitions"])
    assert all(truth["incidents"][0]["start"] <= t["time"] <= truth["incidents"][0]["end"]
               for t in b["db"]["transitions"])
    assert 2 <= b["realtime"]["sub_scrape_opens"] <= 3
    assert b["auth"]["trips"] >= 1
    assert b["storage"]["trips"] == 0


def test_cache_and_data_quality_are_recorded(truth: dict) -> None:
    clinics = truth["cache"]["by_clinic"]
    gap = truth["cache"]["gaps"][0]
    for clinic, c in clinics.items():
        missing = gap["updates_without_invalidation"] if clinic == gap["clinic"] else 0
        assert c["updates"] - c["invalidations"] == missing, clinic
    assert clinics[gap["clinic"]]["stale_reads"] > 100 * max(c["stale_reads"] for k, c in clinics.items()
                                                            if k != gap["clinic"])
    assert gap["end"] < truth["windows"]["bad_deploy"]["start"]
    for c in truth["cache"]["by_window"]["canary"].values():
        assert c["updates"] == c["invalidations"]
    (scrape_gap,) = truth["data_quality"]["scrape_gaps"]
    assert _epoch(scrape_gap["end"]) - _epoch(scrape_gap["start"]) >= 600
    reasons = [r["reason"] for r in truth["data_quality"]["counter_resets"]]
    assert any("restart" in r for r in reasons)
    kinds = [d["kind"] for d in truth["deploys"]]
    assert kinds[:3] == ["initial", "deploy", "rollback"] and "promote" in kinds
