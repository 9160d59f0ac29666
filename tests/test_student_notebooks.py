"""The student versions of every lesson (``python -m mmcourse.instructor student``) run top to bottom under
nbval, as the lessons do: each exercise check says "not done yet", and no later cell needs a learner's
unfinished function or a removed solution."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat

from mmcourse import instructor


def test_student_notebooks_run_top_to_bottom(tmp_path):
    """Written into a fresh folder, then run by nbval in a pytest of their own (outputs are not compared), with
    the suite's cell timeout: a stalled cell fails in a minute or two, named (``lesson.ipynb::Cell N``)."""
    students = tmp_path / "students"
    assert instructor.main(["student", str(students)]) == 0
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
                             "--nbval-current-env", f"--nbval-cell-timeout={cell_timeout()}", "-o", "addopts=",
                             "--rootdir", str(students), str(students)],
                            cwd=students, capture_output=True, text=True, timeout=1800, env=dict(os.environ))
    assert result.returncode == 0, result.stdout[-4000:]
    assert f"{sum(1 for c in _code_cells(students))} passed" in result.stdout.splitlines()[-1]


def cell_timeout() -> int:
    """The suite's nbval cell timeout in seconds (pyproject.toml's addopts)."""
    import re
    import tomllib

    addopts = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    return int(re.search(r"--nbval-cell-timeout=(\d+)", addopts["addopts"]).group(1))


def _code_cells(folder: Path):
    for path in sorted(folder.glob("*.ipynb")):
        yield from (c for c in nbformat.read(path, 4).cells if c.cell_type == "code")
