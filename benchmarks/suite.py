"""Where the test suite's time goes: run it (or read a JUnit XML file of a run) and sum by part.

    python benchmarks/suite.py                      # run the whole suite as README's command does
    python benchmarks/suite.py artifacts/junit.xml  # only summarise an earlier run's report

Parts: unit tests, the claims on other seeds (``tests/test_*_experiments.py``), nbval over the lessons,
the browser test, the Binder test. Each test's time includes its set-up (a module fixture that trains
is charged to the first test that uses it). With several pytest workers the wall time is shorter than
the sum.
"""

from __future__ import annotations

import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def part(case: ET.Element) -> str:
    """The part of the suite a <testcase> belongs to, from its class name ("tests.test_browser" ...)."""
    where = case.get("classname") or ""
    if where.startswith("lessons."):
        return "nbval over the lessons"
    if where.endswith("test_browser"):
        return "browser (JupyterLab + Chromium)"
    if where.endswith("test_binder"):
        return "Binder environment"
    if where.endswith("_experiments"):
        return "claims on other seeds"
    return "unit tests"


def summarise(report: Path, wall: float | None = None) -> str:
    totals: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    slowest: list[tuple[float, str]] = []
    for case in ET.parse(report).getroot().iter("testcase"):
        seconds = float(case.get("time", 0))
        name = part(case)
        totals[name] += seconds
        counts[name] += 1
        slowest.append((seconds, f"{case.get('classname')}::{case.get('name')}"))
    lines = ["| part | tests | seconds |", "|---|---:|---:|"]
    for name, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {name} | {counts[name]} | {seconds:.0f} |")
    lines.append(f"| **sum** | {sum(counts.values())} | {sum(totals.values()):.0f} |")
    if wall is not None:
        lines.append(f"\nWall time of the whole command: {wall / 60:.1f} min.")
    lines.append("\nSlowest tests:\n")
    lines += [f"- {seconds:.0f} s {name}" for seconds, name in sorted(slowest, reverse=True)[:12]]
    return "\n".join(lines)


def main(args: list[str]) -> int:
    if args:
        print(summarise(Path(args[0])))
        return 0
    report = ROOT / "artifacts" / "junit.xml"
    report.parent.mkdir(exist_ok=True)
    start = time.perf_counter()
    code = subprocess.call([sys.executable, "-m", "pytest", "-q", f"--junitxml={report}"], cwd=ROOT)
    print(summarise(report, time.perf_counter() - start))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
