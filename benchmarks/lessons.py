"""Run each lesson in a fresh kernel and compare wall time, slowest cell and peak memory with the budgets.

    python benchmarks/lessons.py              # every lesson, table printed (markdown)
    python benchmarks/lessons.py 01           # lessons whose file name starts with 01

Budgets (COURSE.md): a lesson at most 60 s on 2 CPU cores, no cell above 20 s, peak kernel
memory at most 1.5 GB; ``import mmcourse`` at most 1 s on top of ``import torch``. Peak memory
is the kernel process's own maximum resident set size (``getrusage``), read by a last cell.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient.exceptions import CellTimeoutError

from mmcourse.instructor import NotebookExecutor

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S, CELL_BUDGET_S, MEMORY_BUDGET_MB, IMPORT_BUDGET_S = 60.0, 20.0, 1536.0, 1.0
# The slowest machine we know (AVX2 only) ran the lessons 2-3x slower than a developer's machine, so a
# lesson must take at most half of each time budget here to stay inside it there.
AIM = 0.5
PEAK_RSS = (
    "import resource, sys\n"
    "rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
    "print(rss / 2**20 if sys.platform == 'darwin' else rss / 2**10)"  # bytes on macOS, KiB on Linux
)


def run_lesson(path: Path) -> dict:
    """Execute one notebook cell by cell in a new kernel; return timings and peak memory."""
    nb = nbformat.read(path, as_version=4)
    # nbclient, made safe for Output widgets (mmcourse.instructor.NotebookExecutor); a cell that has not finished in
    # 90 s has stalled (the budget is 20 s): say which, rather than wait.
    client = NotebookExecutor(nb, timeout=90, resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    cell_times = []
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            t = time.perf_counter()
            try:
                client.execute_cell(cell, index)
            except CellTimeoutError as err:
                raise RuntimeError(f"{path.name}, cell {index}: stalled (see benchmarks/kernel_stress.py)") from err
            cell_times.append((time.perf_counter() - t, index))
        wall = time.perf_counter() - start
        probe = nbformat.v4.new_code_cell(PEAK_RSS)
        nb.cells.append(probe)
        client.execute_cell(probe, len(nb.cells) - 1)
    peak_mb = float(probe.outputs[0]["text"])
    slowest, slowest_index = max(cell_times)
    return {"lesson": path.stem, "wall": wall, "slowest": slowest, "slowest_cell": slowest_index, "peak_mb": peak_mb}


def import_time() -> float:
    """Seconds that ``import mmcourse`` adds to ``import torch`` (best of three fresh processes)."""
    code = "import time, torch; t = time.perf_counter(); import mmcourse; print(time.perf_counter() - t)"
    runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
            for _ in range(3)]
    return min(runs)


def loader_times() -> dict[str, float]:
    """Seconds to build each data set with default sizes, in a fresh process (imports included)."""
    out = {}
    for name, call in [("load_av_digits()", "load_av_digits()"), ("load_shapes()", "load_shapes()"),
                       ("make_two_views()", "make_two_views()")]:
        code = (f"import time, torch; from mmcourse.data import {call.split('(')[0]}; "
                f"t = time.perf_counter(); {call}; print(time.perf_counter() - t)")
        out[name] = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                         check=True).stdout)
    return out


def cpu_model() -> str:
    """The CPU's model name and its widest vector extension (lessons run 2-3x slower with AVX2 only)."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        model = next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
        flags = set(next(line for line in lines if line.startswith("flags")).split())
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()
    vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    return f"{model}, {vector}"


def mark(value: float, budget: float) -> str:
    return "ok" if value <= budget else "OVER"


def main(prefixes: list[str]) -> int:
    lessons = [p for p in sorted((ROOT / "lessons").glob("[0-9][0-9]_*.ipynb"))
               if not prefixes or any(p.name.startswith(x) for x in prefixes)]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"Machine: {cpu_model()}, {os.cpu_count()} CPU cores, load average {load:.2f} at the start, "
          f"Python {platform.python_version()}, "
          f"device {os.environ.get('MMCOURSE_DEVICE', 'auto')}\n")
    print("| lesson | wall time (s) | slowest cell (s) | peak kernel memory (MB) | within half the time budgets |")
    print("|---|---:|---:|---:|---|")
    over = 0
    for path in lessons:
        r = run_lesson(path)
        ok = r["wall"] <= AIM * BUDGET_S and r["slowest"] <= AIM * CELL_BUDGET_S and r["peak_mb"] <= MEMORY_BUDGET_MB
        over += not ok
        print(f"| {r['lesson']} | {r['wall']:.1f} | {r['slowest']:.1f} (cell {r['slowest_cell']}) | "
              f"{r['peak_mb']:.0f} | {'yes' if ok else 'NO'} |", flush=True)
    print(f"\nBudgets: {BUDGET_S:.0f} s per lesson, {CELL_BUDGET_S:.0f} s per cell, {MEMORY_BUDGET_MB:.0f} MB; the "
          f"aim here is half of each time budget ({AIM * BUDGET_S:.0f} s, {AIM * CELL_BUDGET_S:.0f} s), since the "
          f"slowest machine we know runs the lessons 2-3 times slower.\n")
    seconds = import_time()
    over += seconds > IMPORT_BUDGET_S
    print(f"`import mmcourse` after `import torch`: {seconds:.2f} s (budget {IMPORT_BUDGET_S:.0f} s: "
          f"{mark(seconds, IMPORT_BUDGET_S)})\n")
    print("| data set (fresh process, imports included) | seconds |")
    print("|---|---:|")
    for name, seconds in loader_times().items():
        print(f"| `{name}` | {seconds:.2f} |")
    browser_times()
    return 1 if over else 0


def browser_times() -> None:
    """Print the run-all times the browser test last measured (artifacts/browser/times.json)."""
    path = ROOT / "artifacts" / "browser" / "times.json"
    if not path.exists():
        print("\nNo browser times yet: run `pytest tests/test_browser.py` first.")
        return
    print("\nRun All Cells in JupyterLab + headless Chromium, until every cell has run "
          "(from the last run of `tests/test_browser.py`, which writes artifacts/browser/times.json):\n")
    print("| lesson | seconds in the browser |")
    print("|---|---:|")
    for lesson, seconds in sorted(json.loads(path.read_text()).items()):
        print(f"| {lesson} | {seconds:.1f} |")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
