"""Write each lessons/NN_name.ipynb from its jupytext source lessons/NN_name.py, without outputs.

The .py file is the source of truth (readable diffs); the .ipynb is what learners open.
Cell ids of an existing notebook are kept where the cells match. Run after editing a lesson:

    python scripts/sync_lessons.py            # all lessons
    python scripts/sync_lessons.py 01         # lessons whose name starts with 01
"""

from __future__ import annotations

import sys
from pathlib import Path

import jupytext

LESSONS = Path(__file__).resolve().parents[1] / "lessons"


def sync(script: Path) -> Path:
    notebook = script.with_suffix(".ipynb")
    new = jupytext.read(script)
    if notebook.exists():
        old = jupytext.read(notebook)
        ids = {(c.cell_type, c.source): c.get("id") for c in old.cells}
        for cell in new.cells:
            if ids.get((cell.cell_type, cell.source)):
                cell["id"] = ids[(cell.cell_type, cell.source)]
    for cell in new.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    new.metadata.pop("jupytext", None)
    jupytext.write(new, notebook, fmt="ipynb")
    return notebook


if __name__ == "__main__":
    prefixes = sys.argv[1:] or [""]
    for script in sorted(LESSONS.glob("[0-9][0-9]_*.py")):
        if any(script.name.startswith(p) for p in prefixes):
            print("wrote", sync(script).relative_to(LESSONS.parent))
