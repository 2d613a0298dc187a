"""The last lines of `make test`: what was skipped, why, and how to run it."""

from __future__ import annotations

import subprocess
import sys

from .conftest import PROJECT
from .skipped import summary

SKIPPING_TESTS = """
import pytest

def test_needs_nginx():
    pytest.skip("nginx not available (not in PATH)")

def test_needs_nginx_too():
    pytest.skip("nginx not available (not in PATH)")

@pytest.mark.xfail(reason="known")
def test_expected_to_fail():
    assert False

def test_runs():
    pass
"""


def junit_report(tmp_path, name: str, source: str):
    """Run pytest on source as a pass of its own; return its JUnit report."""
    tests = tmp_path / f"test_{name.lower()}.py"
    tests.write_text(source)
    report = tmp_path / f"{name}.xml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:django",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            "-c",
            "/dev/null",
            f"--junitxml={report}",
            str(tests),
        ],
        cwd=tmp_path,
        capture_output=True,
        timeout=120,
    )
    return report


def test_each_reason_is_one_line_with_its_count_pass_and_fix(tmp_path):
    report = junit_report(tmp_path, "SQLite", SKIPPING_TESTS)
    (line,) = summary([report])
    assert line.startswith("skipped: 2 tests in the SQLite pass — nginx not available")
    assert "sudo apt-get install nginx" in line


def test_a_clean_run_says_nothing_skipped_and_a_missing_pass_says_so(tmp_path):
    clean = junit_report(tmp_path, "SQLite", "def test_runs():\n    pass\n")
    assert summary([clean]) == ["nothing skipped"]
    assert summary([clean, tmp_path / "PostgreSQL.xml"]) == ["the PostgreSQL pass did not run"]


def test_the_script_prints_the_summary_as_the_last_lines(tmp_path):
    report = junit_report(tmp_path, "SQLite", SKIPPING_TESTS)
    result = subprocess.run(
        [sys.executable, "tests/skipped.py", str(report)],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip().splitlines()[-1].startswith("skipped: 2 tests")
