"""Say what `make test` skipped and why, as its last lines.

Usage: python tests/skipped.py REPORT.xml... — the JUnit reports of pytest's
passes (--junitxml), each named after its pass (SQLite.xml, PostgreSQL.xml).
pytest's own -rs summary scrolls away between the two passes.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from defusedxml import ElementTree

# How to get a skipped test to run, by the service its reason starts with.
FIXES = {
    "Chromium": "run `make test` as root to install it, or: sudo apt-get install chromium",
    "nginx": "run `make test` as root to install it, or: sudo apt-get install nginx",
    "openssl": "run `make test` as root to install it, or: sudo apt-get install openssl",
    "Redis": "start Redis (sudo apt-get install redis-server) or set XGC_TEST_REDIS_URL",
    "redis-server": "sudo apt-get install redis-server",
    "PostgreSQL": "start PostgreSQL, or: make test TEST_POSTGRES_URL=postgres://user:password@host:5432/test",
}


def skip_reasons(report: Path) -> Counter[str]:
    """Count the report's skipped tests by reason (expected failures aside)."""
    reasons: Counter[str] = Counter()
    for skipped in ElementTree.parse(report).iter("skipped"):
        if skipped.get("type") != "pytest.xfail":
            reasons[" ".join(skipped.get("message", "no reason given").split())] += 1
    return reasons


def summary(reports: list[Path]) -> list[str]:
    """Return a line per pass and reason of skipped tests, or "nothing skipped"."""
    lines = []
    for report in reports:
        if not report.exists():
            lines.append(f"the {report.stem} pass did not run")
            continue
        for reason, count in skip_reasons(report).most_common():
            fix = next((fix for name, fix in FIXES.items() if reason.startswith(name)), None)
            tests = "test" if count == 1 else "tests"
            lines.append(
                f"skipped: {count} {tests} in the {report.stem} pass — {reason}"
                + (f" (to run {'it' if count == 1 else 'them'}: {fix})" if fix else "")
            )
    return lines or ["nothing skipped"]


if __name__ == "__main__":
    sys.stdout.write("\n" + "\n".join(summary([Path(name) for name in sys.argv[1:]])) + "\n")
