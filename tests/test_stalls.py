"""A cell that stalls (a reply that never comes or is never read: ipython/ipykernel#1554 on the kernel's side,
jupyter/nbclient#312 on the client's, benchmarks/README.md "Kernel stalls") fails the notebook tests within a
minute or two, naming the lesson and the cell, instead of after 300 s per cell.

The browser test's own check of this is in tests/test_browser.py (``test_a_stalled_cell_fails_fast``); the course's
executor, which does not stall on Output widgets, is tested in tests/test_instructor.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from test_student_notebooks import cell_timeout

ROOT = Path(__file__).parents[1]


def test_the_suites_cell_timeout_is_short_but_far_above_the_slowest_cell():
    # The slowest lesson cell takes under 10 s here (benchmarks/README.md), 20 s is its budget on the slowest machine.
    assert 40 <= cell_timeout() <= 120


def test_the_installed_ipykernel_is_below_7():
    import ipykernel

    assert int(ipykernel.__version__.split(".")[0]) < 7, f"ipykernel {ipykernel.__version__}: see pyproject.toml"


def test_nbval_fails_a_stalled_cell_fast_and_names_it(tmp_path):
    """The same nbval options as the suite, a timeout of 3 s instead of its 90: the cell that never finishes fails
    with its notebook and number, and the cells after it do not wait a timeout each (nbval interrupts the kernel,
    or stops it when the interrupt goes unanswered, and expects them to fail)."""
    cells = ["x = 1", "import time\ntime.sleep(600)  # never finishes within the timeout", "y = 2", "z = 3"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells],
                                  metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nbformat.write(nb, tmp_path / "07_stalls.ipynb")
    start = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                             "--nbval-current-env", "--nbval-cell-timeout=3", "-o", "addopts=", "--rootdir",
                             str(tmp_path), "07_stalls.ipynb"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300, env=dict(os.environ))
    seconds = time.perf_counter() - start
    assert result.returncode == 1, result.stdout[-3000:]
    assert "07_stalls.ipynb::Cell 1" in result.stdout and "Timeout of 3 seconds exceeded" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("1 failed, 1 passed"), result.stdout[-3000:]
    assert seconds < 60, f"the stalled notebook took {seconds:.0f} s to fail"


def test_the_course_runs_notebooks_with_its_executor_not_plain_nbclient():
    """Every tool of the course that executes lessons outside JupyterLab and nbval uses the executor that cannot
    wait for ever on an Output widget's cell (plain nbclient and nbconvert --execute can: jupyter/nbclient#312)."""
    for path in ("scripts/build_site.py", "benchmarks/lessons.py", "tests/test_binder.py"):
        text = (ROOT / path).read_text()
        assert "NotebookClient(" not in text and '"nbconvert"' not in text, path
        assert "mmcourse.instructor" in text, path
