"""JUnit XML as pytest, Jest and Maven Surefire write it."""
from __future__ import annotations

from pathlib import Path

import pytest

from reliability import paths
from reliability.analysis.junit import read_junit
from reliability.errors import ConfigurationError

SUREFIRE = """<?xml version="1.0" encoding="UTF-8"?>
<testsuite name="love.QueueServiceTest" tests="4" failures="1" errors="1" skipped="1" time="0.4">
  <properties><property name="java.version" value="17"/></properties>
  <testcase name="updatesQueue" classname="love.QueueServiceTest" time="0.1"/>
  <testcase name="invalidatesCache" classname="love.QueueServiceTest" time="0.1">
    <failure message="expected CACHE_INVALIDATED event" type="java.lang.AssertionError">trace</failure>
  </testcase>
  <testcase name="talksToDb" classname="love.QueueServiceTest" time="0.1">
    <error message="Connection refused" type="java.net.ConnectException"/>
  </testcase>
  <testcase name="slowPath" classname="love.QueueServiceTest" time="0"><skipped/></testcase>
</testsuite>
"""


def test_surefire_counts_from_testcases(tmp_path: Path) -> None:
    f = tmp_path / "TEST-love.QueueServiceTest.xml"
    f.write_text(SUREFIRE)
    r = read_junit([f])
    assert (r.total, r.passed, r.failures, r.errors, r.skipped) == (4, 1, 1, 1, 1)
    assert not r.ok
    assert set(r.failing["name"]) == {"invalidatesCache", "talksToDb"}
    assert "CACHE_INVALIDATED" in r.failing.set_index("name").loc["invalidatesCache", "message"]


def test_bundled_pytest_and_jest_files() -> None:
    good = read_junit([paths.DATA / "junit" / "v1.9.1.xml", paths.DATA / "junit" / "v1.9.1-jest.xml"])
    assert good.ok and good.total > 0 and good.failures == good.errors == 0
    bad = read_junit([paths.DATA / "junit" / "v1.9.0.xml"])
    assert not bad.ok and bad.failures + bad.errors > 0 and len(bad.failing) == bad.failures + bad.errors


def test_all_skipped_is_not_ok(tmp_path: Path) -> None:
    f = tmp_path / "skipped.xml"
    f.write_text('<testsuites><testsuite name="s"><testcase name="a"><skipped/></testcase></testsuite></testsuites>')
    assert not read_junit([f]).ok


def test_missing_and_malformed_files_name_the_input(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"nope.xml does not exist"):
        read_junit([tmp_path / "nope.xml"])
    f = tmp_path / "broken.xml"
    f.write_text("<testsuite>\n<testcase name='a'>\n</testsuite>")
    with pytest.raises(ConfigurationError, match=r"broken.xml:3: not valid JUnit XML"):
        read_junit([f])
