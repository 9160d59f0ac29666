"""For instructors: student versions of the lessons, and an nbgrader source folder for autograding.

    python -m mmcourse.instructor student OUT            # every lesson, solutions removed, into OUT/
    python -m mmcourse.instructor student OUT 01 03      # only lessons 01 and 03
    python -m mmcourse.instructor nbgrader COURSE        # COURSE/source/NN_topic/NN_topic.ipynb for nbgrader
    python -m mmcourse.instructor executed OUT 04        # lesson 04 run top to bottom, outputs and widgets kept

(also installed as the console script ``mmcourse-instructor``). A **student version** is the lesson
without the cells tagged ``solution`` (removed with nbconvert's ``TagRemovePreprocessor``, which a
notebook export only applies when it is enabled explicitly) and without jupytext's pairing metadata,
so that a student's JupyterLab with jupytext does not pair the copy with a script. It runs top to
bottom: each exercise's check prints "not done yet" until the student writes the function.

An **nbgrader source** version turns each exercise into an autograded answer cell, the stub with the
reference solution between ``### BEGIN SOLUTION`` and ``### END SOLUTION``, followed by a locked
autograder test cell that fails unless the exercise's check passes (one point per exercise), with
nbgrader's cell metadata (``grade_id``, ``points``, ``schema_version: 3``). Then, in COURSE,
``nbgrader generate_assignment NN_topic`` writes the release version, and ``nbgrader autograde``
grades the students' submissions (nbgrader is in the ``instructor`` extra: ``pip install
mmcourse[instructor]``).

An **executed** version is the lesson run top to bottom in a fresh kernel, with its outputs and its widgets'
state, as ``jupyter nbconvert --to notebook --execute`` would write it, but with :class:`NotebookExecutor`:
nbconvert's executor (nbclient) can wait for a cell's reply until its timeout, or for ever, after a cell that
writes into an ipywidgets ``Output`` widget (jupyter/nbclient#312), and most lessons' widgets do.

Lessons follow one convention that makes this possible (``tests/test_notebooks.py`` checks it): an
exercise's stub cell defines ``my_<name>`` functions (a build: ``My<Name>`` classes too) that raise
``NotImplementedError`` and calls ``exercises.check("<exercise>", my_<name>)``; its solution cell, tagged
``solution``, defines ``solution_<name>`` (``Solution<Name>``) with the same signature.
"""

from __future__ import annotations

import argparse
import ast
import functools
import re
import sys
from pathlib import Path

import nbformat

LESSONS = Path(__file__).resolve().parents[1] / "lessons"
JUPYTEXT_CELL_KEYS = ("lines_to_next_cell", "lines_to_end_of_cell_marker")
CHECK = re.compile(r"""exercises\.check\(\s*["']([\w-]+)["']\s*,\s*(\w+)""")


def lessons(numbers: list[str] | None = None, folder: Path = LESSONS) -> list[Path]:
    """The lesson notebooks whose names start with one of ``numbers`` (all of them by default)."""
    found = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    chosen = [p for p in found if not numbers or any(p.name.startswith(n) for n in numbers)]
    unknown = [n for n in numbers or [] if not any(p.name.startswith(n) for p in found)]
    if unknown:
        raise ValueError(f"numbers: no lesson starts with {unknown}; lessons: {[p.stem for p in found]}")
    return chosen


