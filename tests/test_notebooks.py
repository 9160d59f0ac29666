"""Lessons: each jupytext script and its notebook hold the same cells; notebooks carry no outputs."""

from pathlib import Path

import jupytext
import pytest

LESSONS = Path(__file__).parents[1] / "lessons"
SCRIPTS = sorted(LESSONS.glob("[0-9][0-9]_*.py"))
NOTEBOOKS = sorted(LESSONS.glob("[0-9][0-9]_*.ipynb"))


def _cells(path: Path) -> list[tuple]:
    nb = jupytext.read(path)
    return [
        (c.cell_type, c.source.strip(), tuple(c.metadata.get("tags", [])), c.metadata.get("jupyter", {}))
        for c in nb.cells
    ]


def test_every_lesson_has_both_files():
    assert SCRIPTS, "no lessons found"
    assert [p.stem for p in SCRIPTS] == [p.stem for p in NOTEBOOKS]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_script_and_notebook_hold_the_same_cells(script):
    """Compared cell by cell (type, source, tags, hidden state), not by file times: after a
    checkout, times say nothing. Regenerate with `python scripts/sync_lessons.py`."""
    assert _cells(script) == _cells(script.with_suffix(".ipynb"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_is_stored_clean_with_a_kernel(notebook):
    nb = jupytext.read(notebook)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:60]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_solutions_are_hidden_and_checked(script):
    """Every exercise solution is a cell tagged `solution`, its source and its outputs hidden (Run All gives no
    answer away, not even a find-the-bug explanation), that calls a check with must_pass."""
    cells = jupytext.read(script).cells
    solutions = [c for c in cells if "solution" in c.metadata.get("tags", [])]
    assert solutions, "every lesson has at least one exercise"
    for cell in solutions:
        hidden = cell.metadata.get("jupyter", {})
        assert hidden.get("source_hidden") is True and hidden.get("outputs_hidden") is True, cell.source[:60]
        assert "must_pass=True" in cell.source


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_exercises_follow_the_stub_and_solution_convention(script):
    """Each exercise's stub cell defines my_<name> functions (a build: My<Name> classes too) that raise
    NotImplementedError and checks them; its solution cell defines solution_<name> (Solution<Name>), never
    redefining the learner's, and checks them with must_pass. Later cells use a learner's name only through
    `exercises.yours_or(...)`, which falls back to the package's while the check fails (a student version runs
    top to bottom). The instructor kit relies on this (mmcourse.instructor)."""
    import ast
    import re

    from mmcourse.instructor import solution_name

    cells = [c for c in jupytext.read(script).cells if c.cell_type == "code"]
    checks = re.compile(r"""exercises\.check\(\s*["']([\w-]+)["']\s*,\s*(\w+)""")
    stubs, solved = {}, set()
    for i, cell in enumerate(cells):
        names = {n.name for n in ast.parse(cell.source).body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        learner_names = {n for n in names if n.startswith("my_") or re.match(r"My[A-Z]", n)}
        if "solution" in cell.metadata.get("tags", []):
            assert not learner_names, f"a solution cell redefines {learner_names}"
            for exercise, function in checks.findall(cell.source):
                assert exercise in stubs, f"solution for {exercise!r} before its stub"
                assert function == solution_name(stubs[exercise]) and function in names, (exercise, function)
                solved.add(exercise)
        elif "NotImplementedError" in cell.source and names:
            found = checks.findall(cell.source)
            assert found, f"stub cell without a check: {cell.source[:80]}"
            for exercise, function in found:
                assert function in learner_names, (exercise, function)
                stubs[exercise] = function
        else:
            guarded = re.sub(r"exercises\.yours_or\([^)]*\)", "", cell.source)
            learner = [n for n in re.findall(r"\b(?:my_\w+|My[A-Z]\w*)", guarded) if n in stubs.values()]
            assert not learner, f"cell {i} uses the learner's {learner}: {cell.source[:80]}"
    assert stubs and set(stubs) == solved, f"exercises without a solution: {set(stubs) - solved}"


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_prose_is_in_markdown_cells(script):
    """Headings live in markdown cells: a `# ## Summary` left in a code cell is a comment, invisible as prose,
    and gone from the student version when that code cell is a solution (mmcourse.instructor removes it)."""
    import re

    cells = jupytext.read(script).cells
    summary = re.compile(r"^## Summary", flags=re.MULTILINE)
    assert any(c.cell_type == "markdown" and summary.search(c.source) for c in cells), "no Summary section"
    for cell in cells:
        if cell.cell_type == "code":
            heading = re.search(r"^# #+ .*", cell.source, flags=re.MULTILINE)
            assert not heading, f"a heading in a code cell: {heading.group()}"
