"""For instructors: student versions without solutions that still run, and nbgrader versions that grade.

The student notebooks run top to bottom in tests/test_student_notebooks.py (a file of its own, so that
pytest-xdist can run it next to this one). Lesson 00's nbgrader version goes through nbgrader's own
generate_assignment and autograde: full points for the reference answers, none for the blank release.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from mmcourse import instructor

ROOT = Path(__file__).parents[1]
LESSONS = instructor.lessons()


def _nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "nbgrader", *args]
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])  # nbgrader runs alembic
    result = subprocess.run(command, cwd=course, capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, PATH=path))
    assert result.returncode == 0, f"{' '.join(args)}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def students(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("students")
    assert instructor.main(["student", str(out)]) == 0
    return out


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_student_version_has_no_solution_and_no_pairing(students, lesson):
    full, student = nbformat.read(lesson, 4), nbformat.read(students / lesson.name, 4)
    kept = [c for c in full.cells if "solution" not in c.metadata.get("tags", [])]
    assert len(kept) < len(full.cells), "every lesson has exercises with solutions"
    assert [c.source for c in student.cells] == [c.source for c in kept]
    text = (students / lesson.name).read_text()
    assert "solution_" not in text and '"solution"' not in text and "jupytext" not in text
    assert "lines_to_next_cell" not in text


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    course = tmp_path_factory.mktemp("course")
    assert instructor.main(["nbgrader", str(course)]) == 0
    return course


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_nbgrader_source_has_an_answer_and_a_test_cell_per_exercise(course, lesson):
    source = nbformat.read(course / "source" / lesson.stem / lesson.name, 4)
    graded = [c.metadata["nbgrader"] for c in source.cells if "nbgrader" in c.metadata]
    answers = [c for c in source.cells if c.metadata.get("nbgrader", {}).get("solution")]
    tests = [c for c in source.cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert answers and len(tests) >= len(answers)
    assert all("### BEGIN SOLUTION" in c.source and "### END SOLUTION" in c.source for c in answers)
    assert all(c.source.startswith("assert exercises.check(") and c.metadata["nbgrader"]["points"] == 1
               for c in tests)
    ids = [m["grade_id"] for m in graded]
    assert len(ids) == len(set(ids)) and all(m["schema_version"] == 3 for m in graded)
    assert not [c for c in source.cells if "solution" in c.metadata.get("tags", [])]


def test_nbgrader_generates_every_release(course):
    for lesson in LESSONS:
        _nbgrader(course, "generate_assignment", lesson.stem, "--no-db", "--force")
        release = (course / "release" / lesson.stem / lesson.name).read_text()
        assert "### BEGIN SOLUTION" not in release and "YOUR CODE HERE" in release
        # A build's scaffold survives the release: every class the lesson's stubs define keeps its given methods.
        import ast

        cells = nbformat.reads(release, 4).cells
        for cell in cells:
            if cell.cell_type == "code":
                ast.parse(cell.source)  # the blanked answers are still Python
        given = {node.name: {m.name for m in node.body if isinstance(m, ast.FunctionDef)}
                 for cell in nbformat.read(lesson, 4).cells if cell.cell_type == "code"
                 and "solution" not in cell.metadata.get("tags", [])
                 for node in ast.parse(cell.source).body
                 if isinstance(node, ast.ClassDef) and node.name.startswith("My")}
        released = {node.name: {m.name for m in node.body if isinstance(m, ast.FunctionDef)}
                    for cell in cells if cell.cell_type == "code"
                    for node in ast.parse(cell.source).body if isinstance(node, ast.ClassDef)}
        for name, methods in given.items():
            lost = methods - released.get(name, set())
            assert not lost, f"{lesson.name}: the release's {name} lost its given {lost}"


def test_nbgrader_autograde_gives_full_points_to_the_reference_and_none_to_a_blank(tmp_path):
    course = tmp_path / "course"
    instructor.main(["nbgrader", str(course), "00"])
    for args in (("db", "assignment", "add", "00_welcome"), ("db", "student", "add", "reference"),
                 ("db", "student", "add", "blank"), ("generate_assignment", "00_welcome", "--force")):
        _nbgrader(course, *args)
    for student, origin in (("reference", "source"), ("blank", "release")):
        (course / "submitted" / student / "00_welcome").mkdir(parents=True)
        shutil.copy(course / origin / "00_welcome" / "00_welcome.ipynb", course / "submitted" / student / "00_welcome")
    # nbgrader's own cell timeout (30 s): a stalled cell is graded as an error, and its log says which cell.
    log = _nbgrader(course, "autograde", "00_welcome", "--force", "--Execute.timeout=30")
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        scores = {s: gradebook.find_submission("00_welcome", s) for s in ("reference", "blank")}
        assert scores["reference"].score == scores["reference"].max_score == 4, log.stderr[-3000:]
        assert scores["blank"].score == 0


def test_the_command_names_an_unknown_lesson(capsys):
    with pytest.raises(SystemExit):
        instructor.main(["student", "/tmp/unused", "99"])
    assert "no lesson starts with ['99']" in capsys.readouterr().err


GUIDE_SECTIONS = ["## Learning objectives", "## Before the session", "## A 90-minute plan", "## Stop and discuss",
                  "## Discussion questions (with short answers)", "## Mistakes students make",
                  "## Shorter or longer sessions"]


@pytest.mark.parametrize("lesson", LESSONS, ids=lambda p: p.stem)
def test_every_lesson_has_a_lab_guide_whose_links_resolve(lesson):
    import re

    guides = ROOT / "docs" / "instructors"
    guide = guides / f"{lesson.stem}.md"
    assert guide.exists(), f"no lab guide {guide.relative_to(ROOT)}"
    text = guide.read_text()
    assert [s for s in GUIDE_SECTIONS if s in text] == GUIDE_SECTIONS, "the guide has every section"
    assert [text.find(s) for s in GUIDE_SECTIONS] == sorted(text.find(s) for s in GUIDE_SECTIONS), "in this order"
    assert f"lessons/{lesson.name}" in text, "the guide links its lesson"
    assert f"({guide.name})" in (guides / "running-a-class.md").read_text(), "running-a-class.md lists it"
    for target in re.findall(r"\]\(([^)#\s]+)\)", text):
        if "://" not in target:
            assert (guide.parent / target).exists(), f"broken link {target}"


def test_the_executor_reads_a_reply_whose_wake_up_was_swallowed():
    """nbclient's wait for a reply can miss the socket's wake-up (jupyter/nbclient#312); the course's executor
    waits in slices of REPLY_SLICE seconds, so a message that is there is read within one slice, and a wait with
    nothing to read still ends at its timeout with Empty."""
    import asyncio
    import time
    from queue import Empty

    class Socket:  # says "nothing yet" once although the message is there, as a swallowed wake-up does
        def __init__(self, misses: int) -> None:
            self.misses = misses

        async def poll(self, timeout_ms: int) -> int:
            if self.misses:
                self.misses -= 1
                await asyncio.sleep(timeout_ms / 1000)
                return 0
            return 1

    class Channel:
        def __init__(self, misses: int) -> None:
            self.socket = Socket(misses)

        async def _recv(self) -> dict:
            return {"msg_type": "execute_reply"}

    channel = Channel(misses=1)
    instructor._wait_in_slices(channel)
    start = time.perf_counter()
    assert asyncio.run(channel.get_msg(timeout=30)) == {"msg_type": "execute_reply"}
    assert time.perf_counter() - start < 3 * instructor.REPLY_SLICE
    never = Channel(misses=10**6)
    instructor._wait_in_slices(never)
    start = time.perf_counter()
    with pytest.raises(Empty):
        asyncio.run(never.get_msg(timeout=1.2))
    assert 1.1 < time.perf_counter() - start < 1.2 + 2 * instructor.REPLY_SLICE


def test_an_executed_version_keeps_outputs_and_widgets_and_names_a_stalled_cell(tmp_path):
    cells = ["import ipywidgets as widgets\nfrom IPython.display import display",
             "out = widgets.Output()\ndisplay(out)\nwith out:\n    print('inside')", "print(6 * 7)"]
    path = tmp_path / "98_tiny.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), path)
    nb = instructor.executed_version(path)
    assert nb.cells[2].outputs[0]["text"] == "42\n"
    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert any(w["state"].get("outputs") for w in state.values()), "the Output widget's captured print is kept"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import time\ntime.sleep(60)")]), path)
    with pytest.raises(RuntimeError, match="98_tiny.ipynb: a cell stalled"):
        instructor.executed_version(path, timeout=2)


def test_a_builds_scaffold_keeps_its_given_lines_in_the_nbgrader_answer():
    """A build's stub is a scaffold: a class whose __init__ is given and whose forward is the hole, a step function
    with given lines around its hole. The answer marks only the holes, so a release keeps what is given."""
    from mmcourse.instructor import _answer_source, solution_name

    stub = ('class MyFusion(nn.Module):\n    def __init__(self, d):\n        super().__init__()\n'
            '        self.w = nn.Parameter(torch.ones(d))  # the weights\n\n    def forward(self, x):\n'
            '        # YOUR CODE HERE: scale x\n        raise NotImplementedError\n\n\n'
            'def my_step(model, batch, optimizer):\n    optimizer.zero_grad()\n'
            '    # YOUR CODE HERE: the loss, backward\n    raise NotImplementedError\n    optimizer.step()\n'
            '    return loss\n\n\n'
            'exercises.check("fusion_module", MyFusion)\nexercises.check("fusion_step", my_step)\n')
    solution = ('class SolutionFusion(nn.Module):\n    def __init__(self, d):\n        super().__init__()\n'
                '        self.w = nn.Parameter(torch.ones(d))\n\n    def forward(self, x):\n'
                '        return self.w * x\n\n\n'
                'def solution_step(model, batch, optimizer):\n    optimizer.zero_grad()\n'
                '    loss = model(batch).sum()\n    loss.backward()\n    optimizer.step()\n    return loss\n\n\n'
                'exercises.check("fusion_module", SolutionFusion, must_pass=True)\n')
    answer = _answer_source(stub, solution)
    assert answer.startswith("class MyFusion(nn.Module):\n    def __init__(self, d):\n        super().__init__()\n"
                             "        self.w = nn.Parameter(torch.ones(d))  # the weights\n")
    assert ("    def forward(self, x):\n        ### BEGIN SOLUTION\n        return self.w * x\n"
            "        ### END SOLUTION") in answer
    assert ("def my_step(model, batch, optimizer):\n    optimizer.zero_grad()\n    ### BEGIN SOLUTION\n"
            "    loss = model(batch).sum()\n    loss.backward()\n    ### END SOLUTION\n    optimizer.step()\n"
            "    return loss") in answer
    assert "NotImplementedError" not in answer and "exercises.check" not in answer and "YOUR CODE" not in answer
    assert "# the weights" in answer, "the given lines keep their comments"
    assert solution_name("MyFusion") == "SolutionFusion" and solution_name("my_step") == "solution_step"
    with pytest.raises(ValueError, match="a function my_<name> or a class My<Name>"):
        solution_name("Mystery")