def _strip_jupytext(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb.metadata.pop("jupytext", None)
    for cell in nb.cells:
        for key in JUPYTEXT_CELL_KEYS:
            cell.metadata.pop(key, None)
    return nb


def student_version(path: Path) -> nbformat.NotebookNode:
    """The lesson at ``path`` without its solution cells and jupytext metadata, outputs cleared."""
    from nbconvert.preprocessors import ClearOutputPreprocessor, TagRemovePreprocessor

    nb = nbformat.read(path, as_version=4)
    remove = TagRemovePreprocessor(remove_cell_tags={"solution"}, enabled=True)
    nb, _ = remove.preprocess(nb, {})
    nb, _ = ClearOutputPreprocessor(enabled=True).preprocess(nb, {})
    return _strip_jupytext(nb)


def write_student_versions(out: Path, numbers: list[str] | None = None) -> list[Path]:
    """Write the student version of each chosen lesson into ``out``; return the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in lessons(numbers):
        target = out / path.name
        nbformat.write(student_version(path), target)
        written.append(target)
    return written


def _functions(source: str) -> dict[str, ast.FunctionDef | ast.ClassDef]:
    """The functions and classes a cell defines, by name."""
    return {node.name: node for node in ast.parse(source).body if isinstance(node, (ast.FunctionDef, ast.ClassDef))}


def solution_name(stub: str) -> str:
    """The worked solution's name for a learner's stub: ``my_<name>`` -> ``solution_<name>`` for a function,
    ``My<Name>`` -> ``Solution<Name>`` for a class (a build's module)."""
    if stub.startswith("my_"):
        return "solution_" + stub.removeprefix("my_")
    if stub.startswith("My") and stub[2:3].isupper():
        return "Solution" + stub.removeprefix("My")
    raise ValueError(f"stub: expected a function my_<name> or a class My<Name>, got {stub!r}")


def _code_key(line: str) -> str:
    """A line's code without its comment and spaces ("" for a blank or comment-only line): scaffold lines that
    the stub and the solution share match whatever their comments say."""
    return line.split("#", 1)[0].strip()


def _filled(stub_lines: list[str], solution_lines: list[str]) -> list[str]:
    """The stub's lines with each hole (where the solution's code differs) replaced by the solution's lines
    between nbgrader's markers, so that a release keeps the scaffold and blanks only what the learner writes."""
    import difflib

    out: list[str] = []
    matcher = difflib.SequenceMatcher(None, [_code_key(x) for x in stub_lines], [_code_key(x) for x in solution_lines],
                                      autojunk=False)
    for op, a0, a1, b0, b1 in matcher.get_opcodes():
        if op == "equal":
            out += stub_lines[a0:a1]
            continue
        kept = [line for line in stub_lines[a0:a1] if line.strip().startswith("#")
                and "YOUR CODE HERE" not in line]  # the stub's instructions stay, its "YOUR CODE HERE" goes
        code = [line for line in solution_lines[b0:b1] if line.strip()]
        out += kept
        if code:
            indent = " " * (len(code[0]) - len(code[0].lstrip()))
            out += [f"{indent}### BEGIN SOLUTION", *solution_lines[b0:b1], f"{indent}### END SOLUTION"]
    return out


def _answer_source(stub: str, solution: str) -> str:
    """The stub cell's functions and classes, filled in with the solution's code between nbgrader's markers.

    ``my_<name>`` is filled from ``solution_<name>`` (a class ``My<Name>`` from ``Solution<Name>``). Where the
    stub is a scaffold (given lines around a hole), the given lines stay and only the hole is marked, so that
    the release version keeps them; a plain stub's whole body is the hole. The stub's other lines (its check
    call) are dropped: the autograder cell that follows checks the answer.
    """
    stubs, solutions = _functions(stub), _functions(solution)
    stub_lines, solution_lines = stub.splitlines(), solution.splitlines()
    parts = []
    for name, node in stubs.items():
        reference = solutions.get(solution_name(name))
        if reference is None:
            raise ValueError(f"solution: no {solution_name(name)} for the stub {name}")
        header = "\n".join(line for line in stub_lines[node.lineno - 1 : node.body[0].lineno - 1]
                            if not line.strip().startswith("#"))  # the stub's "# YOUR CODE HERE" goes
        body = _filled(stub_lines[node.body[0].lineno - 1 : node.end_lineno],
                       solution_lines[reference.body[0].lineno - 1 : reference.end_lineno])
        parts.append("\n".join([header, *body]))
    return "\n\n\n".join(parts)


def _grader_metadata(grade_id: str, solution: bool, points: int = 0) -> dict:
    meta = {"grade": not solution, "grade_id": grade_id, "locked": not solution, "schema_version": 3,
            "solution": solution, "task": False}
    if not solution:
        meta["points"] = points
    return {"nbgrader": meta}


def nbgrader_version(path: Path) -> nbformat.NotebookNode:
    """The lesson at ``path`` as an nbgrader source notebook (see the module's docstring)."""
    nb = _strip_jupytext(nbformat.read(path, as_version=4))
    solutions = {}
    for cell in nb.cells:
        if "solution" in cell.metadata.get("tags", []):
            for exercise, _ in CHECK.findall(cell.source):
                solutions[exercise] = cell.source
    cells = []
    for cell in nb.cells:
        if "solution" in cell.metadata.get("tags", []):
            continue
        stubs = CHECK.findall(cell.source) if cell.cell_type == "code" else []
        if not stubs or "NotImplementedError" not in cell.source:
            cells.append(cell)
            continue
        exercises = list(dict.fromkeys(exercise for exercise, _ in stubs))
        missing = [e for e in exercises if e not in solutions]
        if missing:
            raise ValueError(f"{path.name}: no solution cell checks {missing}")
        answer = nbformat.v4.new_code_cell(_answer_source(cell.source, solutions[exercises[0]]))
        answer.metadata.update(_grader_metadata(f"{path.stem}-{exercises[0]}-answer", solution=True))
        cells.append(answer)
        for exercise, function in stubs:
            test = nbformat.v4.new_code_cell(
                f'assert exercises.check("{exercise}", {function}), "{function} does not match the reference yet"')
            test.metadata.update(_grader_metadata(f"{path.stem}-{exercise}-check", solution=False, points=1))
            cells.append(test)
    nb.cells = cells
    return nb


def write_nbgrader_source(course: Path, numbers: list[str] | None = None) -> list[Path]:
    """Write ``course/source/<lesson>/<lesson>.ipynb`` for each chosen lesson; return the paths written."""
    written = []
    for path in lessons(numbers):
        target = course / "source" / path.stem / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nbgrader_version(path), target)
        written.append(target)
    return written


CELL_TIMEOUT = 90  # seconds: a lesson cell takes under 10 s here (20 s is its budget); one that has not
# answered after 90 s has stalled
REPLY_SLICE = 0.5  # seconds: how often a wait for the kernel looks at its socket again


def _wait_in_slices(channel) -> None:
    """Make ``channel.get_msg(timeout)`` poll its zmq.asyncio socket for at most :data:`REPLY_SLICE` at a time:
    pyzmq reads the socket afresh whenever one slice ends, so a message whose wake-up was swallowed (see
    :class:`NotebookExecutor`) waits at most that long instead of until the timeout."""
    import time
    from queue import Empty

    async def get_msg(timeout: float | None = None) -> dict:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = REPLY_SLICE if deadline is None else max(0.0, min(REPLY_SLICE, deadline - time.monotonic()))
            if await channel.socket.poll(int(left * 1000)):
                return await channel._recv()
            if deadline is not None and time.monotonic() >= deadline:
                raise Empty

    channel.get_msg = get_msg


@functools.cache
def _executor_class():
    """:class:`NotebookExecutor`, built on first use (nbclient is imported only when notebooks are run)."""
    from nbclient import NotebookClient
    from nbclient.util import run_sync

    class NotebookExecutor(NotebookClient):
        """nbclient's ``NotebookClient`` (what ``jupyter nbconvert --execute`` uses), made safe for cells that
        write into an ipywidgets ``Output`` widget.

        nbclient stands in for the front end's ``Output`` widget: while a cell prints into one, its stand-in
        sends the widget's new state to the kernel on the shell channel, from the coroutine that reads IOPub,
        while another coroutine waits on the same zmq.asyncio socket for the cell's ``execute_reply``. The
        send can use up the socket's (edge-triggered) wake-up for a reply that arrives meanwhile, and the
        wait then lasts until its timeout, when pyzmq looks at the socket once more, or for ever without one
        (jupyter/nbclient#312; measured by ``benchmarks/kernel_stress.py``: about 1 such cell in 70 without
        this class, none with it). The kernel is idle and so is the client: a cell stuck at ``[*]``. Here
        every wait polls in slices of :data:`REPLY_SLICE` seconds, so a reply is read at most that late.
        The default cell timeout is :data:`CELL_TIMEOUT`.
        """

        def __init__(self, nb, **kwargs) -> None:
            kwargs.setdefault("timeout", CELL_TIMEOUT)
            kwargs.setdefault("kernel_name", "python3")
            super().__init__(nb, **kwargs)

        async def async_start_new_kernel_client(self):
            kc = await super().async_start_new_kernel_client()
            _wait_in_slices(kc.shell_channel)
            _wait_in_slices(kc.iopub_channel)
            return kc

        start_new_kernel_client = run_sync(async_start_new_kernel_client)

    return NotebookExecutor


def __getattr__(name: str):
    if name == "NotebookExecutor":
        return _executor_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def executed_version(path: Path, timeout: float = CELL_TIMEOUT) -> nbformat.NotebookNode:
    """The notebook at ``path`` run top to bottom in a fresh kernel (in its own folder), with outputs and widget
    state, by :class:`NotebookExecutor`. A cell that fails raises nbclient's ``CellExecutionError``; one with no
    answer after ``timeout`` seconds raises ``RuntimeError`` naming the lesson and the cell."""
    from nbclient.exceptions import CellTimeoutError

    nb = nbformat.read(path, as_version=4)
    try:
        _executor_class()(nb, timeout=timeout, store_widget_state=True,
                          resources={"metadata": {"path": str(Path(path).parent)}}).execute()
    except CellTimeoutError as err:
        raise RuntimeError(f"{Path(path).name}: a cell stalled: {err}") from err
    return nb


def write_executed_versions(out: Path, numbers: list[str] | None = None) -> list[Path]:
    """Write each chosen lesson, executed (:func:`executed_version`), into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for path in lessons(numbers):
        nbformat.write(executed_version(path), out / path.name)
        written.append(out / path.name)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mmcourse-instructor", description=__doc__.split("\n\n")[0])
    parser.add_argument("version", choices=["student", "nbgrader", "executed"],
                        help="student: solutions removed; nbgrader: an nbgrader source folder; executed: the lessons "
                             "run top to bottom, with outputs")
    parser.add_argument("out", type=Path, help="the folder to write into (for nbgrader: the course folder)")
    parser.add_argument("lessons", nargs="*", help="lesson numbers, e.g. 01 03 (default: every lesson)")
    args = parser.parse_args(argv)
    try:
        write = {"student": write_student_versions, "nbgrader": write_nbgrader_source,
                 "executed": write_executed_versions}[args.version]
        for path in write(args.out, args.lessons or None):
            print("wrote", path)
    except ValueError as err:
        parser.error(str(err))
    return 0


if __name__ == "__main__":
    sys.exit(main())
